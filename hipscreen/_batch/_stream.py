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

import bz2
import codecs
import contextlib
import csv
import dataclasses
import errno as errno_module
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import stat
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from hipscreen._batch._csvframe import (
    MAX_RECORD_CHARS,
    MAX_SCAN_CHARS,
    Framer,
    FramingError,
    RawRecord,
)
from hipscreen._batch._extras import optional_module, progress_bar
from hipscreen._batch._frames import LIST_COLUMNS, RECORD_CACHE_SIZE, RESULT_COLUMNS
from hipscreen._batch._outcomes import BatchInterrupted, BatchSummary, Record, RowError, Tally
from hipscreen._batch._pipeline import DEFAULT_CHUNK_SIZE, bounded_workers, resolve_screener
from hipscreen._batch._signals import check as check_stop
from hipscreen._batch._signals import held as stop_signals_held
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


def default_errors_path(output: Path | None, source: Path | None) -> Path:
    """``out.jan.csv`` → ``out.jan.errors.csv`` (beside the input when writing to a stream)."""
    base = output if output is not None else (source or Path("hipscreen.csv"))
    stem = base.name[: -len(base.suffix)] if base.suffix else base.name
    return base.with_name(f"{stem}.errors.csv")


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _state_path(path: Path) -> Path:
    return path.with_name(path.name + ".resume.json")


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _by_name(path: Path) -> Path:
    """Where a path points without following a link at its last part."""
    return path.parent.resolve() / path.name


def _where(path: Path) -> str:
    """A path as given, and as resolved when that differs."""
    resolved = path.resolve()
    return str(path) if str(resolved) == str(path) else f"{path} (resolved: {resolved})"


def _check_targets(output: Path | None, errors: Path) -> None:
    """Refuse results or errors paths that are folders, or in folders that do not exist."""
    problems = []
    for what, path in (("the results", output), ("the errors file", errors)):
        if path is None:
            continue
        if path.is_dir():
            problems.append(f"{what} {_where(path)} is a folder; give a file name")
        elif not path.parent.is_dir():
            problems.append(
                f"the folder of {what}, {_where(path.parent)}, does not exist"
                if not path.parent.exists()
                else f"{_where(path.parent)} is not a folder ({what} {path} cannot go there)"
            )
    if problems:
        raise TableError([*problems, "nothing was written"], "paths")


def _check_paths(
    source: Path | None,
    output: Path | None,
    errors: Path,
    *,
    overwrite: bool,
    resume: bool,
    locks: Sequence[Path] = (),
) -> None:
    """Refuse paths that would overwrite the input, each other, or results not asked for."""
    named = [("the input", source), ("the results", output), ("the errors file", errors)]
    if output is not None:
        named += [
            ("the partial results", _partial(output)),
            ("the resume state", _state_path(output)),
        ]
    named += [("the partial errors file", _partial(errors))]
    named += [("a lock file", lock) for lock in locks]
    # The run's own files (partial, state, lock) are compared by name: a link found at one of
    # those names is removed, never written through (see `_Files`).
    own = {"the partial results", "the resume state", "the partial errors file", "a lock file"}
    problems = []
    for i, (what, path) in enumerate(named):
        for other, other_path in named[i + 1 :]:
            if path is None or other_path is None:
                continue
            if what in own or other in own:
                same = _by_name(path) == _by_name(other_path)
            else:
                same = _same(path, other_path)
            if same:
                problems.append(f"{what} and {other} are the same file ({path})")
    if problems:
        raise TableError([*problems, "nothing was written: give another -o or --errors"], "paths")
    if resume:
        return
    if output is not None and _state_path(output).exists() and not overwrite:
        # Checked under the output's lock: the run that left the state is not running.
        pid = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            pid = json.loads(_state_path(output).read_text(encoding="utf-8")).get("pid")
        who = f" (PID {pid}, no longer running)" if isinstance(pid, int) else ""
        raise FileExistsError(
            f"an interrupted run{who} left partial results for {output} ({_partial(output)}): "
            "continue it with resume=True, or start again with overwrite=True"
        )
    for what, path in (("the results", output), ("the errors file", errors)):
        if path is not None and path.exists() and not overwrite:
            raise FileExistsError(
                f"{path} exists ({what}); nothing was written: replace it with overwrite=True, "
                "or write elsewhere"
            )


# -- files the run creates: locked, created new, never through a link ----------------------------

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class OutputError(OSError):
    """A file of the run could not be written (disk full, no permission): which, and what now."""

    def __init__(self, message: str, errno: int | None) -> None:
        super().__init__(errno, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


class _Files:
    """The run's own files: created new (``O_EXCL | O_NOFOLLOW``), or reopened only when they are
    plain files of their own (one link, not the input)."""

    def __init__(self, avoid: Sequence[tuple[int, int]]) -> None:
        self.avoid = set(avoid)

    def _checked(self, fd: int, path: Path) -> int:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or _identity(st) in self.avoid:
            os.close(fd)
            raise TableError(
                [
                    f"{path} is not a file this tool made (a link to another file, or not a "
                    "plain file); nothing was written: remove it, or write elsewhere"
                ],
                "paths",
            )
        return fd

    def create(self, path: Path) -> int:
        """A new, empty file at ``path``: whatever was there (a stale partial file, a link) is
        removed first, never written through."""
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666)
        except OSError as error:
            raise _cannot(path, "create", error, rows=None) from None
        self.avoid.add(_identity(os.fstat(fd)))
        return fd

    def reopen(self, path: Path) -> int:
        """The run's existing file at ``path`` (resuming), refused if it is a link or not plain."""
        try:
            fd = os.open(path, os.O_RDWR | _NOFOLLOW | _CLOEXEC)
        except FileNotFoundError:
            raise ValueError(
                f"cannot resume: {path} is missing; start again with overwrite=True"
            ) from None
        except OSError as error:
            if error.errno == errno_module.ELOOP:
                raise TableError(
                    [f"{path} is a symbolic link; nothing was written: remove it"], "paths"
                ) from None
            raise _cannot(path, "open", error, rows=None) from None
        return self._checked(fd, path)

    def write_json(self, path: Path, value: dict[str, Any]) -> None:
        """Replace ``path`` with ``value`` as JSON, atomically (a new temporary file renamed)."""
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with open(fd, "w", encoding="utf-8") as stream:
                stream.write(json.dumps(value))
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def _cannot(
    path: Path, doing: str, error: OSError, *, rows: int | None, resumable: bool = False
) -> OutputError:
    """The error for a file of the run that cannot be written: the path, why, and what next."""
    reason = error.strerror or str(error)
    if rows is None:
        then = "nothing was screened"
    elif resumable:
        then = (
            f"the {rows:,} rows done before are kept: fix this (free some space, or allow "
            "writing there) and continue with resume=True"
        )
    else:
        then = f"{rows:,} rows were done; the input is a stream, so run again from the start"
    return OutputError(f"cannot {doing} {path}: {reason}; {then}", error.errno)


class _Lock:
    """One writer per output: an exclusive ``flock`` on ``NAME.lock``, held for the whole run.

    The lock file holds the PID of the run that holds it, so a second run is refused naming it.
    A lock file left by a run that died is not locked (the kernel drops a dead process's locks):
    the next run takes it over.
    """

    def __init__(self, path: Path, files: _Files) -> None:
        self.path = path
        self.files = files
        self.fd: int | None = None

    def __enter__(self) -> _Lock:
        try:
            import fcntl
        except ImportError:  # no flock (Windows): the partial files are still created new
            return self
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o666)
            except OSError as error:
                if error.errno == errno_module.ELOOP:
                    raise TableError(
                        [f"{self.path} is a symbolic link; nothing was written: remove it"],
                        "paths",
                    ) from None
                raise _cannot(self.path, "create", error, rows=None) from None
            fd = self.files._checked(fd, self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                who = f"PID {holder}" if holder.isdigit() else "another process"
                raise FileExistsError(
                    f"another hipscreen run ({who}) is writing {self.path.with_suffix('')}; "
                    "nothing was written: wait for it to finish, or write elsewhere"
                ) from None
            # The file may have been removed by the run that held it just before: lock the file
            # that is at the path, or try again.
            try:
                same = _identity(os.stat(self.path, follow_symlinks=False)) == _identity(
                    os.fstat(fd)
                )
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self.fd = fd
                self.files.avoid.add(_identity(os.fstat(fd)))
                return self
            os.close(fd)
        raise FileExistsError(f"{self.path}: could not take the lock; try again")

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(self.fd)
            self.fd = None


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
    framer.max_scan = MAX_RECORD_CHARS  # a header with no end in sight: not a CSV file
    try:
        first = next(records, None)
    except FramingError as error:
        raise TableError(
            [f"{error} (is it a CSV file? its first line must name the columns)"], name
        ) from None
    framer.max_scan = MAX_SCAN_CHARS
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


class CsvWriter:
    """``csv.writer`` with ``\\n`` line ends that quotes a cell holding a carriage return.

    Python before 3.13 quotes only the characters of the line terminator, so with ``\\n`` a cell
    holding ``\\r`` was written bare and every reader split the row there. A row with a ``\\r``
    in any cell is written with every cell quoted (readers read the same values back).
    """

    def __init__(self, stream: IO[str]) -> None:
        self.minimal = csv.writer(stream, lineterminator="\n")
        self.quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, row: Sequence[Any]) -> None:
        if any(type(cell) is str and "\r" in cell for cell in row):
            self.quoted.writerow(row)
        else:
            self.minimal.writerow(row)

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writerow(row)


_MISSING: Any = object()
_JOINED_REMEMBERED = 8192


def _cell_text(value: Any) -> str | None:
    """A cell's text as `CsvWriter` writes it in a row of several cells (``csv.writer``,
    excel dialect: quoted when it holds a comma, a quote or a newline, quotes doubled), for
    text, whole numbers, flags and None; None for anything else or text holding a carriage
    return (`CsvWriter` quotes that whole row)."""
    kind = type(value)
    if kind is str:
        text: str = value
        if "\r" in text:
            return None
        if '"' in text:
            return '"' + text.replace('"', '""') + '"'
        if "," in text or "\n" in text:
            return '"' + text + '"'
        return text
    if value is None:
        return ""
    if kind is int or kind is bool:
        return str(value)
    return None


class _CsvSink:
    """Result rows into a CSV text stream; lists joined with ``;``."""

    def __init__(self, stream: IO[str], columns: Sequence[str], *, header: bool = True) -> None:
        self.stream = stream
        self.writer = CsvWriter(stream)
        self.lists = [i for i, name in enumerate(columns) if name in LIST_COLUMNS]
        self._is_list = [name in LIST_COLUMNS for name in columns]
        # The text of list cells, which repeat across rows (finding, exercise and not-assessed
        # lists); None: the cell needs the row written by `CsvWriter` (a carriage return).
        self._joined: dict[tuple[str, ...], str | None] = {}
        self._scratch = io.StringIO()
        self._exact = CsvWriter(self._scratch)
        if header:
            self.writer.writerow(columns)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        """The rows as `CsvWriter` writes them (lists joined with ``;``), in one write: each
        cell's text is made here for the cells a row holds (text, whole numbers, flags, None)
        and a row holding anything else, or a carriage return, goes through `CsvWriter`."""
        lines = []
        is_list = self._is_list
        width = len(is_list)
        for row in rows:
            if len(row) != width:
                lines.append(self._written(row))
                continue
            parts: list[str] = []
            for value, listed in zip(row, is_list, strict=True):
                text = self._list_text(value) if listed and value is not None else _cell_text(value)
                if text is None:
                    break
                parts.append(text)
            else:
                lines.append(",".join(parts) + "\n")
                continue
            lines.append(self._written(row))
        self.stream.write("".join(lines))

    def _list_text(self, value: Any) -> str | None:
        if type(value) is not tuple:
            return _cell_text(";".join(value))
        text: str | None = self._joined.get(value, _MISSING)
        if text is _MISSING:
            if len(self._joined) >= _JOINED_REMEMBERED:
                self._joined.clear()
            text = self._joined[value] = _cell_text(";".join(value))
        return text

    def _written(self, row: tuple[Any, ...]) -> str:
        """The row's line as `CsvWriter` writes it."""
        cells = list(row)
        for i in self.lists:
            if cells[i] is not None:
                cells[i] = ";".join(cells[i])
        scratch = self._scratch
        scratch.seek(0)
        scratch.truncate()
        self._exact.writerow(cells)
        return scratch.getvalue()

    def checkpoint(self) -> int:
        self.stream.flush()
        return self.stream.tell()


class _ParquetSink:
    """Result rows into numbered Parquet parts (one per chunk), merged into one file at the end."""

    def __init__(
        self, directory: Path, columns: Sequence[str], parts: int = 0, *, fresh: bool = True
    ) -> None:
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
        if fresh:  # whatever was there (a stale partial run, a link) goes; nothing written through
            if directory.is_symlink() or directory.is_file():
                directory.unlink()
            elif directory.is_dir():
                shutil.rmtree(directory)
            directory.mkdir()
        elif directory.is_symlink() or not directory.is_dir():
            raise ValueError(
                f"cannot resume: {directory} is not the partial run's folder; start again with "
                "overwrite=True"
            )
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
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            with contextlib.closing(self.pq.ParquetWriter(name, self.schema)) as writer:
                for part in sorted(self.directory.glob("part-*.parquet")):
                    writer.write_table(self.pq.read_table(part, schema=self.schema))
            _crash_point("parquet merged")
            os.replace(name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        _crash_point("parquet renamed")
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


# -- the input: opened once, read once --------------------------------------------------------


_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


@dataclass
class _Input:
    binary: IO[bytes]
    regular: bool
    """A regular file: it can be fingerprinted and read again to resume. A FIFO, pipe or
    process substitution (``<(zcat in.csv.gz)``) is read once, in a single pass."""
    identity: tuple[int, int] | None = None
    fingerprint: dict[str, Any] | None = None
    compression: str | None = None


def _open_source(path: Path, stack: contextlib.ExitStack) -> _Input:
    """Open the input once; its type is checked before any byte is read.

    A device (``/dev/zero``), a folder or a socket is refused. A regular file is fingerprinted
    from the opened file itself (its size, time and first 64 KiB, read without moving), so the
    fingerprint and the rows come from the same file; a FIFO is never opened twice.
    """
    name = str(path)
    try:
        before = os.stat(path)
    except FileNotFoundError:
        raise TableError([f"cannot read {_where(path)}: no such file"], name) from None
    except OSError as error:
        raise TableError([f"cannot read {_where(path)}: {error.strerror}"], name) from None
    _check_input_type(before, path)
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    except OSError as error:
        raise TableError([f"cannot read {_where(path)}: {error.strerror}"], name) from None
    st = os.fstat(fd)
    try:
        _check_input_type(st, path)
    except TableError:
        os.close(fd)
        raise
    binary = stack.enter_context(open(fd, "rb"))  # noqa: SIM115 (closed by the stack)
    if not stat.S_ISREG(st.st_mode):
        return _Input(binary, False)
    head = hashlib.sha256(os.pread(fd, 1 << 16, 0)).hexdigest()
    fingerprint = {
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "head": head,
    }
    return _Input(binary, True, _identity(st), fingerprint)


def _check_input_type(st: os.stat_result, path: Path) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return
    kind = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    raise TableError(
        [f"{_where(path)} is {kind}, not a CSV file (for standard input, give -)"], str(path)
    )


class _Decompressed(io.RawIOBase):
    """A compressed input read through its decompressor; damaged data is a `TableError`."""

    def __init__(self, stream: IO[bytes], kind: str, name: str) -> None:
        self.stream = stream
        self.kind = kind
        self.name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.stream.read(len(buffer))
        except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as error:
            raise TableError(
                [f"{self.name}: the {self.kind} data is damaged or cut short ({error})"],
                self.name,
            ) from None
        buffer[: len(data)] = data
        return len(data)


def _decompressed(source: _Input, name: str, stack: contextlib.ExitStack) -> _Input:
    """The input itself, or its decompressed bytes when it starts like gzip, bzip2, xz or zstd."""
    binary = source.binary
    head = binary.peek(6)[:6] if hasattr(binary, "peek") else b""
    kind = next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
    if kind is None:
        return source
    if kind == "bz2" and not head[3:4].isdigit():
        return source
    stream: Any
    if kind == "gzip":
        stream = gzip.GzipFile(fileobj=binary, mode="rb")
    elif kind == "bz2":
        stream = bz2.BZ2File(binary)
    elif kind == "xz":
        stream = lzma.LZMAFile(binary)  # noqa: SIM115 (closed by the stack)
    else:
        try:
            import zstandard  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise TableError(
                [
                    f"{name} is zstd-compressed: install the zstandard package, or give it "
                    f"decompressed (zstd -dc {name} | hipscreen batch - ...)"
                ],
                name,
            ) from None
        stream = zstandard.ZstdDecompressor().stream_reader(binary, read_across_frames=True)
    stack.callback(stream.close)
    reader = io.BufferedReader(_Decompressed(stream, kind, name), 1 << 16)
    return dataclasses.replace(source, binary=reader, compression=kind)


# -- the resume state ----------------------------------------------------------------------------


def _read_state(path: Path, expected: dict[str, Any]) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"nothing to resume: no interrupted run of this output ({path} is missing)"
        ) from None
    except ValueError:
        raise ValueError(f"{path} is damaged; start again with overwrite=True") from None
    for key, value in expected.items():
        if state.get(key) != value:
            raise ValueError(
                f"cannot resume: the {key.replace('_', ' ')} differs from the interrupted run's "
                f"({state.get(key)!r} then, {value!r} now); start again with overwrite=True"
            )
    return state


def _crash_point(step: str) -> None:
    """A point of the final publish where a crash must leave a run that can be finished (tests
    make this raise, one step at a time)."""


def _tally_file(path: Path, fmt: str) -> Tally:
    """The counts of a results file already written (a publish finished by ``resume``)."""
    tally = Tally()
    if fmt == "parquet":
        pq = optional_module("pyarrow.parquet", "pyarrow", "pandas")
        for row in pq.read_table(path).to_pylist():
            _count(tally, row)
        return tally
    with open(path, encoding="utf-8", newline="") as text:
        for row in csv.DictReader(text):
            _count(tally, row)
    return tally


def _publish(
    out_path: Path | None,
    errors_path: Path,
    state_path: Path | None,
    fmt: str,
    columns: Sequence[str],
) -> None:
    """Put the results, then the errors file, in place, then forget the run.

    Each step is a rename (or, for Parquet, a merge into a new file and a rename); the resume
    state says "publishing" before the first, so a run that dies between any two is finished
    by ``resume=True``: the steps not yet done are done.
    """
    _crash_point("publish started")
    if out_path is not None:
        partial = _partial(out_path)
        if fmt == "parquet":
            if partial.is_dir():
                _ParquetSink(partial, columns, _parts(partial), fresh=False).commit(out_path)
        elif partial.exists():
            os.replace(partial, out_path)
    _crash_point("results renamed")
    if _partial(errors_path).exists():
        os.replace(_partial(errors_path), errors_path)
    _crash_point("errors renamed")
    if state_path is not None:
        with contextlib.suppress(FileNotFoundError):
            state_path.unlink()


def _parts(directory: Path) -> int:
    return len(list(directory.glob("part-*.parquet")))


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
        workers: processes to screen in; more than this machine runs well (its CPUs, and its
            free memory at about 64 MB a worker) are capped to that, with a `UserWarning`, as
            ``hipscreen batch -j`` does.
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
        ValueError: an argument is out of range (``workers`` below 1 or far more than any
            machine runs, ``chunk_size`` below 1, ``cache_size`` below 0), or ``resume=True``
            cannot continue (the input is a stream, or the partial files do not match).
    """
    try:
        return _screen_csv(
            source,
            output,
            errors=errors,
            output_format=output_format,
            screener=screener,
            workers=workers,
            chunk_size=chunk_size,
            cache_size=cache_size,
            encoding=encoding,
            delimiter=delimiter,
            ignore_columns=ignore_columns,
            progress=progress,
            overwrite=overwrite,
            resume=resume,
        )
    except OSError as error:
        # A file that could not be written is named by `OutputError`; closing that file may
        # fail again on the way out (its buffer still full), with the bare error: say ours.
        named: BaseException | None = error
        while named is not None and not isinstance(named, OutputError):
            named = named.__context__
        if named is not None and named is not error:
            raise named from None
        raise


def _screen_csv(
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
    """`screen_csv` itself (its files' errors are sorted out by the caller)."""
    source_path = Path(source) if isinstance(source, str | os.PathLike) else None
    name = str(source_path) if source_path is not None else "input"
    out_path = Path(output) if isinstance(output, str | os.PathLike) else None
    fmt = output_format or ("parquet" if out_path and out_path.suffix == ".parquet" else "csv")
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"output_format must be 'csv' or 'parquet' (got {output_format!r})")
    if fmt == "parquet" and out_path is None:
        raise ValueError("Parquet output needs a file path, not a stream")
    if resume and (out_path is None or source_path is None):
        raise ValueError("resume needs the input and the results as files, not streams")
    # Every argument is checked before any file is made.
    for what, value, least in (
        ("workers", workers, 1),
        ("chunk_size", chunk_size, 1),
        ("cache_size", cache_size, 0),
    ):
        if type(value) is not int or value < least:
            raise ValueError(f"{what} must be a whole number ≥ {least} (got {value!r})")
    workers = bounded_workers(workers, stacklevel=3)  # the caller of `screen_csv`
    errors_path = Path(errors) if errors is not None else default_errors_path(out_path, source_path)
    rules = resolve_screener(screener)
    version = rules.ruleset_version
    _check_encoding(encoding)
    _check_targets(out_path, errors_path)
    locked = [errors_path] if out_path is None else [out_path, errors_path]
    locks = [_lock_path(path) for path in locked]
    _check_paths(source_path, out_path, errors_path, overwrite=True, resume=True, locks=locks)

    with contextlib.ExitStack() as stack:
        source_input: _Input
        if source_path is not None:
            source_input = _open_source(source_path, stack)
        else:
            assert not isinstance(source, str | os.PathLike)
            source_input = _Input(source, False)
        files = _Files([source_input.identity] if source_input.identity else [])
        for lock in locks:
            stack.enter_context(_Lock(lock, files))
        # What exists is checked under the locks: another run may have finished in between.
        _check_paths(
            source_path, out_path, errors_path, overwrite=overwrite, resume=resume, locks=locks
        )
        if resume and not source_input.regular:
            raise ValueError(
                f"cannot resume: the input {name} is a stream (a pipe or FIFO), read once; "
                "start again with overwrite=True"
            )
        source_input = _decompressed(source_input, name, stack)
        try:
            header, _, records = read_csv_records(
                source_input.binary, name, encoding=encoding, delimiter=delimiter
            )
        except FramingError as error:
            raise TableError([str(error)], name) from None
        reader = TableReader(header, source=name, ignore=ignore_columns)

        expected: dict[str, Any] = {}
        state: dict[str, Any] = {}
        resumable = source_input.regular and out_path is not None
        state_path = _state_path(out_path) if resumable and out_path is not None else None
        if state_path is not None:
            expected = {
                "version": _STATE_VERSION,
                "input": source_input.fingerprint,
                "ruleset": rules.ruleset.digest,
                "format": fmt,
                "errors": str(errors_path.resolve()),
                "reading": [encoding, delimiter, list(ignore_columns)],
            }
        if resume:
            assert state_path is not None
            state = _read_state(state_path, expected)
            if state.get("publishing"):
                # The run had finished and died while putting its files in place: finish that.
                _publish(out_path, errors_path, state_path, fmt, CSV_COLUMNS)
                assert out_path is not None
                tally = _tally_file(out_path, fmt)
                return CsvReport(tally.summary(version), out_path, errors_path, tally.rows)
        done = int(state.get("rows", 0))
        tally = Tally()

        # The errors file, then the results: partial files renamed into place at the end.
        errors_partial = _partial(errors_path)
        if resume:
            errors_fd = files.reopen(errors_partial)
            os.ftruncate(errors_fd, int(state["errors_bytes"]))
            os.lseek(errors_fd, 0, os.SEEK_END)
        else:
            errors_fd = files.create(errors_partial)
        error_stream = stack.enter_context(
            open(errors_fd, "w", encoding="utf-8", newline="", errors="surrogateescape")
        )
        error_writer = CsvWriter(error_stream)
        if not resume:
            error_writer.writerow(["row", "line", "error", *header])
        sink: _CsvSink | _ParquetSink
        if fmt == "parquet":
            assert out_path is not None
            sink = _ParquetSink(
                _partial(out_path), CSV_COLUMNS, int(state.get("output", 0)), fresh=not resume
            )
            if resume:
                sink.tally(tally)
        elif out_path is not None:
            partial = _partial(out_path)
            if resume:
                out_fd = files.reopen(partial)
                os.ftruncate(out_fd, int(state["output"]))
                with open(os.dup(out_fd), encoding="utf-8", newline="") as text:
                    for row in csv.DictReader(text):
                        _count(tally, row)
                os.lseek(out_fd, 0, os.SEEK_END)
            else:
                out_fd = files.create(partial)
            stream_out = stack.enter_context(open(out_fd, "w", encoding="utf-8", newline=""))
            sink = _CsvSink(stream_out, CSV_COLUMNS, header=not resume)
        else:
            assert not isinstance(output, str | os.PathLike)
            sink = _CsvSink(output, CSV_COLUMNS)
        if tally.rows != done:
            raise ValueError(
                f"cannot resume: the partial results hold {tally.rows:,} rows, the resume state "
                f"says {done:,}; start again with overwrite=True"
            )

        bar = progress_bar(progress, None, " rows", leave=True)
        if bar is not None and done:
            bar.update(done)
        written = done
        partials = [] if out_path is None else [_partial(out_path), errors_partial]

        checkpointed = [resume]  # whether a resume state is on disk: resume=True can go on

        def checkpoint(**extra: Any) -> None:
            if state_path is None:
                return
            with _writing(errors_partial, written, checkpointed):
                error_stream.flush()
            with _writing(state_path, written, checkpointed):
                files.write_json(
                    state_path,
                    {
                        **expected,
                        "rows": written,
                        "output": sink.checkpoint(),
                        "errors_bytes": error_stream.tell(),
                        "pid": os.getpid(),
                        **extra,
                    },
                )
            checkpointed[0] = True

        def rows() -> Iterator[TableRow]:
            try:
                for row, record in enumerate(records):
                    if row < done:
                        continue  # resuming: done in the interrupted run
                    failed = None
                    if record.problems:
                        problems = tuple(FieldProblem("", None, p) for p in record.problems)
                        failed = RowError(row, problems, record.line)
                    yield row, record.line, record.cells, failed
            except FramingError as error:
                raise TableError([str(error)], name) from None

        # Rows screened since the last checkpoint: (result row, errors-file row or None), one
        # append per row so an interrupt never leaves the two files out of step.
        pending: list[tuple[tuple[Any, ...], list[Any] | None]] = []

        def flush() -> None:
            """Write the pending rows to both files and checkpoint, with stop signals held."""
            nonlocal written, pending
            with stop_signals_held():
                with _writing(partials[0] if partials else None, written, checkpointed):
                    sink.write([result for result, _ in pending])
                with _writing(errors_partial, written, checkpointed):
                    error_writer.writerows(failed for _, failed in pending if failed is not None)
                if bar is not None:
                    bar.update(len(pending))
                written += len(pending)
                pending = []
                checkpoint()

        if not resume and state_path is not None:
            with _writing(partials[0], written, checkpointed):
                sink.checkpoint()
            checkpoint()  # the run is on disk from its start: resume=True can continue it
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
                    check_stop()  # a stop signal whose own interrupt was lost stops the run here
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
                flush()
                check_stop()  # never put results in place after a stop signal
                if out_path is not None:
                    with _writing(partials[0], written, checkpointed):
                        sink.checkpoint()  # on disk before the publish starts
                    checkpoint(publishing=True)
        except TableError:
            # The input broke off part-way (a damaged compressed stream, a row with no end): a
            # rerun would stop at the same place, so the run's own files go; nothing is kept
            # that could look like results.
            stack.close()
            for own in [*partials, *([state_path] if state_path is not None else [])]:
                with contextlib.suppress(FileNotFoundError):
                    if own.is_dir() and not own.is_symlink():
                        shutil.rmtree(own)
                    else:
                        own.unlink()
            raise
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
            raise BatchInterrupted(reason, written, partials, resumable=resumable) from stop
        finally:
            if bar is not None:
                bar.close()
        # The whole input is done: put the results in place, then forget the partial run.
        with _writing(out_path or errors_path, written, checkpointed):
            if isinstance(sink, _ParquetSink):
                assert out_path is not None
                sink.commit(out_path)
                _publish(None, errors_path, state_path, fmt, CSV_COLUMNS)
            else:
                error_stream.flush()
                _publish(out_path, errors_path, state_path, fmt, CSV_COLUMNS)
    return CsvReport(tally.summary(version), out_path, errors_path, done)


@contextlib.contextmanager
def _writing(path: Path | None, rows: int, resumable: list[bool]) -> Iterator[None]:
    """An `OSError` writing ``path`` (disk full, no permission) says which file, and what now."""
    try:
        yield
    except OutputError:
        raise
    except OSError as error:
        where = path if path is not None else Path("the output stream")
        raise _cannot(where, "write", error, rows=rows, resumable=resumable[0]) from None
