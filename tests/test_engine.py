"""The engine door: durable_rules traps stay designed around (see docs/engine.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hipscreen
from hipscreen import _engine
from hipscreen._engine import CompiledRules, EngineRule, engine_number
from hipscreen._rules.atoms import Atom

GRADE = Atom("grade", (("measure", "tightness"),), at_least=2)


def _facts(value: int) -> list[dict[str, object]]:
    return [{"t": "grade", "ms": "tightness", "v": value, "i": 0}]


def test_form_matching_no_rule_is_screened_and_cleaned_up() -> None:
    """A form no rule matches used to crash delete_state; the sentinel rule prevents it."""
    rules = CompiledRules([EngineRule("r", ((GRADE,),))], "t")
    fired: list[str] = []
    for _ in range(3):
        rules.run(_facts(0), lambda name, message: fired.append(name) or ())
    assert fired == []


def test_more_sessions_than_the_engine_cap_run_one_after_another() -> None:
    """The C engine holds at most 1,024 live sessions; each run deletes its own."""
    rules = CompiledRules([EngineRule("r", ((GRADE,),))], "t")
    fired: list[str] = []
    for _ in range(1500):
        rules.run(_facts(3), lambda name, message: fired.append(name) or ())
    assert len(fired) == 1500


def test_an_action_error_is_raised_not_swallowed() -> None:
    """durable_rules' own glue hides action exceptions in the state; ours raises EngineError."""
    rules = CompiledRules([EngineRule("r", ((GRADE,),))], "t")

    def boom(name: str, message: object) -> tuple[str, ...]:
        raise KeyError("broken action")

    with pytest.raises(hipscreen.EngineError, match="broken action"):
        rules.run(_facts(3), boom)
    fired: list[str] = []
    rules.run(_facts(3), lambda name, message: fired.append(name) or ())
    assert fired == ["r"], "the ruleset keeps working after a failed action"


@pytest.mark.parametrize("value", [1e-05, 5e-324, -1e-07, 0.0004, 1.5e-10])
def test_tiny_floats_never_reach_the_engine_in_exponent_notation(value: float) -> None:
    """durable_rules' JSON reader segfaults on numbers such as 1e-05."""
    assert "e" not in json.dumps(engine_number(value))
    result = hipscreen.assess(
        {"rom": {"hip_extension": value}, "thomas_test": {"hip_angle": value}}
    )
    assert "limited-hip-extension" in result.finding_ids()


def test_engine_numbers_are_exact_unless_python_would_print_an_exponent() -> None:
    assert engine_number(12.3456) == 12.3456
    assert engine_number(99.9996) == 99.9996
    assert engine_number(7.0) == 7
    assert engine_number(3) == 3
    assert engine_number(0.0001) == 0.0001
    assert engine_number(0.00009) == 0.0005
    assert engine_number(-1e-300) == -0.0005


def test_many_screeners_register_side_by_side() -> None:
    """Re-running a notebook cell that builds a screener must not hit 'already registered'."""
    screeners = [hipscreen.Screener() for _ in range(3)]
    form = {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}}
    results = {s.assess(form).model_dump_json() for s in screeners}
    assert len(results) == 1


def test_no_engine_threads_are_started() -> None:
    """durable's Host starts dispatcher timer threads that race delete_state; we never use it."""
    import threading

    hipscreen.assess({"tightness": {"hip_flexors": 3}})
    names = [t.name for t in threading.enumerate()]
    assert all("Timer" not in name for name in names), names


@pytest.mark.process
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_screening_in_a_forked_child_works() -> None:
    hipscreen.assess({"tightness": {"iliopsoas": 3}})  # the engine is live in the parent
    code = (
        "import os, hipscreen, json\n"
        "hipscreen.assess({'tightness': {'iliopsoas': 3}})\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ids = hipscreen.assess({'tightness': {'iliopsoas': 3}}).finding_ids()\n"
        "    os._exit(0 if 'tight-hip-flexors' in ids else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent, timeout=60)
    assert completed.returncode == 0


FORMS = [
    {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}},
    {"thomas_test": {"hip_angle": {"left": 12.5, "right": 1}}, "activities": ["running"]},
    {"symptoms": ["groin_pain", "pain_on_weight_bearing", "recent_training_increase"]},
    {"strength": {"gluteus_maximus": {"left": 2, "right": 4}}, "age": 70},
    {},
]


def _expected() -> list[str]:
    with hipscreen.Screener(cache_size=0) as fresh:
        return [fresh.assess(form).model_dump_json() for form in FORMS]


def test_forms_share_one_session_and_leave_nothing_behind() -> None:
    """One long-lived session per ruleset: each form's facts and findings are retracted."""
    expected = _expected()
    with hipscreen.Screener(cache_size=0) as screener:
        for _ in range(3):
            assert [screener.assess(form).model_dump_json() for form in FORMS] == expected
        (session,) = screener._compiled._live
        assert session.forms == 3 * len(FORMS)


def test_a_fact_left_behind_is_caught_and_the_form_rerun_in_a_fresh_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If retraction ever failed silently, the next form would meet facts of an earlier one:
    every fact carries its form's tag, so a firing on a stale fact drops the session and the
    form runs again in a fresh one."""
    expected = _expected()
    with hipscreen.Screener(cache_size=0) as screener:
        got, sids = [], set()
        with monkeypatch.context() as patch:
            patch.setattr(_engine._dre, "retract_facts", lambda handle, facts: (0, 0))
            for form in FORMS * 2:
                got.append(screener.assess(form).model_dump_json())
                sids.add(screener._compiled._live[0].sid)
        assert got == expected * 2
        assert len(sids) > 2, "stale facts were met and fresh sessions started"
        assert screener.assess(FORMS[0]).model_dump_json() == expected[0]  # meets the last ones
        kept = screener._compiled._live[0].sid
        assert [screener.assess(form).model_dump_json() for form in FORMS] == expected
        assert screener._compiled._live[0].sid == kept  # retraction works again: session kept


def test_a_session_is_replaced_after_its_quota_of_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_engine, "FORMS_PER_SESSION", 2)
    expected = _expected()
    with hipscreen.Screener(cache_size=0) as screener:
        sids = []
        for form, want in zip(FORMS, expected, strict=True):
            assert screener.assess(form).model_dump_json() == want
            sids.append(screener._compiled._live[0].sid)
        assert len(set(sids)) == 3


def test_an_action_error_drops_the_session() -> None:
    rules = CompiledRules([EngineRule("r", ((GRADE,),))], "t")

    def boom(name: str, indices: object) -> tuple[str, ...]:
        raise ValueError("broken action")

    rules.run(_facts(3), lambda name, indices: ())
    (before,) = rules._live
    with pytest.raises(hipscreen.EngineError, match="broken action"):
        rules.run(_facts(3), boom)
    assert rules._live == []
    rules.run(_facts(3), lambda name, indices: ())
    assert rules._live[0].sid != before.sid
    rules.close()


# -- several forms in one session (batch workers) --------------------------------------------------

SIDE = Atom("grade", (("measure", "strength"),), at_most=2)
DERIVED = Atom("finding", (("id", "tight"),))


def _shared_rules() -> CompiledRules:
    """A one-fact rule ``tight``, a two-fact rule ``both`` and a rule chaining on ``tight``."""
    return CompiledRules(
        [
            EngineRule("tight", ((GRADE,),)),
            EngineRule("both", ((GRADE,), (SIDE,))),
            EngineRule("after", ((DERIVED,),)),
        ],
        "t",
    )


def _form(tightness: int | None, strength: int | None) -> list[dict[str, object]]:
    facts: list[dict[str, object]] = []
    if tightness is not None:
        facts.append({"t": "grade", "ms": "tightness", "v": tightness, "i": len(facts)})
    if strength is not None:
        facts.append({"t": "grade", "ms": "strength", "v": strength, "i": len(facts)})
    return facts


def _shared_firings(
    rules: CompiledRules, forms: list[list[dict[str, object]]]
) -> list[list[str]] | None:
    fired: list[list[str]] = [[] for _ in forms]

    def on_fire(form: int, name: str, indices: object) -> tuple[str, ...]:
        fired[form].append(name)
        return (_engine.finding_fact(0, "tight"),) if name == "tight" else ()

    if rules.run_shared(forms, on_fire) is None:
        return None
    return [sorted(names) for names in fired]


def test_forms_sharing_a_session_never_join_each_other_s_facts() -> None:
    """Every slot after the first joins on the first fact's form: a tight form next to a weak
    one fires nothing together, and each form's own finding chains once, for that form (a
    finding keyed "id" would be one fact to the engine whichever form asserted it)."""
    rules = _shared_rules()
    assert rules.can_share
    forms = [_form(3, None), _form(None, 1), _form(3, 1), _form(0, 1), _form(3, 4)] * 30
    expected = [
        ["after", "tight"],
        [],
        ["after", "both", "tight"],
        [],
        ["after", "tight"],
    ] * 30
    assert _shared_firings(rules, forms) == expected
    # The same forms one by one agree, and the shared session left nothing behind.
    one_by_one: list[list[str]] = []
    for facts in forms[:5]:
        names: list[str] = []

        def on_fire(name: str, indices: object, names: list[str] = names) -> tuple[str, ...]:
            names.append(name)
            return (_engine.finding_fact(0, "tight"),) if name == "tight" else ()

        rules.run(facts, on_fire)
        one_by_one.append(sorted(names))
    assert one_by_one == expected[:5]
    assert _shared_firings(rules, forms[:5]) == expected[:5]
    rules.close()


def test_a_shared_session_s_action_error_belongs_to_its_form() -> None:
    rules = _shared_rules()

    def on_fire(form: int, name: str, indices: object) -> tuple[str, ...]:
        if form == 1:
            raise ValueError("broken action")
        return ()

    errors = rules.run_shared([_form(3, None), _form(3, None), _form(0, None)], on_fire)
    assert errors is not None
    assert errors[0] == errors[2] == []
    assert errors[1] == ["tight: ValueError: broken action"]
    assert _shared_firings(rules, [_form(3, 1)]) == [["after", "both", "tight"]]
    rules.close()


def test_an_interrupted_shared_session_is_deleted_and_the_rules_go_on() -> None:
    rules = _shared_rules()

    def interrupt(form: int, name: str, indices: object) -> tuple[str, ...]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rules.run_shared([_form(3, 1)] * 4, interrupt)
    assert _shared_firings(rules, [_form(3, 1)] * 4) == [["after", "both", "tight"]] * 4
    rules.close()
    with pytest.raises(hipscreen.EngineError, match="closed"):
        rules.run_shared([_form(3, 1)], lambda form, name, indices: ())


def test_an_engine_anomaly_in_a_shared_session_means_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A duplicate fact (or any engine surprise) in a shared session gives None: the screener
    then screens those forms one by one, with the same results."""
    rules = _shared_rules()
    monkeypatch.setattr(_engine._dre, "assert_fact", lambda handle, fact: (2, 0))
    assert _shared_firings(rules, [_form(3, 1)] * 3) is None
    monkeypatch.undo()
    assert _shared_firings(rules, [_form(3, 1)] * 3) == [["after", "both", "tight"]] * 3
    rules.close()
    expected = _expected()
    with hipscreen.Screener(cache_size=0) as screener:
        monkeypatch.setattr(screener._compiled, "run_shared", lambda forms, on_fire: None)
        intakes = [hipscreen.IntakeForm.model_validate(form) for form in FORMS]
        got = screener.assess_validated(intakes)
        assert [a.model_dump_json() for a in got if isinstance(a, hipscreen.Assessment)] == expected


def test_rules_too_wide_to_join_on_the_form_are_screened_one_by_one() -> None:
    """With the join test on every slot after the first, a wide ``any of`` slot may not fit the
    engine's expression table: such rules never share a session."""
    # 12 options: 2 + 2 × 12 expression entries alone, 2 + 3 × 12 with a join test in each.
    wide = tuple(Atom("symptom", (("name", f"s{k}"),)) for k in range(12))
    rules = CompiledRules([EngineRule("wide", ((GRADE,), wide))], "t")
    assert not rules.can_share
    assert rules.run_shared([_form(3, None)], lambda form, name, indices: ()) is None
    rules.close()


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-60, 200),
            st.sampled_from(["grade", "finding", "rom", "symptom"]),
            st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
            st.none() | st.floats(-1000, 1000, allow_nan=False) | st.integers(-999, 999),
        ),
        min_size=1,
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_matched_indices_reads_every_slot_of_a_firing(
    slots: list[tuple[int, str, str, float | int | None]], rng: Any
) -> None:
    """The firing decode without a regular expression gives each slot's fact index, whatever
    the slots' order in the message and whatever text the facts' values hold."""
    tail = ',"f":0,"sid":"7"}'
    parts = []
    for alias, (index, kind, text, value) in enumerate(slots):
        fact = _engine.encode_fact(index, f'"t":{json.dumps(kind)},"n":{json.dumps(text)}', value)
        parts.append(f'"p{alias}":{fact}{tail}')
    rng.shuffle(parts)
    messages = '{"rule#0":{' + ",".join(parts) + "}}"
    assert _engine.matched_indices(messages) == [index for index, *_ in slots]
    assert _engine.decode_firing(messages) == ("rule#0", [index for index, *_ in slots])


@settings(deadline=None)
@given(
    st.integers(1, 4),
    st.lists(
        st.tuples(
            st.integers(0, 120),
            st.lists(
                st.tuples(
                    st.integers(-60, 200),
                    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
                    st.none() | st.floats(-1000, 1000, allow_nan=False) | st.integers(-999, 999),
                ),
                min_size=4,
                max_size=4,
            ),
        ),
        min_size=1,
        max_size=5,
    ),
    st.randoms(use_true_random=False),
)
def test_shared_matches_reads_every_match_of_a_shared_firing(
    width: int, matches: list[tuple[int, list[tuple[int, str, float | int | None]]]], rng: Any
) -> None:
    """The shared-session decode (no regular expression): each match's form and the fact index
    of each slot, whatever the slots' order and the facts' text; a match binding facts of two
    forms, or a form out of range, is refused."""
    parts = []
    for form, facts in matches:
        tail = f',"f":{form},"sid":"7"}}'
        slots = [
            f'"p{alias}":'
            + _engine.encode_fact(index, f'"t":"grade","n":{json.dumps(text)}', value)
            + tail
            for alias, (index, text, value) in enumerate(facts[:width])
        ]
        rng.shuffle(slots)
        parts.append("{" + ",".join(slots) + "}")
    messages = '{"rule#0":[' + ",".join(parts) + "]}"
    expected = [(form, [index for index, *_ in facts[:width]]) for form, facts in matches]
    assert _engine.shared_matches(messages, width, 121) == expected
    assert _engine.shared_matches(messages, width, max(f for f, _ in matches)) is None
    if width > 1:
        mixed = messages.replace(f',"f":{matches[0][0]},', f',"f":{matches[0][0] + 1},', 1)
        assert _engine.shared_matches(mixed, width, 200) is None
