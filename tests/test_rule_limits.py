"""Hostile rule files are refused by `rules check` and `Screener` in bounded time.

Each case from issue 11 (and each limit in ``hipscreen._limits``) gets a rule directory built
from ``tests/broken_rules/_valid``. Cases that used to hang or exhaust memory run
``hipscreen rules check`` in a subprocess with a timeout, so a regression fails instead of
hanging the suite. The promise: what passes the check compiles quickly and screens a full form in
bounded time and memory.
"""

from __future__ import annotations

import io
import math
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

import hipscreen
from hipscreen import _limits
from hipscreen._cli import main
from hipscreen._vocabulary import Activity, Muscle, Symptom

VALID = Path(__file__).resolve().parent / "broken_rules" / "_valid"
TIMEOUT_S = 60

FULL_FORM = {
    "age": 70,
    "tightness": {m.value: {"left": 3, "right": 2} for m in Muscle},
    "strength": {m.value: {"left": 1, "right": 2} for m in Muscle},
    "symptoms": [s.value for s in Symptom],
    "activities": [a.value for a in Activity],
    "rom": {"hip_flexion": {"left": 80, "right": 90}, "hip_extension": {"left": -5, "right": 5}},
    "thomas_test": {
        "hip_angle": {"left": 10, "right": 0},
        "knee_angle": {"left": 60, "right": 70},
        "thigh_abducts": {"left": True, "right": True},
    },
    "straight_leg_raise": {"angle": {"left": 50, "right": 60}, "reproduces_leg_pain": True},
    "active_knee_extension": {"deficit": {"left": 30, "right": 20}},
    "pregnancy": {"weeks": 20},
    "hip_replacement": {"approach": "posterior"},
    "osteoporosis": True,
    "vertebral_fracture": True,
    "back_pain": {"weeks": 2, "intensity": 8},
}
"""Every field given, per side wherever a side can be given: the most facts a form makes."""

GRADE = "{grade: {measure: tightness, at_least: 0}}"


def _rule(rule_id: str, when: str, extra: str = "") -> str:
    return (
        f"  - id: {rule_id}\n    title: R\n    severity: info\n    summary: S.\n"
        f"    source: T.\n    when: {when}\n{extra}"
    )


def _rules(*rules: str) -> str:
    return "rules:\n" + "".join(rules)


def _rule_dir(
    path: Path, findings: str | list[str], ruleset: Callable[[str], str] | None = None
) -> Path:
    """A copy of the valid base with ``findings`` as its rule file (or files x0, x1, …)."""
    shutil.copytree(VALID, path)
    if isinstance(findings, str):
        (path / "findings" / "x.yaml").write_text(findings, encoding="utf-8")
    else:
        (path / "findings" / "x.yaml").unlink()
        for i, text in enumerate(findings):
            (path / "findings" / f"x{i}.yaml").write_text(text, encoding="utf-8")
    if ruleset is not None:
        meta = path / "ruleset.yaml"
        meta.write_text(ruleset(meta.read_text(encoding="utf-8")), encoding="utf-8")
    return path


def _threshold(value: str) -> Callable[[str], str]:
    return lambda text: text.replace("value: 2", f"value: {value}")


def _check(directory: Path) -> subprocess.CompletedProcess[str]:
    """``hipscreen rules check DIR`` in a subprocess; fails the test on a hang."""
    return subprocess.run(
        [sys.executable, "-m", "hipscreen", "rules", "check", str(directory)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


ALIAS_BOMB = (  # 388 bytes; 9**9 = 387 million "x" once expanded
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}]\n"
        for i in range(8)
    )
    + "rules: *i\n"
)

CHAIN = _rules(
    _rule("r0", GRADE), *(_rule(f"r{i}", f"{{finding: r{i - 1}}}") for i in range(1, 504))
)

CASES: dict[str, tuple[str | list[str], Callable[[str], str] | None, list[str]]] = {
    "alias-bomb": (ALIAS_BOMB, None, ["findings/x.yaml", "anchors and aliases"]),
    "24-any-of-pairs-in-all-of": (
        _rules(
            _rule(
                "wide",
                "{all_of: ["
                + ", ".join(f"{{any_of: [{GRADE}, {{symptom: hip_pain}}]}}" for _ in range(24))
                + "]}",
            )
        ),
        None,
        ["findings/x.yaml:wide [when]", f"more than {_limits.MAX_ALTERNATIVES} alternatives"],
    ),
    "504-rule-chain": (
        CHAIN,
        None,
        ["findings/x.yaml:r", f"a chain of {_limits.MAX_CHAIN_DEPTH + 1} findings"],
    ),
    "all-of-5-identical-grades": (
        _rules(_rule("five", "{all_of: [" + ", ".join([GRADE] * 5) + "]}")),
        None,
        ["findings/x.yaml:five [when]", "combinations", f"{_limits.MAX_COMBINATIONS_PER_RULE:,}"],
    ),
    "5000-rules": (
        [
            _rules(*(_rule(f"r{k}-{i}", "{symptom: hip_pain}") for i in range(500)))
            for k in range(10)
        ],
        None,
        ["findings/x1.yaml:r1-0: ", f"5,000 rules (at most {_limits.MAX_RULES})"],
    ),
    "threshold-nan": (
        _rules(_rule("t", "{grade: {measure: tightness, at_least: tight_grade}}")),
        _threshold(".nan"),
        ["ruleset.yaml [thresholds.tight_grade.value]", "finite number (got nan)"],
    ),
    "threshold-inf": (
        _rules(_rule("t", "{grade: {measure: tightness, at_least: tight_grade}}")),
        _threshold(".inf"),
        ["ruleset.yaml [thresholds.tight_grade.value]", "finite number (got inf)"],
    ),
    "threshold-400-digits": (
        _rules(_rule("t", "{grade: {measure: tightness, at_least: tight_grade}}")),
        _threshold("9" * 400),
        ["[thresholds.tight_grade.value]", "an integer of 400 digits"],
    ),
    "threshold-400-digit-float": (
        _rules(_rule("t", "{grade: {measure: tightness, at_least: tight_grade}}")),
        _threshold("9" * 400 + ".5"),
        ["[thresholds.tight_grade.value]", "finite number (got inf)"],
    ),
    "threshold-5000-digits": (
        _rules(_rule("t", "{grade: {measure: tightness, at_least: tight_grade}}")),
        _threshold("9" * 5000),
        ["ruleset.yaml", "not valid YAML", "digits"],
    ),
    "threshold-four-decimals": (
        _rules(_rule("t", "{grade: {measure: tightness, at_least: tight_grade}}")),
        _threshold("1.0001"),
        ["[thresholds.tight_grade.value]", "at most 3 decimal places (got 1.0001)"],
    ),
    "condition-number-nan": (
        _rules(_rule("n", "{grade: {measure: tightness, at_least: .nan}}")),
        None,
        ["findings/x.yaml:n [when.grade.at_least]", "finite number"],
    ),
    "condition-number-400-digits": (
        _rules(_rule("n", "{rom: {motion: hip_flexion, below: " + "9" * 400 + "}}")),
        None,
        ["findings/x.yaml:n [when.rom.below]", "an integer of 400 digits"],
    ),
    "condition-number-out-of-range": (
        _rules(_rule("n", "{age: {at_least: -1.0e+300}}")),
        None,
        ["findings/x.yaml:n [when.age.at_least]", "between -1,000,000 and 1,000,000"],
    ),
    "deep-yaml-nesting": (
        "rules: " + "[" * 100 + "]" * 100 + "\n",
        None,
        ["findings/x.yaml", f"nested more than {_limits.MAX_YAML_DEPTH} levels"],
    ),
    "very-deep-yaml-nesting": (
        "rules: " + "[" * 100_000 + "]" * 100_000 + "\n",
        None,
        ["findings/x.yaml", "not valid YAML", "nesting depth"],
    ),
    "file-over-512-kib": (
        "# " + "x" * _limits.MAX_RULE_FILE_BYTES + "\n" + _rules(_rule("a", GRADE)),
        None,
        ["findings/x.yaml", f"larger than {_limits.MAX_RULE_FILE_BYTES:,} bytes"],
    ),
    "300-distinct-thresholds": (
        _rules(
            *(
                _rule(f"d{i}", f"{{grade: {{measure: tightness, at_least: {i / 1000}}}}}")
                for i in range(1, 301)
            ),
        ),
        None,
        ["findings/x.yaml:", "too many distinct tests follow one test"],
    ),
    "300-finding-references": (
        _rules(
            *(
                _rule(f"b{i}", f"{{symptom: {list(Symptom)[i % len(Symptom)].value}}}")
                for i in range(300)
            ),
            *(
                _rule(
                    f"c{k}",
                    "{any_of: ["
                    + ", ".join(f"{{finding: b{i}}}" for i in range(k, 300, 20))
                    + "]}",
                )
                for k in range(20)
            ),
        ),
        None,
        ["findings/x.yaml:", "too many distinct tests follow one test"],
    ),
    "300-rules-on-one-pattern": (
        _rules(*(_rule(f"s{i}", "{symptom: hip_pain}") for i in range(300))),
        None,
        ["findings/x.yaml:s", "too many rules test exactly the same pattern"],
    ),
    "seven-joins": (
        _rules(
            _rule(
                "j",
                "{all_of: ["
                + ", ".join(f"{{symptom: {s.value}}}" for s in list(Symptom)[:7])
                + "]}",
            )
        ),
        None,
        ["findings/x.yaml:j [when]", f"(at most {_limits.MAX_PATTERNS_PER_ALTERNATIVE})"],
    ),
}


SLOW = {  # hung, crashed or exhausted memory before the limits: checked in a subprocess
    "alias-bomb",
    "24-any-of-pairs-in-all-of",
    "504-rule-chain",
    "all-of-5-identical-grades",
    "5000-rules",
    "very-deep-yaml-nesting",
    "300-distinct-thresholds",
    "300-finding-references",
    "300-rules-on-one-pattern",
}


@pytest.mark.process
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_rules_are_refused_by_rules_check_in_bounded_time(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    findings, ruleset, expected = CASES[case]
    directory = _rule_dir(tmp_path / case, findings, ruleset)
    if case in SLOW:
        completed = _check(directory)
        code, output = completed.returncode, completed.stdout + completed.stderr
    else:
        code = main(["rules", "check", str(directory)])
        captured = capsys.readouterr()
        output = captured.out + captured.err
    assert "internal error" not in output
    assert "Traceback" not in output
    assert code == 1, output[-2000:]
    missing = [text for text in expected if text not in output]
    assert missing == [], output[-3000:]


@pytest.mark.parametrize(
    "case", ["threshold-nan", "threshold-400-digits", "condition-number-nan", "seven-joins"]
)
def test_screener_refuses_hostile_rules_with_rule_data_error(case: str, tmp_path: Path) -> None:
    findings, ruleset, expected = CASES[case]
    directory = _rule_dir(tmp_path / case, findings, ruleset)
    with pytest.raises(hipscreen.RuleDataError) as caught:
        hipscreen.Screener(directory)
    assert all(text in str(caught.value) for text in expected), str(caught.value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400, 1e300, 2.0001])
def test_threshold_overrides_are_checked_like_rule_data(value: float) -> None:
    with pytest.raises(hipscreen.RuleDataError, match=r"thresholds:weak_grade"):
        hipscreen.Screener(thresholds={"weak_grade": value})


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "9" * 400, "0.0001"])
def test_cli_threshold_override_never_is_an_internal_error(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"age": 30}'))
    code = main(["assess", "--threshold", f"weak_grade={value}", "-"])
    error = capsys.readouterr().err
    assert code == 2, error
    assert "internal error" not in error
    assert "thresholds:weak_grade" in error


@pytest.mark.process
def test_a_rule_set_at_every_limit_passes_the_check(tmp_path: Path) -> None:
    """The limits refuse what is hostile, not what is merely large."""
    chain = [_rule("c0", GRADE)]
    chain += [_rule(f"c{i}", f"{{finding: c{i - 1}}}") for i in range(1, _limits.MAX_CHAIN_DEPTH)]
    any_of = "{any_of: [{symptom: hip_pain}, {symptom: groin_pain}]}"
    wide = "{all_of: [" + ", ".join([any_of] * 5) + "]}"  # 2**5 = 32 alternatives
    joins = "{all_of: [" + ", ".join(f"{{symptom: {s.value}}}" for s in list(Symptom)[:6]) + "]}"
    fillers = [
        _rule(f"f{i}", f"{{symptom: {list(Symptom)[i % len(Symptom)].value}}}")
        for i in range(_limits.MAX_RULES - len(chain) - 2)
    ]
    directory = _rule_dir(
        tmp_path / "large", _rules(*chain, _rule("wide", wide), _rule("joins", joins), *fillers)
    )
    completed = _check(directory)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"{_limits.MAX_RULES} rules" in completed.stdout


WORST_CASE = """
import resource, sys, time
import hipscreen
from test_rule_limits import FULL_FORM
start = time.perf_counter()
screener = hipscreen.Screener(sys.argv[1], cache_size=0)
compiled = time.perf_counter() - start
start = time.perf_counter()
result = screener.assess(FULL_FORM)
assessed = time.perf_counter() - start
try:  # this process's own peak: ru_maxrss also counts the parent's size at the fork (Linux)
    peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{compiled:.3f} {assessed:.3f} {peak:.0f} {len(result.findings)}")
"""


@pytest.mark.process
@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage")
def test_the_costliest_rules_that_pass_screen_a_full_form_in_bounded_time_and_memory(
    tmp_path: Path,
) -> None:
    """Conditions at the cross-product limits: four rules of three broad grade atoms (16³ each)
    come to 16,384 worst-case combinations, under ``MAX_COMBINATIONS_PER_FORM``."""
    # Three different atoms (identical ones would collapse into one) that every grade meets.
    broad = [
        GRADE,
        "{grade: {measure: tightness, at_most: 3}}",
        "{grade: {measure: tightness, at_least: 0, at_most: 9}}",
    ]
    three = "{all_of: [" + ", ".join(broad) + "]}"
    directory = _rule_dir(tmp_path / "worst", _rules(*(_rule(f"w{i}", three) for i in range(4))))
    assert _check(directory).returncode == 0
    completed = subprocess.run(
        [sys.executable, "-c", WORST_CASE, str(directory)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        cwd=Path(__file__).parent,
    )
    assert completed.returncode == 0, completed.stderr
    compiled, assessed, peak_mb, findings = completed.stdout.split()
    print(f"\nworst case: compile {compiled} s, assess {assessed} s, peak {peak_mb} MB")
    assert int(findings) == 4
    # Generous bounds: the point is "bounded", the figures are ~0.1 s, ~0.6 s and ~60 MB.
    assert float(assessed) < 20
    assert int(peak_mb) < 400


def test_the_built_in_rules_are_far_inside_every_limit() -> None:
    from hipscreen._rules.bounds import _combinations, _conditions

    rules = hipscreen.Screener().ruleset.rules
    total = sum(_combinations(c, 10**9) for rule in rules for c in _conditions(rule))
    assert total * 10 < _limits.MAX_COMBINATIONS_PER_FORM
    assert len(rules) * 5 < _limits.MAX_RULES


def test_max_facts_bounds_the_facts_of_a_full_form() -> None:
    """The cross-product estimate rests on how many facts of each kind a form can make."""
    from collections import Counter

    from hipscreen._engine import fact_fields
    from hipscreen._facts import FormFacts
    from hipscreen._intake.form import coerce_form
    from hipscreen._vocabulary import Measure

    intake = coerce_form(FULL_FORM)
    encoded = FormFacts(intake, {m: list(intake.grades(m.value)) for m in Measure}).facts
    facts = [fact_fields(fact) for fact in encoded]
    counts = Counter((f["t"], f.get("ms")) for f in facts)
    assert counts[("grade", "tightness")] == 2 * len(Muscle)
    assert counts[("symptom", None)] <= len(Symptom)
    assert max(n for (kind, _), n in counts.items() if kind == "asym") <= len(Muscle)
    assert resource  # imported for the subprocess check above


@pytest.mark.process
def test_a_long_any_of_is_split_into_patterns_the_engine_accepts(tmp_path: Path) -> None:
    """32 distinct grade atoms in one any_of would be one ``$or`` of 66 expression entries (the
    C engine refuses 32: error 113); the compiler splits it, and each alternative still fires."""
    atoms = [
        f"{{grade: {{measure: {measure}, muscle: {muscle.value}, side: {side}, at_least: 1}}}}"
        for measure in ("tightness", "strength")
        for muscle in Muscle
        for side in ("left", "right")
    ]
    assert len(atoms) == _limits.MAX_ALTERNATIVES
    directory = _rule_dir(
        tmp_path / "long", _rules(_rule("long", "{any_of: [" + ", ".join(atoms) + "]}"))
    )
    assert _check(directory).returncode == 0
    with hipscreen.Screener(directory) as screener:
        for muscle in Muscle:
            form = {"strength": {muscle.value: {"right": 2}}}
            assert screener.assess(form).finding_ids() == ["long"], muscle


def test_network_problems_name_the_engine_rule_that_crosses_a_limit() -> None:
    from hipscreen._engine import EngineRule, network_problems
    from hipscreen._rules.atoms import Atom

    rules = [
        EngineRule(f"r{i}", ((Atom("age", at_least=i),),))
        for i in range(_limits.MAX_ALPHA_BRANCHES + 1)
    ]
    assert network_problems(rules[:-1]) == []
    ((name, message),) = network_problems(rules)
    assert name == f"r{_limits.MAX_ALPHA_BRANCHES}"
    assert "distinct tests follow one test" in message


RANDOM_RULES = r"""
import shutil, sys, tempfile, time
from pathlib import Path
from hypothesis import HealthCheck, given, settings, strategies as st
import hipscreen
from test_rule_limits import FULL_FORM, GRADE, VALID, _rule, _rules
from hipscreen._vocabulary import Muscle, MuscleGroup, Symptom

outcomes = {"refused": 0, "screened": 0}
slowest = [0.0]

def grade(draw):
    parts = [f"measure: {draw(st.sampled_from(['tightness', 'strength']))}"]
    which = draw(st.sampled_from(["muscle", "group", "none"]))
    if which == "muscle":
        parts.append(f"muscle: {draw(st.sampled_from([m.value for m in Muscle]))}")
    elif which == "group":
        parts.append(f"group: {draw(st.sampled_from([g.value for g in MuscleGroup]))}")
    if draw(st.booleans()):
        parts.append(f"side: {draw(st.sampled_from(['left', 'right']))}")
    parts.append(f"at_least: {draw(st.integers(0, 3))}")
    return "{grade: {" + ", ".join(parts) + "}}"

@st.composite
def condition(draw, depth, earlier):
    kind = draw(st.sampled_from(["grade", "symptom", "age", "finding", "all_of", "any_of"]
                                if depth < 3 else ["grade", "symptom", "age"]))
    if kind == "grade":
        return grade(draw)
    if kind == "symptom":
        return "{symptom: " + draw(st.sampled_from([s.value for s in Symptom][:6])) + "}"
    if kind == "age":
        return "{age: {at_least: " + str(draw(st.integers(0, 100))) + "}}"
    if kind == "finding":
        return ("{finding: " + draw(st.sampled_from(earlier)) + "}") if earlier else GRADE
    items = draw(st.lists(condition(depth + 1, earlier), min_size=1, max_size=6))
    return "{" + kind + ": [" + ", ".join(items) + "]}"

@st.composite
def rule_sets(draw):
    rules, ids = [], []
    for i in range(draw(st.integers(1, 8))):
        rules.append(_rule(f"g{i}", draw(condition(0, list(ids)))))
        ids.append(f"g{i}")
    return _rules(*rules)

@settings(max_examples=int(sys.argv[1]), deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(rule_sets())
def check(text):
    workdir = Path(tempfile.mkdtemp())
    try:
        shutil.copytree(VALID, workdir / "r")
        (workdir / "r" / "findings" / "x.yaml").write_text(text)
        try:
            screener = hipscreen.Screener(workdir / "r", cache_size=0)
        except hipscreen.RuleDataError:
            outcomes["refused"] += 1
            return
        with screener:
            start = time.perf_counter()
            screener.assess(FULL_FORM)
            slowest[0] = max(slowest[0], time.perf_counter() - start)
        outcomes["screened"] += 1
    finally:
        shutil.rmtree(workdir)

check()
print(outcomes["refused"], outcomes["screened"], f"{slowest[0]:.3f}")
"""


@pytest.mark.process
def test_random_rule_sets_are_refused_or_screen_a_full_form_in_bounded_time() -> None:
    """Hypothesis draws nested conditions (broad and narrow grades, joins, chains): each rule set
    is either refused with a RuleDataError or compiles and screens a full form quickly. In a
    subprocess with a timeout, so a hang fails the test."""
    completed = subprocess.run(
        [sys.executable, "-c", RANDOM_RULES, str(settings.default.max_examples)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=Path(__file__).parent,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    refused, screened, slowest = completed.stdout.split()
    print(f"\nrandom rule sets: {refused} refused, {screened} screened, slowest {slowest} s")
    assert int(screened) > 0
    assert float(slowest) < 10
