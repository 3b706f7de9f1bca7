"""The exercise plan: findings become dosed, ordered, de-duplicated recommendations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hipscreen._form import IntakeForm
from hipscreen._results import Dose, Exercise, Finding, Recommendation
from hipscreen._ruledata import ExerciseSpec, RuleSet
from hipscreen._vocabulary import ExerciseKind, Movement, Muscle

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

    def plan(self, form: IntakeForm, findings: Sequence[Finding]) -> tuple[Recommendation, ...]:
        """The ordered plan for a form whose findings are ``findings`` (most severe first)."""
        policy = self.ruleset.plan
        picks: dict[str, _Pick] = {}

        def add(exercise_id: str, because: str | None) -> None:
            spec, note = self._variant(self.ruleset.exercises[exercise_id], form)
            pick = picks.setdefault(spec.id, _Pick(spec, note=note))
            if because is not None and because not in pick.because:
                pick.because.append(because)
            if pick.note is None:
                pick.note = note

        add(policy.warm_up, None)
        for finding in findings:
            for exercise_id in self._recommends.get(finding.id, ()):
                add(exercise_id, finding.id)
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
        return tuple(
            Recommendation(
                exercise=self._exercises[p.spec.id],
                dose=self._dose(p.spec, form),
                because=tuple(p.because),
                note=p.note,
            )
            for p in ordered
        )

    def _variant(self, spec: ExerciseSpec, form: IntakeForm) -> tuple[ExerciseSpec, str | None]:
        """Step down the regression chain to the level the person's strength and pain allow."""
        if spec.kind != ExerciseKind.STRENGTH:
            return spec, None
        levels = self.ruleset.plan.levels
        relevant = set(spec.muscles) | {Muscle(m.group.value) for m in spec.muscles}
        graded = [(g, path) for muscle, _side, g, path in form.grades("strength") if muscle in relevant]
        reasons = []
        if graded:
            grade, path = min(graded)
            allowed = levels.by_grade[grade]
            reasons.append(f"{path} = {grade} allows level {allowed}")
        else:
            allowed = levels.unassessed
            reasons.append(f"strength not graded: level {allowed} until it is")
        pain = [s.value for s in form.symptoms if s in levels.pain_symptoms]
        if pain and levels.pain_step_back:
            allowed = max(1, allowed - levels.pain_step_back)
            reasons.append(f"pain reported ({', '.join(pain)}): one level easier")
        chosen = spec
        while chosen.level > allowed and chosen.regression is not None:
            chosen = self.ruleset.exercises[chosen.regression]
        if chosen is spec:
            return spec, None
        return chosen, f"{chosen.name} in place of {spec.name}: {'; '.join(reasons)}."

    def _dose(self, spec: ExerciseSpec, form: IntakeForm) -> Dose:
        values = {}
        default = self.ruleset.dose_defaults.get(spec.kind)
        for source in (default, spec.dose):
            if source is not None:
                values.update(source.model_dump(exclude_none=True))
        for adjustment in self.ruleset.plan.dose_adjustments:
            if adjustment.kind == spec.kind and form.age is not None and form.age >= adjustment.age_at_least:
                values.update(
                    adjustment.model_dump(include={"hold_seconds", "sets", "reps"}, exclude_none=True)
                )
                values["note"] = f"{values.get('note', '')} {adjustment.note}".strip()
        return Dose(**values)
