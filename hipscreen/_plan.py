"""The exercise plan: findings become dosed, ordered, de-duplicated recommendations."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hipscreen._form import IntakeForm
from hipscreen._results import Dose, ExcludedExercise, Exercise, Recommendation
from hipscreen._ruledata import ExerciseSpec, RuleSet, WithholdSpec
from hipscreen._vocabulary import ExerciseKind, Movement, Muscle, Severity, Side

_KIND_ORDER = [
    ExerciseKind.WARM_UP,
    ExerciseKind.MOBILITY,
    ExerciseKind.STRETCH,
    ExerciseKind.STRENGTH,
]

StrengthGrades = Sequence[tuple[Muscle, Side, int, str]]


_MAX_REMEMBERED = 4096
"""Recommendations remembered for reuse (a few hundred recur on realistic forms)."""


@dataclass
class _Pick:
    spec: ExerciseSpec
    because: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    emphasis: Side | None = None


@dataclass(frozen=True)
class _Withhold:
    finding_id: str
    title: str
    spec: WithholdSpec
    swap: Mapping[str, str]
    exempt: frozenset[str]  # what the withholding finding itself recommends

    def blocks(self, ex: ExerciseSpec) -> bool:
        return ex.id not in self.exempt and (
            ex.kind in self.spec.kinds
            or ex.id in self.spec.exercises
            or any(prop in self.spec.properties for prop in ex.properties)
        )


def _emphasis(sides: Sequence[Side]) -> Side | None:
    """The one side a finding names (left or right), or None."""
    named = [s for s in sides if s != Side.BOTH]
    return named[0] if len(named) == 1 else None


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
                properties=tuple(spec.properties),
                instructions=spec.instructions,
            )
            for ex_id, spec in ruleset.exercises.items()
        }
        self._rules = {rule.id: rule.spec for rule in ruleset.rules}
        # What a strength exercise's level depends on: the lowest strength grade among the
        # muscles it trains. Exercises training the same muscles share one such "muscle set";
        # a plan is keyed on the lowest grade per set, not on the whole form.
        relevant = {
            ex_id: frozenset(spec.muscles) | {Muscle(m.group.value) for m in spec.muscles}
            for ex_id, spec in ruleset.exercises.items()
            if spec.kind == ExerciseKind.STRENGTH
        }
        self._muscle_sets: tuple[frozenset[Muscle], ...] = tuple(dict.fromkeys(relevant.values()))
        self._set_of = {ex_id: self._muscle_sets.index(m) for ex_id, m in relevant.items()}
        self._sets_of = {
            muscle: tuple(k for k, m in enumerate(self._muscle_sets) if muscle in m)
            for muscle in Muscle
        }
        # Per finding id: whether a plan reads its sides at all (to emphasise a side).
        self._emphasises = {rule.id: rule.spec.emphasise_side for rule in ruleset.rules}
        self._pain_symptoms = frozenset(ruleset.plan.levels.pain_symptoms)
        self._critical = WithholdSpec(kinds=ruleset.plan.critical.withhold_kinds)
        # What each referring rule's kind withholds until the person is cleared (referral policy).
        self._referral_withholds: dict[str, WithholdSpec] = {}
        for rule in ruleset.rules:
            referral = rule.spec.referral
            policy = (
                ruleset.referral_policy.get(referral.kind) if referral and referral.kind else None
            )
            if policy is not None and (policy.withhold.kinds or policy.withhold.properties):
                self._referral_withholds[rule.id] = policy.withhold
        # Small caches: variants and doses depend on few inputs and repeat across forms.
        self._variants: dict[Any, tuple[ExerciseSpec, str | None]] = {}
        self._doses: dict[tuple[str, tuple[int, ...]], Dose] = {}
        self._recommendations: dict[tuple[Any, ...], Recommendation] = {}
        self._age_cuts = sorted({a.age_at_least for a in ruleset.plan.dose_adjustments})
        self._cached_plan = functools.lru_cache(maxsize=8192)(self._plan)

    def plan(
        self,
        form: IntakeForm,
        findings: Sequence[Mapping[str, Any]],
        strength: StrengthGrades,
    ) -> tuple[tuple[Recommendation, ...], tuple[ExcludedExercise, ...]]:
        """The ordered plan, and what was left out, for findings given most severe first.

        ``strength`` is the form's strength grades as yielded by ``IntakeForm.grades``.
        The plan depends only on which findings there are, which are critical and the side each
        emphasises, the lowest strength grade (and its field) per muscle set, reported pain and
        age band, so it is cached on exactly those (an exact cache).
        """
        emphasises = self._emphasises
        key = (
            tuple(
                (
                    f["id"],
                    f["severity"] == Severity.CRITICAL,
                    _emphasis(f["sides"]) if emphasises[f["id"]] else None,
                )
                for f in findings
            ),
            self._lowest(strength),
            tuple(s for s in form.reported_symptoms() if s in self._pain_symptoms),
            None if form.age is None else tuple(form.age >= a for a in self._age_cuts),
        )
        return self._cached_plan(key)

    def _lowest(self, strength: StrengthGrades) -> tuple[tuple[int, str] | None, ...]:
        """The lowest strength grade, with its field, per muscle set (None: none graded)."""
        lowest: list[tuple[int, str] | None] = [None] * len(self._muscle_sets)
        sets_of = self._sets_of
        for muscle, _side, grade, path in strength:
            for k in sets_of.get(muscle, ()):
                current = lowest[k]
                if current is None or (grade, path) < current:
                    lowest[k] = (grade, path)
        return tuple(lowest)

    def _plan(
        self, key: tuple[Any, ...]
    ) -> tuple[tuple[Recommendation, ...], tuple[ExcludedExercise, ...]]:
        finding_keys, lowest, pain, age_flags = key
        reached = (
            set()
            if age_flags is None
            else {cut for cut, ok in zip(self._age_cuts, age_flags, strict=True) if ok}
        )
        findings = [
            {"id": i, "critical": critical, "emphasis": emphasis}
            for i, critical, emphasis in finding_keys
        ]
        policy = self.ruleset.plan
        withholds = self._withholds(findings)
        picks: dict[str, _Pick] = {}
        excluded: dict[str, dict[str, Any]] = {}

        def add(exercise_id: str, because: str | None, emphasis: Side | None = None) -> None:
            variant, note = self._variant(exercise_id, lowest, pain)
            notes = [note] if note else []
            spec = self._allowed(variant, withholds, excluded, notes, because)
            if spec is None:
                return
            pick = picks.setdefault(spec.id, _Pick(spec))
            if because is not None and because not in pick.because:
                pick.because.append(because)
            pick.notes += [n for n in notes if n not in pick.notes]
            if pick.emphasis is None and emphasis is not None and "unilateral" in spec.properties:
                pick.emphasis = emphasis

        add(policy.warm_up, None)
        for finding in findings:
            rule = self._rules[finding["id"]]
            for exercise_id in rule.recommends:
                add(exercise_id, finding["id"], finding["emphasis"])
        if not any(f["critical"] for f in findings):
            # The article: train both flexion and extension for muscular balance.
            for movement, exercise_id in (
                (Movement.FLEXION, policy.balance.flexion),
                (Movement.EXTENSION, policy.balance.extension),
            ):
                if not any(
                    p.spec.kind == ExerciseKind.STRENGTH
                    and p.spec.movement in (movement, Movement.BOTH)
                    for p in picks.values()
                ):
                    add(exercise_id, None)

        ordered = sorted(picks.values(), key=lambda p: _KIND_ORDER.index(p.spec.kind))
        recommendations = tuple(
            self._recommendation(
                p.spec.id,
                self._dose(p.spec, reached),
                tuple(p.because),
                " ".join(p.notes) or None,
                p.emphasis,
            )
            for p in ordered
        )
        left_out = tuple(
            ExcludedExercise.model_construct(
                exercise_id=x["exercise_id"], reason=x["reason"], because=tuple(x["because"])
            )
            for x in excluded.values()
            if x["exercise_id"] not in picks
        )
        return recommendations, left_out

    def _recommendation(
        self,
        exercise_id: str,
        dose: Dose,
        because: tuple[str, ...],
        note: str | None,
        emphasis: Side | None,
    ) -> Recommendation:
        """One recommendation; the same one (they are immutable) whenever it recurs."""
        key = (exercise_id, id(dose), because, note, emphasis)
        made = self._recommendations.get(key)
        if made is None:
            if len(self._recommendations) >= _MAX_REMEMBERED:
                self._recommendations.clear()
            # Built from parts that are already valid (catalog models, cached doses, finding
            # ids, sides): constructing it skips a second validation.
            made = self._recommendations[key] = Recommendation.model_construct(
                exercise=self._exercises[exercise_id],
                dose=dose,
                because=because,
                note=note,
                emphasis=emphasis,
            )
        return made

    def _withholds(self, findings: Sequence[Mapping[str, Any]]) -> list[_Withhold]:
        withholds = []
        for finding in findings:
            rule = self._rules[finding["id"]]
            exempt = frozenset(rule.recommends)
            if finding["critical"]:
                withholds.append(_Withhold(rule.id, rule.title, self._critical, {}, exempt))
            if rule.withhold is not None or rule.swap:
                spec = rule.withhold or WithholdSpec(exercises=list(rule.swap))
                withholds.append(_Withhold(rule.id, rule.title, spec, rule.swap, exempt))
            until_cleared = self._referral_withholds.get(rule.id)
            if until_cleared is not None:
                withholds.append(_Withhold(rule.id, rule.title, until_cleared, {}, exempt))
        return withholds

    def _allowed(
        self,
        spec: ExerciseSpec,
        withholds: Sequence[_Withhold],
        excluded: dict[str, dict[str, Any]],
        notes: list[str],
        because: str | None,
    ) -> ExerciseSpec | None:
        """The exercise itself or, when a finding withholds it, the first safe replacement that
        trains the same thing: an easier variant, the withholding rule's swap, or one of the
        catalog's alternatives (searched in that order, breadth first). Every withheld candidate
        is recorded in ``excluded``. None when nothing safe is left."""
        queue: deque[ExerciseSpec] = deque([spec])
        tried: set[str] = set()
        while queue:
            candidate = queue.popleft()
            if candidate.id in tried:
                continue
            tried.add(candidate.id)
            blocking = [w for w in withholds if w.blocks(candidate)]
            if not blocking:
                if candidate is not spec:
                    notes.append(f"{candidate.name} in place of {spec.name}.")
                return candidate
            first = blocking[0]
            reason = f"withheld: {first.title} ({first.finding_id})"
            record = excluded.setdefault(
                candidate.id,
                {
                    "exercise_id": candidate.id,
                    "reason": reason,
                    "because": sorted({w.finding_id for w in blocking}),
                },
            )
            if because and because not in record["because"]:
                record["because"] = [*record["because"], because]
            following = [candidate.regression] if candidate.regression is not None else []
            following += [w.swap[candidate.id] for w in blocking if candidate.id in w.swap]
            following += candidate.alternatives
            queue.extend(self.ruleset.exercises[ex_id] for ex_id in following)
        return None

    def _variant(
        self,
        exercise_id: str,
        lowest: tuple[tuple[int, str] | None, ...],
        pain: tuple[str, ...],
    ) -> tuple[ExerciseSpec, str | None]:
        """Step down the regression chain to the level the person's strength and pain allow
        (``lowest``: the lowest strength grade and its field per muscle set)."""
        spec = self.ruleset.exercises[exercise_id]
        if spec.kind != ExerciseKind.STRENGTH:
            return spec, None
        graded = lowest[self._set_of[exercise_id]]
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
            reasons.append(f"pain reported ({', '.join(map(str, pain))}): one level easier")
        chosen = spec
        while chosen.level > allowed and chosen.regression is not None:
            chosen = self.ruleset.exercises[chosen.regression]
        if chosen is spec:
            return spec, None
        return chosen, f"{chosen.name} in place of {spec.name}: {'; '.join(reasons)}."

    def _dose(self, spec: ExerciseSpec, ages_reached: set[int]) -> Dose:
        adjustments = tuple(
            i
            for i, adj in enumerate(self.ruleset.plan.dose_adjustments)
            if adj.kind == spec.kind and adj.age_at_least in ages_reached
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
