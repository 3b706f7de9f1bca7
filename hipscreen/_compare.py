"""Re-screening: what changed between two assessments of the same client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hipscreen._results import Assessment, Finding, InstrumentScore, Referral
from hipscreen._vocabulary import Severity

__all__ = ["Comparison", "FindingChange", "ScoreChange", "compare"]


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


Verdict = Literal[
    "meaningful_improvement",
    "meaningful_worsening",
    "within_measurement_error",
    "below_mcid",
    "no_threshold",
    "not_comparable",
]

_VERDICT_WORDS: dict[str, str] = {
    "meaningful_improvement": "meaningful improvement",
    "meaningful_worsening": "meaningful worsening",
    "within_measurement_error": "within measurement error",
    "below_mcid": "smaller than the clinically important change",
    "no_threshold": "no published threshold for a meaningful change",
    "not_comparable": "not comparable",
}


class ScoreChange(_Model):
    """One instrument's score across the two assessments, judged against its MCID and MDC.

    ``verdict``: ``meaningful_improvement`` / ``meaningful_worsening`` (the change reaches the
    MCID, and the MDC where one is published), ``within_measurement_error`` (smaller than the
    MDC), ``below_mcid`` (beyond the MDC or with none published, but short of the MCID),
    ``no_threshold`` (a stratification or readiness tool: only the band is compared), or
    ``not_comparable`` (a score missing or incomplete, different versions, or no PSFS activity
    rated both times).
    """

    instrument: str
    version: str | None = Field(description="The version both were scored as (None: they differ).")
    before: float | None
    after: float | None
    delta: float | None = Field(description="after − before, in score points.")
    band_before: str | None = None
    band_after: str | None = None
    mcid: float | None = Field(default=None, description="Minimal clinically important difference.")
    mdc: float | None = Field(default=None, description="Minimal detectable change.")
    verdict: Verdict
    note: str | None = Field(default=None, description="Why not comparable, or how it was paired.")
    source: str | None = Field(default=None, description="Where the MCID/MDC come from.")

    def describe(self) -> str:
        """One line for a progress view."""
        words = _VERDICT_WORDS[self.verdict]
        if self.delta is None:
            shown = f"{self.instrument}: {words}"
        else:
            shown = (
                f"{self.instrument}: {self.before:g} → {self.after:g} ({self.delta:+g}), {words}"
            )
        limits = [f"{name} {v:g}" for name, v in (("MCID", self.mcid), ("MDC", self.mdc)) if v]
        if limits:
            shown += f" [{', '.join(limits)}]"
        if self.band_before != self.band_after and (self.band_before or self.band_after):
            shown += f"; band {self.band_before or '—'} → {self.band_after or '—'}"
        if self.note:
            shown += f" ({self.note})"
        return shown


def score_change(old: InstrumentScore, new: InstrumentScore) -> ScoreChange:
    """Judge the change of one instrument's score (same instrument on both sides)."""
    from hipscreen._instruments.loader import builtin_instruments  # it imports the results module

    spec = builtin_instruments()[new.instrument]
    base: dict[str, Any] = {
        "instrument": new.instrument,
        "version": new.version if old.version == new.version else None,
        "before": old.value,
        "after": new.value,
        "delta": None,
        "band_before": old.band,
        "band_after": new.band,
        "mcid": spec.change.mcid,
        "mdc": spec.change.mdc,
        "source": spec.change.source,
    }
    if old.version != new.version:
        note = f"versions differ ({old.version} and {new.version})"
        return ScoreChange(**base, verdict="not_comparable", note=note)
    before, after = old.value, new.value
    if spec.scoring.formula == "mean":
        # PSFS: only the activities rated both times are compared.
        common = sorted(set(old.subscores) & set(new.subscores))
        if not common:
            note = "no activity rated both times"
            return ScoreChange(**base, verdict="not_comparable", note=note)
        if set(old.subscores) != set(new.subscores):
            before = round(sum(old.subscores[k] for k in common) / len(common), 3)
            after = round(sum(new.subscores[k] for k in common) / len(common), 3)
            base.update(before=before, after=after)
            base["note"] = "mean of the activities rated both times: " + ", ".join(
                k.removeprefix("activity_") for k in common
            )
    if before is None or after is None:
        note = "a score is missing or incomplete"
        return ScoreChange(**base, verdict="not_comparable", note=note)
    delta = round(after - before, 3)
    base["delta"] = delta
    mcid, mdc = spec.change.mcid, spec.change.mdc
    size = abs(delta)
    verdict: Verdict
    if mcid is None and mdc is None:
        verdict = "no_threshold"
    elif mdc is not None and size < mdc:
        verdict = "within_measurement_error"
    elif mcid is not None and size < mcid:
        verdict = "below_mcid"
    else:
        better = (delta > 0) == spec.scoring.higher_is_better
        verdict = "meaningful_improvement" if better else "meaningful_worsening"
    return ScoreChange(**base, verdict=verdict)


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
    score_changes: tuple[ScoreChange, ...] = Field(
        default=(),
        description="Instruments scored in both assessments, with the change judged against "
        "their MCID and MDC.",
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
        if self.score_changes:
            lines.append("")
            lines.append("Scores:")
            lines += [f"  - {change.describe()}" for change in self.score_changes]
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
        referral before and after, the exercises added to or dropped from the plan, and each
        instrument scored both times with its change judged against the MCID and MDC.

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
    old_scores = {s.instrument: s for s in old.scores}
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
        score_changes=tuple(
            score_change(old_scores[s.instrument], s)
            for s in new.scores
            if s.instrument in old_scores
        ),
    )
