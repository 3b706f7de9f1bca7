"""A bounded cache that switches itself off while it does not pay for itself."""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Any

from hipscreen._forksafe import ForkSafeLock

MIN_WINDOW = 1024
MAX_WINDOW = 16_384
"""Look-ups between two checks of the hit rate: the cache's size, within these bounds. A cache
that starts empty hits only keys that repeat within its first window, so the window must be
long enough for input that repeats with a long period (a pool of forms screened in turn) to
show its hits."""

MIN_HIT_RATE = 0.05
"""Below this share of hits in a window the cache goes quiet. A hit saves a screening (about
150–400 µs); a miss costs making the key and keeping the entry (up to about 15–25 µs for a
form's JSON key), so a cache pays from about 5 % hits."""

QUIET_WINDOWS = 8
"""Windows of look-ups skipped while quiet before the cache tries again: on input that never
repeats, one look-up in nine still makes a key."""


class SelfTuningCache:
    """A least-recently-used mapping of at most ``size`` entries that measures its hit rate.

    Every ``window`` look-ups it checks the share of hits. Below ``min_hit_rate`` it goes quiet:
    `active` is False, callers skip making keys and call `skip` instead, and after
    ``retry_after`` such look-ups it tries again for one window. It keeps its entries while
    quiet (they are bounded by ``size``), so the try starts warm. On input that repeats it stays
    on; on input that never repeats it makes keys for one look-up in nine. Safe to share between
    threads.

    Args:
        size: entries kept; 0 turns the cache off for good.
        window: look-ups between two checks of the hit rate (by default ``size`` within
            `MIN_WINDOW` … `MAX_WINDOW`).
        min_hit_rate: the share of hits below which the cache goes quiet.
        retry_after: look-ups skipped while quiet before trying again (by default
            `QUIET_WINDOWS` windows).
    """

    def __init__(
        self,
        size: int,
        *,
        window: int | None = None,
        min_hit_rate: float = MIN_HIT_RATE,
        retry_after: int | None = None,
    ) -> None:
        if window is None:
            window = min(max(size, MIN_WINDOW), MAX_WINDOW)
        if retry_after is None:
            retry_after = QUIET_WINDOWS * window
        if size < 0 or window < 1 or retry_after < 0 or not 0 <= min_hit_rate <= 1:
            raise ValueError(
                f"cache: size ≥ 0, window ≥ 1, retry_after ≥ 0 and 0 ≤ min_hit_rate ≤ 1 "
                f"(got {size}, {window}, {retry_after}, {min_hit_rate})"
            )
        self.size = size
        self.window = window
        self.min_hit_rate = min_hit_rate
        self.retry_after = retry_after
        self._data: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._lock = ForkSafeLock()
        self._active = size > 0
        self._looked = 0  # look-ups in this window
        self._hit = 0  # hits in this window
        self._skipped = 0  # look-ups skipped since going quiet
        self.lookups = 0
        self.hits = 0
        self.skips = 0
        self.quiet_spells = 0

    @property
    def active(self) -> bool:
        """Whether lookups are worth making now (False: call `skip` instead)."""
        return self._active

    def get(self, key: Hashable) -> Any:
        """The value kept for ``key``, or None; counts toward the hit rate."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            self._count(value is not None)
            return value

    def count_hit(self) -> None:
        """Count a look-up answered without the cache's entries (a result still in flight for
        the same key): it saves a screening all the same."""
        with self._lock:
            self._count(True)

    def _count(self, hit: bool) -> None:
        self._looked += 1
        self.lookups += 1
        if hit:
            self._hit += 1
            self.hits += 1
        if self._looked >= self.window:
            if self._hit < self.min_hit_rate * self._looked:
                self._active = False
                self._skipped = 0
                self.quiet_spells += 1
            self._looked = self._hit = 0

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` for ``key`` (forgetting the least recently used entry when full)."""
        with self._lock:
            if not self._active:
                return
            self._data[key] = value
            self._data.move_to_end(key)
            if len(self._data) > self.size:
                self._data.popitem(last=False)

    def skip(self) -> None:
        """Count a lookup not made because the cache was quiet; it may wake up."""
        with self._lock:
            self.skips += 1
            if self._active or self.size <= 0:
                return
            self._skipped += 1
            if self._skipped >= self.retry_after:
                self._active = True
                self._looked = self._hit = 0

    def clear(self) -> None:
        """Forget every entry (the hit-rate bookkeeping stays)."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> dict[str, Any]:
        """Lookups, hits, skipped lookups, quiet spells, entries and whether it is on."""
        return {
            "size": self.size,
            "entries": len(self._data),
            "active": self._active,
            "lookups": self.lookups,
            "hits": self.hits,
            "skipped": self.skips,
            "quiet_spells": self.quiet_spells,
        }
