"""HL7 CDS Hooks cards: one card per finding, for integrators that already speak CDS Hooks.

The card text comes from the findings and the rule data (summary, title, source, exercise names and
doses); this module adds only structure. See the CDS Hooks specification, "CDS Service Response".
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Literal, NotRequired

# typing_extensions' TypedDict: pydantic builds the cards' JSON Schema (the web service's OpenAPI
# document) from it, which it refuses to do from typing.TypedDict on Python < 3.12.
from typing_extensions import TypedDict

from hipscreen._vocabulary import Severity

if TYPE_CHECKING:
    from hipscreen._results import Assessment, Finding, Recommendation

__all__ = ["CARD_NAMESPACE", "TOPIC_SYSTEM", "CdsCard", "cards_for"]

TOPIC_SYSTEM = "urn:hipscreen:finding"
"""The Coding system of a card's ``source.topic``: its code is the finding id."""

CARD_NAMESPACE = uuid.UUID("6f3c2a51-7f0e-5c0a-9d1e-2b8f3c4d5e60")
"""Namespace of the card uuids (uuid5), so the same assessment always gives the same cards."""

SUMMARY_LIMIT = 139
"""CDS Hooks: the summary is one sentence of fewer than 140 characters."""


class CdsCoding(TypedDict):
    """A FHIR Coding (the card's topic)."""

    system: str
    version: str
    code: str
    display: str


class CdsSource(TypedDict):
    """Where a card's content comes from."""

    label: str
    topic: CdsCoding


class CdsSuggestion(TypedDict):
    """One exercise the card suggests (no FHIR actions: hipscreen writes no resources)."""

    label: str
    uuid: str
    isRecommended: bool


class CdsCard(TypedDict):
    """One CDS Hooks card (``summary``, ``indicator`` and ``source`` are required by the spec)."""

    uuid: str
    summary: str
    indicator: Literal["info", "warning", "critical"]
    detail: str
    source: CdsSource
    suggestions: NotRequired[list[CdsSuggestion]]
    selectionBehavior: NotRequired[Literal["any"]]


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


def _summary(text: str) -> str:
    if len(text) <= SUMMARY_LIMIT:
        return text
    return text[: SUMMARY_LIMIT - 1].rstrip() + "…"


def cards_for(
    assessment: Assessment, *, min_indicator: Severity | str = Severity.INFO
) -> list[CdsCard]:
    """The CDS Hooks cards for an assessment: one per finding, most urgent first.

    A red flag (a critical finding) puts exercise advice on hold: then only the critical findings
    get a card, so they are not lost among exercise cards. The findings behind a referral always
    get a card, whatever ``min_indicator`` says, and their card carries the referral.

    Args:
        assessment: the screening result.
        min_indicator: leave out findings less urgent than this (``"warning"`` keeps warning and
            critical cards), to keep the number of cards small.

    Returns:
        JSON-ready dicts; a CDS service answers ``{"cards": cards}`` (``[]`` when nothing to say).

    Raises:
        ValueError: ``min_indicator`` is not ``info``, ``warning`` or ``critical``.
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
    return [_card(assessment, finding) for finding in kept]


def _card(assessment: Assessment, finding: Finding) -> CdsCard:
    version = assessment.ruleset_version
    key = f"{version}|{assessment.client_id or ''}|{finding.model_dump_json()}"
    card_uuid = uuid.uuid5(CARD_NAMESPACE, key)
    recommendations = [r for r in assessment.recommendations if finding.id in r.because]
    card: CdsCard = {
        "uuid": str(card_uuid),
        "summary": _summary(finding.summary),
        "indicator": _INDICATOR[finding.severity],
        "detail": _detail(assessment, finding, recommendations),
        "source": {
            "label": finding.source,
            "topic": {
                "system": TOPIC_SYSTEM,
                "version": version,
                "code": finding.id,
                "display": finding.title,
            },
        },
    }
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


def _detail(assessment: Assessment, finding: Finding, recommendations: list[Recommendation]) -> str:
    facts = [finding.severity.value, finding.confidence.value]
    if finding.sides:
        facts.append(", ".join(side.value for side in finding.sides))
    blocks = [f"**{_md(finding.title)}** ({'; '.join(facts)})"]

    evidence = []
    for ev in finding.evidence:
        test = f" · {_md(ev.threshold)}" if ev.threshold else ""
        via = f" · via `{ev.via}`" if ev.via else ""
        note = f" · {_md(ev.note)}" if ev.note else ""
        evidence.append(f"- `{ev.field}` = {_md(ev.value)}{test}{via}{note}")
    if finding.derived_from:
        evidence.append(f"- derived from: {', '.join(f'`{d}`' for d in finding.derived_from)}")
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
