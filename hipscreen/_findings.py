"""Firings become findings: a form's drafts (the engine's firings, rule by rule) assembled into
typed findings, the referral they make, their evidence, and the `Assessment` built from them
when it is first read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from hipscreen._facts import FormFacts
from hipscreen._intake.form import IntakeForm
from hipscreen._network import Firing
from hipscreen._plan import Planner
from hipscreen._results import Assessment
from hipscreen._rules.atoms import Atom
from hipscreen._rules.files import ReferralSpec, RuleSpec
from hipscreen._rules.ruleset import RuleSet
from hipscreen._vocabulary import Confidence, Severity, Side, Urgency

__all__ = ["Assembler", "Brief", "Draft", "Fired", "Found", "Screening"]

_SIDE_ORDER = [Side.LEFT, Side.RIGHT, Side.BOTH]
_URGENCY_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}


Fired = tuple[Firing, tuple[tuple[Atom, ...] | None, ...], Sequence[int]]
"""One firing of a rule: the engine rule, the atoms each slot's fact met (`Firing.cites`, with
the options a fact of a several-option slot met filled in) and the index of the fact bound to
each slot."""

Draft = list[Fired]
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


class Brief(NamedTuple):
    """A screening reduced to what a table row holds (`Screener.brief`)."""

    findings: list[Found]
    """The findings, most severe first, without evidence."""
    exercise_ids: tuple[str, ...]
    urgency: Urgency | None
    not_assessed: tuple[str, ...]


class Assembler:
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

    def assemble(self, drafts: Mapping[int, Draft], form_facts: FormFacts) -> list[Found]:
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
        self, drafts: Mapping[int, Draft], form_facts: FormFacts, found: Sequence[Found]
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


class Screening:
    """One form as the engine screened it: what `deferred_assessment` builds the `Assessment`
    from when it is first read (`build`)."""

    __slots__ = ("drafts", "form_facts", "intake", "output")

    def __init__(
        self,
        output: Assembler,
        intake: IntakeForm,
        form_facts: FormFacts,
        drafts: dict[int, Draft],
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
    """The fields of one output `Finding`, for the one validation pass of `Screening.build`."""
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
