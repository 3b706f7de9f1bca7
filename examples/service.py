"""Reference web service: hipscreen behind HTTP with FastAPI, JSON in and JSON out.

Endpoints:

    GET  /healthz                   {"status": "ok", "ruleset_version": ...}
    GET  /schema                    the JSON contract: {"input": ..., "output": ...}
    POST /assess                    an intake form (JSON) → the Assessment (JSON)
    GET  /cds-services              CDS Hooks discovery
    POST /cds-services/hipscreen    a CDS Hooks request → {"cards": [...]}

An invalid form is answered with HTTP 422 and one entry per problem, each with the field path
(``loc`` as FastAPI gives it, and ``field``: the same path, dotted, without "body"), the
message and the value given.

Run it (needs ``pip install "hipscreen[service]"``)::

    python examples/service.py --port 8000
    python examples/service.py --extra-rules my_clinic_rules --threshold weak_grade=4
    uvicorn service:app --app-dir examples --port 8001

Screening holds the GIL, so one process serves about one core's worth of requests whatever the
thread count; run several processes behind a load balancer to use more cores. (On Linux, prefer
single-worker processes to ``uvicorn --workers N``, which leaves Nagle's algorithm on: uvicorn
issue #3149, ~40 ms per keep-alive request.) The endpoints are ``async`` and screen in a worker
thread (`hipscreen._aio.assess_async`), so slow clients never stall the loop.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import hipscreen
from hipscreen import assess_async, schema

SERVICE_ID = "hipscreen"
HOOK = "org.hipscreen.intake-submit"
"""The hook this service answers: an organisation-specific hook named in reverse-domain notation,
as CDS Hooks asks. Its context carries the intake form as ``intakeForm``."""

FORM_KEY = "intakeForm"


class CdsRequest(BaseModel):
    """The parts of a CDS Hooks request this service reads (it accepts and ignores the rest)."""

    model_config = ConfigDict(extra="allow")

    hook: str
    hookInstance: str = Field(min_length=1)
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


def _loc(field: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in field.split(".") if part]


def _unprocessable(problems: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(jsonable_encoder({"detail": problems}), status_code=422)


def _json_or_422(body: bytes) -> JSONResponse | None:
    """422 for a body that is not JSON at all (FastAPI's own shape), else None."""
    try:
        json.loads(body)
    except ValueError as error:
        where = error.pos if isinstance(error, json.JSONDecodeError) else 0
        return _unprocessable(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", where],
                    "field": "",
                    "msg": f"the body is not valid JSON: {error}",
                    "input": None,
                }
            ]
        )
    return None


def _form_problems(error: hipscreen.InvalidFormError, prefix: list[str | int]) -> JSONResponse:
    return _unprocessable(
        [
            {
                "type": "invalid_form",
                "loc": ["body", *prefix, *_loc(problem.field)],
                "field": ".".join(str(part) for part in [*prefix, *_loc(problem.field)]),
                "msg": problem.message,
                "input": problem.value,
            }
            for problem in error.problems
        ]
    )


def _json_response(text: str) -> Response:
    return Response(content=text, media_type="application/json")


def create_app(
    screener: hipscreen.Screener | None = None, *, min_indicator: str = "info"
) -> FastAPI:
    """The FastAPI app, screening with ``screener`` (the built-in rules when omitted).

    Args:
        screener: a `hipscreen.Screener`, e.g. with a clinic's extra rules or thresholds.
        min_indicator: the least urgent CDS card to send (``"warning"`` sends fewer cards).
    """
    screener = screener or hipscreen.Screener()
    app = FastAPI(
        title="hipscreen",
        version=hipscreen.__version__,
        description="Screen hip flexor / extensor balance. A screening aid, not a diagnosis.",
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "ruleset_version": screener.ruleset_version}

    @app.get("/schema")
    async def contract() -> dict[str, Any]:
        return schema()

    @app.post(
        "/assess",
        responses={200: {"model": hipscreen.Assessment}, 422: {"description": "invalid form"}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
                "description": "An intake form: see GET /schema (input).",
            }
        },
    )
    async def assess(request: Request) -> Response:
        body = await request.body()
        if (bad := _json_or_422(body)) is not None:
            return bad
        try:
            # The raw JSON goes to hipscreen, which validates it in JSON mode like assess(text).
            result = await assess_async(body, screener=screener)
        except hipscreen.InvalidFormError as error:
            return _form_problems(error, [])
        return _json_response(result.model_dump_json())

    @app.get("/cds-services")
    async def discovery() -> dict[str, Any]:
        return {
            "services": [
                {
                    "hook": HOOK,
                    "id": SERVICE_ID,
                    "title": "hipscreen hip balance screen",
                    "description": "Screens an intake form for hip flexor / extensor balance "
                    f"(the form is context.{FORM_KEY}); one card per finding.",
                    "prefetch": {},
                }
            ]
        }

    @app.post(f"/cds-services/{SERVICE_ID}")
    async def cds_service(request: Request) -> Response:
        body = await request.body()
        if (bad := _json_or_422(body)) is not None:
            return bad
        try:
            call = CdsRequest.model_validate_json(body)
        except ValidationError as error:
            return _unprocessable(
                [
                    {
                        "type": item["type"],
                        "loc": ["body", *item["loc"]],
                        "field": ".".join(str(part) for part in item["loc"]),
                        "msg": item["msg"],
                        "input": item.get("input"),
                    }
                    for item in error.errors(include_url=False, include_context=False)
                ]
            )
        form = call.context.get(FORM_KEY)
        if not isinstance(form, dict):
            given = "missing" if form is None else f"got {type(form).__name__}"
            return _unprocessable(
                [
                    {
                        "type": "invalid_form",
                        "loc": ["body", "context", FORM_KEY],
                        "field": f"context.{FORM_KEY}",
                        "msg": f"the intake form must be a JSON object ({given})",
                        "input": form,
                    }
                ]
            )
        try:
            result = await assess_async(form, screener=screener)
        except hipscreen.InvalidFormError as error:
            return _form_problems(error, ["context", FORM_KEY])
        cards = result.to_cds_cards(min_indicator=min_indicator)
        return _json_response(json.dumps({"cards": cards}, ensure_ascii=False))

    return app


app = create_app()
"""The app with the built-in rules, for ``uvicorn service:app``."""


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Run the hipscreen reference web service.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--extra-rules", action="append", default=[], metavar="DIR")
    parser.add_argument(
        "--threshold", action="append", default=[], metavar="NAME=VALUE", help="e.g. weak_grade=4"
    )
    args = parser.parse_args(argv)
    thresholds: dict[str, float] = {}
    for item in args.threshold:
        name, _, value = item.partition("=")
        number = float(value)
        thresholds[name.strip()] = int(number) if number.is_integer() else number
    screener = hipscreen.Screener(extra_rules=args.extra_rules, thresholds=thresholds or None)
    uvicorn.run(create_app(screener), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
