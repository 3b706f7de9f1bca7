"""Interrupted batch runs, with real processes and signals: partial output, resume, no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hipscreen._cli import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import make_intake_csv  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.process]
ROWS = 3000


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("intake") / "intake.csv"
    make_intake_csv.write(path, ROWS, seed=7, malformed=0.02)
    return path


@pytest.fixture(scope="module")
def reference(intake: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """The results and errors files of one uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "out.csv"
    assert main(["batch", str(intake), "-o", str(out), "-j", "1", "--no-progress"]) == 1
    return out.read_bytes(), out.with_name("out.errors.csv").read_bytes()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start(intake: Path, out: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "hipscreen", "batch", str(intake), "-o", str(out)]
    command += ["-j", "2", "--chunk-size", "50", "--no-progress"]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )


def _interruptible() -> None:
    """Ctrl-C at its default in the child, as in a terminal. A shell starts a background job
    (``pytest … &`` in a script) with SIGINT ignored, which its children inherit; Python then
    never turns SIGINT into ``KeyboardInterrupt``, and ``hipscreen batch`` rightly ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_workers(child: subprocess.Popen[str], out: Path) -> set[int]:
    """Wait until the run has written a chunk and its workers are up; their process ids."""
    state = out.with_name(out.name + ".resume.json")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        workers = descendants(child.pid)
        if len(workers) >= 2 and _rows_done(state) > 0:
            return workers
        assert child.poll() is None, child.communicate()
        time.sleep(0.05)
    pytest.fail("the run wrote no chunk within 120 s")


def _rows_done(state: Path) -> int:
    """Rows the resume state counts (it is written from the start of the run, with 0)."""
    try:
        return int(json.loads(state.read_text(encoding="utf-8"))["rows"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_gone(pids: set[int], seconds: float = 10) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = {pid for pid in pids if alive(pid)}
        if not left:
            return left
        time.sleep(0.1)
    return {pid for pid in pids if alive(pid)}


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_keeps_a_marked_partial_output_that_resume_finishes(
    intake: Path,
    reference: tuple[bytes, bytes],
    tmp_path: Path,
    signum: signal.Signals,
    status: int,
) -> None:
    out = tmp_path / "out.csv"
    child = start(intake, out)
    workers = wait_for_workers(child, out)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == status, stderr
    assert "stopped after" in stderr
    assert "--resume" in stderr
    assert not out.exists()  # nothing that looks complete
    partial = tmp_path / "out.csv.partial"
    assert partial.exists()
    assert (tmp_path / "out.errors.csv.partial").exists()
    done = int(stderr.split("stopped after ")[1].split(" rows")[0].replace(",", ""))
    assert 0 < done < ROWS
    assert len(partial.read_text(encoding="utf-8").splitlines()) == done + 1
    assert wait_gone(workers) == set()
    # Starting again without --resume refuses rather than throwing the partial run away.
    assert main(["batch", str(intake), "-o", str(out), "--no-progress"]) == 2
    assert main(["batch", str(intake), "-o", str(out), "--resume", "--no-progress"]) == 1
    assert out.read_bytes() == reference[0]
    assert (tmp_path / "out.errors.csv").read_bytes() == reference[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.errors.csv"]


def test_a_killed_worker_ends_the_run_with_a_message(intake: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    child = start(intake, out)
    workers = wait_for_workers(child, out)
    grandchildren = {pid for pid in workers if pid not in descendants_of_depth_one(child.pid)}
    victim = min(grandchildren or workers)
    os.kill(victim, signal.SIGKILL)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 3, stderr
    assert "a worker process died" in stderr
    assert "stopped after" in stderr
    assert not out.exists()
    assert (tmp_path / "out.csv.partial").exists()
    assert wait_gone(workers) == set()


def descendants_of_depth_one(pid: int) -> set[int]:
    return {child for child in descendants(pid) if _parent(child) == pid}


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def test_a_killed_parent_leaves_no_orphaned_workers(
    intake: Path, reference: tuple[bytes, bytes], tmp_path: Path
) -> None:
    """SIGKILL gives the parent no chance to clean up: the workers end themselves."""
    out = tmp_path / "out.csv"
    child = start(intake, out)
    workers = wait_for_workers(child, out)
    child.kill()
    child.communicate(timeout=60)
    assert wait_gone(workers) == set(), "worker processes outlived their parent"
    assert not out.exists()
    assert (tmp_path / "out.csv.resume.json").exists()
    assert main(["batch", str(intake), "-o", str(out), "--resume", "--no-progress"]) == 1
    assert out.read_bytes() == reference[0]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_middle_of_writing_a_chunk_is_held_until_its_checkpoint(
    intake: Path,
    reference: tuple[bytes, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signum: signal.Signals,
) -> None:
    """The race CI once caught: a signal while a chunk was written duplicated part of it."""
    from hipscreen._batch import _stream
    from hipscreen._batch._outcomes import BatchInterrupted
    from hipscreen._batch._signals import stopping_on_signals

    calls = []
    real_write = _stream._CsvSink.write

    def write_with_a_signal_halfway(sink: _stream._CsvSink, rows: list[tuple[object, ...]]) -> None:
        calls.append(len(rows))
        if len(calls) == 3:
            real_write(sink, rows[: len(rows) // 2])
            os.kill(os.getpid(), signum)
            time.sleep(0.01)  # time for the signal to land, were it not held
            real_write(sink, rows[len(rows) // 2 :])
        else:
            real_write(sink, rows)

    monkeypatch.setattr(_stream._CsvSink, "write", write_with_a_signal_halfway)
    out = tmp_path / "out.csv"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with stopping_on_signals(), pytest.raises(BatchInterrupted) as stopped:
            _stream.screen_csv(intake, out, chunk_size=40)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stopped.value.rows_done == 120  # the third chunk is whole, and counted
    partial = (tmp_path / "out.csv.partial").read_text(encoding="utf-8").splitlines()
    assert len(partial) == 120 + 1
    assert [int(line.split(",", 1)[0]) for line in partial[1:]] == list(range(120))
    assert main(["batch", str(intake), "-o", str(out), "--resume", "--no-progress"]) == 1
    assert out.read_bytes() == reference[0]
    assert (tmp_path / "out.errors.csv").read_bytes() == reference[1]


class _BrokenPool:
    """A process pool whose worker died: ``submit`` works ``ok_submits`` times, then raises."""

    def __init__(self, ok_submits: int) -> None:
        self.ok_submits = ok_submits

    def submit(self, *_: object) -> object:
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        if self.ok_submits == 0:
            raise BrokenProcessPool("A child process terminated abruptly")
        self.ok_submits -= 1
        job: Future[list[object]] = Future()
        job.set_exception(BrokenProcessPool("A child process terminated abruptly"))
        return job

    def shutdown(self, **_: object) -> None:
        pass


class _Echo:
    def screen(self, screener: object, payloads: list[object], shipped: bool) -> list[object]:
        return list(payloads)

    def adopt(self, results: list[object]) -> list[object]:
        return results


@pytest.mark.parametrize(
    "ok_submits", [0, 3, 100], ids=["first-submit", "later-submit", "on-result"]
)
def test_a_pool_broken_by_a_dead_worker_is_reported_wherever_it_shows(ok_submits: int) -> None:
    # A worker killed while chunks are in flight breaks the pool: the next submit raises
    # BrokenProcessPool as well as the pending results. Both must read "a worker process died"
    # (CI once saw it reach the CLI as an "internal error" from submit).
    from hipscreen._batch._outcomes import BatchInterrupted
    from hipscreen._batch._pipeline import Item, Pipeline

    pipeline = Pipeline(_Echo(), workers=2, chunk_size=2, cache_size=0)  # type: ignore[arg-type]
    pipeline._pool = _BrokenPool(ok_submits)  # type: ignore[assignment]
    items = [Item(row, None, row, payload=row) for row in range(40)]
    with pytest.raises(BatchInterrupted, match="a worker process died") as stopped:
        list(pipeline.run(items))
    assert stopped.value.rows_done == 0
    pipeline._pool = None
