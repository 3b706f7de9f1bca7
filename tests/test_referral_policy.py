"""Referral, plan and urgency agree: every referral rule against the one policy table.

``rules/ruleset.yaml`` ``referral_policy`` says per referral kind how soon (urgency), what the plan
leaves out until the person is cleared, and what the message must say. The loader refuses rules
that disagree with it; these tests check the built-in rules against the table independently, and
check the plan of every firing case of every referral rule.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_rule_cases import ALL_CASES

import hipscreen
from hipscreen._rules.builtin import builtin_rules_dir
from hipscreen._rules.loader import load_ruleset
from hipscreen._rules.ruleset import Rule
from hipscreen._vocabulary import ExerciseKind, Urgency

RULESET = load_ruleset()
POLICY = RULESET.referral_policy
REFERRING = [rule for rule in RULESET.rules if rule.spec.referral is not None]
SAME_DAY = re.compile(r"(?<![a-z])(same day|same-day|today|now|immediately|straight away)(?![a-z])")
BEFORE_EXERCISING = "before exercising"


def _params(rules: list[Rule]) -> list[Any]:
    return [pytest.param(rule, id=rule.id) for rule in rules]


def _text(rule: Rule) -> str:
    referral = rule.spec.referral
    assert referral is not None
    return f"{referral.see} {referral.message}".lower()


def test_the_policy_table_covers_every_urgency_and_the_same_day_words() -> None:
    assert {entry.urgency for entry in POLICY.values()} == set(Urgency)
    ruleset_file = yaml.safe_load((builtin_rules_dir() / "ruleset.yaml").read_text("utf-8"))
    assert {"same day", "today", "now"} <= set(ruleset_file["same_day_wording"])


@pytest.mark.parametrize("rule", _params(REFERRING))
def test_every_referral_names_a_policy_kind_and_its_urgency(rule: Rule) -> None:
    referral = rule.spec.referral
    assert referral is not None
    assert referral.kind in POLICY
    assert referral.urgency == POLICY[referral.kind].urgency


@pytest.mark.parametrize("rule", _params(REFERRING))
def test_the_message_carries_the_wording_of_its_kind(rule: Rule) -> None:
    referral = rule.spec.referral
    assert referral is not None
    assert referral.kind is not None
    wording = POLICY[referral.kind].wording
    assert any(phrase.lower() in _text(rule) for phrase in wording), (rule.id, wording)


@pytest.mark.parametrize("rule", _params(REFERRING))
def test_same_day_wording_is_always_an_emergency(rule: Rule) -> None:
    """Any "same day", "today" or "now" in what to do or whom to see makes it an emergency."""
    referral = rule.spec.referral
    assert referral is not None
    if SAME_DAY.search(_text(rule)):
        assert referral.urgency == Urgency.EMERGENCY, rule.id
    if referral.urgency == Urgency.EMERGENCY:
        assert SAME_DAY.search(_text(rule)), f"{rule.id}: an emergency that does not say when"


@pytest.mark.parametrize("rule", _params([r for r in REFERRING if BEFORE_EXERCISING in _text(r)]))
def test_before_exercising_means_no_warm_up_and_no_strength_work(rule: Rule) -> None:
    referral = rule.spec.referral
    assert referral is not None
    assert referral.kind is not None
    withheld = set(POLICY[referral.kind].withhold.kinds)
    assert {ExerciseKind.WARM_UP, ExerciseKind.STRENGTH} <= withheld


def test_the_cardiac_and_systemic_rules_say_before_exercising() -> None:
    """Chest pain on effort, fainting and dizziness wait for a doctor: no warm-up either."""
    for rule_id in ("exertional-warning-symptoms", "unexplained-dizziness"):
        rule = next(r for r in RULESET.rules if r.id == rule_id)
        assert BEFORE_EXERCISING in _text(rule)


FIRING_CASES = [
    pytest.param(case, id=case.test_id)
    for case in ALL_CASES
    if case.kind == "fires" and any(rule.id == case.rule for rule in REFERRING)
]


@pytest.mark.parametrize("case", FIRING_CASES)
def test_the_plan_leaves_out_what_the_referral_kind_withholds(case: Any) -> None:
    """For every firing case of every referral rule: the referral is set, and nothing the rule's
    kind withholds is recommended (only what the rule itself recommends may stay)."""
    rule = next(r for r in REFERRING if r.id == case.rule)
    referral = rule.spec.referral
    assert referral is not None
    assert referral.kind is not None
    policy = POLICY[referral.kind]
    result = hipscreen.assess(case.form)
    assert result.referral is not None
    assert rule.id in result.referral.because
    exempt = set(rule.spec.recommends)
    for rec in result.recommendations:
        if rec.exercise.id in exempt:
            continue
        assert rec.exercise.kind not in policy.withhold.kinds, rec.exercise.id
        assert not set(rec.exercise.properties) & set(policy.withhold.properties), rec.exercise.id


def test_every_referral_rule_has_a_firing_case() -> None:
    assert {c.values[0].rule for c in FIRING_CASES} == {rule.id for rule in REFERRING}


def test_a_febrile_child_with_a_limp_is_an_emergency() -> None:
    result = hipscreen.assess({"age": 7, "symptoms": ["limp", "fever"]})
    assert result.referral is not None
    assert result.referral.urgency == Urgency.EMERGENCY
    assert result.referral.because[0] == "young-person-hip-pain-emergency"
    assert result.recommendations == ()


# -- the loader refuses rules that disagree with the table -----------------------------------------


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(builtin_rules_dir(), target, ignore=shutil.ignore_patterns("cases"))
    return target


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _problems(rules: Path) -> str:
    with pytest.raises(hipscreen.RuleDataError) as caught:
        load_ruleset(rules)
    return str(caught.value)


def test_an_urgency_that_disagrees_with_the_kind_is_refused(rules_copy: Path) -> None:
    red_flags = rules_copy / "findings" / "00-red-flags.yaml"
    _replace(
        red_flags,
        "kind: emergency\n      urgency: emergency",
        "kind: emergency\n      urgency: urgent",
    )
    message = _problems(rules_copy)
    assert "possible-cauda-equina [referral.urgency]: kind 'emergency' is emergency" in message


def test_same_day_wording_in_an_urgent_referral_is_refused(rules_copy: Path) -> None:
    red_flags = rules_copy / "findings" / "00-red-flags.yaml"
    _replace(
        red_flags,
        "see: a doctor within a day or two\n      message: Worsening",
        "see: a doctor within a day or two (today if worse)\n      message: Worsening",
    )
    message = _problems(rules_copy)
    assert "progressive-neurological-deficit [referral.message]: 'today' promises" in message


def test_a_message_without_the_wording_of_its_kind_is_refused(rules_copy: Path) -> None:
    red_flags = rules_copy / "findings" / "00-red-flags.yaml"
    _replace(
        red_flags,
        "must be checked by a doctor before exercising, warm-up included",
        "must be checked by a doctor",
    )
    _replace(
        red_flags,
        "see: a doctor within a day or two, before exercising\n      message: Chest",
        "see: a doctor within a day or two\n      message: Chest",
    )
    message = _problems(rules_copy)
    assert (
        "exertional-warning-symptoms [referral.message]: a 'before_exercising' referral" in message
    )


def test_an_unknown_or_missing_kind_is_refused(rules_copy: Path) -> None:
    red_flags = rules_copy / "findings" / "00-red-flags.yaml"
    _replace(red_flags, "kind: febrile", "kind: feverish")
    _replace(red_flags, "      kind: clearance\n", "")
    message = _problems(rules_copy)
    assert "febrile-illness [referral.kind]: unknown referral kind 'feverish'" in message
    assert "needs-medical-clearance [referral.kind]: a referral needs a kind" in message
