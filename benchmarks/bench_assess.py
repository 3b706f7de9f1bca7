#!/usr/bin/env python3
"""Benchmark ``hipscreen.assess()``: latency per form, throughput, and memory growth.

Run from the repository root (``python3 tasks.py bench`` sets up the environment)::

    .venv/bin/python benchmarks/bench_assess.py
    .venv/bin/python benchmarks/bench_assess.py --repeat 500 --memory-count 10000

Prints a table and writes the figures as JSON to ``benchmarks/results/latest.json``. Targets:
median ≤ 250 µs per assessment (on the realistic mix) and < 10 MB RSS growth over 100,000
assessments. ``--check`` exits with status 1 when a target is missed. Not a pytest test: timings
on shared machines are too noisy to assert on.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hipscreen
from hipscreen._vocabulary import Activity, Muscle, RomMethod, Symptom

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLES = REPO / "examples" / "forms"
DEFAULT_OUTPUT = HERE / "results" / "latest.json"

TARGET_MEDIAN_US = 250.0
TARGET_GROWTH_MB = 10.0
TARGET_GROWTH_PER = 100_000
"""The memory target is stated for 100,000 assessments; shorter runs are scaled to it."""

# The source article's complaints, which most real forms carry; the rest (red flags, context)
# are rare on a real intake form.
COMMON_SYMPTOMS = [
    "lower_back_pain",
    "knee_pain",
    "hip_pain",
    "anterior_pelvic_tilt",
    "restricted_stride",
    "reduced_power",
]


# -- forms ---------------------------------------------------------------------------------------


def realistic_form(rng: random.Random) -> dict[str, Any]:
    """A form shaped like a real intake: a few grades, a symptom or two, sometimes measurements."""
    muscles = [m.value for m in Muscle]
    common = [s for s in COMMON_SYMPTOMS if s in {x.value for x in Symptom}]
    rare = [s.value for s in Symptom if s.value not in common]
    form: dict[str, Any] = {"client_id": f"client-{rng.randrange(10**6):06d}"}
    if rng.random() < 0.9:
        form["age"] = rng.randint(16, 85)
    for measure, top in (("tightness", 3), ("strength", 5)):
        if rng.random() < 0.85:
            grades: dict[str, Any] = {}
            for muscle in rng.sample(muscles, rng.randint(1, 3)):
                if rng.random() < 0.25:
                    grades[muscle] = {"left": rng.randint(0, top), "right": rng.randint(0, top)}
                else:
                    grades[muscle] = rng.randint(max(0, top - 3), top)
            form[measure] = grades
    symptoms = rng.sample(common, rng.randint(0, 2))
    if rare and rng.random() < 0.03:
        symptoms.append(rng.choice(rare))
    if symptoms:
        form["symptoms"] = symptoms
    if rng.random() < 0.8:
        form["activities"] = rng.sample([a.value for a in Activity], rng.randint(1, 3))
    if rng.random() < 0.3:
        form["rom"] = {
            "hip_flexion": round(rng.uniform(80, 130), 1),
            "hip_extension": {"left": rng.randint(-5, 20), "right": rng.randint(-5, 20)},
            "method": rng.choice([m.value for m in RomMethod]),
        }
    return form


def named_forms(mix_size: int, seed: int) -> list[tuple[str, list[Any]]]:
    """(name, forms) for each timed case: every bundled example, the empty form, the mix."""
    cases: list[tuple[str, list[Any]]] = []
    for path in sorted(EXAMPLES.glob("*.json")):
        cases.append((path.stem, [json.loads(path.read_text(encoding="utf-8"))]))
    cases.append(("empty", [{}]))
    rng = random.Random(seed)
    cases.append(("generated mix", [realistic_form(rng) for _ in range(mix_size)]))
    return cases


# -- measuring -----------------------------------------------------------------------------------


def rss_bytes() -> int:
    """The resident set size now (Linux /proc), else the peak RSS the OS reports."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def time_calls(assess: Callable[[Any], Any], forms: Sequence[Any], calls: int) -> list[float]:
    """Microseconds for each of ``calls`` assessments, cycling through ``forms``."""
    clock = time.perf_counter_ns
    samples = []
    for i in range(calls):
        form = forms[i % len(forms)]
        start = clock()
        assess(form)
        samples.append((clock() - start) / 1000)
    return samples


# The engine runs for every call: the result cache (on by default) is turned off here, so the
# figures are the cost of screening a form hipscreen has not seen before.
UNCACHED = hipscreen.Screener(cache_size=0)


def latency(name: str, forms: Sequence[Any], repeat: int, warmup: int) -> dict[str, Any]:
    assess = UNCACHED.assess
    time_calls(assess, forms, warmup)
    gc.collect()
    samples = sorted(time_calls(assess, forms, repeat))
    findings = statistics.mean(len(assess(f).findings) for f in forms)
    return {
        "form": name,
        "forms": len(forms),
        "calls": repeat,
        "findings": round(findings, 2),
        "median_us": round(statistics.median(samples), 1),
        "p99_us": round(percentile(samples, 0.99), 1),
        "mean_us": round(statistics.fmean(samples), 1),
        "min_us": round(samples[0], 1),
    }


def endurance(forms: Sequence[Any], count: int, trace: bool) -> dict[str, Any]:
    """Throughput and memory growth over ``count`` assessments (after a warm-up)."""
    assess = UNCACHED.assess
    for form in forms:
        assess(form)
    gc.collect()
    if trace:
        tracemalloc.start()
    start_rss = rss_bytes()
    samples = [{"assessments": 0, "rss_mb": round(start_rss / 2**20, 2)}]
    step = max(1, count // 10)
    started = time.perf_counter()
    for i in range(1, count + 1):
        assess(forms[i % len(forms)])
        if i % step == 0 or i == count:
            samples.append({"assessments": i, "rss_mb": round(rss_bytes() / 2**20, 2)})
    seconds = time.perf_counter() - started
    gc.collect()
    end_rss = rss_bytes()
    result: dict[str, Any] = {
        "assessments": count,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds, 1) if seconds else None,
        "rss_start_mb": round(start_rss / 2**20, 2),
        "rss_end_mb": round(end_rss / 2**20, 2),
        "growth_mb": round((end_rss - start_rss) / 2**20, 3),
        "samples": samples,
    }
    if trace:
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["tracemalloc_current_mb"] = round(current / 2**20, 3)
        result["tracemalloc_peak_mb"] = round(peak / 2**20, 3)
    return result


# -- reporting -----------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    print(f"hipscreen {report['hipscreen']}  rules {report['ruleset_version']}")
    print(f"Python {report['python']} on {report['platform']}, {report['cpus']} CPUs")
    print()
    header = f"{'form':<16} {'forms':>6} {'calls':>7} {'findings':>8} {'median µs':>10} "
    header += f"{'p99 µs':>9} {'mean µs':>9} {'min µs':>8}"
    print(header)
    print("-" * len(header))
    for row in report["latency"]:
        print(
            f"{row['form']:<16} {row['forms']:>6} {row['calls']:>7} {row['findings']:>8} "
            f"{row['median_us']:>10.1f} {row['p99_us']:>9.1f} {row['mean_us']:>9.1f} "
            f"{row['min_us']:>8.1f}"
        )
    cached = report.get("cached_mix")
    if cached:
        print(
            f"\nmix again with the default result cache (forms seen before): "
            f"median {cached['median_us']} µs, p99 {cached['p99_us']} µs"
        )
    memory = report.get("memory")
    if memory:
        print()
        print(
            f"throughput: {memory['per_second']:,.0f} assessments/s "
            f"({memory['assessments']:,} in {memory['seconds']:.1f} s, one thread)"
        )
        print(
            f"memory: RSS {memory['rss_start_mb']:.1f} → {memory['rss_end_mb']:.1f} MB "
            f"(growth {memory['growth_mb']:+.2f} MB over {memory['assessments']:,} assessments)"
        )
        if "tracemalloc_peak_mb" in memory:
            print(
                f"tracemalloc: current {memory['tracemalloc_current_mb']:.2f} MB, "
                f"peak {memory['tracemalloc_peak_mb']:.2f} MB"
            )
    print()
    for name, verdict in report["targets"].items():
        mark = "ok  " if verdict["met"] else ("n/a " if verdict["met"] is None else "MISS")
        print(f"[{mark}] {name}: {verdict['measured']} (target {verdict['target']})")


def targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    mix = next(row for row in report["latency"] if row["form"] == "generated mix")
    verdicts: dict[str, dict[str, Any]] = {
        "median latency (generated mix)": {
            "measured": f"{mix['median_us']:.1f} µs",
            "target": f"≤ {TARGET_MEDIAN_US:.0f} µs",
            "met": mix["median_us"] <= TARGET_MEDIAN_US,
        }
    }
    memory = report.get("memory")
    if memory:
        scaled = memory["growth_mb"] * TARGET_GROWTH_PER / memory["assessments"]
        verdicts["memory growth per 100,000"] = {
            "measured": f"{scaled:+.2f} MB"
            + ("" if memory["assessments"] == TARGET_GROWTH_PER else " (scaled)"),
            "target": f"< {TARGET_GROWTH_MB:.0f} MB",
            # Too few assessments say nothing about a leak: report, do not judge.
            "met": scaled < TARGET_GROWTH_MB if memory["assessments"] >= 10_000 else None,
        }
    return verdicts


def write_json(report: dict[str, Any], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".tmp")
    partial.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(output)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000, help="timed calls per form (2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls first (200)")
    parser.add_argument("--mix-size", type=int, default=500, help="generated forms (500)")
    parser.add_argument(
        "--memory-count",
        type=int,
        default=TARGET_GROWTH_PER,
        help="assessments for throughput and memory growth (100000; 0 skips)",
    )
    parser.add_argument("--seed", type=int, default=12345, help="seed of the generated mix")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    cases = named_forms(args.mix_size, args.seed)
    first_use = time.perf_counter()
    hipscreen.assess({})  # compiles the rules once per process
    compile_ms = (time.perf_counter() - first_use) * 1000

    report: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "hipscreen": hipscreen.__version__,
        "ruleset_version": hipscreen.assess({}).ruleset_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "first_use_ms": round(compile_ms, 1),
        "latency": [latency(name, forms, args.repeat, args.warmup) for name, forms in cases],
    }
    # With the default cache, a form seen before (same content, any client_id) skips the engine.
    mix = cases[-1][1]
    for form in mix:
        hipscreen.assess(form)
    cached = sorted(time_calls(hipscreen.assess, mix, args.repeat))
    report["cached_mix"] = {
        "median_us": round(statistics.median(cached), 1),
        "p99_us": round(percentile(cached, 0.99), 1),
    }
    if args.memory_count > 0:
        report["memory"] = endurance(mix, args.memory_count, args.tracemalloc)
    report["targets"] = targets(report)

    print_report(report)
    write_json(report, args.output)
    print(f"\nwrote {args.output}")
    missed = [name for name, verdict in report["targets"].items() if verdict["met"] is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
