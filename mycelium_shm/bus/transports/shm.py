"""Frames over shared-memory channels (:mod:`mycelium_shm.channel`).

Two ways to use channels between nodes:

* **Broadcast** (:class:`ShmPublication`, :class:`ShmSubscription`): a node
  publishes on one broadcast channel of its own, and every node that
  consumes from it reads that channel with its own cursor (named after the
  consuming node).  A publish reaching K remote nodes costs one write.
* **Mailbox** (:class:`ShmLink`, :class:`ShmInbound`), described below: each
  consuming node reads one channel, and every sender writes into it.

Mailbox: a node's inbound endpoint is one channel it reads (:class:`ShmInbound`, the
channel's only reader, which creates the channel).  Every other node that
sends to it writes into that channel (:class:`ShmLink`); the ring takes many
writers, so the frames of all senders meet in one queue, each sender's in
its own order.

A link may be opened before its reader exists (processes start in any order):
until the channel appears, frames wait in the link's bounded pending queue and
a background thread retries the attach with exponential backoff; once it
attaches it writes the pending frames first, then writes straight into the
ring from the publishing thread.  The channel outlives a reader that dies, so
a restarted reader picks up the frames written meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from mycelium_shm.errors import ChannelNotFound, Full, MyceliumError, ReaderBusy

from ..errors import BusClosed
from .base import Deliver

__all__ = ["ShmInbound", "ShmLink", "ShmPublication", "ShmSubscription"]

log = logging.getLogger("mycelium_shm.bus.shm")

# A subscription that finds its cursor held by another live reader (a tool
# or a process that attached it for a moment) tries again.  Held for longer
# than this, it is another reader of the same name, and an error.
# (Publications register cursors without holding them: register_cursor.)
BUSY_GRACE_S = 1.0


class ShmLink:
    """Writes frames into another node's channel.

    ``send`` writes directly into the ring, waiting up to ``send_timeout``
    seconds for room (then :class:`Full`).  Before the channel exists, frames
    queue (at most ``max_pending``, then :class:`Full`).  A schema mismatch
    found when attaching is permanent: ``send``/``flush``/``wait_connected``
    raise it.
    """

    def __init__(
        self,
        channel: str,
        *,
        schema: Any = None,
        send_timeout: float | None = 5.0,
        max_pending: int = 65536,
        backoff_initial: float = 0.005,
        backoff_max: float = 0.5,
        name: str | None = None,
    ) -> None:
        self.channel = channel
        self.name = name or f"shm:{channel}"
        self._schema = schema
        self._send_timeout = send_timeout
        self._max_pending = max_pending
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._writer: Any = None
        self._pending: deque[tuple[int, bytes]] = deque()
        self._cond = threading.Condition()
        self._fatal: MyceliumError | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        if not self._try_attach():
            self._thread = threading.Thread(
                target=self._attach_loop, name=f"attach {self.name}", daemon=True
            )
            self._thread.start()

    def _try_attach(self) -> bool:
        from mycelium_shm import ShmWriter

        try:
            writer = ShmWriter(self.channel, create=False, schema=self._schema)
        except ChannelNotFound:
            return False
        except MyceliumError as exc:
            log.error("link %s: %s", self.name, exc)
            with self._cond:
                self._fatal = exc
                self._cond.notify_all()
            return True
        with self._cond:
            try:
                while self._pending:
                    type_id, payload = self._pending[0]
                    writer.write(type_id, payload, timeout=self._send_timeout)
                    self._pending.popleft()
            except MyceliumError as exc:
                log.error("link %s: writing queued frames failed: %s", self.name, exc)
                writer.close()
                self._fatal = exc
                self._cond.notify_all()
                return True
            self._writer = writer
            self._cond.notify_all()
        log.debug("link %s: attached", self.name)
        return True

    def _attach_loop(self) -> None:
        delay = self._backoff_initial
        while True:
            with self._cond:
                if self._closing:
                    return
            if self._try_attach():
                return
            with self._cond:
                self._cond.wait_for(lambda: self._closing, timeout=delay)
            delay = min(delay * 2, self._backoff_max)

    def send(self, type_id: int, payload: bytes) -> None:
        """Write one frame (or queue it while the channel does not exist yet)."""
        writer = self._writer
        if writer is not None:
            writer.write(type_id, payload, timeout=self._send_timeout)
            return
        with self._cond:
            if self._fatal is not None:
                raise self._fatal
            if self._closing:
                raise BusClosed(f"link {self.name} is closed")
            if self._writer is not None:
                self._writer.write(type_id, payload, timeout=self._send_timeout)
                return
            if len(self._pending) >= self._max_pending:
                raise Full(
                    f"link {self.name}: channel absent and {self._max_pending} frames queued"
                )
            self._pending.append((type_id, payload))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until queued frames are in the ring; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending:
                if self._fatal is not None:
                    raise self._fatal
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until the channel is attached; raises the link's permanent error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._writer is None:
                if self._fatal is not None:
                    raise self._fatal
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    @property
    def connected(self) -> bool:
        """True once the channel is attached."""
        return self._writer is not None

    @property
    def pending(self) -> int:
        """Frames waiting for the channel to appear."""
        return len(self._pending)

    def close(self, timeout: float | None = 5.0) -> None:
        """Write what is queued (up to ``timeout`` s) and detach."""
        try:
            self.flush(timeout)
        except MyceliumError:
            pass
        with self._cond:
            self._closing = True
            left = len(self._pending)
            self._cond.notify_all()
        if left:
            log.warning("link %s closed with %d frames undelivered (no channel)", self.name, left)
        if self._thread is not None:
            self._thread.join(timeout)
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def __enter__(self) -> ShmLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ShmLink {self.name} {'attached' if self.connected else 'waiting'}>"


class ShmInbound:
    """Reads the node's own channel, creating it if it does not exist.

    If the channel exists already (left by a reader that died), this reader
    takes it over and reads what was written meanwhile.  ``unlink_on_close``
    removes the channel when the endpoint closes; leave it False when a
    restarted process should find the frames sent while it was down.
    """

    def __init__(
        self,
        channel: str,
        *,
        schema: Any = None,
        capacity: int = 1 << 20,
        unlink_on_close: bool = False,
        name: str | None = None,
    ) -> None:
        from mycelium_shm import ShmReader

        self.channel = channel
        self.name = name or f"shm:{channel}"
        self._unlink_on_close = unlink_on_close
        self._reader = ShmReader(
            channel, create=True, exist_ok=True, capacity=capacity, schema=schema
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self, deliver: Deliver) -> None:
        """Read in a thread, calling ``deliver`` for every frame."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: reader thread already started")
        self._thread = threading.Thread(
            target=self._read_loop, args=(deliver,), name=f"read {self.name}", daemon=True
        )
        self._thread.start()

    def _read_loop(self, deliver: Deliver) -> None:
        reader = self._reader
        while not self._stop.is_set():
            try:
                frame = reader.read(timeout=0.05)
            except MyceliumError as exc:
                if self._stop.is_set():
                    return
                log.error("%s: reading failed: %s", self.name, exc)
                return
            if frame is not None:
                deliver(frame.type_id, frame.payload)

    def poll(self, deliver: Deliver, max_frames: int = 1024) -> int:
        """Deliver up to ``max_frames`` frames already in the ring, in this thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: poll() on an endpoint with a reader thread")
        reader = self._reader
        n = 0
        while n < max_frames:
            frame = reader.read(timeout=0)
            if frame is None:
                break
            n += 1
            deliver(frame.type_id, frame.payload)
        return n

    def close(self) -> None:
        """Stop the reader thread and detach (and unlink, if asked)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self._reader.close()
        if self._unlink_on_close:
            from mycelium_shm import unlink

            unlink(self.channel, missing_ok=True)

    def __enter__(self) -> ShmInbound:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ShmInbound {self.name}>"


class ShmPublication:
    """The broadcast channel a node publishes on: a :class:`Link` whose
    frames every subscribing node reads (:class:`ShmSubscription`).

    Creates the channel (or attaches to it, after a restart) with one cursor
    slot per name in ``subscribers`` (plus ``spare_readers`` for tools such
    as ``mycelium-shm tail``), and registers a durable, tethered cursor for
    each subscriber at once, so no frame is published before a subscriber's
    cursor exists, whenever its process starts.  Writers wait for the
    slowest subscriber (``send_timeout``, then :class:`Full`); one that died,
    or that holds them back for ``untether`` seconds, is untethered and
    counts what it misses (see :class:`~mycelium_shm.ShmReader`).
    """

    def __init__(
        self,
        channel: str,
        *,
        subscribers: Iterable[str],
        schema: Any = None,
        capacity: int = 1 << 20,
        spare_readers: int = 1,
        untether: float = 10.0,
        send_timeout: float | None = 5.0,
        unlink_on_close: bool = False,
        name: str | None = None,
    ) -> None:
        from mycelium_shm import ShmWriter, register_cursor

        self.channel = channel
        self.name = name or f"shm-pub:{channel}"
        self.subscribers = tuple(subscribers)
        self._send_timeout = send_timeout
        self._unlink_on_close = unlink_on_close
        readers = len(self.subscribers) + spare_readers
        self._writer = ShmWriter(
            channel,
            create=True,
            exist_ok=True,
            capacity=capacity,
            schema=schema,
            readers=readers,
            untether=untether,
        )
        for cursor in self.subscribers:  # a durable cursor at the tail (one that exists stays)
            register_cursor(channel, cursor)
        # A subscriber whose cursor was attached after this has come.
        self._registered_ns = time.time_ns()
        self._all_attached = not self.subscribers

    def subscribers_attached(self) -> bool:
        """Whether every subscriber has attached its cursor since the
        publication opened (or holds it now)."""
        if not self._all_attached:
            from mycelium_shm import cursors

            table = {c["name"]: c for c in cursors(self.channel)}
            self._all_attached = all(
                name in table
                and (table[name]["alive"] or table[name]["attached_ns"] > self._registered_ns)
                for name in self.subscribers
            )
        return self._all_attached

    def send(self, type_id: int, payload: bytes) -> None:
        """Write one frame for every subscriber (waiting up to ``send_timeout`` for room)."""
        self._writer.write(type_id, payload, timeout=self._send_timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Frames are in the ring once ``send`` returns, at every subscriber's
        cursor; this waits (up to ``timeout`` s) until every subscriber has
        attached once, the broadcast twin of a mailbox link reaching its
        peer's channel.  False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.subscribers_attached():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    @property
    def connected(self) -> bool:
        return not self._writer.closed

    def close(self, timeout: float | None = 5.0) -> None:
        """Detach (and unlink the channel, if asked).  Subscribers keep reading
        what was published until they reach the end."""
        if not self._writer.closed:
            self._writer.close()
            if self._unlink_on_close:
                from mycelium_shm import unlink

                unlink(self.channel, missing_ok=True)

    def __enter__(self) -> ShmPublication:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ShmPublication {self.name} -> {', '.join(self.subscribers)}>"


class ShmSubscription:
    """Reads another node's :class:`ShmPublication` channel with this node's
    own durable cursor ``cursor``: an :class:`Inbound` endpoint.

    The channel may not exist yet (processes start in any order): the
    endpoint attaches with exponential backoff, also while its cursor is
    held by another live reader (something that attached it for a moment),
    for up to ``BUSY_GRACE_S``; after that, :class:`~mycelium_shm.ReaderBusy`.  A restarted node resumes at
    its cursor, so nothing published while it was down is lost (unless the
    publisher untethered it, which is logged with the number of frames lost
    and counted in ``stats["lost"]``).
    """

    def __init__(
        self,
        channel: str,
        cursor: str,
        *,
        schema: Any = None,
        policy: str = "tethered",
        backoff_initial: float = 0.005,
        backoff_max: float = 0.02,
        batch: int = 256,
        name: str | None = None,
    ) -> None:
        self.channel = channel
        self.cursor = cursor
        self.name = name or f"shm-sub:{channel}[{cursor}]"
        self._schema = schema
        self._policy = policy
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._batch = batch
        self._reader: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.stats = {"frames": 0, "lost": 0}
        self._busy_since: float | None = None
        self._try_attach()

    def _try_attach(self) -> bool:
        from mycelium_shm import ShmReader

        if self._reader is not None:
            return True
        try:
            self._reader = ShmReader(
                self.channel,
                schema=self._schema,
                cursor=self.cursor,
                policy=self._policy,  # type: ignore[arg-type]
            )
        except ChannelNotFound:
            return False
        except ReaderBusy:
            now = time.monotonic()
            if self._busy_since is None:
                self._busy_since = now
            if now - self._busy_since < BUSY_GRACE_S:
                return False
            raise
        log.debug("%s: attached", self.name)
        return True

    def start(self, deliver: Deliver) -> None:
        """Read in a thread (attaching first, with backoff), calling ``deliver``."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: reader thread already started")
        self._thread = threading.Thread(
            target=self._read_loop, args=(deliver,), name=f"read {self.name}", daemon=True
        )
        self._thread.start()

    def _read_loop(self, deliver: Deliver) -> None:
        delay = self._backoff_initial
        while not self._stop.is_set():
            try:
                attached = self._try_attach()
            except MyceliumError as exc:
                log.error("%s: cannot attach: %s", self.name, exc)
                return
            if attached:
                break
            self._stop.wait(delay)
            delay = min(delay * 2, self._backoff_max)
        while not self._stop.is_set():
            try:
                self._deliver_batch(deliver, 0.05)
            except MyceliumError as exc:
                if not self._stop.is_set():
                    log.error("%s: reading failed: %s", self.name, exc)
                return

    def _deliver_batch(self, deliver: Deliver, timeout: float) -> int:
        with self._lock:
            reader = self._reader
            if reader is None or self._closed:
                return 0
            frames = reader.read_many(self._batch, timeout=timeout)
            lost = reader.lost
        if lost != self.stats["lost"]:
            log.warning(
                "%s: %d frames lost (the publisher untethered this subscriber)",
                self.name,
                lost - self.stats["lost"],
            )
            self.stats["lost"] = lost
        for type_id, payload in frames:
            deliver(type_id, payload)
        self.stats["frames"] += len(frames)
        return len(frames)

    def poll(self, deliver: Deliver, max_frames: int = 1024) -> int:
        """Deliver up to ``max_frames`` frames already in the channel, in this thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: poll() on an endpoint with a reader thread")
        if not self._try_attach():
            return 0
        total = 0
        while total < max_frames:
            n = self._deliver_batch(deliver, 0)
            if n == 0:
                break
            total += n
        return total

    def close(self) -> None:
        """Stop the reader thread and detach (the durable cursor stays)."""
        if self._closed:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        with self._lock:
            self._closed = True
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def __enter__(self) -> ShmSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "attached" if self._reader is not None else "waiting"
        return f"<ShmSubscription {self.name} {state}>"
