"""One formatter for a finding's evidence, used by every view (text, HTML, CDS Markdown).

Each view differs only in its marks: how an identifier (a field path, a finding id) is shown, how
free text is escaped, and the few words around the optional parts. `EvidenceFormat` holds those
marks (`TEXT` here; the HTML and CDS marks beside their escapers in ``_html`` and ``_cds``);
`evidence_lines` and `derived_line` put them together the same way for every view, so a new part
of `Evidence` is added in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hipscreen._results import Evidence

__all__ = ["TEXT", "EvidenceFormat", "derived_line", "evidence_lines"]


@dataclass(frozen=True)
class EvidenceFormat:
    """The marks of one view; each template has one ``{}`` for the (already escaped) part."""

    line: str
    """One input: ``{field}`` and ``{value}``, followed by the optional parts that are given."""
    threshold: str
    via: str
    note: str
    derived: str
    """The finding ids a derived finding rests on, joined by ``", "``."""
    ident: Callable[[object], str]
    """How an identifier (field path, finding id) is shown."""
    text: Callable[[object], str]
    """How free text (a value, a threshold, a note) is escaped."""


def evidence_lines(evidence: Sequence[Evidence], fmt: EvidenceFormat) -> list[str]:
    """One line per input behind a finding, in the view's marks."""
    lines = []
    for ev in evidence:
        line = fmt.line.format(field=fmt.ident(ev.field), value=fmt.text(ev.value))
        if ev.threshold:
            line += fmt.threshold.format(fmt.text(ev.threshold))
        if ev.via:
            line += fmt.via.format(fmt.ident(ev.via))
        if ev.note:
            line += fmt.note.format(fmt.text(ev.note))
        lines.append(line)
    return lines


def derived_line(derived_from: Sequence[str], fmt: EvidenceFormat) -> str | None:
    """The line naming the findings a derived finding rests on; None when it rests on none."""
    if not derived_from:
        return None
    return fmt.derived.format(", ".join(fmt.ident(d) for d in derived_from))


TEXT = EvidenceFormat(
    line="- {field} = {value}",
    threshold=" ({})",
    via=" [via {}]",
    note=" — {}",
    derived="- derived from: {}",
    ident=str,
    text=str,
)
"""Plain text (`Assessment.to_text`, ``hipscreen explain``)."""
