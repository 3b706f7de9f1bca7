"""Batch outcomes: a row's error, a screened row as table cells, and the counts over a run."""

from __future__ import annotations

import collections
import reprlib
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

from hipscreen._batch._extras import optional_module
from hipscreen._errors import BatchInterrupted, FieldProblem, InvalidFormError
from hipscreen._findings import Brief
from hipscreen._results import Assessment
from hipscreen._vocabulary import Confidence, Severity, Side, Urgency

Axes: TypeAlias = Any
"""matplotlib's ``Axes`` (matplotlib is an optional extra: ``hipscreen[plot]``)."""

__all__ = [
    "BatchInterrupted",
    "BatchSummary",
    "Record",
    "RowError",
    "Tally",
    "brief",
    "engine_error",
    "record_of",
    "record_of_brief",
    "unreadable",
]

_brief = reprlib.Repr()
_brief.maxstring = 60
_brief.maxother = 60
_brief.maxlong = 40
_brief.maxlist = _brief.maxtuple = _brief.maxdict = _brief.maxset = 6
_brief.maxlevel = 3


def brief(value: Any) -> str:
    """A short ``repr`` of any value: long text, huge numbers and deep nesting are cut."""
    try:
        return _brief.repr(value)
    except Exception:  # a repr that raises, or recurses without end
        return f"<{type(value).__name__}>"


@dataclass(frozen=True, slots=True)
class RowError:
    """The outcome for an input row that could not be screened, with every problem in it.

    Attributes:
        row: the row's position in the input, from 0 (the same in every batch door).
        problems: every problem found, each naming the field, the value and what is allowed.
        key: the row's label: the mapping key or DataFrame index label; the line number for a
            CSV file; ``None`` when the input had no labels.
        client_id: the row's ``client_id`` as given (``None`` when absent).
    """

    row: int
    problems: tuple[FieldProblem, ...]
    key: Hashable | None = None
    client_id: Any = None

    @property
    def message(self) -> str:
        """Every problem on one line, separated by ``" | "``."""
        return " | ".join(str(problem) for problem in self.problems)

    def to_exception(self) -> InvalidFormError:
        """The `InvalidFormError` that ``hipscreen.assess`` raises for this row's form."""
        return InvalidFormError(list(self.problems))

    def __str__(self) -> str:
        label = f" ({brief(self.key)})" if self.key is not None else ""
        return f"row {self.row}{label}: {self.message}"

    def _repr_html_(self) -> str:
        from hipscreen._render.html import row_error_html

        return row_error_html(self)


def engine_error(row: int, label: Hashable | None, client_id: Any, message: str) -> RowError:
    """The error for a valid row the rules engine failed on."""
    problem = FieldProblem("", None, f"the rules engine failed on this form: {message}")
    return RowError(row, (problem,), label, client_id)


def unreadable(row: int, label: Hashable | None, client_id: Any, error: BaseException) -> RowError:
    """The error for a row whose reading or validation raised something unexpected.

    Whatever one row does (a recursion too deep, a number too large to print, a cell too large
    for memory), it fails that row only.
    """
    text = brief(str(error)) if str(error) else ""
    reason = f"{type(error).__name__}{': ' + text.strip(chr(39)) if text else ''}"
    problem = FieldProblem("", None, f"this row could not be read ({reason})")
    safe_id = client_id if client_id is None or isinstance(client_id, str) else brief(client_id)
    if isinstance(safe_id, str) and len(safe_id) > 200:
        safe_id = brief(safe_id)
    return RowError(row, (problem,), label, safe_id)


class Record(NamedTuple):
    """A screened row reduced to table cells (without its row number and client id)."""

    finding_ids: tuple[str, ...]
    highest_severity: str | None
    referral_urgency: str | None
    exercise_ids: tuple[str, ...]
    not_assessed: tuple[str, ...]
    findings: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...]
    """(id, severity, confidence, sides, derived_from) for each finding: the long form."""


_WORDS = {id(w): w.value for kind in (Severity, Confidence, Side, Urgency) for w in kind}
"""Each vocabulary word's text (the enum's own, shared string object, which pickles once per
chunk), looked up by identity: Python's ``Enum.value`` is a Python-level property."""
_RANK_OF_TEXT = {s.value: s.rank for s in Severity}


def record_of_brief(brief: Brief) -> Record:
    """The table cells of a screening's brief: equal to `record_of` of its `Assessment`."""
    words = _WORDS
    findings = tuple(
        [
            (
                f.id,
                words.get(id(f.severity)) or f.severity.value,
                words.get(id(f.confidence)) or f.confidence.value,
                tuple([words.get(id(s)) or s.value for s in f.sides]),
                f.derived_from,
            )
            for f in brief.findings
        ]
    )
    urgency = brief.urgency
    return Record(
        tuple([f[0] for f in findings]),
        max([f[1] for f in findings], key=_RANK_OF_TEXT.__getitem__, default=None),
        None if urgency is None else words.get(id(urgency)) or urgency.value,
        brief.exercise_ids,
        brief.not_assessed,
        findings,
    )


def record_of(assessment: Assessment) -> Record:
    """The table cells of an assessment."""
    findings = assessment.findings
    highest = max((f.severity for f in findings), key=lambda s: s.rank, default=None)
    referral = assessment.referral
    return Record(
        tuple(f.id for f in findings),
        None if highest is None else highest.value,
        None if referral is None else referral.urgency.value,
        tuple(r.exercise.id for r in assessment.recommendations),
        assessment.not_assessed,
        tuple(
            (
                f.id,
                f.severity.value,
                f.confidence.value,
                tuple(s.value for s in f.sides),
                tuple(f.derived_from),
            )
            for f in findings
        ),
    )


@dataclass
class BatchSummary:
    """Counts over a batch: rows, screened, failed, and how often each finding fired.

    Attributes:
        rows: input rows seen.
        screened: rows that gave an assessment.
        failed: rows that gave a `RowError`.
        findings: finding id → screened rows with that finding, most frequent first.
        highest_severity: highest finding severity → screened rows ("none": no finding).
        referrals: referral urgency → screened rows with a referral of that urgency.
        ruleset_version: the rules that screened the batch.
    """

    rows: int = 0
    screened: int = 0
    failed: int = 0
    findings: dict[str, int] = field(default_factory=dict)
    highest_severity: dict[str, int] = field(default_factory=dict)
    referrals: dict[str, int] = field(default_factory=dict)
    ruleset_version: str = ""

    def prevalence(self) -> dict[str, float]:
        """Finding id → share (0–1) of screened rows with that finding, most frequent first."""
        if not self.screened:
            return {}
        return {fid: count / self.screened for fid, count in self.findings.items()}

    def __str__(self) -> str:
        lines = [
            f"rows read  {self.rows:>10,}",
            f"screened   {self.screened:>10,}",
            f"failed     {self.failed:>10,}",
        ]
        if self.findings:
            width = max(len(fid) for fid in self.findings)
            lines.append("findings (rows, share of screened rows):")
            for fid, share in self.prevalence().items():
                lines.append(f"  {fid:<{width}} {self.findings[fid]:>10,} {share:>7.1%}")
        if self.referrals:
            referred = ", ".join(f"{n:,} {urgency}" for urgency, n in self.referrals.items())
            lines.append(f"referrals: {referred}")
        return "\n".join(lines)

    def plot(self, ax: Axes | None = None, top: int | None = None) -> Axes:
        """A horizontal bar chart of finding prevalence (share of screened rows).

        Args:
            ax: matplotlib axes to draw on; a new figure when omitted.
            top: show only the ``top`` most frequent findings.

        Returns:
            The axes drawn on.

        Raises:
            ImportError: matplotlib is not installed (``pip install 'hipscreen[plot]'``).
        """
        plt = optional_module("matplotlib.pyplot", "matplotlib", "plot")
        shares = list(self.prevalence().items())[:top]
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 0.3 * max(len(shares), 1) + 1.2))
        names = [fid for fid, _ in reversed(shares)]
        values = [100 * share for _, share in reversed(shares)]
        ax.barh(names, values, color="#4c72b0")
        ax.set_xlabel("% of screened rows")
        ax.set_xlim(0, 110)
        ax.set_title(f"Finding prevalence ({self.screened:,} screened, {self.failed:,} failed)")
        for y, value in enumerate(values):
            ax.text(value + 1, y, f"{value:.1f}%", va="center", fontsize=8)
        return ax

    def _repr_html_(self) -> str:
        from hipscreen._render.html import summary_html

        return summary_html(self)


class Tally:
    """Builds a `BatchSummary` as rows stream past: one counter step per row."""

    def __init__(self) -> None:
        self.rows = 0
        self.failed = 0
        self._by_record: collections.Counter[tuple[tuple[str, ...], str | None, str | None]] = (
            collections.Counter()
        )

    def add(self, outcome: Record | RowError) -> None:
        """Count one row's outcome."""
        if isinstance(outcome, RowError):
            self.add_counts(failed=True)
        else:
            self.add_counts(outcome.finding_ids, outcome.highest_severity, outcome.referral_urgency)

    def add_counts(
        self,
        finding_ids: tuple[str, ...] = (),
        highest: str | None = None,
        urgency: str | None = None,
        *,
        failed: bool = False,
    ) -> None:
        """Count one row from its cells (a failed row, or its findings, severity and referral)."""
        self.rows += 1
        if failed:
            self.failed += 1
        else:
            self._by_record[(finding_ids, highest, urgency)] += 1

    def summary(self, ruleset_version: str) -> BatchSummary:
        """The counts so far."""
        findings: collections.Counter[str] = collections.Counter()
        severity: collections.Counter[str] = collections.Counter()
        referrals: collections.Counter[str] = collections.Counter()
        for (ids, highest, urgency), count in self._by_record.items():
            for fid in ids:
                findings[fid] += count
            severity[highest or "none"] += count
            if urgency:
                referrals[urgency] += count
        rank = {s.value: s.rank for s in Severity}
        return BatchSummary(
            rows=self.rows,
            screened=self.rows - self.failed,
            failed=self.failed,
            findings=dict(sorted(findings.items(), key=lambda item: (-item[1], item[0]))),
            highest_severity=dict(sorted(severity.items(), key=lambda i: -rank.get(i[0], -1))),
            referrals=dict(sorted(referrals.items())),
            ruleset_version=ruleset_version,
        )
