"""Hypothesis profiles for the whole suite: ``dev`` (small, the inner loop) and ``ci`` (full size).

``HYPOTHESIS_PROFILE`` chooses one; unset, it is ``dev``. ``python3 tasks.py test --fast`` runs
``dev`` and the full run (``python3 tasks.py test``, what CI calls) runs ``ci``. Tests give
``@settings(...)`` without ``max_examples``, so the profile sets every property test's size.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("dev", max_examples=10, deadline=None)
settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(PROFILE)


def pytest_report_header(config: pytest.Config) -> str:
    return f"hypothesis profile: {PROFILE} (max_examples={settings.default.max_examples})"
