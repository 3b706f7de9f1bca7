#!/usr/bin/env python3
"""List the tests that took longer than a budget and carry no marker that keeps them out of the
fast tier (slow, process, spark, dask, polars, notebook, docs).

A report, not an assertion: timings on a shared machine are noisy, so it lists the candidates
for a marker and exits 0. It reads one or more pytest reports of a run:

- a JUnit XML file (``pytest --junitxml=build/test-durations.xml``; the full run of
  ``python3 tasks.py test`` writes that one and calls this script after it), or
- the text of ``pytest --durations=0`` (each ``1.23s call  tests/test_x.py::test_y`` line; the
  setup, call and teardown of one test are added up).

Which tests are unmarked it learns from pytest itself: ``pytest --collect-only -m FAST_MARKERS``
(tasks.py's expression) in the checkout, so a marker set on a module, a class, a parameter or by
a fixture counts the same as one on the function.

    .venv/bin/python benchmarks/durations.py build/test-durations.xml
    .venv/bin/python benchmarks/durations.py durations.txt --budget 1.5
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 2.0
"""Over this, a test belongs out of the fast tier: mark it (``slow`` at least)."""

_DURATION_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s+(setup|call|teardown)\s+(\S.*?)\s*$")


def fast_markers() -> str:
    """tasks.py's marker expression for the fast tier."""
    spec = importlib.util.spec_from_file_location("hipscreen_tasks", ROOT / "tasks.py")
    assert spec is not None
    assert spec.loader is not None
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    return str(tasks.FAST_MARKERS)


def junit_key(nodeid: str) -> str:
    """A pytest node id as JUnit XML names it: ``tests.test_x.TestC::test_y[1]``."""
    path, _, rest = nodeid.partition("::")
    parts = rest.split("::")
    module = path.removesuffix(".py").replace("/", ".")
    return "::".join([".".join([module, *parts[:-1]]), parts[-1]])


def read_junit(path: Path) -> dict[str, float]:
    """Seconds per test (setup + call + teardown, pytest's default) keyed by :func:`junit_key`."""
    seconds: dict[str, float] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        seconds[key] = seconds.get(key, 0.0) + float(case.get("time") or 0.0)
    return seconds


def read_durations_text(text: str) -> dict[str, float]:
    """Seconds per test from ``--durations`` lines, setup, call and teardown added up, keyed by
    :func:`junit_key`."""
    seconds: dict[str, float] = {}
    for line in text.splitlines():
        match = _DURATION_LINE.match(line)
        if match:
            key = junit_key(match.group(3))
            seconds[key] = seconds.get(key, 0.0) + float(match.group(1))
    return seconds


def read_report(path: Path) -> dict[str, float]:
    if path.suffix == ".xml":
        return read_junit(path)
    return read_durations_text(path.read_text(encoding="utf-8"))


def collect(markers: str, tests: Iterable[str] = ("tests",)) -> list[str]:
    """The node ids pytest selects with ``-m markers`` (the unmarked tests)."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", markers, *tests],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 5):  # 5: nothing selected
        sys.exit(f"pytest --collect-only failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return [line.strip() for line in done.stdout.splitlines() if "::" in line]


def over_budget(
    seconds: Mapping[str, float], unmarked: Iterable[str], budget: float
) -> list[tuple[float, str]]:
    """(seconds, node id) of each unmarked test over ``budget``, slowest first."""
    found = []
    for nodeid in unmarked:
        took = seconds.get(junit_key(nodeid))
        if took is not None and took > budget:
            found.append((took, nodeid))
    return sorted(found, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="JUnit XML or --durations text")
    parser.add_argument(
        "--budget", type=float, default=BUDGET_S, help=f"seconds (default {BUDGET_S})"
    )
    parser.add_argument(
        "--markers", help="the fast tier's -m expression (default: tasks.py's FAST_MARKERS)"
    )
    options = parser.parse_args(argv)
    seconds: dict[str, float] = {}
    for report in options.reports:
        for key, took in read_report(report).items():
            seconds[key] = seconds.get(key, 0.0) + took
    unmarked = collect(options.markers or fast_markers())
    slow = over_budget(seconds, unmarked, options.budget)
    timed = sum(1 for nodeid in unmarked if junit_key(nodeid) in seconds)
    print(
        f"{len(seconds):,} tests timed; {timed:,} of the {len(unmarked):,} unmarked (fast-tier) "
        f"tests among them; {len(slow)} over {options.budget:g} s"
    )
    for took, nodeid in slow:
        print(f"  {took:7.2f} s  {nodeid}")
    if slow:
        print("Mark each by what it does (slow, process, spark, dask, polars, notebook, docs).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
