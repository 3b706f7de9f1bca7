"""The exercise plan: findings become dosed, ordered, de-duplicated recommendations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hipscreen._form import IntakeForm
from hipscreen._results import Dose, Exercise
from hipscreen._ruledata import ExerciseSpec, RuleSet
from hipscreen._vocabulary import ExerciseKind, Movement, Muscle, Side

_KIND_ORDER = [ExerciseKind.WARM_UP, ExerciseKind.MOBILITY, ExerciseKind.STRETCH, ExerciseKind.STRENGTH]


@dataclass
class _Pick:
    spec: ExerciseSpec
    because: list[str] = field(default_factory=list)
    note: str | None = None


class Planner:
    """Turns findings into a plan using the catalog and plan policy of one rule set."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._exercises = {
            ex_id: Exercise(
                id=spec.id,
                name=spec.name,
                kind=spec.kind,
                movement=spec.movement,
                muscles=tuple(m.value for m in spec.muscles),
                level=spec.level,
                instructions=spec.instructions,
            )
            for ex_id, spec in ruleset.exercises.items()
        }
        self._recommends = {rule.id: rule.spec.recommends for rule in ruleset.rules}
        self._relevant = {
            ex_id: frozenset(spec.muscles) | {Muscle(m.group.value) for m in spec.muscles}
            for ex_id, spec in ruleset.exercises.items()
        }
        self._pain_symptoms = frozenset(ruleset.plan.levels.pain_symptoms)
        # Small caches: variants and doses depend on few inputs and repeat across forms.
        self._variants: dict[Any, tuple[ExerciseSpec, str | None]] = {}
        self._doses: dict[tuple[str, tuple[int, ...]], Dose] = {}

    def plan(
        self,
        form: IntakeForm,
        findings: Sequence[Mapping[str, Any]],
        strength: Sequence[tuple[Muscle, Side, int, str]],
    ) -> list[dict[str, Any]]:
        """The ordered plan for a form whose findings are ``findings`` (most severe first).

        ``strength`` is the form's strength grades as yielded by ``IntakeForm.grades``.
        """
        policy = self.ruleset.plan
        picks: dict[str, _Pick] = {}
        pain = tuple(s.value for s in form.symptoms if s in self._pain_symptoms)

        def add(exercise_id: str, because: str | None) -> None:
            spec, note = self._variant(exercise_id, strength, pain)
            pick = picks.setdefault(spec.id, _Pick(spec, note=note))
            if because is not None and because not in pick.because:
                pick.because.append(because)
            if pick.note is None:
                pick.note = note

        add(policy.warm_up, None)
        for finding in findings:
            for exercise_id in self._recommends.get(finding["id"], ()):
                add(exercise_id, finding["id"])
        for movement, exercise_id in (
            (Movement.FLEXION, policy.balance.flexion),
            (Movement.EXTENSION, policy.balance.extension),
        ):
            if not any(
                p.spec.kind == ExerciseKind.STRENGTH and p.spec.movement in (movement, Movement.BOTH)
                for p in picks.values()
            ):
                add(exercise_id, None)

        ordered = sorted(picks.values(), key=lambda p: _KIND_ORDER.index(p.spec.kind))
        return [
            {
                "exercise": self._exercises[p.spec.id],
                "dose": self._dose(p.spec, form.age),
                "because": p.because,
                "note": p.note,
            }
            for p in ordered
        ]

    def _variant(
        self,
        exercise_id: str,
        strength: Sequence[tuple[Muscle, Side, int, str]],
        pain: tuple[str, ...],
    ) -> tuple[ExerciseSpec, str | None]:
        """Step down the regression chain to the level the person's strength and pain allow."""
        spec = self.ruleset.exercises[exercise_id]
        if spec.kind != ExerciseKind.STRENGTH:
            return spec, None
        relevant = self._relevant[exercise_id]
        graded = min(((g, path) for muscle, _side, g, path in strength if muscle in relevant),
                     default=None)
        key = (exercise_id, graded, pain)
        cached = self._variants.get(key)
        if cached is None:
            cached = self._variants[key] = self._choose(spec, graded, pain)
        return cached

    def _choose(
        self, spec: ExerciseSpec, graded: tuple[int, str] | None, pain: tuple[str, ...]
    ) -> tuple[ExerciseSpec, str | None]:
        levels = self.ruleset.plan.levels
        reasons = []
        if graded is not None:
            grade, path = graded
            allowed = levels.by_grade[grade]
            reasons.append(f"{path} = {grade} allows level {allowed}")
        else:
            allowed = levels.unassessed
            reasons.append(f"strength not graded: level {allowed} until it is")
        if pain and levels.pain_step_back:
            allowed = max(1, allowed - levels.pain_step_back)
            reasons.append(f"pain reported ({', '.join(pain)}): one level easier")
        chosen = spec
        while chosen.level > allowed and chosen.regression is not None:
            chosen = self.ruleset.exercises[chosen.regression]
        if chosen is spec:
            return spec, None
        return chosen, f"{chosen.name} in place of {spec.name}: {'; '.join(reasons)}."

    def _dose(self, spec: ExerciseSpec, age: int | None) -> Dose:
        adjustments = tuple(
            i
            for i, adj in enumerate(self.ruleset.plan.dose_adjustments)
            if adj.kind == spec.kind and age is not None and age >= adj.age_at_least
        )
        key = (spec.id, adjustments)
        dose = self._doses.get(key)
        if dose is None:
            dose = self._doses[key] = self._build_dose(spec, adjustments)
        return dose

    def _build_dose(self, spec: ExerciseSpec, adjustments: tuple[int, ...]) -> Dose:
        values: dict[str, Any] = {}
        default = self.ruleset.dose_defaults.get(spec.kind)
        for source in (default, spec.dose):
            if source is not None:
                values.update(source.model_dump(exclude_none=True))
        for index in adjustments:
            adjustment = self.ruleset.plan.dose_adjustments[index]
            values.update(
                adjustment.model_dump(include={"hold_seconds", "sets", "reps"}, exclude_none=True)
            )
            values["note"] = f"{values.get('note', '')} {adjustment.note}".strip()
        return Dose(**values)
