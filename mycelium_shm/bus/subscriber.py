"""Pull-style subscriptions: a bounded queue the bus fills and the user drains.

A :class:`Subscriber` is both an iterator (``for msg in sub``) and an async
iterator (``async for msg in sub``).  The bus puts each matching message in the
queue as the very object that was published (never a copy).  When the queue is
full, the subscriber's :class:`Overflow` policy decides what happens:

``BLOCK`` (the default)
    The publishing thread waits for room.  Nothing is lost, and a slow
    consumer slows its producers down.  Never block on a subscriber from the
    thread that drains it.
``DROP_OLDEST``
    The oldest queued message is discarded to make room; :attr:`Subscriber.dropped`
    counts the discards.  Right for "latest value wins" feeds.
``DROP_NEWEST``
    The new message is discarded; the queue keeps the older ones.
``RAISE``
    ``publish`` raises :class:`SubscriberOverflow` in the publishing thread and
    the message is not queued.  (A frame arriving from a transport has no
    publisher to raise to: it is dropped, counted and logged.)
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .errors import BusClosed, SubscriberOverflow

__all__ = ["Overflow", "Subscriber"]


class Overflow(enum.Enum):
    """What a full :class:`Subscriber` queue does with one more message."""

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    RAISE = "raise"


class Subscriber:
    """A bounded FIFO of messages of one or more types, filled by a bus.

    Create it with :meth:`MessageBus.subscriber`; close it (or use it as a
    context manager) to unsubscribe.  Iteration ends once the subscriber is
    closed and its queue is drained.  Safe to fill from many threads; drain it
    from one consumer (a thread or an event loop) at a time.
    """

    def __init__(
        self,
        types: tuple[type, ...],
        maxsize: int = 1024,
        overflow: Overflow = Overflow.BLOCK,
        on_close: Callable[[Subscriber], None] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self.types = types
        self.maxsize = maxsize
        self.overflow = Overflow(overflow)
        #: Messages discarded by ``DROP_OLDEST``/``DROP_NEWEST`` (or refused by
        #: ``RAISE`` for frames that arrived from a transport).
        self.dropped = 0
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._on_close = on_close

    # -- filling (called by the bus) -------------------------------------

    def offer(self, msg: Any, from_transport: bool = False) -> None:
        """Queue ``msg`` according to the overflow policy (the bus calls this).

        Raises :class:`SubscriberOverflow` under ``RAISE`` when full (unless
        ``from_transport``), and :class:`BusClosed` if a ``BLOCK`` wait is
        ended by :meth:`close`.  Messages offered after close are ignored.
        """
        with self._lock:
            if self._closed:
                return
            if len(self._queue) >= self.maxsize:
                policy = self.overflow
                if policy is Overflow.BLOCK:
                    while len(self._queue) >= self.maxsize and not self._closed:
                        self._not_full.wait()
                    if self._closed:
                        raise BusClosed("subscriber closed while a publisher waited for room")
                elif policy is Overflow.DROP_OLDEST:
                    self._queue.popleft()
                    self.dropped += 1
                elif policy is Overflow.DROP_NEWEST:
                    self.dropped += 1
                    return
                else:
                    if from_transport:
                        self.dropped += 1
                        return
                    raise SubscriberOverflow(
                        f"subscriber queue full ({self.maxsize} messages) under Overflow.RAISE"
                    )
            self._queue.append(msg)
            self._not_empty.notify()
            if self._async_waiters:
                self._wake_async_locked()

    def _wake_async_locked(self) -> None:
        waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_set_done, fut)
            except RuntimeError:  # that loop is already closed
                pass

    # -- draining ---------------------------------------------------------

    def get(self, timeout: float | None = None) -> Any:
        """Remove and return the oldest message, waiting up to ``timeout`` s.

        Raises :class:`TimeoutError` when nothing arrives in time, and
        :class:`BusClosed` once the subscriber is closed and empty.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._queue:
                if self._closed:
                    raise BusClosed("subscriber is closed")
                if deadline is None:
                    self._not_empty.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._not_empty.wait(left):
                        if self._queue:
                            break
                        if self._closed:
                            raise BusClosed("subscriber is closed")
                        raise TimeoutError("no message before the timeout")
            msg = self._queue.popleft()
            self._not_full.notify()
            return msg

    def get_nowait(self) -> Any:
        """Remove and return the oldest message; :class:`TimeoutError` if empty."""
        return self.get(timeout=0)

    def drain(self) -> list[Any]:
        """Remove and return every queued message, without waiting."""
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
            self._not_full.notify_all()
            return items

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return self.get()
        except BusClosed:
            raise StopIteration from None

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        """Wait for the next message without blocking the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._queue:
                    msg = self._queue.popleft()
                    self._not_full.notify()
                    return msg
                if self._closed:
                    raise StopAsyncIteration
                fut: asyncio.Future[None] = loop.create_future()
                self._async_waiters.append((loop, fut))
            try:
                await fut
            except asyncio.CancelledError:
                with self._lock:
                    self._async_waiters = [w for w in self._async_waiters if w[1] is not fut]
                raise

    # -- closing ----------------------------------------------------------

    def close(self) -> None:
        """Unsubscribe; queued messages can still be drained, then iteration ends."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
            self._wake_async_locked()
        if self._on_close is not None:
            self._on_close(self)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ", ".join(t.__name__ for t in self.types)
        return (
            f"<Subscriber [{names}] {len(self._queue)}/{self.maxsize} "
            f"{self.overflow.name}{' closed' if self._closed else ''}>"
        )


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
