"""Run a rule set's case files: what each rule must and must not do, checked like tests.

A rule set keeps its cases beside its rules, in ``cases/*.yaml`` (the format is documented in
docs/writing-rules.md, "Rule cases"): per rule, forms that must make it fire (with optional
checks of severity, evidence, sides, confidence, derived_from, referral and plan) and forms
that must keep it quiet; and optionally whole-form golden cases (``cases:`` with the exact
findings). `run_cases` screens every form and returns a `CaseReport`; `assert_cases` fails with
a readable diff; `case_params` gives one pytest parameter per case.

Examples:
    >>> from hipscreen.testing import run_cases
    >>> report = run_cases("rules")          # the built-in rule set and its cases
    >>> report.passed, len(report.results) > 100
    (True, True)

In a pytest suite::

    import pytest
    from hipscreen.testing import assert_cases, case_params, check_case

    def test_every_case_of_our_rules():
        assert_cases("clinic_rules")

    @pytest.mark.parametrize("case", case_params("clinic_rules"))
    def test_case(case):
        check_case(case, "clinic_rules").check()
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from hipscreen._errors import InvalidFormError

if TYPE_CHECKING:
    from hipscreen._results import Assessment, Finding
    from hipscreen._screen import Screener

__all__ = [
    "CaseReport",
    "CaseResult",
    "RuleCase",
    "assert_cases",
    "case_params",
    "check_case",
    "load_cases",
    "run_cases",
]

RULE_FILE_KEYS = frozenset({"rule", "fires", "quiet"})
CHECK_KEYS = frozenset(
    {"severity", "evidence", "derived_from", "sides", "confidence", "referral", "plan"}
)
FIRES_KEYS = frozenset({"name", "form", *CHECK_KEYS})
QUIET_KEYS = frozenset({"name", "form"})
GOLDEN_KEYS = frozenset({"name", "form", "findings", "referral", "plan"})
PLAN_KEYS = frozenset({"includes", "excludes", "exactly"})

Kind = Literal["fires", "quiet", "golden"]


@dataclass(frozen=True)
class RuleCase:
    """One form and what the rule set must do with it.

    ``kind`` is ``fires`` (the rule must produce its finding, with the optional ``checks``),
    ``quiet`` (it must not) or ``golden`` (exactly the ``findings`` in ``checks``; ``rule`` is
    empty).
    """

    file: str
    rule: str
    kind: Kind
    name: str
    form: Mapping[str, Any]
    checks: Mapping[str, Any] = field(default_factory=dict)

    @property
    def test_id(self) -> str:
        """``rule/kind/name`` (``golden/name`` for a golden case): a pytest id."""
        return (
            f"golden/{self.name}"
            if self.kind == "golden"
            else f"{self.rule}/{self.kind}/{self.name}"
        )


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case: passed when ``problems`` is empty."""

    case: RuleCase
    problems: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()  # the finding ids the form produced
    why: str = ""  # for a rule that did not do what the case expects: the nearest explanation

    @property
    def passed(self) -> bool:
        return not self.problems

    def text(self) -> str:
        """``ok``/``FAIL``, the case id and file, then one line per problem."""
        head = f"{'ok  ' if self.passed else 'FAIL'} {self.case.test_id}  [{self.case.file}]"
        lines = [head, *(f"  - {problem}" for problem in self.problems)]
        if self.why:
            lines += [f"    {line}" for line in self.why.splitlines()]
        return "\n".join(lines)

    def check(self) -> None:
        """Raise `AssertionError` with `text` unless the case passed (for a pytest test)."""
        if not self.passed:
            raise AssertionError(self.text())


@dataclass(frozen=True)
class CaseReport:
    """Every case of a rule set's case files, checked."""

    cases_dir: str
    ruleset_version: str
    results: tuple[CaseResult, ...]
    format_problems: tuple[str, ...] = ()  # case files that break the format
    rules_without_cases: tuple[str, ...] = ()  # rules lacking a 'fires' or a 'quiet' case
    strict: bool = False  # a rule without both kinds of case is a failure

    @property
    def failures(self) -> tuple[CaseResult, ...]:
        return tuple(result for result in self.results if not result.passed)

    @property
    def passed(self) -> bool:
        return not (
            self.failures or self.format_problems or (self.strict and self.rules_without_cases)
        )

    def text(self, *, verbose: bool = False) -> str:
        """A summary line, each format problem, each failure with its diff (every case when
        ``verbose``), and the rules without cases."""
        passed = sum(result.passed for result in self.results)
        rules = len({r.case.rule for r in self.results if r.case.rule})
        lines = [
            f"{self.cases_dir}: {len(self.results)} cases for {rules} rules, rules "
            f"{self.ruleset_version}: {passed} passed, {len(self.results) - passed} failed"
        ]
        lines += [f"format: {problem}" for problem in self.format_problems]
        lines += [r.text() for r in self.results if verbose or not r.passed]
        if self.rules_without_cases:
            missing = ", ".join(self.rules_without_cases)
            lines.append(
                f"{'FAIL' if self.strict else 'note'}: rules without a 'fires' and a 'quiet' "
                f"case: {missing}"
            )
        return "\n".join(lines)


# -- reading case files ----------------------------------------------------------------------------


def _cases_dir(directory: str | Path) -> Path:
    path = Path(directory)
    return path / "cases" if (path / "cases").is_dir() else path


def load_cases(directory: str | Path) -> tuple[list[RuleCase], list[str]]:
    """The cases of every ``*.yaml`` file of a cases directory (or of ``DIR/cases``), and every
    way a file breaks the case format (an unknown key is a problem: a misspelt check must not
    silently pass)."""
    folder = _cases_dir(directory)
    if not folder.is_dir():
        return [], [f"{folder}: no such directory"]
    cases: list[RuleCase] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        file_cases, file_problems = _read_file(path)
        cases += file_cases
        problems += file_problems
    return cases, problems


def _read_file(path: Path) -> tuple[list[RuleCase], list[str]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        return [], [f"{path.name}: not valid YAML: {error}"]
    if isinstance(data, dict) and "cases" in data and "rule" not in data:
        return _read_golden(path, data)
    if not isinstance(data, dict):
        return [], [f"{path.name}: must be a mapping with keys {sorted(RULE_FILE_KEYS)}"]
    problems = [f"{path.name}: unknown key {k!r}" for k in sorted(set(data) - RULE_FILE_KEYS)]
    rule = data.get("rule")
    if rule != path.stem:
        problems.append(f"{path.name}: 'rule' is {rule!r} but the file name says {path.stem!r}")
    cases: list[RuleCase] = []
    names: set[str] = set()
    kinds: tuple[tuple[Kind, frozenset[str]], ...] = (("fires", FIRES_KEYS), ("quiet", QUIET_KEYS))
    for kind, allowed in kinds:
        entries = data.get(kind) or []
        if not isinstance(entries, list):
            problems.append(f"{path.name}: {kind!r} must be a list of cases")
            continue
        for i, entry in enumerate(entries):
            case, entry_problems = _read_case(path, f"{kind}[{i}]", entry, allowed, names)
            problems += entry_problems
            if case is not None:
                cases.append(RuleCase(path.name, str(rule), kind, *case))
    return cases, problems


def _read_golden(path: Path, data: dict[str, Any]) -> tuple[list[RuleCase], list[str]]:
    problems = [f"{path.name}: unknown key {k!r}" for k in sorted(set(data) - {"cases"})]
    entries = data["cases"]
    if not isinstance(entries, list):
        return [], [*problems, f"{path.name}: 'cases' must be a list of cases"]
    cases: list[RuleCase] = []
    names: set[str] = set()
    for i, entry in enumerate(entries):
        case, entry_problems = _read_case(path, f"cases[{i}]", entry, GOLDEN_KEYS, names)
        problems += entry_problems
        if case is not None:
            if not isinstance(case[2].get("findings"), list):
                problems.append(f"{path.name}: cases[{i}] ({case[0]}): needs a 'findings' list")
                continue
            cases.append(RuleCase(path.name, "", "golden", *case))
    return cases, problems


def _read_case(
    path: Path, where: str, entry: Any, allowed: frozenset[str], names: set[str]
) -> tuple[tuple[str, dict[str, Any], dict[str, Any]] | None, list[str]]:
    where = f"{path.name}: {where}"
    if not isinstance(entry, dict):
        return None, [f"{where}: a case must be a mapping"]
    problems = [f"{where}: unknown key {k!r}" for k in sorted(set(entry) - allowed)]
    name, form = entry.get("name"), entry.get("form")
    if not isinstance(name, str) or not name:
        return None, [*problems, f"{where}: needs a 'name'"]
    if name in names:
        problems.append(f"{where}: duplicate case name {name!r}")
    names.add(name)
    if not isinstance(form, dict):
        return None, [*problems, f"{where} ({name}): needs a 'form' mapping"]
    plan = entry.get("plan", {})
    if not isinstance(plan, dict):
        problems.append(f"{where} ({name}): 'plan' must be a mapping")
    else:
        problems += [
            f"{where} ({name}): unknown plan key {k!r}" for k in sorted(set(plan) - PLAN_KEYS)
        ]
    checks = {k: v for k, v in entry.items() if k not in {"name", "form"}}
    return (name, form, checks), problems


# -- the rule set a case directory belongs to ------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _screener_for(directory: Path) -> Screener:
    from hipscreen._rules.builtin import builtin_rules_dir
    from hipscreen._screen import Screener, default_screener

    if directory.resolve() == builtin_rules_dir().resolve():
        return default_screener()
    if (directory / "ruleset.yaml").is_file():
        return Screener(directory)
    if (directory / "findings").is_dir() or (directory / "exercises.yaml").is_file():
        return Screener(extra_rules=[directory])
    return default_screener()  # cases alone: they are about the built-in rules


def _resolve(directory: str | Path, screener: Screener | str | Path | None) -> Screener:
    """The screener a case directory is checked with: the one given, else the rule set the
    directory is (or whose ``cases/`` it is); extra rules go on top of the built-in rules."""
    from hipscreen._screen import Screener

    if isinstance(screener, Screener):
        return screener
    if screener is not None:
        return _screener_for(Path(screener).resolve())
    path = Path(directory).resolve()
    rules = path if (path / "cases").is_dir() else path.parent
    return _screener_for(rules)


# -- checking --------------------------------------------------------------------------------------


def check_case(
    case: RuleCase,
    screener: Screener | str | Path | None = None,
    *,
    explain: bool = True,
) -> CaseResult:
    """Screen the case's form and compare the outcome with what the case expects.

    Args:
        case: the case (from `load_cases` or `case_params`).
        screener: a `Screener`, or the rule directory to screen with (a complete rule set, or
            extra rules on top of the built-in rules); the built-in rules by default.
        explain: for a rule that did not do what the case expects, add the nearest
            explanation (`Assessment.why_not` / `why`).
    """
    if screener is None:
        from hipscreen._screen import default_screener

        rules = default_screener()
    else:
        rules = _resolve(".", screener)
    try:
        result = rules.assess(dict(case.form))
    except InvalidFormError as error:
        return CaseResult(case, (f"the form is invalid: {error}",))
    ids = tuple(result.finding_ids())
    if case.kind == "golden":
        return CaseResult(case, tuple(_golden_problems(case, result)), ids)
    known = {rule.id for rule in rules.ruleset.rules}
    if case.rule not in known:
        return CaseResult(case, (f"no rule {case.rule!r} in rules {rules.ruleset_version}",), ids)
    finding = next((f for f in result.findings if f.id == case.rule), None)
    why = ""
    if case.kind == "quiet":
        if finding is None:
            return CaseResult(case, (), ids)
        cited = ", ".join(f"{e.field} = {e.value}" for e in finding.evidence) or "no evidence"
        problems = [f"expected {case.rule} to stay quiet; it fired ({cited})"]
        if explain:
            why = result.why(case.rule, dict(case.form), screener=rules).text(held_only=True)
        return CaseResult(case, tuple(problems), ids, why)
    if finding is None:
        problems = [f"expected {case.rule} to fire; it did not (findings: {_list(ids)})"]
        if explain:
            why = result.why_not(case.rule, dict(case.form), screener=rules).text(nearest=True)
        return CaseResult(case, tuple(problems), ids, why)
    return CaseResult(case, tuple(_fires_problems(case, result, finding)), ids)


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _fires_problems(case: RuleCase, result: Assessment, finding: Finding) -> list[str]:
    checks, problems = case.checks, []

    def differs(what: str, expected: Any, got: Any) -> None:
        if expected != got:
            problems.append(f"{what}: expected {expected}, got {got}")

    if "severity" in checks:
        differs("severity", checks["severity"], finding.severity.value)
    if "evidence" in checks:
        fields = [e.field for e in finding.evidence]
        missing = [path for path in checks["evidence"] if path not in fields]
        if missing:
            problems.append(
                f"evidence: missing {_list(missing)}; the finding cites {_list(fields)}"
            )
    if "derived_from" in checks:
        differs("derived_from", sorted(checks["derived_from"]), sorted(finding.derived_from))
    if "sides" in checks:
        differs("sides", sorted(checks["sides"]), sorted(s.value for s in finding.sides))
    if "confidence" in checks:
        differs("confidence", checks["confidence"], finding.confidence.value)
    if "referral" in checks:
        referral = result.referral
        if referral is None:
            problems.append(f"referral: expected {checks['referral']}, got none")
        else:
            differs("referral", checks["referral"], referral.urgency.value)
            if case.rule not in referral.because:
                because = _list(referral.because)
                problems.append(f"referral: it is because of {because}, not {case.rule}")
    if "plan" in checks:
        problems += _plan_problems(result, checks["plan"])
    return problems


def _golden_problems(case: RuleCase, result: Assessment) -> list[str]:
    problems = []
    got, expected = set(result.finding_ids()), set(case.checks["findings"])
    if got != expected:
        diff = [f"+{i}" for i in sorted(got - expected)] + [f"-{i}" for i in sorted(expected - got)]
        problems.append(f"findings: {' '.join(diff)} (+ unexpected, - missing)")
    if "referral" in case.checks:
        urgency = None if result.referral is None else result.referral.urgency.value
        if urgency != case.checks["referral"]:
            problems.append(f"referral: expected {case.checks['referral']}, got {urgency}")
    if "plan" in case.checks:
        problems += _plan_problems(result, case.checks["plan"])
    return problems


def _plan_problems(result: Assessment, expected: Any) -> list[str]:
    if not isinstance(expected, dict):
        return []  # reported as a format problem
    plan = [rec.exercise.id for rec in result.recommendations]
    problems = []
    missing = [ex for ex in expected.get("includes", []) if ex not in plan]
    unwanted = [ex for ex in expected.get("excludes", []) if ex in plan]
    if missing:
        problems.append(f"plan: lacks {_list(missing)}; it is {_list(plan)}")
    if unwanted:
        problems.append(f"plan: must not contain {_list(unwanted)}; it is {_list(plan)}")
    if "exactly" in expected and plan != list(expected["exactly"]):
        problems.append(f"plan: expected exactly {_list(expected['exactly'])}, got {_list(plan)}")
    return problems


def _reference_problems(cases: Sequence[RuleCase], screener: Screener) -> list[str]:
    """Ids a case names that the rule set does not have (a misspelt id cannot pass)."""
    rules = {rule.id for rule in screener.ruleset.rules}
    exercises = set(screener.ruleset.exercises)
    problems = []
    for case in cases:
        where = f"{case.file}: {case.test_id}"
        if case.kind != "golden" and case.rule not in rules:
            problems.append(f"{where}: no rule {case.rule!r} in this rule set")
        named = [*case.checks.get("derived_from", []), *case.checks.get("findings", [])]
        problems += [f"{where}: unknown finding {r!r}" for r in named if r not in rules]
        plan = case.checks.get("plan", {})
        if isinstance(plan, dict):
            ids = [ex for key in sorted(PLAN_KEYS) for ex in plan.get(key, [])]
            problems += [f"{where}: unknown exercise {ex!r}" for ex in ids if ex not in exercises]
    return sorted(set(problems), key=problems.index)


def run_cases(
    directory: str | Path,
    screener: Screener | str | Path | None = None,
    *,
    strict: bool = False,
    explain: bool = True,
) -> CaseReport:
    """Check every case of a rule set.

    Args:
        directory: a rule directory with a ``cases/`` folder, or a cases folder itself.
        screener: a `Screener` or a rule directory to screen with; by default the rule set
            ``directory`` is (a complete rule set with ruleset.yaml, else extra rules on top of
            the built-in rules; a folder of cases alone is checked against the built-in rules).
        strict: a rule of the rule set without both a 'fires' and a 'quiet' case fails too.
        explain: add the nearest why/why-not explanation to each failure.
    """
    rules = _resolve(directory, screener)
    cases, problems = load_cases(directory)
    problems += _reference_problems(cases, rules)
    results = tuple(check_case(case, rules, explain=explain) for case in cases)
    fires = {c.rule for c in cases if c.kind == "fires"}
    quiet = {c.rule for c in cases if c.kind == "quiet"}
    own = {c.rule for c in cases if c.rule}
    if (_cases_dir(directory).parent / "ruleset.yaml").is_file():
        candidates = [rule.id for rule in rules.ruleset.rules]
    else:  # extra rules: only the rules its cases are about, plus its own rule files
        candidates = [rule.id for rule in rules.ruleset.rules if rule.id in own]
    without = tuple(r for r in candidates if r not in fires or r not in quiet)
    return CaseReport(
        cases_dir=str(_cases_dir(directory)),
        ruleset_version=rules.ruleset_version,
        results=results,
        format_problems=tuple(problems),
        rules_without_cases=without,
        strict=strict,
    )


def assert_cases(
    directory: str | Path,
    screener: Screener | str | Path | None = None,
    *,
    strict: bool = False,
) -> CaseReport:
    """`run_cases`, raising `AssertionError` with the report's text unless every case passed."""
    report = run_cases(directory, screener, strict=strict)
    if not report.passed:
        raise AssertionError(report.text())
    return report


def case_params(directory: str | Path) -> list[Any]:
    """One ``pytest.param(case, id=case.test_id)`` per case of the directory (pytest needed).

    A case file that breaks the format raises `ValueError` listing every problem, so a broken
    file cannot quietly collect fewer tests.
    """
    import pytest

    cases, problems = load_cases(directory)
    if problems:
        raise ValueError("the case files break the format:\n" + "\n".join(problems))
    return [pytest.param(case, id=case.test_id) for case in cases]
