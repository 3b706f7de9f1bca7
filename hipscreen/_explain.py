"""Why a rule fired, and why it did not: a pure-Python evaluator of the rule data.

The engine decides every finding. This module explains them: it evaluates the parsed rule data
(``hipscreen._ruledata``) on the validated `IntakeForm` directly, written to be obviously right,
not fast, and sharing nothing with the engine path but those two models:

* its facts come straight from the form's fields (not from ``hipscreen._facts``);
* it evaluates each condition tree itself (not through ``alternatives()`` or the engine
  compiler) and chains findings to a fixpoint (conditions are positive, so the fixpoint is the
  least one and independent of rule order);
* it refuses, loudly, any condition node, atom type, atom attribute or atom field it does not
  know (`EvaluatorError`): a new kind of rule must be taught here, never silently agreed with.

The test suite checks that `Evaluator.assess` and `Screener.assess` give the same findings for
every generated form (tests/test_oracle.py), and `explain` refuses to explain an assessment its
own evaluation disagrees with, so an explanation never contradicts the finding it explains.

What `Evaluator.assess` computes per finding: id, severity (escalations included), the sides and
the evidence of every fact that took part in a satisfied alternative, the findings it was derived
from, and its confidence (measured when any evidence is measured, or when it rests on a measured
finding).

Numbers are compared exactly as given (thresholds have at most three decimals and the engine
compares the very doubles Python holds), so 99.9996° is "below 100°". Left/right differences
are computed on the given values.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hipscreen._errors import HipscreenError
from hipscreen._facts import normalised_reports
from hipscreen._form import IntakeForm
from hipscreen._instruments.loader import builtin_instruments
from hipscreen._ruledata import AllOf, AnyOf, Atom, Condition, Rule, RuleSet
from hipscreen._tables import tables
from hipscreen._vocabulary import (
    Confidence,
    Severity,
    Side,
    Symptom,
    suggest,
)

if TYPE_CHECKING:
    from hipscreen._results import Assessment
    from hipscreen._screen import Screener

SIDE_ORDER = (Side.LEFT, Side.RIGHT, Side.BOTH)

# What the evaluator knows about the parsed model. Anything else is an `EvaluatorError`.
KNOWN_ATOM_FIELDS = frozenset(
    {"fact", "equals", "one_of", "at_least", "at_most", "below", "above", "describe"}
)
KNOWN_ATTRIBUTES: Mapping[str, frozenset[str]] = {
    "grade": frozenset({"measure", "muscle", "group", "side", "length_tested"}),
    "rom": frozenset({"motion", "method", "side"}),
    "test": frozenset({"name", "side", "leg_pain"}),
    "sign": frozenset({"name"}),
    "symptom": frozenset({"name"}),
    "activity": frozenset({"name"}),
    "context": frozenset({"name"}),
    "asym": frozenset({"measure", "group"}),
    "age": frozenset(),
    "finding": frozenset({"id"}),
    "unmeasured": frozenset({"name"}),
    "score": frozenset({"instrument", "band", "part"}),
}

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


Evidence = tuple[str, Any, str | None, bool, str | None]
"""(field, value, threshold met, has a note, via: the finding it made fire, for a derived one)."""


@dataclass(frozen=True)
class EvaluatedFinding:
    id: str
    severity: Severity
    sides: tuple[Side, ...]
    derived_from: tuple[str, ...]
    confidence: Confidence
    evidence: frozenset[Evidence]


@dataclass
class _Support:
    """What a satisfied condition rests on."""

    facts: dict[tuple[OFact, str | None], None] = field(default_factory=dict)  # (fact, describe)
    findings: set[str] = field(default_factory=set)

    def absorb(self, other: _Support) -> None:
        self.facts.update(other.facts)
        self.findings |= other.findings


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
            base = {"measure": measure, "muscle": muscle.value, "group": muscle.group.value}
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
                muscle.group.value,
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


# -- the rule data --------------------------------------------------------------------------------


def walk(condition: Condition) -> Iterator[Atom]:
    """Every atom of a condition tree; refuses node types the evaluator does not know."""
    if isinstance(condition, Atom):
        yield condition
    elif isinstance(condition, AllOf | AnyOf):
        if not condition.items:
            raise EvaluatorError(f"empty {type(condition).__name__}")
        for item in condition.items:
            yield from walk(item)
    else:
        raise EvaluatorError(f"unknown condition node {type(condition).__name__}: {condition!r}")


def check_atom(atom: Atom, where: str) -> None:
    """Refuse an atom the evaluator cannot evaluate faithfully."""
    names = {f.name for f in dataclasses.fields(atom)}
    unknown_fields = names - KNOWN_ATOM_FIELDS
    if unknown_fields:
        raise EvaluatorError(
            f"{where}: atom fields {sorted(unknown_fields)} are unknown to the evaluator "
            "(teach hipscreen/_explain.py what they mean)"
        )
    known = KNOWN_ATTRIBUTES.get(atom.fact)
    if known is None:
        raise EvaluatorError(
            f"{where}: unknown atom type {atom.fact!r} (known: {', '.join(KNOWN_ATTRIBUTES)})"
        )
    attrs = [attr for attr, _ in atom.equals]
    if atom.one_of is not None:
        attrs.append(atom.one_of[0])
    for attr in attrs:
        if attr not in known:
            raise EvaluatorError(f"{where}: {atom.fact} atom tests unknown attribute {attr!r}")
    if atom.fact == "finding" and (
        set(attrs) != {"id"} or atom.one_of is not None or _bounds(atom)
    ):
        raise EvaluatorError(f"{where}: a finding atom must test its id only: {atom!r}")


def _bounds(atom: Atom) -> list[tuple[str, float]]:
    return [
        (op, bound)
        for op, bound in (
            ("at_least", atom.at_least),
            ("at_most", atom.at_most),
            ("below", atom.below),
            ("above", atom.above),
        )
        if bound is not None
    ]


def _within(value: float, op: str, bound: float) -> bool:
    if op == "at_least":
        return value >= bound
    if op == "at_most":
        return value <= bound
    if op == "below":
        return value < bound
    if op == "above":
        return value > bound
    raise EvaluatorError(f"unknown bound {op!r}")


def atom_matches(atom: Atom, fact: OFact) -> bool:
    """Does this (non-finding) fact satisfy the atom?"""
    if fact.kind != atom.fact:
        return False
    if any(fact.attrs.get(attr) != value for attr, value in atom.equals):
        return False
    if atom.one_of is not None and fact.attrs.get(atom.one_of[0]) not in atom.one_of[1]:
        return False
    bounds = _bounds(atom)
    if bounds and fact.value is None:
        return False
    return all(_within(fact.value, op, bound) for op, bound in bounds if fact.value is not None)


def conjunctions(condition: Condition) -> list[tuple[Atom, ...]]:
    """The condition's alternatives (disjunctive normal form), each a conjunction of atoms."""
    if isinstance(condition, Atom):
        return [(condition,)]
    if isinstance(condition, AnyOf):
        return [alt for item in condition.items for alt in conjunctions(item)]
    if isinstance(condition, AllOf):
        combined: list[tuple[Atom, ...]] = [()]
        for item in condition.items:
            combined = [done + alt for done in combined for alt in conjunctions(item)]
        return combined
    raise EvaluatorError(f"unknown condition node {type(condition).__name__}")


def _interval(atom: Atom) -> tuple[float, float]:
    low, high = float("-inf"), float("inf")
    for op, bound in _bounds(atom):
        if op in ("at_least", "above"):
            low = max(low, bound)
        else:
            high = min(high, bound)
    return low, high


def could_share_a_fact(a: Atom, b: Atom) -> bool:
    """Could one fact satisfy both atoms (conservatively: bounds only rule it out when their
    ranges cannot meet)?"""
    if a.fact != b.fact:
        return False
    tests_a, tests_b = dict(a.equals), dict(b.equals)
    if any(tests_b.get(attr, value) != value for attr, value in tests_a.items()):
        return False
    for atom, other in ((a, tests_b), (b, tests_a)):
        if (
            atom.one_of is not None
            and other.get(atom.one_of[0], atom.one_of[1][0]) not in (atom.one_of[1])
        ):
            return False
    if (
        a.one_of is not None
        and b.one_of is not None
        and a.one_of[0] == b.one_of[0]
        and not set(a.one_of[1]) & set(b.one_of[1])
    ):
        return False
    (low_a, high_a), (low_b, high_b) = _interval(a), _interval(b)
    return max(low_a, low_b) <= min(high_a, high_b)


def shared_fact_conjunctions(ruleset: RuleSet) -> list[tuple[str, Atom, Atom]]:
    """Alternatives in which one fact could satisfy two atoms: (rule id, atom, atom).

    The engine binds every pattern of a rule to a different fact, so such an alternative fires
    only when the form has two distinct matching facts (see the xfail test in test_oracle.py);
    the rule data means the conjunction, which one fact can satisfy.
    """
    found = []
    for rule in ruleset.rules:
        self_atom = Atom("finding", (("id", rule.id),))
        alternatives = conjunctions(rule.condition)
        for _, condition in rule.escalations:
            alternatives += [(self_atom, *alt) for alt in conjunctions(condition)]
        for alt in alternatives:
            for i, a in enumerate(alt):
                found += [(rule.id, a, b) for b in alt[i + 1 :] if could_share_a_fact(a, b)]
    return found


# -- evaluation -----------------------------------------------------------------------------------


class Evaluator:
    """The findings a `RuleSet` implies for a form, computed directly from the rule data."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.rules: tuple[Rule, ...] = ruleset.rules
        self.order = {rule.id: i for i, rule in enumerate(self.rules)}
        refs: dict[str, set[str]] = {}
        for rule in self.rules:
            conditions = [("when", rule.condition)]
            conditions += [(f"escalate.{k}", c) for k, (_, c) in enumerate(rule.escalations)]
            for where, condition in conditions:
                for atom in walk(condition):
                    check_atom(atom, f"{rule.file} {rule.id} {where}")
                    if atom.fact == "finding":
                        ref = dict(atom.equals)["id"]
                        if ref not in self.order:
                            raise EvaluatorError(f"{rule.id}: chains on unknown finding {ref!r}")
                        if where == "when":
                            refs.setdefault(rule.id, set()).add(ref)
        self.chained = self._chain_order(refs)

    def _chain_order(self, refs: Mapping[str, set[str]]) -> tuple[Rule, ...]:
        """The rules, each after every finding its condition chains on (forward chaining then
        needs one pass); a cycle is an error (the loader refuses them too)."""
        done: dict[str, None] = {}
        visiting: set[str] = set()

        def visit(rule_id: str) -> None:
            if rule_id in done:
                return
            if rule_id in visiting:
                raise EvaluatorError(f"findings chain in a cycle through {rule_id!r}")
            visiting.add(rule_id)
            for ref in sorted(refs.get(rule_id, ()), key=self.order.__getitem__):
                visit(ref)
            visiting.discard(rule_id)
            done[rule_id] = None

        for rule in self.rules:
            visit(rule.id)
        return tuple(self.rules[self.order[rule_id]] for rule_id in done)

    def _support(
        self, condition: Condition, facts: Mapping[str, Sequence[OFact]], fired: set[str]
    ) -> _Support | None:
        """What the condition rests on, or None when it does not hold."""
        if isinstance(condition, Atom):
            if condition.fact == "finding":
                ref = dict(condition.equals)["id"]
                return _Support(findings={ref}) if ref in fired else None
            matched = [f for f in facts.get(condition.fact, ()) if atom_matches(condition, f)]
            if not matched:
                return None
            return _Support(facts={(f, condition.describe): None for f in matched if f.cited})
        if isinstance(condition, AllOf):
            support = _Support()
            for item in condition.items:
                part = self._support(item, facts, fired)
                if part is None:
                    return None
                support.absorb(part)
            return support
        if isinstance(condition, AnyOf):
            parts = [self._support(item, facts, fired) for item in condition.items]
            held = [part for part in parts if part is not None]
            if not held:
                return None
            support = _Support()
            for part in held:
                support.absorb(part)
            return support
        raise EvaluatorError(f"unknown condition node {type(condition).__name__}")

    def holds(
        self, condition: Condition, facts: Mapping[str, Sequence[OFact]], fired: set[str]
    ) -> bool:
        """Does the condition hold on these facts, given the findings that fired?"""
        return self._support(condition, facts, fired) is not None

    def fire(
        self, intake: IntakeForm
    ) -> tuple[dict[str, list[OFact]], set[str], dict[str, _Support]]:
        """The form's facts by kind, the rules that fire, and what each rests on."""
        facts: dict[str, list[OFact]] = {}
        for fact in form_facts(intake):
            facts.setdefault(fact.kind, []).append(fact)
        # Forward chaining: in chain order, every finding a condition reads is already decided.
        fired: set[str] = set()
        supports: dict[str, _Support] = {}
        for rule in self.chained:
            support = self._support(rule.condition, facts, fired)
            if support is not None:
                fired.add(rule.id)
                supports[rule.id] = support
        return facts, fired, supports

    def assess(self, form: IntakeForm | Mapping[str, Any]) -> list[EvaluatedFinding]:
        """The findings, most severe first, then in rule order (as `Assessment.findings`)."""
        intake = form if isinstance(form, IntakeForm) else IntakeForm.model_validate(dict(form))
        facts, fired, supports = self.fire(intake)
        # Escalations only raise the severity of a finding that fired; they may read any finding.
        drafts: dict[str, tuple[Severity, _Support]] = {}
        for rule_id, support in supports.items():
            rule = self.rules[self.order[rule_id]]
            severity = rule.spec.severity
            for raised, condition in rule.escalations:
                more = self._support(condition, facts, fired)
                if more is not None:
                    support.absorb(more)
                    if raised.rank > severity.rank:
                        severity = raised
            support.findings.discard(rule.id)
            drafts[rule.id] = (severity, support)

        measured = {rid for rid, (_, s) in drafts.items() if any(f.measured for f, _ in s.facts)}
        changed = True
        while changed:
            changed = False
            for rid, (_, support) in drafts.items():
                if rid not in measured and support.findings & measured:
                    measured.add(rid)
                    changed = True

        own: dict[str, set[Evidence]] = {
            rid: {(f.field, f.shown, d, f.note, None) for f, d in support.facts}
            for rid, (_, support) in drafts.items()
        }
        below: dict[str, set[Evidence]] = {}

        def inherited(rid: str) -> set[Evidence]:
            """The input evidence of every finding ``rid`` rests on, directly or through a chain,
            each marked ``via`` the finding that input made fire."""
            if rid not in below:
                below[rid] = set()
                for ref in drafts[rid][1].findings:
                    below[rid] |= {(*e[:4], ref) for e in own[ref]} | inherited(ref)
            return below[rid]

        findings = []
        for rid in sorted(drafts, key=lambda r: (-drafts[r][0].rank, self.order[r])):
            severity, support = drafts[rid]
            sides = {f.side for f, _ in support.facts if f.side is not None}
            mine = {e[:4] for e in own[rid]}
            evidence = own[rid] | {e for e in inherited(rid) if e[:4] not in mine}
            findings.append(
                EvaluatedFinding(
                    id=rid,
                    severity=severity,
                    sides=tuple(s for s in SIDE_ORDER if s in sides),
                    derived_from=tuple(sorted(support.findings, key=self.order.__getitem__)),
                    confidence=Confidence.MEASURED if rid in measured else Confidence.REPORTED,
                    evidence=frozenset(evidence),
                )
            )
        return findings


def summary(findings: Iterable[Any]) -> list[tuple[Any, ...]]:
    """Comparable tuples for evaluator findings or `hipscreen.Finding` objects alike."""
    rows = []
    for f in findings:
        evidence = f.evidence
        if not isinstance(evidence, frozenset):
            evidence = frozenset(
                (e.field, e.value, e.threshold, e.note is not None, e.via) for e in evidence
            )
        rows.append(
            (
                f.id,
                Severity(f.severity),
                tuple(Side(s) for s in f.sides),
                tuple(f.derived_from),
                Confidence(f.confidence),
                evidence,
            )
        )
    return rows


# -- explanations: why a rule fired, why it did not ------------------------------------------------


class ExplanationError(HipscreenError, ValueError):
    """A rule cannot be explained for this assessment: an unknown rule id, a rule set other than
    the one the assessment was screened with, a form other than the one screened, or ``why`` for
    a rule that did not fire (``why_not`` for one that did)."""


# The attributes that say which input an atom reads; the others (side, method, length_tested,
# leg_pain) narrow it down. A fact matching the first but not the second is a near miss.
IDENTITY: Mapping[str, tuple[str, ...]] = {
    "grade": ("measure", "muscle", "group"),
    "rom": ("motion",),
    "test": ("name",),
    "sign": ("name",),
    "symptom": ("name",),
    "activity": ("name",),
    "context": ("name",),
    "asym": ("measure", "group"),
    "age": (),
    "unmeasured": ("name",),
    "score": ("instrument",),
}

SIGN_FIELDS: Mapping[str, str] = {
    "thomas_thigh_abducts": "thomas_test.thigh_abducts",
    "slr_reproduces_leg_pain": "straight_leg_raise.reproduces_leg_pain",
}

CONTEXT_FIELDS: Mapping[str, str] = {
    "pregnancy": "pregnancy",
    "pregnancy_weeks": "pregnancy.weeks",
    "pregnancy_weeks_unknown": "pregnancy.weeks",
    "hip_replacement_posterior": "hip_replacement.approach",
    "hip_replacement_anterior": "hip_replacement.approach",
    "hip_replacement_lateral": "hip_replacement.approach",
    "hip_replacement_unknown": "hip_replacement.approach",
    "hip_operation_weeks": "hip_replacement.weeks_since",
    "osteoporosis": "osteoporosis",
    "vertebral_fracture": "vertebral_fracture",
    "back_pain_weeks": "back_pain.weeks",
    "back_pain_weeks_unknown": "back_pain.weeks",
    "back_pain_intensity": "back_pain.intensity",
    "fall_without_injury_signs": "recent_fall",
    "fall_with_new_pain": "recent_fall.new_pain",
    "anticoagulant": "anticoagulant",
    "osteoporosis_unknown": "osteoporosis",
    "anticoagulant_unknown": "anticoagulant",
    "age_unknown": "age",
    "procedure_days": "joint_procedure.days_since",
    "procedure_timing_unknown": "joint_procedure.days_since",
    "procedure_pain_not_settled": "joint_procedure.pain_worsening",
    "postpartum": "postpartum",
    "postpartum_weeks": "postpartum.weeks_since",
    "postpartum_weeks_unknown": "postpartum.weeks_since",
    "caesarean_delivery": "postpartum.delivery",
    "delivery_type_unknown": "postpartum.delivery",
    "hip_replacement": "hip_replacement",
}

NOT_ASSESSED = "not assessed"


@dataclass(frozen=True)
class InputCheck:
    """One input an atom read, or would have read, and whether it met the atom's test."""

    field: str
    value: int | float | str | None  # None: the form leaves it blank
    held: bool
    note: str = ""  # why it did not meet the test; for a blank: "not assessed", "not reported"

    def text(self) -> str:
        if self.value is None:
            return f"{self.field}: {self.note or NOT_ASSESSED}"
        shown = f"{self.value:g}" if isinstance(self.value, float) else str(self.value)
        return f"{self.field} = {shown}" + (f" — {self.note}" if self.note else "")


@dataclass(frozen=True)
class AtomCheck:
    """One test of a rule's condition: did it hold, on which inputs, against which threshold."""

    test: str  # the test in words, e.g. "grade tightness iliopsoas ≥ 2 (tight_grade)"
    held: bool
    inputs: tuple[InputCheck, ...] = ()
    threshold: str | None = None  # e.g. "≥ 2 (tight_grade)"
    sources: tuple[str, ...] = ()  # where each named threshold comes from (ruleset.yaml)
    chain: Explanation | None = None  # for ``finding:``: why that finding did (not) fire


@dataclass(frozen=True)
class AlternativeCheck:
    """One way the condition can hold: a conjunction of tests, all of which must hold."""

    atoms: tuple[AtomCheck, ...]

    @property
    def held(self) -> bool:
        return all(atom.held for atom in self.atoms)

    @property
    def missing(self) -> int:
        """How many of its tests did not hold (0 when the alternative held)."""
        return sum(not atom.held for atom in self.atoms)


@dataclass(frozen=True)
class EscalationCheck:
    """An escalation of a rule that fired: the severity it raises to, and its alternatives."""

    severity: Severity
    alternatives: tuple[AlternativeCheck, ...]

    @property
    def held(self) -> bool:
        return any(alt.held for alt in self.alternatives)


@dataclass(frozen=True)
class Explanation:
    """Why a rule fired or did not, for one form: every alternative of its condition, with the
    tests that held and those that did not, the inputs they read and the thresholds they used.

    The engine decided whether the rule fired (`fired`); this explanation comes from an
    independent evaluation of the rule data that agrees with it (`explain` checks that).
    """

    rule_id: str
    title: str
    severity: (
        Severity  # the finding's severity when it fired (escalations included), else the rule's
    )
    fired: bool
    file: str
    ruleset_version: str
    alternatives: tuple[AlternativeCheck, ...]
    escalations: tuple[EscalationCheck, ...] = ()

    def nearest(self) -> tuple[AlternativeCheck, ...]:
        """The alternatives that missed by the fewest tests (those that held, if any did)."""
        fewest = min((alt.missing for alt in self.alternatives), default=0)
        return tuple(alt for alt in self.alternatives if alt.missing == fewest)

    def text(self, *, nearest: bool = False, held_only: bool = False) -> str:
        """The explanation as indented plain text.

        Args:
            nearest: show only the alternatives that missed by the fewest tests.
            held_only: show only the alternatives that held.
        """
        keep = self.nearest() if nearest else None
        if held_only:
            keep = tuple(alt for alt in self.alternatives if alt.held)
        return "\n".join(self._lines(0, top=True, keep=keep))

    def __str__(self) -> str:
        return self.text()

    def _lines(
        self, depth: int, top: bool = False, keep: tuple[AlternativeCheck, ...] | None = None
    ) -> list[str]:
        """Every alternative at the top and for a rule that did not fire; for a chained rule
        that fired, only what held (why it fired)."""
        brief = self.fired and not top
        pad = "  " * depth
        verdict = "fired" if self.fired else "did not fire"
        lines = [f"{pad}{self.rule_id} ({self.title}, {self.severity.value}): {verdict}"]
        if top:
            lines.append(f"{pad}rules {self.ruleset_version}, rule file {self.file}")
        count = len(self.alternatives)
        held = sum(alt.held for alt in self.alternatives)
        if count > 1:
            lines.append(
                f"{pad}it fires when any one of {count} alternatives holds; {held} held"
                if held
                else f"{pad}it fires when any one of {count} alternatives holds; none held"
            )
        for i, alt in enumerate(self.alternatives, 1):
            if not (brief and not alt.held) and (keep is None or any(alt is k for k in keep)):
                lines += _alternative_lines(alt, i, count, depth + 1)
        for escalation in self.escalations:
            if brief and not escalation.held:
                continue
            state = "applies" if escalation.held else "does not apply"
            lines.append(f"{pad}  escalation to {escalation.severity.value}: {state}")
            n = len(escalation.alternatives)
            for i, alt in enumerate(escalation.alternatives, 1):
                lines += _alternative_lines(alt, i, n, depth + 2)
        return lines


def _alternative_lines(alt: AlternativeCheck, i: int, count: int, depth: int) -> list[str]:
    pad = "  " * depth
    name = f"alternative {i} of {count}" if count > 1 else "condition"
    if alt.held:
        state = "held"
    else:
        state = f"not met ({len(alt.atoms) - alt.missing} of {len(alt.atoms)} tests held)"
    lines = [f"{pad}{name}: {state}"]
    for atom in alt.atoms:
        mark = "✓" if atom.held else "✗"
        lines.append(f"{pad}  {mark} {atom.test}")
        lines += [f"{pad}      {check.text()}" for check in atom.inputs]
        lines += [f"{pad}      threshold {source}" for source in atom.sources]
        if atom.chain is not None:
            lines += atom.chain._lines(depth + 3)
    return lines


def _atom_text(atom: Atom) -> str:
    """The test in words: the input it reads, then what it asks of it."""
    if atom.fact == "finding":
        return f"finding {dict(atom.equals)['id']}"
    identity = IDENTITY.get(atom.fact, ())
    words: list[str] = [atom.fact if atom.fact != "asym" else "left/right difference in"]
    words += [value for attr, value in atom.equals if attr in identity]
    qualifiers = [f"{attr} {value}" for attr, value in atom.equals if attr not in identity]
    if atom.one_of is not None:
        attr, values = atom.one_of
        if attr in identity:
            words.append(" or ".join(values))
        elif not (atom.describe or "").endswith(f"({', '.join(values)})"):
            qualifiers.append(f"{attr} {' or '.join(values)}")
    text = " ".join(words)
    if qualifiers:
        text += f" ({', '.join(qualifiers)})"
    if _bounds(atom) and atom.describe:
        text += f": {atom.describe.removeprefix('left/right difference ')}"
    elif atom.fact == "unmeasured":
        text += ": not measured"
    return text


def _sources(atom: Atom, ruleset: RuleSet) -> tuple[str, ...]:
    """Where the named thresholds of an atom's test come from."""
    if not _bounds(atom) or not atom.describe:
        return ()
    found = []
    for name in re.findall(r"\(([a-z][a-z0-9_]*)\)", atom.describe):
        spec = ruleset.thresholds.get(name)
        if spec is not None:
            unit = f" {spec.unit}" if spec.unit else ""
            found.append(f"{name} = {spec.value:g}{unit} (ruleset.yaml; {spec.source})")
    return tuple(found)


def _form_value(intake: IntakeForm, path: str) -> int | float | str | None:
    """The value at a dotted path of the form as cited: None when blank, 'yes'/'no' for flags,
    'given' for a record."""
    value: Any = intake
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, tuple | list | dict):
        return ", ".join(str(getattr(v, "value", v)) for v in value) if value else None
    return "given"


def _blank(atom: Atom, intake: IntakeForm) -> InputCheck:
    """The input an atom would read, when no fact of the form is even close."""
    tests = dict(atom.equals)
    name = tests.get("name") or (atom.one_of[1][0] if atom.one_of else "")
    if atom.fact == "grade":
        measure = tests["measure"]
        if "muscle" in tests:
            return InputCheck(f"{measure}.{tests['muscle']}", None, False, NOT_ASSESSED)
        where = f" ({tests['group']} muscles)" if "group" in tests else ""
        return InputCheck(f"{measure}{where}", None, False, NOT_ASSESSED)
    if atom.fact == "rom":
        return InputCheck(f"rom.{tests['motion']}", None, False, "not measured")
    if atom.fact == "test":
        field_name, attr = next((f, a) for n, f, a in NUMERIC_TESTS if n == name)
        return InputCheck(f"{field_name}.{attr}", None, False, "not measured")
    if atom.fact == "sign":
        path = SIGN_FIELDS.get(name, "signs")
        value = _form_value(intake, path)
        return InputCheck(path, value, False, NOT_ASSESSED if value is None else "not observed")
    if atom.fact in ("symptom", "activity"):
        path = "symptoms" if atom.fact == "symptom" else "activities"
        names = " or ".join(atom.one_of[1]) if atom.one_of else name
        given = _form_value(intake, path)
        told = f" (the form reports {given})" if given is not None else ""
        return InputCheck(path, None, False, f"{names} not reported{told}")
    if atom.fact == "asym":
        what = f"{tests['measure']}" + (f" ({tests['group']})" if "group" in tests else "")
        return InputCheck(what, None, False, "no left and right values that differ")
    if atom.fact == "context":
        path = CONTEXT_FIELDS.get(name, "context")
        value = _form_value(intake, path)
        return InputCheck(path, value, False, NOT_ASSESSED if value is None else f"not {name}")
    if atom.fact == "unmeasured":
        return InputCheck(f"rom.{name}", "measured", False, "the rule asks for no measurement")
    if atom.fact == "score":
        path = f"instruments.{tests['instrument']}"
        value = _form_value(intake, path)
        if value is None:
            return InputCheck(path, None, False, NOT_ASSESSED)
        return InputCheck(path, value, False, "items missing: the score or band is not certain")
    return InputCheck(atom.fact, _form_value(intake, atom.fact), False, NOT_ASSESSED)


def _near_miss(atom: Atom, fact: OFact) -> str:
    """Why a fact that reads the atom's input does not meet its test."""
    reasons = [
        f"{attr} is {fact.attrs.get(attr, 'not given')}, the rule asks {value}"
        for attr, value in atom.equals
        if fact.attrs.get(attr) != value
    ]
    if atom.one_of is not None and fact.attrs.get(atom.one_of[0]) not in atom.one_of[1]:
        attr, values = atom.one_of
        reasons.append(f"{attr} is {fact.attrs.get(attr)}, the rule asks {' or '.join(values)}")
    bounds = _bounds(atom)
    if bounds and (fact.value is None or not all(_within(fact.value, o, b) for o, b in bounds)):
        test = (atom.describe or "").removeprefix("left/right difference ")
        reasons.append(f"not {test}")
    return "; ".join(reasons)


def _relevant(atom: Atom, fact: OFact) -> bool:
    """Does the fact read the same input as the atom (same identity attributes)?"""
    identity = IDENTITY.get(atom.fact, ())
    if any(fact.attrs.get(attr) != value for attr, value in atom.equals if attr in identity):
        return False
    return not (
        atom.one_of is not None
        and atom.one_of[0] in identity
        and fact.attrs.get(atom.one_of[0]) not in atom.one_of[1]
    )


class _Explainer:
    """Builds explanations for one form under one rule set (chained rules explained once)."""

    def __init__(
        self,
        evaluator: Evaluator,
        intake: IntakeForm,
        facts: Mapping[str, Sequence[OFact]],
        fired: set[str],
        severities: Mapping[str, Severity],
        label: str,
    ) -> None:
        self.evaluator = evaluator
        self.ruleset = evaluator.ruleset
        self.intake = intake
        self.facts = facts
        self.fired = fired
        self.severities = severities
        self.label = label
        self.done: dict[str, Explanation] = {}

    def rule(self, rule_id: str) -> Explanation:
        if rule_id not in self.done:
            rule = self.evaluator.rules[self.evaluator.order[rule_id]]
            fired = rule_id in self.fired
            escalations: tuple[EscalationCheck, ...] = ()
            if fired:
                escalations = tuple(
                    EscalationCheck(raised, self.alternatives(condition))
                    for raised, condition in rule.escalations
                )
            self.done[rule_id] = Explanation(
                rule_id=rule.id,
                title=rule.spec.title,
                severity=self.severities.get(rule_id, rule.spec.severity),
                fired=fired,
                file=rule.file,
                ruleset_version=self.label,
                alternatives=self.alternatives(rule.condition),
                escalations=escalations,
            )
        return self.done[rule_id]

    def alternatives(self, condition: Condition) -> tuple[AlternativeCheck, ...]:
        return tuple(
            AlternativeCheck(tuple(self.atom(atom) for atom in alt))
            for alt in conjunctions(condition)
        )

    def atom(self, atom: Atom) -> AtomCheck:
        test = _atom_text(atom)
        if atom.fact == "finding":
            ref = dict(atom.equals)["id"]
            return AtomCheck(test, ref in self.fired, chain=self.rule(ref))
        facts = self.facts.get(atom.fact, ())
        matched = [f for f in facts if atom_matches(atom, f)]
        threshold = atom.describe if _bounds(atom) else None
        sources = _sources(atom, self.ruleset)
        if atom.fact == "unmeasured":
            name = dict(atom.equals).get("name") or (atom.one_of[1][0] if atom.one_of else "")
            inputs: tuple[InputCheck, ...]
            if matched:
                inputs = (InputCheck(f"rom.{name}", None, True, "not measured"),)
            else:
                inputs = tuple(
                    InputCheck(f.field, f.shown, False, "measured: the rule asks for none")
                    for f in self.facts.get("rom", ())
                    if f.attrs.get("motion") == name
                ) or (_blank(atom, self.intake),)
            return AtomCheck(test, bool(matched), inputs, threshold, sources)
        if matched:
            inputs = tuple(InputCheck(f.field, f.shown, True) for f in matched if f.cited)
            if not inputs:  # a blank the rule reads as such ("osteoporosis_unknown")
                names = sorted({f.attrs.get("name", atom.fact) for f in matched})
                inputs = tuple(
                    InputCheck(CONTEXT_FIELDS.get(n, n), None, True, NOT_ASSESSED) for n in names
                )
            return AtomCheck(test, True, inputs, threshold, sources)
        near = [f for f in facts if _relevant(atom, f)]
        if near:
            inputs = tuple(InputCheck(f.field, f.shown, False, _near_miss(atom, f)) for f in near)
        else:
            inputs = (_blank(atom, self.intake),)
        return AtomCheck(test, False, inputs, threshold, sources)


_EVALUATORS: dict[int, tuple[RuleSet, Evaluator]] = {}
_EVALUATORS_LOCK = threading.Lock()


def evaluator_for(ruleset: RuleSet) -> Evaluator:
    """One evaluator per rule set (the last eight are kept)."""
    with _EVALUATORS_LOCK:
        held = _EVALUATORS.get(id(ruleset))
        if held is not None and held[0] is ruleset:
            return held[1]
    evaluator = Evaluator(ruleset)
    with _EVALUATORS_LOCK:
        while len(_EVALUATORS) >= 8:
            _EVALUATORS.pop(next(iter(_EVALUATORS)))
        _EVALUATORS[id(ruleset)] = (ruleset, evaluator)
    return evaluator


def explain(
    assessment: Assessment | None,
    form: IntakeForm | Mapping[str, Any] | str | bytes,
    rule_id: str,
    screener: Screener | None = None,
    *,
    expect: bool | None = None,
) -> Explanation:
    """Explain why ``rule_id`` fired or not for ``form``.

    Args:
        assessment: the screening result of ``form`` to explain; None screens the form first.
        form: the intake form that was screened.
        rule_id: the rule (finding id) to explain.
        screener: the screener (rule set) it was screened with; the built-in rules by default.
        expect: True for ``why`` (the rule must have fired), False for ``why_not``.

    Raises:
        ExplanationError: the rule is unknown; the assessment names another rule set than the
            screener's; the assessment's findings are not this form's; or ``expect`` is not what
            happened.
        InvalidFormError: the form is invalid.
    """
    from hipscreen._form import coerce_form
    from hipscreen._screen import default_screener

    screener = screener if screener is not None else default_screener()
    ruleset = screener.ruleset
    if assessment is not None and assessment.ruleset_version != ruleset.label:
        raise ExplanationError(
            f"the assessment was screened with rules {assessment.ruleset_version}, this screener "
            f"has {ruleset.label}: explain it with the rule set it was screened with"
        )
    ids = [rule.id for rule in ruleset.rules]
    if rule_id not in ids:
        raise ExplanationError(f"unknown rule {rule_id!r}{suggest(rule_id, ids)}")
    intake = coerce_form(form)
    if assessment is None:
        assessment = screener.assess(intake)
    evaluator = evaluator_for(ruleset)
    facts, fired, _ = evaluator.fire(intake)
    engine = set(assessment.finding_ids())
    if engine != fired:
        only_engine = ", ".join(sorted(engine - fired)) or "none"
        only_here = ", ".join(sorted(fired - engine)) or "none"
        raise ExplanationError(
            "the assessment's findings are not this form's under these rules (only in the "
            f"assessment: {only_engine}; only for this form: {only_here}): pass the form that "
            "was screened"
        )
    if expect is True and rule_id not in fired:
        raise ExplanationError(f"{rule_id} did not fire for this form: why_not() tells why")
    if expect is False and rule_id in fired:
        raise ExplanationError(f"{rule_id} fired for this form: why() tells why")
    severities = {finding.id: finding.severity for finding in assessment.findings}
    explainer = _Explainer(evaluator, intake, facts, fired, severities, ruleset.label)
    return explainer.rule(rule_id)
