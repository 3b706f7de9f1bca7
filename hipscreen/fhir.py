"""FHIR R4 in and out: the intake form as a Questionnaire, an assessment as a Bundle.

In: `questionnaire` (the intake form as a Questionnaire whose linkIds are the form's field
paths), `questionnaire_response` (a form as a QuestionnaireResponse) and
`from_questionnaire_response` (back to an `IntakeForm`). Out: `bundle` (the same as
`Assessment.to_fhir`) and one builder per resource, for a CDS Hooks ``create`` action or your
own Bundle: `risk_assessment`, `referral_service_request`, `care_plan`,
`measurement_observations`, `guidance_response` and `provenance`.

Every function takes and returns plain JSON-ready dicts; hipscreen needs no FHIR library.

Examples:
    >>> import hipscreen
    >>> from hipscreen import fhir
    >>> form = fhir.from_questionnaire_response(fhir.questionnaire_response({"age": 40}))
    >>> form.age
    40
"""

from hipscreen._fhir._codes import (
    EXERCISE_SYSTEM,
    FINDING_SYSTEM,
    MEASUREMENT_SYSTEM,
    QUESTIONNAIRE_URL,
    RULESET_SYSTEM,
)
from hipscreen._fhir._intake import from_questionnaire_response
from hipscreen._fhir._questionnaire import questionnaire, questionnaire_response
from hipscreen._fhir._resources import (
    bundle,
    care_plan,
    guidance_response,
    measurement_observations,
    provenance,
    referral_service_request,
    risk_assessment,
)

__all__ = [
    "EXERCISE_SYSTEM",
    "FINDING_SYSTEM",
    "MEASUREMENT_SYSTEM",
    "QUESTIONNAIRE_URL",
    "RULESET_SYSTEM",
    "bundle",
    "care_plan",
    "from_questionnaire_response",
    "guidance_response",
    "measurement_observations",
    "provenance",
    "questionnaire",
    "questionnaire_response",
    "referral_service_request",
    "risk_assessment",
]
