"""Collecting rule-data problems: every one at once, pydantic's errors in the loader's words."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from hipscreen._errors import RuleProblem
from hipscreen._vocabulary import suggest


class Collector:
    """Every problem found in rule data, so that all are reported at once."""

    def __init__(self) -> None:
        self.problems: list[RuleProblem] = []

    def add(self, file: str, item: str, fld: str, message: str) -> None:
        self.problems.append(RuleProblem(file, item, fld, message))

    def pydantic(
        self,
        file: str,
        error: ValidationError,
        items: list[Any] | None = None,
        model: type[BaseModel] | None = None,
        item: str = "",
    ) -> None:
        for err in error.errors(include_url=False):
            loc = list(err["loc"])
            where = item
            if items is not None and len(loc) >= 2 and isinstance(loc[1], int):
                raw = items[loc[1]] if loc[1] < len(items) else None
                where = str(raw.get("id", f"#{loc[1]}")) if isinstance(raw, dict) else f"#{loc[1]}"
                loc = loc[2:]
            fld = ".".join(str(part) for part in loc)
            value = err.get("input")
            if err["type"] == "extra_forbidden":
                allowed = _allowed_keys(model, loc[:-1]) if model else []
                key = str(loc[-1])
                hint = suggest(key, allowed) if allowed else ""
                listing = f" (allowed: {', '.join(allowed)})" if allowed else ""
                self.add(file, where, fld, f"unknown key {key!r}{hint}{listing}")
                continue
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            self.add(file, where, fld, f"{err['msg']}{shown}")


def _allowed_keys(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """The field names of the (nested) model found by walking ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        for c in candidates:  # list[X] / X | None
            for inner in getattr(c, "__args__", ()):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    current = inner
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))
