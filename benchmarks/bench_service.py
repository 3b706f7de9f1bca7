"""Hostile requests against a live ``hipscreen serve``: status, answer size, latency, server memory.

Starts ``python -m hipscreen serve`` on a free localhost port, sends each hostile body of issue
#11 (and a valid form for comparison) ``--repeat`` times over one keep-alive connection, and
reports per body: the status, the size of the answer, the median and worst latency, and the
server's resident memory (Linux: /proc) before and after the run.

    python benchmarks/bench_service.py
    python benchmarks/bench_service.py --repeat 50 --output benchmarks/results/service.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def hostile_bodies() -> dict[str, bytes]:
    """The bodies that once gave 500s, a 110 MB answer or killed the server, and a valid form."""
    return {
        "valid form": b'{"tightness": {"iliopsoas": 3}, "strength": {"gluteus_maximus": 3}}',
        "100,000 bad symptoms (0.2 MB)": (
            '{"symptoms": [' + ",".join(["1"] * 100_000) + "]}"
        ).encode(),
        "498 bad symptoms (under the value limit)": json.dumps(
            {"symptoms": [f"bad-{i}" for i in range(498)]}
        ).encode(),
        "1,000,000 bad symptoms (2 MB)": (
            '{"symptoms": [' + ",".join(["1"] * 1_000_000) + "]}"
        ).encode(),
        "client_id of 0.9 MB": json.dumps({"client_id": "A" * 900_000}).encode(),
        "NaN": b'{"age": NaN}',
        "Infinity": b'{"rom": {"hip_flexion": Infinity}}',
        "nesting 100,000 deep": b"[" * 100_000,
        "UTF-16 form": '{"tightness": {"iliopsoas": 3}}'.encode("utf-16"),
        "duplicate key": b'{"tightness": {"iliopsoas": 3, "iliopsoas": 0}}',
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"hipscreen serve exited early (code {server.returncode})")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    raise SystemExit("hipscreen serve did not come up within 60 s")


def measure(port: int, body: bytes, repeat: int) -> dict[str, Any]:
    latencies = []
    status, size = 0, 0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            try:
                connection.request(
                    "POST", "/assess", body=body, headers={"Content-Type": "application/json"}
                )
                answer = connection.getresponse()
                payload = answer.read()
            except (OSError, http.client.HTTPException):
                # The server answered 413 and closed before the whole body was sent.
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            latencies.append(time.perf_counter() - start)
            status, size = answer.status, len(payload)
            if answer.getheader("connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    finally:
        connection.close()
    ms = sorted(1000 * s for s in latencies) or [float("nan")]
    return {
        "body_bytes": len(body),
        "status": status,
        "answer_bytes": size,
        "median_ms": round(statistics.median(ms), 2),
        "max_ms": round(ms[-1], 2),
        "answered": len(latencies),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="requests per body")
    parser.add_argument("--output", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    port = free_port()
    command = [sys.executable, "-m", "hipscreen", "serve", "--port", str(port)]
    options = ["--log-level", "warning", "--audit-db", "sqlite://"]
    server = subprocess.Popen([*command, *options], cwd=ROOT)
    try:
        wait_until_up(port, server)
        before = rss_mb(server.pid)
        rows = {name: measure(port, body, args.repeat) for name, body in hostile_bodies().items()}
        after = rss_mb(server.pid)
        alive = server.poll() is None
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    width = max(map(len, rows))
    print(f"{'body':<{width}}  {'bytes':>9}  status  {'answer':>7}  median ms  max ms")
    for name, row in rows.items():
        print(
            f"{name:<{width}}  {row['body_bytes']:>9}  {row['status']:>6}  "
            f"{row['answer_bytes']:>7}  {row['median_ms']:>9}  {row['max_ms']:>6}"
        )
    print(f"server RSS: {before} MB before, {after} MB after; still running: {alive}")
    report = {
        "repeat": args.repeat,
        "bodies": rows,
        "server_rss_mb": {"before": before, "after": after},
        "server_alive": alive,
    }
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
