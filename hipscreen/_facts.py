"""Engine facts: what a form says, flattened into facts the rules engine can match.

Each fact goes straight from the validated form into the engine's wire format (`encode_fact`,
with the attribute names rules use: the engine module owns the keys and the JSON), next to the
`Observation` a finding cites when that fact takes part in a firing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from hipscreen._engine import encode_fact, fact_head
from hipscreen._intake.form import IntakeForm
from hipscreen._results import InstrumentScore
from hipscreen._rules.tables import tables
from hipscreen._vocabulary import (
    Activity,
    ContextItem,
    Delivery,
    HipApproach,
    Measure,
    Muscle,
    MuscleGroup,
    RomMethod,
    RomMotion,
    Side,
    SignName,
    Symptom,
    TestName,
)

# The clinical tables (rules/tables.yaml): for a left/right difference, which side is the one of
# concern ("low": the lower value is); which measured length tests check a muscle's tightness.
_TABLES = tables()
_CONCERN_IS_LOW = _TABLES.concern_is_low
_LENGTH_TESTS = _TABLES.length_tests
_PREGNANCY_ONLY = _TABLES.pregnancy_only_symptoms

Grade = tuple[Muscle, Side, int, str]


class Observation(NamedTuple):
    """What one engine fact stands for in the form, so a finding can cite it as evidence."""

    field: str
    value: int | float | str
    side: Side | None
    measured: bool
    note: str | None = None
    cited: bool = True  # False for an absence (``unmeasured``): never evidence


_OVERRIDDEN = "self-rating: the measured length test of this muscle decides the finding"


# -- fact heads, built once: a form's facts are looked up here, never formatted per form --------

_new = tuple.__new__  # builds an `Observation` without a Python-level ``__new__`` call
_SIDES = tuple(Side)
# Enum members as module names: a member looked up on its class is a Python-level call on 3.11.
_LEFT, _RIGHT, _BOTH = Side.LEFT, Side.RIGHT, Side.BOTH
_TIGHTNESS = Measure.TIGHTNESS
_LOW_BACK_PAIN = Symptom.LOWER_BACK_PAIN
_FALL_TICK = Symptom.RECENT_FALL_OR_MINOR_TRAUMA
_TEST_NAMES = (*TestName, *SignName)


def _grade_heads(measure: Measure) -> dict[tuple[str, str], tuple[str, str]]:
    """(muscle, side) → (head when no length test decides, head when one does); the two are
    equal for a measure other than tightness, which alone has a ``length_tested`` attribute."""
    heads: dict[tuple[str, str], tuple[str, str]] = {}
    for muscle in Muscle:
        for side in _SIDES:
            attrs = (
                ("measure", measure),
                ("muscle", muscle),
                ("group", _TABLES.group_of[muscle]),
                ("side", side),
            )
            if measure == Measure.TIGHTNESS:
                heads[muscle, side] = (
                    fact_head("grade", *attrs, ("length_tested", "no")),
                    fact_head("grade", *attrs, ("length_tested", "yes")),
                )
            else:
                heads[muscle, side] = (fact_head("grade", *attrs),) * 2
    return heads


def _asym_heads() -> dict[tuple[str, str, str], str]:
    """(kind, name, side of concern) → head of the left/right difference fact."""
    heads: dict[tuple[str, str, str], str] = {}
    for side in (Side.LEFT, Side.RIGHT):
        for measure in Measure:
            for muscle in Muscle:
                heads[measure, muscle, side] = fact_head(
                    "asym",
                    ("measure", measure),
                    ("name", muscle),
                    ("side", side),
                    ("group", _TABLES.group_of[muscle]),
                )
        for kind, names in (("rom", tuple(RomMotion)), ("test", _TEST_NAMES)):
            for name in names:
                heads[kind, name, side] = fact_head(
                    "asym", ("measure", kind), ("name", name), ("side", side)
                )
    return heads


_GRADE_HEADS = {_measure: _grade_heads(_measure) for _measure in Measure}
_ASYM_HEADS = _asym_heads()
_ROM_HEADS = {
    (_motion, _side, _method): fact_head(
        "rom", ("motion", _motion), ("side", _side), ("method", str(_method))
    )
    for _motion in RomMotion
    for _side in _SIDES
    for _method in RomMethod
}
_UNMEASURED = tuple(
    (
        _motion,
        fact_head("unmeasured", ("name", _motion)),
        Observation(f"rom.{_motion}", "not measured", None, False, cited=False),
    )
    for _motion in RomMotion
)
_SIGN_HEADS = {
    (_name, _side): fact_head("sign", ("name", _name), ("side", _side))
    for _name in _TEST_NAMES
    for _side in _SIDES
}
# (test name, side, leg pain) → head; leg pain is "yes"/"no" for the straight-leg raise only.
_TEST_HEADS: dict[tuple[str, str, str | None], str] = {
    **{
        (_name, _side, None): fact_head("test", ("name", _name), ("side", _side))
        for _name in _TEST_NAMES
        for _side in _SIDES
    },
    **{
        ("straight_leg_raise", _side, _pain): fact_head(
            "test", ("name", "straight_leg_raise"), ("side", _side), ("leg_pain", _pain)
        )
        for _side in _SIDES
        for _pain in ("yes", "no")
    },
}
_SLR_PAIN = (
    fact_head("sign", ("name", "slr_reproduces_leg_pain")),
    Observation("straight_leg_raise.reproduces_leg_pain", "yes", None, True),
)
_SYMPTOM_HEADS = {_s: fact_head("symptom", ("name", _s)) for _s in Symptom}
_SYMPTOMS = {_s: (_SYMPTOM_HEADS[_s], Observation("symptoms", _s, None, False)) for _s in Symptom}
_BACK_PAIN = (
    _SYMPTOM_HEADS[Symptom.LOWER_BACK_PAIN],
    Observation("back_pain", "lower_back_pain", None, measured=False),
)
_ACTIVITIES = {
    _a: (fact_head("activity", ("name", _a)), Observation("activities", _a, None, False))
    for _a in Activity
}
_AGE_HEAD = fact_head("age")
_CONTEXT_HEADS = {
    _name: fact_head("context", ("name", _name))
    for _name in (
        "fall_without_injury_signs",
        "fall_with_new_pain",
        "pregnancy",
        "anticoagulant",
        "pregnancy_weeks_unknown",
        "pregnancy_weeks",
        "hip_operation_weeks",
        "osteoporosis",
        "vertebral_fracture",
        "back_pain_weeks_unknown",
        "back_pain_weeks",
        "back_pain_intensity",
        "osteoporosis_unknown",
        "anticoagulant_unknown",
        "age_unknown",
        "hip_replacement",
        "procedure_days",
        "procedure_timing_unknown",
        "procedure_pain_not_settled",
        "postpartum",
        "postpartum_weeks",
        "postpartum_weeks_unknown",
        "caesarean_delivery",
        "delivery_type_unknown",
        "new_back_pain",
    )
}
# Blank safety questions: "not asked", never "no". A rule may read them to say what an answer
# would change (issue 20); they are never evidence that something is absent.
_BLANKS = tuple(
    (
        attr,
        _CONTEXT_HEADS[f"{attr}_unknown"],
        Observation(attr, "not asked", None, False, cited=False),  # listed under not_assessed
    )
    for attr in ("osteoporosis", "anticoagulant", "age")
)
_HIP_HEADS = {
    (_approach, _side): fact_head(
        "context", ("name", f"hip_replacement_{_approach}"), ("side", _side)
    )
    for _approach in HipApproach
    for _side in _SIDES
}
_PAINLESS_FALL = Observation("recent_fall", "no new pain, bears weight", None, False)
_FALL_NEW_PAIN = Observation("recent_fall.new_pain", "yes", None, False)


def _length_tested(
    measurements: Sequence[tuple[str, Side, float | bool, str]],
) -> dict[str, set[Side]]:
    """For each length test given, the sides it covers (a value for both sides covers each)."""
    tested: dict[str, set[Side]] = {}
    for name, side, value, _path in measurements:
        if not isinstance(value, bool):
            covered = {_LEFT, _RIGHT, _BOTH} if side == _BOTH else {side}
            tested.setdefault(name, set()).update(covered)
    for sides in tested.values():
        if _LEFT in sides and _RIGHT in sides:
            sides.add(_BOTH)
    return tested


def _one_side_measured(tested: Mapping[str, set[Side]], muscle: Muscle) -> Side | None:
    """The one side (left or right) a length test of ``muscle`` measured, or None."""
    covered: set[Side] = set()
    for test in _LENGTH_TESTS.get(muscle, ()):
        covered |= tested.get(test, set())
    if _BOTH in covered or len(covered) != 1:
        return None
    return next(iter(covered))


# A name given on both sides with different values: (name, left, right, field path of the left).
_Pair = tuple[str, float, float, str]
# The last left-side value read: (name, value, field path).
_Left = tuple[str, float, str]


class FormFacts:
    """The engine facts for one form and the observation behind each (by index ``i``).

    ``grades`` are the form's grades per measure as `IntakeForm.grades` yields them (a muscle
    graded per side: its left grade, then its right). Each part of the form is read once; fact
    heads and constant observations come from the tables above, so a form costs one
    `encode_fact` and one tuple per fact.
    """

    def __init__(self, form: IntakeForm, grades: Mapping[Measure, Sequence[Grade]]) -> None:
        self.facts: list[str] = []
        self.observations: list[Observation] = []
        self.strength = grades[Measure.STRENGTH]
        """The form's strength grades (what a plan reads)."""
        self.scores: tuple[InstrumentScore, ...] = ()
        """The form's standard instruments, scored (`IntakeForm.instruments`)."""
        missing: list[str] = []  # what was not assessed, gathered on the same walk
        facts = self.facts
        observations = self.observations
        add_fact = facts.append
        add_observation = observations.append
        encode = encode_fact
        measurements = list(form.measurements())
        tested: dict[str, set[Side]] | None = None

        for measure, given in grades.items():
            tightness = measure == _TIGHTNESS
            heads = _GRADE_HEADS[measure]
            left: _Left | None = None
            pairs: list[_Pair] = []
            groups = 0  # the muscle groups graded, as a bit mask
            for muscle, side, grade, path in given:
                groups |= _GROUP_BIT[muscle]
                note = None
                length = False
                if tightness and side == _BOTH:
                    if tested is None:
                        tested = _length_tested(measurements)
                    split = _one_side_measured(tested, muscle)
                    if split is not None:
                        # Measured decides for its side only: a rating for both sides with one
                        # side length-tested reads as that rating on each side (issue 20).
                        for each in (_LEFT, _RIGHT):
                            length = each == split
                            add_fact(encode(len(facts), heads[muscle, each][length], grade))
                            add_observation(
                                Observation(
                                    path, grade, each, False, _OVERRIDDEN if length else None
                                )
                            )
                        continue
                if tightness:
                    # Measured outranks self-report: rules read a self-rated tightness only
                    # where no length test of that muscle was measured on that side.
                    if tested is None:
                        tested = _length_tested(measurements)
                    if tested:
                        for test in _LENGTH_TESTS.get(muscle, ()):  # a loop: no generator
                            if side in tested.get(test, ()):
                                length = True
                                note = _OVERRIDDEN
                                break
                # Grades are ints: `encode_fact`'s int form, written out (no call per grade).
                add_fact(f'{{"i":{len(facts)},{heads[muscle, side][length]},"v":{grade}')
                add_observation(_new(Observation, (path, grade, side, False, note, True)))
                if side == _LEFT:
                    left = (muscle, grade, path)
                elif side == _RIGHT and left and left[0] == muscle and left[1] != grade:
                    pairs.append((muscle, left[1], grade, left[2]))
            missing += _NOT_GRADED[measure, groups]
            if pairs:
                self._asymmetry(measure, measure, pairs, False)

        rom = form.rom
        if rom is not None:
            method = rom.method
            left = None
            pairs = []
            measured = 0  # the motions measured, as a bit mask
            for motion, side, degrees, path in form.angles():
                add_fact(encode(len(facts), _ROM_HEADS[motion, side, method], degrees))
                add_observation(_new(Observation, (path, degrees, side, True, None, True)))
                measured |= _MOTION_BIT[motion]
                if side == _LEFT:
                    left = (motion, degrees, path)
                elif side == _RIGHT and left and left[0] == motion and left[1] != degrees:
                    pairs.append((motion, left[1], degrees, left[2]))
            if pairs:
                self._asymmetry("rom", None, pairs, True)
            not_measured, unmeasured = _ROM_ABSENT[measured]
            missing += not_measured
        else:
            missing += _NO_ROM
            unmeasured = _ALL_UNMEASURED
        for head, observation in unmeasured:
            # Absence as a fact: a finding may be inferred only where nothing was measured.
            add_fact(f'{{"i":{len(facts)},{head}')  # `encode_fact` with no value, written out
            add_observation(observation)

        slr = form.straight_leg_raise
        if measurements:
            left = None
            pairs = []
            for name, side, value, path in measurements:
                if isinstance(value, bool):
                    if value:
                        add_fact(encode(len(facts), _SIGN_HEADS[name, side]))
                        add_observation(_new(Observation, (path, "yes", side, True, None, True)))
                    continue
                pain = None
                if name == "straight_leg_raise" and slr is not None:
                    pain = "yes" if slr.reproduces_leg_pain else "no"
                add_fact(encode(len(facts), _TEST_HEADS[name, side, pain], value))
                add_observation(_new(Observation, (path, value, side, True, None, True)))
                if side == _LEFT:
                    left = (name, value, path)
                elif side == _RIGHT and left and left[0] == name and left[1] != value:
                    pairs.append((name, left[1], value, left[2]))
            if pairs:
                self._asymmetry("test", None, pairs, True)
        if slr is not None and slr.reproduces_leg_pain:
            add_fact(encode(len(facts), _SLR_PAIN[0]))
            add_observation(_SLR_PAIN[1])

        symptoms = form.symptoms
        fall = form.recent_fall
        painless_fall = fall is not None and _painless_fall(form)
        for symptom in symptoms:
            if painless_fall and symptom == _FALL_TICK:
                # Stated: no new pain and walking normally. Read as fall_without_injury_signs.
                continue
            head, observation = _SYMPTOMS[symptom]
            add_fact(f'{{"i":{len(facts)},{head}')
            add_observation(observation)
        if fall is not None or form.recent_joint_procedure or form.joint_procedure is not None:
            self._stated(form, painless_fall)
        if (
            form.back_pain is not None
            and _LOW_BACK_PAIN in form.reported_symptoms()
            and _LOW_BACK_PAIN not in symptoms
        ):
            # Describing the back-pain episode reports low back pain, even if the symptom list
            # does not repeat it.
            add_fact(encode(len(facts), _BACK_PAIN[0]))
            add_observation(_BACK_PAIN[1])
        # One presentation, one meaning: rules/equivalences.yaml (issue 20).
        for kind, name, observation in normalised_reports(form):
            head = _SYMPTOM_HEADS[Symptom(name)] if kind == "symptom" else _CONTEXT_HEADS[name]
            add_fact(f'{{"i":{len(facts)},{head}')
            add_observation(observation)
        for activity in form.activities:
            head, observation = _ACTIVITIES[activity]
            add_fact(f'{{"i":{len(facts)},{head}')
            add_observation(observation)
        age = form.age
        if age is not None:
            add_fact(encode(len(facts), _AGE_HEAD, age))
            add_observation(_new(Observation, ("age", age, None, False, None, True)))
        if (
            symptoms
            or form.activities
            or fall is not None
            or form.back_pain is not None
            or form.joint_procedure is not None
        ):
            # Blanks are read only on a form that reports something beyond grades and
            # measurements (every built-in rule reading one also reads a symptom).
            for attr, head, observation in _BLANKS:
                if getattr(form, attr) is None:
                    add_fact(f'{{"i":{len(facts)},{head}')
                    add_observation(observation)
        if (
            form.pregnancy
            or form.postpartum is not None
            or form.joint_procedure is not None
            or form.recent_joint_procedure
            or Symptom.RECENT_SPINAL_OR_JOINT_PROCEDURE in symptoms
            or form.hip_replacement is not None
            or form.back_pain is not None
            or form.anticoagulant
            or form.osteoporosis
            or form.vertebral_fracture
            or (symptoms and not _PREGNANCY_ONLY.isdisjoint(symptoms))
        ):
            self._context(form)
        if form.instruments is not None:
            self.scores = form.instruments.scores()
            self._scores(self.scores)
        self.not_assessed: tuple[str, ...] = _not_assessed(form, measurements, missing)
        """Inputs the form leaves blank, in `Assessment.not_assessed` order."""

    def _scores(self, scores: Sequence[InstrumentScore]) -> None:
        """A standard instrument's score: its value when complete, its band when the missing
        items cannot change it (each a fact of its own, so an undetermined one matches nothing).
        Questionnaire answers are reported, not measured."""
        for score in scores:
            where = f"instruments.{score.instrument}"
            value = score.value
            if value is not None:
                shown = int(value) if value.is_integer() else value  # 8, not 8.0
                head = fact_head("score", ("instrument", score.instrument), ("part", "value"))
                self._add(head, Observation(where, shown, None, False), value)
            if score.band is not None:
                head = fact_head("score", ("instrument", score.instrument), ("band", score.band))
                self._add(head, Observation(where, score.band, None, False))

    def _add(self, head: str, observation: Observation, value: float | None = None) -> None:
        self.facts.append(encode_fact(len(self.observations), head, value))
        self.observations.append(observation)

    def _asymmetry(
        self, measure: str, concern_key: str | None, pairs: list[_Pair], measured: bool
    ) -> None:
        """A left/right difference fact for each name given on both sides with different
        values, citing the side of concern."""
        facts = self.facts
        observations = self.observations
        for name, left, right, path in pairs:
            low_is_concern = _CONCERN_IS_LOW[concern_key or name]
            concern = _LEFT if (left < right) == low_is_concern else _RIGHT
            facts.append(
                encode_fact(len(facts), _ASYM_HEADS[measure, name, concern], abs(left - right))
            )
            observations.append(
                _new(
                    Observation,
                    (
                        path.removesuffix(".left"),
                        f"left {left:g}, right {right:g}",
                        concern,
                        measured,
                        None,
                        True,
                    ),
                )
            )

    def _stated(self, form: IntakeForm, painless_fall: bool) -> None:
        """Facts from the form's yes/no/blank context fields (blank adds nothing)."""

        def symptom(name: Symptom, path: str, value: str) -> None:
            if name not in form.symptoms:  # the ticked symptom already stands for it
                self._add(_SYMPTOM_HEADS[name], Observation(path, value, None, False))

        fall = form.recent_fall
        if fall is not None and fall.occurred:
            if painless_fall:
                self._add(_CONTEXT_HEADS["fall_without_injury_signs"], _PAINLESS_FALL)
            else:
                symptom(Symptom.RECENT_FALL_OR_MINOR_TRAUMA, "recent_fall.occurred", "yes")
            if fall.new_pain:
                self._add(_CONTEXT_HEADS["fall_with_new_pain"], _FALL_NEW_PAIN)
            if fall.can_bear_weight is False:
                symptom(Symptom.UNABLE_TO_BEAR_WEIGHT, "recent_fall.can_bear_weight", "no")
        if form.recent_joint_procedure:
            symptom(Symptom.RECENT_SPINAL_OR_JOINT_PROCEDURE, "recent_joint_procedure", "yes")
        elif form.joint_procedure is not None:
            symptom(Symptom.RECENT_SPINAL_OR_JOINT_PROCEDURE, "joint_procedure", "yes")

    def _context(self, form: IntakeForm) -> None:
        def add(name: str, path: str, value: int | str, v: int | None = None) -> None:
            self._add(_CONTEXT_HEADS[name], Observation(path, value, None, False), v)

        implied = [s for s in form.symptoms if s in _PREGNANCY_ONLY]
        if not form.pregnancy and implied:
            # Only a pregnancy has these symptoms: read them as one rather than let them pass.
            add("pregnancy", "symptoms", implied[0])
        if form.anticoagulant:
            add("anticoagulant", "anticoagulant", "yes")
        if form.pregnancy:
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
        for name, observation, value in _procedure_facts(form):
            self._add(_CONTEXT_HEADS[name], observation, value)
        postpartum = form.postpartum
        if postpartum is not None:
            add("postpartum", "postpartum", "yes")
            if postpartum.weeks_since is None:
                add("postpartum_weeks_unknown", "postpartum", "weeks not given")
            else:
                weeks = postpartum.weeks_since
                add("postpartum_weeks", "postpartum.weeks_since", weeks, v=weeks)
            if postpartum.delivery == Delivery.CAESAREAN:
                add("caesarean_delivery", "postpartum.delivery", "caesarean")
            elif postpartum.delivery == Delivery.UNKNOWN:
                add("delivery_type_unknown", "postpartum", "delivery not given")
        hip = form.hip_replacement
        if hip is not None:
            # Any hip replacement, precautions lifted or not (a fall or dislocation reads it).
            add("hip_replacement", "hip_replacement", "yes")
        if hip is not None and not hip.precautions_lifted:
            self._add(
                _HIP_HEADS[hip.approach, hip.side],
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


# What `FormFacts.not_assessed` lists, formatted once from its wording (``not_assessed`` in
# rules/tables.yaml): per measure and set of muscle groups graded, the groups not graded; the
# motions not measured; the length tests and safety questions left blank.
_WORDING = _TABLES.not_assessed
_GROUP_SETS = [
    frozenset(g for i, g in enumerate(MuscleGroup) if mask >> i & 1)
    for mask in range(1 << len(MuscleGroup))
]
_NOT_GRADED = {
    (measure, mask): tuple(
        _WORDING.not_graded.format(measure=measure.value, group=g.value)
        for g in MuscleGroup
        if g not in given
    )
    for measure in Measure
    for mask, given in enumerate(_GROUP_SETS)
}
# Each muscle's group as the bit `_GROUP_SETS` indexes by.
_GROUP_BIT = {m: 1 << tuple(MuscleGroup).index(g) for m, g in _TABLES.group_of.items()}
_NOT_MEASURED = [(m, _WORDING.not_measured.format(motion=m.value)) for m in RomMotion]
_NO_ROM = tuple(text for _, text in _NOT_MEASURED)
# Per set of motions measured (a bit mask, `_MOTION_BIT`): the not-assessed lines and the
# ``unmeasured`` facts (head, observation) of the others, in vocabulary order.
_MOTION_BIT = {m: 1 << i for i, m in enumerate(RomMotion)}
_ROM_ABSENT = [
    (
        tuple(text for m, text in _NOT_MEASURED if not mask & _MOTION_BIT[m]),
        tuple((head, obs) for m, head, obs in _UNMEASURED if not mask & _MOTION_BIT[m]),
    )
    for mask in range(1 << len(RomMotion))
]
_ALL_UNMEASURED = _ROM_ABSENT[0][1]
_LENGTH_WORDING = tuple(
    (frozenset(t.value for t in entry.tests), entry.text) for entry in _WORDING.length_tests
)
_NO_LENGTH_TEST = tuple(text for _, text in _LENGTH_WORDING)
# The tri-state safety questions (issue 20): blank is listed here and never read as "no".
_SAFETY_TEXTS = tuple(_WORDING.safety_questions.values())
_SAFETY_NAMES = tuple(_WORDING.safety_questions)  # recent_fall among them (read below)
_read_safety: Callable[[IntakeForm], tuple[Any, ...]] = (
    attrgetter(*_SAFETY_NAMES)  # one tuple per form
    if len(_SAFETY_NAMES) > 1
    else lambda form: (getattr(form, _SAFETY_NAMES[0]),)
)
_FALL_QUESTION = _WORDING.safety_questions["recent_fall"]
_RED_FLAG_QUESTIONS = _WORDING.red_flag_questions


def _not_assessed(
    form: IntakeForm,
    measurements: Sequence[tuple[str, Side, float | bool, str]],
    missing: list[str],
) -> tuple[str, ...]:
    """``missing`` (the groups not graded and motions not measured, found while the facts were
    made) with the length tests and safety questions the form leaves blank."""
    if form.thomas_test is None and (
        form.straight_leg_raise is None and form.active_knee_extension is None
    ):  # no length test given
        missing += _NO_LENGTH_TEST
    else:
        tests = {name for name, *_ in measurements}  # an empty test record gives nothing
        missing += [text for names, text in _LENGTH_WORDING if tests.isdisjoint(names)]
    # The safety questions a red flag turns on: blank means not asked, never "no" (a loop: no
    # comprehension per form).
    for text, answer in zip(_SAFETY_TEXTS, _read_safety(form), strict=True):
        if answer is None:
            missing.append(text)
    if form.recent_fall is None and _FALL_TICK in form.symptoms:
        missing.remove(_FALL_QUESTION)  # the tick answers it
    if form.symptom_checklist_completed is not True:
        missing.append(_RED_FLAG_QUESTIONS)
    return tuple(missing)


def _procedure_facts(form: IntakeForm) -> list[tuple[str, Observation, int | None]]:
    """The timing of a recent joint procedure, read only when one is reported: days since it
    (or "timing unknown"), and "pain not settled" unless the form states it is not worsening."""
    procedure = form.joint_procedure
    if not (
        procedure is not None
        or form.recent_joint_procedure
        or Symptom.RECENT_SPINAL_OR_JOINT_PROCEDURE in form.symptoms
    ):
        return []
    facts: list[tuple[str, Observation, int | None]] = []
    days = procedure.days_since if procedure is not None else None
    # Absences (timing or course not asked) are never evidence: they are not on the form.
    if days is None:
        observation = Observation("joint_procedure", "timing not given", None, False, cited=False)
        facts.append(("procedure_timing_unknown", observation, None))
    else:
        observation = Observation("joint_procedure.days_since", days, None, False)
        facts.append(("procedure_days", observation, days))
    worsening = procedure.pain_worsening if procedure is not None else None
    if worsening:
        observation = Observation("joint_procedure.pain_worsening", "yes", None, False)
        facts.append(("procedure_pain_not_settled", observation, None))
    elif worsening is None:
        observation = Observation("joint_procedure", "course not asked", None, False, cited=False)
        facts.append(("procedure_pain_not_settled", observation, None))
    return facts


# -- one presentation, one meaning: the equivalence table (rules/equivalences.yaml) -------------

_BOUNDS = {
    "at_least": lambda v, n: v >= n,
    "at_most": lambda v, n: v <= n,
    "below": lambda v, n: v < n,
    "above": lambda v, n: v > n,
}


class EquivalenceTable(NamedTuple):
    """``rules/equivalences.yaml``: symptom implications, derivations and documented pairs."""

    implies: dict[str, tuple[str, ...]]
    derive: tuple[dict[str, Any], ...]
    equivalences: tuple[dict[str, Any], ...]


def load_equivalences(path: Path | None = None) -> EquivalenceTable:
    """Read and check the equivalence table; a problem names the entry, the key and the value."""
    from hipscreen._rules.builtin import builtin_rules_dir  # a leaf import: where the rules are
    from hipscreen._rules.safeyaml import _SafeLoader

    where = path or builtin_rules_dir() / "equivalences.yaml"
    data = yaml.load(where.read_text(encoding="utf-8"), Loader=_SafeLoader) or {}
    symptoms = {s.value for s in Symptom}
    contexts = {c.value for c in ContextItem}
    problems: list[str] = []
    implies: dict[str, tuple[str, ...]] = {}
    for name, implied in (data.get("implies") or {}).items():
        for item in [name, *implied]:
            if item not in symptoms:
                problems.append(f"implies.{name}: unknown symptom {item!r}")
        implies[name] = tuple(implied)
    derive = tuple(data.get("derive") or ())
    for i, entry in enumerate(derive):
        ((kind, name),) = entry["adds"].items()
        if (kind, name in symptoms if kind == "symptom" else name in contexts) != (kind, True):
            problems.append(f"derive.{i}.adds: unknown {kind} {name!r}")
        for key in ("when", "unless"):
            for field_path, test in (entry.get(key) or {}).items():
                if field_path == "reported":
                    if test not in symptoms:
                        problems.append(f"derive.{i}.{key}.reported: unknown symptom {test!r}")
                    continue
                for bound in test:
                    if bound not in _BOUNDS:
                        problems.append(
                            f"derive.{i}.{key}.{field_path}: unknown test {bound!r} "
                            f"(allowed: {', '.join(_BOUNDS)})"
                        )
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))
    return EquivalenceTable(implies, derive, tuple(data.get("equivalences") or ()))


def _field(form: IntakeForm, path: str) -> Any:
    node: Any = form
    for part in path.split("."):
        node = getattr(node, part, None)
        if node is None:
            return None
    return node


def _matches(form: IntakeForm, tests: Mapping[str, Any], reported: set[str]) -> bool:
    for path, test in tests.items():
        if path == "reported":
            if test not in reported:
                return False
            continue
        value = _field(form, path)
        if value is None:  # blank is not asked: it matches no bound
            return False
        if not all(_BOUNDS[bound](value, n) for bound, n in test.items()):
            return False
    return True


def normalised_reports(form: IntakeForm) -> list[tuple[str, str, Observation]]:
    """What the equivalence table adds to the form's own reports: (fact type, name, observation).

    Symptoms the form already reports (ticked, or low back pain from a described episode) are
    not repeated; a painless fall is not a fall tick here either.
    """
    table = _EQUIVALENCES
    if form.symptoms:
        if not _TRIGGERS.isdisjoint(form.symptoms):
            pass
        elif _blank_tops(form):
            return []
    elif _blank_tops(form):
        return []  # most forms: nothing the table reads
    ticked = {s.value for s in form.symptoms}
    if form.recent_fall is not None and _painless_fall(form):
        ticked.discard(Symptom.RECENT_FALL_OR_MINOR_TRAUMA.value)
    reported = {s.value for s in form.reported_symptoms()} & (
        ticked | {Symptom.LOWER_BACK_PAIN.value}
    )
    source: dict[str, Observation] = {s: Observation("symptoms", s, None, False) for s in ticked}
    if Symptom.LOWER_BACK_PAIN.value in reported and Symptom.LOWER_BACK_PAIN.value not in ticked:
        source[Symptom.LOWER_BACK_PAIN.value] = _BACK_PAIN[1]
    added: list[tuple[str, str, Observation]] = []
    for entry in table.derive:
        ((kind, name),) = entry["adds"].items()
        when = entry.get("when") or {}
        if kind != "symptom" or name in reported or not _matches(form, when, reported):
            continue
        first = next(iter(when))
        observation = Observation(first, _field(form, first), None, False)
        added.append((kind, name, observation))
        reported.add(name)
        source[name] = observation
    for name in sorted(reported):
        for implied in table.implies.get(name, ()):
            if implied not in reported:
                reported.add(implied)
                source[implied] = source[name]
                added.append(("symptom", implied, source[name]))
    for entry in table.derive:
        ((kind, name),) = entry["adds"].items()
        if kind != "context" or not _matches(form, entry.get("when") or {}, reported):
            continue
        unless = entry.get("unless")
        if unless and _matches(form, unless, reported):
            continue
        tested = next((v for k, v in (entry.get("when") or {}).items() if k == "reported"), None)
        cited = source.get(tested) if tested else None
        added.append((kind, name, cited or Observation("symptoms", name, None, False)))
    return added


_EQUIVALENCES = load_equivalences()
# What the table can read: the symptoms it tests or implies from, and the form blocks its field
# tests name (low back pain counts: a back_pain block reports it).
_TRIGGERS = frozenset(
    Symptom(name)
    for name in (
        *_EQUIVALENCES.implies,
        *(
            test
            for entry in _EQUIVALENCES.derive
            for key in ("when", "unless")
            for path, test in (entry.get(key) or {}).items()
            if path == "reported"
        ),
    )
)
_TOPS = tuple(
    sorted(
        {"back_pain"}
        | {
            path.split(".")[0]
            for entry in _EQUIVALENCES.derive
            for key in ("when", "unless")
            for path in (entry.get(key) or {})
            if path != "reported"
        }
    )
)
_read_tops = attrgetter(*_TOPS, "back_pain")  # always a tuple (two names at least)


def _blank_tops(form: IntakeForm) -> bool:
    """No form block the table's field tests read is given."""
    for top in _read_tops(form):  # noqa: SIM110 (a loop: no generator per form)
        if top is not None:
            return False
    return True


_SYMPTOM_ORDER = {s: i for i, s in enumerate(Symptom)}


def reported_symptoms(form: IntakeForm) -> tuple[Symptom, ...]:
    """The form's reported symptoms with what the equivalence table adds, in vocabulary order."""
    added = normalised_reports(form)
    if not added:  # most forms
        return form.reported_symptoms()
    extra = [Symptom(name) for kind, name, _ in added if kind == "symptom"]
    if not extra:
        return form.reported_symptoms()
    return tuple(sorted({*form.reported_symptoms(), *extra}, key=_SYMPTOM_ORDER.__getitem__))


def _painless_fall(form: IntakeForm) -> bool:
    """A fall is reported with no new pain and the person bearing weight, both stated."""
    fall = form.recent_fall
    # The form refuses new_pain / can_bear_weight without a fall, so these imply occurred.
    return fall is not None and fall.new_pain is False and fall.can_bear_weight is True
