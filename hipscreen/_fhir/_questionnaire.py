"""The intake form as a FHIR R4 Questionnaire, and a form as its QuestionnaireResponse.

The items are derived from the `IntakeForm` JSON schema, so a field added to the form appears in
the Questionnaire without touching this module. Each ``linkId`` is the form's field path:

* a scalar field is a question (``boolean``, ``integer``, ``decimal``, ``string``, or ``choice``
  for a vocabulary, with the enum's values as codes; lists of names repeat);
* a grade (an integer scale with labels) is a ``choice`` of its labels, each with its number as
  the ``ordinalValue`` extension;
* a value given for both sides at once or per side is a group with three questions:
  ``PATH.both`` (one value for both sides; the form's ``PATH``), ``PATH.left`` and ``PATH.right``;
* a record with a required field (``recent_fall``) is a group;
* a record without one (``pregnancy``, ``back_pain``, ``rom`` …) is a yes/no question whose
  answer carries the record's fields: "pregnant, weeks not known" is ``pregnancy`` = yes alone;
* a ``{muscle: grade}`` table is a group with one entry per muscle.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hipscreen._errors import FieldProblem, InvalidFormError
from hipscreen._fhir._codes import QUESTIONNAIRE_URL, content_id, datetime_text, subject_reference
from hipscreen._intake.form import IntakeForm, coerce_form
from hipscreen._version import __version__

__all__ = ["Item", "items", "questionnaire", "questionnaire_response"]

ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"

SIDES = ("both", "left", "right")

_VALUE_KEY = {
    "boolean": "valueBoolean",
    "integer": "valueInteger",
    "decimal": "valueDecimal",
    "string": "valueString",
    "choice": "valueCoding",
}
"""The answer's ``value[x]`` key for each question type."""


@dataclass(frozen=True)
class Option:
    """One answer option of a choice question."""

    code: str
    display: str
    ordinal: int | None = None  # a grade's number; the form stores it instead of the label


@dataclass(frozen=True)
class Item:
    """One Questionnaire item and where its answer lives in the form.

    ``path`` is the field path in the form's JSON; ``side`` is ``both``/``left``/``right`` for the
    questions of a per-side value (``both`` answers go to ``path`` itself).
    """

    link_id: str
    text: str
    type: str  # group, boolean, integer, decimal, string, choice
    path: tuple[str, ...]
    children: tuple[Item, ...] = ()
    side: str | None = None
    system: str | None = None
    options: tuple[Option, ...] = ()
    repeats: bool = False
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    declinable: bool = False  # a record whose "no" is a value of its own (``pregnancy: false``)

    @property
    def value_key(self) -> str | None:
        """The ``value[x]`` key an answer to this item uses (None for a group)."""
        return _VALUE_KEY.get(self.type)

    @property
    def record(self) -> bool:
        """A yes/no question whose answer carries a record's fields."""
        return self.type == "boolean" and bool(self.children)

    def walk(self) -> Iterator[Item]:
        """This item and every item below it."""
        yield self
        for child in self.children:
            yield from child.walk()


# -- building the items from the form's JSON schema ------------------------------------------------


def _words(name: str) -> str:
    return name.replace("_", " ")


def _text(name: str, schema: Mapping[str, Any], model: Mapping[str, Any] | None = None) -> str:
    """The field's description (or its record's), else its name in words."""
    description = schema.get("description") or (model or {}).get("description")
    if isinstance(description, str) and description.strip():
        return description.split("\n\n", 1)[0].strip().removesuffix(".")
    return _words(name).capitalize()


def _kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower().replace("_", "-")


class _Builder:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.defs: Mapping[str, Any] = schema.get("$defs", {})

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self.defs[ref.rsplit("/", 1)[-1]]  # type: ignore[no-any-return]
        return node

    @staticmethod
    def strip_null(node: Mapping[str, Any]) -> Mapping[str, Any]:
        """``X | None`` → ``X`` (blank is "not asked"; null is never an answer)."""
        options = node.get("anyOf")
        if isinstance(options, list):
            rest = [o for o in options if o != {"type": "null"}]
            if len(rest) == 1 and len(rest) < len(options):
                return {**{k: v for k, v in node.items() if k != "anyOf"}, **rest[0]}
        return node

    def properties(self, model: Mapping[str, Any], path: tuple[str, ...]) -> tuple[Item, ...]:
        required = set(model.get("required", ()))
        return tuple(
            self.item(name, schema, (*path, name), required=name in required)
            for name, schema in model.get("properties", {}).items()
        )

    def item(
        self, name: str, schema: Mapping[str, Any], path: tuple[str, ...], required: bool = False
    ) -> Item:
        link_id = ".".join(path)
        node = self.strip_null(schema)
        target = self.resolve(node)
        declinable = False
        options = node.get("oneOf")
        if isinstance(options, list) and {"const": False, "type": "boolean"} in options:
            # A record, or false for a stated "no" (tri-state: blank is "not asked").
            (record,) = [o for o in options if o != {"const": False, "type": "boolean"}]
            node = {**{k: v for k, v in node.items() if k != "oneOf"}, **record}
            target = self.resolve(node)
            declinable = True
        text = _text(name, schema, target if target.get("type") == "object" else None)
        if "oneOf" in node:  # one value for both sides, or a per-side record
            single, sided = node["oneOf"]
            sided = self.resolve(sided)
            questions = tuple(
                self.scalar(
                    f"{link_id}.{side}",
                    "Both sides (one value for both)" if side == "both" else side.capitalize(),
                    single if side == "both" else self.strip_null(sided["properties"][side]),
                    path if side == "both" else (*path, side),
                    root=path[0],
                    side=side,
                )
                for side in SIDES
            )
            return Item(link_id, text, "group", path, questions, required=required)
        if target.get("type") == "object" and "properties" in target:
            children = self.properties(target, path)
            if target.get("required") and not declinable:
                return Item(link_id, text, "group", path, children, required=required)
            return Item(
                link_id, text, "boolean", path, children, required=required, declinable=declinable
            )
        if target.get("type") == "object" and "propertyNames" in target:
            keys = self.resolve(target["propertyNames"])["enum"]
            value = target["additionalProperties"]
            children = tuple(self.item(key, value, (*path, key)) for key in keys)
            return Item(link_id, text, "group", path, children, required=required)
        if target.get("type") == "array":
            question = self.scalar(link_id, text, target["items"], path, root=path[0])
            return dataclasses.replace(question, repeats=True, required=required)
        question = self.scalar(link_id, text, node, path, root=path[0])
        return dataclasses.replace(question, required=required)

    def scalar(
        self,
        link_id: str,
        text: str,
        schema: Mapping[str, Any],
        path: tuple[str, ...],
        root: str,
        side: str | None = None,
    ) -> Item:
        node = self.resolve(self.strip_null(schema))
        shape = Item(link_id, text, "string", path, side=side)
        if "enum" in node:
            values = node["enum"]
            system = f"urn:hipscreen:{_kebab(node.get('title', root))}"
            options = tuple(Option(v, _words(v)) for v in values)
            return dataclasses.replace(shape, type="choice", system=system, options=options)
        if "anyOf" in node:  # a grade: an integer scale whose values also have labels
            scale = next(o for o in node["anyOf"] if o.get("type") == "integer")
            labels = next(o for o in node["anyOf"] if "enum" in o)["enum"]
            low = scale["minimum"]
            options = tuple(
                Option(label, f"{low + i} {label}", low + i) for i, label in enumerate(labels)
            )
            system = f"urn:hipscreen:{root}-grade"
            return dataclasses.replace(shape, type="choice", system=system, options=options)
        kind = {"boolean": "boolean", "integer": "integer", "number": "decimal"}.get(
            node.get("type", ""), "string"
        )
        if node.get("type") not in ("boolean", "integer", "number", "string"):
            raise TypeError(f"{link_id}: no Questionnaire item type for the schema {node!r}")
        return dataclasses.replace(
            shape,
            type=kind,
            minimum=node.get("minimum"),
            maximum=node.get("maximum"),
            max_length=node.get("maxLength"),
        )


@functools.cache
def items() -> tuple[Item, ...]:
    """The top-level items of the intake Questionnaire (built once per process)."""
    schema = IntakeForm.model_json_schema(mode="validation")
    return _Builder(schema).properties(schema, ())


@functools.cache
def item_index() -> Mapping[str, Item]:
    """Every item by linkId."""
    return {item.link_id: item for top in items() for item in top.walk()}


# -- the Questionnaire ---------------------------------------------------------------------------


def _item_json(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": item.link_id, "text": item.text, "type": item.type}
    extensions = []
    value = "valueInteger" if item.type == "integer" else "valueDecimal"
    if item.minimum is not None:
        extensions.append({"url": MIN_VALUE, value: item.minimum})
    if item.maximum is not None:
        extensions.append({"url": MAX_VALUE, value: item.maximum})
    if extensions:
        out["extension"] = extensions
    if item.required:
        out["required"] = True
    if item.repeats:
        out["repeats"] = True
    if item.max_length is not None:
        out["maxLength"] = item.max_length
    if item.side is not None:  # one value for both sides, or per side: not both at once
        others = [f"{item.link_id.rsplit('.', 1)[0]}.{s}" for s in SIDES if s != item.side]
        if item.side != "both":
            others = others[:1]
        out["enableWhen"] = [
            {"question": other, "operator": "exists", "answerBoolean": False} for other in others
        ]
        if len(others) > 1:
            out["enableBehavior"] = "all"
    if item.options:
        out["answerOption"] = [_option_json(item, option) for option in item.options]
    if item.children:
        out["item"] = [_item_json(child) for child in item.children]
    return out


def _option_json(item: Item, option: Option) -> dict[str, Any]:
    out: dict[str, Any] = {
        "valueCoding": {"system": item.system, "code": option.code, "display": option.display}
    }
    if option.ordinal is not None:
        out["extension"] = [{"url": ORDINAL_VALUE, "valueDecimal": option.ordinal}]
    return out


@functools.cache
def _questionnaire() -> dict[str, Any]:
    return {
        "resourceType": "Questionnaire",
        "id": "hipscreen-intake-form",
        "url": QUESTIONNAIRE_URL,
        "version": __version__,
        "name": "HipscreenIntakeForm",
        "title": "hipscreen intake form",
        "status": "active",
        "subjectType": ["Patient"],
        "description": (
            "Intake for screening hip flexor / extensor balance (a screening aid, not a "
            "diagnosis). Each linkId is the field path of hipscreen's IntakeForm; an item left "
            "blank is read as not asked."
        ),
        "item": [_item_json(item) for item in items()],
    }


def questionnaire() -> dict[str, Any]:
    """The intake form as a FHIR R4 ``Questionnaire`` (a fresh JSON-ready dict).

    Each ``linkId`` is the form's field path (``tightness.iliopsoas.left``, ``symptoms`` …);
    a value given once for both sides is answered at ``PATH.both``. Choices use the form's
    vocabularies as codes; grades carry their number as the ``ordinalValue`` extension.

    Examples:
        >>> from hipscreen import fhir
        >>> q = fhir.questionnaire()
        >>> q["resourceType"], q["item"][1]["linkId"], q["item"][1]["type"]
        ('Questionnaire', 'age', 'integer')
    """
    return copy.deepcopy(_questionnaire())


# -- a form as a QuestionnaireResponse -------------------------------------------------------------


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


# A FHIR string: any characters but whitespace other than space, tab, CR and LF.
_FHIR_STRING = re.compile(r"[ \r\n\t\S]+")


def _answer(item: Item, value: Any) -> dict[str, Any]:
    if item.type == "string" and not _FHIR_STRING.fullmatch(value):
        message = (
            f"a FHIR string may hold no whitespace but spaces, tabs and line breaks (got {value!r})"
        )
        raise InvalidFormError([FieldProblem(item.link_id, value, message)])
    if item.type == "choice":
        option = next(
            o for o in item.options if (o.ordinal if o.ordinal is not None else o.code) == value
        )
        coding = {"system": item.system, "code": option.code, "display": option.display}
        return {"valueCoding": coding}
    return {_VALUE_KEY[item.type]: value}


def _response_items(children: tuple[Item, ...], data: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in children:
        value = _lookup(data, item.path)
        if item.type == "group":
            below = _response_items(item.children, data)
            if below:
                out.append({"linkId": item.link_id, "text": item.text, "item": below})
            continue
        if value is None or (item.side == "both" and isinstance(value, Mapping)):
            continue
        if item.record and value is False:
            answers = [{"valueBoolean": False}]  # a stated "no" (``pregnancy: false``)
        elif item.record:
            answer: dict[str, Any] = {"valueBoolean": True}
            below = _response_items(item.children, data)
            if below:
                answer["item"] = below
            answers = [answer]
        elif item.repeats:
            answers = [_answer(item, v) for v in value]
        else:
            answers = [_answer(item, value)]
        if answers:
            out.append({"linkId": item.link_id, "text": item.text, "answer": answers})
    return out


def questionnaire_response(
    form: IntakeForm | Mapping[str, Any] | str,
    *,
    subject: str | Mapping[str, Any] | None = None,
    authored: datetime | str | None = None,
    id: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    """An intake form as a FHIR R4 ``QuestionnaireResponse`` to `questionnaire`.

    Only what the form gives is answered: a field left blank stays unanswered, so
    `from_questionnaire_response` gives the same form back.

    Args:
        form: an `IntakeForm`, or a mapping or JSON string of the same shape.
        subject: the patient, as a reference string (``"Patient/123"``) or a Reference mapping.
        authored: when the answers were given (a ``datetime``, or a FHIR dateTime string).
        id: the resource id; by default a uuid5 of the form and subject (same input, same id).
        status: the response's status (``completed`` by default).

    Returns:
        A JSON-ready dict.

    Raises:
        InvalidFormError: the form is invalid, or a text field holds characters a FHIR string
            cannot (whitespace other than spaces, tabs and line breaks).

    Examples:
        >>> from hipscreen import fhir
        >>> qr = fhir.questionnaire_response({"age": 40, "tightness": {"iliopsoas": {"left": 2}}})
        >>> [item["linkId"] for item in qr["item"]]
        ['age', 'tightness']
    """
    intake = coerce_form(form)
    data = intake.model_dump(mode="json", exclude_unset=True)
    subject_ref = subject_reference(subject) if subject is not None else None
    key = json.dumps(data, sort_keys=True) + json.dumps(subject_ref, sort_keys=True)
    out: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": id or content_id("QuestionnaireResponse", key),
        "questionnaire": f"{QUESTIONNAIRE_URL}|{__version__}",
        "status": status,
    }
    if subject_ref is not None:
        out["subject"] = subject_ref
    stamp = datetime_text(authored)
    if stamp is not None:
        out["authored"] = stamp
    answered = _response_items(items(), data)
    if answered:
        out["item"] = answered
    return out
