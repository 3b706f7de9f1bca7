"""Moved to `hipscreen._render.html`; this name keeps old imports working."""

from hipscreen._render.html import (
    BATCH_PREVIEW_ROWS,
    assessment_html,
    batch_html,
    row_error_html,
    summary_html,
)

__all__ = ["BATCH_PREVIEW_ROWS", "assessment_html", "batch_html", "row_error_html", "summary_html"]
