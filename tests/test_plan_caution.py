"""The plan follows the article's caution (issue 20): flexor strengthening, dosing, balance."""

from __future__ import annotations

import hipscreen
from hipscreen._rules.loader import load_ruleset
from hipscreen._vocabulary import ExerciseKind, Movement

RULESET = load_ruleset()


def test_tight_flexors_with_weak_extensors_get_no_flexor_strengthening() -> None:
    result = hipscreen.assess(
        {
            "age": 40,
            "tightness": {"iliopsoas": 3},
            "strength": {"gluteus_maximus": 3, "iliopsoas": 5},
        }
    )
    flexion_strength = [
        r.exercise.id
        for r in result.recommendations
        if r.exercise.kind == ExerciseKind.STRENGTH and r.exercise.movement == Movement.FLEXION
    ]
    assert flexion_strength == []
    reasons = {x.exercise_id: x.because for x in result.excluded}
    assert reasons["standing_knee_raise"] == ("flexor-extensor-imbalance",)


def test_stay_active_is_dosed_in_minutes_and_days_not_reps() -> None:
    result = hipscreen.assess({"age": 50, "symptoms": ["history_of_cancer", "hip_pain"]})
    (stay,) = [r for r in result.recommendations if r.exercise.id == "stay_active_as_comfortable"]
    assert stay.dose.minutes
    assert stay.dose.days_per_week
    assert (stay.dose.sets, stay.dose.reps, stay.dose.hold_seconds) == (None, None, None)
    assert "reps" not in str(stay.dose)


def test_the_catalog_has_balance_exercises_with_a_progression() -> None:
    balance = {ex_id: ex for ex_id, ex in RULESET.exercises.items() if ex.kind == "balance"}
    assert len(balance) >= 3
    chained = [ex for ex in balance.values() if ex.regression is not None]
    assert chained
    for ex in chained:
        assert ex.regression is not None
        assert RULESET.exercises[ex.regression].kind == ExerciseKind.BALANCE
        assert RULESET.exercises[ex.regression].level < ex.level


def test_falls_risk_brings_strength_and_balance_work() -> None:
    result = hipscreen.assess(
        {"age": 78, "recent_fall": {"occurred": True, "new_pain": False, "can_bear_weight": True}}
    )
    kinds = {r.exercise.kind for r in result.recommendations if "falls-risk" in r.because}
    assert {ExerciseKind.STRENGTH, ExerciseKind.BALANCE} <= kinds


def test_a_red_flag_withholds_balance_work_too() -> None:
    result = hipscreen.assess(
        {
            "age": 78,
            "recent_fall": {"occurred": True, "new_pain": False, "can_bear_weight": True},
            "symptoms": ["saddle_numbness"],
        }
    )
    assert [r for r in result.recommendations if r.exercise.kind == ExerciseKind.BALANCE] == []
