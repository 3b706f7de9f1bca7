"""Properties every screening result has, for any valid intake form (hypothesis)."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from strategies import (
    EXTENSOR_MUSCLES,
    FLEXOR_MUSCLES,
    FORM_FIELDS,
    MUSCLES,
    ROM_FIELDS,
    SIDES,
    TOP_GRADE,
    forms,
    shuffled,
    with_grade,
)

import hipscreen
from hipscreen._intake.form import RangeOfMotion
from hipscreen._rules.loader import load_ruleset
from hipscreen._vocabulary import ExerciseKind, Movement, Severity, normalise_name

#: Hip-flexor strengthening: a finding may withhold it (tight flexors with weak extensors).
FLEXOR_STRENGTHENING = {
    ex_id
    for ex_id, ex in load_ruleset().exercises.items()
    if "hip_flexor_strengthening" in ex.properties
}

PROPERTY = settings(deadline=None)
"""Enough examples to find shape bugs while the suite stays fast; no per-example deadline."""

WARM_UP = "dynamic_hip_warm_up"
GENTLE_WARM_UP = "gentle_dynamic_hip_warm_up"  # when a precaution withholds the full one
TIGHTNESS_FINDINGS = {"tight-hip-flexors", "tight-hip-extensors"}
WEAKNESS_FINDINGS = {"weak-hip-extensors", "weak-hip-flexors"}

sides = st.sampled_from([None, *SIDES])


def test_strategies_cover_every_intake_field() -> None:
    """The shared strategy generates every input field, so a new field cannot go untested."""
    assert set(FORM_FIELDS) == set(hipscreen.IntakeForm.model_fields)
    assert set(ROM_FIELDS) == set(RangeOfMotion.model_fields)


@PROPERTY
@given(form=forms())
def test_any_valid_form_is_assessed(form: dict[str, Any]) -> None:
    result = hipscreen.assess(form)
    assert isinstance(result, hipscreen.Assessment)
    assert result.client_id == form.get("client_id")


@PROPERTY
@given(form=forms(), rng=st.randoms(use_true_random=False))
def test_same_form_in_any_key_or_list_order_gives_the_same_assessment(
    form: dict[str, Any], rng: random.Random
) -> None:
    first = hipscreen.assess(form)
    assert hipscreen.assess(form) == first
    assert hipscreen.assess(shuffled(form, rng)) == first


@PROPERTY
@given(form=forms())
def test_assessment_round_trips_through_json(form: dict[str, Any]) -> None:
    result = hipscreen.assess(form)
    assert hipscreen.Assessment.model_validate_json(result.model_dump_json()) == result


@PROPERTY
@given(form=forms())
def test_intake_form_round_trips_through_json(form: dict[str, Any]) -> None:
    intake = hipscreen.IntakeForm.model_validate(form)
    assert hipscreen.IntakeForm.model_validate_json(intake.model_dump_json()) == intake
    assert hipscreen.assess(intake.model_dump_json()) == hipscreen.assess(form)


@PROPERTY
@given(
    form=forms(),
    muscle=st.sampled_from(MUSCLES),
    side=sides,
    pair=st.lists(st.integers(0, TOP_GRADE["tightness"]), min_size=2, max_size=2).map(sorted),
)
def test_a_tighter_grade_never_removes_a_tightness_finding(
    form: dict[str, Any], muscle: str, side: str | None, pair: list[int]
) -> None:
    looser, tighter = pair
    before = hipscreen.assess(with_grade(form, "tightness", muscle, side, looser))
    after = hipscreen.assess(with_grade(form, "tightness", muscle, side, tighter))
    triggered = TIGHTNESS_FINDINGS & set(before.finding_ids())
    assert triggered <= set(after.finding_ids())


@PROPERTY
@given(
    form=forms(),
    muscle=st.sampled_from(MUSCLES),
    side=sides,
    pair=st.lists(st.integers(0, TOP_GRADE["strength"]), min_size=2, max_size=2).map(sorted),
)
def test_a_weaker_grade_never_removes_a_weakness_finding(
    form: dict[str, Any], muscle: str, side: str | None, pair: list[int]
) -> None:
    weaker, stronger = pair
    before = hipscreen.assess(with_grade(form, "strength", muscle, side, stronger))
    after = hipscreen.assess(with_grade(form, "strength", muscle, side, weaker))
    triggered = WEAKNESS_FINDINGS & set(before.finding_ids())
    assert triggered <= set(after.finding_ids())


@pytest.mark.parametrize(
    ("measure", "muscles", "grade", "finding"),
    [
        ("tightness", FLEXOR_MUSCLES, 2, "tight-hip-flexors"),
        ("tightness", EXTENSOR_MUSCLES, 2, "tight-hip-extensors"),
        ("strength", FLEXOR_MUSCLES, 3, "weak-hip-flexors"),
        ("strength", EXTENSOR_MUSCLES, 3, "weak-hip-extensors"),
    ],
)
def test_monotonicity_properties_start_from_a_finding_that_fires(
    measure: str, muscles: tuple[str, ...], grade: int, finding: str
) -> None:
    """The contract's default thresholds fire the findings the monotonicity properties watch."""
    for muscle in muscles:
        for side in (None, *SIDES):
            form = with_grade({}, measure, muscle, side, grade)
            assert finding in hipscreen.assess(form).finding_ids(), form


@PROPERTY
@given(form=forms())
def test_every_reason_names_a_finding_of_the_same_assessment(form: dict[str, Any]) -> None:
    result = hipscreen.assess(form)
    present = set(result.finding_ids())
    for recommendation in result.recommendations:
        assert set(recommendation.because) <= present, recommendation
    for excluded in result.excluded:
        assert set(excluded.because) <= present, excluded
    if result.referral is not None:
        assert set(result.referral.because) <= present, result.referral
    for finding in result.findings:
        assert set(finding.derived_from) <= present, finding


@PROPERTY
@given(form=forms())
def test_without_a_referral_the_plan_warms_up_and_trains_flexion_and_extension(
    form: dict[str, Any],
) -> None:
    result = hipscreen.assess(form)
    if result.referral is not None:
        return
    exercises = [r.exercise for r in result.recommendations]
    ids = [e.id for e in exercises]
    if WARM_UP in [x.exercise_id for x in result.excluded]:
        assert GENTLE_WARM_UP in ids
    else:
        assert WARM_UP in ids
    strength = {e.movement for e in exercises if e.kind == ExerciseKind.STRENGTH}
    withheld = {x.exercise_id for x in result.excluded}
    if not withheld & FLEXOR_STRENGTHENING:  # a finding may withhold it (tight flexors)
        assert strength & {Movement.FLEXION, Movement.BOTH}, exercises
    assert strength & {Movement.EXTENSION, Movement.BOTH}, exercises


@PROPERTY
@given(form=forms())
def test_findings_come_most_severe_first(form: dict[str, Any]) -> None:
    ranks = [finding.severity.rank for finding in hipscreen.assess(form).findings]
    assert ranks == sorted(ranks, reverse=True)


@PROPERTY
@given(form=forms())
def test_every_finding_summary_is_one_short_sentence(form: dict[str, Any]) -> None:
    for finding in hipscreen.assess(form).findings:
        assert len(finding.summary) < 140, finding.id


@PROPERTY
@given(form=forms())
def test_findings_read_off_the_inputs_cite_input_values(form: dict[str, Any]) -> None:
    """A finding not derived from others has evidence; each cited path and value is in the form."""
    validated = hipscreen.IntakeForm.model_validate(form).model_dump(mode="json")
    for finding in hipscreen.assess(form).findings:
        if not finding.derived_from:
            assert finding.evidence, finding.id
        for evidence in finding.evidence:
            top = evidence.field.split(".")[0]
            assert form.get(top) is not None, f"{finding.id} cites {top!r}, which was not given"
            given_value = _value_at(validated, evidence.field)
            assert _same_value(given_value, evidence.value), (finding.id, evidence, given_value)


@PROPERTY
@given(form=forms())
def test_a_critical_finding_always_means_a_referral_and_no_strength_work(
    form: dict[str, Any],
) -> None:
    """Safety: a red flag sends the person to a clinician instead of loading the hip."""
    result = hipscreen.assess(form)
    critical = any(f.severity == Severity.CRITICAL for f in result.findings)
    event("critical finding" if critical else "no critical finding")
    if not critical:
        return
    assert result.referral is not None
    strength = [r.exercise.id for r in result.recommendations if r.exercise.kind == "strength"]
    assert strength == []


def _value_at(form: dict[str, Any], path: str) -> Any:
    """The value at a dotted field path of a validated form (defaults filled in)."""
    node: Any = form
    for part in path.split("."):
        assert isinstance(node, dict), f"evidence field {path!r} does not name an input field"
        assert part in node, f"evidence field {path!r} is not an input field"
        node = node[part]
    return node


def _same_value(given_value: Any, cited: Any) -> bool:
    """Whether evidence cites the value given (grades as numbers, flags as yes/no).

    A whole block or a per-side pair may be described in words ("left 0, right 1"); only the
    path is checked for those.
    """
    if isinstance(given_value, dict):
        return True
    if isinstance(given_value, list):  # symptoms, activities: the evidence is one of them
        return normalise_name(str(cited)) in given_value
    if isinstance(given_value, bool):
        return cited in (given_value, "yes" if given_value else "no")
    if given_value is None:
        return cited in (None, "not given")
    if isinstance(given_value, int | float) and isinstance(cited, str):
        try:  # written for people, e.g. with 6 significant digits
            return math.isclose(float(cited), given_value, rel_tol=1e-5, abs_tol=1e-9)
        except ValueError:
            return False
    return bool(given_value == cited)


@pytest.mark.process
@pytest.mark.parametrize(
    ("motion", "degrees"),
    [("hip_extension", 1e-05), ("hip_extension", -1e-05), ("hip_flexion", 5e-324)],
)
def test_an_angle_that_json_writes_in_exponent_notation_is_screened(
    motion: str, degrees: float
) -> None:
    """Tiny angles (json writes ``1e-05``) are screened; in a child process in case of a crash."""
    script = (
        "import sys, hipscreen\n"
        f"result = hipscreen.assess({{'rom': {{{motion!r}: {degrees!r}}}}})\n"
        "print(result.finding_ids())\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert child.returncode == 0, f"exit {child.returncode}\n{child.stderr[-2000:]}"
