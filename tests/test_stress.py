"""Stress: 16 threads × 10,000 assessments on one screener equal the sequential results.

The screener runs with ``cache_size=0`` so that the engine really screens every form, and the
threads walk a pool of distinct forms from different starting points, so that at any moment they
screen different forms. A crash of the C engine would end the test run itself. It takes about
80 s on one core (the engine holds the GIL, so threads add safety, not speed).
"""

from __future__ import annotations

import threading
import time
import traceback

import pytest
from strategies import random_forms

import hipscreen

THREADS = 16
PER_THREAD = 10_000
POOL = random_forms(509, seed=20250101)  # a prime count: threads stay out of step


@pytest.mark.slow
def test_sixteen_threads_times_ten_thousand_equal_the_sequential_results() -> None:
    screener = hipscreen.Screener(cache_size=0)
    expected = [screener.assess(form) for form in POOL]
    barrier = threading.Barrier(THREADS)
    errors: list[str] = []
    mismatches: list[tuple[int, int]] = []
    done = [0] * THREADS

    def work(t: int) -> None:
        try:
            barrier.wait()
            for n in range(PER_THREAD):
                i = (t * 31 + n) % len(POOL)
                if screener.assess(POOL[i]) != expected[i]:
                    mismatches.append((t, i))
                done[t] += 1
        except BaseException:  # reported below, not by threading.excepthook
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start

    total = sum(done)
    # Shown with `pytest -s` (or -rP): the figures the embedding guide quotes.
    print(
        f"\nstress: {THREADS} threads × {PER_THREAD} = {total} assessments in {seconds:.1f} s "
        f"({total / seconds:,.0f}/s), {len(mismatches)} mismatches, {len(errors)} errors"
    )
    assert errors == [], errors[0]
    assert mismatches == [], f"{len(mismatches)} results differ, first: {mismatches[:5]}"
    assert total == THREADS * PER_THREAD
