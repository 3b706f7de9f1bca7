"""Write a synthetic intake CSV in hipscreen's column convention (for demos and benchmarks).

The forms look like real self-reported intake: grades on the discrete scales people tick
(tightness none/mild/moderate/severe, strength 0–5), mostly for the muscle groups rather than
single muscles, a few common complaints and activities, blanks where a question was skipped, and
now and then a clinician's goniometer reading (to the nearest 5°) or a rare red flag. Ages are
whole years. With ``--malformed`` a small share of rows carries the mistakes real files have:
grades out of range or misspelt, a decimal comma, an unknown symptom, a row cut short (its
missing trailing cells are read as not given, as pandas reads them).

    python examples/make_intake_csv.py -n 3000 --malformed 0.02 -o examples/data/intake_sample.csv
    python examples/make_intake_csv.py -n 1000000 -o /tmp/intake_1m.csv

Deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HEADER = [
    "client_id",
    "age",
    "tightness.hip_flexors",
    "tightness.iliopsoas.left",
    "tightness.iliopsoas.right",
    "tightness.rectus_femoris",
    "tightness.hamstrings",
    "strength.hip_flexors",
    "strength.hip_extensors",
    "strength.gluteus_maximus.left",
    "strength.gluteus_maximus.right",
    "strength.hamstrings",
    "symptoms",
    "activities",
    "rom.hip_flexion",
    "rom.hip_extension",
    "back_pain.weeks",
    "back_pain.intensity",
    "pregnancy",
    "osteoporosis",
]
"""The columns written: a realistic subset of the convention (blank cells are "not given")."""

COMMON_SYMPTOMS = [
    "lower_back_pain",
    "knee_pain",
    "hip_pain",
    "anterior_pelvic_tilt",
    "restricted_stride",
    "reduced_power",
]
RARE_SYMPTOMS = ["leg_pain_below_knee", "night_pain_unrelieved_by_position", "saddle_numbness"]
ACTIVITIES = ["walking", "running", "stair_climbing", "sit_to_stand", "jumping", "weightlifting"]
TIGHTNESS = ["none", "mild", "moderate", "severe"]


def _weighted(rng: random.Random, values: list[Any], weights: list[float]) -> Any:
    return rng.choices(values, weights)[0]


def intake_row(rng: random.Random, number: int) -> dict[str, Any]:
    """One synthetic intake form as a row of the column convention."""
    row: dict[str, Any] = {"client_id": f"C{number:07d}"}
    if rng.random() < 0.9:
        row["age"] = int(min(85, max(16, rng.gauss(42, 14))))
    # Most people answer for the groups; a few forms come from a clinician with per-side grades.
    if rng.random() < 0.85:
        row["tightness.hip_flexors"] = _weighted(
            rng, [0, 1, 2, 3, "mild", "moderate"], [30, 30, 22, 8, 6, 4]
        )
    if rng.random() < 0.08:
        row["tightness.iliopsoas.left"] = rng.randint(0, 3)
        row["tightness.iliopsoas.right"] = rng.randint(0, 3)
    if rng.random() < 0.1:
        row["tightness.rectus_femoris"] = _weighted(rng, [1, 2, 3], [5, 3, 1])
    if rng.random() < 0.5:
        row["tightness.hamstrings"] = _weighted(rng, [0, 1, 2, 3], [30, 35, 25, 10])
    if rng.random() < 0.6:
        row["strength.hip_flexors"] = _weighted(rng, [5, 4, 3], [55, 35, 10])
    if rng.random() < 0.75:
        row["strength.hip_extensors"] = _weighted(rng, [5, 4, 3, 2], [40, 38, 18, 4])
    if rng.random() < 0.06:
        row["strength.gluteus_maximus.left"] = rng.randint(3, 5)
        row["strength.gluteus_maximus.right"] = rng.randint(3, 5)
    if rng.random() < 0.15:
        row["strength.hamstrings"] = _weighted(rng, [5, 4, 3], [5, 4, 1])
    symptoms = rng.sample(COMMON_SYMPTOMS, _weighted(rng, [0, 1, 2], [45, 40, 15]))
    if rng.random() < 0.01:
        symptoms.append(rng.choice(RARE_SYMPTOMS))
    if symptoms:
        row["symptoms"] = ";".join(symptoms)
    if rng.random() < 0.8:
        row["activities"] = ";".join(rng.sample(ACTIVITIES, _weighted(rng, [1, 2], [7, 3])))
    if rng.random() < 0.05:  # a clinician measured, to the nearest 5 degrees
        row["rom.hip_flexion"] = rng.choice(range(90, 135, 5))
        row["rom.hip_extension"] = rng.choice(range(-5, 25, 5))
    if "lower_back_pain" in symptoms and rng.random() < 0.3:
        row["back_pain.weeks"] = _weighted(rng, [2, 6, 12, 52], [2, 3, 3, 2])
        row["back_pain.intensity"] = rng.randint(2, 7)
    if rng.random() < 0.01:
        row["pregnancy"] = "yes"
    if rng.random() < 0.02:
        row["osteoporosis"] = "yes"
    return row


MISTAKES = [
    ("tightness.hip_flexors", "4"),
    ("tightness.hip_flexors", "sevre"),
    ("strength.hip_extensors", "good-ish"),
    ("age", "forty"),
    ("age", "-3"),
    ("rom.hip_flexion", "110,5"),
    ("symptoms", "knee_pian"),
    ("pregnancy", "maybe"),
]


def rows(count: int, seed: int, malformed: float) -> Iterator[list[str]]:
    """``count`` data rows as lists of cells (strings), a ``malformed`` share of them broken."""
    rng = random.Random(seed)
    for number in range(1, count + 1):
        row = intake_row(rng, number)
        cells = ["" if row.get(name) is None else str(row[name]) for name in HEADER]
        if malformed and rng.random() < malformed:
            if rng.random() < 0.15:
                cells = cells[:-2]  # a row cut short
            else:
                column, value = rng.choice(MISTAKES)
                cells[HEADER.index(column)] = value
        yield cells


def write(path: Path | None, count: int, seed: int, malformed: float) -> None:
    """Write the header and ``count`` rows to ``path`` (standard output when None)."""
    stream = open(path, "w", newline="", encoding="utf-8") if path else sys.stdout  # noqa: SIM115
    try:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows(count, seed, malformed))
    finally:
        if path:
            stream.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--rows", type=int, default=3000, help="data rows (3000)")
    parser.add_argument("-o", "--output", type=Path, help="CSV file (default: standard output)")
    parser.add_argument("--seed", type=int, default=2024, help="random seed (2024)")
    parser.add_argument(
        "--malformed", type=float, default=0.0, help="share of rows with a mistake (0)"
    )
    args = parser.parse_args(argv)
    write(args.output, args.rows, args.seed, args.malformed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
