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
    AtomsMet,
    CompiledRules,
    EngineRule,
    Slot,
    compile_rules,
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
from hipscreen._results import Assessment, deferred_assessment
from hipscreen._rules.atoms import Atom, Condition, alternatives, finding_refs
from hipscreen._rules.files import ReferralSpec, RuleSpec
from hipscreen._rules.loader import load_ruleset
from hipscreen._rules.ruleset import RuleSet
from hipscreen._vocabulary import (
    Confidence,
    Measure,
    Severity,
    Side,
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
    several: tuple[int, ...] = ()  # the slots with several options (their cite is None)


Fired = tuple[_Firing, tuple[tuple[Atom, ...] | None, ...], Sequence[int]]
"""One firing of a rule: the engine rule, the atoms each slot's fact met (`_Firing.cites`, with
the options a fact of a several-option slot met filled in) and the index of the fact bound to
each slot."""

_Draft = list[Fired]
"""The firings of one rule for one form (one draft per rule that fired), in the order the engine
reported them: the finding, its severity, evidence and sides are read off them afterwards."""


class Found(NamedTuple):
    """One finding as screened, without its evidence (the output `Finding` is built from it,
    with the evidence, when the assessment is read)."""

    rule_index: int
    """The rule's position in the rule set."""
    id: str
    severity: Severity
    sides: tuple[Side, ...]
    derived_from: tuple[str, ...]
    confidence: Confidence


_new = tuple.__new__  # builds a `Found` without a Python-level ``__new__`` call


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
                    several = tuple(k for k, atoms in enumerate(cites) if atoms is None)
                    self._firings[name] = _Firing(
                        index, severity, full, cites, severity.rank, several
                    )
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
        self._output = _Output(self.ruleset, self._planner)
        # Which options of a several-option slot a fact meets; the slots live as long as the
        # screener, so their ids are stable keys.
        self._atoms_met = AtomsMet(_MAX_REMEMBERED_MATCHES)

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

        The engine decides every finding here; the output model (evidence, plan, referral) is
        built from what it matched when the assessment is first read.

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
            return self._assess(intake, intake.client_id)
        # Exact cache: the key is the whole validated form except the caller's own id.
        key = intake.model_dump_json(exclude={"client_id"})
        cached: Assessment | None = cache.get(key)
        if cached is None:
            cached = self._assess(intake, None)
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
        form_facts = FormFacts(intake, _grades(intake))
        return self._brief_of(intake, form_facts, self._findings(form_facts, False))

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
        build: Callable[[IntakeForm, FormFacts, dict[int, _Draft]], _Out],
    ) -> list[_Out | EngineError]:
        """What ``build`` makes of each form and its drafts, or the form's `EngineError`."""
        self._compiled.ensure_open()
        form_facts = [FormFacts(intake, _grades(intake)) for intake in intakes]
        found = self._findings_shared(form_facts, evidence)
        return [
            f if isinstance(f, EngineError) else build(i, ff, f)
            for i, ff, f in zip(intakes, form_facts, found, strict=True)
        ]

    def _brief_of(
        self, intake: IntakeForm, form_facts: FormFacts, drafts: dict[int, _Draft]
    ) -> Brief:
        output = self._output
        found = output.assemble(drafts, form_facts)
        referral = output.referral(found)
        return Brief(
            found,
            output.planner.exercise_ids(intake, found, form_facts.strength),
            None if referral is None else referral[0].urgency,
            form_facts.not_assessed,
        )

    def _assess(self, intake: IntakeForm, client_id: str | None) -> Assessment:
        form_facts = FormFacts(intake, _grades(intake))
        return deferred_assessment(
            _Screening(self._output, intake, form_facts, self._findings(form_facts)), client_id
        )

    def _assessment(
        self, intake: IntakeForm, form_facts: FormFacts, drafts: dict[int, _Draft]
    ) -> Assessment:
        return deferred_assessment(
            _Screening(self._output, intake, form_facts, drafts), intake.client_id
        )

    def _findings(self, form_facts: FormFacts, evidence: bool = True) -> dict[int, _Draft]:
        """The drafts of the form's findings, by rule index (in the order they first fired);
        without ``evidence`` a several-option slot's fact is not checked for which options it
        met (nothing else differs)."""
        drafts, on_fire = self._collector(form_facts, evidence)
        self._compiled.run(form_facts.facts, on_fire, drafts.clear)
        return drafts

    def _findings_shared(
        self, forms: Sequence[FormFacts], evidence: bool
    ) -> list[dict[int, _Draft] | EngineError]:
        """`_findings` of many forms, `FORMS_PER_SHARED_SESSION` to an engine session; a form
        whose rule action failed gets its `EngineError`. Forms the engine could not screen
        together are screened one by one (`CompiledRules.run_shared`)."""
        found: list[dict[int, _Draft] | EngineError] = []
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
                    EngineError("a rule action failed: " + "; ".join(failed)) if failed else drafts
                )
        return found

    def _collector(
        self, form_facts: FormFacts, evidence: bool
    ) -> tuple[dict[int, _Draft], Callable[[str, Sequence[int]], Sequence[str]]]:
        """The drafts of one form's findings, and the engine callback that fills them.

        A firing is kept as the engine reported it (its cites and matched indices): what the
        finding says is read off the drafts after the run (`_Output.assemble`), and its evidence
        only when the assessment is read (`_Output.evidence`).
        """
        drafts: dict[int, _Draft] = {}
        firings = self._firings
        finding_facts = self._finding_facts
        observations = form_facts.observations
        facts = form_facts.facts
        met = self._atoms_met

        def on_fire(name: str, matched: Sequence[int]) -> Sequence[str]:
            firing = firings[name]
            cites = firing.cites
            if firing.several and evidence:  # which options did these facts meet?
                filled = list(cites)
                for k in firing.several:
                    i = matched[k]
                    if i >= 0 and observations[i].cited:
                        filled[k] = met(firing.slots[k], facts[i])
                cites = tuple(filled)
            rule_index = firing.rule_index
            draft = drafts.get(rule_index)
            if draft is None:
                drafts[rule_index] = [(firing, cites, matched)]
                return finding_facts[rule_index]
            draft.append((firing, cites, matched))
            return ()

        return drafts, on_fire


class _Output:
    """What turns one rule set's drafts into findings and an `Assessment`: the rule set's tables
    (no reference to the `Screener`, so a kept assessment does not keep the engine alive)."""

    def __init__(self, ruleset: RuleSet, planner: Planner) -> None:
        self.rules = ruleset.rules
        self.label = ruleset.label
        self.disclaimer = ruleset.disclaimer
        self.planner = planner
        self.order = {rule.id: i for i, rule in enumerate(ruleset.rules)}
        self.referrals = {
            rule.id: rule.spec.referral for rule in ruleset.rules if rule.spec.referral
        }

    def assemble(self, drafts: Mapping[int, _Draft], form_facts: FormFacts) -> list[Found]:
        """The findings the drafts of one form make, most severe first (without evidence)."""
        rules = self.rules
        order = self.order
        observations = form_facts.observations
        parts: dict[int, tuple[set[Side], set[str]]] = {}
        severity: dict[int, tuple[int, Severity]] = {}
        measured: set[int] = set()
        derived: list[int] = []
        for index, draft in drafts.items():
            sides: set[Side] = set()
            derived_from: set[str] = set()
            first = draft[0][0]
            rank, most = first.rank, first.severity  # an escalation can only raise it
            for firing, _, matched in draft:
                if firing.rank > rank:
                    rank, most = firing.rank, firing.severity
                for i in matched:
                    if i < 0:  # a finding's fact: the finding of rule -i-1
                        if -i - 1 != index:
                            derived_from.add(rules[-i - 1].id)
                        continue
                    seen = observations[i]
                    if not seen.cited:
                        continue  # an absence, listed under not_assessed rather than as evidence
                    if seen.side is not None:
                        sides.add(seen.side)
                    if seen.measured:
                        measured.add(index)
            parts[index] = (sides, derived_from)
            severity[index] = (rank, most)
            if derived_from:
                derived.append(index)
        changed = bool(derived)
        while changed:  # a derived finding is measured when anything it rests on is
            changed = False
            for index in derived:
                if index not in measured and any(
                    order[finding_id] in measured for finding_id in parts[index][1]
                ):
                    measured.add(index)
                    changed = True
        found: list[Found] = []
        for index in sorted(drafts, key=lambda i: (-severity[i][0], i)):
            sides, derived_from = parts[index]
            found.append(
                _new(
                    Found,
                    (
                        index,
                        rules[index].id,
                        severity[index][1],
                        tuple([s for s in _SIDE_ORDER if s in sides]) if sides else (),
                        tuple(sorted(derived_from, key=order.__getitem__)) if derived_from else (),
                        Confidence.MEASURED if index in measured else Confidence.REPORTED,
                    ),
                )
            )
        return found

    def referral(self, findings: Sequence[Found]) -> tuple[ReferralSpec, tuple[str, ...]] | None:
        """The referral the findings make (the most urgent; ties: finding order) and the
        findings behind it, or None."""
        referrals = self.referrals
        referring = [(f.id, referrals[f.id]) for f in findings if f.id in referrals]
        if not referring:
            return None
        referring.sort(key=lambda item: _URGENCY_RANK[item[1].urgency])  # stable: finding order
        return referring[0][1], tuple([finding_id for finding_id, _ in referring])

    def evidence(
        self, drafts: Mapping[int, _Draft], form_facts: FormFacts, found: Sequence[Found]
    ) -> dict[int, list[dict[str, Any]]]:
        """Each finding's `Evidence` fields by rule index: the inputs its firings cited, sorted,
        then for a derived finding the inputs of the findings it rests on (``via``)."""
        observations = form_facts.observations
        cited: dict[int, dict[EvidenceKey, None]] = {}
        for index, draft in drafts.items():
            keys: dict[EvidenceKey, None] = {}
            for _, cites, matched in draft:
                for i, atoms in zip(matched, cites, strict=True):
                    if i < 0:
                        continue
                    seen = observations[i]
                    if not seen.cited or atoms is None:
                        continue
                    field, value, note = seen.field, seen.value, seen.note
                    for atom in atoms:
                        keys[(field, value, atom.describe, note)] = None
            cited[index] = keys
        derived_from = {f.rule_index: f.derived_from for f in found if f.derived_from}
        inherited = (
            _inherited_evidence(
                cited, derived_from, {self.rules[i].id: i for i in drafts}, self.order
            )
            if derived_from
            else {}
        )
        items: dict[int, list[dict[str, Any]]] = {}
        for index, keys in cited.items():
            listed = [
                {"field": f, "value": v, "threshold": t, "note": n}
                for f, v, t, n in (sorted(keys, key=_evidence_order) if len(keys) > 1 else keys)
            ]
            if index in inherited:
                listed += inherited[index]
            items[index] = listed
        return items


class _Screening:
    """One form as the engine screened it: what `deferred_assessment` builds the `Assessment`
    from when it is first read (`build`)."""

    __slots__ = ("drafts", "form_facts", "intake", "output")

    def __init__(
        self,
        output: _Output,
        intake: IntakeForm,
        form_facts: FormFacts,
        drafts: dict[int, _Draft],
    ) -> None:
        self.output = output
        self.intake = intake
        self.form_facts = form_facts
        self.drafts = drafts

    def build(self) -> Assessment:
        """The `Assessment`, validated in one pass in pydantic-core (cheaper than constructing
        each part in Python)."""
        output, form_facts, drafts = self.output, self.form_facts, self.drafts
        found = output.assemble(drafts, form_facts)
        recommendations, excluded = output.planner.plan(self.intake, found, form_facts.strength)
        evidence = output.evidence(drafts, form_facts, found)
        rules = output.rules
        referral = output.referral(found)
        return Assessment.model_validate(
            {
                "findings": [
                    _finding_fields(f, rules[f.rule_index].spec, evidence[f.rule_index])
                    for f in found
                ],
                "recommendations": recommendations,
                "referral": (
                    None
                    if referral is None
                    else {
                        "urgency": referral[0].urgency,
                        "see": referral[0].see,
                        "message": referral[0].message,
                        "because": referral[1],
                    }
                ),
                "excluded": excluded,
                "not_assessed": form_facts.not_assessed,
                "scores": form_facts.scores,
                "client_id": self.intake.client_id,
                "ruleset_version": output.label,
                "disclaimer": output.disclaimer,
            }
        )


def _finding_fields(found: Found, spec: RuleSpec, evidence: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields of one output `Finding`, for the one validation pass of `_Screening.build`."""
    return {
        "id": found.id,
        "title": spec.title,
        "severity": found.severity,
        "summary": spec.summary,
        "evidence": evidence,
        "source": spec.source,
        "derived_from": found.derived_from,
        "sides": found.sides,
        "confidence": found.confidence,
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

    findings: list[Found]
    """The findings, most severe first, without evidence."""
    exercise_ids: tuple[str, ...]
    urgency: Urgency | None
    not_assessed: tuple[str, ...]


EvidenceKey = tuple[str, Any, str | None, str | None]  # field, value, test met, note


def _evidence_order(key: EvidenceKey) -> tuple[str, str]:
    return key[0], str(key[1])


def _inherited_evidence(
    cited: Mapping[int, Mapping[EvidenceKey, None]],
    derived_from: Mapping[int, Sequence[str]],
    index_of: Mapping[str, int],
    order: Mapping[str, int],
) -> dict[int, list[dict[str, Any]]]:
    """For each derived finding, the input evidence of the findings it rests on, each item
    marked ``via`` the finding the input made fire (followed through chains of derived
    findings), so the finding explains itself without following the chain by hand.
    ``derived_from`` holds each derived finding's sources in rule order."""
    roots: dict[int, dict[tuple[str, EvidenceKey], None]] = {}

    def collect(index: int) -> dict[tuple[str, EvidenceKey], None]:
        found = roots.get(index)
        if found is None:
            found = roots[index] = {}  # rule data has no cycles; this also guards against one
            for finding_id in derived_from.get(index, ()):
                source = index_of[finding_id]
                for key in sorted(cited[source], key=_evidence_order):
                    found[(finding_id, key)] = None
                found.update(collect(source))
        return found

    inherited: dict[int, list[dict[str, Any]]] = {}
    for index in derived_from:
        own = cited[index]
        items = [
            {"field": f, "value": v, "threshold": t, "note": n, "via": via}
            for via, (f, v, t, n) in collect(index)
            if (f, v, t, n) not in own
        ]
        if items:
            inherited[index] = items
    return inherited


def _atoms(option: Atom | tuple[Atom, ...]) -> tuple[Atom, ...]:
    return (option,) if isinstance(option, Atom) else option


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
