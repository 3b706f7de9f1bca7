"""`import hipscreen` loads what screening needs; the rest loads on first use of its names."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import hipscreen

HEAVY = (
    "hipscreen._rules.explain",
    "hipscreen._rules.evaluator",
    "hipscreen._rules.formfacts",
    "asyncio",
    "pandas",
    "polars",
    "pyarrow",
    "fastapi",
    "hipscreen._batch",
    "hipscreen._service",
)


def _modules_after(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.process
def test_import_hipscreen_loads_no_heavy_module() -> None:
    loaded = _modules_after("import hipscreen")
    assert sorted(loaded & set(HEAVY)) == []
    assert "durable_rules_engine" in loaded  # a broken engine build is still reported at import


@pytest.mark.process
def test_screening_one_form_loads_no_batch_or_asyncio() -> None:
    loaded = _modules_after("import hipscreen; hipscreen.assess({'tightness': {'hip_flexors': 2}})")
    assert sorted(loaded & set(HEAVY)) == []


@pytest.mark.parametrize("name", sorted(hipscreen._LAZY))
def test_every_lazy_name_resolves_to_its_module(name: str) -> None:
    value = getattr(hipscreen, name)
    assert value.__module__ == hipscreen._LAZY[name]
    assert name in dir(hipscreen)


def test_an_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'assesss'"):
        hipscreen.assesss  # type: ignore[attr-defined]  # noqa: B018
