"""CSV files: `screen_csv` streams a CSV file of intake forms into CSV or Parquet results.

Nothing is overwritten that was not asked for, and nothing half-done looks finished. The input,
the results and the errors file must be three different files; existing results are replaced
only with ``overwrite=True``. Results go to ``NAME.partial`` files (a ``NAME.partial``
directory of parts for Parquet) that are renamed into place only when the whole input is done.
After each chunk a small ``NAME.resume.json`` records how far the run got, so an interrupted run
(Ctrl-C, SIGTERM, a killed worker or a killed process) continues with ``resume=True`` from its
last complete chunk.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from hipscreen._batch._csvframe import Framer, RawRecord
from hipscreen._batch._extras import optional_module, progress_bar
from hipscreen._batch._frames import LIST_COLUMNS, RECORD_CACHE_SIZE, RESULT_COLUMNS
from hipscreen._batch._outcomes import BatchInterrupted, BatchSummary, Record, RowError, Tally
from hipscreen._batch._pipeline import DEFAULT_CHUNK_SIZE, resolve_screener
from hipscreen._batch._tables import TableError, TableReader, TableRow, screened_rows
from hipscreen._errors import FieldProblem
from hipscreen._screen import Screener

__all__ = ["CSV_COLUMNS", "CsvReport", "default_errors_path", "screen_csv"]

CSV_COLUMNS = (RESULT_COLUMNS[0], "line", *RESULT_COLUMNS[1:])
"""The columns of `screen_csv`'s results: those of `hipscreen.assess_frame`, with ``line``."""

_STATE_VERSION = 1


@dataclass
class CsvReport:
    """What `screen_csv` did.

    Attributes:
        summary: rows read, screened and failed, and the count of each finding.
        output: where the results went (one row per input row), or None for a stream.
        errors: where the failed rows went, with their problems and original cells.
        resumed_from: rows a resumed run found already done (0 for a fresh run).
    """

    summary: BatchSummary
    output: Path | None
    errors: Path
    resumed_from: int = 0


_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)
)


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a chunk and its checkpoint are written.

    A signal handled in the middle (Python raises ``KeyboardInterrupt`` between any two
    bytecodes) would leave a chunk half written, or written and not counted. Held, the first one
    is raised again, to the handler that was in place, once the chunk and its checkpoint are both
    on disk. Signal masks cannot do this: they are per thread, and a process-directed signal goes
    to any thread that does not mask it (the worker pool has threads), after which Python runs
    the handler in the main thread all the same. Outside the main thread Python runs no signal
    handler, so there is nothing to hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: Any) -> None:
        caught.append(signum)

    previous: dict[int, Any] = {}
    for signum in _STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not None:  # None: installed outside Python, cannot be put back
            previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])


def default_errors_path(output: Path | None, source: Path | None) -> Path:
    """``out.jan.csv`` → ``out.jan.errors.csv`` (beside the input when writing to a stream)."""
    base = output if output is not None else (source or Path("hipscreen.csv"))
    stem = base.name[: -len(base.suffix)] if base.suffix else base.name
    return base.with_name(f"{stem}.errors.csv")


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _state_path(path: Path) -> Path:
    return path.with_name(path.name + ".resume.json")


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_paths(
    source: Path | None, output: Path | None, errors: Path, *, overwrite: bool, resume: bool
) -> None:
    """Refuse paths that would overwrite the input, each other, or results not asked for."""
    named = [("the input", source), ("the results", output), ("the errors file", errors)]
    if output is not None:
        named += [
            ("the partial results", _partial(output)),
            ("the resume state", _state_path(output)),
        ]
    named += [("the partial errors file", _partial(errors))]
    problems = []
    for i, (what, path) in enumerate(named):
        for other, other_path in named[i + 1 :]:
            if path is not None and other_path is not None and _same(path, other_path):
                problems.append(f"{what} and {other} are the same file ({path})")
    if problems:
        raise TableError([*problems, "nothing was written: give another -o or --errors"], "paths")
    if resume:
        return
    if output is not None and _state_path(output).exists() and not overwrite:
        raise FileExistsError(
            f"an interrupted run left partial results for {output} ({_partial(output)}): "
            "continue it with resume=True (--resume), or start again with overwrite=True (--force)"
        )
    for what, path in (("the results", output), ("the errors file", errors)):
        if path is not None and path.exists() and not overwrite:
            raise FileExistsError(
                f"{path} exists ({what}); nothing was written: replace it with overwrite=True "
                "(--force), or write elsewhere"
            )


def _check_encoding(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise TableError([f"unknown encoding {encoding!r}"], "input") from None
    if "a,b\n".encode(name) != b"a,b\n":
        raise TableError(
            [f"encoding {encoding!r} is not ASCII-compatible; save the file as UTF-8"], "input"
        )
    return name


def read_csv_records(
    binary: IO[bytes], name: str, *, encoding: str = "utf-8", delimiter: str = ","
) -> tuple[list[str], Framer, Iterator[RawRecord]]:
    """The header, the framer (for progress), and the stream of records of a CSV file.

    Raises:
        TableError: the file is empty, or its header cannot be read (not text in ``encoding``,
            damaged, or not a CSV header).
    """
    encoding = _check_encoding(encoding)
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        raise TableError(
            [f"the delimiter must be one character, not a quote or newline (got {delimiter!r})"],
            name,
        )
    head = binary.peek(4)[:4] if hasattr(binary, "peek") else b""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TableError([f"{name} is UTF-16 text; save it as UTF-8 CSV"], name)
    framer = Framer(binary, encoding, delimiter)
    records = framer.records()
    first = next(records, None)
    if first is None:
        raise TableError(
            [f"{name} is empty: the first line must name the columns (client_id, age, …)"], name
        )
    if first.line != 1:
        raise TableError(["the first line is blank; it must name the columns"], name)
    if first.problems or not first.readable:
        problem = first.problems[0] if first.problems else "the header cannot be read"
        if "carriage return" in problem:
            problem = (
                "the header line ends in a lone carriage return (\\r): the file uses old Mac "
                "line ends; save it with \\n or \\r\\n line ends"
            )
        raise TableError(
            [f"{problem} (is it a UTF-8 CSV file, not UTF-16 or a spreadsheet?)"], name
        )
    if any("\x00" in cell for cell in first.cells):
        raise TableError(
            [
                "the header line contains NUL bytes (is it a UTF-8 CSV file, not UTF-16 or a "
                "spreadsheet?)"
            ],
            name,
        )
    return first.cells, framer, records


# -- where results go ----------------------------------------------------------------------------


class _CsvSink:
    """Result rows into a CSV text stream; lists joined with ``;``."""

    def __init__(self, stream: IO[str], columns: Sequence[str], *, header: bool = True) -> None:
        self.stream = stream
        self.writer = csv.writer(stream, lineterminator="\n")
        self.lists = [i for i, name in enumerate(columns) if name in LIST_COLUMNS]
        if header:
            self.writer.writerow(columns)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        lists = self.lists
        for row in rows:
            cells = list(row)
            for i in lists:
                if cells[i] is not None:
                    cells[i] = ";".join(cells[i])
            self.writer.writerow(cells)

    def checkpoint(self) -> int:
        self.stream.flush()
        return self.stream.tell()


class _ParquetSink:
    """Result rows into numbered Parquet parts (one per chunk), merged into one file at the end."""

    def __init__(self, directory: Path, columns: Sequence[str], parts: int = 0) -> None:
        self.pa = optional_module("pyarrow", "pyarrow", "pandas")
        self.pq = optional_module("pyarrow.parquet", "pyarrow", "pandas")
        pa = self.pa
        types = {"row": pa.int64(), "line": pa.int64(), "ok": pa.bool_()}
        self.schema = pa.schema(
            [
                (c, pa.list_(pa.string()) if c in LIST_COLUMNS else types.get(c, pa.string()))
                for c in columns
            ]
        )
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for extra in directory.glob("part-*.parquet"):
            if int(extra.stem.split("-")[1]) >= parts:
                extra.unlink()
        self.parts = parts

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        columns = [list(column) for column in zip(*rows, strict=True)]
        for i, column in enumerate(columns):
            if self.schema.field(i).type == self.pa.string():
                columns[i] = [_printable(value) for value in column]
        table = self.pa.table(columns, schema=self.schema)
        path = self.directory / f"part-{self.parts:06d}.parquet"
        self.pq.write_table(table, path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)
        self.parts += 1

    def checkpoint(self) -> int:
        return self.parts

    def tally(self, tally: Tally) -> None:
        for part in sorted(self.directory.glob("part-*.parquet")):
            for row in self.pq.read_table(part).to_pylist():
                _count(tally, row)

    def commit(self, target: Path) -> None:
        temporary = target.with_name(target.name + ".tmp")
        with contextlib.closing(self.pq.ParquetWriter(str(temporary), self.schema)) as writer:
            for part in sorted(self.directory.glob("part-*.parquet")):
                writer.write_table(self.pq.read_table(part, schema=self.schema))
        os.replace(temporary, target)
        shutil.rmtree(self.directory)


def _count(tally: Tally, row: dict[str, Any]) -> None:
    ok = row["ok"]
    if ok in (True, "True"):
        ids = row["finding_ids"]
        if isinstance(ids, str):
            ids = ids.split(";") if ids else []
        tally.add_counts(
            tuple(ids or ()), row["highest_severity"] or None, row["referral_urgency"] or None
        )
    else:
        tally.add_counts(failed=True)


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # bytes kept from an undecodable line
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def _result_row(
    row: int, line: int, client_id: Any, outcome: Record | RowError, version: str
) -> tuple[Any, ...]:
    if isinstance(outcome, RowError):
        # A row that was not valid text keeps its bytes in the errors file; the results file
        # stays valid UTF-8.
        message = _printable(outcome.message)
        return (
            row,
            line,
            _printable(client_id),
            False,
            message,
            None,
            None,
            None,
            None,
            None,
            version,
        )
    return (
        row,
        line,
        client_id,
        True,
        None,
        outcome.finding_ids,
        outcome.highest_severity,
        outcome.referral_urgency,
        outcome.exercise_ids,
        outcome.not_assessed,
        version,
    )


# -- the resume state ----------------------------------------------------------------------------


def _fingerprint(source: Path) -> dict[str, Any]:
    stat = source.stat()
    with open(source, "rb") as stream:
        head = hashlib.sha256(stream.read(1 << 16)).hexdigest()
    return {
        "path": str(source.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "head": head,
    }


def _write_state(path: Path, state: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    os.replace(temporary, path)


def _read_state(path: Path, expected: dict[str, Any]) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"nothing to resume: no interrupted run of this output ({path} is missing)"
        ) from None
    except ValueError:
        raise ValueError(f"{path} is damaged; start again with overwrite=True (--force)") from None
    for key, value in expected.items():
        if state.get(key) != value:
            raise ValueError(
                f"cannot resume: the {key.replace('_', ' ')} differs from the interrupted run's "
                f"({state.get(key)!r} then, {value!r} now); start again with overwrite=True "
                "(--force)"
            )
    return state


def screen_csv(
    source: str | os.PathLike[str] | IO[bytes],
    output: str | os.PathLike[str] | IO[str],
    *,
    errors: str | os.PathLike[str] | None = None,
    output_format: Literal["csv", "parquet"] | None = None,
    screener: Screener | None = None,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    cache_size: int = RECORD_CACHE_SIZE,
    encoding: str = "utf-8",
    delimiter: str = ",",
    ignore_columns: Sequence[str] = (),
    progress: bool = False,
    overwrite: bool = False,
    resume: bool = False,
) -> CsvReport:
    """Screen a CSV file of intake forms, streaming: a file larger than memory works.

    The input follows the column convention (see the batch docs). The output has one row per
    input record, in order (columns: ``row`` from 0 as in `hipscreen.assess_frame`, ``line``
    the record's first line in the file, then those of `assess_frame`, with lists joined by
    ``;``); the failed rows also go to ``errors``, with their problems and original cells, so
    rows out + rows in the errors file account for every record. Blank lines are skipped.

    Args:
        source: the CSV file (a path, or a binary stream).
        output: where the results go: a ``.csv`` or ``.parquet`` path, or a text stream.
        errors: where failed rows go (CSV; written even when no row failed); by default beside
            ``output``: ``out.jan.csv`` → ``out.jan.errors.csv``.
        output_format: ``"csv"`` or ``"parquet"``; from the output's suffix when omitted.
        screener: the rules to screen with (a `hipscreen.Screener`); the built-in rules when
            omitted.
        workers: processes to screen in.
        chunk_size: rows read ahead, and written, at a time.
        cache_size: distinct rows to remember (the cache goes quiet while rows do not repeat).
        encoding: the input's text encoding (an ASCII-compatible one, e.g. ``cp1252``).
        delimiter: the input's cell separator.
        ignore_columns: input columns to skip (notes, names, a spreadsheet's index).
        progress: show a progress bar on standard error.
        overwrite: replace existing results and errors files (and a partial run's files).
        resume: continue an interrupted run of the same input into the same output, from its
            last complete chunk.

    Returns:
        A `CsvReport` with the summary and the paths written.

    Raises:
        TableError: the file as a whole cannot be screened (empty, unknown columns, not text),
            or the paths name the same file twice; nothing is written then.
        FileExistsError: the results or errors file exists (and ``overwrite`` is False).
        BatchInterrupted: the run was interrupted (Ctrl-C), terminated, or a worker process
            died; the rows done so far are in the partial files, ready for ``resume=True``.
        ImportError: Parquet output without pyarrow, or ``progress=True`` without tqdm.
    """
    source_path = Path(source) if isinstance(source, str | os.PathLike) else None
    name = str(source_path) if source_path is not None else "input"
    out_path = Path(output) if isinstance(output, str | os.PathLike) else None
    fmt = output_format or ("parquet" if out_path and out_path.suffix == ".parquet" else "csv")
    if fmt == "parquet" and out_path is None:
        raise ValueError("Parquet output needs a file path, not a stream")
    if resume and (out_path is None or source_path is None):
        raise ValueError("resume needs the input and the results as files, not streams")
    errors_path = Path(errors) if errors is not None else default_errors_path(out_path, source_path)
    rules = resolve_screener(screener)
    version = rules.ruleset_version
    _check_paths(source_path, out_path, errors_path, overwrite=overwrite, resume=resume)

    with contextlib.ExitStack() as stack:
        binary: IO[bytes]
        if source_path is not None:
            try:
                binary = stack.enter_context(open(source_path, "rb"))
            except OSError as error:
                raise TableError([f"cannot read {name}: {error.strerror}"], name) from None
        else:
            assert not isinstance(source, str | os.PathLike)
            binary = source
        header, framer, records = read_csv_records(
            binary, name, encoding=encoding, delimiter=delimiter
        )
        reader = TableReader(header, source=name, ignore=ignore_columns)

        expected: dict[str, Any] = {}
        state: dict[str, Any] = {}
        state_path = _state_path(out_path) if out_path is not None else None
        if source_path is not None and out_path is not None:
            expected = {
                "version": _STATE_VERSION,
                "input": _fingerprint(source_path),
                "ruleset": rules.ruleset.digest,
                "format": fmt,
                "errors": str(errors_path.resolve()),
                "reading": [encoding, delimiter, list(ignore_columns)],
            }
        if resume:
            assert state_path is not None
            state = _read_state(state_path, expected)
        done = int(state.get("rows", 0))
        tally = Tally()

        # The errors file, then the results: partial files renamed into place at the end.
        errors_partial = _partial(errors_path)
        if resume:
            with open(errors_partial, "r+b") as kept_errors:
                kept_errors.truncate(int(state["errors_bytes"]))
        error_stream = stack.enter_context(
            open(
                errors_partial,
                "a" if resume else "w",
                encoding="utf-8",
                newline="",
                errors="surrogateescape",
            )
        )
        error_writer = csv.writer(error_stream, lineterminator="\n")
        if not resume:
            error_writer.writerow(["row", "line", "error", *header])
        sink: _CsvSink | _ParquetSink
        if fmt == "parquet":
            assert out_path is not None
            sink = _ParquetSink(_partial(out_path), CSV_COLUMNS, int(state.get("output", 0)))
            if resume:
                sink.tally(tally)
        elif out_path is not None:
            partial = _partial(out_path)
            if resume:
                with open(partial, "r+b") as kept:
                    kept.truncate(int(state["output"]))
                with open(partial, encoding="utf-8", newline="") as text:
                    for row in csv.DictReader(text):
                        _count(tally, row)
            stream_out = stack.enter_context(
                open(partial, "a" if resume else "w", encoding="utf-8", newline="")
            )
            sink = _CsvSink(stream_out, CSV_COLUMNS, header=not resume)
        else:
            assert not isinstance(output, str | os.PathLike)
            sink = _CsvSink(output, CSV_COLUMNS)
        if tally.rows != done:
            raise ValueError(
                f"cannot resume: the partial results hold {tally.rows:,} rows, the resume state "
                f"says {done:,}; start again with overwrite=True (--force)"
            )

        total = source_path.stat().st_size if source_path is not None else None
        bar = progress_bar(progress, total, "B", unit_scale=True, unit_divisor=1024, leave=True)
        written = done

        def checkpoint() -> None:
            if state_path is None:
                return
            error_stream.flush()
            _write_state(
                state_path,
                {
                    **expected,
                    "rows": written,
                    "output": sink.checkpoint(),
                    "errors_bytes": error_stream.tell(),
                },
            )

        def rows() -> Iterator[TableRow]:
            for row, record in enumerate(records):
                if row < done:
                    continue  # resuming: done in the interrupted run
                failed = None
                if record.problems:
                    problems = tuple(FieldProblem("", None, p) for p in record.problems)
                    failed = RowError(row, problems, record.line)
                yield row, record.line, record.cells, failed

        # Rows screened since the last checkpoint: (result row, errors-file row or None), one
        # append per row so an interrupt never leaves the two files out of step.
        pending: list[tuple[tuple[Any, ...], list[Any] | None]] = []

        def flush() -> None:
            """Write the pending rows to both files and checkpoint, with stop signals held."""
            nonlocal written, pending
            with _stop_signals_held():
                sink.write([result for result, _ in pending])
                error_writer.writerows(failed for _, failed in pending if failed is not None)
                written += len(pending)
                pending = []
                checkpoint()

        try:
            with screened_rows(
                reader,
                rows(),
                screener=rules,
                workers=workers,
                chunk_size=chunk_size,
                cache_size=cache_size,
            ) as outcomes:
                for item, outcome in outcomes:
                    tally.add(outcome)
                    line = int(item.label)  # type: ignore[call-overload]
                    failed_row: list[Any] | None = None
                    if isinstance(outcome, RowError):
                        client_id = outcome.client_id
                        failed_row = [item.row, line, outcome.message, *item.full]
                    else:
                        client_id = item.client_id
                    pending.append(
                        (_result_row(item.row, line, client_id, outcome, version), failed_row)
                    )
                    if len(pending) >= chunk_size:
                        flush()
                        if bar is not None:
                            bar.update(framer.bytes_read - bar.n)
                flush()
        except (KeyboardInterrupt, BatchInterrupted) as stop:
            # Rows finished before the stop are complete: keep them, then say where they are.
            # A second signal while they are written is held, then dropped: the run is stopping.
            with contextlib.suppress(Exception, KeyboardInterrupt):
                flush()
            reason = (
                stop.reason
                if isinstance(stop, BatchInterrupted)
                else (str(stop.args[0]) if stop.args else "interrupted (Ctrl-C)")
            )
            partials = [] if out_path is None else [_partial(out_path), errors_partial]
            raise BatchInterrupted(reason, written, partials) from stop
        finally:
            if bar is not None:
                bar.update(framer.bytes_read - bar.n)
                bar.close()
    # The whole input is done: put the results in place, then forget the partial run.
    if isinstance(sink, _ParquetSink):
        assert out_path is not None
        sink.commit(out_path)
    elif out_path is not None:
        os.replace(_partial(out_path), out_path)
    os.replace(errors_partial, errors_path)
    if state_path is not None:
        with contextlib.suppress(FileNotFoundError):
            state_path.unlink()
    return CsvReport(tally.summary(version), out_path, errors_path, done)
