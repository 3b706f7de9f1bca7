"""Where the built-in rules are: inside the installed package, or the checkout's ``rules/``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def builtin_rules_dir() -> Path:
    """The rules shipped with hipscreen: inside the package when installed, else the checkout's."""
    packaged = Path(str(resources.files("hipscreen"))) / "rules"
    if (packaged / "ruleset.yaml").is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"
