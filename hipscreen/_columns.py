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
    straight_leg_raise.angle[...]    degrees; also straight_leg_raise.reproduces_leg_pain (yes/no)
    active_knee_extension.deficit    degrees, or per side
    rom, thomas_test, ...            yes/no: the record is there even with no values in it
    pregnancy                        yes/no; pregnancy.weeks implies yes
    hip_replacement                  yes/no; .side, .approach, .precautions_lifted imply yes
    back_pain                        yes/no; back_pain.weeks, back_pain.intensity imply yes
    osteoporosis, vertebral_fracture yes/no
    hip_replacement.weeks_since      whole weeks
    recent_fall.occurred             yes/no; .new_pain, .can_bear_weight yes/no (blank: not asked)
    recent_joint_procedure           yes/no (blank: not asked)
    anticoagulant                    yes/no (blank: not asked)

Muscles, symptoms and activities are hipscreen's vocabularies (`hipscreen.IntakeForm`).
``pandas.json_normalize`` of a list of form dicts gives exactly these names.

**An empty cell means "not given"**, never "normal": the field is left out of the form, so the
assessment lists it under ``not_assessed``. Yes/no cells accept ``yes/no``, ``true/false``,
``y/n``, ``1/0`` in any case. Column names are case-insensitive, and spaces or hyphens stand for
underscores. A column outside the convention is an error for the whole table (nothing is silently
dropped); a cell that does not parse is an error for its row only, naming the column.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from hipscreen._errors import FieldProblem, HipscreenError
from hipscreen._vocabulary import Activity, Muscle, Symptom, normalise_name, suggest

__all__ = [
    "COLUMNS",
    "Column",
    "Kind",
    "TableError",
    "TableReader",
    "form_to_row",
    "is_missing",
    "normalise_column",
    "text_cell",
]


class TableError(HipscreenError, ValueError):
    """A table (CSV file or DataFrame) cannot be screened at all: the rows were not looked at.

    Raised for unknown or repeated columns, an empty file, or a file that is not text in the
    expected encoding. Problems with single rows never raise: they become `RowError` outcomes.

    Attributes:
        problems: every problem found, one sentence each.
    """

    def __init__(self, problems: Sequence[str], source: str = "table") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(f"{source} cannot be screened ({len(self.problems)} {noun}):\n{lines}")


class Kind(Enum):
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


def _sided(path: tuple[str, ...], kind: Kind) -> Iterator[Column]:
    name = ".".join(path)
    yield Column(name, kind, path)
    for side in _SIDES:
        yield Column(f"{name}.{side}", kind, (*path, side))


def _build() -> tuple[Column, ...]:
    columns = [Column("client_id", Kind.TEXT, ("client_id",))]
    columns.append(Column("age", Kind.INTEGER, ("age",)))
    for measure in ("tightness", "strength"):
        for muscle in Muscle:
            columns += _sided((measure, muscle.value), Kind.GRADE)
    for field, vocabulary in (("symptoms", Symptom), ("activities", Activity)):
        columns.append(Column(field, Kind.NAMES, (field,)))
        columns += [
            Column(f"{field}.{item.value}", Kind.MEMBER, (field,), item.value)
            for item in vocabulary
        ]
    # A yes/no column for each nested record: an empty record (a test done, no values written)
    # is still different from no record.
    for record in ("rom", "thomas_test", "straight_leg_raise", "active_knee_extension"):
        columns.append(Column(record, Kind.PRESENT, (record,)))
    columns += _sided(("rom", "hip_flexion"), Kind.NUMBER)
    columns += _sided(("rom", "hip_extension"), Kind.NUMBER)
    columns.append(Column("rom.method", Kind.TEXT, ("rom", "method")))
    columns += _sided(("thomas_test", "hip_angle"), Kind.NUMBER)
    columns += _sided(("thomas_test", "knee_angle"), Kind.NUMBER)
    columns += _sided(("thomas_test", "thigh_abducts"), Kind.FLAG)
    columns += _sided(("straight_leg_raise", "angle"), Kind.NUMBER)
    columns.append(
        Column(
            "straight_leg_raise.reproduces_leg_pain",
            Kind.FLAG,
            ("straight_leg_raise", "reproduces_leg_pain"),
        )
    )
    columns += _sided(("active_knee_extension", "deficit"), Kind.NUMBER)
    columns.append(Column("pregnancy", Kind.PRESENT, ("pregnancy",)))
    columns.append(Column("pregnancy.weeks", Kind.INTEGER, ("pregnancy", "weeks")))
    columns.append(Column("hip_replacement", Kind.PRESENT, ("hip_replacement",)))
    for name, kind in (("side", Kind.TEXT), ("approach", Kind.TEXT)):
        columns.append(Column(f"hip_replacement.{name}", kind, ("hip_replacement", name)))
    columns.append(
        Column(
            "hip_replacement.precautions_lifted",
            Kind.FLAG,
            ("hip_replacement", "precautions_lifted"),
        )
    )
    columns.append(
        Column("hip_replacement.weeks_since", Kind.INTEGER, ("hip_replacement", "weeks_since"))
    )
    columns.append(Column("osteoporosis", Kind.FLAG, ("osteoporosis",)))
    columns.append(Column("vertebral_fracture", Kind.FLAG, ("vertebral_fracture",)))
    columns.append(Column("back_pain", Kind.PRESENT, ("back_pain",)))
    for name in ("weeks", "intensity"):
        columns.append(Column(f"back_pain.{name}", Kind.INTEGER, ("back_pain", name)))
    # Tri-state yes/no/blank context (issue 9): a blank cell is "not asked", never "no".
    for name in ("occurred", "new_pain", "can_bear_weight"):
        columns.append(Column(f"recent_fall.{name}", Kind.FLAG, ("recent_fall", name)))
    columns.append(Column("recent_joint_procedure", Kind.FLAG, ("recent_joint_procedure",)))
    columns.append(Column("anticoagulant", Kind.FLAG, ("anticoagulant",)))
    return tuple(columns)


COLUMNS: tuple[Column, ...] = _build()
"""Every column of the convention, in a stable order (the order `form_to_row` writes)."""

_BY_NAME = {column.name: column for column in COLUMNS}
_ORDER = {column.name: i for i, column in enumerate(COLUMNS)}


def normalise_column(name: str) -> str:
    """A column name as the convention spells it: lower case, underscores, dots between parts."""
    return ".".join(normalise_name(part) for part in str(name).split("."))


# -- reading cells -------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_YES = frozenset({"yes", "y", "true", "t", "1"})
_NO = frozenset({"no", "n", "false", "f", "0"})
_SEPARATORS = re.compile(r"[;|,]")
_YES_NO = "must be yes or no (true/false, y/n, 1/0)"


def is_missing(cell: Any) -> bool:
    """True for an empty cell: ``None``, blank text, or a float NaN."""
    if cell is None:
        return True
    if isinstance(cell, str):
        return not cell.strip()
    return isinstance(cell, float) and cell != cell


def _number(text: str) -> int | float | str:
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return text  # the form's own validation names the field and what is allowed


def _whole(value: Any) -> Any:
    """A number that should be whole: ``34``, ``"34"``, ``34.0`` and ``"34.0"`` give 34."""
    if isinstance(value, str):
        value = _number(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _flag(value: Any) -> bool | None:
    """A yes/no cell as a bool, or None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
        return None
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    return None


def text_cell(value: Any) -> Any:
    """A text cell as the form gets it: stripped; a whole number becomes its digits (ids)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # numeric ids from a DataFrame column
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an id column with gaps: pandas stores it as float
    return value


def _names(value: Any) -> list[Any]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            # A list written out as text: pandas' to_csv and dask's string columns do this.
            try:
                listed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                listed = None
            if isinstance(listed, list):
                return listed
        return [name.strip() for name in _SEPARATORS.split(text) if name.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


class TableReader:
    """Reads the rows of one table, given its header, into intake form dicts.

    Args:
        header: the column names, in the table's order.
        source: how to call the table in error messages (a file name, "DataFrame").
        ignore: column names to skip (for example notes or names that are not intake data).

    Raises:
        TableError: a column is unknown (with the closest valid name) or given twice.
    """

    def __init__(
        self, header: Sequence[Any], *, source: str = "table", ignore: Sequence[str] = ()
    ) -> None:
        skip = {normalise_column(name) for name in ignore}
        problems: list[str] = []
        columns: list[Column | None] = []
        seen: dict[str, Any] = {}
        for position, raw in enumerate(header, 1):
            name = normalise_column(raw) if isinstance(raw, str) else ""
            if name in skip:
                columns.append(None)
                continue
            column = _BY_NAME.get(name)
            if not isinstance(raw, str) or not name:
                problems.append(f"column {position} has no name (got {raw!r})")
            elif column is None:
                problems.append(
                    f"unknown column {raw!r}{suggest(name, _BY_NAME)} "
                    "(see the column convention in hipscreen's batch docs)"
                )
            elif name in seen:
                problems.append(f"column {raw!r} is given twice (also as {seen[name]!r})")
            seen.setdefault(name, raw)
            columns.append(column)
        if problems and len(header) == 1 and isinstance(header[0], str):
            for separator in (";", "\t", "|"):
                if separator in header[0]:
                    problems.append(
                        f"the header is one column containing {separator!r}: is the file "
                        f"separated by {separator!r} rather than commas?"
                    )
                    break
        if problems:
            raise TableError(problems, source)
        self.header = list(header)
        self.spec: tuple[tuple[Any, ...], tuple[str, ...]] = (tuple(header), tuple(ignore))
        """(header, ignore): what rebuilds this reader in a worker process."""
        self.columns = columns
        self.client_index: int | None = next(
            (i for i, c in enumerate(columns) if c is not None and c.name == "client_id"), None
        )
        # Reading order: per-side and sub-record cells before the "present" flags they imply.
        self._plan = sorted(
            ((i, c) for i, c in enumerate(columns) if c is not None),
            key=lambda item: (item[1].kind is Kind.PRESENT, item[0]),
        )

    def form(self, cells: Sequence[Any]) -> tuple[dict[str, Any], list[FieldProblem]]:
        """The intake form dict for one row, and the problems only the table can see.

        Cells the form's own validation can judge (a grade ``"sevre"``, a number ``"9o"``) are
        passed on unchanged, so its message names the field and what is allowed. Problems
        returned here are those a form dict cannot express: a yes/no cell that is neither, or a
        value given both for both sides and per side.
        """
        form: dict[str, Any] = {}
        problems: list[FieldProblem] = []
        absent: list[tuple[Column, Any]] = []
        for index, column in self._plan:
            cell = cells[index]
            if is_missing(cell):
                continue
            kind = column.kind
            if kind is Kind.MEMBER:
                flag = _flag(cell)
                if flag is None:
                    problems.append(FieldProblem(column.name, cell, f"{_YES_NO} (got {cell!r})"))
                elif flag:
                    names = form.setdefault(column.path[0], [])
                    if column.member not in names:
                        names.append(column.member)
                continue
            if kind is Kind.PRESENT:
                flag = _flag(cell)
                if flag is None:
                    problems.append(FieldProblem(column.name, cell, f"{_YES_NO} (got {cell!r})"))
                elif flag:
                    form.setdefault(column.path[0], {})
                else:
                    absent.append((column, cell))
                continue
            if kind is Kind.NAMES:
                names = form.setdefault(column.path[0], [])
                names[:0] = _names(cell)  # the list column first, then the yes/no columns
                continue
            if kind is Kind.FLAG:
                flag = _flag(cell)
                value: Any = cell if flag is None else flag
            elif kind is Kind.NUMBER:
                value = _number(cell.strip()) if isinstance(cell, str) else cell
            elif kind is Kind.GRADE or kind is Kind.INTEGER:
                value = _whole(cell)
            else:
                value = text_cell(cell)
            problem = _put(form, column, value)
            if problem is not None:
                problems.append(problem)
        for column, cell in absent:
            if column.path[0] in form:
                problems.append(
                    FieldProblem(
                        column.name,
                        cell,
                        f"says no ({cell!r}) but {column.name}.* cells are given in the same row",
                    )
                )
        return form, problems


def _put(form: dict[str, Any], column: Column, value: Any) -> FieldProblem | None:
    target = form
    path = column.path
    for depth, key in enumerate(path[:-1]):
        inner = target.get(key)
        if inner is None:
            inner = target[key] = {}
        elif not isinstance(inner, dict):
            both = ".".join(path[: depth + 1])
            return _both_ways(column.name, both, value)
        target = inner
    if isinstance(target.get(path[-1]), dict):
        return _both_ways(column.name, f"{column.name}.left/.right", value)
    target[path[-1]] = value
    return None


def _both_ways(name: str, other: str, value: Any) -> FieldProblem:
    return FieldProblem(
        name,
        value,
        f"given both as {name} and as {other}: give one value for both sides, or one per side",
    )


# -- writing rows --------------------------------------------------------------------------------


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
        column = _BY_NAME.get(name)
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
