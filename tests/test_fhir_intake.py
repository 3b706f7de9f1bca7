"""FHIR R4 in: the intake Questionnaire, forms as QuestionnaireResponses and back."""

from __future__ import annotations

import copy
import functools
import importlib
import json
import re
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from strategies import forms

import hipscreen
from hipscreen import IntakeForm, InvalidFormError, fhir
from hipscreen._cli import main
from hipscreen._vocabulary import Activity, RomMethod, Symptom


@functools.cache
def _model(kind: str) -> Any:
    """The fhir.resources R4B model of a resource type (imported on first use: it is slow)."""
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    return getattr(module, kind)


def validate(resource: dict[str, Any]) -> None:
    """The resource is valid FHIR (R4B structure and cardinality, as fhir.resources checks)."""
    _model(resource["resourceType"]).model_validate(resource)


def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every item of a Questionnaire or QuestionnaireResponse item tree."""
    out = []
    for item in items:
        out.append(item)
        out += walk(item.get("item", []))
        for answer in item.get("answer", []):
            out += walk(answer.get("item", []))
    return out


def by_link_id(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["linkId"]: item for item in walk(resource.get("item", []))}


def response(*items: dict[str, Any]) -> dict[str, Any]:
    """A flat QuestionnaireResponse with these items."""
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": list(items)}


def answer(link_id: str, **value: Any) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [value]}


def problems(qr: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidFormError) as caught:
        fhir.from_questionnaire_response(qr)
    return [(p.field, p.message) for p in caught.value.problems]


# -- the Questionnaire ---------------------------------------------------------------------------


def test_questionnaire_is_valid_fhir() -> None:
    q = fhir.questionnaire()
    validate(q)
    assert q["url"] == fhir.QUESTIONNAIRE_URL
    assert q["version"] == hipscreen.__version__
    link_ids = [item["linkId"] for item in walk(q["item"])]
    assert len(link_ids) == len(set(link_ids))


def test_every_form_field_is_a_top_level_item() -> None:
    """Items come from the IntakeForm schema, so a new field appears without code changes."""
    top = [item["linkId"] for item in fhir.questionnaire()["item"]]
    assert top == list(IntakeForm.model_fields)


def test_a_new_field_becomes_an_item_by_itself() -> None:
    """The items are read off the model's schema: a field added to the form needs no FHIR code."""
    from enum import StrEnum

    from pydantic import Field

    from hipscreen._fhir._questionnaire import _Builder

    class Sleep(StrEnum):
        POOR = "poor"
        GOOD = "good"

    class Extended(IntakeForm):
        sleep: Sleep | None = Field(default=None, description="How the person sleeps.")
        steps: int | None = Field(default=None, ge=0, le=100_000)

    schema = Extended.model_json_schema(mode="validation")
    items = {item.link_id: item for item in _Builder(schema).properties(schema, ())}
    assert items["sleep"].type == "choice"
    assert [o.code for o in items["sleep"].options] == ["poor", "good"]
    assert items["sleep"].text == "How the person sleeps"
    assert (items["steps"].type, items["steps"].maximum) == ("integer", 100_000)


def test_item_types_follow_the_form() -> None:
    items = by_link_id(fhir.questionnaire())
    assert items["client_id"]["type"] == "string"
    assert items["client_id"]["maxLength"] == 200
    assert items["age"]["type"] == "integer"
    assert items["osteoporosis"]["type"] == "boolean"
    assert items["rom.hip_flexion.left"]["type"] == "decimal"
    assert items["rom.hip_flexion"]["type"] == "group"
    assert items["recent_fall"]["type"] == "group"
    assert items["recent_fall.occurred"]["required"] is True
    # A record without a required field is a yes/no question carrying its fields.
    assert items["pregnancy"]["type"] == "boolean"
    assert [child["linkId"] for child in items["pregnancy"]["item"]] == ["pregnancy.weeks"]


def test_choices_come_from_the_vocabularies() -> None:
    items = by_link_id(fhir.questionnaire())

    def codes(link_id: str) -> list[str]:
        return [o["valueCoding"]["code"] for o in items[link_id]["answerOption"]]

    assert codes("symptoms") == [s.value for s in Symptom]
    assert items["symptoms"]["repeats"] is True
    assert codes("activities") == [a.value for a in Activity]
    assert codes("rom.method") == [m.value for m in RomMethod]


def test_grades_are_choices_with_their_number_as_ordinal_value() -> None:
    items = by_link_id(fhir.questionnaire())
    options = items["strength.gluteus_maximus.left"]["answerOption"]
    assert [o["valueCoding"]["code"] for o in options] == [
        "zero",
        "trace",
        "poor",
        "fair",
        "good",
        "normal",
    ]
    assert [o["extension"][0]["valueDecimal"] for o in options] == [0, 1, 2, 3, 4, 5]


def test_sided_values_are_groups_of_both_left_and_right() -> None:
    items = by_link_id(fhir.questionnaire())
    group = items["tightness.iliopsoas"]
    assert group["type"] == "group"
    assert [c["linkId"] for c in group["item"]] == [
        "tightness.iliopsoas.both",
        "tightness.iliopsoas.left",
        "tightness.iliopsoas.right",
    ]
    left = items["tightness.iliopsoas.left"]
    assert left["enableWhen"] == [
        {"question": "tightness.iliopsoas.both", "operator": "exists", "answerBoolean": False}
    ]


def test_questionnaire_is_a_fresh_copy() -> None:
    first = fhir.questionnaire()
    first["item"].clear()
    assert fhir.questionnaire()["item"]


# -- form → QuestionnaireResponse → form -----------------------------------------------------------


# Generating forms is slow on a loaded machine; the sizes come from the hypothesis profile.
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
FHIR_STRING = re.compile(r"[ \r\n\t\S]+")
LINK_IDS = frozenset(by_link_id(fhir.questionnaire()))


@PROPERTY
@given(forms())
def test_form_round_trips_through_a_valid_questionnaire_response(data: dict[str, Any]) -> None:
    """form → QuestionnaireResponse → form gives the same form; the response is valid FHIR."""
    form = IntakeForm.model_validate(data)
    assume(form.client_id is None or FHIR_STRING.fullmatch(form.client_id))
    qr = fhir.questionnaire_response(form, subject="Patient/1")
    assert fhir.from_questionnaire_response(qr) == form
    assert set(by_link_id(qr)) <= LINK_IDS
    validate(qr)


def test_a_flat_response_reads_like_a_nested_one() -> None:
    form = {"tightness": {"iliopsoas": {"left": 2}}, "pregnancy": {"weeks": 20}, "age": 33}
    nested = fhir.questionnaire_response(form)
    flat = {**nested, "item": []}
    for item in walk(nested["item"]):
        if "answer" in item:
            flat["item"].append(
                {
                    "linkId": item["linkId"],
                    "answer": [{k: v for k, v in a.items() if k != "item"} for a in item["answer"]],
                }
            )
    assert fhir.from_questionnaire_response(flat) == IntakeForm.model_validate(form)


def test_response_answers_what_was_given_only() -> None:
    qr = fhir.questionnaire_response({"tightness": {"iliopsoas": "Moderate"}, "age": 50})
    items = by_link_id(qr)
    assert set(items) == {"age", "tightness", "tightness.iliopsoas", "tightness.iliopsoas.both"}
    coding = items["tightness.iliopsoas.both"]["answer"][0]["valueCoding"]
    assert coding["code"] == "moderate"
    assert qr["questionnaire"] == f"{fhir.QUESTIONNAIRE_URL}|{hipscreen.__version__}"


def test_response_id_is_the_same_for_the_same_form() -> None:
    first = fhir.questionnaire_response({"age": 50}, subject="Patient/1")
    again = fhir.questionnaire_response({"age": 50}, subject="Patient/1")
    other = fhir.questionnaire_response({"age": 51}, subject="Patient/1")
    assert first["id"] == again["id"] != other["id"]
    assert fhir.questionnaire_response({"age": 50}, id="qr-1")["id"] == "qr-1"


@pytest.mark.parametrize("client_id", ["\x0b", "a\u2028b"])
def test_text_a_fhir_string_cannot_hold_is_refused(client_id: str) -> None:
    with pytest.raises(InvalidFormError) as caught:
        fhir.questionnaire_response({"client_id": client_id})
    [problem] = caught.value.problems
    assert problem.field == "client_id"
    assert "FHIR string" in problem.message


def test_a_record_answered_yes_alone_keeps_it_without_details() -> None:
    """ "Pregnant, weeks not known" survives the trip (it is not the same as not asked)."""
    qr = fhir.questionnaire_response({"pregnancy": {}})
    assert by_link_id(qr)["pregnancy"]["answer"] == [{"valueBoolean": True}]
    form = fhir.from_questionnaire_response(qr)
    assert form.pregnancy is not None
    assert form.pregnancy.weeks is None


# -- blank is "not asked" --------------------------------------------------------------------------


def test_unanswered_items_stay_unset() -> None:
    qr = response(
        {"linkId": "anticoagulant"},
        {"linkId": "recent_joint_procedure", "answer": []},
        answer("age", valueInteger=30),
    )
    form = fhir.from_questionnaire_response(qr)
    assert form.anticoagulant is None
    assert form.recent_joint_procedure is None
    assert "anticoagulant use (asked yes or no)" in hipscreen.assess(form).not_assessed


def test_a_record_answered_no_is_left_out() -> None:
    form = fhir.from_questionnaire_response(response(answer("back_pain", valueBoolean=False)))
    assert form.back_pain is None


def test_a_tri_state_record_answered_no_is_a_stated_no() -> None:
    """``pregnancy: false`` (not pregnant) is an answer of its own, not a blank."""
    form = fhir.from_questionnaire_response(response(answer("pregnancy", valueBoolean=False)))
    assert form.pregnancy is False
    assert fhir.from_questionnaire_response(fhir.questionnaire_response(form)) == form


# -- errors name the field -------------------------------------------------------------------------


def test_unknown_link_id_is_named_with_a_suggestion() -> None:
    [(field, message)] = problems(response(answer("tightness.iliopsoa.left", valueInteger=2)))
    assert field == "tightness.iliopsoa.left"
    assert "unknown linkId" in message
    assert "did you mean 'tightness.iliopsoas.left'" in message


def test_wrong_answer_type_is_named() -> None:
    [(field, message)] = problems(response(answer("age", valueString="forty")))
    assert field == "age"
    assert "valueInteger" in message
    assert "valueString" in message


def test_a_boolean_is_not_an_integer() -> None:
    [(field, message)] = problems(response(answer("age", valueInteger=True)))
    assert field == "age"
    assert "integer" in message


def test_unknown_code_lists_the_allowed_codes() -> None:
    qr = response(
        answer("symptoms", valueCoding={"system": "urn:hipscreen:symptom", "code": "hip_ache"})
    )
    [(field, message)] = problems(qr)
    assert field == "symptoms"
    assert "'hip_ache'" in message
    assert "hip_pain" in message


def test_a_code_from_another_system_is_refused() -> None:
    qr = response(answer("rom.method", valueCoding={"system": "http://loinc.org", "code": "app"}))
    [(field, message)] = problems(qr)
    assert field == "rom.method"
    assert "urn:hipscreen:rom-method" in message


def test_two_answers_to_a_single_question_are_refused() -> None:
    qr = response({"linkId": "age", "answer": [{"valueInteger": 3}, {"valueInteger": 4}]})
    [(field, message)] = problems(qr)
    assert field == "age"
    assert "one answer" in message


def test_an_item_given_twice_is_refused() -> None:
    qr = response(answer("age", valueInteger=3), answer("age", valueInteger=4))
    [(field, message)] = problems(qr)
    assert field == "age"
    assert "twice" in message


def test_both_sides_and_one_side_contradict() -> None:
    grade = {"system": "urn:hipscreen:tightness-grade", "code": "mild"}
    qr = response(
        answer("tightness.iliopsoas.both", valueCoding=grade),
        answer("tightness.iliopsoas.left", valueCoding=grade),
    )
    [(field, message)] = problems(qr)
    assert field == "tightness.iliopsoas"
    assert "both sides" in message


def test_a_record_answered_no_with_details_contradicts() -> None:
    qr = response(
        answer("pregnancy", valueBoolean=False), answer("pregnancy.weeks", valueInteger=9)
    )
    [(field, message)] = problems(qr)
    assert field == "pregnancy"
    assert "pregnancy.weeks" in message


def test_the_forms_own_contradictions_are_reported() -> None:
    qr = response(
        answer("recent_fall.occurred", valueBoolean=False),
        answer(
            "symptoms",
            valueCoding={"system": "urn:hipscreen:symptom", "code": "recent_fall_or_minor_trauma"},
        ),
    )
    [(_, message)] = problems(qr)
    assert "recent_fall.occurred is false" in message


def test_out_of_range_answers_name_the_field() -> None:
    [(field, message)] = problems(response(answer("age", valueInteger=130)))
    assert field == "age"
    assert "120" in message


def test_a_required_item_of_an_answered_group_is_named() -> None:
    [(field, _)] = problems(response(answer("recent_fall.new_pain", valueBoolean=True)))
    assert field == "recent_fall.occurred"


def test_a_group_takes_no_answer() -> None:
    [(field, message)] = problems(response(answer("tightness", valueString="x")))
    assert field == "tightness"
    assert "group" in message


def test_every_problem_is_reported_at_once() -> None:
    qr = response(
        answer("agee", valueInteger=3),
        answer("osteoporosis", valueInteger=1),
        answer("activities", valueCoding={"code": "swimming"}),
    )
    assert [field for field, _ in problems(qr)] == ["agee", "osteoporosis", "activities"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"resourceType": "Patient"}, "resourceType"),
        ({"questionnaire": "http://example.org/Questionnaire/other"}, "questionnaire"),
        ({"status": "entered-in-error"}, "status"),
    ],
)
def test_the_resource_itself_is_checked(change: dict[str, Any], field: str) -> None:
    qr = {**response(answer("age", valueInteger=3)), **change}
    assert [f for f, _ in problems(qr)] == [field]


def test_a_response_that_is_not_an_object_is_refused() -> None:
    assert [f for f, _ in problems(["not", "a", "resource"])] == [""]


def test_the_questionnaire_version_may_differ() -> None:
    qr = {**response(answer("age", valueInteger=3)), "questionnaire": fhir.QUESTIONNAIRE_URL}
    assert fhir.from_questionnaire_response(qr).age == 3


# -- the command line ------------------------------------------------------------------------------


def test_cli_prints_the_questionnaire(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fhir", "questionnaire"]) == 0
    assert json.loads(capsys.readouterr().out) == fhir.questionnaire()


def test_cli_reads_a_response(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    path = tmp_path / "qr.json"
    path.write_text(json.dumps(fhir.questionnaire_response({"age": 44, "symptoms": ["limp"]})))
    assert main(["fhir", "read", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"age": 44, "symptoms": ["limp"]}


def test_cli_names_the_bad_link_id(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    path = tmp_path / "qr.json"
    path.write_text(json.dumps(response(answer("agee", valueInteger=3))))
    assert main(["fhir", "read", str(path)]) == 2
    err = capsys.readouterr().err
    assert "agee: unknown linkId" in err
    assert "Traceback" not in err


def test_cli_without_a_fhir_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fhir"]) == 2
    assert "usage: hipscreen fhir" in capsys.readouterr().err


def test_public_names_are_listed() -> None:
    public = {n for n in vars(fhir) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if isinstance(getattr(fhir, n), type(sys))}
    assert public - modules == set(fhir.__all__)
    assert list(fhir.__all__) == sorted(fhir.__all__)


def test_an_answer_is_never_changed_in_place() -> None:
    qr = fhir.questionnaire_response({"age": 30, "symptoms": ["limp"]})
    before = copy.deepcopy(qr)
    fhir.from_questionnaire_response(qr)
    assert qr == before
