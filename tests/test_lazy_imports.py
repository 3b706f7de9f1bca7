"""`import hipscreen` loads the error types, the version and the engine's C extension; every
other public name loads on first use, and screening a form loads only what screening needs."""

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


# What screening needs, loaded by the first `assess` (or `Screener`, or a model name), not by
# `import hipscreen`.
SCREENING = (
    "pydantic",
    "yaml",
    "hipscreen._screen",
    "hipscreen._intake.form",
    "hipscreen._results",
    "hipscreen._engine",
    "hipscreen._instruments.form",
)


@pytest.mark.process
def test_import_hipscreen_loads_no_heavy_module() -> None:
    loaded = _modules_after("import hipscreen")
    assert sorted(loaded & {*HEAVY, *SCREENING}) == []
    assert sorted(m for m in loaded if m.startswith("hipscreen")) == [
        "hipscreen",
        "hipscreen._errors",
        "hipscreen._version",
    ]
    assert "durable_rules_engine" in loaded  # a broken engine build is still reported at import


@pytest.mark.process
@pytest.mark.parametrize(
    "name", ["assess", "Screener", "IntakeForm", "Assessment", "Finding", "InstrumentScore"]
)
def test_a_screening_name_loads_the_screening_modules_on_first_use(name: str) -> None:
    loaded = _modules_after(f"import hipscreen; hipscreen.{name}")
    assert "pydantic" in loaded
    assert sorted(loaded & set(HEAVY)) == []


@pytest.mark.process
def test_from_import_of_a_lazy_name_works_in_a_fresh_interpreter() -> None:
    loaded = _modules_after(
        "from hipscreen import IntakeForm, assess\n"
        "assert assess(IntakeForm(tightness={'hip_flexors': 2})).finding_ids()"
    )
    assert "hipscreen._screen" in loaded


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
