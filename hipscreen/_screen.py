"""Screening: a `Screener` compiles a rule set once, then turns each form into engine facts, runs
the engine and hands the firings to `hipscreen._findings`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from hipscreen._cache import SelfTuningCache
from hipscreen._engine import (
    FORMS_PER_SHARED_SESSION,
    AtomsMet,
    CompiledRules,
    compile_rules,
)
from hipscreen._errors import EngineError, RuleDataError, RuleProblem
from hipscreen._facts import FormFacts, Grade
from hipscreen._findings import Assembler, Brief, Draft, Screening
from hipscreen._forksafe import ForkSafeLock
from hipscreen._intake.form import IntakeForm, coerce_form
from hipscreen._network import engine_network
from hipscreen._plan import Planner
from hipscreen._results import Assessment, deferred_assessment
from hipscreen._rules.loader import load_ruleset
from hipscreen._rules.ruleset import RuleSet
from hipscreen._vocabulary import Measure

__all__ = ["Screener", "assess", "default_screener"]

_Out = TypeVar("_Out")
_MEASURES = tuple(Measure)
_MAX_REMEMBERED_MATCHES = 2048
"""Which atoms of a several-option pattern a fact met, remembered (facts recur across forms)."""


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
        network = engine_network(ruleset)
        self._firings = network.firings
        self._compiled: CompiledRules = compile_rules(network.rules, ruleset.digest[:12])
        self._finding_facts = network.finding_facts
        self._planner = Planner(ruleset)
        self._output = Assembler(ruleset, self._planner)
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
        build: Callable[[IntakeForm, FormFacts, dict[int, Draft]], _Out],
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
        self, intake: IntakeForm, form_facts: FormFacts, drafts: dict[int, Draft]
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
            Screening(self._output, intake, form_facts, self._findings(form_facts)), client_id
        )

    def _assessment(
        self, intake: IntakeForm, form_facts: FormFacts, drafts: dict[int, Draft]
    ) -> Assessment:
        return deferred_assessment(
            Screening(self._output, intake, form_facts, drafts), intake.client_id
        )

    def _findings(self, form_facts: FormFacts, evidence: bool = True) -> dict[int, Draft]:
        """The drafts of the form's findings, by rule index (in the order they first fired);
        without ``evidence`` a several-option slot's fact is not checked for which options it
        met (nothing else differs)."""
        drafts, on_fire = self._collector(form_facts, evidence)
        self._compiled.run(form_facts.facts, on_fire, drafts.clear)
        return drafts

    def _findings_shared(
        self, forms: Sequence[FormFacts], evidence: bool
    ) -> list[dict[int, Draft] | EngineError]:
        """`_findings` of many forms, `FORMS_PER_SHARED_SESSION` to an engine session; a form
        whose rule action failed gets its `EngineError`. Forms the engine could not screen
        together are screened one by one (`CompiledRules.run_shared`)."""
        found: list[dict[int, Draft] | EngineError] = []
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
    ) -> tuple[dict[int, Draft], Callable[[str, Sequence[int]], Sequence[str]]]:
        """The drafts of one form's findings, and the engine callback that fills them.

        A firing is kept as the engine reported it (its cites and matched indices): what the
        finding says is read off the drafts after the run (`Assembler.assemble`), and its evidence
        only when the assessment is read (`Assembler.evidence`).
        """
        drafts: dict[int, Draft] = {}
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


def _dispatch(
    callbacks: Sequence[Callable[[str, Sequence[int]], Sequence[str]]],
) -> Callable[[int, str, Sequence[int]], Sequence[str]]:
    """One shared-session callback that hands each firing to its form's callback."""

    def on_fire(form: int, name: str, matched: Sequence[int]) -> Sequence[str]:
        return callbacks[form](name, matched)

    return on_fire


def _grades(intake: IntakeForm) -> dict[Measure, list[Grade]]:
    grade_list = intake.grade_list
    return {m: grade_list(m) for m in _MEASURES}


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
