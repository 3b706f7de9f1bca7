"""Time the table doors on the same realistic rows: assess_frame, polars, dask and Spark recipes.

Each case runs in a fresh process (no warm cache from an earlier case) on the same CSV file made
by ``examples/make_intake_csv.py``; the time covers reading the file and screening every row
(for Spark, the session start is reported apart)::

    .venv/bin/python benchmarks/bench_frames.py                 # 10,000 rows
    .venv/bin/python benchmarks/bench_frames.py --rows 2000 --cases pandas polars

Results go to ``benchmarks/results/frames.json`` and are printed as a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))

CASES = ("pandas", "pandas_2_workers", "polars", "arrow", "dask", "spark", "cli")
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "frames.json"


def _read_pandas(path: str) -> Any:
    import pandas as pd

    return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])


def run_case(case: str, path: str) -> dict[str, Any]:
    """Screen every row of ``path`` the way ``case`` does; the seconds it took."""
    import hipscreen

    extra: dict[str, Any] = {}
    started = time.perf_counter()
    if case == "pandas":
        result = hipscreen.assess_frame(_read_pandas(path))
        rows, ok = len(result), int(result["ok"].sum())
    elif case == "pandas_2_workers":
        result = hipscreen.assess_frame(_read_pandas(path), workers=2)
        rows, ok = len(result), int(result["ok"].sum())
    elif case == "polars":
        import polars as pl

        result = hipscreen.assess_frame(pl.read_csv(path, infer_schema=False))
        rows, ok = result.height, int(result["ok"].sum())
    elif case == "arrow":
        import pyarrow as pa

        # (pyarrow's own CSV reader refuses short rows: read with pandas, convert to Arrow)
        table = pa.Table.from_pandas(_read_pandas(path), preserve_index=False)
        result = hipscreen.assess_frame(table)
        rows, ok = result.num_rows, sum(result.column("ok").to_pylist())
    elif case == "dask":
        import dask.dataframe as dd
        import pandas as pd
        from dask.distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster),
        ):
            extra["cluster_start_s"] = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            ddf = dd.read_csv(path, blocksize="256KB", dtype="string")
            sizes = ddf.map_partitions(len).compute()
            starts = [0, *itertools.accumulate(sizes)]

            def screen(part: Any, partition_info: Any = None) -> Any:
                first = starts[partition_info["number"]]
                part.index = pd.RangeIndex(first, first + len(part))
                return hipscreen.assess_frame(part, first_row=first)

            result = ddf.map_partitions(screen, meta=hipscreen.result_meta()).compute()
            rows, ok = len(result), int(result["ok"].sum())
            extra["partitions"] = ddf.npartitions
    elif case == "spark":
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        spark = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        extra["session_start_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        sdf = spark.read.csv(path, header=True)
        names = sdf.columns

        def screen_batches(frames: Any) -> Any:
            for frame in frames:
                frame.columns = names
                yield hipscreen.assess_frame(frame).reset_index(drop=True)

        plain = sdf.toDF(*[f"c{i}" for i in range(len(names))])
        screened = plain.mapInPandas(screen_batches, schema=hipscreen.spark_schema()).cache()
        rows = screened.count()
        ok = screened.filter("ok").count()
        extra["partitions"] = sdf.rdd.getNumPartitions()
        spark.stop()
    elif case == "cli":
        out = Path(path).with_name("cli-results.csv")
        command = [sys.executable, "-m", "hipscreen", "batch", path, "-o", str(out)]
        subprocess.run([*command, "-j", "1", "--no-progress", "--force"], check=False)
        with open(out, encoding="utf-8") as results:
            rows = sum(1 for _ in results) - 1
        ok = -1
    else:
        raise ValueError(f"unknown case {case!r}")
    seconds = time.perf_counter() - started
    return {"rows": rows, "ok": ok, "seconds": round(seconds, 2), **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:  # one case, in this fresh process
        print(json.dumps(run_case(args.case, args.path)))
        return 0
    import make_intake_csv

    report: dict[str, Any] = {"rows": args.rows, "cpus": os.cpu_count(), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "intake.csv"
        make_intake_csv.write(path, args.rows, seed=2024, malformed=0.02)
        for case in args.cases:
            done = subprocess.run(
                [sys.executable, __file__, "--case", case, "--path", str(path)],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                report["cases"][case] = {"error": done.stderr.strip().splitlines()[-1:]}
            else:
                report["cases"][case] = json.loads(done.stdout.strip().splitlines()[-1])
            result = report["cases"][case]
            rate = (
                f"{result['rows'] / result['seconds']:>10,.0f} rows/s"
                if result.get("seconds")
                else ""
            )
            print(f"{case:<18} {json.dumps(result)} {rate}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
