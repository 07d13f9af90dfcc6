"""Frames over stream sockets: Unix domain sockets and TCP.

Wire format
-----------
Each side first sends a 48-byte hello, then frames.  All integers are
little-endian, as in the shared-memory ring::

    hello   +----------+---------+-------------+----------------+
            | magic 8  | ver u32 | max_pay u32 | schema digest  |
            | MYCELBUS |    1    |             |   32 bytes     |
            +----------+---------+-------------+----------------+

    frame   +---------+---------+----------+---------------------+
            | len u32 | type u16| flags u16| payload (len-8 B)   |
            +---------+---------+----------+---------------------+

``len`` counts the 8-byte header and the payload, exactly like a ring frame
(``csrc/ring.h``); ``flags`` is 0.  After the hellos each side knows the
other's digest; if they differ both sides raise :class:`SchemaMismatch` and
the connection is closed.  The largest payload either side accepts is the
smaller of the two ``max_pay`` values; every frame's length is checked
against it (and against the 8-byte minimum, and type 0 is refused) before its
payload is read.  A frame that fails a check ends the connection with a
:class:`TransportError`.

Only the connecting side sends frames: a :class:`SocketLink` connects to a
:class:`SocketInbound` and streams frames one way.

Delivery
--------
:class:`SocketLink` queues frames (bounded, ``max_pending``) and a sender
thread writes them; ``send`` never waits on the network (only for queue room,
up to ``send_timeout``, then :class:`Full`), so a peer that stops reading
stalls the sender thread, not the publisher.  It connects lazily, reconnects after a failure with
exponential backoff, and keeps queued frames across reconnections.  The
frames of a write that finds the connection broken are counted in
``stats["lost"]`` and logged.  There are no acknowledgements: frames an
earlier write handed to the kernel, which a receiving process killed before
it handled them never saw, are lost uncounted (see the README).  :meth:`SocketLink.close`
is the clean shutdown: it sends everything queued, half-closes the socket and
waits for the peer to read to the end and close, so nothing is lost.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import math
import os
import select
import selectors
import socket
import stat
import struct
import sys
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

from mycelium_shm.errors import Full, MyceliumError, SchemaMismatch

from .._ratelimit import LogLimiter
from ..errors import BusClosed, TransportError
from .base import Deliver

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "FRAME_HEADER",
    "HELLO",
    "SocketAddress",
    "SocketInbound",
    "SocketLink",
    "handshake",
    "parse_tcp_address",
]

log = logging.getLogger("mycelium_shm.bus.socket")

#: A Unix socket path (``str`` or ``Path``) or a TCP ``(host, port)``.
SocketAddress = Union[str, Path, tuple[str, int]]

MAGIC = b"MYCELBUS"
VERSION = 1
#: magic, version, max payload, schema digest.
HELLO = struct.Struct("<8sII32s")
#: frame length (header + payload), type id, flags.
FRAME_HEADER = struct.Struct("<IHH")
DEFAULT_MAX_PAYLOAD = 1 << 20
TYPE_ID_MAX = 0xFFFF
NO_DIGEST = bytes(32)

ErrorHook = Callable[[BaseException], object]
#: send() flag for one write that never waits (0 where the platform lacks it).
_MSG_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


def parse_tcp_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:7000"`` -> ``("127.0.0.1", 7000)``; ValueError if malformed."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"TCP address {text!r} is not host:port")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"TCP address {text!r} has a non-numeric port") from None
    if not 0 < port < 65536:
        raise ValueError(f"TCP address {text!r}: port must be 1..65535")
    return host.strip("[]"), port


def _digest_of(schema: Any) -> bytes:
    if schema is None:
        return NO_DIGEST
    digest = bytes(schema.digest)
    if len(digest) != 32:
        raise ValueError(f"schema digest must be 32 bytes, not {len(digest)}")
    return digest


def _describe(address: SocketAddress) -> str:
    if isinstance(address, tuple):
        return f"tcp:{address[0]}:{address[1]}"
    return f"unix:{address}"


def _new_socket(address: SocketAddress) -> socket.socket:
    if isinstance(address, tuple):
        sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)


def _sockaddr(address: SocketAddress) -> Any:
    return address if isinstance(address, tuple) else os.fspath(address)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    """Exactly n bytes, or None on a clean EOF before the first byte."""
    if n == 0:
        return b""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            if got == 0:
                return None
            raise TransportError(f"connection closed inside a record ({got} of {n} bytes)")
        got += k
    return bytes(buf)


def handshake(
    sock: socket.socket,
    schema: Any,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    timeout: float = 5.0,
) -> int:
    """Exchange hellos on a connected socket; return the agreed max payload.

    Raises :class:`SchemaMismatch` if the peer's schema digest differs (the
    peer, running the same code, raises it too), :class:`TransportError` if
    the peer is not speaking this protocol, and :class:`TimeoutError`.
    """
    digest = _digest_of(schema)
    old_timeout = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        sock.sendall(HELLO.pack(MAGIC, VERSION, max_payload, digest))
        data = _recv_exact(sock, HELLO.size)
    finally:
        sock.settimeout(old_timeout)
    if data is None:
        raise TransportError("peer closed the connection during the handshake")
    return _check_hello(data, digest, max_payload)


def _check_hello(data: bytes, digest: bytes, max_payload: int) -> int:
    """Check a peer's 48-byte hello against this side's; the agreed max payload."""
    magic, version, peer_max, peer_digest = HELLO.unpack(data)
    if magic != MAGIC:
        raise TransportError(f"peer is not a mycelium bus (magic {magic!r})")
    if version != VERSION:
        raise TransportError(f"peer speaks protocol version {version}, this side {VERSION}")
    if peer_digest != digest:
        raise SchemaMismatch(
            f"peer schema digest {peer_digest.hex()[:16]}... differs from "
            f"this side's {digest.hex()[:16]}..."
        )
    return min(max_payload, int(peer_max))


class SocketLink:
    """Outbound frames to one :class:`SocketInbound`, with reconnection.

    ``send`` never blocks on the network: it queues the frame (waiting up to
    ``send_timeout`` seconds for room when ``max_pending`` frames are queued,
    then raising :class:`Full`).  When the link is idle it writes the frame
    itself, but only what the kernel takes at once (a non-blocking write);
    the sender thread writes the rest, so a peer that stops reading (stopped,
    hung, slow) holds up the sender thread and fills the queue, never the
    caller for longer than ``send_timeout``.  A schema mismatch is permanent: the link
    stops, and ``send``/``flush``/:meth:`wait_connected` raise it.
    """

    def __init__(
        self,
        address: SocketAddress,
        *,
        schema: Any = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        max_pending: int = 65536,
        send_timeout: float | None = 5.0,
        connect_timeout: float = 2.0,
        backoff_initial: float = 0.01,
        backoff_max: float = 1.0,
        name: str | None = None,
    ) -> None:
        self.address = address
        self.name = name or _describe(address)
        self._schema = schema
        self._digest = _digest_of(schema)
        self._max_payload = max_payload
        self._peer_max = max_payload
        self._max_pending = max_pending
        self._send_timeout = send_timeout
        self._connect_timeout = connect_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._pending: deque[tuple[int, bytes]] = deque()
        self._in_flight = 0
        # The rest of a frame send() wrote only in part: (type id, payload,
        # the bytes not yet written).  The sender thread writes it first.
        self._head: tuple[int, bytes, memoryview] | None = None
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._fatal: MyceliumError | None = None
        self._closing = False
        self._closed = False
        # Set (under _cond) when a write or a liveness check found the
        # connection dead; the sender thread then reconnects.
        self._broken = False
        self._connected = threading.Event()
        #: ``sent`` frames written, ``lost`` frames written into a connection
        #: that broke, ``connects`` successful handshakes.
        self.stats: dict[str, int] = {"sent": 0, "lost": 0, "connects": 0}
        self._thread = threading.Thread(target=self._run, name=f"link {self.name}", daemon=True)
        self._thread.start()

    # -- user side --------------------------------------------------------

    def send(self, type_id: int, payload: bytes) -> None:
        """Queue one frame for sending (see the class docstring for blocking)."""
        if not 0 < type_id <= TYPE_ID_MAX:
            raise ValueError(f"type id {type_id} is outside 1..{TYPE_ID_MAX}")
        if len(payload) > self._peer_max:
            raise ValueError(
                f"payload of {len(payload)} bytes exceeds the {self._peer_max}-byte maximum"
            )
        with self._cond:
            if self._fatal is not None:
                raise self._fatal
            if self._closing:
                raise BusClosed(f"link {self.name} is closed")
            if len(self._pending) >= self._max_pending:
                deadline = (
                    None if self._send_timeout is None else (time.monotonic() + self._send_timeout)
                )
                while len(self._pending) >= self._max_pending:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise Full(
                            f"link {self.name}: {self._max_pending} frames queued and "
                            f"no room after {self._send_timeout} s"
                        )
                    self._cond.wait(left)
                    if self._fatal is not None:
                        raise self._fatal
            sock = self._sock
            if sock is None or self._pending or self._in_flight or self._broken:
                self._pending.append((type_id, payload))
                self._cond.notify_all()
                return
            # Fast path: connected and idle, so write from this thread and
            # spare the hand-off to the sender thread.  _in_flight keeps the
            # sender thread (and other direct writers) off the socket meanwhile.
            self._in_flight = 1
        frame = FRAME_HEADER.pack(FRAME_HEADER.size + len(payload), type_id, 0) + payload
        written = -1
        try:
            if not self._peer_gone(sock):
                # Never block here: a peer that stops reading must not stall
                # the publisher.  What the kernel does not take now, the
                # sender thread writes (and may wait for); send() only ever
                # waits for queue room, up to send_timeout.
                written = sock.send(frame, _MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError as exc:
            log.info("link %s: connection broke (%s); reconnecting", self.name, exc)
        with self._cond:
            if written == len(frame):
                self._in_flight = 0
                self.stats["sent"] += 1
            elif written > 0:
                # Partly written: the sender thread writes the rest before
                # anything else (the frame stays in flight until then).
                self._head = (type_id, payload, memoryview(frame)[written:])
            else:
                self._in_flight = 0
                # Not written at all (or the connection broke): queue it
                # first; the peer never delivers a partial frame, so sending
                # it again after reconnecting loses nothing.
                self._pending.appendleft((type_id, payload))
                if written < 0:
                    self._broken = True
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued frame was written to the socket; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight:
                if self._fatal is not None:
                    raise self._fatal
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait for a completed handshake; raises the link's permanent error, if any."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._connected.is_set():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._connected.wait(0.01 if left is None else min(0.01, left))

    @property
    def connected(self) -> bool:
        """True while a handshaken connection is up."""
        return self._connected.is_set()

    @property
    def pending(self) -> int:
        """Frames queued and not yet written."""
        return len(self._pending) + self._in_flight

    def close(self, timeout: float | None = 5.0) -> None:
        """Send what is queued (up to ``timeout`` s), end the connection cleanly."""
        if self._closed:
            return
        try:
            flushed = self.flush(timeout)
        except MyceliumError:
            flushed = False
        with self._cond:
            self._closing = True
            left = len(self._pending) + self._in_flight
            self._cond.notify_all()
        if not flushed and left:
            log.warning("link %s closed with %d frames undelivered", self.name, left)
        self._thread.join(timeout)
        self._closed = True

    def __enter__(self) -> SocketLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<SocketLink {self.name} {state} pending={self.pending}>"

    # -- sender thread ------------------------------------------------------

    def _connect(self) -> socket.socket:
        sock = _new_socket(self.address)
        try:
            sock.settimeout(self._connect_timeout)
            sock.connect(_sockaddr(self.address))
            peer_max = handshake(
                sock, self._schema, max_payload=self._max_payload, timeout=self._connect_timeout
            )
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        self._peer_max = peer_max
        return sock

    def _run(self) -> None:
        delay = self._backoff_initial
        failures = 0
        while True:
            with self._cond:
                if self._closing and not self._pending:
                    break
            sock = self._sock
            if sock is None:
                try:
                    sock = self._connect()
                except SchemaMismatch as exc:
                    log.error("link %s: %s", self.name, exc)
                    with self._cond:
                        self._fatal = exc
                        self._cond.notify_all()
                    return
                except (OSError, TransportError) as exc:
                    failures += 1
                    with self._cond:
                        if self._closing:
                            break
                    level = logging.INFO if failures == 1 else logging.DEBUG
                    log.log(
                        level,
                        "link %s: connect failed (%s); retry in %.3f s",
                        self.name,
                        exc,
                        delay,
                    )
                    with self._cond:
                        self._cond.wait_for(lambda: self._closing, timeout=delay)
                    delay = min(delay * 2, self._backoff_max)
                    continue
                failures = 0
                delay = self._backoff_initial
                with self._cond:
                    self._sock = sock
                    self.stats["connects"] += 1
                    self._connected.set()
                    self._cond.notify_all()
                log.debug("link %s: connected", self.name)
            if not self._pump(sock):
                self._drop_connection()
        self._finish()

    def _pump(self, sock: socket.socket) -> bool:
        """Write queued frames until idle-and-closing; False if the connection broke."""
        while True:
            with self._cond:
                while True:
                    if self._broken:
                        return False
                    if self._head is not None:
                        break
                    if self._in_flight:  # a direct write from send() is running
                        self._cond.wait(0.05)
                        continue
                    if self._pending:
                        break
                    if self._closing:
                        return True
                    self._cond.wait(0.05)
                    if not self._pending and not self._in_flight and self._peer_gone(sock):
                        self._broken = True
                if self._peer_gone(sock):
                    # Writing now would succeed into the kernel buffer of a dead
                    # connection and the frames would vanish; reconnect instead.
                    self._broken = True
                    return False
                head, self._head = self._head, None
                batch: list[tuple[int, bytes]] = []
                if head is None:
                    size = 0
                    while self._pending and size < 1 << 18:
                        frame = self._pending.popleft()
                        batch.append(frame)
                        size += len(frame[1]) + FRAME_HEADER.size
                    self._in_flight = len(batch)
                else:
                    # send() wrote the start of this frame; finish it first.
                    batch.append(head[:2])
                    self._in_flight = 1
                self._cond.notify_all()
            data: bytes | memoryview
            if head is not None:
                data = head[2]
            else:
                parts: list[bytes] = []
                for type_id, payload in batch:
                    parts.append(FRAME_HEADER.pack(FRAME_HEADER.size + len(payload), type_id, 0))
                    parts.append(payload)
                data = b"".join(parts)
            try:
                sock.sendall(data)
            except OSError as exc:
                log.warning(
                    "link %s: connection broke (%s); %d frames lost", self.name, exc, len(batch)
                )
                with self._cond:
                    self.stats["lost"] += len(batch)
                    self._in_flight = 0
                    self._broken = True
                    self._cond.notify_all()
                return False
            with self._cond:
                self.stats["sent"] += len(batch)
                self._in_flight = 0
                self._cond.notify_all()

    @staticmethod
    def _peer_gone(sock: socket.socket) -> bool:
        """The peer sends nothing after its hello: readable means EOF or reset."""
        # A non-blocking peek, not select(): select() fails outright on
        # descriptors >= FD_SETSIZE (1024), which busy processes do hold.
        # The socket has no Python timeout here, so recv() does not poll first.
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True

    def _drop_connection(self) -> None:
        with self._cond:
            sock, self._sock = self._sock, None
            self._connected.clear()
            self._broken = False
            head, self._head = self._head, None
            if head is not None:
                # Its start went out, its end never did: the peer delivered
                # nothing of it, so it goes out again first on the next
                # connection.
                self._pending.appendleft(head[:2])
                self._in_flight = 0
                self._cond.notify_all()
        if sock is not None:
            sock.close()

    def _finish(self) -> None:
        """Clean end: half-close, wait for the peer to read everything and close."""
        with self._cond:
            sock, self._sock = self._sock, None
            self._connected.clear()
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5.0)
            while sock.recv(4096):
                pass
        except OSError:
            pass
        finally:
            sock.close()


#: Bytes of a partial frame every connection may hold outside the shared budget.
_RESERVE = 64 << 10
#: The most one recv() reads.
_CHUNK = 256 << 10
#: Frames parsed are handed to the queue once this many payload bytes gathered.
_BATCH_BYTES = 1 << 20
#: accept() errors that mean "no descriptor for the new connection".
_FD_EXHAUSTED = frozenset(
    e for e in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM) if e is not None
)
#: accept() errors of one connection that died in the backlog: skip it.
_ACCEPT_TRANSIENT = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR})
_HELLO_STATE = 0
_FRAMES_STATE = 1
#: Buffered bytes (partial frames, queue) above which, once they are gone,
#: freed memory is handed back to the system (see _trim_memory).
_TRIM_ABOVE = 16 << 20
#: How often connections waiting for budget are checked for a peer's close.
_HUP_CHECK = 0.2
_POLLRDHUP = getattr(select, "POLLRDHUP", 0)
_POLL_GONE = select.POLLHUP | select.POLLERR | _POLLRDHUP


class _Conn:
    """One accepted connection as the event loop sees it."""

    __slots__ = (
        "buf",
        "deadline",
        "events",
        "fd",
        "hup_checked",
        "limit",
        "out",
        "sock",
        "starved",
        "state",
    )

    def __init__(self, sock: socket.socket, hello: bytes, deadline: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.state = _HELLO_STATE
        #: Received bytes not yet parsed: part of the hello or of one frame.
        self.buf = bytearray()
        #: Our hello, until the kernel took all of it.
        self.out = hello
        #: When this connection is dropped unless it makes progress (None: never).
        self.deadline: float | None = deadline
        #: Selector events registered (0: not registered).
        self.events = 0
        self.limit = 0
        #: Not reading because the shared buffer budget is spent.
        self.starved = False
        #: The peer closed while this waited, and what it sent completes the frame.
        self.hup_checked = False

    def buf_capacity_high(self) -> bool:
        """Whether ``buf`` keeps much more memory allocated than it holds."""
        return self.buf.__alloc__() > 2 * _RESERVE

    @property
    def extra(self) -> int:
        """Buffered bytes beyond the per-connection reserve (charged to the budget)."""
        return max(0, len(self.buf) - _RESERVE)


def _load_malloc_trim() -> Callable[[], object]:
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


#: glibc's malloc_trim(0) (a no-op elsewhere): return free heap memory to the system.
_malloc_trim = _load_malloc_trim()


def _inq(conn: _Conn) -> int:
    """Bytes waiting in the kernel's receive buffer of ``conn``."""
    try:
        return int.from_bytes(fcntl.ioctl(conn.fd, termios.FIONREAD, bytes(4)), sys.byteorder)
    except OSError:
        return 0


def _lane_ready(conn: _Conn) -> bool:
    """Whether ``conn`` can finish its frame at once: the rest is in the kernel already."""
    left = _frame_left(conn)
    return left > 0 and _inq(conn) >= left


def _frame_left(conn: _Conn) -> int:
    """Bytes still missing from the partial frame in ``conn.buf`` (0 if unknown)."""
    if conn.state != _FRAMES_STATE or len(conn.buf) < FRAME_HEADER.size:
        return 0
    return max(0, int(FRAME_HEADER.unpack_from(conn.buf)[0]) - len(conn.buf))


class SocketInbound:
    """Listens on a Unix path or a TCP address and receives frames from links.

    The socket is bound in the constructor (so the address is reserved and
    peers may connect right away; they are accepted once :meth:`start` or
    :meth:`poll` runs).  ``address`` holds the bound address (the real port if
    0 was asked for).  Errors of single connections (a schema mismatch, a bad
    frame, a deadline missed) end that connection only; they go to
    ``on_error`` (default: a log warning, rate-limited) and to :attr:`errors`.

    One thread serves every connection with a selector (epoll where there is
    one), so hostile peers cost descriptors and small buffers, not threads:

    * ``handshake_timeout``: a peer must complete its hello within this many
      seconds of being accepted; ``frame_timeout``: once the first byte of a
      frame arrived, the whole frame must arrive within this many seconds;
      ``idle_timeout`` (default None, off): a connection that sends nothing
      for this long is closed (an idle :class:`SocketLink` reconnects by
      itself; over TCP a frame sent at the very moment of the close can be
      lost and is not counted, so keep it well above the senders' quiet spells).  A peer that misses a deadline is dropped
      and counted in ``stats["timed_out"]``.
    * ``max_connections``: connections beyond it are accepted and closed at
      once (``stats["refused"]``), so the backlog never clogs.
    * Buffers grow as bytes arrive, never from a frame's announced length: a
      header announcing 1 MiB costs nothing until the bytes come.  A frame
      longer than the agreed maximum ends the connection before its payload
      is read (``stats["oversized"]``).  Each connection may buffer 64 KiB of
      a partial frame; beyond that partial frames share ``max_buffered``
      bytes, and a connection that would exceed it waits, unread, until
      others free room (its frame deadline keeps running); waiters resume
      oldest first.  So that partial frames parked by peers that stopped
      sending can never stall everyone, a waiter whose kernel buffer already
      holds the rest of its frame may finish it beyond the budget, one at a
      time (at most one frame over ``max_buffered``).  A waiter is checked
      five times a second for its peer's close: if what the peer sent cannot
      complete the frame, the connection is dropped at once, freeing its
      descriptor and budget.  Once a burst of buffering is over, freed memory
      is handed back to the system (glibc ``malloc_trim``).
    * Frames are handed to a queue (at most ``max_queued`` frames and
      ``max_queued_bytes`` bytes); :meth:`start`'s delivery thread or
      :meth:`poll` drains it.  While it is full no connection is read (and no
      frame deadline runs): back-pressure reaches the senders through TCP.
    * Connection errors are logged at most 10 a second; the rest are counted
      in one ``"N more connection errors not logged"`` line a second later,
      or on :meth:`close`.
    * When accept() fails for want of descriptors (EMFILE, ENFILE), the
      listener closes a spare descriptor, accepts and closes what waits in
      the backlog (refused), and otherwise backs off up to 1 s; it logs once
      per burst (``stats["accept_errors"]``) and keeps serving.
    """

    def __init__(
        self,
        address: SocketAddress,
        *,
        schema: Any = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        max_queued: int = 65536,
        handshake_timeout: float = 5.0,
        frame_timeout: float = 30.0,
        idle_timeout: float | None = None,
        max_connections: int = 1024,
        max_buffered: int = 64 << 20,
        max_queued_bytes: int = 64 << 20,
        backlog: int = 1024,
        on_error: ErrorHook | None = None,
        name: str | None = None,
    ) -> None:
        for label, value in (
            ("handshake_timeout", handshake_timeout),
            ("frame_timeout", frame_timeout),
            ("idle_timeout", idle_timeout),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{label} must be positive, not {value!r}")
        if max_connections < 1 or max_queued < 1:
            raise ValueError("max_connections and max_queued must be at least 1")
        self._schema = schema
        self._digest = _digest_of(schema)
        self._max_payload = max_payload
        self._handshake_timeout = handshake_timeout
        self._frame_timeout = frame_timeout
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._max_buffered = max_buffered
        self._max_queued = max_queued
        self._max_queued_bytes = max_queued_bytes
        self._hello = HELLO.pack(MAGIC, VERSION, max_payload, self._digest)
        self.on_error = on_error
        #: The most recent connection errors (at most 32).
        self.errors: deque[BaseException] = deque(maxlen=32)
        self._unix_path: str | None = None
        sock = _new_socket(address)
        try:
            if isinstance(address, tuple):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
                self.address: SocketAddress = sock.getsockname()[:2]
            else:
                path = os.fspath(address)
                _remove_stale_unix_socket(path)
                sock.bind(path)
                self._unix_path = path
                self.address = path
            sock.listen(backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._listener = sock
        self.name = name or _describe(self.address)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._started = False
        self._deliver: Deliver | None = None
        # Frames received, not yet delivered; guarded by _queue_cond.
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queued_bytes = 0
        self._queue_cond = threading.Condition()
        # Event-loop state, touched by the loop thread only.
        self._conns: dict[int, _Conn] = {}
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._scratch = bytearray(_CHUNK)
        self._extra_total = 0
        # Connections waiting for budget, oldest first (a dict keeps order).
        self._starved: dict[_Conn, None] = {}
        # The one waiting connection allowed past the budget to finish its
        # frame, so that some partial frame always completes (see _on_readable).
        self._lane: _Conn | None = None
        self._hup_check = math.inf
        # The most bytes buffered since memory was last handed back.
        self._trim_peak = 0
        self._trim_check = math.inf
        self._paused_since: float | None = None
        self._next_check = math.inf
        self._batch: list[tuple[int, bytes]] = []
        self._batch_bytes = 0
        self._reserve_fd: int | None = None
        self._listening = False
        self._listen_resume: float | None = None
        self._accept_delay = 0.0
        self._accept_burst = 0
        self._refusing = 0
        self._error_log = LogLimiter(log, self.name, "connection errors")
        #: ``connections`` accepted and handshaken, ``frames`` received,
        #: ``open`` connections now; peers ``refused`` (over
        #: ``max_connections``, or while descriptors ran out), ``timed_out``
        #: (a deadline missed), ``oversized`` (a frame longer than agreed),
        #: ``accept_errors`` (accept() failures, e.g. EMFILE).
        self.stats: dict[str, int] = {
            "connections": 0,
            "frames": 0,
            "open": 0,
            "refused": 0,
            "timed_out": 0,
            "oversized": 0,
            "accept_errors": 0,
        }

    # -- user side ----------------------------------------------------------

    def start(self, deliver: Deliver) -> None:
        """Accept and read connections in a thread; a second thread calls ``deliver``."""
        with self._lock:
            if self._stop.is_set():
                raise BusClosed(f"inbound {self.name} is closed")
            first = self._deliver is None
            self._deliver = deliver
            if first:
                thread = threading.Thread(
                    target=self._delivery_loop, name=f"deliver {self.name}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._start_accepting()

    def poll(self, deliver: Deliver, max_frames: int = 1024) -> int:
        """Deliver up to ``max_frames`` frames received so far, in this thread."""
        self._start_accepting()
        with self._queue_cond:
            batch = self._take(max_frames)
        for type_id, payload in batch:
            deliver(type_id, payload)
        return len(batch)

    def close(self) -> None:
        """Stop accepting, end every connection, remove the Unix socket file."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake()
        with self._queue_cond:
            self._queue_cond.notify_all()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(2.0)
        with self._lock:
            started = self._started
        if not started:
            self._close_loop_resources()
        if self._unix_path is not None:
            try:
                os.unlink(self._unix_path)
            except FileNotFoundError:
                pass
        self._error_log.flush()

    def __enter__(self) -> SocketInbound:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SocketInbound {self.name} connections={self.stats['open']}>"

    # -- queue ----------------------------------------------------------------

    def _take(self, max_frames: int) -> list[tuple[int, bytes]]:
        """Pop up to max_frames queued frames (caller holds _queue_cond)."""
        queue = self._queue
        n = min(max_frames, len(queue))
        batch = [queue.popleft() for _ in range(n)]
        if batch:
            self._queued_bytes -= sum(len(p) for _, p in batch)
            if self._paused_since is not None:
                self._wake()
        return batch

    def _queue_full(self) -> bool:
        return len(self._queue) >= self._max_queued or self._queued_bytes >= self._max_queued_bytes

    def _delivery_loop(self) -> None:
        while True:
            with self._queue_cond:
                while not self._queue and not self._stop.is_set():
                    self._queue_cond.wait()
                if self._stop.is_set():
                    return
                batch = self._take(1024)
                deliver = self._deliver
            for type_id, payload in batch:
                if deliver is None:  # pragma: no cover - start() sets it first
                    break
                try:
                    deliver(type_id, payload)
                except Exception as exc:
                    self._report(exc)

    # -- event loop -------------------------------------------------------------

    def _start_accepting(self) -> None:
        with self._lock:
            if self._started or self._stop.is_set():
                return
            self._started = True
            self._selector = selectors.DefaultSelector()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            self._selector.register(self._listener, selectors.EVENT_READ, "listen")
            self._listening = True
            thread = threading.Thread(target=self._loop, name=f"inbound {self.name}", daemon=True)
            self._threads.append(thread)
        thread.start()

    def _wake(self) -> None:
        wake = self._wake_w
        if wake is not None:
            try:
                wake.send(b"\0")
            except OSError:  # full (a wake-up is pending anyway) or closed
                pass

    def _loop(self) -> None:
        selector = self._selector
        assert selector is not None
        self._reserve_open()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                timeout = self._next_check - now
                if self._listen_resume is not None:
                    timeout = min(timeout, self._listen_resume - now)
                if self._paused_since is not None:
                    timeout = min(timeout, 0.05)
                if self._starved:
                    timeout = min(timeout, self._hup_check - now)
                timeout = min(timeout, self._trim_check - now)
                events = selector.select(None if timeout == math.inf else max(0.0, timeout))
                now = time.monotonic()
                for key, mask in events:
                    data = key.data
                    if data == "wake":
                        try:
                            while self._wake_r is not None and self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                    elif data == "listen":
                        self._accept_ready(now)
                    elif isinstance(data, _Conn) and self._conns.get(data.fd) is data:
                        if mask & selectors.EVENT_WRITE:
                            self._on_writable(data)
                        if mask & selectors.EVENT_READ and self._conns.get(data.fd) is data:
                            self._on_readable(data, now)
                            if self._paused_since is None and self._queue_full():
                                # Full now: the other connections of this
                                # round wait too (no overshoot of the queue).
                                self._flush_batch()
                                self._update_pause(now)
                self._flush_batch()
                self._update_pause(now)
                self._timers(now)
                if self._starved:
                    self._check_waiting_peers(now)
                self._trim_memory(now)
        except Exception:  # pragma: no cover - a bug; keep it visible
            log.exception("%s: event loop failed", self.name)
        finally:
            for conn in list(self._conns.values()):
                self._drop(conn)
            self._flush_batch()
            if self._reserve_fd is not None:
                os.close(self._reserve_fd)
                self._reserve_fd = None
            self._close_loop_resources()

    def _close_loop_resources(self) -> None:
        if self._selector is not None:
            self._selector.close()
        wake_w, self._wake_w = self._wake_w, None
        for sock in (self._wake_r, wake_w, self._listener):
            if sock is not None:
                sock.close()

    def _set_interest(self, conn: _Conn) -> None:
        want = 0
        if conn.out:
            want |= selectors.EVENT_WRITE
        if not conn.starved and not (
            self._paused_since is not None and conn.state == _FRAMES_STATE
        ):
            want |= selectors.EVENT_READ
        if want == conn.events:
            return
        selector = self._selector
        assert selector is not None
        if conn.events == 0:
            selector.register(conn.sock, want, conn)
        elif want == 0:
            selector.unregister(conn.sock)
        else:
            selector.modify(conn.sock, want, conn)
        conn.events = want

    def _set_deadline(self, conn: _Conn, deadline: float | None) -> None:
        conn.deadline = deadline
        if deadline is not None and deadline < self._next_check:
            self._next_check = deadline

    # -- accepting --------------------------------------------------------------

    def _reserve_open(self) -> None:
        if self._reserve_fd is None:
            try:
                self._reserve_fd = os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                self._reserve_fd = None

    def _accept_ready(self, now: float) -> None:
        for _ in range(256):  # then let the connections have a turn
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _ACCEPT_TRANSIENT:
                    continue
                if self._stop.is_set():
                    return
                self._accept_failed(exc, now)
                return
            if self._accept_burst:
                log.warning(
                    "%s: accepting again after %d failed accept() calls",
                    self.name,
                    self._accept_burst,
                )
                self._accept_burst = 0
                self._accept_delay = 0.0
            if len(self._conns) >= self._max_connections:
                self.stats["refused"] += 1
                if not self._refusing:
                    log.warning(
                        "%s: %d connections open; refusing new ones",
                        self.name,
                        len(self._conns),
                    )
                self._refusing += 1
                sock.close()
                continue
            if self._refusing:
                log.info("%s: accepting again (%d refused)", self.name, self._refusing)
                self._refusing = 0
            self._add_conn(sock, now)

    def _accept_failed(self, exc: OSError, now: float) -> None:
        """No descriptor for a new connection (or another accept error): keep serving."""
        self.stats["accept_errors"] += 1
        if not self._accept_burst:
            log.warning("%s: accept failed (%s); shedding new connections", self.name, exc)
        self._accept_burst += 1
        drained = False
        if exc.errno in _FD_EXHAUSTED and self._reserve_fd is not None:
            # Spend the spare descriptor to accept and close what waits, so
            # those peers learn at once instead of hanging in the backlog.
            os.close(self._reserve_fd)
            self._reserve_fd = None
            try:
                for _ in range(4096):
                    sock, _ = self._listener.accept()
                    sock.close()
                    self.stats["refused"] += 1
            except (BlockingIOError, InterruptedError):
                drained = True
            except OSError:
                pass
            self._reserve_open()
            drained = drained and self._reserve_fd is not None
        if drained:
            return
        # Stop watching the listener for a while (it stays readable, and
        # level-triggered polling would spin).
        self._accept_delay = min(max(self._accept_delay * 2, 0.01), 1.0)
        if self._listening:
            assert self._selector is not None
            self._selector.unregister(self._listener)
            self._listening = False
        self._listen_resume = now + self._accept_delay

    def _add_conn(self, sock: socket.socket, now: float) -> None:
        try:
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            return
        conn = _Conn(sock, self._hello, now + self._handshake_timeout)
        self._conns[conn.fd] = conn
        self.stats["open"] = len(self._conns)
        self._set_deadline(conn, conn.deadline)
        self._on_writable(conn)
        if conn.fd in self._conns:
            self._set_interest(conn)

    # -- reading and writing -----------------------------------------------------

    def _on_writable(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._drop(conn, exc)
            return
        conn.out = conn.out[sent:]
        self._set_interest(conn)

    def _on_readable(self, conn: _Conn, now: float) -> None:
        if self._paused_since is not None and conn.state == _FRAMES_STATE:
            return  # the queue is full (events of this round came before)
        room = max(0, _RESERVE - len(conn.buf)) + max(0, self._max_buffered - self._extra_total)
        if conn is self._lane:
            room = max(room, _frame_left(conn))
        if room <= 0 and self._lane is None and _lane_ready(conn):
            self._lane = conn
            room = _frame_left(conn)
        if room <= 0:
            # Wait for budget.  Were every holder of budget waiting, no frame
            # would ever complete (each needs more than is left): the lane
            # lets one waiter at a time finish its frame regardless.
            conn.starved = True
            conn.hup_checked = False
            self._starved[conn] = None
            self._set_interest(conn)
            if self._hup_check == math.inf:
                self._hup_check = now + _HUP_CHECK
            return
        scratch = self._scratch
        try:
            k = conn.sock.recv_into(scratch, min(room, _CHUNK))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, exc)
            return
        if k == 0:
            self._on_eof(conn)
            return
        old_extra = conn.extra
        had_partial = bool(conn.buf) and conn.state == _FRAMES_STATE
        buffered = bool(conn.buf)
        if buffered:
            conn.buf += memoryview(scratch)[:k]
            view = memoryview(conn.buf)
        else:  # the common case: parse straight from the scratch buffer
            view = memoryview(scratch)[:k]
        frames_before = self.stats["frames"]
        try:
            used = self._parse(conn, view)
            if not buffered:
                conn.buf = bytearray(view[used:])
        except (MyceliumError, OSError) as exc:
            view.release()
            self._drop(conn, exc)
            return
        view.release()
        if buffered:
            del conn.buf[:used]
        self._extra_total += conn.extra - old_extra
        if len(conn.buf) <= _RESERVE and conn.buf_capacity_high():
            conn.buf = bytearray(conn.buf)  # give back what a big frame left allocated
        if conn.state == _FRAMES_STATE:
            if conn.buf:
                if not had_partial or self.stats["frames"] != frames_before:
                    self._set_deadline(conn, now + self._frame_timeout)
            elif self._idle_timeout is not None:
                self._set_deadline(conn, now + self._idle_timeout)
            else:
                conn.deadline = None
        if self._starved and self._extra_total < self._max_buffered:
            self._resume_starved()
        if conn is self._lane and len(conn.buf) <= _RESERVE:
            self._lane = None  # its frame is done: the next waiter's turn
            if self._starved:
                self._open_lane()

    def _parse(self, conn: _Conn, view: memoryview) -> int:
        """Take the hello and every complete frame out of ``view``; bytes used."""
        off = 0
        n = len(view)
        if conn.state == _HELLO_STATE:
            if n < HELLO.size:
                return 0
            conn.limit = _check_hello(bytes(view[: HELLO.size]), self._digest, self._max_payload)
            conn.state = _FRAMES_STATE
            conn.deadline = None
            self.stats["connections"] += 1
            off = HELLO.size
        header = FRAME_HEADER
        hsize = header.size
        limit = conn.limit
        batch = self._batch
        try:
            while n - off >= hsize:
                length, type_id, _flags = header.unpack_from(view, off)
                if length < hsize or length - hsize > limit:
                    if length > hsize:
                        self.stats["oversized"] += 1
                    raise TransportError(f"frame length {length} outside {hsize}..{hsize + limit}")
                if type_id == 0:
                    raise TransportError("frame of type 0 (reserved for padding)")
                if n - off < length:
                    break
                batch.append((type_id, bytes(view[off + hsize : off + length])))
                self._batch_bytes += length - hsize
                self.stats["frames"] += 1
                off += length
        finally:
            if len(batch) >= 1024 or self._batch_bytes >= _BATCH_BYTES:
                self._flush_batch()
        return off

    def _on_eof(self, conn: _Conn) -> None:
        got = len(conn.buf)
        if conn.state == _HELLO_STATE:
            if got:
                error = TransportError(
                    f"connection closed inside a record ({got} of {HELLO.size} bytes)"
                )
            else:
                error = TransportError("peer closed the connection during the handshake")
        elif got == 0:
            self._drop(conn)  # a clean end between frames
            return
        elif got < FRAME_HEADER.size:
            error = TransportError(
                f"connection closed inside a record ({got} of {FRAME_HEADER.size} bytes)"
            )
        elif got == FRAME_HEADER.size:
            error = TransportError("connection closed between a frame header and payload")
        else:
            length = FRAME_HEADER.unpack_from(conn.buf)[0]
            error = TransportError(
                f"connection closed inside a record ({got - FRAME_HEADER.size} of "
                f"{length - FRAME_HEADER.size} bytes)"
            )
        self._drop(conn, error)

    def _drop(self, conn: _Conn, error: BaseException | None = None) -> None:
        if self._conns.pop(conn.fd, None) is None:
            return
        if conn.events:
            assert self._selector is not None
            try:
                self._selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.events = 0
        self._extra_total -= conn.extra
        conn.buf = bytearray()
        self._starved.pop(conn, None)
        if self._lane is conn:
            self._lane = None
        conn.sock.close()
        self.stats["open"] = len(self._conns)
        if error is not None and not self._stop.is_set():
            self._report(error)
        if self._stop.is_set():
            return
        if self._starved and self._extra_total < self._max_buffered:
            self._resume_starved()
        if self._starved and self._lane is None:
            self._open_lane()

    def _resume_starved(self) -> None:
        """Let the oldest waiters read again, as many as the free budget may serve."""
        free = self._max_buffered - self._extra_total
        while self._starved and free > 0:
            conn = next(iter(self._starved))
            del self._starved[conn]
            conn.starved = False
            if conn.fd in self._conns:
                self._set_interest(conn)
                free -= max(1, min(_CHUNK, _frame_left(conn)))
        if not self._starved:
            self._hup_check = math.inf

    def _open_lane(self) -> None:
        """Let the oldest waiter whose peer is sending finish its frame beyond the budget.

        Only a waiter whose kernel buffer already holds the rest of its frame
        gets the lane, so a peer that stopped sending cannot hold it; the lane
        costs at most one frame beyond the budget, for one read.
        """
        for conn in self._starved:
            if _lane_ready(conn):
                del self._starved[conn]
                conn.starved = False
                self._lane = conn
                self._set_interest(conn)
                break
        if not self._starved:
            self._hup_check = math.inf

    def _trim_memory(self, now: float) -> None:
        """Once a burst of buffering is over, give the freed memory back.

        The allocator keeps freed buffers for reuse, so a flood of big frames
        would leave the process at its peak size for good; once what is
        buffered fell below a quarter of the peak, ask it to return them.
        """
        buffered = self._extra_total + self._queued_bytes + _RESERVE * len(self._conns)
        if buffered > self._trim_peak:
            self._trim_peak = buffered
            if buffered >= _TRIM_ABOVE and self._trim_check == math.inf:
                self._trim_check = now + 1.0
        if now < self._trim_check:
            return
        if buffered * 4 > self._trim_peak:
            self._trim_check = now + 1.0
            return
        self._trim_peak = buffered
        self._trim_check = math.inf
        _malloc_trim()

    def _check_waiting_peers(self, now: float) -> None:
        """Drop waiting connections whose peer closed and whose frame cannot complete.

        A connection waiting for budget is not read, so its EOF or reset
        would otherwise go unseen until its frame deadline, holding its
        descriptor and its share of the budget all that time.
        """
        if now < self._hup_check:
            return
        self._hup_check = now + _HUP_CHECK if self._starved else math.inf
        if self._lane is None:
            self._open_lane()
        poller = select.poll()
        for waiting in self._starved:
            if not waiting.hup_checked:
                poller.register(waiting.fd, _POLL_GONE)
        for fd, revents in poller.poll(0):
            found = self._conns.get(fd)
            if found is None or found not in self._starved:
                continue
            conn = found
            if revents & select.POLLERR:
                self._drop(conn, TransportError("connection reset while waiting for buffer room"))
                continue
            inq = _inq(conn)
            left = _frame_left(conn)
            if inq < left:
                length = FRAME_HEADER.unpack_from(conn.buf)[0]
                got = len(conn.buf) + inq - FRAME_HEADER.size
                self._drop(
                    conn,
                    TransportError(
                        f"connection closed inside a record ({got} of "
                        f"{length - FRAME_HEADER.size} bytes)"
                    ),
                )
            else:
                conn.hup_checked = True  # what it sent completes the frame: keep it

    # -- hand-over, back-pressure, deadlines ---------------------------------------

    def _flush_batch(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        nbytes, self._batch_bytes = self._batch_bytes, 0
        with self._queue_cond:
            self._queue.extend(batch)
            self._queued_bytes += nbytes
            self._queue_cond.notify()

    def _update_pause(self, now: float) -> None:
        with self._queue_cond:
            full = self._queue_full()
        if full and self._paused_since is None:
            self._paused_since = now
        elif not full and self._paused_since is not None:
            # The wait was this side's: give the frame deadlines that time back.
            shift = now - self._paused_since
            self._paused_since = None
            for conn in self._conns.values():
                if conn.state == _FRAMES_STATE and conn.buf and conn.deadline is not None:
                    conn.deadline += shift
            self._next_check = now
        else:
            return
        for conn in list(self._conns.values()):
            if conn.state == _FRAMES_STATE:
                self._set_interest(conn)

    def _timers(self, now: float) -> None:
        if self._listen_resume is not None and now >= self._listen_resume:
            self._listen_resume = None
            if not self._listening and not self._stop.is_set():
                assert self._selector is not None
                self._selector.register(self._listener, selectors.EVENT_READ, "listen")
                self._listening = True
        if now < self._next_check:
            return
        paused = self._paused_since is not None
        next_check = math.inf
        for conn in list(self._conns.values()):
            deadline = conn.deadline
            if deadline is None:
                continue
            if paused and conn.state == _FRAMES_STATE and conn.buf:
                continue  # frozen while this side does not read; checked on resume
            if deadline > now:
                next_check = min(next_check, deadline)
                continue
            if conn.state == _FRAMES_STATE and not conn.buf and _has_data(conn.sock):
                # Not idle after all: a frame arrived and waits to be read.
                # Closing now would drop it unseen (the sender counts it sent).
                conn.deadline = now + (self._idle_timeout or 0.0)
                next_check = min(next_check, conn.deadline)
                continue
            self.stats["timed_out"] += 1
            if conn.state == _HELLO_STATE:
                what = f"no handshake within {self._handshake_timeout} s"
            elif conn.buf:
                what = f"frame not completed within {self._frame_timeout} s"
            else:
                what = f"idle for {self._idle_timeout} s"
            self._drop(conn, TransportError(f"{what}; connection dropped"))
        self._next_check = next_check

    def _report(self, exc: BaseException) -> None:
        self.errors.append(exc)
        if self.on_error is not None:
            self.on_error(exc)
            return
        # A flood of bad peers must not flood the log: 10 warnings a second,
        # the rest summarised a second later (or on close).
        self._error_log.log("%s: connection ended: %s", self.name, exc)


def _has_data(sock: socket.socket) -> bool:
    """Whether bytes (or an EOF) wait to be read on a non-blocking socket."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    return True


def _remove_stale_unix_socket(path: str) -> None:
    """Unlink a socket file nobody listens on any more; refuse to clobber others."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    except OSError:
        return
    finally:
        probe.close()
    raise OSError(f"{path}: another process is listening there")
