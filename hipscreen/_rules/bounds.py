"""Bounds on loaded rule data: numbers, condition sizes, chains and cross products.

Each check runs on parsed conditions before anything is expanded or compiled, so a hostile rule
file is refused in bounded time with a `RuleProblem` naming the file, the rule and the limit
(the limits are in ``hipscreen._limits``). Together with the YAML limits in ``_rules.safeyaml``
and the engine-network check in ``_engine``, they make the promise of ``hipscreen rules check``:
what it accepts compiles in bounded time, and screens a full form in bounded time and memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from hipscreen._limits import (
    MAX_ALTERNATIVES,
    MAX_CHAIN_DEPTH,
    MAX_COMBINATIONS_PER_FORM,
    MAX_COMBINATIONS_PER_RULE,
    MAX_PATTERNS_PER_ALTERNATIVE,
)
from hipscreen._rules.atoms import AnyOf, Atom, Condition
from hipscreen._rules.numbers import number_problem
from hipscreen._rules.ruleset import Rule
from hipscreen._rules.tables import tables
from hipscreen._vocabulary import Activity, ContextItem, Muscle, SignName, Symptom

Report = Callable[[str, str, str, str], None]
"""``add(file, rule id, field, message)``, as ``_rules.problems.Collector.add``."""


def check_thresholds(
    thresholds: Mapping[str, Any], overridden: Sequence[str], add: Report
) -> set[str]:
    """Report thresholds whose value is not a usable number; return their names."""
    bad = set()
    for name, spec in thresholds.items():
        problem = number_problem(spec.value)
        if problem is not None:
            bad.add(name)
            if name in overridden:
                add("thresholds", name, "", problem)
            else:
                add("ruleset.yaml", "", f"thresholds.{name}.value", problem)
    return bad


# -- one condition -------------------------------------------------------------------------------


def _count(condition: Condition, cap: int, weigh: Callable[[Atom], int]) -> int:
    """Sum over the alternatives in disjunctive normal form of the product of the atoms'
    weights, without expanding them, saturating at cap."""
    if isinstance(condition, Atom):
        return weigh(condition)
    if isinstance(condition, AnyOf):
        return min(cap, sum(_count(item, cap, weigh) for item in condition.items))
    product = 1
    for item in condition.items:
        product = min(cap, product * _count(item, cap, weigh))
    return product


def _alternatives(condition: Condition, cap: int) -> int:
    """How many alternatives the condition has in disjunctive normal form, saturating at cap."""
    return _count(condition, cap, lambda _atom: 1)


def _widest(condition: Condition) -> int:
    """The most atoms any one alternative joins."""
    if isinstance(condition, Atom):
        return 1
    if isinstance(condition, AnyOf):
        return max(_widest(item) for item in condition.items)
    return sum(_widest(item) for item in condition.items)


def _combinations(condition: Condition, cap: int) -> int:
    """Worst-case fact combinations summed over the alternatives (see `max_facts`), capped."""
    return _count(condition, cap, max_facts)


def _group_size(group: str) -> int:
    return sum(1 for muscle in Muscle if tables().group_of[muscle] == group)


def max_facts(atom: Atom) -> int:
    """The most facts of a full form that ``atom`` can match (see ``hipscreen._facts``).

    A form gives each muscle, motion and test once, for both sides or per side (two facts);
    symptoms, activities and context items at most once each; one age; one fact per finding.
    """
    equals = dict(atom.equals)
    sides = 1 if "side" in equals else 2
    listed = len(atom.one_of[1]) if atom.one_of is not None and atom.one_of[0] == "name" else None
    if atom.fact == "grade":  # one measure: each muscle once, per side at most
        muscles = (
            1
            if "muscle" in equals
            else _group_size(equals["group"])
            if "group" in equals
            else len(Muscle)
        )
        return muscles * sides
    if atom.fact in ("rom", "test"):  # one motion or test, per side at most
        return sides
    if atom.fact == "asym":  # one difference per muscle, motion or test
        return _group_size(equals["group"]) if "group" in equals else len(Muscle)
    vocabulary = {
        "symptom": len(Symptom),
        "activity": len(Activity),
        "context": len(ContextItem),
        "sign": 2 * len(SignName),
    }
    if atom.fact in vocabulary:
        if "name" in equals:
            return 2 if atom.fact == "sign" else 1
        return listed * (2 if atom.fact == "sign" else 1) if listed else vocabulary[atom.fact]
    return 1  # age, finding


def check_condition(file: str, rule_id: str, where: str, condition: Condition, add: Report) -> bool:
    """Report a condition too large to compile or to match cheaply; True when it is within."""
    ok = True
    count = _alternatives(condition, MAX_ALTERNATIVES + 1)
    if count > MAX_ALTERNATIVES:
        add(
            file,
            rule_id,
            where,
            f"the condition has more than {MAX_ALTERNATIVES} alternatives once its any_of lists "
            f"inside all_of are multiplied out (at most {MAX_ALTERNATIVES}): split the rule, or "
            "name findings and chain on them",
        )
        return False
    widest = _widest(condition)
    if widest > MAX_PATTERNS_PER_ALTERNATIVE:
        add(
            file,
            rule_id,
            where,
            f"one alternative of the condition joins {widest} conditions "
            f"(at most {MAX_PATTERNS_PER_ALTERNATIVE})",
        )
        ok = False
    combinations = _combinations(condition, MAX_COMBINATIONS_PER_RULE + 1)
    if combinations > MAX_COMBINATIONS_PER_RULE:
        add(
            file,
            rule_id,
            where,
            f"the condition can match more than {MAX_COMBINATIONS_PER_RULE:,} combinations of "
            f"facts in one form (at most {MAX_COMBINATIONS_PER_RULE:,}): the engine fires once "
            "per combination. Several broad conditions on the same kind of fact (such as "
            "grade atoms naming no muscle) multiply; name the muscle, group or side",
        )
        ok = False
    return ok


# -- the whole rule set --------------------------------------------------------------------------


def _refs(condition: Condition) -> Iterator[str]:
    if isinstance(condition, Atom):
        if condition.fact == "finding":
            yield dict(condition.equals)["id"]
        return
    for item in condition.items:
        yield from _refs(item)


def _conditions(rule: Rule) -> Iterator[Condition]:
    yield rule.condition
    for _, condition in rule.escalations:
        yield condition


def check_rule_set(rules: Sequence[Rule], add: Report) -> None:
    """Report chains of findings too long, or too many combinations over the whole rule set.

    (The number of rules, ``MAX_RULES``, is checked while the files are read.)
    """
    graph = {rule.id: {ref for c in _conditions(rule) for ref in _refs(c)} for rule in rules}
    depth: dict[str, int] = {}

    def chain(rule_id: str) -> int:
        # Iterative depth-first walk: a cycle (reported elsewhere) counts as no further depth.
        if rule_id in depth:
            return depth[rule_id]
        stack = [(rule_id, iter(sorted(graph.get(rule_id, ()))))]
        depth[rule_id] = 0  # in progress
        while stack:
            node, refs = stack[-1]
            ref = next(refs, None)
            if ref is None:
                stack.pop()
                depth[node] = 1 + max((depth.get(r, 0) for r in graph.get(node, ())), default=0)
            elif ref not in depth:
                depth[ref] = 0
                stack.append((ref, iter(sorted(graph.get(ref, ())))))
        return depth[rule_id]

    for rule in rules:
        length = chain(rule.id)
        if length > MAX_CHAIN_DEPTH:
            add(
                rule.file,
                rule.id,
                "when",
                f"the finding rests on a chain of {length} findings (at most "
                f"{MAX_CHAIN_DEPTH}, counting this one)",
            )
    total = 0
    for rule in rules:
        for condition in _conditions(rule):
            total += _combinations(condition, MAX_COMBINATIONS_PER_FORM + 1)
        if total > MAX_COMBINATIONS_PER_FORM:
            add(
                rule.file,
                rule.id,
                "when",
                f"the rules up to this one can match more than {MAX_COMBINATIONS_PER_FORM:,} "
                f"combinations of facts in one form (at most {MAX_COMBINATIONS_PER_FORM:,}): "
                "narrow broad conditions (name the muscle, group or side)",
            )
            break
