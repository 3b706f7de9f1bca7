#!/usr/bin/env python3
"""Dump ``assess(form).model_dump_json()`` for a fixed set of generated forms, and their hash.

Run on two checkouts to prove a speed change leaves every output byte-identical::

    PYTHONPATH=/path/before python benchmarks/dump_outputs.py --forms f.json --output before.jsonl
    PYTHONPATH=/path/after python benchmarks/dump_outputs.py --forms f.json --output after.jsonl
    cmp before.jsonl after.jsonl

The forms: ``--random`` forms of ``tests/strategies.random_forms`` (fixed seed), ``--drawn``
forms of the hypothesis strategy ``tests/strategies.forms()`` (drawn derandomized, yet not
the same in every process: pass ``--forms FILE`` to both runs, the first writes them), and
``--realistic`` forms of ``bench_assess.realistic_forms``. One line per form: the JSON, or the
error's type and text; for every tenth form also ``explain()`` and the shared-session path
(``Screener.assess_validated``, as batch workers screen; ``_assessments`` on checkouts from
before it had that name). The SHA-256 of the file is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def drawn_forms(count: int) -> list[dict[str, Any]]:
    from hypothesis import HealthCheck, Phase, given, settings
    from strategies import forms

    found: list[dict[str, Any]] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(forms())
    def collect(form: dict[str, Any]) -> None:
        found.append(form)

    collect()
    return found[:count]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random", type=int, default=10_000)
    parser.add_argument("--drawn", type=int, default=2_000)
    parser.add_argument("--realistic", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--forms",
        type=Path,
        help="a JSON file of the forms: read when it exists, else written (hypothesis draws "
        "are not reproducible across processes: give both runs the same file)",
    )
    args = parser.parse_args(argv)
    sys.path[:0] = [str(REPO / "tests"), str(HERE)]
    from bench_assess import realistic_forms
    from strategies import random_forms

    import hipscreen
    from hipscreen._intake.form import coerce_form

    if args.forms is not None and args.forms.exists():
        forms = json.loads(args.forms.read_text(encoding="utf-8"))
    else:
        forms = [
            *random_forms(args.random, args.seed),
            *drawn_forms(args.drawn),
            *realistic_forms(args.realistic, args.seed),
        ]
        if args.forms is not None:
            args.forms.write_text(json.dumps(forms), encoding="utf-8")
    screener = hipscreen.Screener(cache_size=0)
    shared = getattr(screener, "assess_validated", None) or screener._assessments  # older: private
    digest = hashlib.sha256()
    with args.output.open("w", encoding="utf-8") as out:
        for n, form in enumerate(forms):
            try:
                result = screener.assess(form)
                line = result.model_dump_json()
                if n % 10 == 0:
                    line += "\t" + result.explain().replace("\n", "\\n")
                    (batch,) = shared([coerce_form(form)])
                    line += "\t" + (
                        repr(batch) if isinstance(batch, Exception) else batch.model_dump_json()
                    )
            except Exception as error:  # the error is part of the output
                line = f"{type(error).__name__}: {error}"
            out.write(line + "\n")
            digest.update(line.encode() + b"\n")
    print(f"{len(forms)} forms, sha256 {digest.hexdigest()}  {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
