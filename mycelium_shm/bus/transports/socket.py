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
thread writes them.  It connects lazily, reconnects after a failure with
exponential backoff, and keeps queued frames across reconnections.  Frames
written into a connection that then breaks may be lost; they are counted in
``stats["lost"]`` and logged, never dropped silently.  :meth:`SocketLink.close`
is the clean shutdown: it sends everything queued, half-closes the socket and
waits for the peer to read to the end and close, so nothing is lost.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import stat
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

from mycelium_shm.errors import Full, MyceliumError, SchemaMismatch

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
    then raising :class:`Full`).  A schema mismatch is permanent: the link
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
        sent = False
        try:
            if not self._peer_gone(sock):
                sock.sendall(
                    FRAME_HEADER.pack(FRAME_HEADER.size + len(payload), type_id, 0) + payload
                )
                sent = True
        except OSError as exc:
            log.info("link %s: connection broke (%s); reconnecting", self.name, exc)
        with self._cond:
            self._in_flight = 0
            if sent:
                self.stats["sent"] += 1
            else:
                # Not (completely) written: the peer never delivers a partial
                # frame, so sending it again after reconnecting loses nothing.
                self._pending.appendleft((type_id, payload))
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
                batch: list[tuple[int, bytes]] = []
                size = 0
                while self._pending and size < 1 << 18:
                    frame = self._pending.popleft()
                    batch.append(frame)
                    size += len(frame[1]) + FRAME_HEADER.size
                self._in_flight = len(batch)
                self._cond.notify_all()
            parts: list[bytes] = []
            for type_id, payload in batch:
                parts.append(FRAME_HEADER.pack(FRAME_HEADER.size + len(payload), type_id, 0))
                parts.append(payload)
            try:
                sock.sendall(b"".join(parts))
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
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _drop_connection(self) -> None:
        with self._cond:
            sock, self._sock = self._sock, None
            self._connected.clear()
            self._broken = False
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


class SocketInbound:
    """Listens on a Unix path or a TCP address and receives frames from links.

    The socket is bound in the constructor (so the address is reserved and
    peers may connect right away; they are accepted once :meth:`start` or
    :meth:`poll` runs).  ``address`` holds the bound address (the real port if
    0 was asked for).  Errors of single connections (a schema mismatch, a bad
    frame) end that connection only; they go to ``on_error`` (default: a log
    warning) and to :attr:`errors`.
    """

    def __init__(
        self,
        address: SocketAddress,
        *,
        schema: Any = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        max_queued: int = 65536,
        handshake_timeout: float = 5.0,
        on_error: ErrorHook | None = None,
        name: str | None = None,
    ) -> None:
        self._schema = schema
        _digest_of(schema)
        self._max_payload = max_payload
        self._handshake_timeout = handshake_timeout
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
            sock.listen(64)
            sock.settimeout(0.05)
        except BaseException:
            sock.close()
            raise
        self._listener = sock
        self.name = name or _describe(self.address)
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._deliver: Deliver | None = None
        self._queue: deque[tuple[int, bytes]] = deque()
        self._queue_room = threading.Condition()
        self._max_queued = max_queued
        self._started = False
        #: ``connections`` accepted and handshaken, ``frames`` received.
        self.stats: dict[str, int] = {"connections": 0, "frames": 0}

    def start(self, deliver: Deliver) -> None:
        """Accept connections in a thread; each connection's thread calls ``deliver``."""
        self._deliver = deliver
        self._start_accepting()

    def poll(self, deliver: Deliver, max_frames: int = 1024) -> int:
        """Deliver up to ``max_frames`` frames received so far, in this thread."""
        self._start_accepting()
        n = 0
        while n < max_frames:
            try:
                type_id, payload = self._queue.popleft()
            except IndexError:
                break
            n += 1
            deliver(type_id, payload)
        if n:
            with self._queue_room:
                self._queue_room.notify_all()
        return n

    def _start_accepting(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            thread = threading.Thread(
                target=self._accept_loop, name=f"accept {self.name}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            conn.settimeout(None)
            if conn.family != socket.AF_UNIX:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return
                self._conns.add(conn)
                thread = threading.Thread(
                    target=self._serve, args=(conn,), name=f"conn {self.name}", daemon=True
                )
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            limit = handshake(
                conn, self._schema, max_payload=self._max_payload, timeout=self._handshake_timeout
            )
            self.stats["connections"] += 1
            header = FRAME_HEADER
            while True:
                head = _recv_exact(conn, header.size)
                if head is None:
                    return
                length, type_id, _flags = header.unpack(head)
                if length < header.size or length - header.size > limit:
                    raise TransportError(
                        f"frame length {length} outside {header.size}..{header.size + limit}"
                    )
                if type_id == 0:
                    raise TransportError("frame of type 0 (reserved for padding)")
                payload = _recv_exact(conn, length - header.size)
                if payload is None:
                    raise TransportError("connection closed between a frame header and payload")
                self.stats["frames"] += 1
                self._hand_over(type_id, payload)
        except (MyceliumError, OSError) as exc:
            if not self._stop.is_set():
                self._report(exc)
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _hand_over(self, type_id: int, payload: bytes) -> None:
        deliver = self._deliver
        if deliver is not None:
            deliver(type_id, payload)
            return
        if len(self._queue) >= self._max_queued:
            with self._queue_room:
                while len(self._queue) >= self._max_queued and not self._stop.is_set():
                    self._queue_room.wait(0.05)
        self._queue.append((type_id, payload))

    def _report(self, exc: BaseException) -> None:
        self.errors.append(exc)
        if self.on_error is not None:
            self.on_error(exc)
        else:
            log.warning("%s: connection ended: %s", self.name, exc)

    def close(self) -> None:
        """Stop accepting, end every connection, remove the Unix socket file."""
        if self._stop.is_set():
            return
        self._stop.set()
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(2.0)
        self._listener.close()
        if self._unix_path is not None:
            try:
                os.unlink(self._unix_path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> SocketInbound:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SocketInbound {self.name} connections={len(self._conns)}>"


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
