"""Screening: a form becomes engine facts, the engine's firings become findings and a plan."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

from hipscreen._cache import SelfTuningCache
from hipscreen._engine import (
    FORMS_PER_SHARED_SESSION,
    CompiledRules,
    EngineRule,
    Slot,
    atoms_met,
    compile_rules,
    fact_fields,
    finding_fact,
    network_problems,
    slot_size,
)
from hipscreen._errors import EngineError, RuleDataError, RuleProblem
from hipscreen._facts import FormFacts, Grade
from hipscreen._forksafe import ForkSafeLock
from hipscreen._intake.form import IntakeForm, coerce_form
from hipscreen._limits import MAX_PATTERN_EXPRESSIONS
from hipscreen._plan import Planner
from hipscreen._results import Assessment
from hipscreen._rules.atoms import Atom, Condition, alternatives, finding_refs
from hipscreen._rules.loader import load_ruleset
from hipscreen._rules.ruleset import RuleSet
from hipscreen._rules.tables import tables
from hipscreen._vocabulary import (
    Confidence,
    Measure,
    MuscleGroup,
    RomMotion,
    Severity,
    Side,
    Symptom,
    Urgency,
)

_Out = TypeVar("_Out")
_SIDE_ORDER = [Side.LEFT, Side.RIGHT, Side.BOTH]
_MEASURES = tuple(Measure)
_URGENCY_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}
_MAX_REMEMBERED_MATCHES = 2048
"""Which atoms of a several-option pattern a fact met, remembered (facts recur across forms)."""


def _slots(alts: list[tuple[Atom, ...]]) -> list[tuple[Slot, ...]]:
    """Engine rules for a condition's alternatives: the one-atom alternatives that the engine's
    facts can tell apart share one ``$or`` pattern (as many as the engine's expression table
    takes); the others become one rule per way their atoms can share facts (`_bindings`)."""
    merged: list[list[Atom]] = [[]]
    keys: set[Any] = set()
    rules: list[tuple[Slot, ...]] = []
    # An atom repeated in a conjunction says nothing more, and neither does a repeated
    # alternative (``all_of`` of ``any_of``s multiplies out into many of both).
    unique: dict[frozenset[Atom], tuple[Atom, ...]] = {}
    for alt in alts:
        unique.setdefault(frozenset(alt), tuple(dict.fromkeys(alt)))
    for alt in unique.values():
        key = (alt[0].fact, alt[0].equals, alt[0].one_of) if len(alt) == 1 else None
        if key is not None and key not in keys:
            keys.add(key)
            if slot_size((*merged[-1], alt[0])) > MAX_PATTERN_EXPRESSIONS:
                merged.append([])
            merged[-1].append(alt[0])
        else:
            rules += _bindings(alt)
    return [(tuple(atoms),) for atoms in merged if atoms] + rules


def _bindings(alt: tuple[Atom, ...]) -> list[tuple[Slot, ...]]:
    """Engine rules that together match a conjunction exactly.

    The engine binds each pattern of a rule to a different fact, but the rule data means "some
    fact meets each atom", and one fact may meet several (a strength of 2 for gluteus maximus is
    both "an extensor ≤ 3" and "gluteus maximus ≤ 2"). So the conjunction becomes one rule per
    way of grouping its atoms onto shared facts (a set partition whose blocks one fact could
    meet), each block one pattern. Every match of the conjunction binds its facts in exactly
    one such grouping, so the rules fire for it; atoms no fact can share need no extra rule.
    """
    groupings: list[list[list[Atom]]] = [[]]
    for atom in alt:
        grown: list[list[list[Atom]]] = []
        for blocks in groupings:
            grown.append([*blocks, [atom]])
            for i, block in enumerate(blocks):
                if all(_could_share(atom, other) for other in block):
                    grown.append([*blocks[:i], [*block, atom], *blocks[i + 1 :]])
        groupings = grown
    return [
        tuple(((block[0],) if len(block) == 1 else (tuple(block),)) for block in blocks)
        for blocks in groupings
    ]


def _could_share(a: Atom, b: Atom) -> bool:
    """Whether one fact could meet both atoms (conservative: an extra grouping that can never
    match costs an engine rule, a missing one would lose findings)."""
    if a.fact != b.fact:
        return False
    tests_a, tests_b = dict(a.equals), dict(b.equals)
    if any(tests_b.get(attr, value) != value for attr, value in tests_a.items()):
        return False
    for atom, other_tests, other in ((a, tests_b, b), (b, tests_a, a)):
        if atom.one_of is None:
            continue
        attr, values = atom.one_of
        if attr in other_tests and other_tests[attr] not in values:
            return False
        shared = other.one_of is not None and other.one_of[0] == attr
        if shared and other.one_of is not None and not set(values) & set(other.one_of[1]):
            return False
    lows = [x for x in (a.at_least, a.above, b.at_least, b.above) if x is not None]
    highs = [x for x in (a.at_most, a.below, b.at_most, b.below) if x is not None]
    return not lows or not highs or max(lows) <= min(highs)


@dataclass(frozen=True)
class _Firing:
    rule_index: int
    severity: Severity
    slots: tuple[Slot, ...]
    # Per slot: the atoms any fact it matches meets (one option), or None when the slot has
    # several options and the matched fact must be checked against each.
    cites: tuple[tuple[Atom, ...] | None, ...] = ()
    rank: int = 0  # severity.rank, read once per firing


class _Draft:
    """What the firings of one rule have found so far (one per rule that fired)."""

    __slots__ = ("derived_from", "evidence", "measured", "rank", "severity", "sides")

    def __init__(self, severity: Severity, rank: int) -> None:
        self.severity = severity
        self.rank = rank
        self.evidence: dict[tuple[str, Any, str | None, str | None], None] = {}
        self.derived_from: set[str] = set()
        self.sides: set[str] = set()
        self.measured = False


class Screener:
    """One compiled rule set, ready to screen forms from any thread.

    Several screeners with different rules can live side by side in one process. Each holds its
    compiled rules in the engine's C memory (about 0.8 MB) until it is closed or garbage-collected;
    ``with Screener(...) as screener:`` closes it at the end of the block.

    Args:
        rules_dir: a directory with ``ruleset.yaml``, ``exercises.yaml`` and ``findings/``;
            the built-in rules when omitted.
        extra_rules: directories of extra rule files (``findings/*.yaml``, optionally an
            ``exercises.yaml`` with extra exercises). Extra rules may chain onto built-in findings.
        thresholds: threshold values to use instead of the rule data's, e.g. ``{"weak_grade": 4}``.
        cache_size: how many distinct forms to remember (about 9 KB each); identical form
            content (whatever its ``client_id``) is then screened once. ``0`` turns it off. The
            cache watches its hit rate and stays out of the way while forms do not repeat (it
            then builds no keys), trying again now and then.

    Raises:
        RuleDataError: the rule data has problems (all of them are listed).

    Examples:
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
        self._build(
            load_ruleset(
                Path(rules_dir) if rules_dir is not None else None,
                [Path(p) for p in extra_rules],
                thresholds,
            ),
            cache_size,
        )

    @classmethod
    def from_ruleset(cls, ruleset: RuleSet, *, cache_size: int = 512) -> Self:
        """A screener for a rule set that is already loaded and validated; nothing is read again.

        Batch workers and unpickling use it to compile the parent's rules exactly as they were.

        Args:
            ruleset: a `RuleSet` from ``load_ruleset`` (or another screener's ``.ruleset``).
            cache_size: as for `Screener`.

        Raises:
            TypeError: ``ruleset`` is not a `RuleSet`.
            RuleDataError: the rules cannot be compiled into one engine network.

        Examples:
            >>> twin = Screener.from_ruleset(default_screener().ruleset)
            >>> twin.ruleset_version == default_screener().ruleset_version
            True
        """
        if not isinstance(ruleset, RuleSet):
            raise TypeError(
                f"ruleset must be a RuleSet (got {type(ruleset).__name__}); "
                "build a screener from a rules directory with Screener(rules_dir)"
            )
        screener = cls.__new__(cls)
        screener._build(ruleset, cache_size)
        return screener

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle by the rule set: its validated rule data (thresholds included) and digest.

        Unpickling compiles the rules again in the receiving process (``multiprocessing``,
        ``concurrent.futures``, a Spark or dask closure) and checks the digest; the built-in
        screener comes back as that process's own `default_screener`. Nothing is read from
        disk, so a screener built from a rules directory works where that directory is absent.
        """
        if self is _default:
            return (_default_unpickled, (self.ruleset.digest,))
        return (_unpickled, (self.ruleset, self._cache.size, self.ruleset.digest))

    def _build(self, ruleset: RuleSet, cache_size: int) -> None:
        self.ruleset = ruleset
        self._cache = SelfTuningCache(cache_size)
        self._firings: dict[str, _Firing] = {}
        engine_rules: list[EngineRule] = []
        for index, rule in enumerate(self.ruleset.rules):
            conditions: list[tuple[Severity, str, Condition, tuple[Slot, ...]]]
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
                    cites = tuple(None if len(slot) > 1 else _atoms(slot[0]) for slot in full)
                    self._firings[name] = _Firing(index, severity, full, cites, severity.rank)
                    engine_rules.append(EngineRule(name, full))
        problems = network_problems(engine_rules)
        if problems:
            rules = self.ruleset.rules
            raise RuleDataError(
                [
                    RuleProblem(
                        rules[self._firings[name].rule_index].file,
                        rules[self._firings[name].rule_index].id,
                        "when",
                        message,
                    )
                    if name in self._firings
                    else RuleProblem("", "", "", message)
                    for name, message in problems
                ]
            )
        self._compiled: CompiledRules = compile_rules(engine_rules, self.ruleset.digest[:12])
        self._order = {rule.id: i for i, rule in enumerate(self.ruleset.rules)}
        self._referrals = {
            rule.id: rule.spec.referral for rule in self.ruleset.rules if rule.spec.referral
        }
        # The finding fact each rule asserts, serialised once (kebab-case ids need no escaping).
        # Only findings that some rule chains on (or that can escalate) go back into the engine:
        # asserting the others would cost matching time and change nothing.
        chained = {
            ref
            for rule in self.ruleset.rules
            for condition in (rule.condition, *(c for _, c in rule.escalations))
            for ref in finding_refs(condition)
        }
        chained |= {rule.id for rule in self.ruleset.rules if rule.escalations}
        self._finding_facts = [
            (finding_fact(index, rule.id),) if rule.id in chained else ()
            for index, rule in enumerate(self.ruleset.rules)
        ]
        self._planner = Planner(self.ruleset)
        # (slot, fact without its index) -> the slot's atoms the fact meets; the slots live as
        # long as the screener, so their ids are stable keys.
        self._atoms_met: dict[tuple[int, str], tuple[Atom, ...]] = {}

    def close(self) -> None:
        """Free the compiled rules in the engine; the screener cannot screen afterwards.

        Dropping a screener frees them too (when it is garbage-collected); ``close()`` (or a
        ``with`` block) frees them at a moment you choose. Closing twice is harmless.
        """
        self._compiled.close()
        self._cache.clear()

    @property
    def closed(self) -> bool:
        """Whether `close` was called (a closed screener raises `EngineError` when used)."""
        return self._compiled.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

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
            EngineError: the rules engine failed, or the screener was closed (a
                ``RuntimeError``).
        """
        self._compiled.ensure_open()
        intake = coerce_form(form)
        cache = self._cache
        if not cache.active:
            cache.skip()
            return self._assess(intake)
        # Exact cache: the key is the whole validated form except the caller's own id.
        key = intake.model_dump_json(exclude={"client_id"})
        cached: Assessment | None = cache.get(key)
        if cached is None:
            cached = self._assess(intake.model_copy(update={"client_id": None}))
            cache.put(key, cached)
        if intake.client_id is None:
            return cached
        return cached.model_copy(update={"client_id": intake.client_id})

    # -- batch hooks ------------------------------------------------------------------------
    # The batch doors (``hipscreen/_batch``) screen validated forms through these three methods:
    # the same findings as `assess`, screened many to an engine session, without the per-form
    # cache (a batch keeps its own). They take `IntakeForm` values only, never raw input.

    def brief(self, intake: IntakeForm) -> Brief:
        """What a table row holds, without evidence and without building an `Assessment` (the
        batch workers' path: the same findings, sides, confidence, plan and referral)."""
        self._compiled.ensure_open()
        grades = _grades(intake)
        return self._brief_of(intake, grades, self._findings(FormFacts(intake, grades), False))

    def briefs(self, intakes: Sequence[IntakeForm]) -> list[Brief | EngineError]:
        """`brief` for many validated forms, screened in shared engine sessions; a form the
        engine failed on gives its `EngineError` in its place."""
        return self._screen_shared(intakes, False, self._brief_of)

    def assess_validated(self, intakes: Sequence[IntakeForm]) -> list[Assessment | EngineError]:
        """`assess` for many validated forms, screened in shared engine sessions; a form the
        engine failed on gives its `EngineError` in its place (the cache is not asked)."""
        return self._screen_shared(intakes, True, self._assessment)

    def _screen_shared(
        self,
        intakes: Sequence[IntakeForm],
        evidence: bool,
        build: Callable[[IntakeForm, dict[Measure, list[Grade]], list[dict[str, Any]]], _Out],
    ) -> list[_Out | EngineError]:
        """What ``build`` makes of each form and its findings, or the form's `EngineError`."""
        self._compiled.ensure_open()
        grades = [_grades(intake) for intake in intakes]
        found = self._findings_shared(
            [FormFacts(i, g) for i, g in zip(intakes, grades, strict=True)], evidence
        )
        return [
            f if isinstance(f, EngineError) else build(i, g, f)
            for i, g, f in zip(intakes, grades, found, strict=True)
        ]

    def _brief_of(
        self,
        intake: IntakeForm,
        grades: Mapping[Measure, list[Grade]],
        findings: list[dict[str, Any]],
    ) -> Brief:
        recommendations, _ = self._planner.plan(intake, findings, grades[Measure.STRENGTH])
        referral = self._referral(findings)
        return Brief(
            findings,
            tuple(r.exercise.id for r in recommendations),
            None if referral is None else referral["urgency"],
            _not_assessed(intake, grades),
        )

    def _assess(self, intake: IntakeForm) -> Assessment:
        grades = _grades(intake)
        return self._assessment(intake, grades, self._findings(FormFacts(intake, grades)))

    def _assessment(
        self,
        intake: IntakeForm,
        grades: Mapping[Measure, list[Grade]],
        findings: list[dict[str, Any]],
    ) -> Assessment:
        recommendations, excluded = self._planner.plan(intake, findings, grades[Measure.STRENGTH])
        # One validation pass in pydantic-core is cheaper than constructing each part in Python.
        return Assessment.model_validate(
            {
                "findings": findings,
                "recommendations": recommendations,
                "referral": self._referral(findings),
                "excluded": excluded,
                "not_assessed": _not_assessed(intake, grades),
                "scores": () if intake.instruments is None else intake.instruments.scores(),
                "client_id": intake.client_id,
                "ruleset_version": self.ruleset.label,
                "disclaimer": self.ruleset.disclaimer,
            }
        )

    def _findings(self, form_facts: FormFacts, evidence: bool = True) -> list[dict[str, Any]]:
        """The findings as `Finding` fields, most severe first; without ``evidence`` their
        ``evidence`` lists are left empty (everything else is the same)."""
        drafts, on_fire = self._collector(form_facts, evidence)
        self._compiled.run(form_facts.facts, on_fire, drafts.clear)
        return self._assemble(drafts, evidence)

    def _findings_shared(
        self, forms: Sequence[FormFacts], evidence: bool
    ) -> list[list[dict[str, Any]] | EngineError]:
        """`_findings` of many forms, `FORMS_PER_SHARED_SESSION` to an engine session; a form
        whose rule action failed gets its `EngineError`. Forms the engine could not screen
        together are screened one by one (`CompiledRules.run_shared`)."""
        found: list[list[dict[str, Any]] | EngineError] = []
        for start in range(0, len(forms), FORMS_PER_SHARED_SESSION):
            group = forms[start : start + FORMS_PER_SHARED_SESSION]
            collectors = [self._collector(form_facts, evidence) for form_facts in group]
            callbacks = [on_fire for _, on_fire in collectors]
            errors = self._compiled.run_shared(
                [form_facts.facts for form_facts in group], _dispatch(callbacks)
            )
            if errors is None:
                for form_facts in group:
                    try:
                        found.append(self._findings(form_facts, evidence))
                    except EngineError as error:
                        found.append(error)
                continue
            for (drafts, _), failed in zip(collectors, errors, strict=True):
                found.append(
                    EngineError("a rule action failed: " + "; ".join(failed))
                    if failed
                    else self._assemble(drafts, evidence)
                )
        return found

    def _collector(
        self, form_facts: FormFacts, evidence: bool
    ) -> tuple[dict[int, _Draft], Callable[[str, Sequence[int]], Sequence[str]]]:
        """The drafts of one form's findings, and the engine callback that fills them."""
        drafts: dict[int, _Draft] = {}
        rules = self.ruleset.rules
        firings = self._firings
        observations = form_facts.observations
        facts = form_facts.facts
        finding_facts = self._finding_facts
        met = self._atoms_met

        def on_fire(name: str, matched: Sequence[int]) -> Sequence[str]:
            firing = firings[name]
            rule_index = firing.rule_index
            draft = drafts.get(rule_index)
            if draft is None:
                draft = drafts[rule_index] = _Draft(firing.severity, firing.rank)
                derived = finding_facts[rule_index]
            else:
                derived = ()
                if firing.rank > draft.rank:
                    draft.severity, draft.rank = firing.severity, firing.rank
            for index, cites, slot in zip(matched, firing.cites, firing.slots, strict=True):
                if index < 0:  # a finding's fact: the finding of rule -index-1
                    if -index - 1 != rule_index:
                        draft.derived_from.add(rules[-index - 1].id)
                    continue
                seen = observations[index]
                if not seen.cited:
                    continue  # an absence, listed under not_assessed rather than as evidence
                if evidence:
                    if cites is None:  # several options: which did this fact meet?
                        fact = facts[index]
                        key = (id(slot), fact[fact.index(",") :])  # the fact without its index
                        cites = met.get(key)
                        if cites is None:
                            if len(met) >= _MAX_REMEMBERED_MATCHES:
                                met.clear()
                            cites = met[key] = atoms_met(slot, fact_fields(fact))
                    found = draft.evidence
                    field, value, note = seen.field, seen.value, seen.note
                    for atom in cites:
                        found[(field, value, atom.describe, note)] = None
                if seen.side is not None:
                    draft.sides.add(seen.side)
                if seen.measured:
                    draft.measured = True
            return derived

        return drafts, on_fire

    def _assemble(self, drafts: dict[int, _Draft], evidence: bool) -> list[dict[str, Any]]:
        """The findings the drafts of one form make, most severe first."""
        rules = self.ruleset.rules
        order: dict[str, int] = self._order
        measured = {i for i, d in drafts.items() if d.measured}
        derived = [i for i, d in drafts.items() if d.derived_from]
        changed = bool(derived)
        while changed:  # a derived finding is measured when anything it rests on is
            changed = False
            for index in derived:
                if index not in measured and any(
                    order[finding_id] in measured for finding_id in drafts[index].derived_from
                ):
                    measured.add(index)
                    changed = True
        inherited = (
            _inherited_evidence(drafts, {rules[i].id: i for i in drafts}, order)
            if evidence and derived
            else {}
        )
        findings: list[dict[str, Any]] = []
        for index in sorted(drafts, key=lambda i: (-drafts[i].rank, i)):
            draft, spec = drafts[index], rules[index].spec
            found = draft.evidence
            items = [
                {"field": f, "value": v, "threshold": t, "note": n}
                for f, v, t, n in (sorted(found, key=_evidence_order) if len(found) > 1 else found)
            ]
            if index in inherited:
                items += inherited[index]
            sides = draft.sides
            findings.append(
                {
                    "id": spec.id,
                    "title": spec.title,
                    "severity": draft.severity,
                    "summary": spec.summary,
                    "evidence": items,
                    "source": spec.source,
                    "derived_from": (
                        sorted(draft.derived_from, key=order.__getitem__)
                        if draft.derived_from
                        else []
                    ),
                    "sides": [s for s in _SIDE_ORDER if s in sides] if sides else [],
                    "confidence": (
                        Confidence.MEASURED if index in measured else Confidence.REPORTED
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


def _dispatch(
    callbacks: Sequence[Callable[[str, Sequence[int]], Sequence[str]]],
) -> Callable[[int, str, Sequence[int]], Sequence[str]]:
    """One shared-session callback that hands each firing to its form's callback."""

    def on_fire(form: int, name: str, matched: Sequence[int]) -> Sequence[str]:
        return callbacks[form](name, matched)

    return on_fire


def _grades(intake: IntakeForm) -> dict[Measure, list[Grade]]:
    return {m: list(intake.grades(m.value)) for m in _MEASURES}


class Brief(NamedTuple):
    """A screening reduced to what a table row holds (`Screener.brief`)."""

    findings: list[dict[str, Any]]
    """`Finding` fields, most severe first, with empty ``evidence``."""
    exercise_ids: tuple[str, ...]
    urgency: Urgency | None
    not_assessed: tuple[str, ...]


EvidenceKey = tuple[str, Any, str | None, str | None]  # field, value, test met, note


def _evidence_order(key: EvidenceKey) -> tuple[str, str]:
    return key[0], str(key[1])


def _inherited_evidence(
    drafts: Mapping[int, _Draft], index_of: Mapping[str, int], order: Mapping[str, int]
) -> dict[int, list[dict[str, Any]]]:
    """For each derived finding, the input evidence of the findings it rests on, each item
    marked ``via`` the finding the input made fire (followed through chains of derived
    findings), so the finding explains itself without following the chain by hand."""
    roots: dict[int, dict[tuple[str, EvidenceKey], None]] = {}

    def collect(index: int) -> dict[tuple[str, EvidenceKey], None]:
        found = roots.get(index)
        if found is None:
            found = roots[index] = {}  # rule data has no cycles; this also guards against one
            for finding_id in sorted(drafts[index].derived_from, key=order.__getitem__):
                source = index_of[finding_id]
                for key in sorted(drafts[source].evidence, key=_evidence_order):
                    found[(finding_id, key)] = None
                found.update(collect(source))
        return found

    inherited: dict[int, list[dict[str, Any]]] = {}
    for index, draft in drafts.items():
        if not draft.derived_from:
            continue
        items = [
            {"field": f, "value": v, "threshold": t, "note": n, "via": via}
            for via, (f, v, t, n) in collect(index)
            if (f, v, t, n) not in draft.evidence
        ]
        if items:
            inherited[index] = items
    return inherited


def _atoms(option: Atom | tuple[Atom, ...]) -> tuple[Atom, ...]:
    return (option,) if isinstance(option, Atom) else option


# What `_not_assessed` lists, formatted once from its wording (``not_assessed`` in
# rules/tables.yaml): per measure and set of muscle groups graded, the groups not graded; the
# motions not measured; the length tests and safety questions left blank.
_WORDING = tables().not_assessed
_GROUP_SETS = [
    frozenset(g for i, g in enumerate(MuscleGroup) if mask >> i & 1)
    for mask in range(1 << len(MuscleGroup))
]
_NOT_GRADED = {
    (measure, given): tuple(
        _WORDING.not_graded.format(measure=measure.value, group=g.value)
        for g in MuscleGroup
        if g not in given
    )
    for measure in Measure
    for given in _GROUP_SETS
}
_NOT_MEASURED = [(m, _WORDING.not_measured.format(motion=m.value)) for m in RomMotion]
_NO_ROM = tuple(text for _, text in _NOT_MEASURED)
_LENGTH_WORDING = tuple(
    (frozenset(t.value for t in entry.tests), entry.text) for entry in _WORDING.length_tests
)
_NO_LENGTH_TEST = tuple(text for _, text in _LENGTH_WORDING)
_LENGTH_FIELDS = ("thomas_test", "straight_leg_raise", "active_knee_extension")


def _not_assessed(form: IntakeForm, grades: Mapping[Measure, Sequence[Grade]]) -> tuple[str, ...]:
    missing: list[str] = []
    for measure, given_grades in grades.items():
        missing += _NOT_GRADED[measure, frozenset([grade[0].group for grade in given_grades])]
    if form.rom is None:
        missing += _NO_ROM
    else:
        measured = {motion for motion, *_ in form.angles()}
        missing += [text for m, text in _NOT_MEASURED if m not in measured]
    if all(getattr(form, name) is None for name in _LENGTH_FIELDS):
        missing += _NO_LENGTH_TEST
    else:
        tests = {name for name, *_ in form.measurements()}  # an empty test record gives nothing
        missing += [text for names, text in _LENGTH_WORDING if tests.isdisjoint(names)]
    # The safety questions a red flag turns on: blank means not asked, never "no".
    missing += [text for attr, text in _SAFETY_QUESTIONS if getattr(form, attr) is None]
    if form.recent_fall is None and Symptom.RECENT_FALL_OR_MINOR_TRAUMA in form.symptoms:
        missing.remove(_FALL_QUESTION)  # the tick answers it
    if form.symptom_checklist_completed is not True:
        missing.append(_RED_FLAG_QUESTIONS)
    return tuple(missing)


# The tri-state safety questions (issue 20): blank is listed here and never read as "no".
_SAFETY_QUESTIONS = tuple(_WORDING.safety_questions.items())
_FALL_QUESTION = _WORDING.safety_questions["recent_fall"]
_RED_FLAG_QUESTIONS = _WORDING.red_flag_questions


_default: Screener | None = None
_default_lock = ForkSafeLock()


def _unpickled(ruleset: RuleSet, cache_size: int, digest: str) -> Screener:
    """A pickled `Screener`, compiled again from its rule set, checked by digest."""
    if not isinstance(ruleset, RuleSet) or ruleset.digest != digest:
        raise RuleDataError(
            [RuleProblem("", "", "", "the pickled screener's rule set does not match its digest")]
        )
    return Screener.from_ruleset(ruleset, cache_size=cache_size)


def _default_unpickled(digest: str) -> Screener:
    """The pickled built-in screener: this process's own, if its rules are the same."""
    screener = default_screener()
    if screener.ruleset.digest != digest:
        raise RuleDataError(
            [
                RuleProblem(
                    "",
                    "",
                    "",
                    "the pickled screener used other built-in rules (another hipscreen version: "
                    f"{digest[:12]}, here {screener.ruleset.digest[:12]})",
                )
            ]
        )
    return screener


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

    Examples:
        >>> import hipscreen
        >>> result = hipscreen.assess({"tightness": {"iliopsoas": "severe"},
        ...                            "strength": {"gluteus_maximus": 3}})
        >>> "flexor-extensor-imbalance" in result.finding_ids()
        True
    """
    return default_screener().assess(form)
