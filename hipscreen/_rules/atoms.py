"""The parsed condition: atoms joined by all_of / any_of.

These are the values the engine door, the bounds checks, the safety net and the explanation
evaluator work on; `hipscreen._rules.conditions` makes them from a rule file's ``when``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

FactType = Literal[
    "grade",
    "rom",
    "symptom",
    "activity",
    "finding",
    "age",
    "test",
    "sign",
    "context",
    "asym",
    "unmeasured",
    "score",
]


@dataclass(frozen=True)
class Atom:
    """One test against one fact: the unit the engine matches."""

    fact: FactType
    equals: tuple[tuple[str, str], ...] = ()  # (attribute, value) equality tests
    one_of: tuple[str, tuple[str, ...]] | None = None  # attribute in values
    at_least: float | None = None
    at_most: float | None = None
    below: float | None = None
    above: float | None = None
    describe: str | None = None  # the test in words, for the evidence ("≥ 2 (tight_grade)")


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


Condition = Atom | AllOf | AnyOf


def alternatives(condition: Condition) -> list[tuple[Atom, ...]]:
    """The condition in disjunctive normal form: each alternative is a conjunction of atoms."""
    if isinstance(condition, Atom):
        return [(condition,)]
    if isinstance(condition, AnyOf):
        return [alt for item in condition.items for alt in alternatives(item)]
    product = itertools.product(*(alternatives(item) for item in condition.items))
    return [tuple(atom for part in combo for atom in part) for combo in product]


def finding_refs(condition: Condition) -> Iterator[str]:
    """Every finding id the condition chains on."""
    for alt in alternatives(condition):
        for atom in alt:
            if atom.fact == "finding":
                yield dict(atom.equals)["id"]
