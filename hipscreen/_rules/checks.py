"""Cross-checks over the rule files, beyond what each file's schema says.

Rules name real exercises and properties, and a rule that can be critical recommends nothing
strengthening, stretching or loaded; the catalog and the plan policy hang together; findings do
not chain in a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping

from hipscreen._rules.atoms import Condition, finding_refs
from hipscreen._rules.files import (
    CatalogFile,
    ExerciseSpec,
    PlanPolicy,
    RulesetFile,
    RuleSpec,
    WithholdSpec,
)
from hipscreen._rules.problems import Collector
from hipscreen._rules.ruleset import Rule
from hipscreen._vocabulary import ExerciseKind, Movement, Severity, suggest


def check_safety(
    file: str,
    spec: RuleSpec,
    escalations: tuple[tuple[Severity, Condition | None], ...],
    exercises: Mapping[str, ExerciseSpec],
    catalog: CatalogFile,
    meta: RulesetFile | None,
    out: Collector,
) -> None:
    """Withhold, swap and recommends must name real things, and critical rules stay safe."""
    withhold = spec.withhold or WithholdSpec()
    for i, prop in enumerate(withhold.properties):
        if prop not in catalog.properties:
            hint = suggest(prop, catalog.properties)
            out.add(
                file,
                spec.id,
                f"withhold.properties.{i}",
                f"unknown exercise property {prop!r}{hint}",
            )
    for i, exercise_id in enumerate(withhold.exercises):
        if exercise_id not in exercises:
            hint = suggest(exercise_id, exercises)
            out.add(
                file, spec.id, f"withhold.exercises.{i}", f"unknown exercise {exercise_id!r}{hint}"
            )
    for old, new in spec.swap.items():
        for fld, exercise_id in ((f"swap.{old}", old), (f"swap.{old}", new)):
            if exercise_id not in exercises:
                hint = suggest(exercise_id, exercises)
                out.add(file, spec.id, fld, f"unknown exercise {exercise_id!r}{hint}")
        replacement = exercises.get(new)
        if replacement is not None and _withheld_by(replacement, withhold):
            out.add(
                file, spec.id, f"swap.{old}", f"replacement {new!r} is withheld by this same rule"
            )
    critical = Severity.CRITICAL in (spec.severity, *(s for s, _ in escalations))
    if critical and meta is not None:
        # The safety contract: a red flag never comes with strengthening, stretching or loaded work.
        banned = {ExerciseKind.STRENGTH, ExerciseKind.STRETCH, ExerciseKind.BALANCE}
        for i, exercise_id in enumerate(spec.recommends):
            ex = exercises.get(exercise_id)
            if ex is not None and (ex.kind in banned or "loaded" in ex.properties):
                out.add(
                    file,
                    spec.id,
                    f"recommends.{i}",
                    f"a rule that can be critical may not recommend {exercise_id!r} "
                    f"({ex.kind.value}{', loaded' if 'loaded' in ex.properties else ''}): "
                    "red flags never come with strengthening, stretching or loaded work",
                )


def _withheld_by(ex: ExerciseSpec, withhold: WithholdSpec) -> bool:
    return (
        ex.kind in withhold.kinds
        or ex.id in withhold.exercises
        or any(prop in withhold.properties for prop in ex.properties)
    )


def check_catalog(catalog: CatalogFile, out: Collector) -> None:
    ids: set[str] = set()
    by_id = {ex.id: ex for ex in catalog.exercises}
    for ex in catalog.exercises:
        if ex.id in ids:
            out.add("exercises.yaml", ex.id, "id", "duplicate exercise id")
        ids.add(ex.id)
        if ex.regression is not None:
            easier = by_id.get(ex.regression)
            if easier is None:
                hint = suggest(ex.regression, by_id)
                out.add(
                    "exercises.yaml",
                    ex.id,
                    "regression",
                    f"unknown exercise {ex.regression!r}{hint}",
                )
            elif easier.level >= ex.level:
                out.add(
                    "exercises.yaml",
                    ex.id,
                    "regression",
                    f"regression {easier.id!r} must have a lower level than {ex.level} "
                    f"(it has {easier.level})",
                )
        for i, alt_id in enumerate(ex.alternatives):
            alt = by_id.get(alt_id)
            where = f"alternatives.{i}"
            if alt is None:
                hint = suggest(alt_id, by_id)
                out.add("exercises.yaml", ex.id, where, f"unknown exercise {alt_id!r}{hint}")
            elif alt.id == ex.id:
                out.add("exercises.yaml", ex.id, where, "an exercise is not its own alternative")
            elif alt.kind != ex.kind or (
                Movement.BOTH not in (alt.movement, ex.movement) and alt.movement != ex.movement
            ):
                out.add(
                    "exercises.yaml",
                    ex.id,
                    where,
                    f"alternative {alt.id!r} ({alt.kind.value}, {alt.movement.value}) must train "
                    f"the same thing ({ex.kind.value}, {ex.movement.value})",
                )
        for i, prop in enumerate(ex.properties):
            if prop not in catalog.properties:
                hint = suggest(prop, catalog.properties)
                out.add(
                    "exercises.yaml",
                    ex.id,
                    f"properties.{i}",
                    f"unknown property {prop!r}{hint} (declare it under properties:)",
                )
        dose = catalog.defaults.get(ex.kind)
        if ex.dose is None and dose is None:
            out.add(
                "exercises.yaml",
                ex.id,
                "dose",
                f"no dose and no default dose for kind {ex.kind.value!r}",
            )
        elif not ((ex.dose and ex.dose.days_per_week) or (dose and dose.days_per_week)):
            out.add("exercises.yaml", ex.id, "dose.days_per_week", "a dose needs days_per_week")


def check_plan(plan: PlanPolicy, exercises: Mapping[str, ExerciseSpec], out: Collector) -> None:
    wanted = {
        "plan.warm_up": (plan.warm_up, ExerciseKind.WARM_UP, None),
        "plan.balance.flexion": (plan.balance.flexion, ExerciseKind.STRENGTH, Movement.FLEXION),
        "plan.balance.extension": (
            plan.balance.extension,
            ExerciseKind.STRENGTH,
            Movement.EXTENSION,
        ),
    }
    for fld, (exercise_id, kind, movement) in wanted.items():
        ex = exercises.get(exercise_id)
        if ex is None:
            out.add(
                "ruleset.yaml",
                "",
                fld,
                f"unknown exercise {exercise_id!r}{suggest(exercise_id, exercises)}",
            )
        elif ex.kind != kind or (movement is not None and ex.movement != movement):
            out.add(
                "ruleset.yaml",
                "",
                fld,
                f"{exercise_id!r} must be a {kind.value} exercise"
                + (f" for {movement.value}" if movement else ""),
            )
    missing = sorted(set(range(6)) - set(plan.levels.by_grade))
    if missing:
        out.add(
            "ruleset.yaml", "", "plan.levels.by_grade", f"no level for strength grades {missing}"
        )


def check_cycles(rules: list[Rule], out: Collector) -> None:
    graph = {rule.id: set(finding_refs(rule.condition)) for rule in rules}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for ref in sorted(graph.get(node, ())):
            if state.get(ref) == 1:
                cycle = " → ".join([*path[path.index(ref) :], ref]) if ref in path else ref
                rule = next(r for r in rules if r.id == node)
                out.add(rule.file, node, "when", f"findings chain in a cycle: {cycle}")
            elif ref not in state:
                visit(ref, [*path, ref])
        state[node] = 2

    for rule in rules:
        if rule.id not in state:
            visit(rule.id, [rule.id])
