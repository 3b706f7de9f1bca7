"""Golden cases: whole intake forms and exactly the findings and plan they must produce.

The cases live in ``rules/cases/golden.yaml`` (format in ``rules/cases/README.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import hipscreen
from hipscreen._rules.loader import load_ruleset

GOLDEN = Path(__file__).resolve().parent.parent / "rules" / "cases" / "golden.yaml"
CASE_KEYS = {"name", "form", "findings", "referral", "plan"}
PLAN_KEYS = {"includes", "excludes", "exactly"}


def _load() -> list[dict[str, Any]]:
    data = yaml.safe_load(GOLDEN.read_text(encoding="utf-8"))
    return list(data["cases"])


CASES = _load()
PARAMS = [pytest.param(case, id=str(case.get("name"))) for case in CASES]
#: Hip-flexor strengthening: a finding may withhold it (tight flexors with weak extensors).
FLEXOR_STRENGTHENING = {
    ex_id
    for ex_id, ex in load_ruleset().exercises.items()
    if "hip_flexor_strengthening" in ex.properties
}


@pytest.fixture(scope="module")
def ruleset() -> Any:
    return hipscreen.Screener().ruleset


def _plan_ids(result: hipscreen.Assessment) -> list[str]:
    return [rec.exercise.id for rec in result.recommendations]


@pytest.mark.parametrize("case", PARAMS)
def test_golden_findings(case: dict[str, Any]) -> None:
    """The form produces exactly the expected set of findings."""
    result = hipscreen.assess(case["form"])
    assert sorted(result.finding_ids()) == sorted(case["findings"])


@pytest.mark.parametrize("case", PARAMS)
def test_golden_findings_come_most_severe_first_then_in_rule_order(
    case: dict[str, Any], ruleset: Any
) -> None:
    result = hipscreen.assess(case["form"])
    rule_order = [rule.id for rule in ruleset.rules]
    rank = {"critical": 0, "warning": 1, "info": 2}
    keys = [(rank[f.severity.value], rule_order.index(f.id)) for f in result.findings]
    assert keys == sorted(keys), result.finding_ids()


@pytest.mark.parametrize("case", [p for p in PARAMS if "referral" in p.values[0]])
def test_golden_referral(case: dict[str, Any]) -> None:
    """The referral has the expected urgency, or there is none (``null``)."""
    referral = hipscreen.assess(case["form"]).referral
    urgency = None if referral is None else referral.urgency.value
    assert urgency == case["referral"]


@pytest.mark.parametrize("case", [p for p in PARAMS if "plan" in p.values[0]])
def test_golden_plan(case: dict[str, Any]) -> None:
    """The plan contains the exercises it must and none of those it must not."""
    plan = _plan_ids(hipscreen.assess(case["form"]))
    expected = case["plan"]
    missing = [ex for ex in expected.get("includes", []) if ex not in plan]
    unwanted = [ex for ex in expected.get("excludes", []) if ex in plan]
    assert missing == [], f"plan {plan} lacks {missing}"
    assert unwanted == [], f"plan {plan} must not contain {unwanted}"
    if "exactly" in expected:
        assert plan == expected["exactly"]


@pytest.mark.parametrize("case", PARAMS)
def test_golden_plan_keeps_the_balance_and_safety_promises(case: dict[str, Any]) -> None:
    """The contract's two promises about the plan.

    A critical finding (red flag) comes with a referral and no strengthening or loaded exercise.
    Without a referral, the plan starts with the warm-up and strengthens flexion and extension.
    """
    result = hipscreen.assess(case["form"])
    recs = result.recommendations
    strength = [r.exercise for r in recs if r.exercise.kind.value == "strength"]
    if any(f.severity.value == "critical" for f in result.findings):
        assert result.referral is not None
        assert [ex.id for ex in strength] == []
        assert [r.exercise.id for r in recs if "loaded" in r.exercise.properties] == []
    if result.referral is None:
        assert recs, "no recommendations"
        withheld = {x.exercise_id for x in result.excluded}
        warm_up = "gentle_dynamic_hip_warm_up" if "dynamic_hip_warm_up" in withheld else None
        assert recs[0].exercise.id == (warm_up or "dynamic_hip_warm_up")
        movements = {ex.movement.value for ex in strength}
        if not withheld & FLEXOR_STRENGTHENING:  # a finding may withhold it (tight flexors)
            assert movements & {"flexion", "both"}, "no hip-flexion strength exercise"
        assert movements & {"extension", "both"}, "no hip-extension strength exercise"


@pytest.mark.parametrize("case", PARAMS)
def test_golden_plan_answers_only_findings_it_has(case: dict[str, Any]) -> None:
    """Every recommendation's ``because`` names findings of this assessment, with no repeats."""
    result = hipscreen.assess(case["form"])
    ids = set(result.finding_ids())
    for rec in result.recommendations:
        assert set(rec.because) <= ids, rec.exercise.id
        assert len(set(rec.because)) == len(rec.because), rec.exercise.id
    exercise_ids = _plan_ids(result)
    assert len(set(exercise_ids)) == len(exercise_ids), "an exercise is recommended twice"


def test_golden_file_follows_the_format(ruleset: Any) -> None:
    """Case keys are known and every id named exists, so a typo cannot make a check pass."""
    problems = []
    names: set[str] = set()
    rule_ids = {rule.id for rule in ruleset.rules}
    for i, case in enumerate(CASES):
        where = f"cases[{i}] {case.get('name')!r}"
        problems += [f"{where}: unknown key {k!r}" for k in sorted(set(case) - CASE_KEYS)]
        if not {"name", "form", "findings"} <= set(case):
            problems.append(f"{where}: needs name, form and findings")
        if case.get("name") in names:
            problems.append(f"{where}: duplicate name")
        names.add(case.get("name"))
        problems += [
            f"{where}: unknown rule {r!r}" for r in case.get("findings", []) if r not in rule_ids
        ]
        plan = case.get("plan", {})
        problems += [f"{where}: unknown plan key {k!r}" for k in sorted(set(plan) - PLAN_KEYS)]
        for key in sorted(PLAN_KEYS & set(plan)):
            problems += [
                f"{where}: plan.{key}: unknown exercise {ex!r}"
                for ex in plan[key]
                if ex not in ruleset.exercises
            ]
    assert problems == []


def test_golden_file_has_15_to_40_cases_including_the_empty_form() -> None:
    """A reviewable set: 25 imbalance and context forms plus the safety presentations (issue 9)."""
    assert 15 <= len(CASES) <= 40
    assert any(case["form"] == {} for case in CASES)
