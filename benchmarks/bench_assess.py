#!/usr/bin/env python3
"""Benchmark ``hipscreen.assess()``: latency, distance to the engine's floor, throughput, memory.

Run from the repository root (``python3 tasks.py bench`` sets up the environment)::

    .venv/bin/python benchmarks/bench_assess.py
    .venv/bin/python benchmarks/bench_assess.py --repeat 500 --memory-count 10000

Prints tables and writes the figures as JSON to ``benchmarks/results/latest.json``. Targets (issue
12): uncached median ≤ 150 µs and p99 ≤ 400 µs per assessment on the realistic mix, < 10 MB RSS
growth over 100,000 assessments. ``--check`` exits with status 1 when a target is missed. Not a
pytest test: timings on shared machines are too noisy to assert on.

The "distance to the limit" table times, interleaved round by round on the same realistic mix,
uncached ``assess()`` against the thinnest loops over the same compiled ruleset and the same facts
(recorded from what hipscreen itself sends to the C engine) and against the reference evaluator
of the rule data (``tests/oracle.py``), and reports the ratios.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import platform
import pstats
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import durable_rules_engine as dre

import hipscreen
from hipscreen._vocabulary import Activity, Muscle, RomMethod, Symptom

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
from oracle import Oracle  # noqa: E402  (the reference evaluator lives with the tests)

EXAMPLES = REPO / "examples" / "forms"
DEFAULT_OUTPUT = HERE / "results" / "latest.json"

TARGET_MEDIAN_US = 150.0
TARGET_P99_US = 400.0
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


def realistic_forms(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` realistic forms from a fixed seed (distinct in practice: client ids, ages and
    grades vary)."""
    rng = random.Random(seed)
    return [realistic_form(rng) for _ in range(count)]


def named_forms(mix_count: int, seed: int) -> list[tuple[str, list[Any]]]:
    """(name, forms) for each timed case: every bundled example, the empty form, the mix."""
    cases: list[tuple[str, list[Any]]] = []
    for path in sorted(EXAMPLES.glob("*.json")):
        cases.append((path.stem, [json.loads(path.read_text(encoding="utf-8"))]))
    cases.append(("empty", [{}]))
    cases.append(("generated mix", realistic_forms(mix_count, seed)))
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


CLOCKS: dict[str, Callable[[], int]] = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}
"""``wall``: elapsed time (what a caller waits). ``cpu``: this thread's CPU time, which other
processes on a busy shared machine disturb far less (the medians then compare more steadily)."""
CLOCK = CLOCKS["wall"]


def time_calls(assess: Callable[[Any], Any], forms: Sequence[Any], calls: int) -> list[float]:
    """Microseconds for each of ``calls`` assessments, cycling through ``forms``."""
    clock = CLOCK
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
    """Latency of ``repeat`` uncached calls. With at least ``repeat + warmup`` forms, every
    timed call gets a form not screened before (the warm-up uses the others): the planner's
    internal cache then hits only as often as it does on a stream of distinct forms."""
    assess = UNCACHED.assess
    timed, warm = (
        (forms[:repeat], forms[repeat:]) if len(forms) >= repeat + warmup else (forms,) * 2
    )
    time_calls(assess, warm, warmup)
    gc.collect()
    samples = sorted(time_calls(assess, timed, repeat))
    findings = statistics.mean(len(assess(f).findings) for f in timed)
    return {
        "form": name,
        "forms": len(timed),
        "calls": repeat,
        "findings": round(findings, 2),
        "median_us": round(statistics.median(samples), 1),
        "p99_us": round(percentile(samples, 0.99), 1),
        "mean_us": round(statistics.fmean(samples), 1),
        "min_us": round(samples[0], 1),
    }


def endurance(forms: Sequence[Any], count: int, trace: bool, seed: int) -> dict[str, Any]:
    """Throughput and memory growth over ``count`` uncached assessments of distinct forms.

    ``forms`` warm up first; then each assessment gets a new realistic form, made on the fly
    (not timed), so every internal cache meets new keys as it would on a real stream and must
    stay bounded.
    """
    assess = UNCACHED.assess
    for form in forms:
        assess(form)
    gc.collect()
    if trace:
        tracemalloc.start()
    rng = random.Random(seed)
    start_rss = rss_bytes()
    samples = [{"assessments": 0, "rss_mb": round(start_rss / 2**20, 2)}]
    step = max(1, count // 10)
    clock = time.perf_counter
    seconds = 0.0
    for i in range(1, count + 1):
        form = realistic_form(rng)
        started = clock()
        assess(form)
        seconds += clock() - started
        if i % step == 0 or i == count:
            samples.append({"assessments": i, "rss_mb": round(rss_bytes() / 2**20, 2)})
    gc.collect()
    end_rss = rss_bytes()
    result: dict[str, Any] = {
        "assessments": count,
        "distinct": "new realistic forms, generated on the fly (generation not timed)",
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


# -- distance to the limit ------------------------------------------------------------------------

_TRACED = (
    "create_ruleset",
    "assert_facts",
    "assert_fact",
    "start_action_for_state",
    "complete_and_start_action",
)


def _action(messages: str) -> str:
    """The rule name of a firing, ``{"<name>":{...}}``, read without parsing the JSON."""
    return messages[2 : messages.index('"', 2)]


class EngineTrace:
    """What a screener sends to the C engine, recorded by wrapping the engine module's calls.

    It sees exactly what hipscreen sends, however hipscreen builds it: the ruleset definition
    and, per assessment, the batch of facts plus the finding facts asserted in response to each
    rule's first firing. The floors replay this, so they run the same compiled ruleset on the
    same facts with none of hipscreen's Python around the C calls.
    """

    def __init__(self) -> None:
        self.definitions: list[str] = []
        self.sessions: list[tuple[str, dict[str, list[str]]]] = []
        self.firings: list[list[str]] = []  # per session, the rule names in firing order
        self._action = ""

    @contextmanager
    def recording(self) -> Iterator[EngineTrace]:
        originals = {name: getattr(dre, name) for name in _TRACED}

        def create_ruleset(name: str, definition: str) -> Any:
            self.definitions.append(definition)
            return originals["create_ruleset"](name, definition)

        def assert_facts(handle: int, facts: str) -> Any:
            self.sessions.append((facts, {}))
            self.firings.append([])
            return originals["assert_facts"](handle, facts)

        def assert_fact(handle: int, fact: str) -> Any:
            self.sessions[-1][1].setdefault(self._action, []).append(fact)
            return originals["assert_fact"](handle, fact)

        def start_action_for_state(handle: int, state: Any) -> Any:
            result = originals["start_action_for_state"](handle, state)
            self._action = _action(result[1]) if result is not None else ""
            self.firings[-1].append(self._action)
            return result

        def complete_and_start_action(handle: int, state: Any) -> Any:
            messages = originals["complete_and_start_action"](handle, state)
            self._action = _action(messages) if messages is not None else ""
            if messages is not None:
                self.firings[-1].append(self._action)
            return messages

        wrappers = {
            "create_ruleset": create_ruleset,
            "assert_facts": assert_facts,
            "assert_fact": assert_fact,
            "start_action_for_state": start_action_for_state,
            "complete_and_start_action": complete_and_start_action,
        }
        for name, wrapper in wrappers.items():
            setattr(dre, name, wrapper)
        try:
            yield self
        finally:
            for name, original in originals.items():
                setattr(dre, name, original)


def _in_session(document: str, sid: str = "0") -> str:
    """A fact or a batch of facts (JSON) moved into session ``sid``."""
    value = json.loads(document)
    for fact in value if isinstance(value, list) else [value]:
        fact["sid"] = sid
    return json.dumps(value, ensure_ascii=False)


class EngineFloor:
    """The thinnest loops over one compiled ruleset and recorded facts (see `EngineTrace`)."""

    def __init__(self, definition: str, sessions: Sequence[tuple[str, dict[str, list[str]]]]):
        self.handle = dre.create_ruleset(f"bench-floor-{id(self)}", definition)
        self.sessions = list(sessions)
        # The session each recorded batch ran in ("0", the engine's default, when untagged).
        self.sids = [str(json.loads(facts)[0].get("sid", "0")) for facts, _ in self.sessions]
        # The same facts under one session id, for the reused-session loop.
        self.reused = [
            (_in_session(facts), {a: [_in_session(f) for f in fs] for a, fs in d.items()})
            for facts, d in self.sessions
        ]

    def _agenda(
        self, state: Any, derived: dict[str, list[str]], fired: list[str] | None = None
    ) -> list[str]:
        handle = self.handle
        pending = dict(derived)
        asserted: list[str] = []
        result = dre.start_action_for_state(handle, state)
        messages = result[1] if result is not None else None
        while messages is not None:
            name = messages[2 : messages.index('"', 2)]
            if fired is not None:
                fired.append(name)
            for fact in pending.pop(name, ()):
                dre.assert_fact(handle, fact)
                asserted.append(fact)
            messages = dre.complete_and_start_action(handle, state)
        return asserted

    def verify(self, expected: Sequence[Sequence[str]]) -> None:
        """Both loops fire what hipscreen's own sessions fired, form after form (the reused
        session twice over, so retraction leaves nothing behind)."""
        for index, (facts, derived) in enumerate(self.sessions):
            fired: list[str] = []
            _code, state = dre.assert_facts(self.handle, facts)
            self._agenda(state, derived, fired)
            dre.delete_state(self.handle, self.sids[index])
            if sorted(fired) != sorted(expected[index]):
                raise RuntimeError(f"fresh-session floor fired {fired}, not {expected[index]}")
        for _ in range(2):
            for index, (facts, derived) in enumerate(self.reused):
                fired = []
                _code, state = dre.assert_facts(self.handle, facts)
                for fact in self._agenda(state, derived, fired):
                    dre.retract_fact(self.handle, fact)
                dre.retract_facts(self.handle, facts)
                if sorted(fired) != sorted(expected[index]):
                    raise RuntimeError(f"reused-session floor fired {fired}, not {expected[index]}")

    def fresh(self, index: int) -> None:
        """One form as hipscreen runs it today: create the session, match, delete it."""
        facts, derived = self.sessions[index]
        _code, state = dre.assert_facts(self.handle, facts)
        self._agenda(state, derived)
        dre.delete_state(self.handle, self.sids[index])

    def reuse(self, index: int) -> None:
        """One form in a long-lived session: match, then retract the form's facts."""
        facts, derived = self.reused[index]
        _code, state = dre.assert_facts(self.handle, facts)
        for fact in self._agenda(state, derived):
            dre.retract_fact(self.handle, fact)
        dre.retract_facts(self.handle, facts)

    def close(self) -> None:
        dre.delete_ruleset(self.handle)


def limits(per_round: int, rounds: int, seed: int) -> dict[str, Any]:
    """Uncached ``assess()`` against the engine floors and the reference evaluator.

    Each round brings ``per_round`` realistic forms not seen before; every variant screens them
    in turn (the order rotating per round), so machine noise hits all alike. The engine calls
    are recorded by one screener and ``assess()`` is timed on another, so nothing the recording
    pass cached helps it. Returns per-variant median/p99 µs and ``assess()``'s ratio to each.
    """
    warm = max(1, per_round // 5)
    forms = realistic_forms(warm + per_round * rounds, seed)
    trace = EngineTrace()
    with trace.recording():
        recorder = hipscreen.Screener(cache_size=0)
        for form in forms:
            recorder.assess(form)
    if len(trace.definitions) != 1 or len(trace.sessions) != len(forms):
        raise RuntimeError(
            f"expected 1 ruleset and {len(forms)} sessions in the engine trace, got "
            f"{len(trace.definitions)} and {len(trace.sessions)}: hipscreen no longer drives "
            "durable_rules_engine the way EngineTrace records it; update the benchmark"
        )
    floor = EngineFloor(trace.definitions[0], trace.sessions)
    floor.verify(trace.firings)
    screener = hipscreen.Screener(cache_size=0)
    oracle = Oracle(screener.ruleset)
    validated = [hipscreen.IntakeForm.model_validate(form) for form in forms]
    indices = list(range(len(forms)))
    variants: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]] = {
        "assess() uncached": (screener.assess, forms),
        "floor: fresh session per form": (floor.fresh, indices),
        "floor: one reused session": (floor.reuse, indices),
        "reference evaluator (oracle)": (oracle.assess, validated),
        "form validation only": (hipscreen.IntakeForm.model_validate, forms),
    }
    names = list(variants)
    for call, inputs in variants.values():  # warm-up on forms no round times
        for item in inputs[:warm]:
            call(item)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    gc.collect()
    for round_ in range(rounds):
        start = warm + round_ * per_round
        for k in range(len(names)):
            name = names[(round_ + k) % len(names)]
            call, inputs = variants[name]
            samples[name] += time_calls(call, inputs[start : start + per_round], per_round)
    floor.close()
    rows = []
    for name, values in samples.items():
        values.sort()
        rows.append(
            {
                "variant": name,
                "calls": len(values),
                "median_us": round(statistics.median(values), 1),
                "p99_us": round(percentile(values, 0.99), 1),
                "mean_us": round(statistics.fmean(values), 1),
            }
        )
    top = rows[0]
    for row in rows:
        row["assess_median_x"] = round(top["median_us"] / row["median_us"], 2)
        row["assess_p99_x"] = round(top["p99_us"] / row["p99_us"], 2)
    return {"forms": per_round * rounds, "rounds": rounds, "variants": rows}


def profile(count: int, seed: int, top: int = 30) -> None:
    """cProfile ``count`` uncached assessments of distinct realistic forms; print the top
    functions by cumulative and by own time (cProfile inflates many small calls: read it for
    structure and call counts, and the timed tables for costs)."""
    forms = realistic_forms(count + 200, seed)
    screener = hipscreen.Screener(cache_size=0)
    for form in forms[count:]:
        screener.assess(form)
    profiler = cProfile.Profile()
    profiler.enable()
    for form in forms[:count]:
        screener.assess(form)
    profiler.disable()
    print(f"\ncProfile of {count} uncached assessments (distinct realistic forms)")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


# -- reporting -----------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    print(f"hipscreen {report['hipscreen']}  rules {report['ruleset_version']}")
    print(f"Python {report['python']} on {report['platform']}, {report['cpus']} CPUs")
    print(f"clock: {report['arguments']['clock']}, load average {report['load_average']}")
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
    limit = report.get("limits")
    if limit:
        print(
            f"\ndistance to the limit: {limit['forms']} distinct realistic forms in "
            f"{limit['rounds']} rounds, variants interleaved"
        )
        head = f"{'variant':<32} {'median µs':>10} {'p99 µs':>9} {'assess÷ median':>15} "
        head += f"{'assess÷ p99':>12}"
        print(head)
        print("-" * len(head))
        for row in limit["variants"]:
            print(
                f"{row['variant']:<32} {row['median_us']:>10.1f} {row['p99_us']:>9.1f} "
                f"{row['assess_median_x']:>14.2f}× {row['assess_p99_x']:>11.2f}×"
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
        },
        "p99 latency (generated mix)": {
            "measured": f"{mix['p99_us']:.1f} µs",
            "target": f"≤ {TARGET_P99_US:.0f} µs",
            "met": mix["p99_us"] <= TARGET_P99_US,
        },
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
    parser.add_argument(
        "--mix-size",
        type=int,
        default=500,
        help="forms per round of the limit table; forms cycled for cache and memory (500)",
    )
    parser.add_argument(
        "--memory-count",
        type=int,
        default=TARGET_GROWTH_PER,
        help="assessments for throughput and memory growth (100000; 0 skips)",
    )
    parser.add_argument(
        "--limit-rounds",
        type=int,
        default=20,
        help="rounds over the mix for the distance-to-the-limit table (20; 0 skips)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="time per call as elapsed wall time (default) or as this thread's CPU time",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="only profile N uncached assessments with cProfile and print the hot spots",
    )
    parser.add_argument("--seed", type=int, default=12345, help="seed of the generated mix")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = CLOCKS[args.clock]
    if args.profile > 0:
        profile(args.profile, args.seed)
        return 0

    cases = named_forms(args.repeat + args.warmup, args.seed)
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
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "first_use_ms": round(compile_ms, 1),
        "latency": [latency(name, forms, args.repeat, args.warmup) for name, forms in cases],
    }
    # With the default cache, a form seen before (same content, any client_id) skips the engine.
    mix = cases[-1][1][: args.mix_size]
    for form in mix:
        hipscreen.assess(form)
    cached = sorted(time_calls(hipscreen.assess, mix, args.repeat))
    report["cached_mix"] = {
        "median_us": round(statistics.median(cached), 1),
        "p99_us": round(percentile(cached, 0.99), 1),
    }
    if args.limit_rounds > 0:
        report["limits"] = limits(args.mix_size, args.limit_rounds, args.seed + 1)
    if args.memory_count > 0:
        report["memory"] = endurance(mix, args.memory_count, args.tracemalloc, args.seed + 2)
    report["targets"] = targets(report)

    print_report(report)
    write_json(report, args.output)
    print(f"\nwrote {args.output}")
    missed = [name for name, verdict in report["targets"].items() if verdict["met"] is False]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
