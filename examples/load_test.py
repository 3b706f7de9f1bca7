"""Load test for the reference web service (``hipscreen serve``): throughput and error count.

Starts the service (``python -m hipscreen serve``) on a free localhost port (or targets
``--url``), sends requests from several threads over keep-alive connections, checks every answer
against ``hipscreen.assess`` run in this process, and reports requests per second, latency
percentiles and the number of errors (a transport failure, an unexpected status, or an answer that
differs from the library's). Exit code 1 when there was any error.

    python examples/load_test.py                          # 4,000 requests from 8 threads
    python examples/load_test.py --requests 20000 --concurrency 16 --servers 2
    python examples/load_test.py --url http://127.0.0.1:8000 --endpoint cds
    python examples/load_test.py --requests 50 --json     # one JSON line, for scripts

Needs ``pip install "hipscreen[service]"`` when it starts the service itself.

``--servers N`` starts N single-worker service processes on N ports and spreads the client threads
over them, rather than ``uvicorn --workers N``: on Linux, uvicorn's multi-worker mode leaves
Nagle's algorithm on (uvicorn issue #3149), which adds ~40 ms to every keep-alive request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hipscreen
from hipscreen._service import HOOK, SERVICE_ID

HERE = Path(__file__).resolve().parent
SERVICE_PATH = f"/cds-services/{SERVICE_ID}"

MUSCLES = ["iliopsoas", "rectus_femoris", "hip_flexors", "gluteus_maximus", "hamstrings"]
SYMPTOMS = ["lower_back_pain", "knee_pain", "hip_pain", "anterior_pelvic_tilt", "restricted_stride"]
ACTIVITIES = ["walking", "running", "sprinting", "jumping", "sit_to_stand", "weightlifting"]


def make_forms(count: int, seed: int, invalid_share: float) -> list[dict[str, Any]]:
    """The bundled example forms, then varied forms from a fixed seed; some invalid on purpose."""
    forms: list[dict[str, Any]] = [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((HERE / "forms").glob("*.json"))
    ]
    rng = random.Random(seed)
    while len(forms) < count:
        form: dict[str, Any] = {"client_id": f"load-{len(forms)}", "age": rng.randint(16, 90)}
        form["tightness"] = {m: rng.randint(0, 3) for m in rng.sample(MUSCLES, rng.randint(0, 3))}
        form["strength"] = {m: rng.randint(2, 5) for m in rng.sample(MUSCLES, rng.randint(0, 3))}
        form["symptoms"] = rng.sample(SYMPTOMS, rng.randint(0, 2))
        form["activities"] = rng.sample(ACTIVITIES, rng.randint(0, 3))
        if rng.random() < 0.3:
            form["rom"] = {"hip_flexion": rng.randint(80, 130), "hip_extension": rng.randint(0, 25)}
        forms.append(form)
    for i in range(len(forms)):
        if rng.random() < invalid_share:
            forms[i] = {**forms[i], "age": 300}  # answered with 422: an expected answer
    return forms


@dataclass
class Request:
    path: str
    body: bytes
    status: int
    expected: Any


def cds_cards(result: hipscreen.Assessment, hook_instance: str) -> list[dict[str, Any]]:
    """The cards the service gives for one call, less the parts that name the service's URL."""
    from hipscreen._cds import cards_for

    return [dict(card) for card in cards_for(result, hook_instance=hook_instance)]


def comparable(answer: Any) -> Any:
    """A CDS answer without the service's own URLs (``source.url``, ``links``)."""
    if isinstance(answer, dict) and isinstance(answer.get("cards"), list):
        cards = []
        for card in answer["cards"]:
            card = {k: v for k, v in card.items() if k != "links"}
            card["source"] = {k: v for k, v in card["source"].items() if k != "url"}
            cards.append(card)
        return {"cards": cards}
    return answer


def make_requests(forms: list[dict[str, Any]], endpoint: str) -> list[Request]:
    """Each request with the answer hipscreen itself gives (the 422s are checked by status)."""
    requests = []
    for i, form in enumerate(forms):
        kind = endpoint if endpoint != "mixed" else ("assess", "cds")[i % 2]
        try:
            result: hipscreen.Assessment | None = hipscreen.assess(form)
        except hipscreen.InvalidFormError:
            result = None
        if kind == "assess":
            body = json.dumps(form).encode()
            expected = None if result is None else json.loads(result.model_dump_json())
            requests.append(Request("/assess", body, 200 if result else 422, expected))
        else:
            call = {"hook": HOOK, "hookInstance": f"load-{i}", "context": {"intakeForm": form}}
            expected = None if result is None else {"cards": cds_cards(result, f"load-{i}")}
            requests.append(
                Request(SERVICE_PATH, json.dumps(call).encode(), 200 if result else 422, expected)
            )
    return requests


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def worker(host: str, port: int, requests: list[Request], order: list[int], tally: Tally) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    latencies, errors, statuses = [], [], {}
    for index in order:
        request = requests[index]
        start = time.perf_counter()
        try:
            connection.request("POST", request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as error:
            errors.append(f"{request.path}: {type(error).__name__}: {error}")
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=60)
            continue
        latencies.append(time.perf_counter() - start)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.status != request.status:
            errors.append(f"{request.path}: HTTP {response.status}, expected {request.status}")
        elif request.expected is not None and comparable(json.loads(payload)) != request.expected:
            errors.append(f"{request.path}: the answer differs from hipscreen.assess")
    connection.close()
    with tally.lock:
        tally.latencies += latencies
        tally.errors += errors
        for status, n in statuses.items():
            tally.statuses[status] = tally.statuses.get(status, 0) + n


def run_load(
    targets: list[tuple[str, int]],
    requests: list[Request],
    total: int,
    concurrency: int,
    seed: int,
) -> dict[str, Any]:
    rng = random.Random(seed)
    orders: list[list[int]] = [[] for _ in range(concurrency)]
    for n in range(total):
        orders[n % concurrency].append(rng.randrange(len(requests)))
    tally = Tally()
    threads = [
        threading.Thread(target=worker, args=(*targets[t % len(targets)], requests, order, tally))
        for t, order in enumerate(orders)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    latencies = sorted(tally.latencies) or [0.0]

    def percentile(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

    return {
        "requests": total,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "requests_per_s": round(total / seconds, 1) if seconds else 0.0,
        "errors": len(tally.errors),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "latency_ms": {
            "mean": round(1000 * statistics.fmean(latencies), 2),
            "p50": percentile(0.50),
            "p95": percentile(0.95),
            "p99": percentile(0.99),
        },
        "first_errors": tally.errors[:5],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(host: str, port: int, server: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise SystemExit(f"the service exited early (code {server.returncode})")
        try:
            connection = http.client.HTTPConnection(host, port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the service on {host}:{port} did not come up within 60 s")


def start_service(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "hipscreen", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--audit-db", "sqlite://",
    ]  # fmt: skip
    return subprocess.Popen(command)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests in all")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--endpoint", choices=["assess", "cds", "mixed"], default="mixed")
    parser.add_argument("--forms", type=int, default=64, help="distinct forms to cycle through")
    parser.add_argument("--invalid-share", type=float, default=0.05, help="share of invalid forms")
    parser.add_argument("--servers", type=int, default=1, help="service processes to start")
    parser.add_argument("--url", help="an already running service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="check statuses only, not the answers (for a service with other rules)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")

    requests = make_requests(make_forms(args.forms, args.seed, args.invalid_share), args.endpoint)
    if args.no_verify:
        requests = [Request(r.path, r.body, r.status, None) for r in requests]
    servers: list[subprocess.Popen[bytes]] = []
    if args.url:
        url = urllib.parse.urlsplit(args.url)
        targets = [(url.hostname or "127.0.0.1", url.port or 80)]
    else:
        targets = [("127.0.0.1", free_port()) for _ in range(max(1, args.servers))]
    try:
        servers = [start_service(port) for _, port in targets] if not args.url else []
        for n, (host, port) in enumerate(targets):
            wait_until_up(host, port, servers[n] if servers else None)
        report = run_load(targets, requests, args.requests, args.concurrency, args.seed)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    report["endpoint"] = args.endpoint
    report["servers"] = len(servers) or None
    if args.json:
        print(json.dumps(report))
    else:
        lat = report["latency_ms"]
        print(
            f"{report['requests']} requests ({args.endpoint}) from {args.concurrency} threads "
            f"in {report['seconds']} s: {report['requests_per_s']} requests/s, "
            f"{report['errors']} errors"
        )
        print(f"statuses: {report['statuses']}")
        print(f"latency ms: mean {lat['mean']}, p50 {lat['p50']}, p95 {lat['p95']}, ", end="")
        print(f"p99 {lat['p99']}")
        for error in report["first_errors"]:
            print(f"  error: {error}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
