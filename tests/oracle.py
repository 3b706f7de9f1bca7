"""The reference evaluator of the rule data, for tests and benchmarks.

It lives in the package now (``hipscreen._rules.evaluator`` and ``formfacts``, where it also
answers `Assessment.why` and `Assessment.why_not` through ``hipscreen._rules.explain``); this
module keeps the names the tests and benchmarks have always used. See the evaluator's docstring
for what it computes and how it stays independent of the engine.
"""

from __future__ import annotations

from hipscreen._rules.evaluator import (
    KNOWN_ATOM_FIELDS,
    KNOWN_ATTRIBUTES,
    EvaluatedFinding,
    Evaluator,
    Evidence,
    atom_matches,
    check_atom,
    conjunctions,
    could_share_a_fact,
    shared_fact_conjunctions,
    summary,
    walk,
)
from hipscreen._rules.formfacts import (
    CONCERN_IS_LOW,
    LENGTH_TESTS,
    NUMERIC_TESTS,
    SIDE_ORDER,
    EvaluatorError,
    OFact,
    form_facts,
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
