"""Input errors: a bad intake form is refused with the field path, the value and what is allowed."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hipscreen

# (form, substrings the error message must contain): the field path, the value given, what is
# allowed and, for a near miss, the closest valid name.
BAD_FORMS: dict[str, tuple[Any, list[str]]] = {
    "unknown top-level key": (
        {"tightnes": {"iliopsoas": 2}},
        ["tightnes", "did you mean 'tightness'", "client_id", "strength", "symptoms", "rom"],
    ),
    "unknown muscle": (
        {"tightness": {"iliopsoaz": 2}},
        ["tightness.iliopsoaz", "did you mean 'iliopsoas'", "gluteus_maximus", "hip_flexors"],
    ),
    "unknown muscle in strength": (
        {"strength": {"glutes": 3}},
        ["strength.glutes", "'glutes'", "gluteus_maximus", "hip_extensors"],
    ),
    "misspelt tightness label": (
        {"tightness": {"iliopsoas": "sever"}},
        ["tightness.iliopsoas", "'sever'", "did you mean 'severe'", "'mild'", "'moderate'"],
    ),
    "misspelt strength label": (
        {"strength": {"gluteus_maximus": "goood"}},
        ["strength.gluteus_maximus", "'goood'", "did you mean 'good'", "'fair'", "'normal'"],
    ),
    "tightness label used for strength": (
        {"strength": {"gluteus_maximus": "severe"}},
        ["strength.gluteus_maximus", "'severe'", "'fair'"],
    ),
    "tightness grade above 3": (
        {"tightness": {"iliopsoas": 4}},
        ["tightness.iliopsoas", "4", "3", "'severe'"],
    ),
    "negative tightness grade": (
        {"tightness": {"rectus_femoris": -1}},
        ["tightness.rectus_femoris", "-1", "'none'"],
    ),
    "strength grade above 5": (
        {"strength": {"gluteus_maximus": 6}},
        ["strength.gluteus_maximus", "6", "5", "'normal'"],
    ),
    "bool as a grade": (
        {"strength": {"hamstrings": True}},
        ["strength.hamstrings", "True", "'normal'"],
    ),
    "float as a grade": (
        {"tightness": {"iliopsoas": 2.5}},
        ["tightness.iliopsoas", "2.5", "'severe'"],
    ),
    "whole-number float as a grade": (
        {"strength": {"gluteus_maximus": 3.0}},
        ["strength.gluteus_maximus", "3.0", "'fair'"],
    ),
    "misspelt side": (
        {"tightness": {"iliopsoas": {"left": 1, "rigth": 3}}},
        ["tightness.iliopsoas.rigth", "did you mean 'right'", "left"],
    ),
    "unknown side": (
        {"strength": {"hamstrings": {"both": 3}}},
        ["strength.hamstrings.both", "left", "right"],
    ),
    "empty per-side mapping": (
        {"tightness": {"iliopsoas": {}}},
        ["tightness.iliopsoas", "{}", "left", "right"],
    ),
    "per-side grade out of range": (
        {"tightness": {"iliopsoas": {"left": 1, "right": 5}}},
        ["tightness.iliopsoas.right", "5", "'severe'"],
    ),
    "unknown symptom": (
        {"symptoms": ["lower_back_pian"]},
        ["symptoms", "'lower_back_pian'", "did you mean 'lower_back_pain'", "knee_pain"],
    ),
    "unknown activity": (
        {"activities": ["walking", "runing"]},
        ["activities", "'runing'", "did you mean 'running'", "stair_climbing"],
    ),
    "hip flexion above 180 degrees": (
        {"rom": {"hip_flexion": 200}},
        ["rom.hip_flexion", "200", "180"],
    ),
    "hip extension below -90 degrees": (
        {"rom": {"hip_extension": -100}},
        ["rom.hip_extension", "-100", "-90"],
    ),
    "per-side angle out of range": (
        {"rom": {"hip_flexion": {"left": 120, "right": 181}}},
        ["rom.hip_flexion.right", "181", "180"],
    ),
    "angle as a string": (
        {"rom": {"hip_flexion": "100"}},
        ["rom.hip_flexion", "'100'", "number"],
    ),
    "unknown rom key": (
        {"rom": {"hip_flexon": 100}},
        ["rom.hip_flexon", "did you mean 'hip_flexion'", "hip_extension", "method"],
    ),
    "unknown rom method": (
        {"rom": {"hip_extension": 5, "method": "goniometre"}},
        ["rom.method", "'goniometre'", "did you mean 'goniometer'", "inclinometer"],
    ),
    "age above 120": ({"age": 130}, ["age", "130", "120"]),
    "negative age": ({"age": -1}, ["age", "-1", "0"]),
    "age as a string": ({"age": "forty"}, ["age", "'forty'", "integer"]),
    "empty client id": ({"client_id": ""}, ["client_id", "''"]),
    "red-flag symptom misspelt": (
        {"symptoms": ["saddle_numbnes"]},
        ["symptoms", "'saddle_numbnes'", "did you mean 'saddle_numbness'"],
    ),
    "yes instead of a boolean": ({"osteoporosis": "yes"}, ["osteoporosis", "'yes'", "boolean"]),
    "back pain intensity above 10": (
        {"back_pain": {"weeks": 2, "intensity": 11}},
        ["back_pain.intensity", "11", "10"],
    ),
    "pregnancy weeks above 45": ({"pregnancy": {"weeks": 50}}, ["pregnancy.weeks", "50", "45"]),
    "misspelt hip replacement approach": (
        {"hip_replacement": {"approach": "posterier"}},
        ["hip_replacement.approach", "'posterier'", "did you mean 'posterior'", "anterior"],
    ),
    "misspelt Thomas test key": (
        {"thomas_test": {"hip_angel": 10}},
        ["thomas_test.hip_angel", "did you mean 'hip_angle'", "knee_angle"],
    ),
    "straight-leg raise out of range on one side": (
        {"straight_leg_raise": {"angle": {"left": 140}}},
        ["straight_leg_raise.angle.left", "140", "130"],
    ),
    "list instead of a form": ([{"tightness": {}}], ["list", "mapping"]),
    "number instead of a form": (42, ["int", "mapping"]),
    "None instead of a form": (None, ["NoneType", "mapping"]),
    "invalid JSON": ('{"tightness": {"iliopsoas": 2}', ["JSON"]),
    "JSON that is not an object": ("[1, 2]", ["[1, 2]"]),
    "invalid JSON field": ('{"age": 130}', ["age", "130", "120"]),
}


@pytest.mark.parametrize(("form", "expected"), BAD_FORMS.values(), ids=BAD_FORMS.keys())
def test_bad_form_is_refused_with_a_helpful_message(form: Any, expected: list[str]) -> None:
    with pytest.raises(hipscreen.InvalidFormError) as caught:
        hipscreen.assess(form)
    message = str(caught.value)
    missing = [part for part in expected if part not in message]
    assert missing == [], f"message lacks {missing}:\n{message}"


def test_invalid_form_error_is_a_value_error_and_a_hipscreen_error() -> None:
    with pytest.raises(ValueError, match="tightnes") as caught:
        hipscreen.assess({"tightnes": {}})
    assert isinstance(caught.value, hipscreen.HipscreenError)


def test_every_problem_in_a_form_is_reported_at_once() -> None:
    form = {"tightness": {"iliopsoaz": 2}, "age": 130, "symptoms": ["knee_pian"]}
    with pytest.raises(hipscreen.InvalidFormError) as caught:
        hipscreen.assess(form)
    message = str(caught.value)
    for part in ("tightness.iliopsoaz", "age", "130", "knee_pian"):
        assert part in message
    assert len(caught.value.problems) == 3


# -- what is accepted ---------------------------------------------------------------------------


def _assessment(form: Any) -> hipscreen.Assessment:
    return hipscreen.assess(form)


@pytest.mark.parametrize("label", ["severe", "Severe", "SEVERE", " severe "])
def test_tightness_labels_are_case_insensitive(label: str) -> None:
    assert _assessment({"tightness": {"iliopsoas": label}}) == _assessment(
        {"tightness": {"iliopsoas": 3}}
    )


@pytest.mark.parametrize(
    ("label", "grade"),
    [("zero", 0), ("Trace", 1), ("POOR", 2), ("fair", 3), ("Good", 4), ("normal", 5)],
)
def test_strength_labels_read_as_their_grade(label: str, grade: int) -> None:
    form = hipscreen.IntakeForm.model_validate({"strength": {"gluteus_maximus": label}})
    assert form.strength == {"gluteus_maximus": grade}


def test_symptom_phrase_is_normalised() -> None:
    form = hipscreen.IntakeForm.model_validate({"symptoms": ["Lower back pain"]})
    assert [str(s) for s in form.symptoms] == ["lower_back_pain"]


def test_duplicate_symptoms_and_activities_collapse() -> None:
    form = hipscreen.IntakeForm.model_validate(
        {
            "symptoms": ["knee_pain", "Lower back pain", "lower_back_pain", "lower-back-pain"],
            "activities": ["running", "Running", "walking", "running"],
        }
    )
    assert sorted(str(s) for s in form.symptoms) == ["knee_pain", "lower_back_pain"]
    assert sorted(str(a) for a in form.activities) == ["running", "walking"]


def test_duplicate_symptoms_give_the_same_assessment_as_one() -> None:
    base = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}}
    once = _assessment({**base, "symptoms": ["lower_back_pain"]})
    twice = _assessment({**base, "symptoms": ["lower_back_pain", "Lower back pain"]})
    assert once == twice


def test_per_side_grades_are_accepted() -> None:
    result = _assessment(
        {
            "tightness": {"iliopsoas": {"left": "mild", "right": 3}},
            "strength": {"hamstrings": {"right": 2}},
        }
    )
    assert {"tight-hip-flexors", "weak-hip-extensors"} <= set(result.finding_ids())


def test_empty_form_is_valid_and_has_no_findings() -> None:
    assert _assessment({}).findings == ()


def test_json_string_gives_the_same_assessment_as_the_mapping() -> None:
    form = {
        "client_id": "c-1",
        "tightness": {"iliopsoas": "Severe"},
        "strength": {"gluteus_maximus": {"left": 3, "right": 4}},
        "symptoms": ["knee_pain"],
    }
    assert _assessment(json.dumps(form)) == _assessment(form)
    assert _assessment(json.dumps(form).encode()) == _assessment(form)


def test_intake_form_instance_is_accepted() -> None:
    mapping = {"client_id": "c-2", "tightness": {"hip_flexors": 2}, "age": 70}
    form = hipscreen.IntakeForm(**mapping)
    result = _assessment(form)
    assert result == _assessment(mapping)
    assert result.client_id == "c-2"


def test_intake_form_refuses_unknown_keys_listing_the_allowed_ones() -> None:
    """Direct construction raises pydantic's ValidationError, itself a ValueError."""
    with pytest.raises(pydantic.ValidationError) as caught:
        hipscreen.IntakeForm(tightnes={"iliopsoas": 2})
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    for part in ("tightnes", "did you mean 'tightness'", "client_id", "activities", "rom"):
        assert part in message


def test_intake_form_refuses_a_bad_grade_on_construction() -> None:
    with pytest.raises(pydantic.ValidationError, match="'severe'"):
        hipscreen.IntakeForm(tightness={"iliopsoas": 7})


# -- bounds and repeated keys (issues 10 and 11) -------------------------------------------------

DEEP = {"symptoms": [[[[[[[[[["hip_pain"]]]]]]]]]]}
BOUNDED: dict[str, tuple[Any, list[str]]] = {
    "an age of 5,000 digits": ({"age": 10**4999}, ["age", "at most 20 digits"]),
    "an age of 21 digits": ({"age": 10**20}, ["age", "at most 20 digits", "21 digits"]),
    "nesting deeper than 8 levels": (DEEP, ["symptoms.0.0.0.0.0.0.0", "at most 8 levels"]),
    "10,000 symptoms": ({"symptoms": ["hip_pain"] * 10_000}, ["symptoms", "at most 100 items"]),
    "a 1 MB client id": ({"client_id": "x" * 1_000_000}, ["client_id", "at most 200 characters"]),
    "a 1 MB muscle name": ({"tightness": {"m" * 1_000_000: 2}}, ["tightness", "a key may have"]),
    "NaN as an angle": ({"rom": {"hip_flexion": float("nan")}}, ["rom.hip_flexion", "finite"]),
    "infinity as an angle": ({"rom": {"hip_flexion": float("inf")}}, ["rom.hip_flexion", "finite"]),
    "a huge mapping": ({"tightness": {f"m{i}": 1 for i in range(1000)}}, ["at most 100 keys"]),
}


@pytest.mark.parametrize("as_json", [False, True], ids=["mapping", "json"])
@pytest.mark.parametrize(("form", "expected"), BOUNDED.values(), ids=BOUNDED.keys())
def test_forms_out_of_bounds_are_invalid_form_errors_naming_the_field(
    form: Any, expected: list[str], as_json: bool
) -> None:
    if as_json:
        try:
            form = json.dumps(form, allow_nan=False)
        except ValueError:
            pytest.skip("not expressible in JSON (see the JSON cases below)")
    with pytest.raises(hipscreen.InvalidFormError) as caught:
        hipscreen.assess(form)
    message = str(caught.value)
    assert len(message) < 2000, "the error repeats the oversized value"
    missing = [part for part in expected if part not in message]
    assert missing == [], f"message lacks {missing}:\n{message}"


JSON_ONLY: dict[str, tuple[str | bytes, list[str]]] = {
    "a repeated key": ('{"strength": {"iliopsoas": 3, "iliopsoas": 0}}', ["strength.iliopsoas"]),
    "a repeated top-level key": ('{"age": 30, "age": 31}', ["age", "appears 2 times"]),
    "a repeated key as bytes": (b'{"age": 30, "age": 31}', ["age", "appears 2 times"]),
    "NaN": ('{"rom": {"hip_flexion": NaN}}', ["rom.hip_flexion", "NaN"]),
    "Infinity": ('{"rom": {"hip_flexion": -Infinity}}', ["rom.hip_flexion", "-Infinity"]),
    "1e400": ('{"rom": {"hip_flexion": 1e400}}', ["rom.hip_flexion", "finite"]),
    "an integer of 5,000 digits": ('{"age": ' + "9" * 5000 + "}", ["age", "(got 5000)"]),
    "nesting 100,000 deep": (
        '{"symptoms": ' + "[" * 100_000 + "]" * 100_000 + "}",
        ["nested deeper than 8 levels"],
    ),
    "a 2 MB document": ('{"client_id": "' + "x" * 2_000_000 + '"}', ["at most 1,048,576 bytes"]),
    "bytes that are not UTF-8": (b'{"age": "\xff"}', ["not UTF-8"]),
}


@pytest.mark.parametrize(("document", "expected"), JSON_ONLY.values(), ids=JSON_ONLY.keys())
def test_json_documents_out_of_bounds_are_invalid_form_errors(
    document: str | bytes, expected: list[str]
) -> None:
    with pytest.raises(hipscreen.InvalidFormError) as caught:
        hipscreen.assess(document)
    message = str(caught.value)
    assert len(message) < 2000
    missing = [part for part in expected if part not in message]
    assert missing == [], f"message lacks {missing}:\n{message}"


def test_a_repeated_key_is_never_taken_silently() -> None:
    """Issue 11: {"iliopsoas": 3, "iliopsoas": 0} used to screen as 0."""
    with pytest.raises(hipscreen.InvalidFormError, match="'iliopsoas' appears 2 times"):
        hipscreen.assess('{"tightness": {"iliopsoas": 3, "iliopsoas": 0}}')


def test_a_form_containing_itself_is_refused_not_recursed_into() -> None:
    form: dict[str, Any] = {}
    form["rom"] = form
    with pytest.raises(hipscreen.InvalidFormError, match="at most 8 levels"):
        hipscreen.assess(form)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["hip_pain", "iliopsoas", "left", "severe", "goniometer"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["age", "tightness", "strength", "symptoms", "rom", "hip_flexion", "left", "x"]
            )
            | st.text(max_size=10),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@settings(deadline=None)
@given(JSON_VALUES)
def test_any_input_is_screened_or_an_invalid_form_error(form: Any) -> None:
    """Never ValueError, RecursionError, OverflowError or TypeError from inside."""
    for candidate in (form, json.dumps(form)):
        with contextlib.suppress(hipscreen.InvalidFormError):
            hipscreen.assess(candidate)
