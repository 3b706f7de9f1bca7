"""The closed input and output vocabularies: muscles, grades, symptoms, activities, severities."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import StrEnum


class Muscle(StrEnum):
    """A muscle, or a whole muscle group, that a tightness or strength grade is given for."""

    ILIOPSOAS = "iliopsoas"
    RECTUS_FEMORIS = "rectus_femoris"
    SARTORIUS = "sartorius"
    HIP_FLEXORS = "hip_flexors"
    GLUTEUS_MAXIMUS = "gluteus_maximus"
    HAMSTRINGS = "hamstrings"
    ADDUCTOR_MAGNUS = "adductor_magnus"
    HIP_EXTENSORS = "hip_extensors"

    @property
    def group(self) -> MuscleGroup:
        """The muscle group (hip flexors or hip extensors) this muscle belongs to."""
        return _GROUP_OF[self]


class MuscleGroup(StrEnum):
    """The two muscle groups the source article contrasts."""

    HIP_FLEXORS = "hip_flexors"
    HIP_EXTENSORS = "hip_extensors"


_GROUP_OF = {
    Muscle.ILIOPSOAS: MuscleGroup.HIP_FLEXORS,
    Muscle.RECTUS_FEMORIS: MuscleGroup.HIP_FLEXORS,
    Muscle.SARTORIUS: MuscleGroup.HIP_FLEXORS,
    Muscle.HIP_FLEXORS: MuscleGroup.HIP_FLEXORS,
    Muscle.GLUTEUS_MAXIMUS: MuscleGroup.HIP_EXTENSORS,
    Muscle.HAMSTRINGS: MuscleGroup.HIP_EXTENSORS,
    Muscle.ADDUCTOR_MAGNUS: MuscleGroup.HIP_EXTENSORS,
    Muscle.HIP_EXTENSORS: MuscleGroup.HIP_EXTENSORS,
}


class Side(StrEnum):
    """Which side an input or finding concerns; ``both`` when a value was given once for both."""

    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"


class Measure(StrEnum):
    """What a muscle grade measures."""

    TIGHTNESS = "tightness"
    STRENGTH = "strength"


TIGHTNESS_LABELS: dict[str, int] = {"none": 0, "mild": 1, "moderate": 2, "severe": 3}
"""Tightness grades 0–3 and their labels."""

STRENGTH_LABELS: dict[str, int] = {
    "zero": 0,
    "trace": 1,
    "poor": 2,
    "fair": 3,
    "good": 4,
    "normal": 5,
}
"""Manual-muscle-test (MRC / Oxford) grades 0–5 and their labels."""


class Symptom(StrEnum):
    """What a person reports: complaints, observations, red flags and health context."""

    # The source article's complaints and observations.
    LOWER_BACK_PAIN = "lower_back_pain"
    KNEE_PAIN = "knee_pain"
    HIP_PAIN = "hip_pain"
    GROIN_PAIN = "groin_pain"
    ANTERIOR_PELVIC_TILT = "anterior_pelvic_tilt"
    RESTRICTED_STRIDE = "restricted_stride"
    REDUCED_POWER = "reduced_power"


class Activity(StrEnum):
    """What a person does or wants to do (the source article's activity lists)."""

    WALKING = "walking"
    RUNNING = "running"
    STAIR_CLIMBING = "stair_climbing"
    SIT_TO_STAND = "sit_to_stand"
    KICKING_SPORTS = "kicking_sports"
    JUMPING = "jumping"
    SPRINTING = "sprinting"
    WEIGHTLIFTING = "weightlifting"


class RomMotion(StrEnum):
    """A measured hip range of motion."""

    HIP_FLEXION = "hip_flexion"
    HIP_EXTENSION = "hip_extension"


class RomMethod(StrEnum):
    """How a range of motion was measured; norms only apply to a matching method."""

    GONIOMETER = "goniometer"
    INCLINOMETER = "inclinometer"
    APP = "app"
    SELF = "self"


class Severity(StrEnum):
    """How urgent a finding is, in the HL7 CDS Hooks indicator words."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for critical."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class ExerciseKind(StrEnum):
    """What an exercise is for."""

    WARM_UP = "warm_up"
    MOBILITY = "mobility"
    STRETCH = "stretch"
    STRENGTH = "strength"


class Movement(StrEnum):
    """Which hip movement an exercise trains."""

    FLEXION = "flexion"
    EXTENSION = "extension"
    BOTH = "both"


class Urgency(StrEnum):
    """How soon a referral should be acted on."""

    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"


def normalise_name(value: str) -> str:
    """Lower-case a vocabulary name and accept spaces or hyphens for underscores."""
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def suggest(value: str, allowed: Iterable[str]) -> str:
    """Return a "did you mean" hint for the closest allowed name, or an empty string."""
    close = difflib.get_close_matches(normalise_name(value), list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
