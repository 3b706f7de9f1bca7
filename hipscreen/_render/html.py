"""HTML views for Jupyter: an assessment, a batch result and its summary as readable tables."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from hipscreen._render.evidence import EvidenceFormat, derived_line, evidence_lines

if TYPE_CHECKING:
    from hipscreen._batch._forms import BatchResult
    from hipscreen._batch._outcomes import BatchSummary, RowError
    from hipscreen._results import Assessment

__all__ = ["assessment_html", "batch_html", "row_error_html", "summary_html"]

BATCH_PREVIEW_ROWS = 20
"""Rows a batch result shows in a notebook (the first ones; failed rows are listed apart)."""

_COLOURS = {
    "info": "#2b6cb0",
    "warning": "#b7791f",
    "critical": "#c53030",
    "error": "#c53030",
    "emergency": "#c53030",
    "urgent": "#c05621",
    "routine": "#2b6cb0",
    "none": "#4a5568",
}
_STYLE = """<style>
.hipscreen {font-family: system-ui, sans-serif; font-size: 13px; max-width: 1100px}
.hipscreen h4 {margin: 0.4em 0}
.hipscreen table {border-collapse: collapse; margin: 0.3em 0 0.8em 0}
.hipscreen th, .hipscreen td {border: 1px solid #d0d7de; padding: 3px 7px; text-align: left;
  vertical-align: top}
.hipscreen th {background: #f3f4f6}
.hipscreen td.num {text-align: right; font-variant-numeric: tabular-nums}
.hipscreen .badge {color: white; border-radius: 3px; padding: 0 5px; font-size: 11px}
.hipscreen .referral {border-left: 4px solid #c53030; background: #fff5f5; padding: 4px 8px;
  margin: 0.4em 0}
.hipscreen .muted {color: #6b7280; font-size: 11px}
.hipscreen .bar {background: #4c72b0; height: 10px; display: inline-block}
</style>"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


_EVIDENCE = EvidenceFormat(
    line="{field} = {value}",
    threshold=' <span class="muted">({})</span>',
    via=' <span class="muted">via {}</span>',
    note=' <span class="muted">— {}</span>',
    derived='<span class="muted">from {}</span>',
    ident=_e,
    text=_e,
)
"""A finding's evidence in a table cell (lines joined by ``<br>``)."""


def _badge(word: str | None) -> str:
    if not word:
        return ""
    colour = _COLOURS.get(word, _COLOURS["none"])
    return f'<span class="badge" style="background:{colour}">{_e(word)}</span>'


_LEFT = ' style="text-align:left"'
_RIGHT = ' class="num" style="text-align:right"'
"""Alignment on each cell too, not only in ``_STYLE``: Jupyter drops the ``<style>`` of an
untrusted output and its own CSS right-aligns table cells, which put prose (summary, evidence,
"for") flush right. Prose and headers align left, numbers right."""


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    head = "".join(
        f"<th{_RIGHT if i in numeric else _LEFT}>{_e(h)}</th>" for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f"<td{_RIGHT if i in numeric else _LEFT}>{cell}</td>" for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def assessment_html(assessment: Assessment) -> str:
    """One assessment: referral first, then findings with evidence, the plan, and what is missing.

    All text from the result is escaped.
    """
    a = assessment
    title = "hipscreen assessment" + (f" for {_e(a.client_id)}" if a.client_id else "")
    parts = ['<div class="hipscreen">', _STYLE, f"<h4>{title}</h4>"]
    if a.referral is not None:
        r = a.referral
        parts.append(
            f'<div class="referral">{_badge(r.urgency.value)} <b>See {_e(r.see)}</b>: '
            f'{_e(r.message)} <span class="muted">(because: {_e(", ".join(r.because))})</span>'
            "</div>"
        )
    if a.findings:
        rows = []
        for f in a.findings:
            evidence = "<br>".join(evidence_lines(f.evidence, _EVIDENCE))
            derived = derived_line(f.derived_from, _EVIDENCE)
            if derived is not None:
                evidence += f"<br>{derived}"
            rows.append(
                [
                    _badge(f.severity.value),
                    f"<b>{_e(f.title)}</b><br><code>{_e(f.id)}</code>",
                    _e(f.summary),
                    _e(", ".join(s.value for s in f.sides)),
                    _e(f.confidence.value),
                    evidence,
                ]
            )
        parts.append(
            _table(["severity", "finding", "summary", "sides", "confidence", "evidence"], rows)
        )
    else:
        parts.append("<p>No findings from the inputs given.</p>")
    if a.recommendations:
        rows = []
        for n, rec in enumerate(a.recommendations, 1):
            ex = rec.exercise
            why = ", ".join(rec.because) if rec.because else "general balance"
            notes = [rec.note] if rec.note else []
            if rec.emphasis:
                notes.append(f"emphasis: {rec.emphasis.value} side")
            rows.append(
                [
                    str(n),
                    f"{_e(ex.name)}<br><code>{_e(ex.id)}</code>",
                    _e(ex.kind.value),
                    _e(ex.movement.value),
                    _e(rec.dose),
                    _e(why) + "".join(f'<br><span class="muted">{_e(x)}</span>' for x in notes),
                ]
            )
        parts.append("<h4>Plan</h4>")
        parts.append(_table(["#", "exercise", "kind", "movement", "dose", "for"], rows, (0,)))
    else:
        parts.append("<p>Plan: no exercise recommended.</p>")
    if a.excluded:
        items = "".join(
            f"<li><code>{_e(x.exercise_id)}</code>: {_e(x.reason)}</li>" for x in a.excluded
        )
        parts.append(f"<h4>Left out</h4><ul>{items}</ul>")
    if a.scores:
        items = "".join(f"<li>{_e(score.describe())}</li>" for score in a.scores)
        parts.append(f"<h4>Scores</h4><ul>{items}</ul>")
    if a.not_assessed:
        parts.append(
            f"<p><b>Not assessed</b> (not read as normal): {_e(', '.join(a.not_assessed))}</p>"
        )
    parts.append(f'<p class="muted">{_e(a.disclaimer)} Rules {_e(a.ruleset_version)}.</p>')
    parts.append("</div>")
    return "".join(parts)


def row_error_html(error: RowError) -> str:
    """One failed row: its position, key and every problem."""
    label = f" ({_e(error.key)})" if error.key is not None else ""
    rows = [[_e(p.field or "(form)"), _e(repr(p.value)), _e(p.message)] for p in error.problems]
    return (
        f'<div class="hipscreen">{_STYLE}<h4>row {error.row}{label} could not be screened</h4>'
        f"{_table(['field', 'value', 'problem'], rows)}</div>"
    )


def _summary_tables(summary: BatchSummary) -> str:
    counts = _table(
        ["rows read", "screened", "failed"],
        [[f"{summary.rows:,}", f"{summary.screened:,}", f"{summary.failed:,}"]],
        (0, 1, 2),
    )
    parts = [counts]
    if summary.findings:
        rows = []
        for fid, share in summary.prevalence().items():
            width = round(120 * share)
            rows.append(
                [
                    f"<code>{_e(fid)}</code>",
                    f"{summary.findings[fid]:,}",
                    f"{share:.1%}",
                    f'<span class="bar" style="width:{width}px"></span>',
                ]
            )
        parts.append(_table(["finding", "rows", "share of screened", ""], rows, (1, 2)))
    if summary.referrals:
        referred = ", ".join(f"{n:,} {_e(u)}" for u, n in summary.referrals.items())
        parts.append(f"<p><b>Referrals:</b> {referred}</p>")
    if summary.ruleset_version:
        parts.append(f'<p class="muted">Rules {_e(summary.ruleset_version)}.</p>')
    return "".join(parts)


def summary_html(summary: BatchSummary) -> str:
    """A batch summary: counts, then each finding's prevalence with a bar."""
    tables = _summary_tables(summary)
    return f'<div class="hipscreen">{_STYLE}<h4>hipscreen batch summary</h4>{tables}</div>'


def batch_html(result: BatchResult, preview: int = BATCH_PREVIEW_ROWS) -> str:
    """A batch result: the summary, the first rows, and the first failed rows with problems."""
    from hipscreen._batch._outcomes import RowError  # the batch's type; a hook, kept local

    summary = result.summary()
    parts = ['<div class="hipscreen">', _STYLE, f"<h4>hipscreen batch: {len(result):,} rows</h4>"]
    parts.append(_summary_tables(summary))
    rows = []
    for row, client_id, outcome in itertools.islice(result.records(), preview):
        key = result.keys[row] if result.keys is not None else None
        label = _e(row) + (f" ({_e(key)})" if key is not None else "")
        if isinstance(outcome, RowError):
            rows.append([label, _e(client_id or ""), _badge("error"), _e(outcome.message), "", ""])
        else:
            rows.append(
                [
                    label,
                    _e(client_id or ""),
                    "ok",
                    _e(", ".join(outcome.finding_ids)) or '<span class="muted">none</span>',
                    _badge(outcome.highest_severity),
                    _badge(outcome.referral_urgency),
                ]
            )
    more = len(result) - len(rows)
    parts.append(f"<h4>Rows{f' (first {len(rows)})' if more > 0 else ''}</h4>")
    parts.append(
        _table(["row", "client_id", "status", "findings / problems", "highest", "referral"], rows)
    )
    if more > 0:
        parts.append(f'<p class="muted">… {more:,} more rows: use to_frame() to see them all.</p>')
    errors = result.errors
    if errors:
        shown = errors[:preview]
        error_rows = [
            [_e(e.row), _e(p.field or "(form)"), _e(repr(p.value)), _e(p.message)]
            for e in shown
            for p in e.problems
        ]
        parts.append(f"<h4>Failed rows ({len(errors):,})</h4>")
        parts.append(_table(["row", "field", "value", "problem"], error_rows))
        if len(errors) > len(shown):
            parts.append(f'<p class="muted">… {len(errors) - len(shown):,} more failed rows.</p>')
    parts.append("</div>")
    return "".join(parts)
