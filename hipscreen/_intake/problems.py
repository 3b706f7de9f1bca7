"""Problem translation: pydantic's validation errors as hipscreen field problems and messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from hipscreen._errors import FieldProblem
from hipscreen._vocabulary import suggest

__all__ = ["detail", "name_unknown_keys", "problems_from"]


def detail(kind: str, loc: tuple[int | str, ...], value: Any, message: str) -> InitErrorDetails:
    """One error for `ValidationError.from_exception_data`: its message is ``message`` as given."""
    return InitErrorDetails(
        type=PydanticCustomError(kind, "{message}", {"message": message}),
        loc=loc,
        input=value,
    )


def name_unknown_keys(
    title: str,
    error: ValidationError,
    allowed: Sequence[str],
    *,
    noun: str = "field",
    retype_nested: bool = True,
) -> ValidationError:
    """``error`` with each unknown key of the model itself named, with the closest match and the
    allowed keys; ``error`` unchanged when no key was unknown.

    pydantic says only "Extra inputs are not permitted". Its ``extra_forbidden`` errors become
    ``unknown_field`` errors (only those at the model's own level when ``retype_nested`` is
    false); every other error passes through as it was.
    """
    items = error.errors(include_url=False)
    if not any(item["type"] == "extra_forbidden" for item in items):
        return error
    details = []
    for item in items:
        message = item["msg"]
        kind = item["type"]
        if kind == "extra_forbidden" and len(item["loc"]) == 1:
            key = str(item["loc"][0])
            message = (
                f"unknown {noun} {key!r}{suggest(key, allowed)} (allowed: {', '.join(allowed)})"
            )
            kind = "unknown_field"
        elif kind == "extra_forbidden" and retype_nested:
            kind = "unknown_field"
        details.append(detail(kind, item["loc"], item.get("input"), message))
    return ValidationError.from_exception_data(title, details)


# Union tags and pydantic's marker for a mapping key: not part of the field path a user wrote.
_TAGS = {"both_sides", "per_side", "pregnant", "not_pregnant"}


def problems_from(error: ValidationError) -> list[FieldProblem]:
    """Translate a pydantic ``ValidationError`` into hipscreen field problems."""
    problems = []
    for item in error.errors(include_url=False):
        parts = [str(p) for p in item["loc"] if p not in _TAGS and p != "[key]"]
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        if (
            item["type"] != "unknown_field"
            and "(got " not in message
            and repr(value) not in message
        ):
            message = f"{message} (got {value!r})"
        problems.append(FieldProblem(".".join(parts), value, message))
    return problems
