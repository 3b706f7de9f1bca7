"""The form's ``instruments`` block: answers or caller-computed scores, checked against the
instrument definitions with field-named errors (``instruments.lefs.items.21``)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from hipscreen._instruments.loader import builtin_instruments
from hipscreen._instruments.models import MAX_ITEMS, InstrumentSpec
from hipscreen._instruments.scoring import score_given, score_items
from hipscreen._results import InstrumentScore
from hipscreen._vocabulary import suggest

Answer = StrictBool | StrictInt
Score = Annotated[float, Field(allow_inf_nan=False, ge=-1000, le=1000)]


class InstrumentEntry(BaseModel):
    """One instrument on the form: its item answers, or the score the caller computed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, Field(strict=True, min_length=1, max_length=20)] | None = Field(
        default=None, description="The instrument version answered; must match hipscreen's."
    )
    items: dict[Annotated[str, Field(max_length=8)], Answer] | None = Field(
        default=None,
        max_length=MAX_ITEMS,
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


_Problem = tuple[tuple[str, ...], Any, str]


def _check(instrument: str, spec: InstrumentSpec, entry: InstrumentEntry) -> list[_Problem]:
    problems: list[_Problem] = []

    def add(loc: tuple[str, ...], value: Any, message: str) -> None:
        problems.append(((instrument, *loc), value, message))

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
        ids = spec.items.ids
        for item, answer in entry.items.items():
            if item not in ids:
                hint = suggest(item, ids)
                add(
                    ("items", item),
                    answer,
                    f"unknown item {item!r}{hint} (allowed: {ids[0]}–{ids[-1]})",
                )
                continue
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


class InstrumentsBlock(BaseModel):
    """Standard instruments given on the form, by instrument id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pain_nrs: InstrumentEntry | None = Field(default=None, description="Pain NRS 0–10 (item 1).")
    psfs: InstrumentEntry | None = Field(
        default=None, description="Patient-Specific Functional Scale (activities 1–5, 0–10)."
    )
    hoos_jr: InstrumentEntry | None = Field(default=None, description="HOOS JR (items 1–6, 0–4).")
    lefs: InstrumentEntry | None = Field(
        default=None, description="Lower Extremity Functional Scale (items 1–20, 0–4)."
    )
    start_back: InstrumentEntry | None = Field(
        default=None,
        description="Keele STarT Back (items 1–8: 0/1; item 9: 0–4). Low back pain only.",
    )
    parq_plus: InstrumentEntry | None = Field(
        default=None, description="PAR-Q+ general questions (items 1–7: true/false)."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _checked(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        try:
            block = handler(data)
        except ValidationError as error:
            items = error.errors(include_url=False)
            if not any(item["type"] == "extra_forbidden" for item in items):
                raise
            allowed = list(cls.model_fields)
            details = []
            for item in items:
                message = item["msg"]
                if item["type"] == "extra_forbidden" and len(item["loc"]) == 1:
                    key = str(item["loc"][0])
                    message = (
                        f"unknown instrument {key!r}{suggest(key, allowed)} "
                        f"(allowed: {', '.join(allowed)})"
                    )
                kind = "unknown_field" if item["type"] == "extra_forbidden" else item["type"]
                details.append(
                    InitErrorDetails(
                        type=PydanticCustomError(kind, "{message}", {"message": message}),
                        loc=item["loc"],
                        input=item.get("input"),
                    )
                )
            raise ValidationError.from_exception_data(cls.__name__, details) from None
        specs = builtin_instruments()
        problems = [
            problem
            for instrument, entry in block.entries()
            for problem in _check(instrument, specs[instrument], entry)
        ]
        if problems:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("instrument", "{message}", {"message": message}),
                        loc=loc,
                        input=value,
                    )
                    for loc, value, message in problems
                ],
            )
        return block

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
