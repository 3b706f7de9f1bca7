"""The intake package: one generic per-side model, one strict JSON reader behind both doors, one
way of naming unknown keys."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pydantic
import pytest
import strategies
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hipscreen._errors import InvalidFormError, StrictJsonError
from hipscreen._instruments.form import InstrumentsBlock
from hipscreen._intake import form as form_module
from hipscreen._intake.form import IntakeForm, Sided, coerce_form
from hipscreen._intake.strictjson import loads_strict

PER_SIDE = {
    name: model
    for name, model in vars(form_module).items()
    if name.isidentifier()
    and inspect.isclass(model)
    and issubclass(model, pydantic.BaseModel)
    and set(model.model_fields) == {"left", "right"}
    and model is not Sided
}


def test_every_per_side_model_is_the_one_generic_with_nothing_of_its_own() -> None:
    assert len(PER_SIDE) == 9
    for name, model in PER_SIDE.items():
        (base,) = model.__bases__
        assert base.__pydantic_generic_metadata__["origin"] is Sided, name
        assert "__annotations__" not in vars(model) or not vars(model)["__annotations__"], name
        own = [f for f, v in vars(model).items() if callable(v) and not f.startswith("__")]
        assert own == [], name


def test_the_schema_names_each_per_side_model_as_before() -> None:
    defs = IntakeForm.model_json_schema()["$defs"]
    assert set(PER_SIDE) <= set(defs)
    assert not [name for name in defs if name.startswith("Sided") and name not in PER_SIDE]
    assert defs["SidedTightness"]["description"] == "Tightness graded per side."
    assert "description" not in defs["SidedThomasHip"]  # it never had one


def test_per_side_values_give_their_sides() -> None:
    form = IntakeForm.model_validate({"tightness": {"iliopsoas": {"right": "mild"}}})
    sided = form.tightness["iliopsoas"]
    assert isinstance(sided, Sided)
    assert list(sided.sides()) == [("right", 1)]
    with pytest.raises(pydantic.ValidationError, match="needs 'left', 'right' or both"):
        PER_SIDE["SidedFlag"].model_validate({})


def test_unknown_instruments_and_fields_are_named_the_same_way() -> None:
    with pytest.raises(pydantic.ValidationError) as block:
        InstrumentsBlock.model_validate({"lefss": {}})
    (error,) = block.value.errors()
    assert error["type"] == "unknown_field"
    assert error["msg"].startswith("unknown instrument 'lefss'; did you mean 'lefs'? (allowed:")
    with pytest.raises(pydantic.ValidationError) as form:
        IntakeForm.model_validate({"agee": 3})
    (error,) = form.value.errors()
    assert error["type"] == "unknown_field"
    assert error["msg"].startswith("unknown field 'agee'; did you mean 'age'? (allowed: client_id")


def test_an_entry_key_keeps_pydantic_error_in_the_block_and_is_an_unknown_field_on_the_form() -> (
    None
):
    entry = {"lefs": {"score": 40, "computed_by_caller": True, "colour": 1}}
    with pytest.raises(pydantic.ValidationError) as block:
        InstrumentsBlock.model_validate(entry)
    assert [e["type"] for e in block.value.errors()] == ["extra_forbidden"]
    with pytest.raises(pydantic.ValidationError) as form:
        IntakeForm.model_validate({"instruments": entry})
    assert [e["type"] for e in form.value.errors()] == ["unknown_field"]


# The form door keeps its wording, including where a repeated key makes it read numbers itself.
FORM_DOOR = {
    "NaN": ('{"age": NaN}', "age: NaN is not a number JSON allows"),
    "1e400 alone": ('{"rom": {"hip_flexion": 1e400}}', "needs a finite number (got inf)"),
    "1e400 beside a repeated key": (
        '{"age": 1e400, "x": 1, "x": 2}',
        "age: a number too large for a float (1e400)",
    ),
    "21 digits alone": ('{"age": ' + "9" * 21 + "}", "at most 20 digits (got 21 digits)"),
    "21 digits beside a repeated key": (
        '{"age": -' + "9" * 21 + ', "x": 1, "x": 2}',
        "age: an integer may have at most 20 digits (got 21)",
    ),
    "a repeated key hides its values": (
        '{"a": {"x": NaN}, "a": {"y": 1}, "b": NaN}',
        "a: the key 'a' appears 2 times in one JSON object; give each key once\n"
        "  - b: NaN is not a number JSON allows",
    ),
}


@pytest.mark.parametrize(("document", "expected"), FORM_DOOR.values(), ids=FORM_DOOR.keys())
def test_the_form_door_words_refused_values_as_before(document: str, expected: str) -> None:
    with pytest.raises(InvalidFormError) as caught:
        coerce_form(document)
    assert expected in str(caught.value)


BAD = ["NaN", "Infinity", "-Infinity", "1e400"]
KEYS = st.sampled_from(["age", "rom", "left", "x", "y"])
SHAPES = st.recursive(
    st.integers(-5, 5) | st.sampled_from(["hip_pain", "mild"]) | st.sampled_from(BAD),
    lambda inner: st.dictionaries(KEYS, inner, max_size=3) | st.lists(inner, max_size=3),
    max_leaves=8,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return value if value in BAD else json.dumps(value)


@settings(deadline=None)
@given(st.dictionaries(KEYS, SHAPES, min_size=1, max_size=4))
def test_both_doors_refuse_the_same_values_at_the_same_places(document: dict[str, Any]) -> None:
    assume(_depth(document) <= 6)  # deeper is a form-bound problem that hides what is inside
    text = _text(document)
    try:
        loads_strict(text)
        strict: set[str] = set()
    except StrictJsonError as error:
        strict = {".".join(map(str, p.path)) for p in error.problems}
    try:
        coerce_form(text)
        door: set[str] = set()
    except InvalidFormError as error:
        door = {
            p.field
            for p in error.problems
            if p.message.startswith(("NaN ", "Infinity ", "-Infinity ", "a number too large "))
            or p.message.startswith("needs a finite number")
        }
    assert door == strict


# -- issue 24: canonical forms skip the Python callbacks, with the same result -------------------


def _same_form(quick: IntakeForm, full: IntakeForm) -> bool:
    return (
        type(quick) is type(full)
        and quick == full
        and quick.model_fields_set == full.model_fields_set
        and repr(quick) == repr(full)
        and quick.model_dump_json() == full.model_dump_json()
    )


@given(strategies.forms())
@settings(deadline=None)
def test_the_fast_path_gives_the_form_full_validation_gives(data: dict[str, Any]) -> None:
    full = IntakeForm.model_validate(data)
    try:
        quick = form_module._fast_validator().validate_python(data)
    except pydantic.ValidationError:
        return  # not canonical (a label, another spelling): full validation only
    assert _same_form(quick, full)
    assert _same_form(coerce_form(data), full)


def test_the_fast_path_takes_canonical_forms_and_refuses_the_rest() -> None:
    fast = form_module._fast_validator()
    canonical = strategies.random_forms(60, 24)
    canonical = [f for f in canonical if "severe" not in json.dumps(f)]
    for data in canonical:
        try:
            quick = fast.validate_python(data)
        except pydantic.ValidationError:
            continue
        assert _same_form(quick, IntakeForm.model_validate(data))
    given_canonically = {"tightness": {"iliopsoas": {"left": 1}}, "rom": {"hip_flexion": 90}}
    assert fast.validate_python(given_canonically) == IntakeForm.model_validate(given_canonically)

    class Text(str):
        pass

    # What full validation refuses or reads differently, the fast path refuses (and full
    # validation decides): labels, other spellings, bytes, numbers as names, floats and bools as
    # grades, unknown keys.
    for refused in (
        {"tightness": {"iliopsoas": "severe"}},
        {"tightness": {"Iliopsoas": 2}},
        {"tightness": {b"iliopsoas": 2}},
        {"symptoms": [b"hip_pain"]},
        {"rom": {"method": b"inclinometer"}},
        {"tightness": {"iliopsoas": 2.0}},
        {"tightness": {"iliopsoas": True}},
        {"strength": {"iliopsoas": {"left": "5"}}},
        {"agee": 3},
        {"rom": {"hip_flexion": {"lft": 3}}},
    ):
        with pytest.raises(pydantic.ValidationError):
            fast.validate_python(refused)
    assert coerce_form({"tightness": {Text("iliopsoas"): 2}}).tightness == {"iliopsoas": 2}


def test_unknown_keys_are_named_in_the_model_that_has_them_and_other_errors_keep_theirs() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        IntakeForm.model_validate(
            {"rom": {"hip_flexion": {"left": 500, "rigth": 3}}, "age": 300, "x": None}
            | {"thomas_test": {"knee_ange": 1}}
        )
    by_loc = {error["loc"]: error for error in caught.value.errors()}
    flexion = by_loc["rom", "hip_flexion", "per_side", "rigth"]
    assert flexion["type"] == "unknown_field"
    assert flexion["msg"] == "unknown field 'rigth'; did you mean 'right'? (allowed: left, right)"
    knee = by_loc["thomas_test", "knee_ange"]
    assert knee["msg"].startswith("unknown field 'knee_ange'; did you mean 'knee_angle'?")
    assert by_loc["x",]["msg"].startswith("unknown field 'x' (allowed: client_id, age,")
    # An unknown key on the form itself restates every error; pydantic's wording stays.
    assert by_loc["age",]["msg"] == "Input should be less than or equal to 120"
    with pytest.raises(pydantic.ValidationError) as nested_only:
        IntakeForm.model_validate({"rom": {"hip_flexion": {"lft": 1}}, "age": 300})
    age = {e["loc"]: e for e in nested_only.value.errors()}["age",]
    assert age["type"] == "less_than_equal"
    assert age["ctx"] == {"le": 120}  # as pydantic gave it: only the nested model restated
