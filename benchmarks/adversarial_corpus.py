#!/usr/bin/env python3
"""Run hostile inputs through every command door and check the promises hold for each.

Run from the repository root::

    .venv/bin/python benchmarks/adversarial_corpus.py                 # the built-in corpus
    .venv/bin/python benchmarks/adversarial_corpus.py FILE_OR_DIR ... # your own files too
    .venv/bin/python benchmarks/adversarial_corpus.py --make DIR      # write the corpus out

Each input goes through the doors that take it, as a child process with a timeout:

* a ``.csv`` (or ``.csv.gz``/``.bz2``/``.xz``) file, a FIFO or a device: ``hipscreen batch``;
* a ``.json`` file: ``hipscreen assess`` and ``hipscreen compare``;
* a folder with ``findings/`` or ``ruleset.yaml``: ``hipscreen rules check`` and
  ``hipscreen assess --extra-rules``.

The promises checked for every run: it ends within the timeout; its exit status is a documented
one (0, 1 or 2: never 3, "internal error", nor death by a signal); nothing on standard error is a
traceback or longer than 20 KB; and for a batch run, every record is accounted for: the results
have rows 0, 1, 2, … with no gap, the failed ones (``ok`` false) are exactly the errors file's
rows, and a refused run (exit 2) leaves no results, partial files or lock behind.

Prints one line per run and a summary; exit status 1 when any promise is broken.
Not a pytest test (``tests/test_batch_adversarial.py`` runs it on the built-in corpus).
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import json
import lzma
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED_EXITS = {0, 1, 2}
MAX_STDERR = 20_000


def corpus() -> dict[str, bytes]:
    """The built-in hostile inputs: every case of issues 11, 19 and 25 that a file can carry."""
    header = "client_id,age,tightness.iliopsoas,symptoms\n"
    good = "".join(f"c{i},{20 + i % 60},{i % 4},knee_pain\n" for i in range(50))
    cases = {
        "plain.csv": header + good,
        "cr-in-quoted-cell.csv": header + 'a,40,1,"knee_pain\rhip_pain"\n' + good,
        "lone-cr-line-ends.csv": header.replace("\n", "\r") + good.replace("\n", "\r"),
        "long-client-ids.csv": header
        + f"{'A' * 5000}x,40,1,\n{'A' * 5000}y,41,1,\n{'C' * 300},30,,\n",
        "unclosed-quote.csv": header + 'a,40,"1,\n' + good,
        "nul-bytes.csv": header + "a,4\x000,1,\n" + good,
        "bad-utf8.csv": header + "a,40,\udcff,\n" + good,
        "unknown-column-flood.csv": ",".join(f"col{i}" for i in range(10_000)) + "\n1\n",
        "more-cells-than-header.csv": header + "a,40,1,knee_pain,extra,extra\n" + good,
        "empty.csv": "",
        "blank-header.csv": "\n" + header + good,
        "huge-number-cell.csv": header + f"a,{'9' * 5000},1,\n" + good,
        "formula-cells.csv": header + "=cmd|' /C calc'!A0,40,1,\n" + good,
        "utf16.csv": "",
        "deep.json": "[" * 100_000,
        "huge-int.json": '{"age": ' + "9" * 5000 + "}",
        "nan.json": '{"age": NaN}',
        "duplicate-key.json": '{"age": 40, "age": 41}',
        "not-an-object.json": "[1, 2, 3]",
        "lone-surrogate.json": '{"client_id": "\\ud800"}',
    }
    data = {name: text.encode("utf-8", "surrogateescape") for name, text in cases.items()}
    data["utf16.csv"] = (header + good).encode("utf-16")
    data["plain.csv.gz"] = gzip.compress(data["plain.csv"])
    data["plain.csv.bz2"] = bz2.compress(data["plain.csv"])
    data["plain.csv.xz"] = lzma.compress(data["plain.csv"])
    data["truncated.csv.gz"] = gzip.compress(data["plain.csv"] * 20)[:300]
    many = data["plain.csv"] + b"".join(data["plain.csv"].split(b"\n", 1)[1] for _ in range(400))
    data["truncated-late.csv.gz"] = gzip.compress(many)[: len(gzip.compress(many)) // 2]
    return data


def make(directory: Path) -> list[Path]:
    """Write the built-in corpus into ``directory`` (a FIFO and rule folders included)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in corpus().items():
        path = directory / name
        path.write_bytes(data)
        paths.append(path)
    fifo_rules = directory / "rules-fifo"
    (fifo_rules / "findings").mkdir(parents=True, exist_ok=True)
    fifo = fifo_rules / "findings" / "x.yaml"
    if not fifo.exists() and hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
    big_rules = directory / "rules-big-file"
    (big_rules / "findings").mkdir(parents=True, exist_ok=True)
    (big_rules / "findings" / "big.yaml").write_text("# pad\n" * 110_000)
    no_findings = directory / "rules-no-findings"
    no_findings.mkdir(exist_ok=True)
    (no_findings / "README.md").write_text("not rules\n")
    return [*paths, fifo_rules, big_rules, no_findings]


@dataclass
class Result:
    door: str
    target: str
    code: int | None
    problems: list[str] = field(default_factory=list)


def _run(argv: list[str], timeout: float, stdin: int | None = None) -> tuple[int | None, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hipscreen", *argv],
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stderr.decode("utf-8", "replace")


def _common(result: Result, err: str) -> Result:
    if result.code is None:
        result.problems.append("did not end within the timeout")
    elif result.code < 0:
        result.problems.append(f"killed by {signal.Signals(-result.code).name}")
    elif result.code not in DOCUMENTED_EXITS:
        result.problems.append(f"exit status {result.code} (not 0, 1 or 2)")
    if "Traceback" in err or "internal error" in err:
        result.problems.append("a traceback or internal error: " + err.strip()[-200:])
    if len(err) > MAX_STDERR:
        result.problems.append(f"{len(err):,} characters on standard error (a flood)")
    return result


def check_batch(target: Path, timeout: float, feed: bool = False) -> Result:
    """``hipscreen batch`` on one input; every record accounted for, or nothing left behind."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out.csv"
        argv = ["batch", str(target), "-o", str(out), "-j", "1", "--no-progress"]
        feeder = None
        if feed:  # a FIFO: fed by a thread, as a shell's process substitution is
            feeder = threading.Thread(target=_feed, args=(target,), daemon=True)
            feeder.start()
        code, err = _run(argv, timeout)
        result = _common(Result("batch", str(target), code), err)
        if code in (0, 1):
            result.problems += _accounted(out, out.with_name("out.errors.csv"))
        elif code == 2:
            left = sorted(p.name for p in Path(scratch).iterdir())
            if left:
                result.problems.append(f"refused, but left files behind: {left}")
        if feeder is not None:
            feeder.join(1)
    return result


def _feed(fifo: Path) -> None:
    try:
        with open(fifo, "wb") as writer:
            writer.write(corpus()["plain.csv"])
    except OSError:
        pass


def _accounted(out: Path, errors: Path) -> list[str]:
    problems = []
    with open(out, newline="", encoding="utf-8", errors="replace") as stream:
        rows = list(csv.DictReader(stream))
    with open(errors, newline="", encoding="utf-8", errors="replace") as stream:
        failed = list(csv.DictReader(stream))
    numbers = [int(row["row"]) for row in rows]
    if numbers != list(range(len(rows))):
        problems.append("the results' row numbers are not 0, 1, 2, … without a gap")
    not_ok = [row["row"] for row in rows if row["ok"] != "True"]
    if not_ok != [row["row"] for row in failed]:
        problems.append(
            f"{len(not_ok)} failed rows in the results, {len(failed)} in the errors file"
        )
    return problems


def check_json(target: Path, timeout: float) -> list[Result]:
    results = []
    for door, argv in (
        ("assess", ["assess", str(target)]),
        ("compare", ["compare", str(target), str(target)]),
    ):
        code, err = _run(argv, timeout)
        results.append(_common(Result(door, str(target), code), err))
    return results


def check_rules(target: Path, timeout: float) -> list[Result]:
    results = []
    code, err = _run(["rules", "check", str(target)], timeout)
    results.append(_common(Result("rules check", str(target), code), err))
    with tempfile.TemporaryDirectory() as scratch:
        form = Path(scratch) / "form.json"
        form.write_text("{}")
        code, err = _run(["assess", str(form), "--extra-rules", str(target)], timeout)
        result = _common(Result("assess --extra-rules", str(target), code), err)
        if code == 0:
            result.problems.append("hostile extra rules were accepted")
        results.append(result)
    return results


def targets(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        rules = path.name.startswith("rules-") or (path / "findings").exists()
        if path.is_dir() and not (rules or (path / "ruleset.yaml").exists()):
            yield from targets(sorted(path.iterdir()))
        else:
            yield path


def check(path: Path, timeout: float) -> list[Result]:
    if path.is_dir():
        return check_rules(path, timeout)
    if path.suffix == ".json":
        return check_json(path, timeout)
    return [check_batch(path, timeout, feed=path.is_fifo())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="more inputs (files or folders)")
    parser.add_argument("--make", type=Path, metavar="DIR", help="write the built-in corpus")
    parser.add_argument("--timeout", type=float, default=60, help="seconds per run (60)")
    parser.add_argument("--no-builtin", action="store_true", help="only the paths given")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.make:
        for path in make(args.make):
            print(path)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        paths = list(args.paths)
        if not args.no_builtin:
            paths.append(Path(scratch) / "builtin")
            make(paths[-1])
            device = Path("/dev/zero")
            if device.exists():
                paths.append(device)
        results = [result for path in targets(paths) for result in check(path, args.timeout)]
        broken = [result for result in results if result.problems]
        for result in results:
            mark = "FAIL" if result.problems else "ok  "
            name = result.target.replace(scratch, "<corpus>")
            print(f"{mark} {result.door:<22} exit {result.code!s:<4} {name}")
            for problem in result.problems:
                print(f"       - {problem}")
        print(f"{len(results)} runs, {len(broken)} with a broken promise")
        if args.output:
            args.output.write_text(
                json.dumps([result.__dict__ for result in results], indent=2), encoding="utf-8"
            )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
