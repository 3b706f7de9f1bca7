"""A reference evaluator of the rule data: the findings a rule set implies for a form.

Tests and benchmarks only; the library never imports it. It is written to be obviously right,
not fast, and shares nothing with the engine path but the parsed rule-data model
(``hipscreen._ruledata``) and the validated `IntakeForm`:

* its facts come straight from the form's fields (not from ``hipscreen._facts``);
* it evaluates each condition tree itself (not through ``alternatives()`` or the engine
  compiler) and chains findings to a fixpoint (conditions are positive, so the fixpoint is the
  least one and independent of rule order);
* it refuses, loudly, any condition node, atom type, atom attribute or atom field it does not
  know: a new kind of rule must be taught to the oracle, never silently agreed with.

What it computes per finding: id, severity (escalations included), the sides and the evidence
of every fact that took part in a satisfied alternative, the findings it was derived from, and
its confidence (measured when any evidence is measured, or when it rests on a measured finding).

Three differences it found are fixed in the engine path and pinned by tests in test_oracle.py:
evidence for merged one-atom alternatives cites every alternative the fact satisfies,
escalations may chain on another finding, and a conjunction one fact satisfies twice holds
(`shared_fact_conjunctions` finds those; the built-in rules have none).

Numbers are compared exactly as given (thresholds have at most three decimals and the engine
compares the very doubles Python holds), so 99.9996° is "below 100°". Left/right differences
are computed on the given values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hipscreen import IntakeForm
from hipscreen._facts import normalised_reports
from hipscreen._ruledata import AllOf, AnyOf, Atom, Condition, Rule, RuleSet
from hipscreen._vocabulary import PREGNANCY_ONLY_SYMPTOMS, Confidence, Severity, Side, Symptom

SIDE_ORDER = (Side.LEFT, Side.RIGHT, Side.BOTH)

# What the oracle knows about the parsed model. Anything else is an `OracleError`.
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


class OracleError(Exception):
    """The rule data holds something the oracle was never taught to evaluate."""


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
class OracleFinding:
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
        implied = [s.value for s in Symptom if s in PREGNANCY_ONLY_SYMPTOMS and s.value in ticked]
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
    return facts


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
    """Every atom of a condition tree; refuses node types the oracle does not know."""
    if isinstance(condition, Atom):
        yield condition
    elif isinstance(condition, AllOf | AnyOf):
        if not condition.items:
            raise OracleError(f"empty {type(condition).__name__}")
        for item in condition.items:
            yield from walk(item)
    else:
        raise OracleError(f"unknown condition node {type(condition).__name__}: {condition!r}")


def check_atom(atom: Atom, where: str) -> None:
    """Refuse an atom the oracle cannot evaluate faithfully."""
    names = {f.name for f in dataclasses.fields(atom)}
    unknown_fields = names - KNOWN_ATOM_FIELDS
    if unknown_fields:
        raise OracleError(
            f"{where}: atom fields {sorted(unknown_fields)} are unknown to the oracle "
            "(teach tests/oracle.py what they mean)"
        )
    known = KNOWN_ATTRIBUTES.get(atom.fact)
    if known is None:
        raise OracleError(
            f"{where}: unknown atom type {atom.fact!r} (known: {', '.join(KNOWN_ATTRIBUTES)})"
        )
    attrs = [attr for attr, _ in atom.equals]
    if atom.one_of is not None:
        attrs.append(atom.one_of[0])
    for attr in attrs:
        if attr not in known:
            raise OracleError(f"{where}: {atom.fact} atom tests unknown attribute {attr!r}")
    if atom.fact == "finding" and (
        set(attrs) != {"id"} or atom.one_of is not None or _bounds(atom)
    ):
        raise OracleError(f"{where}: a finding atom must test its id only: {atom!r}")


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
    raise OracleError(f"unknown bound {op!r}")


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
    raise OracleError(f"unknown condition node {type(condition).__name__}")


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


class Oracle:
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
                            raise OracleError(f"{rule.id}: chains on unknown finding {ref!r}")
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
                raise OracleError(f"findings chain in a cycle through {rule_id!r}")
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
        raise OracleError(f"unknown condition node {type(condition).__name__}")

    def assess(self, form: IntakeForm | Mapping[str, Any]) -> list[OracleFinding]:
        """The findings, most severe first, then in rule order (as `Assessment.findings`)."""
        intake = form if isinstance(form, IntakeForm) else IntakeForm.model_validate(dict(form))
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
                OracleFinding(
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
    """Comparable tuples for oracle findings or `hipscreen.Finding` objects alike."""
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
