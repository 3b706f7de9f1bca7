#!/usr/bin/env python3
"""Set up and run hipscreen on a fresh machine that has only Python 3.11+.

    python3 tasks.py demo    # screen the bundled example forms and print the reports
    python3 tasks.py test    # lint, type-check and run the whole test suite
    python3 tasks.py bench   # run the benchmarks (not part of the test suite)

The first run creates ``.venv`` next to this file and installs hipscreen into it (editable, with
the ``dev`` extra); later runs reuse it and reinstall only when ``pyproject.toml`` changes.
Installing durable-rules compiles C, so a C compiler and the Python headers must be present.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# HIPSCREEN_VENV lets CI keep one environment per Python version side by side.
VENV = ROOT / os.environ.get("HIPSCREEN_VENV", ".venv")
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".hipscreen-installed"


def run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    completed = subprocess.run([str(a) for a in args], cwd=ROOT)
    if completed.returncode:
        sys.exit(completed.returncode)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 -- this script may be started by an old python3
        sys.exit(f"hipscreen needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def demo() -> None:
    run(PYTHON, "examples/screen_forms.py")


def test() -> None:
    run(PYTHON, "-m", "ruff", "check", "hipscreen", "tests", "examples", "benchmarks", "tasks.py")
    run(PYTHON, "-m", "mypy")
    run(PYTHON, "-m", "pytest", *sys.argv[2:])


def bench() -> None:
    run(PYTHON, "benchmarks/bench_assess.py", *sys.argv[2:])


COMMANDS = {"demo": demo, "test": test, "bench": bench}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    ensure_venv()
    COMMANDS[sys.argv[1]]()
