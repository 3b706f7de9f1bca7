"""FHIR R4 out: an assessment as a Bundle, every resource validated with fhir.resources (R4B)."""

from __future__ import annotations

import functools
import importlib
import json
import re
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from strategies import forms

import hipscreen
from hipscreen import Assessment, fhir
from hipscreen._cli import main
from hipscreen._fhir._resources import not_assessed_link_ids

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
WHEN = "2026-01-05T10:00:00Z"
FHIR_STRING = re.compile(r"[ \r\n\t\S]+")

RED_FLAG = {"symptoms": ["saddle_numbness"], "tightness": {"iliopsoas": 3}}
FULL_PLAN = {
    "tightness": {"iliopsoas": {"left": 3, "right": 1}},
    "strength": {"gluteus_maximus": 3, "iliopsoas": 3},
    "symptoms": ["lower_back_pain"],
    "activities": ["running"],
}
MEASURED = {
    "rom": {"hip_flexion": {"left": 95, "right": 120.5}, "hip_extension": 5, "method": "app"},
    "thomas_test": {"hip_angle": {"left": 10}, "thigh_abducts": {"right": True}},
    "active_knee_extension": {"deficit": 25},
    "back_pain": {"intensity": 6},
}


@functools.cache
def _model(kind: str) -> Any:
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    return getattr(module, kind)


def resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle["entry"]]


def of_type(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources(bundle) if r["resourceType"] == kind]


def one(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    [resource] = of_type(bundle, kind)
    return resource


def empty_elements(value: Any, where: str = "") -> list[str]:
    """Paths of null or empty elements (FHIR forbids both)."""
    if value is None or value == "" or value == [] or value == {}:
        return [where]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_elements(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_elements(v, f"{where}[{i}]")]
    return []


def references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in references(v)]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def check_bundle(bundle: dict[str, Any]) -> None:
    """Valid FHIR: the Bundle and each resource on its own; nothing empty; references resolve."""
    _model("Bundle").model_validate(bundle)
    for resource in resources(bundle):
        _model(resource["resourceType"]).model_validate(resource)
    assert empty_elements(bundle) == []
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert len(full_urls) == len(bundle["entry"])
    inner = [r for r in references(resources(bundle)) if r.startswith("urn:uuid:")]
    assert set(inner) <= full_urls
    assert json.loads(json.dumps(bundle)) == bundle  # plain JSON


def bundle_for(form: dict[str, Any], **options: Any) -> tuple[Assessment, dict[str, Any]]:
    result = hipscreen.assess(form)
    return result, result.to_fhir(subject="Patient/p1", form=form, when=WHEN, **options)


# -- generated assessments -------------------------------------------------------------------------


@pytest.mark.slow
@PROPERTY
@given(forms())
def test_every_bundle_is_valid_fhir(form: dict[str, Any]) -> None:
    assume(not isinstance(form.get("client_id"), str) or FHIR_STRING.fullmatch(form["client_id"]))
    result, bundle = bundle_for(form)
    check_bundle(bundle)
    assert bundle["type"] == "collection"
    risk = one(bundle, "RiskAssessment")
    outcomes = [p["outcome"]["coding"][0]["code"] for p in risk.get("prediction", [])]
    assert outcomes == result.finding_ids()
    assert len(of_type(bundle, "ServiceRequest")) == (result.referral is not None)
    guidance = one(bundle, "GuidanceResponse")
    assert len(guidance.get("dataRequirement", [])) == len(result.not_assessed)


@pytest.mark.slow
@PROPERTY
@given(forms())
def test_bundles_without_the_form_are_valid_fhir(form: dict[str, Any]) -> None:
    result = hipscreen.assess(form)
    bundle = result.to_fhir(subject={"reference": "Patient/p1", "display": "P. One"})
    check_bundle(bundle)
    assert not of_type(bundle, "QuestionnaireResponse")
    assert not of_type(bundle, "Observation")


@pytest.mark.slow
@PROPERTY
@given(forms())
def test_every_not_assessed_input_names_questionnaire_items(form: dict[str, Any]) -> None:
    for text in hipscreen.assess(form).not_assessed:
        assert not_assessed_link_ids(text), text


# -- chosen forms ----------------------------------------------------------------------------------


def test_red_flag_referral_is_an_emergency_proposal() -> None:
    result, bundle = bundle_for(RED_FLAG)
    check_bundle(bundle)
    request = one(bundle, "ServiceRequest")
    assert result.referral is not None
    assert request["intent"] == "proposal"
    assert request["status"] == "draft"
    assert request["priority"] == "stat"
    assert request["patientInstruction"] == result.referral.message
    assert request["performerType"]["text"] == result.referral.see
    reasons = [c["coding"][0]["code"] for c in request["reasonCode"]]
    assert reasons == list(result.referral.because)
    risk = one(bundle, "RiskAssessment")
    assert request["reasonReference"] == [{"reference": f"urn:uuid:{risk['id']}"}]
    critical = [
        p for p in risk["prediction"] if p["qualitativeRisk"]["coding"][0]["code"] == "high"
    ]
    assert [p["outcome"]["coding"][0]["code"] for p in critical] == ["possible-cauda-equina"]


@pytest.mark.parametrize(
    ("symptom", "priority"),
    [("saddle_numbness", "stat"), ("bilateral_leg_symptoms", "urgent"), ("fever", "routine")],
)
def test_referral_priority_follows_the_urgency(symptom: str, priority: str) -> None:
    result = hipscreen.assess({"symptoms": [symptom]})
    request = fhir.referral_service_request(result, subject="Patient/p1")
    assert request is not None
    assert request["priority"] == priority
    _model("ServiceRequest").model_validate(request)


def test_no_referral_no_service_request() -> None:
    result = hipscreen.assess(FULL_PLAN)
    assert fhir.referral_service_request(result, subject="Patient/p1") is None


def test_red_flag_plan_lists_what_not_to_do() -> None:
    result, bundle = bundle_for(RED_FLAG)
    plan = one(bundle, "CarePlan")
    assert result.excluded
    details = [a["detail"] for a in plan["activity"]]
    assert all(d["doNotPerform"] for d in details)
    assert [d["code"]["coding"][0]["code"] for d in details] == [
        e.exercise_id for e in result.excluded
    ]
    assert [d["statusReason"]["text"] for d in details] == [e.reason for e in result.excluded]


def test_full_plan_has_one_activity_per_exercise_with_dose_and_timing() -> None:
    result, bundle = bundle_for(FULL_PLAN)
    check_bundle(bundle)
    plan = one(bundle, "CarePlan")
    assert plan["intent"] == "proposal"
    todo = [a["detail"] for a in plan["activity"] if not a["detail"]["doNotPerform"]]
    assert [d["code"]["coding"][0]["code"] for d in todo] == [
        r.exercise.id for r in result.recommendations
    ]
    for detail, rec in zip(todo, result.recommendations, strict=True):
        timing = detail["scheduledTiming"]
        assert timing["code"]["text"] == str(rec.dose)
        repeat = timing["repeat"]
        if rec.dose.days_per_week == 7:
            assert (repeat["frequency"], repeat["periodUnit"]) == (1, "d")
        else:
            assert (repeat["frequency"], repeat["periodUnit"]) == (rec.dose.days_per_week, "wk")
        if rec.dose.hold_seconds:
            assert (repeat["duration"], repeat["durationUnit"]) == (rec.dose.hold_seconds, "s")
        assert str(rec.dose) in detail["description"]
        assert [c["coding"][0]["code"] for c in detail.get("reasonCode", [])] == list(rec.because)
    assert plan["supportingInfo"] == [
        {"reference": f"urn:uuid:{one(bundle, 'RiskAssessment')['id']}"}
    ]


def test_measurements_are_observations_in_ucum_with_laterality() -> None:
    _, bundle = bundle_for(MEASURED)
    check_bundle(bundle)
    observations = {o["note"][0]["text"]: o for o in of_type(bundle, "Observation")}
    left = observations["Form field rom.hip_flexion.left."]
    assert left["valueQuantity"] == {
        "value": 95.0,
        "unit": "°",
        "system": "http://unitsofmeasure.org",
        "code": "deg",
    }
    assert left["code"]["coding"][0]["code"] == "hip_flexion"
    assert left["method"]["coding"][0]["code"] == "app"
    site = left["bodySite"]
    assert site["coding"][0]["code"] == "24136001"
    laterality = site["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    assert laterality == "7771000"
    both = observations["Form field rom.hip_extension."]
    assert both["bodySite"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == (
        "51440002"
    )
    right = observations["Form field thomas_test.thigh_abducts.right."]
    assert right["valueBoolean"] is True
    assert right["bodySite"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == (
        "24028007"
    )
    knee = observations["Form field active_knee_extension.deficit."]
    assert "coding" not in knee["bodySite"]  # no SNOMED site for the knee angles, only text
    pain = observations["Form field back_pain.intensity."]
    assert pain["code"]["coding"][0]["code"] == "72514-3"
    assert pain["valueQuantity"] == {
        "value": 6,
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert len(observations) == 7
    qr = one(bundle, "QuestionnaireResponse")
    assert all(
        o["derivedFrom"] == [{"reference": f"urn:uuid:{qr['id']}"}] for o in observations.values()
    )
    basis = {b["reference"] for b in one(bundle, "RiskAssessment")["basis"]}
    assert basis == {f"urn:uuid:{r['id']}" for r in [qr, *observations.values()]}


def test_not_assessed_inputs_are_data_requirements() -> None:
    result, bundle = bundle_for({"tightness": {"iliopsoas": 3}})
    guidance = one(bundle, "GuidanceResponse")
    assert guidance["status"] == "data-requested"
    requirements = guidance["dataRequirement"]
    assert len(requirements) == len(result.not_assessed)
    strength = next(
        r
        for r in requirements
        if r["codeFilter"][0]["code"][0]["display"] == "strength of hip_flexors"
    )
    codes = [c["code"] for c in strength["codeFilter"][0]["code"]]
    assert codes == [
        "strength.iliopsoas",
        "strength.rectus_femoris",
        "strength.sartorius",
        "strength.hip_flexors",
    ]
    assert strength["type"] == "QuestionnaireResponse"
    assert strength["codeFilter"][0]["code"][0]["system"] == fhir.QUESTIONNAIRE_URL


def test_nothing_missing_is_success() -> None:
    form = {
        "tightness": {"iliopsoas": 1, "hamstrings": 1},
        "strength": {"iliopsoas": 5, "hamstrings": 5},
        "rom": {"hip_flexion": 120, "hip_extension": 15},
        "thomas_test": {"hip_angle": -10},
        "straight_leg_raise": {"angle": 80},
        "recent_fall": {"occurred": False},
        "recent_joint_procedure": False,
        "anticoagulant": False,
        "age": 40,
        "osteoporosis": False,
        "vertebral_fracture": False,
        "pregnancy": False,
        "symptom_checklist_completed": True,
    }
    result, bundle = bundle_for(form)
    assert result.not_assessed == ()
    guidance = one(bundle, "GuidanceResponse")
    assert guidance["status"] == "success"
    assert "dataRequirement" not in guidance


def test_an_unknown_not_assessed_text_keeps_its_words() -> None:
    result = hipscreen.assess({}).model_copy(update={"not_assessed": ("a future input",)})
    guidance = fhir.guidance_response(result, subject="Patient/p1")
    assert guidance["dataRequirement"][0]["codeFilter"][0]["code"] == [
        {"system": "urn:hipscreen:not-assessed", "display": "a future input"}
    ]


def test_risk_assessment_method_and_provenance_name_the_versions() -> None:
    result, bundle = bundle_for(FULL_PLAN)
    method = one(bundle, "RiskAssessment")["method"]["coding"][0]
    assert method["system"] == fhir.RULESET_SYSTEM
    assert method["version"] == result.ruleset_version
    provenance = one(bundle, "Provenance")
    digest = result.ruleset_version.split("+")[1]
    assert hipscreen.__version__ in provenance["agent"][0]["who"]["display"]
    assert digest in provenance["agent"][0]["who"]["display"]
    assert provenance["recorded"] == WHEN
    made = {f"urn:uuid:{r['id']}" for r in resources(bundle)} - {
        f"urn:uuid:{one(bundle, 'QuestionnaireResponse')['id']}",
        f"urn:uuid:{provenance['id']}",
    }
    assert {t["reference"] for t in provenance["target"]} == made


def test_risk_rationale_carries_the_evidence() -> None:
    result, bundle = bundle_for(FULL_PLAN)
    for prediction, finding in zip(
        one(bundle, "RiskAssessment")["prediction"], result.findings, strict=True
    ):
        assert finding.summary in prediction["rationale"]
        assert finding.source in prediction["rationale"]
        for ev in finding.evidence:
            assert f"{ev.field} = {ev.value}" in prediction["rationale"]


def test_no_findings_still_gives_a_valid_bundle() -> None:
    _, bundle = bundle_for({})
    check_bundle(bundle)
    risk = one(bundle, "RiskAssessment")
    assert "prediction" not in risk
    assert risk["note"][0]["text"].startswith("No findings")


# -- ids -------------------------------------------------------------------------------------------


def test_same_input_gives_the_same_bundle() -> None:
    assert bundle_for(FULL_PLAN)[1] == bundle_for(FULL_PLAN)[1]


def test_ids_change_with_the_subject_and_the_form() -> None:
    result = hipscreen.assess(FULL_PLAN)
    first = result.to_fhir(subject="Patient/p1", when=WHEN)
    other = result.to_fhir(subject="Patient/p2", when=WHEN)
    with_form = result.to_fhir(subject="Patient/p1", form=FULL_PLAN, when=WHEN)
    ids = [{r["id"] for r in resources(b)} for b in (first, other, with_form)]
    assert ids[0].isdisjoint(ids[1])
    assert ids[0].isdisjoint(ids[2])


def test_builders_give_the_ids_the_bundle_uses() -> None:
    """A CDS service can create one resource alone, with the id it has in the Bundle."""
    result, bundle = bundle_for(RED_FLAG)
    options = {"subject": "Patient/p1", "form": RED_FLAG}
    assert fhir.risk_assessment(result, **options)["id"] == one(bundle, "RiskAssessment")["id"]
    request = fhir.referral_service_request(result, **options)
    assert request is not None
    assert request["id"] == one(bundle, "ServiceRequest")["id"]
    plan = fhir.care_plan(result, **options)
    assert plan is not None
    assert plan["id"] == one(bundle, "CarePlan")["id"]
    assert "reasonReference" not in request  # alone, it points to nothing outside itself
    _model("ServiceRequest").model_validate(request)
    _model("CarePlan").model_validate(plan)


def test_caller_ids_replace_the_generated_ones() -> None:
    result = hipscreen.assess(MEASURED)
    chosen = {
        "RiskAssessment": "ra-1",
        "CarePlan": "cp-1",
        "Bundle": "b-1",
        "rom.hip_flexion.left": "obs-left-flexion",
    }
    bundle = result.to_fhir(subject="Patient/p1", form=MEASURED, when=WHEN, ids=chosen)
    _model("Bundle").model_validate(bundle)
    assert bundle["id"] == "b-1"
    assert one(bundle, "RiskAssessment")["id"] == "ra-1"
    assert one(bundle, "CarePlan")["supportingInfo"] == [{"reference": "RiskAssessment/ra-1"}]
    assert "obs-left-flexion" in {o["id"] for o in of_type(bundle, "Observation")}
    entry = next(e for e in bundle["entry"] if e["resource"]["id"] == "ra-1")
    assert "fullUrl" not in entry


def test_request_id_becomes_the_request_identifier() -> None:
    result = hipscreen.assess(FULL_PLAN)
    hook = "urn:uuid:d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    bundle = result.to_fhir(subject="Patient/p1", when=WHEN, request_id=hook)
    guidance = one(bundle, "GuidanceResponse")
    assert guidance["requestIdentifier"]["value"] == hook
    plain = result.to_fhir(subject="Patient/p1", when=WHEN)
    assert guidance["id"] != one(plain, "GuidanceResponse")["id"]


# -- time and subject ------------------------------------------------------------------------------


def test_a_datetime_is_written_in_utc() -> None:
    result = hipscreen.assess(FULL_PLAN)
    bundle = result.to_fhir(subject="Patient/p1", when=datetime(2026, 1, 5, 10, 0))
    assert one(bundle, "RiskAssessment")["occurrenceDateTime"] == WHEN


def test_without_when_provenance_is_recorded_now() -> None:
    bundle = hipscreen.assess(FULL_PLAN).to_fhir(subject="Patient/p1")
    assert "occurrenceDateTime" not in one(bundle, "RiskAssessment")
    recorded = datetime.fromisoformat(one(bundle, "Provenance")["recorded"])
    assert abs((datetime.now(recorded.tzinfo) - recorded).total_seconds()) < 600


@pytest.mark.parametrize("when", ["2026-01-05", "2026-01-05T10:00:00", "soon"])
def test_when_must_be_a_date_and_time_with_an_offset(when: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        hipscreen.assess({}).to_fhir(subject="Patient/p1", when=when)


@pytest.mark.parametrize("subject", ["", " ", {}])
def test_subject_must_say_who(subject: Any) -> None:
    with pytest.raises(ValueError, match="subject"):
        hipscreen.assess({}).to_fhir(subject=subject)


def test_cli_prints_a_bundle(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    path = tmp_path / "qr.json"
    path.write_text(json.dumps(fhir.questionnaire_response(MEASURED)))
    assert main(["fhir", "bundle", str(path), "--subject", "Patient/p1", "--when", WHEN]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle == bundle_for(MEASURED)[1]


def test_cli_refuses_an_empty_subject(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    path = tmp_path / "form.json"
    path.write_text("{}")
    assert main(["fhir", "bundle", str(path), "--subject", ""]) == 2
    assert "--subject" in capsys.readouterr().err


def test_cli_refuses_a_bad_when(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    path = tmp_path / "form.json"
    path.write_text("{}")
    assert main(["fhir", "bundle", str(path), "--subject", "Patient/p1", "--when", "x"]) == 2
    assert "--when" in capsys.readouterr().err
