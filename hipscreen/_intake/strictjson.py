"""Strict JSON for untrusted bytes: UTF-8 only, finite numbers, unique keys, bounded depth and size.

Python's ``json`` module takes ``NaN`` and ``Infinity``, lets a repeated key silently win, turns
``1e400`` into infinity, accepts UTF-16 bytes and recurses without limit. `loads_strict` refuses
all of that and reports every problem with the path of the value it concerns, so a web service can
answer bad bodies with a clear 422 instead of a crash. It needs no third-party package.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections import Counter
from typing import Any

from hipscreen._errors import JsonProblem, StrictJsonError

__all__ = [
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "MAX_VALUES",
    "JsonProblem",
    "StrictJsonError",
    "loads_strict",
    "scrub",
]

MAX_DEPTH = 32
"""Most arrays and objects nested in one another. An intake form nests 3 deep (``rom`` →
``hip_flexion`` → ``left``) and a CDS Hooks request 5; 32 leaves room for the extra fields a
client may add, and keeps every nested structure far from Python's recursion limit."""

MAX_VALUES = 500
"""Most JSON values (objects, arrays, their members and items, scalars) in one document. A complete
intake form, every field given and every grade per side, holds 147. This bounds the work of
validating a hostile form: each bad item costs hipscreen about 0.2 ms for its problem message
(with the closest valid name) and up to ~1 KB of text.
"""

MAX_NUMBER_CHARS = 100
"""Most characters in one JSON number. Nothing hipscreen reads needs more than a handful, and long
numbers cost time to convert (Python refuses integers over 4,300 digits with a ``ValueError``)."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused:
    """A value the parser had to take but strict JSON refuses (NaN, 1e400, 5,000 digits)."""

    __slots__ = ("message", "text")

    def __init__(self, text: str, message: str) -> None:
        self.text = text
        self.message = message


class _DuplicateKeys(dict[str, Any]):
    """An object in which some keys appear more than once (the last value was kept)."""

    duplicates: dict[str, int]


def loads_strict(
    data: bytes | str, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES
) -> Any:
    """Parse one JSON document strictly (RFC 8259, plus limits).

    Refused: bytes that are not UTF-8 (a UTF-8 byte-order mark is skipped), ``NaN``,
    ``Infinity`` and numbers too large for a float, numbers longer than `MAX_NUMBER_CHARS`, a key
    given twice in one object, strings holding a lone UTF-16 surrogate (``"\\ud800"``, which no
    UTF-8 answer could carry), nesting deeper than ``max_depth`` and more than ``max_values``
    values.

    Args:
        data: the document, as bytes (a request body) or text.
        max_depth: most arrays and objects nested in one another.
        max_values: most values in the document.

    Returns:
        The parsed value (dicts, lists, str, int, float, bool, None).

    Raises:
        StrictJsonError: every problem found (a ``ValueError``).

    Examples:
        >>> loads_strict(b'{"age": 40}')
        {'age': 40}
        >>> try:
        ...     loads_strict(b'{"age": NaN, "age": 3}')
        ... except StrictJsonError as error:
        ...     print([(p.kind, p.path) for p in error.problems])
        [('json_duplicate_key', ('age',))]
    """
    text = _decode(data) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    if not text.strip():
        raise StrictJsonError([JsonProblem("json_invalid", (), "the document is empty")])
    outside_strings = _STRING.sub("", text)
    if outside_strings.count(",") >= max_values:  # n commas separate at least n + 1 values
        raise StrictJsonError([_too_many(max_values)])
    if _depth(outside_strings, max_depth) > max_depth:
        raise StrictJsonError(
            [
                JsonProblem(
                    "json_too_deep",
                    (),
                    f"arrays and objects are nested more than {max_depth} deep "
                    f"(the limit is {max_depth} levels)",
                )
            ]
        )
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise StrictJsonError(
            [JsonProblem("json_invalid", (), f"not valid JSON: {error.msg} ({where})")]
        ) from None
    except RecursionError:  # unreachable after the depth check; kept so nesting never crashes
        raise StrictJsonError(
            [JsonProblem("json_too_deep", (), "arrays and objects are nested too deep")]
        ) from None
    problems = _inspect(value, max_values)
    if problems:
        raise StrictJsonError(problems)
    return value


def _decode(data: bytes) -> str:
    data = data.removeprefix(codecs.BOM_UTF8)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:4]:
        # RFC 8259 §8.1: JSON exchanged between systems is UTF-8. JSON text starts with two ASCII
        # characters, so a NUL among the first four bytes means UTF-16 or UTF-32.
        raise StrictJsonError(
            [
                JsonProblem(
                    "json_invalid",
                    (),
                    "JSON must be encoded as UTF-8; this looks like UTF-16 or UTF-32",
                )
            ]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise StrictJsonError(
            [
                JsonProblem(
                    "json_invalid",
                    (),
                    f"JSON must be encoded as UTF-8: {error.reason} at byte {error.start}",
                )
            ]
        ) from None


def _depth(outside_strings: str, limit: int) -> int:
    """How deep arrays and objects nest (counting stops just past ``limit``), from the text with
    its strings taken out. In text that is not JSON at all the count may be off, which only
    changes which error is reported."""
    depth = 0
    for match in _BRACKET.finditer(outside_strings):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return depth
        else:
            depth -= 1
    return 0


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    marked = _DuplicateKeys(result)
    marked.duplicates = {k: n for k, n in Counter(k for k, _ in pairs).items() if n > 1}
    return marked


def _constant(text: str) -> _Refused:
    return _Refused(text, f"{text} is not JSON (numbers must be finite)")


def _float(text: str) -> float | _Refused:
    if len(text) > MAX_NUMBER_CHARS:
        return _Refused(text, f"a number may have at most {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        return _Refused(text, f"the number {text} is too large (numbers must be finite)")
    return value


def _int(text: str) -> int | _Refused:
    if len(text) > MAX_NUMBER_CHARS:
        return _Refused(text, f"a number may have at most {MAX_NUMBER_CHARS} characters")
    return int(text)


def _inspect(document: Any, max_values: int) -> list[JsonProblem]:
    """Every refused value, repeated key and lone surrogate, in document order; stops counting
    values past ``max_values``."""
    problems: list[JsonProblem] = []
    counted = 1  # values seen or waiting on the stack
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict | list):
            counted += len(value)
            if counted > max_values:
                return [_too_many(max_values)]
        if isinstance(value, dict):
            if isinstance(value, _DuplicateKeys):
                problems += [
                    JsonProblem(
                        "json_duplicate_key",
                        (*path, key),
                        f"key {key!r} is given {count} times in one object; give it once",
                        key,
                    )
                    for key, count in value.duplicates.items()
                ]
            for key in value:
                if _SURROGATE.search(key):
                    problems.append(_surrogate(path, key))
            stack.extend(((*path, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, _Refused):
            problems.append(JsonProblem("json_invalid", path, value.message, value.text))
        elif isinstance(value, str) and _SURROGATE.search(value):
            problems.append(_surrogate(path, value))
    return problems


def _too_many(max_values: int) -> JsonProblem:
    return JsonProblem(
        "json_too_many_values",
        (),
        f"the document holds more than {max_values} values (the limit is {max_values})",
    )


def _surrogate(path: tuple[str | int, ...], text: str) -> JsonProblem:
    return JsonProblem(
        "json_invalid",
        path,
        "a string holds a lone UTF-16 surrogate (an escape such as \\ud800 that is not half of a "
        "pair), which is not a character",
        scrub(text),
    )


def scrub(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, so it can be encoded as UTF-8."""
    return _SURROGATE.sub("\ufffd", text)
