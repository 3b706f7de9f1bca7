"""The batch workers' short path (`Screener.brief`) gives exactly the row `assess()` gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import forms, random_forms
from test_rule_cases import ALL_CASES

import hipscreen
from hipscreen._batch._outcomes import Record, record_of, record_of_brief
from hipscreen._intake.form import coerce_form

EXTRA_RULES = Path(__file__).parent / "extra_rules"

SCREENER = hipscreen.Screener(cache_size=0)


def same_row(screener: hipscreen.Screener, form: object) -> None:
    intake = coerce_form(form)  # type: ignore[arg-type]
    assert record_of_brief(screener.brief(intake)) == record_of(screener.assess(intake))


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.test_id)
def test_every_rule_case_gives_the_same_row(case: object) -> None:
    same_row(SCREENER, case.form)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_random_forms_give_the_same_row() -> None:
    for form in random_forms(400, seed=12):
        same_row(SCREENER, form)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form=forms())
def test_generated_forms_give_the_same_row(form: dict[str, object]) -> None:
    same_row(SCREENER, form)


@pytest.mark.slow
def test_extra_rules_give_the_same_row() -> None:
    with hipscreen.Screener(extra_rules=[EXTRA_RULES / "clinic"], cache_size=0) as screener:
        for form in random_forms(150, seed=3):
            same_row(screener, form)


# The batch workers screen a chunk's forms many to an engine session (`Screener.briefs`,
# `Screener.assess_validated`): each form must come out as if it had been screened alone.


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), (EXTRA_RULES / "clinic",)], ids=["built-in", "clinic"])
def test_forms_screened_in_shared_sessions_match_forms_screened_alone(extra: tuple[Path]) -> None:
    with hipscreen.Screener(extra_rules=extra, cache_size=0) as screener:
        assert screener._compiled.can_share
        # More forms than one shared session takes, so a chunk spans several sessions.
        intakes = [coerce_form(form) for form in random_forms(250, seed=21)]
        intakes += [coerce_form(case.form) for case in ALL_CASES]  # every rule fires somewhere
        alone = [screener.assess(intake) for intake in intakes]
        briefs = screener.briefs(intakes)
        assert [record_of_brief(b) for b in briefs] == [record_of(a) for a in alone]  # type: ignore[arg-type]
        together = screener.assess_validated(intakes)
        assert [a.model_dump_json() for a in together] == [a.model_dump_json() for a in alone]  # type: ignore[union-attr]


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(forms(), min_size=1, max_size=12))
def test_generated_chunks_in_a_shared_session_match_forms_screened_alone(
    batch: list[dict[str, object]],
) -> None:
    intakes = [coerce_form(form) for form in batch]  # type: ignore[arg-type]
    together = SCREENER.assess_validated(intakes)
    alone = [SCREENER.assess(intake) for intake in intakes]
    assert [a.model_dump_json() for a in together] == [a.model_dump_json() for a in alone]  # type: ignore[union-attr]


def test_a_briefs_record_holds_plain_text_as_assess_gives_it() -> None:
    """The record's words are `str`, not vocabulary members (as `record_of` gives them)."""
    form = {"tightness": {"hamstrings": 3}, "pregnancy": {"weeks": 20}, "symptoms": ["hip_pain"]}
    intake = coerce_form(form)
    fast, slow = record_of_brief(SCREENER.brief(intake)), record_of(SCREENER.assess(intake))
    assert fast == slow
    assert fast.findings

    def types(record: Record) -> list[type]:
        cells: list[object] = [record.highest_severity, record.referral_urgency]
        for finding in record.findings:
            cells += [*finding[:3], *finding[3]]
        return [type(c) for c in cells]

    assert types(fast) == types(slow)
    assert str in types(fast)
    # The words are the vocabulary's own string objects (a chunk's results pickle each once).
    assert fast.highest_severity is slow.highest_severity
    assert all(a[1] is b[1] for a, b in zip(fast.findings, slow.findings, strict=True))
