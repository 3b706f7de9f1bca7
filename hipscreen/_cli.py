"""The ``hipscreen`` command line: screen forms, check rules, print the contract, serve over HTTP.

Exit codes: 0 success, 1 ``rules check`` found problems, 2 bad usage or bad input (invalid JSON,
invalid form, missing file, broken rule directory), 3 an internal error (please report it).
Bad input never prints a traceback; ``--debug`` shows one for internal errors.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from hipscreen._errors import EngineError, InvalidFormError, RuleDataError
from hipscreen._intake.strictjson import StrictJsonError, loads_strict
from hipscreen._version import __version__
from hipscreen._vocabulary import Severity

if TYPE_CHECKING:  # the commands import what they need when they run (see `main`)
    from hipscreen._results import Assessment
    from hipscreen._screen import Screener

__all__ = ["main"]

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class UsageError(Exception):
    """Bad input or usage: reported in one line (plus the problems), exit code 2."""


# -- reading input ---------------------------------------------------------------------------------


MAX_JSON_FILE_BYTES = 16 * 2**20
"""The largest JSON document the command reads (16 MiB; a form is under 2 KB, an assessment
under 100 KB). A device or an endless stream is cut off here instead of read for ever."""


def _read_text(name: str, stdin: TextIO) -> str:
    where = "stdin" if name == "-" else name
    if name == "-":
        data = stdin.buffer.read(MAX_JSON_FILE_BYTES + 1) if hasattr(stdin, "buffer") else None
        if data is None:  # a text stream without bytes (an embedding program's, or a test's)
            text = stdin.read()
            if len(text) > MAX_JSON_FILE_BYTES:
                raise UsageError(_too_large(where))
            return text.removeprefix("\ufeff")
    else:
        path = Path(name)
        if path.is_dir():
            raise UsageError(f"{name}: is a directory, expected a JSON file (or - for stdin)")
        try:
            with open(path, "rb") as stream:
                data = stream.read(MAX_JSON_FILE_BYTES + 1)
        except FileNotFoundError:
            raise UsageError(f"{name}: no such file{_resolved(path)}") from None
        except OSError as error:
            raise UsageError(f"{name}: cannot read it ({error.strerror or error})") from None
    if len(data) > MAX_JSON_FILE_BYTES:
        raise UsageError(_too_large(where))
    try:
        return data.decode("utf-8-sig")  # tolerate a byte-order mark
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{where}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None


def _too_large(where: str) -> str:
    return f"{where}: more than {MAX_JSON_FILE_BYTES // 2**20} MiB, not a JSON form or assessment"


def _read_json(name: str, stdin: TextIO) -> tuple[str, Any]:
    """The text of a JSON document and its parsed value, read strictly (no NaN, no repeated
    keys, bounded nesting and numbers); one-line errors for bad JSON."""
    text = _read_text(name, stdin)
    where = "stdin" if name == "-" else name
    if not text.strip():
        raise UsageError(f"{where}: empty input, expected a JSON object")
    try:
        return text, loads_strict(text, max_values=MAX_JSON_FILE_BYTES)
    except StrictJsonError as error:
        problems = [
            (".".join(map(str, problem.path)) + ": " if problem.path else "") + problem.message
            for problem in error.problems
        ]
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise UsageError(f"{where}: {shown}{more}") from None


def _read_form(name: str, stdin: TextIO) -> str:
    text, value = _read_json(name, stdin)
    if not isinstance(value, dict):
        where = "stdin" if name == "-" else name
        hint = "; use `hipscreen batch` for many forms" if isinstance(value, list) else ""
        raise UsageError(
            f"{where}: expected one intake form (a JSON object), got {_json_type(value)}{hint}"
        )
    return text


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# -- screener options ------------------------------------------------------------------------------


def _threshold(text: str) -> tuple[str, float]:
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, e.g. weak_grade=4 (got {text!r})")
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{name.strip()}: the value must be a number (got {raw!r})"
        ) from None
    return name.strip(), int(value) if value.is_integer() else value


def _add_rule_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rules")
    group.add_argument(
        "--rules",
        metavar="DIR",
        help="a complete rule directory (ruleset.yaml, exercises.yaml, findings/) to use "
        "instead of the built-in rules",
    )
    group.add_argument(
        "--extra-rules",
        metavar="DIR",
        action="append",
        default=[],
        help="a directory of extra rules (findings/*.yaml, optional exercises.yaml) added to "
        "the rules; may be repeated",
    )
    group.add_argument(
        "--threshold",
        metavar="NAME=VALUE",
        type=_threshold,
        action="append",
        default=[],
        help="override a threshold of the rule data, e.g. --threshold weak_grade=4; "
        "may be repeated",
    )


def _screener(args: argparse.Namespace) -> Screener:
    from hipscreen._screen import Screener, default_screener

    if not (args.rules or args.extra_rules or args.threshold):
        return default_screener()
    for directory in [args.rules, *args.extra_rules]:
        if directory is not None and not Path(directory).is_dir():
            raise UsageError(_no_rule_directory(directory))
    try:
        return Screener(
            args.rules, extra_rules=args.extra_rules, thresholds=dict(args.threshold) or None
        )
    except RuleDataError as error:
        raise UsageError(
            "cannot load the rules: rule data is invalid "
            + _problem_list(error.problems, "({count} {noun}):")
        ) from None


def _no_rule_directory(given: str) -> str:
    path = Path(given)
    what = "not a directory" if path.exists() else "no such rule directory"
    return f"{given}: {what}{_resolved(path)}"


def _resolved(path: Path) -> str:
    """`` (resolved: /abs/path)`` when that differs from the path as given."""
    resolved = str(path.resolve())
    return "" if resolved == str(path) else f" (resolved: {resolved})"


MAX_PROBLEMS_SHOWN = 20
"""Problems a message lists before it gives only the count of the rest."""


def _problem_list(problems: Sequence[Any], head: str = "{count} {noun}:") -> str:
    """``N problems:`` and the first `MAX_PROBLEMS_SHOWN` of them, one line each, then a count."""
    noun = "problem" if len(problems) == 1 else "problems"
    lines = [head.format(count=f"{len(problems):,}", noun=noun)]
    lines += [f"  - {problem}" for problem in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(f"  … and {len(problems) - MAX_PROBLEMS_SHOWN:,} more")
    return "\n".join(lines)


# -- commands --------------------------------------------------------------------------------------


def _cmd_assess(args: argparse.Namespace) -> int:
    screener = _screener(args)
    text = _read_form(args.file, sys.stdin)
    where = "stdin" if args.file == "-" else args.file
    try:
        result = screener.assess(text)
    except InvalidFormError as error:
        raise UsageError(f"{where}: {error}") from None
    _write(_render_assessment(result, args.format, args.min_indicator))
    return EXIT_OK


def _render_assessment(result: Assessment, fmt: str, min_indicator: str) -> str:
    if fmt == "json":
        return result.model_dump_json(indent=2)
    if fmt == "cds":
        cards = result.to_cds_cards(min_indicator=min_indicator)
        return json.dumps({"cards": cards}, indent=2, ensure_ascii=False)
    return result.explain()


def _cmd_compare(args: argparse.Namespace) -> int:
    from hipscreen._compare import compare
    from hipscreen._results import Assessment

    results = []
    screener: Screener | None = None
    for name in (args.before, args.after):
        text, value = _read_json(name, sys.stdin)
        where = "stdin" if name == "-" else name
        if not isinstance(value, dict):
            raise UsageError(
                f"{where}: expected an assessment or an intake form (a JSON object), "
                f"got {_json_type(value)}"
            )
        if "ruleset_version" in value:  # a stored assessment
            try:
                results.append(Assessment.model_validate_json(text))
            except ValueError as error:
                raise UsageError(f"{where}: not a valid hipscreen assessment: {error}") from None
            continue
        screener = screener or _screener(args)
        try:
            results.append(screener.assess(text))
        except InvalidFormError as error:
            raise UsageError(f"{where}: {error}") from None
    try:
        comparison = compare(results[0], results[1])
    except ValueError as error:
        raise UsageError(str(error)) from None
    _write(comparison.model_dump_json(indent=2) if args.format == "json" else comparison.explain())
    return EXIT_OK


def _cmd_rules_list(args: argparse.Namespace) -> int:
    ruleset = _screener(args).ruleset
    rows: list[dict[str, Any]] = [
        {
            "id": rule.id,
            "severity": rule.spec.severity.value,
            "escalates_to": [s.value for s, _ in rule.escalations],
            "title": rule.spec.title,
            "file": rule.file,
            "recommends": list(rule.spec.recommends),
            "referral": rule.spec.referral is not None,
        }
        for rule in ruleset.rules
    ]
    if args.format == "json":
        doc = {"ruleset_version": ruleset.label, "rules": rows}
        _write(json.dumps(doc, indent=2, ensure_ascii=False))
        return EXIT_OK
    counts = f"{len(rows)} rules, {len(ruleset.exercises)} exercises"
    lines = [f"hipscreen rules {ruleset.label}: {counts}"]
    width = max((len(row["id"]) for row in rows), default=0)
    for row in rows:
        severity = row["severity"] + "".join(f"→{s}" for s in row["escalates_to"])
        lines.append(f"  {row['id']:<{width}}  {severity:<16}  {row['title']}  [{row['file']}]")
    _write("\n".join(lines))
    return EXIT_OK


def _cmd_rules_check(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not directory.is_dir():
        what = "not a directory" if directory.exists() else "no such directory"
        raise UsageError(f"{args.dir}: {what}{_resolved(directory)}")
    complete = (directory / "ruleset.yaml").is_file()
    extra = (directory / "findings").is_dir() or (directory / "exercises.yaml").is_file()
    if not (complete or extra):
        raise UsageError(
            f"{args.dir}: not a rule directory (expected ruleset.yaml, findings/*.yaml "
            "or exercises.yaml)"
        )
    base = Path(args.rules) if args.rules else None
    if base is not None and not base.is_dir():
        raise UsageError(_no_rule_directory(args.rules))
    from hipscreen._screen import Screener

    # Compiling too (not only loading) checks the engine network: what passes here compiles.
    try:
        with (
            Screener(directory, cache_size=0)
            if complete
            else Screener(base, extra_rules=[directory], cache_size=0)
        ) as screener:
            ruleset = screener.ruleset
    except (RuleDataError, EngineError) as error:
        problems = error.problems if isinstance(error, RuleDataError) else [error]
        _write(f"{args.dir}: {_problem_list(problems)}")
        return EXIT_PROBLEMS
    what = (
        "rule set"
        if complete
        else "extra rules (on top of the "
        + (f"rules in {args.rules})" if base else "built-in rules)")
    )
    _write(
        f"{args.dir}: ok, {what}: {len(ruleset.rules)} rules, {len(ruleset.exercises)} "
        f"exercises, {ruleset.label}"
    )
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from hipscreen._schema import schema, write_schema_files

    if args.write:
        for path in write_schema_files(args.write):
            print(f"wrote {path}")
        return EXIT_OK
    _write(json.dumps(schema(args.part), indent=2, ensure_ascii=False, sort_keys=True))
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from hipscreen import _service

    try:
        _service.require_extra()
    except ModuleNotFoundError as error:
        raise UsageError(f"the serve command needs the web service extra: {error}") from None
    try:
        _service.serve_from_args(args, _screener(args))
    except ValueError as error:
        raise UsageError(str(error)) from None
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text) if len(text) <= 20 else 0
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1 (got {text!r})")
    return value


def _port(text: str) -> int:
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 5 or not 0 < int(value) < 65536:
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535 (got {shown!r})")
    return int(value)


def _add_serve(commands: Any) -> None:
    from hipscreen._service import MAX_BODY_BYTES, MAX_PROBLEMS, add_serve_options

    serve = commands.add_parser(
        "serve",
        help="run the reference web service (needs the service extra)",
        description="Serve hipscreen over HTTP with uvicorn: POST /assess, the CDS Hooks "
        "service, GET /openapi.json (see docs/embedding.md). Needs "
        '`pip install "hipscreen[service]"`. One process screens on about one core; run '
        "several behind a load balancer for more.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (8000)")
    serve.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=MAX_BODY_BYTES,
        metavar="N",
        help=f"answer larger request bodies with HTTP 413 (default {MAX_BODY_BYTES})",
    )
    serve.add_argument(
        "--max-problems",
        type=_positive_int,
        default=MAX_PROBLEMS,
        metavar="N",
        help=f"list at most N problems in an error answer (default {MAX_PROBLEMS})",
    )
    serve.add_argument(
        "--min-indicator",
        choices=[s.value for s in Severity],
        default=Severity.INFO.value,
        help="leave out CDS cards less urgent than this",
    )
    serve.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        default="info",
        help="uvicorn's log level (info)",
    )
    _add_rule_options(serve)
    add_serve_options(serve)
    serve.set_defaults(func=_cmd_serve)


def _cmd_help(parser: argparse.ArgumentParser) -> Any:
    def show(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    return show


def _write(text: str, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(text if text.endswith("\n") else text + "\n")


# -- the parser ------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with hipscreen's exit code for usage errors and a hint to ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


COMMANDS = ("assess", "compare", "rules", "explain", "schema", "serve", "batch", "fhir")
"""The top-level commands, each registered (and its modules imported) by `build_parser`."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``hipscreen`` argument parser (exposed for tests and documentation).

    With ``command`` (one of `COMMANDS`, or ``""`` for none), only that command is registered,
    so only the modules it needs are imported: `main` does this when the command line names one.
    """
    parser = _Parser(
        prog="hipscreen",
        description="Screen hip flexor / extensor balance from an intake form (a screening aid, "
        "not a diagnosis).",
        epilog="Run `hipscreen COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"hipscreen {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback for internal errors")
    parser.set_defaults(func=_cmd_help(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for name, register in _REGISTER.items():
        if command is None or command in name:
            register(commands)
    return parser


def _add_assess(commands: Any) -> None:
    assess = commands.add_parser(
        "assess",
        help="screen one intake form (JSON) and print the report, JSON or CDS Hooks cards",
        description="Screen one intake form. The form is a JSON object (see `hipscreen schema "
        "--part input`); exit code 2 and the list of problems when it is invalid.",
    )
    assess.add_argument("file", metavar="FILE", help="the intake form (JSON file), - for stdin")
    assess.add_argument(
        "--format",
        choices=["report", "json", "cds"],
        default="report",
        help="report: readable text (default); json: the Assessment as JSON; "
        'cds: {"cards": [...]} as a CDS Hooks service answers',
    )
    assess.add_argument(
        "--min-indicator",
        choices=[s.value for s in Severity],
        default=Severity.INFO.value,
        help="with --format cds: leave out cards less urgent than this",
    )
    _add_rule_options(assess)
    assess.set_defaults(func=_cmd_assess)


def _add_compare(commands: Any) -> None:
    compare = commands.add_parser(
        "compare",
        help="what changed between two screenings of one client",
        description="Compare two screenings of the same client: findings resolved, new and "
        "changed in severity. Each file is a stored assessment (JSON) or an intake form, "
        "which is screened first.",
    )
    compare.add_argument("before", metavar="BEFORE", help="the earlier assessment or form (JSON)")
    compare.add_argument("after", metavar="AFTER", help="the later assessment or form (JSON)")
    compare.add_argument("--format", choices=["report", "json"], default="report")
    _add_rule_options(compare)
    compare.set_defaults(func=_cmd_compare)


def _add_rules(commands: Any) -> None:
    """``rules list``, ``rules check``, and the rule tools: ``explain``, ``rules test`` …"""
    rules = commands.add_parser(
        "rules", help="list or check rules", description="List or check rule data."
    )
    rules.set_defaults(func=_cmd_help(rules))
    rule_commands = rules.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    listing = rule_commands.add_parser(
        "list",
        help="list the rules (built-in, or with --rules/--extra-rules)",
        description="List the rules of the rule set, with severity, title and file.",
    )
    listing.add_argument("--format", choices=["table", "json"], default="table")
    _add_rule_options(listing)
    listing.set_defaults(func=_cmd_rules_list)
    check = rule_commands.add_parser(
        "check",
        help="validate a rule directory; exit code 1 with every problem listed",
        description="Validate a rule directory: a complete rule set (with ruleset.yaml) or a "
        "directory of extra rules (findings/*.yaml, optional exercises.yaml), checked on top "
        "of the built-in rules or of --rules DIR, and compiled for the rules engine. Every "
        "problem is listed, including the size limits rule data must keep (docs/writing-rules.md,"
        " Limits); exit code 1 if any.",
    )
    check.add_argument("dir", metavar="DIR", help="the rule directory to check")
    check.add_argument(
        "--rules", metavar="BASE", help="check extra rules on top of this rule set instead"
    )
    check.set_defaults(func=_cmd_rules_check)
    _register_rule_tools(commands, rule_commands)


def _add_schema(commands: Any) -> None:
    from hipscreen._schema import SCHEMA_FILES

    schema_cmd = commands.add_parser(
        "schema",
        help="print the JSON Schema of the input (intake form) and output (assessment)",
        description="Print the JSON Schema (draft 2020-12) of the JSON contract: "
        '{"input": ..., "output": ...}, or one part; --write DIR writes '
        + " and ".join(SCHEMA_FILES)
        + ".",
    )
    schema_cmd.add_argument("--part", choices=["input", "output"], help="print only this part")
    schema_cmd.add_argument("--write", metavar="DIR", help="write the schema files into DIR")
    schema_cmd.set_defaults(func=_cmd_schema)


def _add_fhir(commands: Any) -> None:
    from hipscreen._fhir._command import register as register_fhir  # the logic lives there

    register_fhir(
        commands,
        read_json=_read_json,
        screener_from=_screener,
        rule_options=_add_rule_options,
        usage_error=UsageError,
    )


def _register_rule_tools(commands: Any, rule_commands: Any) -> None:
    """``explain``, ``rules test``, ``rules diff``, ``rules rescreen`` (hipscreen._rulestools)."""
    from hipscreen._rulestools import register

    register(
        commands,
        rule_commands,
        rule_options=_add_rule_options,
        read_form=_read_form,
        screener_from=_screener,
        usage_error=UsageError,
    )


def _register_batch(commands: Any) -> None:
    try:
        batch_cli = importlib.import_module("hipscreen._batch._command")
    except ModuleNotFoundError as error:
        if error.name == "hipscreen._batch._command":
            return  # no batch support in this build
        _unavailable(commands, "batch", error)
        return
    except ImportError as error:
        _unavailable(commands, "batch", error)
        return
    batch_cli.register(commands, rule_options=_add_rule_options, screener_from=_screener)


def _unavailable(commands: Any, name: str, error: Exception) -> None:
    parser = commands.add_parser(name, help=f"(unavailable: {error})", add_help=True)
    parser.add_argument("rest", nargs=argparse.REMAINDER)

    def fail(_args: argparse.Namespace) -> int:
        raise UsageError(f"the {name} command is unavailable: {error}")

    parser.set_defaults(func=fail)


_REGISTER: dict[tuple[str, ...], Any] = {
    ("assess",): _add_assess,
    ("compare",): _add_compare,
    ("rules", "explain"): _add_rules,  # the rule tools register both
    ("schema",): _add_schema,
    ("serve",): _add_serve,
    ("batch",): _register_batch,
    ("fhir",): _add_fhir,
}
"""The commands each registration function adds, in the order ``--help`` lists them."""


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named on the command line; ``""`` (no command needed) for ``--version``;
    None when the whole parser is needed (no command, an unknown one, or ``--help``)."""
    for arg in argv:
        if arg == "--debug":
            continue
        if arg == "--version":
            return ""
        return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hipscreen`` command; return its exit code."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except UsageError as error:
        _write(f"hipscreen: {error}", sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _write("hipscreen: interrupted", sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours. Point stdout at devnull so
        # the interpreter's final flush does not fail again (the Python docs' recipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except EngineError as error:
        if args.debug:
            raise
        _write(f"hipscreen: the rules engine failed: {error}", sys.stderr)
        return EXIT_INTERNAL
    except Exception as error:
        if args.debug:
            raise
        _write(
            f"hipscreen: internal error ({type(error).__name__}: {error}); please report it, "
            "with --debug for the traceback",
            sys.stderr,
        )
        return EXIT_INTERNAL
    return code
