"""`python3 tasks.py wheelhouse` builds wheels that install on a machine with no compiler.

The command builds for every supported Python on the machine; here it builds for the running
Python only (CI runs the suite on each supported Python, so each gets its turn).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from build_helpers import REPO, clean_env, run, venv_python

import hipscreen

pytestmark = pytest.mark.process  # builds and installs in subprocesses

TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"
FORM = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}, "client_id": "house"}
SCRIPT = """
import importlib.metadata, json, sys
import durable_rules_engine, hipscreen
result = hipscreen.assess(json.loads(sys.argv[1]))
print(json.dumps({
    "finding_ids": result.finding_ids(),
    "durable_rules_wheel": importlib.metadata.distribution("durable-rules").read_text("WHEEL"),
    "engine": durable_rules_engine.__file__,
}))
"""


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    command = ("wheelhouse", "--python", sys.executable, "--out", out, "--no-check")
    run(sys.executable, REPO / "tasks.py", *command, cwd=out)
    return out


@pytest.mark.slow
def test_wheelhouse_holds_wheels_only_with_a_manylinux_durable_rules(wheelhouse: Path) -> None:
    names = sorted(path.name for path in wheelhouse.iterdir())
    assert names, "the wheelhouse is empty"
    assert all(name.endswith(".whl") for name in names), names  # no sdist: nothing to compile

    (hipscreen_wheel,) = (name for name in names if name.startswith("hipscreen-"))
    assert hipscreen_wheel == f"hipscreen-{hipscreen.__version__}-py3-none-any.whl"
    (durable,) = (name for name in names if name.startswith("durable_rules-"))
    assert durable.startswith(f"durable_rules-2.0.28-{TAG}-{TAG}-manylinux"), durable
    assert "-linux_" not in durable  # repaired by auditwheel, not the raw local build

    metadata = zipfile.ZipFile(wheelhouse / hipscreen_wheel).read(
        f"hipscreen-{hipscreen.__version__}.dist-info/METADATA"
    )
    requires = Parser().parsestr(metadata.decode()).get_all("Requires-Dist") or []
    runtime = {
        _normalize(re.split(r"[\s<>=!~\[;(]", line, maxsplit=1)[0])
        for line in requires
        if "extra ==" not in line
    }
    assert {"pydantic", "durable_rules", "pyyaml"} <= runtime
    wheels = {_normalize(name.split("-")[0]) for name in names}
    assert runtime <= wheels, sorted(runtime - wheels)


@pytest.mark.slow
def test_installs_from_the_wheelhouse_alone_with_no_compiler_on_path(
    wheelhouse: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv_python(venv)
    bare = clean_env(PATH=str(python.parent))  # the new environment's bin/ and nothing else
    for compiler in ("cc", "gcc", "clang", "c99"):
        assert shutil.which(compiler, path=bare["PATH"]) is None, compiler

    pip = (python, "-m", "pip", "install", "--quiet", "--no-index")  # the README's command
    run(*pip, "--find-links", wheelhouse, "hipscreen", cwd=tmp_path, env=bare)
    out = json.loads(run(python, "-c", SCRIPT, json.dumps(FORM), cwd=tmp_path, env=bare))

    assert out["finding_ids"] == hipscreen.assess(FORM).finding_ids()
    assert "tight-hip-flexors" in out["finding_ids"]
    assert f"Tag: {TAG}-{TAG}-manylinux" in out["durable_rules_wheel"]
    assert Path(out["engine"]).resolve().is_relative_to(venv.resolve())
