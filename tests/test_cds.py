"""`Assessment.to_cds_cards()`: HL7 CDS Hooks cards, one per finding."""

from __future__ import annotations

import ast
import json
import re
import uuid
from pathlib import Path

import pytest
from strategies import random_forms

import hipscreen
from hipscreen._render import cds as _cds

IMBALANCE = {
    "client_id": "c-7",
    "tightness": {"iliopsoas": 3, "rectus_femoris": {"left": 2, "right": 0}},
    "strength": {"gluteus_maximus": 3},
    "symptoms": ["lower_back_pain"],
    "activities": ["running"],
}
RED_FLAG = {"symptoms": ["saddle_numbness", "lower_back_pain"], "tightness": {"iliopsoas": 3}}
INDICATORS = ("info", "warning", "critical")


def test_one_card_per_finding_in_finding_order() -> None:
    result = hipscreen.assess(IMBALANCE)
    cards = result.to_cds_cards()
    assert [c["source"]["topic"]["code"] for c in cards] == result.finding_ids()
    assert [c["indicator"] for c in cards] == [f.severity.value for f in result.findings]


def test_no_findings_gives_no_cards() -> None:
    assert hipscreen.assess({}).to_cds_cards() == []


@pytest.mark.slow
def test_every_card_has_the_required_cds_fields() -> None:
    cards = [
        card
        for form in [*random_forms(150, seed=5), IMBALANCE, RED_FLAG]
        for card in hipscreen.assess(form).to_cds_cards()
    ]
    assert {c["indicator"] for c in cards} == set(INDICATORS)
    for card in cards:
        assert len(card["summary"]) < 140
        assert card["summary"].strip()
        assert card["indicator"] in INDICATORS
        assert card["source"]["label"].strip()
        uuid.UUID(card["uuid"])
        if "suggestions" in card:
            assert card["selectionBehavior"] == "any"
            for suggestion in card["suggestions"]:
                assert suggestion["label"].strip()
                uuid.UUID(suggestion["uuid"])
        else:
            assert "selectionBehavior" not in card
        json.dumps(card)  # JSON-ready as it is


def test_card_carries_summary_source_and_topic_from_the_finding() -> None:
    result = hipscreen.assess(IMBALANCE)
    finding = result.findings[0]
    card = result.to_cds_cards()[0]
    assert card["summary"] == finding.summary
    assert card["source"]["label"] == _cds.SOURCE_LABEL == "hipscreen"
    assert f"**Source:** {_cds._md(finding.source)}" in card["detail"]
    assert card["source"]["topic"] == {
        "system": _cds.TOPIC_SYSTEM,
        "version": result.ruleset_version,
        "code": finding.id,
        "display": finding.title,
    }


def test_detail_is_markdown_with_evidence_exercises_and_source() -> None:
    result = hipscreen.assess(IMBALANCE)
    cards = {c["source"]["topic"]["code"]: c for c in result.to_cds_cards()}
    detail = cards["tight-hip-flexors"]["detail"]
    assert "**Tight hip flexors**" in detail
    assert "- `tightness.iliopsoas` = 3" in detail
    assert "- `tightness.rectus_femoris.left` = 2" in detail
    assert "**Exercises**" in detail
    assert "Half-kneeling hip-flexor stretch" in detail
    assert "**Source:**" in detail
    assert result.ruleset_version in detail
    assert result.disclaimer in detail
    derived = cards["flexor-extensor-imbalance"]["detail"]
    assert "derived from: `tight-hip-flexors`, `weak-hip-extensors`" in derived


def test_suggestions_are_the_exercises_that_answer_the_finding() -> None:
    result = hipscreen.assess(IMBALANCE)
    for card in result.to_cds_cards():
        code = card["source"]["topic"]["code"]
        expected = [
            f"{r.exercise.name}: {r.dose}" for r in result.recommendations if code in r.because
        ]
        assert [s["label"] for s in card.get("suggestions", [])] == expected


def test_a_red_flag_leaves_only_the_critical_cards() -> None:
    """Red-flag cards suppress the exercise cards (domain reference §9)."""
    result = hipscreen.assess(RED_FLAG)
    assert result.referral is not None
    cards = result.to_cds_cards()
    assert cards
    assert {c["indicator"] for c in cards} == {"critical"}
    assert "tight-hip-flexors" in result.finding_ids()
    assert "tight-hip-flexors" not in [c["source"]["topic"]["code"] for c in cards]
    detail = cards[0]["detail"]
    assert f"**Referral ({result.referral.urgency.value}):**" in detail
    assert result.referral.see in detail


def test_a_routine_referral_keeps_every_card_and_shows_on_its_finding() -> None:
    """A referral without a red flag (marked weakness) does not put the exercise cards on hold."""
    result = hipscreen.assess({"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}})
    assert result.referral is not None
    assert not any(f.severity == "critical" for f in result.findings)
    cards = result.to_cds_cards()
    assert [c["source"]["topic"]["code"] for c in cards] == result.finding_ids()
    for card in cards:
        referred = card["source"]["topic"]["code"] in result.referral.because
        assert ("**Referral (" in card["detail"]) == referred


def test_the_findings_behind_a_referral_survive_min_indicator() -> None:
    result = hipscreen.assess({"strength": {"gluteus_maximus": 2}})
    assert result.referral is not None
    codes = [c["source"]["topic"]["code"] for c in result.to_cds_cards(min_indicator="critical")]
    assert codes == list(result.referral.because)


def test_min_indicator_keeps_only_urgent_enough_cards() -> None:
    result = hipscreen.assess(IMBALANCE)
    warnings = result.to_cds_cards(min_indicator="warning")
    assert warnings
    assert {c["indicator"] for c in warnings} == {"warning"}
    assert len(warnings) < len(result.to_cds_cards())
    assert result.to_cds_cards(min_indicator="critical") == []
    with pytest.raises(ValueError, match="urgent"):
        result.to_cds_cards(min_indicator="urgent")


def test_cards_are_deterministic_and_uuids_unique() -> None:
    first = hipscreen.assess(IMBALANCE).to_cds_cards()
    again = hipscreen.Screener(cache_size=0).assess(IMBALANCE).to_cds_cards()
    assert first == again
    ids = [c["uuid"] for c in first] + [s["uuid"] for c in first for s in c.get("suggestions", [])]
    assert len(ids) == len(set(ids))
    other = hipscreen.assess({**IMBALANCE, "client_id": "c-8"}).to_cds_cards()
    assert first[0]["uuid"] != other[0]["uuid"]


def test_a_stored_assessment_gives_the_same_cards() -> None:
    result = hipscreen.assess(IMBALANCE)
    stored = hipscreen.Assessment.model_validate_json(result.model_dump_json())
    assert stored.to_cds_cards() == result.to_cds_cards()


def test_markdown_special_characters_in_rule_text_are_escaped() -> None:
    assert _cds._md("a *b* [c](d) <e> | f_g _h") == r"a \*b\* \[c\](d) \<e\> \| f_g \_h"


def test_an_overlong_summary_is_cut_below_140_characters() -> None:
    assert _cds._summary("x" * 139) == "x" * 139
    cut = _cds._summary("word " * 40)
    assert len(cut) < 140
    assert cut.endswith("…")


def test_cds_module_holds_no_clinical_text() -> None:
    """Card text comes from the findings and the rule data; Python adds only structure."""
    tree = ast.parse(Path(_cds.__file__).read_text(encoding="utf-8"))
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    strings = " ".join(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ).lower()
    clinical = r"\b(hip|flexors?|extensors?|glutes?|stretch\w*|pain|clinician|weak|tight)\b"
    assert re.findall(clinical, strings) == []


def _empties(value: object, path: str = "$") -> list[str]:
    if value is None or value in ("", [], {}):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _empties(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _empties(v, f"{path}[{i}]")]
    return []


def test_no_card_element_is_null_or_empty() -> None:
    """CDS Hooks "Use of JSON": optional elements without a value are left out."""
    for form in (IMBALANCE, RED_FLAG, {"strength": {"gluteus_maximus": 2}}):
        for card in _cds.cards_for(hipscreen.assess(form), hook_instance="h", base_url="http://x"):
            assert _empties(card) == []


def test_override_reasons_are_hl7_non_adherence_codes_with_displays() -> None:
    card = hipscreen.assess(IMBALANCE).to_cds_cards()[0]
    codes = {c["code"] for c in card["overrideReasons"]}
    assert {"patient-contraindication", "action-completed", "need-more-info"} <= codes
    for coding in card["overrideReasons"]:
        assert coding["system"] == _cds.OVERRIDE_SYSTEM
        assert coding["display"].strip()


def test_a_hook_instance_gives_each_call_its_own_uuids() -> None:
    result = hipscreen.assess(IMBALANCE)
    one = _cds.cards_for(result, hook_instance="a")
    two = _cds.cards_for(result, hook_instance="b")

    def ids(cards: list[_cds.CdsCard]) -> set[str]:
        return {c["uuid"] for c in cards} | {
            s["uuid"] for c in cards for s in c.get("suggestions", [])
        }

    assert ids(one).isdisjoint(ids(two))
    assert ids(one) == ids(_cds.cards_for(result, hook_instance="a"))
    assert ids(one).isdisjoint(ids(result.to_cds_cards()))


def test_links_and_source_url_come_with_a_base_url_only() -> None:
    result = hipscreen.assess(IMBALANCE)
    plain = result.to_cds_cards()[0]
    assert "links" not in plain
    assert "url" not in plain["source"]
    linked = _cds.cards_for(result, base_url="https://cds.example.org/")[0]
    code = linked["source"]["topic"]["code"]
    assert linked["links"] == [
        {
            "label": f"{linked['source']['topic']['display']} ({code}): the rule",
            "url": f"https://cds.example.org/rules/{code}",
            "type": "absolute",
        }
    ]
