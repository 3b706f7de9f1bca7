"""HL7 CDS Hooks 2.0.1 cards: one card per finding, for integrators that already speak CDS Hooks.

The card text comes from the findings and the rule data (summary, title, source, exercise names and
doses); this module adds only structure. See the CDS Hooks specification, "CDS Service Response".
No element of a card is ever null or empty (the spec's "Use of JSON"): optional parts are left out
when they have no value.

Resources for ``create`` actions (a ServiceRequest for the referral, a CarePlan for the exercise
plan) come from a pluggable `ResourceFactory`; this module only wraps them in the action structure.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NotRequired

# typing_extensions' TypedDict: pydantic builds the cards' JSON Schema (the web service's OpenAPI
# document) from it, which it refuses to do from typing.TypedDict on Python < 3.12.
from typing_extensions import TypedDict

from hipscreen._render.evidence import EvidenceFormat, derived_line, evidence_lines
from hipscreen._vocabulary import Severity

if TYPE_CHECKING:
    from hipscreen._results import Assessment, Finding, Recommendation

__all__ = [
    "CARD_NAMESPACE",
    "OVERRIDE_REASONS",
    "OVERRIDE_SYSTEM",
    "SOURCE_LABEL",
    "TOPIC_SYSTEM",
    "CdsCard",
    "ResourceFactory",
    "cards_for",
]

TOPIC_SYSTEM = "urn:hipscreen:finding"
"""The Coding system of a card's ``source.topic``: its code is the finding id."""

CARD_NAMESPACE = uuid.UUID("6f3c2a51-7f0e-5c0a-9d1e-2b8f3c4d5e60")
"""Namespace of the card uuids (uuid5), so the same assessment always gives the same cards."""

SUMMARY_LIMIT = 139
"""CDS Hooks: the summary is one sentence of fewer than 140 characters."""

SOURCE_LABEL = "hipscreen"
"""A card's ``source.label``: short, as the spec asks; the rule's own citation is in ``detail``."""

OVERRIDE_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
"""HL7's non-adherence (override) reason codes (CDS Hooks, CodeSystem non-adherence-reason-codes,
from AHRQ CDSiC "Approaches to Standardizing Override Reasons", 2025)."""

OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("patient-ineligible", "Patient does not meet eligibility for recommended action"),
    ("action-completed", "Recommended action was already completed"),
    ("indication-order-exists", "Patient has indication/order for intended action"),
    (
        "need-more-info",
        "Could not address recommended action due to need for more information/pending "
        "results/pending consult",
    ),
    ("patient-contraindication", "Patient has contraindication to recommended action"),
    ("risk-benefit-ratio", "Recipient assessment of risk/benefit ratio"),
    ("expert-contradicts", "Advice from expert contradicts the recommended action"),
    ("prefers-alternative", "Patient prefers an alternative approach or treatment"),
    ("service-not-available", "Treatment or service is not practically available"),
)
"""The override reasons every card offers: (code, display), displays verbatim from the codes."""

ResourceFactory = Callable[["Assessment", str, "str | None"], "Mapping[str, Any] | None"]
"""Makes the FHIR resource of a ``create`` action: called with the assessment, the resource type
(``"ServiceRequest"`` for the referral, ``"CarePlan"`` for the exercise plan) and the patient id
(or None); returns the resource as a JSON dict, or None for no action."""


class CdsCoding(TypedDict):
    """A FHIR Coding (the card's topic, an override reason)."""

    system: str
    version: NotRequired[str]
    code: str
    display: str


class CdsSource(TypedDict):
    """Where a card's content comes from."""

    label: str
    url: NotRequired[str]
    topic: CdsCoding


class CdsAction(TypedDict):
    """A change a suggestion proposes: here always the creation of a FHIR resource."""

    type: Literal["create"]
    description: str
    resource: dict[str, Any]


class CdsSuggestion(TypedDict):
    """One suggestion: an exercise of the plan, or the referral / plan as resources to create."""

    label: str
    uuid: str
    isRecommended: bool
    actions: NotRequired[list[CdsAction]]


class CdsLink(TypedDict):
    """A link for more information (an absolute URL)."""

    label: str
    url: str
    type: Literal["absolute"]


class CdsCard(TypedDict):
    """One CDS Hooks card (``summary``, ``indicator`` and ``source`` are required by the spec)."""

    uuid: str
    summary: str
    indicator: Literal["info", "warning", "critical"]
    detail: str
    source: CdsSource
    suggestions: NotRequired[list[CdsSuggestion]]
    selectionBehavior: NotRequired[Literal["any"]]
    overrideReasons: list[CdsCoding]
    links: NotRequired[list[CdsLink]]


# Underscores inside a word never make emphasis (GFM), so snake_case names stay readable.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|]|(?<!\w)_|_(?!\w))")


_INDICATOR: dict[Severity, Literal["info", "warning", "critical"]] = {
    Severity.INFO: "info",
    Severity.WARNING: "warning",
    Severity.CRITICAL: "critical",
}


def _md(text: object) -> str:
    """Text with the Markdown characters that could change its meaning escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def _code(text: object) -> str:
    return f"`{text}`"


_EVIDENCE = EvidenceFormat(
    line="- {field} = {value}",
    threshold=" · {}",
    via=" · via {}",
    note=" · {}",
    derived="- derived from: {}",
    ident=_code,
    text=_md,
)
"""A finding's evidence in a card's Markdown ``detail`` (field paths and ids as code)."""


def _summary(text: str) -> str:
    if len(text) <= SUMMARY_LIMIT:
        return text
    return text[: SUMMARY_LIMIT - 1].rstrip() + "…"


def cards_for(
    assessment: Assessment,
    *,
    min_indicator: Severity | str = Severity.INFO,
    hook_instance: str | None = None,
    base_url: str | None = None,
    resources: ResourceFactory | None = None,
    patient_id: str | None = None,
) -> list[CdsCard]:
    """The CDS Hooks cards for an assessment: one per finding, most urgent first.

    A red flag (a critical finding) puts exercise advice on hold: then only the critical findings
    get a card, so they are not lost among exercise cards. The findings behind a referral always
    get a card, whatever ``min_indicator`` says, and their card carries the referral.

    Args:
        assessment: the screening result.
        min_indicator: leave out findings less urgent than this (``"warning"`` keeps warning and
            critical cards), to keep the number of cards small.
        hook_instance: the CDS Hooks call these cards answer: it enters the card and suggestion
            uuids, so each call gets its own (feedback then names one call). Without it the uuids
            depend on the assessment alone.
        base_url: the absolute URL the rule catalog is served under (``{base_url}/rules``): the
            cards then get ``source.url`` and a link to their rule's page.
        resources: makes the FHIR resources of ``create`` actions (see `ResourceFactory`): the
            referral card gets a suggestion creating a ServiceRequest, the first card with
            exercises one creating the CarePlan. Without it suggestions carry no actions.
        patient_id: handed to ``resources``.

    Returns:
        JSON-ready dicts; a CDS service answers ``{"cards": cards}`` (``[]`` when nothing to say).

    Raises:
        ValueError: ``min_indicator`` is not ``info``, ``warning`` or ``critical``, or
            ``resources`` returned something that is not a resource of the type asked for.
    """
    floor = Severity(min_indicator).rank
    referring = set(assessment.referral.because) if assessment.referral is not None else set()
    red_flag = any(f.severity is Severity.CRITICAL for f in assessment.findings)
    kept = []
    for finding in assessment.findings:
        if finding.id not in referring:
            if red_flag and finding.severity is not Severity.CRITICAL:
                continue
            if finding.severity.rank < floor:
                continue
        kept.append(finding)
    cards = [_card(assessment, finding, hook_instance, base_url) for finding in kept]
    if resources is not None:
        _add_actions(assessment, kept, cards, resources, patient_id)
    return cards


def _card(
    assessment: Assessment, finding: Finding, hook_instance: str | None, base_url: str | None
) -> CdsCard:
    version = assessment.ruleset_version
    key = f"{version}|{assessment.client_id or ''}|{finding.model_dump_json()}"
    if hook_instance is not None:
        key = f"{hook_instance}|{key}"
    card_uuid = uuid.uuid5(CARD_NAMESPACE, key)
    recommendations = [r for r in assessment.recommendations if finding.id in r.because]
    source: CdsSource = {
        "label": SOURCE_LABEL,
        "topic": {
            "system": TOPIC_SYSTEM,
            "version": version,
            "code": finding.id,
            "display": finding.title,
        },
    }
    card: CdsCard = {
        "uuid": str(card_uuid),
        "summary": _summary(finding.summary),
        "indicator": _INDICATOR[finding.severity],
        "detail": _detail(assessment, finding, recommendations),
        "source": source,
        "overrideReasons": [
            {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
            for code, display in OVERRIDE_REASONS
        ],
    }
    if base_url is not None:
        base = base_url.rstrip("/")
        source["url"] = f"{base}/rules"
        card["links"] = [
            {
                "label": f"{finding.title} ({finding.id}): the rule",
                "url": f"{base}/rules/{finding.id}",
                "type": "absolute",
            }
        ]
    if recommendations:
        card["suggestions"] = [
            {
                "label": f"{rec.exercise.name}: {rec.dose}",
                "uuid": str(uuid.uuid5(card_uuid, rec.exercise.id)),
                "isRecommended": True,
            }
            for rec in recommendations
        ]
        card["selectionBehavior"] = "any"
    return card


def _add_actions(
    assessment: Assessment,
    findings: list[Finding],
    cards: list[CdsCard],
    resources: ResourceFactory,
    patient_id: str | None,
) -> None:
    """One suggestion creating the referral's ServiceRequest on the first card behind the
    referral, one creating the plan's CarePlan on the first card with exercises."""
    referral = assessment.referral
    if referral is not None:
        for finding, card in zip(findings, cards, strict=True):
            if finding.id in referral.because:
                action = _create(assessment, "ServiceRequest", resources, patient_id)
                if action is not None:
                    label = f"{referral.urgency.value}: {referral.see}"
                    _suggest(card, label, "ServiceRequest", action)
                break
    for card in cards:
        if "suggestions" in card:
            action = _create(assessment, "CarePlan", resources, patient_id)
            if action is not None:
                _suggest(card, "CarePlan", "CarePlan", action)
            break


def _create(
    assessment: Assessment, kind: str, resources: ResourceFactory, patient_id: str | None
) -> CdsAction | None:
    resource = resources(assessment, kind, patient_id)
    if resource is None:
        return None
    if not isinstance(resource, Mapping) or resource.get("resourceType") != kind:
        got = resource.get("resourceType") if isinstance(resource, Mapping) else resource
        raise ValueError(f"resources must return a {kind} resource as a dict (got {got!r})")
    return {"type": "create", "description": f"create {kind}", "resource": dict(resource)}


def _suggest(card: CdsCard, label: str, key: str, action: CdsAction) -> None:
    suggestion: CdsSuggestion = {
        "label": label,
        "uuid": str(uuid.uuid5(uuid.UUID(card["uuid"]), key)),
        "isRecommended": True,
        "actions": [action],
    }
    card.setdefault("suggestions", []).insert(0, suggestion)
    card["selectionBehavior"] = "any"


def _detail(assessment: Assessment, finding: Finding, recommendations: list[Recommendation]) -> str:
    facts = [finding.severity.value, finding.confidence.value]
    if finding.sides:
        facts.append(", ".join(side.value for side in finding.sides))
    blocks = [f"**{_md(finding.title)}** ({'; '.join(facts)})"]

    evidence = evidence_lines(finding.evidence, _EVIDENCE)
    derived = derived_line(finding.derived_from, _EVIDENCE)
    if derived is not None:
        evidence.append(derived)
    if evidence:
        blocks.append("**Evidence**\n\n" + "\n".join(evidence))

    referral = assessment.referral
    if referral is not None and finding.id in referral.because:
        blocks.append(
            f"**Referral ({referral.urgency.value}):** see {_md(referral.see)}. "
            f"{_md(referral.message)}"
        )

    if recommendations:
        lines = []
        for rec in recommendations:
            line = f"- {_md(rec.exercise.name)}: {_md(rec.dose)}"
            if rec.emphasis is not None:
                line += f"; emphasis: {rec.emphasis.value} side"
            lines.append(line)
        blocks.append("**Exercises**\n\n" + "\n".join(lines))

    blocks.append(f"**Source:** {_md(finding.source)}")
    blocks.append(f"Rules {_md(assessment.ruleset_version)}, finding `{finding.id}`.")
    blocks.append(f"*{_md(assessment.disclaimer)}*")
    return "\n\n".join(blocks)
