"""The safety net: the referral policy and the alarm classification of the vocabulary.

Every referral agrees with the referral policy of its kind, and every alarm symptom or context
item of ``vocabulary.yaml`` alone raises at least a warning, exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hipscreen._rules.atoms import Atom, alternatives
from hipscreen._rules.files import CatalogFile, RulesetFile, VocabularyFile
from hipscreen._rules.problems import Collector
from hipscreen._rules.ruleset import Rule
from hipscreen._rules.tables import tables
from hipscreen._vocabulary import ContextItem, Severity, Symptom, Urgency, suggest


def check_referrals(
    rules: Sequence[Rule], meta: RulesetFile, catalog: CatalogFile | None, out: Collector
) -> None:
    """Every referral names a policy kind, and its urgency and wording agree with that kind."""
    policy = meta.referral_policy
    same_day = _words_pattern(meta.same_day_wording)
    if catalog is not None:
        for kind, kind_policy in policy.items():
            for i, prop in enumerate(kind_policy.withhold.properties):
                if prop not in catalog.properties:
                    hint = suggest(prop, catalog.properties)
                    out.add(
                        "ruleset.yaml",
                        kind,
                        f"referral_policy.{kind}.withhold.properties.{i}",
                        f"unknown exercise property {prop!r}{hint}",
                    )
    for rule in rules:
        referral = rule.spec.referral
        if referral is None:
            continue
        if referral.kind is None:
            if policy:
                out.add(
                    rule.file,
                    rule.id,
                    "referral.kind",
                    f"a referral needs a kind (one of: {', '.join(policy)})",
                )
            continue
        entry = policy.get(referral.kind)
        if entry is None:
            hint = suggest(referral.kind, policy)
            out.add(
                rule.file,
                rule.id,
                "referral.kind",
                f"unknown referral kind {referral.kind!r}{hint} "
                f"(allowed: {', '.join(policy) or 'none: ruleset.yaml has no referral_policy'})",
            )
            continue
        if referral.urgency != entry.urgency:
            out.add(
                rule.file,
                rule.id,
                "referral.urgency",
                f"kind {referral.kind!r} is {entry.urgency.value} in the referral policy "
                f"(got {referral.urgency.value!r})",
            )
        text = f"{referral.see} {referral.message}".lower()
        if not any(phrase.lower() in text for phrase in entry.wording):
            out.add(
                rule.file,
                rule.id,
                "referral.message",
                f"a {referral.kind!r} referral must say one of: "
                + ", ".join(repr(w) for w in entry.wording),
            )
        if same_day is not None and referral.urgency != Urgency.EMERGENCY:
            match = same_day.search(text)
            if match:
                out.add(
                    rule.file,
                    rule.id,
                    "referral.message",
                    f"{match.group(0)!r} promises same-day action, so the urgency must be "
                    f"emergency (got {referral.urgency.value!r})",
                )


def _words_pattern(words: Sequence[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives_ = "|".join(re.escape(w.lower()) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z]){'(?:' + alternatives_ + ')'}(?![a-z])")


def load_vocabulary(base: Path, read: Any, out: Collector) -> VocabularyFile | None:
    """``vocabulary.yaml`` of the base rules, validated; None when the directory has none."""
    path = base / "vocabulary.yaml"
    if not path.is_file():
        return None
    raw = read(path)
    if raw is None:
        return None
    try:
        vocabulary = VocabularyFile.model_validate(raw)
    except ValidationError as error:
        out.pydantic("vocabulary.yaml", error, model=VocabularyFile)
        return None
    for fld, table, enum in (
        ("symptoms", vocabulary.symptoms, Symptom),
        ("context", vocabulary.context, ContextItem),
    ):
        allowed = [member.value for member in enum]
        for name in table:
            if name not in allowed:
                out.add(
                    "vocabulary.yaml",
                    name,
                    fld,
                    f"unknown {fld} item {name!r}{suggest(name, allowed)}",
                )
        for name in allowed:
            if name not in table:
                out.add(
                    "vocabulary.yaml",
                    name,
                    fld,
                    "not classified: give it a class (alarm, risk_factor or ordinary) and a reason",
                )
    return vocabulary


def _atom_names(atom: Atom) -> tuple[str, ...]:
    names = tuple(v for k, v in atom.equals if k == "name")
    return names + (atom.one_of[1] if atom.one_of is not None else ())


def _unbounded(atom: Atom) -> bool:
    return all(b is None for b in (atom.at_least, atom.at_most, atom.below, atom.above))


def lone_raisers(rules: Sequence[Rule]) -> dict[tuple[str, str], list[str]]:
    """(fact type, name) → ids of the rules of severity warning or above that the item raises
    on its own (plus only what it implies: a pregnancy-only symptom implies pregnancy)."""
    implied = {(ContextItem.PREGNANCY.value,)}
    raisers: dict[tuple[str, str], list[str]] = {}
    for rule in rules:
        if rule.spec.severity.rank < Severity.WARNING.rank:
            continue
        for alt in alternatives(rule.condition):
            main = [a for a in alt if not (a.fact == "context" and _atom_names(a) in implied)]
            if len(main) != 1 or main[0].fact not in ("symptom", "context"):
                continue
            atom = main[0]
            if not _unbounded(atom):
                continue
            for name in _atom_names(atom):
                if len(alt) > 1 and not (
                    atom.fact == "symptom" and name in tables().pregnancy_only_symptoms
                ):
                    continue  # only pregnancy-only symptoms imply pregnancy
                ids = raisers.setdefault((atom.fact, name), [])
                if rule.id not in ids:
                    ids.append(rule.id)
    return raisers


def check_vocabulary(vocabulary: VocabularyFile, rules: Sequence[Rule], out: Collector) -> None:
    """The safety net is complete: every alarm item alone raises a warning, exactly once."""
    classes = vocabulary.classes()
    net = next((rule for rule in rules if rule.id == vocabulary.safety_net), None)
    if net is None:
        ids = [rule.id for rule in rules]
        out.add(
            "vocabulary.yaml",
            "",
            "safety_net",
            f"unknown rule {vocabulary.safety_net!r}{suggest(vocabulary.safety_net, ids)}",
        )
        return
    listed: set[tuple[str, str]] = set()
    for alt in alternatives(net.condition):
        for atom in alt:
            names = _atom_names(atom)
            if len(alt) != 1 or atom.fact not in ("symptom", "context") or not _unbounded(atom):
                out.add(
                    net.file,
                    net.id,
                    "when",
                    "the safety net is an any_of of plain symptom and context names",
                )
                continue
            for name in names:
                if classes.get((atom.fact, name)) != "alarm":
                    out.add(
                        net.file,
                        net.id,
                        "when",
                        f"{atom.fact} {name!r} is not classed alarm in vocabulary.yaml",
                    )
                listed.add((atom.fact, name))
    if net.spec.severity.rank < Severity.WARNING.rank:
        out.add(net.file, net.id, "severity", "the safety net must be at least a warning")
    raisers = lone_raisers([rule for rule in rules if rule.id != net.id])
    for (fact, name), item_class in sorted(classes.items()):
        if item_class != "alarm":
            continue
        others = raisers.get((fact, name), [])
        if (fact, name) in listed and others:
            out.add(
                net.file,
                net.id,
                "when",
                f"alarm {fact} {name!r} is raised on its own by {', '.join(others)}: "
                "leave it out of the safety net (one alarm, not two)",
            )
        elif (fact, name) not in listed and not others:
            out.add(
                "vocabulary.yaml",
                name,
                "class",
                f"alarm {fact} {name!r} alone would raise nothing: list it in the safety net "
                f"({net.id}) or give it a rule of its own",
            )
