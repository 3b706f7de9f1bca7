"""The ``hipscreen batch`` command: screen a CSV file of intake forms into CSV or Parquet.

Exit status: 0 every row was screened, 1 some rows failed (they are in the errors file), 2 the file
could not be screened at all (empty, unknown columns, not text) or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from hipscreen._batch import DEFAULT_CHUNK_SIZE, screen_csv
from hipscreen._columns import TableError

__all__ = ["register", "run"]

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_FILE_ERROR = 2

AUTO_WORKERS_FROM_BYTES = 4 * 2**20
"""``--workers auto`` uses every CPU from this input size up (smaller files: one process)."""

DESCRIPTION = """\
Screen a CSV file of intake forms, one form per row, streaming in chunks (a file larger than
memory works). Columns are form field paths: client_id, age, tightness.iliopsoas,
tightness.iliopsoas.left, strength.gluteus_maximus, symptoms ("knee_pain;hip_pain") or one yes/no
column per symptom (symptoms.knee_pain), rom.hip_flexion, ... An empty cell means "not given",
never "normal".

The output has one row per input row, in order: row, line, client_id, ok, error, finding_ids,
highest_severity, referral_urgency, exercise_ids, not_assessed, ruleset_version. Failed rows also go
to the errors file with every problem and their original cells, so nothing is lost.

Exit status: 0 all rows screened, 1 some rows failed, 2 the file could not be screened."""


def register(subparsers: Any) -> None:
    """Add the ``batch`` subcommand to an argparse subparsers object.

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
        help="where failed rows go (CSV); default: beside the output as NAME.errors.csv",
    )
    parser.add_argument(
        "--format", choices=["csv", "parquet"], help="output format (default: from the suffix)"
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
    parser.set_defaults(func=run)


def _workers(value: str, source: Path | None) -> int:
    if value == "auto":
        size = source.stat().st_size if source is not None and source.exists() else 0
        return (os.cpu_count() or 1) if size >= AUTO_WORKERS_FROM_BYTES else 1
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ValueError(f"--workers must be a whole number ≥ 1 or 'auto' (got {value!r})")
    return workers


def run(args: argparse.Namespace) -> int:
    """Run ``hipscreen batch`` with parsed arguments; returns the exit status."""
    source: Path | None = None if args.input == "-" else Path(args.input)
    to_stdout = args.output == "-"
    report_stream = sys.stderr if to_stdout else sys.stdout
    progress = args.progress
    if progress is None:
        progress = sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None
    try:
        workers = _workers(args.workers, source)
        report = screen_csv(
            source if source is not None else sys.stdin.buffer,
            sys.stdout if to_stdout else args.output,
            errors=args.errors,
            output_format=args.format,
            workers=workers,
            chunk_size=args.chunk_size,
            encoding=args.encoding,
            delimiter=args.delimiter,
            ignore_columns=args.ignore_column,
            progress=progress,
        )
    except TableError as error:
        print(f"hipscreen batch: {error}", file=sys.stderr)
        return EXIT_FILE_ERROR
    except (ImportError, OSError, ValueError) as error:
        print(f"hipscreen batch: {error}", file=sys.stderr)
        return EXIT_FILE_ERROR
    summary = report.summary
    print(summary, file=report_stream)
    where = report.output if report.output is not None else "standard output"
    print(f"results: {where}", file=report_stream)
    if summary.failed:
        print(
            f"failed rows: {report.errors} ({summary.failed:,} rows, with their problems)",
            file=report_stream,
        )
        return EXIT_ROWS_FAILED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m hipscreen._batch_cli``: the batch command on its own."""
    parser = argparse.ArgumentParser(prog="hipscreen")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
