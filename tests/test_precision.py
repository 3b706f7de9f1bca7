"""Threshold comparisons in the engine are exact for every value a form accepts.

The engine reads numbers with C's ``atof``; hipscreen sends Python's shortest round-trip digits,
so the engine compares exactly the doubles Python would. Only magnitudes below 0.0001 (which
Python prints with an exponent, and the engine's JSON reader crashes on) are sent as ±0.0005,
on the same side of every threshold of at most three decimals. These tests compare the engine's
answers with Python's own comparisons right at and around thresholds.
"""

from __future__ import annotations

import json
import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import thresholds, values_near

import hipscreen
from hipscreen._engine import CompiledRules, EngineRule, engine_number
from hipscreen._rules.atoms import Atom

OPERATORS = {
    "at_least": operator.ge,
    "at_most": operator.le,
    "below": operator.lt,
    "above": operator.gt,
}


def _engine_answers(threshold: float, values: list[float]) -> list[set[str]]:
    rules = [
        EngineRule(bound, ((Atom("rom", (("motion", "hip_flexion"),), **{bound: threshold}),),))
        for bound in OPERATORS
    ]
    compiled = CompiledRules(rules, "precision")
    try:
        answers = []
        for value in values:
            fired: set[str] = set()
            fact = {"t": "rom", "mo": "hip_flexion", "v": engine_number(value), "i": 0}
            compiled.run([fact], lambda name, message, into=fired: into.add(name) or ())
            answers.append(fired)
        return answers
    finally:
        compiled.close()


@settings(deadline=None)
@given(st.data())
def test_engine_comparisons_equal_python_comparisons_near_thresholds(data: st.DataObject) -> None:
    threshold = data.draw(thresholds())
    values = data.draw(st.lists(values_near(threshold), min_size=1, max_size=12))
    answers = _engine_answers(threshold, values)
    for value, fired in zip(values, answers, strict=True):
        expected = {bound for bound, compare in OPERATORS.items() if compare(value, threshold)}
        assert fired == expected, f"{value!r} against {threshold!r}"


@settings(deadline=None)
@given(st.floats(-180, 180, allow_nan=False) | st.floats(-1e-3, 1e-3, allow_nan=False))
def test_engine_numbers_never_use_exponent_notation(value: float) -> None:
    """durable_rules' JSON reader crashes on ``1e-05``."""
    assert "e" not in json.dumps(engine_number(value)).lower()


@pytest.mark.parametrize(
    ("degrees", "limited"),
    [
        (99.9996, True),  # issue 11: was rounded to 100 and the finding disappeared
        (99.99999999999999, True),
        (100.0, False),
        (100.00000000000001, False),
        (100.0004, False),
    ],
)
def test_a_hair_below_the_norm_is_below_it(degrees: float, limited: bool) -> None:
    form = {"rom": {"hip_flexion": degrees}}
    assert ("limited-hip-flexion" in hipscreen.assess(form).finding_ids()) is limited
    text = json.dumps(form)
    assert ("limited-hip-flexion" in hipscreen.assess(text).finding_ids()) is limited


@settings(deadline=None)
@given(values_near(100))
def test_hip_flexion_against_its_norm_matches_python(degrees: float) -> None:
    if not 0 <= degrees <= 180:
        return
    ids = hipscreen.assess({"rom": {"hip_flexion": degrees}}).finding_ids()
    assert ("limited-hip-flexion" in ids) is (degrees < 100)


@pytest.mark.parametrize("difference", [1e-5, 1e-300, 0.0004])
def test_tiny_left_right_differences_stay_below_an_asymmetry_threshold(difference: float) -> None:
    form = {"rom": {"hip_extension": {"left": 10.0, "right": 10.0 + difference}}}
    assert "range-asymmetry" not in hipscreen.assess(form).finding_ids()
