"""The exercise plan: findings become dosed, ordered, de-duplicated recommendations."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel

from hipscreen._facts import reported_symptoms
from hipscreen._intake.form import IntakeForm
from hipscreen._results import Dose, ExcludedExercise, Exercise, Recommendation
from hipscreen._rules.files import ExerciseSpec, WithholdSpec
from hipscreen._rules.ruleset import RuleSet
from hipscreen._rules.tables import tables
from hipscreen._vocabulary import ExerciseKind, Movement, Muscle, Severity, Side

_M = TypeVar("_M", bound=BaseModel)

_KIND_ORDER = [
    ExerciseKind.WARM_UP,
    ExerciseKind.MOBILITY,
    ExerciseKind.STRETCH,
    ExerciseKind.STRENGTH,
    ExerciseKind.BALANCE,
]

_CRITICAL = Severity.CRITICAL
_BOTH = Side.BOTH

StrengthGrades = Sequence[tuple[Muscle, Side, int, str]]


class PlanFinding(Protocol):
    """What a plan reads of a finding (the screen's typed `Found` records)."""

    @property
    def id(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def sides(self) -> Sequence[Side]: ...


FindingKey = tuple[str, bool, Side | None]
"""What a plan reads of one finding: its id, whether it is critical, the side it emphasises."""

_MAX_REMEMBERED = 4096
"""Recommendations (and left-out entries) remembered for reuse (a few hundred recur on realistic
forms)."""


class _Withhold(NamedTuple):
    """What one finding takes out of the plan, resolved against the catalog once per rule set."""

    finding_id: str
    title: str
    blocked: frozenset[str]
    """The catalog's exercises it withholds, less what the withholding finding recommends."""
    swap: Mapping[str, str]


@dataclass(slots=True)
class _Left:
    """One withheld exercise: why (the first withholding finding) and every finding involved."""

    reason: str
    because: list[str]


def _constructor(cls: type[_M], names: tuple[str, ...]) -> Callable[..., _M]:
    """``cls.model_construct`` for values given positionally, one per field in ``names``, cheaper.

    It sets what pydantic's ``model_construct`` sets for a model given every field by name
    (the values, every field as set, no extra, no private attributes). Where the model is not
    that simple (other fields, aliases, private attributes, extra allowed, a post-init hook),
    it is ``model_construct`` itself.
    """
    fields = cls.__pydantic_fields__
    if (
        tuple(fields) != names
        or any(f.alias is not None or f.validation_alias is not None for f in fields.values())
        or cls.__private_attributes__
        or cls.__pydantic_post_init__
        or cls.__pydantic_root_model__
        or cls.model_config.get("extra") == "allow"
    ):

        def construct(*values: Any) -> _M:
            return cls.model_construct(**dict(zip(names, values, strict=True)))

        return construct
    new = cls.__new__
    set_attribute = object.__setattr__

    def construct_fast(*values: Any) -> _M:
        made = new(cls)
        set_attribute(made, "__dict__", dict(zip(names, values, strict=True)))
        set_attribute(made, "__pydantic_fields_set__", set(names))
        set_attribute(made, "__pydantic_extra__", None)
        set_attribute(made, "__pydantic_private__", None)
        return made

    return construct_fast


_new_recommendation = _constructor(
    Recommendation, ("exercise", "dose", "because", "note", "emphasis")
)
_new_excluded = _constructor(ExcludedExercise, ("exercise_id", "reason", "because"))


def _emphasis(sides: Sequence[Side]) -> Side | None:
    """The one side a finding names (left or right), or None."""
    named = [s for s in sides if s != _BOTH]
    return named[0] if len(named) == 1 else None


def _blocked(spec: WithholdSpec, exempt: frozenset[str], ruleset: RuleSet) -> frozenset[str]:
    """The catalog's exercises ``spec`` withholds (by kind, id or property), less ``exempt``."""
    kinds, ids, properties = set(spec.kinds), set(spec.exercises), set(spec.properties)
    return frozenset(
        ex.id
        for ex in ruleset.exercises.values()
        if ex.id not in exempt
        and (ex.kind in kinds or ex.id in ids or not properties.isdisjoint(ex.properties))
    )


class Planner:
    """Turns findings into a plan using the catalog and plan policy of one rule set.

    Everything a plan needs that depends only on the rule set (what each finding withholds, as
    sets of exercise ids; each exercise's kind rank, the movements it trains) is resolved here
    once, so building a plan is mostly set membership and dict look-ups.
    """

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
        group_of = tables().group_of
        relevant = {
            ex_id: frozenset(spec.muscles) | {Muscle(group_of[m].value) for m in spec.muscles}
            for ex_id, spec in ruleset.exercises.items()
            if spec.kind == ExerciseKind.STRENGTH
        }
        self._muscle_sets: tuple[frozenset[Muscle], ...] = tuple(dict.fromkeys(relevant.values()))
        self._set_of = {ex_id: self._muscle_sets.index(m) for ex_id, m in relevant.items()}
        self._sets_of = {
            muscle: tuple(k for k, m in enumerate(self._muscle_sets) if muscle in m)
            for muscle in Muscle
        }
        # Per finding id: what it recommends, each with its muscle set (None: not strength).
        self._recommends = {
            rule.id: tuple((ex_id, self._set_of.get(ex_id)) for ex_id in rule.spec.recommends)
            for rule in ruleset.rules
        }
        # The same with whether each exercise may emphasise a side, for the loop over findings.
        unilateral = {
            ex_id for ex_id, s in ruleset.exercises.items() if "unilateral" in s.properties
        }
        self._entries = {
            finding_id: tuple((ex_id, k, ex_id in unilateral) for ex_id, k in found)
            for finding_id, found in self._recommends.items()
        }
        # Per finding id: whether a plan reads its sides at all (to emphasise a side).
        self._emphasises = {rule.id: rule.spec.emphasise_side for rule in ruleset.rules}
        self._pain_symptoms = frozenset(ruleset.plan.levels.pain_symptoms)
        critical = WithholdSpec(kinds=ruleset.plan.critical.withhold_kinds)
        # What each referring rule's kind withholds until the person is cleared (referral policy).
        referral_withholds: dict[str, WithholdSpec] = {}
        for rule in ruleset.rules:
            referral = rule.spec.referral
            policy = (
                ruleset.referral_policy.get(referral.kind) if referral and referral.kind else None
            )
            if policy is not None and (policy.withhold.kinds or policy.withhold.properties):
                referral_withholds[rule.id] = policy.withhold
        # Per finding id and whether it is critical: what it withholds, in the order a plan
        # consults them (the critical policy, the rule's own withhold or swap, its referral's).
        # A withhold that takes nothing out of this catalog can never matter and is left out.
        self._withholds_of: dict[tuple[str, bool], tuple[_Withhold, ...]] = {}
        for rule in ruleset.rules:
            spec = rule.spec
            exempt = frozenset(spec.recommends)
            own = (
                (spec.withhold or WithholdSpec(exercises=list(spec.swap)), spec.swap)
                if spec.withhold is not None or spec.swap
                else None
            )
            until_cleared = referral_withholds.get(rule.id)
            for is_critical in (False, True):
                sources: list[tuple[WithholdSpec, Mapping[str, str]]] = []
                if is_critical:
                    sources.append((critical, {}))
                if own is not None:
                    sources.append(own)
                if until_cleared is not None:
                    sources.append((until_cleared, {}))
                withholds = (
                    _Withhold(rule.id, spec.title, _blocked(source, exempt, ruleset), swap)
                    for source, swap in sources
                )
                self._withholds_of[rule.id, is_critical] = tuple(w for w in withholds if w.blocked)
        # The same, with the exercises they take out merged into one set (empty: none).
        self._blocked_of = {
            key: frozenset().union(*[w.blocked for w in found])
            for key, found in self._withholds_of.items()
        }
        self._rank = {ex_id: _KIND_ORDER.index(s.kind) for ex_id, s in ruleset.exercises.items()}
        self._unilateral = frozenset(
            ex_id for ex_id, s in ruleset.exercises.items() if "unilateral" in s.properties
        )
        # The strength exercises that train each movement (an exercise training both counts).
        self._trains = {
            movement: frozenset(
                ex_id
                for ex_id, s in ruleset.exercises.items()
                if s.kind == ExerciseKind.STRENGTH and s.movement in (movement, Movement.BOTH)
            )
            for movement in (Movement.FLEXION, Movement.EXTENSION)
        }
        self._trains_flexion = self._trains[Movement.FLEXION]
        self._trains_extension = self._trains[Movement.EXTENSION]
        # Small caches: variants and doses depend on few inputs and repeat across forms.
        self._variants: dict[Any, tuple[ExerciseSpec, str | None]] = {}
        self._doses: dict[tuple[str, tuple[int, ...]], Dose] = {}
        self._dose_at: dict[tuple[str, tuple[bool, ...] | None], Dose] = {}
        self._recommendations: dict[tuple[Any, ...], Recommendation] = {}
        self._left_out: dict[tuple[str, str, tuple[str, ...]], ExcludedExercise] = {}
        self._searches: dict[tuple[Any, ...], Any] = {}
        self._ids: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self._variant_ids: dict[tuple[str, int], str] = {}
        self._age_cuts = sorted({a.age_at_least for a in ruleset.plan.dose_adjustments})

    def plan(
        self,
        form: IntakeForm,
        findings: Sequence[PlanFinding],
        strength: StrengthGrades,
    ) -> tuple[tuple[Recommendation, ...], tuple[ExcludedExercise, ...]]:
        """The ordered plan, and what was left out, for findings given most severe first.

        ``strength`` is the form's strength grades as yielded by ``IntakeForm.grades``.
        The plan depends only on which findings there are, which are critical and the side each
        emphasises, the lowest strength grade (and its field) per muscle set, reported pain and
        age band; it is built from exactly those. (A cache of whole plans on them hit 10–20 % of
        distinct realistic forms and cost more than it saved: the screener's result cache serves
        repeated forms.)
        """
        emphasises = self._emphasises
        finding_keys = [
            (f.id, f.severity == _CRITICAL, _emphasis(f.sides) if emphasises[f.id] else None)
            for f in findings
        ]
        pain = self._pain_symptoms
        age = form.age
        key = (
            tuple(finding_keys),
            self._lowest(strength),
            tuple([s for s in reported_symptoms(form) if s in pain]),
            None if age is None else tuple([age >= a for a in self._age_cuts]),
        )
        return self._plan(key)

    def exercise_ids(
        self,
        form: IntakeForm,
        findings: Sequence[PlanFinding],
        strength: StrengthGrades,
    ) -> tuple[str, ...]:
        """The ids of `plan`'s recommendations, in order, without building the plan.

        The ids depend on less than the plan: which findings there are and which are critical,
        the level each muscle set's lowest strength grade allows and whether pain is reported
        (not the grade's field, the sides, the age, the doses or the notes). They are built
        from exactly those, and the same ids are remembered for the same inputs.
        """
        key = (
            tuple([(f.id, f.severity == _CRITICAL) for f in findings]),
            self._levels(strength, not self._pain_symptoms.isdisjoint(reported_symptoms(form))),
        )
        ids = self._ids.get(key)
        if ids is None:
            if len(self._ids) >= _MAX_REMEMBERED:
                self._ids.clear()
            ids = self._ids[key] = self._exercise_ids(*key)
        return ids

    def _levels(self, strength: StrengthGrades, pain: bool) -> tuple[int, ...]:
        """The exercise level each muscle set allows (`_choose`, from grades alone)."""
        lowest: list[int | None] = [None] * len(self._muscle_sets)
        sets_of = self._sets_of
        for muscle, _side, grade, _path in strength:
            for k in sets_of.get(muscle, ()):
                current = lowest[k]
                if current is None or grade < current:
                    lowest[k] = grade
        levels = self.ruleset.plan.levels
        by_grade, unassessed = levels.by_grade, levels.unassessed
        step = levels.pain_step_back if pain else 0
        allowed = [unassessed if g is None else by_grade[g] for g in lowest]
        if step:
            allowed = [max(1, a - step) for a in allowed]
        return tuple(allowed)

    def _withholding(
        self, finding_keys: Sequence[tuple[str, bool]]
    ) -> tuple[list[_Withhold], tuple[tuple[str, bool], ...], frozenset[str]]:
        """What the findings (id, critical) withhold, in plan order; the findings that withhold
        anything (the key of a remembered search); and every exercise id any of them blocks."""
        withholds_of = self._withholds_of
        blocked_of = self._blocked_of
        withholds: list[_Withhold] = []
        withholding: list[tuple[str, bool]] = []
        blocked_any: frozenset[str] = frozenset()
        for key in finding_keys:
            blocked = blocked_of[key]
            if blocked:
                withholds += withholds_of[key]
                withholding.append(key)
                blocked_any |= blocked
        return withholds, tuple(withholding), blocked_any

    def _exercise_ids(
        self, finding_keys: tuple[tuple[str, bool], ...], allowed: tuple[int, ...]
    ) -> tuple[str, ...]:
        """`_plan`'s recommendation ids, following its picks without doses, notes or sides."""
        policy = self.ruleset.plan
        specs = self.ruleset.exercises
        withholds, searched, blocked_any = self._withholding(finding_keys)
        picks: dict[str, None] = {}
        variant_ids = self._variant_ids

        def add(exercise_id: str, k: int | None) -> None:
            if k is not None:
                level = allowed[k]
                variant_id = variant_ids.get((exercise_id, level))
                if variant_id is None:
                    chosen = specs[exercise_id]
                    while chosen.level > level and chosen.regression is not None:
                        chosen = specs[chosen.regression]
                    variant_id = variant_ids[exercise_id, level] = chosen.id
                exercise_id = variant_id
            if exercise_id in blocked_any:
                found = self._searches.get((exercise_id, searched))
                if found is None:
                    if len(self._searches) >= _MAX_REMEMBERED:
                        self._searches.clear()
                    found = self._searches[exercise_id, searched] = self._search(
                        specs[exercise_id], withholds
                    )
                if found[0] is None:
                    return
                exercise_id = found[0].id
            picks[exercise_id] = None

        set_of = self._set_of
        add(policy.warm_up, set_of.get(policy.warm_up))
        entries = self._entries
        any_critical = False
        for finding_id, critical in finding_keys:
            any_critical = any_critical or critical
            for exercise_id, k, _ in entries[finding_id]:
                if k is not None or exercise_id in blocked_any:
                    add(exercise_id, k)
                else:
                    picks[exercise_id] = None
        if not any_critical:
            balance = policy.balance
            if self._trains_flexion.isdisjoint(picks):
                add(balance.flexion, set_of.get(balance.flexion))
            if self._trains_extension.isdisjoint(picks):
                add(balance.extension, set_of.get(balance.extension))
        return tuple(sorted(picks, key=self._rank.__getitem__))

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
        finding_keys: tuple[FindingKey, ...]
        finding_keys, lowest, pain, age_flags = key
        policy = self.ruleset.plan
        specs = self.ruleset.exercises
        variants = self._variants
        unilateral = self._unilateral
        withholds, searched, blocked_any = self._withholding([(i, c) for i, c, _ in finding_keys])
        # The plan being built, per exercise id in the order first picked: the findings it
        # serves; its notes and the side it emphasises where it has any.
        picks: dict[str, list[str]] = {}
        notes_of: dict[str, list[str]] = {}
        emphasis_of: dict[str, Side] = {}
        excluded: dict[str, _Left] = {}

        def add(
            exercise_id: str, k: int | None, because: str | None, emphasis: Side | None
        ) -> None:
            if k is None:  # not a strength exercise: no easier variant to choose
                variant, note = specs[exercise_id], None
            else:
                chosen = variants.get((exercise_id, lowest[k], pain))
                if chosen is None:
                    chosen = self._variant(exercise_id, lowest[k], pain)
                variant, note = chosen
            if variant.id in blocked_any:
                spec, swapped = self._allowed(variant, withholds, searched, excluded, because)
                if spec is None:
                    return
            else:
                spec, swapped = variant, None
            spec_id = spec.id
            served = picks.get(spec_id)
            if served is None:
                served = picks[spec_id] = []
            if because is not None and because not in served:
                served.append(because)
            if note is not None or swapped is not None:
                known = notes_of.setdefault(spec_id, [])
                known += [n for n in (note, swapped) if n is not None and n not in known]
            if emphasis is not None and spec_id not in emphasis_of and spec_id in unilateral:
                emphasis_of[spec_id] = emphasis

        set_of = self._set_of
        add(policy.warm_up, set_of.get(policy.warm_up), None, None)
        entries = self._entries
        any_critical = False
        for finding_id, critical, emphasis in finding_keys:
            any_critical = any_critical or critical
            for exercise_id, k, one_sided in entries[finding_id]:
                if k is not None or exercise_id in blocked_any:
                    add(exercise_id, k, finding_id, emphasis)
                    continue
                # The common case, inline: no easier variant to choose and nothing withholds it.
                served = picks.get(exercise_id)
                if served is None:
                    picks[exercise_id] = [finding_id]
                elif finding_id not in served:
                    served.append(finding_id)
                if one_sided and emphasis is not None and exercise_id not in emphasis_of:
                    emphasis_of[exercise_id] = emphasis
        if not any_critical:
            # The article: train both flexion and extension for muscular balance.
            balance = policy.balance
            if self._trains_flexion.isdisjoint(picks):
                add(balance.flexion, set_of.get(balance.flexion), None, None)
            if self._trains_extension.isdisjoint(picks):
                add(balance.extension, set_of.get(balance.extension), None, None)

        rank = self._rank
        dose_at = self._dose_at
        made = self._recommendations
        recommendations = []
        for exercise_id in sorted(picks, key=rank.__getitem__):
            dose = dose_at.get((exercise_id, age_flags))
            if dose is None:
                dose = self._dose_for(specs[exercise_id], age_flags)
            because = tuple(picks[exercise_id])
            notes = notes_of.get(exercise_id)
            note = " ".join(notes) if notes else None
            emphasised = emphasis_of.get(exercise_id)
            recommendation = made.get((exercise_id, id(dose), because, note, emphasised))
            if recommendation is None:
                recommendation = self._recommendation(exercise_id, dose, because, note, emphasised)
            recommendations.append(recommendation)
        left_out = tuple(
            [
                self._excluded(exercise_id, left.reason, tuple(left.because))
                for exercise_id, left in excluded.items()
                if exercise_id not in picks
            ]
        )
        return tuple(recommendations), left_out

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
            made = self._recommendations[key] = _new_recommendation(
                self._exercises[exercise_id], dose, because, note, emphasis
            )
        return made

    def _excluded(
        self, exercise_id: str, reason: str, because: tuple[str, ...]
    ) -> ExcludedExercise:
        """One left-out entry; the same one (they are immutable) whenever it recurs."""
        key = (exercise_id, reason, because)
        made = self._left_out.get(key)
        if made is None:
            if len(self._left_out) >= _MAX_REMEMBERED:
                self._left_out.clear()
            made = self._left_out[key] = _new_excluded(exercise_id, reason, because)
        return made

    def _allowed(
        self,
        spec: ExerciseSpec,
        withholds: Sequence[_Withhold],
        searched: tuple[tuple[str, bool], ...],
        excluded: dict[str, _Left],
        because: str | None,
    ) -> tuple[ExerciseSpec | None, str | None]:
        """The exercise itself or, when a finding withholds it, the first safe replacement that
        trains the same thing (see `_search`), with the note saying what replaced what. Every
        withheld candidate is recorded in ``excluded``. None when nothing safe is left.
        ``searched`` names the withholding findings (id, critical) behind ``withholds``."""
        key = (spec.id, searched)
        found = self._searches.get(key)
        if found is None:
            if len(self._searches) >= _MAX_REMEMBERED:
                self._searches.clear()
            found = self._searches[key] = self._search(spec, withholds)
        chosen, swapped, withheld = found
        for candidate_id, reason, involved in withheld:
            left = excluded.get(candidate_id)
            if left is None:
                left = excluded[candidate_id] = _Left(reason, list(involved))
            if because and because not in left.because:
                left.because.append(because)
        return chosen, swapped

    def _search(
        self, spec: ExerciseSpec, withholds: Sequence[_Withhold]
    ) -> tuple[ExerciseSpec | None, str | None, tuple[tuple[str, str, tuple[str, ...]], ...]]:
        """The exercise itself or, when a finding withholds it, the first safe replacement that
        trains the same thing: an easier variant, the withholding rule's swap, or one of the
        catalog's alternatives (searched in that order, breadth first), with the note saying
        what replaced what (None: none needed; chosen None: nothing safe is left); and every
        withheld candidate met on the way, in order, with why (the first withholding finding)
        and the withholding findings. Depends only on the exercise and the withholds."""
        exercises = self.ruleset.exercises
        queue: deque[ExerciseSpec] = deque([spec])
        tried: set[str] = set()
        withheld: list[tuple[str, str, tuple[str, ...]]] = []
        while queue:
            candidate = queue.popleft()
            candidate_id = candidate.id
            if candidate_id in tried:
                continue
            tried.add(candidate_id)
            blocking = [w for w in withholds if candidate_id in w.blocked]
            if not blocking:
                if candidate is spec:
                    return candidate, None, tuple(withheld)
                return candidate, f"{candidate.name} in place of {spec.name}.", tuple(withheld)
            first = blocking[0]
            withheld.append(
                (
                    candidate_id,
                    f"withheld: {first.title} ({first.finding_id})",
                    tuple(sorted({w.finding_id for w in blocking})),
                )
            )
            following = [candidate.regression] if candidate.regression is not None else []
            following += [w.swap[candidate_id] for w in blocking if candidate_id in w.swap]
            following += candidate.alternatives
            queue.extend(exercises[ex_id] for ex_id in following)
        return None, None, tuple(withheld)

    def _variant(
        self, exercise_id: str, graded: tuple[int, str] | None, pain: tuple[str, ...]
    ) -> tuple[ExerciseSpec, str | None]:
        """Step a strength exercise down the regression chain to the level the person's strength
        and pain allow (``graded``: the lowest strength grade and its field in its muscle set)."""
        key = (exercise_id, graded, pain)
        cached = self._variants.get(key)
        if cached is None:
            spec = self.ruleset.exercises[exercise_id]
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

    def _dose_for(self, spec: ExerciseSpec, age_flags: tuple[bool, ...] | None) -> Dose:
        """The dose of ``spec`` for an age band (``age_flags``: which age cuts are reached)."""
        reached = (
            set()
            if age_flags is None
            else {cut for cut, ok in zip(self._age_cuts, age_flags, strict=True) if ok}
        )
        adjustments = tuple(
            i
            for i, adj in enumerate(self.ruleset.plan.dose_adjustments)
            if adj.kind == spec.kind and adj.age_at_least in reached
        )
        key = (spec.id, adjustments)
        dose = self._doses.get(key)
        if dose is None:
            dose = self._doses[key] = self._build_dose(spec, adjustments)
        self._dose_at[spec.id, age_flags] = dose
        return dose

    def _build_dose(self, spec: ExerciseSpec, adjustments: tuple[int, ...]) -> Dose:
        values: dict[str, Any] = {}
        default = self.ruleset.dose_defaults.get(spec.kind)
        if spec.dose is not None and spec.dose.minutes is not None:
            # Dosed in minutes (such as "stay active"): the kind's sets and reps do not apply.
            default = None
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
