"""Precautions hold for every plan: nothing recommended breaks an active precaution, and a
withheld exercise is swapped for a safe one that trains the same thing when the catalog has one."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import forms

import hipscreen
from hipscreen._rules.files import ExerciseSpec, WithholdSpec
from hipscreen._rules.loader import load_ruleset
from hipscreen._vocabulary import Movement, Severity

RULESET = load_ruleset()
RULES = {rule.id: rule.spec for rule in RULESET.rules}
CRITICAL = WithholdSpec(kinds=RULESET.plan.critical.withhold_kinds)
HIP_REPLACEMENT = st.fixed_dictionaries(
    {"approach": st.sampled_from(["posterior", "anterior", "lateral", "unknown"])}
)
CONTEXT = st.fixed_dictionaries(
    {},
    optional={
        "hip_replacement": HIP_REPLACEMENT,
        "pregnancy": st.fixed_dictionaries({}, optional={"weeks": st.integers(0, 42)}),
        "osteoporosis": st.booleans(),
        "vertebral_fracture": st.booleans(),
        "back_pain": st.fixed_dictionaries(
            {}, optional={"weeks": st.integers(0, 20), "intensity": st.integers(0, 10)}
        ),
    },
)


def _blocks(withhold: WithholdSpec, exercise: hipscreen.Exercise) -> bool:
    return (
        exercise.kind in withhold.kinds
        or exercise.id in withhold.exercises
        or any(prop in withhold.properties for prop in exercise.properties)
    )


def _active_precautions(result: hipscreen.Assessment) -> list[tuple[str, WithholdSpec, set[str]]]:
    active = []
    for finding in result.findings:
        spec = RULES[finding.id]
        exempt = set(spec.recommends)
        if spec.withhold is not None:
            active.append((finding.id, spec.withhold, exempt))
        if finding.severity == Severity.CRITICAL:
            active.append((finding.id, CRITICAL, exempt))
    return active


@settings(deadline=None)
@given(form=forms(), context=CONTEXT)
def test_no_recommended_exercise_breaks_an_active_precaution(
    form: dict[str, Any], context: dict[str, Any]
) -> None:
    result = hipscreen.assess({**form, **context})
    for finding_id, withhold, exempt in _active_precautions(result):
        for rec in result.recommendations:
            if rec.exercise.id in exempt:
                continue
            assert not _blocks(withhold, rec.exercise), (finding_id, rec.exercise.id)


@settings(deadline=None)
@given(form=forms(), context=CONTEXT)
def test_every_withheld_exercise_is_reported(form: dict[str, Any], context: dict[str, Any]) -> None:
    """Withholding never hides: each withheld exercise is in ``excluded`` with the finding."""
    result = hipscreen.assess({**form, **context})
    present = {f.id for f in result.findings}
    recommended = {r.exercise.id for r in result.recommendations}
    for item in result.excluded:
        assert item.exercise_id not in recommended
        assert set(item.because) <= present


def _plan(form: dict[str, Any]) -> tuple[list[str], list[str]]:
    result = hipscreen.assess(form)
    return [r.exercise.id for r in result.recommendations], [x.exercise_id for x in result.excluded]


@pytest.mark.parametrize(
    ("form", "swapped_out", "swapped_in"),
    [
        pytest.param(
            {"tightness": {"hamstrings": 3}, "pregnancy": {"weeks": 20}},
            "supine_hamstring_stretch",
            "standing_hamstring_stretch",
            id="pregnancy: hamstring stretch standing, not lying",
        ),
        pytest.param(
            {"tightness": {"hamstrings": 3}, "hip_replacement": {"approach": "posterior"}},
            "supine_hamstring_stretch",
            "standing_hamstring_stretch",
            id="posterior hip replacement: hamstring stretch without deep hip flexion",
        ),
        pytest.param(
            {"tightness": {"iliopsoas": 3}, "back_pain": {"weeks": 2, "intensity": 8}},
            None,
            "half_kneeling_hip_flexor_stretch",
            id="acute back pain keeps the hip-flexor stretch",
        ),
        pytest.param(
            {"strength": {"gluteus_maximus": 2}, "pregnancy": {}},
            "glute_bridge",
            "standing_hip_extension",
            id="pregnancy weeks unknown: bridge swapped for a standing hip extension",
        ),
        pytest.param(
            {"hip_replacement": {"approach": "lateral"}},
            "dynamic_hip_warm_up",
            "gentle_dynamic_hip_warm_up",
            id="hip replacement: a gentle warm-up within precautions",
        ),
        pytest.param(
            {
                "strength": {"hamstrings": 5, "gluteus_maximus": 5, "hip_flexors": 2},
                "hip_replacement": {"approach": "posterior"},
            },
            "seated_march",
            "standing_knee_raise",
            id="posterior hip replacement: standing knee raise instead of a seated march",
        ),
    ],
)
def test_a_withheld_exercise_is_swapped_for_a_safe_one(
    form: dict[str, Any], swapped_out: str | None, swapped_in: str
) -> None:
    recommended, excluded = _plan(form)
    assert swapped_in in recommended
    if swapped_out is not None:
        assert swapped_out in excluded
        assert swapped_out not in recommended


def test_posterior_precautions_withhold_every_deep_hip_flexion_exercise() -> None:
    """A deep loaded hinge, a hip thrust and a back lunge all take the hip past 90°."""
    strong = {"strength": {"hip_extensors": 5, "hip_flexors": 5}, "age": 40}
    form = {
        **strong,
        "tightness": {"hip_flexors": 3},
        "activities": ["weightlifting", "running"],
        "hip_replacement": {"approach": "posterior"},
    }
    recommended, _ = _plan(form)
    for exercise_id in ("romanian_deadlift", "hip_thrust", "back_lunge", "seated_march"):
        assert exercise_id not in recommended
    assert "hip_flexion_past_90" in RULESET.exercises["romanian_deadlift"].properties


def _trains_same(a: ExerciseSpec, b: ExerciseSpec) -> bool:
    return a.kind == b.kind and (
        Movement.BOTH in (a.movement, b.movement) or a.movement == b.movement
    )


@pytest.mark.parametrize("exercise", RULESET.exercises.values(), ids=lambda ex: ex.id)
def test_catalog_alternatives_train_the_same_thing(exercise: ExerciseSpec) -> None:
    for alt_id in exercise.alternatives:
        assert _trains_same(exercise, RULESET.exercises[alt_id]), alt_id


def test_supine_and_deep_flexion_exercises_have_a_catalog_replacement() -> None:
    """The exercises pregnancy or a posterior hip replacement most often withhold have a safe
    replacement in the catalog (directly, through an easier variant, or a rule's swap)."""
    for exercise_id in ("supine_hamstring_stretch", "glute_bridge", "dynamic_hip_warm_up"):
        assert RULESET.exercises[exercise_id].alternatives, exercise_id
