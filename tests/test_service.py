"""The reference web service (hipscreen._service through examples/service.py), a live server and
a short run of the load test. Hostile input: test_service_hardening.py; OpenAPI and schemathesis:
test_service_schemathesis.py."""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from live_server import serving

import hipscreen

pytestmark = pytest.mark.service

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CLINIC = ROOT / "tests" / "extra_rules" / "clinic"

if importlib.util.find_spec("fastapi") is None:
    pytest.fail(
        "fastapi is not installed: run `pip install -e '.[dev]'` (or `python3 tasks.py test`)",
        pytrace=False,
    )

from fastapi.testclient import TestClient  # noqa: E402 -- after the install hint

HOOK = "org.hipscreen.intake-submit"

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
    assert [(s["id"], s["hook"]) for s in services] == [
        ("hipscreen", service.HOOK),
        ("hipscreen", "patient-view"),
    ]
    assert all(s["description"] and s["title"] for s in services)


def test_cds_service_answers_cards(client: TestClient) -> None:
    from hipscreen._render.cds import cards_for

    answer = client.post("/cds-services/hipscreen", json=_cds_call(IMBALANCE))
    assert answer.status_code == 200
    expected = cards_for(
        hipscreen.assess(IMBALANCE), hook_instance="d1b3c0de", base_url="http://testserver"
    )
    assert answer.json() == {"cards": expected}


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
            {"hook": HOOK, "hookInstance": "1", "context": {}},
            ["body", "context", "intakeForm"],
            id="no-form",
        ),
        pytest.param(
            {"hook": HOOK, "hookInstance": "1", "context": {"intakeForm": [1]}},
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


@pytest.mark.process
def test_the_example_is_a_thin_caller_of_the_package() -> None:
    from hipscreen import _service

    assert service.create_app is _service.create_app
    assert (service.HOOK, service.SERVICE_ID) == (_service.HOOK, _service.SERVICE_ID)
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "service.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: hipscreen serve")


def test_the_module_level_app_is_built_once() -> None:
    from hipscreen import _service

    assert _service.app is _service.app
    assert TestClient(_service.app).get("/healthz").status_code == 200
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _service.nothing  # noqa: B018 -- the attribute access is the test


@pytest.fixture(scope="module")
def live() -> Iterator[int]:
    """`hipscreen serve` on a free localhost port, with a 1,000-byte body limit."""
    options = ("--max-body-bytes", "1000", "--log-level", "warning", "--audit-db", "sqlite://")
    with serving(*options) as (port, _):
        yield port


def _raw(port: int, head: bytes, body: tuple[bytes, ...] = ()) -> tuple[int, bytes]:
    """Send a request as raw bytes (for what http.client will not send); the status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in body:
                sock.sendall(chunk)
        except OSError:
            pass  # the server may answer and close before the whole body is sent
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b'{"tightness": {"iliopsoas": 3}}', 200, id="form"),
        pytest.param(b'{"age": NaN}', 422, id="nan"),
        pytest.param(b"[" * 900, 422, id="deep"),
        pytest.param('{"age": 40}'.encode("utf-16"), 422, id="utf-16"),
        pytest.param(b"{" + b" " * 2_000 + b"}", 413, id="over-the-limit"),
    ],
)
def test_a_live_server_answers_bad_bodies_with_4xx(live: int, body: bytes, status: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", live, timeout=10)
    try:
        connection.request(
            "POST", "/assess", body=body, headers={"Content-Type": "application/json"}
        )
        answer = connection.getresponse()
        assert answer.status == status
        assert json.loads(answer.read())
    finally:
        connection.close()


@pytest.mark.process
@pytest.mark.slow
def test_a_live_server_counts_a_chunked_body(live: int) -> None:
    head = (
        b"POST /assess HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunks = [b"258\r\n" + b" " * 600 + b"\r\n"] * 3 + [b"0\r\n\r\n"]
    status, body = _raw(live, head, tuple(chunks))
    assert status == 413
    assert b"body_too_large" in body


@pytest.mark.process
@pytest.mark.slow
def test_a_live_server_refuses_a_declared_length_without_waiting_for_the_body(live: int) -> None:
    head = (
        b"POST /assess HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 50000000\r\nConnection: close\r\n\r\n"
    )
    status, body = _raw(live, head)  # no body at all: the answer must not wait for 50 MB
    assert status == 413
    assert b"Content-Length: 50000000" in body


@pytest.mark.process
@pytest.mark.slow
def test_the_hostile_request_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/bench_service.py with one request per body (no timing is asserted)."""
    output = tmp_path / "service.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_service.py"),
            *["--repeat", "1", "--output", str(output)],
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["server_alive"] is True
    statuses = {name: row["status"] for name, row in report["bodies"].items()}
    assert statuses.pop("valid form") == 200
    assert statuses.pop("1,000,000 bad symptoms (2 MB)") == 413
    assert set(statuses.values()) == {422}
    hostile = report["bodies"]["100,000 bad symptoms (0.2 MB)"]
    assert hostile["answer_bytes"] < 1_000


@pytest.mark.process
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
