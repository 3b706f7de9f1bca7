#!/usr/bin/env python3
"""Benchmark batch screening: forms per second and peak memory, at a million forms.

Run from the repository root::

    .venv/bin/python benchmarks/bench_batch.py                  # 1,000,000 realistic forms
    .venv/bin/python benchmarks/bench_batch.py --forms 100000 --distinct-forms 20000

Cases, each timed on its own:

* ``csv``: ``hipscreen batch`` on a CSV file of realistic synthetic intake forms
  (``examples/make_intake_csv.py``: discrete self-reported grades, blanks where a question was
  skipped, whole-year ages), as a child process; peak memory is the resident set of the command's
  whole process tree (main process and workers), sampled every 0.1 s, and the largest single
  process.
* ``python``: ``assess_iter`` over the same forms as dicts (built before timing).
* ``repeated``: ``assess_iter`` over 1,000 forms repeated: the cache-hit path, the ceiling.
* ``distinct``: ``assess_iter`` where every form is different: the rules engine on every form.

Figures depend on how many forms are distinct (the exact caches screen each once), so the
report gives the distinct share of each case. Prints a table and writes JSON to
``benchmarks/results/batch.json``. Not a pytest test: timings on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))

import make_intake_csv  # noqa: E402

import hipscreen  # noqa: E402
from hipscreen._batch._forms import assess_iter  # noqa: E402
from hipscreen._batch._tables import TableReader  # noqa: E402

DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "batch.json"
TARGETS = {"csv": 15_000, "python": 50_000, "distinct": 8_000}
"""Forms per second wanted on a 2-core machine with 2 workers (csv: issue 12, on the generator's
mostly distinct realistic rows; distinct: every form different)."""
TARGET_PEAK_MB = 500


def tree_rss_bytes(root: int, cpu: dict[int, float] | None = None) -> tuple[int, int]:
    """(sum, largest) resident set size over ``root`` and all its descendants (Linux /proc).

    ``cpu``, when given, is updated with each process's CPU seconds so far (user + system).
    """
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        stats[int(entry)] = fields
    total = largest = 0
    todo = [root]
    page = os.sysconf("SC_PAGE_SIZE")
    ticks = os.sysconf("SC_CLK_TCK")
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
                rss = int(statm.read().split()[1]) * page
        except OSError:
            rss = 0
        total += rss
        largest = max(largest, rss)
        if cpu is not None and pid in stats:
            # utime and stime are fields 14 and 15 of stat (11 and 12 after the name)
            cpu[pid] = (int(stats[pid][11]) + int(stats[pid][12])) / ticks
        todo += children.get(pid, [])
    return total, largest


def run_csv(path: Path, workers: int, chunk: int, cache_size: int | None = None) -> dict[str, Any]:
    """Time ``hipscreen batch`` on ``path`` as a child process, sampling its memory.

    CPU time is the whole process tree's (the command and its workers, from ``getrusage``).
    """
    out = path.with_name("results.csv")
    command = [
        sys.executable,
        "-m",
        "hipscreen",
        "batch",
        str(path),
        "-o",
        str(out),
        "-j",
        str(workers),
        "--chunk-size",
        str(chunk),
        "--no-progress",
        "--force",
    ]
    if cache_size is not None:
        command += ["--cache-size", str(cache_size)]
    peak = [0, 0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    tree_cpu: dict[int, float] = {}  # pid -> CPU seconds, sampled (the last 0.1 s is missed)

    def sample() -> None:
        while child.poll() is None:
            total, largest = tree_rss_bytes(child.pid, tree_cpu)
            peak[0] = max(peak[0], total)
            peak[1] = max(peak[1], largest)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = child.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_main = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    # Workers are not the command's waited-for children (they hang off a forkserver): their
    # CPU comes from the samples; the command's own from getrusage.
    cpu = cpu_main + sum(seconds for pid, seconds in tree_cpu.items() if pid != child.pid)
    if child.returncode not in (0, 1):
        raise RuntimeError(f"hipscreen batch failed ({child.returncode}): {stderr[-2000:]}")
    with open(out, encoding="utf-8") as results:
        rows = sum(1 for _ in results) - 1
    return {
        "forms": rows,
        "seconds": round(seconds, 2),
        "per_second": round(rows / seconds),
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_row": round(cpu / max(rows, 1) * 1e6, 1),
        "workers": workers,
        "cache": cache_size is None or cache_size > 0,
        "peak_tree_rss_mb": round(peak[0] / 2**20, 1),
        "peak_process_rss_mb": round(peak[1] / 2**20, 1),
        "summary": stdout.strip().splitlines()[:3],
    }


def time_iter(
    forms: Any, workers: int, chunk: int, cache_size: int | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    count = failed = 0
    options = {} if cache_size is None else {"cache_size": cache_size}
    for outcome in assess_iter(forms, workers=workers, chunk_size=chunk, **options):
        count += 1
        failed += not isinstance(outcome, hipscreen.Assessment)
    seconds = time.perf_counter() - started
    return {
        "forms": count,
        "failed": failed,
        "seconds": round(seconds, 2),
        "per_second": round(count / seconds),
    }


def csv_forms(path: Path) -> list[dict[str, Any]]:
    """The CSV's rows as form dicts (the convention read once, before timing)."""
    with open(path, newline="", encoding="utf-8") as stream:
        rows = csv.reader(stream)
        reader = TableReader(next(rows))
        return [reader.form(cells)[0] for cells in rows if len(cells) == len(reader.columns)]


def distinct_forms(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """Realistic forms made all different by a measured flexion angle unique to each."""
    import random

    rng = random.Random(seed)
    reader = TableReader(make_intake_csv.HEADER)
    for i in range(count):
        row = make_intake_csv.intake_row(rng, i)
        cells = ["" if row.get(name) is None else str(row[name]) for name in make_intake_csv.HEADER]
        form, _ = reader.form(cells)
        form.setdefault("rom", {})["hip_flexion"] = 90 + (i % 900_000) / 10_000
        yield form


def distinct_share(forms: list[dict[str, Any]]) -> float:
    seen = {json.dumps({k: v for k, v in f.items() if k != "client_id"}) for f in forms}
    return len(seen) / max(len(forms), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forms", type=int, default=1_000_000, help="realistic forms (1e6)")
    parser.add_argument(
        "--distinct-forms", type=int, default=100_000, help="all-distinct forms (100,000)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--chunk-size", type=int, default=4096, help="rows per chunk (4096)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--skip", action="append", default=[], help="a case to skip")
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="also run the command with 1 and 2 workers, cache on and off (csv-jN-[no]cache), "
        "and the repeated and distinct cases with the caches off (*-nocache)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    report: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "hipscreen": hipscreen.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "cases": {},
    }
    cases = report["cases"]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "intake.csv"
        started = time.perf_counter()
        make_intake_csv.write(source, args.forms, args.seed, 0.0)
        report["generate_seconds"] = round(time.perf_counter() - started, 1)
        report["csv_mb"] = round(source.stat().st_size / 2**20, 1)
        if "csv" not in args.skip:
            cases["csv"] = run_csv(source, args.workers, args.chunk_size)
            with open(source, encoding="utf-8") as lines:
                next(lines)
                rows = {line.split(",", 1)[1] for line in lines}  # without the client id
            cases["csv"]["distinct_share"] = round(len(rows) / max(args.forms, 1), 3)
            del rows
        if args.matrix:
            for workers in (1, 2):
                for cache in (True, False):
                    name = f"csv-j{workers}-{'cache' if cache else 'nocache'}"
                    cases[name] = run_csv(source, workers, args.chunk_size, None if cache else 0)
                    cases[name]["distinct_share"] = cases["csv"]["distinct_share"]
        if "python" not in args.skip or "repeated" not in args.skip:
            forms = csv_forms(source)
            share = distinct_share(forms)
            if "python" not in args.skip:
                cases["python"] = time_iter(forms, args.workers, args.chunk_size)
                cases["python"]["distinct_share"] = round(share, 3)
            if "repeated" not in args.skip:
                pool = forms[:1000]
                repeated = (pool[i % len(pool)] for i in range(len(forms)))
                cases["repeated"] = time_iter(repeated, args.workers, args.chunk_size)
                cases["repeated"]["distinct_share"] = round(len(pool) / max(len(forms), 1), 4)
                if args.matrix:  # the cache on repeated input: on (above) against off
                    repeated = (pool[i % len(pool)] for i in range(len(forms)))
                    cases["repeated-nocache"] = time_iter(
                        repeated, args.workers, args.chunk_size, 0
                    )
                    cases["repeated-nocache"]["distinct_share"] = cases["repeated"][
                        "distinct_share"
                    ]
            del forms
    if "distinct" not in args.skip and args.distinct_forms:
        forms_iter = distinct_forms(args.distinct_forms, args.seed + 1)
        cases["distinct"] = time_iter(forms_iter, args.workers, args.chunk_size)
        cases["distinct"]["distinct_share"] = 1.0
        if args.matrix:  # the caches on all-distinct input: on (above) against off
            forms_iter = distinct_forms(args.distinct_forms, args.seed + 1)
            cases["distinct-nocache"] = time_iter(forms_iter, args.workers, args.chunk_size, 0)
            cases["distinct-nocache"]["distinct_share"] = 1.0
    report["peak_rss_benchmark_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )

    print(f"hipscreen {report['hipscreen']}, Python {report['python']}, {report['cpus']} CPUs")
    print(
        f"{'case':<18} {'forms':>10} {'distinct':>9} {'seconds':>9} {'forms/s':>10} "
        f"{'CPU µs/row':>10} {'peak MB':>8}  target"
    )
    for name, case in cases.items():
        target = TARGETS.get(name.split("-")[0] if name.startswith("csv-j2") else name)
        verdict = ""
        if target:
            verdict = f"{'ok  ' if case['per_second'] >= target else 'MISS'} ≥ {target:,}/s"
        cpu = f"{case['cpu_us_per_row']:>10,.0f}" if "cpu_us_per_row" in case else f"{'':>10}"
        peak = f"{case['peak_tree_rss_mb']:>8,.0f}" if "peak_tree_rss_mb" in case else f"{'':>8}"
        print(
            f"{name:<18} {case['forms']:>10,} {case.get('distinct_share', 0):>9.1%} "
            f"{case['seconds']:>9.1f} {case['per_second']:>10,} {cpu} {peak}  {verdict}"
        )
    if "csv" in cases:
        peak = cases["csv"]["peak_tree_rss_mb"]
        mark = "ok  " if peak < TARGET_PEAK_MB else "MISS"
        print(
            f"csv command peak memory: {peak:,.0f} MB for the process tree "
            f"(largest process {cases['csv']['peak_process_rss_mb']:,.0f} MB) "
            f"[{mark} < {TARGET_PEAK_MB} MB]"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
