"""A griffe extension for the API reference: read a Google-style ``Example:`` section as
``Examples:``.

griffe only recognises the plural heading; with the singular one, the ``>>>`` lines would be
rendered as prose (and a list in the output read as a Markdown link).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_SINGULAR = re.compile(r"^Example:$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rewrite the section heading before the docstring is parsed."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _SINGULAR.sub("Examples:", obj.docstring.value)
