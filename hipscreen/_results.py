"""The screening result: findings, recommendations, referral, and their plain-text report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol, SupportsIndex, cast

from pydantic import BaseModel, ConfigDict, Field

from hipscreen._forksafe import ForkSafeLock
from hipscreen._vocabulary import Confidence, ExerciseKind, Movement, Severity, Side, Urgency

if TYPE_CHECKING:
    from hipscreen._intake.form import IntakeForm
    from hipscreen._render.cds import CdsCard
    from hipscreen._rules.explain import Explanation
    from hipscreen._screen import Screener

__all__ = [
    "Assessment",
    "Dose",
    "Evidence",
    "ExcludedExercise",
    "Exercise",
    "Finding",
    "InstrumentScore",
    "Recommendation",
    "Referral",
]


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Evidence(_Result):
    """One input value that made a finding fire."""

    field: str = Field(
        description="Field path in the intake form, e.g. 'tightness.iliopsoas.left'."
    )
    value: int | float | str = Field(description="The value given for that field.")
    threshold: str | None = Field(
        default=None, description="The rule's test it met, e.g. '≥ 2 (tight_grade)'."
    )
    via: str | None = Field(
        default=None,
        description="For a derived finding: the id of the finding this input made fire, which "
        "the derived finding rests on (directly or through other derived findings); empty when "
        "the input made this finding fire itself.",
    )
    note: str | None = Field(
        default=None,
        description="What to know when reading the value, e.g. that a measured test overrides "
        "this self-report.",
    )


class Finding(_Result):
    """Something the rules noticed, with the inputs behind it and the source it rests on."""

    id: str = Field(description="Stable kebab-case rule id, e.g. 'tight-hip-flexors'.")
    title: str
    severity: Severity
    summary: Annotated[str, Field(max_length=139)]
    evidence: tuple[Evidence, ...] = ()
    source: str = Field(description="The article section or reference the rule rests on.")
    derived_from: tuple[str, ...] = Field(
        default=(), description="Ids of the findings this one was inferred from."
    )
    sides: tuple[Side, ...] = Field(
        default=(), description="Sides the evidence concerns ('both' when given once for both)."
    )
    confidence: Confidence = Field(
        default=Confidence.REPORTED,
        description="'measured' when a measurement supports it (directly or through the findings "
        "it rests on), else 'reported'.",
    )


class Dose(_Result):
    """How much of an exercise to do."""

    sets: int | None = None
    reps: int | None = None
    hold_seconds: int | None = None
    minutes: int | None = None
    days_per_week: int
    note: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.minutes:
            parts.append(f"{self.minutes} min")
        if self.sets and self.reps:
            parts.append(f"{self.sets} × {self.reps} reps")
        elif self.sets and self.hold_seconds:
            parts.append(f"{self.sets} × {self.hold_seconds} s hold")
        parts.append(f"{self.days_per_week} days/week")
        return ", ".join(parts)


class Exercise(_Result):
    """A catalogued exercise."""

    id: str
    name: str
    kind: ExerciseKind
    movement: Movement
    muscles: tuple[str, ...] = ()
    level: int = Field(default=1, description="Progression level: 1 easiest.")
    properties: tuple[str, ...] = Field(
        default=(), description="Catalog properties such as 'supine', 'loaded', 'unilateral'."
    )
    instructions: str = ""


class Recommendation(_Result):
    """An exercise to do, how much, and which findings it answers."""

    exercise: Exercise
    dose: Dose
    because: tuple[str, ...] = Field(
        default=(),
        description="Ids of the findings it answers; empty only for general balance advice.",
    )
    note: str | None = Field(
        default=None, description="Why this variant was chosen, when it differs from the rule's."
    )
    emphasis: Side | None = Field(
        default=None,
        description="Side to emphasise (the weaker or tighter one) in unilateral work.",
    )


class ExcludedExercise(_Result):
    """An exercise a rule asked for but the screen left out, and why."""

    exercise_id: str
    reason: str
    because: tuple[str, ...] = ()


class Referral(_Result):
    """See a clinician instead of (or before) exercising."""

    urgency: Urgency
    see: str = Field(description="Who to see, e.g. 'emergency department'.")
    message: str
    because: tuple[str, ...] = ()


class InstrumentScore(_Result):
    """One standard instrument's score (``rules/instruments/``), as a screening input.

    ``value`` is given only when the items answered fix it; otherwise ``range`` is what the
    missing items could still make it. ``band`` is given only when the missing items cannot
    change it.
    """

    instrument: str = Field(description="Instrument id, e.g. 'lefs'.")
    version: str = Field(description="The instrument version the answers were scored as.")
    value: float | None = Field(description="The score, or None when it is not determined.")
    band: str | None = Field(
        default=None, description="The score band, only when missing items cannot change it."
    )
    complete: bool = Field(description="Every item needed for the score was answered.")
    missing: tuple[str, ...] = Field(default=(), description="Item ids not answered.")
    range: tuple[float, float] | None = Field(
        default=None,
        description="When the score is not complete: the lowest and highest it could still be.",
    )
    subscores: dict[str, float] = Field(
        default={}, description="Named part scores, e.g. STarT Back 'distress', HOOS JR 'raw'."
    )
    computed_by_caller: bool = Field(
        default=False,
        description="The caller sent the score itself; hipscreen did not score items.",
    )

    def describe(self) -> str:
        """One line: the score with its band, or the range it could still take.

        Examples:
            >>> InstrumentScore(instrument="lefs", version="1999", value=None, complete=False,
            ...                 missing=("19", "20"), range=(72, 80), band="high").describe()
            'lefs (1999): incomplete, 72–80 with items 19, 20 missing; band high'
        """
        if self.value is not None:
            shown = f"{self.value:g}"
        elif self.range is not None:
            shown = f"incomplete, {self.range[0]:g}–{self.range[1]:g}"
        else:
            shown = "incomplete" if not self.complete else "no score"
        if self.missing:
            shown += f" with items {', '.join(self.missing)} missing"
        parts = [f"{self.instrument} ({self.version}): {shown}"]
        if self.band is not None:
            parts.append(f"band {self.band}")
        if self.subscores and self.instrument != "psfs":
            parts.append(", ".join(f"{k} {v:g}" for k, v in self.subscores.items()))
        if self.computed_by_caller:
            parts.append("computed by the caller")
        return "; ".join(parts)


class Assessment(_Result):
    """The result of screening one intake form."""

    findings: tuple[Finding, ...] = ()
    recommendations: tuple[Recommendation, ...] = ()
    referral: Referral | None = None
    excluded: tuple[ExcludedExercise, ...] = ()
    not_assessed: tuple[str, ...] = Field(
        default=(), description="Inputs that were not given: never read as normal."
    )
    scores: tuple[InstrumentScore, ...] = Field(
        default=(), description="Standard instruments given on the form, scored."
    )
    client_id: str | None = None
    ruleset_version: str
    disclaimer: str

    def finding_ids(self) -> list[str]:
        """The ids of the findings, in output order."""
        return [finding.id for finding in self.findings]

    def why(
        self,
        rule_id: str,
        form: IntakeForm | Mapping[str, Any] | str | bytes,
        *,
        screener: Screener | None = None,
    ) -> Explanation:
        """Why the finding ``rule_id`` fired: every alternative of the rule's condition, the
        tests that held with the inputs and thresholds they used, down any chain of findings.

        An assessment keeps no copy of its form, so pass the form that was screened (and the
        `Screener` it was screened with when not the built-in rules: its rule-set version must
        be this assessment's). The engine decided the finding; the explanation comes from an
        independent evaluation of the rule data that must agree with it.

        Raises:
            ValueError: an unknown rule; a rule that did not fire (see `why_not`); another rule
                set or another form than the ones screened.

        Examples:
            >>> import hipscreen
            >>> form = {"tightness": {"iliopsoas": 3}}
            >>> print(hipscreen.assess(form).why("tight-hip-flexors", form).text())
            tight-hip-flexors (Tight hip flexors, info): fired
            ...
        """
        from hipscreen._rules.explain import explain

        return explain(self, form, rule_id, screener, expect=True)

    def why_not(
        self,
        rule_id: str,
        form: IntakeForm | Mapping[str, Any] | str | bytes,
        *,
        screener: Screener | None = None,
    ) -> Explanation:
        """Why the rule ``rule_id`` did not fire: for every alternative of its condition, which
        tests held and which did not, with the input value (or "not assessed" for a blank), the
        threshold and where it comes from, down any chain of findings. Arguments as `why`.

        Raises:
            ValueError: an unknown rule; a rule that fired (see `why`); another rule set or
                another form than the ones screened.
        """
        from hipscreen._rules.explain import explain

        return explain(self, form, rule_id, screener, expect=False)

    def _repr_html_(self) -> str:
        """Jupyter's view: referral, findings with evidence, the plan, what was not assessed."""
        from hipscreen._render.html import assessment_html

        return assessment_html(self)

    def to_cds_cards(self, *, min_indicator: Severity | str = Severity.INFO) -> list[CdsCard]:
        """The findings as HL7 CDS Hooks cards, most urgent first (``[]`` when there are none).

        Each card has a ``summary`` under 140 characters, an ``indicator`` (the severity), a
        Markdown ``detail`` with the evidence, exercises and source, the rule source as
        ``source.label`` and the finding id as ``source.topic``; the exercises that answer the
        finding are its ``suggestions``. A red flag (critical finding) leaves only the critical
        cards; the findings behind a referral always get a card, carrying the referral.

        Args:
            min_indicator: leave out findings less urgent than this (e.g. ``"warning"``).

        Examples:
            >>> import hipscreen
            >>> cards = hipscreen.assess({"tightness": {"iliopsoas": 3}}).to_cds_cards()
            >>> cards[0]["indicator"], cards[0]["source"]["topic"]["code"]
            ('info', 'tight-hip-flexors')
        """
        from hipscreen._render.cds import cards_for

        return cards_for(self, min_indicator=min_indicator)

    def to_fhir(
        self,
        *,
        subject: str | Mapping[str, Any],
        form: IntakeForm | Mapping[str, Any] | str | None = None,
        when: datetime | str | None = None,
        ids: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """The assessment as a FHIR R4 ``Bundle`` (type ``collection``) of plain JSON dicts.

        It holds a ``RiskAssessment`` (the findings), a ``ServiceRequest`` for a referral, a
        ``CarePlan`` for the plan and the exercises left out, a ``GuidanceResponse`` (what was not
        assessed) and a ``Provenance`` (hipscreen and rule-set versions); with ``form``, also the
        form as a ``QuestionnaireResponse`` and its measurements as Observation resources. See
        `hipscreen.fhir` for one resource at a time.

        Args:
            subject: the patient, as ``"Patient/123"`` or a FHIR Reference mapping.
            form: the form that was screened (an `IntakeForm`, mapping or JSON string).
            when: when it was screened: the resources' dates, and ``Provenance.recorded`` (now
                when None: the only element that changes between calls).
            ids: resource ids to use instead of the uuid5s of the content, by resource type
                (``"RiskAssessment"``, ``"Bundle"`` …) or, for an Observation, field path.
            request_id: the request's id (e.g. a CDS Hooks ``hookInstance``) for the
                GuidanceResponse.

        Examples:
            >>> import hipscreen
            >>> result = hipscreen.assess({"tightness": {"iliopsoas": 3}})
            >>> fhir_bundle = result.to_fhir(subject="Patient/1", when="2026-01-05T10:00:00Z")
            >>> [e["resource"]["resourceType"] for e in fhir_bundle["entry"]]
            ['RiskAssessment', 'CarePlan', 'GuidanceResponse', 'Provenance']
        """
        from hipscreen._fhir._resources import bundle

        return bundle(self, subject=subject, form=form, when=when, ids=ids, request_id=request_id)

    def explain(self) -> str:
        """A readable plain-text report: findings with their evidence, the plan, the referral."""
        from hipscreen._render.text import assessment_text

        return assessment_text(self)


# -- an assessment built when it is read ----------------------------------------------------------


class DeferredBuild(Protocol):
    """What a deferred assessment is built from (the screen's record of one form)."""

    def build(self) -> Assessment:
        """The assessment, built and validated."""
        ...


_INSTANCE_DICT = BaseModel.__dict__["__dict__"]  # the slot behind every model's ``__dict__``
_FIELDS = frozenset(Assessment.model_fields)
_build_lock = ForkSafeLock()
_object_setattr = object.__setattr__


class _Pending:
    """A deferred build, done once and shared by the assessments made from it (copies with
    another ``client_id`` share it)."""

    __slots__ = ("built", "source")

    def __init__(self, source: DeferredBuild) -> None:
        self.source: DeferredBuild | None = source
        self.built: Assessment | None = None


class _DeferredAssessment(Assessment):
    """An `Assessment` whose fields are built on first read, from what the engine matched.

    `Screener.assess` returns one: the engine has decided the findings, but the evidence, the
    plan, the referral and the pydantic model are built only when something reads them. Until
    then the instance ``__dict__`` slot is empty, and every way in fills it first with exactly
    what ``Assessment.model_validate`` gives (the same values, fields set, repr, JSON, pickle):
    a field read (``__getattr__``), and ``__dict__`` itself, which pydantic and pydantic-core
    read for ``model_dump``, JSON, ``==``, repr, iteration and copies. The build runs once,
    under a lock, so threads reading one cached assessment see one set of values. Outside code
    sees an `Assessment` (the class is named so); copies and pickles are plain `Assessment`s.
    """

    __slots__ = ("_hs_client_id", "_hs_pending")

    @property
    def __dict__(self) -> dict[str, Any]:
        if _pending(self) is not None:
            _materialize(self)
        values: dict[str, Any] = _INSTANCE_DICT.__get__(self)
        return values

    @__dict__.setter
    def __dict__(self, values: dict[str, Any]) -> None:
        _INSTANCE_DICT.__set__(self, values)

    def __getattr__(self, name: str) -> Any:
        if name in _FIELDS and _pending(self) is not None:
            _materialize(self)
            return _INSTANCE_DICT.__get__(self)[name]
        return super().__getattr__(name)  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _DeferredAssessment):
            other = _plain(other)
        return _plain(self).__eq__(other)

    def __hash__(self) -> int:
        return hash(_plain(self))

    def __copy__(self) -> Assessment:  # type: ignore[override]
        return _plain(self).__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Assessment:  # type: ignore[override]
        return _plain(self).__deepcopy__(memo)

    def __reduce_ex__(self, protocol: SupportsIndex) -> str | tuple[Any, ...]:
        # Pickled as the plain `Assessment` it reads as (pickle will not let a reduction name
        # another class for this object, so the plain one travels as an argument).
        return (_unpickled, (_plain(self),))

    def model_copy(  # type: ignore[override]
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Assessment:
        """As `Assessment.model_copy`. A copy with another ``client_id`` of an assessment not
        read yet is deferred too and shares its build (the per-form cache hands those out)."""
        pending = _pending(self)
        if (
            pending is not None
            and not deep
            and update is not None
            and update.keys() == {"client_id"}
        ):
            return _deferred(pending, update["client_id"])
        return _plain(self).model_copy(update=update, deep=deep)


_DeferredAssessment.__name__ = _DeferredAssessment.__qualname__ = "Assessment"
_get_pending = vars(_DeferredAssessment)["_hs_pending"].__get__
_set_pending = vars(_DeferredAssessment)["_hs_pending"].__set__
_get_client_id = vars(_DeferredAssessment)["_hs_client_id"].__get__
_set_client_id = vars(_DeferredAssessment)["_hs_client_id"].__set__


def _pending(model: _DeferredAssessment) -> _Pending | None:
    try:
        pending: _Pending | None = _get_pending(model)
    except AttributeError:  # made another way (pydantic's ``__new__`` and ``__dict__``)
        return None
    return pending


def _materialize(model: _DeferredAssessment) -> None:
    """Fill ``model``'s fields from its build (once, whichever thread comes first)."""
    with _build_lock:
        pending = _pending(model)
        if pending is None:
            return  # another thread did it
        built = pending.built
        if built is None:
            built = pending.built = cast("DeferredBuild", pending.source).build()
            pending.source = None  # the form, its facts and firings are no longer needed
        values: dict[str, Any] = _INSTANCE_DICT.__get__(built)
        client_id = _get_client_id(model)
        if values["client_id"] != client_id:
            values = {**values, "client_id": client_id}
        _INSTANCE_DICT.__set__(model, values)
        _set_pending(model, None)


def _plain(model: Assessment) -> Assessment:
    """A plain `Assessment` with ``model``'s values (built first if need be)."""
    values = model.__dict__
    plain = Assessment.__new__(Assessment)
    _object_setattr(plain, "__dict__", values)
    _object_setattr(plain, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))
    _object_setattr(plain, "__pydantic_extra__", None)
    _object_setattr(plain, "__pydantic_private__", None)
    return plain


def _unpickled(assessment: Assessment) -> Assessment:
    return assessment


def _deferred(pending: _Pending, client_id: str | None) -> Assessment:
    made = _DeferredAssessment.__new__(_DeferredAssessment)
    _set_pending(made, pending)
    _set_client_id(made, client_id)
    _object_setattr(made, "__pydantic_fields_set__", set(_FIELDS))
    _object_setattr(made, "__pydantic_extra__", None)
    _object_setattr(made, "__pydantic_private__", None)
    return made


def deferred_assessment(source: DeferredBuild, client_id: str | None) -> Assessment:
    """An `Assessment` for ``client_id``, built by ``source`` when it is first read.

    ``source.build()`` must give the same assessment whenever it is called (it is called at most
    once per source); its ``client_id`` is replaced by ``client_id``.
    """
    return _deferred(_Pending(source), client_id)
