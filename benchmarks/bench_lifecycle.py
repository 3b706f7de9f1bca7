"""Build and drop many screeners: resident memory before and after (issue 11).

Each `Screener` compiles a ruleset into durable_rules' C memory (about 0.8 MB). Since 0.2 a
screener deletes it when closed or garbage-collected; ``--no-release`` turns that off to show the
old behaviour (every ruleset stays until the process ends).

    .venv/bin/python benchmarks/bench_lifecycle.py                  # 5,000 built-in screeners
    .venv/bin/python benchmarks/bench_lifecycle.py --count 300 --no-release
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from pathlib import Path

import hipscreen
from hipscreen import _engine

FORM = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}}


def rss_mb() -> float:
    """Resident set size of this process, in MB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="screeners to build (5000)")
    parser.add_argument("--rules", help="a rule directory (default: the built-in rules)")
    parser.add_argument(
        "--no-release", action="store_true", help="never delete the engine rulesets (old)"
    )
    parser.add_argument("--close", action="store_true", help="close() each instead of dropping")
    args = parser.parse_args()
    if args.no_release:
        _engine._release = lambda handles: handles.clear()  # type: ignore[assignment]

    def build() -> hipscreen.Screener:
        return hipscreen.Screener(args.rules, cache_size=0)

    build().assess(FORM)  # warm up: imports, the first compile, allocator pools
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    for _ in range(args.count):
        screener = build()
        screener.assess(FORM)
        if args.close:
            screener.close()
        del screener
    gc.collect()
    seconds = time.perf_counter() - start
    after = rss_mb()
    result = {
        "screeners": args.count,
        "rules": args.rules or "built-in",
        "release": not args.no_release,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "growth_mb": round(after - before, 1),
        "growth_kb_per_screener": round((after - before) * 1000 / args.count, 1),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
