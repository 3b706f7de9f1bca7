"""Clinical tables as data: ``rules/tables.yaml``, checked at load and read once.

The fixed look-ups the form-to-facts step, the rule checks and the "not assessed" list read —
which group a muscle belongs to, which length tests decide a muscle's tightness, which side of a
left/right difference is of concern, which symptoms only occur in pregnancy, and the not-assessed
wording — live in ``rules/tables.yaml``. Like ``rules/equivalences.yaml`` they are always the
built-in ones (a custom rule directory does not replace them) and the rule-set digest names them.

The file models are pydantic models over the closed vocabularies, so a wrong name is refused
with the allowed ones; every problem is reported at once, with the file and the field.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from hipscreen._errors import RuleDataError, RuleProblem
from hipscreen._limits import MAX_RULE_FILE_BYTES
from hipscreen._rules.builtin import builtin_rules_dir
from hipscreen._vocabulary import (
    Measure,
    Muscle,
    MuscleGroup,
    RomMotion,
    SignName,
    Symptom,
    TestName,
)

TABLES_FILE = "tables.yaml"

_Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: _Text = Field(description="Where the clinical reading comes from.")


class MuscleGroups(_Table):
    """Which muscle group each muscle (or whole group) belongs to."""

    entries: dict[Muscle, MuscleGroup]


class LengthTests(_Table):
    """Which measured length tests decide a muscle's tightness."""

    entries: dict[Muscle, Annotated[list[TestName], Field(min_length=1, max_length=8)]]


class ConcernIsLow(_Table):
    """For a left/right difference: ``true`` when the lower value is the side of concern."""

    entries: dict[Measure | RomMotion | TestName, bool]


class PregnancyOnlySymptoms(_Table):
    """Symptoms that only occur in pregnancy: one reported implies pregnancy when not given."""

    entries: Annotated[list[Symptom], Field(max_length=64)]


class LengthTestWording(BaseModel):
    """A not-assessed line listed when none of these length tests (or signs) was measured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tests: Annotated[list[TestName | SignName], Field(min_length=1, max_length=8)]
    text: _Text


class NotAssessedWording(_Table):
    """The wording of ``Assessment.not_assessed``, in the order it is listed."""

    not_graded: Annotated[_Text, StringConstraints(pattern=r"\{measure\}.*\{group\}")]
    not_measured: Annotated[_Text, StringConstraints(pattern=r"\{motion\}")]
    length_tests: Annotated[list[LengthTestWording], Field(min_length=1, max_length=8)]
    safety_questions: Annotated[dict[str, _Text], Field(max_length=64)]
    red_flag_questions: _Text


class TablesFile(BaseModel):
    """``rules/tables.yaml``: the clinical tables, each with its source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    muscle_groups: MuscleGroups
    length_tests: LengthTests
    concern_is_low: ConcernIsLow
    pregnancy_only_symptoms: PregnancyOnlySymptoms
    not_assessed: NotAssessedWording


class ClinicalTables:
    """The loaded tables, in the shapes the code reads (built once per process)."""

    def __init__(self, data: TablesFile) -> None:
        self.data = data
        self.group_of: dict[Muscle, MuscleGroup] = dict(data.muscle_groups.entries)
        self.length_tests: dict[Muscle, frozenset[str]] = {
            muscle: frozenset(t.value for t in tests)
            for muscle, tests in data.length_tests.entries.items()
        }
        self.concern_is_low: dict[str, bool] = {
            name.value: low for name, low in data.concern_is_low.entries.items()
        }
        self.pregnancy_only_symptoms = frozenset(data.pregnancy_only_symptoms.entries)
        self.not_assessed = data.not_assessed


def _problems(name: str, error: ValidationError) -> list[RuleProblem]:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        # An enum's message names the allowed values ("Input should be 'a' or 'b'").
        got = "" if item["type"] == "missing" else f"; got {str(item['input'])[:100]!r}"
        problems.append(RuleProblem(name, "", where, item["msg"] + got))
    return problems


def _check(data: TablesFile, name: str) -> list[RuleProblem]:
    """What the models alone cannot say: every muscle has a group, and every grade measure,
    motion and length test a side of concern."""
    problems = []
    missing = [m.value for m in Muscle if m not in data.muscle_groups.entries]
    if missing:
        problems.append(
            RuleProblem(name, "", "muscle_groups.entries", f"no group for {', '.join(missing)}")
        )
    needed = [*Measure, *RomMotion, *(t for ts in data.length_tests.entries.values() for t in ts)]
    missing = sorted({n.value for n in needed if n not in data.concern_is_low.entries})
    if missing:
        problems.append(
            RuleProblem(
                name, "", "concern_is_low.entries", f"no side of concern for {', '.join(missing)}"
            )
        )
    return problems


def load_tables(path: Path | None = None) -> ClinicalTables:
    """Read and check ``rules/tables.yaml`` (or ``path``); every problem at once.

    Raises:
        RuleDataError: naming the file, the field, the value and what is allowed.
    """
    where = path or builtin_rules_dir() / TABLES_FILE
    name = where.name if path is None else str(where)
    raw = where.read_bytes()
    if len(raw) > MAX_RULE_FILE_BYTES:
        message = f"the file is {len(raw):,} bytes, larger than {MAX_RULE_FILE_BYTES:,} bytes"
        raise RuleDataError([RuleProblem(name, "", "", message)])
    try:
        loaded: Any = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise RuleDataError([RuleProblem(name, "", "", f"not valid YAML: {error}")]) from None
    try:
        data = TablesFile.model_validate(loaded)
    except ValidationError as error:
        raise RuleDataError(_problems(name, error)) from None
    problems = _check(data, name)
    if problems:
        raise RuleDataError(problems)
    return ClinicalTables(data)


@cache
def tables() -> ClinicalTables:
    """The built-in clinical tables, loaded once per process."""
    return load_tables()
