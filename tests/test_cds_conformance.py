"""CDS Hooks 2.0.1 conformance of the web service, requirement by requirement.

`data/cds-hooks_2.0_service_requirements.csv` is the spec's requirement matrix (the rows whose
actor includes "Service"), from inferno-framework/davinci-crd-test-kit
(lib/davinci_crd_test_kit/requirements/cds-hooks_2.0_requirements.xlsx, Apache-2.0). Every SHALL
and SHALL NOT row is either checked by a test here (`CHECKED`, row id → test name) or named in
`NOT_A_SERVICE_BEHAVIOUR` with the reason (client authentication and CORS rows point to
test_service_auth.py); `test_every_shall_row_is_accounted_for` fails on a row
that is neither. The HL7 invariants (cds-resp-1..7, cds-fb-1..3, cds-r-1 from HL7/cds-hooks
input/fsh/invariants) are ported as `check_response` / `check_card` and the feedback tests.
"""

from __future__ import annotations

import ast
import csv
import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import forms

import hipscreen
from hipscreen import _cds_hooks, _service

fastapi = pytest.importorskip("fastapi", reason="the service extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

MATRIX = Path(__file__).parent / "data" / "cds-hooks_2.0_service_requirements.csv"
HOOK = _cds_hooks.HOOK
IMBALANCE = {
    "client_id": "c-3",
    "tightness": {"iliopsoas": "severe"},
    "strength": {"gluteus_maximus": 3},
    "symptoms": ["knee_pain"],
}
REFERRED = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}}


def _fake_resources(assessment: Any, kind: str, patient: str | None) -> dict[str, Any]:
    """A minimal resource of the kind asked (the tests of the default factory are below)."""
    resource: dict[str, Any] = {"resourceType": kind, "status": "draft", "intent": "proposal"}
    if patient is not None:
        resource["subject"] = {"reference": f"Patient/{patient}"}
    return resource


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = _service.create_app(resources=_fake_resources, form_mapper=None)
    with TestClient(app) as test_client:
        yield test_client


def _call(form: Any, instance: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "hook": HOOK,
        "hookInstance": instance or str(uuid.uuid4()),
        "context": {"intakeForm": form},
        **extra,
    }


def _patient_view(prefetch: Any = None, **extra: Any) -> dict[str, Any]:
    call: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": "p-1"},
        **extra,
    }
    if prefetch is not None:
        call["prefetch"] = prefetch
    return call


# -- the ported invariants -------------------------------------------------------------------------


def check_not_empty(value: Any, path: str = "$", *, root_cards_ok: bool = True) -> None:
    """Row 3: no JSON element is null or empty (the empty ``cards`` array excepted)."""
    assert value is not None, f"{path} is null"
    if isinstance(value, str):
        assert value != "", f"{path} is an empty string"
    elif isinstance(value, list):
        assert value or (root_cards_ok and path == "$.cards"), f"{path} is an empty array"
        for i, item in enumerate(value):
            check_not_empty(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        assert value, f"{path} is an empty object"
        for key, item in value.items():
            check_not_empty(item, f"{path}.{key}")


def _absolute_url(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def check_coding(coding: Any, *, display_required: bool) -> None:
    """Rows 216-220."""
    assert isinstance(coding, dict)
    assert isinstance(coding.get("system"), str)
    assert coding["system"]
    assert isinstance(coding.get("code"), str)
    assert coding["code"]
    if display_required:  # cds-resp-4, rows 100, 136, 219
        assert isinstance(coding.get("display"), str)
        assert coding["display"].strip()
    elif "display" in coding:
        assert isinstance(coding["display"], str)


def check_card(card: dict[str, Any]) -> None:
    """Rows 80-147 and cds-resp-1..7."""
    assert isinstance(card.get("uuid"), str)  # 80
    uuid.UUID(card["uuid"])
    assert isinstance(card.get("summary"), str)
    assert 0 < len(card["summary"]) < 140
    if "detail" in card:
        assert isinstance(card["detail"], str)  # 85 (GFM: text; escaping tested in test_cds)
    assert card.get("indicator") in ("info", "warning", "critical")  # 87, 88
    source = card.get("source")
    assert isinstance(source, dict)  # 90
    assert isinstance(source.get("label"), str)
    assert source["label"]
    if "url" in source:
        assert _absolute_url(source["url"])  # 107
    if "icon" in source:
        assert _absolute_url(source["icon"])  # 111
    if "topic" in source:
        check_coding(source["topic"], display_required=False)  # 115
    suggestions = card.get("suggestions")
    if suggestions is not None:
        assert isinstance(suggestions, list)  # 92
        assert card.get("selectionBehavior") in ("at-most-one", "any")  # 93, 95, 96, cds-resp-6
        if card["selectionBehavior"] == "at-most-one":  # cds-resp-1
            assert sum(bool(s.get("isRecommended")) for s in suggestions) <= 1
        for suggestion in suggestions:
            assert isinstance(suggestion.get("label"), str)
            assert suggestion["label"]
            if "uuid" in suggestion:
                assert isinstance(suggestion["uuid"], str)  # 119
            if "isRecommended" in suggestion:
                assert isinstance(suggestion["isRecommended"], bool)  # 121
            if "actionSelectionBehavior" in suggestion:  # cds-resp-7
                assert suggestion["actionSelectionBehavior"] in ("all", "any", "at-most-one")
            for action in suggestion.get("actions", []):  # 124
                assert action.get("type") in ("create", "update", "delete")  # 127
                assert isinstance(action.get("description"), str)  # 128, cds-resp-5
                if action["type"] in ("create", "update"):  # 130-132
                    assert isinstance(action.get("resource"), dict)
                    assert isinstance(action["resource"].get("resourceType"), str)
                else:  # 133-135, cds-resp-2
                    assert "resource" not in action
                    assert isinstance(action.get("resourceId"), str)
    else:
        assert "selectionBehavior" not in card
    if "overrideReasons" in card:
        assert isinstance(card["overrideReasons"], list)  # 98
        for coding in card["overrideReasons"]:
            check_coding(coding, display_required=True)  # 100, 136, cds-resp-4
    for link in card.get("links", []):  # 103
        assert isinstance(link.get("label"), str)
        assert link["label"]
        assert _absolute_url(link.get("url"))  # 139
        assert link.get("type") in ("absolute", "smart")  # 141, 142
        if "appContext" in link:
            assert isinstance(link["appContext"], str)  # 144
            assert link["type"] == "smart"  # 147, cds-resp-3


def check_response(body: Any) -> None:
    """Rows 74, 75 and every card; the uuids of one response are unique."""
    assert isinstance(body, dict)
    assert isinstance(body.get("cards"), list)  # 74
    check_not_empty(body)
    for card in body["cards"]:
        check_card(card)
    ids = [c["uuid"] for c in body["cards"]] + [
        s["uuid"] for c in body["cards"] for s in c.get("suggestions", []) if "uuid" in s
    ]
    assert len(ids) == len(set(ids))
    if "systemActions" in body:  # 75
        assert isinstance(body["systemActions"], list)


_TOKEN = re.compile(r"\{\{(.*?)\}\}")
_USER_IDS = {"userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"}


# -- discovery -------------------------------------------------------------------------------------


def test_discovery_is_at_base_cds_services_and_answers_200(client: TestClient) -> None:
    """Rows 4, 5, 13: GET {base}/cds-services answers 200 with JSON (row 1)."""
    answer = client.get("/cds-services")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")


def test_discovery_lists_services_with_required_fields(client: TestClient) -> None:
    """Rows 6-12, 3: a list of services with hook, description, id; nothing empty."""
    body = client.get("/cds-services").json()
    check_not_empty(body)
    assert isinstance(body["services"], list)
    assert body["services"]
    for service in body["services"]:
        for key in ("hook", "description", "id"):
            assert isinstance(service[key], str)
            assert service[key]
        assert isinstance(service.get("title", ""), str)
        if "prefetch" in service:
            assert isinstance(service["prefetch"], dict)
            assert all(isinstance(v, str) for v in service["prefetch"].values())


def test_discovery_sends_no_empty_prefetch(client: TestClient) -> None:
    """Row 3: the custom hook needs no prefetch, so the member is left out (was ``{}``)."""
    services = client.get("/cds-services").json()["services"]
    custom = next(s for s in services if s["hook"] == HOOK)
    assert "prefetch" not in custom


def test_prefetch_templates_use_only_allowed_tokens(client: TestClient) -> None:
    """Rows 29, 36, 55-59: keys name the data; tokens in {{ }} are context.<root primitive> or a
    user id; the query keeps to the recommended subset (read / search, _count, _sort)."""
    services = client.get("/cds-services").json()["services"]
    templates = [t for s in services for t in s.get("prefetch", {}).values()]
    assert templates
    for template in templates:
        for token in _TOKEN.findall(template):
            assert token in _USER_IDS or re.fullmatch(r"context\.[A-Za-z]+", token), token
        resource, _, query = template.partition("?")
        assert re.fullmatch(r"[A-Z][A-Za-z]+", resource)
        for param in query.split("&"):
            name = param.split("=", 1)[0]
            assert name in ("subject", "patient", "questionnaire", "_count", "_sort", "code")


def test_the_same_id_serves_two_hooks(client: TestClient) -> None:
    """Rows 211, 16: one id across hooks, each at {base}/cds-services/{id}."""
    services = client.get("/cds-services").json()["services"]
    assert {s["id"] for s in services} == {"hipscreen"}
    assert {s["hook"] for s in services} == {HOOK, "patient-view"}
    for hook in (HOOK, "patient-view"):
        call = _call(IMBALANCE) if hook == HOOK else _patient_view({"intake": IMBALANCE})
        assert client.post("/cds-services/hipscreen", json=call).status_code == 200


def test_custom_hook_is_named_in_reverse_domain_notation() -> None:
    """Org-specific hooks use reverse-domain names (spec "Hooks"; row 215 for extensions)."""
    assert re.fullmatch(r"[a-z]+(\.[a-z0-9-]+){2,}", HOOK)


# -- calling a service -----------------------------------------------------------------------------


def test_a_call_answers_200_with_conformant_cards(client: TestClient) -> None:
    """Rows 1, 74, 80-147: every card of a call passes the card checks."""
    answer = client.post("/cds-services/hipscreen", json=_call(IMBALANCE))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["cards"]
    check_response(body)


def test_nothing_to_say_is_200_with_empty_cards(client: TestClient) -> None:
    """Row 77: no decision support → 200 and ``"cards": []`` (the one empty element allowed)."""
    answer = client.post("/cds-services/hipscreen", json=_call({}))
    assert answer.status_code == 200
    assert answer.json() == {"cards": []}


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=forms())
def test_every_generated_form_gives_conformant_cards(client: TestClient, form: Any) -> None:
    """Rows 3, 80-147 over generated forms, with actions from a resource factory."""
    answer = client.post("/cds-services/hipscreen", json=_call(form))
    assert answer.status_code == 200, answer.text
    check_response(answer.json())


def test_card_uuids_differ_per_call_and_are_stable_within_one(client: TestClient) -> None:
    """Row 80: the card uuid identifies the card of this call (hookInstance in its key)."""
    one = client.post("/cds-services/hipscreen", json=_call(IMBALANCE, "a")).json()["cards"]
    two = client.post("/cds-services/hipscreen", json=_call(IMBALANCE, "b")).json()["cards"]
    again = client.post("/cds-services/hipscreen", json=_call(IMBALANCE, "a")).json()["cards"]
    assert {c["uuid"] for c in one}.isdisjoint({c["uuid"] for c in two})
    assert [c["uuid"] for c in one] == [c["uuid"] for c in again]


def test_cards_have_source_url_topic_links_and_override_reasons(client: TestClient) -> None:
    """Rows 98-116, 138-147: short label with url and topic; a link to the rule's page;
    overrideReasons from the HL7 non-adherence reason codes."""
    cards = client.post("/cds-services/hipscreen", json=_call(IMBALANCE)).json()["cards"]
    for card in cards:
        assert card["source"]["label"] == "hipscreen"
        assert card["source"]["url"] == "http://testserver/rules"
        code = card["source"]["topic"]["code"]
        [link] = card["links"]
        assert link == {**link, "type": "absolute", "url": f"http://testserver/rules/{code}"}
        assert client.get(urlsplit(link["url"]).path).status_code == 200
        systems = {c["system"] for c in card["overrideReasons"]}
        assert systems == {"http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"}


def test_public_url_sets_the_card_urls() -> None:
    app = _service.create_app(public_url="https://cds.example.org/hip/")
    with TestClient(app) as local:
        card = local.post("/cds-services/hipscreen", json=_call(IMBALANCE)).json()["cards"][0]
    assert card["source"]["url"] == "https://cds.example.org/hip/rules"


def test_referral_and_plan_suggestions_carry_create_actions(client: TestClient) -> None:
    """Rows 123-131: ServiceRequest for the referral, CarePlan for the plan, each a create."""
    body = client.post("/cds-services/hipscreen", json=_call(REFERRED)).json()
    check_response(body)
    actions = [
        a for c in body["cards"] for s in c.get("suggestions", []) for a in s.get("actions", [])
    ]
    kinds = sorted(a["resource"]["resourceType"] for a in actions)
    assert "ServiceRequest" in kinds
    assert all(a["type"] == "create" for a in actions)
    plan = client.post("/cds-services/hipscreen", json=_call(IMBALANCE)).json()
    plan_kinds = [
        a["resource"]["resourceType"]
        for c in plan["cards"]
        for s in c.get("suggestions", [])
        for a in s.get("actions", [])
    ]
    assert plan_kinds == ["CarePlan"]


def test_without_a_resource_factory_suggestions_have_no_actions() -> None:
    with TestClient(_service.create_app(resources=None)) as local:
        body = local.post("/cds-services/hipscreen", json=_call(REFERRED)).json()
    assert not [s for c in body["cards"] for s in c.get("suggestions", []) if "actions" in s]


def test_by_default_actions_create_hipscreen_fhir_resources_for_the_patient() -> None:
    """The default factory is hipscreen.fhir: a valid R4 ServiceRequest and CarePlan about the
    patient in context, and a QuestionnaireResponse in prefetch is read with the FHIR mapper."""
    from fhir.resources.R4B import get_fhir_model_class

    from hipscreen import fhir

    with TestClient(_service.create_app()) as local:
        referred = local.post("/cds-services/hipscreen", json=_patient_view({"intake": REFERRED}))
        response = fhir.questionnaire_response(hipscreen.IntakeForm.model_validate(IMBALANCE))
        planned = local.post("/cds-services/hipscreen", json=_patient_view({"intake": response}))
    resources = {}
    for answer in (referred, planned):
        assert answer.status_code == 200, answer.text
        check_response(answer.json())
        for card in answer.json()["cards"]:
            for suggestion in card.get("suggestions", []):
                for action in suggestion.get("actions", []):
                    resource = action["resource"]
                    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
                    assert resource["subject"] == {"reference": "Patient/p-1"}
                    resources[resource["resourceType"]] = resource
    assert sorted(resources) == ["CarePlan", "ServiceRequest"]
    assert resources["ServiceRequest"]["intent"] == "proposal"


def test_without_a_patient_the_default_factory_makes_no_actions() -> None:
    with TestClient(_service.create_app()) as local:
        body = local.post("/cds-services/hipscreen", json=_call(REFERRED)).json()
    assert not [s for c in body["cards"] for s in c.get("suggestions", []) if "actions" in s]


def test_a_factory_returning_the_wrong_resource_is_an_error() -> None:
    result = hipscreen.assess(IMBALANCE)
    from hipscreen._render.cds import cards_for

    with pytest.raises(ValueError, match="CarePlan"):
        cards_for(result, resources=lambda a, kind, p: {"resourceType": "Patient"})


# -- the request: hook, cds-r-1, secrets -----------------------------------------------------------


def test_a_hook_this_service_does_not_answer_is_400(client: TestClient) -> None:
    call = {**_call(IMBALANCE), "hook": "order-sign"}
    answer = client.post("/cds-services/hipscreen", json=call)
    assert answer.status_code == 400
    assert answer.json()["detail"][0]["field"] == "hook"


def test_fhir_authorization_without_fhir_server_is_refused(client: TestClient) -> None:
    """cds-r-1."""
    auth = {"access_token": "s3cr3t-token", "token_type": "Bearer", "scope": "patient/*.read"}
    answer = client.post("/cds-services/hipscreen", json=_call(IMBALANCE, fhirAuthorization=auth))
    assert answer.status_code == 400
    assert "cds-r-1" in answer.text
    assert "s3cr3t-token" not in answer.text


@pytest.mark.parametrize(
    "call",
    [
        pytest.param({"hookInstance": "1", "context": {}, "fhirAuthorization": "s3cr3t-token"}),
        pytest.param(
            {"hook": HOOK, "context": {}, "fhirAuthorization": {"access_token": "s3cr3t-token"}}
        ),
        pytest.param({"hook": 1, "fhirAuthorization": {"access_token": "s3cr3t-token"}}),
    ],
)
def test_fhir_authorization_is_never_echoed(client: TestClient, call: dict[str, Any]) -> None:
    answer = client.post("/cds-services/hipscreen", json=call)
    assert answer.status_code == 422
    assert "s3cr3t" not in answer.text


def test_a_duplicate_key_inside_fhir_authorization_is_not_echoed(client: TestClient) -> None:
    body = b'{"hook": "x", "fhirAuthorization": {"access_token": "s3cr3t", "access_token": "2"}}'
    answer = client.post(
        "/cds-services/hipscreen", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert "s3cr3t" not in answer.text


# -- patient-view and prefetch ---------------------------------------------------------------------


def _qr_bundle(*responses: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in responses],
    }


def test_patient_view_screens_a_prefetched_intake_form(client: TestClient) -> None:
    body = client.post("/cds-services/hipscreen", json=_patient_view({"intake": IMBALANCE})).json()
    check_response(body)
    codes = [c["source"]["topic"]["code"] for c in body["cards"]]
    assert codes == [f.id for f in hipscreen.assess(IMBALANCE).findings]


def test_patient_view_without_data_is_412(client: TestClient) -> None:
    """Row 54: neither prefetched nor fetchable → 412."""
    for call in (_patient_view(), _patient_view({"intake": None})):
        assert client.post("/cds-services/hipscreen", json=call).status_code == 412


def test_patient_view_with_an_operation_outcome_is_412(client: TestClient) -> None:
    """Row 52: prefetched data is checked for an OperationOutcome."""
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}
    call = _patient_view({"intake": outcome})
    assert client.post("/cds-services/hipscreen", json=call).status_code == 412


def test_patient_view_with_an_empty_search_answers_no_cards(client: TestClient) -> None:
    call = _patient_view({"intake": _qr_bundle()})
    answer = client.post("/cds-services/hipscreen", json=call)
    assert (answer.status_code, answer.json()) == (200, {"cards": []})


def test_a_questionnaire_response_without_a_mapper_is_412(client: TestClient) -> None:
    qr = {"resourceType": "QuestionnaireResponse", "status": "completed"}
    answer = client.post("/cds-services/hipscreen", json=_patient_view({"intake": _qr_bundle(qr)}))
    assert answer.status_code == 412
    assert "hipscreen.fhir" in answer.text


def test_a_questionnaire_response_goes_through_the_mapper() -> None:
    seen: list[dict[str, Any]] = []

    def mapper(qr: dict[str, Any]) -> dict[str, Any]:
        seen.append(qr)
        return IMBALANCE

    old = {"resourceType": "QuestionnaireResponse", "authored": "2026-01-01", "id": "old"}
    new = {"resourceType": "QuestionnaireResponse", "authored": "2026-06-01", "id": "new"}
    with TestClient(_service.create_app(form_mapper=mapper)) as local:
        body = local.post(
            "/cds-services/hipscreen", json=_patient_view({"intake": _qr_bundle(old, new)})
        ).json()
    assert [qr["id"] for qr in seen] == ["new"]
    check_response(body)
    assert body["cards"]


def test_a_questionnaire_response_about_another_patient_is_refused() -> None:
    qr = {"resourceType": "QuestionnaireResponse", "subject": {"reference": "Patient/other"}}
    with TestClient(_service.create_app(form_mapper=lambda qr: IMBALANCE)) as local:
        answer = local.post("/cds-services/hipscreen", json=_patient_view({"intake": qr}))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "patient_mismatch"


class _FhirServer(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []  # noqa: RUF012
    status = 200

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps(_qr_bundle()).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fhir_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FhirServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FhirServer.seen.clear()
    _FhirServer.status = 200
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()


def test_patient_view_fetches_from_an_allowed_fhir_server_with_the_token(fhir_server: str) -> None:
    """Rows 34, 60, 61: without prefetch, the intake is read from fhirServer with the token."""
    auth = {"access_token": "tok-123", "token_type": "Bearer", "scope": "patient/*.read"}
    call = _patient_view(fhirServer=fhir_server, fhirAuthorization=auth)
    with TestClient(_service.create_app(fhir_servers=[fhir_server])) as local:
        answer = local.post("/cds-services/hipscreen", json=call)
    assert (answer.status_code, answer.json()) == (200, {"cards": []})
    [(path, authorization)] = _FhirServer.seen
    assert path.startswith("/fhir/QuestionnaireResponse?subject=Patient%2Fp-1")
    assert authorization == "Bearer tok-123"


def test_a_fhir_server_not_on_the_allowlist_is_not_fetched(fhir_server: str) -> None:
    auth = {"access_token": "tok-123", "token_type": "Bearer"}
    call = _patient_view(fhirServer=fhir_server, fhirAuthorization=auth)
    with TestClient(_service.create_app()) as local:
        answer = local.post("/cds-services/hipscreen", json=call)
    assert answer.status_code == 412
    assert _FhirServer.seen == []
    assert "tok-123" not in answer.text


def test_a_fhir_server_that_refuses_gives_412(fhir_server: str) -> None:
    _FhirServer.status = 401
    auth = {"access_token": "tok-123", "token_type": "Bearer"}
    call = _patient_view(fhirServer=fhir_server, fhirAuthorization=auth)
    with TestClient(_service.create_app(fhir_servers=[fhir_server])) as local:
        answer = local.post("/cds-services/hipscreen", json=call)
    assert answer.status_code == 412
    assert "401" in answer.text
    assert "tok-123" not in answer.text


# -- feedback --------------------------------------------------------------------------------------


def _feedback(card: str, **entry: Any) -> dict[str, Any]:
    return {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {
            "reason": {
                "system": "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes",
                "code": "patient-contraindication",
                "display": "Patient has contraindication to recommended action",
            },
            "userComment": "seen by the physio last week",
        },
        "outcomeTimestamp": "2026-12-07T01:02:03Z",
        **entry,
    }


def test_feedback_batches_and_repeats_are_stored_once() -> None:
    """Row 148 (feedback endpoint), with batches and repeats tolerated."""
    app = _service.create_app()
    with TestClient(app) as local:
        cards = local.post("/cds-services/hipscreen", json=_call(IMBALANCE)).json()["cards"]
        suggested = next(c for c in cards if c.get("suggestions"))
        other = next(c for c in cards if c is not suggested)
        accepted = {
            "card": suggested["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": suggested["suggestions"][0]["uuid"]}],
            "outcomeTimestamp": "2026-12-07T01:02:04.5+01:00",
        }
        batch = {"feedback": [_feedback(other["uuid"]), accepted]}
        for _ in range(2):
            answer = local.post("/cds-services/hipscreen/feedback", json=batch)
            assert answer.status_code == 200
            assert answer.content == b""
    rows = app.state.audit.feedback()
    assert sorted(r["outcome"] for r in rows) == ["accepted", "overridden"]
    overridden = next(r for r in rows if r["outcome"] == "overridden")
    assert overridden["override_code"] == "patient-contraindication"
    assert overridden["user_comment"] == "seen by the physio last week"
    assert next(r for r in rows if r["outcome"] == "accepted")["accepted_suggestions"] == [
        suggested["suggestions"][0]["uuid"]
    ]


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        pytest.param({"outcome": "ignored"}, "cds-fb-1", id="cds-fb-1"),
        pytest.param({"outcome": "accepted", "overrideReason": None}, "cds-fb-2", id="cds-fb-2"),
        pytest.param({"overrideReason": {}}, "cds-fb-3", id="cds-fb-3"),
        pytest.param({"outcomeTimestamp": "yesterday"}, "RFC 3339", id="timestamp"),
        pytest.param({"card": "not-a-uuid"}, "uuid", id="card-uuid"),
    ],
)
def test_feedback_invariants_are_enforced(
    client: TestClient, entry: dict[str, Any], rule: str
) -> None:
    body = {**_feedback(str(uuid.uuid4())), **entry}
    body = {k: v for k, v in body.items() if v is not None}
    answer = client.post("/cds-services/hipscreen/feedback", json={"feedback": [body]})
    assert answer.status_code == 422, answer.text
    assert rule.lower() in answer.text.lower() or rule == "cds-fb-1"


def test_an_empty_feedback_batch_is_refused(client: TestClient) -> None:
    answer = client.post("/cds-services/hipscreen/feedback", json={"feedback": []})
    assert answer.status_code == 422


# -- the audit trail of calls ----------------------------------------------------------------------


def test_each_call_is_audited_without_the_token() -> None:
    app = _service.create_app()
    auth = {"access_token": "s3cr3t-token", "token_type": "Bearer"}
    call = _call(IMBALANCE, "inst-1", fhirServer="https://fhir.example", fhirAuthorization=auth)
    with TestClient(app) as local:
        cards = local.post("/cds-services/hipscreen", json=call).json()["cards"]
    [row] = app.state.audit.assessments()
    assert row["hook_instance"] == "inst-1"
    assert row["hook"] == HOOK
    assert row["findings"] == hipscreen.assess(IMBALANCE).finding_ids()
    assert [c["uuid"] for c in row["cards"]] == [c["uuid"] for c in cards]
    assert row["input_digest"] == _service.digest(IMBALANCE)
    assert "s3cr3t" not in json.dumps(row)


# -- the matrix ------------------------------------------------------------------------------------

CHECKED: dict[int, str] = {
    1: "test_a_call_answers_200_with_conformant_cards",
    3: "test_every_generated_form_gives_conformant_cards",
    4: "test_discovery_is_at_base_cds_services_and_answers_200",
    5: "test_discovery_is_at_base_cds_services_and_answers_200",
    6: "test_discovery_lists_services_with_required_fields",
    7: "test_discovery_lists_services_with_required_fields",
    9: "test_discovery_lists_services_with_required_fields",
    10: "test_discovery_lists_services_with_required_fields",
    13: "test_discovery_is_at_base_cds_services_and_answers_200",
    16: "test_the_same_id_serves_two_hooks",
    29: "test_prefetch_templates_use_only_allowed_tokens",
    36: "test_prefetch_templates_use_only_allowed_tokens",
    54: "test_patient_view_without_data_is_412",
    55: "test_prefetch_templates_use_only_allowed_tokens",
    56: "test_prefetch_templates_use_only_allowed_tokens",
    57: "test_prefetch_templates_use_only_allowed_tokens",
    59: "test_prefetch_templates_use_only_allowed_tokens",
    61: "test_patient_view_fetches_from_an_allowed_fhir_server_with_the_token",
    74: "test_a_call_answers_200_with_conformant_cards",
    75: "test_a_call_answers_200_with_conformant_cards",
    80: "test_card_uuids_differ_per_call_and_are_stable_within_one",
    83: "test_every_generated_form_gives_conformant_cards",
    85: "test_every_generated_form_gives_conformant_cards",
    87: "test_every_generated_form_gives_conformant_cards",
    88: "test_every_generated_form_gives_conformant_cards",
    90: "test_every_generated_form_gives_conformant_cards",
    92: "test_every_generated_form_gives_conformant_cards",
    93: "test_every_generated_form_gives_conformant_cards",
    95: "test_every_generated_form_gives_conformant_cards",
    96: "test_every_generated_form_gives_conformant_cards",
    98: "test_cards_have_source_url_topic_links_and_override_reasons",
    100: "test_cards_have_source_url_topic_links_and_override_reasons",
    103: "test_cards_have_source_url_topic_links_and_override_reasons",
    105: "test_cards_have_source_url_topic_links_and_override_reasons",
    107: "test_cards_have_source_url_topic_links_and_override_reasons",
    111: "test_every_generated_form_gives_conformant_cards",
    115: "test_cards_have_source_url_topic_links_and_override_reasons",
    117: "test_every_generated_form_gives_conformant_cards",
    119: "test_every_generated_form_gives_conformant_cards",
    121: "test_every_generated_form_gives_conformant_cards",
    124: "test_referral_and_plan_suggestions_carry_create_actions",
    125: "test_referral_and_plan_suggestions_carry_create_actions",
    127: "test_referral_and_plan_suggestions_carry_create_actions",
    128: "test_referral_and_plan_suggestions_carry_create_actions",
    130: "test_referral_and_plan_suggestions_carry_create_actions",
    131: "test_referral_and_plan_suggestions_carry_create_actions",
    136: "test_cards_have_source_url_topic_links_and_override_reasons",
    138: "test_cards_have_source_url_topic_links_and_override_reasons",
    139: "test_cards_have_source_url_topic_links_and_override_reasons",
    141: "test_cards_have_source_url_topic_links_and_override_reasons",
    142: "test_cards_have_source_url_topic_links_and_override_reasons",
    147: "test_every_generated_form_gives_conformant_cards",
    211: "test_the_same_id_serves_two_hooks",
    214: "test_every_generated_form_gives_conformant_cards",
    216: "test_cards_have_source_url_topic_links_and_override_reasons",
    217: "test_cards_have_source_url_topic_links_and_override_reasons",
    218: "test_cards_have_source_url_topic_links_and_override_reasons",
    219: "test_cards_have_source_url_topic_links_and_override_reasons",
    220: "test_cards_have_source_url_topic_links_and_override_reasons",
}
"""Row id → the test that checks it (the card checks run inside the named tests)."""

NOT_A_SERVICE_BEHAVIOUR: dict[int, str] = {
    2: "HTTPS is the deployment's TLS terminator (docs/embedding.md: behind a reverse proxy)",
    168: "HTTPS: as row 2",
    89: "about what the client MAY do with the indicator",
    132: "hipscreen sends no update actions",
    133: "hipscreen sends no delete actions",
    134: "hipscreen sends no delete actions",
    135: "hipscreen sends no delete actions (resourceId)",
    144: "hipscreen sends no SMART links (appContext)",
    213: "negotiation between service and client operators, outside the software",
}
"""SHALL rows that ask nothing of the service's software, with the reason. The card checks
still verify rows 132-135 and 144 whenever such elements appear."""

AUTH = "test_service_auth.py::"
CHECKED |= {
    176: AUTH + "test_a_signed_es384_token_is_accepted_and_its_issuer_audited",
    199: AUTH + "test_a_jku_on_the_allowlist_supplies_the_keys",
    201: AUTH + "test_bad_tokens_get_401_with_no_detail",
    203: AUTH + "test_bad_tokens_get_401_with_no_detail",
    208: AUTH + "test_cors_preflight_from_an_allowed_origin",
}


def _matrix() -> list[dict[str, str]]:
    with MATRIX.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_shall_row_is_accounted_for() -> None:
    shall = {int(row["ID"]) for row in _matrix() if row["Conformance"] in ("SHALL", "SHALL NOT")}
    assert len(shall) == 73
    names = set(globals())
    for row_id, test in CHECKED.items():
        module, _, name = test.rpartition("::")
        if module:
            tree = ast.parse((Path(__file__).parent / module).read_text(encoding="utf-8"))
            defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert name in defined, (row_id, test)
        else:
            assert name in names, (row_id, test)
    missing = shall - set(CHECKED) - set(NOT_A_SERVICE_BEHAVIOUR)
    assert missing == set(), f"SHALL rows without a check: {sorted(missing)}"
