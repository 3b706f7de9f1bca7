#!/usr/bin/env python3
"""Instructions per ``Planner.plan`` under callgrind, and per extra finding (issue #24, item 3).

Run from the repository root (needs valgrind and a C compiler)::

    .venv/bin/python benchmarks/callgrind_plan.py                 # 300 forms, about a minute
    .venv/bin/python benchmarks/callgrind_plan.py --forms 1000

The validation and findings of ``--warmup`` + ``--forms`` distinct realistic forms are computed
first, outside callgrind. Under callgrind one planner plans the warm-up forms and then, with the
garbage collector off, each measured form through a marker function chosen by the form's number
of findings (the marker library of ``callgrind_phases.py``). A least-squares fit of instructions
per plan on the number of findings gives the per-finding slope. The cost of a marker itself (a
marker around a no-op) is subtracted. Exact counts: before/after needs no quiet machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from callgrind_phases import MAX_FINDINGS, Markers, bucket, build_markers, callgrind  # noqa: E402
from callgrind_phases import inclusive as read_inclusive  # noqa: E402


def prepare(path: Path, count: int, seed: int) -> None:
    """Validate and screen the forms outside callgrind; pickle what the planner receives."""
    from bench_plan import plan_inputs

    import hipscreen

    screener = hipscreen.Screener(cache_size=0)
    path.write_bytes(pickle.dumps(plan_inputs(screener, count, seed)))


def drive(library: Path, inputs_file: Path, warmup: int) -> dict[str, Any]:
    import hipscreen
    from hipscreen._plan import Planner

    inputs = pickle.loads(inputs_file.read_bytes())
    planner = Planner(hipscreen.Screener(cache_size=0).ruleset)
    for args in inputs[:warmup]:
        planner.plan(*args)
    markers = Markers(library)

    def noop(*args: Any) -> None:
        return None

    gc.collect()
    gc.disable()
    for _ in range(200):
        markers.call("empty", noop)
    groups: dict[str, list[int]] = {}
    for args in inputs[warmup:]:
        k = min(len(args[1]), MAX_FINDINGS)
        name = bucket(k, 0)
        markers.call(name, planner.plan, *args)
        groups.setdefault(name, [k, 0])[1] += 1
    gc.enable()
    return {"groups": groups, "calls": markers.calls}


def analyse(costs: dict[str, int], driver: dict[str, Any]) -> dict[str, Any]:
    c_in = costs.get("empty", 0) / driver["calls"]["empty"]
    rows = [
        (k, size, (costs.get(name, 0) - size * c_in) / size)
        for name, (k, size) in driver["groups"].items()
    ]
    n = sum(size for _, size, _ in rows)
    mean_k = sum(k * size for k, size, _ in rows) / n
    mean_y = sum(y * size for _, size, y in rows) / n
    sxx = sum(size * (k - mean_k) ** 2 for k, size, _ in rows)
    sxy = sum(size * (k - mean_k) * (y - mean_y) for k, size, y in rows)
    slope = sxy / sxx if sxx else float("nan")
    return {
        "forms": n,
        "mean_findings": mean_k,
        "per_plan": mean_y,
        "per_finding": slope,
        "intercept": mean_y - slope * mean_k,
        "marker_cost": c_in,
        "by_findings": {k: round(y) for k, _, y in sorted(rows)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forms", type=int, default=300, help="distinct forms measured (300)")
    parser.add_argument("--warmup", type=int, default=200, help="other forms planned first (200)")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--driver", nargs=3, metavar=("LIBRARY", "IN", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.driver:
        library, inputs_file, out = args.driver
        result = drive(Path(library), Path(inputs_file), args.warmup)
        Path(out).write_text(json.dumps(result), encoding="utf-8")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        library = build_markers(work)
        driver_json, out_file = work / "driver.json", work / "callgrind.out"
        inputs_file = work / "inputs.pickle"
        prepare(inputs_file, args.warmup + args.forms, args.seed)
        callgrind(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--warmup",
                str(args.warmup),
                "--driver",
                str(library),
                str(inputs_file),
                str(driver_json),
            ],
            out_file,
        )
        report = analyse(read_inclusive(out_file), json.loads(driver_json.read_text("utf-8")))
    print(
        f"Planner.plan: {report['per_plan']:,.0f} instructions per plan over {report['forms']} "
        f"distinct realistic forms ({report['mean_findings']:.2f} findings on average); "
        f"{report['per_finding']:,.0f} per extra finding, {report['intercept']:,.0f} with none "
        f"(marker cost {report['marker_cost']:,.0f} subtracted)"
    )
    print("by findings:", report["by_findings"])
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
