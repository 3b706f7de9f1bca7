"""Batch screening: one outcome per input in input order, exact caching, and workers."""

from __future__ import annotations

import ast
import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import forms, random_forms

import hipscreen
from hipscreen._batch import _extras
from hipscreen._batch._forms import BatchResult, assess_iter, assess_many
from hipscreen._batch._outcomes import RowError
from hipscreen._errors import InvalidFormError
from hipscreen._screen import Screener, default_screener

BATCH = settings(deadline=None)


def ok(outcome: Any) -> bool:
    return isinstance(outcome, hipscreen.Assessment)


def expected(form: Any) -> hipscreen.Assessment | InvalidFormError:
    """What screening ``form`` alone gives: its assessment or its error."""
    try:
        return Screener(cache_size=0).assess(form)
    except InvalidFormError as error:
        return error


_UNCACHED = Screener(cache_size=0)


def screen_alone(form: Any) -> hipscreen.Assessment | InvalidFormError:
    try:
        return _UNCACHED.assess(form)
    except InvalidFormError as error:
        return error


def assert_same(outcome: Any, alone: Any, row: int) -> None:
    if isinstance(alone, InvalidFormError):
        assert isinstance(outcome, RowError), f"row {row}: expected an error, got {outcome!r}"
        assert outcome.row == row
        assert list(outcome.problems) == alone.problems
    else:
        assert outcome == alone, f"row {row} differs"


def invalid_forms() -> st.SearchStrategy[Any]:
    """Rows that are not valid forms: bad values, unknown keys, bad client ids, not forms."""
    return st.one_of(
        forms().map(lambda f: {**f, "age": -5}),
        forms().map(lambda f: {**f, "tightnes": {"iliopsoas": 2}}),
        forms().map(lambda f: {**f, "client_id": ""}),
        forms().map(lambda f: {**f, "client_id": 12, "strength": {"glutes": "fair"}}),
        forms().map(lambda f: {**f, "symptoms": ["knee_pain", "elbow_pain"]}),
        st.sampled_from([None, 5, [], "not json", '{"age": "old"}', b"{}"]),
    )


@pytest.mark.slow
@BATCH
@given(rows=st.lists(st.one_of(forms(), invalid_forms()), max_size=12))
def test_any_mix_of_rows_gives_one_outcome_per_row_in_order(rows: list[Any]) -> None:
    """Each outcome is what screening that row alone gives: its assessment or every problem."""
    result = assess_many(rows, chunk_size=3)
    assert len(result) == len(rows)
    for row, (form, outcome) in enumerate(zip(rows, result, strict=True)):
        assert_same(outcome, screen_alone(form), row)


@pytest.mark.slow
@BATCH
@given(rows=st.lists(st.one_of(forms(), invalid_forms()), max_size=8), data=st.data())
def test_repeated_rows_with_other_client_ids_match_screening_alone(
    rows: list[Any], data: st.DataObject
) -> None:
    """The cache is exact: a repeated row, with another client id or none, gives its own result."""
    repeats = []
    for form in rows:
        repeats.append(form)
        if isinstance(form, dict):
            client = data.draw(st.one_of(st.none(), st.text(min_size=1, max_size=5)))
            copy = {k: v for k, v in form.items() if k != "client_id"}
            if client is not None:
                copy["client_id"] = client
            repeats.append(copy)
    result = assess_many(repeats * 2, chunk_size=4)
    for row, (form, outcome) in enumerate(zip(repeats * 2, result, strict=True)):
        assert_same(outcome, screen_alone(form), row)


def test_values_equal_in_python_but_not_to_the_form_are_not_confused() -> None:
    """1, 1.0 and True are one dict key in Python; the cache still tells them apart."""
    rows = [
        {"age": 30},
        {"age": 30.0},
        {"age": True},
        {"tightness": {"iliopsoas": 2}},
        {"tightness": {"iliopsoas": 2.0}},
        {"tightness": {"iliopsoas": True}},
        {"symptoms": ["knee_pain"]},
        {"symptoms": ("knee_pain",)},
    ]
    result = assess_many(rows * 3)
    for row, (form, outcome) in enumerate(zip(rows * 3, result, strict=True)):
        assert_same(outcome, screen_alone(form), row)
    assert [ok(outcome) for outcome in result[:6]] == [True, False, False, True, False, False]


@pytest.mark.slow
def test_cached_results_equal_uncached_ones() -> None:
    pool = random_forms(60, seed=7)
    rng = random.Random(3)
    rows = [dict(rng.choice(pool), client_id=f"c{i}") for i in range(600)]
    cached = assess_many(rows)
    uncached = assess_many(rows, cache_size=0)
    assert list(cached) == list(uncached)
    assert [o.client_id for o in cached] == [f"c{i}" for i in range(600)]  # type: ignore[union-attr]


def test_a_bad_row_never_stops_the_batch_or_disappears() -> None:
    rows: list[Any] = [{}, {"age": 300, "strength": {"gluteus_maximus": 9}}, 7, {"age": 40}]
    result = assess_many(rows)
    assert [ok(outcome) for outcome in result] == [True, False, False, True]
    error = result[1]
    assert isinstance(error, RowError)
    assert [p.field for p in error.problems] == ["age", "strength.gluteus_maximus"]
    assert "row 1" in str(error)
    assert error.to_exception().problems == list(error.problems)
    assert len(result.errors) == 2
    with pytest.raises(InvalidFormError, match="age"):
        result.raise_for_errors()


def test_a_mapping_of_forms_keeps_its_labels() -> None:
    result = assess_many({"anna": {"tightness": {"iliopsoas": 3}}, "ben": {"age": "x"}})
    assert result.keys == ["anna", "ben"]
    error = result[1]
    assert isinstance(error, RowError)
    assert (error.row, error.key) == (1, "ben")


def test_intake_form_models_and_json_strings_are_accepted() -> None:
    model = hipscreen.IntakeForm(client_id="m1", tightness={"iliopsoas": 3})
    text = '{"client_id": "j1", "strength": {"gluteus_maximus": 2}}'
    result = assess_many([model, text, model.model_copy(update={"client_id": "m2"})])
    assert [o.client_id for o in result] == ["m1", "j1", "m2"]  # type: ignore[union-attr]
    assert result[0] == hipscreen.assess(model)
    assert result[1] == hipscreen.assess(text)


@pytest.mark.process
@pytest.mark.slow
def test_parallel_outcomes_equal_sequential_ones() -> None:
    rows: list[Any] = random_forms(400, seed=11)
    rows += [{"age": -1}, "nope", {"client_id": "", "age": 3}, {"bogus": 1}] * 5
    random.Random(5).shuffle(rows)
    rows = rows + rows[:100]  # repeats across chunks
    sequential = assess_many(rows, chunk_size=64)
    parallel = assess_many(rows, workers=2, chunk_size=64)
    assert list(parallel) == list(sequential)
    assert list(assess_iter(rows, workers=2, chunk_size=50)) == list(sequential)


def test_assess_iter_is_lazy() -> None:
    """Outcomes come before the input ends: an endless stream can be screened."""
    endless = itertools.cycle([{"tightness": {"hip_flexors": 2}}, {"age": -1}])
    first = list(itertools.islice(assess_iter(endless, chunk_size=4), 5))
    assert [ok(o) for o in first] == [True, False, True, False, True]


def test_summary_counts_rows_and_findings() -> None:
    rows = [{"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}}] * 3
    rows += [{"symptoms": ["saddle_numbness"]}, {"age": "x"}, {}]
    summary = assess_many(rows).summary()
    assert (summary.rows, summary.screened, summary.failed) == (6, 5, 1)
    assert summary.findings["tight-hip-flexors"] == 3
    assert summary.findings["flexor-extensor-imbalance"] == 3
    assert summary.prevalence()["tight-hip-flexors"] == pytest.approx(3 / 5)
    assert sum(summary.highest_severity.values()) == 5
    assert summary.referrals["emergency"] == 1
    assert list(summary.findings.values()) == sorted(summary.findings.values(), reverse=True)
    text = str(summary)
    assert "rows read" in text
    assert "tight-hip-flexors" in text
    assert "60.0%" in text


def test_batch_result_is_a_sequence() -> None:
    result = assess_many([{"client_id": "a"}, {"client_id": "b"}, {"age": -1}])
    assert isinstance(result, BatchResult)
    assert result[-2].client_id == "b"  # type: ignore[union-attr]
    assert [ok(o) for o in result[1:]] == [True, False]
    with pytest.raises(IndexError, match="out of range"):
        result[3]
    assert repr(result) == "<BatchResult 3 rows: 2 screened, 1 failed>"
    assert not result.ok
    assert len(result.assessments()) == 2


def test_progress_bar_is_shown_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    assess_many([{}] * 5, progress=True)
    assert "5/5" in capsys.readouterr().err


def test_missing_optional_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _extras.importlib.import_module

    def no_extras(name: str, *args: Any) -> Any:
        if name.split(".")[0] in {"tqdm", "pandas", "matplotlib", "pyarrow"}:
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(_extras.importlib, "import_module", no_extras)
    with pytest.raises(
        ImportError, match=r"tqdm is not installed, run pip install 'hipscreen\[progress\]'"
    ):
        assess_many([{}], progress=True)
    result = assess_many([{}])
    with pytest.raises(ImportError, match=r"pip install 'hipscreen\[pandas\]'"):
        result.to_frame()
    with pytest.raises(ImportError, match=r"matplotlib is not installed.*hipscreen\[plot\]"):
        result.plot_prevalence()


def test_workers_and_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        assess_many([{}], workers=0)
    with pytest.raises(ValueError, match="chunk_size"):
        assess_many([{}], chunk_size=0)


def test_an_engine_failure_is_that_row_s_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A rule action fails for one form of a chunk screened in one shared engine session: that
    # form alone becomes a row error, its neighbours in the session are screened as usual.
    screener = default_screener()
    real = screener._collector

    def flaky(form_facts: Any, evidence: bool) -> Any:
        drafts, on_fire = real(form_facts, evidence)
        if not any('"t":"age","v":66' in fact for fact in form_facts.facts):
            return drafts, on_fire

        def boom(name: str, matched: Any) -> Any:
            raise RuntimeError("boom")

        return drafts, boom

    monkeypatch.setattr(screener, "_collector", flaky)
    tight = {"tightness": {"iliopsoas": 2}}
    forms = [{"age": 65, **tight}, {"age": 66, **tight}, {"age": 67, **tight}]
    result = assess_many(forms, cache_size=0)
    assert [ok(o) for o in result] == [True, False, True]
    error = result[1]
    assert isinstance(error, RowError)
    assert "rules engine failed" in error.message
    assert "boom" in error.message
    assert result[0] == screener.assess(forms[0])


def test_batch_result_renders_as_html() -> None:
    rows = [
        {"client_id": "<b>bold</b>", "tightness": {"iliopsoas": 3}},
        {"client_id": "x", "age": "<script>"},
    ]
    html = assess_many(rows)._repr_html_()
    assert "tight-hip-flexors" in html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "Failed rows (1)" in html
    summary_html = assess_many(rows).summary()._repr_html_()
    assert "rows read" in summary_html
    assert "tight-hip-flexors" in summary_html


def test_assessment_renders_findings_plan_and_referral_as_html() -> None:
    result = hipscreen.assess(
        {
            "client_id": "ann & co",
            "tightness": {"iliopsoas": 3},
            "strength": {"gluteus_maximus": 2},
            "symptoms": ["saddle_numbness"],
        }
    )
    html = result._repr_html_()
    assert html.startswith('<div class="hipscreen">')
    assert "ann &amp; co" in html
    assert "See " in html
    assert result.referral is not None
    for finding in result.findings:
        assert finding.id in html
    assert "Not assessed" in html
    plan = hipscreen.assess({"tightness": {"iliopsoas": 3}})._repr_html_()
    assert "<h4>Plan</h4>" in plan
    assert "half_kneeling_hip_flexor_stretch" in plan


def test_row_error_renders_its_problems_as_html() -> None:
    error = assess_many([{"age": -1}])[0]
    assert isinstance(error, RowError)
    html = error._repr_html_()
    assert "row 0 could not be screened" in html
    assert "age" in html


NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "batch_notebook.py"


def notebook_cells(path: Path) -> list[str]:
    """The code cells of a percent-format notebook, in order."""
    cells: list[list[str]] = [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            cells.append([] if "[markdown]" not in line else ["#markdown"])
        else:
            cells[-1].append(line)
    return ["\n".join(cell) for cell in cells if cell and cell[0] != "#markdown"]


@pytest.mark.notebook
@pytest.mark.slow
def test_batch_notebook_runs_cell_by_cell_and_shows_html(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each cell runs in order as Jupyter would, and each cell's last value renders as HTML."""
    monkeypatch.chdir(NOTEBOOK.parent)  # where Jupyter starts the kernel
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    shown: list[str] = []
    for source in notebook_cells(NOTEBOOK):
        tree = ast.parse(source)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, str(NOTEBOOK), "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), str(NOTEBOOK), "eval"), namespace)
            html = getattr(value, "_repr_html_", None)
            if html is not None:
                shown.append(html())
    assert len(notebook_cells(NOTEBOOK)) >= 8
    assert any("hipscreen batch: 3 rows" in html for html in shown)
    assert any("hipscreen assessment for ann" in html for html in shown)
    assert namespace["report"].summary.rows == 3000


@pytest.mark.process
@pytest.mark.notebook
@pytest.mark.slow
def test_batch_notebook_runs_as_a_script(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(NOTEBOOK)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        check=False,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "3,000 rows" in done.stdout


@pytest.mark.process
@pytest.mark.slow
def test_batch_benchmark_script_runs(tmp_path: Path) -> None:
    """The benchmark still runs (tiny counts; no timing is asserted)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_batch.py"
    output = tmp_path / "batch.json"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--forms",
            "300",
            "--distinct-forms",
            "50",
            "--chunk-size",
            "64",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "forms/s" in done.stdout
    report = json.loads(output.read_text(encoding="utf-8"))
    assert set(report["cases"]) == {"csv", "python", "repeated", "distinct"}
    assert report["cases"]["csv"]["forms"] == 300
    assert report["cases"]["csv"]["peak_tree_rss_mb"] > 0
