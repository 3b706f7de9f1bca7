"""A screener's life: close, with-blocks, garbage collection, interrupts and fork.

The C engine frees nothing by itself: a compiled ruleset stays until
``durable_rules_engine.delete_ruleset`` and a session until ``delete_state``. These tests pin
down that hipscreen always makes those calls, whatever ends a screener or a session.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import hipscreen
from hipscreen import _engine
from hipscreen._engine import CompiledRules, EngineRule
from hipscreen._rules.atoms import Atom

SMALL_RULES = Path(__file__).resolve().parent / "broken_rules" / "_valid"
FORM = {"tightness": {"iliopsoas": 3}}
GRADE = Atom("grade", (("measure", "tightness"),), at_least=2)


def _facts() -> list[dict[str, object]]:
    return [{"t": "grade", "ms": "tightness", "v": 3, "i": 0}]


def test_a_closed_screener_refuses_to_screen_with_a_clear_error() -> None:
    screener = hipscreen.Screener(SMALL_RULES)
    assert "tight-hip-flexors" in screener.assess(FORM).finding_ids()
    screener.close()
    assert screener.closed
    with pytest.raises(hipscreen.EngineError, match="this Screener is closed"):
        screener.assess(FORM)
    screener.close()  # twice is harmless


def test_a_cached_form_is_refused_too_once_closed() -> None:
    screener = hipscreen.Screener(SMALL_RULES)
    screener.assess(FORM)
    screener.close()
    with pytest.raises(hipscreen.EngineError, match="closed"):
        screener.assess(FORM)


def test_a_with_block_closes_the_screener() -> None:
    with hipscreen.Screener(SMALL_RULES) as screener:
        assert "tight-hip-flexors" in screener.assess(FORM).finding_ids()
    assert screener.closed


def test_closing_deletes_the_engine_ruleset() -> None:
    screener = hipscreen.Screener(SMALL_RULES)
    handles = screener._compiled._handles
    (handle,) = handles
    screener.close()
    assert handles == []
    with pytest.raises(Exception, match="error code: 111"):  # the engine no longer knows it
        _engine._dre.delete_ruleset(handle)


def test_dropping_a_screener_deletes_its_engine_ruleset() -> None:
    screener = hipscreen.Screener(SMALL_RULES)
    handles = screener._compiled._handles
    assert len(handles) == 1
    del screener
    gc.collect()
    assert handles == []


def test_close_waits_for_a_session_in_progress() -> None:
    rules = CompiledRules([EngineRule("r", ((GRADE,),))], "t")
    inside, release = threading.Event(), threading.Event()

    def slow(name: str, message: object) -> tuple[str, ...]:
        inside.set()
        release.wait(5)
        return ()

    worker = threading.Thread(target=rules.run, args=(_facts(), slow))
    worker.start()
    inside.wait(5)
    closer = threading.Thread(target=rules.close)
    closer.start()
    time.sleep(0.05)
    assert closer.is_alive(), "close() must not free the ruleset under a running session"
    release.set()
    worker.join(5)
    closer.join(5)
    assert rules.closed


def test_keyboard_interrupt_in_a_rule_callback_still_deletes_the_session() -> None:
    """More interrupted sessions than the engine's 1,024-session cap: none may leak."""
    rules = CompiledRules([EngineRule("r", ((GRADE,),))], "t")

    def interrupt(name: str, message: object) -> tuple[str, ...]:
        raise KeyboardInterrupt

    for _ in range(1100):
        with pytest.raises(KeyboardInterrupt):
            rules.run(_facts(), interrupt)
    fired: list[str] = []
    rules.run(_facts(), lambda name, message: fired.append(name) or ())
    assert fired == ["r"]
    assert len(rules._handles) == 1, "the ruleset itself was not replaced"


def test_an_interrupt_before_any_rule_started_replaces_the_ruleset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session where no action started cannot be deleted safely: the ruleset goes instead."""
    rules = CompiledRules([EngineRule("r", ((GRADE,),))], "t")
    (old,) = rules._handles

    def interrupted(handle: int, state: int) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(_engine._dre, "start_action_for_state", interrupted)
        with pytest.raises(KeyboardInterrupt):
            rules.run(_facts(), lambda name, message: ())
    assert len(rules._handles) == 1
    if rules._handles != [old]:  # the engine may reuse the freed slot for the new ruleset
        with pytest.raises(Exception, match="error code: 111"):
            _engine._dre.delete_ruleset(old)
    fired: list[str] = []
    rules.run(_facts(), lambda name, message: fired.append(name) or ())
    assert fired == ["r"]


BUILD_AND_DROP = """
import gc, os, sys
from pathlib import Path
import hipscreen
def rss():
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
rules, count = sys.argv[1], int(sys.argv[2])
for _ in range(20):
    hipscreen.Screener(rules, cache_size=0).assess({"tightness": {"iliopsoas": 3}})
gc.collect()
before = rss()
for _ in range(count):
    hipscreen.Screener(rules, cache_size=0).assess({"tightness": {"iliopsoas": 3}})
gc.collect()
print((rss() - before) / 1e6)
"""


@pytest.mark.process
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc (Linux)")
def test_building_and_dropping_hundreds_of_screeners_keeps_memory_flat() -> None:
    """Without deleting rulesets, 400 small screeners grow RSS by ~40 MB (~0.1 MB per small rule
    set, 0.8 MB per built-in one); ``benchmarks/bench_lifecycle.py`` measures 5,000 built-in
    screeners (kept out of the suite: about six minutes)."""
    completed = subprocess.run(
        [sys.executable, "-c", BUILD_AND_DROP, str(SMALL_RULES), "400"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    growth_mb = float(completed.stdout)
    assert growth_mb < 10, f"RSS grew by {growth_mb:.1f} MB over 400 screeners"


@pytest.mark.process
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_while_another_thread_holds_the_cache_lock_does_not_hang_the_child() -> None:
    screener = hipscreen.Screener(SMALL_RULES)
    screener.assess(FORM)
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with screener._cache._lock:
            held.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: a cache miss needs the cache lock
            code = 1
            try:
                ids = screener.assess({"tightness": {"iliopsoas": 2}}).finding_ids()
                code = 0 if "tight-hip-flexors" in ids else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 30
        while True:
            finished, status = os.waitpid(pid, os.WNOHANG)
            if finished:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child hung on the result-cache lock")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        done.set()
        thread.join()


@pytest.mark.process
def test_the_lifecycle_benchmark_runs() -> None:
    """``benchmarks/bench_lifecycle.py`` with a tiny count, so the script cannot rot."""
    import json

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_lifecycle.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--count", "3", "--rules", str(SMALL_RULES), "--close"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["screeners"] == 3
    assert result["release"] is True
