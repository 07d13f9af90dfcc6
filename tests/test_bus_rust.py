"""The Rust bus (bindings/rust/src/bus) against the Python bus, across processes.

Drives the Rust probe node ``bindings/rust/examples/bus_probe.rs`` (services
``send`` and ``recv``, described in tests/bus_probe.py) with node plans
written here, the JSON the launcher hands to non-Python nodes.  For each
transport (shm, Unix, TCP): Python publishes and Rust receives every tick in
order with every field intact; Rust publishes and Python receives every tick
in order; a schema mismatch is refused in both directions, on both sides
where the transport lets a side see it (over shm the channel carries the
reader's digest and the writer is refused; over sockets both ends of the
handshake say ``SchemaMismatch``); a panicking Rust service is restarted and
the stream goes on.  Every node gets SIGTERM and must exit 0; every node is
reaped, every channel unlinked, socket files live in ``tmp_path``.  Needs
cargo; without it these tests fail, never skip.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bus_probe import expected_tick
from bus_support import wait_for
from lang_build import rust_example

from mycelium_shm import SchemaMismatch
from mycelium_shm.bus import MessageBus, ShmInbound, ShmLink, SocketInbound, SocketLink
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent
CRATE = ROOT / "bindings" / "rust"
TRADING = Schema.load(ROOT / "schemas" / "trading.toml")
OTHER = Schema.load(ROOT / "tests" / "vectors" / "schema.toml")
TRANSPORTS = ["shm", "unix", "tcp"]
TIMEOUT = 60.0
N = 2000


@pytest.fixture(scope="module")
def probe() -> Path:
    """The bus_probe example, built in release mode."""
    return rust_example("bus_probe")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Endpoint:
    """One inbound endpoint of a transport, as plan JSON and as Python objects."""

    def __init__(self, transport: str, tmp: Path, channel: str) -> None:
        self.transport = transport
        self.channel = channel
        self.path = tmp / "in.sock"
        self.port = free_port() if transport == "tcp" else 0

    def plan(self) -> dict[str, Any]:
        if self.transport == "shm":
            return {"kind": "shm", "name": self.channel, "capacity": 1 << 20}
        if self.transport == "unix":
            return {"kind": "unix", "path": str(self.path)}
        return {"kind": "tcp", "host": "127.0.0.1", "port": self.port}

    def inbound(self, schema: Schema) -> Any:
        if self.transport == "shm":
            return ShmInbound(self.channel, schema=schema, capacity=1 << 20)
        if self.transport == "unix":
            return SocketInbound(str(self.path), schema=schema)
        return SocketInbound(("127.0.0.1", self.port), schema=schema)

    def link(self, schema: Schema) -> Any:
        if self.transport == "shm":
            return ShmLink(self.channel, schema=schema)
        if self.transport == "unix":
            return SocketLink(str(self.path), schema=schema)
        return SocketLink(("127.0.0.1", self.port), schema=schema)


class Nodes:
    """Starts Rust probe nodes from plans; stops (SIGTERM) and reaps them all."""

    def __init__(self, exe: Path, tmp: Path) -> None:
        self.exe = exe
        self.tmp = tmp
        self.started: list[subprocess.Popen[str]] = []

    def start(
        self, name: str, services: list[dict[str, Any]], **plan: Any
    ) -> subprocess.Popen[str]:
        doc = {
            "version": 1,
            "topology": str(self.tmp / "topology.toml"),
            "node": name,
            "language": "rust",
            "schema": {
                "path": str(ROOT / "schemas" / "trading.toml"),
                "digest": TRADING.digest.hex(),
            },
            "services": services,
            "inbound": plan.get("inbound"),
            "links": plan.get("links", []),
        }
        path = self.tmp / f"{name}.plan.json"
        path.write_text(json.dumps(doc))
        with open(self.log(name), "w") as log:
            proc = subprocess.Popen(
                [str(self.exe), "--plan", str(path)],
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
            )
        self.started.append(proc)
        return proc

    def log(self, name: str) -> Path:
        """The file holding a node's stderr (its log lines)."""
        return self.tmp / f"{name}.log"

    def stop(self, proc: subprocess.Popen[str], name: str = "rs") -> str:
        """SIGTERM, wait for exit 0; the node's log."""
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=TIMEOUT)
        err = self.log(name).read_text()
        assert proc.returncode == 0, f"exit {proc.returncode}:\n{err}"
        return err

    def reap(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=TIMEOUT)


@pytest.fixture
def nodes(probe: Path, tmp_path: Path) -> Iterator[Nodes]:
    manager = Nodes(probe, tmp_path)
    yield manager
    manager.reap()


@pytest.fixture
def endpoint(
    request: pytest.FixtureRequest, tmp_path: Path, channel: Callable[[], str]
) -> Endpoint:
    return Endpoint(request.param, tmp_path, channel())


def tick_line(symbol: str, i: int) -> tuple[Any, ...]:
    return expected_tick(symbol, i)


def parse_ticks(path: Path) -> list[tuple[Any, ...]]:
    """The ``tick`` lines of a recv probe's output, typed."""
    rows = []
    for line in path.read_text().splitlines():
        word, symbol, seq, ts_ns, bid, ask, bid_size, ask_size = line.split(" ")
        assert word == "tick"
        rows.append(
            (symbol, int(seq), int(ts_ns), float(bid), float(ask), int(bid_size), int(ask_size))
        )
    return rows


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def publish_ticks(bus: MessageBus, symbol: str, count: int) -> None:
    publisher = bus.publisher("MarketTick")
    for i in range(count):
        s, seq, ts_ns, bid, ask, bid_size, ask_size = expected_tick(symbol, i)
        publisher.publish(
            TRADING.MarketTick(
                symbol=s,
                seq=seq,
                ts_ns=ts_ns,
                bid=bid,
                ask=ask,
                bid_size=bid_size,
                ask_size=ask_size,
            )
        )


@pytest.mark.parametrize("endpoint", TRANSPORTS, indirect=True)
def test_python_to_rust(nodes: Nodes, endpoint: Endpoint, tmp_path: Path) -> None:
    """Every tick Python publishes reaches the Rust recv service, in order, intact."""
    out = tmp_path / "recv.out"
    node = nodes.start(
        "rs",
        [{"name": "recv", "consumes": ["MarketTick"], "config": {"out": str(out)}}],
        inbound=endpoint.plan(),
    )
    bus = MessageBus(TRADING, name="py")
    try:
        bus.add_link(endpoint.link(TRADING), ["MarketTick"])
        publish_ticks(bus, "PY", N)
        assert bus.flush(TIMEOUT)
        assert wait_for(lambda: lines(out) >= N, TIMEOUT), f"{lines(out)} of {N} ticks arrived"
    finally:
        bus.close(timeout=5)
    assert parse_ticks(out) == [tick_line("PY", i) for i in range(N)]
    err = nodes.stop(node)
    assert "rs: node rs: SIGTERM, shutting down" in err


@pytest.mark.parametrize("endpoint", TRANSPORTS, indirect=True)
def test_rust_to_python(nodes: Nodes, endpoint: Endpoint, tmp_path: Path) -> None:
    """Every tick the Rust send service publishes reaches a Python subscriber, in order."""
    bus = MessageBus(TRADING, name="py")
    try:
        sub = bus.subscriber("MarketTick", maxsize=N + 1)
        bus.add_inbound(endpoint.inbound(TRADING))
        out = tmp_path / "send.out"
        node = nodes.start(
            "rs",
            [
                {
                    "name": "send",
                    "consumes": [],
                    "config": {"count": N, "symbol": "RS", "out": str(out)},
                }
            ],
            links=[{"node": "py", "types": ["MarketTick"], "endpoint": endpoint.plan()}],
        )
        got = [sub.get(timeout=TIMEOUT) for _ in range(N)]
        assert wait_for(lambda: out.exists() and out.read_text() == f"sent {N}\n", TIMEOUT)
        nodes.stop(node)
    finally:
        bus.close(timeout=5)
    fields = [(t.symbol, t.seq, t.ts_ns, t.bid, t.ask, t.bid_size, t.ask_size) for t in got]
    assert fields == [tick_line("RS", i) for i in range(N)]


@pytest.mark.parametrize("endpoint", TRANSPORTS, indirect=True)
def test_python_link_refused_by_rust_with_another_schema(
    nodes: Nodes, endpoint: Endpoint, tmp_path: Path
) -> None:
    """A Python link of another schema is refused; over sockets the Rust side says so too."""
    out = tmp_path / "recv.out"
    node = nodes.start(
        "rs",
        [{"name": "recv", "consumes": ["MarketTick"], "config": {"out": str(out)}}],
        inbound=endpoint.plan(),
    )
    if endpoint.transport == "shm":  # the Rust node creates its channel: wait for it
        assert wait_for(lambda: Path(f"/dev/shm/mycelium.{endpoint.channel}").exists(), TIMEOUT)
    link = endpoint.link(OTHER)
    try:
        with pytest.raises(SchemaMismatch):
            link.wait_connected(TIMEOUT)
    finally:
        link.close(timeout=1)
    err = nodes.stop(node)
    if endpoint.transport != "shm":
        assert "connection ended: SchemaMismatch" in err, err
    assert lines(out) == 0


@pytest.mark.parametrize("endpoint", TRANSPORTS, indirect=True)
def test_rust_link_refused_by_python_with_another_schema(
    nodes: Nodes, endpoint: Endpoint, tmp_path: Path
) -> None:
    """A Rust link to a Python endpoint of another schema is refused, and the Rust node says so."""
    errors: list[BaseException] = []
    inbound = endpoint.inbound(OTHER)
    if isinstance(inbound, SocketInbound):
        inbound.on_error = errors.append
    bus = MessageBus(OTHER, name="py")
    try:
        delivered: list[Any] = []
        bus.add_inbound(inbound)
        bus.subscribe(OTHER.message_type(1), delivered.append)
        out = tmp_path / "send.out"
        node = nodes.start(
            "rs",
            [
                {
                    "name": "send",
                    "consumes": [],
                    "config": {"count": 5, "symbol": "RS", "out": str(out)},
                }
            ],
            links=[{"node": "py", "types": ["MarketTick"], "endpoint": endpoint.plan()}],
        )
        log = nodes.log("rs")
        assert wait_for(lambda: "SchemaMismatch" in log.read_text(), TIMEOUT)
        if endpoint.transport != "shm":
            assert wait_for(lambda: bool(errors), TIMEOUT)
            assert isinstance(errors[0], SchemaMismatch)
        err = nodes.stop(node)
        assert "SchemaMismatch" in err, err
        assert delivered == []
    finally:
        bus.close(timeout=5)


def test_a_panicking_rust_service_is_restarted(nodes: Nodes, tmp_path: Path) -> None:
    """recv panics on tick 5: it is restarted, logged, and every other tick arrives."""
    path = tmp_path / "in.sock"
    out = tmp_path / "recv.out"
    node = nodes.start(
        "rs",
        [{"name": "recv", "consumes": ["MarketTick"], "config": {"out": str(out), "panic_at": 5}}],
        inbound={"kind": "unix", "path": str(path)},
    )
    bus = MessageBus(TRADING, name="py")
    try:
        bus.add_link(SocketLink(str(path), schema=TRADING), ["MarketTick"])
        publish_ticks(bus, "PY", 20)
        assert bus.flush(TIMEOUT)
        assert wait_for(lambda: lines(out) >= 19, TIMEOUT)
    finally:
        bus.close(timeout=5)
    assert [row[1] for row in parse_ticks(out)] == [i for i in range(20) if i != 5]
    err = nodes.stop(node)
    assert "service recv: handler for MarketTick panicked: recv: told to panic at seq 5" in err
    assert "service recv: restart 1 in" in err
    assert all(line.startswith("rs: ") for line in err.splitlines()), err
