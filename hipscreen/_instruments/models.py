"""The instrument file schema: one YAML file per instrument under ``rules/instruments/``."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
InstrumentId = Literal["pain_nrs", "psfs", "hoos_jr", "lefs", "start_back", "parq_plus"]
INSTRUMENT_IDS: tuple[InstrumentId, ...] = (
    "pain_nrs",
    "psfs",
    "hoos_jr",
    "lefs",
    "start_back",
    "parq_plus",
)
Formula = Literal["value", "mean", "sum", "table", "start_back", "parq"]
BandName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
MAX_ITEMS = 40
"""Items of one instrument (the largest shipped, LEFS, has 20)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ScaleSpec(_Spec):
    """The published answer codes of an item: integers ``min``–``max``, or yes/no."""

    min: int | None = Field(default=None, ge=0, le=100)
    max: int | None = Field(default=None, ge=0, le=100)
    boolean: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.boolean:
            if self.min is not None or self.max is not None:
                raise ValueError("a yes/no scale has no min or max")
        elif self.min is None or self.max is None or self.min >= self.max:
            raise ValueError("an integer scale needs min < max")
        return self

    @property
    def low(self) -> int:
        return 0 if self.boolean else self.min or 0

    @property
    def high(self) -> int:
        return 1 if self.boolean else self.max or 0

    def describe(self) -> str:
        return "true or false" if self.boolean else f"an integer {self.min}–{self.max}"


class ItemsSpec(_Spec):
    """Items ``"1"`` … ``"count"`` in the published order, with their answer scale."""

    count: int = Field(ge=1, le=MAX_ITEMS)
    scale: ScaleSpec
    scales: dict[str, ScaleSpec] = Field(
        default={}, description="Items whose scale differs from ``scale``, by item id."
    )
    reverse: list[str] = Field(
        default=[], description="Items scored max + min − answer (none of the shipped ones)."
    )
    min_answered: int | None = Field(
        default=None,
        ge=1,
        description="For ``mean``: the fewest items that make a score (the others are not "
        "missing answers, e.g. PSFS activity slots left unused).",
    )

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(str(i) for i in range(1, self.count + 1))

    def scale_of(self, item: str) -> ScaleSpec:
        return self.scales.get(item, self.scale)

    @model_validator(mode="after")
    def _known_items(self) -> Self:
        ids = set(self.ids)
        for where, named in (("scales", list(self.scales)), ("reverse", self.reverse)):
            for item in named:
                if item not in ids:
                    raise ValueError(f"{where}: unknown item {item!r} (items 1–{self.count})")
        return self


class ScoringSpec(_Spec):
    formula: Formula
    range: tuple[float, float]
    higher_is_better: bool
    table: dict[int, float] = Field(
        default={}, description="For ``table``: raw sum → score (entries not given: no score)."
    )
    source: Text


class MissingSpec(_Spec):
    rule: Text
    source: Text


class BandSpec(_Spec):
    """A named band: bounds for value-scored instruments, a name only for start_back/parq."""

    name: BandName
    at_least: float | None = None
    above: float | None = None
    at_most: float | None = None
    below: float | None = None

    @property
    def bounded(self) -> bool:
        return any(b is not None for b in (self.at_least, self.above, self.at_most, self.below))

    def holds(self, value: float) -> bool:
        return (
            (self.at_least is None or value >= self.at_least)
            and (self.above is None or value > self.above)
            and (self.at_most is None or value <= self.at_most)
            and (self.below is None or value < self.below)
        )


class ChangeSpec(_Spec):
    """The change that matters: MCID and MDC in score points, with their source."""

    mcid: float | None = Field(default=None, gt=0)
    mdc: float | None = Field(default=None, gt=0)
    source: Text


class CodesSpec(_Spec):
    loinc_panel: str | None = None
    loinc_score: str | None = None
    loinc_band: str | None = None
    loinc_items: list[str] = []
    loinc_subscores: dict[str, str] = {}
    loinc_answers: dict[str, str] = {}
    note: Text


class LicenceSpec(_Spec):
    holder: Text
    terms: Text
    source: Text
    item_text: Literal["not_shipped", "shipped"]
    official_form: Text


_FIXED_BANDS: dict[str, tuple[str, ...]] = {
    "start_back": ("low", "medium", "high"),
    "parq": ("cleared", "not_cleared"),
}


class InstrumentSpec(_Spec):
    """One instrument file, validated."""

    id: InstrumentId
    name: Text
    version: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,19}$")]
    measures: Text
    population: Text | None = None
    items: ItemsSpec
    scoring: ScoringSpec
    missing: MissingSpec
    bands: list[BandSpec] = []
    bands_source: Text | None = None
    change: ChangeSpec
    codes: CodesSpec
    licence: LicenceSpec

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        formula = self.scoring.formula
        names = [band.name for band in self.bands]
        if len(set(names)) != len(names):
            raise ValueError("bands: duplicate band names")
        if self.bands and self.bands_source is None:
            raise ValueError("bands_source: bands need a source")
        if formula in _FIXED_BANDS:
            if tuple(names) != _FIXED_BANDS[formula]:
                raise ValueError(
                    f"bands: formula {formula!r} has exactly the bands "
                    f"{', '.join(_FIXED_BANDS[formula])} (got {', '.join(names) or 'none'})"
                )
            if any(band.bounded for band in self.bands):
                raise ValueError(f"bands: formula {formula!r} sets its bands itself (no bounds)")
        elif any(not band.bounded for band in self.bands):
            raise ValueError("bands: every band needs at least one bound")
        if formula == "value" and self.items.count != 1:
            raise ValueError("formula 'value' reads exactly one item")
        if formula == "start_back" and self.items.count != 9:
            raise ValueError("formula 'start_back' needs the 9 items of the tool")
        if formula == "parq" and not self.items.scale.boolean:
            raise ValueError("formula 'parq' needs yes/no items")
        if formula != "parq" and self.items.scale.boolean:
            raise ValueError("yes/no items are scored only by formula 'parq'")
        if formula == "mean" and self.items.min_answered is None:
            raise ValueError("formula 'mean' needs items.min_answered")
        if formula == "table":
            self._check_table()
        elif self.scoring.table:
            raise ValueError("scoring.table is only for formula 'table'")
        low, high = self.scoring.range
        if low >= high:
            raise ValueError("scoring.range needs low < high")
        return self

    def _check_table(self) -> None:
        raw_high = sum(self.items.scale_of(i).high for i in self.items.ids)
        table = sorted(self.scoring.table.items())
        if not table:
            raise ValueError("formula 'table' needs scoring.table")
        low, high = self.scoring.range
        for raw, score in table:
            if not 0 <= raw <= raw_high:
                raise ValueError(f"scoring.table: raw sum {raw} outside 0–{raw_high}")
            if not low <= score <= high:
                raise ValueError(f"scoring.table: score {score} outside {low:g}–{high:g}")
        scores = [score for _, score in table]
        increasing = all(a < b for a, b in itertools.pairwise(scores))
        decreasing = all(a > b for a, b in itertools.pairwise(scores))
        if not (increasing or decreasing):
            raise ValueError("scoring.table must be strictly monotone in the raw sum")
