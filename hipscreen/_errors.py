"""The exception tree hipscreen raises.

    HipscreenError
    ├── InvalidFormError      (also ValueError)   an intake form broke the input contract
    ├── StrictJsonError       (also ValueError)   a document is not strict JSON
    ├── RuleDataError         (also ValueError)   rule or catalog files failed validation
    ├── RulesetMismatchError  (also ValueError)   a stored assessment names another rule set
    ├── ExplanationError      (also ValueError)   why/why-not asked about an unknown rule
    ├── EngineError           (also RuntimeError) the rules engine misbehaved
    ├── TableError            (also ValueError)   a table or CSV file cannot be read at all
    └── BatchInterrupted      (also RuntimeError) a batch run stopped early

Each child also subclasses the matching builtin, so ``except ValueError`` keeps working. Every
class is defined here except `ExplanationError` (in ``_rules.explain``, beside the explanations it
is about); the modules that raise them re-export them under their old names (``_intake.strictjson``,
``_rulestools``, ``_batch._tables``, ``_batch._outcomes``). Exceptions that never leave a module
(a CLI usage error, a CDS Hooks failure answer, a worker's stale session) are private control flow
and stay beside their code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_PROBLEMS_SHOWN",
    "BatchInterrupted",
    "EngineError",
    "FieldProblem",
    "HipscreenError",
    "InvalidFormError",
    "JsonProblem",
    "RuleDataError",
    "RuleProblem",
    "RulesetMismatchError",
    "StrictJsonError",
    "TableError",
    "summarised",
]


class HipscreenError(Exception):
    """Root of every exception hipscreen raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one input field: where, what was given, and what is allowed."""

    field: str
    value: Any
    message: str

    def __str__(self) -> str:
        where = self.field or "(form)"
        return f"{where}: {self.message}"


class InvalidFormError(HipscreenError, ValueError):
    """An intake form does not match the input contract.

    Attributes:
        problems: every problem found, each naming the field path, the value and what is allowed.
    """

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid intake form ({len(problems)} {noun}):\n{lines}")


@dataclass(frozen=True)
class RuleProblem:
    """One problem in the rule data: the file, the rule (or exercise) id, the field and why."""

    file: str
    item: str
    field: str
    message: str

    def __str__(self) -> str:
        where = ":".join(part for part in (self.file, self.item) if part)
        field = f" [{self.field}]" if self.field else ""
        return f"{where}{field}: {self.message}"


class RuleDataError(HipscreenError, ValueError):
    """Rule or exercise-catalog data failed validation; nothing was loaded.

    Attributes:
        problems: every problem found across all files, not just the first.
    """

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"rule data is invalid ({len(problems)} {noun}):\n{lines}")


class EngineError(HipscreenError, RuntimeError):
    """The rules engine failed while screening a form (a rule action raised, or the C engine
    reported an error). The form itself was valid."""


@dataclass(frozen=True)
class JsonProblem:
    """One problem in a JSON document: its kind, where (a path of keys and indexes), and why."""

    kind: str
    """``json_invalid``, ``json_duplicate_key``, ``json_too_deep`` or ``json_too_many_values``."""
    path: tuple[str | int, ...]
    message: str
    value: Any = None


class StrictJsonError(HipscreenError, ValueError):
    """A document is not strict JSON; ``problems`` lists every problem found."""

    def __init__(self, problems: list[JsonProblem]) -> None:
        self.problems = problems
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"not strict JSON ({len(problems)} {noun}): {problems[0].message}")


class RulesetMismatchError(HipscreenError, ValueError):
    """A stored assessment was screened with another rule set than the one given."""


MAX_PROBLEMS_SHOWN = 20
"""Problems a message lists before it gives only the count of the rest (`problems` has all)."""


def summarised(problems: Sequence[str], limit: int = MAX_PROBLEMS_SHOWN) -> str:
    """The first ``limit`` problems, one ``  - `` line each, then how many more there are."""
    lines = [f"  - {p}" for p in problems[:limit]]
    if len(problems) > limit:
        rest = len(problems) - limit
        lines.append(f"  … and {rest:,} more problem{'s' if rest > 1 else ''}")
    return "\n".join(lines)


class TableError(HipscreenError, ValueError):
    """A table (CSV file or DataFrame) cannot be screened at all: the rows were not looked at.

    Raised for unknown or repeated columns, an empty file, or a file that is not text in the
    expected encoding. Problems with single rows never raise: they become `RowError` outcomes.

    Attributes:
        problems: every problem found, one sentence each.
    """

    def __init__(self, problems: Sequence[str], source: str = "table") -> None:
        self.problems = list(problems)
        self.source = source
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(
            f"{source} cannot be screened ({len(self.problems):,} {noun}):\n"
            + summarised(self.problems)
        )


class BatchInterrupted(HipscreenError, RuntimeError):
    """A batch run stopped before the end: interrupted, terminated, or a worker process died.

    What was finished is kept, marked as partial, and can be continued (``resume=True``,
    ``hipscreen batch --resume``).

    Attributes:
        rows_done: input rows whose outcome was written before the stop.
        reason: what stopped the run, one sentence.
        partial: the partial result files (empty when results went to a stream).
        resumable: whether ``resume=True`` can continue the run (False when the input was a
            stream, a pipe or FIFO: it was read once and cannot be read again).
    """

    def __init__(
        self, reason: str, rows_done: int, partial: Sequence[Path] = (), *, resumable: bool = True
    ) -> None:
        self.reason = reason
        self.rows_done = rows_done
        self.partial = list(partial)
        self.resumable = resumable
        where = ""
        if self.partial:
            where = f"; partial results kept in {', '.join(map(str, self.partial))}"
        super().__init__(f"{reason}: stopped after {rows_done:,} rows{where}")
