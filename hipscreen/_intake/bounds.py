"""The form bounds on untrusted input: size, nesting, list and string lengths and integer digits of
a parsed form (a mapping given directly, or JSON read by `parse_form_json`), every breach named by
its field path."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hipscreen._errors import FieldProblem
from hipscreen._intake.strictjson import (
    DuplicateKeys,
    Refused,
    clip,
    form_refusal,
    form_repeated_key,
)
from hipscreen._limits import MAX_FORM_DEPTH, MAX_FORM_INT_DIGITS, MAX_FORM_ITEMS, MAX_FORM_STRING

__all__ = ["bound_problems", "shown", "within_bounds"]

_INT_LIMIT = 10**MAX_FORM_INT_DIGITS


def within_bounds(value: Any, depth: int = 0) -> bool:
    """The fast check: True when ``value`` keeps every form bound (no paths, no messages)."""
    kind = type(value)
    if kind is dict:
        if depth >= MAX_FORM_DEPTH or len(value) > MAX_FORM_ITEMS:
            return False
        depth += 1
        for key, item in value.items():  # keys and values in one pass
            if type(key) is not str or len(key) > MAX_FORM_STRING:
                return False
            kind = type(item)
            if kind is str:
                if len(item) > MAX_FORM_STRING:
                    return False
            elif kind is int:
                if not -_INT_LIMIT < item < _INT_LIMIT:
                    return False
            elif kind is float:
                if item - item != 0:  # NaN or ±infinity
                    return False
            elif not (kind is bool or item is None or within_bounds(item, depth)):
                return False
        return True
    if kind is list:
        if depth >= MAX_FORM_DEPTH or len(value) > MAX_FORM_ITEMS:
            return False
        depth += 1
        for item in value:
            kind = type(item)
            if kind is str:
                if len(item) > MAX_FORM_STRING:
                    return False
            elif kind is int:
                if not -_INT_LIMIT < item < _INT_LIMIT:
                    return False
            elif kind is float:
                if item - item != 0:
                    return False
            elif not (kind is bool or item is None or within_bounds(item, depth)):
                return False
        return True
    return False  # anything else at the top (or nested, via the loop) takes the slow walk


class _Repeated:
    """A key given more than once in one JSON object (reported instead of its value)."""

    __slots__ = ("count", "key")

    def __init__(self, key: str, count: int) -> None:
        self.key = key
        self.count = count


def bound_problems(data: Any) -> list[FieldProblem]:
    """Every place where ``data`` (a parsed form) breaks the form bounds, by field path.

    Walks at most ``MAX_FORM_DEPTH`` levels and ``MAX_FORM_ITEMS`` items per level, so it is cheap
    even for hostile input (and never recurses into a self-containing mapping). The markers of
    `parse_form_json` (a refused number, a repeated key) are reported where they stand.
    """
    problems: list[FieldProblem] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        where = ".".join(path)
        if isinstance(value, Refused):
            problems.append(FieldProblem(where, None, form_refusal(value)))
        elif isinstance(value, _Repeated):
            problems.append(FieldProblem(where, None, form_repeated_key(value.key, value.count)))
        elif isinstance(value, str):
            if len(value) > MAX_FORM_STRING:
                problems.append(_too_long(where, value))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            # bit_length, not str(): Python refuses to print integers over 4,300 digits.
            if not -_INT_LIMIT < value < _INT_LIMIT:
                digits = len(str(abs(value))) if value.bit_length() < 14_000 else None
                if digits is None or digits > MAX_FORM_INT_DIGITS:
                    what = f"{digits} digits" if digits else "thousands of digits"
                    message = (
                        f"an integer may have at most {MAX_FORM_INT_DIGITS} digits (got {what})"
                    )
                    problems.append(FieldProblem(where, f"an integer of {what}", message))
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(FieldProblem(where, value, f"needs a finite number (got {value})"))
        elif isinstance(value, Mapping | list | tuple):
            if len(path) >= MAX_FORM_DEPTH:
                message = f"a form is nested at most {MAX_FORM_DEPTH} levels deep"
                problems.append(FieldProblem(where, shown(value), message))
                continue
            if len(value) > MAX_FORM_ITEMS:
                kind = "keys" if isinstance(value, Mapping) else "items"
                message = f"at most {MAX_FORM_ITEMS} {kind} (got {len(value):,})"
                problems.append(FieldProblem(where, shown(value), message))
                continue
            if isinstance(value, Mapping):
                repeated = value.duplicates if isinstance(value, DuplicateKeys) else {}
                children = []
                for key, item in value.items():
                    if isinstance(key, str) and len(key) > MAX_FORM_STRING:
                        problems.append(_too_long(where, key, what="a key"))
                        continue
                    if key in repeated:  # its values are not looked at: give the key once first
                        item = _Repeated(key, repeated[key])
                    children.append((item, (*path, str(key))))
                stack.extend(reversed(children))
            else:
                stack.extend(reversed([(item, (*path, str(i))) for i, item in enumerate(value)]))
    return problems


def _too_long(where: str, text: str, what: str = "a string") -> FieldProblem:
    message = f"{what} may have at most {MAX_FORM_STRING} characters (got {len(text):,})"
    return FieldProblem(where, clip(text), message)


def shown(value: Any) -> str:
    """A short description of a value too big or too odd to repeat in an error."""
    if isinstance(value, Mapping):
        return f"a mapping of {len(value):,} keys"
    if isinstance(value, list | tuple):
        return f"a list of {len(value):,} items"
    if isinstance(value, str):
        return clip(value)
    return type(value).__name__
