"""The reference web service: hipscreen behind HTTP as an ASGI app (the ``service`` extra).

Endpoints:

    GET  /healthz                   {"status": "ok", "ruleset_version": ...}
    GET  /schema                    the JSON contract: {"input": ..., "output": ...}
    POST /assess                    an intake form (JSON) → the Assessment (JSON)
    GET  /cds-services              CDS Hooks discovery (two hooks, one service id)
    POST /cds-services/hipscreen    a CDS Hooks request → {"cards": [...]}
    POST /cds-services/hipscreen/feedback   CDS Hooks feedback (stored in the audit trail)
    GET  /rules, /rules/{id}        the rule catalog the cards link to (HTML)
    GET  /openapi.json              the OpenAPI document, with every request and answer schema

CDS Hooks (`hipscreen._cds_hooks`): a request whose ``hook`` this service does not answer, or
with ``fhirAuthorization`` but no ``fhirServer`` (cds-r-1), is answered with 400; a
``patient-view`` call whose intake is neither prefetched nor fetchable gets 412. Each answered
call is recorded in the audit trail (`hipscreen._audit`); ``fhirAuthorization`` is never echoed,
logged or stored.

Bad requests get a 4xx answer, never a 500: 413 for a body over ``max_body_bytes`` (counted while
reading, whatever Content-Length says), 415 for a body that is not declared as JSON, 422 for a
body that is not strict JSON (`hipscreen._intake.strictjson`: UTF-8, finite numbers, unique keys,
bounded depth and size) or not a valid form. An error answer is ``{"detail": [...], "omitted":
n}``: at most ``max_problems`` problems, each with the field path (``loc`` as FastAPI gives it,
and ``field``, the same path dotted without "body"), the message and the value given, every text
shortened to a bounded length; ``omitted`` says how many more problems there were.

``hipscreen serve`` runs it with uvicorn; ``create_app()`` builds it for any ASGI server, and
``uvicorn hipscreen._service:app`` serves the built-in rules. This module imports without the
extra; building an app without FastAPI raises ``ModuleNotFoundError`` naming the install command.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at run
# time, and the endpoints import FastAPI inside create_app so that this module imports without it.

import asyncio
import html
import importlib
import json
import logging
import threading
import uuid
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hipscreen._aio import assess_async
from hipscreen._audit import AssessmentRecord, AuditLog, digest
from hipscreen._cds_hooks import (
    FORM_KEY,
    HOOK,
    INTAKE_KEY,
    REDACTED,
    SECRET_KEYS,
    SERVICE_ID,
    SERVICES,
    CdsFailure,
    CdsRequest,
    FeedbackRequest,
    FormMapper,
    default_mapper,
    default_resources,
    intake_of,
    parse_feedback,
    parse_request,
    redact,
)
from hipscreen._errors import InvalidFormError
from hipscreen._intake.form import IntakeForm
from hipscreen._intake.strictjson import (
    MAX_DEPTH,
    MAX_VALUES,
    JsonProblem,
    StrictJsonError,
    loads_strict,
    scrub,
)
from hipscreen._render.cds import CdsCard, ResourceFactory, cards_for
from hipscreen._results import Assessment
from hipscreen._schema import _summary_only, schema
from hipscreen._screen import Screener, default_screener
from hipscreen._service_auth import AuthError, ClientAuth
from hipscreen._service_limits import (
    HEADER_TIMEOUT,
    MAX_CONCURRENT,
    MAX_INFLIGHT_BYTES,
    RequestLimiter,
    header_timeout_protocol,
)
from hipscreen._service_pages import INTAKE_PAGE, swagger_assets
from hipscreen._version import __version__
from hipscreen._vocabulary import Severity

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

__all__ = [
    "FORM_KEY",
    "HOOK",
    "INSTALL",
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_CHARS",
    "MAX_PROBLEMS",
    "MAX_TEXT_CHARS",
    "SERVICE_ID",
    "CdsRequest",
    "CdsResponse",
    "Problem",
    "ProblemReport",
    "create_app",
    "require_extra",
    "serve",
]

INSTALL = 'pip install "hipscreen[service]"'

MAX_BODY_BYTES = 1_048_576
"""Largest request body (1 MiB); more is answered with 413. A complete intake form is under 4 KB;
the limit leaves room for CDS Hooks requests that carry more context, and bounds what a client can
make the service hold in memory."""

MAX_PROBLEMS = 20
"""Most problems listed in one error answer; the answer says how many more were left out. A form
has about 20 fields, so every problem of a real form is listed."""

MAX_TEXT_CHARS = 200
"""Longest value echoed in an error answer (the ``input`` of a problem, each part of its
``loc``, its ``field``), as long as the longest valid ``client_id``; longer values are cut."""

MAX_MESSAGE_CHARS = 1_000
"""Longest ``msg`` of one problem: room for the list of allowed names (the longest, the symptoms,
is ~900 characters), not for a multi-megabyte value quoted inside it."""

_JSON = "application/json"
_LOG = logging.getLogger("hipscreen.service")

BODY_IDLE_TIMEOUT = 10.0
"""Seconds a request body may pause; then the answer is 408 and the connection is closed."""

BODY_DEADLINE = 30.0
"""Seconds a whole request body may take."""

FETCH_TIMEOUT = 5.0
"""Seconds the patient-view service waits for the client's FHIR server."""

_DEFAULT: Any = object()


# -- the shapes of requests and answers (the OpenAPI document shows them) ------------------------


class Problem(BaseModel):
    """One problem with a request: where it is, what is wrong, and the value given."""

    type: str = Field(
        description="json_invalid, json_duplicate_key, json_too_deep, json_too_many_values, "
        "invalid_form, body_too_large, unsupported_media_type, or pydantic's error type for a "
        "malformed CDS Hooks request (missing, string_too_short, ...)."
    )
    loc: list[str | int] = Field(
        description='Where: "body" (or "header"), then the keys and indexes of the value.'
    )
    field: str = Field(description='The same path, dotted, without "body".')
    msg: str = Field(description=f"What is wrong (at most {MAX_MESSAGE_CHARS} characters).")
    input: Any = Field(
        default=None,
        description=f"The value given; a text (or a value's JSON) longer than {MAX_TEXT_CHARS} "
        "characters is cut and ends with how many characters were left out.",
    )


class ProblemReport(BaseModel):
    """The answer to a request the service refuses (HTTP 413, 415 or 422)."""

    detail: list[Problem] = Field(description="The first problems found, in document order.")
    omitted: int = Field(ge=0, description="How many more problems were found and not listed.")


class Health(BaseModel):
    """The service is up, with the rules it screens with."""

    status: str
    ruleset_version: str


class Contract(BaseModel):
    """The JSON contract: JSON Schemas (draft 2020-12) of the intake form and the assessment."""

    input: dict[str, Any]
    output: dict[str, Any]


class CdsServiceEntry(BaseModel):
    """One service in a CDS Hooks discovery answer (``prefetch`` only when it has templates)."""

    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str] | None = None


class CdsDiscovery(BaseModel):
    """The CDS Hooks discovery answer: the services offered here."""

    services: list[CdsServiceEntry]


class CdsResponse(BaseModel):
    """A CDS Hooks answer: one card per finding (``[]`` when there is nothing to say)."""

    cards: list[CdsCard]


_COMPONENTS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (IntakeForm, "validation"),
    (Assessment, "serialization"),
    (ProblemReport, "serialization"),
    (Health, "serialization"),
    (Contract, "serialization"),
    (CdsRequest, "validation"),
    (CdsResponse, "serialization"),
    (CdsDiscovery, "serialization"),
    (FeedbackRequest, "validation"),
]


def _component_schemas() -> dict[str, Any]:
    """The OpenAPI ``components.schemas``: the models above and everything they refer to."""
    _, top = models_json_schema(_COMPONENTS, ref_template="#/components/schemas/{model}")
    definitions: dict[str, Any] = top["$defs"]
    for model in definitions.values():
        _summary_only(model)
    return definitions


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answers(
    ok: str | None, *, body: bool, max_body_bytes: int = 0, cds: bool = False
) -> dict[int | str, Any]:
    answers: dict[int | str, Any] = (
        {200: {"description": "OK", "content": {_JSON: {"schema": _ref(ok)}}}}
        if ok is not None
        else {200: {"description": "OK (no body)"}}
    )
    if body:
        refused = {_JSON: {"schema": _ref("ProblemReport")}}
        answers[408] = {
            "description": "The body was not sent within the read timeout.",
            "content": refused,
        }
        if cds:
            answers[400] = {
                "description": "The hook is not one this service answers, or "
                "fhirAuthorization came without fhirServer (cds-r-1).",
                "content": refused,
            }
            answers[412] = {
                "description": "patient-view: the intake is neither prefetched nor fetchable.",
                "content": refused,
            }
        answers[413] = {
            "description": f"The body is larger than {max_body_bytes} bytes.",
            "content": refused,
        }
        answers[415] = {
            "description": "The body is not declared as JSON (Content-Type), or not as UTF-8.",
            "content": refused,
        }
        answers[422] = {
            "description": "The body is not strict JSON, or not a valid request: every problem "
            "with its field path, the first ones listed.",
            "content": refused,
        }
    return answers


def _request_body(name: str, description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {_JSON: {"schema": _ref(name)}},
        }
    }


# -- refusing bad requests, with bounded answers ---------------------------------------------------


_Refusal = CdsFailure
"""A request the service answers with a 4xx and a list of problems."""


def _clip(text: str, limit: int) -> str:
    text = scrub(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def _bounded(value: Any) -> Any:
    """A JSON value at most about `MAX_TEXT_CHARS` characters long: long texts (and the JSON of
    long arrays or objects) are cut."""
    if value is None or isinstance(value, bool | int | float):
        return value  # strict JSON: numbers have at most MAX_NUMBER_CHARS characters
    if isinstance(value, str):
        return _clip(value, MAX_TEXT_CHARS)
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= MAX_TEXT_CHARS:
        return json.loads(text)
    return _clip(text, MAX_TEXT_CHARS)


def _problem(
    kind: str, path: Sequence[str | int], message: str, value: Any, where: str = "body"
) -> Problem:
    parts = [part if isinstance(part, int) else _clip(part, MAX_TEXT_CHARS) for part in path]
    value = REDACTED if any(part in SECRET_KEYS for part in path) else redact(value)
    return Problem(
        type=kind,
        loc=[where, *parts],
        field=_clip(".".join(str(part) for part in path), MAX_TEXT_CHARS),
        msg=_clip(message, MAX_MESSAGE_CHARS),
        input=_bounded(value),
    )


def _report(problems: Sequence[JsonProblem], max_problems: int) -> str:
    shown = [
        _problem(p.kind, p.path, p.message, p.value, "header" if p.kind == _MEDIA else "body")
        for p in problems[:max_problems]
    ]
    return ProblemReport(
        detail=shown, omitted=max(0, len(problems) - max_problems)
    ).model_dump_json()


def _form_problems(error: InvalidFormError, prefix: tuple[str | int, ...]) -> list[JsonProblem]:
    return [
        JsonProblem(
            "invalid_form", (*prefix, *_path(problem.field)), problem.message, problem.value
        )
        for problem in error.problems
    ]


def _path(field: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in field.split(".") if part]


_MEDIA = "unsupported_media_type"


def _check_media_type(header: str | None) -> None:
    """A body declared as anything but JSON in UTF-8 is refused (415); no header means JSON."""
    if header is None:
        return
    media, *params = header.split(";")
    media = media.strip().lower()
    if media != _JSON and not (media.startswith("application/") and media.endswith("+json")):
        raise _Refusal(
            415,
            [
                JsonProblem(
                    _MEDIA,
                    ("content-type",),
                    f"the body must be JSON, sent with Content-Type: {_JSON} (got {header!r})",
                    header,
                )
            ],
        )
    for param in params:
        name, _, charset = param.partition("=")
        charset = charset.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise _Refusal(
                415,
                [
                    JsonProblem(
                        _MEDIA,
                        ("content-type",),
                        f"JSON must be encoded as UTF-8 (got charset={charset!r})",
                        header,
                    )
                ],
            )


def _too_large(limit: int, size: str) -> _Refusal:
    return _Refusal(
        413,
        [
            JsonProblem(
                "body_too_large",
                (),
                f"the body is larger than the limit of {limit} bytes ({size})",
            )
        ],
    )


async def _read_json(
    request: "Request",
    max_body_bytes: int,
    max_depth: int,
    max_values: int,
    idle_timeout: float = BODY_IDLE_TIMEOUT,
    deadline: float = BODY_DEADLINE,
) -> Any:
    """The request's body, parsed as strict JSON; a `_Refusal` for anything else (408 when the
    body stalls for ``idle_timeout`` seconds or takes longer than ``deadline``)."""
    _check_media_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and (len(declared) > 18 or int(declared) > max_body_bytes):
        raise _too_large(max_body_bytes, f"Content-Length: {_clip(declared, 40)}")
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    stream = request.stream().__aiter__()
    while True:
        wait = min(idle_timeout, end - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                chunk = await anext(stream)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise _Refusal(
                408,
                [
                    JsonProblem(
                        "body_timeout",
                        (),
                        f"the body was not sent in time (a pause over {idle_timeout:g} s, or "
                        f"over {deadline:g} s in all)",
                    )
                ],
            ) from None
        size += len(chunk)
        if size > max_body_bytes:  # whatever Content-Length said, or when there was none
            raise _too_large(max_body_bytes, f"more than {max_body_bytes} bytes were sent")
        chunks.append(chunk)
    try:
        return loads_strict(b"".join(chunks), max_depth=max_depth, max_values=max_values)
    except StrictJsonError as error:
        raise _Refusal(422, error.problems) from None


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _object_or_refuse(value: Any, what: str, path: tuple[str | int, ...] = ()) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    given = "missing" if value is _MISSING else f"got {_json_type(value)}"
    raise _Refusal(
        422,
        [
            JsonProblem(
                "invalid_form",
                path,
                f"{what} must be a JSON object ({given})",
                None if value is _MISSING else value,
            )
        ],
    )


_MISSING = object()


# -- the app ---------------------------------------------------------------------------------------


def _require(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"{error.name or name} is not installed, run `{INSTALL}` for the web service",
            name=error.name,
        ) from None


def require_extra() -> None:
    """Raise ``ModuleNotFoundError`` with the install command when FastAPI or uvicorn is missing."""
    _require("fastapi")
    _require("uvicorn")


def create_app(
    screener: Screener | None = None,
    *,
    min_indicator: Severity | str = Severity.INFO,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_problems: int = MAX_PROBLEMS,
    max_depth: int = MAX_DEPTH,
    max_values: int = MAX_VALUES,
    audit: AuditLog | str | None = None,
    public_url: str | None = None,
    fhir_servers: Sequence[str] = (),
    form_mapper: FormMapper | object | None = _DEFAULT,
    resources: ResourceFactory | object | None = _DEFAULT,
    fetch_timeout: float = FETCH_TIMEOUT,
    auth: ClientAuth | None = None,
    cors_origins: Sequence[str] = (),
    max_concurrent: int = MAX_CONCURRENT,
    max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
    body_idle_timeout: float = BODY_IDLE_TIMEOUT,
    body_deadline: float = BODY_DEADLINE,
) -> "FastAPI":
    """The web service as an ASGI app (FastAPI), screening with ``screener``.

    Args:
        screener: a `hipscreen.Screener`, e.g. with a clinic's extra rules or thresholds; the
            built-in rules when omitted.
        min_indicator: the least urgent CDS card to send (``"warning"`` sends fewer cards).
        max_body_bytes: largest request body; a larger one is answered with 413.
        max_problems: most problems listed in one error answer.
        max_depth: most arrays and objects nested in one another in a body.
        max_values: most JSON values in a body.
        audit: where the audit trail and CDS feedback go: an `AuditLog`, a SQLAlchemy URL or a
            SQLite file path; in memory (``sqlite://``) when omitted.
        public_url: the service's absolute base URL as clients reach it (behind a proxy), for
            the cards' ``source.url`` and ``links``; taken from each request when omitted.
        fhir_servers: FHIR base URLs the ``patient-view`` service may fetch an intake from when
            it was not prefetched (with the request's ``fhirAuthorization``); none by default.
        form_mapper: maps a prefetched QuestionnaireResponse to a form;
            ``hipscreen.fhir.from_questionnaire_response`` when that module exists. None: only
            intake forms as JSON are accepted in ``prefetch.intake``.
        resources: makes the FHIR resources of the cards' ``create`` actions (see
            `hipscreen._cds.ResourceFactory`): the `hipscreen.fhir` ServiceRequest and CarePlan
            when omitted; None: suggestions carry no actions.
        fetch_timeout: seconds to wait for the FHIR server.
        auth: client authentication (`hipscreen._service_auth.ClientAuth`): every POST must
            carry a signed JWT whose ``aud`` is ``public_url`` + the path, else 401; none when
            omitted. Needs ``public_url``.
        cors_origins: browser origins allowed to call the service (CORS, with preflight);
            ``["*"]`` allows any.
        max_concurrent: requests in the app at once; more are answered 503 with Retry-After.
        max_inflight_bytes: request body bytes being received at once; more: 503.
        body_idle_timeout: seconds a body may pause before the answer is 408.
        body_deadline: seconds a whole body may take.

    Returns:
        The app, for uvicorn or any ASGI server (``uvicorn.run(app)``).

    Raises:
        ModuleNotFoundError: FastAPI or SQLAlchemy is not installed (the message names the
            install command).
        ValueError: a limit is below 1, ``min_indicator`` is not a severity, or ``auth`` is
            given without ``public_url``.
    """
    _require("fastapi")
    from fastapi import FastAPI, Request
    from fastapi.openapi.utils import get_openapi
    from starlette.responses import HTMLResponse, Response

    for name, limit in [
        ("max_body_bytes", max_body_bytes),
        ("max_problems", max_problems),
        ("max_depth", max_depth),
        ("max_values", max_values),
        ("max_concurrent", max_concurrent),
        ("max_inflight_bytes", max_inflight_bytes),
    ]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{name} must be an integer of at least 1 (got {limit!r})")
    for name, seconds in [
        ("body_idle_timeout", body_idle_timeout),
        ("body_deadline", body_deadline),
        ("fetch_timeout", fetch_timeout),
    ]:
        if not 0 < seconds <= 3600:
            raise ValueError(f"{name} must be in (0, 3600] seconds (got {seconds!r})")
    if auth is not None and public_url is None:
        raise ValueError(
            "client authentication needs public_url (--public-url): the JWT audience must be "
            "this service's own URL, not one taken from the request's Host header"
        )
    indicator = Severity(min_indicator)
    chosen = screener if screener is not None else default_screener()
    log = audit if isinstance(audit, AuditLog) else AuditLog(audit or "sqlite://")
    mapper: FormMapper | None = (
        default_mapper() if form_mapper is _DEFAULT else form_mapper  # type: ignore[assignment]
    )
    factory: ResourceFactory | None = (
        default_resources if resources is _DEFAULT else resources  # type: ignore[assignment]
    )
    servers = tuple(fhir_servers)

    app = FastAPI(
        title="hipscreen",
        version=__version__,
        description="Screen hip flexor / extensor balance. A screening aid, not a diagnosis.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.audit = log
    app.state.auth = auth
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(
        RequestLimiter,
        max_concurrent=max_concurrent,
        max_inflight_bytes=max_inflight_bytes,
        max_body_bytes=max_body_bytes,
    )

    def answer(text: str, status: int = 200) -> Response:
        return Response(content=text, status_code=status, media_type=_JSON)

    def refused(refusal: _Refusal) -> Response:
        headers = {"Connection": "close"} if refusal.status == 408 else None
        return Response(
            content=_report(refusal.problems, max_problems),
            status_code=refusal.status,
            media_type=_JSON,
            headers=headers,
        )

    async def read(request: Request) -> Any:
        return await _read_json(
            request, max_body_bytes, max_depth, max_values, body_idle_timeout, body_deadline
        )

    async def audit_call(
        request: Request,
        hook: str,
        instance: str,
        form: IntakeForm | dict[str, Any],
        result: Assessment,
        cards: list[CdsCard],
    ) -> None:
        """Record what one call decided (never the form itself, never a token)."""
        record = AssessmentRecord(
            service_id=SERVICE_ID,
            hook=hook,
            hook_instance=instance,
            input_digest=digest(
                form.model_dump(mode="json", exclude_unset=True)
                if isinstance(form, IntakeForm)
                else form
            ),
            ruleset_version=result.ruleset_version,
            findings=result.finding_ids(),
            referral=None if result.referral is None else result.referral.model_dump(mode="json"),
            cards=[_card_record(card) for card in cards],
            client=_client_of(request),
        )
        await asyncio.to_thread(log.record_assessment, record)

    async def authenticate(request: Request) -> Response | None:
        """None when the request may go on; the 401 answer otherwise (no detail, ever)."""
        if auth is None:
            return None
        audience = base_url(request) + request.url.path
        try:
            claims = await asyncio.to_thread(
                auth.verify, request.headers.get("authorization"), audience
            )
        except AuthError as error:
            _LOG.info("client authentication failed: %s", error)
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        request.state.client_iss = claims["iss"]
        return None

    def base_url(request: Request) -> str:
        return (public_url or str(request.base_url)).rstrip("/")

    @app.get("/healthz", responses=_answers("Health", body=False))
    async def healthz() -> Response:
        return answer(Health(status="ok", ruleset_version=chosen.ruleset_version).model_dump_json())

    @app.get("/schema", responses=_answers("Contract", body=False))
    async def contract() -> Response:
        return answer(json.dumps(schema(), ensure_ascii=False))

    async def screened(request: Request) -> Assessment | Response:
        """The request's form screened and audited, or the answer that refuses it."""
        if (denied := await authenticate(request)) is not None:
            return denied
        try:
            form = _object_or_refuse(await read(request), "the intake form")
            result = await assess_async(form, screener=chosen)
        except _Refusal as refusal:
            return refused(refusal)
        except InvalidFormError as error:
            return refused(_Refusal(422, _form_problems(error, ())))
        await audit_call(request, "assess", str(uuid.uuid4()), form, result, [])
        return result

    @app.post(
        "/assess",
        responses=_answers("Assessment", body=True, max_body_bytes=max_body_bytes),
        openapi_extra=_request_body("IntakeForm", "An intake form (JSON): see GET /schema."),
    )
    async def assess(request: Request) -> Response:
        result = await screened(request)
        return result if isinstance(result, Response) else answer(result.model_dump_json())

    @app.post(
        "/assess/html",
        responses={
            **_answers(None, body=True, max_body_bytes=max_body_bytes),
            200: {"description": "The assessment as HTML", "content": {"text/html": {}}},
        },
        openapi_extra=_request_body("IntakeForm", "An intake form (JSON): see GET /schema."),
    )
    async def assess_html(request: Request) -> Response:
        result = await screened(request)
        if isinstance(result, Response):
            return result
        from hipscreen._render.html import assessment_html

        return HTMLResponse(assessment_html(result))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def intake_page() -> HTMLResponse:
        return HTMLResponse(INTAKE_PAGE)

    assets = swagger_assets()
    if assets is not None:
        from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
        from starlette.staticfiles import StaticFiles

        app.mount("/static/docs", StaticFiles(directory=assets), name="docs-assets")

        @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
        async def swagger() -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url="openapi.json",
                title="hipscreen API",
                swagger_js_url="static/docs/swagger-ui-bundle.js",
                swagger_css_url="static/docs/swagger-ui.css",
                swagger_favicon_url="static/docs/favicon.png",
            )

        @app.get("/redoc", response_class=HTMLResponse, include_in_schema=False)
        async def redoc() -> HTMLResponse:
            return get_redoc_html(
                openapi_url="openapi.json",
                title="hipscreen API",
                redoc_js_url="static/docs/redoc.standalone.js",
                redoc_favicon_url="static/docs/favicon.png",
                with_google_fonts=False,
            )

    @app.get("/cds-services", responses=_answers("CdsDiscovery", body=False))
    async def discovery() -> Response:
        services = [service.discovery() for service in SERVICES]
        return answer(json.dumps({"services": services}, ensure_ascii=False))

    @app.post(
        f"/cds-services/{SERVICE_ID}",
        responses=_answers("CdsResponse", body=True, max_body_bytes=max_body_bytes, cds=True),
        openapi_extra=_request_body(
            "CdsRequest",
            f"A CDS Hooks request: hook {HOOK!r} with the intake form as context.{FORM_KEY}, "
            "or 'patient-view' with context.patientId and prefetch.intake.",
        ),
    )
    async def cds_service(request: Request) -> Response:
        if (denied := await authenticate(request)) is not None:
            return denied
        prefix: tuple[str | int, ...] = ("context", FORM_KEY)
        try:
            call = parse_request(await read(request))
            if call.hook != HOOK:
                prefix = ("prefetch", INTAKE_KEY)
            intake = await intake_of(
                call,
                mapper=mapper,
                fhir_servers=servers,
                fetch_timeout=fetch_timeout,
                max_bytes=max_body_bytes,
            )
            prefix = intake.path
            if not intake.found:  # the patient has no intake: nothing to say
                result = None
            else:
                form: IntakeForm | dict[str, Any] = (
                    intake.form
                    if isinstance(intake.form, IntakeForm)
                    else _object_or_refuse(intake.form, "the intake form", prefix)
                )
                result = await assess_async(form, screener=chosen)
        except _Refusal as refusal:
            return refused(refusal)
        except InvalidFormError as error:
            return refused(_Refusal(422, _form_problems(error, prefix)))
        cards: list[CdsCard] = []
        if result is not None:
            cards = cards_for(
                result,
                min_indicator=indicator,
                hook_instance=call.hookInstance,
                base_url=base_url(request),
                resources=factory,
                patient_id=intake.patient_id,
            )
            await audit_call(request, call.hook, call.hookInstance, form, result, cards)
        return answer(json.dumps({"cards": cards}, ensure_ascii=False))

    @app.post(
        f"/cds-services/{SERVICE_ID}/feedback",
        responses=_answers(None, body=True, max_body_bytes=max_body_bytes),
        openapi_extra=_request_body(
            "FeedbackRequest",
            "CDS Hooks feedback: one or more entries; repeats are recognised and stored once.",
        ),
    )
    async def cds_feedback(request: Request) -> Response:
        if (denied := await authenticate(request)) is not None:
            return denied
        try:
            entries = parse_feedback(await read(request))
        except _Refusal as refusal:
            return refused(refusal)
        await asyncio.to_thread(log.record_feedback, SERVICE_ID, entries, _client_of(request))
        return Response(status_code=200)

    @app.get("/rules", response_class=HTMLResponse, include_in_schema=False)
    async def rule_catalog() -> HTMLResponse:
        return HTMLResponse(_catalog_page(chosen, None))

    @app.get("/rules/{rule_id}", response_class=HTMLResponse, include_in_schema=False)
    async def rule_page(rule_id: str) -> HTMLResponse:
        if all(rule.id != rule_id for rule in chosen.ruleset.rules):
            return HTMLResponse("<!doctype html><title>not found</title>", status_code=404)
        return HTMLResponse(_catalog_page(chosen, rule_id))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                _component_schemas()
            )
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _card_record(card: CdsCard) -> dict[str, Any]:
    """What the audit trail keeps of a card: enough to tie feedback to it."""
    return {
        "uuid": card["uuid"],
        "code": card["source"]["topic"]["code"],
        "indicator": card["indicator"],
        "suggestions": [s["uuid"] for s in card.get("suggestions", [])],
    }


def _client_of(request: "Request") -> str | None:
    """The verified JWT issuer of the request (set by the client authentication), if any."""
    issuer = getattr(request.state, "client_iss", None)
    return issuer if isinstance(issuer, str) else None


def _catalog_page(screener: Screener, rule_id: str | None) -> str:
    """The rule catalog (or one rule) as a small HTML page: what the cards' links open."""
    rules = [r for r in screener.ruleset.rules if rule_id is None or r.id == rule_id]
    esc = html.escape
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        f"<title>hipscreen rules {esc(screener.ruleset_version)}</title>",
        f"<h1>hipscreen rules {esc(screener.ruleset_version)}</h1>",
        f"<p><em>{esc(screener.ruleset.disclaimer)}</em></p>",
    ]
    for rule in rules:
        spec = rule.spec
        parts.append(
            f"<section id='{esc(rule.id)}'><h2>{esc(spec.title)}</h2>"
            f"<p><code>{esc(rule.id)}</code> · {esc(spec.severity.value)} · "
            f"<a href='{'' if rule_id is None else '../'}rules/{esc(rule.id)}'>link</a></p>"
            f"<p>{esc(spec.summary)}</p><p>Source: {esc(spec.source)}</p></section>"
        )
    return "\n".join(parts) + "\n"


KEEP_ALIVE_TIMEOUT = 5
"""Seconds an idle keep-alive connection is kept open between requests."""

MAX_CONNECTIONS = 1_000
"""Connections uvicorn holds at once; beyond, it answers 503."""

MAX_HEAD_BYTES = 16_384
"""Largest request head (request line and headers) h11 buffers."""


def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    header_timeout: float = HEADER_TIMEOUT,
    keep_alive_timeout: int = KEEP_ALIVE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    """Serve ``app`` with uvicorn until interrupted (one process; see docs/embedding.md).

    Slow clients are bounded: a request head must arrive within ``header_timeout`` seconds, an
    idle keep-alive connection is closed after ``keep_alive_timeout``, a head is at most
    `MAX_HEAD_BYTES`, and more than ``max_connections`` connections get 503 from uvicorn. (Body
    timeouts and the caps on concurrent requests and body bytes are in the app: `create_app`.)
    """
    uvicorn = _require("uvicorn")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=header_timeout_protocol(header_timeout),
        timeout_keep_alive=keep_alive_timeout,
        limit_concurrency=max_connections,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def add_serve_options(parser: Any) -> None:
    """The ``hipscreen serve`` options of the CDS Hooks side, security and limits."""
    group = parser.add_argument_group("CDS Hooks, security and limits (docs/embedding.md)")
    group.add_argument(
        "--public-url",
        metavar="URL",
        help="the service's absolute base URL as clients reach it (the JWT audience and the "
        "cards' links); default: taken from each request",
    )
    group.add_argument(
        "--trusted-issuer",
        action="append",
        default=[],
        metavar="ISS=JWKS_FILE",
        help="trust JWTs from this iss, verified with the JWK Set in this file (repeatable)",
    )
    group.add_argument(
        "--trusted-jku",
        action="append",
        default=[],
        metavar="ISS=URL",
        help="let tokens from this iss name this JWK Set URL in their jku header (repeatable)",
    )
    group.add_argument(
        "--no-client-auth",
        action="store_true",
        help="accept requests without a signed JWT (the default only on 127.0.0.1/::1)",
    )
    group.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser calls from this origin, e.g. http://localhost:8080 (repeatable)",
    )
    group.add_argument(
        "--audit-db",
        default="hipscreen-audit.sqlite3",
        metavar="URL_OR_PATH",
        help="the audit trail and CDS feedback: a SQLite file or a SQLAlchemy URL "
        "(default hipscreen-audit.sqlite3)",
    )
    group.add_argument(
        "--fhir-server",
        action="append",
        default=[],
        metavar="URL",
        help="a FHIR server patient-view may read an intake from when not prefetched "
        "(repeatable; none by default)",
    )
    group.add_argument(
        "--max-concurrent",
        type=int,
        default=MAX_CONCURRENT,
        metavar="N",
        help=f"requests in the app at once; more get 503 (default {MAX_CONCURRENT})",
    )
    group.add_argument(
        "--max-inflight-bytes",
        type=int,
        default=MAX_INFLIGHT_BYTES,
        metavar="N",
        help=f"request body bytes received at once; more get 503 (default {MAX_INFLIGHT_BYTES})",
    )
    group.add_argument(
        "--read-timeout",
        type=float,
        default=BODY_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="a request head must arrive, and a body may pause, at most this long "
        f"(default {BODY_IDLE_TIMEOUT:g})",
    )


def _pairs(values: Sequence[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise ValueError(f"{option} must be ISS=VALUE (got {value!r})")
        pairs.append((key, rest))
    return pairs


def client_auth_from(
    issuers: Sequence[str], jkus: Sequence[str], *, host: str, disabled: bool
) -> ClientAuth | None:
    """The client authentication `hipscreen serve` asks for; on by default beyond loopback.

    Raises:
        ValueError: beyond loopback with no trusted issuer and without ``--no-client-auth``, or
            an option that is not ``ISS=VALUE``.
    """
    from hipscreen._service_auth import TrustedIssuer

    if disabled:
        return None
    files = _pairs(issuers, "--trusted-issuer")
    urls = _pairs(jkus, "--trusted-jku")
    if not files and not urls:
        if host in _LOOPBACK:
            return None
        raise ValueError(
            f"listening on {host} needs client authentication: give --trusted-issuer "
            "ISS=JWKS_FILE (or --trusted-jku ISS=URL), or --no-client-auth behind a gateway "
            "that authenticates"
        )
    trusted: dict[str, TrustedIssuer] = {}
    for iss, path in files:
        try:
            trusted[iss] = TrustedIssuer.from_file(iss, path)
        except (OSError, ValueError) as error:
            raise ValueError(f"--trusted-issuer {iss}: cannot read the JWK Set: {error}") from None
    for iss, url in urls:
        known = trusted.get(iss, TrustedIssuer(iss=iss))
        trusted[iss] = TrustedIssuer(iss=iss, jwks=known.jwks, jku=(*known.jku, url))
    return ClientAuth(trusted.values())


def serve_from_args(args: Any, screener: Screener) -> None:
    """``hipscreen serve``: build the app from the parsed options and serve it.

    Raises:
        ValueError: an option value the service refuses (the CLI shows it as a usage error).
    """
    auth = client_auth_from(
        args.trusted_issuer, args.trusted_jku, host=args.host, disabled=args.no_client_auth
    )
    if not 0 < args.read_timeout <= 3600:
        raise ValueError(f"--read-timeout must be in (0, 3600] seconds (got {args.read_timeout})")
    app = create_app(
        screener,
        min_indicator=args.min_indicator,
        max_body_bytes=args.max_body_bytes,
        max_problems=args.max_problems,
        audit=args.audit_db,
        public_url=args.public_url,
        fhir_servers=args.fhir_server,
        auth=auth,
        cors_origins=args.cors_origin,
        max_concurrent=args.max_concurrent,
        max_inflight_bytes=args.max_inflight_bytes,
        body_idle_timeout=args.read_timeout,
    )
    serve(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        header_timeout=args.read_timeout,
    )


_app_lock = threading.Lock()
_app: Any = None


def __getattr__(name: str) -> Any:
    """``app``: the app with the built-in rules, built on first use (``uvicorn
    hipscreen._service:app``)."""
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _app_lock:
        if _app is None:
            _app = create_app()
    return _app
