"""One presentation, one meaning (issue 20): each documented equivalence gives the same answer.

The pairs live in rules/equivalences.yaml next to the table the form-to-facts step reads. Each is
screened on its own and together with generated grades, measurements, activities and ordinary
complaints: both ways of writing must give identical findings (ids and severities), referral
(urgency and reasons) and plan (exercise ids in order, and what was left out).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import graded_muscles, names, roms

import hipscreen
from hipscreen._facts import load_equivalences

TABLE = load_equivalences()
PAIRS = [pytest.param(pair, id=pair["name"]) for pair in TABLE.equivalences]
ORDINARY = ("knee_pain", "anterior_pelvic_tilt", "restricted_stride", "reduced_power")
ACTIVITIES = ("walking", "running", "sit_to_stand", "weightlifting", "jumping")


def _answer(form: dict[str, Any]) -> tuple[Any, ...]:
    result = hipscreen.assess(form)
    referral = result.referral
    return (
        [(f.id, f.severity.value) for f in result.findings],
        None if referral is None else (referral.urgency.value, referral.because),
        [r.exercise.id for r in result.recommendations],
        sorted(x.exercise_id for x in result.excluded),
    )


def _with(base: dict[str, Any], pair_form: dict[str, Any]) -> dict[str, Any]:
    form = {**base, **{k: v for k, v in pair_form.items() if k != "symptoms"}}
    symptoms = [*base.get("symptoms", []), *pair_form.get("symptoms", [])]
    if symptoms:
        form["symptoms"] = symptoms
    return form


def test_the_table_documents_the_issue_equivalences() -> None:
    assert len(TABLE.equivalences) >= 4
    assert TABLE.implies["sudden_severe_back_pain"] == ("lower_back_pain",)


@pytest.mark.parametrize("pair", PAIRS)
def test_a_documented_equivalence_gives_the_same_answer(pair: dict[str, Any]) -> None:
    assert _answer(pair["a"]) == _answer(pair["b"])


def _bases() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "strength": graded_muscles("strength"),
            "rom": roms(),
            "activities": names(ACTIVITIES),
            "symptoms": names(ORDINARY),
        },
    )


@pytest.mark.parametrize("pair", PAIRS)
@settings(deadline=None)
@given(base=_bases())
def test_an_equivalence_holds_whatever_else_the_form_says(
    pair: dict[str, Any], base: dict[str, Any]
) -> None:
    """Both ways, with generated grades, ranges, activities and ordinary complaints around it."""
    a, b = _with(base, pair["a"]), _with(base, pair["b"])
    assert _answer(a) == _answer(b), (a, b)
    assert _answer(b) == _answer(a)


def test_long_standing_back_pain_is_not_new_back_pain() -> None:
    old = hipscreen.assess({"age": 60, "back_pain": {"weeks": 104, "intensity": 3}})
    new = hipscreen.assess({"age": 60, "back_pain": {"weeks": 2, "intensity": 3}})
    assert "new-back-pain-age-flag" not in old.finding_ids()
    assert "new-back-pain-age-flag" in new.finding_ids()


def test_the_measured_side_decides_and_says_so() -> None:
    result = hipscreen.assess(
        {"age": 40, "tightness": {"iliopsoas": 3}, "thomas_test": {"hip_angle": {"left": -15}}}
    )
    by_id = {f.id: f for f in result.findings}
    assert by_id["tight-hip-flexors"].sides == ("right",)
    assert "self-rated-tightness-measured" in by_id
    notes = [e.note for e in by_id["self-rated-tightness-measured"].evidence if e.note]
    assert notes


def test_a_broken_table_is_refused_naming_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "equivalences.yaml"
    bad.write_text(
        "implies: {sudden_severe_back_pain: [lower_back_ache]}\n"
        "derive:\n  - adds: {symptom: hip_pain}\n    when: {back_pain.weeks: {under: 2}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="lower_back_ache") as error:
        load_equivalences(bad)
    assert "derive.0.when.back_pain.weeks: unknown test 'under'" in str(error.value)
