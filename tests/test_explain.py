"""`Assessment.why` / `why_not`: every alternative of a rule, the tests that held and did not,
the inputs, thresholds and their sources, down the chain; and they never contradict the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import forms, screening_forms

import hipscreen
from hipscreen import Explanation, IntakeForm
from hipscreen._rules.explain import AtomCheck, ExplanationError, explain
from hipscreen._screen import default_screener

EXTRA = Path(__file__).resolve().parent / "extra_rules"

# Both legs with "back pain" stated at intensity 0: the cauda equina red flag nearly fires.
NEAR_CAUDA = {"symptoms": ["bilateral_leg_symptoms", "hip_pain"], "back_pain": {"weeks": 3}}


def _atoms(explanation: Explanation) -> list[AtomCheck]:
    return [atom for alt in explanation.alternatives for atom in alt.atoms]


def test_why_not_for_a_red_flag_that_nearly_fired() -> None:
    form = {**NEAR_CAUDA, "back_pain": {"weeks": 3, "intensity": 0}}
    result = hipscreen.assess(form)
    assert "possible-cauda-equina" not in result.finding_ids()
    why_not = result.why_not("possible-cauda-equina", form)
    assert not why_not.fired
    assert why_not.severity == "critical"
    assert [alt.missing for alt in why_not.alternatives] == [1, 1]
    both_legs, back = why_not.alternatives[1].atoms
    assert both_legs.held
    assert both_legs.inputs[0].text() == "symptoms = bilateral_leg_symptoms"
    assert not back.held
    assert back.test == "symptom lower_back_pain"
    assert "lower_back_pain not reported" in back.inputs[0].text()
    text = why_not.text()
    assert text.splitlines()[0] == (
        "possible-cauda-equina (Possible cauda equina signs, critical): did not fire"
    )
    assert "alternative 2 of 2: not met (1 of 2 tests held)" in text
    assert why_not.nearest() == why_not.alternatives


def test_why_names_the_inputs_the_threshold_and_where_it_comes_from() -> None:
    form = {"tightness": {"iliopsoas": {"left": 3}}}
    why = hipscreen.assess(form).why("tight-hip-flexors", form)
    assert why.fired
    held = [alt for alt in why.alternatives if alt.held]
    (atom,) = held[0].atoms
    assert atom.threshold == "≥ 2 (tight_grade)"
    assert [(i.field, i.value, i.held) for i in atom.inputs] == [
        ("tightness.iliopsoas.left", 3, True)
    ]
    assert atom.sources[0].startswith("tight_grade = 2 grade (0–3) (ruleset.yaml; ")
    assert "threshold tight_grade = 2" in why.text()


def test_a_threshold_override_is_the_threshold_explained() -> None:
    screener = hipscreen.Screener(thresholds={"tight_grade": 3}, cache_size=0)
    form = {"tightness": {"iliopsoas": 2}}
    why_not = screener.assess(form).why_not("tight-hip-flexors", form, screener=screener)
    atom = next(a for a in _atoms(why_not) if a.threshold and "tight_grade" in a.threshold)
    assert atom.inputs[0].text() == "tightness.iliopsoas = 2 — not ≥ 3 (tight_grade)"
    assert atom.sources[0].startswith("tight_grade = 3 ")


def test_a_blank_input_is_not_assessed_and_a_near_miss_shows_its_value() -> None:
    blank = hipscreen.assess({}).why_not("weak-hip-extensors", {})
    (atom,) = _atoms(blank)
    assert atom.inputs[0].text() == "strength (hip_extensors muscles): not assessed"
    form = {"strength": {"gluteus_maximus": 4, "hip_flexors": 2}}
    near = hipscreen.assess(form).why_not("weak-hip-extensors", form)
    (atom,) = _atoms(near)
    assert [i.text() for i in atom.inputs] == [
        "strength.gluteus_maximus = 4 — not ≤ 3 (weak_grade)"
    ]  # the flexor grade is another input: not listed


def test_a_side_or_method_that_differs_is_named() -> None:
    form = {"rom": {"hip_extension": 5, "method": "inclinometer"}}
    why_not = hipscreen.assess(form).why_not("limited-hip-extension", form)
    goniometer = next(a for a in _atoms(why_not) if "goniometer" in (a.threshold or ""))
    assert goniometer.inputs[0].note.startswith("method is inclinometer, the rule asks goniometer")


def test_a_blank_context_question_is_not_assessed() -> None:
    form = {"recent_fall": {"occurred": True, "new_pain": True}, "age": 70}
    result = hipscreen.assess(form)
    assert "fall-on-anticoagulant" not in result.finding_ids()
    why_not = result.why_not("fall-on-anticoagulant", form)
    anticoagulant = next(a for a in _atoms(why_not) if a.test == "context anticoagulant")
    assert anticoagulant.inputs[0].text() == "anticoagulant: not assessed"


def test_a_chained_rule_is_explained_down_the_chain() -> None:
    form = {"thomas_test": {"hip_angle": {"left": 12.5, "right": 1}}}
    why = hipscreen.assess(form).why("limited-hip-extension", form)
    chained = next(a for a in _atoms(why) if a.test == "finding tight-hip-flexors")
    assert chained.held
    assert chained.chain is not None
    assert chained.chain.fired
    assert chained.chain.severity == "warning"  # escalated, as the engine's finding
    (escalation,) = chained.chain.escalations
    assert escalation.held
    assert escalation.severity == "warning"
    text = why.text()
    assert "        tight-hip-flexors (Tight hip flexors, warning): fired" in text
    assert "thomas_test.hip_angle.left = 12.5" in text
    missing = next(a for a in _atoms(why) if a.test == "finding weak-hip-extensors")
    assert not missing.held
    assert missing.chain is not None
    assert not missing.chain.fired


@pytest.mark.parametrize(
    ("call", "rule", "message"),
    [
        ("why", "possible-cauda-equina", "did not fire for this form: why_not"),
        ("why_not", "tight-hip-flexors", "fired for this form: why()"),
        ("why", "tight-hip-flexor", "unknown rule 'tight-hip-flexor'; did you mean"),
    ],
)
def test_asking_the_wrong_question_is_a_clear_error(call: str, rule: str, message: str) -> None:
    form = {"tightness": {"iliopsoas": 3}}
    result = hipscreen.assess(form)
    with pytest.raises(ExplanationError, match=message) as raised:
        getattr(result, call)(rule, form)
    assert isinstance(raised.value, ValueError)


def test_another_rule_set_or_another_form_is_refused() -> None:
    form = {"tightness": {"iliopsoas": 3}}
    result = hipscreen.assess(form)
    other = result.model_copy(update={"ruleset_version": "0.9.0+000000000000"})
    with pytest.raises(ValueError, match=r"screened with rules 0\.9\.0"):
        other.why("tight-hip-flexors", form)
    with pytest.raises(
        ValueError, match="only in the assessment: anterior-pelvic-tilt-risk, tight-hip-flexors"
    ):
        result.why_not("weak-hip-extensors", {"strength": {"gluteus_maximus": 2}})


def test_a_custom_rule_set_is_explained_with_its_screener() -> None:
    screener = hipscreen.Screener(extra_rules=[EXTRA / "clinic"], cache_size=0)
    form = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 3}}
    form["activities"] = ["sprinting"]
    result = screener.assess(form)
    why = result.why("sprint-imbalance-caution", form, screener=screener)
    assert why.fired
    assert why.file.endswith(".yaml")
    with pytest.raises(ValueError, match="explain it with the rule set it was screened with"):
        result.why("sprint-imbalance-caution", form)


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(forms(), screening_forms()))
def test_explanations_agree_with_the_engine_on_every_rule(raw: dict[str, Any]) -> None:
    """For every rule: it fired (per the engine) exactly when an alternative held; a held
    alternative has every test held, an unheld one at least one not held; a held test of an
    input cites that input; each chain's verdict is the engine's too."""
    form = IntakeForm.model_validate(raw)
    result = hipscreen.assess(form)
    fired = set(result.finding_ids())
    for rule in default_screener().ruleset.rules:
        explanation = explain(result, form, rule.id)
        assert explanation.fired == (rule.id in fired)
        assert any(alt.held for alt in explanation.alternatives) == explanation.fired
        for alt in explanation.alternatives:
            assert alt.held == all(atom.held for atom in alt.atoms)
            for atom in alt.atoms:
                if atom.chain is not None:
                    assert atom.held == atom.chain.fired == (atom.chain.rule_id in fired)
                elif atom.held and not atom.test.startswith("unmeasured"):
                    assert atom.inputs, atom
                    assert all(i.held for i in atom.inputs), atom
                elif not atom.held:
                    assert atom.inputs, atom
                    assert not any(i.held for i in atom.inputs), atom


def test_an_instrument_whose_band_is_not_certain_is_explained_as_such() -> None:
    """STarT Back with item 9 missing: distress could still be 4, so no band; why-not says so."""
    items = {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1, "6": 1, "7": 1, "8": 0}
    form = {"instruments": {"start_back": {"items": items}}}
    why_not = hipscreen.assess(form).why_not("start-back-high-risk", form)
    (atom,) = [a for a in _atoms(why_not) if a.test.startswith("score")]
    assert not atom.held
    assert atom.inputs[0].field == "instruments.start_back"
    assert "not certain" in atom.inputs[0].text()
    blank = hipscreen.assess({}).why_not("start-back-high-risk", {})
    assert [a.inputs[0].text() for a in _atoms(blank)] == ["instruments.start_back: not assessed"]
