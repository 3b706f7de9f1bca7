"""Reading a FHIR R4 QuestionnaireResponse back into an `IntakeForm`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hipscreen._errors import FieldProblem, InvalidFormError
from hipscreen._fhir._codes import QUESTIONNAIRE_URL
from hipscreen._fhir._questionnaire import Item, item_index
from hipscreen._intake.form import IntakeForm, coerce_form
from hipscreen._vocabulary import suggest

__all__ = ["from_questionnaire_response"]

_VALUE_PREFIX = "value"


def _short(value: Any, limit: int = 60) -> Any:
    text = repr(value)
    return value if len(text) <= limit else text[: limit - 1] + "…"


def _answered_items(
    items: Any, where: str, problems: list[FieldProblem]
) -> Iterator[tuple[Mapping[str, Any], str]]:
    """Every item of a (nested) QuestionnaireResponse item list, with the path it was found at."""
    if items is None:
        return
    if not isinstance(items, list):
        problems.append(FieldProblem(where, _short(items), f"{where} must be a list of items"))
        return
    for n, entry in enumerate(items):
        here = f"{where}[{n}]"
        if not isinstance(entry, Mapping):
            problems.append(FieldProblem(here, _short(entry), "an item must be a JSON object"))
            continue
        yield entry, here
        yield from _answered_items(entry.get("item"), f"{here}.item", problems)
        answers = entry.get("answer")
        if isinstance(answers, list):
            for a, answer in enumerate(answers):
                if isinstance(answer, Mapping):
                    yield from _answered_items(
                        answer.get("item"), f"{here}.answer[{a}].item", problems
                    )


def _value(item: Item, answer: Any, problems: list[FieldProblem]) -> Any:
    """The form value of one answer, or None after recording a problem."""
    field = item.link_id
    if not isinstance(answer, Mapping):
        problems.append(FieldProblem(field, _short(answer), "an answer must be a JSON object"))
        return None
    keys = [k for k in answer if k.startswith(_VALUE_PREFIX)]
    expected = item.value_key
    if keys != [expected]:
        got = ", ".join(keys) or "no value"
        message = f"expects one {expected} answer ({item.type} item; got {got})"
        problems.append(FieldProblem(field, _short(dict(answer)), message))
        return None
    value = answer[expected]
    if item.type == "choice":
        return _choice(item, value, problems)
    ok = {
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "decimal": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
    }[item.type]
    if not ok:
        problems.append(
            FieldProblem(field, _short(value), f"{expected} must be a {item.type} (got {value!r})")
        )
        return None
    return value


def _choice(item: Item, coding: Any, problems: list[FieldProblem]) -> Any:
    field = item.link_id
    codes = [o.code for o in item.options]
    if not isinstance(coding, Mapping) or not isinstance(coding.get("code"), str):
        message = f"valueCoding needs a code, one of: {', '.join(codes)} (got {coding!r})"
        problems.append(FieldProblem(field, _short(coding), message))
        return None
    system = coding.get("system")
    if system is not None and system != item.system:
        message = f"valueCoding.system must be {item.system!r} (got {system!r})"
        problems.append(FieldProblem(field, system, message))
        return None
    code = coding["code"]
    for option in item.options:
        if option.code == code:
            return option.ordinal if option.ordinal is not None else option.code
    message = f"unknown code {code!r}{suggest(code, codes)} (allowed: {', '.join(codes)})"
    problems.append(FieldProblem(field, code, message))
    return None


def _place(data: dict[str, Any], path: tuple[str, ...], value: Any) -> bool:
    """Set ``value`` at ``path``, opening records on the way; False when a value for both sides
    and a per-side value meet there."""
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return False
    before = node.get(path[-1])
    if isinstance(before, dict) and isinstance(value, dict):
        return True  # a record already opened by one of its fields
    if before is not None:
        return False
    node[path[-1]] = value
    return True


def _check_resource(qr: Any) -> list[FieldProblem]:
    if not isinstance(qr, Mapping):
        return [FieldProblem("", _short(qr), "expected a QuestionnaireResponse (a JSON object)")]
    problems = []
    kind = qr.get("resourceType")
    if kind != "QuestionnaireResponse":
        message = f"resourceType must be 'QuestionnaireResponse' (got {kind!r})"
        problems.append(FieldProblem("resourceType", kind, message))
    canonical = qr.get("questionnaire")
    if canonical is not None and (
        not isinstance(canonical, str) or canonical.split("|", 1)[0] != QUESTIONNAIRE_URL
    ):
        message = f"questionnaire must be {QUESTIONNAIRE_URL!r} (optionally |version; got " + (
            f"{canonical!r})"
        )
        problems.append(FieldProblem("questionnaire", _short(canonical), message))
    if qr.get("status") == "entered-in-error":
        message = "a response entered in error cannot be screened"
        problems.append(FieldProblem("status", "entered-in-error", message))
    return problems


def from_questionnaire_response(qr: Mapping[str, Any]) -> IntakeForm:
    """Read a FHIR R4 ``QuestionnaireResponse`` to the intake `questionnaire` as an `IntakeForm`.

    Items may be nested as in the Questionnaire or flat; each ``linkId`` is a form field path
    (``PATH.both`` for one value for both sides). An unanswered item stays unset: blank is "not
    asked", never "no".

    Args:
        qr: the QuestionnaireResponse as a JSON-like mapping.

    Returns:
        The intake form.

    Raises:
        InvalidFormError: every problem at once, each naming the linkId (field path), the value
            and what is allowed: an unknown linkId, an answer of the wrong type or code, several
            answers to a single question, an item answered twice, contradicting answers (one
            value for both sides and a per-side value; ``pregnancy`` = no with its weeks given),
            and anything the form itself refuses.

    Examples:
        >>> from hipscreen import fhir
        >>> qr = {"resourceType": "QuestionnaireResponse", "status": "completed",
        ...       "item": [{"linkId": "age", "answer": [{"valueInteger": 40}]}]}
        >>> fhir.from_questionnaire_response(qr).age
        40
    """
    problems = _check_resource(qr)
    if not isinstance(qr, Mapping):
        raise InvalidFormError(problems)
    index = item_index()
    data: dict[str, Any] = {}
    seen: dict[str, str] = {}
    declined: dict[tuple[str, ...], str] = {}  # records answered "no"
    for entry, where in _answered_items(qr.get("item"), "item", problems):
        raw = entry.get("linkId")
        item = index.get(raw) if isinstance(raw, str) else None
        if item is None:
            shown = raw if isinstance(raw, str) else where
            message = (
                f"unknown linkId {raw!r}{suggest(str(raw), index)} "
                "(the intake Questionnaire's linkIds are the form's field paths)"
            )
            problems.append(FieldProblem(shown, _short(raw), message))
            continue
        link_id = item.link_id
        if link_id in seen:
            message = f"answered twice (at {seen[link_id]} and {where}); give each item once"
            problems.append(FieldProblem(link_id, None, message))
            continue
        seen[link_id] = where
        answers = entry.get("answer") or []
        if item.type == "group":
            if answers:
                message = "a group has no answer of its own; answer its items"
                problems.append(FieldProblem(link_id, _short(answers), message))
            continue
        if not isinstance(answers, list):
            problems.append(FieldProblem(link_id, _short(answers), "answer must be a list"))
            continue
        if not answers:
            continue  # blank: not asked
        if len(answers) > 1 and not item.repeats:
            message = f"takes one answer (got {len(answers)})"
            problems.append(FieldProblem(link_id, _short(answers), message))
            continue
        values = [_value(item, answer, problems) for answer in answers]
        if any(v is None for v in values):
            continue
        if item.record:
            if values[0]:
                _place(data, item.path, {})
            else:
                declined[item.path] = link_id
            continue
        value: Any = values if item.repeats else values[0]
        if not _place(data, item.path, value):
            group = ".".join(item.path if item.side == "both" else item.path[:-1])
            message = (
                f"answered both for both sides ({group}.both) and per side; give one value for "
                "both sides or a value per side"
            )
            problems.append(FieldProblem(group, _short(value), message))
    for path, link_id in declined.items():
        given = _lookup_record(data, path)
        if not given and index[link_id].declinable:
            _place(data, path, False)  # a stated "no" the form keeps (``pregnancy: false``)
        elif given:
            message = (
                f"{link_id} is answered no, but {', '.join(f'{link_id}.{k}' for k in given)} "
                "describe it (give one answer)"
            )
            problems.append(FieldProblem(link_id, False, message))
    if problems:
        raise InvalidFormError(problems)
    return coerce_form(data)


def _lookup_record(data: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return []
        node = node[key]
    return sorted(node) if isinstance(node, Mapping) else []
