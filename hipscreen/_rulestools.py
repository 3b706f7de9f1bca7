"""Rule authoring tools on the command line: explain, rules test, rules diff, rules rescreen.

* ``hipscreen explain FORM --why RULE`` / ``--why-not RULE``: `Assessment.why` / `why_not`.
* ``hipscreen rules test DIR``: the rule set's case files (`hipscreen.testing.run_cases`).
* ``hipscreen rules diff OLD NEW --forms SAMPLE``: which rows of a sample a rule change
  affects (findings added or removed, severity, referral urgency up or down, exercises).
* ``hipscreen rules rescreen STORED FORM``: re-run a stored form against the rule set it was
  screened with, refusing any other rule set (the digest must match).
* ``hipscreen rules schema``: JSON Schemas of the rule data files, for YAML editors.

Exit codes follow the CLI's: 0 nothing to report (explained, every case passed, no row changes,
reproduced), 1 something to report (a case failed, rows change, the result differs), 2 bad usage
or input.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hipscreen._errors import InvalidFormError, RuleDataError, RulesetMismatchError
from hipscreen._vocabulary import Urgency

if TYPE_CHECKING:
    from hipscreen._results import Assessment
    from hipscreen._screen import Screener

__all__ = ["RowChange", "RulesetMismatchError", "diff_rulesets", "register", "rescreen"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

_URGENCY_RANK = {None: 0, Urgency.ROUTINE: 1, Urgency.URGENT: 2, Urgency.EMERGENCY: 3}


@dataclass(frozen=True)
class _Cli:
    """What the commands take from the command line's module (`hipscreen._cli` passes them to
    `register`, so this module does not import it): its form reader, its screener from the rule
    options, and its usage error (exit code 2)."""

    read_form: Callable[[str, TextIO], str]
    screener_from: Callable[[argparse.Namespace], Screener]
    usage_error: type[Exception]

    def usage(self, message: str) -> Exception:
        return self.usage_error(message)


def _write(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def load_rules(
    directory: str | Path, usage_error: type[Exception], *, base: str | Path | None = None
) -> Screener:
    """A screener for a rule directory: a complete rule set (with ruleset.yaml), or extra rules
    (findings/*.yaml) on top of ``base`` (the built-in rules by default).

    Raises:
        usage_error: when the directory is missing or its rules are invalid."""
    from hipscreen._screen import Screener

    path = Path(directory)
    if not path.is_dir():
        raise usage_error(f"{directory}: no such rule directory")
    try:
        if (path / "ruleset.yaml").is_file():
            return Screener(path, cache_size=0)
        return Screener(base, extra_rules=[path], cache_size=0)
    except RuleDataError as error:
        raise usage_error(f"cannot load the rules in {directory}: {error}") from None


# -- re-screening a stored form --------------------------------------------------------------------


def rescreen(stored: Assessment, form: Any, screener: Screener | None = None) -> Assessment:
    """Screen ``form`` again with the rule set ``stored`` was screened with.

    Raises:
        RulesetMismatchError: ``screener`` (the built-in rules by default) is not that rule set:
            its version and content digest differ from ``stored.ruleset_version``.
    """
    from hipscreen._screen import default_screener

    rules = screener if screener is not None else default_screener()
    if rules.ruleset_version != stored.ruleset_version:
        raise RulesetMismatchError(
            f"the assessment was screened with rules {stored.ruleset_version}, the rules given "
            f"are {rules.ruleset_version}: re-run it with the rule-set version it names"
        )
    return rules.assess(form)


# -- change impact ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowChange:
    """How one sample row's screening changes from the old rule set to the new one."""

    row: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()  # "id: info → warning"
    referral_before: str | None = None
    referral_after: str | None = None
    exercises_added: tuple[str, ...] = ()
    exercises_removed: tuple[str, ...] = ()

    @property
    def referral(self) -> str:
        """``up``, ``down`` or empty."""
        before = _URGENCY_RANK[
            None if self.referral_before is None else Urgency(self.referral_before)
        ]
        after = _URGENCY_RANK[None if self.referral_after is None else Urgency(self.referral_after)]
        return "up" if after > before else "down" if after < before else ""

    @property
    def changed(self) -> bool:
        return bool(
            self.added
            or self.removed
            or self.severity
            or self.referral_before != self.referral_after
            or self.exercises_added
            or self.exercises_removed
        )


def row_change(row: str, old: Assessment, new: Assessment) -> RowChange:
    before = {f.id: f.severity.value for f in old.findings}
    after = {f.id: f.severity.value for f in new.findings}
    plan_before = [r.exercise.id for r in old.recommendations]
    plan_after = [r.exercise.id for r in new.recommendations]
    return RowChange(
        row=row,
        added=tuple(i for i in after if i not in before),
        removed=tuple(i for i in before if i not in after),
        severity=tuple(
            f"{i}: {before[i]} → {after[i]}" for i in after if i in before and before[i] != after[i]
        ),
        referral_before=None if old.referral is None else old.referral.urgency.value,
        referral_after=None if new.referral is None else new.referral.urgency.value,
        exercises_added=tuple(e for e in plan_after if e not in plan_before),
        exercises_removed=tuple(e for e in plan_before if e not in plan_after),
    )


def _sample_rows(
    path: Path, usage_error: type[Exception]
) -> Iterator[tuple[str, Mapping[str, Any] | None, str]]:
    """(row label, form or None, problem) for each row of a CSV, JSON-lines or JSON-array file;
    ``usage_error`` when the file cannot be read as one."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise usage_error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise usage_error(f"{path}: cannot read it as UTF-8 text ({error})") from None
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
        yield from _json_rows(path, text, usage_error)
        return
    from hipscreen._batch._tables import TableError, TableReader

    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise usage_error(f"{path}: empty file; the first line must name the columns")
    try:
        table = TableReader(header, source=path.name)
    except TableError as error:
        raise usage_error(str(error)) from None
    for line, cells in enumerate(reader, 2):
        if not any(cell.strip() for cell in cells):
            continue
        form, problems = table.form(cells)
        label = str(form.get("client_id") or f"line {line}")
        if problems:
            yield label, None, "; ".join(str(p) for p in problems)
        else:
            yield label, form, ""


def _json_rows(
    path: Path, text: str, usage_error: type[Exception]
) -> Iterator[tuple[str, Mapping[str, Any] | None, str]]:
    try:
        if path.suffix.lower() == ".json":
            items = json.loads(text)
            if not isinstance(items, list):
                raise usage_error(f"{path}: expected a JSON array of intake forms")
            rows = list(enumerate(items, 1))
        else:
            rows = [
                (n, json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()
            ]
    except json.JSONDecodeError as error:
        raise usage_error(f"{path}: not valid JSON: {error}") from None
    for n, item in rows:
        label = f"{'item' if path.suffix.lower() == '.json' else 'line'} {n}"
        if not isinstance(item, dict):
            yield label, None, "not a JSON object"
        else:
            yield str(item.get("client_id") or label), item, ""


@dataclass(frozen=True)
class RulesDiff:
    """The change impact of a new rule set on a sample of forms."""

    old: Mapping[str, str]  # dir, version, digest
    new: Mapping[str, str]
    sample: str
    screened: int
    invalid: tuple[tuple[str, str], ...]  # (row, problem)
    changes: tuple[RowChange, ...]

    def counts(self) -> dict[str, int]:
        c = self.changes
        return {
            "rows_screened": self.screened,
            "rows_invalid": len(self.invalid),
            "rows_changed": len(c),
            "findings_added": sum(len(r.added) for r in c),
            "findings_removed": sum(len(r.removed) for r in c),
            "severity_changed": sum(len(r.severity) for r in c),
            "referral_up": sum(r.referral == "up" for r in c),
            "referral_down": sum(r.referral == "down" for r in c),
            "exercises_changed": sum(bool(r.exercises_added or r.exercises_removed) for r in c),
        }

    def as_dict(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "old": dict(self.old),
            "new": dict(self.new),
            "sample": self.sample,
            "counts": counts,
            "invalid_rows": [{"row": r, "problem": p} for r, p in self.invalid],
            "changes": [
                {**dataclasses.asdict(change), "referral": change.referral}
                for change in self.changes
            ],
        }

    def text(self, *, limit: int = 0) -> str:
        """The header, the table of changed rows (the first ``limit``; 0: all), the counts."""
        lines = [
            f"old rules {self.old['version']} ({self.old['dir']}), digest {self.old['digest']}",
            f"new rules {self.new['version']} ({self.new['dir']}), digest {self.new['digest']}",
        ]
        if self.old["digest"] == self.new["digest"]:
            lines.append("the two rule sets have the same content")
        lines.append(f"sample {self.sample}: {self.screened} rows screened")
        if self.changes:
            shown = self.changes[:limit] if limit else self.changes
            lines.append("")
            lines += _table(shown)
            if len(shown) < len(self.changes):
                lines.append(f"… and {len(self.changes) - len(shown)} more changed rows")
        counts = self.counts()
        lines.append("")
        lines.append(
            f"{counts['rows_changed']} of {self.screened} rows change: "
            f"findings +{counts['findings_added']} -{counts['findings_removed']}, "
            f"severity changed {counts['severity_changed']}, "
            f"referral up {counts['referral_up']} down {counts['referral_down']}, "
            f"exercises changed in {counts['exercises_changed']} rows"
        )
        if self.invalid:
            lines.append(f"{len(self.invalid)} invalid rows not screened:")
            lines += [f"  - {row}: {problem}" for row, problem in self.invalid[:5]]
            if len(self.invalid) > 5:
                lines.append(
                    f"  … and {len(self.invalid) - 5} more (all of them with --format json)"
                )
        return "\n".join(lines)


def _table(changes: tuple[RowChange, ...]) -> list[str]:
    def referral(change: RowChange) -> str:
        if change.referral_before == change.referral_after:
            return ""
        arrow = f"{change.referral_before or 'none'} → {change.referral_after or 'none'}"
        return f"{arrow} ({change.referral})" if change.referral else arrow

    header = ("row", "findings", "severity", "referral", "exercises")
    rows = [
        (
            change.row,
            " ".join([*(f"+{i}" for i in change.added), *(f"-{i}" for i in change.removed)]),
            "; ".join(change.severity),
            referral(change),
            " ".join(
                [
                    *(f"+{e}" for e in change.exercises_added),
                    *(f"-{e}" for e in change.exercises_removed),
                ]
            ),
        )
        for change in changes
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]


def _brief(text: str, limit: int = 160) -> str:
    """One line of at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def diff_rulesets(
    old: Screener,
    new: Screener,
    sample: str | Path,
    *,
    old_dir: str = "",
    new_dir: str = "",
    usage_error: type[Exception] = ValueError,
) -> RulesDiff:
    """Screen every row of ``sample`` (CSV with the batch column convention, a JSON array or
    JSON lines of intake forms) with both rule sets and collect the rows whose outcome
    changes; ``usage_error`` (the CLI's, exit code 2) when the sample cannot be read."""
    path = Path(sample)
    changes: list[RowChange] = []
    invalid: list[tuple[str, str]] = []
    screened = 0
    for label, form, problem in _sample_rows(path, usage_error):
        if form is None:
            invalid.append((label, _brief(problem)))
            continue
        try:
            before, after = old.assess(form), new.assess(form)
        except InvalidFormError as error:
            invalid.append((label, _brief(str(error))))
            continue
        screened += 1
        change = row_change(label, before, after)
        if change.changed:
            changes.append(change)

    def side(screener: Screener, directory: str) -> dict[str, str]:
        ruleset = screener.ruleset
        return {"dir": directory, "version": ruleset.label, "digest": ruleset.digest}

    return RulesDiff(
        side(old, old_dir),
        side(new, new_dir),
        str(sample),
        screened,
        tuple(invalid),
        tuple(changes),
    )


# -- JSON Schemas of the rule files ----------------------------------------------------------------

SCHEMA_FILES = {
    "ruleset": "hipscreen-ruleset.schema.json",
    "catalog": "hipscreen-exercises.schema.json",
    "vocabulary": "hipscreen-vocabulary.schema.json",
    "rules": "hipscreen-rules.schema.json",
    "tables": "hipscreen-tables.schema.json",
}
_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def rule_file_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas (draft 2020-12) of ruleset.yaml, exercises.yaml, vocabulary.yaml, the
    rule files (findings/*.yaml) and the clinical tables (tables.yaml), from the loaders'
    pydantic models; a rule's ``when`` and each escalation's ``when`` refer to the union of the
    condition models (`hipscreen._rules.conditions`). The loader checks more than a schema can:
    names across files, thresholds, cycles, the safety net."""
    from hipscreen._rules import files as rulefiles
    from hipscreen._rules.conditions import condition_json_schema
    from hipscreen._rules.tables import TablesFile

    def model(cls: Any, title: str) -> dict[str, Any]:
        schema: dict[str, Any] = cls.model_json_schema()
        return {"$schema": _DRAFT, **schema, "title": title}

    rule = rulefiles.RuleSpec.model_json_schema(ref_template="#/$defs/{model}")
    defs = rule.pop("$defs", {})
    condition = condition_json_schema("#/$defs/{model}")
    defs.update(condition["$defs"])
    rule["properties"]["when"] = {"$ref": condition["$ref"]}
    if "EscalationSpec" in defs:
        defs["EscalationSpec"]["properties"]["when"] = {"$ref": condition["$ref"]}
    defs["RuleSpec"] = rule
    rules = {
        "$schema": _DRAFT,
        "title": "hipscreen rule file (findings/*.yaml)",
        "type": "object",
        "properties": {"rules": {"type": "array", "items": {"$ref": "#/$defs/RuleSpec"}}},
        "required": ["rules"],
        "additionalProperties": False,
        "$defs": defs,
    }
    return {
        "ruleset": model(rulefiles.RulesetFile, "hipscreen ruleset.yaml"),
        "catalog": model(rulefiles.CatalogFile, "hipscreen exercises.yaml"),
        "vocabulary": model(rulefiles.VocabularyFile, "hipscreen vocabulary.yaml"),
        "rules": rules,
        "tables": model(TablesFile, "hipscreen tables.yaml (clinical tables)"),
    }


RULE_SCHEMA_DIR = "docs/schema/rules"
"""Where the checkout keeps the current schema files; shipped rule files point there."""


def render_rule_schema_files() -> dict[str, str]:
    """Each schema file's name and text, exactly as ``rules schema --write`` writes it."""
    schemas = rule_file_schemas()
    return {
        name: json.dumps(schemas[part], indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        for part, name in SCHEMA_FILES.items()
    }


def _cmd_rules_schema(args: argparse.Namespace, cli: _Cli) -> int:
    schemas = rule_file_schemas()
    if args.write:
        folder = Path(args.write)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in render_rule_schema_files().items():
                (folder / name).write_text(text, encoding="utf-8")
                _write(f"wrote {folder / name}")
        except OSError as error:
            raise cli.usage(f"{args.write}: cannot write the schema files ({error})") from None
        return EXIT_OK
    doc = schemas[args.file] if args.file else schemas
    _write(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True))
    return EXIT_OK


# -- commands --------------------------------------------------------------------------------------


def _cmd_explain(args: argparse.Namespace, cli: _Cli) -> int:
    from hipscreen._results import Assessment
    from hipscreen._rules.explain import ExplanationError, explain

    screener = cli.screener_from(args)
    text = cli.read_form(args.file, sys.stdin)
    stored = None
    if args.assessment:
        try:
            stored = Assessment.model_validate_json(Path(args.assessment).read_text("utf-8-sig"))
        except OSError as error:
            raise cli.usage(f"{args.assessment}: cannot read it ({error})") from None
        except ValueError as error:
            raise cli.usage(
                f"{args.assessment}: not a valid hipscreen assessment: {error}"
            ) from None
    rule_id = args.why if args.why is not None else args.why_not
    try:
        explanation = explain(stored, text, rule_id, screener, expect=args.why is not None)
    except InvalidFormError as error:
        raise cli.usage(f"{args.file}: {error}") from None
    except ExplanationError as error:
        message = str(error).replace("why_not()", "--why-not").replace("why()", "--why")
        raise cli.usage(message) from None
    if args.format == "json":
        _write(json.dumps(dataclasses.asdict(explanation), indent=2, ensure_ascii=False))
    else:
        _write(explanation.text())
    return EXIT_OK


def _cmd_rules_test(args: argparse.Namespace, cli: _Cli) -> int:
    from hipscreen.testing import run_cases

    directory = Path(args.dir)
    if not directory.is_dir():
        raise cli.usage(f"{args.dir}: no such directory")
    cases = directory / "cases" if (directory / "cases").is_dir() else directory
    if not any(cases.glob("*.yaml")):
        raise cli.usage(f"{args.dir}: no case files (expected {cases}/*.yaml)")
    if args.rules is not None:
        screener = load_rules(args.rules, cli.usage_error)
    else:
        rules_dir = cases.parent if cases != directory else directory
        screener = (
            load_rules(rules_dir, cli.usage_error) if _is_rules(rules_dir) else load_rules_builtin()
        )
    report = run_cases(directory, screener, strict=args.strict)
    _write(report.text(verbose=args.verbose))
    return EXIT_OK if report.passed else EXIT_PROBLEMS


def _is_rules(directory: Path) -> bool:
    return (directory / "ruleset.yaml").is_file() or (directory / "findings").is_dir()


def load_rules_builtin() -> Screener:
    from hipscreen._screen import default_screener

    return default_screener()


def _cmd_rules_diff(args: argparse.Namespace, cli: _Cli) -> int:
    old = load_rules(args.old, cli.usage_error)
    new = load_rules(args.new, cli.usage_error)
    report = diff_rulesets(
        old, new, args.forms, old_dir=args.old, new_dir=args.new, usage_error=cli.usage_error
    )
    if args.format == "json":
        _write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        _write(report.text(limit=args.limit))
    return EXIT_PROBLEMS if report.changes else EXIT_OK


def _cmd_rules_rescreen(args: argparse.Namespace, cli: _Cli) -> int:
    from hipscreen._compare import compare
    from hipscreen._results import Assessment

    try:
        stored = Assessment.model_validate_json(Path(args.stored).read_text("utf-8-sig"))
    except OSError as error:
        raise cli.usage(f"{args.stored}: cannot read it ({error})") from None
    except ValueError as error:
        raise cli.usage(f"{args.stored}: not a valid hipscreen assessment: {error}") from None
    text = cli.read_form(args.form, sys.stdin)
    try:
        again = rescreen(stored, text, cli.screener_from(args))
    except RulesetMismatchError as error:
        raise cli.usage(str(error)) from None
    except InvalidFormError as error:
        raise cli.usage(f"{args.form}: {error}") from None
    if again == stored:
        _write(f"reproduced: the same assessment with rules {again.ruleset_version}")
        return EXIT_OK
    _write(
        f"differs from the stored assessment (rules {again.ruleset_version}: the same rule set, "
        "so the form or the hipscreen version differs):"
    )
    _write(compare(stored, again).explain())
    return EXIT_PROBLEMS


def register(
    commands: Any,
    rule_commands: Any,
    *,
    rule_options: Callable[[argparse.ArgumentParser], None],
    read_form: Callable[[str, TextIO], str],
    screener_from: Callable[[argparse.Namespace], Screener],
    usage_error: type[Exception],
) -> None:
    """Add ``explain`` to the top-level commands and ``test``, ``diff``, ``rescreen``, ``schema``
    to ``rules`` (called by ``hipscreen._cli.build_parser``, which passes its form reader,
    screener options and usage error, as for ``fhir``)."""
    cli = _Cli(read_form, screener_from, usage_error)
    explain = commands.add_parser(
        "explain",
        help="why a rule fired, or why it did not, for one intake form",
        description="Explain one rule for one intake form: every alternative of its condition, "
        "which tests held and which did not, with the input values (or 'not assessed'), the "
        "thresholds and where they come from, down any chain of findings. The engine decides "
        "the findings; the explanation must agree with it. Exit code 2 when the rule did the "
        "opposite (--why for a rule that did not fire, --why-not for one that did).",
    )
    explain.add_argument("file", metavar="FORM", help="the intake form (JSON file), - for stdin")
    which = explain.add_mutually_exclusive_group(required=True)
    which.add_argument("--why", metavar="RULE", help="why this rule fired")
    which.add_argument("--why-not", metavar="RULE", help="why this rule did not fire")
    explain.add_argument(
        "--assessment",
        metavar="FILE",
        help="the stored assessment of this form (JSON); its rule-set version and findings "
        "must be those of the rules given",
    )
    explain.add_argument("--format", choices=["text", "json"], default="text")
    rule_options(explain)
    explain.set_defaults(func=lambda args: _cmd_explain(args, cli))

    test = rule_commands.add_parser(
        "test",
        help="run a rule set's case files; exit code 1 on any failure",
        description="Run the case files of a rule set (DIR/cases/*.yaml, or DIR itself when it "
        "holds the case files; format in docs/writing-rules.md) and report each failure as a "
        "readable diff with the nearest why/why-not. DIR is screened as a complete rule set "
        "when it has ruleset.yaml, as extra rules on top of the built-in rules when it has "
        "findings/, else with the built-in rules (or --rules). Exit code 1 if a case fails.",
    )
    test.add_argument("dir", metavar="DIR", help="the rule directory (or its cases directory)")
    test.add_argument("--rules", metavar="RULES", help="screen with this rule directory instead")
    test.add_argument(
        "--strict",
        action="store_true",
        help="also fail when a rule lacks a 'fires' or a 'quiet' case",
    )
    test.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    test.set_defaults(func=lambda args: _cmd_rules_test(args, cli))

    diff = rule_commands.add_parser(
        "diff",
        help="which rows of a sample a rule change affects; exit code 1 if any",
        description="Screen a sample of forms with two rule sets and report the rows whose "
        "outcome changes: findings added or removed, severity changed, referral urgency up or "
        "down, exercises added or removed; then the counts and both rule-set digests. A "
        "directory with ruleset.yaml is a complete rule set, one with findings/ extra rules on "
        "top of the built-in rules. Exit code 0: no row changes; 1: some rows change; 2: bad "
        "usage or input. Invalid rows are listed and not counted as changes.",
    )
    diff.add_argument("old", metavar="OLD_DIR", help="the current rule directory")
    diff.add_argument("new", metavar="NEW_DIR", help="the changed rule directory")
    diff.add_argument(
        "--forms",
        metavar="SAMPLE",
        required=True,
        help="the sample: a CSV file (batch column convention), a JSON array or JSON lines",
    )
    diff.add_argument("--format", choices=["table", "json"], default="table")
    diff.add_argument(
        "--limit",
        metavar="N",
        type=int,
        default=50,
        help="show at most N changed rows in the table (default 50; 0: all); counts and JSON "
        "cover every row",
    )
    diff.set_defaults(func=lambda args: _cmd_rules_diff(args, cli))

    again = rule_commands.add_parser(
        "rescreen",
        help="re-run a stored form against the rule set it was screened with",
        description="Screen FORM again with the rules given (the built-in rules, --rules or "
        "--extra-rules) after checking they are the rule set the stored assessment names "
        "(version and content digest): exit code 2 if not. Exit code 0 when the result is the "
        "stored one, 1 (with what changed) when it differs.",
    )
    again.add_argument("stored", metavar="ASSESSMENT", help="the stored assessment (JSON)")
    again.add_argument("form", metavar="FORM", help="the intake form it was screened from (JSON)")
    rule_options(again)
    again.set_defaults(func=lambda args: _cmd_rules_rescreen(args, cli))

    schema = rule_commands.add_parser(
        "schema",
        help="print the JSON Schema of rule, catalog, vocabulary and ruleset files",
        description="Print the JSON Schemas (draft 2020-12) of the rule data files, for editors "
        "that validate and complete YAML: {ruleset, catalog, vocabulary, rules}, or one of them "
        "(--file); --write DIR writes " + ", ".join(SCHEMA_FILES.values()) + ". The loader "
        "(`hipscreen rules check`) checks more than a schema can.",
    )
    schema.add_argument("--file", choices=list(SCHEMA_FILES), help="print only this file's schema")
    schema.add_argument("--write", metavar="DIR", help="write the schema files into DIR")
    schema.set_defaults(func=lambda args: _cmd_rules_schema(args, cli))
