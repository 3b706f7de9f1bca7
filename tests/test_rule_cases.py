"""Every rule's own cases, run through the public `hipscreen.testing` (as `hipscreen rules test`).

The cases live beside the rules in ``rules/cases/<rule-id>.yaml`` (format in
``rules/cases/README.md`` and docs/writing-rules.md), so a clinician adds a rule and its expected
behaviour together. ``golden.yaml`` holds whole-form cases; tests/test_golden.py adds the plan
promises on top.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hipscreen
from hipscreen.testing import RuleCase, case_params, check_case, load_cases, run_cases

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
CASES_DIR = RULES_DIR / "cases"

ALL_CASES, FORMAT_PROBLEMS = load_cases(RULES_DIR)


@pytest.fixture(scope="module")
def builtin_rule_ids() -> list[str]:
    return [rule.id for rule in hipscreen.Screener().ruleset.rules]


@pytest.mark.parametrize("case", case_params(RULES_DIR))
def test_rule_case(case: RuleCase) -> None:
    """The rule fires (with the expected details) or stays quiet, as the case says."""
    check_case(case).check()


def test_case_files_follow_the_format() -> None:
    """Every case file is well formed, so a misspelt check cannot silently pass."""
    assert FORMAT_PROBLEMS == []
    assert {case.kind for case in ALL_CASES} == {"fires", "quiet", "golden"}


def test_every_rule_has_a_firing_and_a_quiet_case(builtin_rule_ids: list[str]) -> None:
    """A new rule without cases fails here: add rules/cases/<rule-id>.yaml."""
    fires = {c.rule for c in ALL_CASES if c.kind == "fires"}
    quiet = {c.rule for c in ALL_CASES if c.kind == "quiet"}
    without_file = [r for r in builtin_rule_ids if not (CASES_DIR / f"{r}.yaml").is_file()]
    assert without_file == [], "rules without a case file in rules/cases/"
    assert [r for r in builtin_rule_ids if r not in fires] == [], "rules without a 'fires' case"
    assert [r for r in builtin_rule_ids if r not in quiet] == [], "rules without a 'quiet' case"


def test_case_files_name_only_existing_rules(builtin_rule_ids: list[str]) -> None:
    """A case file for a renamed or deleted rule is an error, not dead weight."""
    files = [p for p in CASES_DIR.glob("*.yaml") if p.name != "golden.yaml"]
    assert [p.name for p in files if p.stem not in builtin_rule_ids] == []


def test_the_whole_report_passes_strictly() -> None:
    """What `hipscreen rules test rules --strict` runs: every case, every rule covered, every id
    a check names exists (derived_from, findings, plan exercises)."""
    report = run_cases(RULES_DIR, strict=True, explain=False)
    assert report.passed, report.text()
    assert len(report.results) == len(ALL_CASES) > 400
    assert report.rules_without_cases == ()
