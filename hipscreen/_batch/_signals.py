"""Stop signals (Ctrl-C, SIGTERM) in a batch run: a stop asked for stays asked until the run stops.

Python runs a signal handler in the main thread between two bytecodes, wherever that is, and the
``KeyboardInterrupt`` a handler raises is lost when that place is a ``__del__`` method or a weakref
callback (an import's module lock has one): Python prints "Exception ignored in ..." and goes on.
A run that counted the signal as delivered then finished normally, exit status 0, after a SIGTERM.
So `stopping_on_signals` keeps the stop as a request as well as raising it, and the run calls
`check` at its safe points (between rows, and before its results are put in place): an
interrupt lost on its way is raised again there, and reaches the run's own handling.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["STOP_SIGNALS", "StopRequest", "check", "held", "stopping_on_signals"]

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)
)


class StopRequest:
    """The stop signal a run got, if any (the first one; later ones are ignored)."""

    __slots__ = ("signum",)

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def reason(self) -> str:
        """What stopped the run, in the words `BatchInterrupted` reports."""
        if self.signum == signal.SIGINT:
            return "interrupted (Ctrl-C)"
        return f"terminated ({signal.Signals(self.signum or signal.SIGTERM).name})"

    @property
    def exit_status(self) -> int:
        """128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM."""
        return 128 + (self.signum if self.signum is not None else signal.SIGINT)


_current: StopRequest | None = None
"""The request of the run under `stopping_on_signals` (signals are per process: one at a time)."""


def check() -> None:
    """Raise the run's stop again if it was asked for: a no-op outside `stopping_on_signals`.

    Raises:
        KeyboardInterrupt: a stop signal came (its own interrupt may have been lost).
    """
    request = _current
    if request is not None and request.signum is not None:
        raise KeyboardInterrupt(request.reason)


@contextlib.contextmanager
def stopping_on_signals() -> Iterator[StopRequest]:
    """SIGTERM stops the run like Ctrl-C: partial results kept and marked, workers ended.

    The first Ctrl-C or SIGTERM raises ``KeyboardInterrupt`` and is kept in the `StopRequest`
    yielded, for `check`; any later one, while the run shuts down (keeping its rows, ending its
    workers, printing where things are), is ignored until the process exits, so the exit status
    stays 130 or 143 and never becomes death by that signal. Outside the main thread the signals
    are left alone (the request stays empty).
    """
    global _current
    request = StopRequest()

    def stop(signum: int, _frame: Any) -> None:
        if request.signum is not None:
            return  # asked already: the run is stopping, or stops at its next `check`
        request.signum = signum
        raise KeyboardInterrupt(request.reason)

    try:
        previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave signals alone
        yield request
        return
    outer, _current = _current, request
    try:
        yield request
    finally:
        _current = outer
        if request.signum is not None:  # shutting down: later signals stay ignored until exit
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
        else:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a chunk and its checkpoint are written.

    A signal handled in the middle (Python raises ``KeyboardInterrupt`` between any two
    bytecodes) would leave a chunk half written, or written and not counted. Held, the first one
    is raised again, to the handler that was in place, once the chunk and its checkpoint are both
    on disk. Signal masks cannot do this: they are per thread, and a process-directed signal goes
    to any thread that does not mask it (the worker pool has threads), after which Python runs
    the handler in the main thread all the same. Outside the main thread Python runs no signal
    handler, so there is nothing to hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: Any) -> None:
        caught.append(signum)

    previous: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not None:  # None: installed outside Python, cannot be put back
            previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])
