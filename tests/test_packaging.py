"""The supported Pythons and the durable-rules build recipe agree everywhere they are stated.

pyproject.toml (classifiers, requires-python, the pin), tasks.py (what it builds and checks),
.ci/run (what CI runs), the README and the getting-started page, and the import guard's message.
"""

from __future__ import annotations

import json
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


# -- the test tiers: README, tasks.py, .ci/run and pyproject.toml agree ----------------------------

README = (REPO / "README.md").read_text(encoding="utf-8")
CI = (REPO / ".ci" / "run").read_text(encoding="utf-8")
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
PYTEST = PYPROJECT["tool"]["pytest"]["ini_options"]
MARKERS = [line.split(":")[0] for line in PYTEST["markers"]]


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of requirements, hipscreen's own extras expanded."""
    names: set[str] = set()
    for requirement in requirements:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
        if name == "hipscreen":
            extras = re.search(r"\[(.*)\]", requirement)
            assert extras is not None, requirement
            for extra in extras.group(1).split(","):
                names |= _names(EXTRAS[extra.strip()])
        else:
            names.add(name)
    return names


def test_readme_names_every_extra_there_is() -> None:
    paragraph = README[README.index("**Extras**") :].split("\n\n")[0]
    named = set(re.findall(r"`([a-z-]+)` \(", paragraph))
    assert named == set(EXTRAS), "the README's extras paragraph and pyproject's extras differ"


def test_readme_names_the_wheel_of_this_version() -> None:
    version = re.search(r'__version__ = "([^"]+)"', (REPO / "hipscreen/_version.py").read_text())
    assert version is not None
    wheels = set(re.findall(r"hipscreen-[0-9][^ `]*\.whl", README))
    assert wheels == {f"hipscreen-{version.group(1)}-py3-none-any.whl"}


def test_readme_figures_are_filled_in() -> None:
    for name in ("README.md", "docs/index.md", "CHANGELOG.md"):
        page = (REPO / name).read_text(encoding="utf-8")
        assert not re.search(r"@[A-Z_]+@", page), name


def test_ci_calls_the_readme_s_test_commands_with_options_tasks_accepts() -> None:
    """.ci/run: the whole suite on the oldest Python, the fast tier and the version-sensitive
    tests on the others; every flag it passes is one of tasks.py test's own or pytest's -q."""
    assert f"WHOLE_SUITE_ON={SUPPORTED[0]}" in CI
    assert 'tasks.py test "${flags[@]}"' in CI
    flag_sets = re.findall(r"flags=\(([^)]*)\)", CI)
    assert flag_sets == ["-q", "--fast --version-sensitive -q"]
    for flags in flag_sets:
        options, rest = tasks.parse_test_options(flags.split())
        assert rest == ["-q"]
        assert options.fast == options.version_sensitive == ("--fast" in flags)
    assert "python3 tasks.py test --fast " in README
    assert "python3 tasks.py test  " in README  # the whole suite, no flag


def test_the_dev_extra_is_lean_and_the_full_run_installs_the_rest() -> None:
    dev = _names(EXTRAS["dev"])
    full = _names(EXTRAS["test-full"])
    for heavy in ("pyspark", "polars", "dask", "matplotlib", "mkdocs", "schemathesis"):
        assert heavy not in dev, f"{heavy} belongs in an extra of its own, not in dev"
        assert heavy in full, f"the full run (test-full) must install {heavy}"
    assert dev <= full
    assert "pytest-xdist" in dev  # tasks.py runs pytest -n 2
    assert "nbconvert" in _names(EXTRAS["notebook"])  # the README runs the notebook with it
    assert (tasks.FAST_REQUIREMENT, tasks.FULL_REQUIREMENT) == ("[dev]", "[test-full]")
    assert "-n" in tasks.XDIST


def test_the_fast_tier_leaves_out_every_marker_but_service() -> None:
    left_out = set(re.findall(r"not (\w+)", tasks.FAST_MARKERS))
    assert left_out == set(MARKERS) - {"service"}
    assert "--strict-markers" in PYTEST["addopts"]
    section = README[README.index("**Mark each test by what it does**") :].split("\n\n")[1]
    items = re.findall(r"^- (.*?):", section, flags=re.MULTILINE)
    listed = {name for item in items for name in re.findall(r"`(\w+)`", item)}
    assert listed == set(MARKERS), "the README's marker list and pyproject's markers differ"


def test_version_sensitive_tests_exist() -> None:
    for path in tasks.VERSION_SENSITIVE:
        assert (REPO / path).is_file(), path


def test_schemathesis_loads_only_in_its_own_module() -> None:
    assert PYTEST["addopts"][-2:] == ["-p", "no:schemathesis"]
    users = [
        path.name
        for path in (REPO / "tests").glob("*.py")
        if re.search(r"^(import|from) schemathesis", path.read_text(encoding="utf-8"), re.M)
    ]
    assert users == ["test_service_schemathesis.py"]
    module = (REPO / "tests" / "test_service_schemathesis.py").read_text(encoding="utf-8")
    assert 'pytest_plugins = ["schemathesis.pytest.plugin"]' in module


def test_no_test_fixes_the_number_of_hypothesis_examples() -> None:
    """The profiles in tests/conftest.py size every property test (dev small, ci full)."""
    conftest = (REPO / "tests" / "conftest.py").read_text(encoding="utf-8")
    assert 'register_profile("dev"' in conftest
    assert 'register_profile("ci"' in conftest
    for path in (REPO / "tests").glob("*.py"):
        if path.name in {"conftest.py", "test_packaging.py"}:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            assert not re.search(r"max_examples=\d", line), f"{path.name}: {line.strip()}"


def test_the_notebook_asks_for_the_kernel_the_readme_installs() -> None:
    notebook = json.loads((REPO / "examples" / "batch_notebook.ipynb").read_text(encoding="utf-8"))
    name = notebook["metadata"]["kernelspec"]["name"]
    assert f"ipykernel install --user --name {name} " in README
    assert "nbconvert" in README
