"""The typed intake form: what a person reports and what was measured."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import UnionType
from typing import Annotated, Any, Generic, Literal, Self, TypeVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, SchemaValidator
from pydantic_core.core_schema import ErrorType

from hipscreen._errors import FieldProblem, InvalidFormError
from hipscreen._instruments.form import InstrumentsBlock
from hipscreen._intake.bounds import bound_problems, shown, within_bounds
from hipscreen._intake.coerce import grade_parser, pregnancy_block, vocabulary_parser
from hipscreen._intake.problems import detail, problems_from
from hipscreen._intake.strictjson import clip, parse_form_json
from hipscreen._rules.tables import tables
from hipscreen._vocabulary import (
    STRENGTH_LABELS,
    TIGHTNESS_LABELS,
    Activity,
    Delivery,
    HipApproach,
    Muscle,
    RomMethod,
    RomMotion,
    Side,
    Symptom,
    normalise_name,
    suggest,
)

__all__ = ["IntakeForm"]

TightnessGrade = Annotated[
    int,
    Field(ge=0, le=3),
    BeforeValidator(
        grade_parser("tightness", TIGHTNESS_LABELS),
        json_schema_input_type=Annotated[int, Field(ge=0, le=3)]
        | Literal["none", "mild", "moderate", "severe"],
    ),
]
"""A tightness grade: 0 none, 1 mild, 2 moderate, 3 severe (integer or label)."""

StrengthGrade = Annotated[
    int,
    Field(ge=0, le=5),
    BeforeValidator(
        grade_parser("strength", STRENGTH_LABELS),
        json_schema_input_type=Annotated[int, Field(ge=0, le=5)]
        | Literal["zero", "trace", "poor", "fair", "good", "normal"],
    ),
]
"""An MRC manual-muscle-test grade: 0 zero … 5 normal (integer or label)."""

FlexionDegrees = Annotated[float, Field(strict=True, ge=0, le=180)]
"""Measured hip flexion in degrees (0–180)."""

ExtensionDegrees = Annotated[float, Field(strict=True, ge=-90, le=90)]
"""Measured hip extension in degrees (−90–90; negative means the hip cannot reach neutral)."""

ThomasHipDegrees = Annotated[float, Field(strict=True, ge=-60, le=90)]
"""Thigh angle to horizontal in the modified Thomas test: positive = thigh above horizontal."""

ThomasKneeDegrees = Annotated[float, Field(strict=True, ge=0, le=180)]
"""Knee flexion angle in the modified Thomas test (0° = knee straight)."""

SlrDegrees = Annotated[float, Field(strict=True, ge=0, le=130)]
"""Passive straight-leg-raise hip flexion angle with the knee straight."""

AkeDeficitDegrees = Annotated[float, Field(strict=True, ge=0, le=90)]
"""Degrees short of full knee extension in the 90/90 active knee extension test."""

Flag = Annotated[bool, Field(strict=True)]

MuscleName = Annotated[Muscle, BeforeValidator(vocabulary_parser(Muscle, "muscle"))]
SymptomName = Annotated[Symptom, BeforeValidator(vocabulary_parser(Symptom, "symptom"))]
ActivityName = Annotated[Activity, BeforeValidator(vocabulary_parser(Activity, "activity"))]


class _Strict(BaseModel):
    # Unknown keys are named (with the allowed keys and the closest match) by `IntakeForm` for
    # the whole form at once, after validation failed: no wrap validator per nested model.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


T = TypeVar("T")


class Sided(_Strict, Generic[T]):
    """A value given per side: ``left``, ``right`` or both (one of them at least)."""

    # The schema says what the validator below does: at least one side given, and not as null.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [side], "properties": {side: {"not": {"type": "null"}}}}
                for side in ("left", "right")
            ]
        }
    )

    left: T | None = None
    right: T | None = None

    @model_validator(mode="after")
    def _at_least_one_side(self) -> Self:
        if self.left is None and self.right is None:
            raise ValueError("a per-side value needs 'left', 'right' or both")
        return self

    def sides(self) -> Iterator[tuple[Side, T]]:
        """The sides that were given, with their values."""
        if self.left is not None:
            yield Side.LEFT, self.left
        if self.right is not None:
            yield Side.RIGHT, self.right


# One named model per value type: the JSON Schema names its definitions after these classes
# (``SidedTightness``), and takes a description from a docstring, as before ``Sided`` was generic
# (the models for the tests had none).


class SidedTightness(Sided[TightnessGrade]):
    """Tightness graded per side."""


class SidedStrength(Sided[StrengthGrade]):
    """Strength graded per side."""


class SidedFlexion(Sided[FlexionDegrees]):
    """Hip flexion measured per side."""


class SidedExtension(Sided[ExtensionDegrees]):
    """Hip extension measured per side."""


class SidedThomasHip(Sided[ThomasHipDegrees]):
    pass


class SidedThomasKnee(Sided[ThomasKneeDegrees]):
    pass


class SidedFlag(Sided[Flag]):
    pass


class SidedSlr(Sided[SlrDegrees]):
    pass


class SidedAke(Sided[AkeDeficitDegrees]):
    pass


# The iteration helpers of `IntakeForm` read these tables, so that no field path is formatted
# per form: (name, form field, attribute, path for both sides, path of the left, of the right).
_TESTS = tuple(
    (name, field, attr, f"{field}.{attr}", f"{field}.{attr}.left", f"{field}.{attr}.right")
    for name, field, attr in (
        ("thomas_hip_angle", "thomas_test", "hip_angle"),
        ("thomas_knee_angle", "thomas_test", "knee_angle"),
        ("thomas_thigh_abducts", "thomas_test", "thigh_abducts"),
        ("straight_leg_raise", "straight_leg_raise", "angle"),
        ("active_knee_extension_deficit", "active_knee_extension", "deficit"),
    )
)
_MUSCLE_VALUES = frozenset(m.value for m in Muscle)
_MUSCLE_ORDER = {m: i for i, m in enumerate(Muscle)}
_LEFT, _RIGHT, _BOTH = Side.LEFT, Side.RIGHT, Side.BOTH  # module names: no enum lookup per form
_GRADE_PATHS: dict[str, dict[Muscle, tuple[str, str, str]]] = {
    measure: {m: (f"{measure}.{m}", f"{measure}.{m}.left", f"{measure}.{m}.right") for m in Muscle}
    for measure in ("tightness", "strength")
}
_ANGLES = tuple(
    (m, m.value, f"rom.{m.value}", f"rom.{m.value}.left", f"rom.{m.value}.right") for m in RomMotion
)


def _side_tag(value: Any) -> str:
    kind = type(value)  # the usual types first: an abstract isinstance costs more
    if kind is dict:
        return "per_side"
    if kind is int or kind is float or kind is str or kind is bool:
        return "both_sides"
    return "per_side" if isinstance(value, Mapping | BaseModel) else "both_sides"


def _either(single: Any, sided: Any) -> Any:
    return Annotated[
        Annotated[single, Tag("both_sides")] | Annotated[sided, Tag("per_side")],
        Discriminator(_side_tag),
    ]


Tightness = Annotated[
    Annotated[TightnessGrade, Tag("both_sides")] | Annotated[SidedTightness, Tag("per_side")],
    Discriminator(_side_tag),
]
Strength = Annotated[
    Annotated[StrengthGrade, Tag("both_sides")] | Annotated[SidedStrength, Tag("per_side")],
    Discriminator(_side_tag),
]
Flexion = Annotated[
    Annotated[FlexionDegrees, Tag("both_sides")] | Annotated[SidedFlexion, Tag("per_side")],
    Discriminator(_side_tag),
]
Extension = Annotated[
    Annotated[ExtensionDegrees, Tag("both_sides")] | Annotated[SidedExtension, Tag("per_side")],
    Discriminator(_side_tag),
]


class RangeOfMotion(_Strict):
    """Measured hip range of motion in degrees, for both sides at once or per side."""

    hip_flexion: Flexion | None = None
    hip_extension: Extension | None = None
    method: Annotated[RomMethod, BeforeValidator(vocabulary_parser(RomMethod, "method"))] = Field(
        default=RomMethod.GONIOMETER,
        description="How the angles were measured; norms are only compared for a matching method.",
    )


class ThomasTest(_Strict):
    """Modified Thomas test (hip-flexor length), per side or for both sides."""

    hip_angle: _either(ThomasHipDegrees, SidedThomasHip) | None = Field(  # type: ignore[valid-type]
        default=None, description="Thigh angle to horizontal; positive = above horizontal (short)."
    )
    knee_angle: _either(ThomasKneeDegrees, SidedThomasKnee) | None = Field(  # type: ignore[valid-type]
        default=None, description="Knee flexion angle; under ~80° suggests short rectus femoris."
    )
    thigh_abducts: _either(Flag, SidedFlag) | None = Field(  # type: ignore[valid-type]
        default=None, description="The thigh drifts into abduction (a TFL/IT-band sign)."
    )


class StraightLegRaise(_Strict):
    """Passive straight-leg raise (hamstring length, or nerve-root irritation when it hurts)."""

    angle: _either(SlrDegrees, SidedSlr) | None = None  # type: ignore[valid-type]
    reproduces_leg_pain: Flag = Field(
        default=False,
        description="The raise reproduces radiating leg pain: read as possible nerve-root "
        "irritation, never as tight hamstrings.",
    )


class ActiveKneeExtension(_Strict):
    """90/90 active knee extension test (hamstring length)."""

    deficit: _either(AkeDeficitDegrees, SidedAke)  # type: ignore[valid-type]


class Pregnancy(_Strict):
    """Current pregnancy."""

    weeks: Annotated[int, Field(strict=True, ge=0, le=45)] | None = Field(
        default=None, description="Weeks of gestation, if known."
    )


class JointProcedure(_Strict):
    """A recent joint or spinal injection or procedure: when it was, and how the pain has gone."""

    days_since: Annotated[int, Field(strict=True, ge=0, le=365)] | None = Field(
        default=None, description="Days since the injection or procedure, if known."
    )
    pain_worsening: Flag | None = Field(
        default=None,
        description="Pain has been getting worse since it (true/false; blank means not asked).",
    )


class Postpartum(_Strict):
    """The weeks after giving birth, and how the baby was delivered."""

    weeks_since: Annotated[int, Field(strict=True, ge=0, le=104)] | None = Field(
        default=None, description="Weeks since delivery, if known."
    )
    delivery: Annotated[Delivery, BeforeValidator(vocabulary_parser(Delivery, "delivery"))] = Field(
        default=Delivery.UNKNOWN, description="vaginal, caesarean or unknown."
    )


class HipReplacement(_Strict):
    """A hip replacement; movement precautions depend on the surgical approach."""

    side: Annotated[Side, BeforeValidator(vocabulary_parser(Side, "side"))] = Side.BOTH
    approach: Annotated[
        HipApproach, BeforeValidator(vocabulary_parser(HipApproach, "approach"))
    ] = HipApproach.UNKNOWN
    precautions_lifted: Flag = Field(
        default=False, description="The surgeon has said the movement precautions no longer apply."
    )
    weeks_since: Annotated[int, Field(strict=True, ge=0, le=2600)] | None = Field(
        default=None,
        description="Weeks since the operation, if known (precautions usually last 6–12 weeks).",
    )


class RecentFall(_Strict):
    """A fall or minor trauma in the past few weeks, and what followed it.

    Blank means "not asked", never "no": ``{"occurred": false}`` states there was no fall, and
    ``new_pain`` / ``can_bear_weight`` left blank are treated as possible injury.
    """

    occurred: Flag = Field(description="There was a fall or minor trauma (false: there was none).")
    new_pain: Flag | None = Field(
        default=None, description="New hip, groin, back or leg pain since the fall."
    )
    can_bear_weight: Flag | None = Field(
        default=None, description="Can stand and walk on the leg normally since the fall."
    )

    @model_validator(mode="after")
    def _details_need_a_fall(self) -> Self:
        if not self.occurred and (self.new_pain is not None or self.can_bear_weight is not None):
            raise ValueError(
                "new_pain and can_bear_weight describe a fall: leave them blank when "
                "occurred is false"
            )
        return self


class BackPain(_Strict):
    """The current episode of low back pain."""

    weeks: Annotated[int, Field(strict=True, ge=0, le=2000)] | None = Field(
        default=None, description="How long this episode has lasted, in weeks."
    )
    intensity: Annotated[int, Field(strict=True, ge=0, le=10)] | None = Field(
        default=None, description="Pain now, 0 (none) to 10 (worst imaginable)."
    )


_SYMPTOM_ORDER = {s: i for i, s in enumerate(Symptom)}
_ACTIVITY_ORDER = {a: i for i, a in enumerate(Activity)}


def _unique_sorted(values: tuple[Any, ...], order: Mapping[Any, int]) -> tuple[Any, ...]:
    return tuple(sorted(set(values), key=order.__getitem__))


class IntakeForm(_Strict):
    """One person's screening input. Every field is optional; unknown keys are errors.

    A grade is given for both sides at once (``3`` or ``"severe"``) or per side
    (``{"left": 1, "right": 3}``). Labels are case-insensitive.

    Examples:
        >>> form = IntakeForm(tightness={"iliopsoas": "severe"}, strength={"gluteus_maximus": 3})
        >>> form.tightness["iliopsoas"]
        3
    """

    client_id: Annotated[str, Field(strict=True, min_length=1, max_length=200)] | None = None
    age: Annotated[int, Field(strict=True, ge=0, le=120)] | None = None
    tightness: dict[MuscleName, Tightness] = Field(
        default_factory=dict, description="Tightness grade 0–3 per muscle or muscle group."
    )
    strength: dict[MuscleName, Strength] = Field(
        default_factory=dict, description="MRC strength grade 0–5 per muscle or muscle group."
    )
    symptoms: tuple[SymptomName, ...] = Field(
        default=(), description="Reported symptoms; duplicates collapse."
    )
    activities: tuple[ActivityName, ...] = Field(
        default=(), description="Activities done or wanted; duplicates collapse."
    )
    rom: RangeOfMotion | None = None
    thomas_test: ThomasTest | None = None
    straight_leg_raise: StraightLegRaise | None = None
    active_knee_extension: ActiveKneeExtension | None = None
    pregnancy: Annotated[
        Annotated[
            Annotated[Pregnancy, Tag("pregnant")] | Annotated[Literal[False], Tag("not_pregnant")],
            Discriminator(lambda v: "not_pregnant" if v is False else "pregnant"),
        ]
        | None,
        BeforeValidator(pregnancy_block),
    ] = Field(
        default=None,
        description="Current pregnancy: a block (weeks optional) or true when pregnant, false when "
        "not pregnant; blank means not asked.",
    )
    hip_replacement: HipReplacement | None = None
    osteoporosis: Flag | None = Field(
        default=None,
        description="Diagnosed osteoporosis (true/false; blank means not asked, never read as no).",
    )
    vertebral_fracture: Flag | None = Field(
        default=None,
        description="A past vertebral fracture (true/false; blank means not asked).",
    )
    back_pain: BackPain | None = None
    recent_fall: RecentFall | None = Field(
        default=None, description="A recent fall or minor trauma; blank means not asked."
    )
    recent_joint_procedure: Flag | None = Field(
        default=None,
        description="A joint or spinal injection, operation or other procedure in the past "
        "3 months (true/false; blank means not asked).",
    )
    anticoagulant: Flag | None = Field(
        default=None,
        description="Takes an anticoagulant (blood thinner) (true/false; blank means not asked).",
    )
    instruments: InstrumentsBlock | None = Field(
        default=None,
        description="Standard instruments (pain NRS, PSFS, HOOS JR, LEFS, STarT Back, PAR-Q+): "
        "item answers by number, or a score computed by the caller; see docs/instruments/.",
    )
    joint_procedure: JointProcedure | None = Field(
        default=None,
        description="A recent joint or spinal injection or procedure with its timing (implies "
        "recent_joint_procedure).",
    )
    postpartum: Postpartum | None = Field(
        default=None, description="Given birth in the past two years: weeks since and delivery."
    )
    symptom_checklist_completed: Flag | None = Field(
        default=None,
        description="Every red-flag symptom on the checklist was asked, so an unticked symptom "
        "means no (true). Blank or false: unticked symptoms are not known to be absent.",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _name_allowed_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # pydantic says only "Extra inputs are not permitted"; users need the valid keys and the
        # closest match, so rewrite those errors and pass the others through unchanged.
        try:
            return handler(data)
        except ValidationError as error:
            named = _name_unknown_keys(error)
            if named is error:
                raise
            raise named from None

    @model_validator(mode="after")
    def _no_contradicting_negatives(self) -> Self:
        # A stated "no" and a ticked symptom that says "yes" cannot both be true: refuse the form
        # rather than silently let one of them win.
        contradictions = []
        fall = self.recent_fall
        if (
            fall is not None
            and not fall.occurred
            and Symptom.RECENT_FALL_OR_MINOR_TRAUMA in (self.symptoms)
        ):
            contradictions.append(
                "recent_fall.occurred is false but symptoms lists 'recent_fall_or_minor_trauma'"
            )
        if (
            fall is not None
            and fall.can_bear_weight is True
            and Symptom.UNABLE_TO_BEAR_WEIGHT in self.symptoms
        ):
            contradictions.append(
                "recent_fall.can_bear_weight is true but symptoms lists 'unable_to_bear_weight'"
            )
        if self.recent_joint_procedure is False and self.joint_procedure is not None:
            contradictions.append(
                "recent_joint_procedure is false but joint_procedure describes one"
            )
        if self.recent_joint_procedure is False and (
            Symptom.RECENT_SPINAL_OR_JOINT_PROCEDURE in self.symptoms
        ):
            contradictions.append(
                "recent_joint_procedure is false but symptoms lists "
                "'recent_spinal_or_joint_procedure'"
            )
        if self.pregnancy is False:
            contradictions += [
                f"pregnancy is false but symptoms lists {s.value!r} (a pregnancy-only symptom)"
                for s in self.symptoms
                if s in tables().pregnancy_only_symptoms
            ]
        if contradictions:
            raise ValueError("; ".join(contradictions) + " (give one answer)")
        return self

    @field_validator("tightness", "strength", mode="before")
    @classmethod
    def _one_spelling_per_muscle(cls, value: Any) -> Any:
        # "iliopsoas" and "ILIOPSOAS" are the same muscle: refuse both rather than let the
        # later key silently win. Muscles all named as their values cannot repeat one.
        if type(value) is dict and _MUSCLE_VALUES.issuperset(value):
            return value
        if isinstance(value, Mapping):
            seen: dict[str, Any] = {}
            for key in value:
                if isinstance(key, str):
                    name = normalise_name(key)
                    if name in seen:
                        raise ValueError(
                            f"muscle {name!r} is given twice (as {seen[name]!r} and {key!r}); "
                            "give each muscle once"
                        )
                    seen[name] = key
        return value

    @field_validator("symptoms")
    @classmethod
    def _collapse_symptoms(cls, value: tuple[Symptom, ...]) -> tuple[Symptom, ...]:
        return _unique_sorted(value, _SYMPTOM_ORDER)

    @field_validator("activities")
    @classmethod
    def _collapse_activities(cls, value: tuple[Activity, ...]) -> tuple[Activity, ...]:
        return _unique_sorted(value, _ACTIVITY_ORDER)

    def reported_symptoms(self) -> tuple[Symptom, ...]:
        """The symptoms, plus low back pain when a current back-pain episode is described."""
        back = self.back_pain
        if (
            back is not None
            and (back.intensity is None or back.intensity > 0)
            and Symptom.LOWER_BACK_PAIN not in self.symptoms
        ):
            return _unique_sorted((*self.symptoms, Symptom.LOWER_BACK_PAIN), _SYMPTOM_ORDER)
        return self.symptoms

    def grades(self, measure: str) -> Iterator[tuple[Muscle, Side, int, str]]:
        """Every grade given for ``measure`` ("tightness" or "strength").

        Yields (muscle, side, grade, field path); a grade given once has side ``both``.
        """
        return iter(self.grade_list(measure))

    def grade_list(self, measure: str) -> list[tuple[Muscle, Side, int, str]]:
        """`grades` as a list, in the fixed muscle order whatever order the caller used."""
        table: Mapping[Muscle, Any] = getattr(self, measure)
        if not table:
            return []
        paths = _GRADE_PATHS[measure]
        given: list[tuple[Muscle, Side, int, str]] = []
        add = given.append
        # Sort the few muscles given rather than look up all of them (one needs no ordering).
        for muscle in sorted(table, key=_MUSCLE_ORDER.__getitem__) if len(table) > 1 else table:
            value = table[muscle]
            if value is None:
                continue
            both, left, right = paths[muscle]
            if isinstance(value, int):  # a grade for both sides (grades are plain ints)
                add((muscle, _BOTH, value, both))
                continue
            if value.left is not None:
                add((muscle, _LEFT, value.left, left))
            if value.right is not None:
                add((muscle, _RIGHT, value.right, right))
        return given

    def measurements(self) -> Iterator[tuple[str, Side, float | bool, str]]:
        """Every measured test value: (test name, side, value, field path).

        Names: ``thomas_hip_angle``, ``thomas_knee_angle``, ``thomas_thigh_abducts``,
        ``straight_leg_raise``, ``active_knee_extension_deficit``.
        """
        if self.thomas_test is None and (
            self.straight_leg_raise is None and self.active_knee_extension is None
        ):
            return
        for name, field, attr, both, left, right in _TESTS:
            test = getattr(self, field)
            value = getattr(test, attr) if test is not None else None
            if value is None:
                continue
            if isinstance(value, Sided):
                if value.left is not None:
                    yield name, Side.LEFT, value.left, left
                if value.right is not None:
                    yield name, Side.RIGHT, value.right, right
            else:
                yield name, Side.BOTH, value, both

    def angles(self) -> Iterator[tuple[RomMotion, Side, float, str]]:
        """Every measured angle: (motion, side, degrees, field path)."""
        rom = self.rom
        if rom is None:
            return
        for motion, attr, both, left, right in _ANGLES:
            value = getattr(rom, attr)
            if value is None:
                continue
            if isinstance(value, Sided):
                if value.left is not None:
                    yield motion, Side.LEFT, value.left, left
                if value.right is not None:
                    yield motion, Side.RIGHT, value.right, right
            else:
                yield motion, Side.BOTH, value, both


_KNOWN_ERRORS = frozenset(get_args(ErrorType))


def _name_unknown_keys(error: ValidationError) -> ValidationError:
    """``error`` as it was when every `_Strict` model named its own unknown keys: each unknown
    key of a form model gets its allowed keys and closest match, and the errors in that model
    are restated (as pydantic's own after a wrap validator); an unknown key anywhere else (in an
    instrument entry) becomes an ``unknown_field`` error with pydantic's message, and then every
    error of the form is restated. ``error`` unchanged when no key was unknown."""
    items = error.errors(include_url=False)
    named: dict[int, str] = {}
    restated: list[tuple[int | str, ...]] = []  # the models whose errors are restated
    for index, item in enumerate(items):
        if item["type"] != "extra_forbidden":
            continue
        loc = item["loc"]
        model = _model_at(loc[:-1])
        if model is None:
            restated.append(())
            continue
        key = str(loc[-1])
        allowed = list(model.model_fields)
        named[index] = (
            f"unknown field {key!r}{suggest(key, allowed)} (allowed: {', '.join(allowed)})"
        )
        restated.append(loc[:-1])
    if not restated:
        return error
    details = []
    for index, item in enumerate(items):
        kind, loc, value, message = item["type"], item["loc"], item.get("input"), item["msg"]
        if not any(loc[: len(prefix)] == prefix for prefix in restated):
            if kind in _KNOWN_ERRORS:  # as it was: pydantic's own error with its context
                ctx = item.get("ctx")
                if ctx is None:
                    details.append(InitErrorDetails(type=kind, loc=loc, input=value))
                else:
                    details.append(InitErrorDetails(type=kind, loc=loc, input=value, ctx=ctx))
                continue
        elif index in named:
            kind, message = "unknown_field", named[index]
        elif kind == "extra_forbidden":
            kind = "unknown_field"
        details.append(detail(kind, loc, value, message))
    return ValidationError.from_exception_data(IntakeForm.__name__, details)


def _model_at(loc: tuple[int | str, ...]) -> type[_Strict] | None:
    """The form model (a `_Strict` class) at ``loc`` in `IntakeForm`, if any."""
    here: list[Any] = [IntakeForm]
    for part in loc:
        if part in _UNION_TAGS:
            continue
        step: list[Any] = []
        for kind in here:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                field = kind.model_fields.get(part) if isinstance(part, str) else None
                if field is not None:
                    step += _alternatives(field.annotation)
            elif get_origin(kind) is dict:
                step += _alternatives(get_args(kind)[1])
            elif get_origin(kind) is tuple:
                step += _alternatives(get_args(kind)[0])
        here = step
    models = [kind for kind in here if isinstance(kind, type) and issubclass(kind, BaseModel)]
    if len(models) == 1 and issubclass(models[0], _Strict):
        return models[0]
    return None


_UNION_TAGS = frozenset({"both_sides", "per_side", "pregnant", "not_pregnant"})


def _alternatives(annotation: Any) -> list[Any]:
    """The types a value of ``annotation`` may have: through ``Annotated`` and unions."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _alternatives(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return [kind for arg in get_args(annotation) for kind in _alternatives(arg)]
    return [annotation]


# -- the fast path: the same models without the Python callbacks that canonical input skips ------

# Callbacks a form written in canonical values does not need: a grade given as an integer, a name
# given as its vocabulary value (then no two keys can spell the same muscle), and the naming of
# unknown keys (the fast path refuses them, and the full validation names them).
_FAST_SKIPPED = frozenset(
    {
        "grade_parser.<locals>.parse",
        "vocabulary_parser.<locals>.parse",
        "IntakeForm._one_spelling_per_muscle",
        "IntakeForm._name_allowed_keys",
    }
)
_fast: list[SchemaValidator] = []


def _fast_schema(node: Any) -> Any:
    """A copy of a core schema of `IntakeForm` with those callbacks left out: a grade is a strict
    integer in its range, a name an exact vocabulary value, and a value for both sides or per side
    is tried as a single value first (what `_side_tag` decides, in Rust)."""
    if isinstance(node, list):
        return [_fast_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind in ("function-before", "function-wrap"):
        name = getattr(node["function"].get("function"), "__qualname__", "")
        if name in _FAST_SKIPPED:
            inner = _fast_schema(node["schema"])
            if name.startswith("grade_parser") and inner.get("type") == "int":
                inner = {**inner, "strict": True}
            elif name.startswith("vocabulary_parser"):  # a string first: no bytes, no numbers
                inner = {"type": "chain", "steps": [{"type": "str", "strict": True}, inner]}
            return inner
    if kind == "tagged-union" and node.get("discriminator") is _side_tag:
        choices = node["choices"]
        union: dict[str, Any] = {
            "type": "union",
            "mode": "left_to_right",
            "choices": [_fast_schema(choices["both_sides"]), _fast_schema(choices["per_side"])],
        }
        if "ref" in node:
            union["ref"] = node["ref"]
        return union
    return {key: _fast_schema(value) for key, value in node.items()}


def _fast_validator() -> SchemaValidator:
    if not _fast:
        IntakeForm.model_rebuild()  # the deferred schema, built now if it was not yet
        _fast.append(SchemaValidator(_fast_schema(IntakeForm.__pydantic_core_schema__)))
    return _fast[0]


def coerce_form(form: IntakeForm | Mapping[str, Any] | str | bytes) -> IntakeForm:
    """Accept an `IntakeForm`, a mapping of the same shape, or a JSON document.

    Before validation, the input is checked against the form bounds in ``hipscreen._limits``
    (size, nesting, list and string lengths, integer digits), and a JSON document may not repeat
    a key: each breach is an `InvalidFormError` naming the field.
    """
    if type(form) is dict:
        data: Any = form
    elif isinstance(form, IntakeForm):
        return form
    elif isinstance(form, str | bytes | bytearray):
        data = parse_form_json(form)
    elif isinstance(form, Mapping):
        data = form
    else:
        raise InvalidFormError(
            [
                FieldProblem(
                    "",
                    shown(form),
                    "a form must be an IntakeForm, a mapping or a JSON string "
                    f"(got {type(form).__name__})",
                )
            ]
        )
    if not within_bounds(data):
        problems = bound_problems(data)
        if problems:
            raise InvalidFormError(problems)
    if type(data) is not dict:
        if not isinstance(data, Mapping):
            text = clip(repr(data), 60)  # bounded by the checks above
            raise InvalidFormError(
                [FieldProblem("", text, f"a JSON form must be an object (got {text})")]
            )
        data = dict(data)
    # Most forms are written in canonical values: validated without Python callbacks, they give
    # the same form. Any other form (a label, a name in other spelling, an error) takes the full
    # validation, which names every problem.
    try:
        return _fast_validator().validate_python(data)  # type: ignore[no-any-return]
    except ValidationError:
        pass
    try:
        return IntakeForm.model_validate(data)
    except ValidationError as error:
        raise InvalidFormError(problems_from(error)) from None
