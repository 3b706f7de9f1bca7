"""The planner (built from tables precompiled per rule set) agrees with a reference planner.

The reference below restates the plan policy as plainly as possible, straight from the rule data
and the assessment's findings, with no tables or caches: withholds are matched against each
exercise's kind, id and properties, the easier variant is chosen from the exercise's own muscles,
doses are assembled from the catalog each time. Every recommendation (exercise, dose, reasons,
note, side) and every left-out entry, in order, must be the same.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import SYMPTOMS, forms, with_symptom

import hipscreen
from hipscreen._facts import reported_symptoms
from hipscreen._intake.form import IntakeForm, coerce_form
from hipscreen._rules.files import ExerciseSpec, WithholdSpec
from hipscreen._rules.ruleset import RuleSet
from hipscreen._rules.tables import tables
from hipscreen._vocabulary import ExerciseKind, Movement, Muscle, Severity, Side

ROOT = Path(__file__).resolve().parents[1]
CLINIC = ROOT / "tests" / "extra_rules" / "clinic"
KIND_ORDER = [
    ExerciseKind.WARM_UP,
    ExerciseKind.MOBILITY,
    ExerciseKind.STRETCH,
    ExerciseKind.STRENGTH,
    ExerciseKind.BALANCE,
]

Withhold = tuple[str, str, WithholdSpec, dict[str, str], set[str]]
Plan = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]

CONTEXT = st.fixed_dictionaries(
    {},
    optional={
        "hip_replacement": st.fixed_dictionaries(
            {"approach": st.sampled_from(["posterior", "anterior", "lateral", "unknown"])}
        ),
        "pregnancy": st.fixed_dictionaries({}, optional={"weeks": st.integers(0, 42)}),
        "osteoporosis": st.booleans(),
        "back_pain": st.fixed_dictionaries(
            {}, optional={"weeks": st.integers(0, 20), "intensity": st.integers(0, 10)}
        ),
    },
)


def reference_plan(ruleset: RuleSet, form: IntakeForm, findings: tuple[Any, ...]) -> Plan:
    """The plan the rule data implies for ``form`` with ``findings`` (most severe first)."""
    rules = {rule.id: rule.spec for rule in ruleset.rules}
    catalog = ruleset.exercises
    policy = ruleset.plan
    levels = policy.levels
    strength = list(form.grades("strength"))
    pain = [s for s in reported_symptoms(form) if s in levels.pain_symptoms]

    withholds: list[Withhold] = []
    for finding in findings:
        rule = rules[finding.id]
        exempt = set(rule.recommends)
        if finding.severity == Severity.CRITICAL:
            critical = WithholdSpec(kinds=policy.critical.withhold_kinds)
            withholds.append((finding.id, rule.title, critical, {}, exempt))
        if rule.withhold is not None or rule.swap:
            own = rule.withhold or WithholdSpec(exercises=list(rule.swap))
            withholds.append((finding.id, rule.title, own, dict(rule.swap), exempt))
        kind = rule.referral.kind if rule.referral else None
        referral = ruleset.referral_policy.get(kind) if kind else None
        if referral is not None and (referral.withhold.kinds or referral.withhold.properties):
            withholds.append((finding.id, rule.title, referral.withhold, {}, exempt))

    def blocks(withhold: Withhold, ex: ExerciseSpec) -> bool:
        _, _, spec, _, exempt = withhold
        return ex.id not in exempt and (
            ex.kind in spec.kinds
            or ex.id in spec.exercises
            or any(prop in spec.properties for prop in ex.properties)
        )

    def variant(exercise_id: str) -> tuple[ExerciseSpec, str | None]:
        spec = catalog[exercise_id]
        if spec.kind != ExerciseKind.STRENGTH:
            return spec, None
        trained = set(spec.muscles) | {Muscle(tables().group_of[m].value) for m in spec.muscles}
        graded = [(grade, path) for muscle, _, grade, path in strength if muscle in trained]
        if graded:
            grade, path = min(graded)
            allowed = levels.by_grade[grade]
            reasons = [f"{path} = {grade} allows level {allowed}"]
        else:
            allowed = levels.unassessed
            reasons = [f"strength not graded: level {allowed} until it is"]
        if pain and levels.pain_step_back:
            allowed = max(1, allowed - levels.pain_step_back)
            reasons.append(f"pain reported ({', '.join(pain)}): one level easier")
        chosen = spec
        while chosen.level > allowed and chosen.regression is not None:
            chosen = catalog[chosen.regression]
        if chosen is spec:
            return spec, None
        return chosen, f"{chosen.name} in place of {spec.name}: {'; '.join(reasons)}."

    picks: dict[str, dict[str, Any]] = {}
    excluded: dict[str, dict[str, Any]] = {}

    def add(exercise_id: str, because: str | None, emphasis: Side | None = None) -> None:
        start, note = variant(exercise_id)
        notes = [note] if note else []
        queue, tried, found = deque([start]), set(), None
        while queue and found is None:
            candidate = queue.popleft()
            if candidate.id in tried:
                continue
            tried.add(candidate.id)
            blocking = [w for w in withholds if blocks(w, candidate)]
            if not blocking:
                found = candidate
                if candidate is not start:
                    notes.append(f"{candidate.name} in place of {start.name}.")
                break
            entry = excluded.setdefault(
                candidate.id,
                {
                    "reason": f"withheld: {blocking[0][1]} ({blocking[0][0]})",
                    "because": sorted({w[0] for w in blocking}),
                },
            )
            if because and because not in entry["because"]:
                entry["because"].append(because)
            following = [candidate.regression] if candidate.regression else []
            following += [w[3][candidate.id] for w in blocking if candidate.id in w[3]]
            following += candidate.alternatives
            queue.extend(catalog[i] for i in following)
        if found is None:
            return
        pick = picks.setdefault(found.id, {"because": [], "notes": [], "emphasis": None})
        if because is not None and because not in pick["because"]:
            pick["because"].append(because)
        pick["notes"] += [n for n in notes if n not in pick["notes"]]
        if pick["emphasis"] is None and emphasis is not None and "unilateral" in found.properties:
            pick["emphasis"] = emphasis

    add(policy.warm_up, None)
    for finding in findings:
        rule = rules[finding.id]
        named = [s for s in finding.sides if s != Side.BOTH]
        emphasis = named[0] if rule.emphasise_side and len(named) == 1 else None
        for exercise_id in rule.recommends:
            add(exercise_id, finding.id, emphasis)
    if not any(f.severity == Severity.CRITICAL for f in findings):
        for movement, exercise_id in (
            (Movement.FLEXION, policy.balance.flexion),
            (Movement.EXTENSION, policy.balance.extension),
        ):
            if not any(
                catalog[i].kind == ExerciseKind.STRENGTH
                and catalog[i].movement in (movement, Movement.BOTH)
                for i in picks
            ):
                add(exercise_id, None)

    def dose(spec: ExerciseSpec) -> dict[str, Any]:
        values: dict[str, Any] = {}
        default = ruleset.dose_defaults.get(spec.kind)
        if spec.dose is not None and spec.dose.minutes is not None:
            default = None  # dosed in minutes: the kind's sets and reps do not apply
        for source in (default, spec.dose):
            if source is not None:
                values.update(source.model_dump(exclude_none=True))
        age = form.age
        for adjustment in policy.dose_adjustments:
            if adjustment.kind == spec.kind and age is not None and age >= adjustment.age_at_least:
                fields = {"hold_seconds", "sets", "reps"}
                values.update(adjustment.model_dump(include=fields, exclude_none=True))
                values["note"] = f"{values.get('note', '')} {adjustment.note}".strip()
        return hipscreen.Dose(**values).model_dump()

    ordered = sorted(picks, key=lambda i: KIND_ORDER.index(catalog[i].kind))
    recommendations = [
        (
            i,
            dose(catalog[i]),
            tuple(picks[i]["because"]),
            " ".join(picks[i]["notes"]) or None,
            picks[i]["emphasis"],
        )
        for i in ordered
    ]
    left_out = [
        (i, entry["reason"], tuple(entry["because"]))
        for i, entry in excluded.items()
        if i not in picks
    ]
    return recommendations, left_out


def planned(result: hipscreen.Assessment) -> Plan:
    recommendations = [
        (r.exercise.id, r.dose.model_dump(), r.because, r.note, r.emphasis)
        for r in result.recommendations
    ]
    left_out = [(x.exercise_id, x.reason, x.because) for x in result.excluded]
    return recommendations, left_out


def assert_plans_agree(screener: hipscreen.Screener, form: dict[str, Any]) -> None:
    result = screener.assess(form)
    expected = reference_plan(screener.ruleset, coerce_form(form), result.findings)
    assert planned(result) == expected


BUILT_IN = hipscreen.Screener(cache_size=0)
WITH_CLINIC = hipscreen.Screener(cache_size=0, extra_rules=[CLINIC])


def case_forms() -> list[dict[str, Any]]:
    """Every form of the rule cases: each rule fires, and stays quiet, at least once."""
    found = []
    for path in sorted((ROOT / "rules" / "cases").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for kind in ("fires", "quiet"):
            found += [case["form"] for case in data.get(kind) or [] if "form" in case]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("screener", [BUILT_IN, WITH_CLINIC], ids=["built-in", "clinic"])
def test_every_rule_case_is_planned_as_the_reference_plans_it(
    screener: hipscreen.Screener,
) -> None:
    forms_ = case_forms()
    assert len(forms_) > 100
    for form in forms_:
        assert_plans_agree(screener, form)


@settings(deadline=None)
@given(
    form=forms(),
    context=CONTEXT,
    symptoms=st.lists(st.sampled_from(SYMPTOMS), max_size=2),
    clinic=st.booleans(),
)
def test_generated_forms_are_planned_as_the_reference_plans_them(
    form: dict[str, Any], context: dict[str, Any], symptoms: list[str], clinic: bool
) -> None:
    form = {**form, **context}
    for symptom in symptoms:
        form = with_symptom(form, symptom)
    assert_plans_agree(WITH_CLINIC if clinic else BUILT_IN, form)


def test_the_reference_sees_swaps_and_withheld_exercises() -> None:
    """The comparison covers the hard paths: a swap note and left-out entries."""
    form = {"tightness": {"hamstrings": 3}, "pregnancy": {"weeks": 20}}
    result = BUILT_IN.assess(form)
    recommendations, left_out = reference_plan(BUILT_IN.ruleset, coerce_form(form), result.findings)
    assert any(note and "in place of" in note for _, _, _, note, _ in recommendations)
    assert left_out
    assert planned(result) == (recommendations, left_out)


def test_fast_constructors_set_what_model_construct_sets() -> None:
    """The planner's constructors give the same objects as ``model_construct``, and fall back
    to it for a model they cannot mirror."""
    from pydantic import BaseModel, Field

    from hipscreen import _plan
    from hipscreen._results import ExcludedExercise

    fast = _plan._new_excluded("x", "withheld: y (z)", ("z",))
    slow = ExcludedExercise.model_construct(
        exercise_id="x", reason="withheld: y (z)", because=("z",)
    )
    for attribute in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__"):
        assert getattr(fast, attribute) == getattr(slow, attribute)
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    assert fast.model_dump_json() == slow.model_dump_json()
    assert list(fast.__dict__) == list(slow.__dict__)

    class Aliased(BaseModel):
        a: int = Field(alias="b")

    construct = _plan._constructor(Aliased, ("a",))
    assert construct.__name__ == "construct"  # not the fast path
    assert construct(1).__dict__ == Aliased.model_construct(b=1).__dict__
