"""The closed input and output vocabularies: muscles, grades, symptoms, activities, severities."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import StrEnum


class Muscle(StrEnum):
    """A muscle, or a whole muscle group, that a tightness or strength grade is given for."""

    # Its group is data (``muscle_groups`` in rules/tables.yaml), read as ``tables().group_of``.

    ILIOPSOAS = "iliopsoas"
    RECTUS_FEMORIS = "rectus_femoris"
    SARTORIUS = "sartorius"
    HIP_FLEXORS = "hip_flexors"
    GLUTEUS_MAXIMUS = "gluteus_maximus"
    HAMSTRINGS = "hamstrings"
    ADDUCTOR_MAGNUS = "adductor_magnus"
    HIP_EXTENSORS = "hip_extensors"


class MuscleGroup(StrEnum):
    """The two muscle groups the source article contrasts."""

    HIP_FLEXORS = "hip_flexors"
    HIP_EXTENSORS = "hip_extensors"


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
    ANTERIOR_THIGH_PAIN = "anterior_thigh_pain"
    LIMP = "limp"

    # Red flags and health context (domain reference §5; see docs/safety.md for each one's source).
    # Possible cauda equina syndrome
    SADDLE_NUMBNESS = "saddle_numbness"
    NEW_BLADDER_DYSFUNCTION = "new_bladder_dysfunction"
    BOWEL_INCONTINENCE = "bowel_incontinence"
    NEW_SEXUAL_DYSFUNCTION = "new_sexual_dysfunction"
    BILATERAL_LEG_SYMPTOMS = "bilateral_leg_symptoms"
    # Progressive neurological deficit
    PROGRESSIVE_LEG_WEAKNESS = "progressive_leg_weakness"
    FOOT_DROP = "foot_drop"
    SPREADING_NUMBNESS = "spreading_numbness"
    # Infection
    FEVER = "fever"
    CHILLS = "chills"
    HOT_SWOLLEN_RED_JOINT = "hot_swollen_red_joint"
    IMMUNOSUPPRESSED = "immunosuppressed"
    IV_DRUG_USE = "iv_drug_use"
    RECENT_SPINAL_OR_JOINT_PROCEDURE = "recent_spinal_or_joint_procedure"
    RECENT_BACTERIAL_INFECTION = "recent_bacterial_infection"
    # Fracture
    UNABLE_TO_BEAR_WEIGHT = "unable_to_bear_weight"
    RECENT_MAJOR_TRAUMA = "recent_major_trauma"
    RECENT_FALL_OR_MINOR_TRAUMA = "recent_fall_or_minor_trauma"
    LONG_TERM_CORTICOSTEROIDS = "long_term_corticosteroids"
    LEG_SHORTENED_OR_TURNED_OUT = "leg_shortened_or_turned_out"
    # Malignancy and systemic features
    HISTORY_OF_CANCER = "history_of_cancer"
    UNEXPLAINED_WEIGHT_LOSS = "unexplained_weight_loss"
    NIGHT_PAIN_UNRELIEVED_BY_POSITION = "night_pain_unrelieved_by_position"
    NIGHT_SWEATS = "night_sweats"
    # Bone stress injury of the femoral neck
    PAIN_ON_WEIGHT_BEARING = "pain_on_weight_bearing"
    RECENT_TRAINING_INCREASE = "recent_training_increase"
    # Nerve-root involvement
    LEG_PAIN_BELOW_KNEE = "leg_pain_below_knee"
    LEG_NUMBNESS_TINGLING = "leg_numbness_tingling"
    # Pre-participation (PAR-Q+ / ACSM)
    CHEST_PAIN_ON_EXERTION = "chest_pain_on_exertion"
    FAINTING = "fainting"
    HEART_METABOLIC_OR_KIDNEY_DISEASE = "heart_metabolic_or_kidney_disease"
    # Pregnancy: stop exercising and seek care (ACOG)
    VAGINAL_BLEEDING = "vaginal_bleeding"
    CALF_PAIN_OR_SWELLING = "calf_pain_or_swelling"
    REGULAR_PAINFUL_CONTRACTIONS = "regular_painful_contractions"
    DECREASED_FETAL_MOVEMENT = "decreased_fetal_movement"
    AMNIOTIC_FLUID_LEAKAGE = "amniotic_fluid_leakage"
    DIZZINESS = "dizziness"
    CHEST_PAIN = "chest_pain"
    # Added by the safety net (issue 9): fragility fracture without a fall, and venous
    # thromboembolism risk (NICE NG158).
    SUDDEN_SEVERE_BACK_PAIN = "sudden_severe_back_pain"
    SUDDEN_SEVERE_HIP_PAIN = "sudden_severe_hip_pain"
    RECENT_SURGERY_OR_IMMOBILITY = "recent_surgery_or_immobility"
    # Added by clinical round 3 (issue 20).
    # Hip replacement: a leg shortened and turned in (posterior dislocation).
    LEG_SHORTENED_OR_TURNED_IN = "leg_shortened_or_turned_in"
    # Avascular necrosis risk (with long-term corticosteroids).
    HEAVY_ALCOHOL_USE = "heavy_alcohol_use"
    SICKLE_CELL_DISEASE = "sickle_cell_disease"
    # Possible abdominal aortic aneurysm.
    SUDDEN_SEVERE_ABDOMINAL_OR_FLANK_PAIN = "sudden_severe_abdominal_or_flank_pain"
    PULSATILE_ABDOMINAL_MASS = "pulsatile_abdominal_mass"
    SMOKER_OR_VASCULAR_DISEASE = "smoker_or_vascular_disease"
    # Groin: non-musculoskeletal causes.
    TESTICULAR_PAIN_OR_SWELLING = "testicular_pain_or_swelling"
    GROIN_LUMP = "groin_lump"
    # Head injury.
    HEAD_STRIKE = "head_strike"
    # Inflammatory back pain (NICE NG65; Berlin criteria).
    MORNING_STIFFNESS_OVER_30_MIN = "morning_stiffness_over_30_min"
    BACK_PAIN_EASES_WITH_EXERCISE = "back_pain_eases_with_exercise"
    NIGHT_WAKING_SECOND_HALF = "night_waking_second_half"
    # Pregnancy and postpartum pelvic girdle pain (POGP).
    PELVIC_GIRDLE_PAIN = "pelvic_girdle_pain"


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


class TestName(StrEnum):
    """A measured clinical test value (see `IntakeForm.measurements`)."""

    THOMAS_HIP_ANGLE = "thomas_hip_angle"
    THOMAS_KNEE_ANGLE = "thomas_knee_angle"
    STRAIGHT_LEG_RAISE = "straight_leg_raise"
    ACTIVE_KNEE_EXTENSION_DEFICIT = "active_knee_extension_deficit"


class SignName(StrEnum):
    """A yes/no sign observed during a measured test."""

    THOMAS_THIGH_ABDUCTS = "thomas_thigh_abducts"
    SLR_REPRODUCES_LEG_PAIN = "slr_reproduces_leg_pain"


class ContextItem(StrEnum):
    """Health context a rule can test (from the form's context fields).

    ``fall_without_injury_signs``: a fall reported with no new pain and the person bearing
    weight (both stated). ``fall_with_new_pain``: a fall with new pain stated.
    ``hip_operation_weeks``: weeks since the hip replacement. ``anticoagulant``: takes an
    anticoagulant (blood thinner).
    """

    PREGNANCY = "pregnancy"
    PREGNANCY_WEEKS = "pregnancy_weeks"
    PREGNANCY_WEEKS_UNKNOWN = "pregnancy_weeks_unknown"
    HIP_REPLACEMENT_POSTERIOR = "hip_replacement_posterior"
    HIP_REPLACEMENT_ANTERIOR = "hip_replacement_anterior"
    HIP_REPLACEMENT_LATERAL = "hip_replacement_lateral"
    HIP_REPLACEMENT_UNKNOWN = "hip_replacement_unknown"
    OSTEOPOROSIS = "osteoporosis"
    VERTEBRAL_FRACTURE = "vertebral_fracture"
    BACK_PAIN_WEEKS = "back_pain_weeks"
    BACK_PAIN_WEEKS_UNKNOWN = "back_pain_weeks_unknown"
    BACK_PAIN_INTENSITY = "back_pain_intensity"
    FALL_WITHOUT_INJURY_SIGNS = "fall_without_injury_signs"
    FALL_WITH_NEW_PAIN = "fall_with_new_pain"
    HIP_OPERATION_WEEKS = "hip_operation_weeks"
    ANTICOAGULANT = "anticoagulant"
    # Blank safety questions (not asked): rules say what an answer would change.
    OSTEOPOROSIS_UNKNOWN = "osteoporosis_unknown"
    ANTICOAGULANT_UNKNOWN = "anticoagulant_unknown"
    AGE_UNKNOWN = "age_unknown"
    HIP_REPLACEMENT = "hip_replacement"
    PROCEDURE_DAYS = "procedure_days"
    PROCEDURE_TIMING_UNKNOWN = "procedure_timing_unknown"
    PROCEDURE_PAIN_NOT_SETTLED = "procedure_pain_not_settled"
    POSTPARTUM = "postpartum"
    POSTPARTUM_WEEKS = "postpartum_weeks"
    POSTPARTUM_WEEKS_UNKNOWN = "postpartum_weeks_unknown"
    CAESAREAN_DELIVERY = "caesarean_delivery"
    DELIVERY_TYPE_UNKNOWN = "delivery_type_unknown"
    NEW_BACK_PAIN = "new_back_pain"


class AsymmetryMeasure(StrEnum):
    """What a left/right difference was computed on."""

    STRENGTH = "strength"
    TIGHTNESS = "tightness"
    ROM = "rom"
    TEST = "test"


class HipApproach(StrEnum):
    """Surgical approach of a hip replacement; precautions depend on it."""

    POSTERIOR = "posterior"
    ANTERIOR = "anterior"
    LATERAL = "lateral"
    UNKNOWN = "unknown"


class Delivery(StrEnum):
    """How a baby was delivered (the postpartum plan depends on it)."""

    VAGINAL = "vaginal"
    CAESAREAN = "caesarean"
    UNKNOWN = "unknown"


class Confidence(StrEnum):
    """Whether a finding rests on a measurement or on what was reported."""

    MEASURED = "measured"
    REPORTED = "reported"


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
    BALANCE = "balance"


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
