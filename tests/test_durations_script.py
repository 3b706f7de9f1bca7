"""benchmarks/durations.py lists tests over a budget that no marker keeps out of the fast tier."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "durations.py"


@pytest.fixture(scope="module")
def durations() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hipscreen_durations", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_quick" time="0.010" />
<testcase classname="tests.test_a" name="test_long[docs/batch.md]" time="3.500" />
<testcase classname="tests.test_a.TestGroup" name="test_in_class" time="2.500" />
<testcase classname="tests.test_b" name="test_marked_slow" time="9.000" />
</testsuite></testsuites>
"""

DURATIONS = """
============================= slowest durations =============================
1.50s call     tests/test_a.py::test_long[docs/batch.md]
0.70s setup    tests/test_a.py::test_long[docs/batch.md]
0.20s teardown tests/test_a.py::test_quick
(3 durations < 0.005s hidden.)
"""

UNMARKED = [
    "tests/test_a.py::test_quick",
    "tests/test_a.py::test_long[docs/batch.md]",
    "tests/test_a.py::TestGroup::test_in_class",
]


def test_node_ids_map_to_junit_names(durations: ModuleType) -> None:
    assert durations.junit_key("tests/test_a.py::test_x[1]") == "tests.test_a::test_x[1]"
    assert durations.junit_key("tests/test_a.py::TestC::test_y") == "tests.test_a.TestC::test_y"


def test_unmarked_tests_over_the_budget_are_listed_slowest_first(
    durations: ModuleType, tmp_path: Path
) -> None:
    report = tmp_path / "report.xml"
    report.write_text(JUNIT, encoding="utf-8")
    seconds = durations.read_report(report)
    listed = durations.over_budget(seconds, UNMARKED, 2.0)
    assert listed == [
        (3.5, "tests/test_a.py::test_long[docs/batch.md]"),
        (2.5, "tests/test_a.py::TestGroup::test_in_class"),
    ]  # test_b's 9 s test carries a marker: not among the unmarked, not listed
    assert durations.over_budget(seconds, UNMARKED, 5.0) == []


def test_durations_text_adds_up_the_phases_of_a_test(durations: ModuleType, tmp_path: Path) -> None:
    report = tmp_path / "durations.txt"
    report.write_text(DURATIONS, encoding="utf-8")
    seconds = durations.read_report(report)
    assert seconds == pytest.approx(
        {"tests.test_a::test_long[docs/batch.md]": 2.2, "tests.test_a::test_quick": 0.2}
    )
    assert durations.over_budget(seconds, UNMARKED, 2.0) == [
        (pytest.approx(2.2), "tests/test_a.py::test_long[docs/batch.md]")
    ]


def test_the_marker_expression_is_the_fast_tier_s(durations: ModuleType) -> None:
    expression = durations.fast_markers()
    assert expression.startswith("not slow and not process")
