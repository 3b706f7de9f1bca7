"""The edges of every door (issues 19 and 25): strict JSON and bounded reads on the command line,
argument ranges, rule files that are not plain files, rule paths never silently ignored, and
screeners that pickle.

Cases that used to hang run in a subprocess with a timeout.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hipscreen
from hipscreen import RuleDataError, Screener
from hipscreen._cli import main
from hipscreen._limits import MAX_RULE_DATA_BYTES, MAX_RULE_FILE_BYTES
from hipscreen._screen import default_screener

ROOT = Path(__file__).resolve().parents[1]
VALID = ROOT / "tests" / "broken_rules" / "_valid"
CLINIC = ROOT / "examples" / "clinic_rules"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
FORM = {"strength": {"gluteus_maximus": 4}, "tightness": {"iliopsoas": 3}}


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


def hipscreen_cli(*argv: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hipscreen", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        check=False,
    )


# -- strict JSON at the command line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000, "nested more than 32 deep"),
        ('{"age": ' + "9" * 5000 + "}", "age: a number may have at most 100 characters"),
        ('{"age": NaN}', "age:"),
        ('{"age": 40, "age": 41}', "age"),
    ],
)
def test_assess_and_compare_refuse_bad_json_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    # Before: deep nesting and a 5,000-digit integer were "internal error", exit 3.
    path = tmp_path / "form.json"
    path.write_text(text)
    for argv in (["assess", path], ["compare", path, path]):
        code, err = run(capsys, *argv)
        assert code == 2, err
        assert message in err
        assert "internal error" not in err


@pytest.mark.process
def test_assess_of_a_device_is_bounded(tmp_path: Path) -> None:
    done = hipscreen_cli("assess", "/dev/zero")
    assert done.returncode == 2
    assert "more than 16 MiB" in done.stderr


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http", "9" * 5000])
def test_serve_port_is_range_checked(capsys: pytest.CaptureFixture[str], port: str) -> None:
    # Before: --port 99999 was an internal error.
    code, err = run(capsys, "serve", "--port", port)
    assert code == 2
    assert "expected a port number from 1 to 65535" in err


# -- rule files are plain files --------------------------------------------------------------------


def rule_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(VALID, target)
    return target


@pytest.mark.process
def test_a_fifo_rule_file_is_refused_without_hanging(tmp_path: Path) -> None:
    # Before: a FIFO named findings/x.yaml hung `rules check` and --extra-rules for ever.
    extra = tmp_path / "extra"
    (extra / "findings").mkdir(parents=True)
    os.mkfifo(extra / "findings" / "x.yaml")
    done = hipscreen_cli("rules", "check", extra, timeout=30)
    assert done.returncode == 1
    assert "findings/x.yaml: not a regular file (a FIFO)" in done.stdout
    form = tmp_path / "form.json"
    form.write_text("{}")
    done = hipscreen_cli("assess", form, "--extra-rules", extra, timeout=30)
    assert done.returncode == 2
    assert "not a regular file (a FIFO)" in done.stderr


def test_an_oversized_rule_file_is_blamed_itself(tmp_path: Path) -> None:
    # Before: one 600 KB file was blamed on the next file, for a 2 MiB total not exceeded.
    rules = rule_copy(tmp_path)
    big = rules / "findings" / "a-big.yaml"
    big.write_text("# padding\n" * 60_000)
    with pytest.raises(RuleDataError) as refused:
        Screener(rules)
    files = [problem.file for problem in refused.value.problems]
    assert files == ["findings/a-big.yaml"]
    assert f"larger than {MAX_RULE_FILE_BYTES:,} bytes" in str(refused.value)


def test_the_file_that_crosses_the_total_budget_is_named(tmp_path: Path) -> None:
    rules = rule_copy(tmp_path)
    size = MAX_RULE_FILE_BYTES - 1000
    count = MAX_RULE_DATA_BYTES // size + 1
    for i in range(count):
        (rules / "findings" / f"pad{i}.yaml").write_text("#" * (size - 1) + "\n")
    with pytest.raises(RuleDataError) as refused:
        Screener(rules)
    budget = [p for p in refused.value.problems if "together" in p.message]
    assert budget
    assert budget[0].file == f"findings/pad{count - 1}.yaml"
    assert f"larger than {MAX_RULE_DATA_BYTES:,} bytes" in budget[0].message


def test_rules_check_summarises_a_flood_of_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = tmp_path / "extra"
    (extra / "findings").mkdir(parents=True)
    for i in range(40):
        (extra / "findings" / f"f{i}.yaml").write_text("rules: 3\n")
    code = main(["rules", "check", str(extra)])
    out = capsys.readouterr().out
    assert code == 1
    assert "40 problems:" in out
    assert "… and 20 more" in out
    assert out.count("\n  - ") == 20


# -- paths are never silently ignored (issue 19, item 4) ----------------------------------------


def test_missing_extra_rules_are_an_error_in_the_python_door(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: Screener(extra_rules=...) silently ignored a missing directory.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuleDataError) as refused:
        Screener(extra_rules=["clinic"])
    message = str(refused.value)
    assert f"clinic (resolved: {tmp_path / 'clinic'}): no such extra rules directory" in message
    (tmp_path / "file.yaml").write_text("rules: []\n")
    with pytest.raises(RuleDataError, match=r"file\.yaml .*not a directory"):
        Screener(extra_rules=["file.yaml"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuleDataError, match=r"holds no rule file.*no findings/ folder"):
        Screener(extra_rules=["empty"])
    with pytest.raises(RuleDataError, match="no such rule directory"):
        Screener("nowhere")


def test_missing_rule_paths_are_an_error_in_the_command_doors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    form = tmp_path / "form.json"
    form.write_text("{}")
    (tmp_path / "empty").mkdir()
    source = tmp_path / "in.csv"
    source.write_text("client_id,age\na,40\n")
    for argv in (
        ["assess", form],
        ["rules", "list"],
        ["batch", source, "-o", tmp_path / "out.csv"],
    ):
        code, err = run(capsys, *argv, "--extra-rules", tmp_path / "empty")
        assert code == 2, err
        assert "holds no rule file" in err
        code, err = run(capsys, *argv, "--extra-rules", tmp_path / "missing")
        assert code == 2, err
        assert "no such rule directory" in err
    assert not (tmp_path / "out.csv").exists()


def test_extra_rules_with_only_an_exercise_catalog_are_accepted(tmp_path: Path) -> None:
    extra = tmp_path / "catalog"
    extra.mkdir()
    shutil.copy(CLINIC / "exercises.yaml", extra / "exercises.yaml")
    assert Screener(extra_rules=[extra]).ruleset.digest != default_screener().ruleset.digest


# -- screeners pickle ------------------------------------------------------------------------------


def _finding_ids(screener: Screener) -> list[str]:
    return screener.assess(FORM).finding_ids()


def _digest(screener: Screener) -> str:
    return screener.ruleset.digest


def test_a_screener_pickles_by_its_rule_set() -> None:
    # Before: TypeError: cannot pickle '_thread.lock' object.
    screener = Screener(extra_rules=[CLINIC], thresholds={"weak_grade": 4})
    copy = pickle.loads(pickle.dumps(screener))
    assert copy is not screener
    assert copy.ruleset.digest == screener.ruleset.digest
    assert copy.assess(FORM) == screener.assess(FORM)
    assert pickle.loads(pickle.dumps(default_screener())) is default_screener()


def test_a_tampered_pickle_is_refused() -> None:
    screener = Screener(extra_rules=[CLINIC])
    function, (ruleset, cache_size, _) = screener.__reduce__()
    with pytest.raises(RuleDataError, match="does not match its digest"):
        function(ruleset, cache_size, "0" * 64)


def test_a_pickled_screener_works_where_its_rules_directory_is_gone(tmp_path: Path) -> None:
    extra = tmp_path / "clinic"
    shutil.copytree(CLINIC, extra)
    data = pickle.dumps(Screener(extra_rules=[extra]))
    shutil.rmtree(extra)
    assert "clinic" in " ".join(rule.file for rule in pickle.loads(data).ruleset.rules)


@pytest.mark.process
@pytest.mark.slow
def test_a_screener_crosses_process_pools() -> None:
    screener = Screener(extra_rules=[CLINIC], thresholds={"weak_grade": 4})
    expected = _finding_ids(screener)
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        assert pool.map(_finding_ids, [screener]) == [expected]
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as executor:
        assert executor.submit(_digest, screener).result() == screener.ruleset.digest
        assert list(executor.map(_finding_ids, [screener, screener])) == [expected, expected]


@pytest.mark.process
@pytest.mark.slow
def test_a_screener_in_a_cloudpickled_closure() -> None:
    cloudpickle = pytest.importorskip("cloudpickle")
    screener = Screener(extra_rules=[CLINIC])

    def udf(forms: list[dict[str, Any]]) -> list[list[str]]:  # as Spark or dask ship it
        return [screener.assess(form).finding_ids() for form in forms]

    code = (
        f"import pickle, sys\nudf = pickle.loads(sys.stdin.buffer.read())\nprint(udf([{FORM!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=cloudpickle.dumps(udf),
        capture_output=True,
        timeout=120,
        env=ENV,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == str([screener.assess(FORM).finding_ids()])
    assert hipscreen.__name__ == "hipscreen"
