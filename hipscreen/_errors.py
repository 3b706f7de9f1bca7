"""The exception tree hipscreen raises.

    HipscreenError
    ├── InvalidFormError      (also ValueError)   an intake form broke the input contract
    ├── RuleDataError         (also ValueError)   rule or catalog files failed validation
    ├── EngineError           (also RuntimeError) the rules engine misbehaved
    ├── TableError            (also ValueError)   a table or CSV file cannot be read at all
    └── BatchInterrupted      (also RuntimeError) a batch run stopped early (_batch/_outcomes.py)

Each child also subclasses the matching builtin, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
