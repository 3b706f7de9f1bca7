"""Strict JSON for untrusted bodies (hipscreen._intake.strictjson): what it refuses, where,
its limits."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hipscreen._intake.strictjson import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    MAX_VALUES,
    StrictJsonError,
    loads_strict,
    scrub,
)


def _problems(data: bytes | str, **limits: int) -> list[tuple[str, tuple[str | int, ...]]]:
    with pytest.raises(StrictJsonError) as caught:
        loads_strict(data, **limits)
    return [(p.kind, p.path) for p in caught.value.problems]


def test_strict_json_is_parsed_as_json_would() -> None:
    text = '{"a": [1, 2.5, -3e2, true, null, "x\\u00e9"], "b": {"c": {}}}'
    assert loads_strict(text) == json.loads(text)
    assert loads_strict(text.encode()) == json.loads(text)


def test_every_refused_value_is_reported_at_its_path() -> None:
    text = '{"a": [NaN, 1, Infinity], "b": {"c": -Infinity, "d": 1e400, "e": "\\udc00"}}'
    assert _problems(text) == [
        ("json_invalid", ("a", 0)),
        ("json_invalid", ("a", 2)),
        ("json_invalid", ("b", "c")),
        ("json_invalid", ("b", "d")),
        ("json_invalid", ("b", "e")),
    ]


def test_a_repeated_key_is_reported_once_with_its_count() -> None:
    with pytest.raises(StrictJsonError) as caught:
        loads_strict('{"t": {"k": 1, "k": 2, "k": 3, "j": 0}}')
    [problem] = caught.value.problems
    assert (problem.kind, problem.path, problem.value) == ("json_duplicate_key", ("t", "k"), "k")
    assert "given 3 times" in problem.message


def test_a_surrogate_pair_is_one_character_and_accepted() -> None:
    assert loads_strict('"\\ud83d\\ude00"') == "\U0001f600"


def test_a_lone_surrogate_in_a_key_is_refused() -> None:
    assert _problems('{"a\\ud800": 1}') == [("json_invalid", ())]


@pytest.mark.parametrize(
    "number", ["1" * (MAX_NUMBER_CHARS + 1), "0." + "1" * MAX_NUMBER_CHARS, "1" * 5000]
)
def test_a_number_longer_than_the_limit_is_refused(number: str) -> None:
    assert _problems(f'{{"n": {number}}}') == [("json_invalid", ("n",))]


def test_a_number_at_the_limit_is_read() -> None:
    assert loads_strict("9" * MAX_NUMBER_CHARS) == int("9" * MAX_NUMBER_CHARS)


def test_depth_limit_is_inclusive() -> None:
    assert loads_strict("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    assert _problems("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)) == [("json_too_deep", ())]
    assert _problems('{"a": [[[1]]]}', max_depth=3) == [("json_too_deep", ())]


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    text = '["' + "[" * 1000 + '\\"[[[", "\\\\"]'
    assert loads_strict(text) == json.loads(text)


def test_value_limit_is_inclusive() -> None:
    at_limit = "[" + ",".join(["0"] * (MAX_VALUES - 1)) + "]"  # the array and its items
    assert len(loads_strict(at_limit)) == MAX_VALUES - 1
    over = "[" + ",".join(["0"] * MAX_VALUES) + "]"
    assert _problems(over) == [("json_too_many_values", ())]


def test_values_are_counted_in_nested_objects_without_commas_too() -> None:
    nested = '{"a": {"b": {"c": {"d": 1}}}}'  # five values, no comma
    assert loads_strict(nested, max_values=5)
    assert _problems(nested, max_values=4) == [("json_too_many_values", ())]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ('{"a": 1}'.encode("utf-16"), "UTF-16"),
        ('{"a": 1}'.encode("utf-16-be"), "UTF-16"),
        ('{"a": 1}'.encode("utf-32-le"), "UTF-32"),
        (b'{"a": "\xe9"}', "invalid continuation byte at byte 7"),
        (b'{"a": "\xed\xa0\x80"}', "UTF-8"),  # an encoded surrogate is not UTF-8
        (b"", "empty"),
        (b"  \n ", "empty"),
        (b'{"a": }', "not valid JSON: Expecting value (line 1, column 7)"),
        (b'{"a": 1} {"b": 2}', "Extra data"),
        (b"{'a': 1}", "property name enclosed in double quotes"),
    ],
)
def test_bytes_that_are_not_utf8_json_are_refused_with_a_reason(data: bytes, words: str) -> None:
    with pytest.raises(StrictJsonError) as caught:
        loads_strict(data)
    [problem] = caught.value.problems
    assert (problem.kind, problem.path) == ("json_invalid", ())
    assert words in problem.message


def test_a_utf8_byte_order_mark_is_skipped() -> None:
    assert loads_strict(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    assert loads_strict('\ufeff{"a": 1}') == {"a": 1}


def test_scrub_replaces_lone_surrogates_only() -> None:
    assert scrub("a\ud800b\U0001f600") == "a\ufffdb\U0001f600"
    scrub("a\udc00").encode("utf-8")  # encodable


_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | _FINITE | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def _has_surrogate(value: Any) -> bool:
    text = json.dumps(value, ensure_ascii=False)
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


@settings(deadline=None)
@given(_JSON_VALUES)
def test_any_strict_json_document_reads_as_json_reads_it(value: Any) -> None:
    text = json.dumps(value)
    if _has_surrogate(value):
        with pytest.raises(StrictJsonError):
            loads_strict(text)
        return
    parsed = loads_strict(text.encode())
    assert parsed == json.loads(text) or (isinstance(value, float) and math.isclose(parsed, value))


@settings(deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_parse_or_raise_strict_json_error_only(data: bytes) -> None:
    try:
        loads_strict(data)
    except StrictJsonError as error:
        refused = error
    else:
        return
    assert refused.problems
    assert all(problem.message for problem in refused.problems)
