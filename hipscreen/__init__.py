"""hipscreen: screen hip flexor / extensor balance with explainable rules.

Examples:
    >>> import hipscreen
    >>> result = hipscreen.assess({"tightness": {"hip_flexors": 2}})
    >>> result.finding_ids()[0]
    'tight-hip-flexors'

Importing ``hipscreen`` loads what screening one form needs (the form and result models and the
engine door, so a broken durable-rules build is reported at import); asyncio support, the batch
package, comparison and the schema writer load on first use of one of their names.
"""

import importlib as _importlib
import typing as _typing

from hipscreen._errors import (
    BatchInterrupted,
    EngineError,
    HipscreenError,
    InvalidFormError,
    RuleDataError,
    TableError,
)
from hipscreen._intake.form import IntakeForm
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
from hipscreen._screen import Screener, assess
from hipscreen._version import __version__

if _typing.TYPE_CHECKING:  # the lazily loaded names, for type checkers and editors
    from hipscreen._aio import assess_async
    from hipscreen._batch._forms import BatchResult, assess_iter, assess_many
    from hipscreen._batch._frames import assess_frame, result_meta, spark_schema
    from hipscreen._batch._outcomes import BatchSummary, RowError
    from hipscreen._batch._stream import screen_csv
    from hipscreen._compare import Comparison, FindingChange, ScoreChange, compare
    from hipscreen._rules.explain import Explanation
    from hipscreen._schema import schema

_LAZY = {
    "assess_async": "hipscreen._aio",
    "BatchResult": "hipscreen._batch._forms",
    "assess_iter": "hipscreen._batch._forms",
    "assess_many": "hipscreen._batch._forms",
    "assess_frame": "hipscreen._batch._frames",
    "result_meta": "hipscreen._batch._frames",
    "spark_schema": "hipscreen._batch._frames",
    "BatchSummary": "hipscreen._batch._outcomes",
    "RowError": "hipscreen._batch._outcomes",
    "screen_csv": "hipscreen._batch._stream",
    "Comparison": "hipscreen._compare",
    "FindingChange": "hipscreen._compare",
    "ScoreChange": "hipscreen._compare",
    "compare": "hipscreen._compare",
    "Explanation": "hipscreen._rules.explain",
    "schema": "hipscreen._schema",
}
"""Public names loaded on first use: name -> the private module that defines it."""


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hipscreen' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
    "Explanation",
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
