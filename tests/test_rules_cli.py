"""Rule authoring tools: ``hipscreen explain``, ``rules test`` (and `hipscreen.testing`),
``rules diff`` (change impact, CI exit codes) and ``rules rescreen``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import hipscreen
from hipscreen import _cli
from hipscreen._rulestools import RulesetMismatchError, rescreen, row_change
from hipscreen.testing import assert_cases, case_params, check_case, load_cases, run_cases

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
CLINIC = ROOT / "tests" / "extra_rules" / "clinic"
NEAR_CAUDA = {"symptoms": ["bilateral_leg_symptoms", "hip_pain"]}


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    try:
        code = _cli.main([str(a) for a in argv])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    return path


# -- explain ---------------------------------------------------------------------------------------


def test_explain_why_not_a_red_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    form = write(tmp_path / "form.json", NEAR_CAUDA)
    code, out, err = run(capsys, "explain", form, "--why-not", "possible-cauda-equina")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "possible-cauda-equina (Possible cauda equina signs, critical): did not fire"
    assert "    ✓ symptom bilateral_leg_symptoms" in lines
    assert "    ✗ symptom lower_back_pain" in lines


def test_explain_why_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    form = write(tmp_path / "form.json", {"tightness": {"iliopsoas": 3}})
    code, out, _ = run(capsys, "explain", form, "--why", "tight-hip-flexors", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["fired"] is True
    assert doc["rule_id"] == "tight-hip-flexors"
    held = [alt for alt in doc["alternatives"] if all(a["held"] for a in alt["atoms"])]
    assert held[0]["atoms"][0]["inputs"][0]["field"] == "tightness.iliopsoas"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--why", "possible-cauda-equina"), "did not fire for this form: --why-not tells why"),
        (("--why-not", "possible-cauda-equna"), "did you mean 'possible-cauda-equina'?"),
    ],
)
def test_explain_refuses_the_wrong_question(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    form = write(tmp_path / "form.json", NEAR_CAUDA)
    code, out, err = run(capsys, "explain", form, *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_explain_checks_a_stored_assessment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    form = write(tmp_path / "form.json", NEAR_CAUDA)
    stored = hipscreen.assess(NEAR_CAUDA)
    good = write(tmp_path / "good.json", stored.model_dump_json())
    code, _, _ = run(
        capsys, "explain", form, "--why-not", "tight-hip-flexors", "--assessment", good
    )
    assert code == 0
    old = stored.model_copy(update={"ruleset_version": "1.0.0+aaaaaaaaaaaa"})
    bad = write(tmp_path / "old.json", old.model_dump_json())
    code, _, err = run(
        capsys, "explain", form, "--why-not", "tight-hip-flexors", "--assessment", bad
    )
    assert code == 2
    assert "screened with rules 1.0.0+aaaaaaaaaaaa" in err


# -- rules test and hipscreen.testing --------------------------------------------------------------

BROKEN_CASES = """\
rule: possible-cauda-equina
fires:
  - name: both legs without back pain
    form: {symptoms: [bilateral_leg_symptoms]}
  - name: saddle numbness is a warning
    form: {symptoms: [saddle_numbness]}
    severity: warning
    plan: {exactly: [glute_bridge]}
    evidnce: [symptoms]
quiet:
  - name: both legs with back pain
    form: {symptoms: [bilateral_leg_symptoms, lower_back_pain]}
"""


def test_rules_test_passes_on_the_built_in_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "test", RULES, "--strict")
    assert code == 0
    assert out.startswith("rules/cases: ") or f"{RULES / 'cases'}: " in out
    assert " 0 failed" in out


def test_rules_test_reports_each_failure_as_a_diff(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write(tmp_path / "cases" / "possible-cauda-equina.yaml", BROKEN_CASES)
    code, out, _ = run(capsys, "rules", "test", tmp_path)
    assert code == 1
    assert "3 cases for 1 rules" in out
    assert "0 passed, 3 failed" in out
    assert "format: possible-cauda-equina.yaml: fires[1]: unknown key 'evidnce'" in out
    assert "FAIL possible-cauda-equina/fires/both legs without back pain" in out
    assert "expected possible-cauda-equina to fire; it did not" in out
    assert "✗ symptom lower_back_pain" in out  # the nearest why-not
    assert "  - severity: expected warning, got critical" in out
    assert "  - plan: expected exactly [glute_bridge], got []" in out
    assert "expected possible-cauda-equina to stay quiet; it fired" in out


def test_rules_test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "rules", "test", tmp_path / "nowhere")[0] == 2
    code, _, err = run(capsys, "rules", "test", tmp_path)
    assert code == 2
    assert "no case files" in err


def test_cases_of_extra_rules_run_on_top_of_the_built_in_rules(tmp_path: Path) -> None:
    rules = shutil.copytree(CLINIC, tmp_path / "clinic")
    write(
        rules / "cases" / "sprint-imbalance-caution.yaml",
        """\
rule: sprint-imbalance-caution
fires:
  - name: sprinter with fair glutes and tight flexors
    form: {tightness: {iliopsoas: 3}, strength: {gluteus_maximus: 3}, activities: [sprinting]}
    derived_from: [flexor-extensor-imbalance]
quiet:
  - name: a runner is not a sprinter
    form: {tightness: {iliopsoas: 3}, strength: {gluteus_maximus: 3}, activities: [running]}
""",
    )
    report = assert_cases(rules, strict=True)
    assert [r.case.test_id for r in report.results] == [
        "sprint-imbalance-caution/fires/sprinter with fair glutes and tight flexors",
        "sprint-imbalance-caution/quiet/a runner is not a sprinter",
    ]
    assert report.rules_without_cases == ()


def test_the_testing_module_finds_misspelt_ids_and_broken_files(tmp_path: Path) -> None:
    write(
        tmp_path / "cases" / "tight-hip-flexors.yaml",
        """\
rule: tight-hip-flexors
fires:
  - name: severe
    form: {tightness: {iliopsoas: 3}}
    derived_from: [no-such-finding]
    plan: {includes: [no_such_exercise]}
quiet:
  - name: none
    form: {tightness: {iliopsoas: 0}}
""",
    )
    write(tmp_path / "cases" / "other.yaml", "rule: [not, a, mapping\n")
    report = run_cases(tmp_path, hipscreen.Screener(cache_size=0))
    assert not report.passed
    problems = "\n".join(report.format_problems)
    assert "unknown finding 'no-such-finding'" in problems
    assert "unknown exercise 'no_such_exercise'" in problems
    assert "other.yaml: not valid YAML" in problems
    with pytest.raises(ValueError, match="break the format"):
        case_params(tmp_path)
    with pytest.raises(AssertionError, match="FAIL tight-hip-flexors/fires/severe"):
        assert_cases(tmp_path)


def test_case_params_and_check_case_for_pytest_users() -> None:
    params = case_params(RULES)
    assert len(params) == len(load_cases(RULES)[0]) > 400
    case = params[0].values[0]
    assert params[0].id == case.test_id
    assert check_case(case).passed


# -- rules diff ------------------------------------------------------------------------------------

SAMPLE = """\
client_id,age,tightness.iliopsoas,strength.gluteus_maximus,symptoms,activities
A1,40,2,,,
A2,40,3,5,,running
A3,40,1,,,
A4,forty,2,,,
A5,35,,3,,sprinting
"""


def _raised_tight_grade(tmp_path: Path) -> Path:
    new = shutil.copytree(RULES, tmp_path / "new", ignore=shutil.ignore_patterns("cases"))
    text = (new / "ruleset.yaml").read_text(encoding="utf-8")
    start = text.index("  tight_grade:")
    at = text.index("value: 2", start)
    (new / "ruleset.yaml").write_text(text[:at] + "value: 3" + text[at + 8 :], encoding="utf-8")
    return new


def test_rules_diff_lists_the_rows_a_change_affects(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    new = _raised_tight_grade(tmp_path)
    sample = write(tmp_path / "sample.csv", SAMPLE)
    code, out, _ = run(capsys, "rules", "diff", RULES, new, "--forms", sample)
    assert code == 1
    old_label = hipscreen.Screener(cache_size=0).ruleset_version
    assert f"old rules {old_label} " in out
    assert "new rules 1.2.0+" in out
    assert "digest" in out
    rows = [line.split()[0] for line in out.splitlines() if line.startswith("A")]
    assert rows == ["A1"]  # grade 2 is no longer tight; 3 still is, 1 never was
    assert "-tight-hip-flexors" in out
    assert "1 of 4 rows change: findings +0 -" in out
    assert "1 invalid rows not screened:" in out
    assert "A4: " in out
    code, out, _ = run(capsys, "rules", "diff", RULES, new, "--forms", sample, "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert doc["counts"]["rows_changed"] == 1
    assert doc["counts"]["rows_invalid"] == 1
    assert doc["old"]["digest"] != doc["new"]["digest"]
    assert len(doc["new"]["digest"]) == 64
    assert doc["changes"][0]["row"] == "A1"
    assert "tight-hip-flexors" in doc["changes"][0]["removed"]


def test_rules_diff_of_extra_rules_and_of_no_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sample = write(
        tmp_path / "sample.jsonl",
        "\n".join(
            json.dumps(f)
            for f in [
                {
                    "client_id": "s",
                    "tightness": {"iliopsoas": 3},
                    "strength": {"gluteus_maximus": 3},
                    "activities": ["sprinting"],
                },
                {"client_id": "w", "activities": ["walking"]},
            ]
        ),
    )
    code, out, _ = run(capsys, "rules", "diff", RULES, RULES, "--forms", sample)
    assert code == 0
    assert "the two rule sets have the same content" in out
    assert "0 of 2 rows change" in out
    code, out, _ = run(capsys, "rules", "diff", RULES, CLINIC, "--forms", sample)
    assert code == 1
    assert "+sprint-imbalance-caution" in out
    assert "+wall_drive_drill" in out


def test_row_change_ranks_referral_urgency() -> None:
    calm = hipscreen.assess({"tightness": {"iliopsoas": 3}})
    flag = hipscreen.assess({"symptoms": ["saddle_numbness"]})
    up = row_change("r", calm, flag)
    assert (up.referral, up.referral_before, up.referral_after) == ("up", None, "emergency")
    assert "possible-cauda-equina" in up.added
    assert up.exercises_removed
    down = row_change("r", flag, calm)
    assert down.referral == "down"
    assert down.changed
    assert not row_change("r", calm, calm).changed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: --forms"),
        (("--forms", "missing.csv"), "missing.csv: no such file"),
    ],
)
def test_rules_diff_usage_errors(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, _, err = run(capsys, "rules", "diff", RULES, RULES, *args)
    assert code == 2
    assert message in err


def test_rules_diff_refuses_an_unknown_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sample = write(tmp_path / "s.csv", "client_id,tightnes.iliopsoas\nA,2\n")
    code, _, err = run(capsys, "rules", "diff", RULES, RULES, "--forms", sample)
    assert code == 2
    assert "unknown column 'tightnes.iliopsoas'" in err


# -- re-screening a stored form with the rule set it names -----------------------------------------


def test_rescreen_reproduces_or_refuses_another_rule_set(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    form = write(tmp_path / "form.json", {"tightness": {"iliopsoas": 3}, "client_id": "c1"})
    stored = hipscreen.assess(json.loads(form.read_text()))
    path = write(tmp_path / "stored.json", stored.model_dump_json())
    code, out, _ = run(capsys, "rules", "rescreen", path, form)
    assert code == 0
    assert out.startswith("reproduced: the same assessment with rules 1.2.0+")
    code, _, err = run(capsys, "rules", "rescreen", path, form, "--extra-rules", CLINIC)
    assert code == 2
    assert f"screened with rules {stored.ruleset_version}" in err
    edited = stored.model_copy(update={"findings": stored.findings[1:]})
    path = write(tmp_path / "edited.json", edited.model_dump_json())
    code, out, _ = run(capsys, "rules", "rescreen", path, form)
    assert code == 1
    assert "differs from the stored assessment" in out


def test_rescreen_in_python() -> None:
    stored = hipscreen.assess(NEAR_CAUDA)
    assert rescreen(stored, NEAR_CAUDA) == stored
    clinic = hipscreen.Screener(extra_rules=[CLINIC], cache_size=0)
    with pytest.raises(RulesetMismatchError, match="re-run it with the rule-set version"):
        rescreen(stored, NEAR_CAUDA, clinic)


def test_the_new_commands_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["explain"], ["rules", "test"], ["rules", "diff"], ["rules", "rescreen"]):
        code, out, _ = run(capsys, *argv, "--help")
        assert code == 0
        assert "usage: hipscreen" in out


# -- rules schema ----------------------------------------------------------------------------------


def _validator(part: str) -> Any:
    import jsonschema

    from hipscreen._rulestools import rule_file_schemas

    schema = rule_file_schemas()[part]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    ("part", "path"),
    [
        ("ruleset", RULES / "ruleset.yaml"),
        ("catalog", RULES / "exercises.yaml"),
        ("vocabulary", RULES / "vocabulary.yaml"),
        ("tables", RULES / "tables.yaml"),
        *(("rules", path) for path in sorted((RULES / "findings").glob("*.yaml"))),
        *(("rules", path) for path in sorted((CLINIC / "findings").glob("*.yaml"))),
    ],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_every_shipped_file_meets_its_schema(part: str, path: Path) -> None:
    import yaml

    errors = list(_validator(part).iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
    assert [error.message for error in errors] == []


RULE = {"id": "r", "title": "T", "severity": "info", "summary": "S.", "source": "Test."}


@pytest.mark.parametrize(
    ("when", "bad"),
    [
        ({"grade": {"measure": "tightness", "muscle": "psoas", "at_least": 2}}, "psoas"),
        ({"grade": {"measure": "tightness", "at_lest": 2}}, "at_lest"),
        ({"grade": {"measure": "tightness"}}, "bound"),
        ({"symptom": "hip_pian"}, "hip_pian"),
        ({"all_of": []}, "empty all_of"),
        ({"symptom": "hip_pain", "activity": "running"}, "two keys"),
        ({"any_of": [{"sympton": "hip_pain"}]}, "sympton"),
        ({"finding": "Not_Kebab"}, "finding id"),
    ],
)
def test_the_rules_schema_refuses_a_broken_condition(when: dict[str, Any], bad: str) -> None:
    validator = _validator("rules")
    assert validator.is_valid({"rules": [{**RULE, "when": {"symptom": "hip_pain"}}]})
    assert not validator.is_valid({"rules": [{**RULE, "when": when}]}), bad
    escalation = {"severity": "warning", "when": when}
    doc = {"rules": [{**RULE, "when": {"symptom": "hip_pain"}, "escalate": [escalation]}]}
    assert not validator.is_valid(doc), bad


def test_rules_schema_prints_and_writes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "rules", "schema", "--file", "rules")
    assert code == 0
    assert json.loads(out)["title"] == "hipscreen rule file (findings/*.yaml)"
    code, out, _ = run(capsys, "rules", "schema")
    assert sorted(json.loads(out)) == ["catalog", "rules", "ruleset", "tables", "vocabulary"]
    code, out, _ = run(capsys, "rules", "schema", "--write", tmp_path)
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hipscreen-exercises.schema.json",
        "hipscreen-rules.schema.json",
        "hipscreen-ruleset.schema.json",
        "hipscreen-tables.schema.json",
        "hipscreen-vocabulary.schema.json",
    ]
