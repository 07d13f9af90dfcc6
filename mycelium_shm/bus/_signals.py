"""SIGINT/SIGTERM handling that cannot deadlock the process it stops.

A Python signal handler runs in the main thread, between two bytecodes of
whatever the main thread is doing, possibly while that code holds a lock.
``threading.Event.set()`` and ``Event.wait()`` hold the event's non-reentrant
lock for a few bytecodes, so a handler that calls ``set()`` on an event the
main thread was just setting or waiting on blocks forever on a lock its own
thread holds.  Two SIGTERMs close together do exactly that: the first starts
the shutdown, the second lands inside ``Event.set()`` in :meth:`Runtime.stop`.

:class:`StopSignals` therefore only records the signal (an attribute
assignment) and wakes the waiting code through a :class:`queue.SimpleQueue`,
whose ``put`` is documented as reentrant: it may interrupt another ``put`` or
``get`` in the same thread without deadlocking.  A second signal changes
nothing.
"""

from __future__ import annotations

import queue
import signal
from types import FrameType
from typing import Any, Optional

__all__ = ["STOP_SIGNALS", "StopSignals", "block_stop_signals", "unblock_stop_signals"]

#: The signals that ask a node or a launcher to shut down.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Records the first SIGINT/SIGTERM and wakes :meth:`wait`; install from the main thread."""

    def __init__(self) -> None:
        #: The first stop signal received, or None.
        self.received: Optional[signal.Signals] = None
        self._previous: dict[signal.Signals, Any] = {}
        self._wakeups: queue.SimpleQueue[Optional[int]] = queue.SimpleQueue()

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

    def wait(self, timeout: Optional[float] = None) -> Optional[signal.Signals]:
        """Wait for a stop signal, a :meth:`wake` call or the timeout; :attr:`received`."""
        if self.received is None:
            try:
                self._wakeups.get(timeout=timeout)
            except queue.Empty:
                pass
        return self.received

    def wake(self) -> None:
        """Make a :meth:`wait` in another thread return now (thread-safe)."""
        self._wakeups.put(None)

    def _on_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        # No threading lock here, nor in anything called: see the module docstring.
        if self.received is None:
            self.received = signal.Signals(signum)
        self._wakeups.put(signum)


def block_stop_signals() -> None:
    """Block SIGINT/SIGTERM in the calling thread (and the processes it starts)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def unblock_stop_signals() -> None:
    """Unblock SIGINT/SIGTERM in the calling thread; a pending one is handled now."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
