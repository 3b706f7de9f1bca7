"""Screen the bundled example intake forms and print each report.

Run it with ``python3 tasks.py demo`` (sets everything up), or ``python examples/screen_forms.py``
inside an environment where hipscreen is installed. Pass JSON files to screen your own forms.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hipscreen


def main(paths: list[str]) -> int:
    forms = [Path(p) for p in paths] or sorted((Path(__file__).parent / "forms").glob("*.json"))
    for path in forms:
        print("=" * 100)
        print(f"{path.name}")
        print("=" * 100)
        try:
            result = hipscreen.assess(path.read_text(encoding="utf-8"))
        except hipscreen.InvalidFormError as error:
            print(error)
            continue
        print(result.explain())
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
