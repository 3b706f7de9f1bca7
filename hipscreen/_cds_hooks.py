"""The CDS Hooks 2.0.1 side of the web service: hooks, requests, prefetch and feedback.

Two services share the id ``hipscreen`` (the spec allows one id across hooks; a client then
replaces the cards of one hook with those of the next, "update stale guidance"):

``org.hipscreen.intake-submit``
    hipscreen's own hook (reverse-domain name): the intake form is ``context.intakeForm``.
``patient-view``
    the standard hook: ``context.patientId``; the intake comes from ``prefetch.intake`` (the
    patient's latest intake QuestionnaireResponse, as a search Bundle or the resource itself, or
    an intake form as hipscreen JSON), else from ``fhirServer`` with ``fhirAuthorization`` when
    that server is on the service's allowlist; otherwise the answer is 412.

A QuestionnaireResponse becomes a form through a pluggable mapper, by default
``hipscreen.fhir.from_questionnaire_response`` when that module exists; without it only an intake
form as JSON is accepted in ``prefetch.intake`` (a QuestionnaireResponse is answered with 412).
"""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hipscreen._fhir import _codes
from hipscreen._intake.strictjson import JsonProblem, StrictJsonError, loads_strict

__all__ = [
    "HOOK",
    "INTAKE_KEY",
    "PATIENT_VIEW",
    "QUESTIONNAIRE_URL",
    "SECRET_KEYS",
    "SERVICES",
    "CdsFailure",
    "CdsRequest",
    "FeedbackEntry",
    "FeedbackRequest",
    "FormMapper",
    "ServiceSpec",
    "default_mapper",
    "redact",
]

HOOK = "org.hipscreen.intake-submit"
"""hipscreen's own hook, named in reverse-domain notation as CDS Hooks asks for custom hooks."""

PATIENT_VIEW = "patient-view"

FORM_KEY = "intakeForm"
INTAKE_KEY = "intake"
"""The prefetch key of the patient's latest intake."""


QUESTIONNAIRE_URL = _codes.QUESTIONNAIRE_URL
"""The canonical URL of the intake Questionnaire (``hipscreen.fhir.QUESTIONNAIRE_URL``)."""

SECRET_KEYS = frozenset({"fhirAuthorization", "access_token", "authorization", "Authorization"})
"""Keys whose values never appear in an answer, a log line or the audit trail."""

REDACTED = "[redacted]"


@dataclass(frozen=True)
class ServiceSpec:
    """One entry of the discovery answer."""

    hook: str
    id: str
    title: str
    description: str
    prefetch: Mapping[str, str] | None = None

    def discovery(self) -> dict[str, Any]:
        """The entry as JSON, optional members left out when they have no value."""
        entry: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
        }
        if self.prefetch:
            entry["prefetch"] = dict(self.prefetch)
        return entry


SERVICE_ID = "hipscreen"

SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        hook=HOOK,
        id=SERVICE_ID,
        title="hipscreen hip balance screen",
        description="Screens an intake form for hip flexor / extensor balance (the form is "
        f"context.{FORM_KEY}); one card per finding. A screening aid, not a diagnosis.",
    ),
    ServiceSpec(
        hook=PATIENT_VIEW,
        id=SERVICE_ID,
        title="hipscreen hip balance screen",
        description="Screens the patient's latest hipscreen intake (a QuestionnaireResponse) "
        "for hip flexor / extensor balance; one card per finding. A screening aid, not a "
        "diagnosis.",
        prefetch={
            INTAKE_KEY: "QuestionnaireResponse?subject=Patient/{{context.patientId}}"
            f"&questionnaire={QUESTIONNAIRE_URL}&_sort=-authored&_count=1"
        },
    ),
)


# -- requests --------------------------------------------------------------------------------------


class CdsRequest(BaseModel):
    """A CDS Hooks request; fields this service does not read are ignored."""

    model_config = ConfigDict(extra="allow")

    hook: str = Field(description=f"The hook that fired: {HOOK!r} or {PATIENT_VIEW!r}.")
    hookInstance: str = Field(
        min_length=1, max_length=200, description="A unique id of this call (a UUID)."
    )
    fhirServer: str | None = Field(default=None, min_length=1, max_length=2000)
    fhirAuthorization: dict[str, Any] | None = Field(
        default=None,
        description="OAuth 2.0 access to fhirServer; needs fhirServer (cds-r-1). Never echoed.",
    )
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class CdsFailure(Exception):
    """A CDS request the service answers with a 4xx (400, 412, 422) and a list of problems."""

    def __init__(self, status: int, problems: Sequence[JsonProblem]) -> None:
        super().__init__(status)
        self.status = status
        self.problems = list(problems)


def _fail(status: int, kind: str, path: Sequence[str | int], message: str) -> CdsFailure:
    return CdsFailure(status, [JsonProblem(kind, tuple(path), message)])


def redact(value: Any) -> Any:
    """``value`` with the values of `SECRET_KEYS` replaced, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_KEYS else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def parse_request(value: Any) -> CdsRequest:
    """The request, checked: shape (422), hook (400), cds-r-1 (400). Secrets never echoed."""
    try:
        call = CdsRequest.model_validate(value)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False, include_context=False):
            loc = tuple(item["loc"])
            secret = any(part in SECRET_KEYS for part in loc)
            shown = REDACTED if secret else redact(item.get("input"))
            problems.append(JsonProblem(item["type"], loc, item["msg"], shown))
        raise CdsFailure(422, problems) from None
    hooks = sorted({s.hook for s in SERVICES})
    if call.hook not in hooks:
        raise _fail(
            400,
            "hook_mismatch",
            ["hook"],
            f"this service answers the hooks {', '.join(map(repr, hooks))} (got {call.hook!r})",
        )
    if call.fhirAuthorization is not None and call.fhirServer is None:
        raise _fail(
            400,
            "cds_r_1",
            ["fhirServer"],
            "fhirAuthorization was given without fhirServer (CDS Hooks cds-r-1)",
        )
    return call


# -- where the form comes from ---------------------------------------------------------------------

FormMapper = Callable[[dict[str, Any]], Any]
"""Maps a QuestionnaireResponse (a JSON dict) to an intake form (an IntakeForm or its JSON)."""


def default_mapper() -> FormMapper:
    """``hipscreen.fhir.from_questionnaire_response``: a QuestionnaireResponse to an IntakeForm."""
    from hipscreen._fhir._intake import from_questionnaire_response

    return from_questionnaire_response


def default_resources(
    assessment: Any, resource_type: str, patient_id: str | None
) -> dict[str, Any] | None:
    """The resources of the cards' ``create`` actions, from `hipscreen.fhir` (a `ResourceFactory`).

    ``"ServiceRequest"``: the referral; ``"CarePlan"``: the exercise plan; None when the
    assessment has neither, or when the patient is not known (a resource needs its subject).
    """
    if patient_id is None:
        return None
    from hipscreen._fhir import _resources

    subject = f"Patient/{patient_id}"
    if resource_type == "ServiceRequest":
        return _resources.referral_service_request(assessment, subject=subject)
    if resource_type == "CarePlan":
        return _resources.care_plan(assessment, subject=subject)
    return None


@dataclass(frozen=True)
class Intake:
    """The form of a call, where it came from (for error paths), and the patient."""

    form: Any  # an intake form as JSON or IntakeForm
    path: tuple[str | int, ...]
    patient_id: str | None
    found: bool = True  # False: the patient has no intake (an empty search result)


_NO_INTAKE: Any = object()

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


async def intake_of(
    call: CdsRequest,
    *,
    mapper: FormMapper | None,
    fhir_servers: Sequence[str],
    fetch_timeout: float,
    max_bytes: int,
) -> Intake:
    """The intake form a call is about; `CdsFailure` (412, 422) when there is none to be had."""
    if call.hook == HOOK:
        path: tuple[str | int, ...] = ("context", FORM_KEY)
        if FORM_KEY not in call.context:
            raise _fail(422, "missing", path, f"the intake form (context.{FORM_KEY}) is missing")
        return Intake(call.context[FORM_KEY], path, None)

    patient = call.context.get("patientId")
    if not isinstance(patient, str) or not _FHIR_ID.fullmatch(patient):
        raise _fail(
            422,
            "invalid_context",
            ["context", "patientId"],
            "context.patientId must be a FHIR id (1-64 letters, digits, '-' or '.')",
        )
    path = ("prefetch", INTAKE_KEY)
    prefetched = (call.prefetch or {}).get(INTAKE_KEY)
    if prefetched is None:
        prefetched = await _fetch(call, patient, fhir_servers, fetch_timeout, max_bytes)
        path = ("fhirServer", "QuestionnaireResponse")
    form = _form_from(prefetched, patient, path, mapper)
    return Intake(form, path, patient, found=form is not _NO_INTAKE)


def _precondition(message: str) -> CdsFailure:
    return _fail(412, "precondition_failed", ["prefetch", INTAKE_KEY], message)


async def _fetch(
    call: CdsRequest,
    patient: str,
    fhir_servers: Sequence[str],
    timeout: float,
    max_bytes: int,
) -> Any:
    """The patient's latest intake from the client's FHIR server (a search Bundle)."""
    server = call.fhirServer
    if server is None or call.fhirAuthorization is None:
        raise _precondition(
            f"prefetch.{INTAKE_KEY} was not sent and no fhirServer with fhirAuthorization was "
            "given to fetch it from"
        )
    if not any(_under(server, allowed) for allowed in fhir_servers):
        raise _precondition(
            f"prefetch.{INTAKE_KEY} was not sent, and this service does not fetch from that "
            "fhirServer (not on its allowlist)"
        )
    token = call.fhirAuthorization.get("access_token")
    if not isinstance(token, str) or not token:
        raise _precondition("fhirAuthorization has no access_token to read the FHIR server with")
    query = urllib.parse.urlencode(
        {
            "subject": f"Patient/{patient}",
            "questionnaire": QUESTIONNAIRE_URL,
            "_sort": "-authored",
            "_count": "1",
        }
    )
    url = f"{server.rstrip('/')}/QuestionnaireResponse?{query}"
    return await asyncio.to_thread(_get_json, url, token, timeout, max_bytes)


def _under(server: str, allowed: str) -> bool:
    allowed = allowed.rstrip("/")
    return server.rstrip("/") == allowed or server.startswith(allowed + "/")


def _get_json(url: str, token: str, timeout: float, max_bytes: int) -> Any:
    request = urllib.request.Request(
        url,
        headers={"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
    except urllib.error.HTTPError as error:
        raise _precondition(f"the FHIR server answered HTTP {error.code}") from None
    except (OSError, ValueError) as error:
        raise _precondition(f"the FHIR server could not be read ({type(error).__name__})") from None
    if len(body) > max_bytes:
        raise _precondition(f"the FHIR server's answer is larger than {max_bytes} bytes")
    try:
        return loads_strict(body)
    except StrictJsonError:
        raise _precondition("the FHIR server's answer is not JSON") from None


def _form_from(
    value: Any, patient: str, path: tuple[str | int, ...], mapper: FormMapper | None
) -> Any:
    if not isinstance(value, dict):
        raise _fail(422, "invalid_prefetch", path, "the intake must be a JSON object")
    kind = value.get("resourceType")
    if kind is None:
        return value  # an intake form as hipscreen JSON
    if kind == "OperationOutcome":
        raise _precondition("the client could not fetch the intake (an OperationOutcome)")
    if kind == "Bundle":
        responses = [
            entry["resource"]
            for entry in value.get("entry") or []
            if isinstance(entry, dict)
            and isinstance(entry.get("resource"), dict)
            and entry["resource"].get("resourceType") == "QuestionnaireResponse"
        ]
        if not responses:
            return _NO_INTAKE
        value = max(responses, key=lambda r: str(r.get("authored", "")))
        kind = "QuestionnaireResponse"
    if kind != "QuestionnaireResponse":
        raise _fail(
            422,
            "invalid_prefetch",
            [*path, "resourceType"],
            f"the intake must be a QuestionnaireResponse, a Bundle of them or an intake form "
            f"(got resourceType {str(kind)[:60]!r})",
        )
    subject = (value.get("subject") or {}).get("reference")
    if subject is not None and subject not in (f"Patient/{patient}", patient):
        raise _fail(
            422,
            "patient_mismatch",
            [*path, "subject"],
            "the QuestionnaireResponse is about another patient than context.patientId",
        )
    if mapper is None:
        raise _precondition(
            "a QuestionnaireResponse needs hipscreen.fhir to be read, which is not installed; "
            f"send the intake form as hipscreen JSON in prefetch.{INTAKE_KEY}"
        )
    from hipscreen._errors import InvalidFormError

    try:
        return mapper(value)
    except InvalidFormError:
        raise
    except ValueError as error:
        raise _fail(422, "invalid_questionnaire_response", path, str(error)) from None


# -- feedback --------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})", re.ASCII
)


def _uuid_text(value: str) -> str:
    text = value.removeprefix("urn:uuid:")
    uuid.UUID(text)  # ValueError: not a uuid
    return text


class _Coding(BaseModel):
    model_config = ConfigDict(extra="allow")

    system: str | None = Field(default=None, max_length=2000)
    code: str = Field(min_length=1, max_length=200)
    display: str | None = Field(default=None, max_length=2000)


class _OverrideReason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: _Coding | None = None
    userComment: str | None = Field(default=None, min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _cds_fb_3(self) -> _OverrideReason:
        if self.reason is None and self.userComment is None:
            raise ValueError("an overrideReason needs a reason, a userComment or both (cds-fb-3)")
        return self


class _Accepted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=200)]

    @model_validator(mode="after")
    def _uuid(self) -> _Accepted:
        self.id = _uuid_text(self.id)
        return self


class FeedbackEntry(BaseModel):
    """What the user did with one card (cds-fb-1..3 enforced)."""

    model_config = ConfigDict(extra="allow")

    card: str = Field(min_length=1, max_length=200, description="The card's uuid.")
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[_Accepted] | None = Field(default=None, max_length=100)
    overrideReason: _OverrideReason | None = None
    outcomeTimestamp: str = Field(description="RFC 3339, e.g. 2026-12-07T01:02:03Z.")

    @model_validator(mode="after")
    def _checks(self) -> FeedbackEntry:
        self.card = _uuid_text(self.card)
        if not _RFC3339.fullmatch(self.outcomeTimestamp):
            raise ValueError("outcomeTimestamp must be an RFC 3339 date-time")
        datetime.fromisoformat(self.outcomeTimestamp.replace("Z", "+00:00"))
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions (cds-fb-2)")
        return self


class FeedbackRequest(BaseModel):
    """The body of ``{id}/feedback``: a batch of one or more entries."""

    model_config = ConfigDict(extra="allow")

    feedback: list[FeedbackEntry] = Field(min_length=1, max_length=1000)


def parse_feedback(value: Any) -> list[dict[str, Any]]:
    """The feedback entries as JSON (checked), or `CdsFailure` 422 naming every problem."""
    try:
        request = FeedbackRequest.model_validate(value)
    except ValidationError as error:
        raise CdsFailure(
            422,
            [
                JsonProblem(
                    item["type"], tuple(item["loc"]), item["msg"], redact(item.get("input"))
                )
                for item in error.errors(include_url=False, include_context=False)
            ],
        ) from None
    return [entry.model_dump(exclude_none=True) for entry in request.feedback]
