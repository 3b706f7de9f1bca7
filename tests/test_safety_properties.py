"""Safety invariants over generated forms: red flags always win over exercise advice."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import forms, with_symptom

import hipscreen
from hipscreen._rules.atoms import alternatives
from hipscreen._rules.loader import load_ruleset
from hipscreen._vocabulary import ExerciseKind, Severity

RULESET = load_ruleset()
REFERRING = [rule for rule in RULESET.rules if rule.spec.referral is not None]


def _symptoms_of(rule: Any) -> set[str]:
    names: set[str] = set()
    for alt in alternatives(rule.condition):
        for atom in alt:
            if atom.fact == "symptom":
                names |= {v for k, v in atom.equals if k == "name"}
                if atom.one_of is not None:
                    names |= set(atom.one_of[1])
    return names


# Symptoms that can trigger a referral; a symptom alone fires a critical rule if it is the only
# atom of some alternative of a rule that is critical from the start.
REFERRAL_SYMPTOMS = sorted(set().union(*(_symptoms_of(rule) for rule in REFERRING)))
LONE_CRITICAL_SYMPTOMS = sorted(
    {
        name
        for rule in REFERRING
        if rule.spec.severity == Severity.CRITICAL
        for alt in alternatives(rule.condition)
        if len(alt) == 1 and alt[0].fact == "symptom"
        for name in ({v for k, v in alt[0].equals} | set((alt[0].one_of or ("", ()))[1]))
    }
)
MARKED_WEAKNESS = RULESET.thresholds["marked_weakness_grade"].value


def _without_referral_triggers(form: dict[str, Any]) -> dict[str, Any]:
    """The form with every input a referral rule can test taken out."""
    clean = copy.deepcopy(form)
    clean["symptoms"] = [s for s in clean.get("symptoms", []) if s not in REFERRAL_SYMPTOMS]
    for key in (
        "vertebral_fracture",
        "pregnancy",
        "straight_leg_raise",
        "back_pain",
        "recent_fall",
        "recent_joint_procedure",
        "instruments",  # STarT Back high and PAR-Q+ not cleared refer
    ):
        clean.pop(key, None)
    strength = clean.get("strength", {})
    for muscle, value in list(strength.items()):
        grades = value if isinstance(value, dict) else {"both": value}
        if any(
            hipscreen.IntakeForm(strength={muscle: g}).strength[muscle] <= MARKED_WEAKNESS
            for g in grades.values()
            if g is not None
        ):
            strength[muscle] = 4
    return clean


def _with_symptom(form: dict[str, Any], symptom: str) -> dict[str, Any]:
    return with_symptom(form, symptom)


@settings(deadline=None)
@given(forms(), st.sampled_from(LONE_CRITICAL_SYMPTOMS))
def test_a_critical_red_flag_brings_a_referral_and_no_loaded_or_strength_work(
    form: dict[str, Any], symptom: str
) -> None:
    result = hipscreen.assess(_with_symptom(form, symptom))
    assert result.referral is not None
    assert any(f.severity == Severity.CRITICAL for f in result.findings)
    for rec in result.recommendations:
        assert rec.exercise.kind not in (ExerciseKind.STRENGTH, ExerciseKind.STRETCH)
        assert "loaded" not in rec.exercise.properties


@settings(deadline=None)
@given(forms(), st.sampled_from(REFERRAL_SYMPTOMS))
def test_adding_a_red_flag_never_removes_a_referral(form: dict[str, Any], symptom: str) -> None:
    before = hipscreen.assess(form)
    after = hipscreen.assess(_with_symptom(form, symptom))
    if before.referral is not None:
        assert after.referral is not None
        urgency = ["emergency", "urgent", "routine"]
        assert urgency.index(after.referral.urgency) <= urgency.index(before.referral.urgency)
        assert set(before.referral.because) <= set(after.referral.because)


@settings(deadline=None)
@given(forms())
def test_removing_every_red_flag_leaves_no_referral(form: dict[str, Any]) -> None:
    result = hipscreen.assess(_without_referral_triggers(form))
    assert result.referral is None, result.referral
    assert not any(f.severity == Severity.CRITICAL for f in result.findings)


def test_the_trigger_lists_are_not_empty() -> None:
    """Guards the properties above against passing vacuously."""
    assert "saddle_numbness" in LONE_CRITICAL_SYMPTOMS
    assert "leg_pain_below_knee" in REFERRAL_SYMPTOMS


VOCABULARY = RULESET.vocabulary
assert VOCABULARY is not None
ALARM_SYMPTOMS = sorted(n for n, item in VOCABULARY.symptoms.items() if item.item_class == "alarm")
RULES = {rule.id: rule for rule in RULESET.rules}


@settings(deadline=None)
@given(forms(), st.sampled_from(ALARM_SYMPTOMS))
def test_an_alarm_symptom_is_never_silent_whatever_else_the_form_says(
    form: dict[str, Any], symptom: str
) -> None:
    """Whatever else is on the form, an alarm symptom brings a warning or more citing it, and a
    referral."""
    result = hipscreen.assess(_with_symptom(form, symptom))
    citing = [
        f
        for f in result.findings
        if f.severity.rank >= Severity.WARNING.rank
        and any(e.field == "symptoms" and e.value == symptom for e in f.evidence)
    ]
    assert citing, f"{symptom} is cited by no warning: {result.finding_ids()}"
    assert result.referral is not None


@settings(deadline=None)
@given(forms(), st.sampled_from(ALARM_SYMPTOMS))
def test_the_plan_never_holds_what_a_referral_withholds_until_cleared(
    form: dict[str, Any], symptom: str
) -> None:
    """Referral, plan and urgency agree: what the referral's kind withholds is not recommended
    (except what the referring rule itself recommends, such as staying active)."""
    result = hipscreen.assess(_with_symptom(form, symptom))
    for finding in result.findings:
        referral = RULES[finding.id].spec.referral
        if referral is None or referral.kind is None:
            continue
        policy = RULESET.referral_policy[referral.kind]
        exempt = set(RULES[finding.id].spec.recommends)
        for rec in result.recommendations:
            if rec.exercise.id in exempt:
                continue
            assert rec.exercise.kind not in policy.withhold.kinds, (finding.id, rec.exercise.id)
            assert not set(rec.exercise.properties) & set(policy.withhold.properties), (
                finding.id,
                rec.exercise.id,
            )
