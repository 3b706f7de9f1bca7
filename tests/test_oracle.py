"""Differential test: the engine path and the reference evaluator (tests/oracle.py) agree.

For generated forms, `Screener.assess` and `Oracle.assess` must give the same findings: ids and
their order, severities (escalations included), sides, derived_from, confidence and evidence.
Run for the built-in rules and for the extra-rule fixtures. The oracle also refuses, loudly, any
rule kind it was never taught (so a new kind cannot pass by silent agreement).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st
from oracle import Oracle, OracleError, check_atom, shared_fact_conjunctions, summary, walk
from strategies import forms, instrument_blocks, rule_files, screening_forms

import hipscreen
from hipscreen import IntakeForm
from hipscreen._rules.atoms import AllOf, Atom

EXTRA = Path(__file__).resolve().parent / "extra_rules"

DIFFERENTIAL = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

_SCREENERS: dict[str, hipscreen.Screener] = {}


def screener(name: str) -> hipscreen.Screener:
    """One uncached screener per rule set, compiled once per test session."""
    if name not in _SCREENERS:
        extra = [] if name == "builtin" else [EXTRA / name]
        _SCREENERS[name] = hipscreen.Screener(extra_rules=extra, cache_size=0)
    return _SCREENERS[name]


def agree(name: str, raw: dict[str, Any], label: bool = False) -> None:
    form = IntakeForm.model_validate(raw)
    engine = screener(name)
    expected = summary(Oracle(engine.ruleset).assess(form))
    got = summary(engine.assess(form).findings)
    for row in expected if label else ():
        event(f"{name}: {row[0]}")
    assert got == expected, f"engine and oracle disagree on {form.model_dump_json()}"


@pytest.mark.parametrize("name", ["builtin", "clinic"])
@DIFFERENTIAL
@given(raw=st.one_of(forms(), screening_forms()))
def test_engine_and_oracle_agree(name: str, raw: dict[str, Any]) -> None:
    agree(name, raw, label=True)


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(st.one_of(forms(), screening_forms()), min_size=2, max_size=30))
def test_batch_and_oracle_agree_form_by_form(raws: list[dict[str, Any]]) -> None:
    """Screening many forms together (one session may hold several forms) loses nothing and
    mixes nothing up: every outcome is the oracle's answer for its own form."""
    oracle = Oracle(screener("builtin").ruleset)
    outcomes = hipscreen.assess_many(raws, cache_size=0)
    assert len(outcomes) == len(raws)
    for raw, outcome in zip(raws, outcomes, strict=True):
        assert isinstance(outcome, hipscreen.Assessment), outcome
        expected = summary(oracle.assess(IntakeForm.model_validate(raw)))
        assert summary(outcome.findings) == expected, raw


@pytest.mark.parametrize(
    "raw",
    [
        # Recent training increase alone, or running alone, completes the femoral stress rule.
        {"symptoms": ["groin_pain", "pain_on_weight_bearing", "recent_training_increase"]},
        {"symptoms": ["anterior_thigh_pain", "pain_on_weight_bearing"], "activities": ["running"]},
        # Escalations and chains with sides and measured evidence.
        {
            "thomas_test": {"hip_angle": {"left": 12.5, "right": 1}},
            "strength": {"gluteus_maximus": {"left": 2, "right": 4}},
            "symptoms": ["knee_pain"],
            "activities": ["sprinting", "walking"],
        },
        # Numbers just beside whole-number thresholds: compared exactly.
        {"rom": {"hip_flexion": 99.9996, "hip_extension": {"left": 9.9996, "right": -0.0004}}},
        {"rom": {"hip_flexion": 99.996, "hip_extension": {"left": 9.996, "right": -0.004}}},
        {"back_pain": {"weeks": 2, "intensity": 7}, "age": 70, "symptoms": ["night_sweats"]},
        # A self-rated tightness where a length test was measured on that side (or not).
        {
            "tightness": {"iliopsoas": {"left": 3, "right": 3}, "hamstrings": 3},
            "thomas_test": {"hip_angle": {"left": 15}},
            "straight_leg_raise": {"angle": 50},
        },
        # A fall without injury signs, a fall with new pain, anticoagulants, a procedure.
        {
            "recent_fall": {"occurred": True, "new_pain": False, "can_bear_weight": True},
            "symptoms": ["recent_fall_or_minor_trauma"],
            "anticoagulant": True,
        },
        {
            "recent_fall": {"occurred": True, "new_pain": True, "can_bear_weight": False},
            "recent_joint_procedure": True,
            "anticoagulant": True,
            "age": 80,
        },
        # Pregnancy implied by a pregnancy-only symptom; a recent hip operation.
        {"symptoms": ["vaginal_bleeding", "hip_pain"]},
        {"hip_replacement": {"approach": "posterior", "weeks_since": 3, "side": "left"}},
        # Issue 20: blanks, the equivalence table, one side measured, procedure timing,
        # postpartum, the new presentations.
        {"age": 71, "osteoporosis": True, "back_pain": {"weeks": 1, "intensity": 8}},
        {"tightness": {"iliopsoas": 3}, "thomas_test": {"hip_angle": {"left": -15}}},
        {"symptoms": ["hip_pain"], "joint_procedure": {"days_since": 40, "pain_worsening": False}},
        {"symptoms": ["groin_pain"], "joint_procedure": {"days_since": 3}, "age": 60},
        {"postpartum": {"weeks_since": 4}, "symptoms": ["pelvic_girdle_pain"]},
        {"age": 60, "symptoms": ["sudden_severe_back_pain", "smoker_or_vascular_disease"]},
        {"hip_replacement": {"precautions_lifted": True}, "recent_fall": {"occurred": True}},
        {"symptoms": ["head_strike", "recent_fall_or_minor_trauma"]},
    ],
)
def test_engine_and_oracle_agree_on_chosen_forms(raw: dict[str, Any]) -> None:
    agree("builtin", raw)
    agree("clinic", raw)


def test_the_chosen_forms_make_rules_fire() -> None:
    """The fixed cases above are not vacuous: the oracle finds what they target."""
    oracle = Oracle(screener("builtin").ruleset)
    femoral = {
        "age": 30,
        "symptoms": ["groin_pain", "pain_on_weight_bearing", "recent_training_increase"],
    }
    assert [f.id for f in oracle.assess(femoral)] == ["possible-femoral-stress-injury"]
    tight = oracle.assess({"thomas_test": {"hip_angle": {"left": 12.5, "right": 1}}})
    by_id = {f.id: f for f in tight}
    assert by_id["tight-hip-flexors"].severity == "warning"  # escalated: > 10°
    assert by_id["tight-hip-flexors"].sides == ("left", "right")
    assert by_id["limited-hip-extension"].derived_from == ("tight-hip-flexors",)
    assert by_id["limited-hip-extension"].confidence == "measured"  # through the chain
    assert by_id["range-asymmetry"].sides == ("left",)


def test_the_oracle_refuses_an_atom_type_it_does_not_know() -> None:
    with pytest.raises(OracleError, match="unknown atom type 'pulse'"):
        check_atom(Atom("pulse", (("name", "fast"),)), "here")  # type: ignore[arg-type]
    with pytest.raises(OracleError, match="unknown attribute 'colour'"):
        check_atom(Atom("symptom", (("colour", "red"),)), "here")


def test_the_oracle_refuses_a_condition_node_it_does_not_know() -> None:
    class NoneOf:  # a rule kind another change might add
        items = ()

    with pytest.raises(OracleError, match="unknown condition node NoneOf"):
        list(walk(AllOf((Atom("age", at_least=1), NoneOf()))))  # type: ignore[arg-type]


def test_the_oracle_checks_every_atom_of_a_rule_set_when_built() -> None:
    ruleset = screener("builtin").ruleset
    atoms = [a for rule in ruleset.rules for a in walk(rule.condition)]
    assert {a.fact for a in atoms} >= {
        "grade",
        "rom",
        "test",
        "sign",
        "symptom",
        "activity",
        "context",
        "asym",
        "age",
        "finding",
    }


BUILTIN_IDS = tuple(rule.id for rule in screener("builtin").ruleset.rules)
# Generated escalations chain on findings too (test_an_escalation_may_chain_on_another_finding).
ESCALATIONS_MAY_CHAIN = True
# A narrow vocabulary shared by generated rules and forms, so generated rules fire often.
FEW_SYMPTOMS = ("hip_pain", "lower_back_pain", "fever", "recent_training_increase")
FEW_ACTIVITIES = ("running", "walking")


@pytest.mark.slow
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_generated_rules_compile_to_what_the_oracle_says(data: st.DataObject) -> None:
    """Generated rule files (every atom kind, nested all_of/any_of, escalations, chains onto
    built-in and generated findings) screen generated forms as the oracle evaluates them.

    Conjunctions one fact may satisfy twice are included (see
    test_one_fact_may_satisfy_two_atoms_of_a_rule), and evidence is compared whole: thresholds
    cited for merged alternatives too (test_evidence_cites_the_alternative_the_fact_satisfied).
    """
    rules = data.draw(
        rule_files(BUILTIN_IDS, FEW_SYMPTOMS, FEW_ACTIVITIES, ESCALATIONS_MAY_CHAIN),
        label="rule file",
    )
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "findings").mkdir()
        text = yaml.safe_dump(rules, sort_keys=False, allow_unicode=True)
        (Path(folder) / "findings" / "50-generated.yaml").write_text(text, encoding="utf-8")
        try:
            engine = hipscreen.Screener(extra_rules=[folder], cache_size=0)
        except hipscreen.RuleDataError as error:  # e.g. a load-time limit on rule shapes
            event(f"rule data refused: {error.problems[0].message[:60]}")
            reject()
    if shared_fact_conjunctions(engine.ruleset):
        event("a conjunction one fact could satisfy twice")
    oracle = Oracle(engine.ruleset)
    raws = data.draw(
        st.lists(screening_forms(FEW_SYMPTOMS, FEW_ACTIVITIES), min_size=1, max_size=10),
        label="forms",
    )
    for raw in raws:
        form = IntakeForm.model_validate(raw)
        expected = summary(oracle.assess(form))
        got = summary(engine.assess(form).findings)
        for row in expected:
            if row[0].startswith("generated-"):
                event(f"fired: {row[0]} ({row[1]})")
        assert got == expected, f"{text}\n{form.model_dump_json()}"


OVERLAP_RULE = """\
rules:
  - id: overlapping-tightness
    title: Overlapping tightness tests
    severity: info
    summary: Two one-atom alternatives whose equality tests overlap (group vs one of its muscles).
    source: Test fixture.
    when:
      any_of:
        - grade: {measure: tightness, group: hip_flexors, at_least: 3}
        - grade: {measure: tightness, muscle: iliopsoas, at_least: 1}
"""


def test_evidence_cites_the_alternative_the_fact_satisfied(tmp_path: Path) -> None:
    """A mild iliopsoas satisfies only '≥ 1' (the merged pattern once cited '≥ 3'); a severe one
    satisfies both alternatives and both are cited."""
    (tmp_path / "findings").mkdir()
    (tmp_path / "findings" / "90-overlap.yaml").write_text(OVERLAP_RULE, encoding="utf-8")
    engine = hipscreen.Screener(extra_rules=[tmp_path], cache_size=0)
    form = IntakeForm.model_validate({"tightness": {"iliopsoas": 1}})
    expected = [
        r for r in summary(Oracle(engine.ruleset).assess(form)) if r[0] == "overlapping-tightness"
    ]
    assert expected
    assert expected[0][5] == {("tightness.iliopsoas", 1, "≥ 1", False, None)}
    got = [r for r in summary(engine.assess(form).findings) if r[0] == "overlapping-tightness"]
    assert got == expected
    severe = IntakeForm.model_validate({"tightness": {"iliopsoas": 3}})
    (cited,) = [f.evidence for f in engine.assess(severe).findings if f.id == expected[0][0]]
    assert {e.threshold for e in cited} == {"≥ 1", "≥ 3"}
    assert summary(engine.assess(severe).findings) == summary(Oracle(engine.ruleset).assess(severe))


ESCALATION_ON_A_FINDING = """\
rules:
  - id: runner-escalates-on-tfl
    title: Escalation that chains on another finding
    severity: info
    summary: A runner's finding turns critical once possible TFL tightness is found.
    source: Test fixture.
    when:
      activity: running
    escalate:
      - severity: critical
        when: {finding: possible-tfl-tightness}
"""


def test_an_escalation_may_chain_on_another_finding(tmp_path: Path) -> None:
    """The loader accepts `finding:` in an escalation: it raises the severity, and the finding it
    chains on is in derived_from and lends its measured confidence (the engine path once left
    the severity at info: only findings named in a `when` went back into the engine)."""
    (tmp_path / "findings").mkdir()
    (tmp_path / "findings" / "90-escalation.yaml").write_text(
        ESCALATION_ON_A_FINDING, encoding="utf-8"
    )
    engine = hipscreen.Screener(extra_rules=[tmp_path], cache_size=0)
    form = IntakeForm.model_validate(
        {"activities": ["running"], "thomas_test": {"thigh_abducts": True}}
    )
    expected = summary(Oracle(engine.ruleset).assess(form))
    assert expected[0][:4] == (
        "runner-escalates-on-tfl",
        "critical",
        (),
        ("possible-tfl-tightness",),
    )
    assert summary(engine.assess(form).findings) == expected
    quiet = engine.assess({"activities": ["running"]}).findings
    assert [(f.id, f.severity) for f in quiet] == [("runner-escalates-on-tfl", "info")]


SHARED_FACT_RULE = """\
rules:
  - id: very-weak-glutes
    title: Weak hip extensors with very weak glutes
    severity: warning
    summary: Two atoms of one conjunction that a single grade can satisfy.
    source: Test fixture.
    when:
      all_of:
        - grade: {measure: strength, group: hip_extensors, at_most: 3}
        - grade: {measure: strength, muscle: gluteus_maximus, at_most: 2}
"""


def test_one_fact_may_satisfy_two_atoms_of_a_rule(tmp_path: Path) -> None:
    """Strength 2 for gluteus maximus is a weak hip extensor and a very weak glute: the rule
    holds (the engine binds each pattern to a different fact, so the rule compiles to one engine
    rule per way its atoms can share facts; it once fired only with a second extensor grade)."""
    (tmp_path / "findings").mkdir()
    (tmp_path / "findings" / "90-shared.yaml").write_text(SHARED_FACT_RULE, encoding="utf-8")
    engine = hipscreen.Screener(extra_rules=[tmp_path], cache_size=0)
    assert [rule_id for rule_id, *_ in shared_fact_conjunctions(engine.ruleset)] == [
        "very-weak-glutes"
    ]
    with_hamstrings = {"strength": {"gluteus_maximus": 2, "hamstrings": 3}}
    assert "very-weak-glutes" in engine.assess(with_hamstrings).finding_ids()  # two facts: fires
    form = IntakeForm.model_validate({"strength": {"gluteus_maximus": 2}})
    expected = summary(Oracle(engine.ruleset).assess(form))
    assert "very-weak-glutes" in [row[0] for row in expected]
    assert summary(engine.assess(form).findings) == expected
    for raw in (
        {"strength": {"gluteus_maximus": 3}},  # weak extensor, not a very weak glute: quiet
        {"strength": {"gluteus_maximus": {"left": 2, "right": 5}}},
        {"strength": {"gluteus_maximus": 1, "hip_extensors": 3, "hamstrings": 4}},
    ):
        form = IntakeForm.model_validate(raw)
        assert summary(engine.assess(form).findings) == summary(
            Oracle(engine.ruleset).assess(form)
        ), raw
    assert "very-weak-glutes" not in engine.assess({"strength": {"gluteus_maximus": 3}})


THREE_WAY_RULE = """\
rules:
  - id: three-ways
    title: Three atoms one grade may meet
    severity: info
    summary: Every grouping of three shareable atoms.
    source: Test fixture.
    when:
      all_of:
        - grade: {measure: tightness, at_least: 1}
        - grade: {measure: tightness, group: hip_flexors, at_least: 2}
        - any_of:
            - grade: {measure: tightness, side: left, at_least: 3}
            - grade: {measure: tightness, length_tested: false, at_least: 3}
"""


@pytest.mark.parametrize(
    "raw",
    [
        {"tightness": {"iliopsoas": 3}},
        {"tightness": {"iliopsoas": 2}},
        {"tightness": {"iliopsoas": {"left": 3}}},
        {"tightness": {"iliopsoas": 3}, "thomas_test": {"hip_angle": 20}},
        {"tightness": {"iliopsoas": 2, "hamstrings": 3}, "thomas_test": {"hip_angle": 20}},
        {"tightness": {"iliopsoas": 2, "hamstrings": {"left": 3}}},
        {"tightness": {"hamstrings": 3}},
    ],
)
def test_conjunctions_of_shareable_atoms_agree(tmp_path: Path, raw: dict[str, Any]) -> None:
    (tmp_path / "findings").mkdir()
    (tmp_path / "findings" / "90-three.yaml").write_text(THREE_WAY_RULE, encoding="utf-8")
    engine = hipscreen.Screener(extra_rules=[tmp_path], cache_size=0)
    form = IntakeForm.model_validate(raw)
    assert summary(engine.assess(form).findings) == summary(Oracle(engine.ruleset).assess(form))


def test_built_in_rules_have_no_conjunction_one_fact_could_satisfy_twice() -> None:
    """So the groupings of shared facts add no engine rule to the built-in rule set."""
    assert shared_fact_conjunctions(screener("builtin").ruleset) == []
    assert shared_fact_conjunctions(screener("clinic").ruleset) == []


@DIFFERENTIAL
@given(raw=screening_forms(), block=instrument_blocks())
def test_engine_and_oracle_agree_with_instruments(
    raw: dict[str, Any], block: dict[str, Any]
) -> None:
    agree("builtin", {**raw, "instruments": block}, label=True)
