"""`compare(before, after)`: what changed between two screenings of one client."""

from __future__ import annotations

import itertools

import pytest
from strategies import random_forms

import hipscreen
from hipscreen._compare import Comparison, FindingChange, compare

FIRST = {
    "client_id": "c-1",
    "tightness": {"iliopsoas": 3},
    "strength": {"gluteus_maximus": 3},
    "symptoms": ["lower_back_pain"],
}
LATER = {
    "client_id": "c-1",
    "tightness": {"iliopsoas": 1},
    "strength": {"gluteus_maximus": 3, "hip_flexors": 3},
}

RECOVERED = {"client_id": "c-1", "tightness": {"iliopsoas": 0}, "strength": {"gluteus_maximus": 5}}


def _ids(changes: tuple[FindingChange, ...]) -> list[str]:
    return [c.id for c in changes]


def test_tightness_gone_resolves_its_findings_and_the_imbalance() -> None:
    comparison = compare(hipscreen.assess(FIRST), hipscreen.assess(LATER))
    resolved = _ids(comparison.resolved)
    assert "tight-hip-flexors" in resolved
    assert "flexor-extensor-imbalance" in resolved
    assert "imbalance-with-pain" in resolved
    assert all(c.after is None and c.before is not None for c in comparison.resolved)
    assert all(c.improved and not c.worsened for c in comparison.resolved)


def test_new_findings_are_listed_with_their_severity() -> None:
    comparison = compare(hipscreen.assess(FIRST), hipscreen.assess(LATER))
    new = {c.id: c for c in comparison.new}
    assert "weak-hip-flexors" in new
    assert new["weak-hip-flexors"].before is None
    assert new["weak-hip-flexors"].after == "info"
    assert new["weak-hip-flexors"].worsened


def test_a_severity_change_is_reported_as_changed_with_its_direction() -> None:
    """Weak extensors escalate to warning with back pain; without the pain they are info."""
    comparison = compare(hipscreen.assess(FIRST), hipscreen.assess(LATER))
    changed = {c.id: c for c in comparison.changed}
    change = changed["weak-hip-extensors"]
    assert (change.before, change.after) == ("warning", "info")
    assert change.improved
    worse = compare(hipscreen.assess(LATER), hipscreen.assess(FIRST))
    back = {c.id: c for c in worse.changed}["weak-hip-extensors"]
    assert back.worsened


def test_every_finding_lands_in_exactly_one_list() -> None:
    forms = [{**form, "client_id": "c-9"} for form in random_forms(40, seed=11)]
    for before_form, after_form in itertools.pairwise(forms):
        before, after = hipscreen.assess(before_form), hipscreen.assess(after_form)
        c = compare(before, after)
        in_after = _ids(c.new) + _ids(c.changed) + _ids(c.unchanged)
        assert sorted(in_after) == sorted(after.finding_ids())
        in_before = _ids(c.resolved) + _ids(c.changed) + _ids(c.unchanged)
        assert sorted(in_before) == sorted(before.finding_ids())


def test_the_same_assessment_twice_changes_nothing() -> None:
    result = hipscreen.assess(FIRST)
    comparison = compare(result, result)
    assert not comparison.has_changes
    assert comparison.resolved == comparison.new == comparison.changed == ()
    assert _ids(comparison.unchanged) == result.finding_ids()
    assert "No change in findings." in comparison.explain()


def test_a_referral_that_appears_is_a_change() -> None:
    before = hipscreen.assess(FIRST)
    after = hipscreen.assess({**FIRST, "symptoms": ["saddle_numbness"]})
    comparison = compare(before, after)
    assert comparison.has_changes
    assert comparison.referral_before is None
    assert comparison.referral_after == after.referral
    assert "Referral: NEW (emergency)" in comparison.explain()
    assert "Referral: none now" in compare(after, before).explain()


def test_plan_changes_list_exercises_added_and_dropped() -> None:
    before, after = hipscreen.assess(FIRST), hipscreen.assess(RECOVERED)
    comparison = compare(before, after)
    old = {r.exercise.id for r in before.recommendations}
    new = {r.exercise.id for r in after.recommendations}
    assert set(comparison.exercises_added) == new - old
    assert set(comparison.exercises_dropped) == old - new
    assert "half_kneeling_hip_flexor_stretch" in comparison.exercises_dropped


def test_stored_json_and_dicts_are_accepted() -> None:
    before, after = hipscreen.assess(FIRST), hipscreen.assess(LATER)
    expected = compare(before, after)
    assert compare(before.model_dump_json(), after.model_dump_json().encode()) == expected
    assert compare(before.model_dump(mode="json"), after) == expected


def test_different_clients_are_refused() -> None:
    with pytest.raises(ValueError, match=r"same client.*'c-1'.*'c-2'"):
        compare(hipscreen.assess(FIRST), hipscreen.assess({**LATER, "client_id": "c-2"}))


def test_a_missing_client_id_on_one_side_is_accepted() -> None:
    comparison = compare(hipscreen.assess({**FIRST, "client_id": None}), hipscreen.assess(LATER))
    assert comparison.client_id == "c-1"


def test_not_an_assessment_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="before is not a valid hipscreen assessment"):
        compare({"findings": "nope"}, hipscreen.assess(LATER))
    with pytest.raises(TypeError, match="after must be an Assessment"):
        compare(hipscreen.assess(LATER), 42)  # type: ignore[arg-type]


def test_different_rules_are_flagged() -> None:
    strict = hipscreen.Screener(thresholds={"weak_grade": 4})
    form = {"strength": {"gluteus_maximus": 4}}
    comparison = compare(hipscreen.assess(form), strict.assess(form))
    assert comparison.rules_changed
    assert "weak-hip-extensors" in _ids(comparison.new)
    assert "the rules changed too" in comparison.explain()
    assert not compare(hipscreen.assess(form), hipscreen.assess(form)).rules_changed


def test_explain_reads_like_a_progress_note() -> None:
    text = compare(hipscreen.assess(FIRST), hipscreen.assess(LATER)).explain()
    assert text.startswith("hipscreen progress for c-1\n")
    assert "Resolved (" in text
    assert "  - tight-hip-flexors: Tight hip flexors (was info)" in text
    assert "New (" in text
    assert "  - weak-hip-extensors: Weak hip extensors (warning → info, better)" in text
    recovered = compare(hipscreen.assess(FIRST), hipscreen.assess(RECOVERED)).explain()
    assert "Plan, dropped: half_kneeling_hip_flexor_stretch" in recovered


def test_comparison_round_trips_through_json() -> None:
    comparison = compare(hipscreen.assess(FIRST), hipscreen.assess(LATER))
    assert Comparison.model_validate_json(comparison.model_dump_json()) == comparison
