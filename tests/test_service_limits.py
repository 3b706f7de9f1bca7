"""The service under slow and heavy clients (#25 item 9): the request and body-bytes caps, the
body read timeout, the request-head timeout, and a bounded load test against 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import serving

pytest.importorskip("fastapi", reason="the service extra is not installed")

from hipscreen import _service
from hipscreen._service_limits import RequestLimiter

FORM = {"tightness": {"iliopsoas": "severe"}, "strength": {"gluteus_maximus": 3}}


def _scope(method: str = "POST", length: int | None = 10) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": method, "path": "/", "headers": headers}


async def _run(
    limiter: RequestLimiter, scope: dict[str, Any], release: asyncio.Event
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await release.wait()
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await limiter(scope, receive, send)
    return sent


async def _held_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _status(sent: list[dict[str, Any]]) -> int:
    return int(sent[0]["status"])


def test_requests_beyond_the_cap_get_503_with_retry_after() -> None:
    async def main() -> list[list[dict[str, Any]]]:
        limiter = RequestLimiter(_held_app, max_concurrent=3, retry_after=2)
        release = asyncio.Event()
        tasks = [asyncio.create_task(_run(limiter, _scope(), release)) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert limiter.active == 3
        release.set()
        answers = await asyncio.gather(*tasks)
        assert (limiter.active, limiter.inflight) == (0, 0)
        return answers

    answers = asyncio.run(main())
    statuses = sorted(_status(a) for a in answers)
    assert statuses == [200, 200, 200, 503, 503]
    busy = next(a for a in answers if _status(a) == 503)
    assert (b"retry-after", b"2") in busy[0]["headers"]
    assert json.loads(busy[1]["body"])["detail"][0]["type"] == "busy"


def test_body_bytes_beyond_the_cap_get_503_and_chunked_bodies_reserve_the_limit() -> None:
    async def main() -> list[int]:
        limiter = RequestLimiter(
            _held_app, max_concurrent=100, max_inflight_bytes=1000, max_body_bytes=500
        )
        release = asyncio.Event()
        scopes = [_scope(length=400), _scope(length=400), _scope(length=400), _scope("GET")]
        tasks = [asyncio.create_task(_run(limiter, s, release)) for s in scopes]
        await asyncio.sleep(0.05)
        assert limiter.inflight == 800
        release.set()
        statuses = [_status(a) for a in await asyncio.gather(*tasks)]
        # a chunked body reserves max_body_bytes + 1
        chunked = [asyncio.create_task(_run(limiter, _scope(length=None), release))]
        release.clear()
        await asyncio.sleep(0.05)
        assert limiter.inflight == 501
        release.set()
        await asyncio.gather(*chunked)
        return statuses

    assert asyncio.run(main()) == [200, 200, 503, 200]


def test_limits_are_checked() -> None:
    for name in ("max_concurrent", "max_inflight_bytes"):
        with pytest.raises(ValueError, match=name):
            _service.create_app(**{name: 0})
    with pytest.raises(ValueError, match="body_idle_timeout"):
        _service.create_app(body_idle_timeout=0)


def test_a_stalled_body_is_answered_408() -> None:
    app = _service.create_app(body_idle_timeout=0.2)

    async def main() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        calls = 0

        async def receive() -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": b'{"age"', "more_body": True}
            await asyncio.sleep(30)  # the client stalls
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(dict(message))

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/assess",
            "raw_path": b"/assess",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"host", b"x")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        started = time.monotonic()
        await asyncio.wait_for(app(scope, receive, send), timeout=10)
        assert time.monotonic() - started < 5
        return sent

    sent = asyncio.run(main())
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["detail"][0]["type"] == "body_timeout"


# -- live server ---------------------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """`hipscreen serve` with small caps and a 1-second read timeout: (port, pid)."""
    audit = tmp_path_factory.mktemp("audit") / "audit.sqlite3"
    options = (
        "--log-level",
        "error",
        "--read-timeout",
        "1",
        "--max-concurrent",
        "16",
        "--max-inflight-bytes",
        str(4 * 1_048_576),
        "--audit-db",
        str(audit),
    )
    with serving(*options) as (port, server):
        yield port, server.pid


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


@pytest.mark.slow
@pytest.mark.process
def test_a_connection_that_never_finishes_its_head_is_closed(live: tuple[int, int]) -> None:
    port, _ = live
    idle = socket.create_connection(("127.0.0.1", port))
    dripping = socket.create_connection(("127.0.0.1", port))
    try:
        dripping.sendall(b"POST /assess HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for _ in range(3):  # a header line now and then never completes the head
            time.sleep(0.4)
            try:
                dripping.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        assert _closed_within(idle, 5)
        assert _closed_within(dripping, 5)
        assert time.monotonic() - started < 6
    finally:
        idle.close()
        dripping.close()


@pytest.mark.slow
@pytest.mark.process
def test_a_stalled_body_on_a_live_server_gets_408(live: tuple[int, int]) -> None:
    port, _ = live
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /assess HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 408")


def _post(port: int, body: bytes) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/assess", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        return answer.status, answer.getheader("Retry-After")
    except (ConnectionError, http.client.HTTPException):
        return 0, None  # refused or closed by the server while sending
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.process
def test_a_bounded_burst_of_large_bodies(live: tuple[int, int]) -> None:
    """200 clients at once, each a 512 KiB body: every answer is 200, 413 or 503 (with
    Retry-After), the server's memory stays bounded during the burst and drops back after it,
    and it still answers at once."""
    port, pid = live
    before = _rss_kib(pid)
    form = json.dumps(FORM).encode()
    big = form[:-1] + b', "notes_padding": "' + b"x" * (512 * 1024) + b'"}'
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()
    peak = before

    def client(i: int) -> None:
        answer = _post(port, form if i % 4 == 0 else big)
        with lock:
            results.append(answer)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, _rss_kib(pid))
        time.sleep(0.05)
    statuses = [status for status, _ in results]
    assert len(statuses) == 200
    assert set(statuses) <= {0, 200, 413, 422, 503}, sorted(set(statuses))
    assert statuses.count(503) > 0
    assert all(retry == "1" for status, retry in results if status == 503)
    assert statuses.count(0) < 20
    time.sleep(0.5)
    after = _rss_kib(pid)
    counts = {status: statuses.count(status) for status in set(statuses)}
    print(f"burst: {counts}; RSS KiB before {before}, peak {peak}, after {after}")
    assert peak - before < 120 * 1024, (before, peak)  # 4 MiB of bodies in flight at most
    assert after - before < 40 * 1024, (before, peak, after)
    assert _post(port, form)[0] == 200
