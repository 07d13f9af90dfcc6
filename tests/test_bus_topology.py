"""Tests of mycelium_shm.bus.topology: parsing, errors with line numbers, routing."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from mycelium_shm.bus import MessageBus, Topology, TopologyError
from mycelium_shm.protocol import Schema

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "schemas" / "trading.toml"
PIPELINE = REPO / "examples" / "pipeline"

GOOD = """\
schema = "{schema}"

[nodes.a]
services = ["feed"]
endpoint = {{ kind = "tcp", address = "127.0.0.1:{port_a}" }}

[nodes.b]
services = ["sink"]
endpoint = {{ kind = "tcp", address = "127.0.0.1:{port_b}" }}

[services.feed]
consumes = []

[services.sink]
consumes = ["Signal"]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.toml"
    path.write_text(textwrap.dedent(text).replace("SCHEMA", str(SCHEMA_PATH)))
    return path


@pytest.mark.parametrize("name", ["inprocess.toml", "shm.toml", "tcp.toml"])
def test_example_topologies_load(name):
    """The pipeline's three topology files are valid."""
    topology = Topology.load(PIPELINE / name)
    assert topology.node_of("report").name in topology.nodes


def test_types_cross_only_to_nodes_that_consume_them():
    """routes_from lists, per other node, exactly the types its services consume."""
    topology = Topology.load(PIPELINE / "tcp.toml")
    assert topology.routes_from("edge") == {"core": ["Fill", "OrderRequest", "Signal", "Stop"]}
    assert topology.routes_from("core") == {"edge": ["MarketTick", "Stop"]}
    shm = Topology.load(PIPELINE / "shm.toml")
    assert shm.routes_from("risk") == {
        "execution": ["OrderRequest", "Stop"],
        "report": ["Fill", "Stop"],
        "strategy": ["MarketTick", "Stop"],
    }


def test_from_topology_builds_links_for_consumed_types(tmp_path):
    """A bus from a topology sends a type to a node only if a service there consumes it."""
    path = tmp_path / "t.toml"
    port_b = free_port()
    b_address = f"127.0.0.1:{port_b}"
    path.write_text(GOOD.format(schema=SCHEMA_PATH, port_a=free_port(), port_b=port_b))
    schema = Schema.load(SCHEMA_PATH)
    a = MessageBus.from_topology(path, "feed", schema=schema)
    b = MessageBus.from_topology(path, "sink", schema=schema)
    try:
        sub = b.subscriber(schema.Signal)
        a.start()
        b.start()
        sig = schema.Signal(
            strategy_id=1, symbol="X", tick_seq=3, side=1, strength=0.5, features=[]
        )
        a.publish(
            schema.MarketTick(symbol="X", seq=1, ts_ns=0, bid=1, ask=2, bid_size=1, ask_size=1)
        )
        a.publish(sig)
        assert sub.get(timeout=5) == sig
        assert a.flush(5)
        assert a.links_of(schema.MarketTick) == ()
        assert [link.name for link in a.links_of(schema.Signal)] == [f"b@tcp:{b_address}"]
        assert b.stats["received"] == 1 and b.stats["unrouted"] == 0
    finally:
        a.close(timeout=1)
        b.close(timeout=1)


BAD = [
    (
        "not TOML",
        """\
        [nodes.a]
        services = ["x"
        """,
        2,
        "not valid TOML",
    ),
    (
        "duplicate key",
        """\
        [nodes.a]
        services = ["x"]
        services = ["y"]
        """,
        3,
        "not valid TOML",
    ),
    (
        "unknown top-level key",
        """\
        schema = "SCHEMA"
        colour = "blue"
        [nodes.a]
        services = ["s"]
        [services.s]
        consumes = []
        """,
        2,
        "unknown top-level key 'colour'",
    ),
    (
        "bad endpoint kind",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        endpoint = { kind = "udp", address = "127.0.0.1:1" }
        [services.s]
        consumes = []
        """,
        4,
        "endpoint kind 'udp' is not one of shm, unix, tcp",
    ),
    (
        "service hosted twice",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        endpoint = { kind = "shm", name = "t-a" }
        [nodes.b]
        endpoint = { kind = "shm", name = "t-b" }
        services = ["s"]
        [services.s]
        consumes = ["Fill"]
        """,
        7,
        "service 's' is already hosted by node 'a'",
    ),
    (
        "undeclared service",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["ghost"]
        """,
        3,
        "service 'ghost' is not declared",
    ),
    (
        "unknown message type",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]

        [services.s]
        consumes = ["Fill", "Spaceship"]
        """,
        6,
        "consumes 'Spaceship', which is not a message type of the schema",
    ),
    (
        "consuming node without endpoint",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        [nodes.b]
        services = ["t"]
        endpoint = { kind = "unix", path = "b.sock" }
        [services.s]
        consumes = ["Fill"]
        [services.t]
        consumes = []
        """,
        2,
        "node 'a' hosts services that consume messages but has no endpoint",
    ),
    (
        "duplicate endpoint",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        endpoint = { kind = "tcp", address = "127.0.0.1:9" }
        [nodes.b]
        services = ["t"]
        endpoint = { kind = "tcp", address = "127.0.0.1:9" }
        [services.s]
        consumes = []
        [services.t]
        consumes = []
        """,
        7,
        "endpoint tcp:127.0.0.1:9 is also node 'a''s",
    ),
    (
        "bad tcp address",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        endpoint = { kind = "tcp", address = "localhost" }
        [services.s]
        consumes = []
        """,
        4,
        "is not host:port",
    ),
    (
        "service nobody hosts",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        [services.s]
        consumes = []
        [services.orphan]
        consumes = []
        """,
        6,
        "service 'orphan' is declared but no node hosts it",
    ),
    (
        "missing consumes",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        [services.s]
        class = "mod:S"
        """,
        4,
        "missing 'consumes'",
    ),
    (
        "capacity not a power of two",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]

        [nodes.a.endpoint]
        kind = "shm"
        name = "t-a"
        capacity = 3000
        [services.s]
        consumes = []
        """,
        8,
        "capacity 3000 must be a power of two",
    ),
    (
        "no nodes",
        """\
        schema = "SCHEMA"
        [services.s]
        consumes = []
        """,
        None,
        "a topology needs at least one node",
    ),
    (
        "missing schema file",
        """\
        schema = "does-not-exist.toml"
        [nodes.a]
        services = ["s"]
        [services.s]
        consumes = []
        """,
        1,
        "does not exist",
    ),
]


@pytest.mark.parametrize(("case", "text", "line", "problem"), BAD, ids=[b[0] for b in BAD])
def test_bad_topology_names_line_and_problem(tmp_path, case, text, line, problem):
    """Each invalid file raises TopologyError with the offending line and the problem."""
    path = write(tmp_path, text)
    with pytest.raises(TopologyError) as info:
        Topology.load(path)
    error = info.value
    assert error.line == line, str(error)
    assert problem in error.problem
    assert str(error).startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_topology_error_is_a_value_error(tmp_path):
    """TopologyError is a MyceliumError and a ValueError."""
    from mycelium_shm.errors import MyceliumError

    with pytest.raises(ValueError) as info:
        Topology.load(tmp_path / "missing.toml")
    assert isinstance(info.value, MyceliumError)
