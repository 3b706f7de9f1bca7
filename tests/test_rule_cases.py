"""Every rule's own cases: forms that must make it fire and forms that must keep it quiet.

The cases live beside the rules in ``rules/cases/<rule-id>.yaml`` (format in
``rules/cases/README.md``), so a clinician adds a rule and its expected behaviour together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import hipscreen

CASES_DIR = Path(__file__).resolve().parent.parent / "rules" / "cases"
NOT_RULE_FILES = {"golden.yaml"}

FILE_KEYS = {"rule", "fires", "quiet"}
CHECK_KEYS = {"severity", "evidence", "derived_from", "sides", "confidence", "referral", "plan"}
FIRES_KEYS = {"name", "form", *CHECK_KEYS}
PLAN_KEYS = {"includes", "excludes", "exactly"}
QUIET_KEYS = {"name", "form"}


@dataclass(frozen=True)
class RuleCase:
    """One form and what one rule must do with it."""

    file: str
    rule: str
    kind: str  # "fires" or "quiet"
    name: str
    form: dict[str, Any]
    checks: dict[str, Any]

    @property
    def test_id(self) -> str:
        return f"{self.rule}/{self.kind}/{self.name}"


def case_files() -> list[Path]:
    return sorted(p for p in CASES_DIR.glob("*.yaml") if p.name not in NOT_RULE_FILES)


def _check_file(path: Path) -> tuple[list[RuleCase], list[str]]:
    """The cases of one file, and every way the file breaks the case format."""
    problems: list[str] = []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        return [], [f"{path.name}: not valid YAML: {error}"]
    if not isinstance(data, dict):
        return [], [f"{path.name}: must be a mapping with keys {sorted(FILE_KEYS)}"]
    problems += [f"{path.name}: unknown key {k!r}" for k in sorted(set(data) - FILE_KEYS)]
    rule = data.get("rule")
    if rule != path.stem:
        problems.append(f"{path.name}: 'rule' is {rule!r} but the file name says {path.stem!r}")
    cases: list[RuleCase] = []
    names: set[str] = set()
    for kind, allowed in (("fires", FIRES_KEYS), ("quiet", QUIET_KEYS)):
        entries = data.get(kind) or []
        if not isinstance(entries, list):
            problems.append(f"{path.name}: {kind!r} must be a list of cases")
            continue
        for i, entry in enumerate(entries):
            where = f"{path.name}: {kind}[{i}]"
            if not isinstance(entry, dict):
                problems.append(f"{where}: a case must be a mapping")
                continue
            problems += [f"{where}: unknown key {k!r}" for k in sorted(set(entry) - allowed)]
            name, form = entry.get("name"), entry.get("form")
            if not isinstance(name, str) or not name:
                problems.append(f"{where}: needs a 'name'")
                continue
            if name in names:
                problems.append(f"{where}: duplicate case name {name!r}")
            names.add(name)
            if not isinstance(form, dict):
                problems.append(f"{where} ({name}): needs a 'form' mapping")
                continue
            plan = entry.get("plan", {})
            if not isinstance(plan, dict):
                problems.append(f"{where} ({name}): 'plan' must be a mapping")
            else:
                problems += [
                    f"{where} ({name}): unknown plan key {k!r}"
                    for k in sorted(set(plan) - PLAN_KEYS)
                ]
            checks = {k: v for k, v in entry.items() if k not in {"name", "form"}}
            cases.append(RuleCase(path.name, str(rule), kind, name, form, checks))
    return cases, problems


def _all_cases() -> tuple[list[RuleCase], list[str]]:
    cases: list[RuleCase] = []
    problems: list[str] = []
    for path in case_files():
        file_cases, file_problems = _check_file(path)
        cases += file_cases
        problems += file_problems
    return cases, problems


ALL_CASES, FORMAT_PROBLEMS = _all_cases()
FIRES = [pytest.param(c, id=c.test_id) for c in ALL_CASES if c.kind == "fires"]
QUIET = [pytest.param(c, id=c.test_id) for c in ALL_CASES if c.kind == "quiet"]


@pytest.fixture(scope="module")
def builtin_rule_ids() -> list[str]:
    return [rule.id for rule in hipscreen.Screener().ruleset.rules]


def _finding(result: hipscreen.Assessment, rule_id: str) -> hipscreen.Finding | None:
    return next((f for f in result.findings if f.id == rule_id), None)


@pytest.mark.parametrize("case", FIRES)
def test_rule_fires(case: RuleCase) -> None:
    """The rule produces its finding for the form, with the expected details."""
    result = hipscreen.assess(case.form)
    finding = _finding(result, case.rule)
    assert finding is not None, f"{case.rule} did not fire; findings: {result.finding_ids()}"
    if "severity" in case.checks:
        assert finding.severity.value == case.checks["severity"]
    if "evidence" in case.checks:
        fields = [e.field for e in finding.evidence]
        missing = [path for path in case.checks["evidence"] if path not in fields]
        assert not missing, f"evidence lacks {missing}; it has {fields}"
    if "derived_from" in case.checks:
        assert sorted(finding.derived_from) == sorted(case.checks["derived_from"])
    if "sides" in case.checks:
        assert sorted(s.value for s in finding.sides) == sorted(case.checks["sides"])
    if "confidence" in case.checks:
        assert finding.confidence.value == case.checks["confidence"]
    if "referral" in case.checks:
        referral = result.referral
        assert referral is not None, "no referral"
        assert case.rule in referral.because
        assert referral.urgency.value == case.checks["referral"]
    if "plan" in case.checks:
        _check_plan([rec.exercise.id for rec in result.recommendations], case.checks["plan"])


def _check_plan(plan: list[str], expected: dict[str, list[str]]) -> None:
    missing = [ex for ex in expected.get("includes", []) if ex not in plan]
    unwanted = [ex for ex in expected.get("excludes", []) if ex in plan]
    assert missing == [], f"plan {plan} lacks {missing}"
    assert unwanted == [], f"plan {plan} must not contain {unwanted}"
    if "exactly" in expected:
        assert plan == expected["exactly"]


@pytest.mark.parametrize("case", QUIET)
def test_rule_stays_quiet(case: RuleCase) -> None:
    """The rule does not produce its finding for the form."""
    result = hipscreen.assess(case.form)
    assert case.rule not in result.finding_ids()


def test_case_files_follow_the_format() -> None:
    """Every case file is well formed, so a misspelt check cannot silently pass."""
    assert FORMAT_PROBLEMS == []


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
    unknown = [p.name for p in case_files() if p.stem not in builtin_rule_ids]
    assert unknown == []


def test_case_checks_name_existing_rules_and_exercises(builtin_rule_ids: list[str]) -> None:
    """A misspelt id in ``derived_from`` or ``plan`` cannot make a check pass."""
    catalog = hipscreen.Screener().ruleset.exercises
    rules = {r for c in ALL_CASES for r in c.checks.get("derived_from", [])}
    exercises = {ex for c in ALL_CASES for ids in c.checks.get("plan", {}).values() for ex in ids}
    assert sorted(rules - set(builtin_rule_ids)) == []
    assert sorted(exercises - set(catalog)) == []
