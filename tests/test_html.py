"""Every table hipscreen renders for Jupyter aligns prose left and numbers right on the cell itself.

Jupyter's own CSS right-aligns table cells, and an untrusted output loses its ``<style>``: only
an alignment on each ``<td>``/``<th>`` holds everywhere (JupyterLab, Notebook, VS Code).
"""

from __future__ import annotations

import re
from html import escape

import hipscreen
from hipscreen import RowError, assess_many

CELL = re.compile(r"<(td|th)( [^>]*)?>")

FORMS = [
    {
        "client_id": "ann",
        "tightness": {"iliopsoas": 3},
        "strength": {"gluteus_maximus": 2},
        "symptoms": ["saddle_numbness"],
    },
    {"client_id": "bob", "age": -1},
]


def _cells(html: str) -> list[str]:
    return [attributes or "" for _, attributes in CELL.findall(html)]


def _rendered() -> dict[str, str]:
    batch = assess_many(FORMS)
    error = batch[1]
    assert isinstance(error, RowError)
    return {
        "assessment": hipscreen.assess(FORMS[0])._repr_html_(),
        "batch": batch._repr_html_(),
        "summary": batch.summary()._repr_html_(),
        "row error": error._repr_html_(),
    }


def test_every_cell_of_every_table_states_its_alignment() -> None:
    for name, html in _rendered().items():
        cells = _cells(html)
        assert cells, name
        for attributes in cells:
            assert re.search(r'style="text-align:(left|right)"', attributes), (name, attributes)


def test_prose_columns_align_left_and_counts_right() -> None:
    html = _rendered()["assessment"]
    # The findings table: severity, finding, summary, sides, confidence, evidence: all words.
    finding = next(f for f in hipscreen.assess(FORMS[0]).findings if f.summary)
    summary_cell = re.search(r"<td([^>]*)>" + re.escape(escape(finding.summary)), html)
    assert summary_cell is not None
    assert 'style="text-align:left"' in summary_cell.group(1)
    assert '<th style="text-align:left">evidence</th>' in html
    plan = hipscreen.assess({"tightness": {"iliopsoas": 3}})._repr_html_()
    assert '<th style="text-align:left">for</th>' in plan
    assert '<th class="num" style="text-align:right">#</th>' in plan
    counts = _rendered()["summary"]
    assert '<th class="num" style="text-align:right">rows read</th>' in counts
    assert re.search(r'<td class="num" style="text-align:right">2</td>', counts)
