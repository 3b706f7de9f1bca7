"""FHIR R4 adapters: the intake form as a Questionnaire, an assessment as resources.

``_questionnaire`` builds the Questionnaire from the `IntakeForm` schema and writes a form as a
QuestionnaireResponse; ``_intake`` reads a QuestionnaireResponse back into a form; ``_resources``
renders an `Assessment` as a Bundle. Everything is plain JSON-ready dicts: no FHIR library is
needed at run time (the tests validate the output with ``fhir.resources``).
"""
