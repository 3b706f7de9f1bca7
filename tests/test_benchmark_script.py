"""The benchmark script still runs (tiny counts; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_assess.py"


@pytest.mark.process
@pytest.mark.slow
def test_benchmark_script_runs_and_writes_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    small = ["--repeat", "5", "--warmup", "1", "--mix-size", "4", "--memory-count", "20"]
    small += ["--limit-rounds", "1", "--clock", "cpu"]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *small, "--tracemalloc", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "median µs" in done.stdout
    report = json.loads(output.read_text(encoding="utf-8"))
    forms = [row["form"] for row in report["latency"]]
    assert forms[-2:] == ["empty", "generated mix"]
    assert len(forms) >= 3  # the bundled examples come first
    for row in report["latency"]:
        assert row["calls"] == 5
        assert {"median_us", "p99_us"} <= set(row)
    assert report["memory"]["assessments"] == 20
    assert {"per_second", "growth_mb", "tracemalloc_peak_mb"} <= set(report["memory"])
    assert set(report["targets"]) == {
        "median latency (generated mix)",
        "p99 latency (generated mix)",
        "memory growth per 100,000",
    }
    # The distance to the limit: assess() against the engine floors and the reference evaluator.
    assert "distance to the limit" in done.stdout
    limits = report["limits"]
    assert limits["forms"] == 4
    variants = {row["variant"]: row for row in limits["variants"]}
    assert next(iter(variants)) == "assess() uncached"
    assert {
        "floor: fresh session per form",
        "floor: one reused session",
        "reference evaluator (oracle)",
    } <= set(variants)
    for row in variants.values():
        assert row["calls"] == 4
        assert row["median_us"] > 0
        assert row["assess_median_x"] > 0
    assert variants["assess() uncached"]["assess_median_x"] == 1


@pytest.mark.process
@pytest.mark.slow
def test_benchmark_script_profiles_on_request(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--profile", "3", "--output", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cProfile of 3 uncached assessments" in done.stdout
    assert "(assess)" in done.stdout
    assert not (tmp_path / "x.json").exists()  # profiling only: no figures written
