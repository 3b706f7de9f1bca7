"""benchmarks/callgrind_import.py still runs its steps (without valgrind; nothing is timed)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "callgrind_import.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("callgrind_import", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.process
def test_the_last_step_runs_every_step_in_one_fresh_interpreter() -> None:
    steps = _script().STEPS
    program = "; ".join(code for _, code in steps[1:])
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_table_gives_each_step_and_its_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    script = _script()
    rows = [
        {"step": label, "instructions": 100 * (k + 1)} for k, (label, _) in enumerate(script.STEPS)
    ]
    rows.append({"step": "hipscreen assess FORM (CLI, one form)", "instructions": 5000})
    script.print_table(rows)
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[-2:] == ["100", "1.0×"]  # python -c pass: the yardstick
    assert out[2].split()[-3:] == ["200", "2.0×", "100"]  # import hipscreen, and its own cost
    assert out[-1] == "the package (import hipscreen) alone: 2.0×"
