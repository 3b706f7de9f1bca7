"""CSV framing: a byte stream cut into records with their line numbers, or framing errors.

The cut follows Python's ``csv`` module (and pandas): a record ends at ``\\n``, ``\\r\\n`` or a
lone ``\\r`` outside quotes; a quoted cell may hold delimiters, quotes (doubled) and line breaks.
Where ``csv`` would go wrong silently, the framer reports instead, with line numbers:

- a record larger than `MAX_RECORD_CHARS` is one failed row (its cells are not kept), however
  many lines its quoted cell spans: nothing inside it is read as further records;
- a quote never closed before the end of the file fails the row it opens in, and reading goes
  on from the next line, so the rest of the file is not swallowed into one cell;
- a lone carriage return ends a record (as ``csv`` and pandas read it) and is reported on the
  rows it splits, since it often means a damaged line;
- a line that is not valid text in the file's encoding fails the rows on it (its bytes are
  kept, for the errors file).
"""

from __future__ import annotations

import codecs
import collections
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import IO

__all__ = ["MAX_RECORD_CHARS", "MAX_SCAN_CHARS", "Framer", "FramingError", "RawRecord"]

MAX_RECORD_CHARS = 1 << 20
"""The largest record read, in characters (1 Mi; ``csv``'s own limit is 128 Ki per cell)."""

MAX_SCAN_CHARS = 64 << 20
"""How far the framer reads through one record over `MAX_RECORD_CHARS` looking for its end (64 Mi
characters) before it gives the file up: a device, a file that never ends (``/dev/zero``) or a
file with no line ends is refused instead of read for ever."""


class FramingError(ValueError):
    """The stream cannot be cut into records at all (a record runs on past `MAX_SCAN_CHARS`)."""


_START_RECORD, _START_FIELD, _IN_FIELD, _IN_QUOTED, _QUOTE_IN_QUOTED = range(5)


@dataclass
class RawRecord:
    """One record as framed: where it is, its cells, and what went wrong reading it."""

    line: int
    """The line it starts on (from 1)."""
    end_line: int
    cells: list[str]
    problems: list[str] = field(default_factory=list)
    readable: bool = True
    """False when the record could not be cut out at all (its cells are not kept)."""


class _Line:
    __slots__ = ("cut", "number", "offset", "raw")

    def __init__(self, number: int, offset: int, raw: bytes, cut: bool) -> None:
        self.number = number
        self.offset = offset
        self.raw = raw
        self.cut = cut


class Framer:
    """Cuts a binary CSV stream into `RawRecord` s, in order, each record exactly once.

    Args:
        binary: the file, opened in binary mode.
        encoding: the text encoding (ASCII-compatible).
        delimiter: the cell separator (one character).
    """

    def __init__(self, binary: IO[bytes], encoding: str = "utf-8", delimiter: str = ",") -> None:
        self.binary = binary
        self.encoding = encoding
        self.delimiter = delimiter
        self.bytes_read = 0
        self.line = 0
        """The last line read (from 1)."""
        self._pushed: collections.deque[_Line] = collections.deque()
        self._special = re.compile(f"[{re.escape(delimiter)}\r\n]")
        self._first = True
        self.max_scan = MAX_SCAN_CHARS
        """Characters read through an oversized record before giving up (the header: less)."""
        try:
            self._seekable = bool(binary.seekable())
        except (AttributeError, OSError, ValueError):
            self._seekable = False

    def _next_line(self) -> _Line | None:
        if self._pushed:
            line = self._pushed.popleft()
            self.line = line.number
            return line
        offset = self.bytes_read
        raw = self.binary.readline(MAX_RECORD_CHARS + 1)
        if not raw:
            return None
        self.bytes_read += len(raw)
        number = self.line + 1
        if raw.endswith(b"\n"):
            self.line = number
            return _Line(number, offset, raw, False)
        # A piece of a line longer than any record may be, or the last line without a newline.
        cut = len(raw) > MAX_RECORD_CHARS
        if not cut:
            self.line = number
        return _Line(number, offset, raw, cut)

    def records(self) -> Iterator[RawRecord]:
        """Every record of the stream, in order (blank lines are not records)."""
        again = True
        while again:
            again = yield from self._pass()

    def _decode(self, line: _Line, quiet: bool, problems: list[str]) -> str:
        raw = line.raw
        if self._first:
            self._first = False
            if raw.startswith(codecs.BOM_UTF8) and self.encoding == "utf-8":
                raw = raw[len(codecs.BOM_UTF8) :]
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError as error:
            if not quiet:
                bad = raw[error.start : error.start + 1]
                problems.append(
                    f"line {line.number} is not valid {self.encoding} text (byte 0x{bad.hex()} "
                    f"at position {error.start + 1}); save the file as UTF-8 or give its encoding"
                )
            # surrogateescape keeps the original bytes: the errors file writes them back.
            return raw.decode(self.encoding, "surrogateescape")

    def _pass(self) -> Generator[RawRecord, None, bool]:
        """Frame until the end of the stream; True when some lines must be framed again."""
        delimiter, special = self.delimiter, self._special
        state = _START_RECORD
        cells: list[str] = []
        piece: list[str] = []
        size = start = last = 0
        problems: list[str] = []
        kept: list[_Line] = []  # the raw lines of the record in progress, to read again
        oversized = False
        resume: int | None = None

        def finish(end: int) -> RawRecord:
            nonlocal cells, piece, size, problems, kept, oversized, resume
            if oversized:
                where = f"line {start}" if end == start else f"lines {start}–{end}"
                problem = (
                    f"{where}: the row is over {MAX_RECORD_CHARS:,} characters (a quoted cell "
                    "spanning lines, or a damaged file); it was not read"
                )
                record = RawRecord(start, end, [], [problem, *problems], readable=False)
            else:
                record = RawRecord(start, end, cells, problems)
            cells, piece, size, problems, kept = [], [], 0, [], []
            oversized, resume = False, None
            return record

        while (line := self._next_line()) is not None:
            last = line.number
            if state == _START_RECORD:
                start = line.number
                kept = []
            if not oversized:
                kept.append(line)
            elif resume is None and line.number > start:
                resume = line.offset
            text = self._decode(line, line.cut or oversized, problems)
            if (
                state == _START_RECORD
                and not problems
                and not line.cut
                and len(text) <= MAX_RECORD_CHARS
                and '"' not in text
            ):
                # The common line: one whole record without quotes. Cut it at the delimiters
                # (exactly what the loop below would do, several times faster).
                body = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
                if "\r" not in body:
                    if body:
                        yield RawRecord(line.number, line.number, body.split(delimiter), [])
                    continue
            i, n = 0, len(text)
            while i < n:
                if state == _IN_QUOTED:
                    j = text.find('"', i)
                    if j < 0:
                        j = n
                    if not oversized:
                        piece.append(text[i:j])
                    size += j - i
                    i = j + 1
                    if j < n:
                        state = _QUOTE_IN_QUOTED
                    continue
                c = text[i]
                if c == '"' and state in (_START_RECORD, _START_FIELD):
                    state = _IN_QUOTED
                    i += 1
                    continue
                if c == '"' and state == _QUOTE_IN_QUOTED:
                    if not oversized:
                        piece.append('"')
                    size += 1
                    state = _IN_QUOTED
                    i += 1
                    continue
                if state == _START_RECORD and c in "\r\n":
                    # A blank line (or the end of a line cut by a lone CR): not a record.
                    i += 2 if text.startswith("\r\n", i) else 1
                    start = line.number
                    continue
                match = special.search(text, i)
                j = n if match is None else match.start()
                if not oversized:
                    piece.append(text[i:j])
                size += j - i
                if match is None:
                    state = _IN_FIELD
                    break
                if not oversized:
                    cells.append("".join(piece))
                piece = []
                if text[j] == delimiter:
                    state = _START_FIELD
                    i = j + 1
                    continue
                crlf = text.startswith("\r\n", j)
                i = j + (2 if crlf else 1)
                state = _START_RECORD
                if text[j] == "\r" and not crlf and i < n:
                    note = (
                        f"line {line.number} has a carriage return (\\r) with no line feed after "
                        "it: the line was cut into two rows there (old Mac line ends, or a "
                        "damaged line)"
                    )
                    problems.append(note)
                    yield finish(line.number)
                    start = line.number
                    kept = [line]
                    problems.append(note)
                    continue
                yield finish(line.number)
                start = line.number
                kept = [line]
            if size > MAX_RECORD_CHARS and not oversized and state != _START_RECORD:
                oversized = True
                cells, piece = [], []
                resume = kept[1].offset if len(kept) > 1 else None
                kept = []
            if oversized and size > self.max_scan:
                raise FramingError(
                    f"line {start}: no end of the row in the next {self.max_scan:,} characters "
                    "(a device, a file that never ends, or not a CSV file); reading stopped"
                )
        # The end of the stream.
        if state == _IN_QUOTED:
            return (yield from self._unclosed(start, last, kept, resume))
        if state != _START_RECORD:
            if not oversized:
                cells.append("".join(piece))
            yield finish(last)
        return False

    def _unclosed(
        self, start: int, last: int, kept: list[_Line], resume: int | None
    ) -> Generator[RawRecord, None, bool]:
        """A quote opened on line ``start`` never closes: fail that row, read on after it."""
        message = (
            f'line {start}: a quote (") opened in this row is never closed before the end of '
            "the file; the row was not read, reading went on from the next line"
        )
        if len(kept) > 1:
            yield RawRecord(start, start, [], [message], readable=False)
            self._pushed.extendleft(reversed(kept[1:]))
            return True
        if resume is not None and self._seekable:
            yield RawRecord(start, start, [], [message], readable=False)
            self.binary.seek(resume)
            self.bytes_read = resume
            self.line = start
            return True
        if resume is None:
            yield RawRecord(start, start, [], [message], readable=False)
            return False
        yield RawRecord(
            start,
            last,
            [],
            [
                f'lines {start}–{last}: a quote (") opened on line {start} is never closed; '
                "these lines could not be read (the input cannot be read twice: give a file)"
            ],
            readable=False,
        )
        return False
