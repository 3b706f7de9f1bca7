"""The web service's OpenAPI document is the real contract, and the service keeps to it.

The document carries the intake form and assessment schemas (the same as ``hipscreen.schema()``),
the problem report of 413/415/422 answers and the CDS Hooks request and answer. Schemathesis then
generates requests from it, valid and invalid, and checks that no answer is a 500 and that every
answer matches the status codes, media types and schemas the document promises.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from typing import Any

import pytest

import hipscreen
from hipscreen._service import create_app

if importlib.util.find_spec("fastapi") is None:
    pytest.fail(
        "fastapi is not installed: run `pip install -e '.[dev]'` (or `python3 tasks.py test`)",
        pytrace=False,
    )
if importlib.util.find_spec("schemathesis") is None:  # the fast tier's dev extra leaves it out
    pytest.skip(
        "schemathesis is not installed: it comes with the test-full extra "
        "(`python3 tasks.py test`)",
        allow_module_level=True,
    )

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

pytest_plugins = ["schemathesis.pytest.plugin"]
"""pyproject's addopts turn off schemathesis's plugin (it slows every start); this module, the one
that needs it, loads it."""
pytestmark = [pytest.mark.service, pytest.mark.slow]

APP = create_app()
DOCUMENT: dict[str, Any] = TestClient(APP).get("/openapi.json").json()
COMPONENTS: dict[str, Any] = DOCUMENT["components"]["schemas"]
POSTS = ["/assess", "/assess/html", "/cds-services/hipscreen", "/cds-services/hipscreen/feedback"]


def _as_components(contract: dict[str, Any]) -> dict[str, Any]:
    """A ``hipscreen.schema()`` part as OpenAPI components: its $defs beside the model itself,
    each reference pointing into components."""
    text = json.dumps(contract).replace("#/$defs/", "#/components/schemas/")
    body = json.loads(text)
    definitions = body.pop("$defs", {})
    body.pop("$schema")
    body.pop("$comment")
    return {**definitions, body["title"]: body}


@pytest.mark.parametrize("part", ["input", "output"])
def test_the_document_carries_the_json_contract(part: str) -> None:
    """Every schema of hipscreen.schema(part) is a component, unchanged."""
    expected = _as_components(hipscreen.schema(part))
    assert {name: COMPONENTS.get(name) for name in expected} == expected


REFUSALS = {"408", "413", "415", "422"}


@pytest.mark.parametrize(
    ("path", "request_schema", "ok_schema", "statuses"),
    [
        ("/assess", "IntakeForm", "Assessment", REFUSALS),
        ("/cds-services/hipscreen", "CdsRequest", "CdsResponse", REFUSALS | {"400", "412"}),
    ],
)
def test_each_post_names_its_request_answer_and_problem_report(
    path: str, request_schema: str, ok_schema: str, statuses: set[str]
) -> None:
    operation = DOCUMENT["paths"][path]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{request_schema}"
    }
    answers = operation["responses"]
    assert set(answers) == {"200", *statuses}
    assert answers["200"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{ok_schema}"
    }
    for status in statuses:
        assert answers[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ProblemReport"
        }


def test_the_cds_request_and_the_answer_the_cards() -> None:
    request = COMPONENTS["CdsRequest"]
    assert set(request["required"]) == {"hook", "hookInstance", "context"}
    assert request["properties"]["context"]["type"] == "object"
    cards = COMPONENTS["CdsResponse"]["properties"]["cards"]
    assert cards["items"] == {"$ref": "#/components/schemas/CdsCard"}
    card = COMPONENTS["CdsCard"]
    # CDS Hooks: summary, indicator and source are required; the indicator is one of three words.
    assert {"summary", "indicator", "source"} <= set(card["required"])
    assert card["properties"]["indicator"]["enum"] == ["info", "warning", "critical"]


def test_the_problem_report_is_described() -> None:
    report = COMPONENTS["ProblemReport"]
    assert set(report["required"]) == {"detail", "omitted"}
    problem = COMPONENTS["Problem"]
    assert set(problem["properties"]) == {"type", "loc", "field", "msg", "input"}


def test_the_body_limit_is_stated() -> None:
    small = TestClient(create_app(max_body_bytes=4096)).get("/openapi.json").json()
    assert "4096 bytes" in small["paths"]["/assess"]["post"]["responses"]["413"]["description"]


# -- schemathesis ---------------------------------------------------------------------------------

TIME_BUDGET_S = float(os.environ.get("HIPSCREEN_SCHEMATHESIS_BUDGET_S", "6"))
"""Past this many seconds of one operation's run, its generated cases are no longer sent (a slow,
shared machine still finishes the suite on time, and every operation gets its turn; the count of
cases sent is reported by the last test)."""

SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
_started: dict[str, float] = {}
_sent: dict[str, int] = {}


@SCHEMA.parametrize()
@settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_service_keeps_to_its_openapi_document(case: Any) -> None:
    """No 500; status code, media type, headers and body as the document says, for valid and
    invalid requests alike.

    ``positive_data_acceptance`` (every schema-valid form gets a 2xx) is left out: the intake-form
    schema is looser than its validation in places (a per-side object with no side given,
    ``69.0`` for an integer), which the form's owner decides; the service answers those with a
    documented 422."""
    label = case.operation.label
    started = _started.setdefault(label, time.monotonic())
    if time.monotonic() - started > TIME_BUDGET_S:
        return
    _sent[label] = _sent.get(label, 0) + 1
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def test_the_schemathesis_run_sent_requests_to_every_operation() -> None:
    """Guards the run above against silently testing nothing (runs after it, in file order)."""
    if not _sent:
        pytest.skip("run together with test_the_service_keeps_to_its_openapi_document")
    paths = DOCUMENT["paths"]
    operations = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
    assert set(_sent) == operations
    assert all(_sent[f"POST {path}"] >= 10 for path in POSTS)
    print(f"schemathesis: {sum(_sent.values())} requests {_sent}")
