#!/usr/bin/env python3
"""Where a batch CSV row goes, in exact instruction counts per row (valgrind's callgrind).

Run from the repository root (needs valgrind and a C compiler)::

    .venv/bin/python benchmarks/callgrind_batch.py                    # 2,000 rows, ~2 min
    .venv/bin/python benchmarks/callgrind_batch.py --rows 5000 --malformed 0.02

`hipscreen.batch.screen_csv` (what ``hipscreen batch`` runs) screens a CSV file of realistic
synthetic intake rows (``examples/make_intake_csv.py``, fixed seed, mostly distinct rows) in
process, with one worker (the rows are screened inline, as each worker screens its share), under
callgrind. Two passes go over the measured file, each
with a fresh `Screener` warmed up on another file of the same kind (outside the markers):

1. **whole** — ``screen_csv`` through one marker function: instructions per row; then the same
   with the garbage collector off (1b): the difference is garbage collection;
2. **phases** — the same call, collector off, with the functions the row path goes through
   wrapped in markers (the marker library of ``callgrind_phases.py``; no marker is nested in
   another except "not assessed", inside "facts"):

   - CSV reading: framing and splitting the file into records (``Framer.records``), and turning a
     record into a pipeline item (``table_item``: padding, client id, cache key);
   - cell coercion: a row's cells to a form dict (``TableReader.form``);
   - form validation (``coerce_form``);
   - facts (``_grades`` + ``FormFacts``), of which not-assessed (``_facts._not_assessed``);
   - engine: the engine sessions with their firings and callbacks (``Screener._findings_shared``);
   - findings (``Assembler.assemble``), the plan's exercise ids (``Planner.exercise_ids``, or
     ``Planner.plan`` where the row path still builds the full plan), referral
     (``Assembler.referral``);
   - the row's record (``record_of_brief`` + ``table_outcome``), the output row's formatting
     (``_result_row``) and writing both files (``_CsvSink.write``, ``CsvWriter.writerows``);
   - "other": pass 1 less every phase (the pipeline, the cache, tallies, checkpoints, glue).

3. **IPC per chunk**, which the inline run does not pay: after pass 2, each chunk's payloads
   and results (captured in pass 2) go through what a ``ProcessPoolExecutor`` does with two
   workers — pickle the call (``_work``, the task, half the chunk's rows) and unpickle it, pickle
   the results and unpickle them — and the parent's ``RecordTask.adopt``. The worker's and the
   parent's share are both counted (the process tree's cost per row).

A marker's own cost (a marker around a no-op) is subtracted from each phase, and what a nested
marker adds to the phase around it (a loop of marked against plain no-ops) from "facts".
Exact counts: before/after comparisons need no quiet machine. Writes
``benchmarks/results/callgrind_batch.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "examples"))
from callgrind_phases import Markers, bucket, build_markers, callgrind  # noqa: E402
from callgrind_phases import inclusive as read_inclusive  # noqa: E402


def _findings_module() -> Any:
    """Where findings are assembled: hipscreen._findings since the core was split (before it,
    hipscreen._screen._Output)."""
    import importlib

    return importlib.import_module("hipscreen._findings")


DEFAULT_OUTPUT = HERE / "results" / "callgrind_batch.json"

PHASES = [
    ("csv_read", "CSV reading: framing, records (Framer.records)"),
    ("row_item", "CSV reading: row to pipeline item (table_item)"),
    ("coercion", "cell coercion (TableReader.form)"),
    ("validation", "form validation (coerce_form)"),
    ("facts", "facts (_grades + FormFacts), less not-assessed"),
    ("not_assessed", "not-assessed (_facts._not_assessed)"),
    ("engine", "engine, firings, callbacks (_findings_shared)"),
    ("findings", "findings (Assembler.assemble)"),
    ("plan", "plan: exercise ids (Planner.exercise_ids / plan)"),
    ("referral", "referral (Assembler.referral)"),
    ("record", "row record (record_of_brief + table_outcome)"),
    ("formatting", "output row formatting (_result_row)"),
    ("writing", "writing both files (sinks)"),
    ("other", "other: pipeline, cache, tallies, glue"),
    ("gc", "garbage collection (pass 1 less pass 1b)"),
]
EXTRA = [("ipc", "pickling/IPC per chunk (2 workers, emulated)")]
# The marker library of callgrind_phases.py has generic slots (its buckets): one per phase here.
SLOT = {name: bucket(0, k) for k, (name, _) in enumerate([*PHASES, *EXTRA])}
SLOT["whole"] = bucket(1, 0)
SLOT["whole_nogc"] = bucket(1, 1)
SLOT["empty"] = "empty"
SLOT["calib_outer"] = "calib_outer"
SLOT["calib_plain"] = "calib_plain"


def make_csv(path: Path, rows: int, seed: int, malformed: float) -> None:
    import make_intake_csv

    make_intake_csv.write(path, rows, seed, malformed)


# -- the driver (runs under callgrind) ------------------------------------------------------------


def _noop(*args: Any) -> None:
    return None


def drive(
    library: Path, work: Path, calibration: int, chunk_size: int, workers_emulated: int
) -> dict[str, Any]:
    import hipscreen
    from hipscreen import _facts, _plan, _screen
    from hipscreen._batch import _csvframe, _pipeline, _stream, _tables

    markers = Markers(library)
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, attribute: str, phase: str) -> None:
        original = getattr(owner, attribute)
        saved.append((owner, attribute, original))
        slot = SLOT[phase]

        def marked(*args: Any, **kwargs: Any) -> Any:
            return markers.call(slot, original, *args, **kwargs)

        setattr(owner, attribute, marked)

    def patch_generator(owner: Any, attribute: str, phase: str) -> None:
        original = getattr(owner, attribute)
        saved.append((owner, attribute, original))
        slot = SLOT[phase]

        def step(generator: Iterator[Any]) -> tuple[bool, Any]:
            try:
                return True, next(generator)
            except StopIteration:
                return False, None

        def marked(*args: Any, **kwargs: Any) -> Iterator[Any]:
            generator = original(*args, **kwargs)
            while True:
                more, value = markers.call(slot, step, generator)
                if not more:
                    return
                yield value

        setattr(owner, attribute, marked)

    def run(source: Path, name: str, screener: hipscreen.Screener) -> None:
        _stream.screen_csv(
            source,
            work / f"{name}.out.csv",
            errors=work / f"{name}.errors.csv",
            screener=screener,
            workers=1,
            chunk_size=chunk_size,
            overwrite=True,
        )

    def fresh() -> hipscreen.Screener:
        """A new screener, warmed up on the other file (as a worker is after its first rows)."""
        screener = hipscreen.Screener(cache_size=0)
        run(work / "warmup.csv", "warmup", screener)
        settle = getattr(_pipeline, "settle_heap", None)
        if settle is not None:  # as the batch workers and the command do
            settle()
        return screener

    rows = sum(1 for _ in (work / "measured.csv").open(encoding="utf-8")) - 1

    gc.collect()
    gc.disable()
    for _ in range(200):
        markers.call("empty", _noop)

    def marked_noops() -> None:
        for _ in range(calibration):
            markers.call("empty", _noop)

    def plain_noops() -> None:
        for _ in range(calibration):
            _noop()

    markers.call("calib_outer", marked_noops)
    markers.call("calib_plain", plain_noops)
    gc.enable()

    # Pass 1: the whole call.
    screener = fresh()
    markers.call(SLOT["whole"], run, work / "measured.csv", "whole", screener)
    screener.close()
    # Pass 1b, and the passes after it: the garbage collector off (a collection is paid by
    # whichever phase crosses the allocation threshold), so collection is pass 1 less pass 1b.
    screener = fresh()
    gc.collect()
    gc.disable()
    markers.call(SLOT["whole_nogc"], run, work / "measured.csv", "whole_nogc", screener)
    screener.close()
    gc.enable()
    screener = fresh()
    gc.collect()
    gc.disable()

    # Pass 2: the phases.
    chunks: list[tuple[Any, list[Any], list[Any]]] = []
    screen = _tables.RecordTask.screen

    def capturing(self: Any, screener: Any, payloads: list[Any], shipped: bool) -> list[Any]:
        results = screen(self, screener, payloads, shipped)
        chunks.append((self, list(payloads), results))
        return results

    saved.append((_tables.RecordTask, "screen", screen))
    _tables.RecordTask.screen = capturing  # type: ignore[method-assign]
    patch_generator(_csvframe.Framer, "records", "csv_read")
    patch(_tables, "table_item", "row_item")
    patch(_tables.TableReader, "form", "coercion")
    patch(_tables, "coerce_form", "validation")
    patch(_screen, "_grades", "facts")
    patch(_screen, "FormFacts", "facts")
    patch(_facts, "_not_assessed", "not_assessed")
    patch(_screen.Screener, "_findings_shared", "engine")
    assembler = getattr(_screen, "_Output", None) or _findings_module().Assembler
    patch(assembler, "assemble", "findings")
    patch(_plan.Planner, "plan", "plan")
    if hasattr(_plan.Planner, "exercise_ids"):
        patch(_plan.Planner, "exercise_ids", "plan")
    patch(assembler, "referral", "referral")
    patch(_tables, "record_of_brief", "record")
    patch(_tables, "table_outcome", "record")
    patch(_stream, "_result_row", "formatting")
    patch(_stream._CsvSink, "write", "writing")
    patch(_stream.CsvWriter, "writerows", "writing")
    try:
        run(work / "measured.csv", "phases", screener)
    finally:
        screener.close()
        for owner, attribute, original in reversed(saved):
            setattr(owner, attribute, original)

    # Pass 3: what two worker processes add per chunk (pickling both ways, adopting results).
    def ipc(task: Any, payloads: list[Any], results: list[Any]) -> None:
        size = -(-len(payloads) // workers_emulated)
        for start in range(0, len(payloads), size):
            call = pickle.dumps(
                (_pipeline._work, (task, payloads[start : start + size]), {}),
                pickle.HIGHEST_PROTOCOL,
            )
            pickle.loads(call)
            back = pickle.dumps(results[start : start + size], pickle.HIGHEST_PROTOCOL)
            task.adopt(pickle.loads(back))

    for task, payloads, results in chunks:
        markers.call(SLOT["ipc"], ipc, task, payloads, results)
    gc.enable()
    return {"rows": rows, "calls": markers.calls, "calibration": calibration}


# -- analysis -------------------------------------------------------------------------------------


def analyse(costs: dict[str, int], driver: dict[str, Any]) -> dict[str, Any]:
    calls: dict[str, int] = driver["calls"]
    rows = driver["rows"]
    c_in = costs["empty"] / calls["empty"]
    c_nest = (costs["calib_outer"] - costs["calib_plain"]) / driver["calibration"]

    def own(phase: str) -> float:
        slot = SLOT[phase]
        return costs.get(slot, 0) - calls.get(slot, 0) * c_in

    whole = own("whole") / rows
    per_row = {name: own(name) / rows for name, _ in PHASES if name not in ("other", "gc")}
    per_row["facts"] -= (own("not_assessed") + c_nest * calls.get(SLOT["not_assessed"], 0)) / rows
    per_row["other"] = own("whole_nogc") / rows - sum(per_row.values())
    per_row["gc"] = whole - own("whole_nogc") / rows
    ipc = own("ipc") / rows
    return {
        "rows": rows,
        "whole_per_row": round(whole),
        "ipc_per_row": round(ipc),
        "process_tree_per_row": round(whole + ipc),
        "phases_per_row": {name: round(value) for name, value in per_row.items()},
        "marker_cost": round(c_in),
        "nested_marker_cost": round(c_nest),
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"{report['rows']:,} rows (malformed share {report['malformed']})")
    print(f"{'phase':55} {'instr/row':>12} {'share':>7}")
    total = report["process_tree_per_row"]
    for name, label in [*PHASES, *EXTRA]:
        value = report["ipc_per_row"] if name == "ipc" else report["phases_per_row"][name]
        print(f"{label:55} {value:>12,} {value / total:>7.1%}")
    print(f"{'whole screen_csv, inline (pass 1)':55} {report['whole_per_row']:>12,}")
    print(f"{'process tree with 2 workers (whole + IPC)':55} {total:>12,}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--malformed", type=float, default=0.0)
    parser.add_argument("--chunk-size", type=int, default=2048)
    parser.add_argument("--calibration", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--drive", nargs=2, metavar=("LIBRARY", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        library, work = map(Path, args.drive)
        result = drive(library, work, args.calibration, args.chunk_size, 2)
        (work / "driver.json").write_text(json.dumps(result), encoding="utf-8")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        library = build_markers(work)
        make_csv(work / "warmup.csv", args.warmup, args.seed + 1, args.malformed)
        make_csv(work / "measured.csv", args.rows, args.seed, args.malformed)
        out_file = work / "callgrind.out"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        callgrind(
            [
                sys.executable,
                __file__,
                "--drive",
                str(library),
                str(work),
                "--calibration",
                str(args.calibration),
                "--chunk-size",
                str(args.chunk_size),
            ],
            out_file,
            env,
        )
        driver = json.loads((work / "driver.json").read_text(encoding="utf-8"))
        report = analyse(read_inclusive(out_file), driver)
    report["malformed"] = args.malformed
    report["seed"] = args.seed
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
