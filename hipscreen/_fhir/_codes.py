"""FHIR identifiers and code systems hipscreen uses, and the deterministic resource ids."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "EXERCISE_SYSTEM",
    "FHIR_NAMESPACE",
    "FINDING_SYSTEM",
    "LOINC",
    "MEASUREMENT_SYSTEM",
    "NOT_ASSESSED_SYSTEM",
    "QUESTIONNAIRE_URL",
    "RULESET_SYSTEM",
    "SNOMED",
    "UCUM",
    "content_id",
    "datetime_text",
    "reference",
    "subject_reference",
]

QUESTIONNAIRE_URL = "urn:hipscreen:Questionnaire/intake-form"
"""Canonical URL of the intake Questionnaire (its ``version`` is the hipscreen version)."""

FINDING_SYSTEM = "urn:hipscreen:finding"
"""Code system of finding ids (the same as the CDS cards' ``source.topic``)."""

EXERCISE_SYSTEM = "urn:hipscreen:exercise"
"""Code system of exercise ids."""

RULESET_SYSTEM = "urn:hipscreen:ruleset"
"""Code system of the rule set: code ``hipscreen``, ``version`` the rule-set version + digest."""

MEASUREMENT_SYSTEM = "urn:hipscreen:measurement"
"""Code system of measured values (``hip_flexion``, ``thomas_hip_angle`` …)."""

NOT_ASSESSED_SYSTEM = "urn:hipscreen:not-assessed"
"""Code system whose displays are the inputs an assessment lists as not assessed."""

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

FHIR_NAMESPACE = uuid.UUID("0b7f4a52-3c1d-5e8f-9a6b-7c2d1e0f4a93")
"""Namespace of the resource ids (uuid5 of the content), so the same input gives the same ids."""


def content_id(kind: str, *parts: str) -> str:
    """A uuid5 id for a resource of type ``kind`` made from ``parts`` (its content)."""
    return str(uuid.uuid5(FHIR_NAMESPACE, "\x1f".join((kind, *parts))))


def reference(kind: str, resource_id: str) -> str:
    """A reference to a resource in the same Bundle: ``urn:uuid:…`` for a uuid id (the Bundle
    entry's ``fullUrl``), else the relative ``Kind/id``."""
    try:
        uuid.UUID(resource_id)
    except ValueError:
        return f"{kind}/{resource_id}"
    return f"urn:uuid:{resource_id}"


def subject_reference(subject: str | Mapping[str, Any]) -> dict[str, Any]:
    """The subject as a FHIR Reference: a string is the reference (``"Patient/123"``); a mapping
    is taken as a Reference already (e.g. with ``display`` or ``identifier``)."""
    if isinstance(subject, str):
        if not subject.strip():
            raise ValueError("subject must be a reference such as 'Patient/123' (got '')")
        return {"reference": subject}
    if isinstance(subject, Mapping):
        if not subject:
            raise ValueError("subject must be a non-empty FHIR Reference (got {})")
        return dict(subject)
    raise TypeError(
        f"subject must be a reference string or a FHIR Reference mapping (got {subject!r})"
    )


def datetime_text(when: datetime | str | None) -> str | None:
    """A FHIR instant: a timezone-aware ``datetime`` or an ISO 8601 string with date, time and
    offset (a naive ``datetime`` is read as UTC); None stays None.

    Raises:
        ValueError: a string that is not such a date and time.
    """
    if when is None:
        return None
    if isinstance(when, str):
        try:
            parsed = datetime.fromisoformat(when)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None or "T" not in when:
            raise ValueError(
                "when must be a datetime or an ISO 8601 date and time with an offset, "
                f"e.g. '2026-01-05T10:00:00Z' (got {when!r})"
            )
        return when
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")
