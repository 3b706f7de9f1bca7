"""Engine facts: what a form says, flattened into facts the rules engine can match.

Each fact goes straight from the validated form into the engine's wire format (`encode_fact`,
with the attribute names rules use: the engine module owns the keys and the JSON), next to the
`Observation` a finding cites when that fact takes part in a firing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from hipscreen._engine import encode_fact, fact_head
from hipscreen._form import IntakeForm
from hipscreen._vocabulary import (
    PREGNANCY_ONLY_SYMPTOMS,
    Measure,
    Muscle,
    RomMotion,
    Side,
    Symptom,
)

# For a left/right difference, which side is the one of concern: the weaker, tighter or more
# restricted side. "low" means the lower value is the side of concern.
_CONCERN_IS_LOW = {
    "strength": True,
    "tightness": False,
    "hip_flexion": True,
    "hip_extension": True,
    "thomas_hip_angle": False,  # thigh higher above horizontal = shorter hip flexors
    "thomas_knee_angle": True,  # less knee flexion = shorter rectus femoris
    "straight_leg_raise": True,
    "active_knee_extension_deficit": False,
}

Grade = tuple[Muscle, Side, int, str]


class Observation(NamedTuple):
    """What one engine fact stands for in the form, so a finding can cite it as evidence."""

    field: str
    value: int | float | str
    side: Side | None
    measured: bool
    note: str | None = None
    cited: bool = True  # False for an absence (``unmeasured``): never evidence


# Which measured length tests check a muscle's tightness (domain reference §2): the modified
# Thomas test for the hip flexors, the straight-leg raise and active knee extension for the
# hamstrings. Gluteus maximus and adductor magnus have no length test on the form.
_LENGTH_TESTS: dict[Muscle, frozenset[str]] = {
    **dict.fromkeys(
        (Muscle.ILIOPSOAS, Muscle.RECTUS_FEMORIS, Muscle.SARTORIUS, Muscle.HIP_FLEXORS),
        frozenset({"thomas_hip_angle", "thomas_knee_angle"}),
    ),
    **dict.fromkeys(
        (Muscle.HAMSTRINGS, Muscle.HIP_EXTENSORS),
        frozenset({"straight_leg_raise", "active_knee_extension_deficit"}),
    ),
}
_OVERRIDDEN = "self-rating: the measured length test of this muscle decides the finding"


def _length_tested(form: IntakeForm) -> dict[str, set[Side]]:
    """For each length test given, the sides it covers (a value for both sides covers each)."""
    tested: dict[str, set[Side]] = {}
    for name, side, value, _path in form.measurements():
        if not isinstance(value, bool):
            covered = {Side.LEFT, Side.RIGHT, Side.BOTH} if side == Side.BOTH else {side}
            tested.setdefault(name, set()).update(covered)
    for sides in tested.values():
        if Side.LEFT in sides and Side.RIGHT in sides:
            sides.add(Side.BOTH)
    return tested


class FormFacts:
    """The engine facts for one form and the observation behind each (by index ``i``)."""

    def __init__(self, form: IntakeForm, grades: Mapping[Measure, Sequence[Grade]]) -> None:
        self.facts: list[str] = []
        self.observations: list[Observation] = []
        tested = _length_tested(form) if grades.get(Measure.TIGHTNESS) else {}
        for measure, given in grades.items():
            for muscle, side, grade, path in given:
                note = None
                if measure == Measure.TIGHTNESS:
                    # Measured outranks self-report: rules read a self-rated tightness only
                    # where no length test of that muscle was measured on that side.
                    length = any(side in tested.get(t, ()) for t in _LENGTH_TESTS.get(muscle, ()))
                    note = _OVERRIDDEN if length else None
                    head = fact_head(
                        "grade",
                        ("measure", measure),
                        ("muscle", muscle),
                        ("group", muscle.group),
                        ("side", side),
                        ("length_tested", "yes" if length else "no"),
                    )
                else:
                    head = fact_head(
                        "grade",
                        ("measure", measure),
                        ("muscle", muscle),
                        ("group", muscle.group),
                        ("side", side),
                    )
                self._add(head, Observation(path, grade, side, measured=False, note=note), grade)
            self._asymmetry(
                measure,
                measure,
                [(m, s, g, f"{measure}.{m}") for m, s, g, _ in given],
                measured=False,
                groups={m: m.group for m, *_ in given},
            )
        angles = list(form.angles())
        method = form.rom.method if form.rom is not None else None
        for motion, side, degrees, path in angles:
            self._add(
                fact_head("rom", ("motion", motion), ("side", side), ("method", str(method))),
                Observation(path, degrees, side, measured=True),
                degrees,
            )
        self._asymmetry(
            "rom", None, [(m, s, d, f"rom.{m}") for m, s, d, _ in angles], measured=True
        )
        measured_motions = {motion for motion, *_ in angles}
        for motion in RomMotion:
            if motion not in measured_motions:
                # Absence as a fact: a finding may be inferred only where nothing was measured.
                self._add(
                    fact_head("unmeasured", ("name", motion)),
                    Observation(f"rom.{motion}", "not measured", None, False, cited=False),
                )
        numeric = []
        for name, side, value, path in form.measurements():
            if isinstance(value, bool):
                if value:
                    self._add(
                        fact_head("sign", ("name", name), ("side", side)),
                        Observation(path, "yes", side, measured=True),
                    )
                continue
            if name == "straight_leg_raise" and form.straight_leg_raise is not None:
                pain = "yes" if form.straight_leg_raise.reproduces_leg_pain else "no"
                head = fact_head("test", ("name", name), ("side", side), ("leg_pain", pain))
            else:
                head = fact_head("test", ("name", name), ("side", side))
            self._add(head, Observation(path, value, side, measured=True), value)
            numeric.append(
                (name, side, value, path.rsplit(".", 1)[0] if side != Side.BOTH else path)
            )
        self._asymmetry("test", None, numeric, measured=True)
        if form.straight_leg_raise is not None and form.straight_leg_raise.reproduces_leg_pain:
            self._add(
                fact_head("sign", ("name", "slr_reproduces_leg_pain")),
                Observation("straight_leg_raise.reproduces_leg_pain", "yes", None, True),
            )
        painless_fall = _painless_fall(form)
        for symptom in form.symptoms:
            if painless_fall and symptom == Symptom.RECENT_FALL_OR_MINOR_TRAUMA:
                # Stated: no new pain and walking normally. Read as fall_without_injury_signs.
                continue
            self._add(
                fact_head("symptom", ("name", symptom)),
                Observation("symptoms", symptom, None, measured=False),
            )
        self._stated(form, painless_fall)
        if Symptom.LOWER_BACK_PAIN in form.reported_symptoms() and (
            Symptom.LOWER_BACK_PAIN not in form.symptoms
        ):
            # Describing the back-pain episode reports low back pain, even if the symptom list
            # does not repeat it.
            self._add(
                fact_head("symptom", ("name", Symptom.LOWER_BACK_PAIN)),
                Observation("back_pain", "lower_back_pain", None, measured=False),
            )
        for activity in form.activities:
            self._add(
                fact_head("activity", ("name", activity)),
                Observation("activities", activity, None, measured=False),
            )
        if form.age is not None:
            self._add(fact_head("age"), Observation("age", form.age, None, False), form.age)
        self._context(form)

    def _add(self, head: str, observation: Observation, value: float | None = None) -> None:
        self.facts.append(encode_fact(len(self.observations), head, value))
        self.observations.append(observation)

    def _asymmetry(
        self,
        measure: str,
        concern_key: str | None,
        values: Sequence[tuple[str, Side, float, str]],
        measured: bool,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        per_side: dict[str, dict[Side, tuple[float, str]]] = {}
        for name, side, value, path in values:
            per_side.setdefault(name, {})[side] = (value, path)
        for name, sides in per_side.items():
            if Side.LEFT not in sides or Side.RIGHT not in sides:
                continue
            (left, path), (right, _) = sides[Side.LEFT], sides[Side.RIGHT]
            if left == right:
                continue
            low_is_concern = _CONCERN_IS_LOW[concern_key or name]
            concern = Side.LEFT if (left < right) == low_is_concern else Side.RIGHT
            attrs = [("measure", measure), ("name", name), ("side", concern)]
            if groups is not None:
                attrs.append(("group", groups[name]))
            self._add(
                fact_head("asym", *attrs),
                Observation(
                    path.removesuffix(".left"), f"left {left:g}, right {right:g}", concern, measured
                ),
                abs(left - right),
            )

    def _stated(self, form: IntakeForm, painless_fall: bool) -> None:
        """Facts from the form's yes/no/blank context fields (blank adds nothing)."""

        def symptom(name: Symptom, path: str, value: str) -> None:
            if name not in form.symptoms:  # the ticked symptom already stands for it
                self._add(
                    fact_head("symptom", ("name", name)), Observation(path, value, None, False)
                )

        fall = form.recent_fall
        if fall is not None and fall.occurred:
            if painless_fall:
                self._add(
                    fact_head("context", ("name", "fall_without_injury_signs")),
                    Observation("recent_fall", "no new pain, bears weight", None, False),
                )
            else:
                symptom(Symptom.RECENT_FALL_OR_MINOR_TRAUMA, "recent_fall.occurred", "yes")
            if fall.new_pain:
                self._add(
                    fact_head("context", ("name", "fall_with_new_pain")),
                    Observation("recent_fall.new_pain", "yes", None, False),
                )
            if fall.can_bear_weight is False:
                symptom(Symptom.UNABLE_TO_BEAR_WEIGHT, "recent_fall.can_bear_weight", "no")
        if form.recent_joint_procedure:
            symptom(Symptom.RECENT_SPINAL_OR_JOINT_PROCEDURE, "recent_joint_procedure", "yes")

    def _context(self, form: IntakeForm) -> None:
        def add(name: str, path: str, value: int | str, v: int | None = None) -> None:
            self._add(
                fact_head("context", ("name", name)), Observation(path, value, None, False), v
            )

        implied = [s for s in form.symptoms if s in PREGNANCY_ONLY_SYMPTOMS]
        if form.pregnancy is None and implied:
            # Only a pregnancy has these symptoms: read them as one rather than let them pass.
            add("pregnancy", "symptoms", implied[0])
        if form.anticoagulant:
            add("anticoagulant", "anticoagulant", "yes")
        if form.pregnancy is not None:
            add("pregnancy", "pregnancy", "yes")
            if form.pregnancy.weeks is None:
                add("pregnancy_weeks_unknown", "pregnancy", "weeks not given")
            else:
                add(
                    "pregnancy_weeks",
                    "pregnancy.weeks",
                    form.pregnancy.weeks,
                    v=form.pregnancy.weeks,
                )
        hip = form.hip_replacement
        if hip is not None and not hip.precautions_lifted:
            self._add(
                fact_head(
                    "context", ("name", f"hip_replacement_{hip.approach}"), ("side", hip.side)
                ),
                Observation("hip_replacement.approach", hip.approach, hip.side, False),
            )
        if hip is not None and hip.weeks_since is not None:
            add(
                "hip_operation_weeks",
                "hip_replacement.weeks_since",
                hip.weeks_since,
                v=hip.weeks_since,
            )
        if form.osteoporosis:
            add("osteoporosis", "osteoporosis", "yes")
        if form.vertebral_fracture:
            add("vertebral_fracture", "vertebral_fracture", "yes")
        if form.back_pain is not None:
            if form.back_pain.weeks is None:
                add("back_pain_weeks_unknown", "back_pain", "weeks not given")
            else:
                add(
                    "back_pain_weeks",
                    "back_pain.weeks",
                    form.back_pain.weeks,
                    v=form.back_pain.weeks,
                )
            if form.back_pain.intensity is not None:
                add(
                    "back_pain_intensity",
                    "back_pain.intensity",
                    form.back_pain.intensity,
                    v=form.back_pain.intensity,
                )


def _painless_fall(form: IntakeForm) -> bool:
    """A fall is reported with no new pain and the person bearing weight, both stated."""
    fall = form.recent_fall
    # The form refuses new_pain / can_bear_weight without a fall, so these imply occurred.
    return fall is not None and fall.new_pain is False and fall.can_bear_weight is True
