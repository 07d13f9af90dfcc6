"""The OCaml bus (bindings/ocaml/bus) against the Python bus, across processes.

Drives ``bindings/ocaml/bus/example/bus_node.exe`` (its services: ``ticker``
publishes MarketTick 1..N then Stop; ``counter`` prints every tick it
receives) with node plans written here, the JSON the launcher hands to
non-Python nodes.  For each transport (shm, Unix, TCP): Python publishes and
OCaml receives everything in order, OCaml publishes and Python receives
everything in order, and a schema mismatch is refused on both sides in both
directions.  Every node is reaped, every channel unlinked, every socket file
lives in the test's temporary directory.  Needs the OCaml toolchain
(scripts/install-ocaml.sh); without it these tests fail, never skip.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lang_build import ocaml_exe

from mycelium_shm import SchemaMismatch
from mycelium_shm.bus import MessageBus, ShmInbound, ShmLink, SocketInbound, SocketLink
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent
OCAML = ROOT / "bindings" / "ocaml"
EXAMPLES = OCAML / "_build" / "default" / "bus" / "example"
NODE = EXAMPLES / "bus_node.exe"
TRADING = Schema.load(ROOT / "schemas" / "trading.toml")
OTHER = Schema.load(ROOT / "tests" / "vectors" / "schema.toml")
TRANSPORTS = ["shm", "unix", "tcp"]
TIMEOUT = 60.0
N = 2000


@pytest.fixture(scope="module")
def node_exe() -> Path:
    """bus_node.exe (and the README's risk_gate.exe), built with dune."""
    return ocaml_exe("./bus/example/bus_node.exe", "./bus/example/risk_gate.exe")[0]


class Nodes:
    """OCaml node processes of one test: killed if still running, always reaped."""

    def __init__(self, exe: Path, tmp: Path) -> None:  # exe: bus_node.exe
        self.exe = exe
        self.tmp = tmp
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, plan: dict[str, Any], exe: Path | None = None) -> subprocess.Popen[str]:
        n = len(self.procs)
        path = self.tmp / f"plan.{n}.json"
        path.write_text(json.dumps(plan))
        err = open(self.tmp / f"stderr.{n}", "w+")
        p = subprocess.Popen(
            [str(exe or self.exe), "--plan", str(path)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        p.stderr_file = err  # type: ignore[attr-defined]
        self.procs.append(p)
        return p

    @staticmethod
    def finish(p: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[int, str, str]:
        """Wait for ``p``: (exit status, stdout, stderr)."""
        out, _ = p.communicate(timeout=timeout)
        f = p.stderr_file  # type: ignore[attr-defined]
        f.seek(0)
        return p.returncode, out, f.read()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
            p.stderr_file.close()  # type: ignore[attr-defined]
            if p.stdout is not None:
                p.stdout.close()


@pytest.fixture
def nodes(node_exe: Path, tmp_path: Path) -> Iterator[Nodes]:
    manager = Nodes(node_exe, tmp_path)
    yield manager
    manager.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def endpoint(kind: str, make_channel: Callable[[], str], tmp: Path) -> dict[str, Any]:
    """A fresh plan endpoint of ``kind``."""
    if kind == "shm":
        return {"kind": "shm", "name": make_channel(), "capacity": 1 << 20}
    if kind == "unix":
        return {"kind": "unix", "path": str(tmp / f"n{time.monotonic_ns()}.sock")}
    return {"kind": "tcp", "host": "127.0.0.1", "port": free_port()}


def plan(
    services: list[dict[str, Any]],
    inbound: dict[str, Any] | None = None,
    links: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "version": 1,
        "topology": "/tests/test_bus_ocaml.toml",
        "node": "ocaml",
        "language": "ocaml",
        "schema": {"path": str(ROOT / "schemas" / "trading.toml"), "digest": TRADING.digest.hex()},
        "services": services,
        "inbound": inbound,
        "links": links or [],
    }


def py_link(ep: dict[str, Any], schema: Schema) -> ShmLink | SocketLink:
    if ep["kind"] == "shm":
        return ShmLink(ep["name"], schema=schema)
    if ep["kind"] == "unix":
        return SocketLink(ep["path"], schema=schema, backoff_max=0.05)
    return SocketLink((ep["host"], ep["port"]), schema=schema, backoff_max=0.05)


def py_inbound(ep: dict[str, Any], schema: Schema) -> ShmInbound | SocketInbound:
    if ep["kind"] == "shm":
        return ShmInbound(ep["name"], schema=schema)
    if ep["kind"] == "unix":
        return SocketInbound(ep["path"], schema=schema)
    return SocketInbound((ep["host"], ep["port"]), schema=schema)


def tick(seq: int) -> Any:
    return TRADING.MarketTick(
        symbol="EURUSD",
        seq=seq,
        ts_ns=seq * 1000,
        bid=1.0842,
        ask=1.0844,
        bid_size=1_000_000,
        ask_size=2_500_000,
    )


COUNTER = {"name": "counter", "consumes": ["MarketTick", "Stop"], "config": {}}


def ticker(count: int, interval_us: int = 0) -> dict[str, Any]:
    return {
        "name": "ticker",
        "consumes": [],
        "config": {"count": count, "interval_us": interval_us, "symbol": "GBPUSD"},
    }


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_python_to_ocaml(
    kind: str,
    nodes: Nodes,
    channel_names: Callable[[], str],
    tmp_path: Path,
    closing: Callable[[Any], Any],
) -> None:
    """Every tick a Python bus publishes reaches the OCaml node's service, in order."""
    ep = endpoint(kind, channel_names, tmp_path)
    node = nodes.start(plan([COUNTER], inbound=ep))
    bus = closing(MessageBus(TRADING, name="py"))
    bus.add_link(py_link(ep, TRADING), ["MarketTick", "Stop"])  # before the node is up
    for seq in range(1, N + 1):
        bus.publish(tick(seq))
    bus.publish(TRADING.Stop(last_seq=N, reason="done"))
    assert bus.flush(timeout=30)
    code, out, err = nodes.finish(node)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:N] == [f"tick {seq} EURUSD" for seq in range(1, N + 1)], err
    assert lines[N:] == [f"stop {N}", f"counted {N}"]


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_ocaml_to_python(
    kind: str,
    nodes: Nodes,
    channel_names: Callable[[], str],
    tmp_path: Path,
    closing: Callable[[Any], Any],
) -> None:
    """Every tick the OCaml node publishes reaches a Python subscriber, in order;
    the node flushes its link before it exits 0."""
    ep = endpoint(kind, channel_names, tmp_path)
    bus = closing(MessageBus(TRADING, name="py"))
    sub = bus.subscriber("MarketTick", "Stop", maxsize=N + 10)
    bus.add_inbound(py_inbound(ep, TRADING))
    link = {"node": "py", "types": ["MarketTick", "Stop"], "endpoint": ep}
    node = nodes.start(plan([ticker(N)], links=[link]))
    code, out, err = nodes.finish(node)
    assert code == 0, err
    assert out.strip() == f"published {N}"
    got = [sub.get(timeout=10) for _ in range(N + 1)]
    assert [m.seq for m in got[:N]] == list(range(1, N + 1))
    assert {m.symbol for m in got[:N]} == {"GBPUSD"}
    assert got[N] == TRADING.Stop(last_seq=N, reason="done")


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_mismatch_python_link_to_ocaml(
    kind: str,
    nodes: Nodes,
    channel_names: Callable[[], str],
    tmp_path: Path,
    closing: Callable[[Any], Any],
) -> None:
    """A Python link with another schema is refused by the OCaml node's endpoint,
    and the Python side raises SchemaMismatch."""
    ep = endpoint(kind, channel_names, tmp_path)
    node = nodes.start(plan([COUNTER], inbound=ep))
    if kind == "shm":
        wait_for("the node's channel", lambda: Path(f"/dev/shm/mycelium.{ep['name']}").exists())
    link = closing(py_link(ep, OTHER))
    with pytest.raises(SchemaMismatch):
        link.wait_connected(timeout=20)
    if kind != "shm":  # a channel refuses at attach; the OCaml side never sees it
        wait_for(
            "the node's log",
            lambda: "SchemaMismatch" in Path(node.stderr_file.name).read_text(),  # type: ignore[attr-defined]
        )
    node.terminate()
    code, out, err = nodes.finish(node)
    assert code == 0, err
    assert "tick" not in out


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_mismatch_ocaml_link_to_python(
    kind: str,
    nodes: Nodes,
    channel_names: Callable[[], str],
    tmp_path: Path,
    closing: Callable[[Any], Any],
) -> None:
    """The OCaml node's link to a Python endpoint with another schema is refused
    on both sides; nothing is delivered."""
    ep = endpoint(kind, channel_names, tmp_path)
    bus = closing(MessageBus(OTHER, name="py"))
    inbound = bus.add_inbound(py_inbound(ep, OTHER))
    link = {"node": "py", "types": ["MarketTick", "Stop"], "endpoint": ep}
    node = nodes.start(plan([ticker(0, interval_us=1000)], links=[link]))
    code, _, err = nodes.finish(node)  # the ticker stops the node on the refusal
    assert code == 0, err
    assert "SchemaMismatch" in err
    if kind != "shm":
        assert any(isinstance(e, SchemaMismatch) for e in inbound.errors)
    assert bus.stats["received"] == 0


def test_readme_service_example_is_risk_gate() -> None:
    """The "Writing a service" block of bindings/ocaml/README.md is
    bus/example/risk_gate.ml verbatim, so it builds (the fixture builds it)."""
    readme = (OCAML / "README.md").read_text()
    section = readme.split("## Writing a service", 1)[1]
    block = section.split("```ocaml\n", 1)[1].split("```", 1)[0]
    assert block == (OCAML / "bus" / "example" / "risk_gate.ml").read_text()


def test_risk_gate_example(nodes: Nodes, tmp_path: Path, closing: Callable[[Any], Any]) -> None:
    """The README's service, run as a node: signals from Python become orders
    back in Python until the position limit, fills move the position."""
    inbound_ep = {"kind": "unix", "path": str(tmp_path / "risk.sock")}
    py_ep = {"kind": "unix", "path": str(tmp_path / "py.sock")}
    bus = closing(MessageBus(TRADING, name="py"))
    orders = bus.subscriber("OrderRequest", maxsize=100)
    bus.add_inbound(py_inbound(py_ep, TRADING))
    bus.add_link(py_link(inbound_ep, TRADING), ["Signal", "Fill"])
    service = {
        "name": "risk",
        "consumes": ["Signal", "Fill"],
        "config": {"max_position": 30, "lot": 10},
    }
    link = {"node": "py", "types": ["OrderRequest"], "endpoint": py_ep}
    node = nodes.start(
        plan([service], inbound=inbound_ep, links=[link]), exe=EXAMPLES / "risk_gate.exe"
    )

    def signal(side: int) -> Any:
        return TRADING.Signal(
            strategy_id=1, symbol="EURUSD", tick_seq=1, side=side, strength=1.0, features=[]
        )

    got = []
    for _ in range(3):  # three buys: each filled before the next signal
        bus.publish(signal(+1))
        order = orders.get(timeout=20)
        got.append(order)
        bus.publish(
            TRADING.Fill(
                order_id=order.order_id, venue=b"XSIM", qty=order.qty, price=1.0, fee=0.0, ts_ns=0
            )
        )
    bus.publish(signal(+1))  # position 30 + 10 > 30: refused
    bus.publish(signal(-1))  # 30 - 10: accepted
    last = orders.get(timeout=20)
    assert [(o.order_id, o.side, o.qty) for o in got] == [(1, 1, 10), (2, 1, 10), (3, 1, 10)]
    assert (last.order_id, last.side) == (4, -1)
    bus.flush(timeout=10)
    node.terminate()
    code, _, err = nodes.finish(node)
    assert code == 0, err
    assert "final position 30" in err
    assert orders.drain() == []


def test_ocaml_service_restarts(
    nodes: Nodes, tmp_path: Path, closing: Callable[[Any], Any]
) -> None:
    """An OCaml service whose handler raises is restarted (a fresh instance) and
    the stream from Python continues; SIGTERM then stops the node with exit 0."""
    ep = {"kind": "unix", "path": str(tmp_path / "crash.sock")}
    crasher = {"name": "crasher", "consumes": ["MarketTick"], "config": {"fail_every": 5}}
    node = nodes.start(plan([crasher], inbound=ep))
    assert node.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(node.stdout or []), daemon=True)
    reader.start()
    bus = closing(MessageBus(TRADING, name="py"))
    bus.add_link(py_link(ep, TRADING), ["MarketTick"])
    for seq in range(1, 20):  # failures at 5, 10, 15; 19 is the last
        bus.publish(tick(seq))
    assert bus.flush(timeout=20)
    wait_for("the last tick", lambda: "handled 19\n" in lines)
    node.send_signal(signal.SIGTERM)
    code, _, err = nodes.finish(node)
    reader.join(10)
    assert code == 0, err
    handled = [int(x.split()[1]) for x in lines if x.startswith("handled")]
    assert handled == [s for s in range(1, 20) if s % 5 != 0]
    assert lines.count("start\n") == 4  # the first instance and 3 restarts (5, 10, 15)
    assert err.count("raised") == 3 and err.count("restart ") == 3
