"""The rule files' schema: pydantic models of the files under ``rules/``.

``ruleset.yaml``, ``exercises.yaml``, ``findings/*.yaml`` and ``vocabulary.yaml``, as the loader
validates them and ``hipscreen rules schema`` prints them (a rule's ``when`` is validated by
`hipscreen._rules.conditions`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hipscreen._rules.conditions import RULE_ID
from hipscreen._vocabulary import ExerciseKind, Movement, Muscle, Severity, Symptom, Urgency

EXERCISE_ID = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"

RuleId = Annotated[str, StringConstraints(pattern=RULE_ID)]
ExerciseId = Annotated[str, StringConstraints(pattern=EXERCISE_ID)]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


PropertyName = Annotated[str, StringConstraints(pattern=EXERCISE_ID)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# -- file schema -----------------------------------------------------------------------------------


class ThresholdSpec(_Spec):
    """A named number that rules compare against."""

    value: int | float
    unit: Text
    description: Text
    source: Text


class DoseSpec(_Spec):
    """A dose as written in the catalog."""

    sets: int | None = Field(default=None, ge=1, le=10)
    reps: int | None = Field(default=None, ge=1, le=100)
    hold_seconds: int | None = Field(default=None, ge=1, le=300)
    minutes: int | None = Field(default=None, ge=1, le=60)
    days_per_week: int | None = Field(default=None, ge=1, le=7)
    note: str | None = None


class LevelPolicy(_Spec):
    """Which exercise level a strength grade allows (domain reference §D PRG-LEVEL)."""

    by_grade: dict[int, int]
    unassessed: int = Field(ge=1)
    pain_step_back: int = Field(ge=0)
    pain_symptoms: list[Symptom]


class DoseAdjustment(_Spec):
    """Change a kind's dose for older adults (or any age at or above ``age_at_least``)."""

    kind: ExerciseKind
    age_at_least: int = Field(ge=0, le=120)
    hold_seconds: int | None = None
    sets: int | None = None
    reps: int | None = None
    note: Text
    source: Text


class BalancePolicy(_Spec):
    flexion: ExerciseId
    extension: ExerciseId


class CriticalPolicy(_Spec):
    """What any critical finding withholds (domain reference §D OUT-SUPPRESS)."""

    withhold_kinds: list[ExerciseKind]
    source: Text


class PlanPolicy(_Spec):
    """How findings become an ordered, dosed plan."""

    warm_up: ExerciseId
    balance: BalancePolicy
    levels: LevelPolicy
    critical: CriticalPolicy
    dose_adjustments: list[DoseAdjustment] = []


class WithholdSpec(_Spec):
    """Exercises a finding takes out of the plan: by kind, by property, or by id."""

    kinds: list[ExerciseKind] = []
    properties: list[PropertyName] = []
    exercises: list[ExerciseId] = []


class ReferralPolicy(_Spec):
    """What one kind of referral means: how soon, what the plan leaves out, what it must say."""

    urgency: Urgency
    withhold: WithholdSpec = Field(default_factory=WithholdSpec)
    wording: list[Text] = Field(
        min_length=1,
        description="The referral's message (or whom to see) carries at least one of these.",
    )
    description: Text
    source: Text


class RulesetFile(_Spec):
    """``ruleset.yaml``: version, disclaimer, thresholds, plan policy and referral policy."""

    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    disclaimer: Text
    thresholds: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], ThresholdSpec]
    plan: PlanPolicy
    referral_policy: dict[KindName, ReferralPolicy] = Field(
        default={},
        description="Per referral kind: urgency, what the plan withholds, required wording. When "
        "present, every referral names one of these kinds.",
    )
    same_day_wording: list[Text] = Field(
        default=[],
        description="Words (whole words, any case) that promise same-day action: only an "
        "emergency referral may use them.",
    )


class ExerciseSpec(_Spec):
    """One catalogued exercise."""

    id: ExerciseId
    name: Text
    kind: ExerciseKind
    movement: Movement
    muscles: list[Muscle]
    level: int = Field(ge=1, le=5)
    regression: ExerciseId | None = None
    alternatives: list[ExerciseId] = Field(
        default=[],
        description="Safe replacements that train the same thing, in order of preference: when a "
        "precaution withholds this exercise, the plan offers the first one nothing withholds.",
    )
    properties: list[Annotated[str, StringConstraints(pattern=EXERCISE_ID)]] = []
    instructions: Text
    source: Text
    dose: DoseSpec | None = None


class CatalogFile(_Spec):
    """``exercises.yaml``: exercise properties, default doses per kind, and the exercises."""

    properties: dict[PropertyName, Text] = {}
    defaults: dict[ExerciseKind, DoseSpec] = {}
    exercises: list[ExerciseSpec]


class EscalationSpec(_Spec):
    severity: Severity
    when: dict[str, Any]


KindName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class ReferralSpec(_Spec):
    """Who to see, how soon and why. ``kind`` keys the referral policy in ``ruleset.yaml``."""

    kind: KindName | None = None
    urgency: Urgency
    see: Text
    message: Text


class RuleSpec(_Spec):
    """One rule as written in a findings file."""

    id: RuleId
    title: Text
    severity: Severity
    summary: Annotated[str, StringConstraints(min_length=1, max_length=139)]
    source: Text
    when: dict[str, Any]
    escalate: list[EscalationSpec] = []
    recommends: list[ExerciseId] = []
    referral: ReferralSpec | None = None
    withhold: WithholdSpec | None = None
    swap: dict[ExerciseId, ExerciseId] = Field(
        default={}, description="Withheld exercise → safer replacement."
    )
    emphasise_side: bool = Field(
        default=False,
        description="Its recommended unilateral exercises emphasise the side the finding names.",
    )


ItemClass = Literal["alarm", "risk_factor", "ordinary"]
ITEM_CLASSES: tuple[ItemClass, ...] = ("alarm", "risk_factor", "ordinary")


class VocabularyItem(_Spec):
    """How one symptom or context item is treated by the safety net."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    item_class: ItemClass = Field(alias="class")
    reason: Text


class VocabularyFile(_Spec):
    """``vocabulary.yaml``: every symptom and context item classed alarm, risk_factor or ordinary.

    An ``alarm`` item alone must yield at least a warning: either a rule raises it on its own, or
    the safety-net rule named here lists it (never both, so an alarm is not doubled).
    """

    safety_net: RuleId
    symptoms: dict[str, VocabularyItem]
    context: dict[str, VocabularyItem]

    def classes(self) -> dict[tuple[str, str], ItemClass]:
        """(fact type, name) → class, for symptoms and context items."""
        out: dict[tuple[str, str], ItemClass] = {}
        for fact, table in (("symptom", self.symptoms), ("context", self.context)):
            for name, item in table.items():
                out[(fact, name)] = item.item_class
        return out
