"""A rule set as an engine network: each rule's condition (and escalation) becomes engine rules,
one per way its atoms can bind to facts, each remembering which atoms its facts meet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from hipscreen._engine import EngineRule, Slot, finding_fact, network_problems, slot_size
from hipscreen._errors import RuleDataError, RuleProblem
from hipscreen._limits import MAX_PATTERN_EXPRESSIONS
from hipscreen._rules.atoms import Atom, Condition, alternatives, finding_refs
from hipscreen._rules.ruleset import RuleSet
from hipscreen._vocabulary import Severity

__all__ = ["Firing", "Network", "engine_network"]


@dataclass(frozen=True)
class Firing:
    rule_index: int
    severity: Severity
    slots: tuple[Slot, ...]
    # Per slot: the atoms any fact it matches meets (one option), or None when the slot has
    # several options and the matched fact must be checked against each.
    cites: tuple[tuple[Atom, ...] | None, ...] = ()
    rank: int = 0  # severity.rank, read once per firing
    several: tuple[int, ...] = ()  # the slots with several options (their cite is None)


class Network(NamedTuple):
    """A rule set's engine rules and what a firing of each means."""

    firings: dict[str, Firing]
    """Engine rule name -> the rule it belongs to, its severity, slots and cites."""
    rules: list[EngineRule]
    """The engine rules, in rule-set order."""
    finding_facts: list[tuple[str, ...]]
    """Per rule: the finding fact its firing asserts back into the engine (serialised once;
    kebab-case ids need no escaping), or nothing. Only findings that some rule chains on (or
    that can escalate) go back into the engine: asserting the others would cost matching time
    and change nothing."""


def engine_network(ruleset: RuleSet) -> Network:
    """The engine rules for a rule set.

    Raises:
        RuleDataError: the rules cannot be compiled into one engine network.
    """
    firings: dict[str, Firing] = {}
    engine_rules: list[EngineRule] = []
    for index, rule in enumerate(ruleset.rules):
        conditions: list[tuple[Severity, str, Condition, tuple[Slot, ...]]]
        conditions = [(rule.spec.severity, "#", rule.condition, ())]
        # An escalation chains on the finding itself: it can only raise its severity.
        self_atom = Atom("finding", (("id", rule.id),))
        conditions += [
            (severity, f"^{k}.", condition, ((self_atom,),))
            for k, (severity, condition) in enumerate(rule.escalations)
        ]
        for severity, mark, condition, prefix in conditions:
            for n, slots in enumerate(_slots(alternatives(condition))):
                name = f"{rule.id}{mark}{n}"
                full = (*prefix, *slots)
                cites = tuple(None if len(slot) > 1 else _atoms(slot[0]) for slot in full)
                several = tuple(k for k, atoms in enumerate(cites) if atoms is None)
                firings[name] = Firing(index, severity, full, cites, severity.rank, several)
                engine_rules.append(EngineRule(name, full))
    problems = network_problems(engine_rules)
    if problems:
        rules = ruleset.rules
        raise RuleDataError(
            [
                RuleProblem(
                    rules[firings[name].rule_index].file,
                    rules[firings[name].rule_index].id,
                    "when",
                    message,
                )
                if name in firings
                else RuleProblem("", "", "", message)
                for name, message in problems
            ]
        )
    chained = {
        ref
        for rule in ruleset.rules
        for condition in (rule.condition, *(c for _, c in rule.escalations))
        for ref in finding_refs(condition)
    }
    chained |= {rule.id for rule in ruleset.rules if rule.escalations}
    finding_facts: list[tuple[str, ...]] = [
        (finding_fact(index, rule.id),) if rule.id in chained else ()
        for index, rule in enumerate(ruleset.rules)
    ]
    return Network(firings, engine_rules, finding_facts)


def _slots(alts: list[tuple[Atom, ...]]) -> list[tuple[Slot, ...]]:
    """Engine rules for a condition's alternatives: the one-atom alternatives that the engine's
    facts can tell apart share one ``$or`` pattern (as many as the engine's expression table
    takes); the others become one rule per way their atoms can share facts (`_bindings`)."""
    merged: list[list[Atom]] = [[]]
    keys: set[Any] = set()
    rules: list[tuple[Slot, ...]] = []
    # An atom repeated in a conjunction says nothing more, and neither does a repeated
    # alternative (``all_of`` of ``any_of``s multiplies out into many of both).
    unique: dict[frozenset[Atom], tuple[Atom, ...]] = {}
    for alt in alts:
        unique.setdefault(frozenset(alt), tuple(dict.fromkeys(alt)))
    for alt in unique.values():
        key = (alt[0].fact, alt[0].equals, alt[0].one_of) if len(alt) == 1 else None
        if key is not None and key not in keys:
            keys.add(key)
            if slot_size((*merged[-1], alt[0])) > MAX_PATTERN_EXPRESSIONS:
                merged.append([])
            merged[-1].append(alt[0])
        else:
            rules += _bindings(alt)
    return [(tuple(atoms),) for atoms in merged if atoms] + rules


def _bindings(alt: tuple[Atom, ...]) -> list[tuple[Slot, ...]]:
    """Engine rules that together match a conjunction exactly.

    The engine binds each pattern of a rule to a different fact, but the rule data means "some
    fact meets each atom", and one fact may meet several (a strength of 2 for gluteus maximus is
    both "an extensor ≤ 3" and "gluteus maximus ≤ 2"). So the conjunction becomes one rule per
    way of grouping its atoms onto shared facts (a set partition whose blocks one fact could
    meet), each block one pattern. Every match of the conjunction binds its facts in exactly
    one such grouping, so the rules fire for it; atoms no fact can share need no extra rule.
    """
    groupings: list[list[list[Atom]]] = [[]]
    for atom in alt:
        grown: list[list[list[Atom]]] = []
        for blocks in groupings:
            grown.append([*blocks, [atom]])
            for i, block in enumerate(blocks):
                if all(_could_share(atom, other) for other in block):
                    grown.append([*blocks[:i], [*block, atom], *blocks[i + 1 :]])
        groupings = grown
    return [
        tuple(((block[0],) if len(block) == 1 else (tuple(block),)) for block in blocks)
        for blocks in groupings
    ]


def _could_share(a: Atom, b: Atom) -> bool:
    """Whether one fact could meet both atoms (conservative: an extra grouping that can never
    match costs an engine rule, a missing one would lose findings)."""
    if a.fact != b.fact:
        return False
    tests_a, tests_b = dict(a.equals), dict(b.equals)
    if any(tests_b.get(attr, value) != value for attr, value in tests_a.items()):
        return False
    for atom, other_tests, other in ((a, tests_b, b), (b, tests_a, a)):
        if atom.one_of is None:
            continue
        attr, values = atom.one_of
        if attr in other_tests and other_tests[attr] not in values:
            return False
        shared = other.one_of is not None and other.one_of[0] == attr
        if shared and other.one_of is not None and not set(values) & set(other.one_of[1]):
            return False
    lows = [x for x in (a.at_least, a.above, b.at_least, b.above) if x is not None]
    highs = [x for x in (a.at_most, a.below, b.at_most, b.below) if x is not None]
    return not lows or not highs or max(lows) <= min(highs)


def _atoms(option: Atom | tuple[Atom, ...]) -> tuple[Atom, ...]:
    return (option,) if isinstance(option, Atom) else option
