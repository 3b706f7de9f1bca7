"""The supported Pythons and the durable-rules build recipe agree everywhere they are stated.

pyproject.toml (classifiers, requires-python, the pin), tasks.py (what it builds and checks),
.ci/run (what CI runs), the README and the getting-started page, and the import guard's message.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from build_helpers import REPO, load_tasks

tasks = load_tasks()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SUPPORTED = [f"{major}.{minor}" for major, minor in tasks.SUPPORTED]
INSTALL_DURABLE_RULES = (
    f"CPPFLAGS={tasks.DURABLE_RULES_CPPFLAGS} pip install --no-cache-dir {tasks.DURABLE_RULES}"
)


def test_supported_pythons_are_3_11_to_3_13() -> None:
    assert SUPPORTED == ["3.11", "3.12", "3.13"]


def test_pyproject_states_the_supported_pythons() -> None:
    classifiers = PYPROJECT["project"]["classifiers"]
    listed = [c.rsplit(" :: ", 1)[1] for c in classifiers if re.search(r"Python :: 3\.\d+$", c)]
    assert listed == SUPPORTED
    assert PYPROJECT["project"]["requires-python"] == f">={SUPPORTED[0]}"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{SUPPORTED[0].replace('.', '')}"


def test_ci_runs_every_supported_python_and_requires_the_oldest() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert f"for version in {' '.join(SUPPORTED)}; do" in ci
    assert f'if [ "$version" = {SUPPORTED[0]} ]; then' in ci


def test_the_pin_is_the_release_tasks_builds() -> None:
    pins = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("durable-rules")]
    assert pins == [tasks.DURABLE_RULES]


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_install_pages_build_durable_rules_the_way_tasks_does(page: str) -> None:
    text = (REPO / page).read_text(encoding="utf-8")
    assert INSTALL_DURABLE_RULES in text
    assert "3.11, 3.12 and 3.13" in text
    assert "pip install --no-index --find-links wheelhouse hipscreen" in text
    assert "3.11+" not in text  # the old open-ended claim that invited 3.13 without the define


def test_readme_never_installs_hipscreen_from_a_package_index_first() -> None:
    """hipscreen is not on an index: each install of it names a path, a wheel or a wheelhouse."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for line in readme.splitlines():
        command = line.strip()
        if command.startswith("pip install") and "hipscreen" in command:
            assert "--find-links" in command or ".whl" in command, command


def test_import_guard_gives_the_tasks_recipe() -> None:
    engine = (REPO / "hipscreen" / "_engine.py").read_text(encoding="utf-8")
    assert f'"CPPFLAGS={tasks.DURABLE_RULES_CPPFLAGS} "' in engine
    assert f'"--no-cache-dir --no-binary durable-rules {tasks.DURABLE_RULES}"' in engine
