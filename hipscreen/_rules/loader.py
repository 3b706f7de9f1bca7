"""Loading a rule set: read, validate, cross-check and digest the rule files.

Every problem is reported at once (`RuleDataError`); a `RuleSet` is built only from valid data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hipscreen._errors import RuleDataError, RuleProblem
from hipscreen._instruments.loader import builtin_instruments
from hipscreen._limits import MAX_RULE_DATA_BYTES, MAX_RULE_FILES, MAX_RULES
from hipscreen._rules.atoms import Condition, finding_refs
from hipscreen._rules.bounds import check_condition, check_rule_set, check_thresholds
from hipscreen._rules.builtin import builtin_rules_dir
from hipscreen._rules.checks import check_catalog, check_cycles, check_plan, check_safety
from hipscreen._rules.conditions import ConditionContext, parse_condition
from hipscreen._rules.files import CatalogFile, ExerciseSpec, RulesetFile, RuleSpec, ThresholdSpec
from hipscreen._rules.numbers import number_problem
from hipscreen._rules.problems import Collector
from hipscreen._rules.ruleset import Rule, RuleSet
from hipscreen._rules.safetynet import check_referrals, check_vocabulary, load_vocabulary
from hipscreen._rules.safeyaml import read_yaml
from hipscreen._rules.tables import TABLES_FILE
from hipscreen._vocabulary import suggest


def _given_and_resolved(path: Path) -> str:
    resolved = path.resolve()
    return str(path) if str(resolved) == str(path) else f"{path} (resolved: {resolved})"


def _check_rule_dirs(base: Path | None, extra: Sequence[Path]) -> None:
    """Every rule directory a caller names exists, is a directory and holds rule files: a path
    that does not would otherwise be ignored, and the rules screened without it.

    Raises:
        RuleDataError: naming each such path as given and as resolved.
    """
    problems: list[RuleProblem] = []
    for directory, what in [
        (base, "rule directory"),
        *((p, "extra rules directory") for p in extra),
    ]:
        if directory is None:
            continue
        where = _given_and_resolved(directory)
        if not directory.exists():
            problems.append(RuleProblem(where, "", "", f"no such {what}"))
        elif not directory.is_dir():
            problems.append(RuleProblem(where, "", "", f"not a directory (a {what} is needed)"))
        elif what == "extra rules directory":
            findings = directory / "findings"
            has_rules = findings.is_dir() and any(findings.glob("*.yaml"))
            if not has_rules and not (directory / "exercises.yaml").exists():
                problems.append(
                    RuleProblem(
                        where,
                        "",
                        "",
                        "holds no rule file: extra rules are findings/*.yaml (and an optional "
                        "exercises.yaml)"
                        + ("" if findings.is_dir() else "; there is no findings/ folder"),
                    )
                )
    if problems:
        raise RuleDataError(problems)


def load_ruleset(
    base: Path | None = None,
    extra: Sequence[Path] = (),
    thresholds: Mapping[str, float] | None = None,
) -> RuleSet:
    """Load, validate and cross-check rule data.

    Args:
        base: a directory with ``ruleset.yaml``, ``exercises.yaml`` and ``findings/*.yaml``
            (read in file-name order); the built-in rules when omitted.
        extra: more directories, each with ``findings/*.yaml`` and optionally an
            ``exercises.yaml`` adding exercises (and properties) to the catalog. Their rules come
            after the base rules and may chain onto them.
        thresholds: threshold values to use instead of those in ``ruleset.yaml``.

    Raises:
        RuleDataError: listing every problem found; nothing is returned unless all is valid.
    """
    _check_rule_dirs(base, extra)
    base = base or builtin_rules_dir()
    read = _Reader(base)
    out = read.out
    meta_raw, meta, catalog = _read_policy(read, extra)
    if meta is not None and thresholds:
        meta = _override_thresholds(meta, thresholds, out)
        read.digest.update(repr(sorted(thresholds.items())).encode())
    if meta is not None:
        check_thresholds(meta.thresholds, list(thresholds or ()), out.add)
    found = _read_rule_specs(read, (base, *extra))
    exercises = {ex.id: ex for ex in catalog.exercises} if catalog else {}
    if catalog:
        check_catalog(catalog, out)
    if meta and catalog:
        check_plan(meta.plan, exercises, out)
    rule_ids = [spec.id for _, spec in found.specs] + found.known_ids
    context = ConditionContext(_threshold_specs(meta, meta_raw), rule_ids, _instrument_bands())
    rules = _build_rules(found.specs, context, exercises, catalog, meta, out)
    if found.count > MAX_RULES:
        message = f"the rule set has {found.count:,} rules (at most {MAX_RULES:,}); from here on"
        out.add(*found.first_extra, "", f"{message} they are counted, not checked")
    check_rule_set(rules, out.add)
    check_cycles(rules, out)
    vocabulary = load_vocabulary(base, read, out)
    _digest_builtin_data(read.digest)
    if meta is not None:
        check_referrals(rules, meta, catalog, out)
    if vocabulary is not None and not out.problems:
        # Only on otherwise valid data: a rule that failed to load would make every alarm it
        # raises look uncovered.
        check_vocabulary(vocabulary, rules, out)

    if out.problems:
        raise RuleDataError(out.problems)
    assert meta is not None  # no problems means both parsed
    assert catalog is not None
    return RuleSet(
        version=meta.version,
        digest=read.digest.hexdigest(),
        disclaimer=meta.disclaimer,
        thresholds=dict(meta.thresholds),
        plan=meta.plan,
        rules=tuple(rules),
        exercises=exercises,
        properties=dict(catalog.properties),
        dose_defaults=dict(catalog.defaults),
        files=("ruleset.yaml", "exercises.yaml", *found.files),
        referral_policy=dict(meta.referral_policy),
        vocabulary=vocabulary,
    )


class _Reader:
    """Reads the files of one rule set: within one byte budget, each into the content digest,
    every problem into one collector."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.out = Collector()
        self.digest = hashlib.sha256()
        self.budget = [MAX_RULE_DATA_BYTES]

    def __call__(self, path: Path) -> Any:
        data, raw = read_yaml(path, self.base, self.out, self.budget)
        self.digest.update(path.name.encode() + b"\0" + raw + b"\0")
        return data


def _read_policy(
    read: _Reader, extra: Sequence[Path]
) -> tuple[Any, RulesetFile | None, CatalogFile | None]:
    """``ruleset.yaml`` (as read, and validated) and the catalog: ``exercises.yaml`` with each
    extra directory's exercises merged in; None for a file that failed validation."""
    out = read.out
    meta_raw = read(read.base / "ruleset.yaml")
    catalog_raw = read(read.base / "exercises.yaml")
    meta: RulesetFile | None = None
    catalog: CatalogFile | None = None
    try:
        meta = RulesetFile.model_validate(meta_raw)
    except ValidationError as error:
        out.pydantic("ruleset.yaml", error, model=RulesetFile)
    try:
        catalog = CatalogFile.model_validate(catalog_raw)
    except ValidationError as error:
        raw_items = catalog_raw.get("exercises") if isinstance(catalog_raw, dict) else None
        out.pydantic(
            "exercises.yaml",
            error,
            raw_items if isinstance(raw_items, list) else None,
            ExerciseSpec,
        )

    for directory in extra:
        path = directory / "exercises.yaml"
        if not path.exists():  # present but not a plain file: refused by read_yaml
            continue
        name = str(path)
        more_raw = read(path)
        try:
            more = CatalogFile.model_validate(
                {"exercises": [], **more_raw} if isinstance(more_raw, dict) else more_raw
            )
        except ValidationError as error:
            items = more_raw.get("exercises") if isinstance(more_raw, dict) else None
            out.pydantic(name, error, items if isinstance(items, list) else None, ExerciseSpec)
            continue
        if catalog is not None:
            catalog = _merge_catalogs(catalog, more, name, out)
    return meta_raw, meta, catalog


@dataclass
class _RuleSpecs:
    """The rules of every findings file, each validated on its own."""

    specs: list[tuple[str, RuleSpec]] = field(default_factory=list)
    """(file, rule) for each rule that validated."""
    known_ids: list[str] = field(default_factory=list)
    """Ids of rules that failed validation: still valid references."""
    files: list[str] = field(default_factory=list)
    count: int = 0
    """Rules found, counted past ``MAX_RULES`` too."""
    first_extra: tuple[str, str] = ("", "")
    """(file, rule) of the first rule past ``MAX_RULES``."""


def _read_rule_specs(read: _Reader, dirs: Sequence[Path]) -> _RuleSpecs:
    """``findings/*.yaml`` of each directory, in file-name order, rule by rule, so that one
    malformed rule does not hide the others' problems."""
    out = read.out
    found = _RuleSpecs()
    for directory in dirs:
        finding_files = sorted((directory / "findings").glob("*.yaml"))
        if directory == read.base and not finding_files:
            out.add("findings/", "", "", "no rule files found (expected findings/*.yaml)")
        if len(found.files) + len(finding_files) > MAX_RULE_FILES:
            message = f"more than {MAX_RULE_FILES} rule files (the limit); the rest are not read"
            out.add(str(directory / "findings"), "", "", message)
            finding_files = finding_files[: max(0, MAX_RULE_FILES - len(found.files))]
        for path in finding_files:
            name = f"findings/{path.name}" if directory == read.base else str(path)
            found.files.append(name)
            raw = read(path)
            if raw is None and out.problems and out.problems[-1].file == name:
                continue  # unreadable or not YAML: already reported
            raw_rules = raw.get("rules") if isinstance(raw, dict) else None
            unknown = sorted(set(raw) - {"rules"}) if isinstance(raw, dict) else []
            for key in unknown:
                out.add(
                    name, "", str(key), "unknown top-level key (a rule file holds only 'rules')"
                )
            if not isinstance(raw_rules, list):
                out.add(name, "", "rules", f"needs a list of rules (got {raw_rules!r})")
                continue
            for index, raw_rule in enumerate(raw_rules):
                found.count += 1
                if found.count > MAX_RULES:  # counted, not validated: the set is refused anyway
                    if found.count == MAX_RULES + 1:
                        item = raw_rule.get("id") if isinstance(raw_rule, dict) else None
                        found.first_extra = (name, str(item or f"rules.{index}"))
                    continue
                try:
                    found.specs.append((name, RuleSpec.model_validate(raw_rule)))
                except ValidationError as error:
                    item = raw_rule.get("id") if isinstance(raw_rule, dict) else None
                    out.pydantic(name, error, model=RuleSpec, item=str(item or f"rules.{index}"))
                    if isinstance(item, str):
                        found.known_ids.append(item)
    return found


def _threshold_specs(meta: RulesetFile | None, meta_raw: Any) -> dict[str, ThresholdSpec] | None:
    """The thresholds rules may name; None when ``ruleset.yaml`` is unreadable."""
    if meta is not None:
        return dict(meta.thresholds)
    if isinstance(meta_raw, dict) and isinstance(meta_raw.get("thresholds"), dict):
        # ruleset.yaml has problems of its own (already reported): still recognise its threshold
        # names, so rules are not blamed for naming them.
        placeholder = ThresholdSpec(value=0, unit="-", description="-", source="-")
        return {str(name): placeholder for name in meta_raw["thresholds"]}
    return None


def _build_rules(
    specs: Sequence[tuple[str, RuleSpec]],
    context: ConditionContext,
    exercises: Mapping[str, ExerciseSpec],
    catalog: CatalogFile | None,
    meta: RulesetFile | None,
    out: Collector,
) -> list[Rule]:
    """Each rule with its parsed conditions, cross-checked and within the bounds; a rule with a
    problem is reported and left out."""
    rules: list[Rule] = []
    seen: set[str] = set()
    for file, spec in specs:
        if spec.id in seen:
            out.add(file, spec.id, "id", "duplicate rule id (ids must be unique across all files)")
        seen.add(spec.id)
        where = (file, spec.id)
        condition = _parse_condition(spec.when, "when", *where, context, out)
        escalations = tuple(
            (esc.severity, _parse_condition(esc.when, f"escalate.{i}.when", *where, context, out))
            for i, esc in enumerate(spec.escalate)
        )
        for i, exercise_id in enumerate(spec.recommends):
            if catalog and exercise_id not in exercises:
                hint = suggest(exercise_id, exercises)
                out.add(file, spec.id, f"recommends.{i}", f"unknown exercise {exercise_id!r}{hint}")
        if catalog:
            check_safety(file, spec, escalations, exercises, catalog, meta, out)
        if condition is not None and all(e[1] is not None for e in escalations):
            bounded: list[tuple[str, Any]] = [("when", condition)]
            bounded += [(f"escalate.{i}.when", e[1]) for i, e in enumerate(escalations)]
            within = [check_condition(file, spec.id, w, c, out.add) for w, c in bounded]
            if not all(within):  # each condition reported on its own
                continue
            if spec.id in set(finding_refs(condition)):
                out.add(file, spec.id, "when", "a rule cannot chain on its own finding")
            rules.append(Rule(spec, file, condition, escalations))  # type: ignore[arg-type]
    return rules


def _digest_builtin_data(digest: Any) -> None:
    """Add the built-in data that changes results to the digest: the instrument definitions (bands,
    tables: they decide what score rules match; rules/instruments/*.yaml), the form-to-facts
    equivalence table and the clinical tables (rules/tables.yaml, checked at import). A custom
    rule directory never replaces them."""
    for path in sorted((builtin_rules_dir() / "instruments").glob("*.yaml")):
        digest.update(b"instruments/" + path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    equivalences = builtin_rules_dir() / "equivalences.yaml"
    if equivalences.is_file():
        digest.update(b"equivalences.yaml\0" + equivalences.read_bytes() + b"\0")
    clinical = builtin_rules_dir() / TABLES_FILE
    digest.update(TABLES_FILE.encode() + b"\0" + clinical.read_bytes() + b"\0")


def _instrument_bands() -> dict[str, tuple[str, ...]]:
    """Each standard instrument's id and band names: what a ``score`` condition may name."""
    return {
        instrument: tuple(band.name for band in definition.bands)
        for instrument, definition in builtin_instruments().items()
    }


def _parse_condition(
    raw: Any, where: str, file: str, rule_id: str, context: ConditionContext, out: Collector
) -> Condition | None:
    """A rule's condition through the condition models (`hipscreen._rules.conditions`), or None with
    every problem reported."""
    condition, problems = parse_condition(raw, where, context)
    for path, message in problems:
        out.add(file, rule_id, path, message)
    return condition


def _merge_catalogs(
    catalog: CatalogFile, more: CatalogFile, name: str, out: Collector
) -> CatalogFile:
    known = {ex.id for ex in catalog.exercises}
    for ex in more.exercises:
        if ex.id in known:
            out.add(name, ex.id, "id", "exercise id already in the catalog")
    for kind in set(more.defaults) & set(catalog.defaults):
        if more.defaults[kind] != catalog.defaults[kind]:
            message = "default dose already set by the base catalog"
            out.add(name, "", f"defaults.{kind.value}", message)
    return CatalogFile(
        properties={**catalog.properties, **more.properties},
        defaults={**more.defaults, **catalog.defaults},
        exercises=[*catalog.exercises, *more.exercises],
    )


def _override_thresholds(
    meta: RulesetFile, overrides: Mapping[str, float], out: Collector
) -> RulesetFile:
    updated = dict(meta.thresholds)
    for name, value in overrides.items():
        spec = updated.get(name)
        if spec is None:
            hint = suggest(name, updated)
            out.add("thresholds", name, "", f"unknown threshold {name!r}{hint}")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            out.add("thresholds", name, "", f"needs a number (got {value!r})")
        elif (problem := number_problem(value)) is not None:
            out.add("thresholds", name, "", problem)
        else:
            updated[name] = spec.model_copy(
                update={"value": value, "source": f"{spec.source} Overridden: {value:g}."}
            )
    return meta.model_copy(update={"thresholds": updated})
