"""An `Assessment` as FHIR R4 resources: RiskAssessment, ServiceRequest, CarePlan, Observations,
GuidanceResponse and Provenance, gathered in a ``collection`` Bundle.

Each resource has its own builder returning a JSON-ready dict, so a CDS service can put one of
them in a suggestion's ``create`` action. Ids are uuid5s of the content (assessment, subject and
form), so the same input gives the same ids; a caller may pass its own. No element is ever empty
or null (FHIR forbids both).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hipscreen._fhir._codes import (
    EXERCISE_SYSTEM,
    FINDING_SYSTEM,
    LOINC,
    MEASUREMENT_SYSTEM,
    NOT_ASSESSED_SYSTEM,
    QUESTIONNAIRE_URL,
    RULESET_SYSTEM,
    SNOMED,
    UCUM,
    content_id,
    datetime_text,
    reference,
    subject_reference,
)
from hipscreen._fhir._questionnaire import item_index, questionnaire_response
from hipscreen._intake.form import IntakeForm, coerce_form
from hipscreen._rules.tables import tables
from hipscreen._version import __version__
from hipscreen._vocabulary import Muscle, Severity, Side, Urgency

if TYPE_CHECKING:
    from hipscreen._results import Assessment, Finding

__all__ = [
    "FormInput",
    "SubjectInput",
    "bundle",
    "care_plan",
    "guidance_response",
    "measurement_observations",
    "provenance",
    "referral_service_request",
    "risk_assessment",
]

FormInput = IntakeForm | Mapping[str, Any] | str
SubjectInput = str | Mapping[str, Any]
When = datetime | str | None

_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_RISK = "http://terminology.hl7.org/CodeSystem/risk-probability"
_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_LATERALITY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/observation-structureLaterality"

_QUALITATIVE_RISK = {
    Severity.INFO: ("low", "Low likelihood"),
    Severity.WARNING: ("moderate", "Moderate likelihood"),
    Severity.CRITICAL: ("high", "High likelihood"),
}
_PRIORITY = {Urgency.ROUTINE: "routine", Urgency.URGENT: "urgent", Urgency.EMERGENCY: "stat"}

# SNOMED CT laterality qualifiers and the hip joint (the body site of every measured hip angle).
_LATERALITY = {
    Side.LEFT: ("7771000", "Left"),
    Side.RIGHT: ("24028007", "Right"),
    Side.BOTH: ("51440002", "Right and left"),
}
_HIP_JOINT = {"system": SNOMED, "code": "24136001", "display": "Hip joint structure"}

# What each measured value is; the knee angles have no SNOMED site here, only text.
_MEASUREMENTS: dict[str, tuple[str, str]] = {
    "hip_flexion": ("Hip flexion range of motion", "hip"),
    "hip_extension": ("Hip extension range of motion", "hip"),
    "thomas_hip_angle": ("Modified Thomas test: thigh angle to horizontal", "hip"),
    "thomas_knee_angle": ("Modified Thomas test: knee flexion angle", "knee"),
    "thomas_thigh_abducts": ("Modified Thomas test: thigh drifts into abduction", "hip"),
    "straight_leg_raise": ("Passive straight-leg raise: hip flexion angle", "hip"),
    "active_knee_extension_deficit": ("Active knee extension (90/90): deficit", "knee"),
}
_PAIN_NRS = {
    "system": LOINC,
    "code": "72514-3",
    "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
}


# -- shared pieces ---------------------------------------------------------------------------------


class _Input:
    """What every builder reads: the assessment, the subject, the form, and the id key."""

    def __init__(
        self, assessment: Assessment, subject: SubjectInput, form: FormInput | None
    ) -> None:
        self.assessment = assessment
        self.subject = subject_reference(subject)
        self.form = coerce_form(form) if form is not None else None
        form_key = (
            json.dumps(self.form.model_dump(mode="json", exclude_unset=True), sort_keys=True)
            if self.form is not None
            else ""
        )
        self.key = (
            json.dumps(self.subject, sort_keys=True),
            assessment.model_dump_json(),
            form_key,
        )

    def id(self, kind: str, *extra: str) -> str:
        return content_id(kind, *self.key, *extra)


def _ruleset_coding(assessment: Assessment) -> dict[str, Any]:
    return {
        "system": RULESET_SYSTEM,
        "version": assessment.ruleset_version,
        "code": "hipscreen",
        "display": f"hipscreen rules {assessment.ruleset_version}",
    }


def _finding_coding(finding: Finding) -> dict[str, Any]:
    return {"system": FINDING_SYSTEM, "code": finding.id, "display": finding.title}


def _finding_codes(assessment: Assessment, ids: Iterable[str]) -> list[dict[str, Any]]:
    by_id = {finding.id: finding for finding in assessment.findings}
    return [
        {"coding": [_finding_coding(by_id[i])]}
        if i in by_id
        else {"coding": [{"system": FINDING_SYSTEM, "code": i}]}
        for i in ids
    ]


def _refs(references: Iterable[str]) -> list[dict[str, str]]:
    return [{"reference": r} for r in references]


def _note(text: str) -> list[dict[str, str]]:
    return [{"text": text}]


def _put(resource: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` only when ``value`` says something: FHIR forbids empty and null elements."""
    if value is not None and value != "" and value != [] and value != {}:
        resource[key] = value


# -- RiskAssessment ------------------------------------------------------------------------------


def _rationale(finding: Finding) -> str:
    parts = []
    for ev in finding.evidence:
        text = f"{ev.field} = {ev.value}"
        if ev.threshold:
            text += f" ({ev.threshold})"
        if ev.via:
            text += f" [via {ev.via}]"
        if ev.note:
            text += f" — {ev.note}"
        parts.append(text)
    if finding.derived_from:
        parts.append(f"derived from: {', '.join(finding.derived_from)}")
    evidence = "; ".join(parts) or "no input evidence recorded"
    return f"{finding.summary} Evidence: {evidence}. Source: {finding.source}"


def risk_assessment(
    assessment: Assessment,
    *,
    subject: SubjectInput,
    form: FormInput | None = None,
    id: str | None = None,
    when: When = None,
    basis: Sequence[str] = (),
) -> dict[str, Any]:
    """The findings as a FHIR R4 ``RiskAssessment``.

    One ``prediction`` per finding: the finding id as ``outcome``, the severity as
    ``qualitativeRisk`` (info → low, warning → moderate, critical → high), the summary, evidence
    and source as ``rationale``. ``method`` is the rule set (``version`` = rule-set version and
    digest); ``basis`` the inputs (references you pass, e.g. to the QuestionnaireResponse and the
    measurement Observations); the disclaimer is the ``note``.

    Args:
        assessment: the screening result.
        subject: the patient, ``"Patient/123"`` or a Reference mapping.
        form: the screened form; it only makes the default id differ between forms.
        id: the resource id; by default a uuid5 of the content.
        when: the ``occurrenceDateTime`` (left out when None).
        basis: references (``"urn:uuid:…"``, ``"Observation/…"``) to the inputs.
    """
    data = _Input(assessment, subject, form)
    out: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": id or data.id("RiskAssessment"),
        "status": "final",
        "method": {"coding": [_ruleset_coding(assessment)], "text": "hipscreen screening rules"},
        "code": {"text": "Hip flexor / extensor balance screening"},
        "subject": data.subject,
    }
    _put(out, "occurrenceDateTime", datetime_text(when))
    _put(out, "basis", _refs(basis))
    _put(
        out,
        "prediction",
        [
            {
                "outcome": {"coding": [_finding_coding(f)], "text": f.title},
                "qualitativeRisk": {
                    "coding": [
                        {
                            "system": _RISK,
                            "code": _QUALITATIVE_RISK[f.severity][0],
                            "display": _QUALITATIVE_RISK[f.severity][1],
                        }
                    ],
                    "text": f.severity.value,
                },
                "rationale": _rationale(f),
            }
            for f in assessment.findings
        ],
    )
    referral = assessment.referral
    if referral is not None:
        out["mitigation"] = f"Referral ({referral.urgency.value}): see {referral.see}."
    elif assessment.recommendations:
        names = ", ".join(rec.exercise.name for rec in assessment.recommendations)
        out["mitigation"] = f"Exercise plan: {names}."
    note = assessment.disclaimer
    if not assessment.findings:
        note = f"No findings from the inputs given. {note}"
    out["note"] = _note(note)
    return out


# -- ServiceRequest (the referral) ----------------------------------------------------------------


def referral_service_request(
    assessment: Assessment,
    *,
    subject: SubjectInput,
    form: FormInput | None = None,
    id: str | None = None,
    when: When = None,
    reason: str | None = None,
    supporting_info: Sequence[str] = (),
) -> dict[str, Any] | None:
    """The referral as a FHIR R4 ``ServiceRequest`` (None when the assessment has no referral).

    A proposal, not an order: ``status`` draft, ``intent`` proposal, ``priority`` from the
    urgency (routine → routine, urgent → urgent, emergency → stat), ``performerType`` who to see,
    ``patientInstruction`` the referral message, ``reasonCode`` the findings behind it.

    Args:
        assessment: the screening result.
        subject: the patient, ``"Patient/123"`` or a Reference mapping.
        form: the screened form; it only makes the default id differ between forms.
        id: the resource id; by default a uuid5 of the content.
        when: the ``authoredOn`` time (left out when None).
        reason: a reference to the RiskAssessment, as ``reasonReference``.
        supporting_info: references to the inputs (e.g. the QuestionnaireResponse).
    """
    referral = assessment.referral
    if referral is None:
        return None
    data = _Input(assessment, subject, form)
    out: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": id or data.id("ServiceRequest"),
        "status": "draft",
        "intent": "proposal",
        "priority": _PRIORITY[referral.urgency],
        "code": {"text": f"Referral: see {referral.see}"},
        "subject": data.subject,
    }
    _put(out, "authoredOn", datetime_text(when))
    out["performerType"] = {"text": referral.see}
    _put(out, "reasonCode", _finding_codes(assessment, referral.because))
    _put(out, "reasonReference", _refs([reason] if reason else []))
    _put(out, "supportingInfo", _refs(supporting_info))
    out["note"] = _note(assessment.disclaimer)
    out["patientInstruction"] = referral.message
    return out


# -- CarePlan (the exercise plan) -----------------------------------------------------------------


def _timing(dose: Any) -> dict[str, Any]:
    repeat: dict[str, Any] = {"frequency": 1, "period": 1, "periodUnit": "d"}
    if dose.days_per_week < 7:
        repeat = {"frequency": dose.days_per_week, "period": 1, "periodUnit": "wk"}
    if dose.minutes:
        repeat.update(duration=dose.minutes, durationUnit="min")
    elif dose.hold_seconds:
        repeat.update(duration=dose.hold_seconds, durationUnit="s")
    return {"repeat": repeat, "code": {"text": str(dose)}}


def care_plan(
    assessment: Assessment,
    *,
    subject: SubjectInput,
    form: FormInput | None = None,
    id: str | None = None,
    when: When = None,
    supporting_info: Sequence[str] = (),
) -> dict[str, Any] | None:
    """The exercise plan as a FHIR R4 ``CarePlan`` (None when nothing is recommended or left
    out).

    A proposal (``status`` draft, ``intent`` proposal). One activity per recommended exercise:
    the exercise id as ``code``, the findings it answers as ``reasonCode``, the dose as
    ``scheduledTiming`` (days per week, minutes or hold seconds) and in the ``description`` with
    the instructions. Each exercise the screen left out is an activity with ``doNotPerform`` and
    the reason as ``statusReason``.

    Args:
        assessment: the screening result.
        subject: the patient, ``"Patient/123"`` or a Reference mapping.
        form: the screened form; it only makes the default id differ between forms.
        id: the resource id; by default a uuid5 of the content.
        when: the ``created`` time (left out when None).
        supporting_info: references, e.g. to the RiskAssessment.
    """
    if not assessment.recommendations and not assessment.excluded:
        return None
    data = _Input(assessment, subject, form)
    activities = []
    for rec in assessment.recommendations:
        ex = rec.exercise
        text = [f"{ex.name}: {rec.dose}."]
        if rec.dose.note:
            text.append(rec.dose.note)
        if rec.emphasis is not None:
            text.append(f"Emphasis: {rec.emphasis.value} side.")
        if rec.note:
            text.append(rec.note)
        if ex.instructions:
            text.append(ex.instructions)
        detail: dict[str, Any] = {
            "kind": "ServiceRequest",
            "code": {
                "coding": [{"system": EXERCISE_SYSTEM, "code": ex.id, "display": ex.name}],
                "text": ex.name,
            },
        }
        _put(detail, "reasonCode", _finding_codes(assessment, rec.because))
        detail.update(
            status="not-started",
            doNotPerform=False,
            scheduledTiming=_timing(rec.dose),
            description=" ".join(text),
        )
        activities.append({"detail": detail})
    for left_out in assessment.excluded:
        name = left_out.exercise_id.replace("_", " ")
        detail = {
            "kind": "ServiceRequest",
            "code": {
                "coding": [{"system": EXERCISE_SYSTEM, "code": left_out.exercise_id}],
                "text": name,
            },
        }
        _put(detail, "reasonCode", _finding_codes(assessment, left_out.because))
        detail.update(
            status="not-started",
            statusReason={"text": left_out.reason},
            doNotPerform=True,
            description=f"Do not do: {name} ({left_out.reason}).",
        )
        activities.append({"detail": detail})
    out: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": id or data.id("CarePlan"),
        "status": "draft",
        "intent": "proposal",
        "title": "hipscreen exercise plan",
        "description": "Exercises for hip flexor / extensor balance, and exercises to leave out.",
        "subject": data.subject,
    }
    _put(out, "created", datetime_text(when))
    _put(out, "supportingInfo", _refs(supporting_info))
    out["activity"] = activities
    out["note"] = _note(assessment.disclaimer)
    return out


# -- Observations (the measurements on the form) -------------------------------------------------


def _body_site(where: str, side: Side) -> dict[str, Any]:
    code, display = _LATERALITY[side]
    laterality = {"coding": [{"system": SNOMED, "code": code, "display": display}]}
    site: dict[str, Any] = {
        "extension": [{"url": _LATERALITY_EXTENSION, "valueCodeableConcept": laterality}],
    }
    if where == "hip":
        site["coding"] = [_HIP_JOINT]
    site["text"] = f"{'both' if side is Side.BOTH else side.value} {where}"
    return site


def measurement_observations(
    form: FormInput,
    *,
    subject: SubjectInput,
    when: When = None,
    derived_from: str | None = None,
    ids: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The measured values of a form as FHIR R4 Observation resources, one per value and side.

    Angles (range of motion, modified Thomas test, straight-leg raise, active knee extension)
    have ``valueQuantity`` in UCUM degrees (``deg``), yes/no signs ``valueBoolean``; the body
    site carries the side (SNOMED CT laterality, extension ``observation-structureLaterality``).
    Back-pain intensity is a pain score (LOINC 72514-3, UCUM ``{score}``).

    Args:
        form: the screened form.
        subject: the patient, ``"Patient/123"`` or a Reference mapping.
        when: the ``effectiveDateTime`` (left out when None).
        derived_from: a reference to the QuestionnaireResponse the values come from.
        ids: ids to use by field path (``"rom.hip_flexion.left"``); others get a uuid5.
    """
    intake = coerce_form(form)
    subject_ref = subject_reference(subject)
    key = (
        json.dumps(subject_ref, sort_keys=True),
        json.dumps(intake.model_dump(mode="json", exclude_unset=True), sort_keys=True),
    )
    chosen = ids or {}
    values: list[tuple[str, Side, float | bool, str, str | None]] = [
        (motion.value, side, value, path, intake.rom.method.value if intake.rom else None)
        for motion, side, value, path in intake.angles()
    ]
    values += [(name, side, value, path, None) for name, side, value, path in intake.measurements()]
    out = []
    for name, side, value, path, method in values:
        display, where = _MEASUREMENTS.get(name, (name.replace("_", " "), "hip"))
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": chosen.get(path) or content_id("Observation", *key, path),
            "status": "final",
            "category": [{"coding": [{"system": _CATEGORY, "code": "exam", "display": "Exam"}]}],
            "code": {
                "coding": [{"system": MEASUREMENT_SYSTEM, "code": name, "display": display}],
                "text": display,
            },
            "subject": subject_ref,
        }
        _put(obs, "effectiveDateTime", datetime_text(when))
        if isinstance(value, bool):
            obs["valueBoolean"] = value
        else:
            obs["valueQuantity"] = {"value": value, "unit": "°", "system": UCUM, "code": "deg"}
        obs["note"] = _note(f"Form field {path}.")
        obs["bodySite"] = _body_site(where, side)
        if method is not None:
            obs["method"] = {
                "coding": [{"system": "urn:hipscreen:rom-method", "code": method}],
                "text": method,
            }
        _put(obs, "derivedFrom", _refs([derived_from] if derived_from else []))
        out.append(obs)
    back = intake.back_pain
    if back is not None and back.intensity is not None:
        path = "back_pain.intensity"
        obs = {
            "resourceType": "Observation",
            "id": chosen.get(path) or content_id("Observation", *key, path),
            "status": "final",
            "category": [
                {"coding": [{"system": _CATEGORY, "code": "survey", "display": "Survey"}]}
            ],
            "code": {"coding": [_PAIN_NRS], "text": "Low back pain now, 0–10"},
            "subject": subject_ref,
        }
        _put(obs, "effectiveDateTime", datetime_text(when))
        obs["valueQuantity"] = {"value": back.intensity, "system": UCUM, "code": "{score}"}
        obs["note"] = _note(f"Form field {path}.")
        _put(obs, "derivedFrom", _refs([derived_from] if derived_from else []))
        out.append(obs)
    return out


# -- GuidanceResponse (what was decided, and what was not assessed) ------------------------------

_GROUP_GRADED = re.compile(r"^(?P<measure>tightness|strength) of (?P<group>\w+)$")
_MEASURED = re.compile(r"^measured (?P<motion>\w+)$")
_NOT_ASSESSED_FIELDS = {
    "modified Thomas test": ("thomas_test",),
    "hamstring length test": ("straight_leg_raise", "active_knee_extension"),
    "recent fall": ("recent_fall",),
    "recent joint injection or procedure": ("recent_joint_procedure",),
    "anticoagulant use": ("anticoagulant",),
    "age": ("age",),
    "osteoporosis": ("osteoporosis",),
    "past vertebral fracture": ("vertebral_fracture",),
    "pregnancy": ("pregnancy",),
    "red-flag symptom questions": ("symptoms", "symptom_checklist_completed"),
}


def not_assessed_link_ids(text: str) -> tuple[str, ...]:
    """The intake Questionnaire linkIds that would have answered one ``not_assessed`` entry."""
    if match := _GROUP_GRADED.match(text):
        group = match["group"]
        group_of = tables().group_of
        found = tuple(f"{match['measure']}.{m.value}" for m in Muscle if group_of[m].value == group)
    elif match := _MEASURED.match(text):
        found = (f"rom.{match['motion']}",)
    else:
        found = next(
            (ids for start, ids in _NOT_ASSESSED_FIELDS.items() if text.startswith(start)), ()
        )
    known = item_index()
    return tuple(link_id for link_id in found if link_id in known)


def _data_requirement(text: str) -> dict[str, Any]:
    link_ids = not_assessed_link_ids(text)
    codes = [
        {"system": QUESTIONNAIRE_URL, "code": link_id, "display": text} for link_id in link_ids
    ] or [{"system": NOT_ASSESSED_SYSTEM, "display": text}]
    return {
        "type": "QuestionnaireResponse",
        "codeFilter": [{"path": "item.linkId", "code": codes}],
    }


def guidance_response(
    assessment: Assessment,
    *,
    subject: SubjectInput,
    form: FormInput | None = None,
    id: str | None = None,
    when: When = None,
    request_id: str | None = None,
    result: str | None = None,
) -> dict[str, Any]:
    """The decision envelope as a FHIR R4 ``GuidanceResponse``.

    ``module`` is the rule set; ``status`` ``success``, or ``data-requested`` when inputs were
    not assessed; each of them is a ``dataRequirement`` on the intake QuestionnaireResponse
    (``codeFilter`` on ``item.linkId``, the linkIds that would answer it, the not-assessed text
    as their display).

    Args:
        assessment: the screening result.
        subject: the patient, ``"Patient/123"`` or a Reference mapping.
        form: the screened form; it only makes the default id differ between forms.
        id: the resource id; by default a uuid5 of the content.
        when: the ``occurrenceDateTime`` (left out when None).
        request_id: the request's id (e.g. a CDS Hooks ``hookInstance``), as
            ``requestIdentifier``.
        result: a reference to the CarePlan, as ``result``.
    """
    data = _Input(assessment, subject, form)
    out: dict[str, Any] = {
        "resourceType": "GuidanceResponse",
        "id": id or data.id("GuidanceResponse", request_id or ""),
    }
    if request_id:
        out["requestIdentifier"] = {"system": "urn:ietf:rfc:3986", "value": request_id}
    out["moduleCodeableConcept"] = {"coding": [_ruleset_coding(assessment)]}
    out["status"] = "data-requested" if assessment.not_assessed else "success"
    out["subject"] = data.subject
    _put(out, "occurrenceDateTime", datetime_text(when))
    out["note"] = _note(assessment.disclaimer)
    _put(out, "result", {"reference": result} if result else None)
    _put(out, "dataRequirement", [_data_requirement(t) for t in assessment.not_assessed])
    return out


# -- Provenance ------------------------------------------------------------------------------------


def provenance(
    assessment: Assessment,
    *,
    targets: Sequence[str],
    id: str | None = None,
    when: When = None,
    sources: Sequence[str] = (),
) -> dict[str, Any]:
    """Who made the resources: a FHIR R4 ``Provenance`` naming the hipscreen version and the rule
    set (version and the digest of the rule files, as in ``ruleset_version``).

    Args:
        assessment: the screening result.
        targets: references to the resources made (at least one).
        id: the resource id; by default a uuid5 of the targets and the assessment.
        when: ``recorded`` (now, in UTC, when None: FHIR requires it).
        sources: references to the inputs (e.g. the QuestionnaireResponse).
    """
    if not targets:
        raise ValueError("a Provenance needs at least one target reference (got none)")
    version, _, digest = assessment.ruleset_version.partition("+")
    recorded = datetime_text(when) or datetime_text(datetime.now(UTC))
    rules = f"hipscreen rules {version}" + (f", digest {digest}" if digest else "")
    entities: list[dict[str, Any]] = [
        {
            "role": "source",
            "what": {
                "identifier": {"system": RULESET_SYSTEM, "value": assessment.ruleset_version},
                "display": rules,
            },
        }
    ]
    entities += [{"role": "source", "what": {"reference": s}} for s in sources]
    return {
        "resourceType": "Provenance",
        "id": id or content_id("Provenance", *targets, assessment.model_dump_json(), *sources),
        "target": _refs(targets),
        "recorded": recorded,
        "activity": {
            "coding": [{"system": _DATA_OPERATION, "code": "CREATE", "display": "create"}]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {"system": _PARTICIPANT, "code": "assembler", "display": "Assembler"}
                    ]
                },
                "who": {
                    "identifier": {"system": "urn:hipscreen:software", "value": __version__},
                    "display": f"hipscreen {__version__} ({rules})",
                },
            }
        ],
        "entity": entities,
    }


# -- the Bundle ------------------------------------------------------------------------------------


def bundle(
    assessment: Assessment,
    *,
    subject: SubjectInput,
    form: FormInput | None = None,
    when: When = None,
    ids: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """An assessment as a FHIR R4 ``Bundle`` of type ``collection`` (`Assessment.to_fhir`).

    Entries, each with ``fullUrl`` ``urn:uuid:<id>`` (for uuid ids) that the others reference:
    with ``form``, the QuestionnaireResponse and the measurement Observations; then the
    RiskAssessment, the referral's ServiceRequest, the CarePlan, the GuidanceResponse and the
    Provenance of them all.

    Args:
        assessment: the screening result.
        subject: the patient, ``"Patient/123"`` or a Reference mapping.
        form: the screened form (an `IntakeForm`, mapping or JSON string).
        when: when it was screened (``Provenance.recorded`` is now when None).
        ids: ids to use by resource type (``"RiskAssessment"``, ``"Bundle"`` …) or, for an
            Observation, by field path; the others are uuid5s of the content.
        request_id: the request's id (e.g. a CDS Hooks ``hookInstance``).

    Raises:
        InvalidFormError: ``form`` is invalid.
        ValueError: ``subject`` is empty, or ``when`` is not a date and time with an offset.
    """
    chosen = dict(ids or {})
    data = _Input(assessment, subject, form)
    resources: list[dict[str, Any]] = []

    def ref(resource: dict[str, Any]) -> str:
        return reference(resource["resourceType"], resource["id"])

    qr_ref = None
    observations: list[dict[str, Any]] = []
    if data.form is not None:
        qr = questionnaire_response(
            data.form,
            subject=data.subject,
            authored=when,
            id=chosen.get("QuestionnaireResponse") or data.id("QuestionnaireResponse"),
        )
        qr_ref = ref(qr)
        resources.append(qr)
        observations = measurement_observations(
            data.form, subject=data.subject, when=when, derived_from=qr_ref, ids=chosen
        )
        resources += observations
    risk = risk_assessment(
        assessment,
        subject=data.subject,
        form=data.form,
        id=chosen.get("RiskAssessment"),
        when=when,
        basis=[r for r in [qr_ref, *map(ref, observations)] if r],
    )
    resources.append(risk)
    inputs = [qr_ref] if qr_ref else []
    referral = referral_service_request(
        assessment,
        subject=data.subject,
        form=data.form,
        id=chosen.get("ServiceRequest"),
        when=when,
        reason=ref(risk),
        supporting_info=inputs,
    )
    if referral is not None:
        resources.append(referral)
    plan = care_plan(
        assessment,
        subject=data.subject,
        form=data.form,
        id=chosen.get("CarePlan"),
        when=when,
        supporting_info=[ref(risk)],
    )
    if plan is not None:
        resources.append(plan)
    resources.append(
        guidance_response(
            assessment,
            subject=data.subject,
            form=data.form,
            id=chosen.get("GuidanceResponse"),
            when=when,
            request_id=request_id,
            result=ref(plan) if plan is not None else None,
        )
    )
    made = [ref(r) for r in resources if r["resourceType"] != "QuestionnaireResponse"]
    resources.append(
        provenance(
            assessment,
            targets=made,
            id=chosen.get("Provenance") or data.id("Provenance", request_id or ""),
            when=when,
            sources=inputs,
        )
    )
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": chosen.get("Bundle") or data.id("Bundle", request_id or ""),
        "type": "collection",
    }
    _put(out, "timestamp", datetime_text(when))
    out["entry"] = [_entry(resource) for resource in resources]
    return out


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    link = reference(resource["resourceType"], resource["id"])
    if link.startswith("urn:uuid:"):
        return {"fullUrl": link, "resource": resource}
    return {"resource": resource}
