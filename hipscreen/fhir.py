"""FHIR R4 in and out: the intake form as a Questionnaire, an assessment as a Bundle.

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

__all__ = [
    "EXERCISE_SYSTEM",
    "FINDING_SYSTEM",
    "MEASUREMENT_SYSTEM",
    "QUESTIONNAIRE_URL",
    "RULESET_SYSTEM",
    "from_questionnaire_response",
    "questionnaire",
    "questionnaire_response",
]
