"""Helpers for the tests that build and install wheels: the tasks script and clean subprocesses."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 900
"""Building compiles C and downloads from the package index; this only stops a hung step."""


def load_tasks() -> ModuleType:
    """The repository's tasks.py as a module: the builders the README tells users to run."""
    spec = importlib.util.spec_from_file_location("hipscreen_tasks", REPO / "tasks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without anything that would leak the checkout into a child."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env.update(overrides)
    return env


def run(
    *args: str | Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = INSTALL_TIMEOUT_S,
) -> str:
    """Run a command; its stdout, or a failed assertion showing the end of both streams."""
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
