"""Batch integrity: every record in gives exactly one outcome out, and no file is ever lost.

Hostile but ordinary inputs: paths that name the input twice, CSV framing damage (unterminated
quotes, stray carriage returns, oversized quoted cells, bad bytes), pathological cells and forms.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hipscreen
from hipscreen._batch import _csvframe
from hipscreen._batch._forms import assess_iter, assess_many
from hipscreen._batch._outcomes import RowError
from hipscreen._batch._stream import default_errors_path, screen_csv
from hipscreen._batch._tables import MAX_CELL_CHARS, TableError
from hipscreen._cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(*argv: str) -> int:
    return main(["batch", *argv])


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as stream:
        return list(csv.DictReader(stream))


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# -- never overwrite what was not asked for --------------------------------------------------------


def test_output_equal_to_the_input_is_refused_and_the_input_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "in.csv", "client_id,age\na,30\n")
    before = source.read_bytes()
    assert run(str(source), "-o", str(source)) == 2
    assert "the input and the results are the same file" in capsys.readouterr().err
    assert run(str(source), "-o", str(tmp_path / "x" / ".." / "in.csv")) == 2
    assert source.read_bytes() == before
    (tmp_path / "link.csv").symlink_to(source)
    assert run(str(source), "-o", str(tmp_path / "o.csv"), "--errors", str(tmp_path / "link.csv"))
    assert source.read_bytes() == before
    assert not (tmp_path / "o.csv").exists()


def test_the_default_errors_file_keeps_the_whole_output_name(tmp_path: Path) -> None:
    assert default_errors_path(Path("out.jan.csv"), None) == Path("out.jan.errors.csv")
    assert default_errors_path(Path("r.parquet"), None) == Path("r.errors.csv")
    assert default_errors_path(None, Path("d/a.errors.csv")) == Path("d/a.errors.errors.csv")
    source = write(tmp_path / "a.errors.csv", "client_id,age\na,30\nb,-1\n")
    before = source.read_bytes()
    assert run(str(source), "-o", str(tmp_path / "a.csv")) == 2  # a.errors.csv is the input
    assert source.read_bytes() == before
    jan = write(tmp_path / "jan.csv", "client_id,age\nj,-1\n")
    feb = write(tmp_path / "feb.csv", "client_id,age\nf,-2\n")
    assert run(str(jan), "-o", str(tmp_path / "out.jan.csv")) == 1
    assert run(str(feb), "-o", str(tmp_path / "out.feb.csv")) == 1
    assert read_rows(tmp_path / "out.jan.errors.csv")[0]["client_id"] == "j"
    assert read_rows(tmp_path / "out.feb.errors.csv")[0]["client_id"] == "f"


def test_existing_results_are_replaced_only_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "in.csv", "client_id,age\na,30\n")
    out = write(tmp_path / "out.csv", "precious\n")
    assert run(str(source), "-o", str(out)) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert not (tmp_path / "out.errors.csv").exists()
    assert run(str(source), "-o", str(out), "--force") == 0
    assert read_rows(out)[0]["client_id"] == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv", "out.errors.csv"]


def test_a_file_that_cannot_be_screened_leaves_no_partial_files(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", "client_id,bogus\na,1\n")
    assert run(str(source), "-o", str(tmp_path / "out.csv")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


# -- CSV framing -----------------------------------------------------------------------------------


def test_an_oversized_quoted_cell_spanning_lines_is_one_failed_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: a quoted cell over the limit spanning many lines invents no rows."""
    monkeypatch.setattr(_csvframe, "MAX_RECORD_CHARS", 2000)
    note = "\n".join(["x" * 40 + ",a,b"] * 80)
    text = f'client_id,notes,age\na,,30\nb,"{note}",31\nc,,32\nd,,33\n'
    source = write(tmp_path / "in.csv", text)
    report = screen_csv(source, tmp_path / "out.csv", ignore_columns=["notes"])
    rows = read_rows(tmp_path / "out.csv")
    assert [r["client_id"] for r in rows] == ["a", "", "c", "d"]
    assert [r["ok"] for r in rows] == ["True", "False", "True", "True"]
    assert "lines 3–82: the row is over 2,000 characters" in rows[1]["error"]
    assert [r["line"] for r in rows] == ["2", "3", "83", "84"]
    assert report.summary.rows == 4


def test_a_lone_carriage_return_splits_and_is_reported(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", "client_id,age\na,30\rb,31\nc,32\n")
    screen_csv(source, tmp_path / "out.csv")
    rows = read_rows(tmp_path / "out.csv")
    assert [r["client_id"] for r in rows] == ["a", "b", "c"]
    assert [r["ok"] for r in rows] == ["False", "False", "True"]
    assert "line 2 has a carriage return" in rows[0]["error"]


def test_an_unterminated_quote_does_not_swallow_the_rest(tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", 'client_id,age\na,30\n"b,31\nc,32\nd,33\n')
    screen_csv(source, tmp_path / "out.csv")
    rows = read_rows(tmp_path / "out.csv")
    assert [r["client_id"] for r in rows] == ["a", "", "c", "d"]
    assert [r["ok"] for r in rows] == ["True", "False", "True", "True"]
    assert 'line 3: a quote (") opened in this row is never closed' in rows[1]["error"]
    errors = read_rows(tmp_path / "out.errors.csv")
    assert [e["line"] for e in errors] == ["3"]


def test_an_unterminated_quote_on_a_stream_is_reported_not_swallowed(tmp_path: Path) -> None:
    """A stream cannot be read twice: the lines are named in one failed row."""
    data = b'client_id,age\na,30\n"b,31\n' + b"c,32\n" * 3
    out = io.StringIO()

    class OneWay(io.BufferedReader):
        def seekable(self) -> bool:
            return False

    report = screen_csv(OneWay(io.BytesIO(data)), out, errors=tmp_path / "e.csv")  # type: ignore[arg-type]
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert report.summary.rows == len(rows)
    assert [r["ok"] for r in rows] == ["True", "False", "True", "True", "True"]
    assert [r["line"] for r in rows] == ["2", "3", "4", "5", "6"]
    assert "line 3: a quote" in rows[1]["error"]


# -- the count invariant, on adversarial files -----------------------------------------------------


def _cell(rng_text: str) -> str:
    return rng_text.replace('"', "").replace(",", "").replace("\r", "").replace("\n", "")


@st.composite
def adversarial_files(draw: st.DrawFn) -> tuple[bytes, int, list[str | None]]:
    """(file bytes, expected records, expected client id per record or None when it must fail).

    Records are built one by one, each clean or damaged in one way; the damage kinds never
    merge two records, so the expected count is known by construction.
    """
    count = draw(st.integers(0, 12))
    lines: list[bytes] = [b"client_id,age,notes,symptoms\n"]
    expected: list[str | None] = []
    unclosed_at: int | None = draw(st.none() | st.integers(0, max(count - 1, 0)))
    for i in range(count):
        client = f"c{i}"
        kind = draw(
            st.sampled_from(
                [
                    "clean",
                    "quoted",
                    "blank",
                    "cr",
                    "oversized",
                    "badbytes",
                    "digits",
                    "list",
                    "short",
                    "long",
                    "unclosed",
                ]
            )
        )
        quotes_allowed = unclosed_at is None or i < unclosed_at
        if kind == "unclosed" and i != unclosed_at:
            kind = "clean"
        if not quotes_allowed and kind in ("quoted", "oversized"):
            kind = "clean"
        note = _cell(draw(st.text(alphabet="ab;x ", max_size=8)))
        if kind == "clean":
            lines.append(f"{client},30,{note},knee_pain\n".encode())
            expected.append(client)
        elif kind == "quoted":
            inner = draw(st.text(alphabet='ab,\n\r" ', max_size=20)).replace('"', '""')
            lines.append(f'{client},31,"{inner}","knee_pain;hip_pain"\r\n'.encode())
            expected.append(client)
        elif kind == "blank":
            lines.append(b"\n")
            lines.append(f"{client},32,,\n".encode())
            expected.append(client)
        elif kind == "cr":
            lines.append(f"{client},33,x\rc{i}b,34,,\n".encode())
            expected += [None, None]
        elif kind == "oversized":
            big = "\n".join(["y" * 30 + ",z"] * 20)
            lines.append(f'{client},35,"{big}",\n'.encode())
            expected.append(None)
        elif kind == "badbytes":
            lines.append(f"{client},36,".encode() + b"\xff\xfe" + b",\n")
            expected.append(None)
        elif kind == "digits":
            lines.append(f"{client},{'9' * 5000},,\n".encode())
            expected.append(None)
        elif kind == "list":
            cell = "[" * 300 + "]" * 300 if draw(st.booleans()) else ";".join(["knee_pain"] * 500)
            lines.append(f"{client},37,,{cell}\n".encode())  # no quote: see unclosed_at
            expected.append(None)
        elif kind == "short":
            lines.append(f"{client},38\n".encode())
            expected.append(client)
        elif kind == "long":
            lines.append(f"{client},39,,,extra\n".encode())
            expected.append(None)
        else:  # unclosed: a quote opened and never closed (no quote comes after it)
            lines.append(f'{client},40,"never closed,\n'.encode())
            expected.append(None)
    if draw(st.booleans()) and lines[-1].endswith(b"\n") and len(lines) > 1:
        lines[-1] = lines[-1].rstrip(b"\n")  # no newline at the end of the file
    return b"".join(lines), len(expected), expected


FILES = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FILES
@given(case=adversarial_files())
def test_rows_out_plus_nothing_else_equal_records_in(
    case: tuple[bytes, int, list[str | None]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every record gives one result row, in order; the failed ones also go to the errors file."""
    data, records, expected = case
    tmp = tmp_path_factory.mktemp("adv")
    source = write(tmp / "in.csv", data)
    saved = _csvframe.MAX_RECORD_CHARS
    _csvframe.MAX_RECORD_CHARS = 400
    try:
        report = screen_csv(source, tmp / "out.csv", ignore_columns=["notes"], chunk_size=3)
    finally:
        _csvframe.MAX_RECORD_CHARS = saved
    rows = read_rows(tmp / "out.csv")
    errors = read_rows(tmp / "out.errors.csv")
    assert len(rows) == records == report.summary.rows
    assert [r["row"] for r in rows] == [str(i) for i in range(records)]
    failed = [r for r in rows if r["ok"] == "False"]
    assert [e["row"] for e in errors] == [r["row"] for r in failed]
    assert len(rows) - len(failed) + len(errors) == records
    for row, want in zip(rows, expected, strict=True):
        if want is None:
            assert row["ok"] == "False", row
        else:
            assert (row["ok"], row["client_id"]) == ("True", want), row
    lines = [int(r["line"]) for r in rows]
    assert lines == sorted(lines)


@FILES
@given(case=adversarial_files())
def test_the_csv_module_reads_the_same_records_where_it_can(
    case: tuple[bytes, int, list[str | None]],
) -> None:
    """An independent count: Python's csv module, where the file has no unterminated quote."""
    data, records, _ = case
    if b'"never closed' in data:
        return
    csv.field_size_limit(sys.maxsize)
    text = data.decode("utf-8", "surrogateescape")
    read = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    assert len(read) - 1 == records


# -- cells and forms that once ended the batch -----------------------------------------------------


def test_pathological_cells_fail_their_row_only_naming_the_column() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "client_id": ["a", "b", "c", "d", "e", "f", "g"],
            "age": [30, 10**5000, "9" * 100, 30, 30, 30, 30],
            "symptoms": [
                "knee_pain",
                None,
                None,
                "[" * 500 + "]" * 500,
                ["knee_pain"] * 5000,
                "x" * (MAX_CELL_CHARS + 1),
                [[["knee_pain"]]] * 2,
            ],
        }
    )
    result = hipscreen.assess_frame(frame)
    assert result["ok"].tolist() == [True] + [False] * 6
    assert result["row"].tolist() == list(range(7))
    errors = result["error"].tolist()
    assert errors[1].startswith("age: a number of")
    assert errors[2].startswith("age: a number of 100 characters is too long")
    assert errors[3].startswith("symptoms: a list cell may not hold lists inside it")
    assert errors[4].startswith("symptoms: the cell holds 5,000 items")
    assert errors[5].startswith(f"symptoms: the cell is {MAX_CELL_CHARS + 1:,} characters long")
    assert errors[6].startswith("symptoms.0: symptom must be a string")
    assert all(len(error) < 300 for error in errors[1:6])


def test_pathological_forms_fail_their_row_only() -> None:
    deep: Any = {}
    inner = deep
    for _ in range(5000):
        inner["x"] = {}
        inner = inner["x"]
    forms: list[Any] = [
        {"age": 30},
        {"age": 10**5000},
        {"tightness": deep},
        {"symptoms": ["knee_pain"] * 100_000},
        {"age": 31},
    ]
    outcomes = list(assess_iter(forms, chunk_size=2))
    assert len(outcomes) == 5
    # The form's own bounds (hipscreen._limits) refuse the huge integer and the long list.
    assert [isinstance(o, RowError) for o in outcomes] == [False, True, True, True, False]
    assert [o.row for o in outcomes if isinstance(o, RowError)] == [1, 2, 3]
    assert "age: an integer may have at most" in str(outcomes[1])
    assert "symptoms: at most" in str(outcomes[3])
    result = assess_many(forms)
    assert len(result) == 5
    for outcome in result.errors:
        assert len(str(outcome)) < 5000


def test_a_table_error_names_every_bad_column() -> None:
    pd = pytest.importorskip("pandas")
    with pytest.raises(TableError, match="unknown column"):
        hipscreen.assess_frame(pd.DataFrame({"nope": [1]}))


# -- interrupted and resumed, in this process ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_interrupted_run_resumes_to_the_same_results(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from hipscreen._batch import _tables
    from hipscreen._batch._outcomes import BatchInterrupted

    sample = ROOT / "examples" / "data" / "intake_sample.csv"
    whole = tmp_path / f"whole{suffix}"
    screen_csv(sample, whole, chunk_size=256)
    real = _tables.table_outcome
    seen = [0]

    def interrupt_at_1000(*args: Any) -> Any:
        seen[0] += 1
        if seen[0] == 1000:
            raise KeyboardInterrupt
        return real(*args)

    out = tmp_path / f"out{suffix}"
    monkeypatch.setattr(_tables, "table_outcome", interrupt_at_1000)
    with pytest.raises(BatchInterrupted, match="interrupted") as caught:
        screen_csv(sample, out, chunk_size=256)
    assert caught.value.rows_done == 999  # every row finished before the stop is kept
    assert not out.exists()
    assert out.with_name(out.name + ".partial").exists()
    monkeypatch.setattr(_tables, "table_outcome", real)
    with pytest.raises(FileExistsError, match="resume"):
        screen_csv(sample, out, chunk_size=256)
    report = screen_csv(sample, out, chunk_size=256, resume=True)
    assert report.resumed_from == 999
    assert report.summary.rows == 3000
    assert report.summary == screen_csv(sample, tmp_path / "again.csv").summary
    if suffix == ".csv":
        assert out.read_bytes() == whole.read_bytes()
    else:
        assert pq.read_table(out).equals(pq.read_table(whole))
    assert (tmp_path / "out.errors.csv").read_bytes() == (
        tmp_path / "whole.errors.csv"
    ).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == sorted(
        [f"out{suffix}", "out.errors.csv"]
    )


def test_resume_refuses_a_changed_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hipscreen._batch import _tables
    from hipscreen._batch._outcomes import BatchInterrupted

    source = write(tmp_path / "in.csv", "client_id,age\n" + "a,30\n" * 50)
    out = tmp_path / "out.csv"
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        screen_csv(source, out, resume=True)

    def stop(*args: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(_tables, "table_outcome", stop)
    with pytest.raises(BatchInterrupted):
        screen_csv(source, out, chunk_size=10)
    monkeypatch.undo()
    with open(source, "a", encoding="utf-8") as stream:
        stream.write("b,31\n")
    with pytest.raises(ValueError, match="cannot resume: the input differs"):
        screen_csv(source, out, resume=True)
    assert screen_csv(source, out, overwrite=True).summary.rows == 51
