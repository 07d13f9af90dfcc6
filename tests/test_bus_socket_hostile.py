"""Hostile peers against the socket bridge: slow drips, floods, descriptor
exhaustion, and a link living among thousands of descriptors.

Everything runs on loopback (127.0.0.1 or Unix sockets) with short deadlines;
servers under attack run in a subprocess so their memory and threads can be
measured with psutil, and every process and socket is reaped at teardown.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bus_support import wait_for

from mycelium_shm.bus import MessageBus, SocketInbound, SocketLink
from mycelium_shm.bus.transports.socket import FRAME_HEADER, HELLO, handshake

psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20

# A bus bridge server in its own process.  argv[1] is JSON: "nofile" (a soft
# RLIMIT_NOFILE to set first, or null) and "options" for SocketInbound.  It
# prints its address, then answers "stats" lines on stdin with a JSON line and
# exits on "quit" or end of input.
SERVER = r"""
import json, resource, sys, threading
args = json.loads(sys.argv[1])
if args["nofile"]:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (args["nofile"], hard))
from mycelium_shm.bus.transports.socket import SocketInbound
received = []
inbound = SocketInbound(("127.0.0.1", 0), **args["options"])
inbound.start(lambda type_id, payload: received.append(payload.decode()))
print(json.dumps({"address": list(inbound.address)}), flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    print(json.dumps({
        "stats": dict(inbound.stats),
        "received": list(received),
        "threads": threading.active_count(),
    }), flush=True)
inbound.close()
"""


class Server:
    """A subprocess running SERVER; ``query()`` returns its stats."""

    def __init__(self, options: dict[str, Any], nofile: int | None = None) -> None:
        # stderr to a file: an unread pipe could fill up and stall the server.
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, json.dumps({"nofile": nofile, "options": options})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"server did not start: {self.log()}")
        host, port = json.loads(line)["address"]
        self.address = (host, port)
        self.ps = psutil.Process(self.proc.pid)

    def query(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"server died: {self.log()}")
        return json.loads(line)

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def wait_stats(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> bool:
        return wait_for(lambda: predicate(self.query()), timeout)

    def rss_mib(self) -> float:
        return self.ps.memory_info().rss / MIB

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.communicate("quit\n", timeout=10)
            except (subprocess.TimeoutExpired, OSError, ValueError):
                self.proc.kill()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            if stream is not None and not stream.closed:
                stream.close()


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(options: dict[str, Any], nofile: int | None = None) -> Server:
        server = Server(options, nofile)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    """Client sockets a test opens; all closed at teardown."""
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


@pytest.fixture
def nofile() -> Iterator[Callable[[int], None]]:
    """Raise this process's soft descriptor limit for the test; restored after."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)

    def need(n: int) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft >= n:
            return
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip(f"needs {n} descriptors, hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))

    yield need
    resource.setrlimit(resource.RLIMIT_NOFILE, old)


def _closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """Whether the peer closed ``sock`` within ``timeout`` s (EOF or reset)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        return False
    except OSError:
        pass
    return True


# -- deadlines -----------------------------------------------------------------


def test_slow_drip_in_the_handshake_is_dropped(closing, sockets, tmp_path):
    """A peer dripping its hello a byte at a time is dropped at the handshake deadline."""
    path = str(tmp_path / "drip.sock")
    inbound = closing(SocketInbound(path, handshake_timeout=0.5, on_error=lambda e: None))
    inbound.start(lambda t, p: None)
    drip = socket.socket(socket.AF_UNIX)
    sockets.append(drip)
    drip.connect(path)
    assert len(drip.recv(HELLO.size)) == HELLO.size  # the server's hello
    hello = HELLO.pack(b"MYCELBUS", 1, 1 << 20, bytes(32))
    start = time.monotonic()
    dropped_after = None
    for byte in hello[:-1]:
        try:
            drip.send(bytes([byte]))
        except OSError:
            dropped_after = time.monotonic() - start
            break
        time.sleep(0.1)
        if wait_for(lambda: inbound.stats["timed_out"] == 1, timeout=0):
            dropped_after = time.monotonic() - start
            break
    assert dropped_after is not None and 0.4 <= dropped_after < 2.0
    assert _closed_by_peer(drip, 2.0)
    assert inbound.stats["timed_out"] == 1 and inbound.stats["open"] == 0
    assert "handshake" in str(inbound.errors[-1])


def test_slow_drip_inside_a_frame_is_dropped_while_others_are_served(closing, sockets, tmp_path):
    """Once a frame's first byte arrived, the whole frame must come within frame_timeout."""
    path = str(tmp_path / "drip.sock")
    inbound = closing(
        SocketInbound(path, handshake_timeout=5, frame_timeout=0.8, on_error=lambda e: None)
    )
    received: list[bytes] = []
    inbound.start(lambda t, p: received.append(p))
    link = closing(SocketLink(path))
    drip = socket.socket(socket.AF_UNIX)
    sockets.append(drip)
    drip.connect(path)
    handshake(drip, None, timeout=5)
    # Idle after the handshake costs nothing and is not timed out (no idle_timeout).
    time.sleep(1.0)
    assert inbound.stats["timed_out"] == 0
    frame = FRAME_HEADER.pack(FRAME_HEADER.size + 100, 1, 0) + bytes(100)
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < 3.0 and inbound.stats["timed_out"] == 0:
        try:
            drip.send(frame[sent : sent + 1])
        except OSError:
            break
        sent += 1
        link.send(2, b"legit %d" % sent)
        time.sleep(0.1)
    elapsed = time.monotonic() - start
    assert wait_for(lambda: inbound.stats["timed_out"] == 1)
    assert 0.7 <= elapsed < 2.0 and sent < len(frame)
    assert _closed_by_peer(drip, 2.0)
    assert "frame not completed" in str(inbound.errors[-1])
    assert wait_for(lambda: len(received) == sent)  # the link was served throughout
    assert received[-1] == b"legit %d" % sent
    assert link.stats["connects"] == 1


def test_idle_timeout_is_optional_and_links_reconnect(closing, tmp_path):
    """With idle_timeout set, an idle link is dropped and reconnects without loss."""
    path = str(tmp_path / "idle.sock")
    inbound = closing(SocketInbound(path, idle_timeout=0.3, on_error=lambda e: None))
    received: list[bytes] = []
    inbound.start(lambda t, p: received.append(p))
    link = closing(SocketLink(path, backoff_max=0.05))
    link.send(1, b"one")
    assert wait_for(lambda: received == [b"one"])
    assert wait_for(lambda: inbound.stats["timed_out"] == 1)
    link.send(1, b"two")
    assert wait_for(lambda: received == [b"one", b"two"])
    assert link.stats["lost"] == 0


# -- caps ----------------------------------------------------------------------


def test_connections_beyond_the_cap_are_refused_and_counted(closing, sockets, tmp_path):
    """Over max_connections, peers are accepted and closed at once; room returns."""
    path = str(tmp_path / "cap.sock")
    inbound = closing(SocketInbound(path, max_connections=4, on_error=lambda e: None))
    received: list[bytes] = []
    inbound.start(lambda t, p: received.append(p))
    held = []
    for _ in range(4):
        sock = socket.socket(socket.AF_UNIX)
        sockets.append(sock)
        sock.connect(path)
        held.append(sock)
    assert wait_for(lambda: inbound.stats["open"] == 4)
    extra = []
    for _ in range(3):
        sock = socket.socket(socket.AF_UNIX)
        sockets.append(sock)
        sock.connect(path)
        extra.append(sock)
    for sock in extra:
        assert _closed_by_peer(sock, 2.0)
    assert inbound.stats["refused"] == 3 and inbound.stats["open"] == 4
    for sock in held:
        sock.close()
    assert wait_for(lambda: inbound.stats["open"] == 0)
    link = closing(SocketLink(path))
    link.send(1, b"after")
    assert wait_for(lambda: received == [b"after"])


def test_an_oversized_announcement_is_refused_before_any_payload(closing, sockets, tmp_path):
    """A header announcing more than the agreed maximum ends the connection, counted."""
    path = str(tmp_path / "big.sock")
    inbound = closing(SocketInbound(path, max_payload=1024, on_error=lambda e: None))
    inbound.start(lambda t, p: None)
    raw = socket.socket(socket.AF_UNIX)
    sockets.append(raw)
    raw.connect(path)
    handshake(raw, None, max_payload=1 << 30, timeout=5)
    raw.sendall(FRAME_HEADER.pack(FRAME_HEADER.size + (1 << 30), 1, 0))
    assert _closed_by_peer(raw, 2.0)
    assert inbound.stats["oversized"] == 1


def test_a_flood_of_big_announcements_costs_little(servers, sockets, closing, nofile):
    """1,500 connections each announcing a 1 MiB frame: RSS stays low, threads stay
    few, and a legitimate client's messages keep arriving while the flood is open."""
    flood_size = 1500
    nofile(flood_size + 512)
    server = servers({"max_connections": flood_size + 100})
    base_rss = server.rss_mib()
    link = closing(SocketLink(server.address, backoff_max=0.05))
    link.send(1, b"before")
    assert server.wait_stats(lambda s: s["received"] == ["before"])
    announce = FRAME_HEADER.pack(FRAME_HEADER.size + MIB, 1, 0)
    for i in range(flood_size):
        sock = socket.create_connection(server.address, timeout=5)
        sockets.append(sock)
        handshake(sock, None, timeout=5)
        sock.sendall(announce + b"x")  # the frame has begun: its deadline runs
        if i % 250 == 0:
            link.send(1, b"during %d" % i)
    assert server.wait_stats(lambda s: s["stats"]["open"] == flood_size + 1, timeout=20)
    for i in range(20):
        link.send(1, b"flood open %d" % i)
    expected = ["before"] + [f"during {i}" for i in range(0, flood_size, 250)]
    expected += [f"flood open {i}" for i in range(20)]
    assert server.wait_stats(lambda s: s["received"] == expected, timeout=20)
    state = server.query()
    rss = server.rss_mib()
    threads = server.ps.num_threads()
    print(
        f"\nflood of {flood_size} x 1 MiB announcements: server RSS {base_rss:.1f} -> "
        f"{rss:.1f} MiB, {threads} threads, stats {state['stats']}"
    )
    assert rss < 200
    assert threads <= 4 and state["threads"] <= 4
    assert state["stats"]["refused"] == 0 and state["stats"]["timed_out"] == 0
    assert link.stats["connects"] == 1
    for sock in sockets:
        sock.close()
    sockets.clear()
    assert server.wait_stats(lambda s: s["stats"]["open"] == 1, timeout=20)


# -- descriptors -----------------------------------------------------------------


def test_accept_survives_running_out_of_descriptors(servers, sockets, closing):
    """At RLIMIT_NOFILE the listener sheds new peers and keeps serving; once the
    flood is gone a new client is accepted and delivers."""
    server = servers({"max_connections": 10_000, "handshake_timeout": 60}, nofile=64)
    flood = []
    for _ in range(150):
        sock = socket.create_connection(server.address, timeout=5)
        sockets.append(sock)
        flood.append(sock)
    assert server.wait_stats(lambda s: s["stats"]["accept_errors"] >= 1)
    state = server.query()
    assert state["stats"]["open"] < 64
    assert state["stats"]["open"] + state["stats"]["refused"] >= 100
    # Peers that could not be taken were closed, not left hanging.
    assert sum(_closed_by_peer(sock, 0.01) for sock in flood) >= 50
    for sock in flood:
        sock.close()
    sockets.clear()
    assert server.wait_stats(lambda s: s["stats"]["open"] == 0)
    link = closing(SocketLink(server.address, backoff_max=0.05))
    link.send(1, b"after the flood")
    assert server.wait_stats(lambda s: s["received"] == ["after the flood"])
    print(f"\nEMFILE at 64 descriptors survived: stats {server.query()['stats']}")
    assert server.proc.poll() is None


def test_link_works_among_2000_open_descriptors(closing, nofile, tmp_path):
    """SocketLink and SocketInbound with descriptors above FD_SETSIZE (1024)."""
    nofile(4096)
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(2000)]
    try:
        path = str(tmp_path / "many.sock")
        received: list[bytes] = []
        first = SocketInbound(path)
        first.start(lambda t, p: received.append(p))
        link = closing(SocketLink(path, backoff_max=0.05))
        assert link.wait_connected(5)
        assert link._sock is not None and link._sock.fileno() > 1024
        for i in range(100):
            link.send(1, b"%d" % i)
        assert link.flush(5)
        assert wait_for(lambda: len(received) == 100)
        # The liveness check that used select() notices the listener going away.
        first.close()
        assert wait_for(lambda: not link.connected)
        second = closing(SocketInbound(path))
        second.start(lambda t, p: received.append(p))
        link.send(1, b"again")
        assert wait_for(lambda: received[-1:] == [b"again"])
        assert link.stats["connects"] == 2 and link.stats["lost"] == 0
    finally:
        for fd in fillers:
            os.close(fd)


# -- buffer budget ---------------------------------------------------------------


def test_squatted_budget_does_not_stall_an_honest_stream(closing, sockets, tmp_path):
    """Connections parking partial frames over the per-connection reserve spend
    the shared budget: an honest link's big frames still go through at once, and
    when the squatters close, their descriptors and budget come back at once
    (not at their frame deadline)."""
    path = str(tmp_path / "squat.sock")
    inbound = closing(
        SocketInbound(path, max_buffered=1 * MIB, frame_timeout=20, on_error=lambda e: None)
    )
    received: list[bytes] = []
    inbound.start(lambda t, p: received.append(p))
    announce = FRAME_HEADER.pack(FRAME_HEADER.size + 256 * 1024, 1, 0)
    squatters = []
    for _ in range(30):  # 30 x 136 KiB beyond the reserve: four times the budget
        sock = socket.socket(socket.AF_UNIX)
        sockets.append(sock)
        sock.connect(path)
        handshake(sock, None, timeout=5)
        sock.sendall(announce + bytes(200 * 1024))
        squatters.append(sock)
    assert wait_for(lambda: inbound.stats["open"] == 30)
    time.sleep(0.3)  # let the squatters spend the budget
    link = closing(SocketLink(path))
    payloads = [bytes([i]) * 200_000 for i in range(10)]
    start = time.monotonic()
    for payload in payloads:
        link.send(2, payload)
    assert wait_for(lambda: len(received) == len(payloads), timeout=5), (
        f"{len(received)} of {len(payloads)} honest frames after 5 s"
    )
    assert received == payloads
    print(f"\nhonest 10 x 200 KB through a squatted budget in {time.monotonic() - start:.2f} s")
    for sock in squatters:
        sock.close()
    sockets.clear()
    start = time.monotonic()
    assert wait_for(lambda: inbound.stats["open"] == 1, timeout=2), inbound.stats
    assert inbound.stats["timed_out"] == 0
    assert time.monotonic() - start < 1.0
    link.send(2, b"after")
    assert wait_for(lambda: received[-1:] == [b"after"])


# -- logging under floods ----------------------------------------------------------


def _bad_hellos(path: str, count: int) -> None:
    for _ in range(count):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            sock.sendall(b"NOTABUS!" + bytes(HELLO.size - 8))
            _closed_by_peer(sock, 2.0)


def test_connection_error_summary_is_flushed_by_a_timer_and_on_close(closing, tmp_path, caplog):
    """Over 10 connection errors a second, the rest are summarised even if no
    further error comes: a second later, or when the endpoint closes."""
    caplog.set_level(logging.WARNING, logger="mycelium_shm.bus.socket")
    path = str(tmp_path / "bad.sock")
    inbound = closing(SocketInbound(path))
    inbound.start(lambda t, p: None)
    _bad_hellos(path, 25)
    assert wait_for(lambda: len(inbound.errors) == 25)
    ended = [r for r in caplog.records if "connection ended" in r.getMessage()]
    assert 10 <= len(ended) < 25
    assert wait_for(lambda: "not logged" in caplog.text, timeout=2.5)
    summaries = [r.getMessage() for r in caplog.records if "not logged" in r.getMessage()]
    assert sum(int(m.split(": ")[-1].split()[0]) for m in summaries) == 25 - len(ended)
    caplog.clear()
    path2 = str(tmp_path / "bad2.sock")
    other = SocketInbound(path2)
    other.start(lambda t, p: None)
    _bad_hellos(path2, 25)
    assert wait_for(lambda: len(other.errors) == 25)
    other.close()
    ended = [r for r in caplog.records if "connection ended" in r.getMessage()]
    summaries = [r.getMessage() for r in caplog.records if "not logged" in r.getMessage()]
    assert len(ended) < 25 and summaries
    assert sum(int(m.split(": ")[-1].split()[0]) for m in summaries) == 25 - len(ended)


def test_undecodable_frames_are_logged_at_a_bounded_rate(schema, closing, tmp_path, caplog):
    """5,000 frames that do not decode: the first is logged with its traceback,
    then a few lines a second, and the rest as "N more undecodable frames not
    logged" summaries (also on close); every one is counted."""
    caplog.set_level(logging.WARNING, logger="mycelium_shm.bus")
    path = str(tmp_path / "undecodable.sock")
    bus = closing(MessageBus(schema, name="victim"))
    bus.add_inbound(SocketInbound(path, schema=schema))
    bus.subscribe("MarketTick", lambda msg: None)
    n = 5000
    start = time.monotonic()
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(path)
        handshake(raw, schema, timeout=5)
        frame = FRAME_HEADER.pack(FRAME_HEADER.size + 5, 1, 0) + b"\xff" * 5
        raw.sendall(frame * n)
        assert wait_for(lambda: bus.stats["decode_errors"] == n, timeout=10)
    elapsed = time.monotonic() - start

    def lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "did not decode" in r.getMessage()]

    logged = lines()
    assert logged[0].exc_info is not None
    assert all(r.exc_info is None for r in logged[1:])
    assert len(logged) <= 10 * (elapsed + 2), (len(logged), elapsed)
    time.sleep(1.2)  # no more bad frames: the pending summary comes by itself
    with socket.socket(socket.AF_UNIX) as raw:  # then a short burst, and close
        raw.connect(path)
        handshake(raw, schema, timeout=5)
        raw.sendall(frame * 100)
        assert wait_for(lambda: bus.stats["decode_errors"] == n + 100, timeout=10)
    bus.close()
    summaries = [
        r.getMessage() for r in caplog.records if "undecodable frames not" in r.getMessage()
    ]
    assert summaries
    assert all(str(path) in m for m in summaries)  # per endpoint
    suppressed = sum(int(m.split(": ")[-1].split()[0]) for m in summaries)
    assert len(lines()) + suppressed == n + 100
    assert len(caplog.records) < 200
