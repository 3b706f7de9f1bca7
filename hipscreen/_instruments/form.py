"""The form's ``instruments`` block: answers or caller-computed scores, checked against the
instrument definitions with field-named errors (``instruments.lefs.items.21``)."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictInt,
    ValidationError,
    create_model,
    model_validator,
)

from hipscreen._instruments.loader import builtin_instruments
from hipscreen._instruments.models import INSTRUMENT_IDS, InstrumentSpec
from hipscreen._instruments.scoring import score_given, score_items
from hipscreen._intake.problems import detail, name_unknown_keys
from hipscreen._results import InstrumentScore
from hipscreen._vocabulary import suggest

Answer = StrictBool | StrictInt
Score = Annotated[float, Field(allow_inf_nan=False, ge=-1000, le=1000)]


class InstrumentEntry(BaseModel):
    """One instrument on the form: its item answers, or the score the caller computed.

    Each instrument has its own subclass (`_entry_model`) whose ``items`` keys are exactly its
    item numbers, so the batch column convention gets one column per item
    (``instruments.lefs.items.1``) from the model alone.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, Field(strict=True, min_length=1, max_length=20)] | None = Field(
        default=None, description="The instrument version answered; must match hipscreen's."
    )
    items: Mapping[str, Answer] | None = Field(
        default=None,
        description='Answers by item number in the published order ("1" … "n"; PSFS: by '
        "activity), as the published numeric codes (true/false for PAR-Q+).",
    )
    score: Score | None = Field(
        default=None, description="A score computed by the caller (with computed_by_caller)."
    )
    band: Annotated[str, Field(strict=True, max_length=20)] | None = Field(
        default=None, description="With a caller-computed score: its band."
    )
    computed_by_caller: StrictBool | None = Field(
        default=None, description="True when ``score`` was computed outside hipscreen."
    )

    instrument: ClassVar[str | None] = None
    """The instrument id of a per-instrument subclass (`_entry_model`)."""

    @model_validator(mode="wrap")
    @classmethod
    def _checked(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """Checked against the instrument's definition, every problem named by its field."""
        instrument = cls.instrument
        try:
            entry = handler(data)
        except ValidationError as error:
            items = error.errors(include_url=False)
            if instrument is None or not any(
                _unknown_item(item["loc"]) or _answer(item["loc"]) for item in items
            ):
                raise
            spec = builtin_instruments()[instrument]
            ids = spec.items.ids
            details = []
            unknown = set()  # item keys refused: left out when the rest is checked
            for item in items:
                if _unknown_item(item["loc"]):  # a key the item-number enum refused
                    key = str(item["loc"][-2])
                    unknown.add(key)
                    message = (
                        f"unknown item {key!r}{suggest(key, ids)} (allowed: {ids[0]}–{ids[-1]})"
                    )
                    details.append(detail("instrument", item["loc"][:-1], key, message))
                elif _answer(item["loc"]):  # not an integer / not true or false
                    unknown.add(str(item["loc"][1]))
                    scale = spec.items.scale_of(str(item["loc"][1]))
                    value = item.get("input")
                    message = f"must be {scale.describe()} (got {value!r})"
                    details.append(detail("instrument", item["loc"], value, message))
                else:
                    details.append(
                        detail(item["type"], item["loc"], item.get("input"), item["msg"])
                    )
            if all(_unknown_item(i["loc"]) or _answer(i["loc"]) for i in items) and isinstance(
                data, dict
            ):
                # Only bad item numbers or answers: check the rest too, so every problem is named.
                known = {k: v for k, v in data["items"].items() if str(k) not in unknown}
                try:
                    rest = handler({**data, "items": known})
                except ValidationError:
                    rest = None
                if rest is not None:
                    details += [
                        detail("instrument", loc, value, message)
                        for loc, value, message in _check(instrument, spec, rest)
                    ]
            raise ValidationError.from_exception_data(cls.__name__, details) from None
        if instrument is None:
            return entry
        problems = _check(instrument, builtin_instruments()[instrument], entry)
        if problems:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [detail("instrument", loc, value, message) for loc, value, message in problems],
            )
        return entry


def _unknown_item(loc: tuple[int | str, ...]) -> bool:
    return len(loc) == 3 and loc[0] == "items" and loc[2] == "[key]"


def _answer(loc: tuple[int | str, ...]) -> bool:
    return len(loc) == 2 and loc[0] == "items"


_Problem = tuple[tuple[str, ...], Any, str]


def _check(instrument: str, spec: InstrumentSpec, entry: InstrumentEntry) -> list[_Problem]:
    problems: list[_Problem] = []

    def add(loc: tuple[str, ...], value: Any, message: str) -> None:
        problems.append((loc, value, message))

    if entry.version is not None and entry.version != spec.version:
        add(
            ("version",),
            entry.version,
            f"hipscreen scores {instrument} version {spec.version!r} (got {entry.version!r})",
        )
    if entry.items is not None and entry.score is not None:
        add((), None, "give either items or score (with computed_by_caller: true), not both")
        return problems
    if entry.items is None and entry.score is None:
        add((), None, "needs items, or score with computed_by_caller: true")
        return problems
    if entry.items is not None:
        for fld in ("band", "computed_by_caller"):
            if getattr(entry, fld) is not None:
                add((fld,), getattr(entry, fld), "only with a caller-computed score")
        for item, answer in entry.items.items():  # keys: the instrument's item numbers only
            scale = spec.items.scale_of(item)
            if scale.boolean:
                ok = isinstance(answer, bool)
            else:
                ok = not isinstance(answer, bool) and scale.low <= answer <= scale.high
            if not ok:
                add(("items", item), answer, f"must be {scale.describe()} (got {answer!r})")
        return problems
    assert entry.score is not None
    if entry.computed_by_caller is not True:
        add(
            ("computed_by_caller",),
            entry.computed_by_caller,
            "a score without items must say computed_by_caller: true",
        )
    low, high = spec.scoring.range
    if not low <= entry.score <= high:
        add(("score",), entry.score, f"must be {low:g}–{high:g} (got {entry.score!r})")
        return problems
    if entry.band is not None:
        names = [band.name for band in spec.bands]
        if entry.band not in names:
            hint = suggest(entry.band, names)
            allowed = ", ".join(names) or "none: this instrument has no bands"
            add(("band",), entry.band, f"unknown band {entry.band!r}{hint} (allowed: {allowed})")
        else:
            implied = score_given(spec, entry.score, None).band
            if spec.scoring.formula == "start_back":
                # The total alone fixes only "low"; medium and high need the distress subscore.
                fits = (entry.band == "low") == (entry.score <= 3)
                implied = None if fits else ("low" if entry.score <= 3 else "medium or high")
            if implied is not None and implied != entry.band:
                add(
                    ("band",),
                    entry.band,
                    f"score {entry.score:g} is in band {implied!r} (got {entry.band!r})",
                )
    return problems


class _InstrumentsBase(BaseModel):
    """Standard instruments given on the form, by instrument id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _name_instruments(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        try:
            return handler(data)
        except ValidationError as error:
            named = name_unknown_keys(
                cls.__name__,
                error,
                list(cls.model_fields),
                noun="instrument",
                retype_nested=False,  # an entry's own unknown keys keep pydantic's error
            )
            if named is error:
                raise
            raise named from None

    def entries(self) -> list[tuple[str, InstrumentEntry]]:
        """The instruments given, in the block's field order."""
        return [
            (name, entry)
            for name in type(self).model_fields
            if (entry := getattr(self, name)) is not None
        ]

    def scores(self) -> tuple[InstrumentScore, ...]:
        """Every instrument given, scored."""
        specs = builtin_instruments()
        out = []
        for instrument, entry in self.entries():
            spec = specs[instrument]
            if entry.items is not None:
                out.append(score_items(spec, entry.items))
            elif entry.score is not None and not math.isnan(entry.score):
                out.append(score_given(spec, entry.score, entry.band))
        return tuple(out)


def _entry_model(spec: InstrumentSpec) -> type[InstrumentEntry]:
    """The entry model of one instrument: ``items`` keyed by its item numbers only, answered as
    integers (or yes/no for a yes/no scale)."""
    title = "".join(part.title() for part in spec.id.split("_"))
    keys = enum.StrEnum(f"{title}Item", [(f"item_{i}", i) for i in spec.items.ids])  # type: ignore[misc]
    answer = StrictBool if spec.items.scale.boolean else StrictInt
    items: Any = cast(Any, dict)[keys, answer] | None
    entry: type[InstrumentEntry] = create_model(
        f"{title}Entry",
        __base__=InstrumentEntry,
        __doc__=f"{spec.name}: item answers, or a score computed by the caller.",
        items=(
            items,
            Field(
                default=None,
                description=f'Answers by item number "1" … "{spec.items.count}" in the published '
                f"order, as {spec.items.scale.describe()}"
                + "".join(
                    f" (item {i}: {scale.describe()})" for i, scale in spec.items.scales.items()
                )
                + ".",
            ),
        ),
    )
    entry.instrument = spec.id
    return entry


def _block_model() -> type[_InstrumentsBase]:
    specs = builtin_instruments()
    fields: dict[str, Any] = {
        instrument: (
            _entry_model(specs[instrument]) | None,
            Field(default=None, description=f"{specs[instrument].name}."),
        )
        for instrument in INSTRUMENT_IDS
    }
    block: type[_InstrumentsBase] = create_model(
        "InstrumentsBlock",
        __base__=_InstrumentsBase,
        __doc__="Standard instruments given on the form, by instrument id.",
        **fields,
    )
    return block


if TYPE_CHECKING:
    InstrumentsBlock = _InstrumentsBase
else:
    InstrumentsBlock = _block_model()
