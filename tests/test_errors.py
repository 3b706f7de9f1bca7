"""The exception tree: every error hipscreen raises on purpose is a `HipscreenError`, defined in
``hipscreen/_errors.py`` and still importable from the module that raises it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hipscreen
from hipscreen import _errors

PACKAGE = Path(hipscreen.__file__).resolve().parent

# Old import paths that must keep working, and the builtin each error stays.
MOVED = [
    ("hipscreen._batch._tables", "TableError", ValueError),
    ("hipscreen._batch._outcomes", "BatchInterrupted", RuntimeError),
    ("hipscreen._intake.strictjson", "StrictJsonError", ValueError),
    ("hipscreen._rulestools", "RulesetMismatchError", ValueError),
]

# Exception classes that stay beside their code: private control flow that never leaves its
# module (or, for ExplanationError, a HipscreenError defined beside the evaluator).
LOCAL = {
    "_cli.py": {"UsageError"},
    "_cds_hooks.py": {"CdsFailure"},
    "_service_auth.py": {"AuthError"},
    "_engine.py": {"_StaleSession"},
    "_intake/strictjson.py": {"_RepeatedKeyError"},
    "_rules/explain.py": {"ExplanationError"},
    "_rules/formfacts.py": {"EvaluatorError"},
    "_batch/_tables.py": {"_CellProblem"},
    "_batch/_csvframe.py": {"FramingError"},
    "_batch/_stream.py": {"OutputError"},
}


@pytest.mark.parametrize(("module", "name", "builtin"), MOVED)
def test_moved_errors_are_in_the_tree_and_keep_their_old_paths(
    module: str, name: str, builtin: type[Exception]
) -> None:
    old = getattr(__import__(module, fromlist=[name]), name)
    assert old is getattr(_errors, name)
    assert issubclass(old, _errors.HipscreenError)
    assert issubclass(old, builtin)
    assert name in _errors.__doc__  # drawn in the tree


def test_public_errors_are_hipscreen_errors() -> None:
    public = [
        value
        for name in hipscreen.__all__
        if isinstance(value := getattr(hipscreen, name), type) and issubclass(value, Exception)
    ]
    assert public  # the test looks at something
    assert all(issubclass(error, hipscreen.HipscreenError) for error in public)


def test_no_exception_class_is_defined_outside_errors_unless_listed() -> None:
    """A new exception class goes into _errors (and the tree), or is listed here as local."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "_errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(base).endswith(("Error", "Exception", "Interrupted"))
                for base in node.bases
            ):
                found.setdefault(rel, set()).add(node.name)
    assert found == LOCAL
