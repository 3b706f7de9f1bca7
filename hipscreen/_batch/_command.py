"""The ``hipscreen batch`` command: screen a CSV file of intake forms into CSV or Parquet.

Exit status: 0 every row was screened, 1 some rows failed (they are in the errors file), 2 the file
could not be screened at all (empty, unknown columns, not text), the arguments are wrong, or the
output exists; 3 a worker process died; 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). An
interrupted run keeps its partial results and continues with ``--resume``.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hipscreen._batch._frames import RECORD_CACHE_SIZE
from hipscreen._batch._outcomes import BatchInterrupted
from hipscreen._batch._pipeline import (
    DEFAULT_CHUNK_SIZE,
    capped_workers,
    settled_heap,
    worker_cap,
)
from hipscreen._batch._signals import stopping_on_signals
from hipscreen._batch._stream import screen_csv
from hipscreen._batch._tables import TableError
from hipscreen._screen import Screener, default_screener

__all__ = ["register", "run"]

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_FILE_ERROR = 2
EXIT_WORKER_DIED = 3
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM

AUTO_WORKERS_FROM_BYTES = 4 * 2**20
"""``--workers auto`` uses every CPU from this input size up (smaller files: one process)."""

DESCRIPTION = """\
Screen a CSV file of intake forms, one form per row, streaming in chunks (a file larger than
memory works). Columns are form field paths: client_id, age, tightness.iliopsoas,
tightness.iliopsoas.left, strength.gluteus_maximus, symptoms ("knee_pain;hip_pain") or one yes/no
column per symptom (symptoms.knee_pain), rom.hip_flexion, ... An empty cell means "not given",
never "normal".

The output has one row per input row, in order: row (from 0), line, client_id, ok, error,
finding_ids, highest_severity, referral_urgency, exercise_ids, not_assessed, ruleset_version.
Failed rows also go to the errors file with every problem and their original cells, so nothing
is lost. Results are written to NAME.partial and renamed when the whole file is done; an
interrupted run keeps them and continues with --resume. Existing results are replaced only
with --force.

Exit status: 0 all rows screened, 1 some rows failed, 2 the file could not be screened (or the
output exists), 3 a worker process died, 130/143 interrupted or terminated."""

ScreenerFrom = Callable[[argparse.Namespace], Screener]


def register(
    subparsers: Any,
    *,
    rule_options: Callable[[argparse.ArgumentParser], None] | None = None,
    screener_from: ScreenerFrom | None = None,
) -> None:
    """Add the ``batch`` subcommand to an argparse subparsers object.

    Args:
        subparsers: what ``add_subparsers`` returned.
        rule_options: adds ``--rules``, ``--extra-rules`` and ``--threshold`` (the ``hipscreen``
            command's own, so they mean the same as on ``hipscreen assess``).
        screener_from: builds the screener from the parsed rule options.

    The subcommand's ``func`` default takes the parsed arguments and returns the exit status.
    """
    parser = subparsers.add_parser(
        "batch",
        help="screen a CSV file of intake forms into CSV or Parquet",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="the CSV file of intake forms ('-' for standard input)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="where the results go: a .csv or .parquet file, or '-' for standard output",
    )
    parser.add_argument(
        "--errors",
        metavar="PATH",
        help="where failed rows go (CSV); default: beside the output, out.jan.csv → "
        "out.jan.errors.csv",
    )
    parser.add_argument(
        "--format", choices=["csv", "parquet"], help="output format (default: from the suffix)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace existing results and errors files"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run (same input, output and options) from its last "
        "complete chunk",
    )
    parser.add_argument(
        "-j",
        "--workers",
        default="auto",
        help="processes to screen in: a number, or 'auto' (every CPU for inputs over 4 MB)",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="rows read at a time"
    )
    parser.add_argument(
        "--cache-size",
        type=int,
        default=RECORD_CACHE_SIZE,
        help=(
            f"distinct rows to remember ({RECORD_CACHE_SIZE:,}; 0: no cache). The cache goes "
            "quiet by itself while rows do not repeat"
        ),
    )
    parser.add_argument("--encoding", default="utf-8", help="the input's encoding (utf-8)")
    parser.add_argument("--delimiter", default=",", help="the input's cell separator (,)")
    parser.add_argument(
        "--ignore-column",
        action="append",
        default=[],
        metavar="NAME",
        help="an input column that is not intake data (repeat for several)",
    )
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show a progress bar (default: when standard error is a terminal)",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    if rule_options is not None:
        rule_options(parser)
    parser.set_defaults(func=lambda args: run(args, screener_from))


def _workers(value: str, source: Path | None) -> int:
    if value == "auto":
        try:
            size = source.stat().st_size if source is not None else 0
        except OSError:
            size = 0
        return worker_cap()[0] if size >= AUTO_WORKERS_FROM_BYTES else 1
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) > 12:
        raise ValueError(
            f"--workers {text[:20]}{'…' if len(text) > 20 else ''} is far more processes than any "
            f"machine runs (this one: at most {worker_cap()[0]}); give a number or 'auto'"
        )
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise ValueError(f"--workers must be a whole number ≥ 1 or 'auto' (got {shown!r})")
    workers, capped = capped_workers(int(text))
    if capped is not None:
        print(f"hipscreen batch: {for_command_line(capped)}", file=sys.stderr)
    return workers


# The library's messages name its keyword arguments; on the command line they are options.
_OPTION_WORDS = (
    ("overwrite=True", "--force"),
    ("resume=True", "--resume"),
    ("chunk_size must", "--chunk-size must"),
    ("cache_size must", "--cache-size must"),
    ("workers=", "--workers "),
)


def for_command_line(message: str) -> str:
    """A library message in the command's words: ``overwrite=True`` → ``--force``."""
    for keyword, option in _OPTION_WORDS:
        message = message.replace(keyword, option)
    return message


def run(args: argparse.Namespace, screener_from: ScreenerFrom | None = None) -> int:
    """Run ``hipscreen batch`` with parsed arguments; returns the exit status."""
    source: Path | None = None if args.input == "-" else Path(args.input)
    to_stdout = args.output == "-"
    report_stream = sys.stderr if to_stdout else sys.stdout
    progress = args.progress
    has_tqdm = importlib.util.find_spec("tqdm") is not None
    wanted_bar = progress is True or (progress is None and sys.stderr.isatty())
    progress = wanted_bar and has_tqdm
    screener = screener_from(args) if screener_from is not None else default_screener()
    try:
        workers = _workers(args.workers, source)
        with stopping_on_signals() as stopped, settled_heap():
            report = screen_csv(
                source if source is not None else sys.stdin.buffer,
                sys.stdout if to_stdout else args.output,
                errors=args.errors,
                output_format=args.format,
                screener=screener,
                workers=workers,
                chunk_size=args.chunk_size,
                cache_size=args.cache_size,
                encoding=args.encoding,
                delimiter=args.delimiter,
                ignore_columns=args.ignore_column,
                progress=progress,
                overwrite=args.force,
                resume=args.resume,
            )
    except BatchInterrupted as stop:
        lines = [f"hipscreen batch: {stop.reason}: stopped after {stop.rows_done:,} rows."]
        if stop.partial:
            lines.append(
                "partial results (marked .partial, not complete): "
                + ", ".join(map(str, stop.partial))
            )
            lines.append(
                "continue with the same command and --resume"
                if stop.resumable
                else "the input is a stream (read once): run again from the start with --force"
            )
        print("\n".join(lines), file=sys.stderr)
        if "worker" in stop.reason:
            return EXIT_WORKER_DIED
        return EXIT_TERMINATED if "SIGTERM" in stop.reason else EXIT_INTERRUPTED
    except KeyboardInterrupt as stop:
        # Before the first row, or while the finished results were put in place.
        reason = str(stop.args[0]) if stop.args else "interrupted (Ctrl-C)"
        print(
            f"hipscreen batch: {reason} before screening started or while the results were put "
            "in place; run the same command again (it says whether --resume is needed)",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if "SIGTERM" in reason else EXIT_INTERRUPTED
    except (TableError, ImportError, OSError, ValueError) as error:
        print(f"hipscreen batch: {for_command_line(str(error))}", file=sys.stderr)
        return EXIT_FILE_ERROR
    summary = report.summary
    if wanted_bar and not has_tqdm:
        print(
            f"hipscreen batch: {summary.rows:,} rows (for a progress bar: "
            "pip install 'hipscreen[progress]')",
            file=sys.stderr,
        )
    print(summary, file=report_stream)
    if report.resumed_from:
        print(f"resumed: {report.resumed_from:,} rows were done before", file=report_stream)
    where = report.output if report.output is not None else "standard output"
    print(f"results: {where} ({summary.rows:,} rows done)", file=report_stream)
    if summary.failed:
        print(
            f"failed rows: {report.errors} ({summary.failed:,} rows, with their problems)",
            file=report_stream,
        )
        code = EXIT_ROWS_FAILED
    else:
        code = EXIT_OK
    if stopped.signum is not None:
        # The signal's own interrupt was lost after the last row, while the results were put in
        # place: they are complete, and the exit status still says the run was stopped.
        print(
            f"hipscreen batch: {stopped.reason} as the run finished; every row was screened "
            "and the results are complete",
            file=sys.stderr,
        )
        return stopped.exit_status
    return code
