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
  the 32-bit session-id hash collisions. The lock is replaced in a forked child.
* The session is deleted whatever interrupts it (even ``KeyboardInterrupt``), and the ruleset is
  deleted when its `CompiledRules` is closed or collected: the engine never frees either by itself.
* The compiled network is measured against the C engine's fixed-size tables before it is built
  (`network_problems`): overflowing them hangs the compile or reads past the tables' ends.
* Each compile registers under a fresh name, so re-running a notebook cell never meets
  "ruleset already registered".
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from hipscreen._forksafe import ForkSafeLock
from hipscreen._limits import (
    MAX_ALPHA_BRANCHES,
    MAX_ENGINE_RULES,
    MAX_OR_LINKS,
    MAX_PATTERN_EXPRESSIONS,
    MAX_PATTERNS_PER_TEST,
    MAX_THRESHOLD_DECIMALS,
)
from hipscreen._rules.atoms import Atom

Fact = dict[str, Any]
FireCallback = Callable[[str, Sequence[int]], Sequence[str]]
"""Called for every firing with (rule name, the index of the fact matched by each of the rule's
slots, in slot order: see `encode_fact`, `finding_fact`); returns facts to assert, as made by
`finding_fact`."""

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
    "id": "id",  # a finding's id ("fi" in shared sessions: see SHARED_FACT_KEYS)
    "leg_pain": "lp",
    "length_tested": "lt",
    "instrument": "in",  # a standard instrument's score (hipscreen._instruments)
    "band": "bd",
    "part": "pt",
}


SHARED_FACT_KEYS = {**FACT_KEYS, "id": "fi"}
"""The keys in sessions that hold several forms (`CompiledRules.run_shared`): there a finding is
not keyed ``"id"``, which the engine takes as a fact's identity (the same finding of two forms
would be one fact, "already observed" the second time). Alone, a form keeps ``"id"``: the engine
then identifies a finding by its id instead of hashing the whole fact."""

_TINY = 0.5 * 10.0**-MAX_THRESHOLD_DECIMALS  # 0.0005, printed without an exponent


def engine_number(value: float) -> float:
    """The number to send the engine for ``value``: exact for every comparison with a threshold.

    The engine reads numbers with C's ``atof`` (correctly rounded), so a float sent as Python's
    shortest round-trip digits arrives as exactly the same double: comparisons in the engine are
    the comparisons Python would make. Only one form needs care: the engine's JSON reader crashes
    (SIGSEGV) on exponent notation such as ``1e-05``, which Python prints for magnitudes below
    0.0001. Such a value is sent as ±0.0005 instead, which lies on the same side of every
    threshold as the value itself, because thresholds have at most three decimals
    (``MAX_THRESHOLD_DECIMALS``, checked when the rules load). Integral values go as integers.
    """
    if isinstance(value, int):
        return value
    if value.is_integer():
        return int(value)
    if abs(value) < 1e-4:
        return math.copysign(_TINY, value)
    return value  # 0.0001 ≤ |x| < 2**53 and not integral: repr() has no exponent


def _tests(atom: Atom, shared: bool = False) -> list[dict[str, Any]]:
    """The engine tests of one atom after its type test (``shared``: `SHARED_FACT_KEYS`)."""
    keys = SHARED_FACT_KEYS if shared else FACT_KEYS
    tests: list[dict[str, Any]] = [{keys[attr]: value} for attr, value in atom.equals]
    if atom.one_of is not None:
        attr, values = atom.one_of
        key = keys[attr]
        tests.append({"$or": [{key: v} for v in values]} if len(values) > 1 else {key: values[0]})
    for op, bound in (
        ("$gte", atom.at_least),
        ("$lte", atom.at_most),
        ("$lt", atom.below),
        ("$gt", atom.above),
    ):
        if bound is not None:
            tests.append({op: {"v": engine_number(bound)}})
    return tests


# -- the wire format: facts as the engine's JSON, firings read back without a JSON parser ----------
#
# Every fact starts with its index, ``{"i":N,"t":"<type>",...`` (N ≥ 0: the form's N-th fact;
# N < 0: the finding of rule -N-1), and is sent without its closing brace: the session tail
# (``,"sid":"…"}``) closes it. The engine hands a firing back as ``{"<rule>":{"p0":{<the fact's
# own text>},"p1":{…}}}``, so the matched facts' indices are read straight off that text.


@functools.lru_cache(maxsize=4096)
def fact_head(kind: str, *attrs: tuple[str, str]) -> str:
    """The type and attribute part of a fact's JSON (attributes as atoms name them)."""
    return f'"t":{json.dumps(kind)}' + "".join(
        f",{json.dumps(FACT_KEYS[attr])}:{json.dumps(str(value))}" for attr, value in attrs
    )


def encode_fact(index: int, head: str, value: float | None = None) -> str:
    """Fact number ``index`` of a form: ``head`` from `fact_head`, and the number rules compare."""
    if value is None:
        return f'{{"i":{index},{head}'
    if type(value) is int:  # most values (grades, whole degrees, ages): sent as they are
        return f'{{"i":{index},{head},"v":{value}'
    number = engine_number(value)
    return f'{{"i":{index},{head},"v":{number!r}'


def finding_fact(rule_index: int, finding_id: str) -> str:
    """The fact a finding asserts when it fires, for rules that chain on it."""
    return f'{{"i":{-rule_index - 1},"t":"finding","id":{json.dumps(finding_id)}'


_FINDING_ID = '"t":"finding","id":'
_SHARED_FINDING_ID = '"t":"finding","fi":'


def fact_fields(fact: str) -> Fact:
    """A fact's attributes by wire key (for the rare firing whose pattern needs a second look)."""
    decoded: Fact = json.loads(fact + "}")
    return decoded


_INDEX = '{"i":'


def matched_indices(messages: str) -> list[int]:
    """The index of the fact bound to each slot of a firing, read straight off its text.

    Every fact's text starts with ``{"i":N,``, and a value cannot hold that text (JSON escapes
    its quotes), so each occurrence is one matched fact; its slot is the ``"pK":`` just before
    it. A one-slot firing (most of them) needs two searches and no objects besides the list.
    """
    start = messages.find(_INDEX) + 5
    end = messages.index(",", start)
    following = messages.find(_INDEX, end)
    if following < 0:
        return [int(messages[start:end])]
    found: list[tuple[int, int]] = []
    while True:
        alias = messages.rindex('"p', 0, start) + 2
        found.append((int(messages[alias : start - 7]), int(messages[start:end])))
        if following < 0:
            break
        start = following + 5
        end = messages.index(",", start)
        following = messages.find(_INDEX, end)
    indices = [0] * len(found)
    for alias_number, index in found:
        indices[alias_number] = index
    return indices


def decode_firing(messages: str) -> tuple[str, list[int]]:
    """The rule name of a firing and the index of the fact bound to each of its slots."""
    return messages[2 : messages.index('"', 2)], matched_indices(messages)


def _legacy(fact: Fact) -> str:
    """A fact given as a mapping (tests), in the wire format."""
    rest = {key: value for key, value in fact.items() if key != "i"}
    body = json.dumps(rest, ensure_ascii=False)[1:-1]
    return f'{{"i":{int(fact.get("i", 0))}' + (f",{body}" if body else "")


_SAME_FORM = {"f": {"p0": "f"}}
"""The join test that keeps a pattern to the form of the rule's first fact (shared sessions)."""


def pattern(
    option: Atom | tuple[Atom, ...], joined: bool = False, shared: bool = False
) -> dict[str, Any]:
    """The durable_rules expression that matches one atom, or one fact meeting several atoms
    (of one fact type) at once; ``joined``: only a fact of the same form as the rule's first;
    ``shared``: with the keys of shared sessions (`SHARED_FACT_KEYS`).

    The join test goes right after the type test: placed first it would cost the pattern its
    type index, and placed after an ``$or`` the engine ignores it (docs/engine.md).
    """
    atoms = (option,) if isinstance(option, Atom) else option
    tests: list[dict[str, Any]] = [{"t": atoms[0].fact}]
    if joined:
        tests.append(_SAME_FORM)
    for atom in atoms:
        if atom.fact != atoms[0].fact:
            raise ValueError(f"one fact cannot be both {atoms[0].fact!r} and {atom.fact!r}")
        tests += [test for test in _tests(atom, shared) if test not in tests]
    return {"$and": tests}


Option = Atom | tuple[Atom, ...]
"""What one fact must meet: an atom, or several atoms of one fact type that the same fact meets."""

Slot = tuple[Option, ...]
"""One fact pattern: options any one of which will do (several merge into one ``$or`` pattern:
the engine's matching cost grows with the number of rules)."""


@dataclass(frozen=True)
class EngineRule:
    """One durable rule: a name and the conjunction of slots it matches (aliases p0, p1, …).

    The engine binds every slot of a rule to a different fact; a conjunction one fact may meet
    twice is a slot whose option is that tuple of atoms.
    """

    name: str
    slots: tuple[Slot, ...]


def slot_pattern(slot: Slot, joined: bool = False, shared: bool = False) -> dict[str, Any]:
    """The expression for one slot: the option's pattern, or an ``$or`` of the options'
    (``joined``, ``shared``: see `pattern`)."""
    if len(slot) == 1:
        return pattern(slot[0], joined, shared)
    return {"$or": [pattern(option, joined, shared) for option in slot]}


def slot_size(slot: Slot) -> int:
    """How many expression entries the engine stores for the slot's pattern (two per group)."""

    def size(expr: Any) -> int:
        if isinstance(expr, dict):
            ((key, value),) = expr.items()
            if key in ("$and", "$or"):
                return 2 + sum(size(item) for item in value)
        return 0

    return size(slot_pattern(slot))


def meets(atom: Atom, fact: Fact) -> bool:
    """Whether an engine fact meets an atom: the engine's own tests, made in Python."""
    if atom.fact != fact["t"]:
        return False
    if any(fact.get(FACT_KEYS[attr]) != value for attr, value in atom.equals):
        return False
    if atom.one_of is not None and fact.get(FACT_KEYS[atom.one_of[0]]) not in atom.one_of[1]:
        return False
    if atom.at_least is None and atom.at_most is None and atom.below is None and atom.above is None:
        return True
    value = fact.get("v")
    if not isinstance(value, int | float):
        return False
    return (
        (atom.at_least is None or value >= engine_number(atom.at_least))
        and (atom.at_most is None or value <= engine_number(atom.at_most))
        and (atom.below is None or value < engine_number(atom.below))
        and (atom.above is None or value > engine_number(atom.above))
    )


def atoms_met(slot: Slot, fact: Fact) -> tuple[Atom, ...]:
    """Every atom of a slot that a matched fact meets: the whole option when the slot has one,
    else the atoms of each option the fact meets (with bounds: two options may both hold)."""
    if len(slot) == 1:
        option = slot[0]
        return (option,) if isinstance(option, Atom) else option
    met: list[Atom] = []
    for option in slot:
        atoms = (option,) if isinstance(option, Atom) else option
        if all(meets(atom, fact) for atom in atoms):
            met += [atom for atom in atoms if atom not in met]
    if not met:
        raise EngineError(f"matched fact {fact!r} fits no option of its pattern")
    return tuple(met)


class AtomsMet:
    """Which atoms of a several-option slot a matched fact meets, remembered per slot and fact
    content (facts recur across forms). Reads the fact's wire text here, behind the engine door:
    callers hand over the fact as `encode_fact` made it and get atoms back.

    ``slot`` objects must live as long as this memo (their ids are keys): a `Screener` holds
    both.
    """

    __slots__ = ("_limit", "_met")

    def __init__(self, limit: int = 2048) -> None:
        self._met: dict[tuple[int, str], tuple[Atom, ...]] = {}
        self._limit = limit

    def __call__(self, slot: Slot, fact: str) -> tuple[Atom, ...]:
        key = (id(slot), fact[fact.index(",") :])  # the fact without its index
        found = self._met.get(key)
        if found is None:
            if len(self._met) >= self._limit:
                self._met.clear()
            found = self._met[key] = atoms_met(slot, fact_fields(fact))
        return found


def definition(rules: Sequence[EngineRule], shared: bool = False) -> dict[str, Any]:
    """The durable_rules ruleset for ``rules``, with the sentinel rule.

    ``shared``: for sessions that hold several forms at once, where every slot after the first
    joins on the form of the first (``"f"``), so no rule binds facts of two forms, findings are
    keyed ``"fi"`` (`SHARED_FACT_KEYS`), and each action takes up to `SHARED_CAP` matches of its
    rule at once (a list).
    """
    result: dict[str, Any] = {}
    for rule in rules:
        result[rule.name] = {
            "all": [
                {f"p{i}": slot_pattern(slot, shared and i > 0, shared)}
                for i, slot in enumerate(rule.slots)
            ]
        }
        if shared:  # one action takes every match waiting for the rule, of whichever forms
            result[rule.name]["cap"] = SHARED_CAP
    # Fires last (higher pri fires later) and always: guarantees a completed action.
    result[_SENTINEL_RULE] = {"pri": 65000, "all": [{"m": {"t": _SENTINEL_FACT_TYPE}}]}
    return result


@dataclass
class _Alpha:
    """One node of the engine's alpha network, as src/rules/rete.c builds it."""

    children: dict[tuple[str, str, str], _Alpha] = field(default_factory=dict)
    or_links: int = 0
    patterns: int = 0


def network_problems(rules: Sequence[EngineRule], shared: bool = False) -> list[tuple[str, str]]:
    """Where the compiled ruleset would overflow one of the C engine's fixed-size tables.

    Rebuilds the engine's alpha network the way ``createAlpha``/``findAlpha`` in rete.c do (one
    node per distinct test after the same tests, a forward node per ``$or``), and counts what the
    C engine keeps in fixed arrays: tests after one node (a 512-slot hash table whose lookup never
    ends once full: 504 chained rules hang the compile), ``$or`` links and rule patterns on one
    node (lists of 128 and 256, read past their ends when full), expression entries per pattern
    (32, then error 113) and actions (4,096, then error 106). Each limit keeps a wide margin.

    ``shared``: measure the definition for sessions that hold several forms (`definition`).

    Returns:
        (engine rule name, problem) pairs; the name is the rule whose patterns crossed the limit.
    """
    problems: list[tuple[str, str]] = []
    if len(rules) > MAX_ENGINE_RULES:
        problems.append(
            (
                rules[MAX_ENGINE_RULES].name,
                f"the rule set compiles to {len(rules):,} engine rules "
                f"(at most {MAX_ENGINE_RULES:,}: one per alternative of every condition)",
            )
        )
    root = _Alpha()
    reported: set[tuple[int, str]] = set()

    def crossed(node: _Alpha, what: str, count: int, limit: int, name: str) -> None:
        if count > limit and (id(node), what) not in reported:
            reported.add((id(node), what))
            problems.append((name, f"{what} (at most {limit}): {count} here"))

    def place(node: _Alpha, expr: dict[str, Any], name: str, size: list[int]) -> _Alpha:
        ((key, value),) = expr.items()
        if key == "$and":
            size[0] += 2
            for test in value:
                node = place(node, test, name, size)
            return node
        if key == "$or":
            size[0] += 2
            forward = _Alpha()
            for test in value:
                end = place(node, test, name, size)
                end.or_links += 1
                crossed(
                    end,
                    "too many 'any of' patterns share one test",
                    end.or_links,
                    MAX_OR_LINKS,
                    name,
                )
            return forward
        if expr is _SAME_FORM:  # a join test: one expression entry of the rule, no alpha node
            size[0] += 1
            return node
        if key.startswith("$"):
            ((attr, operand),) = value.items()
        else:
            attr, operand = key, value
        test = (attr, key, json.dumps(operand))
        child = node.children.get(test)
        if child is None:
            child = node.children[test] = _Alpha()
            crossed(
                node,
                "too many distinct tests follow one test (finding ids, names or threshold values)",
                len(node.children),
                MAX_ALPHA_BRANCHES,
                name,
            )
        return child

    for name, rule in definition(rules, shared).items():
        for alias_pattern in rule["all"]:
            ((_, expr),) = alias_pattern.items()
            size = [0]
            end = place(root, expr, name, size)
            end.patterns += 1
            crossed(
                end,
                "too many rules test exactly the same pattern",
                end.patterns,
                MAX_PATTERNS_PER_TEST,
                name,
            )
            if size[0] > MAX_PATTERN_EXPRESSIONS:
                problems.append(
                    (
                        name,
                        f"one fact pattern has {size[0]} expression entries "
                        f"(at most {MAX_PATTERN_EXPRESSIONS})",
                    )
                )
    return problems


FORMS_PER_SESSION = 1_000
"""Forms one engine session screens (one after another, each retracted) before it is replaced:
a fresh session costs more than a form's matching, and a bounded one cannot grow without end."""

_OBSERVED = 2  # assert_fact(s) result: the fact is already in the session


class _StaleSession(Exception):
    """The live session held something of an earlier form."""


@dataclass
class _Session:
    """The engine session forms run in, one after another."""

    handle: int
    sid: str
    pid: int
    forms: int = 0
    started: bool = False  # an action has started: from then on delete_state is safe


def _release(
    handles: list[int], live: list[_Session] | None = None, shared: list[int] | None = None
) -> None:
    """Delete the live session in ``live`` (``deleteRuleset`` would leave its contents behind,
    about 0.1 MB) and the engine rulesets in ``handles`` and ``shared`` (rete.c
    ``deleteRuleset``: frees the network)."""
    while live:
        session = live.pop()
        if session.started and session.pid == os.getpid() and session.handle in handles:
            _dre.delete_state(session.handle, session.sid)
    for held in (handles, shared or []):
        while held:
            _dre.delete_ruleset(held.pop())  # popped first: never deleted twice


_FORM_TAG = ',"f":'


def shared_matches(messages: str, width: int, forms: int) -> list[tuple[int, list[int]]] | None:
    """The matches of one firing in a shared session: per match, the form's position and the
    index of the fact bound to each of the rule's ``width`` slots, read straight off the text
    (as `matched_indices`; each fact ends ``,"f":<form>,"sid":…}``). None when the text is not
    ``width`` facts per match, a match binds facts of two forms, or a form is out of range."""
    find = messages.find
    position = find(_INDEX)
    if position < 0:
        return None
    found: list[tuple[int, list[int]]] = []
    while position >= 0:
        indices = [0] * width
        form = -1
        for _ in range(width):
            if position < 0:
                return None
            start = position + 5
            end = find(",", start)
            alias = 0
            if width > 1:  # "pK":{"i":…: the slot is K
                alias = int(messages[messages.rindex('"p', 0, position) + 2 : position - 2])
            tag = find(_FORM_TAG, end) + 5
            tag_end = find(",", tag)
            this = int(messages[tag:tag_end])
            if form < 0:
                form = this
            elif this != form:
                return None
            indices[alias] = int(messages[start:end])
            position = find(_INDEX, tag_end)
        if form >= forms:
            return None
        found.append((form, indices))
    return found


SHARED_CAP = 1_000
"""Matches of one rule a shared session's action hands over at once."""

SharedFireCallback = Callable[[int, str, Sequence[int]], Sequence[str]]
"""`FireCallback` for a shared session: called with the form's position first."""

FORMS_PER_SHARED_SESSION = 100
"""Forms `CompiledRules.run_shared` puts in one session: enough to spread the cost of a session
over many forms, few enough that the joins on the form (each scans the session's facts of one
pattern) stay cheap."""


class CompiledRules:
    """A durable_rules ruleset compiled from engine rules; `run` is safe from any thread.

    `close` deletes the engine's ruleset; so does garbage collection (``weakref.finalize``) when
    the object is dropped without closing it. Rulesets are C memory the engine never frees by
    itself (about 0.8 MB each), and the engine has room for 131,071 of them.
    """

    def __init__(self, rules: Sequence[EngineRule], label: str) -> None:
        problems = network_problems(rules)
        if problems:
            raise EngineError(
                "the rules would overflow the engine: "
                + "; ".join(f"{name}: {message}" for name, message in problems)
            )
        self._json = json.dumps(definition(rules), ensure_ascii=False)
        # Compiled on first use (batch workers): the definition for sessions of several forms,
        # or None when it would not fit the engine's tables (forms then run one by one).
        self._shared_json: str | None = (
            None
            if network_problems(rules, shared=True)
            else json.dumps(definition(rules, shared=True), ensure_ascii=False)
        )
        self._label = label
        self._sids = itertools.count(1)
        self._lock = ForkSafeLock()
        self._closed = False
        # The finalizer holds these lists, not self: the current handle is the last item of
        # ``_handles``; ``_live`` holds the session forms run in, if there is one.
        self._handles: list[int] = [self._create()]
        self._live: list[_Session] = []
        self._shared: list[int] = []  # the ruleset for shared sessions, once compiled
        self._slots = {rule.name: len(rule.slots) for rule in rules}
        self._finalizer = weakref.finalize(self, _release, self._handles, self._live, self._shared)
        # At interpreter exit a daemon thread may still be screening: leave the memory to the OS.
        self._finalizer.atexit = False

    def _create(self, definition_json: str | None = None) -> int:
        name = f"hipscreen-{self._label}-{next(_names)}"
        try:
            handle: int = _dre.create_ruleset(name, definition_json or self._json)
        except Exception as error:  # the C engine rejects the definition
            raise EngineError(f"the rules engine rejected the compiled ruleset: {error}") from error
        return handle

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    def close(self) -> None:
        """Delete the engine ruleset (waiting for a session in progress). Idempotent."""
        with self._lock:
            self._closed = True
            self._finalizer()

    def ensure_open(self) -> None:
        """Raise `EngineError` if the rules were closed."""
        if self._closed:
            raise EngineError(
                "this Screener is closed (close() was called or its with-block ended); "
                "create a new Screener"
            )

    def run(
        self,
        facts: Sequence[str | Fact],
        on_fire: FireCallback,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        """Assert one form's ``facts``, run every firing through ``on_fire``, clean up.

        ``facts`` are made by `encode_fact` (a mapping is encoded first; tests use them). The
        form runs in the ruleset's long-lived session and its facts are retracted afterwards
        (creating a session costs more than matching a form). Each form's facts carry a tag of
        their own, so a fact left behind by an earlier form cannot pass unnoticed: any anomaly
        (a stale or duplicate fact, an engine error) drops the session. When it shows up
        mid-form, ``on_restart`` is called (the caller forgets what it has seen) and the form
        runs again in a fresh session; without ``on_restart`` it is an `EngineError`.

        Raises:
            EngineError: the engine failed, a callback raised an ``Exception``, or the rules were
                closed. Other exceptions (``KeyboardInterrupt``) propagate after the cleanup.
        """
        with self._lock:
            self.ensure_open()
            if not self._handles:  # a replacement ruleset could not be created
                raise EngineError("the rules engine lost this ruleset; create a new Screener")
            try:
                self._run_locked(facts, on_fire)
            except _StaleSession as stale:
                if on_restart is None:
                    raise EngineError(f"the rules engine session went wrong: {stale}") from None
                on_restart()
                self._run_locked(facts, on_fire)  # in a fresh session: nothing can be stale

    def _replace_handle(self) -> None:
        """Drop the current ruleset with its half-made session; continue on a fresh one.

        A session where no action started cannot be deleted (rete.c frees its uninitialised
        action context), but deleting the whole ruleset is safe: ``deleteRuleset`` frees the
        network and the session table, never a session's contents (which stay leaked, a few KB).
        """
        self._live.clear()
        _release(self._handles)
        self._handles.append(self._create())

    def _drop_session(self) -> None:
        """Forget the live session, deleting it when that is safe."""
        if not self._live:
            return
        session = self._live.pop()
        if session.pid != os.getpid():
            return  # a session copied into a forked child: left alone (it may be mid-form)
        if session.started and self._handles and self._handles[-1] == session.handle:
            _dre.delete_state(session.handle, session.sid)
        elif self._handles and self._handles[-1] == session.handle:
            self._replace_handle()

    def _live_session(self) -> _Session:
        session = self._live[-1] if self._live else None
        if session is not None and (
            session.pid != os.getpid()
            or session.handle != self._handles[-1]
            or session.forms >= FORMS_PER_SESSION
        ):
            self._drop_session()
            session = None
        if session is None:
            session = _Session(self._handles[-1], str(next(self._sids)), os.getpid())
            self._live.append(session)
        return session

    def _run_locked(self, facts: Sequence[str | Fact], on_fire: FireCallback) -> None:
        session = self._live_session()
        handle, sid = session.handle, session.sid
        fresh = session.forms == 0
        tail = f',"f":{session.forms},"sid":"{sid}"}}'
        session.forms += 1
        closing = tail + ","
        try:  # facts made by encode_fact: one join
            body = closing.join(facts) + closing if facts else ""  # type: ignore[arg-type]
        except TypeError:  # some given as mappings (tests)
            body = "".join(
                (fact if isinstance(fact, str) else _legacy(fact)) + closing for fact in facts
            )
        batch = f'[{body}{{"t":"{_SENTINEL_FACT_TYPE}"{tail}]'

        asserted: list[str] = []
        errors: list[str] = []
        clean = False
        try:
            code, state = _dre.assert_facts(handle, batch)
            if code == _OBSERVED:
                raise _StaleSession("a fact of this form was already in the session")
            result = _dre.start_action_for_state(handle, state)
            if result is None:  # cannot happen while the sentinel rule exists
                raise EngineError("no rule fired, not even the sentinel")
            session.started = True
            messages = result[1]
            complete = _dre.complete_and_start_action
            find = str.find
            while messages is not None:
                named = messages.index('"', 2)
                name = messages[2:named]
                if name != _SENTINEL_RULE:
                    # One pass over the firing's text: a one-slot firing (most) is read inline
                    # (see `matched_indices`), a firing of several slots by that function.
                    start = find(messages, _INDEX, named) + 5
                    end = find(messages, ",", start)
                    if find(messages, _INDEX, end) < 0:
                        indices = [int(messages[start:end])]
                    else:
                        indices = matched_indices(messages)
                    if messages.count(tail) != len(indices):
                        raise _StaleSession(f"rule {name} matched a fact of an earlier form")
                    try:
                        derived: Sequence[str] = on_fire(name, indices)
                    except Exception as error:  # the stock glue would swallow this silently
                        errors.append(f"{name}: {type(error).__name__}: {error}")
                        derived = ()
                    for fragment in derived:
                        fact = fragment + tail
                        if _dre.assert_fact(handle, fact)[0] == _OBSERVED:
                            raise _StaleSession(f"{fragment}}} was already in the session")
                        asserted.append(fact)
                messages = complete(handle, state)
            # Leave the session as it was: without this form's facts and findings.
            _dre.retract_facts(handle, batch)
            if asserted:
                _dre.retract_facts(handle, "[" + ",".join(asserted) + "]")
            clean = not errors
        except (EngineError, _StaleSession) as error:
            if isinstance(error, _StaleSession) and fresh:
                raise EngineError(f"the rules engine session went wrong: {error}") from None
            raise
        except Exception as error:
            if not session.started:
                raise EngineError(
                    f"the rules engine failed before any rule ran: {error}"
                ) from error
            raise EngineError(f"the rules engine failed: {error}") from error
        finally:
            # Runs for every exception, KeyboardInterrupt included: a session that saw anything
            # unexpected is never used again.
            if not clean:
                self._drop_session()
        if errors:
            raise EngineError("a rule action failed: " + "; ".join(errors))

    @property
    def can_share(self) -> bool:
        """Whether forms can share a session (`run_shared`): the rules fit the engine's tables
        with the joins on the form."""
        return self._shared_json is not None

    def run_shared(
        self, forms: Sequence[Sequence[str | Fact]], on_fire: SharedFireCallback
    ) -> list[list[str]] | None:
        """Screen several forms in one fresh session: assert all their facts at once, run every
        firing through ``on_fire(form position, rule name, fact indices)``, delete the session.

        Every fact carries its form's position (``"f"``) and every rule joins its facts on it
        (`definition`), so a rule never binds facts of two forms, and findings use ``"fi"``,
        not the engine's identity key ``"id"`` (the finding facts ``on_fire`` returns are made
        by `finding_fact` and rekeyed here). One session and one ``assert_facts`` for many
        forms, and no retraction, cost less than one session round per form.

        Returns:
            Per form, the errors its rule actions raised (empty when it ran cleanly); or None when
            the forms could not share a session: the rules do not fit the engine's tables that way,
            or the engine did something unexpected (a duplicate fact, a rule binding facts of two
            forms, an engine error). Nothing ``on_fire`` was told then counts: run each form
            with `run` instead.

        Raises:
            EngineError: the rules were closed. Other exceptions (``KeyboardInterrupt``)
                propagate after the cleanup.
        """
        with self._lock:
            self.ensure_open()
            if self._shared_json is None or not forms:
                return None
            if not self._shared:
                try:
                    self._shared.append(self._create(self._shared_json))
                except EngineError:
                    self._shared_json = None  # never again: forms run one by one
                    return None
            handle, sid = self._shared[-1], str(next(self._sids))
            tails = [f',"f":{k},"sid":"{sid}"}}' for k in range(len(forms))]
            batch = (
                "["
                + "".join(
                    (fact if isinstance(fact, str) else _legacy(fact)) + tail + ","
                    for facts, tail in zip(forms, tails, strict=True)
                    for fact in facts
                )
                + f'{{"t":"{_SENTINEL_FACT_TYPE}","sid":"{sid}"}}]'
            )
            errors: list[list[str]] = [[] for _ in forms]
            started = done = False
            try:
                code, state = _dre.assert_facts(handle, batch)
                if code == _OBSERVED:
                    return None
                result = _dre.start_action_for_state(handle, state)
                if result is None:  # cannot happen while the sentinel rule exists
                    return None
                started = True
                messages = result[1]
                slots = self._slots
                while messages is not None:
                    name = messages[2 : messages.index('"', 2)]
                    if name != _SENTINEL_RULE:
                        # {"<rule>":[{"p0":{<fact>},"p1":{…}},{…}]}: every match's facts in turn.
                        matches = shared_matches(messages, slots[name], len(forms))
                        if matches is None:
                            return None  # unreadable, or a rule bound facts of two forms
                        for form, indices in matches:
                            try:
                                derived: Sequence[str] = on_fire(form, name, indices)
                            except Exception as error:  # the stock glue would swallow this
                                errors[form].append(f"{name}: {type(error).__name__}: {error}")
                                derived = ()
                            for fragment in derived:
                                shared_fragment = fragment.replace(
                                    _FINDING_ID, _SHARED_FINDING_ID, 1
                                )
                                fact = shared_fragment + tails[form]
                                if _dre.assert_fact(handle, fact)[0] == _OBSERVED:
                                    return None
                    messages = _dre.complete_and_start_action(handle, state)
                done = True
            except Exception:  # any engine failure: the caller runs the forms one by one
                return None
            finally:
                # Runs for every exception, KeyboardInterrupt included. A session where no action
                # started cannot be deleted (see `_replace_handle`): its whole ruleset goes.
                if started:
                    _dre.delete_state(handle, sid)
                elif self._shared and self._shared[-1] == handle:
                    _release(self._shared)
            return errors if done else None


def compile_rules(rules: Sequence[EngineRule], label: str) -> CompiledRules:
    """Compile engine rules (once per process per rule set)."""
    return CompiledRules(rules, label)
