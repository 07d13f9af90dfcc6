"""SIGINT/SIGTERM handling that cannot deadlock the process it stops.

A Python signal handler runs in the main thread, between two bytecodes of
whatever the main thread is doing, possibly while that code holds a lock.
``threading.Event.set()`` and ``Event.wait()`` hold the event's non-reentrant
lock for a few bytecodes, so a handler that calls ``set()`` on an event the
main thread was just setting or waiting on blocks forever on a lock its own
thread holds.  Two SIGTERMs close together do exactly that: the first starts
the shutdown, the second lands inside ``Event.set()`` in :meth:`Runtime.stop`.

:class:`StopSignals` therefore only records the signal (an attribute
assignment takes no lock) and the code that waits polls
:attr:`StopSignals.received`.  A second signal changes nothing.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, Optional

__all__ = ["STOP_SIGNALS", "StopSignals", "block_stop_signals", "unblock_stop_signals"]

#: The signals that ask a node or a launcher to shut down.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Records the first SIGINT/SIGTERM; install from the main thread."""

    def __init__(self) -> None:
        #: The first stop signal received, or None.
        self.received: Optional[signal.Signals] = None
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> StopSignals:
        """Catch SIGINT and SIGTERM from now on (main thread only); returns self."""
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def ignore(self) -> None:
        """Ignore SIGINT and SIGTERM from now on: the shutdown they ask for is done."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    def _on_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        # Takes no lock and calls nothing that does: see the module docstring.
        if self.received is None:
            self.received = signal.Signals(signum)


def block_stop_signals() -> None:
    """Block SIGINT/SIGTERM in the calling thread (and the processes it starts)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def unblock_stop_signals() -> None:
    """Unblock SIGINT/SIGTERM in the calling thread; a pending one is handled now."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
