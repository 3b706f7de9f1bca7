"""The batch rows' exercise ids (`Planner.exercise_ids`) are exactly the full plan's, in order.

`Planner.exercise_ids` builds only the ids from less than the plan depends on (findings and
whether each is critical, the level each muscle set's lowest grade allows, whether pain is
reported). It must agree with `Planner.plan` on generated forms screened for real, and on
arbitrary sets of findings (any severity, any side) with arbitrary strength grades, which reach
withholds, swaps and easier variants that real forms rarely combine.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import SYMPTOMS, forms, with_symptom
from test_plan_speed_equivalence import CLINIC, CONTEXT

import hipscreen
from hipscreen._facts import FormFacts
from hipscreen._intake.form import IntakeForm, coerce_form
from hipscreen._plan import Planner
from hipscreen._screen import _grades
from hipscreen._vocabulary import Muscle, Severity, Side

BUILT_IN = hipscreen.Screener(cache_size=0)
WITH_CLINIC = hipscreen.Screener(cache_size=0, extra_rules=[CLINIC])


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    sides: tuple[Side, ...]


def full_ids(planner: Planner, form: IntakeForm, findings: list[Finding], strength: list) -> tuple:
    recommendations, _ = planner.plan(form, findings, strength)
    return tuple(r.exercise.id for r in recommendations)


def agree(planner: Planner, form: IntakeForm, findings: list[Finding], strength: list) -> None:
    expected = full_ids(planner, form, findings, strength)
    assert planner.exercise_ids(form, findings, strength) == expected
    # A fresh planner (nothing remembered) and a second call (remembered) agree as well.
    fresh = Planner(planner.ruleset)
    assert fresh.exercise_ids(form, findings, strength) == expected
    assert fresh.exercise_ids(form, findings, strength) == expected


@settings(deadline=None)
@given(
    form=forms(),
    context=CONTEXT,
    symptoms=st.lists(st.sampled_from(SYMPTOMS), max_size=2),
    clinic=st.booleans(),
)
def test_generated_forms_get_the_full_plans_exercise_ids(
    form: dict, context: dict, symptoms: list[str], clinic: bool
) -> None:
    form = {**form, **context}
    for symptom in symptoms:
        form = with_symptom(form, symptom)
    screener = WITH_CLINIC if clinic else BUILT_IN
    intake = coerce_form(form)
    form_facts = FormFacts(intake, _grades(intake))
    found = screener._output.assemble(screener._findings(form_facts, False), form_facts)
    planner = screener._planner
    assert planner.exercise_ids(intake, found, form_facts.strength) == full_ids(
        planner, intake, found, form_facts.strength
    )
    brief = screener.brief(intake)
    assert brief.exercise_ids == tuple(r.exercise.id for r in screener.assess(form).recommendations)


GRADE_PATHS = st.sampled_from(["strength.a", "strength.b", "strength.c"])


@st.composite
def arbitrary_inputs(draw: st.DrawFn, screener: hipscreen.Screener) -> tuple:
    rule_ids = [rule.id for rule in screener.ruleset.rules]
    chosen = draw(st.lists(st.sampled_from(rule_ids), unique=True, max_size=8))
    findings = [
        Finding(
            i,
            draw(st.sampled_from(list(Severity))),
            tuple(draw(st.lists(st.sampled_from(list(Side)), min_size=1, max_size=2))),
        )
        for i in chosen
    ]
    strength = draw(
        st.lists(
            st.tuples(
                st.sampled_from(list(Muscle)),
                st.sampled_from(list(Side)),
                st.integers(0, 5),
                GRADE_PATHS,
            ),
            max_size=6,
        )
    )
    form: dict = {}
    if draw(st.booleans()):
        form["age"] = draw(st.integers(18, 100))
    for symptom in draw(st.lists(st.sampled_from(SYMPTOMS), max_size=2)):
        form = with_symptom(form, symptom)
    return coerce_form(form), findings, strength


@pytest.mark.parametrize("screener", [BUILT_IN, WITH_CLINIC], ids=["built-in", "clinic"])
@settings(deadline=None)
@given(data=st.data())
def test_arbitrary_findings_get_the_full_plans_exercise_ids(
    screener: hipscreen.Screener, data: st.DataObject
) -> None:
    form, findings, strength = data.draw(arbitrary_inputs(screener))
    agree(screener._planner, form, findings, strength)


def test_the_comparison_reaches_swaps_variants_and_withheld_exercises() -> None:
    """A form whose plan swaps an exercise and leaves some out gets the same ids."""
    form = coerce_form({"tightness": {"hamstrings": 3}, "pregnancy": {"weeks": 20}})
    result = BUILT_IN.assess(form)
    assert result.excluded
    assert any(r.note and "in place of" in r.note for r in result.recommendations)
    assert BUILT_IN.brief(form).exercise_ids == tuple(r.exercise.id for r in result.recommendations)
