"""The loaded rule set: validated rules with their parsed conditions, thresholds and the catalog."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hipscreen._rules.atoms import Condition
from hipscreen._rules.files import (
    DoseSpec,
    ExerciseSpec,
    PlanPolicy,
    ReferralPolicy,
    RuleSpec,
    ThresholdSpec,
    VocabularyFile,
)
from hipscreen._vocabulary import ExerciseKind, Severity


@dataclass(frozen=True)
class Rule:
    """A validated rule with its parsed condition."""

    spec: RuleSpec
    file: str
    condition: Condition
    escalations: tuple[tuple[Severity, Condition], ...]

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class RuleSet:
    """Every validated rule, threshold and exercise; built only when the data has no problem."""

    version: str
    digest: str
    disclaimer: str
    thresholds: Mapping[str, ThresholdSpec]
    plan: PlanPolicy
    rules: tuple[Rule, ...]
    exercises: Mapping[str, ExerciseSpec]
    properties: Mapping[str, str]
    dose_defaults: Mapping[ExerciseKind, DoseSpec]
    files: tuple[str, ...] = field(default=())
    referral_policy: Mapping[str, ReferralPolicy] = field(default_factory=dict)
    vocabulary: VocabularyFile | None = None

    @property
    def label(self) -> str:
        """Version plus the first 12 hex digits of the content digest, e.g. ``1.0.0+3fa2…``."""
        return f"{self.version}+{self.digest[:12]}"
