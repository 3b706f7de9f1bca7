"""hipscreen: screen hip flexor / extensor balance with explainable rules.

Examples:
    >>> import hipscreen
    >>> result = hipscreen.assess({"tightness": {"hip_flexors": 2}})
    >>> result.finding_ids()[0]
    'tight-hip-flexors'

Importing ``hipscreen`` is cheap: it loads the error types and the version, and checks that the
durable-rules C extension loads (a broken build is reported at import, with the command that
fixes it). Every other public name loads on first use: `assess`, `Screener` and the form and
result models bring in the engine, pydantic and the rules the first time one of them is touched;
asyncio support, the batch package, comparison and the schema writer load only with their own
names. ``python -X importtime -c "import hipscreen"`` shows it.
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
from hipscreen._version import __version__

try:  # the engine's C extension alone (cheap); the rest of the engine loads with `assess`
    import durable_rules_engine as _durable_rules_engine
except ImportError:
    _durable_rules_engine = None
if _durable_rules_engine is None:  # raises the ImportError that names the cause and the fix
    _importlib.import_module("hipscreen._engine")
del _durable_rules_engine

if _typing.TYPE_CHECKING:  # the lazily loaded names, for type checkers and editors
    from hipscreen._aio import assess_async
    from hipscreen._batch._forms import BatchResult, assess_iter, assess_many
    from hipscreen._batch._frames import assess_frame, result_meta, spark_schema
    from hipscreen._batch._outcomes import BatchSummary, RowError
    from hipscreen._batch._stream import screen_csv
    from hipscreen._compare import Comparison, FindingChange, ScoreChange, compare
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
    from hipscreen._rules.explain import Explanation
    from hipscreen._schema import schema
    from hipscreen._screen import Screener, assess

_LAZY = {
    "assess": "hipscreen._screen",
    "Screener": "hipscreen._screen",
    "IntakeForm": "hipscreen._intake.form",
    "Assessment": "hipscreen._results",
    "Dose": "hipscreen._results",
    "Evidence": "hipscreen._results",
    "ExcludedExercise": "hipscreen._results",
    "Exercise": "hipscreen._results",
    "Finding": "hipscreen._results",
    "InstrumentScore": "hipscreen._results",
    "Recommendation": "hipscreen._results",
    "Referral": "hipscreen._results",
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
