"""The plain-text report of an assessment (`Assessment.explain`, ``hipscreen explain``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hipscreen._render.evidence import TEXT, derived_line, evidence_lines

if TYPE_CHECKING:
    from hipscreen._results import Assessment

__all__ = ["assessment_text"]


def assessment_text(a: Assessment) -> str:
    """A readable plain-text report: findings with their evidence, the plan, the referral."""
    lines = [f"hipscreen report{f' for {a.client_id}' if a.client_id else ''}"]
    lines.append(f"rules: {a.ruleset_version}")
    lines.append("")
    if a.referral is not None:
        r = a.referral
        lines.append(f"REFERRAL ({r.urgency.value}): see {r.see}")
        lines.append(f"  {r.message}")
        lines.append(f"  because: {', '.join(r.because)}")
        lines.append("")
    if not a.findings:
        lines.append("Findings: none from the inputs given.")
    else:
        lines.append("Findings:")
        for f in a.findings:
            sides = f" ({', '.join(s.value for s in f.sides)})" if f.sides else ""
            lines.append(f"  [{f.severity.value}] {f.id}: {f.title}{sides} [{f.confidence.value}]")
            lines.append(f"      {f.summary}")
            lines += [f"      {line}" for line in evidence_lines(f.evidence, TEXT)]
            derived = derived_line(f.derived_from, TEXT)
            if derived is not None:
                lines.append(f"      {derived}")
            lines.append(f"      source: {f.source}")
    lines.append("")
    if a.recommendations:
        lines.append("Plan:")
        for i, rec in enumerate(a.recommendations, 1):
            ex = rec.exercise
            why = ", ".join(rec.because) if rec.because else "general balance"
            lines.append(f"  {i}. {ex.name} [{ex.kind.value}, {ex.movement.value}] {rec.dose}")
            lines.append(f"      for: {why}")
            if rec.emphasis:
                lines.append(f"      emphasis: {rec.emphasis.value} side")
            if rec.note:
                lines.append(f"      note: {rec.note}")
    else:
        lines.append("Plan: no exercise recommended.")
    if a.excluded:
        lines.append("")
        lines.append("Left out:")
        for ex_out in a.excluded:
            lines.append(f"  - {ex_out.exercise_id}: {ex_out.reason}")
    if a.scores:
        lines.append("")
        lines.append("Scores:")
        lines += [f"  - {score.describe()}" for score in a.scores]
    if a.not_assessed:
        lines.append("")
        lines.append(f"Not assessed (not read as normal): {', '.join(a.not_assessed)}")
    lines.append("")
    lines.append(a.disclaimer)
    return "\n".join(lines)
