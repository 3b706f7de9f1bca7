"""The ``hipscreen fhir`` commands: print the intake Questionnaire, read a QuestionnaireResponse,
write an assessment as a Bundle."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["register"]


def register(
    commands: Any,
    *,
    read_json: Callable[[str, Any], tuple[str, Any]],
    screener_from: Callable[[argparse.Namespace], Any],
    rule_options: Callable[[argparse.ArgumentParser], None],
    usage_error: type[Exception],
) -> None:
    """Add ``fhir questionnaire``, ``fhir read`` and ``fhir bundle`` to the command parser.

    The CLI passes its JSON reader, screener options and usage error (exit code 2), so this
    module holds the FHIR logic and ``_cli`` only the hook.
    """
    fhir = commands.add_parser(
        "fhir",
        help="FHIR R4: the intake Questionnaire, QuestionnaireResponses in, Bundles out",
        description="FHIR R4 in and out (see docs/fhir.md).",
    )
    parser_class = type(fhir)
    sub = fhir.add_subparsers(title="commands", metavar="COMMAND", parser_class=parser_class)

    def show_help(_args: argparse.Namespace) -> int:
        fhir.print_help(sys.stderr)
        return 2

    fhir.set_defaults(func=show_help)

    q = sub.add_parser(
        "questionnaire",
        help="print the intake form as a FHIR R4 Questionnaire (JSON)",
        description="Print the intake form as a FHIR R4 Questionnaire; each linkId is a field "
        "path of the intake form.",
    )
    q.set_defaults(func=_questionnaire)

    read = sub.add_parser(
        "read",
        help="read a QuestionnaireResponse (JSON) and print the intake form",
        description="Read a QuestionnaireResponse to the intake Questionnaire and print the "
        "intake form as JSON; exit code 2 with every problem, by linkId, when it is invalid.",
    )
    read.add_argument("file", metavar="FILE", help="the QuestionnaireResponse, - for stdin")
    read.set_defaults(func=lambda args: _read(args, read_json, usage_error))

    out = sub.add_parser(
        "bundle",
        help="screen a form (or QuestionnaireResponse) and print the result as a FHIR Bundle",
        description="Screen one intake form, given as form JSON or as a QuestionnaireResponse, "
        "and print the assessment as a FHIR R4 Bundle (type collection).",
    )
    out.add_argument("file", metavar="FILE", help="the form or QuestionnaireResponse, - for stdin")
    out.add_argument("--subject", required=True, help="the patient reference, e.g. Patient/123")
    out.add_argument("--when", help="when it was screened (ISO 8601 with offset; default now)")
    rule_options(out)
    out.set_defaults(func=lambda args: _bundle(args, read_json, screener_from, usage_error))


def _write(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _questionnaire(_args: argparse.Namespace) -> int:
    from hipscreen._fhir._questionnaire import questionnaire

    _write(questionnaire())
    return 0


def _where(name: str) -> str:
    return "stdin" if name == "-" else name


def _read(
    args: argparse.Namespace,
    read_json: Callable[[str, Any], tuple[str, Any]],
    usage_error: type[Exception],
) -> int:
    from hipscreen._errors import InvalidFormError
    from hipscreen._fhir._intake import from_questionnaire_response

    _, value = read_json(args.file, sys.stdin)
    try:
        form = from_questionnaire_response(value)
    except InvalidFormError as error:
        raise usage_error(f"{_where(args.file)}: {error}") from None
    _write(form.model_dump(mode="json", exclude_unset=True))
    return 0


def _bundle(
    args: argparse.Namespace,
    read_json: Callable[[str, Any], tuple[str, Any]],
    screener_from: Callable[[argparse.Namespace], Any],
    usage_error: type[Exception],
) -> int:
    from hipscreen._errors import InvalidFormError
    from hipscreen._fhir._codes import datetime_text
    from hipscreen._fhir._intake import from_questionnaire_response
    from hipscreen._intake.form import coerce_form

    try:
        datetime_text(args.when)
    except ValueError as error:
        raise usage_error(f"--when: {error}") from None
    _, value = read_json(args.file, sys.stdin)
    try:
        if isinstance(value, dict) and value.get("resourceType") == "QuestionnaireResponse":
            form = from_questionnaire_response(value)
        else:
            form = coerce_form(value)
    except InvalidFormError as error:
        raise usage_error(f"{_where(args.file)}: {error}") from None
    result = screener_from(args).assess(form)
    try:
        bundle = result.to_fhir(subject=args.subject, form=form, when=args.when)
    except InvalidFormError as error:
        raise usage_error(f"{_where(args.file)}: {error}") from None
    except ValueError as error:  # an empty --subject
        raise usage_error(f"--subject: {error}") from None
    _write(bundle)
    return 0
