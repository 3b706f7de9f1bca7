"""The clinical tables are data (rules/tables.yaml), checked at load and named by the digest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from oracle import CONCERN_IS_LOW, LENGTH_TESTS

import hipscreen
from hipscreen._errors import RuleDataError
from hipscreen._intake.form import IntakeForm
from hipscreen._rules import loader
from hipscreen._rules.builtin import builtin_rules_dir
from hipscreen._rules.tables import TABLES_FILE, TablesFile, load_tables, tables
from hipscreen._vocabulary import Muscle, MuscleGroup, Symptom

BUILT_IN = builtin_rules_dir() / TABLES_FILE


def _raw() -> dict:
    data = yaml.safe_load(BUILT_IN.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / TABLES_FILE
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_every_table_names_its_source() -> None:
    data = tables().data
    for name in TablesFile.model_fields:
        assert getattr(data, name).source.strip(), name


def test_the_built_in_tables_read_as_the_code_uses_them() -> None:
    t = tables()
    assert t.group_of[Muscle.ILIOPSOAS] is MuscleGroup.HIP_FLEXORS
    assert t.group_of[Muscle.ADDUCTOR_MAGNUS] is MuscleGroup.HIP_EXTENSORS
    assert t.length_tests[Muscle.HAMSTRINGS] == {
        "straight_leg_raise",
        "active_knee_extension_deficit",
    }
    assert Muscle.GLUTEUS_MAXIMUS not in t.length_tests  # no length test on the form
    assert t.concern_is_low["thomas_hip_angle"] is False
    assert Symptom.VAGINAL_BLEEDING in t.pregnancy_only_symptoms
    assert Symptom.LOWER_BACK_PAIN not in t.pregnancy_only_symptoms


def test_the_explanation_evaluator_keeps_its_own_copies_and_they_agree() -> None:
    # The evaluator (tests/oracle.py) checks the engine path, so it keeps its own copies of these
    # two tables; a change to the data must be made there too, on purpose.
    assert tables().concern_is_low == CONCERN_IS_LOW
    assert {m: frozenset(ts) for m, ts in LENGTH_TESTS.items()} == {
        m.value: ts for m, ts in tables().length_tests.items()
    }


def test_every_safety_question_is_a_tri_state_form_field() -> None:
    for field in tables().not_assessed.safety_questions:
        assert field in IntakeForm.model_fields, field
        assert getattr(IntakeForm(), field) is None, field  # blank is its own answer


def test_not_assessed_wording_comes_from_the_table() -> None:
    listed = hipscreen.assess({}).not_assessed
    wording = tables().not_assessed
    assert listed[0] == wording.not_graded.format(measure="tightness", group="hip_flexors")
    assert listed[-1] == wording.red_flag_questions
    for text in wording.safety_questions.values():
        assert text in listed
    for entry in wording.length_tests:
        assert entry.text in listed


def test_bad_tables_report_every_problem_with_file_field_and_allowed(tmp_path: Path) -> None:
    data = _raw()
    data["muscle_groups"]["entries"]["psoas"] = "hip_flexors"
    data["length_tests"]["entries"]["hamstrings"] = ["straight_leg_rise"]
    data["pregnancy_only_symptoms"]["entries"].append("morning_sickness")
    del data["concern_is_low"]["source"]
    with pytest.raises(RuleDataError) as caught:
        load_tables(_write(tmp_path, data))
    problems = caught.value.problems
    fields = {p.field for p in problems}
    assert "muscle_groups.entries.psoas.[key]" in fields
    assert "length_tests.entries.hamstrings.0" in fields
    assert "pregnancy_only_symptoms.entries.4" in fields
    assert "concern_is_low.source" in fields
    assert all(p.file.endswith(TABLES_FILE) for p in problems)
    text = str(caught.value)
    for name in ("'iliopsoas'", "'straight_leg_raise'"):  # the allowed values
        assert name in text
    for name in ("got 'psoas'", "got 'morning_sickness'"):  # the values given
        assert name in text


def test_a_table_missing_an_entry_is_refused(tmp_path: Path) -> None:
    data = _raw()
    del data["muscle_groups"]["entries"]["sartorius"]
    del data["concern_is_low"]["entries"]["hip_flexion"]
    with pytest.raises(RuleDataError) as caught:
        load_tables(_write(tmp_path, data))
    messages = {p.field: p.message for p in caught.value.problems}
    assert "sartorius" in messages["muscle_groups.entries"]
    assert "hip_flexion" in messages["concern_is_low.entries"]


def test_the_wording_must_keep_its_placeholders(tmp_path: Path) -> None:
    data = _raw()
    data["not_assessed"]["not_measured"] = "measured motion"
    with pytest.raises(RuleDataError, match=r"not_assessed\.not_measured"):
        load_tables(_write(tmp_path, data))


def test_an_oversized_or_broken_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / TABLES_FILE
    path.write_text("muscle_groups: [\n", encoding="utf-8")
    with pytest.raises(RuleDataError, match="not valid YAML"):
        load_tables(path)
    path.write_text("#" * 600_000, encoding="utf-8")
    with pytest.raises(RuleDataError, match="larger than"):
        load_tables(path)


def test_the_rule_set_digest_names_the_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = loader.load_ruleset().digest
    copy = tmp_path / "rules"
    shutil.copytree(builtin_rules_dir(), copy)
    with (copy / TABLES_FILE).open("a", encoding="utf-8") as file:
        file.write("# an edit\n")
    monkeypatch.setattr(loader, "builtin_rules_dir", lambda: copy)
    assert loader.load_ruleset(copy).digest != before


def test_the_file_names_its_json_schema_and_meets_it() -> None:
    import jsonschema

    from hipscreen._rulestools import RULE_SCHEMA_DIR, SCHEMA_FILES, rule_file_schemas

    first = BUILT_IN.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# yaml-language-server: $schema=../{RULE_SCHEMA_DIR}/{SCHEMA_FILES['tables']}"
    validator = jsonschema.Draft202012Validator(rule_file_schemas()["tables"])
    assert [e.message for e in validator.iter_errors(_raw())] == []
    bad = _raw()
    bad["muscle_groups"]["entries"]["psoas"] = "hip_flexors"
    assert list(validator.iter_errors(bad))  # the editor flags what the loader refuses
