"""Optional dependencies of batch screening: import them, or say which extra to install."""

from __future__ import annotations

import importlib
from typing import Any, TypeAlias

__all__ = ["DataFrame", "missing_extra", "optional_module", "progress_bar"]

DataFrame: TypeAlias = Any
"""A DataFrame (pandas is an optional extra: ``hipscreen[pandas]``; polars: ``[polars]``)."""


def missing_extra(package: str, extra: str) -> ImportError:
    """The error for an optional dependency that is not installed, with the command to run."""
    return ImportError(f"{package} is not installed, run pip install 'hipscreen[{extra}]'")


def optional_module(name: str, package: str, extra: str) -> Any:
    """Import an optional dependency, or fail with the install command.

    Raises:
        ImportError: the package is not installed (the message says which extra to install).
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        raise missing_extra(package, extra) from None


def progress_bar(enabled: bool, total: int | None, unit: str, **options: Any) -> Any:
    """A tqdm progress bar (a widget in Jupyter), or None when not ``enabled``.

    Raises:
        ImportError: tqdm is not installed (``pip install 'hipscreen[progress]'``).
    """
    if not enabled:
        return None
    tqdm = optional_module("tqdm.auto", "tqdm", "progress").tqdm
    return tqdm(total=total, unit=unit, **options)
