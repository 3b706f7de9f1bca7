"""The ``hipscreen`` command line: every command, its ``--help``, friendly errors for bad input."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hipscreen
from hipscreen import _cli
from hipscreen._schema import schema

ROOT = Path(__file__).resolve().parent.parent
FORMS = ROOT / "examples" / "forms"
SPRINTER = FORMS / "sprinter.json"
CLINIC = ROOT / "tests" / "extra_rules" / "clinic"
BROKEN_EXTRA = ROOT / "tests" / "extra_rules" / "broken"
BROKEN_RULES = ROOT / "tests" / "broken_rules"


def run(
    capsys: pytest.CaptureFixture[str], *argv: str | Path, stdin: str | None = None
) -> tuple[int, str, str]:
    """Run the command in-process; return (exit code, stdout, stderr)."""
    if stdin is not None:
        monkey = pytest.MonkeyPatch()
        monkey.setattr(sys, "stdin", _StringStdin(stdin))
    try:
        try:
            code = _cli.main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse: --help, --version, usage errors
            code = int(exit_.code or 0)
    finally:
        if stdin is not None:
            monkey.undo()
    out, err = capsys.readouterr()
    return code, out, err


class _StringStdin:
    def __init__(self, text: str) -> None:
        self._text = text

    def read(self) -> str:
        return self._text


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _commands(sub, (*prefix, name))


COMMANDS = [(), *_commands(_cli.build_parser())]


def test_the_expected_commands_exist() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"assess", "compare", "rules", "rules list", "rules check", "schema"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "hipscreen")
def test_every_command_has_help(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert out.startswith(f"usage: hipscreen {' '.join(command)}".rstrip())


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert "usage: hipscreen" in err
    code, _, err = run(capsys, "rules")
    assert code == 2
    assert "usage: hipscreen rules" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"hipscreen {hipscreen.__version__}"


# -- assess ----------------------------------------------------------------------------------------


def test_assess_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "assess", SPRINTER)
    assert (code, err) == (0, "")
    assert out == hipscreen.assess(SPRINTER.read_text()).explain() + "\n"


def test_assess_json_round_trips_to_the_library_result(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "assess", SPRINTER, "--format", "json")
    assert code == 0
    assert hipscreen.Assessment.model_validate_json(out) == hipscreen.assess(SPRINTER.read_text())


def test_assess_reads_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    form = {"tightness": {"iliopsoas": 3}}
    code, out, _ = run(capsys, "assess", "-", "--format", "json", stdin=json.dumps(form))
    assert code == 0
    assert hipscreen.Assessment.model_validate_json(out) == hipscreen.assess(form)


def test_assess_cds_prints_the_cards(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "assess", SPRINTER, "--format", "cds", "--min-indicator", "info")
    assert code == 0
    assert json.loads(out) == {"cards": hipscreen.assess(SPRINTER.read_text()).to_cds_cards()}


def test_assess_with_a_threshold_override(capsys: pytest.CaptureFixture[str]) -> None:
    form = json.dumps({"strength": {"gluteus_maximus": 4}})
    _, plain, _ = run(capsys, "assess", "-", "--format", "json", stdin=form)
    code, strict, _ = run(
        capsys, "assess", "-", "--format", "json", "--threshold", "weak_grade=4", stdin=form
    )
    assert code == 0
    assert "weak-hip-extensors" not in hipscreen.Assessment.model_validate_json(plain).finding_ids()
    assert "weak-hip-extensors" in hipscreen.Assessment.model_validate_json(strict).finding_ids()


def test_assess_with_extra_rules(capsys: pytest.CaptureFixture[str]) -> None:
    form = {
        "tightness": {"iliopsoas": 3},
        "strength": {"gluteus_maximus": 2},
        "activities": ["sprinting"],
    }
    code, out, _ = run(
        capsys, "assess", "-", "--format", "json", "--extra-rules", CLINIC, stdin=json.dumps(form)
    )
    assert code == 0
    assert "sprint-imbalance-caution" in hipscreen.Assessment.model_validate_json(out).finding_ids()


BAD_INPUT = [
    pytest.param('{"age": 30,', "not valid JSON: ", id="invalid-json"),
    pytest.param("", "empty input", id="empty"),
    pytest.param("[{}]", "got an array; use `hipscreen batch`", id="array"),
    pytest.param('"text"', "got a string", id="string"),
    pytest.param('{"age": 300}', "age: Input should be less than or equal to 120", id="bad-age"),
    pytest.param('{"tightness": {"iliopsos": 2}}', "did you mean 'iliopsoas'", id="unknown-muscle"),
    pytest.param('{"colour": "blue"}', "unknown field 'colour'", id="unknown-key"),
]


@pytest.mark.parametrize(("text", "message"), BAD_INPUT)
def test_bad_input_is_one_friendly_message_and_exit_2(
    capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    code, out, err = run(capsys, "assess", "-", stdin=text)
    assert code == 2
    assert out == ""
    assert err.startswith("hipscreen: stdin: ")
    assert message in err
    assert "Traceback" not in err


def test_invalid_form_lists_every_problem_with_its_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    form = {"age": -4, "tightness": {"iliopsoas": 9}, "symptoms": ["back_ache"]}
    code, _, err = run(capsys, "assess", "-", stdin=json.dumps(form))
    assert code == 2
    assert "invalid intake form (3 problems)" in err
    for field in ("age:", "tightness.iliopsoas:", "symptoms.0:"):
        assert f"  - {field}" in err


def test_invalid_json_names_line_and_column(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(capsys, "assess", "-", stdin='{\n  "age": 30\n  "x": 1\n}')
    assert "(line 3, column 3)" in err


def test_missing_file_and_directory_are_friendly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "assess", tmp_path / "nope.json")
    assert code == 2
    assert err.strip() == f"hipscreen: {tmp_path / 'nope.json'}: no such file"
    code, _, err = run(capsys, "assess", tmp_path)
    assert code == 2
    assert "is a directory" in err


def test_non_utf8_file_is_friendly(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"client_id": "Jos\xe9"}')
    code, _, err = run(capsys, "assess", path)
    assert code == 2
    assert "not UTF-8 text" in err


def test_a_byte_order_mark_is_tolerated(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Editors on Windows often save JSON with a UTF-8 byte-order mark."""
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + SPRINTER.read_bytes())
    code, out, _ = run(capsys, "assess", path, "--format", "json")
    assert code == 0
    assert hipscreen.Assessment.model_validate_json(out) == hipscreen.assess(SPRINTER.read_text())


def test_bad_threshold_and_rule_options_are_friendly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "assess", SPRINTER, "--threshold", "weak_grde=4")
    assert code == 2
    assert "did you mean 'weak_grade'" in err
    code, _, err = run(capsys, "assess", SPRINTER, "--threshold", "weak_grade=four")
    assert code == 2
    assert "must be a number" in err
    code, _, err = run(capsys, "assess", SPRINTER, "--threshold", "weak_grade")
    assert code == 2
    assert "NAME=VALUE" in err
    code, _, err = run(capsys, "assess", SPRINTER, "--extra-rules", tmp_path / "none")
    assert code == 2
    assert "no such rule directory" in err
    code, _, err = run(capsys, "assess", SPRINTER, "--extra-rules", BROKEN_EXTRA)
    assert code == 2
    assert "cannot load the rules: rule data is invalid (4 problems)" in err


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "assess", SPRINTER, "--colour")
    assert code == 2
    assert "unrecognized arguments: --colour" in err
    assert "--help" in err


# -- rules -----------------------------------------------------------------------------------------


def test_rules_list_shows_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "list")
    assert code == 0
    screener = hipscreen.Screener()
    assert out.splitlines()[0].startswith(f"hipscreen rules {screener.ruleset_version}:")
    for rule in screener.ruleset.rules:
        assert f"  {rule.id} " in out


def test_rules_list_json_with_extra_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "list", "--format", "json", "--extra-rules", CLINIC)
    assert code == 0
    listing = json.loads(out)
    rows = {row["id"]: row for row in listing["rules"]}
    assert rows["sprint-imbalance-caution"]["recommends"] == ["wall_drive_drill"]
    assert rows["weak-hip-extensors"]["escalates_to"] == ["warning"]
    assert listing["ruleset_version"] == hipscreen.Screener(extra_rules=[CLINIC]).ruleset_version


def test_rules_check_accepts_a_valid_rule_set_and_extra_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "rules", "check", ROOT / "rules")
    assert code == 0
    assert ": ok, rule set: " in out
    code, out, _ = run(capsys, "rules", "check", CLINIC)
    assert code == 0
    assert "ok, extra rules (on top of the built-in rules)" in out


def test_rules_check_lists_every_problem_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "rules", "check", BROKEN_EXTRA)
    assert code == 1
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"{BROKEN_EXTRA}: 4 problems:"
    assert len(lines) == 5
    assert all(line.startswith("  - ") for line in lines[1:])
    assert "Traceback" not in out


@pytest.mark.parametrize(
    "case",
    sorted(p.name for p in BROKEN_RULES.iterdir() if p.is_dir() and not p.name.startswith("_")),
)
def test_rules_check_fails_every_broken_rule_dir(
    capsys: pytest.CaptureFixture[str], case: str
) -> None:
    code, out, err = run(capsys, "rules", "check", BROKEN_RULES / case)
    assert code == 1, out + err
    with pytest.raises(hipscreen.RuleDataError) as caught:
        hipscreen.Screener(BROKEN_RULES / case)
    for problem in caught.value.problems:
        assert f"  - {problem}" in out


def test_rules_check_bad_directory_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "rules", "check", tmp_path / "none")
    assert (code, err.strip()) == (2, f"hipscreen: {tmp_path / 'none'}: no such directory")
    code, _, err = run(capsys, "rules", "check", tmp_path)
    assert code == 2
    assert "not a rule directory" in err


# -- schema and compare ----------------------------------------------------------------------------


def test_schema_prints_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    assert json.loads(out) == schema()
    _, out, _ = run(capsys, "schema", "--part", "input")
    assert json.loads(out) == schema("input")


def test_schema_write(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "schema", "--write", tmp_path / "schema")
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "schema").iterdir())
    assert written == ["assessment.schema.json", "intake-form.schema.json"]
    assert out.count("wrote ") == 2


def test_compare_two_forms_and_stored_assessments(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = tmp_path / "before.json"
    after = tmp_path / "after.json"
    before.write_text(json.dumps({"client_id": "c", "tightness": {"iliopsoas": 3}}))
    after.write_text(json.dumps({"client_id": "c", "tightness": {"iliopsoas": 0}}))
    code, out, _ = run(capsys, "compare", before, after)
    assert code == 0
    assert "Resolved (" in out
    assert "tight-hip-flexors" in out
    stored = tmp_path / "stored.json"
    stored.write_text(hipscreen.assess(before.read_text()).model_dump_json())
    code, out, _ = run(capsys, "compare", stored, after, "--format", "json")
    assert code == 0
    assert "tight-hip-flexors" in [c["id"] for c in json.loads(out)["resolved"]]


def test_compare_different_clients_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"client_id": "a"}')
    b.write_text('{"client_id": "b"}')
    code, _, err = run(capsys, "compare", a, b)
    assert code == 2
    assert "same client" in err


# -- as a program ----------------------------------------------------------------------------------


@pytest.mark.process
def test_python_dash_m_hipscreen_never_shows_a_traceback_for_bad_input() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "hipscreen", "assess", "-"],
        input='{"tightness": {"iliopsoas": "very"}',
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith("hipscreen: stdin: not valid JSON")
    assert "Traceback" not in completed.stderr


@pytest.mark.process
def test_python_dash_m_hipscreen_screens_a_file() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "hipscreen", "assess", str(SPRINTER), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = hipscreen.Assessment.model_validate_json(completed.stdout)
    assert result == hipscreen.assess(SPRINTER.read_text())


def test_internal_errors_are_one_line_unless_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_args: argparse.Namespace) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(_cli, "_cmd_schema", broken)
    code, _, err = run(capsys, "schema")
    assert code == 3
    assert err.strip() == (
        "hipscreen: internal error (RuntimeError: boom); please report it, "
        "with --debug for the traceback"
    )
    with pytest.raises(RuntimeError, match="boom"):
        _cli.main(["--debug", "schema"])


# -- each command imports what it needs ------------------------------------------------------------


def test_the_command_list_is_what_the_whole_parser_registers() -> None:
    assert tuple(c[0] for c in COMMANDS if len(c) == 1) == _cli.COMMANDS


@pytest.mark.parametrize("command", [c for c in COMMANDS if c], ids=" ".join)
def test_a_parser_for_one_command_gives_the_same_help(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    """`main` registers only the command named; its help and options are the same as when the
    whole parser is built."""
    helps = []
    for parser in (_cli.build_parser(), _cli.build_parser(command[0])):
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--help"])
        helps.append(capsys.readouterr().out)
    assert helps[0] == helps[1]


def test_an_unknown_command_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "asess", SPRINTER)
    assert code == 2
    assert "invalid choice: 'asess'" in err
    assert all(name in err for name in _cli.COMMANDS)


def _modules_after_main(argv: list[str]) -> tuple[int, set[str]]:
    script = (
        "import json, sys\n"
        "from hipscreen import _cli\n"
        "try:\n"
        f"    code = _cli.main({argv!r})\n"
        "except SystemExit as exit_:\n"
        "    code = exit_.code\n"
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    code, loaded = json.loads(done.stdout.strip().splitlines()[-1])
    return code, set(loaded)


@pytest.mark.process
def test_version_imports_no_command() -> None:
    code, loaded = _modules_after_main(["--version"])
    assert code == 0
    heavy = {"pydantic", "yaml", "asyncio", "hipscreen._screen", "hipscreen._service"}
    assert sorted(heavy & loaded) == []
    assert not any(m.startswith(("hipscreen._batch", "hipscreen._fhir")) for m in loaded)


@pytest.mark.process
def test_assess_imports_no_other_command() -> None:
    code, loaded = _modules_after_main(["--debug", "assess", str(SPRINTER), "--format", "json"])
    assert code == 0
    others = {
        "asyncio",
        "hipscreen._batch",
        "hipscreen._service",
        "hipscreen._fhir._command",
        "hipscreen._rulestools",
        "hipscreen._schema",
        "hipscreen._compare",
    }
    assert sorted(others & set(loaded)) == []
