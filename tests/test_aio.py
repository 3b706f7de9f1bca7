"""`assess_async`: screening from asyncio code without blocking the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from strategies import random_forms

import hipscreen
from hipscreen._aio import assess_async

POOL = random_forms(48, seed=77)


def test_assess_async_gives_the_assess_result() -> None:
    form = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}}
    assert asyncio.run(assess_async(form)) == hipscreen.assess(form)


def test_assess_async_with_a_screener_and_an_executor() -> None:
    strict = hipscreen.Screener(thresholds={"weak_grade": 4})
    form = {"strength": {"gluteus_maximus": 4}}

    async def main() -> hipscreen.Assessment:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return await assess_async(form, screener=strict, executor=pool)

    assert "weak-hip-extensors" in asyncio.run(main()).finding_ids()


def test_assess_async_raises_the_form_error() -> None:
    with pytest.raises(hipscreen.InvalidFormError, match="age"):
        asyncio.run(assess_async({"age": 400}))


def test_many_concurrent_screenings_equal_the_sequential_ones() -> None:
    screener = hipscreen.Screener(cache_size=0)
    expected = [screener.assess(form) for form in POOL]

    async def main() -> list[hipscreen.Assessment]:
        forms = POOL * 4
        return await asyncio.gather(*(assess_async(f, screener=screener) for f in forms))

    assert asyncio.run(main()) == expected * 4


def test_the_event_loop_keeps_running_while_forms_are_screened() -> None:
    """A ticker coroutine keeps ticking while a batch is screened in worker threads."""
    screener = hipscreen.Screener(cache_size=0)  # the engine really runs every time
    forms = POOL * 20
    # One worker thread: the loop thread then only competes with one thread for the GIL, so the
    # test does not depend on how busy the machine is.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)

    async def main() -> tuple[int, float]:
        ticks: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await asyncio.gather(*(assess_async(f, screener=screener, executor=pool) for f in forms))
        done.set()
        await task
        gaps = [b - a for a, b in itertools.pairwise(ticks)] or [0.0]
        return len(ticks), max(gaps)

    with pool:
        ticks, longest_gap = asyncio.run(main())
    # Screening synchronously in the loop would leave the ticker its first tick only. Worker
    # threads hold the GIL most of the time (the engine's C calls never release it), so the loop
    # gets few turns on a busy machine: one more tick is the honest, stable threshold. (The
    # longest gap between ticks is reported, not asserted: a bound of 1 s failed once on a busy
    # CI machine at 1.01 s, and unit tests assert no timings.)
    assert ticks >= 2, f"the loop ticked once only (longest gap {longest_gap:.3f} s)"
