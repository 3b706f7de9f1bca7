"""The flat column convention: an intake form as one table row (CSV file or DataFrame), and back.

A column name is the form's field path, the same path findings cite as evidence and errors name::

    client_id                        text, echoed back
    age                              whole years
    tightness.<muscle>               grade 0–3 or its label, for both sides at once
    tightness.<muscle>.left / .right grade for one side
    strength.<muscle>[.left/.right]  MRC grade 0–5 or its label
    symptoms                         names separated by ";" (or "|" or ","): "knee_pain;hip_pain",
                                     or a list (in a DataFrame) or its text "['knee_pain']"
    symptoms.<name>                  one yes/no column per symptom (combined with "symptoms")
    activities, activities.<name>    the same for activities
    rom.hip_flexion[.left/.right]    degrees; also rom.hip_extension, rom.method
    thomas_test.hip_angle[...]       degrees; also thomas_test.knee_angle, thomas_test.thigh_abducts
    rom, thomas_test, pregnancy, ... yes/no: the record is there even with no values in it
    pregnancy.weeks, back_pain.weeks a nested field; giving one implies the record is there
    osteoporosis, ...                yes/no

The columns are derived from `hipscreen.IntakeForm` and its vocabularies, so a field, muscle,
symptom or activity added to the form gets its columns without an edit here.
``pandas.json_normalize`` of a list of form dicts gives exactly these names.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from hipscreen._intake.form import IntakeForm
from hipscreen._vocabulary import normalise_name

__all__ = ["BY_NAME", "COLUMNS", "Column", "Kind", "form_to_row", "normalise_column"]


class Kind(enum.Enum):
    """How a column's cells are read."""

    TEXT = "text"
    INTEGER = "integer"
    GRADE = "grade"
    NUMBER = "number"
    FLAG = "flag"
    NAMES = "names"
    MEMBER = "member"
    PRESENT = "present"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the convention: its name, how cells are read, and where they go."""

    name: str
    kind: Kind
    path: tuple[str, ...]
    """The keys leading to the value in the form dict (for ``MEMBER``: the list field)."""
    member: str | None = None
    """For ``MEMBER`` columns: the vocabulary name a "yes" adds to the list."""


_SIDES = ("left", "right")


def _strip(annotation: Any) -> list[Any]:
    """The alternatives of a field's type, without ``None`` and ``Annotated`` wrappers."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found: list[Any] = []
        for arg in typing.get_args(annotation):
            found += [a for a in _strip(arg) if a is not type(None)]
        return found
    return [annotation]


def _is_model(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, BaseModel)


def _is_sided(value: Any) -> bool:
    return _is_model(value) and set(value.model_fields) == set(_SIDES)


def _scalar_kind(value: Any, *, grade: bool = False) -> Kind:
    if value is bool:
        return Kind.FLAG
    if value is int:
        return Kind.GRADE if grade else Kind.INTEGER
    if value is float:
        return Kind.NUMBER
    return Kind.TEXT  # text, a vocabulary name, a literal: the form's validation judges it


def _columns_for(
    path: tuple[str, ...], annotation: Any, *, grade: bool = False
) -> Iterator[Column]:
    name = ".".join(path)
    options = _strip(annotation)
    sided = [o for o in options if _is_sided(o)]
    plain = [o for o in options if not _is_sided(o)]
    if sided:
        kind = (
            _scalar_kind(plain[0], grade=grade)
            if plain
            else _scalar_kind(_strip(sided[0].model_fields["left"].annotation)[0], grade=grade)
        )
        if plain:
            yield Column(name, kind, path)
        for side in _SIDES:
            yield Column(f"{name}.{side}", kind, (*path, side))
        return
    shape: Any = plain[0] if plain else str
    origin = typing.get_origin(shape)
    if _is_model(shape):
        # A yes/no column for the record itself: an empty record (a test done, no values
        # written) is still different from no record.
        yield Column(name, Kind.PRESENT, path)
        for field, info in shape.model_fields.items():
            yield from _columns_for((*path, field), info.annotation)
    elif origin in (tuple, list, set, frozenset):
        yield Column(name, Kind.NAMES, path)
        member = _strip(typing.get_args(shape)[0])[0]
        if inspect.isclass(member) and issubclass(member, enum.Enum):
            for item in member:
                yield Column(f"{name}.{item.value}", Kind.MEMBER, path, str(item.value))
    elif origin is dict:
        key, value = typing.get_args(shape)
        keys = _strip(key)[0]
        if inspect.isclass(keys) and issubclass(keys, enum.Enum):
            for item in keys:
                yield from _columns_for((*path, str(item.value)), value, grade=True)
        else:
            yield Column(name, Kind.TEXT, path)
    else:
        yield Column(name, _scalar_kind(shape, grade=grade), path)


def _build(model: type[BaseModel]) -> tuple[Column, ...]:
    columns: list[Column] = []
    for field, info in model.model_fields.items():
        columns += _columns_for((field,), info.annotation)
    return tuple(columns)


COLUMNS: tuple[Column, ...] = _build(IntakeForm)
"""Every column of the convention, in the form's field order (the order `form_to_row` writes)."""

BY_NAME: Mapping[str, Column] = {column.name: column for column in COLUMNS}
_ORDER = {column.name: i for i, column in enumerate(COLUMNS)}


def normalise_column(name: str) -> str:
    """A column name as the convention spells it: lower case, underscores, dots between parts."""
    return ".".join(normalise_name(part) for part in str(name).split("."))


def form_to_row(form: Mapping[str, Any], *, member_columns: bool = False) -> dict[str, Any]:
    """Flatten an intake form dict into one row of the column convention.

    Args:
        form: a form as a plain mapping (the shape `hipscreen.IntakeForm` accepts).
        member_columns: write symptoms and activities as one yes/no column per name instead of
            one ``;``-separated column.

    Returns:
        ``{column name: value}`` with only the columns the form gives, in the convention's order.

    Raises:
        KeyError: the form has a field outside the convention.

    Examples:
        >>> form_to_row({"tightness": {"iliopsoas": {"left": 2}}, "symptoms": ["knee_pain"]})
        {'tightness.iliopsoas.left': 2, 'symptoms': 'knee_pain'}
    """
    row: dict[str, Any] = {}

    def walk(value: Any, path: tuple[str, ...]) -> None:
        name = normalise_column(".".join(path))
        column = BY_NAME.get(name)
        if column is not None and column.kind is Kind.NAMES:
            names = [normalise_column(str(item)) for item in value]
            if member_columns:
                for item in names:
                    row[f"{name}.{item}"] = True
            elif names:
                row[name] = ";".join(names)
            return
        if isinstance(value, Mapping):
            before = len(row)
            for key, inner in value.items():
                walk(inner, (*path, str(key)))
            if column is not None and column.kind is Kind.PRESENT and len(row) == before:
                row[name] = True  # an empty record: only its yes/no column says it is there
            return
        if column is None:
            raise KeyError(f"{name!r} has no column in the convention")
        row[name] = value

    for key, value in form.items():
        if value is not None:
            walk(value, (str(key),))
    return dict(sorted(row.items(), key=lambda item: _ORDER[item[0]]))
