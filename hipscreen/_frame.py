"""DataFrames: screen a pandas DataFrame of intake forms, one result row per input row.

The input columns follow the flat column convention (see `hipscreen._columns`): a column is a
form field path such as ``tightness.iliopsoas`` or ``strength.gluteus_maximus.left``, and an empty
cell (NaN, None, blank) means "not given", never "normal".

`assess_frame` is a pure function of the frame it gets, so it also runs per partition:

    >>> import dask.dataframe as dd                                      # doctest: +SKIP
    >>> ddf.map_partitions(assess_frame, meta=result_meta())             # doctest: +SKIP

and in Spark, with the index dropped (Spark has none):

    >>> sdf.mapInPandas(lambda frames: (assess_frame(f).reset_index(drop=True) for f in frames),
    ...                 schema=spark_schema())                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hipscreen._batch import (
    DEFAULT_CHUNK_SIZE,
    RECORD_CACHE_SIZE,
    RESULT_COLUMNS,
    DataFrame,
    Pipeline,
    Record,
    RowError,
    optional_module,
    progress_bar,
    table_item,
    table_outcome,
)
from hipscreen._columns import TableReader
from hipscreen._screen import default_screener

__all__ = ["LONG_COLUMNS", "RESULT_COLUMNS", "assess_frame", "result_meta", "spark_schema"]

LONG_COLUMNS = ("row", "client_id", "finding_id", "severity", "confidence", "sides", "derived_from")
"""The columns of the long form: one row per finding."""

_TYPES = {"row": "int64", "ok": "bool"}
_SPARK_TYPES = {"row": "long", "ok": "boolean"}


def _pandas() -> Any:
    return optional_module("pandas", "pandas", "pandas")


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
    long: bool = False,
    workers: int = 1,
    progress: bool = False,
    ignore_columns: Sequence[str] = (),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    cache_size: int = RECORD_CACHE_SIZE,
) -> DataFrame:
    """Screen every row of a DataFrame of intake forms.

    Args:
        frame: one intake form per row, in the column convention (``client_id``, ``age``,
            ``tightness.iliopsoas``, ``strength.gluteus_maximus.left``, ``symptoms`` as
            ``"knee_pain;hip_pain"`` or one yes/no column per symptom such as
            ``symptoms.knee_pain`` …). Missing cells are "not given", never "normal".
        long: return one row per finding instead of one row per input row.
        workers: processes to screen in (1: this process).
        progress: show a progress bar (tqdm).
        ignore_columns: columns that are not intake data (names, notes) to skip.
        chunk_size: rows handed out at a time.
        cache_size: distinct rows to remember.

    Returns:
        A DataFrame with the input's index. One row per input row with the columns ``row``
        (position in ``frame``, from 0), ``client_id``, ``ok``, ``error`` (every problem of a
        failed row), ``finding_ids``, ``highest_severity``, ``referral_urgency``,
        ``exercise_ids``, ``not_assessed`` (lists joined with ``;``) and ``ruleset_version``;
        or, with ``long=True``, one row per finding: ``row``, ``client_id``, ``finding_id``,
        ``severity``, ``confidence``, ``sides``, ``derived_from``.

    Raises:
        TableError: a column is outside the convention or given twice (nothing is screened).
        ImportError: pandas is not installed (``pip install 'hipscreen[pandas]'``).

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"tightness.iliopsoas": [3, None], "age": [40, "old"]})
        >>> assess_frame(frame)[["ok", "finding_ids"]].iloc[0].tolist()
        [True, 'tight-hip-flexors;limited-hip-extension;anterior-pelvic-tilt-risk']
    """
    reader = TableReader(list(frame.columns), source="DataFrame", ignore=ignore_columns)
    bar = progress_bar(progress, len(frame), "row")
    records: list[tuple[int, Any, Record | RowError]] = []
    try:
        items = (
            table_item(reader, position, None, cells)
            for position, cells in enumerate(_cells(frame))
        )
        with Pipeline(
            "record",
            workers=workers,
            chunk_size=chunk_size,
            cache_size=cache_size,
            spec=reader.spec,
        ) as pipeline:
            for item, result in pipeline.run(items):
                outcome = table_outcome(reader, item, result)
                client_id = outcome.client_id if isinstance(outcome, RowError) else item.client_id
                records.append((item.row, client_id, outcome))
                if bar is not None and len(records) % 512 == 0:
                    bar.update(512)
    finally:
        if bar is not None:
            bar.update(len(records) - bar.n)
            bar.close()
    return results_frame(records, frame.index, default_screener().ruleset_version, long=long)


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
    joined: dict[int, tuple[Record, str, str, str]] = {}
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
        cells = joined.get(id(outcome))
        if cells is None:  # once per distinct record (the record is kept alive alongside)
            cells = joined[id(outcome)] = (
                outcome,
                ";".join(outcome.finding_ids),
                ";".join(outcome.exercise_ids),
                ";".join(outcome.not_assessed),
            )
        oks.append(True)
        errors.append(None)
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
            sides.append(finding[3])
            derived.append(finding[4])
    labels = None
    if index is not None:
        labels = pd.Index(index).take(positions) if positions else pd.Index(index)[:0]
    return _frame(pd, columns, labels)


def _frame(pd: Any, columns: dict[str, list[Any]], index: Any) -> DataFrame:
    data = {
        name: pd.Series(values, dtype=_TYPES.get(name, object), index=None)
        for name, values in columns.items()
    }
    frame = pd.DataFrame(data)
    if index is not None:
        frame.index = pd.Index(index) if not isinstance(index, pd.Index) else index
    return frame


def result_meta(*, long: bool = False) -> DataFrame:
    """An empty result frame with `assess_frame`'s columns and types: dask's ``meta=``.

    Example:
        >>> list(result_meta().columns)[:4]
        ['row', 'client_id', 'ok', 'error']
    """
    return results_frame([], None, "", long=long)


def spark_schema(*, long: bool = False) -> str:
    """`assess_frame`'s columns as a Spark DDL schema string, for ``mapInPandas``.

    Example:
        >>> spark_schema().split(", ")[:3]
        ['row long', 'client_id string', 'ok boolean']
    """
    names = LONG_COLUMNS if long else RESULT_COLUMNS
    return ", ".join(f"{name} {_SPARK_TYPES.get(name, 'string')}" for name in names)
