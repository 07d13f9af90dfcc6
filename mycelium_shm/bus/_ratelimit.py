"""Rate-limited logging of a repeated failure, for floods a peer controls.

A hostile or broken peer can make an endpoint fail once per frame or per
connection, hundreds of thousands of times a second.  :class:`LogLimiter`
logs the first occurrence in full (with its traceback), then at most
``per_second`` one-line messages a second, and counts the rest; the count
goes out as one ``"<name>: N more <what> not logged"`` line when the next
second begins, from a timer a second after suppression started, or from
:meth:`LogLimiter.flush` (call it on close), whichever comes first.  Nothing
suppressed goes unreported.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["LogLimiter"]


class LogLimiter:
    """Logs one kind of failure of one endpoint at a bounded rate."""

    def __init__(
        self,
        logger: logging.Logger,
        name: str,
        what: str,
        *,
        per_second: int = 10,
        level: int = logging.WARNING,
    ) -> None:
        self._logger = logger
        self.name = name
        self.what = what
        self.per_second = per_second
        self.level = level
        self._lock = threading.Lock()
        self._window = -1.0
        self._count = 0
        self._first = True
        #: Occurrences not logged and not yet summarised.
        self.suppressed = 0
        #: Occurrences not logged, ever.
        self.total_suppressed = 0
        self._timer: threading.Timer | None = None

    def log(self, msg: str, *args: object, exc_info: BaseException | None = None) -> None:
        """Log one occurrence (with ``exc_info`` only the first time), or count it."""
        summary = 0
        with self._lock:
            now = time.monotonic()
            if now - self._window >= 1.0:
                summary, self.suppressed = self.suppressed, 0
                self._window = now
                self._count = 0
            self._count += 1
            if self._count > self.per_second:
                self.suppressed += 1
                self.total_suppressed += 1
                if self._timer is None:
                    timer = threading.Timer(self._window + 1.0 - now, self._on_timer)
                    timer.daemon = True
                    self._timer = timer
                    timer.start()
                first = False
                log_it = False
            else:
                first, self._first = self._first, False
                log_it = True
        if summary:
            self._summarise(summary)
        if log_it:
            self._logger.log(self.level, msg, *args, exc_info=exc_info if first else None)

    def flush(self) -> None:
        """Report what is suppressed now, and stop the timer (call on close)."""
        with self._lock:
            summary, self.suppressed = self.suppressed, 0
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join(1.0)
        if summary:
            self._summarise(summary)

    def _on_timer(self) -> None:
        with self._lock:
            if self._timer is not threading.current_thread():
                return  # flushed (or replaced) meanwhile
            self._timer = None
            summary, self.suppressed = self.suppressed, 0
        if summary:
            self._summarise(summary)

    def _summarise(self, count: int) -> None:
        self._logger.log(self.level, "%s: %d more %s not logged", self.name, count, self.what)
