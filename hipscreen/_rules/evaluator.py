"""A pure-Python evaluator of the rule data, for explanations and the oracle tests.

The engine decides every finding; `hipscreen._rules.explain` explains them with this module. It
evaluates the parsed rule data (``hipscreen._rules.ruleset``) on the validated `IntakeForm`
directly, written to be obviously right, not fast, and sharing nothing with the engine path but
those two models:

* its facts come straight from the form's fields (``hipscreen._rules.formfacts``, not
  ``hipscreen._facts``);
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
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hipscreen._intake.form import IntakeForm
from hipscreen._rules.atoms import AllOf, AnyOf, Atom, Condition
from hipscreen._rules.formfacts import SIDE_ORDER, EvaluatorError, OFact, form_facts
from hipscreen._rules.ruleset import Rule, RuleSet
from hipscreen._vocabulary import (
    Confidence,
    Severity,
    Side,
)

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
            "(teach hipscreen/_rules/evaluator.py what they mean)"
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
        set(attrs) != {"id"} or atom.one_of is not None or atom_bounds(atom)
    ):
        raise EvaluatorError(f"{where}: a finding atom must test its id only: {atom!r}")


def atom_bounds(atom: Atom) -> list[tuple[str, float]]:
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


def within(value: float, op: str, bound: float) -> bool:
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
    bounds = atom_bounds(atom)
    if bounds and fact.value is None:
        return False
    return all(within(fact.value, op, bound) for op, bound in bounds if fact.value is not None)


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
    for op, bound in atom_bounds(atom):
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
