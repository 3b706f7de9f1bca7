"""Reference web service: hipscreen behind HTTP, JSON in and JSON out.

The service itself lives in the package (``pip install "hipscreen[service]"``): this script is a
thin caller, the same as the ``hipscreen serve`` command. Endpoints, limits and error answers are
described in docs/embedding.md ("A reference web service") and in the service's OpenAPI document
(``GET /openapi.json``, or the pages at ``/docs``).

Run it::

    python examples/service.py --port 8000
    python examples/service.py --extra-rules my_clinic_rules --threshold weak_grade=4
    uvicorn service:app --app-dir examples --port 8001

``app`` below is the app with the built-in rules; ``create_app(screener, ...)`` builds one around
your own `hipscreen.Screener`, with your own limits.
"""

from __future__ import annotations

import sys

from hipscreen._cli import main as hipscreen_main
from hipscreen._service import FORM_KEY, HOOK, SERVICE_ID, create_app

__all__ = ["FORM_KEY", "HOOK", "SERVICE_ID", "app", "create_app", "main"]

app = create_app()
"""The app with the built-in rules, for ``uvicorn service:app --app-dir examples``."""


def main(argv: list[str] | None = None) -> int:
    """``hipscreen serve`` with these arguments (see ``hipscreen serve --help``)."""
    return hipscreen_main(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
