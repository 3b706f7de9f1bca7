"""`hipscreen serve` in a child process on a free localhost port, for the tests that need a real
server (slow clients, the browser, the command line)."""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(*options: str, startup_s: float = 60) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """Start ``hipscreen serve --port PORT *options``, wait for /healthz, yield (port, process);
    stop it (terminate, then kill) on the way out."""
    port = free_port()
    command = [sys.executable, "-m", "hipscreen", "serve", "--port", str(port), *options]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, (
                    f"hipscreen serve did not come up in {startup_s} s"
                )
                time.sleep(0.1)
            finally:
                connection.close()
        yield port, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
