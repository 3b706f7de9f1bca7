"""The web service under hostile input: 4xx answers, never 500, and every error answer bounded."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import forms

import hipscreen
from hipscreen import _cli, _service
from hipscreen._intake.strictjson import MAX_DEPTH, MAX_VALUES
from hipscreen._service import (
    HOOK,
    MAX_BODY_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_PROBLEMS,
    MAX_TEXT_CHARS,
    ProblemReport,
    create_app,
)

if importlib.util.find_spec("fastapi") is None:
    pytest.fail(
        "fastapi is not installed: run `pip install -e '.[dev]'` (or `python3 tasks.py test`)",
        pytrace=False,
    )

from fastapi.testclient import TestClient

pytestmark = pytest.mark.service

ROOT = Path(__file__).resolve().parent.parent
JSON = {"content-type": "application/json"}
ENDPOINTS = ["/assess", "/cds-services/hipscreen"]


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def _cds(form_text: str) -> str:
    return f'{{"hook": "{HOOK}", "hookInstance": "1", "context": {{"intakeForm": {form_text}}}}}'


def _post(client: TestClient, path: str, body: bytes | str, **headers: str) -> Any:
    return client.post(path, content=body, headers={**JSON, **headers})


def _report(answer: Any) -> ProblemReport:
    """The answer is a bounded, well-formed problem report."""
    assert answer.headers["content-type"] == "application/json"
    report = ProblemReport.model_validate_json(answer.content)
    assert 1 <= len(report.detail) <= MAX_PROBLEMS
    for problem in report.detail:
        assert len(problem.msg) <= MAX_MESSAGE_CHARS + 40
        assert len(problem.field) <= MAX_TEXT_CHARS + 40
        given = problem.input
        text = given if isinstance(given, str) else json.dumps(given, ensure_ascii=False)
        assert len(text) <= MAX_TEXT_CHARS + 40
        assert problem.loc[0] in ("body", "header")
    return report


# -- not strict JSON: 422 --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("form", "where", "words"),
    [
        pytest.param('{"age": NaN}', ["age"], "NaN is not JSON", id="nan"),
        pytest.param('{"age": Infinity}', ["age"], "Infinity is not JSON", id="infinity"),
        pytest.param('{"age": -Infinity}', ["age"], "-Infinity is not JSON", id="minus-infinity"),
        pytest.param(
            '{"rom": {"hip_flexion": 1e400}}', ["rom", "hip_flexion"], "too large", id="1e400"
        ),
        pytest.param(
            '{"age": 1' + "0" * 5000 + "}", ["age"], "at most 100 characters", id="long-int"
        ),
        pytest.param(
            '{"client_id": "a\\ud800"}', ["client_id"], "lone UTF-16 surrogate", id="surrogate"
        ),
    ],
)
def test_numbers_and_strings_json_cannot_carry_are_422_at_their_field(
    client: TestClient, path: str, form: str, where: list[str], words: str
) -> None:
    body = form if path == "/assess" else _cds(form)
    prefix = [] if path == "/assess" else ["context", "intakeForm"]
    answer = _post(client, path, body)
    assert answer.status_code == 422
    [problem] = _report(answer).detail
    assert problem.type == "json_invalid"
    assert problem.loc == ["body", *prefix, *where]
    assert words in problem.msg


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_duplicate_key_is_422_naming_the_key(client: TestClient, path: str) -> None:
    form = '{"tightness": {"iliopsoas": 3, "iliopsoas": 0}}'
    answer = _post(client, path, form if path == "/assess" else _cds(form))
    assert answer.status_code == 422
    [problem] = _report(answer).detail
    assert problem.type == "json_duplicate_key"
    assert problem.field.endswith("tightness.iliopsoas")
    assert "'iliopsoas' is given 2 times" in problem.msg


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000, id="100k-arrays"),
        pytest.param(b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, id="50k-objects"),
        pytest.param(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), id="one-past-the-limit"),
    ],
)
def test_deep_nesting_is_422(client: TestClient, path: str, body: bytes) -> None:
    answer = _post(client, path, body)
    assert answer.status_code == 422
    [problem] = _report(answer).detail
    assert problem.type == "json_too_deep"
    assert f"more than {MAX_DEPTH} deep" in problem.msg


def test_nesting_up_to_the_limit_is_parsed(client: TestClient) -> None:
    """At the limit the body is read, and then refused for what it is (not a form)."""
    body = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert _report(_post(client, "/assess", body)).detail[0].type == "invalid_form"


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("encoding", "words"),
    [
        ("utf-16", "UTF-16"),
        ("utf-16-le", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-32", "UTF-16 or UTF-32"),
        ("latin-1", "must be encoded as UTF-8"),
        ("cp1252", "must be encoded as UTF-8"),
    ],
)
def test_a_body_in_another_encoding_is_422(
    client: TestClient, path: str, encoding: str, words: str
) -> None:
    form = '{"client_id": "Zoë", "tightness": {"iliopsoas": 3}}'
    body = (form if path == "/assess" else _cds(form)).encode(encoding)
    answer = _post(client, path, body)
    assert answer.status_code == 422
    [problem] = _report(answer).detail
    assert (problem.type, problem.loc) == ("json_invalid", ["body"])
    assert words in problem.msg


def test_a_utf8_byte_order_mark_is_skipped(client: TestClient) -> None:
    answer = _post(client, "/assess", b'\xef\xbb\xbf{"tightness": {"iliopsoas": 3}}')
    assert answer.status_code == 200


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("[1, 2]", "an array"),
        ('"text"', "a string"),
        ("3", "a number"),
        ("null", "null"),
        ("true", "a boolean"),
    ],
)
def test_a_body_that_is_not_an_object_is_422(
    client: TestClient, path: str, body: str, what: str
) -> None:
    answer = _post(client, path, body)
    assert answer.status_code == 422
    [problem] = _report(answer).detail
    assert problem.loc == ["body"]
    if path == "/assess":
        assert problem.type == "invalid_form"
        assert f"must be a JSON object (got {what})" in problem.msg


@pytest.mark.parametrize("form", ["[1]", '"x"', "null"])
def test_a_cds_form_that_is_not_an_object_is_422_at_the_form(client: TestClient, form: str) -> None:
    answer = _post(client, "/cds-services/hipscreen", _cds(form))
    assert answer.status_code == 422
    [problem] = _report(answer).detail
    assert problem.loc == ["body", "context", "intakeForm"]
    assert "must be a JSON object" in problem.msg


# -- media type: 415 ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        'application/json; charset="latin-1"',
    ],
)
def test_a_body_not_declared_as_utf8_json_is_415(
    client: TestClient, path: str, content_type: str
) -> None:
    answer = client.post(path, content=b"{}", headers={"content-type": content_type})
    assert answer.status_code == 415
    [problem] = _report(answer).detail
    assert problem.type == "unsupported_media_type"
    assert problem.loc == ["header", "content-type"]


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=UTF-8", "application/fhir+json"],
)
def test_json_media_types_and_no_media_type_are_read(
    client: TestClient, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    answer = client.post("/assess", content=b'{"age": 40}', headers=headers)
    assert answer.status_code == 200


# -- size: 413 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> TestClient:
    """An app that takes bodies of at most 100 bytes."""
    return TestClient(create_app(max_body_bytes=100))


def _padded(size: int) -> bytes:
    body = b'{"client_id": "x"}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_body_limit_is_configurable(small: TestClient, path: str) -> None:
    if path == "/assess":
        assert _post(small, path, _padded(100)).status_code == 200
    answer = _post(small, path, _padded(101))
    assert answer.status_code == 413
    [problem] = _report(answer).detail
    assert problem.type == "body_too_large"
    assert "limit of 100 bytes" in problem.msg


def test_a_body_without_content_length_is_counted_while_read(small: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(1_000):  # 1 MB in all, sent chunked: the service stops at 100 bytes
            yield b" " * 1_000

    answer = small.post("/assess", content=chunks(), headers=JSON)
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 413


def test_a_declared_length_over_the_limit_is_refused_before_reading(small: TestClient) -> None:
    answer = small.post("/assess", content=b"{}", headers={**JSON, "content-length": "10" * 40})
    assert answer.status_code == 413
    assert "Content-Length" in _report(answer).detail[0].msg


def _asgi_post(app: Any, path: str, declared: int, chunks: list[bytes]) -> tuple[int, bytes]:
    """POST through the ASGI interface itself, where Content-Length can lie."""
    sent: list[dict[str, Any]] = []
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % declared)],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_content_length_that_lies_does_not_lift_the_limit(path: str) -> None:
    app = create_app(max_body_bytes=1_000)
    status, body = _asgi_post(app, path, 10, [b'{"client_id": "', b"x" * 600, b"x" * 600, b'"}'])
    assert status == 413
    assert json.loads(body)["detail"][0]["type"] == "body_too_large"


def test_the_default_limit_is_one_mebibyte(client: TestClient) -> None:
    assert MAX_BODY_BYTES == 1_048_576
    answer = _post(client, "/assess", _padded(MAX_BODY_BYTES + 1))
    assert answer.status_code == 413


# -- bounded error answers -------------------------------------------------------------------------


def test_100000_bad_symptoms_get_a_small_422(client: TestClient) -> None:
    """The 0.2 MB body that once produced a 110 MB answer."""
    body = '{"symptoms": [' + ",".join(["1"] * 100_000) + "]}"
    assert 200_000 <= len(body) < 210_000
    answer = _post(client, "/assess", body)
    assert answer.status_code == 422
    assert len(answer.content) < 1_000
    [problem] = _report(answer).detail
    assert problem.type == "json_too_many_values"
    assert f"more than {MAX_VALUES} values" in problem.msg


@pytest.mark.parametrize("path", ENDPOINTS)
def test_many_bad_values_list_the_first_problems_and_count_the_rest(
    client: TestClient, path: str
) -> None:
    # 90 bad names: within the form's list bound (100), so each one is its own problem.
    form = json.dumps({"symptoms": [f"bad-{i}" for i in range(90)]})
    answer = _post(client, path, form if path == "/assess" else _cds(form))
    assert answer.status_code == 422
    report = _report(answer)
    assert len(report.detail) == MAX_PROBLEMS
    assert report.omitted == 90 - MAX_PROBLEMS
    assert report.detail[0].field.endswith("symptoms.0")
    assert len(answer.content) < MAX_PROBLEMS * 2_000


def test_max_problems_is_configurable() -> None:
    few = TestClient(create_app(max_problems=3))
    answer = _post(few, "/assess", json.dumps({"symptoms": ["a", "b", "c", "d", "e"]}))
    report = ProblemReport.model_validate_json(answer.content)
    assert (len(report.detail), report.omitted) == (3, 2)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_huge_client_id_is_never_echoed_back(client: TestClient, path: str) -> None:
    huge = "A" * 900_000
    form = json.dumps({"client_id": huge})
    answer = _post(client, path, form if path == "/assess" else _cds(form))
    assert answer.status_code == 422
    [problem] = _report(answer).detail
    assert problem.field.endswith("client_id")
    assert isinstance(problem.input, str)
    assert problem.input.startswith("A" * 20)
    assert len(problem.input) <= MAX_TEXT_CHARS + 50
    assert "900,000" in problem.msg  # the form bound names the length, not the value
    assert len(answer.content) < 3 * MAX_MESSAGE_CHARS


def test_a_huge_unknown_key_is_cut_in_loc_and_field(client: TestClient) -> None:
    form = json.dumps({"tightness": {"x" * 500_000: 1}})
    answer = _post(client, "/assess", form)
    assert answer.status_code == 422
    [problem] = _report(answer).detail
    assert problem.loc[:2] == ["body", "tightness"]
    assert all(len(str(part)) < MAX_TEXT_CHARS + 40 for part in problem.loc)
    assert len(answer.content) < 3 * MAX_MESSAGE_CHARS


def test_a_large_object_given_as_a_value_is_cut_to_its_json_text(client: TestClient) -> None:
    form = json.dumps({"age": {f"k{i}": i for i in range(90)}})
    [problem] = _report(_post(client, "/assess", form)).detail
    assert problem.field == "age"
    assert isinstance(problem.input, str)
    assert problem.input.startswith('{"k0": 0, "k1": 1')
    assert "more characters)" in problem.input


def test_a_small_value_is_echoed_as_given(client: TestClient) -> None:
    [problem] = _report(_post(client, "/assess", '{"age": [1, {"a": null}]}')).detail
    assert problem.input == [1, {"a": None}]


# -- any bytes at all: never a 500 -----------------------------------------------------------------

_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


@pytest.mark.parametrize("path", ENDPOINTS)
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=200)
    | _JSONISH.map(lambda v: json.dumps(v).encode())
    | _JSONISH.map(lambda v: json.dumps({"context": {"intakeForm": v}, "hook": HOOK}).encode())
    | st.dictionaries(st.sampled_from(["age", "rom", "symptoms", "tightness"]), _JSONISH).map(
        lambda v: json.dumps(v).encode()
    )
)
def test_no_body_makes_a_500(client: TestClient, path: str, body: bytes) -> None:
    answer = _post(client, path, body)
    assert answer.status_code in (200, 422)
    answer.json()  # always JSON
    if answer.status_code == 422:
        _report(answer)


# -- the same answers as the library's JSON door --------------------------------------------------


def _library_answer(text: str) -> tuple[int, Any]:
    try:
        return 200, json.loads(hipscreen.assess(text).model_dump_json())
    except hipscreen.InvalidFormError as error:
        return 422, [problem.field for problem in error.problems]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    form=forms(),
    spoil=st.sampled_from([None, ("age", 300), ("symptoms", ["knee_pain", "back_ache"]), ("x", 1)]),
)
def test_the_service_answers_what_assess_answers_for_the_same_json(
    client: TestClient, form: dict[str, Any], spoil: tuple[str, Any] | None
) -> None:
    """The service hands hipscreen a parsed mapping; the library reads JSON text. Same result."""
    if spoil is not None:
        form = {**form, spoil[0]: spoil[1]}
    text = json.dumps(form)
    status, expected = _library_answer(text)
    answer = _post(client, "/assess", text)
    assert answer.status_code == status
    if status == 200:
        assert answer.json() == expected
    else:
        report = _report(answer)
        assert [p.field for p in report.detail] == expected[:MAX_PROBLEMS]


# -- the install hint and the serve command --------------------------------------------------------


def test_without_fastapi_the_app_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "hipscreen\[service\]"'):
        create_app()


@pytest.mark.process
def test_without_the_extra_the_module_imports_and_serve_names_the_install_command() -> None:
    """A fresh interpreter in which FastAPI, Starlette and uvicorn cannot be imported."""
    script = (
        "import sys\n"
        "for name in ('fastapi', 'starlette', 'uvicorn'): sys.modules[name] = None\n"
        "from hipscreen import _cli, _service\n"
        "print(_service.MAX_BODY_BYTES)\n"
        "sys.exit(_cli.main(['serve']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stdout) == (2, f"{MAX_BODY_BYTES}\n")
    assert done.stderr == (
        "hipscreen: the serve command needs the web service extra: fastapi is not installed, "
        'run `pip install "hipscreen[service]"` for the web service\n'
    )


def test_without_uvicorn_serve_exits_2_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert _cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert 'uvicorn is not installed, run `pip install "hipscreen[service]"`' in err


def test_serve_builds_the_app_from_its_options(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: dict[str, Any] = {}

    def fake_serve(app: Any, **options: Any) -> None:
        served.update(options, app=app)

    monkeypatch.setattr(_service, "serve", fake_serve)
    argv = [
        "serve", "--port", "8123", "--host", "0.0.0.0", "--max-body-bytes", "90",
        "--max-problems", "2", "--extra-rules", "examples/clinic_rules",
        "--threshold", "weak_grade=4", "--log-level", "warning",
        "--no-client-auth", "--audit-db", "sqlite://",
    ]  # fmt: skip
    monkeypatch.chdir(ROOT)
    assert _cli.main(argv) == 0
    assert {k: served[k] for k in ("host", "port", "log_level")} == {
        "host": "0.0.0.0",
        "port": 8123,
        "log_level": "warning",
    }
    app = TestClient(served["app"])
    sprinter = {"strength": {"gluteus_maximus": 4}, "activities": ["sprinting"]}
    findings = app.post("/assess", json=sprinter).json()["findings"]
    assert "weak-hip-extensors" in [f["id"] for f in findings]  # the threshold override
    assert app.post("/assess", content=_padded(91), headers=JSON).status_code == 413
    report = app.post("/assess", json={"symptoms": ["a", "b", "c"]}).json()
    assert (len(report["detail"]), report["omitted"]) == (2, 1)
    clinic = hipscreen.Screener(extra_rules=["examples/clinic_rules"], thresholds={"weak_grade": 4})
    assert app.get("/healthz").json()["ruleset_version"] == clinic.ruleset_version


@pytest.mark.parametrize(
    ("option", "value"), [("--max-body-bytes", "0"), ("--max-problems", "-1"), ("--port", "x")]
)
def test_serve_refuses_bad_limits(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _cli.main(["serve", option, value])
    assert exit_info.value.code == 2
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["max_body_bytes", "max_problems", "max_depth", "max_values"])
def test_create_app_refuses_a_limit_below_one(limit: str) -> None:
    with pytest.raises(ValueError, match=f"{limit} must be an integer of at least 1"):
        create_app(**{limit: 0})
