"""asyncio for ShmReader: ``await reader.read_async(timeout)`` and
``async for frame in reader``.

A reader's C read blocks its thread, so a waiting read is done by a helper
thread, never on the event loop:

* ``read_async`` first takes a frame that is there now, without waiting (the
  C fast path, ``try_read``) or one the helper already read;
* otherwise it parks an ``asyncio.Future`` and wakes the reader's helper
  thread, which reads in slices of :data:`WAIT_SLICE` seconds (the GIL is
  released meanwhile) for as long as some ``read_async`` waits, and hands
  each frame to the loop (``loop.call_soon_threadsafe``);
* frames go to the waiting calls in the order the calls were made; a frame
  that no call waits for any more (its task was cancelled or timed out while
  the helper was reading) is kept, in order, for the next ``read_async``:
  none is dropped, none delivered twice.

The helper thread is started on the first wait, exits after
:data:`IDLE_EXIT` s without a waiting call, and is stopped (joined, within one
slice) by ``reader.close()`` before the handle is released.  A waiting
``read_async`` then raises ``ChannelClosed``.

A reader is used by one thread at a time: once a reader is read with
``read_async``, read it only that way (a blocking ``read`` while the helper
waits gets ``RuntimeError``: the reader is in use by another thread, and
would pass over the frames the helper kept).  Calls from several tasks of one
loop are fine.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Optional, Union

from ._native import check_timeout
from .errors import ChannelClosed
from .frame import Frame

if TYPE_CHECKING:
    from .reader import ShmReader

__all__ = ["IDLE_EXIT", "WAIT_SLICE", "AsyncReadState", "frames"]

# The helper thread's longest single wait in C: how long it may go on after
# the last waiting call was cancelled, and how long close() may wait for it.
WAIT_SLICE = 0.02
# Seconds without a waiting call after which the helper thread exits.
IDLE_EXIT = 1.0

_Item = Union[Frame, BaseException]


class AsyncReadState:
    """The asyncio side of one ShmReader (``reader._aio``): the frames the
    helper read that no call has taken yet, the waiting calls, the helper."""

    __slots__ = (
        "_closing",
        "_cond",
        "_idle",
        "_loop",
        "_pending",
        "_reader",
        "_reading",
        "_thread",
        "_waiters",
        "_want",
    )

    def __init__(self, reader: ShmReader) -> None:
        self._reader = reader
        self._cond = threading.Condition(threading.Lock())
        # Read from the ring by the helper, not yet handed to a call (FIFO).
        self._pending: deque[_Item] = deque()
        # Calls waiting, oldest first (done ones are skipped when matching).
        self._waiters: deque[asyncio.Future[Optional[Frame]]] = deque()
        self._want = 0  # waiting calls not yet answered
        # Calls of timeout 0 waiting for the helper's read to end.
        self._idle: list[asyncio.Future[None]] = []
        self._reading = False  # the helper is inside a C read
        self._closing = False
        self._thread: Optional[threading.Thread] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    # -- the loop's side -------------------------------------------------------

    def quiet(self) -> bool:
        """Whether the fast path may take the next frame now, without the
        lock (called in the loop's thread): the helper is not reading and
        cannot start to (only the loop adds waiting calls), and holds no
        frame.  The helper appends to ``_pending`` before it clears
        ``_reading``, and both are read here in the opposite order."""
        return not self._reading and self._want == 0 and not self._pending

    async def read(self, timeout: Optional[float]) -> Optional[Frame]:
        wait = check_timeout(timeout)
        loop = asyncio.get_running_loop()
        slice_ended = False
        while True:
            with self._cond:
                self._match_locked()
                if self._pending:  # no call waits before this one
                    return _unwrap(self._pending.popleft())
                if not self._reading and self._want == 0:
                    # Nothing read ahead, the helper idle: the fast path may
                    # take the next frame itself (ChannelClosed if closed).
                    frame = self._reader.try_read()
                    if frame is not None:
                        return frame
                elif self._closing:
                    raise ChannelClosed("the reader is closed")
                self._loop = loop
                if wait == 0:
                    # Only the helper's last slice, which no call waits for
                    # any more, may hold a frame that is there now: let it
                    # end (at most WAIT_SLICE s), then look once more.
                    if slice_ended or self._want or not self._reading:
                        return None
                    idle: asyncio.Future[None] = loop.create_future()
                    self._idle.append(idle)
                else:
                    fut: asyncio.Future[Optional[Frame]] = loop.create_future()
                    self._waiters.append(fut)
                    self._want += 1
                    self._start_locked()
                    self._cond.notify_all()
            if wait != 0:
                break
            await idle
            slice_ended = True
        fut.add_done_callback(self._on_done)
        expiry = None if wait is None else loop.call_later(wait, self._expire, fut)
        try:
            return await fut
        finally:
            if expiry is not None:
                expiry.cancel()

    def _on_done(self, fut: asyncio.Future[Optional[Frame]]) -> None:
        if fut.cancelled():  # its task was cancelled: one call fewer waits
            with self._cond:
                self._want -= 1

    def _expire(self, fut: asyncio.Future[Optional[Frame]]) -> None:
        with self._cond:
            if not fut.done():
                self._want -= 1
                fut.set_result(None)

    def _dispatch(self) -> None:
        """In the loop: hand what the helper read to the waiting calls."""
        with self._cond:
            self._match_locked()
            if self._idle and not self._reading:
                for idle in self._idle:
                    if not idle.done():
                        idle.set_result(None)
                self._idle.clear()

    def _match_locked(self) -> None:
        waiters, pending = self._waiters, self._pending
        while waiters:
            fut = waiters[0]
            if fut.done():
                waiters.popleft()
                continue
            if pending:
                item = pending.popleft()
            elif self._closing and not self._reading:
                item = ChannelClosed("the reader is closed")
            else:
                return
            waiters.popleft()
            self._want -= 1
            if isinstance(item, BaseException):
                fut.set_exception(item)
            else:
                fut.set_result(item)

    # -- the helper thread ---------------------------------------------------------

    def _start_locked(self) -> None:
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(
                target=self._run, name=f"mycelium-aio:{self._reader.name}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        cond, reader = self._cond, self._reader
        while True:
            with cond:
                while not self._closing and self._want <= len(self._pending):
                    if not cond.wait(IDLE_EXIT) and self._want <= len(self._pending):
                        self._thread = None
                        return
                if self._closing:
                    self._thread = None
                    cond.notify_all()
                    return
                self._reading = True
            item: Optional[_Item]
            try:
                item = reader.read(WAIT_SLICE)
            except Exception as exc:  # the waiting call raises it
                item = exc
            with cond:
                if item is not None:  # before _reading drops: see quiet()
                    self._pending.append(item)
                self._reading = False
                loop = self._loop
                tell = item is not None or bool(self._idle)
                cond.notify_all()
            if tell and loop is not None:
                try:
                    loop.call_soon_threadsafe(self._dispatch)
                except RuntimeError:  # that loop is closed: the frame stays pending
                    pass

    def close(self) -> None:
        """Stop the helper (it leaves the C read within one slice) and wait
        for it; waiting calls get ChannelClosed.  Frames the helper already
        read stay available to ``read_async``."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread, loop = self._thread, self._loop
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if loop is not None and (self._waiters or self._idle):
            try:
                loop.call_soon_threadsafe(self._dispatch)
            except RuntimeError:
                pass


def _unwrap(item: _Item) -> Frame:
    if isinstance(item, BaseException):
        raise item
    return item


async def frames(reader: ShmReader) -> AsyncIterator[Frame]:
    """``async for frame in reader``: every frame, forever (until an
    exception, or the loop body breaks)."""
    read = reader.read_async
    while True:
        frame = await read(None)
        if frame is not None:
            yield frame
