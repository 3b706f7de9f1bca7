#!/usr/bin/env python3
"""What starting hipscreen costs, step by step, in exact instruction counts (valgrind's callgrind).

Run from the repository root::

    .venv/bin/python benchmarks/callgrind_import.py            # ~12 processes, ~3-6 min
    .venv/bin/python benchmarks/callgrind_import.py --json benchmarks/results/import.json

Each step is a whole fresh process (``python -c CODE``) whose code does everything the step
before did and one thing more, so the difference between two lines is what that one thing costs
on top of what came before (a module imported by an earlier step costs nothing later). Compiled
bytecode is cached first and ``PYTHONDONTWRITEBYTECODE`` is dropped from the environment, as in
``callgrind_phases.py``. The steps:

* ``python -c pass`` — the bare interpreter: the yardstick (the ratio column divides by it);
* ``import hipscreen`` — the package itself (error types, version, the engine's C extension);
* the third-party libraries screening needs (pydantic, PyYAML), then hipscreen's own modules in
  the order screening imports them, up to ``hipscreen._screen``;
* the default screener (rule files read and validated, the rules compiled for the engine);
* one ``assess()`` of a small form — the whole is a serverless cold start or a worker start;
* ``hipscreen assess FORM`` on the command line (one form, report format), for comparison.

Needs valgrind. Prints a table; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

FORM = {"tightness": {"hip_flexors": 2}, "strength": {"gluteus_maximus": 3}}

STEPS: list[tuple[str, str]] = [
    ("python -c pass", "pass"),
    ("import hipscreen", "import hipscreen"),
    ("+ pydantic (BaseModel)", "from pydantic import BaseModel"),
    ("+ yaml", "import yaml"),
    ("+ hipscreen._results (output models)", "import hipscreen._results"),
    ("+ hipscreen._rules.loader (rule-data models)", "import hipscreen._rules.loader"),
    ("+ hipscreen._instruments.form (files read)", "import hipscreen._instruments.form"),
    ("+ hipscreen._intake.form (form models)", "import hipscreen._intake.form"),
    ("+ hipscreen._screen (engine, facts, plan)", "import hipscreen._screen"),
    ("+ default screener (rules read, compiled)", "hipscreen._screen.default_screener()"),
    ("+ assess(form): the cold start", f"hipscreen.assess({FORM!r})"),
]
"""(label, code added to the steps before)."""


def total_instructions(out_file: Path) -> int:
    for line in out_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out_file}")


def callgrind(args: list[str], out_file: Path, env: dict[str, str]) -> int:
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    return total_instructions(out_file)


def measure(python: str, work: Path) -> list[dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    form = work / "form.json"
    form.write_text(json.dumps(FORM), encoding="utf-8")
    warm = "import hipscreen, hipscreen._cli; " + STEPS[-1][1]
    subprocess.run([python, "-c", warm], check=True, env=env, stdout=subprocess.DEVNULL)
    rows: list[dict[str, object]] = []
    code: list[str] = []
    for k, (label, step) in enumerate(STEPS):
        code.append(step)
        program = "; ".join(code[1:]) or "pass"
        total = callgrind([python, "-c", program], work / f"callgrind.{k}", env)
        rows.append({"step": label, "code": program, "instructions": total})
    cli = [python, "-m", "hipscreen", "assess", str(form)]
    subprocess.run(cli, check=True, env=env, stdout=subprocess.DEVNULL)
    total = callgrind(cli, work / "callgrind.cli", env)
    label = "hipscreen assess FORM (CLI, one form)"
    rows.append({"step": label, "code": "", "instructions": total})
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    bare = int(str(rows[0]["instructions"]))
    print(f"{'step':<46} {'total':>15} {'÷ pass':>7} {'this step':>14}")
    previous = 0
    for k, row in enumerate(rows):
        total = int(str(row["instructions"]))
        cli = k == len(rows) - 1
        step = "" if cli or k == 0 else f"{total - previous:>14,}"
        print(f"{row['step']:<46} {total:>15,} {total / bare:>6.1f}× {step}")
        previous = total
    print(f"the package (import hipscreen) alone: {int(str(rows[1]['instructions'])) / bare:.1f}×")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hs-import-") as directory:
        rows = measure(args.python, Path(directory))
    print_table(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
