"""The worker pipeline: rows through an exact cache and the screener, inline or in processes.

Rows go out in chunks and come back in input order. With ``workers=N`` the rows that miss the
cache are screened in N worker processes. Each worker rebuilds the caller's screener from its
validated rule data, checks the digest, and exits when its parent dies (``PR_SET_PDEATHSIG`` on
Linux, and a thread that watches the parent everywhere), so a killed run leaves no orphans.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import contextlib
import ctypes
import gc
import itertools
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections.abc import Hashable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple, Protocol, cast

from pydantic import TypeAdapter, ValidationError

from hipscreen._batch._outcomes import BatchInterrupted
from hipscreen._cache import SelfTuningCache
from hipscreen._intake.form import IntakeForm
from hipscreen._screen import Screener, default_screener

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_CHUNK_SIZE",
    "INVALID",
    "Item",
    "Pipeline",
    "Task",
    "bounded_workers",
    "capped_workers",
    "client_id_ok",
    "resolve_screener",
    "worker_cap",
]

DEFAULT_CHUNK_SIZE = 2048
DEFAULT_CACHE_SIZE = 20_000
"""Distinct forms `assess_many` remembers (an assessment takes about 9 KB)."""

INVALID = "invalid"
"""A miss result: the row does not validate (its exact problems are worked out from the row)."""


_CLIENT_ID: TypeAdapter[Any] = TypeAdapter(
    cast(Any, IntakeForm.model_fields["client_id"].annotation)
)


def client_id_ok(value: Any) -> bool:
    """True when the form accepts ``value`` as its client id unchanged (the cache leaves it out)."""
    if value is None:
        return True
    if type(value) is not str:
        return False
    try:
        return _CLIENT_ID.validate_python(value) is value
    except ValidationError:
        return False


class Item(NamedTuple):
    """One input row as the pipeline sees it."""

    row: int
    label: Hashable | None
    full: Any
    """The row as given: its exact problems are worked out from this when it does not validate."""
    key: Hashable | None = None
    """Exact cache key of the row without its client id; None: screen it on its own."""
    payload: Any = None
    """What a worker screens (picklable): the form or the cells, without the client id."""
    client_id: Any = None
    done: Any = None
    """An outcome already known without screening (a row that cannot be read, say)."""


class Task(Protocol):
    """What a pipeline does with the rows that miss the cache (picklable: it goes to workers)."""

    def screen(self, screener: Screener, payloads: list[Any], shipped: bool) -> list[Any]:
        """One result per payload; ``shipped``: the results cross a process boundary."""
        ...

    def adopt(self, results: list[Any]) -> list[Any]:
        """Results that came back from a worker, made ready for the cache."""
        ...


# -- how many workers this machine runs well -----------------------------------------------------


WORKER_MEMORY_BYTES = 64 * 2**20
"""What one worker process takes, about (55 MB measured with the built-in rules), for the cap."""

FAR_TOO_MANY_WORKERS = 10**12
"""Workers no machine runs (13 digits: a typo, or a byte count): refused, not capped."""


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def worker_cap() -> tuple[int, str]:
    """The most worker processes this machine runs well, and why: its CPUs and free memory."""
    cpus = _cpus()
    memory = _available_memory()
    cap, why = cpus, f"{cpus} CPU{'s' if cpus > 1 else ''}"
    if memory is not None:
        fits = max(1, memory // WORKER_MEMORY_BYTES)
        why += f", {memory / 2**30:.1f} GB of memory free at about 64 MB a worker"
        cap = min(cap, fits)
    return cap, why


def capped_workers(workers: int) -> tuple[int, str | None]:
    """``workers`` within what this machine runs well (`worker_cap`): the processes to start, and
    a note saying so when that is fewer than asked.

    Raises:
        ValueError: far more than any machine runs (`FAR_TOO_MANY_WORKERS` or more).
    """
    if workers <= 1:
        return workers, None
    cap, why = worker_cap()
    if workers >= FAR_TOO_MANY_WORKERS:
        raise ValueError(
            f"workers must be a whole number ≥ 1 and below {FAR_TOO_MANY_WORKERS:,} (got "
            f"{workers:,}: far more processes than any machine runs; this one runs {cap} well)"
        )
    if workers > cap:
        return cap, f"workers={workers:,} is more than this machine runs well ({why}); using {cap}"
    return workers, None


def bounded_workers(workers: int, stacklevel: int) -> int:
    """``workers`` for a Python door (`screen_csv`, `assess_many`, `assess_iter`,
    `assess_frame`): checked as a whole number ≥ 1, and capped as `capped_workers` says with a
    `UserWarning` pointing ``stacklevel`` frames up (the caller's line).

    Raises:
        ValueError: not a whole number ≥ 1, or far more than any machine runs.
    """
    if type(workers) is not int or workers < 1:
        raise ValueError(f"workers must be a whole number ≥ 1 (got {workers!r})")
    workers, capped = capped_workers(workers)
    if capped is not None:
        warnings.warn(capped, UserWarning, stacklevel=stacklevel + 1)
    return workers


# -- the screener, rebuilt in each worker --------------------------------------------------------


def resolve_screener(screener: Screener | None) -> Screener:
    """The screener to use: the caller's, or the built-in rules."""
    if screener is None:
        return default_screener()
    if not isinstance(screener, Screener):
        raise TypeError(
            f"screener must be a hipscreen.Screener (got {type(screener).__name__}); "
            "build one with hipscreen.Screener(rules_dir, extra_rules=..., thresholds=...)"
        )
    return screener


def _source_of(screener: Screener) -> bytes | None:
    """What a worker rebuilds ``screener`` from: None for the built-in rules, else its rule data."""
    if screener is default_screener():
        return None
    return pickle.dumps(screener.ruleset, protocol=pickle.HIGHEST_PROTOCOL)


_worker: dict[str, Any] = {}


def _guard_worker() -> None:
    """Make this worker process end with the batch's process, and leave Ctrl-C to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: killed when the parent exits
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    # With forkserver the direct parent is the fork server, which lives as long as any worker:
    # watch the batch's own process, through the sentinel multiprocessing gives its children.
    owner = multiprocessing.parent_process()

    def watch() -> None:
        if owner is not None and owner.sentinel is not None:
            multiprocessing.connection.wait([owner.sentinel])
        else:
            while os.getppid() == parent:
                time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="hipscreen-parent-watch", daemon=True).start()


def worker_screener(source: bytes | None, digest: str) -> Screener:
    """The screener a worker builds from the parent's rule data, checked against its digest.

    Raises:
        RuntimeError: the rules cannot be built, or differ from the parent's.
    """
    try:
        if source is None:
            screener = default_screener()
        else:
            screener = Screener.from_ruleset(pickle.loads(source))
    except Exception as error:
        raise RuntimeError(f"a worker could not build the screener: {error}") from None
    if screener.ruleset.digest != digest:
        raise RuntimeError(
            f"a worker built different rules ({screener.ruleset_version}) from the parent's "
            f"(digest {digest[:12]})"
        )
    return screener


_GC_THRESHOLDS = (20_000, 50, 100)
"""The collector's thresholds in a process that screens rows (Python's default: 700, 10, 10).
A chunk's rows, items and records stay alive until the chunk is written; with the default, each
is scanned again in every young collection until promoted."""


def settle_heap() -> None:
    """Take what is alive now (modules, rules, engine, models) out of the garbage collector's
    generations, so a full collection scans only what the rows made since, and collect less
    often (`_GC_THRESHOLDS`).

    Only for processes hipscreen owns that screen rows until they exit (batch workers, the
    ``hipscreen batch`` command): what is frozen is never collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


@contextlib.contextmanager
def settled_heap() -> Iterator[None]:
    """`settle_heap` for the time of a ``with`` block; the collector as it was afterwards."""
    thresholds = gc.get_threshold()
    settle_heap()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _init_worker(source: bytes | None, digest: str) -> None:
    _guard_worker()
    try:
        _worker["screener"] = worker_screener(source, digest)
    except RuntimeError as error:  # reported on the first task, with the reason
        _worker["problem"] = str(error)
    settle_heap()


def _work(task: Task, payloads: list[Any]) -> list[Any]:
    """Screen the rows that missed the cache, in a worker process."""
    problem = _worker.get("problem")
    if problem is not None:
        raise RuntimeError(problem)
    return task.screen(_worker["screener"], payloads, True)


class _Ref:
    __slots__ = ("chunk", "index")

    def __init__(self, chunk: _Chunk, index: int) -> None:
        self.chunk = chunk
        self.index = index


class _Chunk:
    __slots__ = ("items", "jobs", "refs", "results")

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self.refs: list[Any] = []
        self.jobs: list[futures.Future[list[Any]]] = []
        self.results: list[Any] = []


class Pipeline:
    """Runs items through the cache and the screening (inline or in processes), in input order.

    Args:
        task: what screening a row that missed the cache means (forms or table cells).
        screener: the rules to screen with; the built-in rules when None.
        workers: processes; 1 screens inline.
        chunk_size: rows read ahead at a time (``2 × workers`` chunks are in flight).
        cache_size: distinct rows to remember (the cache goes quiet while rows do not repeat).

    Raises:
        BatchInterrupted: (from `run`) a worker process died; ``rows_done`` counts the rows
            already yielded.
    """

    def __init__(
        self,
        task: Task,
        *,
        screener: Screener | None = None,
        workers: int = 1,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a whole number ≥ 1 (got {workers!r})")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a whole number ≥ 1 (got {chunk_size!r})")
        if not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be a whole number ≥ 0 (got {cache_size!r})")
        self.task = task
        self.screener = resolve_screener(screener)
        self.workers = workers
        self.chunk_size = chunk_size
        self.cache = SelfTuningCache(cache_size)
        self.yielded = 0
        self._pending: dict[Hashable, _Ref] = {}
        self._pool: futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> Pipeline:
        if self.workers > 1:
            # forkserver: workers start from a clean process (no inherited threads or engine
            # state) and later pools start fast; spawn where there is no forkserver.
            methods = multiprocessing.get_all_start_methods()
            method = "forkserver" if "forkserver" in methods else "spawn"
            self._pool = futures.ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_init_worker,
                initargs=(_source_of(self.screener), self.screener.ruleset.digest),
            )
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if exc_type is None:
            pool.shutdown(wait=True)
            return
        # Interrupted or failed: stop now, without waiting for the chunks in flight.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(5)

    def run(self, items: Iterable[Item]) -> Iterator[tuple[Item, Any]]:
        """(item, result) for each item, in input order.

        A result is what the task gives for a row (an assessment, a table record), `INVALID`,
        ``("engine", message)``, or the item's own ``done`` outcome.
        """
        queue: collections.deque[_Chunk] = collections.deque()
        iterator = iter(items)
        while batch := list(itertools.islice(iterator, self.chunk_size)):
            queue.append(self._start(batch))
            while len(queue) > 2 * self.workers:
                yield from self._finish(queue.popleft())
        while queue:
            yield from self._finish(queue.popleft())

    def _start(self, items: list[Item]) -> _Chunk:
        chunk = _Chunk(items)
        misses: list[Any] = []
        cache, pending, refs = self.cache, self._pending, chunk.refs
        for item in items:
            if item.done is not None:
                refs.append(item.done)
                continue
            key = item.key
            if not cache.active:  # the rows do not repeat: no look-ups, no keys kept
                cache.skip()
                key = None
            if key is not None:
                earlier = pending.get(key)
                if earlier is not None:  # the same row is being screened: share its result
                    cache.count_hit()
                    refs.append(earlier)
                    continue
                hit = cache.get(key)
                if hit is not None:
                    refs.append(hit)
                    continue
            ref = _Ref(chunk, len(misses))
            if key is not None:
                pending[key] = ref
            refs.append(ref)
            misses.append(item.payload)
        if misses:
            if self._pool is None:
                done: futures.Future[list[Any]] = futures.Future()
                done.set_result(self.task.screen(self.screener, misses, False))
                chunk.jobs.append(done)
            else:
                size = math.ceil(len(misses) / self.workers)
                try:
                    for start in range(0, len(misses), size):
                        piece = misses[start : start + size]
                        chunk.jobs.append(self._pool.submit(_work, self.task, piece))
                except BrokenProcessPool:  # a worker died while earlier chunks were in flight
                    raise self._worker_died() from None
        return chunk

    def _worker_died(self) -> BatchInterrupted:
        return BatchInterrupted("a worker process died (killed, or out of memory)", self.yielded)

    def _finish(self, chunk: _Chunk) -> Iterator[tuple[Item, Any]]:
        results = chunk.results
        try:
            for job in chunk.jobs:
                results += job.result()
        except BrokenProcessPool:
            raise self._worker_died() from None
        if self._pool is not None:
            results[:] = self.task.adopt(results)
        cache, pending = self.cache, self._pending
        for item, ref in zip(chunk.items, chunk.refs, strict=True):
            if type(ref) is _Ref:
                result = ref.chunk.results[ref.index]
                if item.key is not None and pending.get(item.key) is ref:
                    del pending[item.key]
                    cache.put(item.key, result)
            else:
                result = ref
            self.yielded += 1
            yield item, result
        chunk.items, chunk.refs, chunk.jobs = [], [], []
