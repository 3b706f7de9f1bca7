"""Loading a rule set: read the files, validate them, cross-check them and digest them; every
problem at once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hipscreen._errors import RuleDataError, RuleProblem
from hipscreen._instruments.loader import builtin_instruments
from hipscreen._limits import MAX_RULE_DATA_BYTES, MAX_RULE_FILES, MAX_RULES
from hipscreen._rules.bounds import check_condition, check_rule_set, check_thresholds
from hipscreen._rules.checks import check_catalog, check_cycles, check_plan, check_safety
from hipscreen._rules.conditions import Condition, ConditionContext, finding_refs, parse_condition
from hipscreen._rules.files import CatalogFile, ExerciseSpec, RulesetFile, RuleSpec, ThresholdSpec
from hipscreen._rules.numbers import number_problem
from hipscreen._rules.problems import Collector
from hipscreen._rules.ruleset import Rule, RuleSet
from hipscreen._rules.safetynet import check_referrals, check_vocabulary, load_vocabulary
from hipscreen._rules.safeyaml import read_yaml
from hipscreen._rules.tables import TABLES_FILE, builtin_rules_dir
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
    dirs = (base, *extra)
    out = Collector()
    digest = hashlib.sha256()
    budget = [MAX_RULE_DATA_BYTES]

    def read(path: Path) -> Any:
        data, raw = read_yaml(path, base, out, budget)
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        return data

    meta_raw = read(base / "ruleset.yaml")
    catalog_raw = read(base / "exercises.yaml")
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
        if not path.exists():  # present but not a plain file: refused by _read_yaml
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

    if meta is not None and thresholds:
        meta = _override_thresholds(meta, thresholds, out)
        digest.update(repr(sorted(thresholds.items())).encode())
    if meta is not None:
        check_thresholds(meta.thresholds, list(thresholds or ()), out.add)

    rule_specs: list[tuple[str, RuleSpec]] = []
    rule_count = 0
    first_extra = ("", "")
    known_ids: list[str] = []  # ids of rules that failed validation: still valid references
    files: list[str] = []
    for directory in dirs:
        finding_files = sorted((directory / "findings").glob("*.yaml"))
        if directory == base and not finding_files:
            out.add("findings/", "", "", "no rule files found (expected findings/*.yaml)")
        if len(files) + len(finding_files) > MAX_RULE_FILES:
            message = f"more than {MAX_RULE_FILES} rule files (the limit); the rest are not read"
            out.add(str(directory / "findings"), "", "", message)
            finding_files = finding_files[: max(0, MAX_RULE_FILES - len(files))]
        for path in finding_files:
            name = f"findings/{path.name}" if directory == base else str(path)
            files.append(name)
            raw = read(path)
            if raw is None and out.problems and out.problems[-1].file == name:
                continue  # unreadable or not YAML: already reported
            raw_rules = raw.get("rules") if isinstance(raw, dict) else None
            extra = sorted(set(raw) - {"rules"}) if isinstance(raw, dict) else []
            for key in extra:
                out.add(
                    name, "", str(key), "unknown top-level key (a rule file holds only 'rules')"
                )
            if not isinstance(raw_rules, list):
                out.add(name, "", "rules", f"needs a list of rules (got {raw_rules!r})")
                continue
            # Rule by rule, so that one malformed rule does not hide the others' problems.
            for index, raw_rule in enumerate(raw_rules):
                rule_count += 1
                if rule_count > MAX_RULES:  # counted, not validated: the set is refused anyway
                    if rule_count == MAX_RULES + 1:
                        item = raw_rule.get("id") if isinstance(raw_rule, dict) else None
                        first_extra = (name, str(item or f"rules.{index}"))
                    continue
                try:
                    rule_specs.append((name, RuleSpec.model_validate(raw_rule)))
                except ValidationError as error:
                    item = raw_rule.get("id") if isinstance(raw_rule, dict) else None
                    out.pydantic(name, error, model=RuleSpec, item=str(item or f"rules.{index}"))
                    if isinstance(item, str):
                        known_ids.append(item)

    specs: dict[str, ThresholdSpec] | None = dict(meta.thresholds) if meta else None
    if (
        specs is None
        and isinstance(meta_raw, dict)
        and isinstance(meta_raw.get("thresholds"), dict)
    ):
        # ruleset.yaml has problems of its own (already reported): still recognise its threshold
        # names, so rules are not blamed for naming them.
        placeholder = ThresholdSpec(value=0, unit="-", description="-", source="-")
        specs = {str(name): placeholder for name in meta_raw["thresholds"]}
    exercises = {ex.id: ex for ex in catalog.exercises} if catalog else {}
    if catalog:
        check_catalog(catalog, out)
    if meta and catalog:
        check_plan(meta.plan, exercises, out)

    rule_ids = [spec.id for _, spec in rule_specs] + known_ids
    context = ConditionContext(specs, rule_ids, _instrument_bands())
    rules: list[Rule] = []
    seen: set[str] = set()
    for file, spec in rule_specs:
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
    if rule_count > MAX_RULES:
        message = f"the rule set has {rule_count:,} rules (at most {MAX_RULES:,}); from here on"
        out.add(*first_extra, "", f"{message} they are counted, not checked")
    check_rule_set(rules, out.add)
    check_cycles(rules, out)
    vocabulary = load_vocabulary(base, read, out)
    # The instrument definitions (bands, tables) decide what score rules match: they are part of
    # the rule data the digest names (rules/instruments/*.yaml, loaded by hipscreen._instruments).
    for path in sorted((builtin_rules_dir() / "instruments").glob("*.yaml")):
        digest.update(b"instruments/" + path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    # The form-to-facts equivalence table (always the built-in one) changes results too.
    equivalences = builtin_rules_dir() / "equivalences.yaml"
    if equivalences.is_file():
        digest.update(b"equivalences.yaml\0" + equivalences.read_bytes() + b"\0")
    # So do the clinical tables (rules/tables.yaml, always the built-in ones, checked at import).
    clinical = builtin_rules_dir() / TABLES_FILE
    digest.update(TABLES_FILE.encode() + b"\0" + clinical.read_bytes() + b"\0")
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
        digest=digest.hexdigest(),
        disclaimer=meta.disclaimer,
        thresholds=dict(meta.thresholds),
        plan=meta.plan,
        rules=tuple(rules),
        exercises=exercises,
        properties=dict(catalog.properties),
        dose_defaults=dict(catalog.defaults),
        files=("ruleset.yaml", "exercises.yaml", *files),
        referral_policy=dict(meta.referral_policy),
        vocabulary=vocabulary,
    )


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
