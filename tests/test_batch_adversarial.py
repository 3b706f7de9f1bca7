"""Batch runs under attack (issue 25): streams, concurrent runs, the run's own files, odd cells.

Each case of the reliability probe is a test here: what used to lose rows silently, mix two runs,
write through links or hang is now refused clearly, or done with every record accounted for.
Cases that could hang run in a subprocess with a timeout.
"""

from __future__ import annotations

import bz2
import csv
import fcntl
import gzip
import io
import lzma
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipscreen._batch import _pipeline, _stream
from hipscreen._batch._command import for_command_line
from hipscreen._batch._outcomes import BatchInterrupted
from hipscreen._batch._stream import CsvWriter, OutputError, screen_csv
from hipscreen._batch._tables import TableError
from hipscreen._cli import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import make_intake_csv  # noqa: E402

ROWS = 600
CHUNK = 128
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("intake") / "intake.csv"
    make_intake_csv.write(path, ROWS, seed=25, malformed=0.02)
    return path


@pytest.fixture(scope="module")
def reference(intake: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """The results and errors files of one plain run of the intake file."""
    out = tmp_path_factory.mktemp("reference") / "out.csv"
    screen_csv(intake, out, chunk_size=CHUNK)
    return out.read_bytes(), out.with_name("out.errors.csv").read_bytes()


def records(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as stream:
        return list(csv.DictReader(stream))


def without_lines(data: bytes) -> list[list[str]]:
    """Result rows without the ``line`` column (a decompressed stream keeps line numbers; the
    comparison is of what was screened)."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"))))
    return [row[:1] + row[2:] for row in rows]


def batch(*argv: str, timeout: float = 120, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hipscreen", "batch", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        check=False,
        **options,
    )


# -- 1. each input read once ---------------------------------------------------------------------


def _feed_fifo(fifo: Path, data: bytes) -> threading.Thread:
    def feed() -> None:
        try:
            with open(fifo, "wb") as writer:
                for start in range(0, len(data), 4096):
                    writer.write(data[start : start + 4096])
        except BrokenPipeError:  # the reader stopped early: what some tests check
            pass

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


def test_a_fifo_is_read_once_and_every_row_screened(
    intake: Path, reference: tuple[bytes, bytes], tmp_path: Path
) -> None:
    # Before: the resume fingerprint reopened the FIFO and ate 64 KiB: 1,799-1,827 of 3,000 rows.
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    feeder = _feed_fifo(fifo, intake.read_bytes())
    report = screen_csv(fifo, tmp_path / "out.csv", chunk_size=CHUNK)
    feeder.join(10)
    assert report.summary.rows == ROWS
    assert without_lines((tmp_path / "out.csv").read_bytes()) == without_lines(reference[0])
    assert not (tmp_path / "out.csv.resume.json").exists()
    assert not (tmp_path / "out.csv.lock").exists()


def test_resume_on_a_stream_is_refused(intake: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    feeder = _feed_fifo(fifo, intake.read_bytes())
    with pytest.raises(ValueError, match="is a stream"):
        screen_csv(fifo, tmp_path / "out.csv", resume=True)
    feeder.join(10)
    assert not feeder.is_alive()


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)],
)
def test_compressed_inputs_are_read_directly(
    intake: Path, reference: tuple[bytes, bytes], tmp_path: Path, suffix: str, compress: Any
) -> None:
    packed = tmp_path / f"in.csv{suffix}"
    packed.write_bytes(compress(intake.read_bytes()))
    report = screen_csv(packed, tmp_path / "out.csv", chunk_size=CHUNK)
    assert report.summary.rows == ROWS
    assert (tmp_path / "out.csv").read_bytes() == reference[0]


def test_a_damaged_compressed_input_is_a_clear_error(intake: Path, tmp_path: Path) -> None:
    packed = tmp_path / "in.csv.gz"
    packed.write_bytes(gzip.compress(intake.read_bytes())[:2000])
    with pytest.raises(TableError, match="gzip data is damaged or cut short"):
        screen_csv(packed, tmp_path / "out.csv", chunk_size=CHUNK)


def test_a_zstd_input_without_zstandard_says_what_to_do(tmp_path: Path) -> None:
    packed = tmp_path / "in.csv.zst"
    packed.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    try:
        import zstandard  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        with pytest.raises(TableError, match="zstd-compressed: install the zstandard package"):
            screen_csv(packed, tmp_path / "out.csv")
    else:
        with pytest.raises(TableError):
            screen_csv(packed, tmp_path / "out.csv")


@pytest.mark.process
def test_process_substitution_of_gzip_screens_every_row(intake: Path, tmp_path: Path) -> None:
    packed = tmp_path / "in.csv.gz"
    packed.write_bytes(gzip.compress(intake.read_bytes()))
    out = tmp_path / "out.csv"
    done = subprocess.run(
        [
            "bash",
            "-c",
            f'"{sys.executable}" -m hipscreen batch <(zcat "{packed}") -o "{out}" -j 1 '
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        check=False,
    )
    assert done.returncode == 1, done.stderr  # some rows of the sample are malformed
    assert len(records(out)) == ROWS
    # The same through standard input, compressed.
    out2 = tmp_path / "out2.csv"
    with open(packed, "rb") as stdin:
        again = batch("-", "-o", str(out2), "-j", "1", "--no-progress", stdin=stdin)
    assert again.returncode == 1, again.stderr
    assert out2.read_bytes() == out.read_bytes()


@pytest.mark.process
def test_a_device_is_refused_by_type_without_reading(tmp_path: Path) -> None:
    # Before: `hipscreen batch /dev/zero` never ended.
    done = batch("/dev/zero", "-o", str(tmp_path / "out.csv"), timeout=30)
    assert done.returncode == 2
    assert "/dev/zero is a device, not a CSV file" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.process
def test_an_endless_stream_without_line_ends_is_bounded(tmp_path: Path) -> None:
    with open("/dev/zero", "rb") as zeros:
        done = batch("-", "-o", str(tmp_path / "out.csv"), stdin=zeros, timeout=60)
    assert done.returncode == 2
    assert "no end of the row in the next 1,048,576 characters" in done.stderr


def test_an_endless_row_after_the_header_is_bounded(tmp_path: Path) -> None:
    class Endless(io.RawIOBase):
        def __init__(self) -> None:
            self.header = b"client_id,age\na,40\nb,"

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            data, self.header = self.header, b""
            data = data or b"7" * len(buffer)
            n = min(len(buffer), len(data))
            buffer[:n] = data[:n]
            return n

    started = time.monotonic()
    with pytest.raises(TableError, match="no end of the row in the next 67,108,864 characters"):
        screen_csv(io.BufferedReader(Endless()), io.StringIO(), errors=tmp_path / "e.csv")
    assert time.monotonic() - started < 60


def test_a_huge_sparse_file_is_refused_at_once(tmp_path: Path) -> None:
    # Before: a 2 GB sparse file took 24 s to be refused.
    sparse = tmp_path / "sparse.csv"
    with open(sparse, "wb") as stream:
        stream.truncate(2 * 2**30)
    started = time.monotonic()
    with pytest.raises(TableError, match="is it a CSV file"):
        screen_csv(sparse, tmp_path / "out.csv")
    assert time.monotonic() - started < 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sparse.csv"]


# -- 2. one writer per output --------------------------------------------------------------------


def test_a_second_run_on_a_locked_output_is_refused_naming_the_pid(
    intake: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    with open(tmp_path / "out.csv.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        with pytest.raises(FileExistsError, match=r"another hipscreen run \(PID 4242\)"):
            screen_csv(intake, out)
    assert not out.exists()
    assert not (tmp_path / "out.csv.partial").exists()


def test_a_stale_lock_file_of_a_dead_run_is_taken_over(intake: Path, tmp_path: Path) -> None:
    (tmp_path / "out.csv.lock").write_text("999999\n")  # no process holds it
    report = screen_csv(intake, tmp_path / "out.csv", chunk_size=CHUNK)
    assert report.summary.rows == ROWS
    assert not (tmp_path / "out.csv.lock").exists()


@pytest.mark.process
@pytest.mark.slow
def test_two_runs_at_once_on_one_output_never_mix(intake: Path, tmp_path: Path) -> None:
    # Before: both ran; the published file mixed 18,029 rows of one with 3,001 of the other.
    other = tmp_path / "other.csv"
    make_intake_csv.write(other, 2000, seed=3, malformed=0.0)
    out = tmp_path / "out.csv"
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "hipscreen", "batch", str(source), "-o", str(out), "-j", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for source in (other, intake)
    ]
    results = [(run.wait(120), run.communicate()[1]) for run in runs]
    codes = sorted(code for code, _ in results)
    refused = [err for code, err in results if code == 2]
    # One run finished; the other was refused at start (lock) or found the results there.
    assert len(refused) == 1, results
    assert "another hipscreen run (PID" in refused[0] or "exists" in refused[0]
    assert codes[0] in (0, 1)
    rows = records(out)
    assert len(rows) in (ROWS, 2000)
    assert [int(r["row"]) for r in rows] == list(range(len(rows)))


# -- 3. the run's own files ----------------------------------------------------------------------


def test_a_hard_link_at_the_state_temporary_cannot_truncate_the_input(
    intake: Path, reference: tuple[bytes, bytes], tmp_path: Path
) -> None:
    # Before: a hard link at OUT.resume.json.tmp to the input truncated the input.
    source = tmp_path / "in.csv"
    source.write_bytes(intake.read_bytes())
    os.link(source, tmp_path / "out.csv.resume.json.tmp")
    screen_csv(source, tmp_path / "out.csv", chunk_size=CHUNK)
    assert source.read_bytes() == intake.read_bytes()
    assert (tmp_path / "out.csv").read_bytes() == reference[0]


def test_a_symlink_at_the_partial_file_is_not_written_through(
    intake: Path, reference: tuple[bytes, bytes], tmp_path: Path
) -> None:
    # Before: a symlink at OUT.partial overwrote its target without --force.
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "out.csv.partial").symlink_to(target)
    (tmp_path / "out.errors.csv.partial").symlink_to(target)
    screen_csv(intake, tmp_path / "out.csv", chunk_size=CHUNK)
    assert target.read_text() == "keep me"
    assert (tmp_path / "out.csv").read_bytes() == reference[0]


def test_a_lock_file_linked_to_the_input_is_refused(intake: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(intake.read_bytes())
    os.link(source, tmp_path / "out.csv.lock")
    with pytest.raises(TableError, match="not a file this tool made"):
        screen_csv(source, tmp_path / "out.csv")
    assert source.read_bytes() == intake.read_bytes()


def test_resume_refuses_a_partial_file_replaced_by_a_link(intake: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(intake.read_bytes())
    out = tmp_path / "out.csv"
    _interrupt_after_first_chunk(source, out)
    (tmp_path / "out.csv.partial").unlink()
    os.link(source, tmp_path / "out.csv.partial")
    with pytest.raises(TableError, match="not a file this tool made"):
        screen_csv(source, out, chunk_size=CHUNK, resume=True)
    assert source.read_bytes() == intake.read_bytes()


@pytest.mark.parametrize(
    ("option", "value"),
    [("chunk_size", 0), ("cache_size", -1), ("workers", 0), ("workers", True), ("workers", 10**12)],
)
def test_bad_arguments_are_refused_before_any_file_is_made(
    intake: Path, tmp_path: Path, option: str, value: int
) -> None:
    # Before: --chunk-size 0 and --cache-size -1 were refused but left .partial files.
    with pytest.raises(ValueError, match=f"{option} must be a whole number"):
        screen_csv(intake, tmp_path / "out.csv", **{option: value})
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_is_refused_before_screening(intake: Path, tmp_path: Path) -> None:
    # Before: -o DIR --force screened everything, then failed with [Errno 21].
    folder = tmp_path / "results"
    folder.mkdir()
    with pytest.raises(TableError, match="is a folder; give a file name"):
        screen_csv(intake, folder, overwrite=True)
    with pytest.raises(TableError, match="does not exist"):
        screen_csv(intake, tmp_path / "missing" / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def _interrupt_after_first_chunk(source: Path, out: Path, **options: Any) -> None:
    real = _stream._CsvSink.write
    calls = []

    def write_then_stop(sink: Any, rows: list[Any]) -> None:
        calls.append(len(rows))
        if len(calls) == 2:  # as Ctrl-C between two chunks (a signal is held within one)
            raise KeyboardInterrupt("interrupted (test)")
        real(sink, rows)

    patch = pytest.MonkeyPatch()
    patch.setattr(_stream._CsvSink, "write", write_then_stop)
    try:
        with pytest.raises(BatchInterrupted):
            screen_csv(source, out, chunk_size=CHUNK, **options)
    finally:
        patch.undo()


STEPS = ["publish started", "results renamed", "errors renamed"]
PARQUET_STEPS = ["parquet merged", "parquet renamed", "publish started", "errors renamed"]


class Crash(BaseException):
    pass


@pytest.mark.parametrize(
    ("fmt", "step"), [("csv", s) for s in STEPS] + [("parquet", s) for s in PARQUET_STEPS]
)
def test_a_crash_at_any_point_of_the_publish_is_finished_by_resume(
    intake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, step: str
) -> None:
    # Before: a crash between the two renames left a state neither --resume nor a rerun took.
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    clean = tmp_path / "clean" / f"out.{fmt}"
    clean.parent.mkdir()
    expected = screen_csv(intake, clean, chunk_size=CHUNK)
    out = tmp_path / f"out.{fmt}"

    def crash(at: str) -> None:
        if at == step:
            raise Crash(at)

    monkeypatch.setattr(_stream, "_crash_point", crash)
    with pytest.raises(Crash):
        screen_csv(intake, out, chunk_size=CHUNK)
    monkeypatch.undo()
    with pytest.raises(FileExistsError, match="continue it with resume=True"):
        screen_csv(intake, out, chunk_size=CHUNK)
    report = screen_csv(intake, out, chunk_size=CHUNK, resume=True)
    assert report.summary == expected.summary
    errors = out.with_name("out.errors.csv")
    assert errors.read_bytes() == clean.with_name("out.errors.csv").read_bytes()
    if fmt == "csv":
        assert out.read_bytes() == clean.read_bytes()
    else:
        assert pd.read_parquet(out).equals(pd.read_parquet(clean))
    leftovers = {p.name for p in tmp_path.iterdir()} - {"clean", out.name, errors.name}
    assert leftovers == set()


# -- 4. CSV any reader reads back ------------------------------------------------------------------


def test_a_carriage_return_in_a_quoted_cell_is_written_quoted_and_resumes(tmp_path: Path) -> None:
    # Before (3.11/3.12): written bare; readers saw three rows for two; --resume refused.
    lines = ["client_id,age,notes"]
    for i in range(300):
        lines.append(f'c{i},{30 + i % 50},"one\rtwo"' if i % 7 == 0 else f"c{i},{30 + i % 50},")
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n", newline="")
    out = tmp_path / "out.csv"
    _interrupt_after_first_chunk(source, out, ignore_columns=["notes"])
    report = screen_csv(source, out, chunk_size=CHUNK, ignore_columns=["notes"], resume=True)
    assert report.summary.rows == 300
    assert len(records(out)) == 300
    assert len(pd.read_csv(out)) == 300


cells = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    st.sampled_from(["\r", "\n", "\r\n", '"', ",", ";", " ", '"\r"', "a\rb"]),
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=8))
def test_csv_round_trip_through_csv_and_pandas(rows: list[list[str | None]]) -> None:
    buffer = io.StringIO(newline="")
    writer = CsvWriter(buffer)
    writer.writerow(["a", "b", "c"])
    writer.writerows(rows)
    text = buffer.getvalue()
    expected = [["" if cell is None else cell for cell in row] for row in rows]
    assert list(csv.reader(io.StringIO(text, newline="")))[1:] == expected
    frame = pd.read_csv(
        io.StringIO(text, newline=""), dtype=str, keep_default_na=False, skip_blank_lines=False
    )
    assert frame.to_numpy().tolist() == expected


# -- 5. client ids whole -------------------------------------------------------------------------


def test_long_client_ids_are_refused_with_the_form_bound_not_abbreviated(tmp_path: Path) -> None:
    # Before: two ids over 4,096 characters were screened and shown as one 60-character brief.
    first, second = "A" * 5000 + "x", "A" * 5000 + "y"
    source = tmp_path / "in.csv"
    source.write_text(f"client_id,age\n{first},40\n{second},41\n{'C' * 300},30\n")
    report = screen_csv(source, tmp_path / "out.csv")
    assert report.summary.failed == 3
    rows = records(tmp_path / "out.csv")
    assert [r["client_id"] for r in rows] == [first, second, "C" * 300]
    errors = records(tmp_path / "out.errors.csv")
    assert [e["error"] for e in errors] == [
        "client_id: a string may have at most 200 characters (got 5,001)",
        "client_id: a string may have at most 200 characters (got 5,001)",
        "client_id: a string may have at most 200 characters (got 300)",
    ]
    import hipscreen

    frame = hipscreen.assess_frame(pd.DataFrame({"client_id": [first], "age": [40]}))
    assert not frame["ok"][0]
    assert "at most 200 characters" in frame["error"][0]
    with pytest.raises(hipscreen.InvalidFormError, match="at most 200 characters"):
        hipscreen.assess({"client_id": first, "age": 40})


# -- 6. arguments and errors ----------------------------------------------------------------------


def test_messages_name_the_door_s_own_words(intake: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    out.write_text("x")
    with pytest.raises(FileExistsError) as exists:
        screen_csv(intake, out)
    assert "overwrite=True" in str(exists.value)
    assert "--force" not in str(exists.value)
    assert "replace it with --force" in for_command_line(str(exists.value))
    assert main(["batch", str(intake), "-o", str(out)]) == 2


def test_unknown_column_floods_are_summarised(tmp_path: Path, capsys: Any) -> None:
    # Before: 10,000 unknown columns printed 809 KB of errors.
    source = tmp_path / "in.csv"
    source.write_text(",".join(f"col{i}" for i in range(10_000)) + "\n" + "1," * 9999 + "1\n")
    assert main(["batch", str(source), "-o", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert len(err) < 10_000
    assert "… and 9,980 more problems" in err


@pytest.mark.process
def test_workers_are_capped_and_huge_numbers_refused(intake: Path, tmp_path: Path) -> None:
    done = batch(str(intake), "-o", str(tmp_path / "a.csv"), "-j", "400", "--no-progress")
    assert done.returncode == 1, done.stderr
    assert "--workers 400 is more than this machine runs well" in done.stderr
    done = batch(str(intake), "-o", str(tmp_path / "b.csv"), "-j", "99999999999999999999")
    assert done.returncode == 2
    assert "far more processes than any machine runs" in done.stderr
    assert "internal error" not in done.stderr


MACHINE = "3 CPUs, 9.0 GB of memory free at about 64 MB a worker"


def _started_workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The workers each `screen_csv` run starts, on a machine that runs 3 well (the rows are
    screened in this process all the same: the results do not depend on it)."""
    started: list[int] = []
    real = _stream.screened_rows

    def screened_rows(*args: Any, workers: int, **options: Any) -> Any:
        started.append(workers)
        return real(*args, workers=1, **options)

    monkeypatch.setattr(_stream, "screened_rows", screened_rows)
    monkeypatch.setattr(_pipeline, "worker_cap", lambda: (3, MACHINE))
    return started


@pytest.mark.parametrize("workers", [4, 400, 10**12 - 1])
def test_screen_csv_caps_workers_as_the_command_does(
    intake: Path,
    reference: tuple[bytes, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    # Before: screen_csv(workers=400) started 400 processes (the command caps -j).
    started = _started_workers(monkeypatch)
    with pytest.warns(UserWarning, match="more than this machine runs well") as warned:
        screen_csv(intake, tmp_path / "out.csv", workers=workers, chunk_size=CHUNK)
    assert [str(w.message) for w in warned] == [
        f"workers={workers:,} is more than this machine runs well ({MACHINE}); using 3"
    ]
    assert warned[0].filename == __file__  # points at the call
    assert started == [3]
    assert (tmp_path / "out.csv").read_bytes() == reference[0]


def test_screen_csv_keeps_workers_the_machine_runs_quietly(
    intake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = _started_workers(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for workers in (3, 2, 1):
            screen_csv(intake, tmp_path / f"out{workers}.csv", workers=workers, chunk_size=CHUNK)
    assert started == [3, 2, 1]


def test_far_too_many_workers_are_refused_naming_what_is_allowed(
    intake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _started_workers(monkeypatch)
    with pytest.raises(ValueError, match="far more processes") as refused:
        screen_csv(intake, tmp_path / "out.csv", workers=10**15)
    assert str(refused.value) == (
        "workers must be a whole number ≥ 1 and below 1,000,000,000,000 (got "
        "1,000,000,000,000,000: far more processes than any machine runs; this one runs 3 well)"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_command_caps_workers_in_the_library_s_words(
    intake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    started = _started_workers(monkeypatch)
    out = str(tmp_path / "out.csv")
    assert main(["batch", str(intake), "-o", out, "-j", "400", "--no-progress"]) == 1
    assert started == [3]
    assert (
        f"hipscreen batch: --workers 400 is more than this machine runs well ({MACHINE}); using 3"
        in capsys.readouterr().err
    )


@settings(deadline=None)
@given(workers=st.integers(1, 10**12 - 1), cap=st.integers(1, 512))
def test_capped_workers_are_the_fewer_of_asked_and_the_cap(workers: int, cap: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pipeline, "worker_cap", lambda: (cap, MACHINE))
        used, note = _pipeline.capped_workers(workers)
    assert used == min(workers, cap)
    assert (note is None) == (workers <= cap)


@pytest.mark.process
def test_a_full_disk_names_the_file_and_resume_finishes(
    intake: Path, reference: tuple[bytes, bytes], tmp_path: Path
) -> None:
    # Before: a bare "[Errno 28]" with no path and no word that --resume works.
    out = tmp_path / "out.csv"
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))\n"
        "from hipscreen._cli import main\n"
        f"sys.exit(main(['batch', {str(intake)!r}, '-o', {str(out)!r}, '-j', '1', "
        f"'--chunk-size', '{CHUNK}', '--no-progress']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=ENV
    )
    assert done.returncode == 2, done.stderr
    assert "cannot write" in done.stderr
    assert "out.csv.partial" in done.stderr
    assert "continue with --resume" in done.stderr
    assert main(["batch", str(intake), "-o", str(out), "--chunk-size", str(CHUNK), "--resume"]) == 1
    assert out.read_bytes() == reference[0]


def test_an_output_error_says_whether_resume_can_continue(tmp_path: Path) -> None:
    error = _stream._cannot(
        tmp_path / "x.partial",
        "write",
        OSError(28, "No space left on device"),
        rows=10,
        resumable=True,
    )
    assert isinstance(error, OutputError)
    assert str(error).startswith(f"cannot write {tmp_path / 'x.partial'}: No space left")
    assert "continue with resume=True" in str(error)
    stream = _stream._cannot(Path("o"), "write", OSError(28, "full"), rows=10, resumable=False)
    assert "the input is a stream, so run again from the start" in str(stream)


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_during_shutdown_keeps_the_exit_status(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # Before: 21 of 100 runs were killed by the second signal instead of exiting 130/143.
    source = tmp_path / "in.csv"
    make_intake_csv.write(source, 20_000, seed=5, malformed=0.0)
    expected = 128 + signum
    for attempt in range(3):
        out = tmp_path / f"out{attempt}.csv"
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hipscreen",
                "batch",
                str(source),
                "-o",
                str(out),
                "-j",
                "2",
                "--no-progress",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 60
        while not out.with_name(out.name + ".resume.json").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        run.send_signal(signum)
        time.sleep(0.01 * attempt)
        run.send_signal(signum)
        run.send_signal(signum)
        _, err = run.communicate(timeout=60)
        assert run.returncode == expected, err


@pytest.fixture
def stop_handlers() -> Any:
    """Ctrl-C and SIGTERM handled as before the test: a stopped run leaves them ignored (as the
    command's process should, until it exits), which the test process must not keep."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


class _SignalFromDel:
    """Sends a signal to this process from ``__del__``, where Python drops whatever it raises:
    as CI saw a SIGTERM's interrupt raised inside an import lock's weakref callback."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)  # runs the handler before returning


def _lost_signals(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """The exceptions Python reports as ignored (instead of pytest's failing the test on them)."""
    ignored: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda raised: ignored.append(raised.exc_value))
    return ignored


@pytest.mark.process
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_whose_interrupt_is_lost_still_stops_the_run(
    intake: Path,
    reference: tuple[bytes, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    stop_handlers: None,
    signum: signal.Signals,
) -> None:
    # Before: the run counted the signal as delivered, ignored the later ones and exited 0 with
    # its results in place (1 CI run in 5 of the test above, SIGTERM).
    ignored = _lost_signals(monkeypatch)
    real = _stream._result_row

    def result_row(row: int, *args: Any) -> Any:
        if row == 300:  # between two rows, outside the writing of a chunk
            _SignalFromDel(signum)
        return real(row, *args)

    monkeypatch.setattr(_stream, "_result_row", result_row)
    out = tmp_path / "out.csv"
    argv = ["batch", str(intake), "-o", str(out), "--chunk-size", str(CHUNK), "--no-progress"]
    assert main(argv) == 128 + signum
    reason = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted (Ctrl-C)"
    assert [str(lost) for lost in ignored] == [reason]  # the handler's own interrupt was lost
    assert isinstance(ignored[0], KeyboardInterrupt)
    assert f"hipscreen batch: {reason}: stopped after 301 rows." in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out.csv.partial",
        "out.csv.resume.json",
        "out.errors.csv.partial",
    ]
    monkeypatch.setattr(_stream, "_result_row", real)
    assert main([*argv, "--resume"]) == 1
    assert out.read_bytes() == reference[0]
    assert out.with_name("out.errors.csv").read_bytes() == reference[1]


@pytest.mark.process
def test_a_signal_lost_while_the_results_are_put_in_place_keeps_the_exit_status(
    intake: Path,
    reference: tuple[bytes, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    stop_handlers: None,
) -> None:
    ignored = _lost_signals(monkeypatch)
    real = _stream._publish

    def publish(*args: Any) -> None:
        _SignalFromDel(signal.SIGTERM)
        real(*args)

    monkeypatch.setattr(_stream, "_publish", publish)
    out = tmp_path / "out.csv"
    assert main(["batch", str(intake), "-o", str(out), "--no-progress"]) == 143
    assert [str(lost) for lost in ignored] == ["terminated (SIGTERM)"]
    err = capsys.readouterr().err
    assert "terminated (SIGTERM) as the run finished; every row was screened" in err
    assert out.read_bytes() == reference[0]  # complete: every row was done before the signal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.errors.csv"]


@pytest.mark.process
def test_a_sigterm_before_screening_starts_exits_143_and_leaves_nothing(
    intake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, stop_handlers: None
) -> None:
    # Before: it reached `hipscreen` as a plain KeyboardInterrupt, exit 130 whatever the signal.
    real = _stream.read_csv_records

    def read(*args: Any, **options: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **options)  # pragma: no cover - the signal stops the run above

    monkeypatch.setattr(_stream, "read_csv_records", read)
    assert main(["batch", str(intake), "-o", str(tmp_path / "out.csv"), "--no-progress"]) == 143
    assert "hipscreen batch: terminated (SIGTERM) before screening started" in (
        capsys.readouterr().err
    )
    assert list(tmp_path.iterdir()) == []


# -- 10. the corpus runner -------------------------------------------------------------------------


@pytest.mark.process
@pytest.mark.slow
def test_the_adversarial_corpus_runner_checks_the_promises(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import adversarial_corpus

    made = adversarial_corpus.make(tmp_path / "corpus")
    picked = [
        path
        for path in made
        if path.name
        in {"cr-in-quoted-cell.csv", "truncated-late.csv.gz", "huge-int.json", "rules-fifo"}
    ]
    assert len(picked) == 4
    results = [result for path in picked for result in adversarial_corpus.check(path, 60)]
    assert [(r.door, r.code, r.problems) for r in results] == [
        ("batch", 1, []),
        ("assess", 2, []),
        ("compare", 2, []),
        ("batch", 2, []),
        ("rules check", 1, []),
        ("assess --extra-rules", 2, []),
    ]
    # A broken promise is reported: a batch run whose errors file disagrees with its results.
    out, errors = tmp_path / "out.csv", tmp_path / "out.errors.csv"
    out.write_text("row,ok\n0,True\n1,False\n")
    errors.write_text("row,line,error\n")
    assert adversarial_corpus._accounted(out, errors) == [
        "1 failed rows in the results, 0 in the errors file"
    ]


def test_without_tqdm_a_final_rows_line_says_how_to_get_a_bar(
    intake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import importlib.util

    from hipscreen._batch import _command

    real = importlib.util.find_spec
    monkeypatch.setattr(
        _command.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "tqdm" else real(name, *args),
    )
    assert main(["batch", str(intake), "-o", str(tmp_path / "out.csv"), "--progress"]) == 1
    err = capsys.readouterr().err
    assert f"{ROWS} rows (for a progress bar: pip install 'hipscreen[progress]')" in err
