"""Limits of the web service under slow and heavy clients.

- `RequestLimiter` (ASGI middleware): at most ``max_concurrent`` requests in the app at once and
  at most ``max_inflight_bytes`` of request bodies being received at once; beyond either the
  request is answered at once with 503 and ``Retry-After``. A body's share is reserved when the
  request starts: its Content-Length, or the largest body accepted (``max_body_bytes``) when it
  is chunked, so the bytes held stay under the cap whatever clients send. When a burst is over
  (nothing in flight after more than `TRIM_AFTER_BYTES` was) the freed memory is handed back to
  the system (``malloc_trim`` on glibc).
- `header_timeout_protocol`: uvicorn's h11 protocol with a deadline for a request's head (request
  line and headers): a connection that does not send a whole head in time is closed. uvicorn
  itself waits for ever (its keep-alive timeout only runs between requests).
- The body's read timeout is in `hipscreen._service` (an idle timeout per chunk and a total
  deadline, answered with 408).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "HEADER_TIMEOUT",
    "MAX_CONCURRENT",
    "MAX_INFLIGHT_BYTES",
    "RequestLimiter",
    "header_timeout_protocol",
]

MAX_CONCURRENT = 64
"""Requests in the app at once; one process screens on about one core, so more only queue."""

MAX_INFLIGHT_BYTES = 32 * 1_048_576
"""Bytes of request bodies reserved at once (32 MiB: 32 bodies at the 1 MiB body limit)."""

HEADER_TIMEOUT = 10.0
"""Seconds a connection has to send a whole request head."""

TRIM_AFTER_BYTES = 8 * 1_048_576

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _malloc_trim() -> Callable[[], None]:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        trim = None
    if trim is None:
        return gc.collect  # type: ignore[return-value]

    def release() -> None:
        gc.collect()
        trim(0)

    return release


_release_memory = _malloc_trim()


class RequestLimiter:
    """Caps concurrent requests and in-flight body bytes (see the module docstring).

    Args:
        app: the ASGI app.
        max_concurrent: requests in the app at once.
        max_inflight_bytes: body bytes reserved at once.
        max_body_bytes: what a chunked body (no Content-Length) reserves.
        retry_after: seconds in the 503 answer's ``Retry-After``.

    Raises:
        ValueError: a limit below 1.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrent: int = MAX_CONCURRENT,
        max_inflight_bytes: int = MAX_INFLIGHT_BYTES,
        max_body_bytes: int = 1_048_576,
        retry_after: int = 1,
    ) -> None:
        for name, value in [
            ("max_concurrent", max_concurrent),
            ("max_inflight_bytes", max_inflight_bytes),
            ("max_body_bytes", max_body_bytes),
            ("retry_after", retry_after),
        ]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer of at least 1 (got {value!r})")
        self.app = app
        self.max_concurrent = max_concurrent
        self.max_inflight_bytes = max_inflight_bytes
        self.max_body_bytes = max_body_bytes
        self.retry_after = retry_after
        self.active = 0
        self.inflight = 0
        self.peak = 0
        self.refused = 0
        self._lock = threading.Lock()

    def _reservation(self, scope: Scope) -> int:
        if scope.get("method") not in _BODY_METHODS:
            return 0
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                text = value.decode("latin-1").strip()
                if text.isdigit() and len(text) < 19:
                    return min(int(text), self.max_body_bytes + 1)
                return self.max_body_bytes + 1
        return self.max_body_bytes + 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reserved = self._reservation(scope)
        with self._lock:
            admitted = (
                self.active < self.max_concurrent
                and self.inflight + reserved <= self.max_inflight_bytes
            )
            if admitted:
                self.active += 1
                self.inflight += reserved
                self.peak = max(self.peak, self.inflight)
            else:
                self.refused += 1
        if not admitted:
            await self._busy(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self.active -= 1
                self.inflight -= reserved
                trim = self.active == 0 and self.peak > TRIM_AFTER_BYTES
                if trim:
                    self.peak = 0
            if trim:
                _release_memory()

    async def _busy(self, send: Send) -> None:
        body = (
            b'{"detail":[{"type":"busy","loc":[],"field":"","msg":"the service is busy: '
            b'too many requests or request bytes at once; retry later","input":null}],'
            b'"omitted":0}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(self.retry_after).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def header_timeout_protocol(seconds: float = HEADER_TIMEOUT) -> type:
    """uvicorn's h11 protocol class with a deadline of ``seconds`` for each request head."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        _head_timer: Any = None
        _armed_for: Any = None

        def _arm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a pipelined request is already being answered
            self._armed_for = self.cycle
            self._head_timer = self.loop.call_later(seconds, self._head_expired)

        def _head_expired(self) -> None:
            self._head_timer = None
            if self.cycle is self._armed_for and not self.transport.is_closing():
                self.transport.close()  # no whole request head arrived in time

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

    return HeaderTimeoutH11Protocol
