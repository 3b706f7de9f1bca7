"""The evaluator's facts: what a validated `IntakeForm` says, read straight from its fields.

Written to be obviously right rather than fast, and apart from the engine's facts
(``hipscreen._facts``): its own tables of which side of a difference is of concern and which
length tests decide a muscle's tightness (tests/test_tables.py compares them with
``rules/tables.yaml``), so that the oracle tests compare two independent readings of the form.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hipscreen._facts import normalised_reports
from hipscreen._instruments.loader import builtin_instruments
from hipscreen._intake.form import IntakeForm
from hipscreen._rules.tables import tables
from hipscreen._vocabulary import (
    Side,
    Symptom,
)

SIDE_ORDER = (Side.LEFT, Side.RIGHT, Side.BOTH)

# For a left/right difference, the side of concern is the weaker, tighter or more restricted
# one: "low" means the lower value is the side of concern (domain reference §C IMB-ASYM).
CONCERN_IS_LOW: Mapping[str, bool] = {
    "strength": True,
    "tightness": False,
    "hip_flexion": True,
    "hip_extension": True,
    "thomas_hip_angle": False,  # thigh higher above horizontal: shorter hip flexors
    "thomas_knee_angle": True,  # less knee flexion: shorter rectus femoris
    "straight_leg_raise": True,
    "active_knee_extension_deficit": False,
}

# Which measured length tests check a muscle's tightness (domain reference §2): the modified
# Thomas test for the hip flexors, the straight-leg raise and active knee extension for the
# hamstrings. Gluteus maximus and adductor magnus have no length test on the form.
LENGTH_TESTS: Mapping[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("iliopsoas", "rectus_femoris", "sartorius", "hip_flexors"),
        ("thomas_hip_angle", "thomas_knee_angle"),
    ),
    **dict.fromkeys(
        ("hamstrings", "hip_extensors"), ("straight_leg_raise", "active_knee_extension_deficit")
    ),
}

# Numeric tests: (test name, form field, attribute of that field).
NUMERIC_TESTS = (
    ("thomas_hip_angle", "thomas_test", "hip_angle"),
    ("thomas_knee_angle", "thomas_test", "knee_angle"),
    ("straight_leg_raise", "straight_leg_raise", "angle"),
    ("active_knee_extension_deficit", "active_knee_extension", "deficit"),
)


class EvaluatorError(Exception):
    """The rule data holds something the evaluator was never taught to evaluate."""


@dataclass(eq=False)  # each fact is its own thing, even when two read alike
class OFact:
    """One thing the form says, with the attributes atoms test and what a finding would cite."""

    kind: str
    attrs: dict[str, str]
    value: float | None  # what bounds compare; None when the fact has no number
    side: Side | None  # the side a finding citing it names
    field: str  # evidence: the form field path
    shown: int | float | str  # evidence: the value as cited
    measured: bool
    note: bool = False  # evidence: cited with a note (a self-rating a measured test overrides)
    cited: bool = True  # False for an absence (``unmeasured``): it is never evidence


# -- facts from the validated form --------------------------------------------------------------


def _sided(value: Any) -> list[tuple[Side, Any]] | None:
    """[(side, value)] of a per-side model, or None when the value is for both sides at once."""
    if hasattr(value, "left") and hasattr(value, "right"):
        return [
            (s, getattr(value, s.value))
            for s in (Side.LEFT, Side.RIGHT)
            if getattr(value, s.value) is not None
        ]
    return None


def _asymmetry(
    facts: list[OFact],
    measure: str,
    name: str,
    concern_key: str,
    per_side: Mapping[Side, Any],
    field_path: str,
    measured: bool,
    group: str | None = None,
) -> None:
    if Side.LEFT not in per_side or Side.RIGHT not in per_side:
        return
    left, right = per_side[Side.LEFT], per_side[Side.RIGHT]
    if left == right:
        return
    low_is_concern = CONCERN_IS_LOW[concern_key]
    concern = Side.LEFT if (left < right) == low_is_concern else Side.RIGHT
    attrs = {"measure": measure, "name": name}
    if group is not None:
        attrs["group"] = group
    facts.append(
        OFact(
            "asym",
            attrs,
            abs(left - right),
            concern,
            field_path,
            f"left {left:g}, right {right:g}",
            measured,
        )
    )


def form_facts(form: IntakeForm) -> list[OFact]:
    """Every fact the validated form states, read from its fields."""
    facts: list[OFact] = []
    add = facts.append
    length_tested = _length_tested_sides(form)

    for measure in ("tightness", "strength"):
        table = getattr(form, measure)
        for muscle, given in table.items():
            group = tables().group_of[muscle].value
            base = {"measure": measure, "muscle": muscle.value, "group": group}
            sides = _sided(given)
            pairs = sides if sides is not None else [(Side.BOTH, given)]
            tests = LENGTH_TESTS.get(muscle.value, ())
            measured_sides = set().union(*(length_tested.get(t, set()) for t in tests))
            if measure == "tightness" and sides is None and len(measured_sides) == 1:
                # One side length-tested: the both-sides rating is read on each side, and the
                # measurement decides for its own side only.
                for side in (Side.LEFT, Side.RIGHT):
                    note = side in measured_sides
                    attrs = {**base, "side": side.value, "length_tested": "yes" if note else "no"}
                    path = f"{measure}.{muscle.value}"
                    add(OFact("grade", attrs, given, side, path, given, False, note=note))
                continue
            for side, grade in pairs:
                path = f"{measure}.{muscle.value}" + (f".{side.value}" if sides is not None else "")
                attrs = {**base, "side": side.value}
                note = False
                if measure == "tightness":
                    # Measured outranks self-report: the self-rating counts only where no length
                    # test of that muscle was measured on that side.
                    tests = LENGTH_TESTS.get(muscle.value, ())
                    note = any(side in length_tested.get(test, ()) for test in tests)
                    attrs["length_tested"] = "yes" if note else "no"
                add(OFact("grade", attrs, grade, side, path, grade, False, note=note))
            _asymmetry(
                facts,
                measure,
                muscle.value,
                measure,
                dict(pairs),
                f"{measure}.{muscle.value}",
                False,
                group,
            )

    rom = form.rom
    for motion in ("hip_flexion", "hip_extension"):
        given = getattr(rom, motion) if rom is not None else None
        if given is None:
            # Absence is a fact too; it is never cited as evidence.
            add(OFact("unmeasured", {"name": motion}, None, None, "", "", False, cited=False))
            continue
        assert rom is not None
        sides = _sided(given)
        pairs = sides if sides is not None else [(Side.BOTH, given)]
        for side, degrees in pairs:
            path = f"rom.{motion}" + (f".{side.value}" if sides is not None else "")
            attrs = {"motion": motion, "side": side.value, "method": rom.method.value}
            add(OFact("rom", attrs, degrees, side, path, degrees, True))
        _asymmetry(facts, "rom", motion, motion, dict(pairs), f"rom.{motion}", True)

    slr = form.straight_leg_raise
    for name, field_name, attr in NUMERIC_TESTS:
        record = getattr(form, field_name)
        given = getattr(record, attr) if record is not None else None
        if given is None:
            continue
        sides = _sided(given)
        pairs = sides if sides is not None else [(Side.BOTH, given)]
        for side, value in pairs:
            path = f"{field_name}.{attr}" + (f".{side.value}" if sides is not None else "")
            test = {"name": name, "side": side.value}
            if name == "straight_leg_raise" and slr is not None:
                test["leg_pain"] = "yes" if slr.reproduces_leg_pain else "no"
            add(OFact("test", test, value, side, path, value, True))
        _asymmetry(facts, "test", name, name, dict(pairs), f"{field_name}.{attr}", True)

    thomas = form.thomas_test
    abducts = thomas.thigh_abducts if thomas is not None else None
    if abducts is not None:
        sides = _sided(abducts)
        for side, flag in sides if sides is not None else [(Side.BOTH, abducts)]:
            if flag:
                path = "thomas_test.thigh_abducts" + (f".{side.value}" if sides else "")
                add(OFact("sign", {"name": "thomas_thigh_abducts"}, None, side, path, "yes", True))
    if slr is not None and slr.reproduces_leg_pain:
        add(
            OFact(
                "sign",
                {"name": "slr_reproduces_leg_pain"},
                None,
                None,
                "straight_leg_raise.reproduces_leg_pain",
                "yes",
                True,
            )
        )

    def symptom(name: str, path: str, shown: str) -> None:
        add(OFact("symptom", {"name": name}, None, None, path, shown, False))

    def context(
        name: str, path: str, shown: int | str, value: int | None = None, side: Side | None = None
    ) -> None:
        add(OFact("context", {"name": name}, value, side, path, shown, False))

    ticked = {s.value for s in form.symptoms}
    fall = form.recent_fall
    # A fall stated with no new pain and normal weight bearing is read as a fall without injury
    # signs, even when the fall symptom is ticked too.
    painless_fall = fall is not None and fall.new_pain is False and fall.can_bear_weight is True
    for name in ticked if not painless_fall else ticked - {"recent_fall_or_minor_trauma"}:
        symptom(name, "symptoms", name)
    if fall is not None and fall.occurred:
        if painless_fall:
            context("fall_without_injury_signs", "recent_fall", "no new pain, bears weight")
        elif "recent_fall_or_minor_trauma" not in ticked:
            symptom("recent_fall_or_minor_trauma", "recent_fall.occurred", "yes")
        if fall.new_pain:
            context("fall_with_new_pain", "recent_fall.new_pain", "yes")
        if fall.can_bear_weight is False and "unable_to_bear_weight" not in ticked:
            symptom("unable_to_bear_weight", "recent_fall.can_bear_weight", "no")
    if form.recent_joint_procedure and "recent_spinal_or_joint_procedure" not in ticked:
        symptom("recent_spinal_or_joint_procedure", "recent_joint_procedure", "yes")
    elif form.joint_procedure is not None and "recent_spinal_or_joint_procedure" not in ticked:
        symptom("recent_spinal_or_joint_procedure", "joint_procedure", "yes")
    back = form.back_pain
    describes_back_pain = back is not None and (back.intensity is None or back.intensity > 0)
    if describes_back_pain and "lower_back_pain" not in ticked:
        symptom("lower_back_pain", "back_pain", "lower_back_pain")
    # One presentation, one meaning: the same table the engine path reads (rules/equivalences.yaml).
    for kind, name, observation in normalised_reports(form):
        shown = observation.value
        add(OFact(kind, {"name": name}, None, None, observation.field, shown, False))
    for activity in form.activities:
        add(
            OFact(
                "activity",
                {"name": activity.value},
                None,
                None,
                "activities",
                activity.value,
                False,
            )
        )
    if form.age is not None:
        add(OFact("age", {}, form.age, None, "age", form.age, False))

    reports = form.symptoms or form.activities or form.recent_fall is not None
    reports = reports or form.back_pain is not None
    for attr in ("osteoporosis", "anticoagulant", "age"):
        # Blank: not asked, never "no" (read only when the form reports something).
        if (reports or form.joint_procedure is not None) and getattr(form, attr) is None:
            add(
                OFact(
                    "context", {"name": f"{attr}_unknown"}, None, None, "", "", False, cited=False
                )
            )
    if form.pregnancy:
        context("pregnancy", "pregnancy", "yes")
        weeks = form.pregnancy.weeks
        if weeks is None:
            context("pregnancy_weeks_unknown", "pregnancy", "weeks not given")
        else:
            context("pregnancy_weeks", "pregnancy.weeks", weeks, weeks)
    else:
        # Symptoms only a pregnancy has imply one (the first, in vocabulary order, is cited).
        only = tables().pregnancy_only_symptoms
        implied = [s.value for s in Symptom if s in only and s.value in ticked]
        if implied:
            context("pregnancy", "symptoms", implied[0])
    if form.anticoagulant:
        context("anticoagulant", "anticoagulant", "yes")
    procedure = form.joint_procedure
    if (
        procedure is not None
        or form.recent_joint_procedure
        or "recent_spinal_or_joint_procedure" in ticked
    ):
        days = procedure.days_since if procedure is not None else None
        if days is None:
            add(
                OFact(
                    "context",
                    {"name": "procedure_timing_unknown"},
                    None,
                    None,
                    "",
                    "",
                    False,
                    cited=False,
                )
            )
        else:
            context("procedure_days", "joint_procedure.days_since", days, days)
        worsening = procedure.pain_worsening if procedure is not None else None
        if worsening:
            context("procedure_pain_not_settled", "joint_procedure.pain_worsening", "yes")
        elif worsening is None:
            add(
                OFact(
                    "context",
                    {"name": "procedure_pain_not_settled"},
                    None,
                    None,
                    "",
                    "",
                    False,
                    cited=False,
                )
            )
    postpartum = form.postpartum
    if postpartum is not None:
        context("postpartum", "postpartum", "yes")
        if postpartum.weeks_since is None:
            context("postpartum_weeks_unknown", "postpartum", "weeks not given")
        else:
            context(
                "postpartum_weeks",
                "postpartum.weeks_since",
                postpartum.weeks_since,
                postpartum.weeks_since,
            )
        if postpartum.delivery.value == "caesarean":
            context("caesarean_delivery", "postpartum.delivery", "caesarean")
        elif postpartum.delivery.value == "unknown":
            context("delivery_type_unknown", "postpartum", "delivery not given")
    hip = form.hip_replacement
    if hip is not None:
        context("hip_replacement", "hip_replacement", "yes")
    if hip is not None and not hip.precautions_lifted:
        context(
            f"hip_replacement_{hip.approach.value}",
            "hip_replacement.approach",
            hip.approach.value,
            side=hip.side,
        )
    if hip is not None and hip.weeks_since is not None:
        context(
            "hip_operation_weeks", "hip_replacement.weeks_since", hip.weeks_since, hip.weeks_since
        )
    if form.osteoporosis:
        context("osteoporosis", "osteoporosis", "yes")
    if form.vertebral_fracture:
        context("vertebral_fracture", "vertebral_fracture", "yes")
    if back is not None:
        if back.weeks is None:
            context("back_pain_weeks_unknown", "back_pain", "weeks not given")
        else:
            context("back_pain_weeks", "back_pain.weeks", back.weeks, back.weeks)
        if back.intensity is not None:
            context("back_pain_intensity", "back_pain.intensity", back.intensity, back.intensity)
    if form.instruments is not None:
        for instrument, value, band in instrument_scores(form):
            where = f"instruments.{instrument}"
            if value is not None:
                attrs = {"instrument": instrument, "part": "value"}
                shown = int(value) if float(value).is_integer() else value
                add(OFact("score", attrs, value, None, where, shown, False))
            if band is not None:
                attrs = {"instrument": instrument, "band": band}
                add(OFact("score", attrs, None, None, where, band, False))
    return facts


def instrument_scores(form: IntakeForm) -> list[tuple[str, float | None, str | None]]:
    """(instrument, value, band) per instrument given, scored from the definitions' data
    (``rules/instruments``) by brute force: the value only when every item is answered, the band
    only when every completion of the missing items falls in the same one."""
    assert form.instruments is not None
    out: list[tuple[str, float | None, str | None]] = []
    for instrument, entry in form.instruments.entries():
        spec = builtin_instruments()[instrument]
        formula = spec.scoring.formula
        if entry.items is None:
            assert entry.score is not None
            value = entry.score
            band = entry.band
            if band is None and formula == "start_back":
                band = "low" if value <= 3 else None
            elif band is None and formula == "parq":
                band = "cleared" if value == 0 else "not_cleared"
            elif band is None:
                band = _value_band(spec, value)
            out.append((instrument, value, band))
            continue
        answers = {k: int(v) for k, v in entry.items.items()}
        if formula == "mean":
            mean = round(sum(answers.values()) / len(answers), 3) if answers else None
            out.append((instrument, mean, None if mean is None else _value_band(spec, mean)))
            continue
        missing = [i for i in spec.items.ids if i not in answers]
        # Every completion of the missing items, as the multiset of their possible points.
        options = []
        for item in missing:
            scale = spec.items.scale_of(item)
            options.append(range(scale.low, scale.high + 1))
        outcomes: set[tuple[float | None, str | None]] = set()
        if spec.items.reverse:
            raise EvaluatorError(f"{instrument}: reverse-scored items are unknown to the evaluator")
        for fill in _completions(options, formula in ("sum", "table", "value")):
            full = {**answers, **dict(zip(missing, fill, strict=True))}
            outcomes.add(_score_full(spec, full))
        bands = {band for _, band in outcomes}
        scored = next(iter(outcomes))[0] if not missing else None
        out.append((instrument, scored, bands.pop() if len(bands) == 1 else None))
    return out


def _completions(options: list[range], summed: bool) -> Iterator[tuple[int, ...]]:
    """Every completion, except that items with the same range are interchangeable in a sum:
    beyond 6 missing items of a summed score only the combinations (not orderings) are tried."""
    if not summed or len(options) <= 6 or len({(r.start, r.stop) for r in options}) > 1:
        yield from itertools.product(*options)
    else:
        yield from itertools.combinations_with_replacement(options[0], len(options))


def _value_band(spec: Any, value: float) -> str | None:
    for band in spec.bands:
        if band.holds(value):
            return str(band.name)
    return None


def _score_full(spec: Any, answers: Mapping[str, int]) -> tuple[float | None, str | None]:
    formula = spec.scoring.formula
    if formula == "start_back":
        points = {k: (int(v >= 3) if k == "9" else v) for k, v in answers.items()}
        total = sum(points.values())
        distress = sum(points[k] for k in ("5", "6", "7", "8", "9"))
        band = "low" if total <= 3 else "high" if distress >= 4 else "medium"
        return total, band
    if formula == "parq":
        yes = sum(answers.values())
        return yes, "not_cleared" if yes else "cleared"
    raw = sum(answers.values())
    value = spec.scoring.table.get(raw) if formula == "table" else float(raw)
    return value, None if value is None else _value_band(spec, value)


def _length_tested_sides(form: IntakeForm) -> dict[str, set[Side]]:
    """For each length test with a measured value, the sides a grade may be read on as tested:
    a value for both sides covers left, right and both; left and right values cover both too."""
    tested: dict[str, set[Side]] = {}
    for name, field_name, attr in NUMERIC_TESTS:
        record = getattr(form, field_name)
        given = getattr(record, attr) if record is not None else None
        if given is None:
            continue
        sides = _sided(given)
        covered = {s for s, _ in sides} if sides is not None else set(SIDE_ORDER)
        if {Side.LEFT, Side.RIGHT} <= covered:
            covered.add(Side.BOTH)
        tested[name] = covered
    return tested
