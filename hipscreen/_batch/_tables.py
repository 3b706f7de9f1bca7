"""Tables: the rows of a CSV file or DataFrame read into intake forms, with bounded cells.

**An empty cell means "not given"**, never "normal": the field is left out of the form, so the
assessment lists it under ``not_assessed``. A row with fewer cells than the header has its
missing trailing cells read as empty (as pandas, dask and Spark read such a row); a row with more
cells is that row's error. Yes/no cells accept ``yes/no``, ``true/false``, ``y/n``, ``1/0`` in any
case. Column names are case-insensitive, and spaces or hyphens stand for underscores. A column
outside the convention is an error for the whole table (nothing is silently dropped); a cell that
does not parse, or is larger than a cell may be, is an error for its row only, naming the column.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import pickle
import re
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any

from hipscreen._batch._columns import BY_NAME, Column, Kind, normalise_column
from hipscreen._batch._outcomes import (
    Record,
    RowError,
    brief,
    engine_error,
    record_of_brief,
    unreadable,
)
from hipscreen._batch._pipeline import INVALID, Item, Pipeline, client_id_ok
from hipscreen._errors import (
    EngineError,
    FieldProblem,
    InvalidFormError,
    TableError,
    summarised,
)
from hipscreen._findings import Brief
from hipscreen._intake.form import IntakeForm, coerce_form
from hipscreen._screen import Screener
from hipscreen._vocabulary import suggest

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_LIST_ITEMS",
    "MAX_NUMBER_CHARS",
    "TableError",
    "TableReader",
    "TableRow",
    "is_missing",
    "screened_rows",
    "summarised",
    "text_cell",
]

MAX_CELL_CHARS = 4096
"""The longest cell read, in characters (a client id holds 200; a list of every name fits)."""
MAX_LIST_ITEMS = 100
"""The most names one symptoms or activities cell may list."""
MAX_NUMBER_CHARS = 32
"""The longest number read, in characters (digits, sign, point and exponent)."""
_MAX_INTEGER = 10**18
_MAX_NESTING = 3


# -- reading cells -------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_YES = frozenset({"yes", "y", "true", "t", "1"})
_NO = frozenset({"no", "n", "false", "f", "0"})
_SEPARATORS = re.compile(r"[;|,]")
_YES_NO = "must be yes or no (true/false, y/n, 1/0)"


class _CellProblem(Exception):
    """A cell that cannot be read: its problem, for the row's error."""


def is_missing(cell: Any) -> bool:
    """True for an empty cell: ``None``, blank text, or a float NaN."""
    if cell is None:
        return True
    if isinstance(cell, str):
        return not cell.strip()
    return isinstance(cell, float) and cell != cell


def _number(text: str) -> int | float | str:
    if len(text) > MAX_NUMBER_CHARS and _DECIMAL.fullmatch(text):
        raise _CellProblem(
            f"a number of {len(text):,} characters is too long (at most {MAX_NUMBER_CHARS})"
        )
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
            if text.count("[") > 1:
                raise _CellProblem("a list cell may not hold lists inside it")
            try:
                listed = ast.literal_eval(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                listed = None
            if isinstance(listed, list):
                return listed
        return [name.strip() for name in _SEPARATORS.split(text) if name.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _depth(value: Any, limit: int) -> bool:
    """True when ``value`` nests lists or mappings deeper than ``limit``."""
    if limit < 0:
        return True
    if isinstance(value, dict):
        return any(_depth(inner, limit - 1) for inner in value.values())
    if isinstance(value, list | tuple):
        return any(_depth(inner, limit - 1) for inner in value)
    return False


def _bounded(cell: Any) -> Any:
    """The cell, checked against the cell limits (and a numpy array or bytes made plain).

    Raises:
        _CellProblem: the cell is larger than a cell may be.
    """
    if isinstance(cell, bytes | bytearray):
        try:
            cell = bytes(cell).decode("utf-8")
        except UnicodeDecodeError as error:
            raise _CellProblem(f"the cell is not UTF-8 text ({error.reason})") from None
    elif not isinstance(cell, str | int | float | list | tuple | dict) and hasattr(cell, "tolist"):
        cell = cell.tolist()  # numpy arrays and scalars, e.g. list columns read from Parquet
    if isinstance(cell, str):
        if len(cell) > MAX_CELL_CHARS:
            raise _CellProblem(
                f"the cell is {len(cell):,} characters long; a cell holds at most "
                f"{MAX_CELL_CHARS:,}"
            )
    elif isinstance(cell, int) and not isinstance(cell, bool):
        if not -_MAX_INTEGER < cell < _MAX_INTEGER:
            raise _CellProblem(
                f"a number of {cell.bit_length():,} bits is too large (at most 18 digits)"
            )
    elif isinstance(cell, list | tuple | dict):
        if len(cell) > MAX_LIST_ITEMS:
            raise _CellProblem(
                f"the cell holds {len(cell):,} items; a cell holds at most {MAX_LIST_ITEMS}"
            )
        if _depth(cell, _MAX_NESTING):
            raise _CellProblem(f"the cell nests lists or mappings deeper than {_MAX_NESTING}")
        items = cell.values() if isinstance(cell, dict) else cell
        for item in items:
            _bounded(item)
    return cell


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
            column = BY_NAME.get(name)
            if not isinstance(raw, str) or not name:
                problems.append(f"column {position} has no name (got {brief(raw)})")
            elif column is None:
                problems.append(
                    f"unknown column {brief(raw)}{suggest(name, BY_NAME)} "
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
        # Each column's step, worked out once: (position, column, how a text cell becomes its
        # value (None: `_read` reads it), the longest text cell read as it is).
        self._steps = [
            (
                index,
                column,
                _TEXT_READERS.get(column.kind),
                _UNBOUNDED if column.name == "client_id" else MAX_CELL_CHARS,
            )
            for index, column in self._plan
        ]

    def form(self, cells: Sequence[Any]) -> tuple[dict[str, Any], list[FieldProblem]]:
        """The intake form dict for one row, and the problems only the table can see.

        Cells the form's own validation can judge (a grade ``"sevre"``, a number ``"9o"``) are
        passed on unchanged, so its message names the field and what is allowed. Problems
        returned here are those a form dict cannot express: a yes/no cell that is neither, a
        value given both for both sides and per side, or a cell beyond the cell limits.
        """
        form: dict[str, Any] = {}
        problems: list[FieldProblem] = []
        absent: list[tuple[Column, Any]] = []
        width = len(cells)
        for index, column, text_value, longest in self._steps:
            cell = cells[index] if index < width else None
            if type(cell) is str:  # the common cell (CSV): is_missing and _bounded, inlined
                if not cell or cell.isspace():
                    continue
                if text_value is not None and len(cell) <= longest:
                    # A scalar column's text cell within the bounds: read, then put in place.
                    try:
                        problem = _put(form, column, text_value(cell))
                    except _CellProblem as error:
                        problem = FieldProblem(column.name, brief(cell), str(error))
                    if problem is not None:
                        problems.append(problem)
                    continue
            elif is_missing(cell):
                continue
            try:
                if type(cell) is not str or (
                    len(cell) > MAX_CELL_CHARS and column.name != "client_id"
                ):
                    cell = _bounded(cell)
                problem = self._read(form, column, cell, absent)
            except _CellProblem as error:
                problem = FieldProblem(column.name, brief(cell), str(error))
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

    @staticmethod
    def _read(
        form: dict[str, Any], column: Column, cell: Any, absent: list[tuple[Column, Any]]
    ) -> FieldProblem | None:
        kind = column.kind
        if kind is Kind.MEMBER or kind is Kind.PRESENT:
            flag = _flag(cell)
            if flag is None:
                return FieldProblem(column.name, cell, f"{_YES_NO} (got {brief(cell)})")
            if kind is Kind.MEMBER:
                if flag:
                    names = form.setdefault(column.path[0], [])
                    if column.member not in names:
                        names.append(column.member)
            elif flag:
                _put(form, column, None, record=True)
            else:
                absent.append((column, cell))
            return None
        if kind is Kind.NAMES:
            listed = _names(cell)
            if len(listed) > MAX_LIST_ITEMS:
                raise _CellProblem(
                    f"the cell lists {len(listed):,} names; a cell lists at most {MAX_LIST_ITEMS}"
                )
            target = _parent(form, column)
            if target is None:
                return _both_ways(column.name, ".".join(column.path[:-1]), cell)
            names = target.setdefault(column.path[-1], [])
            names[:0] = listed  # the list column first, then the yes/no columns
            return None
        if kind is Kind.FLAG:
            flag = _flag(cell)
            value: Any = cell if flag is None else flag
        elif kind is Kind.NUMBER:
            value = _number(cell.strip()) if isinstance(cell, str) else cell
        elif kind is Kind.GRADE or kind is Kind.INTEGER:
            value = _whole(cell)
        else:
            value = text_cell(cell)
        return _put(form, column, value)


def _whole_text(cell: str) -> Any:
    """`_whole` of a text cell; plain digits (the common cell) read at once."""
    if cell.isdigit() and cell.isascii() and len(cell) <= MAX_NUMBER_CHARS:
        return int(cell)
    return _whole(cell)


def _number_text(cell: str) -> Any:
    """A number column's text cell, as `TableReader._read` reads it; plain digits at once."""
    if cell.isdigit() and cell.isascii() and len(cell) <= MAX_NUMBER_CHARS:
        return int(cell)
    return _number(cell.strip())


_FLAG_WORDS = {**dict.fromkeys(_YES, True), **dict.fromkeys(_NO, False)}


def _flag_text(cell: str) -> Any:
    """A yes/no column's text cell: its flag, or the cell unchanged (the form judges it)."""
    return _FLAG_WORDS.get(cell.strip().lower(), cell)


_TEXT_READERS: dict[Kind, Any] = {
    Kind.TEXT: str.strip,
    Kind.GRADE: _whole_text,
    Kind.INTEGER: _whole_text,
    Kind.NUMBER: _number_text,
    Kind.FLAG: _flag_text,
}
"""How a text cell of a scalar column becomes its value (what `TableReader._read` does)."""
_UNBOUNDED = 2**63


def _parent(form: dict[str, Any], column: Column) -> dict[str, Any] | None:
    target = form
    for key in column.path[:-1]:
        inner = target.get(key)
        if inner is None:
            inner = target[key] = {}
        elif not isinstance(inner, dict):
            return None
        target = inner
    return target


def _put(
    form: dict[str, Any], column: Column, value: Any, *, record: bool = False
) -> FieldProblem | None:
    path = column.path
    target = form
    for depth, key in enumerate(path[:-1]):
        inner = target.get(key)
        if inner is None:
            inner = target[key] = {}
        elif not isinstance(inner, dict):
            return _both_ways(column.name, ".".join(path[: depth + 1]), value)
        target = inner
    if record:
        existing = target.get(path[-1])
        if existing is None:
            target[path[-1]] = {}
        return None
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


# -- table rows through the pipeline -------------------------------------------------------------

ReaderSpec = tuple[tuple[Any, ...], tuple[str, ...]]

_readers: dict[ReaderSpec, TableReader] = {}


class _Canon:
    """Shares equal records: many distinct forms give the same record (it holds no evidence)."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._seen: dict[Record, Record] = {}

    def __call__(self, record: Record) -> Record:
        seen = self._seen.get(record)
        if seen is not None:
            return seen
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[record] = record
        return record


_canon = _Canon()


class RecordTask:
    """Screens table rows (their cells) into table records; picklable, for worker processes."""

    __slots__ = ("spec",)

    def __init__(self, spec: ReaderSpec) -> None:
        self.spec = spec

    def __getstate__(self) -> ReaderSpec:
        return self.spec

    def __setstate__(self, state: ReaderSpec) -> None:
        self.spec = state

    def screen(self, screener: Screener, payloads: list[Any], shipped: bool) -> list[Any]:
        reader = _readers.get(self.spec)
        if reader is None:
            reader = _readers[self.spec] = TableReader(self.spec[0], ignore=self.spec[1])
        # No cache here: the pipeline's cache of exact rows (in the parent) catches repeats
        # before they are sent; one keyed on the validated form as well ("Mild" and 1 are one)
        # cost a form's JSON per row and saved next to nothing on real files.
        results = [self._read(reader, cells) for cells in payloads]
        briefs = iter(screener.briefs([r for r in results if isinstance(r, IntakeForm)]))
        return [self._record(next(briefs)) if isinstance(r, IntakeForm) else r for r in results]

    @staticmethod
    def _read(reader: TableReader, cells: Any) -> IntakeForm | object:
        try:
            form, problems = reader.form(cells)
            if problems:
                return INVALID
            return coerce_form(form)
        except Exception:  # every problem is worked out again, and reported, from the row
            return INVALID

    @staticmethod
    def _record(brief: Brief | EngineError) -> Any:
        if isinstance(brief, EngineError):
            return ("engine", str(brief))
        return _canon(record_of_brief(brief))

    def adopt(self, results: list[Any]) -> list[Any]:
        # Records from workers arrive as fresh copies: share equal ones to keep the cache small.
        return [_canon(r) if isinstance(r, Record) else r for r in results]


_TEXT_CELLS = frozenset({str, type(None)})


def _cells_key(cells: tuple[Any, ...]) -> Hashable:
    # CSV rows are all text (or None): the cells themselves are an exact key, with nothing to
    # make. Other cells (a DataFrame's numbers, lists, NaN) are pickled: 1, 1.0 and True are equal
    # in a tuple but not the same cell, and a list cannot be hashed.
    if _TEXT_CELLS.issuperset(map(type, cells)):
        return cells
    return pickle.dumps(cells, protocol=pickle.HIGHEST_PROTOCOL)


def _client_cell(reader: TableReader, cells: Sequence[Any]) -> Any:
    index = reader.client_index
    if index is None or index >= len(cells):
        return None
    given = cells[index]
    if is_missing(given):
        return None
    # Whole, never abbreviated: two long ids cut to the same few characters would collide. An id
    # over the form's bound fails its row (the same bound as every other door).
    return text_cell(given)


def table_item(
    reader: TableReader,
    row: int,
    label: Hashable | None,
    cells: Sequence[Any],
    failed: RowError | None = None,
    *,
    keyed: bool = True,
) -> Item:
    """The pipeline item for one table row: its cells, and its error if it could not be read.

    ``keyed``: make the row's cache key (False while the pipeline's cache is quiet). Whatever
    goes wrong reading the row fails that row only.
    """
    try:
        width = len(reader.columns)
        if failed is not None or len(cells) > width:
            client_id = _client_cell(reader, cells)
            if failed is None:
                message = (
                    f"the row has {len(cells)} cells but the header has {width} columns "
                    f"(extra cells: {brief(list(cells[width:]))})"
                )
                failed = RowError(row, (FieldProblem("", None, message),), label)
            return Item(row, label, cells, done=dataclasses.replace(failed, client_id=client_id))
        padded = list(cells) + [None] * (width - len(cells))  # short rows: trailing cells empty
        index = reader.client_index
        client_id = None
        if index is not None:
            client_id = _client_cell(reader, padded)
            if not client_id_ok(client_id):
                return Item(row, label, padded, done=table_problems(reader, row, label, padded))
            blanked = (*padded[:index], None, *padded[index + 1 :])
        else:
            blanked = tuple(padded)
        key = _cells_key(blanked) if keyed else None
        return Item(row, label, padded, key, blanked, client_id)
    except Exception as error:
        return Item(row, label, cells, done=unreadable(row, label, None, error))


TableRow = tuple[int, Hashable | None, Sequence[Any], RowError | None]
"""A table row to screen: its number, its label (the CSV line), its cells, and its error when
it could not be read."""


@contextlib.contextmanager
def screened_rows(
    reader: TableReader,
    rows: Iterable[TableRow],
    *,
    screener: Screener,
    workers: int,
    chunk_size: int,
    cache_size: int,
) -> Iterator[Iterator[tuple[Item, Record | RowError]]]:
    """Table rows through the pipeline: (item, record or error) for each row, in order.

    Rows are keyed for the pipeline's cache only while the cache is on. The worker processes
    live as long as the ``with`` block; an exception in it stops them.
    """
    with Pipeline(
        RecordTask(reader.spec),
        screener=screener,
        workers=workers,
        chunk_size=chunk_size,
        cache_size=cache_size,
    ) as pipeline:
        cache = pipeline.cache
        items = (
            table_item(reader, row, label, cells, failed, keyed=cache.active)
            for row, label, cells, failed in rows
        )
        yield ((item, table_outcome(reader, item, result)) for item, result in pipeline.run(items))


def table_problems(reader: TableReader, row: int, label: Hashable | None, cells: Any) -> RowError:
    """Every problem of a table row that does not validate, worked out from its cells."""
    client_id = None
    try:
        client_id = _client_cell(reader, cells)
        form, problems = reader.form(cells)
        try:
            coerce_form(form)
        except InvalidFormError as error:
            problems += error.problems
        if not problems:
            problems.append(FieldProblem("", None, "this row could not be screened"))
        return RowError(row, tuple(problems), label, form.get("client_id"))
    except Exception as error:
        return unreadable(row, label, client_id, error)


def table_outcome(reader: TableReader, item: Item, result: Any) -> Record | RowError:
    """The record (or error) for one table row, from the pipeline's result."""
    if isinstance(result, Record | RowError):
        return result
    if result == INVALID:
        return table_problems(reader, item.row, item.label, item.full)
    return engine_error(item.row, item.label, item.client_id, result[1])
