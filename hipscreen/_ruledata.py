"""Rule and exercise-catalog data: the file schema, loading, validation and the content digest."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from hipscreen._conditions import (  # the condition values, re-exported for their users
    RULE_ID,
    ConditionContext,
    parse_condition,
)
from hipscreen._conditions import AllOf as AllOf
from hipscreen._conditions import AnyOf as AnyOf
from hipscreen._conditions import Atom as Atom
from hipscreen._conditions import Condition as Condition
from hipscreen._conditions import FactType as FactType
from hipscreen._conditions import alternatives as alternatives
from hipscreen._conditions import finding_refs as finding_refs
from hipscreen._errors import RuleDataError, RuleProblem
from hipscreen._limits import (
    MAX_RULE_DATA_BYTES,
    MAX_RULE_FILE_BYTES,
    MAX_RULE_FILES,
    MAX_RULES,
    MAX_YAML_DEPTH,
)
from hipscreen._tables import TABLES_FILE, tables
from hipscreen._tables import builtin_rules_dir as builtin_rules_dir
from hipscreen._vocabulary import (
    ContextItem,
    ExerciseKind,
    Movement,
    Muscle,
    Severity,
    Symptom,
    Urgency,
    suggest,
)

EXERCISE_ID = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"

RuleId = Annotated[str, StringConstraints(pattern=RULE_ID)]
ExerciseId = Annotated[str, StringConstraints(pattern=EXERCISE_ID)]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


PropertyName = Annotated[str, StringConstraints(pattern=EXERCISE_ID)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# -- file schema -----------------------------------------------------------------------------------


class ThresholdSpec(_Spec):
    """A named number that rules compare against."""

    value: int | float
    unit: Text
    description: Text
    source: Text


class DoseSpec(_Spec):
    """A dose as written in the catalog."""

    sets: int | None = Field(default=None, ge=1, le=10)
    reps: int | None = Field(default=None, ge=1, le=100)
    hold_seconds: int | None = Field(default=None, ge=1, le=300)
    minutes: int | None = Field(default=None, ge=1, le=60)
    days_per_week: int | None = Field(default=None, ge=1, le=7)
    note: str | None = None


class LevelPolicy(_Spec):
    """Which exercise level a strength grade allows (domain reference §D PRG-LEVEL)."""

    by_grade: dict[int, int]
    unassessed: int = Field(ge=1)
    pain_step_back: int = Field(ge=0)
    pain_symptoms: list[Symptom]


class DoseAdjustment(_Spec):
    """Change a kind's dose for older adults (or any age at or above ``age_at_least``)."""

    kind: ExerciseKind
    age_at_least: int = Field(ge=0, le=120)
    hold_seconds: int | None = None
    sets: int | None = None
    reps: int | None = None
    note: Text
    source: Text


class BalancePolicy(_Spec):
    flexion: ExerciseId
    extension: ExerciseId


class CriticalPolicy(_Spec):
    """What any critical finding withholds (domain reference §D OUT-SUPPRESS)."""

    withhold_kinds: list[ExerciseKind]
    source: Text


class PlanPolicy(_Spec):
    """How findings become an ordered, dosed plan."""

    warm_up: ExerciseId
    balance: BalancePolicy
    levels: LevelPolicy
    critical: CriticalPolicy
    dose_adjustments: list[DoseAdjustment] = []


class WithholdSpec(_Spec):
    """Exercises a finding takes out of the plan: by kind, by property, or by id."""

    kinds: list[ExerciseKind] = []
    properties: list[PropertyName] = []
    exercises: list[ExerciseId] = []


class ReferralPolicy(_Spec):
    """What one kind of referral means: how soon, what the plan leaves out, what it must say."""

    urgency: Urgency
    withhold: WithholdSpec = Field(default_factory=WithholdSpec)
    wording: list[Text] = Field(
        min_length=1,
        description="The referral's message (or whom to see) carries at least one of these.",
    )
    description: Text
    source: Text


class RulesetFile(_Spec):
    """``ruleset.yaml``: version, disclaimer, thresholds, plan policy and referral policy."""

    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    disclaimer: Text
    thresholds: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], ThresholdSpec]
    plan: PlanPolicy
    referral_policy: dict[KindName, ReferralPolicy] = Field(
        default={},
        description="Per referral kind: urgency, what the plan withholds, required wording. When "
        "present, every referral names one of these kinds.",
    )
    same_day_wording: list[Text] = Field(
        default=[],
        description="Words (whole words, any case) that promise same-day action: only an "
        "emergency referral may use them.",
    )


class ExerciseSpec(_Spec):
    """One catalogued exercise."""

    id: ExerciseId
    name: Text
    kind: ExerciseKind
    movement: Movement
    muscles: list[Muscle]
    level: int = Field(ge=1, le=5)
    regression: ExerciseId | None = None
    alternatives: list[ExerciseId] = Field(
        default=[],
        description="Safe replacements that train the same thing, in order of preference: when a "
        "precaution withholds this exercise, the plan offers the first one nothing withholds.",
    )
    properties: list[Annotated[str, StringConstraints(pattern=EXERCISE_ID)]] = []
    instructions: Text
    source: Text
    dose: DoseSpec | None = None


class CatalogFile(_Spec):
    """``exercises.yaml``: exercise properties, default doses per kind, and the exercises."""

    properties: dict[PropertyName, Text] = {}
    defaults: dict[ExerciseKind, DoseSpec] = {}
    exercises: list[ExerciseSpec]


class EscalationSpec(_Spec):
    severity: Severity
    when: dict[str, Any]


KindName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class ReferralSpec(_Spec):
    """Who to see, how soon and why. ``kind`` keys the referral policy in ``ruleset.yaml``."""

    kind: KindName | None = None
    urgency: Urgency
    see: Text
    message: Text


class RuleSpec(_Spec):
    """One rule as written in a findings file."""

    id: RuleId
    title: Text
    severity: Severity
    summary: Annotated[str, StringConstraints(min_length=1, max_length=139)]
    source: Text
    when: dict[str, Any]
    escalate: list[EscalationSpec] = []
    recommends: list[ExerciseId] = []
    referral: ReferralSpec | None = None
    withhold: WithholdSpec | None = None
    swap: dict[ExerciseId, ExerciseId] = Field(
        default={}, description="Withheld exercise → safer replacement."
    )
    emphasise_side: bool = Field(
        default=False,
        description="Its recommended unilateral exercises emphasise the side the finding names.",
    )


ItemClass = Literal["alarm", "risk_factor", "ordinary"]
ITEM_CLASSES: tuple[ItemClass, ...] = ("alarm", "risk_factor", "ordinary")


class VocabularyItem(_Spec):
    """How one symptom or context item is treated by the safety net."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)

    item_class: ItemClass = Field(alias="class")
    reason: Text


class VocabularyFile(_Spec):
    """``vocabulary.yaml``: every symptom and context item classed alarm, risk_factor or ordinary.

    An ``alarm`` item alone must yield at least a warning: either a rule raises it on its own, or
    the safety-net rule named here lists it (never both, so an alarm is not doubled).
    """

    safety_net: RuleId
    symptoms: dict[str, VocabularyItem]
    context: dict[str, VocabularyItem]

    def classes(self) -> dict[tuple[str, str], ItemClass]:
        """(fact type, name) → class, for symptoms and context items."""
        out: dict[tuple[str, str], ItemClass] = {}
        for fact, table in (("symptom", self.symptoms), ("context", self.context)):
            for name, item in table.items():
                out[(fact, name)] = item.item_class
        return out


# -- the loaded rule set ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A validated rule with its parsed condition."""

    spec: RuleSpec
    file: str
    condition: Condition
    escalations: tuple[tuple[Severity, Condition], ...]

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class RuleSet:
    """Every validated rule, threshold and exercise; built only when the data has no problem."""

    version: str
    digest: str
    disclaimer: str
    thresholds: Mapping[str, ThresholdSpec]
    plan: PlanPolicy
    rules: tuple[Rule, ...]
    exercises: Mapping[str, ExerciseSpec]
    properties: Mapping[str, str]
    dose_defaults: Mapping[ExerciseKind, DoseSpec]
    files: tuple[str, ...] = field(default=())
    referral_policy: Mapping[str, ReferralPolicy] = field(default_factory=dict)
    vocabulary: VocabularyFile | None = None

    @property
    def label(self) -> str:
        """Version plus the first 12 hex digits of the content digest, e.g. ``1.0.0+3fa2…``."""
        return f"{self.version}+{self.digest[:12]}"


# -- loading ---------------------------------------------------------------------------------------


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader when PyYAML was built with it (about four times faster), else PyYAML's."""


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A YAML loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _check_events(raw: bytes) -> None:
    """Refuse anchors and aliases, and collections nested more than ``MAX_YAML_DEPTH`` deep.

    Runs on the parser's event stream, before anything is composed: a 526-byte file of nested
    aliases expands to billions of nodes ("billion laughs"), and composing recurses per level.

    Raises:
        yaml.YAMLError: naming the line and column.
    """
    depth = 0
    for event in yaml.parse(raw, Loader=_SafeLoader):
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "YAML anchors and aliases (&name, *name) are not allowed", mark
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"collections nested more than {MAX_YAML_DEPTH} levels deep", mark
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Collector:
    def __init__(self) -> None:
        self.problems: list[RuleProblem] = []

    def add(self, file: str, item: str, fld: str, message: str) -> None:
        self.problems.append(RuleProblem(file, item, fld, message))

    def pydantic(
        self,
        file: str,
        error: ValidationError,
        items: list[Any] | None = None,
        model: type[BaseModel] | None = None,
        item: str = "",
    ) -> None:
        for err in error.errors(include_url=False):
            loc = list(err["loc"])
            where = item
            if items is not None and len(loc) >= 2 and isinstance(loc[1], int):
                raw = items[loc[1]] if loc[1] < len(items) else None
                where = str(raw.get("id", f"#{loc[1]}")) if isinstance(raw, dict) else f"#{loc[1]}"
                loc = loc[2:]
            fld = ".".join(str(part) for part in loc)
            value = err.get("input")
            if err["type"] == "extra_forbidden":
                allowed = _allowed_keys(model, loc[:-1]) if model else []
                key = str(loc[-1])
                hint = suggest(key, allowed) if allowed else ""
                listing = f" (allowed: {', '.join(allowed)})" if allowed else ""
                self.add(file, where, fld, f"unknown key {key!r}{hint}{listing}")
                continue
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            self.add(file, where, fld, f"{err['msg']}{shown}")


def _allowed_keys(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """The field names of the (nested) model found by walking ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        for c in candidates:  # list[X] / X | None
            for inner in getattr(c, "__args__", ()):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    current = inner
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _read_yaml(path: Path, root: Path, out: _Collector, budget: list[int]) -> tuple[Any, bytes]:
    """One YAML file, within ``MAX_RULE_FILE_BYTES`` and what is left of ``budget[0]`` bytes.

    A rule file must be a regular file: a FIFO, a device or a socket is refused by its type
    before any byte is read (opened without blocking, so a FIFO cannot hang the load), and the
    sizes are checked with ``fstat`` first: the file that is too large is the one named.
    """
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        out.add(name, "", "", f"cannot read file: {error.strerror or error}")
        return None, b""
    with open(fd, "rb") as file:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or special file"
            if stat.S_ISDIR(st.st_mode):
                kind = "a folder"
            out.add(name, "", "", f"not a regular file ({kind}); rule files must be plain files")
            return None, b""
        if st.st_size > MAX_RULE_FILE_BYTES:
            out.add(
                name,
                "",
                "",
                f"the file is {st.st_size:,} bytes, larger than {MAX_RULE_FILE_BYTES:,} "
                "bytes (the limit); it was not read",
            )
            return None, b""
        if st.st_size > budget[0]:
            total = MAX_RULE_DATA_BYTES - budget[0] + st.st_size
            out.add(
                name,
                "",
                "",
                f"with this file ({st.st_size:,} bytes) the rule files together are {total:,} "
                f"bytes, larger than {MAX_RULE_DATA_BYTES:,} bytes (the limit); it was not read",
            )
            return None, b""
        limit = min(MAX_RULE_FILE_BYTES, budget[0])
        try:
            raw = file.read(limit + 1)
        except OSError as error:
            out.add(name, "", "", f"cannot read file: {error.strerror or error}")
            return None, b""
    if len(raw) > limit:  # it grew while being read
        out.add(name, "", "", f"the file grew past {limit:,} bytes while it was read")
        return None, b""
    budget[0] -= len(raw)
    try:
        _check_events(raw)
        return yaml.load(raw, Loader=_UniqueKeyLoader), raw
    except yaml.YAMLError as error:
        out.add(name, "", "", f"not valid YAML: {error}".replace("\n", " "))
    except (ValueError, OverflowError, RecursionError) as error:  # e.g. an integer of 5,000 digits
        out.add(name, "", "", f"not valid YAML: {type(error).__name__}: {error}")
    return None, raw


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
    out = _Collector()
    digest = hashlib.sha256()
    budget = [MAX_RULE_DATA_BYTES]

    def read(path: Path) -> Any:
        data, raw = _read_yaml(path, base, out, budget)
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
    from hipscreen._rulebounds import (  # it imports this module's condition types
        check_condition,
        check_rule_set,
        check_thresholds,
    )

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
        _check_catalog(catalog, out)
    if meta and catalog:
        _check_plan(meta.plan, exercises, out)

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
            _check_safety(file, spec, escalations, exercises, catalog, meta, out)
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
    _check_cycles(rules, out)
    vocabulary = _load_vocabulary(base, read, out)
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
        _check_referrals(rules, meta, catalog, out)
    if vocabulary is not None and not out.problems:
        # Only on otherwise valid data: a rule that failed to load would make every alarm it
        # raises look uncovered.
        _check_vocabulary(vocabulary, rules, out)

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
    from hipscreen._instruments.loader import builtin_instruments  # it reads rule files

    return {
        instrument: tuple(band.name for band in definition.bands)
        for instrument, definition in builtin_instruments().items()
    }


def _parse_condition(
    raw: Any, where: str, file: str, rule_id: str, context: ConditionContext, out: _Collector
) -> Condition | None:
    """A rule's condition through the condition models (`hipscreen._conditions`), or None with
    every problem reported."""
    condition, problems = parse_condition(raw, where, context)
    for path, message in problems:
        out.add(file, rule_id, path, message)
    return condition


def _merge_catalogs(
    catalog: CatalogFile, more: CatalogFile, name: str, out: _Collector
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
    meta: RulesetFile, overrides: Mapping[str, float], out: _Collector
) -> RulesetFile:
    from hipscreen._rulebounds import number_problem  # it imports this module

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


def _check_safety(
    file: str,
    spec: RuleSpec,
    escalations: tuple[tuple[Severity, Condition | None], ...],
    exercises: Mapping[str, ExerciseSpec],
    catalog: CatalogFile,
    meta: RulesetFile | None,
    out: _Collector,
) -> None:
    """Withhold, swap and recommends must name real things, and critical rules stay safe."""
    withhold = spec.withhold or WithholdSpec()
    for i, prop in enumerate(withhold.properties):
        if prop not in catalog.properties:
            hint = suggest(prop, catalog.properties)
            out.add(
                file,
                spec.id,
                f"withhold.properties.{i}",
                f"unknown exercise property {prop!r}{hint}",
            )
    for i, exercise_id in enumerate(withhold.exercises):
        if exercise_id not in exercises:
            hint = suggest(exercise_id, exercises)
            out.add(
                file, spec.id, f"withhold.exercises.{i}", f"unknown exercise {exercise_id!r}{hint}"
            )
    for old, new in spec.swap.items():
        for fld, exercise_id in ((f"swap.{old}", old), (f"swap.{old}", new)):
            if exercise_id not in exercises:
                hint = suggest(exercise_id, exercises)
                out.add(file, spec.id, fld, f"unknown exercise {exercise_id!r}{hint}")
        replacement = exercises.get(new)
        if replacement is not None and _withheld_by(replacement, withhold):
            out.add(
                file, spec.id, f"swap.{old}", f"replacement {new!r} is withheld by this same rule"
            )
    critical = Severity.CRITICAL in (spec.severity, *(s for s, _ in escalations))
    if critical and meta is not None:
        # The safety contract: a red flag never comes with strengthening, stretching or loaded work.
        banned = {ExerciseKind.STRENGTH, ExerciseKind.STRETCH, ExerciseKind.BALANCE}
        for i, exercise_id in enumerate(spec.recommends):
            ex = exercises.get(exercise_id)
            if ex is not None and (ex.kind in banned or "loaded" in ex.properties):
                out.add(
                    file,
                    spec.id,
                    f"recommends.{i}",
                    f"a rule that can be critical may not recommend {exercise_id!r} "
                    f"({ex.kind.value}{', loaded' if 'loaded' in ex.properties else ''}): "
                    "red flags never come with strengthening, stretching or loaded work",
                )


def _withheld_by(ex: ExerciseSpec, withhold: WithholdSpec) -> bool:
    return (
        ex.kind in withhold.kinds
        or ex.id in withhold.exercises
        or any(prop in withhold.properties for prop in ex.properties)
    )


def _check_catalog(catalog: CatalogFile, out: _Collector) -> None:
    ids: set[str] = set()
    by_id = {ex.id: ex for ex in catalog.exercises}
    for ex in catalog.exercises:
        if ex.id in ids:
            out.add("exercises.yaml", ex.id, "id", "duplicate exercise id")
        ids.add(ex.id)
        if ex.regression is not None:
            easier = by_id.get(ex.regression)
            if easier is None:
                hint = suggest(ex.regression, by_id)
                out.add(
                    "exercises.yaml",
                    ex.id,
                    "regression",
                    f"unknown exercise {ex.regression!r}{hint}",
                )
            elif easier.level >= ex.level:
                out.add(
                    "exercises.yaml",
                    ex.id,
                    "regression",
                    f"regression {easier.id!r} must have a lower level than {ex.level} "
                    f"(it has {easier.level})",
                )
        for i, alt_id in enumerate(ex.alternatives):
            alt = by_id.get(alt_id)
            where = f"alternatives.{i}"
            if alt is None:
                hint = suggest(alt_id, by_id)
                out.add("exercises.yaml", ex.id, where, f"unknown exercise {alt_id!r}{hint}")
            elif alt.id == ex.id:
                out.add("exercises.yaml", ex.id, where, "an exercise is not its own alternative")
            elif alt.kind != ex.kind or (
                Movement.BOTH not in (alt.movement, ex.movement) and alt.movement != ex.movement
            ):
                out.add(
                    "exercises.yaml",
                    ex.id,
                    where,
                    f"alternative {alt.id!r} ({alt.kind.value}, {alt.movement.value}) must train "
                    f"the same thing ({ex.kind.value}, {ex.movement.value})",
                )
        for i, prop in enumerate(ex.properties):
            if prop not in catalog.properties:
                hint = suggest(prop, catalog.properties)
                out.add(
                    "exercises.yaml",
                    ex.id,
                    f"properties.{i}",
                    f"unknown property {prop!r}{hint} (declare it under properties:)",
                )
        dose = catalog.defaults.get(ex.kind)
        if ex.dose is None and dose is None:
            out.add(
                "exercises.yaml",
                ex.id,
                "dose",
                f"no dose and no default dose for kind {ex.kind.value!r}",
            )
        elif not ((ex.dose and ex.dose.days_per_week) or (dose and dose.days_per_week)):
            out.add("exercises.yaml", ex.id, "dose.days_per_week", "a dose needs days_per_week")


def _check_plan(plan: PlanPolicy, exercises: Mapping[str, ExerciseSpec], out: _Collector) -> None:
    wanted = {
        "plan.warm_up": (plan.warm_up, ExerciseKind.WARM_UP, None),
        "plan.balance.flexion": (plan.balance.flexion, ExerciseKind.STRENGTH, Movement.FLEXION),
        "plan.balance.extension": (
            plan.balance.extension,
            ExerciseKind.STRENGTH,
            Movement.EXTENSION,
        ),
    }
    for fld, (exercise_id, kind, movement) in wanted.items():
        ex = exercises.get(exercise_id)
        if ex is None:
            out.add(
                "ruleset.yaml",
                "",
                fld,
                f"unknown exercise {exercise_id!r}{suggest(exercise_id, exercises)}",
            )
        elif ex.kind != kind or (movement is not None and ex.movement != movement):
            out.add(
                "ruleset.yaml",
                "",
                fld,
                f"{exercise_id!r} must be a {kind.value} exercise"
                + (f" for {movement.value}" if movement else ""),
            )
    missing = sorted(set(range(6)) - set(plan.levels.by_grade))
    if missing:
        out.add(
            "ruleset.yaml", "", "plan.levels.by_grade", f"no level for strength grades {missing}"
        )


def _check_cycles(rules: list[Rule], out: _Collector) -> None:
    graph = {rule.id: set(finding_refs(rule.condition)) for rule in rules}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for ref in sorted(graph.get(node, ())):
            if state.get(ref) == 1:
                cycle = " → ".join([*path[path.index(ref) :], ref]) if ref in path else ref
                rule = next(r for r in rules if r.id == node)
                out.add(rule.file, node, "when", f"findings chain in a cycle: {cycle}")
            elif ref not in state:
                visit(ref, [*path, ref])
        state[node] = 2

    for rule in rules:
        if rule.id not in state:
            visit(rule.id, [rule.id])


# -- the safety net: referral policy and vocabulary classification ---------------------------------


def _check_referrals(
    rules: Sequence[Rule], meta: RulesetFile, catalog: CatalogFile | None, out: _Collector
) -> None:
    """Every referral names a policy kind, and its urgency and wording agree with that kind."""
    policy = meta.referral_policy
    same_day = _words_pattern(meta.same_day_wording)
    if catalog is not None:
        for kind, kind_policy in policy.items():
            for i, prop in enumerate(kind_policy.withhold.properties):
                if prop not in catalog.properties:
                    hint = suggest(prop, catalog.properties)
                    out.add(
                        "ruleset.yaml",
                        kind,
                        f"referral_policy.{kind}.withhold.properties.{i}",
                        f"unknown exercise property {prop!r}{hint}",
                    )
    for rule in rules:
        referral = rule.spec.referral
        if referral is None:
            continue
        if referral.kind is None:
            if policy:
                out.add(
                    rule.file,
                    rule.id,
                    "referral.kind",
                    f"a referral needs a kind (one of: {', '.join(policy)})",
                )
            continue
        entry = policy.get(referral.kind)
        if entry is None:
            hint = suggest(referral.kind, policy)
            out.add(
                rule.file,
                rule.id,
                "referral.kind",
                f"unknown referral kind {referral.kind!r}{hint} "
                f"(allowed: {', '.join(policy) or 'none: ruleset.yaml has no referral_policy'})",
            )
            continue
        if referral.urgency != entry.urgency:
            out.add(
                rule.file,
                rule.id,
                "referral.urgency",
                f"kind {referral.kind!r} is {entry.urgency.value} in the referral policy "
                f"(got {referral.urgency.value!r})",
            )
        text = f"{referral.see} {referral.message}".lower()
        if not any(phrase.lower() in text for phrase in entry.wording):
            out.add(
                rule.file,
                rule.id,
                "referral.message",
                f"a {referral.kind!r} referral must say one of: "
                + ", ".join(repr(w) for w in entry.wording),
            )
        if same_day is not None and referral.urgency != Urgency.EMERGENCY:
            match = same_day.search(text)
            if match:
                out.add(
                    rule.file,
                    rule.id,
                    "referral.message",
                    f"{match.group(0)!r} promises same-day action, so the urgency must be "
                    f"emergency (got {referral.urgency.value!r})",
                )


def _words_pattern(words: Sequence[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives_ = "|".join(re.escape(w.lower()) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z]){'(?:' + alternatives_ + ')'}(?![a-z])")


def _load_vocabulary(base: Path, read: Any, out: _Collector) -> VocabularyFile | None:
    """``vocabulary.yaml`` of the base rules, validated; None when the directory has none."""
    path = base / "vocabulary.yaml"
    if not path.is_file():
        return None
    raw = read(path)
    if raw is None:
        return None
    try:
        vocabulary = VocabularyFile.model_validate(raw)
    except ValidationError as error:
        out.pydantic("vocabulary.yaml", error, model=VocabularyFile)
        return None
    for fld, table, enum in (
        ("symptoms", vocabulary.symptoms, Symptom),
        ("context", vocabulary.context, ContextItem),
    ):
        allowed = [member.value for member in enum]
        for name in table:
            if name not in allowed:
                out.add(
                    "vocabulary.yaml",
                    name,
                    fld,
                    f"unknown {fld} item {name!r}{suggest(name, allowed)}",
                )
        for name in allowed:
            if name not in table:
                out.add(
                    "vocabulary.yaml",
                    name,
                    fld,
                    "not classified: give it a class (alarm, risk_factor or ordinary) and a reason",
                )
    return vocabulary


def _atom_names(atom: Atom) -> tuple[str, ...]:
    names = tuple(v for k, v in atom.equals if k == "name")
    return names + (atom.one_of[1] if atom.one_of is not None else ())


def _unbounded(atom: Atom) -> bool:
    return all(b is None for b in (atom.at_least, atom.at_most, atom.below, atom.above))


def lone_raisers(rules: Sequence[Rule]) -> dict[tuple[str, str], list[str]]:
    """(fact type, name) → ids of the rules of severity warning or above that the item raises
    on its own (plus only what it implies: a pregnancy-only symptom implies pregnancy)."""
    implied = {(ContextItem.PREGNANCY.value,)}
    raisers: dict[tuple[str, str], list[str]] = {}
    for rule in rules:
        if rule.spec.severity.rank < Severity.WARNING.rank:
            continue
        for alt in alternatives(rule.condition):
            main = [a for a in alt if not (a.fact == "context" and _atom_names(a) in implied)]
            if len(main) != 1 or main[0].fact not in ("symptom", "context"):
                continue
            atom = main[0]
            if not _unbounded(atom):
                continue
            for name in _atom_names(atom):
                if len(alt) > 1 and not (
                    atom.fact == "symptom" and name in tables().pregnancy_only_symptoms
                ):
                    continue  # only pregnancy-only symptoms imply pregnancy
                ids = raisers.setdefault((atom.fact, name), [])
                if rule.id not in ids:
                    ids.append(rule.id)
    return raisers


def _check_vocabulary(vocabulary: VocabularyFile, rules: Sequence[Rule], out: _Collector) -> None:
    """The safety net is complete: every alarm item alone raises a warning, exactly once."""
    classes = vocabulary.classes()
    net = next((rule for rule in rules if rule.id == vocabulary.safety_net), None)
    if net is None:
        ids = [rule.id for rule in rules]
        out.add(
            "vocabulary.yaml",
            "",
            "safety_net",
            f"unknown rule {vocabulary.safety_net!r}{suggest(vocabulary.safety_net, ids)}",
        )
        return
    listed: set[tuple[str, str]] = set()
    for alt in alternatives(net.condition):
        for atom in alt:
            names = _atom_names(atom)
            if len(alt) != 1 or atom.fact not in ("symptom", "context") or not _unbounded(atom):
                out.add(
                    net.file,
                    net.id,
                    "when",
                    "the safety net is an any_of of plain symptom and context names",
                )
                continue
            for name in names:
                if classes.get((atom.fact, name)) != "alarm":
                    out.add(
                        net.file,
                        net.id,
                        "when",
                        f"{atom.fact} {name!r} is not classed alarm in vocabulary.yaml",
                    )
                listed.add((atom.fact, name))
    if net.spec.severity.rank < Severity.WARNING.rank:
        out.add(net.file, net.id, "severity", "the safety net must be at least a warning")
    raisers = lone_raisers([rule for rule in rules if rule.id != net.id])
    for (fact, name), item_class in sorted(classes.items()):
        if item_class != "alarm":
            continue
        others = raisers.get((fact, name), [])
        if (fact, name) in listed and others:
            out.add(
                net.file,
                net.id,
                "when",
                f"alarm {fact} {name!r} is raised on its own by {', '.join(others)}: "
                "leave it out of the safety net (one alarm, not two)",
            )
        elif (fact, name) not in listed and not others:
            out.add(
                "vocabulary.yaml",
                name,
                "class",
                f"alarm {fact} {name!r} alone would raise nothing: list it in the safety net "
                f"({net.id}) or give it a rule of its own",
            )
