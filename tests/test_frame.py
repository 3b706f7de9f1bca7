"""DataFrames: the flat column convention, assess_frame (wide and long), and dask partitions."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FORM_FIELDS, forms, random_forms

import hipscreen
from hipscreen._batch._columns import COLUMNS, Kind, form_to_row
from hipscreen._batch._forms import assess_many
from hipscreen._batch._frames import (
    LONG_COLUMNS,
    RESULT_COLUMNS,
    assess_frame,
    result_meta,
    spark_schema,
)
from hipscreen._batch._outcomes import record_of
from hipscreen._batch._tables import TableError, TableReader
from hipscreen._intake.form import (
    ActiveKneeExtension,
    BackPain,
    HipReplacement,
    Pregnancy,
    RangeOfMotion,
    StraightLegRaise,
    ThomasTest,
)

FRAME = settings(deadline=None)


def cells_of(form: dict[str, Any]) -> dict[str, Any]:
    """What a frame's result row says about a form screened alone."""
    try:
        record = record_of(hipscreen.assess(form))
    except hipscreen.InvalidFormError:
        return {"ok": False}
    return {
        "ok": True,
        "finding_ids": list(record.finding_ids),
        "highest_severity": record.highest_severity,
        "referral_urgency": record.referral_urgency,
        "exercise_ids": list(record.exercise_ids),
        "not_assessed": list(record.not_assessed),
    }


def plain(value: Any) -> Any:
    """A cell as plain Python: lists stay lists, missing values become None."""
    if isinstance(value, list):
        return value
    return None if pd.isna(value) else value


def row_cells(frame: pd.DataFrame, position: int) -> dict[str, Any]:
    row = frame.iloc[position]
    if not row["ok"]:
        return {"ok": False}
    return {
        name: plain(row[name])
        for name in (
            "ok",
            "finding_ids",
            "highest_severity",
            "referral_urgency",
            "exercise_ids",
            "not_assessed",
        )
    }


# -- the column convention ------------------------------------------------------------------------


def test_every_form_field_has_columns() -> None:
    """A field added to the form without a column would be unreachable from a table."""
    tops = {column.path[0] for column in COLUMNS}
    assert tops == set(FORM_FIELDS)
    nested = {
        "rom": RangeOfMotion,
        "thomas_test": ThomasTest,
        "straight_leg_raise": StraightLegRaise,
        "active_knee_extension": ActiveKneeExtension,
        "pregnancy": Pregnancy,
        "hip_replacement": HipReplacement,
        "back_pain": BackPain,
    }
    for field, model in nested.items():
        given_columns = {c.path[1] for c in COLUMNS if c.path[0] == field and len(c.path) > 1}
        assert given_columns == set(model.model_fields), field


def test_column_names_are_field_paths() -> None:
    for column in COLUMNS:
        if column.kind is Kind.MEMBER:
            assert column.name == f"{column.path[0]}.{column.member}"
        else:
            assert column.name == ".".join(column.path)


@pytest.mark.slow
@FRAME
@given(rows=st.lists(forms(), min_size=1, max_size=6), members=st.booleans())
def test_a_frame_of_flattened_forms_screens_like_the_forms(
    rows: list[dict[str, Any]], members: bool
) -> None:
    """form → row of the convention → DataFrame → the same findings and plan as the form."""
    frame = pd.DataFrame([form_to_row(form, member_columns=members) for form in rows])
    result = assess_frame(frame)
    assert list(result.columns) == list(RESULT_COLUMNS)
    assert result["row"].tolist() == list(range(len(rows)))
    for position, form in enumerate(rows):
        assert row_cells(result, position) == cells_of(form), position


def test_json_normalize_of_forms_is_the_convention() -> None:
    rows = random_forms(40, seed=5)
    frame = pd.json_normalize(rows)
    result = assess_frame(frame)
    for position, form in enumerate(rows):
        assert row_cells(result, position) == cells_of(form)


def test_missing_cells_are_not_given_never_normal() -> None:
    frame = pd.DataFrame(
        {
            "client_id": ["a", "b"],
            "strength.gluteus_maximus": [None, 2],
            "tightness.iliopsoas": [float("nan"), 3],
            "symptoms": [None, ""],
        }
    )
    result = assess_frame(frame)
    assert result["ok"].tolist() == [True, True]
    first = hipscreen.assess({"client_id": "a"})
    assert result.loc[0, "finding_ids"] == first.finding_ids()
    assert "strength of hip_extensors" in result.loc[0, "not_assessed"]
    assert "strength of hip_extensors" not in result.loc[1, "not_assessed"]
    assert "weak-hip-extensors" in result.loc[1, "finding_ids"]


def test_cells_are_read_like_a_person_writes_them() -> None:
    frame = pd.DataFrame(
        {
            "Tightness.Iliopsoas": ["Severe", "2.0", " 3 "],
            "age": ["41", 52.0, "60"],
            "symptoms": ["knee_pain; hip_pain", "knee_pain|lower_back_pain", None],
            "symptoms.anterior_pelvic_tilt": ["yes", "N", "TRUE"],
            "osteoporosis": [0, 1, None],
            "rom.hip_flexion": ["100.5", 95, None],
        }
    )
    result = assess_frame(frame)
    assert result["ok"].all(), result["error"].tolist()
    expected = [
        {
            "tightness": {"iliopsoas": 3},
            "age": 41,
            "symptoms": ["knee_pain", "hip_pain", "anterior_pelvic_tilt"],
            "osteoporosis": False,
            "rom": {"hip_flexion": 100.5},
        },
        {
            "tightness": {"iliopsoas": 2},
            "age": 52,
            "symptoms": ["knee_pain", "lower_back_pain"],
            "osteoporosis": True,
            "rom": {"hip_flexion": 95},
        },
        {"tightness": {"iliopsoas": 3}, "age": 60, "symptoms": ["anterior_pelvic_tilt"]},
    ]
    for position, form in enumerate(expected):
        assert row_cells(result, position) == cells_of(form)


def test_bad_cells_fail_their_row_naming_the_column() -> None:
    frame = pd.DataFrame(
        {
            "client_id": ["ok", "bad", "worse"],
            "age": ["30", "forty", "-3"],
            "rom.hip_flexion": [None, "110,5", None],
            "symptoms.knee_pain": [None, "maybe", None],
            "tightness.iliopsoas": [None, None, 2],
            "tightness.iliopsoas.left": [None, None, 1],
        }
    )
    result = assess_frame(frame)
    assert result["ok"].tolist() == [True, False, False]
    bad = result.loc[1, "error"]
    assert "age: Input should be a valid integer (got 'forty')" in bad
    assert "rom.hip_flexion: Input should be a valid number (got '110,5')" in bad
    assert "symptoms.knee_pain: must be yes or no" in bad
    worse = result.loc[2, "error"]
    assert "age: Input should be greater than or equal to 0" in worse
    assert "given both as tightness.iliopsoas" in worse
    assert result["client_id"].tolist() == ["ok", "bad", "worse"]


def test_present_flag_contradicted_by_its_details_is_an_error() -> None:
    frame = pd.DataFrame({"pregnancy": ["no", "yes", None], "pregnancy.weeks": [20, None, 12]})
    result = assess_frame(frame)
    assert result["ok"].tolist() == [False, True, True]
    assert "pregnancy: says no" in result.loc[0, "error"]
    assert any("pregnancy" in fid for fid in result.loc[2, "finding_ids"])


def test_unknown_and_repeated_columns_fail_the_whole_table() -> None:
    frame = pd.DataFrame({"tightnes.iliopsoas": [1], "age": [3], "AGE": [4], "notes": ["x"]})
    with pytest.raises(TableError) as caught:
        assess_frame(frame)
    message = str(caught.value)
    assert "unknown column 'tightnes.iliopsoas'; did you mean 'tightness.iliopsoas'?" in message
    assert "column 'AGE' is given twice" in message
    assert "unknown column 'notes'" in message
    assert isinstance(caught.value, ValueError)
    ok = assess_frame(frame.drop(columns=["AGE", "tightnes.iliopsoas"]), ignore_columns=["notes"])
    assert ok["ok"].tolist() == [True]


def test_one_column_header_suggests_the_separator() -> None:
    with pytest.raises(TableError, match="separated by ';'"):
        TableReader(["age;tightness.iliopsoas"])


def test_result_keeps_the_input_index_and_numeric_ids() -> None:
    frame = pd.DataFrame(
        {"client_id": [101, 102, None], "age": [30, 40, 50]}, index=["x", "y", "z"]
    )
    result = assess_frame(frame)
    assert result.index.tolist() == ["x", "y", "z"]
    assert result["client_id"].tolist() == ["101", "102", pd.NA]


def test_long_form_has_one_row_per_finding() -> None:
    rows = [
        {"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 2}},
        {"age": "x"},
        {},
        {"tightness": {"hip_flexors": {"left": 3}}},
    ]
    frame = pd.json_normalize(rows).set_index(pd.Index([10, 11, 12, 13]))
    long = assess_frame(frame, long=True)
    assert list(long.columns) == list(LONG_COLUMNS)
    first = hipscreen.assess(rows[0]).finding_ids()
    last = hipscreen.assess(rows[3])
    assert long["finding_id"].tolist() == first + last.finding_ids()
    assert long.index.tolist() == [10] * len(first) + [13] * len(last.findings)
    assert long["row"].tolist() == [0] * len(first) + [3] * len(last.findings)
    assert long.loc[13, "sides"].tolist()[0] == ["left"]


def test_batch_result_to_frame_matches_assess_frame() -> None:
    rows = [*random_forms(30, seed=2), {"age": -1}]
    wide = assess_many(rows).to_frame()
    direct = assess_frame(pd.json_normalize(rows))
    columns = ["ok", "finding_ids", "highest_severity", "exercise_ids", "not_assessed"]
    assert wide[columns].equals(direct[columns])
    assert assess_many(rows).to_frame(long=True)["finding_id"].tolist() == (
        assess_frame(pd.json_normalize(rows), long=True)["finding_id"].tolist()
    )
    keyed = assess_many({"a": {}, "b": {"age": 3}}).to_frame()
    assert keyed.index.tolist() == ["a", "b"]


@pytest.mark.process
@pytest.mark.slow
def test_parallel_frame_equals_sequential() -> None:
    frame = pd.json_normalize(random_forms(300, seed=9) + [{"age": -2}] * 3)
    assert assess_frame(frame, workers=2, chunk_size=40).equals(assess_frame(frame))


def test_meta_and_schema_describe_the_result() -> None:
    meta = result_meta()
    assert list(meta.columns) == list(RESULT_COLUMNS)
    assert len(meta) == 0
    real = assess_frame(pd.DataFrame({"age": [30]}))
    assert dict(meta.dtypes) == dict(real.dtypes)
    assert list(result_meta(long=True).columns) == list(LONG_COLUMNS)
    assert spark_schema().startswith("row long, client_id string, ok boolean, error string")
    assert spark_schema(long=True).split(", ")[2] == "finding_id string"


def test_an_empty_frame_gives_an_empty_result() -> None:
    result = assess_frame(pd.DataFrame({"age": []}))
    assert len(result) == 0
    assert list(result.columns) == list(RESULT_COLUMNS)


DASK_SCRIPT = textwrap.dedent(
    """
    import itertools, json, sys
    import pandas as pd
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster
    import hipscreen

    if __name__ == "__main__":
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):
            ddf = dd.read_csv(sys.argv[1], blocksize=2000)  # dask's default dtypes
            sizes = ddf.map_partitions(len).compute()
            starts = [0, *itertools.accumulate(sizes)]

            def screen(part, partition_info=None, long=False):
                first = starts[partition_info["number"]]
                part.index = pd.RangeIndex(first, first + len(part))
                return hipscreen.assess_frame(part, first_row=first, long=long)

            wide = ddf.map_partitions(screen, meta=hipscreen.result_meta()).compute()
            long = ddf.map_partitions(screen, long=True, meta=hipscreen.result_meta(long=True))
            long = long.compute()
        print(json.dumps({
            "dtypes": sorted({str(t) for t in ddf.dtypes}),
            "index": wide.index.tolist(),
            "row": wide["row"].tolist(),
            "finding_ids": [v if isinstance(v, list) else None for v in wide["finding_ids"]],
            "ok": wide["ok"].tolist(),
            "error": [None if pd.isna(v) else v for v in wide["error"]],
            "long": long["finding_id"].tolist(),
            "partitions": ddf.npartitions,
        }))
    """
)


@pytest.mark.dask
@pytest.mark.process
@pytest.mark.slow
def test_the_dask_recipe_keeps_unique_labels_with_default_dtypes(tmp_path: Path) -> None:
    """dask's read_csv with its own dtypes, partitions placed in the whole: labels unique."""
    grades = [0, 1, 2, 3]
    rows = [
        {
            "client_id": 1000 + i,
            "age": None if i % 7 == 0 else 20 + i % 50,
            "tightness.hip_flexors": grades[i % 4],
            "strength.hip_extensors": None if i % 5 == 0 else 2 + i % 4,
            "symptoms": "knee_pain;hip_pain" if i % 3 == 0 else None,
            "rom.hip_flexion": 100.5 if i % 9 == 0 else None,
        }
        for i in range(400)
    ]
    rows[50]["strength.hip_extensors"] = 9  # a bad row
    frame = pd.DataFrame(rows)
    data = tmp_path / "intake.csv"
    frame.to_csv(data, index=False)
    script = tmp_path / "run_dask.py"
    script.write_text(DASK_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(data)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    local = assess_frame(pd.read_csv(data))
    assert out["partitions"] > 1
    assert "float64" in out["dtypes"]
    assert out["index"] == list(range(400)) == local.index.tolist()
    assert out["row"] == local["row"].tolist()
    assert out["ok"] == local["ok"].tolist()
    assert out["finding_ids"] == [v if isinstance(v, list) else None for v in local["finding_ids"]]
    assert out["error"] == [None if pd.isna(v) else v for v in local["error"]]
    assert out["long"] == assess_frame(pd.read_csv(data), long=True)["finding_id"].tolist()
    assert out["ok"].count(False) == 1
