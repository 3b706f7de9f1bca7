#!/usr/bin/env python3
"""Where one uncached ``assess()`` goes, in exact instruction counts (valgrind's callgrind).

Run from the repository root::

    .venv/bin/python benchmarks/callgrind_phases.py               # 300 forms, ~2-4 min
    .venv/bin/python benchmarks/callgrind_phases.py --forms 100 --no-import

The script compiles a tiny C library of empty *marker* functions (``hs_mark_<phase>(callback)``:
each calls back into Python and returns), runs a driver under ``valgrind --tool=callgrind`` and
reads each marker's inclusive instruction count with ``callgrind_annotate --inclusive=yes``. The
driver screens a fixed realistic mix of distinct forms (``bench_assess.realistic_forms``, fixed
seed) three times, each time with a fresh uncached `Screener` after a warm-up on other forms:

0. **as called** — ``screener.assess(form)``, garbage collector on: the headline figure;
   the passes below run with the collector off (a collection is paid by whichever phase
   crosses the allocation threshold, and the markers' own allocations would move it), so
   "garbage collection" is pass 0 minus pass 1;
1. **whole** — ``screener.assess(form)`` through one marker per (findings, facts) pair, plus a
   JSON text round trip of the same form (``json.loads(json.dumps(form))``) as the yardstick and
   ``model_dump_json()`` of the result (the first read: since issue 24 it builds the output);
2. **phases** — the same public call with the internals it goes through wrapped in markers:
   form validation (``coerce_form``), facts (``_grades`` + ``FormFacts``), the engine run
   (``CompiledRules.run``), inside it the C engine (every ``durable_rules_engine`` call), the
   firing decode and the ``on_fire`` callbacks (the rest of the run is the engine loop), and
   making the deferred result (``deferred_assessment``); whatever is not wrapped is "other".
   Then the first read of the result (``model_dump_json``), with what it builds marked: finding
   assembly (``Assembler.assemble``), evidence (``Assembler.evidence``), the plan
   (``Planner.plan``) and the output model (``Assessment.model_validate``); the rest of the read
   is JSON serialisation.

The cost of calling through a marker (ctypes and the Python trampoline) is measured in the same
run and subtracted: a marker around a no-op gives its own inclusive cost, and a loop of marked
no-ops against a loop of plain no-ops gives what a nested marker adds to the phase around it.

Slopes: the whole-call markers are keyed by the form's number of findings and of engine facts,
so a least-squares fit of instructions per ``assess`` on (1, findings, facts) over those groups
(weighted by their sizes) is the same fit as over every form: its coefficients are the cost of
one more finding and of one more fact.

``import hipscreen`` and ``python -c pass`` are measured as whole processes (compiled bytecode
cached first; ``PYTHONDONTWRITEBYTECODE`` is dropped from the environment for them).

Needs valgrind (with ``callgrind_annotate``) and a C compiler. Writes the figures to
``benchmarks/results/callgrind.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUTPUT = HERE / "results" / "callgrind.json"

PHASES = [
    ("validation", "form validation (coerce_form)"),
    ("facts", "facts (_grades + FormFacts)"),
    ("engine_c", "engine C (durable_rules_engine calls)"),
    ("engine_loop", "engine loop (CompiledRules.run, rest)"),
    ("decode", "firing decode"),
    ("callbacks", "on_fire callbacks"),
    ("deferred", "deferred Assessment (deferred_assessment)"),
    ("other", "other (assess glue, not wrapped)"),
]
# What the first read of a result builds (issue 24: built when read, not in assess()).
READ_PHASES = [
    ("assembly", "finding assembly (Assembler.assemble)"),
    ("evidence", "evidence (Assembler.evidence)"),
    ("plan", "plan (Planner.plan)"),
    ("output", "output model (Assessment.model_validate)"),
    ("read_other", "JSON serialisation and read glue"),
]
MAX_FINDINGS = 24
MAX_FACTS = 48
SIMPLE_MARKERS = [
    "empty",
    "calib_outer",
    "calib_plain",
    "json",
    "read",
    "gc_on",
    "phases",
    "validation",
    "facts",
    "engine",
    "engine_c",
    "decode",
    "callbacks",
    "assembly",
    "plan",
    "output",
    "deferred",
    "evidence",
    "phases_read",
]


def bucket(findings: int, facts: int) -> str:
    return f"a_{min(findings, MAX_FINDINGS)}_{min(facts, MAX_FACTS)}"


ALL_MARKERS = SIMPLE_MARKERS + [
    bucket(k, n) for k in range(MAX_FINDINGS + 1) for n in range(MAX_FACTS + 1)
]


def build_markers(directory: Path) -> Path:
    """Compile the marker library: one distinct, never-inlined function per marker."""
    source = directory / "hsmark.c"
    lines = ["typedef void (*hs_cb)(void);"]
    for k, name in enumerate(ALL_MARKERS):
        # The volatile store keeps the bodies distinct (no identical-code folding).
        lines.append(
            f"volatile int hs_seen_{k};\n"
            f"__attribute__((noinline)) void hs_mark_{name}(hs_cb cb) "
            f"{{ hs_seen_{k} = {k}; cb(); }}"
        )
    source.write_text("\n".join(lines) + "\n", encoding="ascii")
    library = directory / "libhsmark.so"
    subprocess.run(
        ["cc", "-O0", "-g", "-shared", "-fPIC", "-o", str(library), str(source)], check=True
    )
    return library


# -- the driver (runs under callgrind) ------------------------------------------------------------


class Markers:
    """Call Python functions through the marker library's C functions."""

    def __init__(self, library: Path) -> None:
        self._lib = ctypes.CDLL(str(library))
        self._pending: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None = None
        self._result: Any = None
        self._error: BaseException | None = None
        self.calls: dict[str, int] = {}
        callback_type = ctypes.CFUNCTYPE(None)
        self._trampoline = callback_type(self._run)  # kept alive as long as the markers
        self._functions = {name: getattr(self._lib, f"hs_mark_{name}") for name in ALL_MARKERS}
        for function in self._functions.values():
            function.argtypes = [callback_type]
            function.restype = None

    def _run(self) -> None:
        pending = self._pending
        assert pending is not None
        function, args, kwargs = pending
        try:
            self._result = function(*args, **kwargs)
        except BaseException as error:  # re-raised outside the C frame
            self._error = error

    def call(self, name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        saved = self._pending, self._result, self._error
        self._pending, self._error = (function, args, kwargs), None
        self._functions[name](self._trampoline)
        result, error = self._result, self._error
        self._pending, self._result, self._error = saved
        self.calls[name] = self.calls.get(name, 0) + 1
        if error is not None:
            raise error
        return result

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def marked(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, function, *args, **kwargs)

        return marked


def _noop(*args: Any) -> None:
    return None


def _round_trip(form: Any) -> Any:
    return json.loads(json.dumps(form))


def drive(library: Path, count: int, warmup: int, seed: int, calibration: int) -> dict[str, Any]:
    """Screen the mix as described in the module docstring; return the marker call counts."""
    sys.path.insert(0, str(HERE))
    from bench_assess import realistic_forms

    import hipscreen
    from hipscreen import _engine, _screen
    from hipscreen._facts import FormFacts

    markers = Markers(library)
    forms = realistic_forms(count + warmup, seed)
    warm, mix = forms[:warmup], forms[warmup:]

    # Calibration, with calls shaped like the wrapped ones below (a closure, two arguments):
    # what a marker costs inside itself, and what a marked call adds to the phase around it.
    marked_noop = markers.wrap("empty", _noop)
    for _ in range(calibration):
        marked_noop(1, 2)

    def marked_noops() -> None:
        for _ in range(calibration):
            marked_noop(1, 2)

    def plain_noops() -> None:
        call = _noop
        for _ in range(calibration):
            call(1, 2)

    markers.call("calib_outer", marked_noops)
    markers.call("calib_plain", plain_noops)

    def fresh() -> hipscreen.Screener:
        screener = hipscreen.Screener(cache_size=0)
        for form in warm:
            screener.assess(form).model_dump_json()
        return screener

    # Sizes of each form's screening (findings, facts), outside any marker.
    sizer = fresh()
    sizes = []
    for form in mix:
        intake = _screen.coerce_form(form)
        facts = len(FormFacts(intake, _screen._grades(intake)).facts)
        sizes.append((len(sizer.assess(form).findings), facts))
    sizer.close()

    # 0. the whole call as callers make it, garbage collector on (the headline figure).
    gc_on = fresh()
    for form in mix:
        markers.call("gc_on", gc_on.assess, form)
    gc_on.close()

    # The passes below run with the collector off: a collection is paid by whichever phase
    # happens to allocate past the threshold, and the markers' own allocations would move
    # those moments (its share is the difference between pass 0 and pass 1).
    gc.collect()
    gc.disable()

    # 1. the whole call, the yardstick and reading the output.
    whole = fresh()
    groups: dict[str, list[int]] = {}
    for form, (findings, facts) in zip(mix, sizes, strict=True):
        name = bucket(findings, facts)
        result = markers.call(name, whole.assess, form)
        groups.setdefault(name, [findings, facts, 0])[2] += 1
        markers.call("json", _round_trip, form)
        markers.call("read", result.model_dump_json)
    whole.close()

    # 2. the same call with its internals marked, then the first read of its result (where the
    # output is built) with the build's parts marked.
    phased = fresh()
    compiled = phased._compiled
    planner = phased._planner
    output = phased._output
    saved = {
        "coerce_form": _screen.coerce_form,
        "_grades": _screen._grades,
        "FormFacts": _screen.FormFacts,
        "deferred_assessment": _screen.deferred_assessment,
        # the firing decode: matched_indices since issue 24, decode_firing before
        "decode": "matched_indices" if hasattr(_engine, "matched_indices") else "decode_firing",
        "_dre": _engine._dre,
    }
    real_collector = phased._collector

    def collector(*args: Any, **kwargs: Any) -> Any:
        drafts, on_fire = real_collector(*args, **kwargs)
        return drafts, markers.wrap("callbacks", on_fire)

    class _MarkedEngine:
        def __getattr__(self, name: str) -> Any:
            return markers.wrap("engine_c", getattr(saved["_dre"], name))

    class _MarkedAssessment:
        @staticmethod
        def model_validate(*args: Any, **kwargs: Any) -> Any:
            return markers.call("output", real_assessment.model_validate, *args, **kwargs)

    # The module that builds the output model: hipscreen._findings since the core was split,
    # hipscreen._screen before.
    try:
        builder: Any = importlib.import_module("hipscreen._findings")
    except ImportError:
        builder = _screen
    real_assessment = builder.Assessment
    _screen.coerce_form = markers.wrap("validation", saved["coerce_form"])
    _screen._grades = markers.wrap("facts", saved["_grades"])
    _screen.FormFacts = markers.wrap("facts", saved["FormFacts"])
    _screen.deferred_assessment = markers.wrap("deferred", saved["deferred_assessment"])
    decode = saved["decode"]
    real_decode = getattr(_engine, decode)
    setattr(_engine, decode, markers.wrap("decode", real_decode))
    _engine._dre = _MarkedEngine()
    builder.Assessment = _MarkedAssessment
    phased._collector = collector  # type: ignore[method-assign]
    output.assemble = markers.wrap("assembly", output.assemble)  # type: ignore[method-assign]
    output.evidence = markers.wrap("evidence", output.evidence)  # type: ignore[method-assign]
    planner.plan = markers.wrap("plan", planner.plan)  # type: ignore[method-assign]
    compiled.run = markers.wrap("engine", compiled.run)  # type: ignore[method-assign]
    try:
        for form in mix:
            result = markers.call("phases", phased.assess, form)
            markers.call("phases_read", result.model_dump_json)
    finally:
        _screen.coerce_form = saved["coerce_form"]
        _screen._grades = saved["_grades"]
        _screen.FormFacts = saved["FormFacts"]
        _screen.deferred_assessment = saved["deferred_assessment"]
        setattr(_engine, decode, real_decode)
        _engine._dre = saved["_dre"]
        builder.Assessment = real_assessment
        gc.enable()
    return {
        "forms": count,
        "calibration": calibration,
        "calls": markers.calls,
        "groups": groups,
        "findings_mean": sum(k for k, _ in sizes) / len(sizes),
        "facts_mean": sum(n for _, n in sizes) / len(sizes),
    }


# -- reading callgrind ----------------------------------------------------------------------------


def marker_lines() -> dict[int, str]:
    """The line of ``hsmark.c`` that holds each marker's body (see `build_markers`)."""
    return {3 + 2 * k: name for k, name in enumerate(ALL_MARKERS)}


def inclusive(out_file: Path) -> dict[str, int]:
    """Each marker's inclusive instructions, read off the callgrind file (written with
    ``--compress-strings=no --compress-pos=no``): the cost lines at the marker's line of
    ``hsmark.c``, its own instructions and the inclusive cost callgrind records after each
    call it makes. (Lines, not names: valgrind does not name functions of a library that
    ctypes loads on this system, but it reads their line tables.)"""
    lines_of = marker_lines()
    found: dict[str, int] = {}
    function_file = current_file = ""
    with out_file.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            first = line[:1]
            if first.isdigit():
                if current_file.endswith("hsmark.c"):
                    parts = line.split()
                    name = lines_of.get(int(parts[0]))
                    if name is not None and len(parts) > 1:
                        found[name] = found.get(name, 0) + int(parts[1])
            elif line.startswith("fl="):
                function_file = current_file = line[3:].strip()
            elif line.startswith(("fi=", "fe=")):
                current_file = line[3:].strip()
            elif line.startswith("fn="):
                current_file = function_file
    return found


def total_instructions(out_file: Path) -> int:
    for line in out_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out_file}")


def callgrind(args: Sequence[str], out_file: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--compress-strings=no",
            "--compress-pos=no",
            f"--callgrind-out-file={out_file}",
            *args,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def fit(groups: dict[str, list[int]], costs: dict[str, int], c_in: float) -> dict[str, float]:
    """Weighted least squares of instructions per assess on (1, findings, facts)."""
    rows = [
        (k, n, size, (costs.get(name, 0) - size * c_in) / size)
        for name, (k, n, size) in groups.items()
    ]
    # Normal equations, 3×3.
    xtx = [[0.0] * 3 for _ in range(3)]
    xty = [0.0] * 3
    for k, n, size, y in rows:
        x = (1.0, float(k), float(n))
        for i in range(3):
            xty[i] += size * x[i] * y
            for j in range(3):
                xtx[i][j] += size * x[i] * x[j]
    a = [[*row, b] for row, b in zip(xtx, xty, strict=True)]
    for col in range(3):  # Gauss-Jordan with partial pivoting
        pivot = max(range(col, 3), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        if abs(a[col][col]) < 1e-12:
            return {
                "intercept": float("nan"),
                "per_finding": float("nan"),
                "per_fact": float("nan"),
            }
        for r in range(3):
            if r != col:
                factor = a[r][col] / a[col][col]
                a[r] = [x - factor * y for x, y in zip(a[r], a[col], strict=True)]
    coef = [a[i][3] / a[i][i] for i in range(3)]
    return {"intercept": coef[0], "per_finding": coef[1], "per_fact": coef[2]}


def analyse(costs: dict[str, int], driver: dict[str, Any]) -> dict[str, Any]:
    calls: dict[str, int] = driver["calls"]
    n = driver["forms"]
    c_in = costs["empty"] / calls["empty"]
    c_nest = (costs["calib_outer"] - costs["calib_plain"]) / driver["calibration"]

    def own(name: str) -> float:
        """A marker's inclusive cost without its own marker cost."""
        return costs.get(name, 0) - calls.get(name, 0) * c_in

    whole = sum(own(name) for name in costs if name.startswith("a_")) / n
    with_gc = own("gc_on") / n
    json_rt = own("json") / n
    read = own("read") / n
    phases_total = (
        own("phases")
        - c_nest * sum(calls.get(name, 0) for name in ("validation", "facts", "engine", "deferred"))
        - c_nest * sum(calls.get(name, 0) for name in ("engine_c", "decode", "callbacks"))
    ) / n
    engine = own("engine") - c_nest * sum(
        calls.get(name, 0) for name in ("engine_c", "decode", "callbacks")
    )
    phase = {
        "validation": own("validation") / n,
        "facts": own("facts") / n,
        "engine_c": own("engine_c") / n,
        "decode": own("decode") / n,
        "callbacks": own("callbacks") / n,
        "engine_loop": (engine - own("engine_c") - own("decode") - own("callbacks")) / n,
        "deferred": own("deferred") / n,
    }
    phase["other"] = phases_total - sum(phase.values())
    read_total = (
        own("phases_read")
        - c_nest * sum(calls.get(name, 0) for name in ("assembly", "evidence", "plan", "output"))
    ) / n
    read_phase = {name: own(name) / n for name in ("assembly", "evidence", "plan", "output")}
    read_phase["read_other"] = read_total - sum(read_phase.values())
    return {
        "forms": n,
        "findings_mean": driver["findings_mean"],
        "facts_mean": driver["facts_mean"],
        "firings_per_form": calls.get("callbacks", 0) / n,
        "assess": with_gc,
        "assess_without_gc": whole,
        "garbage_collection": with_gc - whole,
        "assess_phased_sum": phases_total,
        "json_round_trip": json_rt,
        "assess_over_json": with_gc / json_rt,
        "model_dump_json_of_result": read,
        "phases": phase,
        "first_read_phased_sum": read_total,
        "read_phases": read_phase,
        "marker_cost": {"inside": c_in, "nested": c_nest},
        "slopes": fit(driver["groups"], costs, c_in),
    }


def measure_imports(python: str, work: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-c", "import hipscreen"], check=True, env=env)  # cache bytecode
    figures: dict[str, int] = {}
    for name, code in (("pass", "pass"), ("import", "import hipscreen")):
        out = work / f"callgrind.{name}"
        callgrind([python, "-c", code], out, env)
        figures[name] = total_instructions(out)
    return {
        "python_c_pass": figures["pass"],
        "import_hipscreen": figures["import"],
        "ratio": figures["import"] / figures["pass"],
    }


def print_report(report: dict[str, Any]) -> None:
    a = report["assess"]
    yard = a["json_round_trip"]
    print(
        f"{a['forms']} distinct realistic forms; {a['findings_mean']:.2f} findings, "
        f"{a['facts_mean']:.2f} facts, {a['firings_per_form']:.2f} firings per form"
    )
    print(f"{'phase':<44} {'instr/assess':>13} {'÷ JSON':>8}")
    for key, label in PHASES:
        value = a["phases"][key]
        print(f"{label:<44} {value:>13,.0f} {value / yard:>8.2f}")
    print(
        f"{'sum of phases':<44} {a['assess_phased_sum']:>13,.0f} "
        f"{a['assess_phased_sum'] / yard:>8.2f}"
    )
    print(
        f"{'assess(), collector off (unmarked inside)':<44} {a['assess_without_gc']:>13,.0f} "
        f"{a['assess_without_gc'] / yard:>8.2f}"
    )
    print(
        f"{'garbage collection (on minus off)':<44} {a['garbage_collection']:>13,.0f} "
        f"{a['garbage_collection'] / yard:>8.2f}"
    )
    print(f"{'assess() as called':<44} {a['assess']:>13,.0f} {a['assess_over_json']:>8.2f}")
    print("first read of the result (model_dump_json), phased:")
    for key, label in READ_PHASES:
        value = a["read_phases"][key]
        print(f"  {label:<42} {value:>13,.0f} {value / yard:>8.2f}")
    print(
        f"  {'sum of read phases':<42} {a['first_read_phased_sum']:>13,.0f} "
        f"{a['first_read_phased_sum'] / yard:>8.2f}"
    )
    print(f"{'JSON text round trip of the form':<44} {yard:>13,.0f} {1:>8.2f}")
    print(
        f"{'model_dump_json() of the result (1st read)':<44} "
        f"{a['model_dump_json_of_result']:>13,.0f} {a['model_dump_json_of_result'] / yard:>8.2f}"
    )
    both = a["assess"] + a["model_dump_json_of_result"]
    print(f"{'assess() + first model_dump_json()':<44} {both:>13,.0f} {both / yard:>8.2f}")
    slopes = a["slopes"]
    print(
        f"slopes: {slopes['per_finding']:,.0f} per finding, {slopes['per_fact']:,.0f} per fact "
        f"(intercept {slopes['intercept']:,.0f})"
    )
    print(
        f"marker cost subtracted: {a['marker_cost']['inside']:,.0f} inside, "
        f"{a['marker_cost']['nested']:,.0f} nested"
    )
    if "imports" in report:
        i = report["imports"]
        print(
            f"import hipscreen {i['import_hipscreen']:,} vs python -c pass {i['python_c_pass']:,}"
            f": {i['ratio']:.1f}×"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forms", type=int, default=300, help="distinct forms measured (300)")
    parser.add_argument("--warmup", type=int, default=50, help="other forms screened first (50)")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--calibration", type=int, default=2000, help="marker calibration calls")
    parser.add_argument("--no-import", action="store_true", help="skip the import measurement")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--driver", nargs=2, metavar=("LIBRARY", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.driver:
        library, result = args.driver
        figures = drive(Path(library), args.forms, args.warmup, args.seed, args.calibration)
        Path(result).write_text(json.dumps(figures), encoding="utf-8")
        return 0
    with tempfile.TemporaryDirectory(prefix="hs-callgrind-") as tmp:
        work = Path(tmp)
        library = build_markers(work)
        out, sidecar = work / "callgrind.assess", work / "driver.json"
        callgrind(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--forms",
                str(args.forms),
                "--warmup",
                str(args.warmup),
                "--seed",
                str(args.seed),
                "--calibration",
                str(args.calibration),
                "--driver",
                str(library),
                str(sidecar),
            ],
            out,
        )
        driver = json.loads(sidecar.read_text(encoding="utf-8"))
        report: dict[str, Any] = {"assess": analyse(inclusive(out), driver)}
        if not args.no_import:
            report["imports"] = measure_imports(sys.executable, work)
    import hipscreen

    report["hipscreen"] = hipscreen.__version__
    report["python"] = sys.version.split()[0]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
