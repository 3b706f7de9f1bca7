"""The self-tuning cache: exact answers, quiet on input that never repeats, on where it pays."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hipscreen
from hipscreen._cache import SelfTuningCache


def lookups(cache: SelfTuningCache, keys: list[int]) -> list[int | None]:
    """What a caller does: look up while the cache is on (keeping misses), else skip."""
    found = []
    for key in keys:
        if cache.active:
            hit = cache.get(key)
            if hit is None:
                cache.put(key, key * 10)
            found.append(hit)
        else:
            cache.skip()
            found.append(None)
    return found


def test_on_input_that_never_repeats_it_goes_quiet_after_one_window() -> None:
    cache = SelfTuningCache(100, window=50, retry_after=200)
    lookups(cache, list(range(50)))
    assert not cache.active
    assert len(cache) == 49  # kept (the 50th look-up made it quiet before its put)
    stats = cache.stats()
    assert (stats["lookups"], stats["hits"], stats["quiet_spells"]) == (50, 0, 1)


def test_a_quiet_cache_tries_again_and_stays_on_when_input_starts_repeating() -> None:
    cache = SelfTuningCache(100, window=50, retry_after=200)
    lookups(cache, list(range(50)))
    lookups(cache, list(range(1000, 1199)))
    assert not cache.active
    lookups(cache, [2000])
    assert cache.active  # the 200th skipped lookup wakes it
    repeating = [k % 10 for k in range(500)]
    found = lookups(cache, repeating)
    assert cache.active
    assert found[10:] == [k * 10 for k in repeating[10:]]


def test_input_repeating_with_a_long_period_keeps_the_cache_on() -> None:
    """A pool of forms screened in turn: the first window must be long enough to see hits."""
    cache = SelfTuningCache(5_000)
    assert cache.window == 5_000
    assert cache.retry_after == 8 * 5_000
    lookups(cache, [k % 1_500 for k in range(30_000)])
    assert cache.active
    assert cache.stats()["quiet_spells"] == 0
    assert cache.hits == 30_000 - 1_500


def test_the_window_follows_the_size_within_bounds() -> None:
    assert SelfTuningCache(10).window == 1_024
    assert SelfTuningCache(100_000).window == 16_384


def test_on_repeating_input_it_never_goes_quiet() -> None:
    cache = SelfTuningCache(100, window=20)
    lookups(cache, [k % 15 for k in range(2000)])
    assert cache.active
    assert cache.stats()["quiet_spells"] == 0


def test_size_zero_is_off_for_good() -> None:
    cache = SelfTuningCache(0, window=1, retry_after=1)
    assert not cache.active
    lookups(cache, [1, 1, 1])
    assert not cache.active
    assert len(cache) == 0


def test_it_keeps_the_most_recently_used_entries() -> None:
    cache = SelfTuningCache(2, window=1000)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # "b" was used least recently
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, 1, 3)


@pytest.mark.parametrize("bad", [{"size": -1}, {"window": 0}, {"min_hit_rate": 2.0}])
def test_bad_settings_are_refused(bad: dict[str, float]) -> None:
    settings_ = {"size": 10, **bad}
    size = int(settings_.pop("size"))
    with pytest.raises(ValueError, match="cache"):
        SelfTuningCache(size, **settings_)  # type: ignore[arg-type]


@settings(deadline=None)
@given(
    keys=st.lists(st.integers(0, 30), max_size=400),
    size=st.integers(0, 20),
    window=st.integers(1, 40),
    retry=st.integers(0, 60),
)
def test_a_hit_is_always_the_value_kept_for_that_key(
    keys: list[int], size: int, window: int, retry: int
) -> None:
    cache = SelfTuningCache(size, window=window, retry_after=retry)
    for key, hit in zip(keys, lookups(cache, keys), strict=True):
        assert hit is None or hit == key * 10
    assert len(cache) <= size


@pytest.mark.slow
def test_the_screener_cache_goes_quiet_on_distinct_forms_and_results_do_not_change() -> None:
    screener = hipscreen.Screener(cache_size=64)
    uncached = hipscreen.Screener(cache_size=0)
    distinct = [
        {"age": age, "strength": {"gluteus_maximus": grade}, "tightness": {"iliopsoas": tight}}
        for age in range(18, 98)
        for grade in range(1, 6)
        for tight in range(3)
    ][:1100]
    for form in distinct:
        assert screener.assess(form) == uncached.assess(form)
    stats = screener._cache.stats()
    assert not stats["active"]
    assert stats["quiet_spells"] == 1
    assert (stats["lookups"], stats["skipped"], stats["entries"]) == (1024, 76, 64)
    repeated = hipscreen.Screener(cache_size=64)
    for form in distinct[:20] * 60:
        assert repeated.assess(form) == uncached.assess(form)
    assert repeated._cache.stats()["active"]
    assert repeated._cache.stats()["hits"] == 1180


def test_rows_in_flight_count_as_hits_so_the_pipeline_cache_stays_on() -> None:
    """A chunk's repeats are answered by the screening in flight, before any result is cached."""
    from hipscreen._batch._forms import assess_iter
    from hipscreen._batch._pipeline import Pipeline

    seen: list[Pipeline] = []
    real_enter = Pipeline.__enter__

    def keep(self: Pipeline) -> Pipeline:
        seen.append(self)
        return real_enter(self)

    forms = [{"age": 20 + k, "strength": {"gluteus_maximus": 3}} for k in range(50)] * 60
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Pipeline, "__enter__", keep)
        outcomes = list(assess_iter(forms, chunk_size=3000, cache_size=5_000))
    assert len(outcomes) == 3000
    stats = seen[0].cache.stats()
    assert stats["active"]
    assert stats["hits"] == 3000 - 50
