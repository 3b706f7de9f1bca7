"""The public surface: every public name is in ``__all__``, and ``__all__`` is sorted and real."""

from __future__ import annotations

import types

import hipscreen


def _public_names() -> list[str]:
    return [
        name
        for name, value in vars(hipscreen).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]


def test_every_public_name_is_exported() -> None:
    """A name importable from hipscreen without a leading underscore is listed in __all__."""
    unlisted = sorted(set(_public_names()) - set(hipscreen.__all__))
    assert unlisted == []


def test_all_is_sorted_without_duplicates() -> None:
    assert list(hipscreen.__all__) == sorted(set(hipscreen.__all__))


def test_every_name_in_all_exists() -> None:
    missing = [name for name in hipscreen.__all__ if not hasattr(hipscreen, name)]
    assert missing == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from hipscreen import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(hipscreen.__all__)
