"""The condition grammar: what a rule's ``when`` may say, as typed models.

A condition is a mapping with exactly one key: ``all_of`` / ``any_of`` (a non-empty list of
conditions) or one atom kind (``grade``, ``symptom``, …). Each atom kind is one frozen pydantic
model (extra keys forbidden) with a single field named after the kind, and `ConditionModel` is
the tagged union of them (the tag is the mapping's one key). `parse_condition` validates a rule
file's ``when`` through that union and converts it to the values the engine door, the bounds
checks, the safety net and the explanation evaluator work on: `Atom`, `AllOf`, `AnyOf`.

Names from closed vocabularies (muscles, symptoms, …) are the `hipscreen._vocabulary` enums, so
the JSON Schema lists them. Names that depend on the loaded rule data (threshold names, rule ids
for ``finding``, instrument ids and bands) are checked against a `ConditionContext` passed as
pydantic's validation context: the models stay importable and schema-able without rule data,
and one validation reports every problem of a condition at once. Every validator raises its own
finished message (`_fail`); `parse_condition` turns the few structural pydantic errors (unknown
key, not a mapping, missing key, unknown condition key) into messages of the same kind, naming
the path (``when.all_of.1.grade.muscle``), the value, what is allowed and the closest name.

How to add an atom kind (one model, one fact encoder):

1. Write ``class FooCondition(_AtomCondition)`` with one field ``foo`` (a ``FooAtom(_Spec)``
   model for a mapping, or ``_names(SomeEnum, "noun")`` for "a name or a list of names") and
   ``def atom(self, thresholds) -> Atom`` returning the engine's test (``_Spec.bounds`` turns
   ``at_least`` … into numbers and words). Optional keys default to ``None`` (absent; an explicit
   null is refused). A check that needs another field goes in a ``field_validator`` reading
   ``info.data``, one across fields in a ``model_validator(mode="after")``; every message
   through `_fail`.
2. Add it to `ATOM_KINDS` (the order of the "allowed:" list) and its fact type to `FactType`.
   Porting a ``_ConditionParser._atom_foo`` from an older branch: its ``_KEYS["foo"]`` are the
   ``FooAtom`` fields (``_name``/``_names`` for each ``self._name``/``self._names``, `Bound` for
   each bound, ``StrictBoolean`` for true/false), ``needs_bound = True`` where it called
   ``self._bounds(spec, where, unit)`` without ``optional=True``, each ``self.problem`` becomes a
   ``raise _fail(...)`` with the same text, and its ``return Atom(...)`` becomes ``atom()``.
3. Make the facts it matches: the fact encoder in ``hipscreen/_engine.py`` (``FACT_KEYS``) and
   where the form's facts are made (``hipscreen/_screen.py``), plus ``hipscreen/_explain.py``.
4. Add its row to the condition table in ``docs/writing-rules.md`` and regenerate the schemas:
   ``hipscreen rules schema --write docs/schema/rules``.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StrictFloat,
    StrictInt,
    Tag,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    conlist,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hipscreen._vocabulary import (
    Activity,
    AsymmetryMeasure,
    ContextItem,
    Measure,
    Muscle,
    MuscleGroup,
    RomMethod,
    RomMotion,
    Side,
    SignName,
    Symptom,
    TestName,
    suggest,
)

RULE_ID = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
THRESHOLD_NAME = r"^[a-z][a-z0-9_]*$"

# -- the values the engine works on ----------------------------------------------------------------

FactType = Literal[
    "grade",
    "rom",
    "symptom",
    "activity",
    "finding",
    "age",
    "test",
    "sign",
    "context",
    "asym",
    "unmeasured",
    "score",
]


@dataclass(frozen=True)
class Atom:
    """One test against one fact: the unit the engine matches."""

    fact: FactType
    equals: tuple[tuple[str, str], ...] = ()  # (attribute, value) equality tests
    one_of: tuple[str, tuple[str, ...]] | None = None  # attribute in values
    at_least: float | None = None
    at_most: float | None = None
    below: float | None = None
    above: float | None = None
    describe: str | None = None  # the test in words, for the evidence ("≥ 2 (tight_grade)")


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


Condition = Atom | AllOf | AnyOf


def alternatives(condition: Condition) -> list[tuple[Atom, ...]]:
    """The condition in disjunctive normal form: each alternative is a conjunction of atoms."""
    if isinstance(condition, Atom):
        return [(condition,)]
    if isinstance(condition, AnyOf):
        return [alt for item in condition.items for alt in alternatives(item)]
    product = itertools.product(*(alternatives(item) for item in condition.items))
    return [tuple(atom for part in combo for atom in part) for combo in product]


def finding_refs(condition: Condition) -> Iterator[str]:
    """Every finding id the condition chains on."""
    for alt in alternatives(condition):
        for atom in alt:
            if atom.fact == "finding":
                yield dict(atom.equals)["id"]


# -- what validation checks names against ----------------------------------------------------------


class _Threshold(Protocol):
    @property
    def value(self) -> float: ...


@dataclass(frozen=True)
class ConditionContext:
    """The loaded rule data names are checked against; ``None``: that kind is not checked."""

    thresholds: Mapping[str, _Threshold] | None = None
    rule_ids: Collection[str] | None = None
    instruments: Mapping[str, tuple[str, ...]] | None = None  # instrument id → its band names


_NO_CONTEXT = ConditionContext()
_SILENT = "hipscreen_silent"  # a problem already reported elsewhere (a broken threshold)


def _context(info: ValidationInfo) -> ConditionContext:
    return info.context if isinstance(info.context, ConditionContext) else _NO_CONTEXT


def _fail(message: str) -> PydanticCustomError:
    """A finished problem message (the path is added from the error's location)."""
    return PydanticCustomError("hipscreen", "{message}", {"message": message})


def _allowed(values: Collection[str]) -> str:
    return f" (allowed: {', '.join(values) or 'none'})"


def _unknown(noun: str, value: Any, allowed: Collection[str]) -> PydanticCustomError:
    hint = suggest(value, allowed) if isinstance(value, str) else ""
    return _fail(f"unknown {noun} {value!r}{hint}{_allowed(allowed)}")


# -- field types -----------------------------------------------------------------------------------


def _name(enum: type[Enum], noun: str) -> Any:
    """One name of a closed vocabulary (the schema lists them)."""
    allowed = [str(member.value) for member in enum]

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in allowed:
            return value
        raise _unknown(noun, value, allowed)

    return Annotated[enum, BeforeValidator(check)]


def _names(enum: type[Enum], noun: str) -> Any:
    """One name or a non-empty list of names (a single name is read as a list of one)."""

    def as_list(value: Any) -> Any:
        if value == []:
            raise _fail(f"needs at least one {noun}")
        return value if isinstance(value, list) else [value]

    one = _name(enum, noun)
    shown = Union[enum, conlist(enum, min_length=1)]  # type: ignore[valid-type]  # noqa: UP007
    return Annotated[list[one], BeforeValidator(as_list, json_schema_input_type=shown)]  # type: ignore[valid-type]


def _bool(value: Any) -> Any:
    if value is True or value is False:
        return value
    raise _fail(f"needs true or false (got {value!r})")


if TYPE_CHECKING:  # what the fields hold; absent keys are None (an explicit null is refused)
    StrictBoolean = bool | None
else:
    StrictBoolean = Annotated[bool, BeforeValidator(_bool)]


def _check_bound(value: Any, info: ValidationInfo) -> Any:
    from hipscreen._rulebounds import number_problem  # it imports the rule data, which imports us

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(f"needs a number or a threshold name (got {value!r})")
    if not isinstance(value, str):
        problem = number_problem(value)
        if problem is not None:
            raise _fail(problem)
        return value
    thresholds = _context(info).thresholds
    if thresholds is None:  # ruleset.yaml unreadable: names cannot be checked
        return value
    spec = thresholds.get(value)
    if spec is None:
        hint = suggest(value, thresholds)
        raise _fail(f"unknown threshold {value!r}{hint} (defined in ruleset.yaml)")
    if number_problem(spec.value) is not None:
        raise PydanticCustomError(_SILENT, "reported with the threshold")
    return value


ThresholdName = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "pattern": THRESHOLD_NAME, "description": "a threshold name"}
    ),
]
if TYPE_CHECKING:
    Bound = int | float | str | None
else:
    Bound = Annotated[Union[StrictInt, StrictFloat, ThresholdName], BeforeValidator(_check_bound)]  # noqa: UP007
"""A number, or the name of a threshold in ``ruleset.yaml``."""

BOUND_KEYS = (("at_least", "≥"), ("at_most", "≤"), ("below", "<"), ("above", ">"))


# -- the atom kinds --------------------------------------------------------------------------------


def _schema_extra(schema: dict[str, Any], cls: type[Any]) -> None:
    """In the schema too: at least one of the keys `_Spec.required_any` names."""
    required = cls.required_any()
    if required:
        schema["anyOf"] = [{"required": [key]} for key in required]


class _Spec(BaseModel):
    """The mapping an atom kind takes (``grade: {measure: …, at_least: …}``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, defer_build=True, json_schema_extra=_schema_extra
    )
    needs_bound: ClassVar[bool] = False

    @classmethod
    def bound_keys(cls) -> list[str]:
        return [key for key, _ in BOUND_KEYS if key in cls.model_fields]

    @classmethod
    def required_any(cls) -> list[str]:
        """Keys of which at least one must be given (for the schema)."""
        return cls.bound_keys() if cls.needs_bound else []

    def given_bounds(self) -> list[str]:
        return [key for key in self.bound_keys() if getattr(self, key) is not None]

    @model_validator(mode="after")
    def _needs_a_bound(self) -> _Spec:
        if self.needs_bound and not self.given_bounds():
            raise _fail(f"needs at least one of {', '.join(self.bound_keys())}")
        return self

    def bounds(self, thresholds: Mapping[str, _Threshold] | None, unit: str) -> dict[str, Any]:
        """The bounds as numbers, and ``describe``: them in words ("≥ 2 (tight_grade)")."""
        out: dict[str, Any] = {}
        words = []
        for key, symbol in BOUND_KEYS:
            value = getattr(self, key, None)
            if value is None:
                continue
            if isinstance(value, str):
                spec = thresholds.get(value) if thresholds is not None else None
                number = spec.value if spec is not None else 0
                text = f"{number:g}{unit} ({value})" if spec is not None else f"{value}{unit}"
            else:
                number, text = value, f"{value:g}{unit}"
            out[key] = number
            words.append(f"{symbol} {text}")
        out["describe"] = ", ".join(words)
        return out


class _AtomCondition(BaseModel):
    """A condition that is one atom: a mapping whose one key is ``kind``."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    kind: ClassVar[str]
    spec: ClassVar[type[_Spec] | None] = None  # the mapping it takes, if it takes one

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        raise NotImplementedError


class GradeAtom(_Spec):
    needs_bound = True
    measure: _name(Measure, "measure")  # type: ignore[valid-type]
    muscle: _name(Muscle, "muscle") = None  # type: ignore[valid-type]
    group: _name(MuscleGroup, "group") = None  # type: ignore[valid-type]
    side: _name(Side, "side") = None  # type: ignore[valid-type]
    at_least: Bound = None
    at_most: Bound = None
    length_tested: StrictBoolean = Field(
        default=None,
        description="Measured outranks self-report: true/false requires that a length test of "
        "that muscle was / was not measured on that side (measure: tightness only).",
    )

    @field_validator("length_tested")
    @classmethod
    def _tightness_only(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value is not None and info.data.get("measure") not in (None, Measure.TIGHTNESS):
            raise _fail("only applies to measure: tightness")
        return value

    @model_validator(mode="after")
    def _muscle_or_group(self) -> GradeAtom:
        if self.muscle is not None and self.group is not None:
            raise _fail("give either muscle or group, not both")
        return self


class GradeCondition(_AtomCondition):
    kind, spec = "grade", GradeAtom
    grade: GradeAtom

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        g = self.grade
        equals = [("measure", str(g.measure.value))]
        if g.muscle is not None:
            equals.append(("muscle", str(g.muscle.value)))
        elif g.group is not None:
            equals.append(("group", str(g.group.value)))
        if g.side is not None:
            equals.append(("side", str(g.side.value)))
        bounds = g.bounds(thresholds, "")
        if g.length_tested is not None:
            equals.append(("length_tested", "yes" if g.length_tested else "no"))
            bounds["describe"] += ", length also measured" if g.length_tested else ""
        return Atom("grade", tuple(equals), **bounds)


class RomAtom(_Spec):
    needs_bound = True
    motion: _name(RomMotion, "motion")  # type: ignore[valid-type]
    method: _names(RomMethod, "method") = None  # type: ignore[valid-type]
    side: _name(Side, "side") = None  # type: ignore[valid-type]
    below: Bound = None
    at_least: Bound = None


class RomCondition(_AtomCondition):
    kind, spec = "rom", RomAtom
    rom: RomAtom

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        r = self.rom
        equals = [("motion", str(r.motion.value))]
        if r.side is not None:
            equals.append(("side", str(r.side.value)))
        bounds = r.bounds(thresholds, "°")
        one_of = None
        if r.method:
            one_of = ("method", tuple(str(m.value) for m in r.method))
            bounds["describe"] += f" ({', '.join(one_of[1])})"
        return Atom("rom", tuple(equals), one_of=one_of, **bounds)


class AgeAtom(_Spec):
    needs_bound = True
    at_least: Bound = None
    below: Bound = None
    above: Bound = None


class AgeCondition(_AtomCondition):
    kind, spec = "age", AgeAtom
    age: AgeAtom

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        return Atom("age", **self.age.bounds(thresholds, " years"))


class TestAtom(_Spec):
    """Without a bound: the test was measured (its value is the evidence)."""

    __test__ = False  # not a pytest class
    name: _name(TestName, "test")  # type: ignore[valid-type]
    side: _name(Side, "side") = None  # type: ignore[valid-type]
    at_least: Bound = None
    at_most: Bound = None
    below: Bound = None
    above: Bound = None
    leg_pain: StrictBoolean = None


class TestCondition(_AtomCondition):
    __test__ = False
    kind, spec = "test", TestAtom
    test: TestAtom

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        t = self.test
        equals = [("name", str(t.name.value))]
        if t.side is not None:
            equals.append(("side", str(t.side.value)))
        if t.leg_pain is not None:
            equals.append(("leg_pain", "yes" if t.leg_pain else "no"))
        bounds = t.bounds(thresholds, "°")
        bounds["describe"] = bounds["describe"] or "measured"
        return Atom("test", tuple(equals), **bounds)


def _listed(fact: FactType, names: list[Any], describe: str) -> Atom:
    # One pattern with an "or" over the names, not one engine rule per name: the engine's
    # matching cost grows with the number of rules.
    values = tuple(str(name.value) for name in names)
    if len(values) == 1:
        return Atom(fact, (("name", values[0]),), describe=describe)
    return Atom(fact, one_of=("name", values), describe=describe)


class SignCondition(_AtomCondition):
    kind = "sign"
    sign: _names(SignName, "sign")  # type: ignore[valid-type]

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        return _listed("sign", self.sign, "observed sign")


class SymptomCondition(_AtomCondition):
    kind = "symptom"
    symptom: _names(Symptom, "symptom")  # type: ignore[valid-type]

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        return _listed("symptom", self.symptom, "reported symptom")


class ActivityCondition(_AtomCondition):
    kind = "activity"
    activity: _names(Activity, "activity")  # type: ignore[valid-type]

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        return _listed("activity", self.activity, "reported activity")


class ContextAtom(_Spec):
    """A context item with bounds on its value; without bounds: it is given."""

    name: _name(ContextItem, "context item")  # type: ignore[valid-type]
    at_least: Bound = None
    below: Bound = None


ContextNames = _names(ContextItem, "context")


def _context_name(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class ContextCondition(_AtomCondition):
    kind, spec = "context", ContextAtom
    context: Annotated[
        Union[Annotated[ContextNames, Tag("names")], Annotated[ContextAtom, Tag("spec")]],  # type: ignore[valid-type]  # noqa: UP007
        Discriminator(lambda value: "names" if isinstance(value, list) else "spec"),
        BeforeValidator(
            _context_name,
            json_schema_input_type=Union[  # noqa: UP007
                ContextItem, conlist(ContextItem, min_length=1), ContextAtom
            ],
        ),
    ]

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        if isinstance(self.context, list):
            return _listed("context", self.context, "given context")
        bounds = self.context.bounds(thresholds, "")
        bounds["describe"] = bounds["describe"] or "given"
        return Atom("context", (("name", str(self.context.name.value)),), **bounds)


class AsymmetryAtom(_Spec):
    needs_bound = True
    measure: _name(AsymmetryMeasure, "measure")  # type: ignore[valid-type]
    group: _name(MuscleGroup, "group") = None  # type: ignore[valid-type]
    at_least: Bound = None


class AsymmetryCondition(_AtomCondition):
    kind, spec = "asymmetry", AsymmetryAtom
    asymmetry: AsymmetryAtom

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        a = self.asymmetry
        equals = [("measure", str(a.measure.value))]
        if a.group is not None:
            equals.append(("group", str(a.group.value)))
        bounds = a.bounds(thresholds, "°" if a.measure in ("rom", "test") else "")
        bounds["describe"] = "left/right difference " + bounds["describe"]
        return Atom("asym", tuple(equals), **bounds)


class UnmeasuredCondition(_AtomCondition):
    """Absence as a fact: the form gave no measurement of this range of motion at all, so a
    finding may rest on what was reported or inferred instead (measured outranks them)."""

    kind = "unmeasured"
    unmeasured: _names(RomMotion, "unmeasured")  # type: ignore[valid-type]

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        return _listed("unmeasured", self.unmeasured, "inferred only without a measurement")


def _instrument_ids(schema: dict[str, Any]) -> None:
    from hipscreen._instruments.models import INSTRUMENT_IDS  # it loads rule data, which imports us

    schema["enum"] = list(INSTRUMENT_IDS)


class ScoreAtom(_Spec):
    """A standard instrument's score (rules/instruments/): its band, or its value against
    bounds. A band is a fact only when the missing items cannot change it, and a value only
    when the score is complete, so an undetermined score matches neither."""

    instrument: Annotated[
        str, WithJsonSchema({"type": "string"}), Field(json_schema_extra=_instrument_ids)
    ]
    band: str = None  # type: ignore[assignment]  # absent: None; an explicit null is refused
    at_least: Bound = None
    at_most: Bound = None
    below: Bound = None
    above: Bound = None

    @field_validator("instrument", mode="before")
    @classmethod
    def _known_instrument(cls, value: Any, info: ValidationInfo) -> Any:
        instruments = _context(info).instruments
        if instruments is not None and (not isinstance(value, str) or value not in instruments):
            raise _unknown("instrument", value, list(instruments))
        if not isinstance(value, str):
            raise _unknown("instrument", value, [])
        return value

    @field_validator("band", mode="before")
    @classmethod
    def _known_band(cls, value: Any, info: ValidationInfo) -> Any:
        instruments = _context(info).instruments
        instrument = info.data.get("instrument")
        if instruments is not None and isinstance(instrument, str) and instrument in instruments:
            bands = instruments[instrument]
            if not isinstance(value, str) or value not in bands:
                raise _unknown(f"{instrument} band", value, bands)
        return value

    @classmethod
    def required_any(cls) -> list[str]:
        return ["band", *cls.bound_keys()]

    @model_validator(mode="after")
    def _band_or_bounds(self) -> ScoreAtom:
        if self.band is not None and self.given_bounds():
            raise _fail("give either band or bounds (at_least, …), not both")
        if self.band is None and not self.given_bounds():
            raise _fail(f"needs at least one of {', '.join(self.bound_keys())}")
        return self


class ScoreCondition(_AtomCondition):
    kind, spec = "score", ScoreAtom
    score: ScoreAtom

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        s = self.score
        head = (("instrument", s.instrument),)
        if s.band is not None:
            return Atom(
                "score", (*head, ("band", s.band)), describe=f"{s.instrument} band {s.band}"
            )
        bounds = s.bounds(thresholds, "")
        bounds["describe"] = f"{s.instrument} {bounds['describe']}"
        return Atom("score", (*head, ("part", "value")), **bounds)


def _known_finding(value: Any, info: ValidationInfo) -> Any:
    rule_ids = _context(info).rule_ids
    if not isinstance(value, str) or (rule_ids is not None and value not in rule_ids):
        hint = suggest(value, rule_ids or ()) if isinstance(value, str) else ""
        raise _fail(f"unknown finding {value!r}{hint}")
    return value


class FindingCondition(_AtomCondition):
    """Forward chaining: another rule's finding exists."""

    kind = "finding"
    finding: Annotated[
        str,
        BeforeValidator(_known_finding),
        WithJsonSchema({"type": "string", "pattern": RULE_ID, "description": "a rule id"}),
    ]

    def atom(self, thresholds: Mapping[str, _Threshold] | None) -> Atom:
        return Atom("finding", (("id", self.finding),))


ATOM_KINDS: tuple[type[_AtomCondition], ...] = (
    GradeCondition,
    RomCondition,
    TestCondition,
    SignCondition,
    SymptomCondition,
    ActivityCondition,
    ContextCondition,
    AsymmetryCondition,
    FindingCondition,
    AgeCondition,
    UnmeasuredCondition,
    ScoreCondition,
)
"""Every atom kind, in the order the "allowed:" list of an unknown condition names them."""

CONDITION_KEYS = ["all_of", "any_of", *(kind.kind for kind in ATOM_KINDS)]
ATOM_KEYS: dict[str, set[str]] = {
    kind.kind: set(kind.spec.model_fields) for kind in ATOM_KINDS if kind.spec is not None
}
"""The keys of each atom kind that takes a mapping (the condition table of writing-rules.md)."""

_KIND_OF = {kind.kind: kind for kind in ATOM_KINDS}
_FIELDS = {name for spec in ATOM_KEYS.values() for name in spec}


# -- nesting and the union -------------------------------------------------------------------------


def _non_empty(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise _fail("needs a non-empty list of conditions")
    return value


class AllOfCondition(BaseModel):
    """Every one of the conditions holds."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    all_of: Annotated[list[ConditionModel], Field(min_length=1), BeforeValidator(_non_empty)]


class AnyOfCondition(BaseModel):
    """At least one of the conditions holds."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    any_of: Annotated[list[ConditionModel], Field(min_length=1), BeforeValidator(_non_empty)]


def _tag(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if isinstance(key, str) else None
    return None


_Branch: Any = Union[
    Annotated[AllOfCondition, Tag("all_of")],
    Annotated[AnyOfCondition, Tag("any_of")],
    *(Annotated[kind, Tag(kind.kind)] for kind in ATOM_KINDS),
]


class ConditionModel(RootModel[Any]):
    """A condition: a mapping with exactly one key, ``all_of`` / ``any_of`` or an atom kind."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    root: Annotated[_Branch, Discriminator(_tag)]

    def condition(self, thresholds: Mapping[str, _Threshold] | None) -> Condition:
        """The engine's value of this condition (threshold names resolved)."""
        node: AllOfCondition | AnyOfCondition | _AtomCondition = self.root
        if isinstance(node, AllOfCondition):
            return AllOf(tuple(item.condition(thresholds) for item in node.all_of))
        if isinstance(node, AnyOfCondition):
            return AnyOf(tuple(item.condition(thresholds) for item in node.any_of))
        atom: Atom = node.atom(thresholds)
        return atom


AllOfCondition.model_rebuild()
AnyOfCondition.model_rebuild()
ConditionModel.model_rebuild()


# -- validation with the loader's messages ---------------------------------------------------------


def parse_condition(
    raw: Any, where: str, context: ConditionContext
) -> tuple[Condition | None, list[tuple[str, str]]]:
    """A ``when`` validated and converted, or None and every problem as (path, message)."""
    try:
        model = ConditionModel.model_validate(raw, context=context)
    except ValidationError as error:
        problems = [
            _problem(err, raw, where)
            for err in error.errors(include_url=False)
            if err["type"] != _SILENT
        ]
        return None, problems
    return model.condition(context.thresholds), []


def _problem(err: Any, raw: Any, where: str) -> tuple[str, str]:
    """One pydantic error as the loader's (path, message)."""
    loc = list(err["loc"])
    parts: list[str] = [where]
    node, kind, i = raw, None, 0
    while i < len(loc):  # condition nodes: the tag, then the same key as the field
        tag = loc[i]
        i += 2 if i + 1 < len(loc) and loc[i + 1] == tag else 1
        parts.append(str(tag))
        node = node.get(tag) if isinstance(node, dict) else None
        if tag in ("all_of", "any_of") and i < len(loc):
            index = loc[i]
            if isinstance(index, int) and isinstance(node, list) and index < len(node):
                parts.append(str(index))
                node, i = node[index], i + 1
                continue
        kind = str(tag)
        break
    rest = loc[i:]
    for part in rest:  # inside an atom: keys and list indexes the rule file has
        if isinstance(part, int):
            if isinstance(node, list) and part < len(node):
                parts.append(str(part))
                node = node[part]
        elif isinstance(node, dict) and part in node:
            parts.append(part)
            node = node[part]
        elif part in _FIELDS and not isinstance(node, list):
            parts.append(part)  # a missing key, or a key of a name given alone
            node = None
    path = ".".join(parts)
    kind_type, value = err["type"], err.get("input")
    if kind_type == "hipscreen":
        return path, str(err["msg"])
    if kind is None or kind_type in ("union_tag_invalid", "union_tag_not_found"):
        if not isinstance(node, dict) or len(node) != 1:
            return path, f"a condition is a mapping with exactly one key (got {node!r})"
        (key,) = node
        shown = suggest(key, CONDITION_KEYS) if isinstance(key, str) else ""
        return path, f"unknown condition {key!r}{shown}{_allowed(CONDITION_KEYS)}"
    if kind in ("all_of", "any_of"):
        return path, "needs a non-empty list of conditions"
    spec = _KIND_OF[kind].spec if kind in _KIND_OF else None
    allowed = sorted(spec.model_fields) if spec is not None else []
    if kind_type == "extra_forbidden":
        key = str(loc[-1])
        return path, f"unknown key {key!r}{suggest(key, allowed)}{_allowed(allowed)}"
    if kind_type in ("model_type", "model_attributes_type", "dict_type"):
        return path, f"{kind} needs a mapping (got {value!r})"
    if kind_type == "missing" and spec is not None:
        field = str(loc[-1])
        annotation: Any = (
            spec.model_fields[field].annotation if field in spec.model_fields else None
        )
        values = [str(m.value) for m in annotation] if _is_enum(annotation) else []
        listing = _allowed(values) if values else ""
        return path, f"{kind} needs {field}{listing}"
    shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
    return path, f"{err['msg']}{shown}"


def _is_enum(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Enum)


# -- the JSON Schema -------------------------------------------------------------------------------


def condition_json_schema(ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The JSON Schema of a condition, from the models: ``{"$ref": ..., "$defs": {...}}``, where
    ``$defs["Condition"]`` is the union of the kinds (the nested ones refer to it by name)."""
    schema: dict[str, Any] = ConditionModel.model_json_schema(ref_template=ref_template)
    defs: dict[str, Any] = schema.pop("$defs", {})
    union = defs.pop("ConditionModel", schema)
    union.pop("title", None)
    union["description"] = (
        "A condition: exactly one key, all_of/any_of (a non-empty list of conditions) or one "
        "atom kind (docs/writing-rules.md, Conditions)."
    )
    defs["Condition"] = union
    old, new = (ref_template.format(model=name) for name in ("ConditionModel", "Condition"))
    return {"$defs": _replace_refs(defs, old, new), "$ref": new}


def _replace_refs(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {
            k: new if k == "$ref" and v == old else _replace_refs(v, old, new)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace_refs(v, old, new) for v in value]
    return value


__all__ = [
    "ATOM_KEYS",
    "ATOM_KINDS",
    "CONDITION_KEYS",
    "AllOf",
    "AnyOf",
    "Atom",
    "Condition",
    "ConditionContext",
    "ConditionModel",
    "FactType",
    "alternatives",
    "condition_json_schema",
    "finding_refs",
    "parse_condition",
]
