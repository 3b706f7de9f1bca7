"""The one door to durable_rules: compiling rule data into a ruleset and running sessions.

No other module imports ``durable_rules``. This module works around the engine's known traps
(see docs/engine.md):

* Facts, not events: a posted event fires only one rule.
* Every pattern carries a positive type test (``t``); no ``$not`` and no ``any`` (both misbehave).
* A sentinel fact and rule make sure at least one action completes in every session, because
  ``delete_state`` on a session where no action completed frees a garbage pointer (segfault).
* No ``durable.engine.Host``: its two dispatcher timer threads race ``delete_state`` and crash
  under concurrent threads. We call the C extension directly and drive the agenda ourselves.
* Action errors are caught here and raised as `EngineError` (the stock glue swallows them).
* One lock per compiled ruleset: the C calls hold the GIL anyway, so threads gain nothing from
  interleaving, and one live session at a time keeps far below the 1,024-session cap and away from
  the 32-bit session-id hash collisions.
* Each compile registers under a fresh name, so re-running a notebook cell never meets
  "ruleset already registered".
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

try:
    import durable_rules_engine as _dre
except ImportError as _error:  # missing or broken durable-rules build: say what and how to fix
    import shlex
    import sys

    _version = f"Python {sys.version.split()[0]}"
    _fix = (
        "CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject "
        f"{shlex.quote(sys.executable or 'python3')} -m pip install --force-reinstall --no-deps "
        "--no-cache-dir --no-binary durable-rules durable-rules==2.0.28"
    )
    if isinstance(_error, ModuleNotFoundError) and _error.name == "durable_rules_engine":
        _what = f"durable-rules (C extension durable_rules_engine) is not installed for {_version}."
    elif "PyEval_CallObject" in str(_error):
        _what = (
            f"durable-rules is installed but its C extension cannot load on {_version}: it "
            "was compiled without the define that Python 3.13 and later need (PyEval_CallObject "
            "was removed from the C API in 3.13; pip reports success, the import fails)."
        )
    else:
        _what = f"durable-rules is installed but its C extension cannot load on {_version}."
    raise ImportError(
        f"hipscreen cannot start: {_what}\n  cause: {_error}\n"
        f"Rebuild durable-rules for this Python (compiles C: needs a C compiler and the Python "
        f"headers; --no-cache-dir stops pip reusing a wheel built without the define):\n"
        f"  {_fix}",
        name="durable_rules_engine",
    ) from _error

from hipscreen._errors import EngineError
from hipscreen._ruledata import Atom

Fact = dict[str, Any]
Message = dict[str, Fact]
FireCallback = Callable[[str, Message], Sequence[str]]
"""Called for every firing with (rule name, matched facts by alias); returns facts to assert,
as JSON objects without their closing brace (the session id is appended)."""

_SENTINEL_RULE = "__end__"
_SENTINEL_FACT_TYPE = "__end__"
_names = itertools.count(1)

# Short attribute names keep the JSON that crosses into C small.
FACT_KEYS = {
    "muscle": "mu",
    "group": "gr",
    "measure": "ms",
    "side": "sd",
    "motion": "mo",
    "method": "me",
    "name": "n",
    "id": "id",
    "leg_pain": "lp",
}


def engine_number(value: float) -> float:
    """A number the engine can parse: its JSON reader crashes (SIGSEGV) on exponent notation
    such as ``1e-05``, which Python's JSON writer emits for small floats. Angles and grades
    need no more than three decimals, so round, and drop what would print with an exponent.
    """
    if isinstance(value, int):
        return value
    rounded = round(value, 3)
    if rounded == int(rounded):
        return int(rounded)
    return rounded  # |x| ≥ 0.001 here, so repr() has no exponent


def pattern(atom: Atom) -> dict[str, Any]:
    """The durable_rules expression that matches one atom."""
    tests: list[dict[str, Any]] = [{"t": atom.fact}]
    tests += [{FACT_KEYS[attr]: value} for attr, value in atom.equals]
    if atom.one_of is not None:
        attr, values = atom.one_of
        key = FACT_KEYS[attr]
        tests.append({"$or": [{key: v} for v in values]} if len(values) > 1 else {key: values[0]})
    for op, bound in (
        ("$gte", atom.at_least),
        ("$lte", atom.at_most),
        ("$lt", atom.below),
        ("$gt", atom.above),
    ):
        if bound is not None:
            tests.append({op: {"v": engine_number(bound)}})
    return {"$and": tests}


@dataclass(frozen=True)
class EngineRule:
    """One durable rule: a name and the conjunction of slots it matches (aliases p0, p1, …).

    A slot is one fact pattern: a single atom, or several atoms any one of which will do (merged
    into one ``$or`` pattern: the engine's matching cost grows with the number of rules).
    """

    name: str
    slots: tuple[tuple[Atom, ...], ...]


def slot_pattern(slot: tuple[Atom, ...]) -> dict[str, Any]:
    """The expression for one slot: the atom's pattern, or an ``$or`` of the atoms' patterns."""
    if len(slot) == 1:
        return pattern(slot[0])
    return {"$or": [pattern(atom) for atom in slot]}


def atom_for(slot: tuple[Atom, ...], fact: Fact) -> Atom:
    """Which atom of a slot a matched fact satisfied (told apart by type and equality tests)."""
    if len(slot) == 1:
        return slot[0]
    for atom in slot:
        if atom.fact != fact["t"]:
            continue
        if any(fact.get(FACT_KEYS[attr]) != value for attr, value in atom.equals):
            continue
        if atom.one_of is not None and fact.get(FACT_KEYS[atom.one_of[0]]) not in atom.one_of[1]:
            continue
        return atom
    raise EngineError(f"matched fact {fact!r} fits no atom of its pattern")


class CompiledRules:
    """A durable_rules ruleset compiled from engine rules; `run` is safe from any thread."""

    def __init__(self, rules: Sequence[EngineRule], label: str) -> None:
        definition: dict[str, Any] = {}
        for rule in rules:
            definition[rule.name] = {
                "all": [{f"p{i}": slot_pattern(slot)} for i, slot in enumerate(rule.slots)]
            }
        # Fires last (higher pri fires later) and always: guarantees a completed action.
        definition[_SENTINEL_RULE] = {"pri": 65000, "all": [{"m": {"t": _SENTINEL_FACT_TYPE}}]}
        self._json = json.dumps(definition, ensure_ascii=False)
        self._label = label
        self._sids = itertools.count(1)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._handle = self._create()

    def _create(self) -> int:
        name = f"hipscreen-{self._label}-{next(_names)}"
        try:
            handle: int = _dre.create_ruleset(name, self._json)
        except Exception as error:  # the C engine rejects the definition
            raise EngineError(f"the rules engine rejected the compiled ruleset: {error}") from error
        return handle

    def _ensure_lock(self) -> None:
        # A lock inherited through fork() may be held by a thread that does not exist in the child.
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._lock = threading.Lock()

    def run(self, facts: Sequence[Fact], on_fire: FireCallback) -> None:
        """Assert ``facts`` in a fresh session, run every firing through ``on_fire``, clean up.

        The facts are given a ``sid`` key in place.
        """
        self._ensure_lock()
        with self._lock:
            self._run_locked(facts, on_fire)

    def _run_locked(self, facts: Sequence[Fact], on_fire: FireCallback) -> None:
        sid = str(next(self._sids))
        handle = self._handle
        for fact in facts:
            fact["sid"] = sid
        batch = [*facts, {"t": _SENTINEL_FACT_TYPE, "sid": sid}]
        tail = f',"sid":"{sid}"}}'

        completed = False
        errors: list[str] = []
        try:
            _code, state = _dre.assert_facts(handle, json.dumps(batch, ensure_ascii=False))
            result = _dre.start_action_for_state(handle, state)
            if result is None:  # cannot happen while the sentinel rule exists
                raise EngineError("no rule fired, not even the sentinel")
            messages = result[1]
            while messages is not None:
                action, message = next(iter(json.loads(messages).items()))
                if action != _SENTINEL_RULE:
                    try:
                        derived: Sequence[str] = on_fire(action, message)
                    except Exception as error:  # the stock glue would swallow this silently
                        errors.append(f"{action}: {type(error).__name__}: {error}")
                        derived = ()
                    for fragment in derived:
                        _dre.assert_fact(handle, fragment + tail)
                messages = _dre.complete_and_start_action(handle, state)
                completed = True
        except Exception as error:
            if not completed:
                # Deleting now would free an uninitialised pointer. Leak this one session and
                # move to a fresh ruleset handle so nothing else touches it.
                self._handle = self._create()
                raise EngineError(
                    f"the rules engine failed before any rule ran: {error}"
                ) from error
            raise EngineError(f"the rules engine failed: {error}") from error
        finally:
            if completed:
                _dre.delete_state(handle, sid)
        if errors:
            raise EngineError("a rule action failed: " + "; ".join(errors))


def compile_rules(rules: Sequence[EngineRule], label: str) -> CompiledRules:
    """Compile engine rules (once per process per rule set)."""
    return CompiledRules(rules, label)
