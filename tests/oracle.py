"""The reference evaluator of the rule data, for tests and benchmarks.

It lives in the package now (``hipscreen._rules.explain``, where it also answers `Assessment.why`
and `Assessment.why_not`); this module keeps the names the tests and benchmarks have always used.
See that module's docstring for what it computes and how it stays independent of the engine.
"""

from __future__ import annotations

from hipscreen._rules.explain import (
    CONCERN_IS_LOW,
    KNOWN_ATOM_FIELDS,
    KNOWN_ATTRIBUTES,
    LENGTH_TESTS,
    NUMERIC_TESTS,
    SIDE_ORDER,
    EvaluatedFinding,
    Evaluator,
    EvaluatorError,
    Evidence,
    OFact,
    atom_matches,
    check_atom,
    conjunctions,
    could_share_a_fact,
    form_facts,
    shared_fact_conjunctions,
    summary,
    walk,
)

Oracle = Evaluator
OracleError = EvaluatorError
OracleFinding = EvaluatedFinding

__all__ = [
    "CONCERN_IS_LOW",
    "KNOWN_ATOM_FIELDS",
    "KNOWN_ATTRIBUTES",
    "LENGTH_TESTS",
    "NUMERIC_TESTS",
    "SIDE_ORDER",
    "EvaluatedFinding",
    "Evaluator",
    "EvaluatorError",
    "Evidence",
    "OFact",
    "Oracle",
    "OracleError",
    "OracleFinding",
    "atom_matches",
    "check_atom",
    "conjunctions",
    "could_share_a_fact",
    "form_facts",
    "shared_fact_conjunctions",
    "summary",
    "walk",
]
