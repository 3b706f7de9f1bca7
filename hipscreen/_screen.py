"""Screening: a form becomes engine facts, the engine's firings become findings and a plan."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from hipscreen._engine import (
    CompiledRules,
    EngineRule,
    Fact,
    Message,
    atom_for,
    compile_rules,
    engine_number,
)
from hipscreen._form import IntakeForm, coerce_form
from hipscreen._plan import Planner
from hipscreen._results import Assessment
from hipscreen._ruledata import (
    Atom,
    Condition,
    RuleSet,
    alternatives,
    finding_refs,
    load_ruleset,
)
from hipscreen._vocabulary import (
    Confidence,
    Measure,
    Muscle,
    MuscleGroup,
    RomMotion,
    Severity,
    Side,
    Symptom,
    Urgency,
)

_SIDE_ORDER = [Side.LEFT, Side.RIGHT, Side.BOTH]
_MEASURES = tuple(Measure)
_URGENCY_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}

# For a left/right difference, which side is the one of concern: the weaker, tighter or more
# restricted side. "low" means the lower value is the side of concern.
_CONCERN_IS_LOW = {
    "strength": True,
    "tightness": False,
    "hip_flexion": True,
    "hip_extension": True,
    "thomas_hip_angle": False,  # thigh higher above horizontal = shorter hip flexors
    "thomas_knee_angle": True,  # less knee flexion = shorter rectus femoris
    "straight_leg_raise": True,
    "active_knee_extension_deficit": False,
}

Grade = tuple[Muscle, Side, int, str]


class Observation(NamedTuple):
    """What one engine fact stands for in the form, so a finding can cite it as evidence."""

    field: str
    value: int | float | str
    side: Side | None
    measured: bool


class FormFacts:
    """The engine facts for one form and the observation behind each (by index ``i``)."""

    def __init__(self, form: IntakeForm, grades: Mapping[Measure, Sequence[Grade]]) -> None:
        self.facts: list[Fact] = []
        self.observations: list[Observation] = []
        for measure, given in grades.items():
            for muscle, side, grade, path in given:
                self._add(
                    {
                        "t": "grade",
                        "ms": measure,
                        "mu": muscle,
                        "gr": muscle.group,
                        "sd": side,
                        "v": grade,
                    },
                    Observation(path, grade, side, measured=False),
                )
            self._asymmetry(
                measure,
                measure,
                [(m, s, g, f"{measure}.{m}") for m, s, g, _ in given],
                measured=False,
                groups={m: m.group for m, *_ in given},
            )
        angles = list(form.angles())
        method = form.rom.method if form.rom is not None else None
        for motion, side, degrees, path in angles:
            self._add(
                {"t": "rom", "mo": motion, "sd": side, "me": method, "v": degrees},
                Observation(path, degrees, side, measured=True),
            )
        self._asymmetry(
            "rom", None, [(m, s, d, f"rom.{m}") for m, s, d, _ in angles], measured=True
        )
        numeric = []
        for name, side, value, path in form.measurements():
            if isinstance(value, bool):
                if value:
                    self._add(
                        {"t": "sign", "n": name, "sd": side},
                        Observation(path, "yes", side, measured=True),
                    )
                continue
            fact: Fact = {"t": "test", "n": name, "sd": side, "v": value}
            if name == "straight_leg_raise" and form.straight_leg_raise is not None:
                fact["lp"] = "yes" if form.straight_leg_raise.reproduces_leg_pain else "no"
            self._add(fact, Observation(path, value, side, measured=True))
            numeric.append(
                (name, side, value, path.rsplit(".", 1)[0] if side != Side.BOTH else path)
            )
        self._asymmetry("test", None, numeric, measured=True)
        if form.straight_leg_raise is not None and form.straight_leg_raise.reproduces_leg_pain:
            self._add(
                {"t": "sign", "n": "slr_reproduces_leg_pain"},
                Observation("straight_leg_raise.reproduces_leg_pain", "yes", None, True),
            )
        for symptom in form.symptoms:
            self._add(
                {"t": "symptom", "n": symptom},
                Observation("symptoms", symptom, None, measured=False),
            )
        if Symptom.LOWER_BACK_PAIN in form.reported_symptoms() and (
            Symptom.LOWER_BACK_PAIN not in form.symptoms
        ):
            # Describing the back-pain episode reports low back pain, even if the symptom list
            # does not repeat it.
            self._add(
                {"t": "symptom", "n": Symptom.LOWER_BACK_PAIN},
                Observation("back_pain", "lower_back_pain", None, measured=False),
            )
        for activity in form.activities:
            self._add(
                {"t": "activity", "n": activity},
                Observation("activities", activity, None, measured=False),
            )
        if form.age is not None:
            self._add({"t": "age", "v": form.age}, Observation("age", form.age, None, False))
        self._context(form)

    def _add(self, fact: Fact, observation: Observation) -> None:
        if "v" in fact:
            fact["v"] = engine_number(fact["v"])
        fact["i"] = len(self.observations)
        self.facts.append(fact)
        self.observations.append(observation)

    def _asymmetry(
        self,
        measure: str,
        concern_key: str | None,
        values: Sequence[tuple[str, Side, float, str]],
        measured: bool,
        groups: Mapping[str, str] | None = None,
    ) -> None:
        per_side: dict[str, dict[Side, tuple[float, str]]] = {}
        for name, side, value, path in values:
            per_side.setdefault(name, {})[side] = (value, path)
        for name, sides in per_side.items():
            if Side.LEFT not in sides or Side.RIGHT not in sides:
                continue
            (left, path), (right, _) = sides[Side.LEFT], sides[Side.RIGHT]
            if left == right:
                continue
            low_is_concern = _CONCERN_IS_LOW[concern_key or name]
            concern = Side.LEFT if (left < right) == low_is_concern else Side.RIGHT
            fact: Fact = {
                "t": "asym",
                "ms": measure,
                "n": name,
                "sd": concern,
                "v": abs(left - right),
            }
            if groups is not None:
                fact["gr"] = groups[name]
            self._add(
                fact,
                Observation(
                    path.removesuffix(".left"), f"left {left:g}, right {right:g}", concern, measured
                ),
            )

    def _context(self, form: IntakeForm) -> None:
        def add(name: str, path: str, value: int | str, **extra: Any) -> None:
            self._add({"t": "context", "n": name, **extra}, Observation(path, value, None, False))

        if form.pregnancy is not None:
            add("pregnancy", "pregnancy", "yes")
            if form.pregnancy.weeks is None:
                add("pregnancy_weeks_unknown", "pregnancy", "weeks not given")
            else:
                add(
                    "pregnancy_weeks",
                    "pregnancy.weeks",
                    form.pregnancy.weeks,
                    v=form.pregnancy.weeks,
                )
        hip = form.hip_replacement
        if hip is not None and not hip.precautions_lifted:
            self._add(
                {"t": "context", "n": f"hip_replacement_{hip.approach}", "sd": hip.side},
                Observation("hip_replacement.approach", hip.approach, hip.side, False),
            )
        if form.osteoporosis:
            add("osteoporosis", "osteoporosis", "yes")
        if form.vertebral_fracture:
            add("vertebral_fracture", "vertebral_fracture", "yes")
        if form.back_pain is not None:
            if form.back_pain.weeks is None:
                add("back_pain_weeks_unknown", "back_pain", "weeks not given")
            else:
                add(
                    "back_pain_weeks",
                    "back_pain.weeks",
                    form.back_pain.weeks,
                    v=form.back_pain.weeks,
                )
            if form.back_pain.intensity is not None:
                add(
                    "back_pain_intensity",
                    "back_pain.intensity",
                    form.back_pain.intensity,
                    v=form.back_pain.intensity,
                )


def _slots(alts: list[tuple[Atom, ...]]) -> list[tuple[tuple[Atom, ...], ...]]:
    """Engine rules for a condition's alternatives: the one-atom alternatives that the engine's
    facts can tell apart share one ``$or`` pattern; the others stay one rule each."""
    merged: list[Atom] = []
    keys: set[Any] = set()
    rules: list[tuple[tuple[Atom, ...], ...]] = []
    for alt in alts:
        key = (alt[0].fact, alt[0].equals, alt[0].one_of) if len(alt) == 1 else None
        if key is not None and key not in keys:
            keys.add(key)
            merged.append(alt[0])
        else:
            rules.append(tuple((atom,) for atom in alt))
    if merged:
        rules.insert(0, (tuple(merged),))
    return rules


@dataclass(frozen=True)
class _Firing:
    rule_index: int
    severity: Severity
    slots: tuple[tuple[Atom, ...], ...]


@dataclass
class _Draft:
    severity: Severity
    evidence: dict[tuple[str, Any, str | None], None] = field(default_factory=dict)
    derived_from: set[str] = field(default_factory=set)
    sides: set[str] = field(default_factory=set)
    measured: bool = False


class Screener:
    """One compiled rule set, ready to screen forms from any thread.

    Several screeners with different rules can live side by side in one process.

    Args:
        rules_dir: a directory with ``ruleset.yaml``, ``exercises.yaml`` and ``findings/``;
            the built-in rules when omitted.
        extra_rules: directories of extra rule files (``findings/*.yaml``, optionally an
            ``exercises.yaml`` with extra exercises). Extra rules may chain onto built-in findings.
        thresholds: threshold values to use instead of the rule data's, e.g. ``{"weak_grade": 4}``.
        cache_size: how many distinct forms to remember (about 9 KB each); identical form
            content (whatever its ``client_id``) is then screened once. ``0`` turns it off.

    Raises:
        RuleDataError: the rule data has problems (all of them are listed).

    Example:
        >>> screener = Screener(thresholds={"weak_grade": 4})
        >>> screener.assess({"strength": {"gluteus_maximus": 4}}).finding_ids()[:1]
        ['weak-hip-extensors']
    """

    def __init__(
        self,
        rules_dir: str | Path | None = None,
        *,
        extra_rules: Sequence[str | Path] = (),
        thresholds: Mapping[str, float] | None = None,
        cache_size: int = 512,
    ) -> None:
        self.ruleset: RuleSet = load_ruleset(
            Path(rules_dir) if rules_dir is not None else None,
            [Path(p) for p in extra_rules],
            thresholds,
        )
        self._cache_size = cache_size
        self._cache: dict[str, Assessment] = {}
        self._cache_lock = threading.Lock()
        self._firings: dict[str, _Firing] = {}
        engine_rules: list[EngineRule] = []
        for index, rule in enumerate(self.ruleset.rules):
            conditions: list[tuple[Severity, str, Condition, tuple[tuple[Atom, ...], ...]]]
            conditions = [(rule.spec.severity, "#", rule.condition, ())]
            # An escalation chains on the finding itself: it can only raise its severity.
            self_atom = Atom("finding", (("id", rule.id),))
            conditions += [
                (severity, f"^{k}.", condition, ((self_atom,),))
                for k, (severity, condition) in enumerate(rule.escalations)
            ]
            for severity, mark, condition, prefix in conditions:
                for n, slots in enumerate(_slots(alternatives(condition))):
                    name = f"{rule.id}{mark}{n}"
                    full = (*prefix, *slots)
                    self._firings[name] = _Firing(index, severity, full)
                    engine_rules.append(EngineRule(name, full))
        self._compiled: CompiledRules = compile_rules(engine_rules, self.ruleset.digest[:12])
        self._order = {rule.id: i for i, rule in enumerate(self.ruleset.rules)}
        self._referrals = {
            rule.id: rule.spec.referral for rule in self.ruleset.rules if rule.spec.referral
        }
        # The finding fact each rule asserts, serialised once (kebab-case ids need no escaping).
        # Only findings that some rule chains on (or that can escalate) go back into the engine:
        # asserting the others would cost matching time and change nothing.
        chained = {ref for rule in self.ruleset.rules for ref in finding_refs(rule.condition)}
        chained |= {rule.id for rule in self.ruleset.rules if rule.escalations}
        self._finding_facts = [
            (f'{{"t":"finding","id":"{rule.id}"',) if rule.id in chained else ()
            for rule in self.ruleset.rules
        ]
        self._planner = Planner(self.ruleset)

    @property
    def ruleset_version(self) -> str:
        """Rule-set version and content digest, e.g. ``1.0.0+3fa2c1b7d4e0``."""
        return self.ruleset.label

    def assess(self, form: IntakeForm | Mapping[str, Any] | str | bytes) -> Assessment:
        """Screen one intake form.

        Args:
            form: an `IntakeForm`, a mapping of the same shape, or a JSON document.

        Returns:
            The `Assessment`: findings, recommendations, referral, version and disclaimer.

        Raises:
            InvalidFormError: the form breaks the input contract (a ``ValueError``).
            EngineError: the rules engine failed (a ``RuntimeError``).
        """
        intake = coerce_form(form)
        if not self._cache_size:
            return self._assess(intake)
        # Exact cache: the key is the whole validated form except the caller's own id.
        key = intake.model_dump_json(exclude={"client_id"})
        cached = self._cache.get(key)
        if cached is None:
            cached = self._assess(intake.model_copy(update={"client_id": None}))
            with self._cache_lock:
                if len(self._cache) >= self._cache_size:
                    del self._cache[next(iter(self._cache))]  # the oldest entry
                self._cache[key] = cached
        if intake.client_id is None:
            return cached
        return cached.model_copy(update={"client_id": intake.client_id})

    def _assess(self, intake: IntakeForm) -> Assessment:
        grades = {m: list(intake.grades(m.value)) for m in _MEASURES}
        facts = FormFacts(intake, grades)
        findings = self._findings(facts)
        recommendations, excluded = self._planner.plan(intake, findings, grades[Measure.STRENGTH])
        # One validation pass in pydantic-core is cheaper than constructing each part in Python.
        return Assessment.model_validate(
            {
                "findings": findings,
                "recommendations": recommendations,
                "referral": self._referral(findings),
                "excluded": excluded,
                "not_assessed": _not_assessed(intake, grades),
                "client_id": intake.client_id,
                "ruleset_version": self.ruleset.label,
                "disclaimer": self.ruleset.disclaimer,
            }
        )

    def _findings(self, form_facts: FormFacts) -> list[dict[str, Any]]:
        drafts: dict[int, _Draft] = {}
        rules = self.ruleset.rules
        firings = self._firings
        observations = form_facts.observations
        finding_facts = self._finding_facts

        def on_fire(name: str, message: Message) -> Sequence[str]:
            firing = firings[name]
            rule_id = rules[firing.rule_index].id
            draft = drafts.get(firing.rule_index)
            new = draft is None
            if draft is None:
                draft = drafts[firing.rule_index] = _Draft(firing.severity)
            elif firing.severity.rank > draft.severity.rank:
                draft.severity = firing.severity
            for i, slot in enumerate(firing.slots):
                fact = message[f"p{i}"]
                atom = atom_for(slot, fact)
                if atom.fact == "finding":
                    if fact["id"] != rule_id:
                        draft.derived_from.add(fact["id"])
                    continue
                seen = observations[fact["i"]]
                draft.evidence[(seen.field, seen.value, atom.describe)] = None
                if seen.side is not None:
                    draft.sides.add(seen.side)
                draft.measured = draft.measured or seen.measured
            return finding_facts[firing.rule_index] if new else ()

        self._compiled.run(form_facts.facts, on_fire)

        order: dict[str, int] = self._order
        measured = {rules[i].id for i, d in drafts.items() if d.measured}
        changed = True
        while changed:  # a derived finding is measured when anything it rests on is
            changed = False
            for index, draft in drafts.items():
                if rules[index].id not in measured and draft.derived_from & measured:
                    measured.add(rules[index].id)
                    changed = True
        findings: list[dict[str, Any]] = []
        for index in sorted(drafts, key=lambda i: (-drafts[i].severity.rank, i)):
            draft, spec = drafts[index], rules[index].spec
            findings.append(
                {
                    "id": spec.id,
                    "title": spec.title,
                    "severity": draft.severity,
                    "summary": spec.summary,
                    "evidence": [
                        {"field": f, "value": v, "threshold": t}
                        for f, v, t in sorted(draft.evidence, key=lambda e: (e[0], str(e[1])))
                    ],
                    "source": spec.source,
                    "derived_from": sorted(draft.derived_from, key=order.__getitem__),
                    "sides": [s for s in _SIDE_ORDER if s in draft.sides],
                    "confidence": (
                        Confidence.MEASURED if spec.id in measured else Confidence.REPORTED
                    ),
                }
            )
        return findings

    def _referral(self, findings: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        referrals = self._referrals
        referring = [(f["id"], referrals[f["id"]]) for f in findings if f["id"] in referrals]
        if not referring:
            return None
        referring.sort(key=lambda item: _URGENCY_RANK[item[1].urgency])  # stable: finding order
        _, first = referring[0]
        return {
            "urgency": first.urgency,
            "see": first.see,
            "message": first.message,
            "because": [finding_id for finding_id, _ in referring],
        }


def _not_assessed(form: IntakeForm, grades: Mapping[Measure, Sequence[Grade]]) -> tuple[str, ...]:
    missing = []
    for measure, given_grades in grades.items():
        given = {muscle.group for muscle, *_ in given_grades}
        missing += [f"{measure.value} of {g.value}" for g in MuscleGroup if g not in given]
    measured = {motion for motion, *_ in form.angles()}
    missing += [f"measured {m.value}" for m in RomMotion if m not in measured]
    if form.thomas_test is None:
        missing.append("modified Thomas test")
    if form.straight_leg_raise is None and form.active_knee_extension is None:
        missing.append("hamstring length test (straight-leg raise or active knee extension)")
    return tuple(missing)


_default: Screener | None = None
_default_lock = threading.Lock()


def default_screener() -> Screener:
    """The process-wide screener for the built-in rules, compiled on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Screener()
    return _default


def assess(form: IntakeForm | Mapping[str, Any] | str | bytes) -> Assessment:
    """Screen one intake form with the built-in rules.

    Args:
        form: an `IntakeForm`, a mapping of the same shape, or a JSON document.

    Returns:
        The `Assessment`.

    Raises:
        InvalidFormError: the form breaks the input contract (a ``ValueError``).

    Example:
        >>> import hipscreen
        >>> result = hipscreen.assess({"tightness": {"iliopsoas": "severe"},
        ...                            "strength": {"gluteus_maximus": 3}})
        >>> "flexor-extensor-imbalance" in result.finding_ids()
        True
    """
    return default_screener().assess(form)
