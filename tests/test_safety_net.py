"""The safety net: every vocabulary item is classified and read, and no alarm item is ever silent.

Adding a symptom or context item to the vocabulary without classifying it in rules/vocabulary.yaml
and giving it a rule fails here (and at load time), so it cannot be silently dropped.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import hipscreen
from hipscreen._engine import fact_fields
from hipscreen._facts import FormFacts
from hipscreen._rules.atoms import Atom, alternatives
from hipscreen._rules.builtin import builtin_rules_dir
from hipscreen._rules.loader import load_ruleset
from hipscreen._rules.ruleset import RuleSet
from hipscreen._rules.safetynet import lone_raisers
from hipscreen._rules.tables import tables
from hipscreen._vocabulary import ContextItem, Measure, Severity, Symptom

RULESET: RuleSet = load_ruleset()
assert RULESET.vocabulary is not None
VOCABULARY = RULESET.vocabulary
CLASSES = VOCABULARY.classes()

#: A minimal form that puts each context item into the engine's facts (with a value that a rule's
#: bounds can match). A new context item without an entry here fails
#: ``test_every_context_item_has_a_form_that_produces_it``.
CONTEXT_FORMS: dict[str, dict[str, Any]] = {
    "pregnancy": {"pregnancy": {"weeks": 20}},
    "pregnancy_weeks": {"pregnancy": {"weeks": 20}},
    "pregnancy_weeks_unknown": {"pregnancy": {}},
    "hip_replacement_posterior": {"hip_replacement": {"approach": "posterior"}},
    "hip_replacement_anterior": {"hip_replacement": {"approach": "anterior"}},
    "hip_replacement_lateral": {"hip_replacement": {"approach": "lateral"}},
    "hip_replacement_unknown": {"hip_replacement": {}},
    "osteoporosis": {"osteoporosis": True},
    "vertebral_fracture": {"vertebral_fracture": True},
    "back_pain_weeks": {"back_pain": {"weeks": 2}},
    "back_pain_weeks_unknown": {"back_pain": {"intensity": 8}},
    "back_pain_intensity": {"back_pain": {"weeks": 2, "intensity": 8}},
    "fall_without_injury_signs": {
        "recent_fall": {"occurred": True, "new_pain": False, "can_bear_weight": True}
    },
    "hip_operation_weeks": {"hip_replacement": {"approach": "posterior", "weeks_since": 4}},
    "anticoagulant": {"anticoagulant": True},
    "fall_with_new_pain": {"recent_fall": {"occurred": True, "new_pain": True}},
    # Blank safety questions: read when the form reports something.
    "osteoporosis_unknown": {"activities": ["walking"]},
    "anticoagulant_unknown": {"activities": ["walking"]},
    "age_unknown": {"activities": ["walking"]},
    "hip_replacement": {"hip_replacement": {"precautions_lifted": True}},
    "procedure_days": {"joint_procedure": {"days_since": 3, "pain_worsening": False}},
    "procedure_timing_unknown": {"recent_joint_procedure": True},
    "procedure_pain_not_settled": {"joint_procedure": {"days_since": 30}},
    "postpartum": {"postpartum": {"weeks_since": 20, "delivery": "vaginal"}},
    "postpartum_weeks": {"postpartum": {"weeks_since": 20}},
    "postpartum_weeks_unknown": {"postpartum": {}},
    "caesarean_delivery": {"postpartum": {"delivery": "caesarean"}},
    "delivery_type_unknown": {"postpartum": {"weeks_since": 20}},
    "new_back_pain": {"symptoms": ["lower_back_pain"]},
}


def _read_items(ruleset: RuleSet) -> set[tuple[str, str]]:
    """(fact type, name) of every symptom and context item some rule's condition tests."""
    read: set[tuple[str, str]] = set()
    for rule in ruleset.rules:
        conditions = [rule.condition, *(c for _, c in rule.escalations)]
        for condition in conditions:
            for alt in alternatives(condition):
                for atom in alt:
                    if atom.fact in ("symptom", "context"):
                        read |= {(atom.fact, name) for name in _names(atom)}
    return read


def _names(atom: Atom) -> set[str]:
    names = {v for k, v in atom.equals if k == "name"}
    return names | set(atom.one_of[1] if atom.one_of else ())


def _facts(form: dict[str, Any]) -> list[dict[str, Any]]:
    intake = hipscreen.IntakeForm.model_validate(form)
    facts = FormFacts(intake, {m: list(intake.grades(m.value)) for m in Measure}).facts
    return [fact_fields(fact) for fact in facts]


def test_every_vocabulary_item_is_classified() -> None:
    expected = {("symptom", s.value) for s in Symptom} | {("context", c.value) for c in ContextItem}
    assert set(CLASSES) == expected


def test_every_vocabulary_item_is_read_by_some_rule() -> None:
    """An item no rule reads would be accepted on the form and silently ignored."""
    every = {("symptom", s.value) for s in Symptom} | {("context", c.value) for c in ContextItem}
    assert sorted(every - _read_items(RULESET)) == []


def test_every_context_item_has_a_form_that_produces_it() -> None:
    """Each context item really comes out of the form (a rule reading it can fire)."""
    assert set(CONTEXT_FORMS) == {c.value for c in ContextItem}
    for name, form in CONTEXT_FORMS.items():
        produced = {f["n"] for f in _facts(form) if f["t"] == "context"}
        assert name in produced, (name, produced)


ALARM = sorted(name for (fact, name), cls in CLASSES.items() if cls == "alarm")


@pytest.mark.parametrize("key", ALARM, ids=lambda k: f"{k}")
def test_an_alarm_item_alone_is_never_silent(key: str) -> None:
    """Ticked on an otherwise empty form, an alarm item yields a warning or more citing it (with
    its field path), a referral, and no exercise until a clinician has seen the person."""
    fact = next(f for f, n in CLASSES if n == key)
    form = {"symptoms": [key]} if fact == "symptom" else CONTEXT_FORMS[key]
    result = hipscreen.assess(form)

    def cites(evidence: hipscreen.Evidence) -> bool:
        if fact == "symptom":
            return evidence.field == "symptoms" and evidence.value == key
        return evidence.field.split(".")[0] in form

    citing = [
        f
        for f in result.findings
        if f.severity.rank >= Severity.WARNING.rank and any(cites(e) for e in f.evidence)
    ]
    assert citing, f"{key} alone: {[(f.id, f.severity.value) for f in result.findings]}"
    assert result.referral is not None
    assert set(result.referral.because) & {f.id for f in citing}


def test_the_alarm_list_is_not_empty() -> None:
    """Guards the parametrised test above against passing vacuously."""
    assert {"chest_pain", "calf_pain_or_swelling", "fever", "dizziness"} <= set(ALARM)


def test_the_safety_net_lists_exactly_the_alarms_no_other_rule_raises_alone() -> None:
    net = next(rule for rule in RULESET.rules if rule.id == VOCABULARY.safety_net)
    listed = {(a.fact, n) for alt in alternatives(net.condition) for a in alt for n in _names(a)}
    others = lone_raisers([rule for rule in RULESET.rules if rule.id != net.id])
    alarms = {key for key, cls in CLASSES.items() if cls == "alarm"}
    assert listed == {key for key in alarms if key not in others}
    assert listed, "the net has nothing to catch: the loader check would then be vacuous"


def test_an_alarm_with_its_own_rule_is_not_doubled_by_the_net() -> None:
    """One alarm, not two: chest pain alone is the chest-pain rule, not also the net."""
    result = hipscreen.assess({"symptoms": ["chest_pain"]})
    assert VOCABULARY.safety_net not in result.finding_ids()


@pytest.mark.parametrize("symptom", sorted(tables().pregnancy_only_symptoms))
def test_a_pregnancy_only_symptom_implies_pregnancy_when_it_is_blank(symptom: str) -> None:
    result = hipscreen.assess({"symptoms": [symptom]})
    assert "pregnancy-warning-signs" in result.finding_ids()
    assert result.referral is not None
    assert result.referral.urgency == "emergency"


def test_a_non_pregnancy_symptom_does_not_imply_pregnancy() -> None:
    result = hipscreen.assess({"symptoms": ["dizziness", "chest_pain", "calf_pain_or_swelling"]})
    assert "pregnancy" not in result.finding_ids()


# -- every alternative of every rule can fire (the engine compiles any_of / $or correctly) -------


def _form_for(alt: tuple[Atom, ...]) -> dict[str, Any] | None:
    """A minimal form satisfying every atom of one alternative, or None when it needs more than
    symptoms, activities, age and context (grades and measurements are covered by their cases)."""
    form: dict[str, Any] = {"symptoms": [], "activities": []}
    for atom in alt:
        names = sorted(_names(atom))
        if atom.fact == "symptom":
            form["symptoms"].append(names[0])
        elif atom.fact == "activity":
            form["activities"].append(names[0])
        elif atom.fact == "age":
            form["age"] = _value_within(atom)
        elif atom.fact == "context":
            extra = CONTEXT_FORMS[names[0]]
            if names[0] in (
                "pregnancy_weeks",
                "back_pain_weeks",
                "back_pain_intensity",
                "procedure_days",
                "postpartum_weeks",
            ):
                extra = _with_number(names[0], _value_within(atom), extra)
            if names[0] == "hip_operation_weeks":
                weeks = _value_within(atom)
                extra = {"hip_replacement": {"approach": "posterior", "weeks_since": weeks}}
            form = _merge(form, extra)
        else:
            return None
    return form


def _value_within(atom: Atom) -> int:
    low = 0
    high = 120
    if atom.at_least is not None:
        low = max(low, int(atom.at_least))
    if atom.above is not None:
        low = max(low, int(atom.above) + 1)
    if atom.below is not None:
        high = min(high, int(atom.below) - 1)
    if atom.at_most is not None:
        high = min(high, int(atom.at_most))
    assert low <= high, atom
    return low


def _with_number(name: str, value: int, form: dict[str, Any]) -> dict[str, Any]:
    field, key = {
        "pregnancy_weeks": ("pregnancy", "weeks"),
        "back_pain_weeks": ("back_pain", "weeks"),
        "back_pain_intensity": ("back_pain", "intensity"),
        "procedure_days": ("joint_procedure", "days_since"),
        "postpartum_weeks": ("postpartum", "weeks_since"),
    }[name]
    return {**form, field: {**form.get(field, {}), key: value}}


def _merge(form: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(form)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


ALTERNATIVES = [
    pytest.param(rule.id, n, alt, id=f"{rule.id}/{n}")
    for rule in RULESET.rules
    for n, alt in enumerate(alternatives(rule.condition))
    if _form_for(alt) is not None
]


@pytest.mark.parametrize(("rule_id", "n", "alt"), ALTERNATIVES)
def test_every_alternative_of_a_rule_fires_on_its_own(
    rule_id: str, n: int, alt: tuple[Atom, ...]
) -> None:
    """Each way a rule's condition can be met really fires it, and cites what it read: so a
    compiled ``$or`` that swallowed an alternative, or a join that ignores a test, shows here."""
    form = _form_for(alt)
    assert form is not None
    result = hipscreen.assess(form)
    finding = next((f for f in result.findings if f.id == rule_id), None)
    assert finding is not None, (form, result.finding_ids())
    cited = {e.value for e in finding.evidence}
    for symptom in form["symptoms"]:
        assert symptom in cited, (symptom, finding.evidence)


def test_a_recent_training_increase_is_read() -> None:
    """Regression (issue 9): weight-bearing hip pain after a jump in training volume, no running,
    is a possible femoral neck stress injury, and the training increase is cited."""
    form = {"symptoms": ["hip_pain", "pain_on_weight_bearing", "recent_training_increase"]}
    result = hipscreen.assess(form)
    finding = next(f for f in result.findings if f.id == "possible-femoral-stress-injury")
    assert "recent_training_increase" in {e.value for e in finding.evidence}
    without = hipscreen.assess({"symptoms": ["hip_pain", "pain_on_weight_bearing"]})
    assert "possible-femoral-stress-injury" not in without.finding_ids()


# -- the loader keeps the classification and the net honest --------------------------------------


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(builtin_rules_dir(), target, ignore=shutil.ignore_patterns("cases"))
    return target


def _edit_vocabulary(rules: Path, change: Any) -> None:
    path = rules / "vocabulary.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _problems(rules: Path) -> str:
    with pytest.raises(hipscreen.RuleDataError) as caught:
        load_ruleset(rules)
    return str(caught.value)


def test_a_vocabulary_item_missing_from_the_classification_is_an_error(rules_copy: Path) -> None:
    _edit_vocabulary(rules_copy, lambda d: d["symptoms"].pop("chest_pain"))
    assert "vocabulary.yaml:chest_pain [symptoms]: not classified" in _problems(rules_copy)


def test_an_unknown_item_in_the_classification_is_an_error(rules_copy: Path) -> None:
    def add(data: dict[str, Any]) -> None:
        data["symptoms"]["chest_pian"] = {"class": "alarm", "reason": "typo"}

    _edit_vocabulary(rules_copy, add)
    message = _problems(rules_copy)
    assert "unknown symptoms item 'chest_pian'; did you mean 'chest_pain'?" in message


def test_an_unknown_class_is_an_error(rules_copy: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["context"]["anticoagulant"]["class"] = "red_flag"

    _edit_vocabulary(rules_copy, change)
    assert "context.anticoagulant.class" in _problems(rules_copy)


def test_an_alarm_item_nothing_raises_alone_is_an_error(rules_copy: Path) -> None:
    """Reclassing a risk factor as an alarm without a rule for it alone is refused."""

    def change(data: dict[str, Any]) -> None:
        data["symptoms"]["recent_training_increase"]["class"] = "alarm"

    _edit_vocabulary(rules_copy, change)
    message = _problems(rules_copy)
    assert "alarm symptom 'recent_training_increase' alone would raise nothing" in message


def test_the_net_may_not_double_an_alarm_another_rule_raises(rules_copy: Path) -> None:
    path = rules_copy / "findings" / "05-safety-net.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("symptom: [sudden", "symptom: [chest_pain, sudden"),
        encoding="utf-8",
    )
    message = _problems(rules_copy)
    assert "alarm symptom 'chest_pain' is raised on its own by chest-pain-at-rest" in message


def test_the_net_may_list_only_alarm_items(rules_copy: Path) -> None:
    path = rules_copy / "findings" / "05-safety-net.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("symptom: [sudden", "symptom: [knee_pain, sudden"),
        encoding="utf-8",
    )
    assert "symptom 'knee_pain' is not classed alarm" in _problems(rules_copy)


def test_a_rules_directory_without_a_classification_loads() -> None:
    """Own rule directories opt in to the net by shipping a vocabulary.yaml."""
    valid = Path(__file__).resolve().parent / "broken_rules" / "_valid"
    assert load_ruleset(valid).vocabulary is None
