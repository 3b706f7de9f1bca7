"""Why a rule fired, and why it did not.

For every alternative of the rule's condition: which atoms held and which did not, with the
input value (or "not assessed"), the threshold and where it came from, down any chain of
findings.

The answers come from the pure-Python evaluator (`hipscreen._rules.evaluator`), and `explain`
refuses to explain an assessment that evaluator disagrees with, so an explanation never
contradicts the finding it explains.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hipscreen._errors import HipscreenError
from hipscreen._intake.form import IntakeForm
from hipscreen._rules.atoms import Atom, Condition
from hipscreen._rules.evaluator import (
    Evaluator,
    atom_bounds,
    atom_matches,
    conjunctions,
    evaluator_for,
    within,
)
from hipscreen._rules.formfacts import NUMERIC_TESTS, OFact
from hipscreen._rules.ruleset import RuleSet
from hipscreen._vocabulary import (
    Severity,
    suggest,
)

if TYPE_CHECKING:
    from hipscreen._results import Assessment
    from hipscreen._screen import Screener

# -- explanations: why a rule fired, why it did not ------------------------------------------------


class ExplanationError(HipscreenError, ValueError):
    """A rule cannot be explained for this assessment: an unknown rule id, a rule set other than
    the one the assessment was screened with, a form other than the one screened, or ``why`` for
    a rule that did not fire (``why_not`` for one that did)."""


# The attributes that say which input an atom reads; the others (side, method, length_tested,
# leg_pain) narrow it down. A fact matching the first but not the second is a near miss.
IDENTITY: Mapping[str, tuple[str, ...]] = {
    "grade": ("measure", "muscle", "group"),
    "rom": ("motion",),
    "test": ("name",),
    "sign": ("name",),
    "symptom": ("name",),
    "activity": ("name",),
    "context": ("name",),
    "asym": ("measure", "group"),
    "age": (),
    "unmeasured": ("name",),
    "score": ("instrument",),
}

SIGN_FIELDS: Mapping[str, str] = {
    "thomas_thigh_abducts": "thomas_test.thigh_abducts",
    "slr_reproduces_leg_pain": "straight_leg_raise.reproduces_leg_pain",
}

CONTEXT_FIELDS: Mapping[str, str] = {
    "pregnancy": "pregnancy",
    "pregnancy_weeks": "pregnancy.weeks",
    "pregnancy_weeks_unknown": "pregnancy.weeks",
    "hip_replacement_posterior": "hip_replacement.approach",
    "hip_replacement_anterior": "hip_replacement.approach",
    "hip_replacement_lateral": "hip_replacement.approach",
    "hip_replacement_unknown": "hip_replacement.approach",
    "hip_operation_weeks": "hip_replacement.weeks_since",
    "osteoporosis": "osteoporosis",
    "vertebral_fracture": "vertebral_fracture",
    "back_pain_weeks": "back_pain.weeks",
    "back_pain_weeks_unknown": "back_pain.weeks",
    "back_pain_intensity": "back_pain.intensity",
    "fall_without_injury_signs": "recent_fall",
    "fall_with_new_pain": "recent_fall.new_pain",
    "anticoagulant": "anticoagulant",
    "osteoporosis_unknown": "osteoporosis",
    "anticoagulant_unknown": "anticoagulant",
    "age_unknown": "age",
    "procedure_days": "joint_procedure.days_since",
    "procedure_timing_unknown": "joint_procedure.days_since",
    "procedure_pain_not_settled": "joint_procedure.pain_worsening",
    "postpartum": "postpartum",
    "postpartum_weeks": "postpartum.weeks_since",
    "postpartum_weeks_unknown": "postpartum.weeks_since",
    "caesarean_delivery": "postpartum.delivery",
    "delivery_type_unknown": "postpartum.delivery",
    "hip_replacement": "hip_replacement",
}

NOT_ASSESSED = "not assessed"


@dataclass(frozen=True)
class InputCheck:
    """One input an atom read, or would have read, and whether it met the atom's test."""

    field: str
    value: int | float | str | None  # None: the form leaves it blank
    held: bool
    note: str = ""  # why it did not meet the test; for a blank: "not assessed", "not reported"

    def text(self) -> str:
        if self.value is None:
            return f"{self.field}: {self.note or NOT_ASSESSED}"
        shown = f"{self.value:g}" if isinstance(self.value, float) else str(self.value)
        return f"{self.field} = {shown}" + (f" — {self.note}" if self.note else "")


@dataclass(frozen=True)
class AtomCheck:
    """One test of a rule's condition: did it hold, on which inputs, against which threshold."""

    test: str  # the test in words, e.g. "grade tightness iliopsoas ≥ 2 (tight_grade)"
    held: bool
    inputs: tuple[InputCheck, ...] = ()
    threshold: str | None = None  # e.g. "≥ 2 (tight_grade)"
    sources: tuple[str, ...] = ()  # where each named threshold comes from (ruleset.yaml)
    chain: Explanation | None = None  # for ``finding:``: why that finding did (not) fire


@dataclass(frozen=True)
class AlternativeCheck:
    """One way the condition can hold: a conjunction of tests, all of which must hold."""

    atoms: tuple[AtomCheck, ...]

    @property
    def held(self) -> bool:
        return all(atom.held for atom in self.atoms)

    @property
    def missing(self) -> int:
        """How many of its tests did not hold (0 when the alternative held)."""
        return sum(not atom.held for atom in self.atoms)


@dataclass(frozen=True)
class EscalationCheck:
    """An escalation of a rule that fired: the severity it raises to, and its alternatives."""

    severity: Severity
    alternatives: tuple[AlternativeCheck, ...]

    @property
    def held(self) -> bool:
        return any(alt.held for alt in self.alternatives)


@dataclass(frozen=True)
class Explanation:
    """Why a rule fired or did not, for one form: every alternative of its condition, with the
    tests that held and those that did not, the inputs they read and the thresholds they used.

    The engine decided whether the rule fired (`fired`); this explanation comes from an
    independent evaluation of the rule data that agrees with it (`explain` checks that).
    """

    rule_id: str
    title: str
    severity: (
        Severity  # the finding's severity when it fired (escalations included), else the rule's
    )
    fired: bool
    file: str
    ruleset_version: str
    alternatives: tuple[AlternativeCheck, ...]
    escalations: tuple[EscalationCheck, ...] = ()

    def nearest(self) -> tuple[AlternativeCheck, ...]:
        """The alternatives that missed by the fewest tests (those that held, if any did)."""
        fewest = min((alt.missing for alt in self.alternatives), default=0)
        return tuple(alt for alt in self.alternatives if alt.missing == fewest)

    def text(self, *, nearest: bool = False, held_only: bool = False) -> str:
        """The explanation as indented plain text.

        Args:
            nearest: show only the alternatives that missed by the fewest tests.
            held_only: show only the alternatives that held.
        """
        keep = self.nearest() if nearest else None
        if held_only:
            keep = tuple(alt for alt in self.alternatives if alt.held)
        return "\n".join(self._lines(0, top=True, keep=keep))

    def __str__(self) -> str:
        return self.text()

    def _lines(
        self, depth: int, top: bool = False, keep: tuple[AlternativeCheck, ...] | None = None
    ) -> list[str]:
        """Every alternative at the top and for a rule that did not fire; for a chained rule
        that fired, only what held (why it fired)."""
        brief = self.fired and not top
        pad = "  " * depth
        verdict = "fired" if self.fired else "did not fire"
        lines = [f"{pad}{self.rule_id} ({self.title}, {self.severity.value}): {verdict}"]
        if top:
            lines.append(f"{pad}rules {self.ruleset_version}, rule file {self.file}")
        count = len(self.alternatives)
        held = sum(alt.held for alt in self.alternatives)
        if count > 1:
            lines.append(
                f"{pad}it fires when any one of {count} alternatives holds; {held} held"
                if held
                else f"{pad}it fires when any one of {count} alternatives holds; none held"
            )
        for i, alt in enumerate(self.alternatives, 1):
            if not (brief and not alt.held) and (keep is None or any(alt is k for k in keep)):
                lines += _alternative_lines(alt, i, count, depth + 1)
        for escalation in self.escalations:
            if brief and not escalation.held:
                continue
            state = "applies" if escalation.held else "does not apply"
            lines.append(f"{pad}  escalation to {escalation.severity.value}: {state}")
            n = len(escalation.alternatives)
            for i, alt in enumerate(escalation.alternatives, 1):
                lines += _alternative_lines(alt, i, n, depth + 2)
        return lines


def _alternative_lines(alt: AlternativeCheck, i: int, count: int, depth: int) -> list[str]:
    pad = "  " * depth
    name = f"alternative {i} of {count}" if count > 1 else "condition"
    if alt.held:
        state = "held"
    else:
        state = f"not met ({len(alt.atoms) - alt.missing} of {len(alt.atoms)} tests held)"
    lines = [f"{pad}{name}: {state}"]
    for atom in alt.atoms:
        mark = "✓" if atom.held else "✗"
        lines.append(f"{pad}  {mark} {atom.test}")
        lines += [f"{pad}      {check.text()}" for check in atom.inputs]
        lines += [f"{pad}      threshold {source}" for source in atom.sources]
        if atom.chain is not None:
            lines += atom.chain._lines(depth + 3)
    return lines


def _atom_text(atom: Atom) -> str:
    """The test in words: the input it reads, then what it asks of it."""
    if atom.fact == "finding":
        return f"finding {dict(atom.equals)['id']}"
    identity = IDENTITY.get(atom.fact, ())
    words: list[str] = [atom.fact if atom.fact != "asym" else "left/right difference in"]
    words += [value for attr, value in atom.equals if attr in identity]
    qualifiers = [f"{attr} {value}" for attr, value in atom.equals if attr not in identity]
    if atom.one_of is not None:
        attr, values = atom.one_of
        if attr in identity:
            words.append(" or ".join(values))
        elif not (atom.describe or "").endswith(f"({', '.join(values)})"):
            qualifiers.append(f"{attr} {' or '.join(values)}")
    text = " ".join(words)
    if qualifiers:
        text += f" ({', '.join(qualifiers)})"
    if atom_bounds(atom) and atom.describe:
        text += f": {atom.describe.removeprefix('left/right difference ')}"
    elif atom.fact == "unmeasured":
        text += ": not measured"
    return text


def _sources(atom: Atom, ruleset: RuleSet) -> tuple[str, ...]:
    """Where the named thresholds of an atom's test come from."""
    if not atom_bounds(atom) or not atom.describe:
        return ()
    found = []
    for name in re.findall(r"\(([a-z][a-z0-9_]*)\)", atom.describe):
        spec = ruleset.thresholds.get(name)
        if spec is not None:
            unit = f" {spec.unit}" if spec.unit else ""
            found.append(f"{name} = {spec.value:g}{unit} (ruleset.yaml; {spec.source})")
    return tuple(found)


def _form_value(intake: IntakeForm, path: str) -> int | float | str | None:
    """The value at a dotted path of the form as cited: None when blank, 'yes'/'no' for flags,
    'given' for a record."""
    value: Any = intake
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | str):
        return value
    if isinstance(value, tuple | list | dict):
        return ", ".join(str(getattr(v, "value", v)) for v in value) if value else None
    return "given"


def _blank(atom: Atom, intake: IntakeForm) -> InputCheck:
    """The input an atom would read, when no fact of the form is even close."""
    tests = dict(atom.equals)
    name = tests.get("name") or (atom.one_of[1][0] if atom.one_of else "")
    if atom.fact == "grade":
        measure = tests["measure"]
        if "muscle" in tests:
            return InputCheck(f"{measure}.{tests['muscle']}", None, False, NOT_ASSESSED)
        where = f" ({tests['group']} muscles)" if "group" in tests else ""
        return InputCheck(f"{measure}{where}", None, False, NOT_ASSESSED)
    if atom.fact == "rom":
        return InputCheck(f"rom.{tests['motion']}", None, False, "not measured")
    if atom.fact == "test":
        field_name, attr = next((f, a) for n, f, a in NUMERIC_TESTS if n == name)
        return InputCheck(f"{field_name}.{attr}", None, False, "not measured")
    if atom.fact == "sign":
        path = SIGN_FIELDS.get(name, "signs")
        value = _form_value(intake, path)
        return InputCheck(path, value, False, NOT_ASSESSED if value is None else "not observed")
    if atom.fact in ("symptom", "activity"):
        path = "symptoms" if atom.fact == "symptom" else "activities"
        names = " or ".join(atom.one_of[1]) if atom.one_of else name
        given = _form_value(intake, path)
        told = f" (the form reports {given})" if given is not None else ""
        return InputCheck(path, None, False, f"{names} not reported{told}")
    if atom.fact == "asym":
        what = f"{tests['measure']}" + (f" ({tests['group']})" if "group" in tests else "")
        return InputCheck(what, None, False, "no left and right values that differ")
    if atom.fact == "context":
        path = CONTEXT_FIELDS.get(name, "context")
        value = _form_value(intake, path)
        return InputCheck(path, value, False, NOT_ASSESSED if value is None else f"not {name}")
    if atom.fact == "unmeasured":
        return InputCheck(f"rom.{name}", "measured", False, "the rule asks for no measurement")
    if atom.fact == "score":
        path = f"instruments.{tests['instrument']}"
        value = _form_value(intake, path)
        if value is None:
            return InputCheck(path, None, False, NOT_ASSESSED)
        return InputCheck(path, value, False, "items missing: the score or band is not certain")
    return InputCheck(atom.fact, _form_value(intake, atom.fact), False, NOT_ASSESSED)


def _near_miss(atom: Atom, fact: OFact) -> str:
    """Why a fact that reads the atom's input does not meet its test."""
    reasons = [
        f"{attr} is {fact.attrs.get(attr, 'not given')}, the rule asks {value}"
        for attr, value in atom.equals
        if fact.attrs.get(attr) != value
    ]
    if atom.one_of is not None and fact.attrs.get(atom.one_of[0]) not in atom.one_of[1]:
        attr, values = atom.one_of
        reasons.append(f"{attr} is {fact.attrs.get(attr)}, the rule asks {' or '.join(values)}")
    bounds = atom_bounds(atom)
    if bounds and (fact.value is None or not all(within(fact.value, o, b) for o, b in bounds)):
        test = (atom.describe or "").removeprefix("left/right difference ")
        reasons.append(f"not {test}")
    return "; ".join(reasons)


def _relevant(atom: Atom, fact: OFact) -> bool:
    """Does the fact read the same input as the atom (same identity attributes)?"""
    identity = IDENTITY.get(atom.fact, ())
    if any(fact.attrs.get(attr) != value for attr, value in atom.equals if attr in identity):
        return False
    return not (
        atom.one_of is not None
        and atom.one_of[0] in identity
        and fact.attrs.get(atom.one_of[0]) not in atom.one_of[1]
    )


class _Explainer:
    """Builds explanations for one form under one rule set (chained rules explained once)."""

    def __init__(
        self,
        evaluator: Evaluator,
        intake: IntakeForm,
        facts: Mapping[str, Sequence[OFact]],
        fired: set[str],
        severities: Mapping[str, Severity],
        label: str,
    ) -> None:
        self.evaluator = evaluator
        self.ruleset = evaluator.ruleset
        self.intake = intake
        self.facts = facts
        self.fired = fired
        self.severities = severities
        self.label = label
        self.done: dict[str, Explanation] = {}

    def rule(self, rule_id: str) -> Explanation:
        if rule_id not in self.done:
            rule = self.evaluator.rules[self.evaluator.order[rule_id]]
            fired = rule_id in self.fired
            escalations: tuple[EscalationCheck, ...] = ()
            if fired:
                escalations = tuple(
                    EscalationCheck(raised, self.alternatives(condition))
                    for raised, condition in rule.escalations
                )
            self.done[rule_id] = Explanation(
                rule_id=rule.id,
                title=rule.spec.title,
                severity=self.severities.get(rule_id, rule.spec.severity),
                fired=fired,
                file=rule.file,
                ruleset_version=self.label,
                alternatives=self.alternatives(rule.condition),
                escalations=escalations,
            )
        return self.done[rule_id]

    def alternatives(self, condition: Condition) -> tuple[AlternativeCheck, ...]:
        return tuple(
            AlternativeCheck(tuple(self.atom(atom) for atom in alt))
            for alt in conjunctions(condition)
        )

    def atom(self, atom: Atom) -> AtomCheck:
        test = _atom_text(atom)
        if atom.fact == "finding":
            ref = dict(atom.equals)["id"]
            return AtomCheck(test, ref in self.fired, chain=self.rule(ref))
        facts = self.facts.get(atom.fact, ())
        matched = [f for f in facts if atom_matches(atom, f)]
        threshold = atom.describe if atom_bounds(atom) else None
        sources = _sources(atom, self.ruleset)
        if atom.fact == "unmeasured":
            name = dict(atom.equals).get("name") or (atom.one_of[1][0] if atom.one_of else "")
            inputs: tuple[InputCheck, ...]
            if matched:
                inputs = (InputCheck(f"rom.{name}", None, True, "not measured"),)
            else:
                inputs = tuple(
                    InputCheck(f.field, f.shown, False, "measured: the rule asks for none")
                    for f in self.facts.get("rom", ())
                    if f.attrs.get("motion") == name
                ) or (_blank(atom, self.intake),)
            return AtomCheck(test, bool(matched), inputs, threshold, sources)
        if matched:
            inputs = tuple(InputCheck(f.field, f.shown, True) for f in matched if f.cited)
            if not inputs:  # a blank the rule reads as such ("osteoporosis_unknown")
                names = sorted({f.attrs.get("name", atom.fact) for f in matched})
                inputs = tuple(
                    InputCheck(CONTEXT_FIELDS.get(n, n), None, True, NOT_ASSESSED) for n in names
                )
            return AtomCheck(test, True, inputs, threshold, sources)
        near = [f for f in facts if _relevant(atom, f)]
        if near:
            inputs = tuple(InputCheck(f.field, f.shown, False, _near_miss(atom, f)) for f in near)
        else:
            inputs = (_blank(atom, self.intake),)
        return AtomCheck(test, False, inputs, threshold, sources)


def explain(
    assessment: Assessment | None,
    form: IntakeForm | Mapping[str, Any] | str | bytes,
    rule_id: str,
    screener: Screener | None = None,
    *,
    expect: bool | None = None,
) -> Explanation:
    """Explain why ``rule_id`` fired or not for ``form``.

    Args:
        assessment: the screening result of ``form`` to explain; None screens the form first.
        form: the intake form that was screened.
        rule_id: the rule (finding id) to explain.
        screener: the screener (rule set) it was screened with; the built-in rules by default.
        expect: True for ``why`` (the rule must have fired), False for ``why_not``.

    Raises:
        ExplanationError: the rule is unknown; the assessment names another rule set than the
            screener's; the assessment's findings are not this form's; or ``expect`` is not what
            happened.
        InvalidFormError: the form is invalid.
    """
    from hipscreen._intake.form import coerce_form
    from hipscreen._screen import default_screener

    screener = screener if screener is not None else default_screener()
    ruleset = screener.ruleset
    if assessment is not None and assessment.ruleset_version != ruleset.label:
        raise ExplanationError(
            f"the assessment was screened with rules {assessment.ruleset_version}, this screener "
            f"has {ruleset.label}: explain it with the rule set it was screened with"
        )
    ids = [rule.id for rule in ruleset.rules]
    if rule_id not in ids:
        raise ExplanationError(f"unknown rule {rule_id!r}{suggest(rule_id, ids)}")
    intake = coerce_form(form)
    if assessment is None:
        assessment = screener.assess(intake)
    evaluator = evaluator_for(ruleset)
    facts, fired, _ = evaluator.fire(intake)
    engine = set(assessment.finding_ids())
    if engine != fired:
        only_engine = ", ".join(sorted(engine - fired)) or "none"
        only_here = ", ".join(sorted(fired - engine)) or "none"
        raise ExplanationError(
            "the assessment's findings are not this form's under these rules (only in the "
            f"assessment: {only_engine}; only for this form: {only_here}): pass the form that "
            "was screened"
        )
    if expect is True and rule_id not in fired:
        raise ExplanationError(f"{rule_id} did not fire for this form: why_not() tells why")
    if expect is False and rule_id in fired:
        raise ExplanationError(f"{rule_id} fired for this form: why() tells why")
    severities = {finding.id: finding.severity for finding in assessment.findings}
    explainer = _Explainer(evaluator, intake, facts, fired, severities, ruleset.label)
    return explainer.rule(rule_id)
