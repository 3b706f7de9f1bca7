"""Strict JSON for untrusted bytes: UTF-8 only, finite numbers, unique keys, bounded depth and size.

Python's ``json`` module takes ``NaN`` and ``Infinity``, lets a repeated key silently win, turns
``1e400`` into infinity, accepts UTF-16 bytes and recurses without limit. `loads_strict` refuses
all of that and reports every problem with the path of the value it concerns, so a web service can
answer bad bodies with a clear 422 instead of a crash. It needs no third-party package.

The form door (`parse_form_json`, for a JSON form given to ``assess``) reads with the same hooks
and markers, but leaves each refused value in place (`Refused`, `DuplicateKeys`) for the form's
bounds walk to report by field path, worded by `form_refusal` and `form_repeated_key`.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections import Counter
from functools import cache, partial
from typing import Any, NamedTuple

from hipscreen._errors import FieldProblem, InvalidFormError, JsonProblem, StrictJsonError
from hipscreen._limits import MAX_FORM_BYTES, MAX_FORM_DEPTH, MAX_FORM_INT_DIGITS

__all__ = [
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "MAX_VALUES",
    "DuplicateKeys",
    "JsonProblem",
    "Refused",
    "StrictJsonError",
    "clip",
    "form_refusal",
    "form_repeated_key",
    "loads_strict",
    "parse_form_json",
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


class _Patterns(NamedTuple):
    string: re.Pattern[str]
    bracket: re.Pattern[str]
    surrogate: re.Pattern[str]


@cache
def _patterns() -> _Patterns:
    """Compiled on first use: ``import hipscreen`` loads this module for the form door, which needs
    none of them."""
    return _Patterns(
        re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL),
        re.compile(r"[\[\]{}]"),
        re.compile("[\ud800-\udfff]"),
    )


class Refused:
    """A value the parser had to take but strict JSON refuses (NaN, 1e400, 5,000 digits).

    ``kind`` says why: ``constant`` (``NaN``, ``Infinity``, ``-Infinity``), ``too_large`` (beyond
    a float), ``too_long`` (more than `MAX_NUMBER_CHARS` characters) or ``too_many_digits`` (an
    integer of more than ``MAX_FORM_INT_DIGITS`` digits, on the form door).
    """

    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        self.text = text

    def __repr__(self) -> str:
        return f"<refused {self.kind}: {clip(self.text)}>"


class DuplicateKeys(dict[str, Any]):
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
    outside_strings = _patterns().string.sub("", text)
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
    for match in _patterns().bracket.finditer(outside_strings):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return depth
        else:
            depth -= 1
    return 0


# -- the hooks both doors parse with -------------------------------------------------------------


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    marked = DuplicateKeys(result)
    marked.duplicates = {k: n for k, n in Counter(k for k, _ in pairs).items() if n > 1}
    return marked


def _constant(text: str) -> Refused:
    return Refused("constant", text)


def _float(text: str, max_chars: int | None = MAX_NUMBER_CHARS) -> float | Refused:
    if max_chars is not None and len(text) > max_chars:
        return Refused("too_long", text)
    value = float(text)
    if not math.isfinite(value):
        return Refused("too_large", text)
    return value


def _int(
    text: str, max_chars: int | None = MAX_NUMBER_CHARS, max_digits: int | None = None
) -> int | Refused:
    if max_chars is not None and len(text) > max_chars:
        return Refused("too_long", text)
    if max_digits is not None and len(text.lstrip("-")) > max_digits:
        return Refused("too_many_digits", text)
    return int(text)


_MESSAGES = {
    "constant": "{text} is not JSON (numbers must be finite)",
    "too_large": "the number {text} is too large (numbers must be finite)",
    "too_long": f"a number may have at most {MAX_NUMBER_CHARS} characters",
}


def _inspect(document: Any, max_values: int) -> list[JsonProblem]:
    """Every refused value, repeated key and lone surrogate, in document order; stops counting
    values past ``max_values``."""
    problems: list[JsonProblem] = []
    surrogate = _patterns().surrogate
    counted = 1  # values seen or waiting on the stack
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict | list):
            counted += len(value)
            if counted > max_values:
                return [_too_many(max_values)]
        if isinstance(value, dict):
            if isinstance(value, DuplicateKeys):
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
                if surrogate.search(key):
                    problems.append(_surrogate(path, key))
            stack.extend(((*path, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, Refused):
            message = _MESSAGES[value.kind].format(text=value.text)
            problems.append(JsonProblem("json_invalid", path, message, value.text))
        elif isinstance(value, str) and surrogate.search(value):
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
    return _patterns().surrogate.sub("\ufffd", text)


# -- the form door --------------------------------------------------------------------------------


class _RepeatedKeyError(Exception):
    """A JSON object repeats a key (raised on the fast path, which then parses again slowly)."""


def _first_seen(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _RepeatedKeyError
    return result


_form_int = partial(_int, max_chars=None, max_digits=MAX_FORM_INT_DIGITS)
_form_float = partial(_float, max_chars=None)


def parse_form_json(document: str | bytes | bytearray) -> Any:
    """Parse a JSON form: a repeated key, NaN/Infinity and oversized numbers are refused.

    Python's parser keeps the last of two equal keys, and pydantic's does too, so
    ``{"iliopsoas": 3, "iliopsoas": 0}`` would screen as 0. Here a repeated key
    (`DuplicateKeys`), NaN, Infinity, a float out of range or an integer of more than
    ``MAX_FORM_INT_DIGITS`` digits (`Refused`) stays a marker that the form's bounds walk reports
    with its field path.

    Raises:
        InvalidFormError: the document is too large or not JSON.
    """
    if len(document) > MAX_FORM_BYTES:
        raise InvalidFormError(
            [
                FieldProblem(
                    "",
                    f"{len(document):,} bytes",
                    f"a JSON form may have at most {MAX_FORM_BYTES:,} bytes "
                    f"(got {len(document):,})",
                )
            ]
        )
    try:
        try:  # the fast path: C parser, one cheap hook per object
            return json.loads(document, object_pairs_hook=_first_seen, parse_constant=_constant)
        except json.JSONDecodeError:
            raise
        except (_RepeatedKeyError, ValueError):  # a repeated key, or an integer too long to read
            return json.loads(
                document,
                object_pairs_hook=_object,
                parse_int=_form_int,
                parse_float=_form_float,
                parse_constant=_constant,
            )
    except json.JSONDecodeError as error:
        message = f"invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        raise InvalidFormError([FieldProblem("", clip(error.doc), message)]) from None
    except UnicodeDecodeError as error:
        message = f"invalid JSON: not UTF-8 text ({error.reason} at byte {error.start})"
        raise InvalidFormError([FieldProblem("", None, message)]) from None
    except RecursionError:
        message = f"invalid JSON: nested deeper than {MAX_FORM_DEPTH} levels"
        raise InvalidFormError([FieldProblem("", None, message)]) from None


def form_refusal(value: Refused) -> str:
    """The form door's message for a value `parse_form_json` refused."""
    if value.kind == "constant":
        return f"{value.text} is not a number JSON allows"
    if value.kind == "too_large":
        return f"a number too large for a float ({clip(value.text)})"
    digits = len(value.text.lstrip("-"))  # too_many_digits: the form door refuses no other
    return f"an integer may have at most {MAX_FORM_INT_DIGITS} digits (got {digits})"


def form_repeated_key(key: str, count: int) -> str:
    """The form door's message for a key given ``count`` times in one object."""
    return f"the key {clip(key)!r} appears {count} times in one JSON object; give each key once"


def clip(text: str | bytes | bytearray, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis), bytes decoded as UTF-8."""
    shown = text if isinstance(text, str) else bytes(text[: limit * 4]).decode("utf-8", "replace")
    return shown if len(shown) <= limit else shown[:limit] + "…"
