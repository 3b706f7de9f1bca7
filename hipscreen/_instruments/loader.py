"""Loading ``rules/instruments/*.yaml``: bounded, validated, every problem reported at once."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from hipscreen._errors import RuleDataError
from hipscreen._instruments.models import INSTRUMENT_IDS, InstrumentSpec
from hipscreen._limits import MAX_RULE_DATA_BYTES
from hipscreen._rules.builtin import builtin_rules_dir
from hipscreen._rules.problems import Collector
from hipscreen._rules.safeyaml import read_yaml


def load_instruments(directory: Path | None = None) -> Mapping[str, InstrumentSpec]:
    """Every instrument file of ``directory`` (the built-in ``rules/instruments`` when omitted),
    validated: one file per instrument id, named ``<id>.yaml``.

    Raises:
        RuleDataError: listing every problem found; nothing is returned unless all is valid.
    """
    root = builtin_rules_dir()
    directory = directory or root / "instruments"
    out = Collector()
    budget = [MAX_RULE_DATA_BYTES]
    specs: dict[str, InstrumentSpec] = {}
    paths = sorted(directory.glob("*.yaml"))
    for path in paths:
        name = f"instruments/{path.name}"
        if path.stem not in INSTRUMENT_IDS:
            allowed = ", ".join(f"{i}.yaml" for i in INSTRUMENT_IDS)
            out.add(name, "", "", f"unknown instrument file (allowed: {allowed})")
            continue
        raw, _ = read_yaml(path, directory, out, budget)
        if raw is None:
            if not out.problems or out.problems[-1].file != path.name:
                out.add(name, "", "", "the file is empty")
            continue
        try:
            spec = InstrumentSpec.model_validate(raw)
        except ValidationError as error:
            out.pydantic(name, error, model=InstrumentSpec, item=path.stem)
            continue
        if spec.id != path.stem:
            out.add(name, spec.id, "id", f"the file {path.name} must hold instrument {path.stem!r}")
            continue
        specs[spec.id] = spec
    for instrument in INSTRUMENT_IDS:
        if instrument not in specs and not any(p.stem == instrument for p in paths):
            out.add(f"instruments/{instrument}.yaml", "", "", "missing instrument file")
    if out.problems:
        raise RuleDataError(out.problems)
    return {i: specs[i] for i in INSTRUMENT_IDS}


@functools.cache
def builtin_instruments() -> Mapping[str, InstrumentSpec]:
    """The shipped instrument definitions (loaded once)."""
    return load_instruments()
