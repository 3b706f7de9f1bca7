"""Screening: a form becomes engine facts, the engine's firings become findings and a plan."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hipscreen._engine import CompiledRules, EngineRule, Fact, Message, compile_rules
from hipscreen._form import IntakeForm, coerce_form
from hipscreen._plan import Planner
from hipscreen._results import Assessment, Evidence, Finding
from hipscreen._ruledata import Atom, RuleSet, alternatives, load_ruleset
from hipscreen._vocabulary import Measure, Muscle, MuscleGroup, RomMotion, Severity, Side

_SIDE_ORDER = [Side.LEFT, Side.RIGHT, Side.BOTH]
_MEASURES = tuple(Measure)


Grade = tuple[Muscle, Side, int, str]


def form_facts(form: IntakeForm, grades: Mapping[Measure, Sequence[Grade]] | None = None) -> list[Fact]:
    """The engine facts for a form: one per grade, angle, symptom, activity, plus age."""
    if grades is None:
        grades = {m: list(form.grades(m.value)) for m in Measure}
    facts: list[Fact] = []
    for measure, given in grades.items():
        for muscle, side, grade, path in given:
            facts.append(
                {"t": "grade", "ms": measure.value, "mu": muscle.value, "gr": muscle.group.value,
                 "sd": side.value, "v": grade, "fp": path}
            )
    method = form.rom.method.value if form.rom is not None else None
    for motion, side, degrees, path in form.angles():
        facts.append({"t": "rom", "mo": motion.value, "sd": side.value, "me": method, "v": degrees,
                      "fp": path})
    facts.extend({"t": "symptom", "n": s.value, "fp": "symptoms"} for s in form.symptoms)
    facts.extend({"t": "activity", "n": a.value, "fp": "activities"} for a in form.activities)
    if form.age is not None:
        facts.append({"t": "age", "v": form.age, "fp": "age"})
    return facts


@dataclass(frozen=True)
class _Firing:
    rule_index: int
    severity: Severity
    atoms: tuple[Atom, ...]
    escalation: bool


@dataclass
class _Draft:
    severity: Severity
    evidence: dict[tuple[str, Any, str | None], None] = field(default_factory=dict)
    derived_from: set[str] = field(default_factory=set)
    sides: set[str] = field(default_factory=set)


class Screener:
    """One compiled rule set, ready to screen forms from any thread.

    Args:
        rules_dir: a directory with ``ruleset.yaml``, ``exercises.yaml`` and ``findings/``;
            the built-in rules when omitted.

    Raises:
        RuleDataError: the rule data has problems (all of them are listed).

    Example:
        >>> screener = Screener()
        >>> screener.assess({"tightness": {"iliopsoas": 3}}).finding_ids()[:1]
        ['tight-hip-flexors']
    """

    def __init__(self, rules_dir: str | Path | None = None) -> None:
        self.ruleset: RuleSet = load_ruleset(*([Path(rules_dir)] if rules_dir else []))
        self._firings: dict[str, _Firing] = {}
        engine_rules: list[EngineRule] = []
        for index, rule in enumerate(self.ruleset.rules):
            for n, alt in enumerate(alternatives(rule.condition)):
                name = f"{rule.id}#{n}"
                self._firings[name] = _Firing(index, rule.spec.severity, alt, escalation=False)
                engine_rules.append(EngineRule(name, alt))
            for k, (severity, condition) in enumerate(rule.escalations):
                self_atom = Atom("finding", (("id", rule.id),))
                for n, alt in enumerate(alternatives(condition)):
                    name = f"{rule.id}^{k}.{n}"
                    atoms = (self_atom, *alt)
                    self._firings[name] = _Firing(index, severity, atoms, escalation=True)
                    engine_rules.append(EngineRule(name, atoms))
        self._compiled: CompiledRules = compile_rules(engine_rules, self.ruleset.digest[:12])
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
        grades = {m: list(intake.grades(m.value)) for m in _MEASURES}
        findings = self._findings(form_facts(intake, grades))
        # One validation pass in pydantic-core is cheaper than constructing each part in Python.
        return Assessment.model_validate(
            {
            "findings": findings,
            "recommendations": self._planner.plan(intake, findings, grades[Measure.STRENGTH]),
            "referral": None,
            "not_assessed": _not_assessed(intake, grades),
            "client_id": intake.client_id,
            "ruleset_version": self.ruleset.label,
            "disclaimer": self.ruleset.disclaimer,
            }
        )

    def _findings(self, facts: list[Fact]) -> list[dict[str, Any]]:
        drafts: dict[int, _Draft] = {}
        rules = self.ruleset.rules
        firings = self._firings

        def on_fire(name: str, message: Message) -> Sequence[Fact]:
            firing = firings[name]
            rule_id = rules[firing.rule_index].id
            draft = drafts.get(firing.rule_index)
            new = draft is None
            if draft is None:
                draft = drafts[firing.rule_index] = _Draft(firing.severity)
            elif firing.severity.rank > draft.severity.rank:
                draft.severity = firing.severity
            for i, atom in enumerate(firing.atoms):
                fact = message[f"p{i}"]
                if atom.fact == "finding":
                    if fact["id"] != rule_id:
                        draft.derived_from.add(fact["id"])
                    continue
                value = fact["v"] if "v" in fact else fact["n"]
                draft.evidence[(fact["fp"], value, atom.describe)] = None
                if "sd" in fact:
                    draft.sides.add(fact["sd"])
            return [{"t": "finding", "id": rule_id}] if new else ()

        self._compiled.run(facts, on_fire)

        order = {rule.id: i for i, rule in enumerate(rules)}
        findings = []
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
                    "sides": [s for s in _SIDE_ORDER if s.value in draft.sides],
                }
            )
        return findings


def _not_assessed(form: IntakeForm, grades: Mapping[Measure, Sequence[Grade]]) -> tuple[str, ...]:
    missing = []
    for measure, given_grades in grades.items():
        given = {muscle.group for muscle, *_ in given_grades}
        missing += [f"{measure.value} of {g.value}" for g in MuscleGroup if g not in given]
    measured = {motion for motion, *_ in form.angles()}
    missing += [f"measured {m.value}" for m in RomMotion if m not in measured]
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
