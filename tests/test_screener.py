"""`hipscreen.Screener`: extra rule directories and exercises, threshold overrides, side by side."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import hipscreen

EXTRA = Path(__file__).resolve().parent / "extra_rules"
CLINIC = EXTRA / "clinic"
BROKEN = EXTRA / "broken"

SPRINTER = {
    "tightness": {"iliopsoas": 3},
    "strength": {"gluteus_maximus": 3},
    "activities": ["sprinting"],
}
GOOD_GLUTES = {"strength": {"gluteus_maximus": 4, "hamstrings": 4}}


@pytest.fixture(scope="module")
def clinic() -> hipscreen.Screener:
    return hipscreen.Screener(extra_rules=[CLINIC])


def test_extra_rule_chains_onto_a_built_in_finding(clinic: hipscreen.Screener) -> None:
    result = clinic.assess(SPRINTER)
    findings = {f.id: f for f in result.findings}
    assert "flexor-extensor-imbalance" in findings  # the built-in finding it chains on
    extra = findings["sprint-imbalance-caution"]
    assert extra.derived_from == ("flexor-extensor-imbalance",)
    assert extra.severity == "warning"
    assert any(e.field == "activities" and e.value == "sprinting" for e in extra.evidence)


def test_extra_rule_stays_quiet_without_the_finding_it_chains_on(
    clinic: hipscreen.Screener,
) -> None:
    result = clinic.assess({"activities": ["sprinting"], "tightness": {"iliopsoas": 3}})
    assert "flexor-extensor-imbalance" not in result.finding_ids()
    assert "sprint-imbalance-caution" not in result.finding_ids()


def test_extra_exercise_joins_the_catalog_and_the_plan(clinic: hipscreen.Screener) -> None:
    assert "wall_drive_drill" in clinic.ruleset.exercises
    assert "wall_drive_drill" not in hipscreen.Screener().ruleset.exercises
    plan = {r.exercise.id: r for r in clinic.assess(SPRINTER).recommendations}
    drill = plan["wall_drive_drill"]
    assert drill.because == ("sprint-imbalance-caution",)
    assert drill.exercise.name == "Wall drive drill"
    assert drill.dose.sets is not None  # the catalog's default strength dose applies


def test_extra_rules_leave_the_built_in_results_alone(clinic: hipscreen.Screener) -> None:
    plain = hipscreen.assess(SPRINTER)
    extra = clinic.assess(SPRINTER)
    assert set(plain.finding_ids()) == set(extra.finding_ids()) - {"sprint-imbalance-caution"}
    assert extra.ruleset_version != plain.ruleset_version  # the digest covers the extra files


def test_threshold_override_counts_grade_4_as_weak() -> None:
    strict = hipscreen.Screener(thresholds={"weak_grade": 4})
    assert "weak-hip-extensors" in strict.assess(GOOD_GLUTES).finding_ids()
    assert "weak-hip-extensors" not in hipscreen.assess(GOOD_GLUTES).finding_ids()
    assert strict.ruleset.thresholds["weak_grade"].value == 4
    evidence = {f.id: f for f in strict.assess(GOOD_GLUTES).findings}["weak-hip-extensors"]
    assert any("4" in (e.threshold or "") for e in evidence.evidence)


def test_threshold_override_changes_the_version_digest() -> None:
    strict = hipscreen.Screener(thresholds={"weak_grade": 4})
    version, digest = strict.ruleset_version.split("+")
    assert version == hipscreen.Screener().ruleset_version.split("+")[0]
    assert strict.ruleset_version != hipscreen.Screener().ruleset_version
    assert len(digest) == 12


def test_unknown_threshold_is_reported_with_a_suggestion() -> None:
    with pytest.raises(hipscreen.RuleDataError, match=r"weak_grde.*did you mean 'weak_grade'"):
        hipscreen.Screener(thresholds={"weak_grde": 4})


def test_broken_extra_dir_reports_every_problem_at_once() -> None:
    with pytest.raises(hipscreen.RuleDataError) as caught:
        hipscreen.Screener(extra_rules=[BROKEN])
    problems = caught.value.problems
    text = str(caught.value)
    assert len(problems) == 4, text
    assert "4 problems" in text
    expected = [
        ("exercises.yaml", "wall_drive_drill", "kind", "strenght"),
        ("50-clinic.yaml", "sprint-imbalance-caution", "severity", "urgent"),
        ("50-clinic.yaml", "chains-on-nothing", "when.finding", "flexor-extensor-imbalance"),
        ("50-clinic.yaml", "chains-on-nothing", "recommends.0", "glute_bridge"),
    ]
    for (file, item, field, hint), problem in zip(expected, problems, strict=True):
        assert problem.file.endswith(file)
        assert problem.item == item
        assert problem.field == field
        assert hint in problem.message


def test_bad_extra_dir_loads_nothing_and_leaves_other_screeners_working(
    clinic: hipscreen.Screener,
) -> None:
    before = clinic.assess(SPRINTER)
    with pytest.raises(hipscreen.RuleDataError):
        hipscreen.Screener(extra_rules=[BROKEN])
    assert clinic.assess(SPRINTER) == before
    assert hipscreen.assess(SPRINTER) == hipscreen.Screener().assess(SPRINTER)


def test_extra_rule_reusing_a_built_in_id_is_refused(tmp_path: Path) -> None:
    extra = tmp_path / "dup"
    shutil.copytree(CLINIC, extra)
    rule_file = extra / "findings" / "50-clinic.yaml"
    text = rule_file.read_text(encoding="utf-8")
    rule_file.write_text(text.replace("sprint-imbalance-caution", "tight-hip-flexors"), "utf-8")
    with pytest.raises(hipscreen.RuleDataError, match="duplicate rule id"):
        hipscreen.Screener(extra_rules=[extra])


def test_two_screeners_side_by_side_keep_their_own_rules(clinic: hipscreen.Screener) -> None:
    strict = hipscreen.Screener(thresholds={"weak_grade": 4})
    plain = hipscreen.Screener()
    for _ in range(3):  # interleaved use: no screener sees another's rules
        assert "sprint-imbalance-caution" in clinic.assess(SPRINTER).finding_ids()
        assert "sprint-imbalance-caution" not in strict.assess(SPRINTER).finding_ids()
        assert "weak-hip-extensors" in strict.assess(GOOD_GLUTES).finding_ids()
        assert "weak-hip-extensors" not in clinic.assess(GOOD_GLUTES).finding_ids()
        assert plain.assess(SPRINTER) == hipscreen.assess(SPRINTER)
    versions = {s.ruleset_version for s in (clinic, strict, plain)}
    assert len(versions) == 3


def test_extra_rules_and_threshold_override_combine() -> None:
    both = hipscreen.Screener(extra_rules=[CLINIC], thresholds={"weak_grade": 4})
    form = {**GOOD_GLUTES, "tightness": {"iliopsoas": 3}, "activities": ["sprinting"]}
    ids = both.assess(form).finding_ids()
    assert "weak-hip-extensors" in ids  # only weak at the clinic's threshold
    assert "sprint-imbalance-caution" in ids  # so the imbalance, and the clinic's rule, follow


def test_from_ruleset_builds_the_same_screener_without_reading_files(
    clinic: hipscreen.Screener, tmp_path: Path
) -> None:
    """A screener built from another's rule set screens the same, with its rule files gone."""
    copied = tmp_path / "clinic"
    shutil.copytree(CLINIC, copied)
    original = hipscreen.Screener(extra_rules=[copied])
    shutil.rmtree(copied)  # from_ruleset must not read the directory again
    with hipscreen.Screener.from_ruleset(original.ruleset, cache_size=0) as twin:
        assert twin.ruleset is original.ruleset
        assert twin.ruleset_version == original.ruleset_version == clinic.ruleset_version
        assert twin.assess(SPRINTER) == original.assess(SPRINTER) == clinic.assess(SPRINTER)


def test_from_ruleset_refuses_what_is_not_a_ruleset() -> None:
    with pytest.raises(TypeError, match=r"ruleset must be a RuleSet \(got str\)"):
        hipscreen.Screener.from_ruleset("rules/")  # type: ignore[arg-type]


def test_batch_hooks_give_what_assess_gives(clinic: hipscreen.Screener) -> None:
    """The hooks the batch doors call are the public path's findings, form for form."""
    from hipscreen._intake.form import coerce_form

    intakes = [coerce_form(SPRINTER), coerce_form(GOOD_GLUTES)]
    together = clinic.assess_validated(intakes)
    assert together == [clinic.assess(SPRINTER), clinic.assess(GOOD_GLUTES)]
    briefs = clinic.briefs(intakes)
    assert briefs == [clinic.brief(i) for i in intakes]
    assert [[f.id for f in b.findings] for b in briefs if not isinstance(b, Exception)] == [
        a.finding_ids() for a in together if not isinstance(a, Exception)
    ]
