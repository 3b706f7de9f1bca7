"""hipscreen: screen hip flexor / extensor balance with explainable rules.

Examples:
    >>> import hipscreen
    >>> result = hipscreen.assess({"tightness": {"hip_flexors": 2}})
    >>> result.finding_ids()[0]
    'tight-hip-flexors'
"""

from hipscreen._errors import EngineError, HipscreenError, InvalidFormError, RuleDataError
from hipscreen._form import IntakeForm
from hipscreen._results import (
    Assessment,
    Dose,
    Evidence,
    ExcludedExercise,
    Exercise,
    Finding,
    Recommendation,
    Referral,
)
from hipscreen._screen import Screener, assess
from hipscreen._version import __version__

__all__ = [
    "Assessment",
    "Dose",
    "EngineError",
    "Evidence",
    "ExcludedExercise",
    "Exercise",
    "Finding",
    "HipscreenError",
    "IntakeForm",
    "InvalidFormError",
    "Recommendation",
    "Referral",
    "RuleDataError",
    "Screener",
    "__version__",
    "assess",
]
