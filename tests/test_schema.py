"""The JSON contract: `schema()` equals the committed copies and describes real input and output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from strategies import random_forms

import hipscreen
from hipscreen._schema import SCHEMA_FILES, render_schema_files, schema, write_schema_files

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "schema"
EXAMPLE_FORMS = sorted((ROOT / "examples" / "forms").glob("*.json"))
POOL = random_forms(200, seed=31)

REGENERATE = (
    "the public JSON contract changed: if that is intended, regenerate the committed schemas with "
    "`hipscreen schema --write docs/schema` (or `python -m hipscreen schema --write docs/schema`), "
    "review the diff, commit it and note the change in CHANGELOG.md"
)


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_committed_schema_is_current(name: str) -> None:
    """An accidental change of the input or output models fails here, naming the file."""
    path = COMMITTED / name
    assert path.is_file(), f"docs/schema/{name} is missing: {REGENERATE}"
    committed = path.read_text(encoding="utf-8")
    assert committed == render_schema_files()[name], f"docs/schema/{name} is stale: {REGENERATE}"


def test_schema_has_both_parts_and_each_part_alone() -> None:
    both = schema()
    assert sorted(both) == ["input", "output"]
    assert both["input"] == schema("input")
    assert both["output"] == schema("output")
    assert schema("input")["title"] == "IntakeForm"
    assert schema("output")["title"] == "Assessment"


def test_schema_rejects_an_unknown_part() -> None:
    with pytest.raises(ValueError, match="'input', 'output'"):
        schema("inputs")  # type: ignore[arg-type]


def test_schema_is_a_fresh_copy_each_time() -> None:
    first = schema("input")
    first["title"] = "changed"
    assert schema("input")["title"] == "IntakeForm"


def test_schema_does_not_depend_on_the_rules() -> None:
    """Thresholds and extra rules change results, never the shape of the contract."""
    before = render_schema_files()
    hipscreen.Screener(thresholds={"weak_grade": 4})
    assert render_schema_files() == before


def test_write_schema_files_writes_what_the_test_compares(tmp_path: Path) -> None:
    written = write_schema_files(tmp_path / "schema")
    assert sorted(p.name for p in written) == sorted(SCHEMA_FILES)
    for path in written:
        assert path.read_text(encoding="utf-8") == render_schema_files()[path.name]


@pytest.mark.parametrize("part", ["input", "output"])
def test_schema_is_valid_json_schema_2020_12(part: str) -> None:
    body = schema(part)  # type: ignore[arg-type]
    assert body["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    _validator_class().check_schema(body)


def _validator_class() -> Any:
    try:
        import jsonschema
    except ImportError:
        pytest.fail("jsonschema is not installed: run `pip install -e '.[dev]'`")
    return jsonschema.Draft202012Validator


def _errors(part: str, instance: Any) -> list[str]:
    validator = _validator_class()(schema(part))  # type: ignore[arg-type]
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


@pytest.mark.slow
def test_every_assessment_matches_the_output_schema() -> None:
    forms = [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLE_FORMS] + POOL
    forms.append({"symptoms": ["saddle_numbness"], "strength": {"hip_extensors": 2}})  # referral
    for form in forms:
        output = json.loads(hipscreen.assess(form).model_dump_json())
        assert _errors("output", output) == [], form


def test_input_schema_refuses_unknown_keys_and_names() -> None:
    assert _errors("input", {"tightness": {"iliopsoas": 2}}) == []
    assert _errors("input", {"colour": "blue"})
    assert _errors("input", {"tightness": {"psoas": 2}})
    assert _errors("input", {"symptoms": ["back_ache"]})


def _lowercase_labels(form: dict[str, Any]) -> dict[str, Any]:
    """Grade labels as the schema lists them (hipscreen also takes them in any case)."""

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return value.lower()
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    return {k: fix(v) if k in ("tightness", "strength") else v for k, v in form.items()}


@pytest.mark.slow
def test_every_valid_form_matches_the_input_schema() -> None:
    forms = [json.loads(p.read_text(encoding="utf-8")) for p in EXAMPLE_FORMS] + POOL
    for form in forms:
        form = _lowercase_labels(form)
        hipscreen.IntakeForm.model_validate(form)  # valid for hipscreen…
        assert _errors("input", form) == [], form  # …so valid for the schema


@pytest.mark.parametrize(
    "sided",
    [{}, {"left": None}, {"right": None}, {"left": None, "right": None}],
    ids=["empty", "left-null", "right-null", "both-null"],
)
def test_input_schema_refuses_a_per_side_value_without_a_side(sided: dict[str, Any]) -> None:
    # hipscreen refuses these ("needs 'left', 'right' or both"): so must the schema.
    for form in (
        {"tightness": {"iliopsoas": sided}},
        {"strength": {"gluteus_maximus": sided}},
        {"rom": {"hip_extension": sided}},
        {"thomas_test": {"hip_angle": sided}},
    ):
        with pytest.raises(ValueError, match="'left', 'right' or both"):
            hipscreen.IntakeForm.model_validate(form)
        assert _errors("input", form), form
    for good in ({"left": 2}, {"right": 0}, {"left": None, "right": 1}):
        form = {"tightness": {"iliopsoas": good}}
        hipscreen.IntakeForm.model_validate(form)
        assert _errors("input", form) == [], form


def test_input_schema_refuses_a_grade_out_of_range() -> None:
    assert _errors("input", {"tightness": {"iliopsoas": 7}})
    assert _errors("input", {"strength": {"gluteus_maximus": {"left": 6}}})


def test_model_descriptions_are_docstring_summaries() -> None:
    """Editing a model's Args or Examples must not look like a change of the JSON contract."""
    for part in ("input", "output"):
        body = schema(part)  # type: ignore[arg-type]
        for model in (body, *body["$defs"].values()):
            assert "\n\n" not in model.get("description", ""), model.get("title")
            assert ">>>" not in model.get("description", ""), model.get("title")
