"""One evidence formatter for the text report, the notebook HTML and the CDS card detail."""

from __future__ import annotations

import hipscreen
from hipscreen._render import cds, html
from hipscreen._render.evidence import TEXT, derived_line, evidence_lines
from hipscreen._results import Evidence

FULL = Evidence(
    field="tightness.iliopsoas.left",
    value="3 <*>",
    threshold="≥ 2 (tight_grade)",
    via="tight-hip-flexors",
    note="a measured test overrides this",
)
BARE = Evidence(field="strength.gluteus_maximus", value=3)


def test_each_view_marks_the_same_parts() -> None:
    assert evidence_lines([FULL, BARE], TEXT) == [
        "- tightness.iliopsoas.left = 3 <*> (≥ 2 (tight_grade)) [via tight-hip-flexors]"
        " — a measured test overrides this",
        "- strength.gluteus_maximus = 3",
    ]
    assert evidence_lines([FULL, BARE], html._EVIDENCE) == [
        "tightness.iliopsoas.left = 3 &lt;*&gt;"
        ' <span class="muted">(≥ 2 (tight_grade))</span>'
        ' <span class="muted">via tight-hip-flexors</span>'
        ' <span class="muted">— a measured test overrides this</span>',
        "strength.gluteus_maximus = 3",
    ]
    assert evidence_lines([FULL, BARE], cds._EVIDENCE) == [
        r"- `tightness.iliopsoas.left` = 3 \<\*\> · ≥ 2 (tight_grade) · via `tight-hip-flexors`"
        " · a measured test overrides this",
        "- `strength.gluteus_maximus` = 3",
    ]


def test_derived_line_only_for_a_derived_finding() -> None:
    assert derived_line((), TEXT) is None
    assert derived_line(("a", "b"), TEXT) == "- derived from: a, b"
    assert derived_line(("a", "b"), cds._EVIDENCE) == "- derived from: `a`, `b`"
    assert derived_line(("a<b",), html._EVIDENCE) == '<span class="muted">from a&lt;b</span>'


def test_the_three_renderers_show_every_evidence_line() -> None:
    """The report, the HTML and the card detail each carry every line the formatter makes."""
    result = hipscreen.assess(
        {"tightness": {"iliopsoas": {"left": 3}}, "strength": {"gluteus_maximus": 3}}
    )
    report, page = result.explain(), result._repr_html_()
    details = {card["source"]["topic"]["code"]: card["detail"] for card in result.to_cds_cards()}
    assert any(f.evidence for f in result.findings)
    for finding in result.findings:
        for line in evidence_lines(finding.evidence, TEXT):
            assert f"      {line}\n" in report
        for line in evidence_lines(finding.evidence, html._EVIDENCE):
            assert line in page
        if finding.id in details:
            for line in evidence_lines(finding.evidence, cds._EVIDENCE):
                assert line in details[finding.id]
