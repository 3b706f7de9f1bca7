"""The Spark recipe against a real local Spark session: dotted column names, one outcome per row.

One session for the module (starting the JVM is most of the cost) and a small table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from strategies import random_forms

import hipscreen
from hipscreen._batch._columns import form_to_row

pytestmark = [pytest.mark.slow, pytest.mark.spark]


@pytest.fixture(scope="module")
def spark() -> Any:
    pyspark_sql = pytest.importorskip("pyspark.sql")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("hipscreen-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session  # left running: the docs page's recipe reuses it (getOrCreate)


def test_map_in_pandas_with_dotted_columns_matches_assess_frame(spark: Any, tmp_path: Path) -> None:
    import pandas as pd  # with pyspark: the spark extra brings both

    forms = [dict(f, client_id=f"c{i}") for i, f in enumerate(random_forms(60, seed=12))]
    forms += [
        {"client_id": "bad1", "age": 300},
        {"client_id": "bad2", "strength": {"gluteus_maximus": 9}},
    ]
    frame = pd.DataFrame([form_to_row(form) for form in forms]).astype("string")
    assert any("." in name for name in frame.columns)
    source = tmp_path / "intake.csv"
    frame.to_csv(source, index=False)
    sdf = spark.read.csv(str(source), header=True)
    names = sdf.columns

    def screen(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in frames:
            part.columns = names
            yield hipscreen.assess_frame(part).reset_index(drop=True)

    plain = sdf.toDF(*[f"c{i}" for i in range(len(names))])
    screened = plain.mapInPandas(screen, schema=hipscreen.spark_schema())
    got = pd.DataFrame([row.asDict() for row in screened.collect()])  # (toPandas warns on pandas 3)
    # pandas reads the grade label "None" as missing unless told otherwise; Spark does not.
    text = pd.read_csv(source, dtype="string", keep_default_na=False, na_values=[""])
    local = hipscreen.assess_frame(text)
    assert len(got) == len(forms)
    got = got.set_index("client_id").loc[local["client_id"].tolist()]
    assert got["ok"].tolist() == local["ok"].tolist()
    assert [list(v) if v is not None else None for v in got["finding_ids"]] == [
        v if isinstance(v, list) else None for v in local["finding_ids"]
    ]
    assert got["error"].fillna("").tolist() == local["error"].fillna("").tolist()
    assert got.loc["bad1", "error"].startswith("age:")


def test_spark_schema_is_valid_spark_ddl(spark: Any) -> None:
    types = pytest.importorskip("pyspark.sql.types")
    wide = types._parse_datatype_string(hipscreen.spark_schema())
    assert [f.name for f in wide.fields][:3] == ["row", "client_id", "ok"]
    long = types._parse_datatype_string(hipscreen.spark_schema(long=True))
    assert long["sides"].dataType == types.ArrayType(types.StringType())
