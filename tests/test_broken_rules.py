"""Deliberately broken rule directories, and the error each must produce.

Each ``tests/broken_rules/<case>/`` is a copy of ``_valid/`` with one defect and an
``expected.txt`` (format in ``tests/broken_rules/README.md``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import hipscreen

HERE = Path(__file__).resolve().parent / "broken_rules"
VALID = HERE / "_valid"
CASES = sorted(p for p in HERE.iterdir() if p.is_dir() and not p.name.startswith("_"))
COUNT = re.compile(r"^problems: (\d+)$")


def _expected(case: Path) -> tuple[list[str], int | None]:
    """The substrings the message must contain, and the exact problem count if given."""
    substrings: list[str] = []
    count = None
    for line in (case / "expected.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = COUNT.match(line)
        if match:
            count = int(match.group(1))
        else:
            substrings.append(line)
    return substrings, count


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_broken_rules_are_refused_with_the_expected_error(case: Path) -> None:
    substrings, count = _expected(case)
    with pytest.raises(hipscreen.RuleDataError) as caught:
        hipscreen.Screener(rules_dir=case)
    message = str(caught.value)
    missing = [s for s in substrings if s not in message]
    assert missing == [], f"the error lacks {missing}:\n{message}"
    reported = len(caught.value.problems)
    if count is not None:
        assert reported == count, f"expected {count} problem(s), got {reported}:\n{message}"


def test_every_case_has_expected_substrings() -> None:
    """An empty expected.txt would make its case pass on any error."""
    assert [c.name for c in CASES if not _expected(c)[0]] == []


def test_the_base_of_every_case_is_valid() -> None:
    """So each case fails only because of its own defect."""
    screener = hipscreen.Screener(rules_dir=VALID)
    assert sorted(r.id for r in screener.ruleset.rules) == [
        "anterior-pelvic-tilt-risk",
        "tight-hip-flexors",
    ]


def test_rule_data_error_is_a_value_error_and_a_hipscreen_error() -> None:
    with pytest.raises(ValueError, match="unknown threshold") as caught:
        hipscreen.Screener(rules_dir=HERE / "unknown-threshold")
    assert isinstance(caught.value, hipscreen.HipscreenError)


def test_a_valid_dir_loads_after_a_failed_one() -> None:
    """A failed load leaves nothing half-loaded behind: the next screener works normally."""
    form = {"tightness": {"iliopsoas": 3}, "symptoms": ["anterior_pelvic_tilt"]}
    before = hipscreen.Screener(rules_dir=VALID).assess(form)
    for case in CASES:
        with pytest.raises(hipscreen.RuleDataError):
            hipscreen.Screener(rules_dir=case)
    after = hipscreen.Screener(rules_dir=VALID).assess(form)
    assert after == before
    assert [(f.id, f.severity.value) for f in after.findings] == [
        ("anterior-pelvic-tilt-risk", "warning"),
        ("tight-hip-flexors", "info"),
    ]


def test_builtin_rules_are_unaffected_by_a_failed_load() -> None:
    form = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}}
    before = hipscreen.assess(form)
    with pytest.raises(hipscreen.RuleDataError):
        hipscreen.Screener(rules_dir=HERE / "several-problems")
    assert hipscreen.assess(form) == before
    assert hipscreen.Screener().assess(form) == before
