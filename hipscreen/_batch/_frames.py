"""Frames: screen a DataFrame (pandas, polars) or Arrow table of intake forms, one result per row.

The input columns follow the flat column convention (``tightness.iliopsoas``,
``strength.gluteus_maximus.left`` …), and an empty cell (NaN, None, NA, blank) means "not given",
never "normal". The result follows pandas conventions: the input's index is kept, severity and
urgency are ordered categoricals, missing values are ``NA``, text is ``string`` dtype, and
list-valued results (finding ids, exercise ids, what was not assessed) are lists. A polars
DataFrame or a pyarrow Table gives a result of its own kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from hipscreen._batch._extras import DataFrame, optional_module, progress_bar
from hipscreen._batch._outcomes import Record, RowError
from hipscreen._batch._pipeline import DEFAULT_CHUNK_SIZE, bounded_workers, resolve_screener
from hipscreen._batch._tables import TableReader, screened_rows
from hipscreen._screen import Screener
from hipscreen._vocabulary import Confidence, Severity, Urgency

__all__ = [
    "LONG_COLUMNS",
    "RECORD_CACHE_SIZE",
    "RESULT_COLUMNS",
    "assess_frame",
    "result_meta",
    "results_frame",
    "spark_schema",
]

RECORD_CACHE_SIZE = 100_000
"""Distinct rows the table paths remember (a result row takes well under 1 KB)."""

RESULT_COLUMNS = (
    "row",
    "client_id",
    "ok",
    "error",
    "finding_ids",
    "highest_severity",
    "referral_urgency",
    "exercise_ids",
    "not_assessed",
    "ruleset_version",
)
"""The columns of a result table, one row per input row (``line`` follows ``row`` for CSV)."""

LONG_COLUMNS = ("row", "client_id", "finding_id", "severity", "confidence", "sides", "derived_from")
"""The columns of the long form: one row per finding."""

LIST_COLUMNS = frozenset({"finding_ids", "exercise_ids", "not_assessed", "sides", "derived_from"})
"""Columns whose cells are lists (joined with ``;`` in CSV files)."""

SEVERITIES = tuple(sorted((s.value for s in Severity), key=lambda v: Severity(v).rank))
URGENCIES = (Urgency.ROUTINE.value, Urgency.URGENT.value, Urgency.EMERGENCY.value)
CONFIDENCES = (Confidence.REPORTED.value, Confidence.MEASURED.value)
_CATEGORIES = {
    "highest_severity": SEVERITIES,
    "severity": SEVERITIES,
    "referral_urgency": URGENCIES,
    "confidence": CONFIDENCES,
}
_SPARK_TYPES = {"row": "long", "ok": "boolean"}


def _pandas() -> Any:
    return optional_module("pandas", "pandas", "pandas")


def _kind_of(frame: Any) -> Literal["pandas", "polars", "arrow"]:
    module = type(frame).__module__.split(".")[0]
    if module == "polars":
        return "polars"
    if module == "pyarrow":
        return "arrow"
    return "pandas"


def _to_pandas(frame: Any, kind: str) -> Any:
    if kind == "polars":
        optional_module("pyarrow", "pyarrow", "polars")
        return frame.to_pandas()
    if kind == "arrow":
        return frame.to_pandas()
    pd = _pandas()
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            "assess_frame takes a pandas or polars DataFrame or a pyarrow Table "
            f"(got {type(frame).__module__}.{type(frame).__name__}); for forms as dicts use "
            "hipscreen.assess_many"
        )
    return frame


def _from_pandas(result: Any, kind: str) -> Any:
    if kind == "polars":
        pl = optional_module("polars", "polars", "polars")
        return pl.from_pandas(result.reset_index(drop=True))
    if kind == "arrow":
        pa = optional_module("pyarrow", "pyarrow", "pandas")
        return pa.Table.from_pandas(result, preserve_index=False)
    return result


def _cells(frame: Any) -> Iterable[tuple[Any, ...]]:
    """The frame's rows as tuples of plain Python values, with every missing cell as None."""
    columns = []
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        values = series.astype(object)
        missing = series.isna()
        if missing.any():
            values = values.where(~missing, None)
        columns.append(values.tolist())
    return zip(*columns, strict=True) if columns else ((),) * len(frame)


def assess_frame(
    frame: DataFrame,
    *,
    screener: Screener | None = None,
    long: bool = False,
    workers: int = 1,
    progress: bool = False,
    ignore_columns: Sequence[str] = (),
    first_row: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    cache_size: int = RECORD_CACHE_SIZE,
) -> DataFrame:
    """Screen every row of a DataFrame (pandas or polars) or Arrow table of intake forms.

    Args:
        frame: one intake form per row, in the column convention (``client_id``, ``age``,
            ``tightness.iliopsoas``, ``strength.gluteus_maximus.left``, ``symptoms`` as
            ``"knee_pain;hip_pain"`` or a list, or one yes/no column per symptom such as
            ``symptoms.knee_pain`` …). Missing cells are "not given", never "normal".
        screener: the rules to screen with (a `hipscreen.Screener`); the built-in rules when
            omitted.
        long: return one row per finding instead of one row per input row.
        workers: processes to screen in (1: this process).
        progress: show a progress bar (tqdm).
        ignore_columns: columns that are not intake data (names, notes) to skip.
        first_row: the ``row`` number of the first row (for a partition of a larger table).
        chunk_size: rows handed out at a time.
        cache_size: distinct rows to remember (the cache goes quiet while rows do not repeat).

    Returns:
        A frame of the input's kind (pandas, polars, or a pyarrow Table); a pandas result keeps
        the input's index. One row per input row with the columns ``row`` (``first_row`` plus
        the position in ``frame``: the same numbering as ``hipscreen batch``), ``client_id``,
        ``ok``, ``error`` (every problem of a failed row), ``finding_ids``, ``highest_severity``,
        ``referral_urgency``, ``exercise_ids``, ``not_assessed`` (lists) and
        ``ruleset_version``; or, with ``long=True``, one row per finding: ``row``, ``client_id``,
        ``finding_id``, ``severity``, ``confidence``, ``sides``, ``derived_from``.

    Raises:
        TableError: a column is outside the convention or given twice (nothing is screened).
        ImportError: pandas is not installed (``pip install 'hipscreen[pandas]'``).
        BatchInterrupted: a worker process died (killed, or out of memory).
        ValueError: ``workers`` is below 1 or far more than any machine runs (more than this
            machine runs well is capped, with a `UserWarning`).

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"tightness.iliopsoas": [3, None], "age": [40, "old"]})
        >>> assess_frame(frame)[["ok", "finding_ids"]].iloc[0].tolist()
        [True, ['tight-hip-flexors', 'limited-hip-extension', 'anterior-pelvic-tilt-risk']]
    """
    kind = _kind_of(frame)
    frame = _to_pandas(frame, kind)
    workers = bounded_workers(workers, stacklevel=2)
    rules = resolve_screener(screener)
    reader = TableReader(list(frame.columns), source="DataFrame", ignore=ignore_columns)
    bar = progress_bar(progress, len(frame), "row")
    records: list[tuple[int, Any, Record | RowError]] = []
    try:
        rows = (
            (first_row + position, None, cells, None)
            for position, cells in enumerate(_cells(frame))
        )
        with screened_rows(
            reader,
            rows,
            screener=rules,
            workers=workers,
            chunk_size=chunk_size,
            cache_size=cache_size,
        ) as outcomes:
            for item, outcome in outcomes:
                client_id = outcome.client_id if isinstance(outcome, RowError) else item.client_id
                records.append((item.row, client_id, outcome))
                if bar is not None and len(records) % 512 == 0:
                    bar.update(512)
    finally:
        if bar is not None:
            bar.update(len(records) - bar.n)
            bar.close()
    result = results_frame(records, frame.index, rules.ruleset_version, long=long)
    return _from_pandas(result, kind)


def results_frame(
    records: Iterable[tuple[int, Any, Record | RowError]],
    index: Any,
    ruleset_version: str,
    *,
    long: bool = False,
) -> DataFrame:
    """The result DataFrame from (row, client id, record or error) triples.

    Args:
        records: one triple per input row, in order.
        index: the input's index (a pandas Index or a list of labels), or None for 0, 1, 2, ….
        ruleset_version: the rules that screened the rows.
        long: one row per finding instead of one row per input row.
    """
    pd = _pandas()
    if long:
        return _long_frame(pd, records, index)
    columns: dict[str, list[Any]] = {name: [] for name in RESULT_COLUMNS}
    (rows, client_ids, oks, errors, findings, highest, urgency, exercises, missing, versions) = (
        columns.values()
    )
    lists: dict[int, tuple[Record, list[str], list[str], list[str]]] = {}
    for row, client_id, outcome in records:
        rows.append(row)
        client_ids.append(client_id)
        versions.append(ruleset_version)
        if isinstance(outcome, RowError):
            oks.append(False)
            errors.append(outcome.message)
            for column in (findings, highest, urgency, exercises, missing):
                column.append(None)
            continue
        cells = lists.get(id(outcome))
        if cells is None:  # once per distinct record (the record is kept alive alongside)
            cells = lists[id(outcome)] = (
                outcome,
                list(outcome.finding_ids),
                list(outcome.exercise_ids),
                list(outcome.not_assessed),
            )
        oks.append(True)
        errors.append(None)
        # Equal records share their list objects: copied on write by nobody (they are results).
        findings.append(cells[1])
        highest.append(outcome.highest_severity)
        urgency.append(outcome.referral_urgency)
        exercises.append(cells[2])
        missing.append(cells[3])
    return _frame(pd, columns, index)


def _long_frame(
    pd: Any, records: Iterable[tuple[int, Any, Record | RowError]], index: Any
) -> DataFrame:
    columns: dict[str, list[Any]] = {name: [] for name in LONG_COLUMNS}
    rows, client_ids, ids, severities, confidences, sides, derived = columns.values()
    positions: list[int] = []
    for position, (row, client_id, outcome) in enumerate(records):
        if isinstance(outcome, RowError):
            continue
        for finding in outcome.findings:
            positions.append(position)
            rows.append(row)
            client_ids.append(client_id)
            ids.append(finding[0])
            severities.append(finding[1])
            confidences.append(finding[2])
            sides.append(list(finding[3]))
            derived.append(list(finding[4]))
    labels = None
    if index is not None:
        labels = pd.Index(index).take(positions) if positions else pd.Index(index)[:0]
    return _frame(pd, columns, labels)


def _dtype(pd: Any, name: str) -> Any:
    if name == "row":
        return "int64"
    if name == "ok":
        return "bool"
    if name in _CATEGORIES:
        return pd.CategoricalDtype(list(_CATEGORIES[name]), ordered=True)
    if name in LIST_COLUMNS:
        return object
    return pd.StringDtype()


def _frame(pd: Any, columns: dict[str, list[Any]], index: Any) -> DataFrame:
    data = {name: pd.Series(values, dtype=_dtype(pd, name)) for name, values in columns.items()}
    frame = pd.DataFrame(data)
    if index is not None:
        frame.index = pd.Index(index) if not isinstance(index, pd.Index) else index
    return frame


def result_meta(*, long: bool = False) -> DataFrame:
    """An empty result frame with `assess_frame`'s columns and dtypes: dask's ``meta=``.

    Args:
        long: the long form (one row per finding).

    Returns:
        An empty pandas DataFrame.

    Example:
        >>> import hipscreen
        >>> list(hipscreen.result_meta().columns)[:4]
        ['row', 'client_id', 'ok', 'error']
    """
    return results_frame([], None, "", long=long)


def spark_schema(*, long: bool = False) -> str:
    """`assess_frame`'s columns as a Spark DDL schema string, for ``mapInPandas``.

    Categorical columns are strings and list columns ``array<string>`` in Spark.

    Args:
        long: the long form (one row per finding).

    Example:
        >>> import hipscreen
        >>> hipscreen.spark_schema().split(", ")[:5]
        ['row long', 'client_id string', 'ok boolean', 'error string', 'finding_ids array<string>']
    """
    names = LONG_COLUMNS if long else RESULT_COLUMNS

    def spark_type(name: str) -> str:
        if name in LIST_COLUMNS:
            return "array<string>"
        return _SPARK_TYPES.get(name, "string")

    return ", ".join(f"{name} {spark_type(name)}" for name in names)
