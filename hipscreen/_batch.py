"""Batch screening: many forms in, one outcome per form out, in input order, in or across processes.

Every input row gives exactly one outcome: an `Assessment`, or a `RowError` naming the row and
every field problem. A bad row never stops the batch and never disappears.

Two exact caches keep identical content from paying for the rules engine twice: one here, keyed
on the raw row without its client id (before validation, so a repeated row costs a dictionary
look-up), and the screener's own, keyed on the validated form. Neither is approximate: a hit gives
exactly what screening the row again would give. Rows that cannot validate are never answered
from a cache: their problems are always worked out from the row as given.

With ``workers=N`` the rows that miss the cache are screened in N worker processes (each compiles
the rules once); results are identical to the sequential path and come back in input order.
"""

from __future__ import annotations

import codecs
import collections
import concurrent.futures as futures
import contextlib
import csv
import dataclasses
import importlib
import itertools
import math
import multiprocessing
import os
import pickle
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple, TypeAlias, cast, overload

from pydantic import TypeAdapter, ValidationError

from hipscreen._columns import TableError, TableReader, is_missing, text_cell
from hipscreen._errors import EngineError, FieldProblem, InvalidFormError
from hipscreen._form import IntakeForm, coerce_form
from hipscreen._results import Assessment
from hipscreen._screen import Screener, default_screener
from hipscreen._vocabulary import Severity

Axes: TypeAlias = Any
"""matplotlib's ``Axes`` (matplotlib is an optional extra: ``hipscreen[plot]``)."""
DataFrame: TypeAlias = Any
"""A ``pandas.DataFrame`` (pandas is an optional extra: ``hipscreen[pandas]``)."""

__all__ = [
    "BatchResult",
    "BatchSummary",
    "CsvReport",
    "RowError",
    "assess_iter",
    "assess_many",
    "screen_csv",
]

FormInput: TypeAlias = IntakeForm | Mapping[str, Any] | str | bytes

DEFAULT_CHUNK_SIZE = 2048
DEFAULT_CACHE_SIZE = 20_000
"""Distinct forms `assess_many` remembers (an assessment takes about 9 KB)."""
RECORD_CACHE_SIZE = 100_000
"""Distinct rows the table paths remember (a result row takes well under 1 KB)."""


def missing_extra(package: str, extra: str) -> ImportError:
    """The error for an optional dependency that is not installed, with the command to run."""
    return ImportError(f"{package} is not installed, run pip install 'hipscreen[{extra}]'")


def optional_module(name: str, package: str, extra: str) -> Any:
    """Import an optional dependency, or fail with the install command.

    Raises:
        ImportError: the package is not installed (the message says which extra to install).
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        raise missing_extra(package, extra) from None


# -- outcomes ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """The outcome for an input row that could not be screened, with every problem in it.

    Attributes:
        row: the row's position in the input, from 0.
        problems: every problem found, each naming the field, the value and what is allowed.
        key: the row's label: the mapping key or DataFrame index label; the line number for a
            CSV file; ``None`` when the input had no labels.
        client_id: the row's ``client_id`` as given (``None`` when absent).
    """

    row: int
    problems: tuple[FieldProblem, ...]
    key: Hashable | None = None
    client_id: Any = None

    @property
    def message(self) -> str:
        """Every problem on one line, separated by ``" | "``."""
        return " | ".join(str(problem) for problem in self.problems)

    def to_exception(self) -> InvalidFormError:
        """The `InvalidFormError` that ``hipscreen.assess`` raises for this row's form."""
        return InvalidFormError(list(self.problems))

    def __str__(self) -> str:
        label = f" ({self.key!r})" if self.key is not None else ""
        return f"row {self.row}{label}: {self.message}"

    def _repr_html_(self) -> str:
        from hipscreen._html import row_error_html

        return row_error_html(self)


class Record(NamedTuple):
    """A screened row reduced to table cells (without its row number and client id)."""

    finding_ids: tuple[str, ...]
    highest_severity: str | None
    referral_urgency: str | None
    exercise_ids: tuple[str, ...]
    not_assessed: tuple[str, ...]
    findings: tuple[tuple[str, str, str, str, str], ...]
    """(id, severity, confidence, sides, derived_from) for each finding: the long form."""


def record_of(assessment: Assessment) -> Record:
    """The table cells of an assessment."""
    findings = assessment.findings
    highest = max((f.severity for f in findings), key=lambda s: s.rank, default=None)
    referral = assessment.referral
    return Record(
        tuple(f.id for f in findings),
        None if highest is None else highest.value,
        None if referral is None else referral.urgency.value,
        tuple(r.exercise.id for r in assessment.recommendations),
        assessment.not_assessed,
        tuple(
            (
                f.id,
                f.severity.value,
                f.confidence.value,
                ";".join(s.value for s in f.sides),
                ";".join(f.derived_from),
            )
            for f in findings
        ),
    )


# -- summary -------------------------------------------------------------------------------------


@dataclass
class BatchSummary:
    """Counts over a batch: rows, screened, failed, and how often each finding fired.

    Attributes:
        rows: input rows seen.
        screened: rows that gave an assessment.
        failed: rows that gave a `RowError`.
        findings: finding id → screened rows with that finding, most frequent first.
        highest_severity: highest finding severity → screened rows ("none": no finding).
        referrals: referral urgency → screened rows with a referral of that urgency.
        ruleset_version: the rules that screened the batch.
    """

    rows: int = 0
    screened: int = 0
    failed: int = 0
    findings: dict[str, int] = field(default_factory=dict)
    highest_severity: dict[str, int] = field(default_factory=dict)
    referrals: dict[str, int] = field(default_factory=dict)
    ruleset_version: str = ""

    def prevalence(self) -> dict[str, float]:
        """Finding id → share (0–1) of screened rows with that finding, most frequent first."""
        if not self.screened:
            return {}
        return {fid: count / self.screened for fid, count in self.findings.items()}

    def __str__(self) -> str:
        lines = [
            f"rows read  {self.rows:>10,}",
            f"screened   {self.screened:>10,}",
            f"failed     {self.failed:>10,}",
        ]
        if self.findings:
            width = max(len(fid) for fid in self.findings)
            lines.append("findings (rows, share of screened rows):")
            for fid, share in self.prevalence().items():
                lines.append(f"  {fid:<{width}} {self.findings[fid]:>10,} {share:>7.1%}")
        if self.referrals:
            referred = ", ".join(f"{n:,} {urgency}" for urgency, n in self.referrals.items())
            lines.append(f"referrals: {referred}")
        return "\n".join(lines)

    def plot(self, ax: Axes | None = None, top: int | None = None) -> Axes:
        """A horizontal bar chart of finding prevalence (share of screened rows).

        Args:
            ax: matplotlib axes to draw on; a new figure when omitted.
            top: show only the ``top`` most frequent findings.

        Returns:
            The axes drawn on.

        Raises:
            ImportError: matplotlib is not installed (``pip install 'hipscreen[plot]'``).
        """
        plt = optional_module("matplotlib.pyplot", "matplotlib", "plot")
        shares = list(self.prevalence().items())[:top]
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.3 * max(len(shares), 1) + 1.2))
        names = [fid for fid, _ in reversed(shares)]
        values = [100 * share for _, share in reversed(shares)]
        ax.barh(names, values, color="#4c72b0")
        ax.set_xlabel("% of screened rows")
        ax.set_xlim(0, 110)
        ax.set_title(f"Finding prevalence ({self.screened:,} screened, {self.failed:,} failed)")
        for y, value in enumerate(values):
            ax.text(value + 1, y, f"{value:.1f}%", va="center", fontsize=8)
        return ax

    def _repr_html_(self) -> str:
        from hipscreen._html import summary_html

        return summary_html(self)


class Tally:
    """Builds a `BatchSummary` as rows stream past: one counter step per row."""

    def __init__(self) -> None:
        self.rows = 0
        self.failed = 0
        self._by_record: collections.Counter[tuple[tuple[str, ...], str | None, str | None]] = (
            collections.Counter()
        )

    def add(self, outcome: Record | RowError) -> None:
        """Count one row's outcome."""
        self.rows += 1
        if isinstance(outcome, RowError):
            self.failed += 1
        else:
            key = (outcome.finding_ids, outcome.highest_severity, outcome.referral_urgency)
            self._by_record[key] += 1

    def summary(self, ruleset_version: str) -> BatchSummary:
        """The counts so far."""
        findings: collections.Counter[str] = collections.Counter()
        severity: collections.Counter[str] = collections.Counter()
        referrals: collections.Counter[str] = collections.Counter()
        for (ids, highest, urgency), count in self._by_record.items():
            for fid in ids:
                findings[fid] += count
            severity[highest or "none"] += count
            if urgency:
                referrals[urgency] += count
        rank = {s.value: s.rank for s in Severity}
        return BatchSummary(
            rows=self.rows,
            screened=self.rows - self.failed,
            failed=self.failed,
            findings=dict(sorted(findings.items(), key=lambda item: (-item[1], item[0]))),
            highest_severity=dict(sorted(severity.items(), key=lambda i: -rank.get(i[0], -1))),
            referrals=dict(sorted(referrals.items())),
            ruleset_version=ruleset_version,
        )


# -- the exact cache, and the screening done on a miss -------------------------------------------


class _LRU:
    """A bounded mapping that forgets the least recently used entry first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    def get(self, key: Hashable) -> Any:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        self._data[key] = value
        if len(self._data) > self.size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


INVALID = "invalid"
"""A miss result: the row does not validate (its exact problems are worked out from the row)."""

_CLIENT_ID: TypeAdapter[Any] = TypeAdapter(
    cast(Any, IntakeForm.model_fields["client_id"].annotation)
)


def client_id_ok(value: Any) -> bool:
    """True when the form accepts ``value`` as its client id unchanged."""
    if value is None:
        return True
    if type(value) is not str:
        return False
    try:
        return _CLIENT_ID.validate_python(value) is value
    except ValidationError:
        return False


Mode = Literal["assessment", "json", "record"]
ReaderSpec = tuple[tuple[Any, ...], tuple[str, ...]]

_readers: dict[ReaderSpec, TableReader] = {}


NORMALISED_CACHE_SIZE = 20_000
"""Distinct validated forms each worker remembers as table records (well under 1 KB each)."""

_normalised = _LRU(NORMALISED_CACHE_SIZE)


class _Canon:
    """Shares equal records: many distinct forms give the same record (it holds no evidence)."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._seen: dict[Record, Record] = {}

    def __call__(self, record: Record) -> Record:
        seen = self._seen.get(record)
        if seen is not None:
            return seen
        if len(self._seen) >= self.size:
            self._seen.clear()
        self._seen[record] = record
        return record


_canon = _Canon()


def _screen_record(screener: Screener, cells: Any, spec: ReaderSpec) -> Any:
    reader = _readers.get(spec)
    if reader is None:
        reader = _readers[spec] = TableReader(spec[0], ignore=spec[1])
    form, problems = reader.form(cells)
    if problems:
        return INVALID
    try:
        intake = coerce_form(form)
    except InvalidFormError:
        return INVALID
    # Second exact cache, on the validated form: "Mild" and 1, or "a;b" and "b;a", are one form.
    key = intake.model_dump_json(exclude={"client_id"})
    record = _normalised.get(key)
    if record is None:
        try:
            record = _canon(record_of(screener.assess(intake)))
        except EngineError as error:
            return ("engine", str(error))
        _normalised.put(key, record)
    return record


def _screen_form(screener: Screener, payload: Any) -> Any:
    try:
        return screener.assess(payload)
    except InvalidFormError:
        return INVALID
    except EngineError as error:
        return ("engine", str(error))


def _work(mode: Mode, spec: ReaderSpec | None, payloads: list[Any]) -> list[Any]:
    """Screen the rows that missed the cache (in a worker process, or inline)."""
    screener = default_screener()
    if mode == "record":
        assert spec is not None
        return [_screen_record(screener, payload, spec) for payload in payloads]
    out = []
    for payload in payloads:
        result = _screen_form(screener, payload)
        if mode == "json" and isinstance(result, Assessment):
            # Pickling a pydantic model costs ~250 µs; its JSON is several times cheaper.
            json = result.model_dump_json().encode()
            result = Shipped(json, record_of(result), result.client_id)
        out.append(result)
    return out


class Shipped:
    """An assessment screened in a worker process: its JSON and table record.

    Rebuilding an `Assessment` from JSON costs ~150 µs, as much as a third of screening it, so
    the batch keeps what came back and rebuilds only the outcomes that are read; summaries and
    tables use the record.
    """

    __slots__ = ("_assessment", "client_id", "json", "record")

    def __init__(self, json: bytes, record: Record, client_id: str | None) -> None:
        self.json = json
        self.record = record
        self.client_id = client_id

    def get(self) -> Assessment:
        """The assessment (rebuilt once, on first use)."""
        try:
            return self._assessment
        except AttributeError:
            self._assessment: Assessment = Assessment.model_validate_json(self.json)
            return self._assessment


def _warm_up() -> None:
    default_screener()  # compile the rules once per worker, before the first task


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
        mode: what a miss gives back: an ``"assessment"`` or a table ``"record"``.
        workers: processes; 1 screens inline.
        chunk_size: rows read ahead at a time (``2 × workers`` chunks are in flight).
        cache_size: distinct rows to remember.
        spec: for table rows, how to rebuild the `TableReader` (payloads are then cells).
    """

    def __init__(
        self,
        mode: Mode,
        *,
        workers: int = 1,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        cache_size: int = DEFAULT_CACHE_SIZE,
        spec: ReaderSpec | None = None,
    ) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a whole number ≥ 1 (got {workers!r})")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a whole number ≥ 1 (got {chunk_size!r})")
        self.mode: Mode = "json" if mode == "assessment" and workers > 1 else mode
        self.workers = workers
        self.chunk_size = chunk_size
        self.cache = _LRU(cache_size)
        self.spec = spec
        self._pending: dict[Hashable, _Ref] = {}
        self._pool: futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> Pipeline:
        if self.workers > 1:
            # forkserver: workers start from a clean process (no inherited threads or engine
            # state) and later pools start fast; spawn where there is no forkserver.
            methods = multiprocessing.get_all_start_methods()
            method = "forkserver" if "forkserver" in methods else "spawn"
            self._pool = futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context(method), initializer=_warm_up
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, items: Iterable[Item]) -> Iterator[tuple[Item, Any]]:
        """(item, result) for each item, in input order.

        A result is an `Assessment` or `Record`, `INVALID`, ``("engine", message)``, or the
        item's own ``done`` outcome.
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
            if key is not None:
                hit = cache.get(key)
                if hit is not None:
                    refs.append(hit)
                    continue
                earlier = pending.get(key)
                if earlier is not None:
                    refs.append(earlier)
                    continue
            ref = _Ref(chunk, len(misses))
            if key is not None:
                pending[key] = ref
            refs.append(ref)
            misses.append(item.payload)
        if misses:
            if self._pool is None:
                done: futures.Future[list[Any]] = futures.Future()
                done.set_result(_work(self.mode, self.spec, misses))
                chunk.jobs.append(done)
            else:
                size = math.ceil(len(misses) / self.workers)
                for start in range(0, len(misses), size):
                    piece = misses[start : start + size]
                    chunk.jobs.append(self._pool.submit(_work, self.mode, self.spec, piece))
        return chunk

    def _finish(self, chunk: _Chunk) -> Iterator[tuple[Item, Any]]:
        results = chunk.results
        for job in chunk.jobs:
            results += job.result()
        if self.mode == "record" and self._pool is not None:
            # Records from workers arrive as fresh copies: share equal ones to keep the cache small.
            results[:] = [_canon(r) if isinstance(r, Record) else r for r in results]
        cache, pending = self.cache, self._pending
        for item, ref in zip(chunk.items, chunk.refs, strict=True):
            if type(ref) is _Ref:
                result = ref.chunk.results[ref.index]
                if item.key is not None and pending.get(item.key) is ref:
                    del pending[item.key]
                    cache.put(item.key, result)
            else:
                result = ref
            yield item, result
        chunk.items, chunk.refs, chunk.jobs = [], [], []


def progress_bar(enabled: bool, total: int | None, unit: str, **options: Any) -> Any:
    """A tqdm progress bar (a widget in Jupyter), or None when not ``enabled``.

    Raises:
        ImportError: tqdm is not installed (``pip install 'hipscreen[progress]'``).
    """
    if not enabled:
        return None
    tqdm = optional_module("tqdm.auto", "tqdm", "progress").tqdm
    return tqdm(total=total, unit=unit, **options)


# -- forms: assess_iter and assess_many ----------------------------------------------------------


def _client_of(form: Any) -> Any:
    if isinstance(form, IntakeForm):
        return form.client_id
    if isinstance(form, Mapping):
        return form.get("client_id")
    return None


def _problems(row: int, label: Hashable | None, form: Any) -> RowError | Assessment:
    """Screen ``form`` here, as ``hipscreen.assess`` would, turning its errors into a RowError."""
    try:
        return default_screener().assess(form)
    except InvalidFormError as error:
        return RowError(row, tuple(error.problems), label, _client_of(form))
    except EngineError as error:
        return _engine_error(row, label, _client_of(form), str(error))


def _engine_error(row: int, label: Hashable | None, client_id: Any, message: str) -> RowError:
    problem = FieldProblem("", None, f"the rules engine failed on this form: {message}")
    return RowError(row, (problem,), label, client_id)


def form_item(row: int, label: Hashable | None, form: Any) -> Item:
    """The pipeline item for one form given to `assess_many`."""
    if isinstance(form, IntakeForm):
        content = form.model_dump_json(exclude={"client_id"})
        return Item(row, label, form, ("form", content), content, form.client_id)
    if isinstance(form, str | bytes):
        return Item(row, label, form, ("json", form), form)
    if isinstance(form, Mapping):
        client_id = form.get("client_id")
        if client_id_ok(client_id):
            rest = {k: v for k, v in form.items() if k != "client_id"}
            try:
                # Exact: pickle tells 1 from 1.0 from True, and a list from a tuple.
                key = pickle.dumps(rest, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # unpicklable: screened here, on its own
                pass
            else:
                return Item(row, label, form, key, rest, client_id)
    # An invalid client id, an unpicklable value, or not a form at all: no cache, no worker.
    return Item(row, label, form, done=_problems(row, label, form))


def _form_items(forms: Iterable[Any] | Mapping[Hashable, Any]) -> Iterator[Item]:
    if isinstance(forms, Mapping):
        for row, (label, form) in enumerate(forms.items()):
            yield form_item(row, label, form)
    else:
        for row, form in enumerate(forms):
            yield form_item(row, None, form)


def form_outcome(item: Item, result: Any) -> Assessment | RowError:
    """The outcome of a form item, with its client id in place."""
    if isinstance(result, Shipped):
        result = result.get()
    if isinstance(result, Assessment):
        client_id = item.client_id
        if client_id is None or result.client_id == client_id:
            return result
        return result.model_copy(update={"client_id": client_id})
    if isinstance(result, RowError):
        return result
    if result == INVALID:
        return _problems(item.row, item.label, item.full)
    return _engine_error(item.row, item.label, _client_of(item.full), result[1])


def assess_iter(
    forms: Iterable[FormInput] | Mapping[Hashable, FormInput],
    *,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> Iterator[Assessment | RowError]:
    """Screen forms lazily: `assess_many`'s outcomes, yielded as they are ready.

    Memory stays bounded however many forms there are (a few chunks in flight plus the cache),
    so it suits a stream of millions. The arguments are `assess_many`'s.

    Examples:
        >>> outcomes = assess_iter([{"tightness": {"iliopsoas": 3}}, {"age": "old"}])
        >>> [type(outcome).__name__ for outcome in outcomes]
        ['Assessment', 'RowError']
    """
    with Pipeline(
        "assessment", workers=workers, chunk_size=chunk_size, cache_size=cache_size
    ) as pipeline:
        for item, result in pipeline.run(_form_items(forms)):
            yield form_outcome(item, result)


def assess_many(
    forms: Iterable[FormInput] | Mapping[Hashable, FormInput],
    *,
    workers: int = 1,
    progress: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> BatchResult:
    """Screen many intake forms: one outcome per form, in input order.

    Each outcome is an `Assessment`, or a `RowError` with the row's position (and key) and every
    field problem: a bad row never stops the batch. Forms with identical content (whatever their
    ``client_id``) are screened once: results are cached exactly by content.

    Args:
        forms: any iterable of forms (`IntakeForm`, mappings, or JSON strings), or a mapping of
            label → form (each outcome then keeps its label as ``key``).
        workers: processes to screen in; 1 screens in this process. More pay off for thousands
            of distinct forms (each worker compiles the rules once when it starts). Outcomes are
            the same whatever the number.
        progress: show a progress bar (tqdm; a widget in Jupyter).
        chunk_size: forms handed out at a time.
        cache_size: distinct forms to remember (about 9 KB each).

    Returns:
        A `BatchResult`: the outcomes as a sequence, with ``summary()``, ``to_frame()``,
        ``plot_prevalence()`` and an HTML view in notebooks.

    Raises:
        ImportError: ``progress=True`` and tqdm is not installed.
        ValueError: ``workers`` or ``chunk_size`` is below 1.

    Examples:
        >>> result = assess_many([{"tightness": {"iliopsoas": 3}}, {"age": 200}, {}])
        >>> [isinstance(outcome, RowError) for outcome in result]
        [False, True, False]
        >>> result.errors[0].problems[0].field
        'age'
    """
    total = len(forms) if isinstance(forms, Sized) else None
    bar = progress_bar(progress, total, "form")
    bases: list[Assessment | RowError | Shipped] = []
    client_ids: list[Any] = []
    labels: list[Hashable | None] = []
    try:
        with Pipeline(
            "assessment", workers=workers, chunk_size=chunk_size, cache_size=cache_size
        ) as pipeline:
            for item, result in pipeline.run(_form_items(forms)):
                if isinstance(result, Assessment | Shipped):
                    bases.append(result)  # shared with equal forms; the id goes back on read
                    client_ids.append(item.client_id)
                else:
                    bases.append(form_outcome(item, result))
                    client_ids.append(None)
                labels.append(item.label)
                if bar is not None and len(bases) % 512 == 0:
                    bar.update(512)
    finally:
        if bar is not None:
            bar.update(len(bases) - bar.n)
            bar.close()
    keyed = isinstance(forms, Mapping)
    return BatchResult(bases, client_ids, labels if keyed else None)


class BatchResult(Sequence["Assessment | RowError"]):
    """The outcomes of `assess_many`: one per input form, in input order.

    Index or iterate it for `Assessment` and `RowError` outcomes. In Jupyter it shows as an
    HTML table.

    Examples:
        >>> result = assess_many([{"strength": {"gluteus_maximus": 2}}, {"symptoms": ["nope"]}])
        >>> len(result), len(result.assessments()), len(result.errors)
        (2, 1, 1)
        >>> result.summary().failed
        1
    """

    def __init__(
        self,
        bases: list[Assessment | RowError | Shipped],
        client_ids: list[Any],
        keys: list[Hashable | None] | None = None,
    ) -> None:
        # Equal forms share one cached assessment, stored without the client id; the id is put
        # back when an outcome is read, so a million outcomes do not hold a million copies.
        self._bases = bases
        self._client_ids = client_ids
        self.keys = keys
        """The input labels (when the forms came as a mapping), else None."""

    def __len__(self) -> int:
        return len(self._bases)

    @overload
    def __getitem__(self, index: int) -> Assessment | RowError: ...
    @overload
    def __getitem__(self, index: slice) -> list[Assessment | RowError]: ...
    def __getitem__(
        self, index: int | slice
    ) -> Assessment | RowError | list[Assessment | RowError]:
        if isinstance(index, slice):
            return [self._outcome(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"row {index} is out of range ({len(self)} rows)")
        return self._outcome(index)

    def _outcome(self, index: int) -> Assessment | RowError:
        base = self._bases[index]
        if isinstance(base, Shipped):
            base = base.get()
        client_id = self._client_ids[index]
        if isinstance(base, RowError) or client_id is None or base.client_id == client_id:
            return base
        return base.model_copy(update={"client_id": client_id})

    def __iter__(self) -> Iterator[Assessment | RowError]:
        for index in range(len(self._bases)):
            yield self._outcome(index)

    @property
    def errors(self) -> list[RowError]:
        """The rows that could not be screened, in input order."""
        return [base for base in self._bases if isinstance(base, RowError)]

    @property
    def ok(self) -> bool:
        """True when every row was screened."""
        return not any(isinstance(base, RowError) for base in self._bases)

    def assessments(self) -> list[Assessment]:
        """The assessments of the rows that were screened, in input order."""
        return [outcome for outcome in self if isinstance(outcome, Assessment)]

    def records(self) -> Iterator[tuple[int, Any, Record | RowError]]:
        """(row, client id, table record or error) per row: what the table views are made of."""
        records: dict[int, Record] = {}
        for row, (base, client_id) in enumerate(zip(self._bases, self._client_ids, strict=True)):
            if isinstance(base, RowError):
                yield row, base.client_id, base
                continue
            if isinstance(base, Shipped):
                yield row, base.client_id if client_id is None else client_id, base.record
                continue
            record = records.get(id(base))
            if record is None:
                record = records[id(base)] = record_of(base)
            yield row, base.client_id if client_id is None else client_id, record

    def summary(self) -> BatchSummary:
        """Rows, screened, failed, and how many screened rows have each finding."""
        tally = Tally()
        for _, _, record in self.records():
            tally.add(record)
        return tally.summary(default_screener().ruleset_version)

    def plot_prevalence(self, ax: Axes | None = None, top: int | None = None) -> Axes:
        """A bar chart of how often each finding fired (see `BatchSummary.plot`)."""
        return self.summary().plot(ax, top)

    def to_frame(self, *, long: bool = False) -> DataFrame:
        """The outcomes as a pandas DataFrame, in the columns of `hipscreen.assess_frame`.

        Args:
            long: one row per finding instead of one row per input.

        Raises:
            ImportError: pandas is not installed (``pip install 'hipscreen[pandas]'``).
        """
        from hipscreen._frame import results_frame

        version = self.summary().ruleset_version
        return results_frame(self.records(), self.keys, version, long=long)

    def raise_for_errors(self) -> None:
        """Raise the first failed row's `InvalidFormError`, if a row failed.

        Raises:
            InvalidFormError: for the first failed row.
        """
        for base in self._bases:
            if isinstance(base, RowError):
                raise base.to_exception()

    def __repr__(self) -> str:
        failed = sum(isinstance(base, RowError) for base in self._bases)
        return (
            f"<BatchResult {len(self):,} rows: {len(self) - failed:,} screened, {failed:,} failed>"
        )

    def _repr_html_(self) -> str:
        from hipscreen._html import batch_html

        return batch_html(self)


# -- tables: rows of cells (CSV files and DataFrames) --------------------------------------------


def table_item(
    reader: TableReader,
    row: int,
    label: Hashable | None,
    cells: Sequence[Any],
    failed: RowError | None = None,
) -> Item:
    """The pipeline item for one table row: its cells, and its error if it could not be read."""
    width = len(reader.columns)
    index = reader.client_index
    if failed is not None or len(cells) != width:
        given = cells[index] if index is not None and index < len(cells) else None
        client_id = None if is_missing(given) else text_cell(given)
        if failed is None:
            message = f"the row has {len(cells)} cells but the header has {width} columns"
            failed = RowError(row, (FieldProblem("", None, message),), label)
        return Item(row, label, cells, done=dataclasses.replace(failed, client_id=client_id))
    client_id = None
    if index is not None:
        client_id = None if is_missing(cells[index]) else text_cell(cells[index])
        if not client_id_ok(client_id):
            return Item(row, label, cells, done=table_problems(reader, row, label, cells))
        blanked = list(cells)
        blanked[index] = None
    else:
        blanked = list(cells)
    return Item(row, label, cells, _cells_key(blanked), blanked, client_id)


def _cells_key(cells: list[Any]) -> Hashable:
    # CSV rows are all text: joining them is cheaper than pickling, and exact when the separator
    # appears nowhere inside a cell.
    if all(type(cell) is str or cell is None for cell in cells):
        joined = "\x1f".join("\x1e" if cell is None else cell for cell in cells)
        if joined.count("\x1f") == len(cells) - 1 and joined.count("\x1e") == cells.count(None):
            return joined
    return pickle.dumps(tuple(cells), protocol=pickle.HIGHEST_PROTOCOL)


def table_problems(reader: TableReader, row: int, label: Hashable | None, cells: Any) -> RowError:
    """Every problem of a table row that does not validate, worked out from its cells."""
    form, problems = reader.form(cells)
    try:
        coerce_form(form)
    except InvalidFormError as error:
        problems += error.problems
    return RowError(row, tuple(problems), label, form.get("client_id"))


def table_outcome(reader: TableReader, item: Item, result: Any) -> Record | RowError:
    """The record (or error) for one table row, from the pipeline's result."""
    if isinstance(result, Record | RowError):
        return result
    if result == INVALID:
        return table_problems(reader, item.row, item.label, item.full)
    return _engine_error(item.row, item.label, item.client_id, result[1])


# -- CSV files -----------------------------------------------------------------------------------

RESULT_COLUMNS = (
    "row",
    "client_id",
    "ok",
    "error",
    "finding_ids",
    "highest_severity",
    "referral_urgency",
    "exercise_ids",
    "not_assessed",
    "ruleset_version",
)
"""The columns of a result table, one row per input row (``line`` follows ``row`` for CSV)."""


@dataclass
class CsvReport:
    """What `screen_csv` did.

    Attributes:
        summary: rows read, screened and failed, and the count of each finding.
        output: where the results went (one row per input row), or None for a stream.
        errors: where the failed rows went, with their problems and original cells.
    """

    summary: BatchSummary
    output: Path | None
    errors: Path


class _Lines:
    """Decodes a binary file line by line, remembering lines that are not valid text."""

    def __init__(self, binary: IO[bytes], encoding: str) -> None:
        self.binary = binary
        self.encoding = encoding
        self.bytes_read = 0
        self.line = 0
        self.bad: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        encoding = self.encoding
        for raw in self.binary:
            self.line += 1
            self.bytes_read += len(raw)
            if self.line == 1 and raw.startswith(codecs.BOM_UTF8) and encoding == "utf-8":
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as error:
                bad = raw[error.start : error.start + 1]
                self.bad[self.line] = (
                    f"line {self.line} is not valid {encoding} text (byte 0x{bad.hex()} at "
                    f"position {error.start + 1}); save the file as UTF-8 or give its encoding"
                )
                # surrogateescape keeps the original bytes: the errors file writes them back.
                yield raw.decode(encoding, "surrogateescape")


def _check_encoding(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise TableError([f"unknown encoding {encoding!r}"], "input") from None
    if "a,b\n".encode(name) != b"a,b\n":
        raise TableError(
            [f"encoding {encoding!r} is not ASCII-compatible; save the file as UTF-8"], "input"
        )
    return name


CsvRow = tuple[int, int, list[str], RowError | None]
"""(row from 0, line of its first cell, cells, the error when the row cannot be read)."""


def read_csv_rows(
    binary: IO[bytes], name: str, *, encoding: str = "utf-8", delimiter: str = ","
) -> tuple[list[str], _Lines, Iterator[CsvRow]]:
    """The header, the line decoder (for progress), and the stream of rows of a CSV file.

    Raises:
        TableError: the file is empty, or its header is not text in ``encoding``.
    """
    encoding = _check_encoding(encoding)
    head = binary.peek(4)[:4] if hasattr(binary, "peek") else b""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TableError([f"{name} is UTF-16 text; save it as UTF-8 CSV"], name)
    lines = _Lines(binary, encoding)
    reader = csv.reader(iter(lines), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise TableError(
            [f"{name} is empty: the first line must name the columns (client_id, age, …)"], name
        ) from None
    except csv.Error as error:
        raise TableError([f"the header line cannot be read as CSV: {error}"], name) from None
    if 1 in lines.bad or any("\x00" in cell for cell in header):
        problem = lines.bad.get(1, "the header line contains NUL bytes")
        raise TableError(
            [f"{problem} (is it a UTF-8 CSV file, not UTF-16 or a spreadsheet?)"], name
        )
    if not header:
        raise TableError(["the first line is blank; it must name the columns"], name)

    def rows() -> Iterator[CsvRow]:
        row = 0
        end = lines.line
        while True:
            start = end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                end = lines.line
                problem = FieldProblem("", None, f"line {start} cannot be read as CSV: {error}")
                yield row, start, [], RowError(row, (problem,), start)
                row += 1
                continue
            end = lines.line
            if not cells:
                continue  # a blank line is not a row
            failed = None
            if lines.bad:
                bad = [lines.bad.pop(n) for n in range(start, end + 1) if n in lines.bad]
                if bad:
                    problems = tuple(FieldProblem("", None, message) for message in bad)
                    failed = RowError(row, problems, start)
            yield row, start, cells, failed
            row += 1

    return header, lines, rows()


class _CsvSink:
    def __init__(self, stream: IO[str], columns: Sequence[str]) -> None:
        self.writer = csv.writer(stream, lineterminator="\n")
        self.writer.writerow(columns)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.writer.writerows(rows)

    def close(self) -> None:
        pass


class _ParquetSink:
    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        pa = optional_module("pyarrow", "pyarrow", "pandas")
        pq = optional_module("pyarrow.parquet", "pyarrow", "pandas")
        types = {"row": pa.int64(), "line": pa.int64(), "ok": pa.bool_()}
        self.pa = pa
        self.schema = pa.schema([(c, types.get(c, pa.string())) for c in columns])
        self.writer = pq.ParquetWriter(str(path), self.schema)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        columns = [list(column) for column in zip(*rows, strict=True)]
        for i, column in enumerate(columns):
            if self.schema.field(i).type == self.pa.string():
                columns[i] = [_printable(value) for value in column]
        self.writer.write_table(self.pa.table(columns, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # bytes kept from an undecodable line
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def _result_row(
    row: int, line: int, client_id: Any, outcome: Record | RowError, version: str
) -> tuple[Any, ...]:
    if isinstance(outcome, RowError):
        # A row that was not valid text keeps its bytes in the errors file; the results file
        # stays valid UTF-8.
        return (
            row + 1,
            line,
            _printable(client_id),
            False,
            _printable(outcome.message),
            None,
            None,
            None,
            None,
            None,
            version,
        )
    return (
        row + 1,
        line,
        client_id,
        True,
        None,
        ";".join(outcome.finding_ids),
        outcome.highest_severity,
        outcome.referral_urgency,
        ";".join(outcome.exercise_ids),
        ";".join(outcome.not_assessed),
        version,
    )


def default_errors_path(output: Path | None, source: Path | None) -> Path:
    """``results.csv`` → ``results.errors.csv`` (beside the input when writing to a stream)."""
    base = output if output is not None else (source or Path("hipscreen"))
    return base.with_name(f"{base.name.split('.')[0]}.errors.csv")


def screen_csv(
    source: str | os.PathLike[str] | IO[bytes],
    output: str | os.PathLike[str] | IO[str],
    *,
    errors: str | os.PathLike[str] | None = None,
    output_format: Literal["csv", "parquet"] | None = None,
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    cache_size: int = RECORD_CACHE_SIZE,
    encoding: str = "utf-8",
    delimiter: str = ",",
    ignore_columns: Sequence[str] = (),
    progress: bool = False,
) -> CsvReport:
    """Screen a CSV file of intake forms, streaming: a file larger than memory works.

    The input follows the column convention (`hipscreen._columns`). The output has one row per
    input row, in order (columns: ``row`` from 1, ``line``, then those of `assess_frame`); the
    failed rows also go to ``errors``, with their problems and original cells, so nothing is lost.
    Blank lines are skipped.

    Args:
        source: the CSV file (a path, or a binary stream).
        output: where the results go: a ``.csv`` or ``.parquet`` path, or a text stream.
        errors: where failed rows go (CSV; written even when no row failed); by default beside
            ``output`` as ``<name>.errors.csv``.
        output_format: ``"csv"`` or ``"parquet"``; from the output's suffix when omitted.
        workers: processes to screen in.
        chunk_size: rows read ahead at a time.
        cache_size: distinct rows to remember.
        encoding: the input's text encoding (an ASCII-compatible one, e.g. ``cp1252``).
        delimiter: the input's cell separator.
        ignore_columns: input columns to skip (notes, names, a spreadsheet's index).
        progress: show a progress bar on standard error.

    Returns:
        A `CsvReport` with the summary and the paths written.

    Raises:
        TableError: the file as a whole cannot be screened (empty, unknown columns, not text);
            nothing is written then.
        ImportError: Parquet output without pyarrow, or ``progress=True`` without tqdm.
    """
    source_path = Path(source) if isinstance(source, str | os.PathLike) else None
    name = str(source_path) if source_path is not None else "input"
    out_path = Path(output) if isinstance(output, str | os.PathLike) else None
    fmt = output_format or ("parquet" if out_path and out_path.suffix == ".parquet" else "csv")
    if fmt == "parquet" and out_path is None:
        raise ValueError("Parquet output needs a file path, not a stream")
    errors_path = Path(errors) if errors is not None else default_errors_path(out_path, source_path)
    version = default_screener().ruleset_version

    with contextlib.ExitStack() as stack:
        binary: IO[bytes]
        if source_path is not None:
            try:
                binary = stack.enter_context(open(source_path, "rb"))
            except OSError as error:
                raise TableError([f"cannot read {name}: {error.strerror}"], name) from None
        else:
            assert not isinstance(source, str | os.PathLike)
            binary = source
        header, lines, rows = read_csv_rows(binary, name, encoding=encoding, delimiter=delimiter)
        reader = TableReader(header, source=name, ignore=ignore_columns)
        total = source_path.stat().st_size if source_path is not None else None
        columns = (*RESULT_COLUMNS[:1], "line", *RESULT_COLUMNS[1:])
        sink: _CsvSink | _ParquetSink
        if fmt == "parquet":
            assert out_path is not None
            sink = _ParquetSink(out_path, columns)
        else:
            stream: IO[str]
            if out_path is not None:
                stream = stack.enter_context(open(out_path, "w", encoding="utf-8", newline=""))
            else:
                assert not isinstance(output, str | os.PathLike)
                stream = output
            sink = _CsvSink(stream, columns)
        error_stream = stack.enter_context(
            open(errors_path, "w", encoding="utf-8", newline="", errors="surrogateescape")
        )
        error_writer = csv.writer(error_stream, lineterminator="\n")
        error_writer.writerow(["row", "line", "error", *header])
        bar = progress_bar(progress, total, "B", unit_scale=True, unit_divisor=1024, leave=True)
        tally = Tally()
        lines_of: dict[int, int] = {}

        def items() -> Iterator[Item]:
            for row, line, cells, failed in rows:
                lines_of[row] = line
                yield table_item(reader, row, line, cells, failed)

        try:
            with Pipeline(
                "record",
                workers=workers,
                chunk_size=chunk_size,
                cache_size=cache_size,
                spec=reader.spec,
            ) as pipeline:
                out: list[tuple[Any, ...]] = []
                for item, result in pipeline.run(items()):
                    outcome = table_outcome(reader, item, result)
                    tally.add(outcome)
                    line = lines_of.pop(item.row)
                    if isinstance(outcome, RowError):
                        client_id = outcome.client_id
                        error_writer.writerow([item.row + 1, line, outcome.message, *item.full])
                    else:
                        client_id = item.client_id
                    out.append(_result_row(item.row, line, client_id, outcome, version))
                    if len(out) >= chunk_size:
                        sink.write(out)
                        out = []
                        if bar is not None:
                            bar.update(lines.bytes_read - bar.n)
                sink.write(out)
        finally:
            sink.close()
            if bar is not None:
                bar.update(lines.bytes_read - bar.n)
                bar.close()
    return CsvReport(tally.summary(version), out_path, errors_path)
