"""Moved to `hipscreen._render.cds`; this name keeps old imports working."""

from hipscreen._render.cds import (
    CARD_NAMESPACE,
    OVERRIDE_REASONS,
    OVERRIDE_SYSTEM,
    SOURCE_LABEL,
    SUMMARY_LIMIT,
    TOPIC_SYSTEM,
    CdsCard,
    ResourceFactory,
    cards_for,
)

__all__ = [
    "CARD_NAMESPACE",
    "OVERRIDE_REASONS",
    "OVERRIDE_SYSTEM",
    "SOURCE_LABEL",
    "SUMMARY_LIMIT",
    "TOPIC_SYSTEM",
    "CdsCard",
    "ResourceFactory",
    "cards_for",
]
