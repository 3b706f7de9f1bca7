"""hipscreen: screen hip flexor / extensor balance with explainable rules.

Examples:
    >>> import hipscreen
    >>> result = hipscreen.assess({"tightness": {"hip_flexors": 2}})
    >>> result.finding_ids()[0]
    'tight-hip-flexors'
"""

from hipscreen._aio import assess_async
from hipscreen._batch._forms import BatchResult, assess_iter, assess_many
from hipscreen._batch._frames import assess_frame, result_meta, spark_schema
from hipscreen._batch._outcomes import BatchInterrupted, BatchSummary, RowError
from hipscreen._batch._stream import screen_csv
from hipscreen._batch._tables import TableError
from hipscreen._compare import Comparison, FindingChange, ScoreChange, compare
from hipscreen._errors import EngineError, HipscreenError, InvalidFormError, RuleDataError
from hipscreen._form import IntakeForm
from hipscreen._results import (
    Assessment,
    Dose,
    Evidence,
    ExcludedExercise,
    Exercise,
    Finding,
    InstrumentScore,
    Recommendation,
    Referral,
)
from hipscreen._schema import schema
from hipscreen._screen import Screener, assess
from hipscreen._version import __version__

__all__ = [
    "Assessment",
    "BatchInterrupted",
    "BatchResult",
    "BatchSummary",
    "Comparison",
    "Dose",
    "EngineError",
    "Evidence",
    "ExcludedExercise",
    "Exercise",
    "Finding",
    "FindingChange",
    "HipscreenError",
    "InstrumentScore",
    "IntakeForm",
    "InvalidFormError",
    "Recommendation",
    "Referral",
    "RowError",
    "RuleDataError",
    "ScoreChange",
    "Screener",
    "TableError",
    "__version__",
    "assess",
    "assess_async",
    "assess_frame",
    "assess_iter",
    "assess_many",
    "compare",
    "result_meta",
    "schema",
    "screen_csv",
    "spark_schema",
]
