#!/usr/bin/env python3
"""Benchmark plan building alone: CPU µs per ``Planner.plan`` on distinct realistic forms.

Run from the repository root::

    .venv/bin/python benchmarks/bench_plan.py
    .venv/bin/python benchmarks/bench_plan.py --forms 4000 --rounds 3

Each round builds a fresh planner (empty caches), plans ``--warmup`` forms untimed, then times
the next ``--forms`` distinct forms (the benchmark's realistic mix, so the planner's small caches
of variants, doses and recommendations hit only as often as on a real stream). Validation and
findings are computed beforehand and not timed. Timed with this thread's CPU clock after a
garbage collection, so other processes and earlier rounds' garbage disturb it little; the minimum
and median over rounds are printed. Not a pytest test: timings are never asserted.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_assess import realistic_forms  # noqa: E402

import hipscreen  # noqa: E402
from hipscreen._facts import FormFacts  # noqa: E402
from hipscreen._intake.form import coerce_form  # noqa: E402
from hipscreen._plan import Planner  # noqa: E402
from hipscreen._screen import _MEASURES  # noqa: E402
from hipscreen._vocabulary import Measure  # noqa: E402


def plan_inputs(screener: hipscreen.Screener, count: int, seed: int) -> list[tuple[Any, ...]]:
    """What ``Planner.plan`` receives for ``count`` realistic forms: form, findings, grades."""
    inputs = []
    for raw in realistic_forms(count, seed):
        form = coerce_form(raw)
        grades = {m: list(form.grades(m.value)) for m in _MEASURES}
        findings = screener._findings(FormFacts(form, grades))
        inputs.append((form, findings, grades[Measure.STRENGTH]))
    return inputs


def time_round(screener: hipscreen.Screener, warm: list[Any], timed: list[Any]) -> float:
    """CPU µs per plan over ``timed``, on a fresh planner warmed on ``warm``."""
    planner = Planner(screener.ruleset)
    for args in warm:
        planner.plan(*args)
    gc.collect()
    start = time.thread_time_ns()
    for args in timed:
        planner.plan(*args)
    return (time.thread_time_ns() - start) / len(timed) / 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forms", type=int, default=7000, help="timed forms per round (7000)")
    parser.add_argument("--warmup", type=int, default=1000, help="untimed forms first (1000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (7)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the realistic mix (11)")
    args = parser.parse_args(argv)
    screener = hipscreen.Screener(cache_size=0)
    inputs = plan_inputs(screener, args.warmup + args.forms, args.seed)
    warm, timed = inputs[: args.warmup], inputs[args.warmup :]
    per_plan = [time_round(screener, warm, timed) for _ in range(args.rounds)]
    print(
        f"plan building: min {min(per_plan):.1f} µs, median {statistics.median(per_plan):.1f} µs "
        f"per plan (CPU; {len(timed)} distinct realistic forms, {args.rounds} rounds)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
