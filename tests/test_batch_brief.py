"""The batch workers' short path (`Screener._brief`) gives exactly the row `assess()` gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import forms, random_forms
from test_rule_cases import ALL_CASES

import hipscreen
from hipscreen._batch._outcomes import record_of, record_of_brief
from hipscreen._form import coerce_form

EXTRA_RULES = Path(__file__).parent / "extra_rules"

SCREENER = hipscreen.Screener(cache_size=0)


def same_row(screener: hipscreen.Screener, form: object) -> None:
    intake = coerce_form(form)  # type: ignore[arg-type]
    assert record_of_brief(screener._brief(intake)) == record_of(screener.assess(intake))


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.test_id)
def test_every_rule_case_gives_the_same_row(case: object) -> None:
    same_row(SCREENER, case.form)  # type: ignore[attr-defined]


def test_random_forms_give_the_same_row() -> None:
    for form in random_forms(400, seed=12):
        same_row(SCREENER, form)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form=forms())
def test_generated_forms_give_the_same_row(form: dict[str, object]) -> None:
    same_row(SCREENER, form)


def test_extra_rules_give_the_same_row() -> None:
    with hipscreen.Screener(extra_rules=[EXTRA_RULES / "clinic"], cache_size=0) as screener:
        for form in random_forms(150, seed=3):
            same_row(screener, form)
