"""A missing or broken durable-rules build stops `import hipscreen` with a message that fixes it.

Each case runs in a fresh interpreter with a stand-in ``durable_rules_engine`` module first on
``sys.path`` that fails to import the way a real broken build does.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.process  # each case runs in a fresh interpreter

REPO = Path(__file__).resolve().parents[1]

SO = "durable_rules_engine.cpython-313-x86_64-linux-gnu.so"
BROKEN_BUILDS = {
    "built-without-the-define": (
        f'raise ImportError("/site/{SO}: undefined symbol: PyEval_CallObject")',
        "compiled without the define that Python 3.13 and later need",
    ),
    "not-installed": (
        "raise ModuleNotFoundError(\"No module named 'durable_rules_engine'\", "
        'name="durable_rules_engine")',
        "is not installed",
    ),
    "other-load-error": (
        f'raise ImportError("/site/{SO}: wrong ELF class: ELFCLASS32")',
        "its C extension cannot load",
    ),
}


def _import_hipscreen_with(fake_module: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "durable_rules_engine.py").write_text(fake_module + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    return subprocess.run(
        [sys.executable, "-c", "import hipscreen"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def _fix_command(stderr: str) -> list[str]:
    """The last line of the message: the command that rebuilds durable-rules."""
    return shlex.split(stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(BROKEN_BUILDS))
def test_broken_durable_rules_build_raises_an_import_error_that_says_what_and_how(
    case: str, tmp_path: Path
) -> None:
    fake, what = BROKEN_BUILDS[case]
    done = _import_hipscreen_with(fake, tmp_path)

    assert done.returncode == 1
    assert "ImportError: hipscreen cannot start: " in done.stderr
    assert what in done.stderr
    assert f"Python {sys.version.split()[0]}" in done.stderr  # which Python is affected
    assert "cause: " in done.stderr  # the original error is kept, not swallowed
    # `import hipscreen` tries the C extension alone, then lets the engine module word the
    # error: one message, not a second traceback chained to the first attempt.
    assert done.stderr.count("hipscreen cannot start") == 1
    assert "During handling of the above exception" not in done.stderr
    assert _fix_command(done.stderr) == [
        "CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject",
        sys.executable,  # this very interpreter, ready to paste
        "-m",
        "pip",
        "install",
        "--force-reinstall",
        "--no-deps",
        "--no-cache-dir",  # pip's cache may hold a wheel built without the define
        "--no-binary",
        "durable-rules",
        "durable-rules==2.0.28",
    ]


def test_a_module_that_loads_raises_nothing(tmp_path: Path) -> None:
    """No false alarm: the guard fires only when the import itself fails."""
    done = _import_hipscreen_with('"""Loads fine."""', tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
