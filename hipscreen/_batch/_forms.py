"""The form-level API: `assess_many`, `assess_iter` and the `BatchResult` they give.

An exact cache keeps identical content from paying for the rules engine twice: the pipeline's,
keyed on the raw form without its client id (before validation, so a repeated form costs a
dictionary look-up). It is not approximate: a hit gives exactly what screening the form again
would give. Forms that cannot validate are never answered from a cache: their problems are
always worked out from the form. The forms of a chunk are screened together, many to an engine
session (`Screener.assess_validated`).
"""

from __future__ import annotations

import pickle
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any, TypeAlias, overload

from hipscreen._batch._extras import DataFrame, progress_bar
from hipscreen._batch._outcomes import (
    Axes,
    BatchSummary,
    Record,
    RowError,
    Tally,
    engine_error,
    record_of,
    unreadable,
)
from hipscreen._batch._pipeline import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_CHUNK_SIZE,
    INVALID,
    Item,
    Pipeline,
    bounded_workers,
    client_id_ok,
    resolve_screener,
)
from hipscreen._cache import SelfTuningCache
from hipscreen._errors import EngineError, InvalidFormError
from hipscreen._intake.form import IntakeForm, coerce_form
from hipscreen._results import Assessment
from hipscreen._screen import Screener

__all__ = ["BatchResult", "FormInput", "assess_iter", "assess_many"]

FormInput: TypeAlias = IntakeForm | Mapping[str, Any] | str | bytes


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


class FormTask:
    """Screens forms into assessments; picklable, for worker processes."""

    __slots__ = ()

    def screen(self, screener: Screener, payloads: list[Any], shipped: bool) -> list[Any]:
        results: list[Any] = []
        valid: list[IntakeForm] = []
        for payload in payloads:
            try:
                valid.append(coerce_form(payload))
                results.append(None)  # screened below, with the chunk's other valid forms
            except Exception:  # invalid, or unreadable: worked out again from the form
                results.append(INVALID)
        screened = iter(screener.assess_validated(valid))
        out: list[Any] = []
        for result in results:
            if result is None:
                result = next(screened)
                if isinstance(result, EngineError):
                    result = ("engine", str(result))
            if shipped and isinstance(result, Assessment):
                # Pickling a pydantic model costs ~250 µs; its JSON is several times cheaper.
                json = result.model_dump_json().encode()
                result = Shipped(json, record_of(result), result.client_id)
            out.append(result)
        return out

    def adopt(self, results: list[Any]) -> list[Any]:
        return results


def _client_of(form: Any) -> Any:
    try:
        if isinstance(form, IntakeForm):
            return form.client_id
        if isinstance(form, Mapping):
            return form.get("client_id")
    except Exception:
        return None
    return None


def _problems(
    screener: Screener, row: int, label: Hashable | None, form: Any
) -> RowError | Assessment:
    """Screen ``form`` here, as ``hipscreen.assess`` would, turning its errors into a RowError."""
    try:
        return screener.assess(form)
    except InvalidFormError as error:
        return RowError(row, tuple(error.problems), label, _client_of(form))
    except EngineError as error:
        return engine_error(row, label, _client_of(form), str(error))
    except Exception as error:  # anything else one form does fails that form only
        return unreadable(row, label, _client_of(form), error)


def form_item(
    screener: Screener, row: int, label: Hashable | None, form: Any, *, keyed: bool = True
) -> Item:
    """The pipeline item for one form given to `assess_many` (``keyed``: with its cache key)."""
    try:
        if isinstance(form, IntakeForm):
            content = form.model_dump_json(exclude={"client_id"})
            return Item(row, label, form, ("form", content), content, form.client_id)
        if isinstance(form, str | bytes):
            return Item(row, label, form, ("json", form), form)
        if isinstance(form, Mapping):
            client_id = form.get("client_id")
            if client_id_ok(client_id):
                rest = {k: v for k, v in form.items() if k != "client_id"}
                # Exact: pickle tells 1 from 1.0 from True, and a list from a tuple.
                if not keyed:
                    return Item(row, label, form, None, rest, client_id)
                key = pickle.dumps(rest, protocol=pickle.HIGHEST_PROTOCOL)
                return Item(row, label, form, key, rest, client_id)
    except Exception:  # unpicklable, too deep to pickle: screened here, on its own
        pass
    # An invalid client id, an unpicklable value, or not a form at all: no cache, no worker.
    return Item(row, label, form, done=_problems(screener, row, label, form))


def _form_items(
    screener: Screener, forms: Iterable[Any] | Mapping[Hashable, Any], cache: SelfTuningCache
) -> Iterator[Item]:
    if isinstance(forms, Mapping):
        for row, (label, form) in enumerate(forms.items()):
            yield form_item(screener, row, label, form, keyed=cache.active)
    else:
        for row, form in enumerate(forms):
            yield form_item(screener, row, None, form, keyed=cache.active)


def form_outcome(screener: Screener, item: Item, result: Any) -> Assessment | RowError:
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
        return _problems(screener, item.row, item.label, item.full)
    return engine_error(item.row, item.label, _client_of(item.full), result[1])


def assess_iter(
    forms: Iterable[FormInput] | Mapping[Hashable, FormInput],
    *,
    screener: Screener | None = None,
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
    workers = bounded_workers(workers, stacklevel=2)  # on first next(): the caller's loop
    rules = resolve_screener(screener)
    with Pipeline(
        FormTask(), screener=rules, workers=workers, chunk_size=chunk_size, cache_size=cache_size
    ) as pipeline:
        for item, result in pipeline.run(_form_items(rules, forms, pipeline.cache)):
            yield form_outcome(rules, item, result)


def assess_many(
    forms: Iterable[FormInput] | Mapping[Hashable, FormInput],
    *,
    screener: Screener | None = None,
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
        screener: the rules to screen with (a `hipscreen.Screener` with a clinic's own rules or
            thresholds); the built-in rules when omitted. Worker processes rebuild the same
            rules and check their digest.
        workers: processes to screen in; 1 screens in this process. More pay off for thousands
            of distinct forms (each worker compiles the rules once when it starts). Outcomes are
            the same whatever the number.
        progress: show a progress bar (tqdm; a widget in Jupyter).
        chunk_size: forms handed out at a time.
        cache_size: distinct forms to remember (about 9 KB each; the cache goes quiet while
            forms do not repeat).

    Returns:
        A `BatchResult`: the outcomes as a sequence, with ``summary()``, ``to_frame()``,
        ``plot_prevalence()`` and an HTML view in notebooks.

    Raises:
        ImportError: ``progress=True`` and tqdm is not installed.
        ValueError: ``workers`` or ``chunk_size`` is below 1, or ``workers`` is far more than
            any machine runs (more than this machine runs well is capped, with a `UserWarning`).
        BatchInterrupted: a worker process died (killed, or out of memory).

    Examples:
        >>> result = assess_many([{"tightness": {"iliopsoas": 3}}, {"age": 200}, {}])
        >>> [isinstance(outcome, RowError) for outcome in result]
        [False, True, False]
        >>> result.errors[0].problems[0].field
        'age'
    """
    workers = bounded_workers(workers, stacklevel=2)
    rules = resolve_screener(screener)
    total = len(forms) if isinstance(forms, Sized) else None
    bar = progress_bar(progress, total, "form")
    bases: list[Assessment | RowError | Shipped] = []
    client_ids: list[Any] = []
    labels: list[Hashable | None] = []
    try:
        with Pipeline(
            FormTask(),
            screener=rules,
            workers=workers,
            chunk_size=chunk_size,
            cache_size=cache_size,
        ) as pipeline:
            for item, result in pipeline.run(_form_items(rules, forms, pipeline.cache)):
                if isinstance(result, Assessment | Shipped):
                    bases.append(result)  # shared with equal forms; the id goes back on read
                    client_ids.append(item.client_id)
                else:
                    bases.append(form_outcome(rules, item, result))
                    client_ids.append(None)
                labels.append(item.label)
                if bar is not None and len(bases) % 512 == 0:
                    bar.update(512)
    finally:
        if bar is not None:
            bar.update(len(bases) - bar.n)
            bar.close()
    keyed = isinstance(forms, Mapping)
    return BatchResult(bases, client_ids, labels if keyed else None, rules.ruleset_version)


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
        ruleset_version: str = "",
    ) -> None:
        # Equal forms share one cached assessment, stored without the client id; the id is put
        # back when an outcome is read, so a million outcomes do not hold a million copies.
        self._bases = bases
        self._client_ids = client_ids
        self.keys = keys
        """The input labels (when the forms came as a mapping), else None."""
        self.ruleset_version = ruleset_version
        """The rules that screened the batch."""

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
        return tally.summary(self.ruleset_version)

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
        from hipscreen._batch._frames import results_frame

        return results_frame(self.records(), self.keys, self.ruleset_version, long=long)

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
        from hipscreen._render.html import batch_html

        return batch_html(self)
