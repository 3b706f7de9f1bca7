"""Every batch door the same: custom screeners everywhere, one semantics, pandas, polars, Arrow."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from strategies import random_forms

import hipscreen
from hipscreen._batch._columns import form_to_row
from hipscreen._batch._pipeline import worker_screener
from hipscreen._cli import main

ROOT = Path(__file__).resolve().parents[1]
CLINIC = ROOT / "tests" / "extra_rules" / "clinic"
STRICT = hipscreen.Screener(thresholds={"weak_grade": 4})
CLINIC_RULES = hipscreen.Screener(extra_rules=[CLINIC], thresholds={"weak_grade": 4})
FORMS: list[dict[str, Any]] = [
    {"client_id": "a", "strength": {"gluteus_maximus": 4}},
    {
        "client_id": "b",
        "tightness": {"iliopsoas": 3},
        "strength": {"gluteus_maximus": 2},
        "activities": ["sprinting"],
    },
    {"client_id": "c", "age": -1},
    {"client_id": "d"},
]


def ids(outcome: Any) -> list[str] | None:
    return outcome.finding_ids() if isinstance(outcome, hipscreen.Assessment) else None


# -- custom screeners ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workers", "screeners"),
    [
        (1, (STRICT, CLINIC_RULES)),
        pytest.param(2, (CLINIC_RULES,), marks=[pytest.mark.slow, pytest.mark.process]),
    ],
)
def test_every_batch_function_takes_a_screener(
    workers: int, screeners: tuple[hipscreen.Screener, ...], tmp_path: Path
) -> None:
    """Worker processes rebuild the caller's rules: outcomes equal screening each form alone."""
    for screener in screeners:
        alone = [ids(_alone(screener, form)) for form in FORMS]
        assert alone != [ids(_alone(None, form)) for form in FORMS]
        many = hipscreen.assess_many(FORMS, screener=screener, workers=workers, chunk_size=2)
        assert [ids(o) for o in many] == alone
        assert many.summary().ruleset_version == screener.ruleset_version
        lazy = hipscreen.assess_iter(FORMS, screener=screener, workers=workers, chunk_size=2)
        assert [ids(o) for o in lazy] == alone
        frame = pd.DataFrame([form_to_row(form) for form in FORMS])
        result = hipscreen.assess_frame(frame, screener=screener, workers=workers, chunk_size=2)
        assert [v if isinstance(v, list) else None for v in result["finding_ids"]] == alone
        assert set(result["ruleset_version"]) == {screener.ruleset_version}
        source = tmp_path / "in.csv"
        frame.to_csv(source, index=False)
        out = tmp_path / f"{workers}-{screener.ruleset.digest[:6]}.csv"
        hipscreen.screen_csv(source, out, screener=screener, workers=workers, chunk_size=2)
        with open(out, newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
        assert [r["finding_ids"].split(";") if r["ok"] == "True" else None for r in rows] == [
            a if a is None else (a or [""]) for a in alone
        ]


def _alone(screener: hipscreen.Screener | None, form: dict[str, Any]) -> Any:
    try:
        return (screener or hipscreen.Screener()).assess(form)
    except hipscreen.InvalidFormError:
        return None


def test_a_worker_that_builds_other_rules_refuses_to_screen() -> None:
    """The digest check: rules rebuilt in a worker must be the parent's, byte for byte."""
    import pickle

    source = pickle.dumps(STRICT.ruleset)
    with pytest.raises(RuntimeError, match="different rules"):
        worker_screener(source, hipscreen.Screener().ruleset.digest)
    rebuilt = worker_screener(source, STRICT.ruleset.digest)
    assert rebuilt is not STRICT
    assert rebuilt.ruleset_version == STRICT.ruleset_version
    form = {"strength": {"gluteus_maximus": 4}}
    assert rebuilt.assess(form) == STRICT.assess(form)


def test_a_screener_must_be_a_screener() -> None:
    with pytest.raises(TypeError, match=r"hipscreen\.Screener"):
        hipscreen.assess_many([{}], screener="strict")  # type: ignore[arg-type]


def test_batch_command_takes_the_rule_options_of_assess(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame([form_to_row(form) for form in FORMS]).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    options = ["--threshold", "weak_grade=4", "--extra-rules", str(CLINIC)]
    assert main(["batch", str(source), "-o", str(out), *options]) == 1
    rows = pd.read_csv(out, keep_default_na=False)
    both = hipscreen.Screener(extra_rules=[CLINIC], thresholds={"weak_grade": 4})
    assert rows["finding_ids"].tolist()[:2] == [
        ";".join(both.assess(form).finding_ids()) for form in FORMS[:2]
    ]
    assert "weak-hip-extensors" in rows["finding_ids"][0]
    assert "sprint-imbalance-caution" in rows["finding_ids"][1]
    capsys.readouterr()
    assert main(["batch", str(source), "-o", str(tmp_path / "x.csv"), "--threshold", "nope=1"]) == 2
    assert "nope" in capsys.readouterr().err


# -- one semantics ---------------------------------------------------------------------------------


def test_one_file_gives_the_same_outcomes_through_assess_frame_and_the_command(
    tmp_path: Path,
) -> None:
    """Short rows, blank lines, bad cells, quoted cells: the same rows, numbers and outcomes."""
    text = (
        "client_id,age,tightness.iliopsoas,symptoms,rom.hip_flexion\n"
        "a,40,2,knee_pain,110\n"
        "b,forty,5,knee_pian,\n"
        "c,41\n"
        "\n"
        'd,42,severe,"knee_pain;hip_pain",95.5\n'
        "e,,,,\n"
        "f,300,1,,\n"
    )
    source = tmp_path / "in.csv"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["batch", str(source), "-o", str(out), "--no-progress"]) == 1
    command = pd.read_csv(out, keep_default_na=False, dtype=str)
    for frame in (pd.read_csv(source), pd.read_csv(source, dtype=str)):
        screened = hipscreen.assess_frame(frame)
        assert screened["row"].tolist() == [int(r) for r in command["row"]]
        assert screened["ok"].tolist() == [r == "True" for r in command["ok"]]
        assert screened["client_id"].tolist() == command["client_id"].tolist()
        joined = [";".join(v) if isinstance(v, list) else "" for v in screened["finding_ids"]]
        assert joined == command["finding_ids"].tolist()
        errors = [e if isinstance(e, str) else "" for e in screened["error"]]
        assert [e.split(" (got")[0] for e in errors] == [
            e.split(" (got")[0] for e in command["error"]
        ]


def test_frames_follow_pandas_conventions() -> None:
    frame = pd.DataFrame(
        {"client_id": ["a", None, "c"], "tightness.iliopsoas": [3, None, "x"]},
        index=pd.Index([10, 20, 30], name="visit"),
    )
    result = hipscreen.assess_frame(frame)
    assert result.index.equals(frame.index)
    assert result["client_id"].dtype == pd.StringDtype()
    assert result["error"].dtype == pd.StringDtype()
    assert result["client_id"].isna().tolist() == [False, True, False]
    assert result["highest_severity"].cat.ordered
    assert list(result["highest_severity"].cat.categories) == ["info", "warning", "critical"]
    assert list(result["referral_urgency"].cat.categories) == ["routine", "urgent", "emergency"]
    assert result["highest_severity"].isna().tolist() == [False, True, True]
    assert isinstance(result.loc[10, "finding_ids"], list)
    assert result.loc[20, "finding_ids"] == []
    assert pd.isna(result.loc[30, "finding_ids"])
    assert result["error"].isna().tolist() == [True, True, False]
    assert dict(hipscreen.result_meta().dtypes) == dict(result.dtypes)


# -- polars and Arrow ------------------------------------------------------------------------------


@pytest.mark.polars
def test_polars_and_arrow_tables_in_and_out() -> None:
    pl = pytest.importorskip("polars")
    rows = [form_to_row(form) for form in random_forms(20, seed=3)] + [{"age": 300}]
    frame = pd.DataFrame(rows).astype("string")  # one type per column, as a CSV export has
    expected = hipscreen.assess_frame(frame)
    as_polars = hipscreen.assess_frame(pl.from_pandas(frame))
    assert isinstance(as_polars, pl.DataFrame)
    assert as_polars["ok"].to_list() == expected["ok"].tolist()
    assert as_polars["finding_ids"].to_list() == [
        v if isinstance(v, list) else None for v in expected["finding_ids"]
    ]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    as_arrow = hipscreen.assess_frame(table)
    assert isinstance(as_arrow, pa.Table)
    assert as_arrow.column("ok").to_pylist() == expected["ok"].tolist()
    assert as_arrow.schema.field("finding_ids").type == pa.list_(pa.string())


def test_a_list_column_from_arrow_is_read_as_names() -> None:
    table = pa.table({"symptoms": [["knee_pain", "hip_pain"], None, []], "age": [30, None, 40]})
    result = hipscreen.assess_frame(table).to_pandas()
    assert result["ok"].tolist() == [True, True, True]


def test_other_objects_are_refused_with_a_hint() -> None:
    with pytest.raises(TypeError, match="assess_many"):
        hipscreen.assess_frame([{"age": 3}])
    with pytest.raises(TypeError, match="pandas or polars"):
        hipscreen.assess_frame(io.StringIO("age\n3\n"))


def _doors() -> dict[str, Any]:
    frame = pd.DataFrame([form_to_row(f) for f in FORMS])
    return {
        "assess_many": lambda w: [ids(o) for o in hipscreen.assess_many(FORMS, workers=w)],
        "assess_iter": lambda w: [ids(o) for o in hipscreen.assess_iter(FORMS, workers=w)],
        "assess_frame": lambda w: (
            hipscreen.assess_frame(frame, workers=w)["finding_ids"]
            .map(lambda v: None if v is None else list(v))
            .tolist()
        ),
    }


@pytest.mark.parametrize("door", ["assess_many", "assess_iter", "assess_frame"])
def test_every_python_door_caps_workers_as_screen_csv_does(
    door: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hipscreen._batch import _pipeline

    monkeypatch.setattr(_pipeline, "worker_cap", lambda: (1, "1 CPU"))
    run = _doors()[door]
    with pytest.warns(UserWarning, match=r"workers=400 is more than this machine runs well"):
        capped = run(400)
    assert capped == run(1)


@pytest.mark.parametrize("door", ["assess_many", "assess_iter", "assess_frame"])
@pytest.mark.parametrize("workers", [0, True, 10**12, 2.0])
def test_every_python_door_refuses_impossible_workers(door: str, workers: Any) -> None:
    with pytest.raises(ValueError, match=r"workers must be a whole number ≥ 1"):
        _doors()[door](workers)


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_workers_within_the_cap_are_kept_quietly(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    from hipscreen._batch import _pipeline

    monkeypatch.setattr(_pipeline, "worker_cap", lambda: (4, "4 CPUs"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _pipeline.bounded_workers(workers, stacklevel=1) == workers
    with pytest.warns(UserWarning, match=r"workers=5 is more .* \(4 CPUs\); using 4"):
        assert _pipeline.bounded_workers(5, stacklevel=1) == 4
