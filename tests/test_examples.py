"""Every script in examples/ runs (the notebook, service and load test: in their own tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import hipscreen

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.process
def test_demo_screens_every_bundled_form() -> None:
    completed = _run(str(EXAMPLES / "screen_forms.py"))
    assert completed.returncode == 0, completed.stderr
    for form in sorted((EXAMPLES / "forms").glob("*.json")):
        assert form.name in completed.stdout
    assert completed.stdout.count("hipscreen is a screening aid") == len(
        list((EXAMPLES / "forms").glob("*.json"))
    )
    assert "tight-hip-flexors" in completed.stdout


def test_bundled_forms_are_valid_intake_forms() -> None:
    for form in sorted((EXAMPLES / "forms").glob("*.json")):
        hipscreen.IntakeForm.model_validate_json(form.read_text(encoding="utf-8"))


@pytest.mark.process
def test_the_synthetic_csv_generator_writes_rows_in_the_column_convention(tmp_path: Path) -> None:
    out = tmp_path / "intake.csv"
    completed = _run(str(EXAMPLES / "make_intake_csv.py"), "-n", "50", "-o", str(out))
    assert completed.returncode == 0, completed.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 51
    result = hipscreen.screen_csv(out, tmp_path / "results.csv", progress=False)
    assert result.summary.rows == 50
    assert result.summary.screened + result.summary.failed == 50
