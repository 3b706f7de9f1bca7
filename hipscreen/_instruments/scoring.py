"""Scoring items into an `InstrumentScore`: the value, the band, and — with items missing — the
range the score could still take and the band only when no completion could change it.

Scores never prorate: a missing answer is not guessed. Each formula is monotone in every item, or
(``start_back``) enumerated over the completions of the missing items, so the range and the band
hold for every way the missing items could be answered.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from hipscreen._instruments.models import InstrumentSpec
from hipscreen._results import InstrumentScore

Answer = int | bool

# STarT Back: items 1–8 agree = 1; item 9 (0 not at all … 4 extremely) scores 1 for "very much"
# (3) or "extremely" (4); distress = items 5–9 (keele.ac.uk/sbst/usingscoringthesbst/).
_SBST_ITEM9_CUT = 3
_SBST_DISTRESS = ("5", "6", "7", "8", "9")


def _points(spec: InstrumentSpec, item: str, answer: Answer) -> int:
    """An answer's points: reverse-scored items count max + min − answer."""
    scale = spec.items.scale_of(item)
    value = int(answer)
    if item in spec.items.reverse:
        return scale.high + scale.low - value
    return value


def sbst_band(total: int, distress: int) -> str:
    """The STarT Back risk group of a total and a distress subscore."""
    if total <= 3:
        return "low"
    return "high" if distress >= 4 else "medium"


def band_of(spec: InstrumentSpec, value: float) -> str | None:
    """The band a value-scored instrument's value falls in (None: no band holds it)."""
    for band in spec.bands:
        if band.bounded and band.holds(value):
            return band.name
    return None


def score_items(spec: InstrumentSpec, answers: Mapping[str, Answer]) -> InstrumentScore:
    """Score the answers given (checked against ``spec`` already: known items, on scale)."""
    formula = spec.scoring.formula
    ids = spec.items.ids
    if formula == "mean":
        rated = [_points(spec, i, answers[i]) for i in ids if i in answers]
        done = len(rated) >= (spec.items.min_answered or 1)
        value = round(sum(rated) / len(rated), 3) if done else None
        low, high = spec.scoring.range
        # Each activity's rating too, so a re-screen can pair the same activities (compare()).
        ratings = {
            f"activity_{i}": float(_points(spec, i, answers[i])) for i in ids if i in answers
        }
        return InstrumentScore(
            instrument=spec.id,
            version=spec.version,
            value=value,
            band=None if value is None else band_of(spec, value),
            complete=done,
            missing=(),
            range=None if done else (low, high),
            subscores=ratings,
        )
    missing = tuple(i for i in ids if i not in answers)
    if formula == "start_back":
        return _score_start_back(spec, answers, missing)
    if formula == "parq":
        yes = sum(1 for i in ids if answers.get(i) is True)
        band = "not_cleared" if yes else ("cleared" if not missing else None)
        return InstrumentScore(
            instrument=spec.id,
            version=spec.version,
            value=None if missing else yes,
            band=band,
            complete=not missing,
            missing=missing,
            range=(yes, yes + len(missing)) if missing else None,
        )
    # value, sum, table: the raw sum is monotone in every item, and every integer between its
    # lowest and highest completion is reachable (each item's scale is consecutive integers).
    raw = sum(_points(spec, i, answers[i]) for i in ids if i in answers)
    raw_low = raw + sum(spec.items.scale_of(i).low for i in missing)
    raw_high = raw + sum(spec.items.scale_of(i).high for i in missing)
    reachable = range(raw_low, raw_high + 1)
    table = spec.scoring.table
    values: list[float | None] = [
        table.get(r) if formula == "table" else float(r) for r in reachable
    ]
    bands = {None if v is None else band_of(spec, v) for v in values}
    band = bands.pop() if len(bands) == 1 else None
    subscores = {"raw": float(raw)} if formula == "table" and not missing else {}
    ends = [v for v in (values[0], values[-1]) if v is not None]
    return InstrumentScore(
        instrument=spec.id,
        version=spec.version,
        value=values[0] if not missing else None,
        band=band,
        complete=not missing,
        missing=missing,
        range=(min(ends), max(ends)) if missing and len(ends) == 2 else None,
        subscores=subscores,
    )


def _score_start_back(
    spec: InstrumentSpec, answers: Mapping[str, Answer], missing: tuple[str, ...]
) -> InstrumentScore:
    def scored(item: str, answer: int) -> int:
        return int(answer >= _SBST_ITEM9_CUT) if item == "9" else int(answer)

    given = {i: scored(i, int(a)) for i, a in answers.items()}
    totals: set[int] = set()
    bands: set[str] = set()
    # Every completion of the missing items (each scores 0 or 1: at most 2⁹ = 512).
    for fill in itertools.product((0, 1), repeat=len(missing)):
        points = {**given, **dict(zip(missing, fill, strict=True))}
        total = sum(points.values())
        distress = sum(points[i] for i in _SBST_DISTRESS)
        totals.add(total)
        bands.add(sbst_band(total, distress))
    complete = not missing
    subscores = {}
    if complete:
        subscores = {"distress": float(sum(given[i] for i in _SBST_DISTRESS))}
    return InstrumentScore(
        instrument=spec.id,
        version=spec.version,
        value=float(next(iter(totals))) if complete else None,
        band=bands.pop() if len(bands) == 1 else None,
        complete=complete,
        missing=missing,
        range=None if complete else (min(totals), max(totals)),
        subscores=subscores,
    )


def score_given(spec: InstrumentSpec, value: float, band: str | None) -> InstrumentScore:
    """A score the caller computed: its band is the one given, else the one the value fixes."""
    if band is None:
        if spec.scoring.formula == "start_back":
            band = "low" if value <= 3 else None  # medium or high depends on distress
        elif spec.scoring.formula == "parq":
            band = "cleared" if value == 0 else "not_cleared"
        else:
            band = band_of(spec, value)
    return InstrumentScore(
        instrument=spec.id,
        version=spec.version,
        value=value,
        band=band,
        complete=True,
        computed_by_caller=True,
    )
