"""Screening from many threads, in forked and spawned processes, with several screeners alive."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from strategies import random_forms

import hipscreen
from hipscreen import _screen

SEED = 20240611
POOL = random_forms(64, SEED)
"""Varied forms from a fixed seed: the same pool on every run and in every process."""

THREADS = 8
PER_THREAD = 500
CHILD_TIMEOUT_S = 120
"""Only to stop a hung child (a deadlock); never a performance limit."""

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")


def _dumps(results: list[hipscreen.Assessment]) -> list[str]:
    return [result.model_dump_json() for result in results]


def _in_threads(count: int, work: Callable[[int], None]) -> list[str]:
    """Run ``work(i)`` on ``count`` threads released together; return the errors they raised."""
    barrier = threading.Barrier(count)
    errors: list[str] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException:  # collected and reported by the test, not by threading.excepthook
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_threads_screening_at_once_get_the_sequential_results() -> None:
    expected = [hipscreen.assess(form) for form in POOL]
    wrong: list[tuple[int, int]] = []

    def work(t: int) -> None:
        for n in range(PER_THREAD):
            i = (t * 7 + n) % len(POOL)  # threads walk the pool from different places
            if hipscreen.assess(POOL[i]) != expected[i]:
                wrong.append((t, i))

    errors = _in_threads(THREADS, work)
    assert errors == []
    assert wrong == []


def test_first_use_from_many_threads_compiles_one_default_screener(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_screen, "_default", None)
    seen: list[int] = []

    def work(_t: int) -> None:
        hipscreen.assess(POOL[1])
        seen.append(id(_screen.default_screener()))

    assert _in_threads(THREADS, work) == []
    assert len(set(seen)) == 1


@pytest.mark.slow
def test_two_screeners_side_by_side_give_identical_results() -> None:
    first, second = hipscreen.Screener(), hipscreen.Screener()
    for form in POOL:
        assert first.assess(form) == second.assess(form) == hipscreen.assess(form)


@pytest.mark.slow
def test_screeners_created_again_and_again_keep_working() -> None:
    """A notebook re-running its cell re-registers the rules; no 'already registered' error."""
    screeners = []
    for _ in range(5):  # each "run of the cell" makes a screener and uses it
        screeners.append(hipscreen.Screener())
        screeners[-1].assess(POOL[1])
    for form in POOL[:16]:
        results = {screener.assess(form).model_dump_json() for screener in screeners}
        assert results == {hipscreen.assess(form).model_dump_json()}


def test_screeners_used_from_threads_side_by_side_agree() -> None:
    screeners = [hipscreen.Screener(), hipscreen.Screener()]
    expected = [hipscreen.assess(form) for form in POOL]
    wrong: list[tuple[int, int]] = []

    def work(t: int) -> None:
        screener = screeners[t % 2]
        for n in range(100):
            i = (t * 5 + n) % len(POOL)
            if screener.assess(POOL[i]) != expected[i]:
                wrong.append((t, i))

    assert _in_threads(4, work) == []
    assert wrong == []


def test_screeners_created_from_several_threads_at_once_all_work() -> None:
    expected = hipscreen.assess(POOL[1])
    made: list[hipscreen.Assessment] = []

    def work(_t: int) -> None:
        made.append(hipscreen.Screener().assess(POOL[1]))

    assert _in_threads(4, work) == []
    assert made == [expected] * 4


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_process_pool_gives_the_in_process_results(method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} is not available here")
    forms = (POOL * 4)[:200]
    expected = [hipscreen.assess(form) for form in forms]  # the parent has used the engine
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(hipscreen.assess, forms, chunksize=10))
    assert _dumps(results) == _dumps(expected)


@pytest.mark.process
@needs_fork
def test_a_forked_child_screens_like_its_parent(tmp_path: Path) -> None:
    expected = _dumps([hipscreen.assess(form) for form in POOL])
    out = tmp_path / "child.json"
    _run_in_fork(lambda: out.write_text("\n".join(_dumps([hipscreen.assess(f) for f in POOL]))))
    assert out.read_text().split("\n") == expected


@pytest.mark.process
@needs_fork
def test_a_child_forked_while_another_thread_screens_does_not_hang(tmp_path: Path) -> None:
    """The engine lock may be held by a thread that does not exist in the child."""
    expected = _dumps([hipscreen.assess(form) for form in POOL[:8]])
    stop = threading.Event()
    errors: list[str] = []

    def hammer() -> None:
        try:
            while not stop.is_set():
                for form in POOL:
                    hipscreen.assess(form)
        except BaseException:
            errors.append(traceback.format_exc())

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for k in range(5):
            out = tmp_path / f"child-{k}.json"

            def child(out: Path = out) -> None:
                out.write_text("\n".join(_dumps([hipscreen.assess(f) for f in POOL[:8]])))

            with warnings.catch_warnings():
                # Python 3.12 warns about fork() in a multi-threaded process: that is the point.
                warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
                _run_in_fork(child)
            assert out.read_text().split("\n") == expected
    finally:
        stop.set()
        thread.join()
    assert errors == []


def _run_in_fork(child: Callable[[], Any]) -> None:
    """Run ``child`` in a forked process; fail if it raises, crashes or hangs."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            child()
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child did not finish within {CHILD_TIMEOUT_S} s (deadlock?)")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child failed or crashed"
