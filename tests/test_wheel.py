"""The built wheel ships the rules and works when installed, away from the checkout."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest
from build_helpers import REPO, load_tasks, run, venv_python

import hipscreen

pytestmark = pytest.mark.process  # builds and installs in subprocesses

FORM = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}, "client_id": "wheel"}

SCRIPT = """
import json, sys
import hipscreen
from hipscreen._rules.builtin import builtin_rules_dir

form = json.loads(sys.argv[1])
result = hipscreen.assess(form)
print(json.dumps({
    "finding_ids": result.finding_ids(),
    "ruleset_version": result.ruleset_version,
    "rules_dir": str(builtin_rules_dir().resolve()),
    "package": str(__import__("pathlib").Path(hipscreen.__file__).resolve()),
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, REPO, cwd=dist)
    (built,) = dist.glob("hipscreen-*.whl")
    return built


@pytest.mark.slow
def test_wheel_contains_the_rules_the_catalog_and_py_typed(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    rule_files = sorted(p.name for p in (REPO / "rules" / "findings").glob("*.yaml"))
    assert rule_files, "the checkout has no rule files"
    expected = {
        "hipscreen/py.typed",
        "hipscreen/rules/ruleset.yaml",
        "hipscreen/rules/exercises.yaml",
        "hipscreen/rules/equivalences.yaml",
        "hipscreen/rules/tables.yaml",
        *(f"hipscreen/rules/findings/{name}" for name in rule_files),
        *(
            f"hipscreen/rules/instruments/{p.name}"
            for p in (REPO / "rules" / "instruments").glob("*.yaml")
        ),
    }
    assert expected <= names, sorted(expected - names)


@pytest.mark.slow
def test_installed_wheel_screens_with_its_own_rules_outside_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv_python(venv)
    # durable-rules as tasks.py builds it (PyPI has only its source, which needs a define to
    # import on Python 3.13): the same build the README's commands install.
    durable_rules = load_tasks().durable_rules_wheel(sys.executable)
    run(python, "-m", "pip", "install", "--quiet", durable_rules, wheel, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "screen.py").write_text(SCRIPT)

    out = json.loads(run(python, "screen.py", json.dumps(FORM), cwd=elsewhere, timeout=120))

    expected = hipscreen.assess(FORM)
    assert {"tight-hip-flexors", "weak-hip-extensors", "flexor-extensor-imbalance"} <= set(
        out["finding_ids"]
    )
    assert out["finding_ids"] == expected.finding_ids()
    assert out["ruleset_version"] == expected.ruleset_version  # same rule content shipped
    site = venv.resolve()
    assert Path(out["package"]).is_relative_to(site), out["package"]
    assert Path(out["rules_dir"]).is_relative_to(site), out["rules_dir"]
    assert not Path(out["rules_dir"]).is_relative_to(REPO), out["rules_dir"]
