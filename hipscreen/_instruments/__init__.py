"""Standard instruments (pain NRS, PSFS, HOOS JR, LEFS, STarT Back, PAR-Q+) as scored inputs.

Each instrument is data (``rules/instruments/<id>.yaml``, validated by `InstrumentSpec`); the
form's ``instruments`` block is checked against it (`InstrumentsBlock`) and scored
(`score_items`, `score_given`) into `InstrumentScore` results that rules read as facts.
"""

from __future__ import annotations

from hipscreen._instruments.loader import builtin_instruments, load_instruments
from hipscreen._instruments.models import INSTRUMENT_IDS, InstrumentSpec
from hipscreen._instruments.scoring import band_of, sbst_band, score_given, score_items

__all__ = [
    "INSTRUMENT_IDS",
    "InstrumentSpec",
    "band_of",
    "builtin_instruments",
    "load_instruments",
    "sbst_band",
    "score_given",
    "score_items",
]
