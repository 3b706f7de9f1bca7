"""Standard instruments: definitions load and validate, scoring matches the published scoring,
missing items give a range and a band only when no completion could change it, and the form's
``instruments`` block names the field of every bad input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hipscreen
from hipscreen import InvalidFormError
from hipscreen._errors import RuleDataError
from hipscreen._instruments.loader import builtin_instruments, load_instruments
from hipscreen._instruments.scoring import score_items
from hipscreen._rules.builtin import builtin_rules_dir

SPECS = builtin_instruments()


def _all(count: int, value: Any) -> dict[str, Any]:
    return {str(i): value for i in range(1, count + 1)}


# -- published scoring, worked examples ----------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "distress", "band"),
    [
        # Keele SBST scoring (keele.ac.uk/sbst/usingscoringthesbst/; Hill JC et al. Arthritis
        # Rheum 2008;59:632-641): total <= 3 low; total >= 4 and distress (items 5-9) <= 3
        # medium; distress >= 4 high. Item 9 scores 1 for "very much" (3) or "extremely" (4).
        ({**_all(8, 0), "9": 0}, 0, 0, "low"),
        ({**_all(8, 1), "9": 4}, 9, 5, "high"),
        ({"1": 1, "2": 1, "3": 1, "4": 0, "5": 0, "6": 0, "7": 0, "8": 0, "9": 0}, 3, 0, "low"),
        ({"1": 1, "2": 1, "3": 1, "4": 1, "5": 0, "6": 0, "7": 0, "8": 0, "9": 0}, 4, 0, "medium"),
        ({"1": 0, "2": 0, "3": 0, "4": 1, "5": 1, "6": 1, "7": 1, "8": 0, "9": 2}, 4, 3, "medium"),
        ({"1": 0, "2": 0, "3": 0, "4": 0, "5": 1, "6": 1, "7": 1, "8": 0, "9": 3}, 4, 4, "high"),
    ],
)
def test_start_back_scoring_sheet(
    answers: dict[str, int], total: int, distress: int, band: str
) -> None:
    score = score_items(SPECS["start_back"], answers)
    assert (score.value, score.subscores["distress"], score.band) == (total, distress, band)
    assert score.complete
    assert score.missing == ()
    assert score.range is None


def test_lefs_is_the_sum_of_20_items() -> None:
    # Binkley JM et al. Phys Ther 1999;79:371-383: 20 items 0-4, total 0-80.
    assert score_items(SPECS["lefs"], _all(20, 4)).value == 80
    assert score_items(SPECS["lefs"], _all(20, 0)).value == 0
    mixed = {str(i): (i - 1) % 5 for i in range(1, 21)}  # 0,1,2,3,4 four times: 4 × 10
    assert score_items(SPECS["lefs"], mixed).value == 40


def test_hoos_jr_conversion_end_points() -> None:
    # Lyman S et al. CORR 2016;474:1472-1482: raw 0 (no difficulty) = 100, raw 24 = 0.
    best = score_items(SPECS["hoos_jr"], _all(6, 0))
    worst = score_items(SPECS["hoos_jr"], _all(6, 4))
    assert (best.value, best.subscores["raw"]) == (100, 0)
    assert (worst.value, worst.subscores["raw"], worst.band) == (0, 24, "very_low")


def test_hoos_jr_intermediate_raw_sums_are_not_invented() -> None:
    # Only the verified end points of the conversion table ship: a raw 12 has no interval score.
    score = score_items(SPECS["hoos_jr"], _all(6, 2))
    assert score.complete
    assert score.value is None
    assert score.band is None
    assert score.subscores == {"raw": 12}


def test_psfs_is_the_mean_of_the_rated_activities() -> None:
    # Stratford 1995: the score is the mean of the activities rated 0-10.
    assert score_items(SPECS["psfs"], {"1": 3, "2": 5, "3": 7}).value == 5
    assert score_items(SPECS["psfs"], {"1": 2, "2": 3}).value == 2.5
    empty = score_items(SPECS["psfs"], {})
    assert not empty.complete
    assert empty.value is None
    assert empty.range == (0, 10)


@pytest.mark.parametrize(
    ("value", "band"), [(0, "none"), (1, "mild"), (3, "mild"), (4, "moderate"), (7, "severe")]
)
def test_pain_nrs_bands(value: int, band: str) -> None:
    score = score_items(SPECS["pain_nrs"], {"1": value})
    assert (score.value, score.band) == (value, band)


def test_parq_plus_decision() -> None:
    # PAR-Q+ page 1: all NO → cleared; any YES → follow-up (not cleared by this screen).
    assert score_items(SPECS["parq_plus"], _all(7, False)).band == "cleared"
    one_yes = score_items(SPECS["parq_plus"], {**_all(7, False), "4": True})
    assert (one_yes.value, one_yes.band) == (1, "not_cleared")
    assert score_items(SPECS["parq_plus"], {"1": True}).band == "not_cleared"
    assert score_items(SPECS["parq_plus"], _all(6, False)).band is None  # one unanswered


# -- missing items: the range holds the completed score, the band never changes ------------------


def _answers(instrument: str) -> st.SearchStrategy[dict[str, Any]]:
    spec = SPECS[instrument]
    items = {}
    for item in spec.items.ids:
        scale = spec.items.scale_of(item)
        items[item] = (
            st.booleans()
            if scale.boolean
            else st.integers(min_value=scale.low, max_value=scale.high)
        )
    return st.fixed_dictionaries(items)


SCORED_WITH_MISSING = ["pain_nrs", "hoos_jr", "lefs", "start_back", "parq_plus"]


@settings(deadline=None)
@given(data=st.data(), instrument=st.sampled_from(SCORED_WITH_MISSING))
def test_missing_items_bound_the_completed_score(data: st.DataObject, instrument: str) -> None:
    spec = SPECS[instrument]
    full = data.draw(_answers(instrument), label="answers")
    dropped = data.draw(st.sets(st.sampled_from(spec.items.ids)), label="dropped")
    partial = {k: v for k, v in full.items() if k not in dropped}
    completed = score_items(spec, full)
    seen = score_items(spec, partial)
    assert completed.complete
    assert not completed.missing
    assert seen.missing == tuple(i for i in spec.items.ids if i in dropped)
    if dropped:
        assert not seen.complete
        assert seen.value is None
        if seen.range is not None and completed.value is not None:
            low, high = seen.range
            assert low <= completed.value <= high
        if spec.scoring.formula in ("sum", "value", "start_back", "parq"):
            assert seen.range is not None
    else:
        assert seen == completed
    if seen.band is not None:
        assert seen.band == completed.band


# -- definitions as data ---------------------------------------------------------------------------


def test_every_definition_ships_no_item_text_and_cites_its_licence() -> None:
    for spec in SPECS.values():
        assert spec.licence.item_text == "not_shipped"
        assert spec.licence.source
        assert spec.licence.official_form
    raw = (builtin_rules_dir() / "instruments" / "start_back.yaml").read_text()
    assert "Keele" in raw


def test_a_broken_definition_is_refused_with_every_problem(tmp_path: Path) -> None:
    shutil.copytree(builtin_rules_dir() / "instruments", tmp_path, dirs_exist_ok=True)
    lefs = tmp_path / "lefs.yaml"
    lefs.write_text(lefs.read_text().replace("count: 20", "count: 200"))
    (tmp_path / "odi.yaml").write_text("id: odi\n")
    (tmp_path / "psfs.yaml").write_text("id: psfs\nitems: &a {count: 1}\n")
    with pytest.raises(RuleDataError) as caught:
        load_instruments(tmp_path)
    text = str(caught.value)
    assert "instruments/lefs.yaml" in text
    assert "items.count" in text
    assert "unknown instrument file" in text
    assert "anchors and aliases" in text


def test_a_table_that_is_not_monotone_is_refused(tmp_path: Path) -> None:
    shutil.copytree(builtin_rules_dir() / "instruments", tmp_path, dirs_exist_ok=True)
    hoos = tmp_path / "hoos_jr.yaml"
    hoos.write_text(hoos.read_text().replace("    24: 0\n", "    24: 0\n    12: 100\n"))
    with pytest.raises(RuleDataError, match="monotone"):
        load_instruments(tmp_path)


# -- the form block ------------------------------------------------------------------------------


def _problems(form: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidFormError) as caught:
        hipscreen.assess(form)
    return {p.field: p.message for p in caught.value.problems}


def test_bad_instrument_input_names_the_field() -> None:
    problems = _problems(
        {
            "instruments": {
                "lefs": {"version": "2", "items": {"21": 1, "3": 5}},
                "parq_plus": {"items": {"1": 1}},
                "start_back": {"items": {"9": 5, "1": True}},
            }
        }
    )
    assert "version '1999'" in problems["instruments.lefs.version"]
    assert "unknown item '21'" in problems["instruments.lefs.items.21"]
    assert "0–4" in problems["instruments.lefs.items.3"]
    assert "true or false" in problems["instruments.parq_plus.items.1"]
    assert "0–4" in problems["instruments.start_back.items.9"]
    assert "0–1" in problems["instruments.start_back.items.1"]


def test_unknown_instrument_and_incomplete_entries() -> None:
    assert "allowed: pain_nrs" in _problems({"instruments": {"odi": {}}})["instruments.odi"]
    assert "needs items" in _problems({"instruments": {"lefs": {}}})["instruments.lefs"]
    problems = _problems({"instruments": {"lefs": {"score": 50}}})
    assert "computed_by_caller" in problems["instruments.lefs.computed_by_caller"]
    problems = _problems({"instruments": {"lefs": {"score": 90, "computed_by_caller": True}}})
    assert "0–80" in problems["instruments.lefs.score"]
    problems = _problems(
        {"instruments": {"start_back": {"score": 2, "computed_by_caller": True, "band": "high"}}}
    )
    assert "band 'low'" in problems["instruments.start_back.band"]


def test_scores_reach_the_assessment() -> None:
    result = hipscreen.assess(
        {
            "instruments": {
                "pain_nrs": {"items": {"1": 4}},
                "hoos_jr": {"score": 35.5, "computed_by_caller": True},
                "lefs": {"items": _all(18, 4)},
            }
        }
    )
    by_id = {s.instrument: s for s in result.scores}
    assert by_id["pain_nrs"].band == "moderate"
    assert by_id["hoos_jr"].computed_by_caller
    assert by_id["hoos_jr"].band == "very_low"
    lefs = by_id["lefs"]
    assert (lefs.value, lefs.range, lefs.band, lefs.missing) == (
        None,
        (72, 80),
        "high",
        ("19", "20"),
    )


# -- compare(): change against the MCID and MDC ------------------------------------------------


def _scores(block: dict[str, Any]) -> hipscreen.Assessment:
    return hipscreen.assess({"instruments": block})


def _verdicts(before: dict[str, Any], after: dict[str, Any]) -> dict[str, hipscreen.ScoreChange]:
    changes = hipscreen.compare(_scores(before), _scores(after)).score_changes
    return {change.instrument: change for change in changes}


def test_lefs_change_against_mcid_and_mdc() -> None:
    # Binkley 1999: MDC = MCID = 9 points; higher LEFS is better.
    def lefs(total: int) -> dict[str, Any]:
        items = {str(i): min(4, max(0, total - 4 * (i - 1))) for i in range(1, 21)}
        assert sum(items.values()) == total
        return {"lefs": {"items": items}}

    assert _verdicts(lefs(30), lefs(39))["lefs"].verdict == "meaningful_improvement"
    assert _verdicts(lefs(39), lefs(30))["lefs"].verdict == "meaningful_worsening"
    small = _verdicts(lefs(30), lefs(38))["lefs"]
    assert (small.delta, small.verdict) == (8, "within_measurement_error")


def test_pain_nrs_lower_is_better() -> None:
    # Farrar 2001: about 2 points; no MDC given, so a 1-point change is below the MCID.
    def nrs(value: int) -> dict[str, Any]:
        return {"pain_nrs": {"items": {"1": value}}}

    assert _verdicts(nrs(8), nrs(6))["pain_nrs"].verdict == "meaningful_improvement"
    assert _verdicts(nrs(3), nrs(6))["pain_nrs"].verdict == "meaningful_worsening"
    assert _verdicts(nrs(8), nrs(7))["pain_nrs"].verdict == "below_mcid"


def test_psfs_pairs_the_activities_rated_both_times() -> None:
    change = _verdicts(
        {"psfs": {"items": {"1": 2, "2": 3, "3": 9}}}, {"psfs": {"items": {"1": 5, "2": 6}}}
    )["psfs"]
    assert (change.before, change.after, change.verdict) == (2.5, 5.5, "meaningful_improvement")
    assert "1, 2" in (change.note or "")
    none = _verdicts({"psfs": {"items": {"1": 2}}}, {"psfs": {"items": {"2": 5}}})["psfs"]
    assert none.verdict == "not_comparable"


def test_incomplete_or_stratification_scores() -> None:
    partial = _verdicts(
        {"lefs": {"items": {"1": 1}}}, {"lefs": {"items": {str(i): 4 for i in range(1, 21)}}}
    )["lefs"]
    assert partial.verdict == "not_comparable"
    sbst = _verdicts(
        {"start_back": {"score": 2, "computed_by_caller": True}},
        {"start_back": {"score": 6, "band": "high", "computed_by_caller": True}},
    )["start_back"]
    assert (sbst.verdict, sbst.band_before, sbst.band_after) == ("no_threshold", "low", "high")
    text = hipscreen.compare(
        _scores({"pain_nrs": {"items": {"1": 8}}}), _scores({"pain_nrs": {"items": {"1": 4}}})
    ).explain()
    assert "pain_nrs: 8 → 4 (-4), meaningful improvement [MCID 2]" in text


# -- batch: one column per item, from the form model ---------------------------------------------


def test_batch_columns_per_item_and_score() -> None:
    from hipscreen._batch._columns import BY_NAME, form_to_row

    assert BY_NAME["instruments.lefs.items.20"].kind.value == "grade"
    assert BY_NAME["instruments.parq_plus.items.7"].kind.value == "flag"
    assert "instruments.lefs.items.21" not in BY_NAME
    assert "instruments.hoos_jr.items.7" not in BY_NAME
    assert BY_NAME["instruments.hoos_jr.score"].kind.value == "number"
    form = {
        "instruments": {
            "lefs": {"items": {"1": 3}},
            "pain_nrs": {"score": 4, "computed_by_caller": True},
        }
    }
    assert form_to_row(form) == {
        "instruments.pain_nrs.score": 4,
        "instruments.pain_nrs.computed_by_caller": True,
        "instruments.lefs.items.1": 3,
    }


def test_a_frame_with_item_columns_fires_the_instrument_rules() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"instruments.parq_plus.items.3": ["yes", "no"], "instruments.pain_nrs.items.1": [2, 8]}
    )
    result = hipscreen.assess_frame(frame)
    assert list(result["finding_ids"]) == [["parq-not-cleared"], ["severe-pain-score"]]


def test_scores_show_in_the_report_and_the_html_view() -> None:
    result = _scores(
        {
            "start_back": {"items": {"5": 1, "6": 1, "7": 1, "8": 1}},
            "pain_nrs": {"items": {"1": 3}},
        }
    )
    line = "start_back (2008): incomplete, 4–9 with items 1, 2, 3, 4, 9 missing; band high"
    assert f"  - {line}" in result.explain().splitlines()
    html = result._repr_html_()
    assert "<h4>Scores</h4>" in html
    assert "<li>pain_nrs (1): 3; band mild</li>" in html


def test_the_rules_digest_covers_the_instrument_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hipscreen._rules import loader

    copy = tmp_path / "rules"
    shutil.copytree(builtin_rules_dir(), copy)
    monkeypatch.setattr(loader, "builtin_rules_dir", lambda: copy)
    before = loader.load_ruleset().digest
    assert before == loader.load_ruleset(builtin_rules_dir()).digest
    pain = copy / "instruments" / "pain_nrs.yaml"
    pain.write_text(pain.read_text() + "\n# a comment changes the bytes\n")
    assert loader.load_ruleset().digest != before
