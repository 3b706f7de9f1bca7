"""Coercion of given values: labels and names as written (in JSON, a CSV cell, a FHIR answer)
into the typed values of the form, with a message naming what is allowed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from hipscreen._vocabulary import normalise_name, suggest

__all__ = ["grade_parser", "pregnancy_block", "vocabulary_parser"]


def grade_parser(kind: str, labels: dict[str, int]) -> Callable[[Any], Any]:
    """A parser of one grade scale: an integer 0–top or one of ``labels`` (case-insensitive)."""
    top = max(labels.values())
    allowed = f"an integer 0–{top} or one of {', '.join(map(repr, labels))} (case-insensitive)"

    def parse(value: Any) -> Any:
        if value is None:  # "this side not given" inside a per-side mapping
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value <= top:
                return value
            raise ValueError(f"{kind} grade must be {allowed} (got {value!r})")
        if isinstance(value, str):
            name = normalise_name(value)
            if name in labels:
                return labels[name]
            if name.isdigit() and 0 <= int(name) <= top:
                return int(name)
            hint = suggest(value, labels)
            raise ValueError(f"{kind} grade must be {allowed} (got {value!r}{hint})")
        raise ValueError(f"{kind} grade must be {allowed} (got {type(value).__name__} {value!r})")

    return parse


def vocabulary_parser(enum: type[Any], what: str) -> Callable[[Any], Any]:
    """A parser of one closed vocabulary: a member's value, in any spelling `normalise_name`
    accepts."""
    members = {member.value: member for member in enum}
    allowed = list(members)

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            member = members.get(value)
            if member is not None:
                return member
            name = normalise_name(value)
            if name in members:
                return members[name]
            raise ValueError(
                f"unknown {what} {value!r}{suggest(value, allowed)} (allowed: {', '.join(allowed)})"
            )
        raise ValueError(f"{what} must be a string, one of: {', '.join(allowed)} (got {value!r})")

    return parse


def pregnancy_block(value: Any) -> Any:
    """``true`` is a pregnancy with the weeks not given; ``false`` states "not pregnant"."""
    if value is True:
        return {}
    if value is not False and not isinstance(value, Mapping | BaseModel | None):
        raise ValueError(
            "pregnancy must be a block such as {'weeks': 20}, true (pregnant) or false "
            f"(not pregnant) (got {value!r})"
        )
    return value
