"""The ``hipscreen batch`` command: CSV in, CSV or Parquet out, per-row and per-file errors."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from strategies import random_forms

import hipscreen
from hipscreen._batch._columns import COLUMNS, form_to_row
from hipscreen._batch._stream import screen_csv
from hipscreen._batch._tables import TableError
from hipscreen._cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "data" / "intake_sample.csv"


def run(*argv: str) -> int:
    return main(["batch", *argv])


def write_forms(path: Path, forms: list[dict[str, Any]], *, members: bool = False) -> None:
    rows = [form_to_row(form, member_columns=members) for form in forms]
    order = {column.name: i for i, column in enumerate(COLUMNS)}
    header = sorted({name for row in rows for name in row}, key=order.__getitem__)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_results_round_trip_one_row_per_form_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forms = [dict(form, client_id=f"c{i}") for i, form in enumerate(random_forms(120, seed=8))]
    source = tmp_path / "intake.csv"
    write_forms(source, forms)
    assert run(str(source), "-o", str(tmp_path / "results.csv"), "-j", "1") == 0
    rows = read_rows(tmp_path / "results.csv")
    assert len(rows) == len(forms)
    for i, (form, row) in enumerate(zip(forms, rows, strict=True)):
        result = hipscreen.assess(form)
        assert row["row"] == str(i)
        assert row["line"] == str(i + 2)
        assert row["client_id"] == f"c{i}"
        assert row["ok"] == "True"
        assert row["finding_ids"] == ";".join(result.finding_ids())
        assert row["exercise_ids"] == ";".join(r.exercise.id for r in result.recommendations)
        assert row["not_assessed"] == ";".join(result.not_assessed)
        assert row["ruleset_version"] == result.ruleset_version
    out = capsys.readouterr().out
    assert "rows read         120" in out
    assert "failed              0" in out
    assert read_rows(tmp_path / "results.errors.csv") == []  # written, with its header only


def test_yes_no_symptom_columns_give_the_same_results(tmp_path: Path) -> None:
    forms = random_forms(40, seed=3)
    write_forms(tmp_path / "lists.csv", forms)
    write_forms(tmp_path / "flags.csv", forms, members=True)
    assert run(str(tmp_path / "lists.csv"), "-o", str(tmp_path / "a.csv")) == 0
    assert run(str(tmp_path / "flags.csv"), "-o", str(tmp_path / "b.csv")) == 0
    assert [r["finding_ids"] for r in read_rows(tmp_path / "a.csv")] == [
        r["finding_ids"] for r in read_rows(tmp_path / "b.csv")
    ]


@pytest.mark.process
@pytest.mark.slow
def test_parallel_output_is_byte_identical(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    two = tmp_path / "two.csv"
    assert run(str(SAMPLE), "-o", str(one), "-j", "1", "--chunk-size", "100") == 1
    assert run(str(SAMPLE), "-o", str(two), "-j", "2", "--chunk-size", "100") == 1
    assert one.read_bytes() == two.read_bytes()
    assert (tmp_path / "one.errors.csv").read_bytes() == (tmp_path / "two.errors.csv").read_bytes()


@pytest.mark.slow
def test_parquet_output_holds_the_same_rows(tmp_path: Path) -> None:
    assert run(str(SAMPLE), "-o", str(tmp_path / "r.csv")) == 1
    parquet = ("-o", str(tmp_path / "r.parquet"), "--chunk-size", "500")
    assert run(str(SAMPLE), *parquet, "--errors", str(tmp_path / "pq.csv")) == 1
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    rows = read_rows(tmp_path / "r.csv")
    assert len(table) == len(rows) == 3000
    for got, want in zip(table, rows, strict=True):
        assert str(got["row"]) == want["row"]
        assert str(got["ok"]) == want["ok"]
        assert ";".join(got["finding_ids"] or []) == want["finding_ids"]
        assert (got["error"] or "") == want["error"]


@pytest.mark.slow
def test_sample_file_summary_and_failed_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(str(SAMPLE), "-o", str(tmp_path / "r.csv"), "--errors", str(tmp_path / "bad.csv")) == 1
    )
    out = capsys.readouterr().out
    rows = read_rows(tmp_path / "r.csv")
    failed = [row for row in rows if row["ok"] == "False"]
    errors = read_rows(tmp_path / "bad.csv")
    assert len(errors) == len(failed) > 0
    assert [e["row"] for e in errors] == [f["row"] for f in failed]
    assert f"failed     {len(failed):>10,}" in out
    assert "tight-hip-flexors" in out
    with open(SAMPLE, newline="", encoding="utf-8") as stream:
        original = list(csv.reader(stream))
    with open(tmp_path / "bad.csv", newline="", encoding="utf-8") as stream:
        written = list(csv.reader(stream))
    assert written[0] == ["row", "line", "error", *original[0]]
    for cells in written[1:]:  # the original cells are kept beside the problems
        assert cells[3:] == original[int(cells[1]) - 1]


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_bad_cells_fail_only_their_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_text(
        tmp_path / "in.csv",
        "client_id,age,rom.hip_flexion,tightness.iliopsoas,symptoms\n"
        "a,40,110,2,knee_pain\n"
        "b,forty,110,5,knee_pian\n"
        'c,41,"110,5",1,\n'
        "d,42,100\n"
        "\n"
        "e,43,,,\n"
        "f,44,,,,extra\n",
    )
    assert run(str(source), "-o", str(tmp_path / "out.csv")) == 1
    rows = read_rows(tmp_path / "out.csv")
    assert [r["client_id"] for r in rows] == ["a", "b", "c", "d", "e", "f"]
    assert [r["ok"] for r in rows] == ["True", "False", "False", "True", "True", "False"]
    assert [r["line"] for r in rows] == ["2", "3", "4", "5", "7", "8"]
    assert [r["row"] for r in rows] == ["0", "1", "2", "3", "4", "5"]
    b, c, d = rows[1]["error"], rows[2]["error"], rows[5]["error"]
    assert "age: Input should be a valid integer (got 'forty')" in b
    assert "tightness.iliopsoas: tightness grade must be an integer 0–3" in b
    assert "did you mean 'knee_pain'?" in b
    assert "rom.hip_flexion: Input should be a valid number (got '110,5')" in c
    assert "the row has 6 cells but the header has 5 columns (extra cells: ['extra'])" in d
    assert "tightness of hip_flexors" in rows[3]["not_assessed"]
    errors = read_rows(tmp_path / "out.errors.csv")
    assert [e["client_id"] for e in errors] == ["b", "c", "f"]
    assert errors[1]["rom.hip_flexion"] == "110,5"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty: the first line must name the columns"),
        ("\n\nage\n", "the first line is blank"),
        ("client_id,tightnes.iliopsoas,notes\nx,1,hi\n", "did you mean 'tightness.iliopsoas'?"),
        ("age;tightness.iliopsoas\n30;2\n", "separated by ';'"),
        ("age,Age\n1,2\n", "column 'Age' is given twice"),
    ],
)
def test_a_file_that_cannot_be_screened_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    source = write_text(tmp_path / "in.csv", content)
    assert run(str(source), "-o", str(tmp_path / "out.csv")) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_ignored_columns_are_skipped(tmp_path: Path) -> None:
    source = write_text(tmp_path / "in.csv", "client_id,notes,age\nx,likes running,30\n")
    assert run(str(source), "-o", str(tmp_path / "out.csv"), "--ignore-column", "notes") == 0


def test_rows_in_the_wrong_encoding_fail_alone_and_keep_their_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "client_id,age\nJosé,40\nAnn,41\n"
    source = write_text(tmp_path / "latin.csv", text, "latin-1")
    assert run(str(source), "-o", str(tmp_path / "out.csv")) == 1
    rows = read_rows(tmp_path / "out.csv")
    assert [r["ok"] for r in rows] == ["False", "True"]
    assert "line 2 is not valid utf-8 text (byte 0xe9 at position 4)" in rows[0]["error"]
    errors_file = (tmp_path / "out.errors.csv").read_bytes()
    assert "José,40".encode("latin-1") in errors_file  # the original bytes, not a replacement
    capsys.readouterr()
    assert run(str(source), "-o", str(tmp_path / "ok.csv"), "--encoding", "latin-1") == 0
    assert read_rows(tmp_path / "ok.csv")[0]["client_id"] == "José"


def test_utf16_and_unknown_encodings_are_file_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_text(tmp_path / "u16.csv", "\ufeffclient_id,age\nx,1\n", "utf-16")
    assert run(str(source), "-o", str(tmp_path / "out.csv")) == 2
    assert "UTF-16" in capsys.readouterr().err
    plain = write_text(tmp_path / "in.csv", "age\n1\n")
    assert run(str(plain), "-o", str(tmp_path / "out.csv"), "--encoding", "klingon") == 2
    assert "unknown encoding 'klingon'" in capsys.readouterr().err


def test_a_utf8_bom_and_quoted_newlines_are_read(tmp_path: Path) -> None:
    source = write_text(tmp_path / "in.csv", '\ufeffclient_id,age\n"multi\nline",30\nplain,31\n')
    assert run(str(source), "-o", str(tmp_path / "out.csv")) == 0
    rows = read_rows(tmp_path / "out.csv")
    assert [r["line"] for r in rows] == ["2", "4"]
    assert [r["client_id"] for r in rows] == ["multi\nline", "plain"]


def test_header_only_gives_no_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_text(tmp_path / "in.csv", "client_id,age\n")
    assert run(str(source), "-o", str(tmp_path / "out.csv")) == 0
    assert read_rows(tmp_path / "out.csv") == []
    assert "rows read           0" in capsys.readouterr().out


def test_a_missing_input_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(tmp_path / "nope.csv"), "-o", str(tmp_path / "out.csv")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_bad_workers_value_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(SAMPLE), "-o", str(tmp_path / "out.csv"), "-j", "0") == 2
    assert "--workers" in capsys.readouterr().err


def test_results_can_go_to_standard_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = write_text(tmp_path / "in.csv", "client_id,tightness.iliopsoas\nx,3\n")
    assert run(str(source), "-o", "-", "--errors", str(tmp_path / "e.csv")) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert rows[0]["client_id"] == "x"
    assert "tight-hip-flexors" in rows[0]["finding_ids"]
    assert "rows read" in captured.err


@pytest.mark.slow
def test_progress_bar_goes_to_standard_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(str(SAMPLE), "-o", str(tmp_path / "out.csv"), "--progress") == 1
    err = capsys.readouterr().err
    assert "3000 rows" in err  # rows, not bytes
    assert "rows/s" in err


@pytest.mark.slow
def test_screen_csv_reports_paths_and_summary(tmp_path: Path) -> None:
    report = screen_csv(SAMPLE, tmp_path / "out.csv")
    assert report.output == tmp_path / "out.csv"
    assert report.errors == tmp_path / "out.errors.csv"
    assert report.summary.rows == 3000
    assert report.summary.screened + report.summary.failed == 3000
    with pytest.raises(TableError, match="is empty"):
        screen_csv(io.BytesIO(b""), io.StringIO(), errors=tmp_path / "e.csv")


@pytest.mark.process
@pytest.mark.slow
def test_the_command_runs_as_a_module(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hipscreen",
            "batch",
            str(SAMPLE),
            "-o",
            str(tmp_path / "o.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "rows read       3,000" in done.stdout


@pytest.mark.slow
def test_no_cache_and_a_quiet_cache_give_the_same_results(tmp_path: Path) -> None:
    """Caches only save work: off, quiet after a window of distinct rows, or on, the same file."""
    forms = random_forms(1500, seed=21)  # more than one hit-rate window of distinct rows
    source = tmp_path / "intake.csv"
    write_forms(source, forms + forms[:300])  # then repeats
    outputs = []
    for cache in ("0", "100000"):
        for workers in ("1", "2"):
            out = tmp_path / f"out-{cache}-{workers}.csv"
            assert run(str(source), "-o", str(out), "--cache-size", cache, "-j", workers) in (0, 1)
            outputs.append(out.read_bytes())
    assert len(set(outputs)) == 1


def test_a_negative_cache_size_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(SAMPLE), "-o", str(tmp_path / "o.csv"), "--cache-size", "-1") == 2
    assert "--cache-size must be a whole number ≥ 0 (got -1)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before any file was made
