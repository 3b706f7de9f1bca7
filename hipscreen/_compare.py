"""Re-screening: what changed between two assessments of the same client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hipscreen._results import Assessment, Finding, Referral
from hipscreen._vocabulary import Severity

__all__ = ["Comparison", "FindingChange", "compare"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FindingChange(_Model):
    """One finding across the two assessments (``None`` where it is absent)."""

    id: str = Field(description="The finding (rule) id.")
    title: str
    before: Severity | None = Field(description="Severity in the earlier assessment.")
    after: Severity | None = Field(description="Severity in the later assessment.")

    @property
    def improved(self) -> bool:
        """Resolved, or less severe than before."""
        return _rank(self.after) < _rank(self.before)

    @property
    def worsened(self) -> bool:
        """New, or more severe than before."""
        return _rank(self.after) > _rank(self.before)


def _rank(severity: Severity | None) -> int:
    return -1 if severity is None else severity.rank


class Comparison(_Model):
    """What changed between an earlier and a later assessment of one client.

    The lists follow the assessments' own order (most severe first): ``resolved`` in the earlier
    one's order, the others in the later one's.
    """

    client_id: str | None = None
    ruleset_before: str = Field(description="ruleset_version of the earlier assessment.")
    ruleset_after: str = Field(description="ruleset_version of the later assessment.")
    resolved: tuple[FindingChange, ...] = Field(
        default=(), description="Findings of the earlier assessment that are gone."
    )
    new: tuple[FindingChange, ...] = Field(
        default=(), description="Findings of the later assessment that were not there before."
    )
    changed: tuple[FindingChange, ...] = Field(
        default=(), description="Findings in both, with a different severity."
    )
    unchanged: tuple[FindingChange, ...] = Field(
        default=(), description="Findings in both, with the same severity."
    )
    referral_before: Referral | None = None
    referral_after: Referral | None = None
    exercises_added: tuple[str, ...] = Field(
        default=(), description="Exercise ids recommended now but not before."
    )
    exercises_dropped: tuple[str, ...] = Field(
        default=(), description="Exercise ids recommended before but not now."
    )

    @property
    def rules_changed(self) -> bool:
        """The two assessments came from different rules, so some differences may be theirs."""
        return self.ruleset_before != self.ruleset_after

    @property
    def has_changes(self) -> bool:
        """Anything resolved, new or changed in severity, or a referral that came or went."""
        return bool(
            self.resolved
            or self.new
            or self.changed
            or (self.referral_before is None) != (self.referral_after is None)
        )

    def explain(self) -> str:
        """A readable plain-text summary of the changes, for a progress view or a log."""
        who = f" for {self.client_id}" if self.client_id else ""
        lines = [f"hipscreen progress{who}"]
        if self.rules_changed:
            lines.append(
                f"rules: {self.ruleset_before} → {self.ruleset_after} "
                "(the rules changed too: some differences may come from them)"
            )
        else:
            lines.append(f"rules: {self.ruleset_after}")
        lines.append("")
        if not self.has_changes:
            lines.append("No change in findings.")
        sections: list[tuple[str, tuple[FindingChange, ...], Callable[[FindingChange], str]]] = [
            ("Resolved", self.resolved, lambda c: f"was {c.before}"),
            ("New", self.new, lambda c: f"{c.after}"),
            ("Changed", self.changed, _severity_change),
        ]
        for heading, items, describe in sections:
            if items:
                lines.append(f"{heading} ({len(items)}):")
                lines += [f"  - {c.id}: {c.title} ({describe(c)})" for c in items]
        if self.unchanged:
            ids = ", ".join(c.id for c in self.unchanged)
            lines.append(f"Unchanged ({len(self.unchanged)}): {ids}")
        before, after = self.referral_before, self.referral_after
        if before is not None or after is not None:
            lines.append("")
            if after is None:
                lines.append("Referral: none now (there was one before).")
            elif before is None:
                lines.append(f"Referral: NEW ({after.urgency.value}): see {after.see}.")
            elif (before.urgency, before.see) != (after.urgency, after.see):
                lines.append(
                    f"Referral: {before.urgency.value}, see {before.see} → "
                    f"{after.urgency.value}, see {after.see}."
                )
            else:
                lines.append(f"Referral: still {after.urgency.value}, see {after.see}.")
        if self.exercises_added or self.exercises_dropped:
            lines.append("")
            if self.exercises_added:
                lines.append(f"Plan, added: {', '.join(self.exercises_added)}")
            if self.exercises_dropped:
                lines.append(f"Plan, dropped: {', '.join(self.exercises_dropped)}")
        return "\n".join(lines)


def _severity_change(change: FindingChange) -> str:
    direction = "better" if change.improved else "worse"
    return f"{change.before} → {change.after}, {direction}"


AssessmentLike = Assessment | Mapping[str, Any] | str | bytes


def _as_assessment(value: AssessmentLike, name: str) -> Assessment:
    if isinstance(value, Assessment):
        return value
    try:
        if isinstance(value, str | bytes | bytearray):
            return Assessment.model_validate_json(value)
        if isinstance(value, Mapping):
            return Assessment.model_validate(dict(value))
    except ValidationError as error:
        raise ValueError(f"{name} is not a valid hipscreen assessment: {error}") from None
    raise TypeError(
        f"{name} must be an Assessment, a mapping or a JSON string (got {type(value).__name__})"
    )


def _change(finding: Finding, before: Severity | None, after: Severity | None) -> FindingChange:
    return FindingChange(id=finding.id, title=finding.title, before=before, after=after)


def compare(before: AssessmentLike, after: AssessmentLike) -> Comparison:
    """Describe what changed between two assessments of the same client.

    Args:
        before: the earlier assessment (an `Assessment`, or its JSON or dict, as stored).
        after: the later assessment.

    Returns:
        A `Comparison` listing findings resolved, new, changed in severity and unchanged, the
        referral before and after, and the exercises added to or dropped from the plan.

    Raises:
        ValueError: the two assessments name different clients, or one is not an assessment.

    Examples:
        >>> import hipscreen
        >>> first = hipscreen.assess({"tightness": {"iliopsoas": 3}})
        >>> later = hipscreen.assess({"tightness": {"iliopsoas": 1}})
        >>> [c.id for c in hipscreen.compare(first, later).resolved][:1]
        ['tight-hip-flexors']
    """
    old = _as_assessment(before, "before")
    new = _as_assessment(after, "after")
    if old.client_id and new.client_id and old.client_id != new.client_id:
        raise ValueError(
            "compare() needs two assessments of the same client "
            f"(got client_id {old.client_id!r} and {new.client_id!r})"
        )
    old_by_id = {f.id: f for f in old.findings}
    new_by_id = {f.id: f for f in new.findings}
    resolved = [_change(f, f.severity, None) for f in old.findings if f.id not in new_by_id]
    added, changed, unchanged = [], [], []
    for finding in new.findings:
        previous = old_by_id.get(finding.id)
        if previous is None:
            added.append(_change(finding, None, finding.severity))
        elif previous.severity != finding.severity:
            changed.append(_change(finding, previous.severity, finding.severity))
        else:
            unchanged.append(_change(finding, previous.severity, finding.severity))
    old_exercises = [r.exercise.id for r in old.recommendations]
    new_exercises = [r.exercise.id for r in new.recommendations]
    return Comparison(
        client_id=new.client_id or old.client_id,
        ruleset_before=old.ruleset_version,
        ruleset_after=new.ruleset_version,
        resolved=tuple(resolved),
        new=tuple(added),
        changed=tuple(changed),
        unchanged=tuple(unchanged),
        referral_before=old.referral,
        referral_after=new.referral,
        exercises_added=tuple(e for e in new_exercises if e not in old_exercises),
        exercises_dropped=tuple(e for e in old_exercises if e not in new_exercises),
    )
