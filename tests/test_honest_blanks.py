"""Honest blanks (issue 20): every safety yes/no is true, false or blank, and blank is "not asked".

Blank is listed under ``not_assessed`` and never read as "no"; an explicit ``false`` keeps its old
meaning (old forms stay valid and screen as before).
"""

from __future__ import annotations

from typing import Any

import pytest

import hipscreen

#: Each tri-state safety question: the form field, a "yes" value, and the not_assessed words.
TRI_STATE: dict[str, tuple[Any, str]] = {
    "osteoporosis": (True, "osteoporosis (asked yes or no)"),
    "vertebral_fracture": (True, "past vertebral fracture (asked yes or no)"),
    "anticoagulant": (True, "anticoagulant use (asked yes or no)"),
    "recent_joint_procedure": (True, "recent joint injection or procedure (asked yes or no)"),
    "pregnancy": ({"weeks": 20}, "pregnancy (asked yes or no)"),
    "recent_fall": ({"occurred": True}, "recent fall (asked yes or no)"),
}


@pytest.mark.parametrize("field", sorted(TRI_STATE))
def test_a_blank_safety_question_is_listed_as_not_assessed(field: str) -> None:
    _, words = TRI_STATE[field]
    assert words in hipscreen.assess({}).not_assessed


@pytest.mark.parametrize("field", sorted(TRI_STATE))
def test_an_answered_safety_question_is_not_listed(field: str) -> None:
    yes, words = TRI_STATE[field]
    no = {"occurred": False} if field == "recent_fall" else False
    for answer in (yes, no):
        assert words not in hipscreen.assess({field: answer}).not_assessed


@pytest.mark.parametrize("field", ["osteoporosis", "vertebral_fracture", "anticoagulant"])
def test_an_explicit_false_screens_as_if_the_item_were_absent(field: str) -> None:
    """Old forms stay valid: ``false`` means no, exactly as before the field became tri-state."""
    form = {"age": 40, field: False, "tightness": {"iliopsoas": 3}}
    result = hipscreen.assess(form)
    assert result.finding_ids() == hipscreen.assess({**form, field: False}).finding_ids()
    assert not [f for f in result.findings if f.id.endswith("-not-asked")]


def test_blank_osteoporosis_is_never_read_as_no() -> None:
    """A 60-year-old with a fall and new pain: blank osteoporosis says what it would change."""
    base = {"age": 60, "anticoagulant": False, "recent_fall": {"occurred": True, "new_pain": True}}
    blank = hipscreen.assess(base)
    no = hipscreen.assess({**base, "osteoporosis": False})
    yes = hipscreen.assess({**base, "osteoporosis": True})
    assert "fracture-risk-not-asked" in blank.finding_ids()
    assert "fracture-risk-not-asked" not in no.finding_ids()
    assert yes.referral is not None
    assert yes.referral.urgency == "emergency"
    assert "osteoporosis (asked yes or no)" in blank.not_assessed


def test_blank_age_cannot_exclude_the_young_person_rules() -> None:
    blank = hipscreen.assess({"symptoms": ["limp", "knee_pain"]})
    assert "young-person-rules-not-excluded" in blank.finding_ids()
    assert any(item.startswith("age") for item in blank.not_assessed)
    child = hipscreen.assess({"age": 12, "symptoms": ["limp", "knee_pain"]})
    assert child.referral is not None
    assert not any(item.startswith("age") for item in child.not_assessed)


def test_pregnancy_can_say_not_pregnant() -> None:
    assert hipscreen.IntakeForm(pregnancy=False).pregnancy is False
    weeks_not_given = hipscreen.IntakeForm(pregnancy={}).pregnancy
    assert hipscreen.IntakeForm(pregnancy=True).pregnancy == weeks_not_given
    assert "pregnancy" not in hipscreen.assess({"pregnancy": False}).finding_ids()
    assert "pregnancy" in hipscreen.assess({"pregnancy": True}).finding_ids()


def test_not_pregnant_with_a_pregnancy_only_symptom_is_refused() -> None:
    refused = "pregnancy is false but symptoms lists 'vaginal_bleeding'"
    with pytest.raises(ValueError, match=refused):
        hipscreen.assess({"pregnancy": False, "symptoms": ["vaginal_bleeding"]})


def test_pregnancy_must_be_a_block_or_a_yes_no() -> None:
    with pytest.raises(ValueError, match=r"pregnancy must be a block .* \(got 0\)"):
        hipscreen.IntakeForm.model_validate({"pregnancy": 0})


def test_the_symptom_checklist_says_whether_unticked_alarms_are_no() -> None:
    words = "red-flag symptom questions"
    for value in (None, False):
        form = {} if value is None else {"symptom_checklist_completed": value}
        assert any(words in item for item in hipscreen.assess(form).not_assessed)
    done = hipscreen.assess({"symptom_checklist_completed": True})
    assert not any(words in item for item in done.not_assessed)


def test_a_ticked_fall_answers_the_fall_question() -> None:
    ticked = hipscreen.assess({"symptoms": ["recent_fall_or_minor_trauma"]})
    assert "recent fall (asked yes or no)" not in ticked.not_assessed
