"""The reference web service (examples/service.py) and a short run of its load test."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import hipscreen

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CLINIC = ROOT / "tests" / "extra_rules" / "clinic"

if importlib.util.find_spec("fastapi") is None:
    pytest.fail(
        "fastapi is not installed: run `pip install -e '.[dev]'` (or `python3 tasks.py test`)",
        pytrace=False,
    )

from fastapi.testclient import TestClient  # noqa: E402 -- after the install hint

IMBALANCE = {
    "client_id": "c-3",
    "tightness": {"iliopsoas": "severe"},
    "strength": {"gluteus_maximus": 3},
    "symptoms": ["knee_pain"],
}


def _load_service() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "hipscreen_example_service", EXAMPLES / "service.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the module's annotations through it
    spec.loader.exec_module(module)
    return module


service = _load_service()


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(service.app)


def _cds_call(form: Any, **extra: Any) -> dict[str, Any]:
    return {
        "hook": service.HOOK,
        "hookInstance": "d1b3c0de",
        "context": {"intakeForm": form},
        **extra,
    }


def test_healthz_names_the_rules(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "ruleset_version": hipscreen.Screener().ruleset_version,
    }


def test_assess_answers_what_the_library_answers(client: TestClient) -> None:
    answer = client.post("/assess", json=IMBALANCE)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert hipscreen.Assessment.model_validate(answer.json()) == hipscreen.assess(IMBALANCE)


def test_invalid_form_is_422_with_every_field_path(client: TestClient) -> None:
    form = {
        "age": 300,
        "tightness": {"iliopsos": 2},
        "symptoms": ["knee_pain", "back_ache"],
        "x": 1,
    }
    answer = client.post("/assess", json=form)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    by_field = {problem["field"]: problem for problem in detail}
    assert set(by_field) == {"age", "tightness.iliopsos", "symptoms.1", "x"}
    assert by_field["symptoms.1"]["loc"] == ["body", "symptoms", 1]
    assert by_field["age"]["input"] == 300
    assert "did you mean 'iliopsoas'" in by_field["tightness.iliopsos"]["msg"]
    assert "unknown field 'x'" in by_field["x"]["msg"]
    assert all(problem["type"] == "invalid_form" for problem in detail)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        pytest.param(b'{"age": 3', "json_invalid", id="truncated"),
        pytest.param(b"", "json_invalid", id="empty"),
        pytest.param(b"\xff\xfe", "json_invalid", id="not-utf8"),
        pytest.param(b"[1, 2]", "invalid_form", id="array"),
        pytest.param(b'"text"', "invalid_form", id="string"),
    ],
)
def test_a_body_that_is_not_a_form_is_422(client: TestClient, body: bytes, kind: str) -> None:
    answer = client.post("/assess", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert [problem["type"] for problem in detail] == [kind]
    assert detail[0]["loc"][0] == "body"


def test_cds_discovery_lists_the_service(client: TestClient) -> None:
    services = client.get("/cds-services").json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [("hipscreen", service.HOOK)]
    assert all(s["description"] and s["title"] for s in services)


def test_cds_service_answers_cards(client: TestClient) -> None:
    answer = client.post("/cds-services/hipscreen", json=_cds_call(IMBALANCE))
    assert answer.status_code == 200
    assert answer.json() == {"cards": hipscreen.assess(IMBALANCE).to_cds_cards()}


def test_cds_service_with_nothing_to_say_answers_no_cards(client: TestClient) -> None:
    answer = client.post("/cds-services/hipscreen", json=_cds_call({}))
    assert answer.json() == {"cards": []}


def test_cds_service_accepts_the_other_request_fields(client: TestClient) -> None:
    call = _cds_call(IMBALANCE, fhirServer="https://fhir.example", prefetch={"patient": None})
    assert client.post("/cds-services/hipscreen", json=call).status_code == 200


def test_cds_invalid_form_is_422_under_context(client: TestClient) -> None:
    answer = client.post("/cds-services/hipscreen", json=_cds_call({"age": -1}))
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "context", "intakeForm", "age"]
    assert problem["field"] == "context.intakeForm.age"


@pytest.mark.parametrize(
    ("call", "loc"),
    [
        pytest.param(
            {"hook": "x", "context": {"intakeForm": {}}}, ["body", "hookInstance"], id="no-instance"
        ),
        pytest.param({"hook": "x", "hookInstance": "1"}, ["body", "context"], id="no-context"),
        pytest.param(
            {"hook": "x", "hookInstance": "1", "context": {}},
            ["body", "context", "intakeForm"],
            id="no-form",
        ),
        pytest.param(
            {"hook": "x", "hookInstance": "1", "context": {"intakeForm": [1]}},
            ["body", "context", "intakeForm"],
            id="form-not-object",
        ),
    ],
)
def test_cds_malformed_request_is_422(
    client: TestClient, call: dict[str, Any], loc: list[Any]
) -> None:
    answer = client.post("/cds-services/hipscreen", json=call)
    assert answer.status_code == 422
    assert [problem["loc"] for problem in answer.json()["detail"]] == [loc]


def test_schema_endpoint_serves_the_contract(client: TestClient) -> None:
    from hipscreen._schema import schema

    assert client.get("/schema").json() == schema()


def test_openapi_document_builds(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/assess", "/cds-services", "/cds-services/hipscreen"} <= set(paths)


def test_an_app_with_a_clinics_screener(client: TestClient) -> None:
    clinic = TestClient(
        service.create_app(hipscreen.Screener(extra_rules=[CLINIC]), min_indicator="warning")
    )
    form = {**IMBALANCE, "activities": ["sprinting"]}
    findings = clinic.post("/assess", json=form).json()["findings"]
    assert "sprint-imbalance-caution" in [f["id"] for f in findings]
    cards = clinic.post("/cds-services/hipscreen", json=_cds_call(form)).json()["cards"]
    assert cards
    assert {card["indicator"] for card in cards} == {"warning"}
    assert "sprint-imbalance-caution" not in [
        f["id"] for f in client.post("/assess", json=form).json()["findings"]
    ]


@pytest.mark.slow
def test_load_test_script_runs_against_a_live_server() -> None:
    """A small run of examples/load_test.py: uvicorn on localhost, threads, no error."""
    completed = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "load_test.py"),
            *["--requests", "120", "--concurrency", "4", "--forms", "16", "--json"],
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["requests"] == 120
    assert report["errors"] == 0
    assert report["requests_per_s"] > 0
    assert sum(report["statuses"].values()) == 120
