"""The Assessment output: ordering, explanation, traceability and the plain-text report."""

from __future__ import annotations

import re

import hipscreen

IMBALANCE = {
    "client_id": "c-42",
    "age": 70,
    "tightness": {"iliopsoas": "severe", "rectus_femoris": {"left": 2, "right": 0}},
    "strength": {"gluteus_maximus": {"left": 3, "right": 4}},
    "symptoms": ["lower_back_pain"],
    "activities": ["running"],
}


def test_not_assessed_lists_inputs_that_were_not_given() -> None:
    """A missing input is reported as not assessed, never read as normal."""
    empty = hipscreen.assess({})
    assert "tightness of hip_flexors" in empty.not_assessed
    assert "strength of hip_extensors" in empty.not_assessed
    assert "measured hip_extension" in empty.not_assessed
    assert "modified Thomas test" in empty.not_assessed
    assert "recent fall (asked yes or no)" in empty.not_assessed
    assert "anticoagulant use (asked yes or no)" in empty.not_assessed
    given = hipscreen.assess(
        {
            "tightness": {"hip_flexors": 0},
            "rom": {"hip_extension": 20},
            "thomas_test": {"hip_angle": -12},
        }
    )
    assert "tightness of hip_flexors" not in given.not_assessed
    assert "measured hip_extension" not in given.not_assessed
    assert "modified Thomas test" not in given.not_assessed
    assert "strength of hip_extensors" in given.not_assessed
    answered = hipscreen.assess(
        {
            "recent_fall": {"occurred": False},
            "anticoagulant": False,
            "recent_joint_procedure": False,
            "osteoporosis": False,
            "vertebral_fracture": False,
            "pregnancy": False,
        }
    )
    assert not [item for item in answered.not_assessed if "asked yes or no" in item]
    empty_records = hipscreen.assess({"thomas_test": {}, "straight_leg_raise": {}})
    assert "modified Thomas test" in empty_records.not_assessed
    assert any("hamstring length" in item for item in empty_records.not_assessed)


def test_plan_runs_warm_up_then_stretches_then_strength_without_duplicates() -> None:
    result = hipscreen.assess(IMBALANCE)
    kinds = [rec.exercise.kind.value for rec in result.recommendations]
    order = ["warm_up", "mobility", "stretch", "strength"]
    assert kinds == sorted(kinds, key=order.index)
    assert kinds[0] == "warm_up"
    ids = [rec.exercise.id for rec in result.recommendations]
    assert len(ids) == len(set(ids))


def test_one_exercise_answers_every_finding_that_asked_for_it() -> None:
    result = hipscreen.assess(IMBALANCE)
    stretch = next(
        r for r in result.recommendations if r.exercise.id == "half_kneeling_hip_flexor_stretch"
    )
    assert {"tight-hip-flexors", "flexor-extensor-imbalance"} <= set(stretch.because)


def test_older_adults_hold_stretches_longer() -> None:
    """ACSM: 30–60 s holds from 65 (a dose adjustment in the plan policy)."""
    old = hipscreen.assess({"age": 70, "tightness": {"iliopsoas": 3}})
    young = hipscreen.assess({"age": 30, "tightness": {"iliopsoas": 3}})

    def hold(result: hipscreen.Assessment) -> int | None:
        rec = next(r for r in result.recommendations if r.exercise.kind.value == "stretch")
        return rec.dose.hold_seconds

    assert hold(old) == 45
    assert hold(young) == 30


def test_weaker_side_is_emphasised_in_unilateral_work() -> None:
    result = hipscreen.assess({"strength": {"gluteus_maximus": {"left": 4, "right": 5}}})
    single = next(r for r in result.recommendations if r.exercise.id == "single_leg_bridge")
    assert single.emphasis == "left"
    assert "extensor-strength-asymmetry" in single.because


def test_withheld_exercises_are_reported_with_the_reason() -> None:
    result = hipscreen.assess({"pregnancy": {"weeks": 20}, "strength": {"gluteus_maximus": 4}})
    excluded = {x.exercise_id: x for x in result.excluded}
    assert "glute_bridge" in excluded
    assert "pregnancy-supine-caution" in excluded["glute_bridge"].because
    assert "flat on the back" in excluded["glute_bridge"].reason.lower()
    plan = [r.exercise.id for r in result.recommendations]
    assert "glute_bridge" not in plan
    assert "standing_hip_extension" in plan


def test_measured_evidence_gives_measured_confidence() -> None:
    measured = hipscreen.assess({"thomas_test": {"hip_angle": 5}})
    reported = hipscreen.assess({"tightness": {"iliopsoas": 3}})
    assert measured.findings[0].confidence == "measured"
    assert reported.findings[0].confidence == "reported"
    derived = {f.id: f for f in measured.findings}["limited-hip-extension"]
    assert derived.confidence == "measured", "derived findings inherit measured confidence"


def test_ruleset_version_carries_the_rules_digest() -> None:
    result = hipscreen.assess({})
    assert re.fullmatch(r"\d+\.\d+\.\d+\+[0-9a-f]{12}", result.ruleset_version)
    clinic = hipscreen.Screener(thresholds={"weak_grade": 4})
    assert clinic.assess({}).ruleset_version != result.ruleset_version


def test_explain_shows_findings_evidence_sources_plan_and_disclaimer() -> None:
    result = hipscreen.assess(IMBALANCE)
    text = result.explain()
    assert "hipscreen report for c-42" in text
    assert "tightness.iliopsoas = 3" in text
    assert "derived from: tight-hip-flexors, weak-hip-extensors" in text
    assert "source: " in text
    assert "Plan:" in text
    assert result.disclaimer in text
    assert "not a diagnosis" in result.disclaimer


def test_explain_leads_with_the_referral() -> None:
    text = hipscreen.assess({"symptoms": ["saddle_numbness"]}).explain()
    assert text.index("REFERRAL (emergency)") < text.index("Findings:")
    assert "Plan: no exercise recommended." in text


def test_cached_results_equal_uncached_ones_and_echo_each_client_id() -> None:
    cached = hipscreen.Screener()
    uncached = hipscreen.Screener(cache_size=0)
    for client in ("a", "b", None):
        form = {**IMBALANCE, "client_id": client}
        assert cached.assess(form) == uncached.assess(form)
        assert cached.assess(form).client_id == client
