"""The condition grammar as typed models (`hipscreen._rules.conditions`): the loader and the JSON
Schema come from the same models, their messages name the path, the value and what is allowed, and
the committed schema files and the shipped rule files' modelines stay current."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import conditions

from hipscreen._rules.atoms import AllOf, AnyOf, Atom, Condition
from hipscreen._rules.conditions import (
    ATOM_KEYS,
    ATOM_KINDS,
    CONDITION_KEYS,
    ConditionContext,
    condition_json_schema,
    parse_condition,
)
from hipscreen._rulestools import (
    RULE_SCHEMA_DIR,
    SCHEMA_FILES,
    render_rule_schema_files,
    rule_file_schemas,
)

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / RULE_SCHEMA_DIR
MODELINE = f"# yaml-language-server: $schema=../../{RULE_SCHEMA_DIR}/{SCHEMA_FILES['rules']}"


class _Threshold:
    def __init__(self, value: float) -> None:
        self.value = value


CONTEXT = ConditionContext(
    thresholds={"tight_grade": _Threshold(2), "weak_grade": _Threshold(2)},
    rule_ids=["tight-hip-flexors", "weak-hip-flexors"],
    instruments={"pain_nrs": ("none", "mild", "moderate", "severe")},
)


def _problems(raw: Any, context: ConditionContext = CONTEXT) -> dict[str, str]:
    condition, problems = parse_condition(raw, "when", context)
    assert (condition is None) == bool(problems)
    return dict(problems)


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = condition_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# -- the committed schemas and the modelines ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES.values()))
def test_committed_rule_schemas_are_current(name: str) -> None:
    path = COMMITTED / name
    regenerate = f"regenerate with `hipscreen rules schema --write {RULE_SCHEMA_DIR}`"
    assert path.is_file(), f"{RULE_SCHEMA_DIR}/{name} is missing: {regenerate}"
    assert path.read_text(encoding="utf-8") == render_rule_schema_files()[name], regenerate


@pytest.mark.parametrize(
    "path", sorted((ROOT / "rules" / "findings").glob("*.yaml")), ids=lambda p: p.name
)
def test_shipped_rule_files_start_with_the_schema_modeline(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == MODELINE
    target = (path.parent / first.split("$schema=", 1)[1]).resolve()
    assert target == (COMMITTED / SCHEMA_FILES["rules"]).resolve()
    assert target.is_file()


def test_the_condition_schema_is_the_union_of_the_models() -> None:
    defs = rule_file_schemas()["rules"]["$defs"]
    refs = [branch["$ref"].rsplit("/", 1)[1] for branch in defs["Condition"]["oneOf"]]
    assert refs == ["AllOfCondition", "AnyOfCondition", *(k.__name__ for k in ATOM_KINDS)]
    for kind in ATOM_KINDS:
        (key,) = defs[kind.__name__]["properties"]
        assert key == kind.kind
        if kind.spec is not None:
            assert set(defs[kind.spec.__name__]["properties"]) == ATOM_KEYS[kind.kind]
    assert defs["GradeAtom"]["properties"]["muscle"]["$ref"] == "#/$defs/Muscle"  # not nullable
    assert "pain_nrs" in defs["ScoreAtom"]["properties"]["instrument"]["enum"]
    assert ["all_of", "any_of", *(k.kind for k in ATOM_KINDS)] == CONDITION_KEYS


# -- the loader's messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        ({"grade": {"at_least": 2}}, "when.grade.measure", ["grade needs measure", "tightness"]),
        ({"grade": "tight"}, "when.grade", ["grade needs a mapping", "'tight'"]),
        (
            {"grade": {"measure": "tightness", "at_leats": 2}},
            "when.grade.at_leats",
            ["unknown key 'at_leats'", "did you mean 'at_least'", "allowed: at_least, at_most"],
        ),
        ({"grade": {"measure": "tightness"}}, "when.grade", ["at least one of at_least, at_most"]),
        (
            {
                "grade": {
                    "measure": "tightness",
                    "muscle": "iliopsoas",
                    "group": "hip_flexors",
                    "at_least": 1,
                }
            },
            "when.grade",
            ["either muscle or group"],
        ),
        (
            {"grade": {"measure": "strength", "length_tested": True, "at_least": 1}},
            "when.grade.length_tested",
            ["only applies to measure: tightness"],
        ),
        (
            {"test": {"name": "straight_leg_raise", "leg_pain": "yes"}},
            "when.test.leg_pain",
            ["true or false", "'yes'"],
        ),
        ({"age": {"at_least": True}}, "when.age.at_least", ["number or a threshold name"]),
        ({"age": {"at_least": None}}, "when.age.at_least", ["(got None)"]),  # null is not absent
        (
            {"grade": {"measure": "tightness", "side": None, "at_least": 1}},
            "when.grade.side",
            ["unknown side None", "allowed: left, right"],
        ),
        ({"age": {"at_least": 1.0001}}, "when.age.at_least", ["3 decimal places"]),
        (
            {"rom": {"motion": "hip_flexion", "method": ["goniometer", "tape"], "below": 100}},
            "when.rom.method.1",
            ["unknown method 'tape'", "allowed: goniometer"],
        ),
        ({"symptom": []}, "when.symptom", ["needs at least one symptom"]),
        ({"symptom": "hip_pian"}, "when.symptom", ["did you mean 'hip_pain'"]),
        ({"context": "pregnant"}, "when.context.name", ["unknown context item 'pregnant'"]),
        ({"context": ["pregnancy", "x"]}, "when.context.1", ["unknown context 'x'"]),
        (
            {"score": {"instrument": "pain_nrs", "band": "mild", "at_least": 3}},
            "when.score",
            ["either band or bounds"],
        ),
        ({"score": {"instrument": "pain_nrs"}}, "when.score", ["at least one of at_least"]),
        (
            {"score": {"instrument": "pain_nrs", "band": "severer"}},
            "when.score.band",
            ["unknown pain_nrs band 'severer'", "did you mean 'severe'", "allowed: none, mild"],
        ),
        (
            {"score": {"instrument": "pain_nr", "band": "mild"}},
            "when.score.instrument",
            ["unknown instrument 'pain_nr'", "did you mean 'pain_nrs'"],
        ),
        ({"finding": "tight-hip-flexor"}, "when.finding", ["did you mean 'tight-hip-flexors'"]),
        ({"any_of": []}, "when.any_of", ["non-empty list of conditions"]),
        ({"all_of": "x"}, "when.all_of", ["non-empty list of conditions"]),
        ([{"symptom": "fever"}], "when", ["exactly one key"]),
        (
            {"any_of": [{"symptom": "fever"}, {"sympton": "chills"}]},
            "when.any_of.1",
            ["unknown condition 'sympton'", "did you mean 'symptom'", "allowed: all_of, any_of"],
        ),
    ],
)
def test_each_problem_names_its_path_value_and_what_is_allowed(
    raw: Any, path: str, words: list[str]
) -> None:
    problems = _problems(raw)
    assert list(problems) == [path], problems
    missing = [word for word in words if word not in problems[path]]
    assert missing == [], problems[path]


def test_every_problem_of_a_condition_is_reported_at_once() -> None:
    raw = {
        "all_of": [
            {"grade": {"measure": "tightnes", "muscle": "psoas", "at_least": "tigth_grade"}},
            {"symptom": ["fever", "chils"]},
            {"finding": "nope"},
        ]
    }
    assert sorted(_problems(raw)) == [
        "when.all_of.0.grade.at_least",
        "when.all_of.0.grade.measure",
        "when.all_of.0.grade.muscle",
        "when.all_of.1.symptom.1",
        "when.all_of.2.finding",
    ]


def test_names_that_depend_on_rule_data_are_checked_only_with_a_context() -> None:
    raw = {
        "all_of": [
            {"grade": {"measure": "tightness", "at_least": "any_name"}},
            {"finding": "any-rule"},
            {"score": {"instrument": "pain_nrs", "band": "x"}},
        ]
    }
    assert len(_problems(raw)) == 3
    condition, problems = parse_condition(raw, "when", ConditionContext())
    assert problems == []
    assert isinstance(condition, AllOf)


def test_a_threshold_reported_broken_elsewhere_adds_no_problem_here() -> None:
    context = ConditionContext(thresholds={"bad": _Threshold(float("nan"))})
    condition, problems = parse_condition(
        {"grade": {"measure": "tightness", "at_least": "bad"}}, "when", context
    )
    assert (condition, problems) == (None, [])


def test_threshold_names_resolve_and_numbers_keep_their_type() -> None:
    condition, _ = parse_condition(
        {
            "any_of": [
                {"grade": {"measure": "tightness", "at_least": "tight_grade"}},
                {"rom": {"motion": "hip_extension", "below": 7.5, "method": "goniometer"}},
            ]
        },
        "when",
        CONTEXT,
    )
    assert condition == AnyOf(
        (
            Atom("grade", (("measure", "tightness"),), at_least=2, describe="≥ 2 (tight_grade)"),
            Atom(
                "rom",
                (("motion", "hip_extension"),),
                one_of=("method", ("goniometer",)),
                below=7.5,
                describe="< 7.5° (goniometer)",
            ),
        )
    )
    assert isinstance(condition.items[1], Atom)
    assert type(condition.items[1].below) is float
    assert type(condition.items[0].at_least) is int  # type: ignore[union-attr]


# -- the loader and the schema agree ---------------------------------------------------------------


def _leaves(raw: Any) -> int:
    (key, value), *_ = raw.items()
    return sum(_leaves(item) for item in value) if key in ("all_of", "any_of") else 1


def _atoms(condition: Condition) -> int:
    if isinstance(condition, Atom):
        return 1
    return sum(_atoms(item) for item in condition.items)


BROKEN = [  # (atom, the path under it the loader names)
    ({"grade": {"measure": "tightness", "at_least": 1, "colour": "red"}}, "grade.colour"),
    ({"grade": {"measure": "tightness", "muscle": "psoas", "at_least": 1}}, "grade.muscle"),
    ({"grade": {"measure": "tightness"}}, "grade"),
    ({"rom": {"motion": "hip_rotation", "below": 1}}, "rom.motion"),
    ({"symptom": "back_ache"}, "symptom"),
    ({"activity": []}, "activity"),
    ({"context": {"name": "pregnancy", "above": 3}}, "context.above"),
    ({"sign": "x"}, "sign"),
    ({"unmeasured": ["hip_flexion", "knee"]}, "unmeasured.1"),
    ({"test": {"name": "thomas", "at_least": 1}}, "test.name"),
    ({"asymmetry": {"measure": "rom"}}, "asymmetry"),
    ({"score": {"instrument": "odi", "band": "mild"}}, "score.instrument"),
    ({"age": 40}, "age"),
    ({"symptom": "fever", "activity": "running"}, ""),
    ({"none_of": [{"symptom": "fever"}]}, ""),
    ({"all_of": []}, "all_of"),
]


@pytest.mark.slow
@settings(deadline=None)
@given(conditions(finding_ids=("tight-hip-flexors",)), st.data())
def test_the_loader_and_the_schema_accept_and_refuse_the_same_conditions(
    raw: dict[str, Any], data: st.DataObject
) -> None:
    validator = _validator()
    condition, problems = parse_condition(raw, "when", CONTEXT)
    assert problems == []
    assert condition is not None
    assert _atoms(condition) == _leaves(raw)
    assert list(validator.iter_errors(raw)) == []

    bad, under = data.draw(st.sampled_from(BROKEN))
    broken = {"any_of": [raw, bad]}
    condition, problems = parse_condition(broken, "when", CONTEXT)
    assert condition is None
    assert [path for path, _ in problems] == [".".join(p for p in ("when.any_of.1", under) if p)]
    assert not validator.is_valid(broken)
