"""Tests of mycelium_shm.bus.topology: parsing, errors with line numbers, routing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bus_support import tick, wait_for

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
        "unknown language",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        language = "java"
        command = ["./a"]
        [services.s]
        consumes = []
        """,
        4,
        "node 'a': language 'java' is not one of python, rust, ocaml",
    ),
    (
        "rust node without command",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]

        [nodes.md]
        language = "rust"
        services = ["t"]
        [services.s]
        consumes = []
        [services.t]
        consumes = []
        """,
        5,
        "node 'md': a rust node needs command = [",
    ),
    (
        "ocaml node without command",
        """\
        schema = "SCHEMA"
        [nodes.risk]
        services = ["s"]
        language = "ocaml"
        [services.s]
        consumes = []
        """,
        2,
        "node 'risk': an ocaml node needs command",
    ),
    (
        "command on a python node",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        command = ["./a"]
        [services.s]
        consumes = []
        """,
        4,
        "node 'a': command is for rust and ocaml nodes",
    ),
    (
        "command not a list of strings",
        """\
        schema = "SCHEMA"
        [nodes.a]
        language = "rust"
        services = ["s"]
        command = "./a --fast"
        [services.s]
        consumes = []
        """,
        5,
        "node 'a': command must be a non-empty list of strings",
    ),
    (
        "empty command",
        """\
        schema = "SCHEMA"
        [nodes.a]
        language = "ocaml"
        services = ["s"]
        command = []
        [services.s]
        consumes = []
        """,
        5,
        "node 'a': command must be a non-empty list of strings",
    ),
    (
        "class on a service of a rust node",
        """\
        schema = "SCHEMA"
        [nodes.md]
        language = "rust"
        command = ["./md"]
        services = ["market_data"]
        [services.market_data]
        consumes = []
        class = "feeds:MarketData"
        """,
        8,
        "service 'market_data': class is for Python services, but node 'md' that hosts "
        "it is a rust node",
    ),
    (
        "date in the config of an ocaml service",
        """\
        schema = "SCHEMA"
        [nodes.risk]
        language = "ocaml"
        command = ["./risk"]
        services = ["risk"]
        [services.risk]
        consumes = []
        [services.risk.config]
        limit = 5
        since = 2024-01-02
        """,
        10,
        "service 'risk': config key 'since' holds a date, which an ocaml node cannot receive",
    ),
    (
        "unknown node key",
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        lang = "rust"
        [services.s]
        consumes = []
        """,
        4,
        "node 'a': unknown key 'lang' (expected services, endpoint, language, command)",
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


# -- languages and node plans ---------------------------------------------------

MIXED = """\
schema = "{schema}"

[nodes.md]
language = "rust"
command = ["../bin/trading_node", "--fast"]
services = ["market_data", "execution"]
endpoint = {{ kind = "shm", name = "{channel}", capacity = 65536 }}

[nodes.strategy]
services = ["strategy"]
endpoint = {{ kind = "tcp", address = "127.0.0.1:{port}" }}

[nodes.risk]
language = "ocaml"
command = ["/opt/risk/risk_node"]
services = ["risk", "audit"]
endpoint = {{ kind = "unix", path = "risk.sock" }}

[services.market_data]
consumes = ["Stop"]
config = {{ ticks = 10000, seed = 7, symbols = ["EURUSD", "USDJPY"], rate = 2.5 }}

[services.execution]
consumes = ["OrderRequest", "Stop"]

[services.strategy]
class = "strategies:Momentum"
consumes = ["MarketTick", "Stop"]
config = {{ window = 8 }}

[services.risk]
consumes = ["Signal", "Fill"]
config = {{ limits = {{ notional = 1e6, position = 100 }} }}

[services.audit]
consumes = ["Fill"]
"""


def mixed(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / "topo" / "mixed.toml"
    path.parent.mkdir()
    path.write_text(MIXED.format(schema=SCHEMA_PATH, channel="t-mixed-md", port=port))
    return path, port


def test_language_and_command_are_parsed(tmp_path):
    """A relative program resolves against the file's directory; arguments stay as written."""
    path, _ = mixed(tmp_path)
    topology = Topology.load(path)
    md, strategy, risk = (topology.nodes[n] for n in ("md", "strategy", "risk"))
    assert (md.language, md.command) == ("rust", (str(tmp_path / "bin" / "trading_node"), "--fast"))
    assert (strategy.language, strategy.command) == ("python", None)
    assert (risk.language, risk.command) == ("ocaml", ("/opt/risk/risk_node",))


def test_plan_of_a_three_language_topology(tmp_path):
    """Each node's plan: schema digest, services in order with config, inbound, links by rule."""
    path, port = mixed(tmp_path)
    topology = Topology.load(path)
    digest = Schema.load(SCHEMA_PATH).digest.hex()
    schema = {"path": str(SCHEMA_PATH.resolve()), "digest": digest}
    md_in = {"kind": "shm", "name": "t-mixed-md", "capacity": 65536}
    strategy_in = {"kind": "tcp", "host": "127.0.0.1", "port": port}
    risk_in = {"kind": "unix", "path": str(tmp_path / "topo" / "risk.sock")}
    assert topology.plan("md") == {
        "version": 1,
        "topology": str(path.resolve()),
        "node": "md",
        "language": "rust",
        "schema": schema,
        "services": [
            {
                "name": "market_data",
                "consumes": ["Stop"],
                "config": {
                    "ticks": 10000,
                    "seed": 7,
                    "symbols": ["EURUSD", "USDJPY"],
                    "rate": 2.5,
                },
            },
            {"name": "execution", "consumes": ["OrderRequest", "Stop"], "config": {}},
        ],
        "inbound": md_in,
        "links": [
            {"node": "strategy", "types": ["MarketTick", "Stop"], "endpoint": strategy_in},
            {"node": "risk", "types": ["Fill", "Signal"], "endpoint": risk_in},
        ],
        "publication": None,  # mailbox shm: no broadcast channel
        "subscriptions": [],
    }
    strategy = topology.plan("strategy")
    assert strategy["language"] == "python" and strategy["inbound"] == strategy_in
    assert strategy["services"] == [
        {"name": "strategy", "consumes": ["MarketTick", "Stop"], "config": {"window": 8}}
    ]
    assert strategy["links"] == [
        {"node": "md", "types": ["OrderRequest", "Stop"], "endpoint": md_in},
        {"node": "risk", "types": ["Fill", "Signal"], "endpoint": risk_in},
    ]
    risk = topology.plan("risk")
    assert risk["language"] == "ocaml" and risk["inbound"] == risk_in
    assert [s["name"] for s in risk["services"]] == ["risk", "audit"]
    assert risk["services"][0]["config"] == {"limits": {"notional": 1e6, "position": 100}}
    assert risk["links"] == [
        {"node": "md", "types": ["OrderRequest", "Stop"], "endpoint": md_in},
        {"node": "strategy", "types": ["MarketTick", "Stop"], "endpoint": strategy_in},
    ]
    # Every plan is JSON as it stands, and the digest is the schema's.
    for node in topology.nodes:
        plan = topology.plan(node)
        assert json.loads(json.dumps(plan)) == plan
        assert len(plan["schema"]["digest"]) == 64


def test_plan_of_a_node_that_receives_nothing_has_no_inbound(tmp_path):
    """A producer-only node has inbound null even with an endpoint; a lone node has no links."""
    path = write(
        tmp_path,
        """\
        schema = "SCHEMA"
        [nodes.feed]
        language = "rust"
        command = ["./feed"]
        services = ["feed"]
        endpoint = { kind = "shm", name = "t-feed" }
        [nodes.sink]
        services = ["sink"]
        endpoint = { kind = "shm", name = "t-sink" }
        [services.feed]
        consumes = []
        [services.sink]
        consumes = ["MarketTick"]
        """,
    )
    topology = Topology.load(path)
    feed = topology.plan("feed")
    assert feed["inbound"] is None
    assert feed["links"] == [
        {
            "node": "sink",
            "types": ["MarketTick"],
            "endpoint": {"kind": "shm", "name": "t-sink", "capacity": 1 << 20},
        }
    ]
    assert topology.plan("sink")["links"] == []
    with pytest.raises(KeyError, match="no node 'ghost'"):
        topology.plan("ghost")


def bus_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "mycelium_shm.bus", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_plan_command_prints_the_plan(tmp_path):
    """`python -m mycelium_shm.bus plan` prints exactly Topology.plan as JSON."""
    path, _ = mixed(tmp_path)
    out = bus_cli("plan", str(path), "--node", "risk")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == Topology.load(path).plan("risk")
    assert out.stderr == ""


@pytest.mark.parametrize("command", ["plan", "run", "launch"])
def test_topology_errors_are_one_line_on_stderr(tmp_path, command):
    """Every command reports a bad file as one file:line line and exit 2, no traceback."""
    path = write(
        tmp_path,
        """\
        schema = "SCHEMA"
        [nodes.a]
        services = ["s"]
        language = "cobol"
        [services.s]
        consumes = []
        """,
    )
    node = ["--node", "a"] if command != "launch" else []
    out = bus_cli(command, str(path), *node)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"python -m mycelium_shm.bus: {path}:4: node 'a': language 'cobol' is not one of "
        "python, rust, ocaml"
    ]


def test_plan_of_an_unknown_node_is_one_line(tmp_path):
    """plan --node with a name the file does not have: one line naming the nodes."""
    path, _ = mixed(tmp_path)
    out = bus_cli("plan", str(path), "--node", "ghost")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"python -m mycelium_shm.bus: no node 'ghost' in {path} (nodes: md, strategy, risk)"
    ]


SERVICE_MODULE = """\
from mycelium_shm.bus import Service


class Sink(Service):
    def __init__(self, path: str, limit: int = 10) -> None:
        super().__init__()
"""

RUN_ERRORS = [
    (
        "missing module",
        'class = "no_such_module:Sink"',
        "class",
        "service 's': cannot import module 'no_such_module' of class 'no_such_module:Sink': "
        "No module named 'no_such_module'",
    ),
    (
        "missing class",
        'class = "probe_services:Source"',
        "class",
        "service 's': module 'probe_services' has no 'Source'",
    ),
    (
        "bad config key",
        'class = "probe_services:Sink"\nconfig = { path = "x", limt = 3 }',
        "config",
        "service 's': config key 'limt' is not a parameter of probe_services:Sink "
        "(parameters: path, limit)",
    ),
    (
        "missing config key",
        'class = "probe_services:Sink"\nconfig = { limit = 3 }',
        "config",
        "service 's': config does not fit (missing a required argument: 'path') the "
        "parameters of probe_services:Sink (parameters: path, limit)",
    ),
    (
        "python service without class",
        "",
        None,
        "service 's' has no class = \"module:Class\" (and none was passed)",
    ),
]


@pytest.mark.parametrize(
    ("case", "keys", "key", "problem"), RUN_ERRORS, ids=[r[0] for r in RUN_ERRORS]
)
def test_run_reports_bad_classes_and_configs_in_one_line(tmp_path, case, keys, key, problem):
    """`run` with a class that cannot be imported or a config that does not fit: one line."""
    (tmp_path / "probe_services.py").write_text(SERVICE_MODULE)
    path = tmp_path / "topology.toml"
    text = f'schema = "{SCHEMA_PATH}"\n[nodes.a]\nservices = ["s"]\n[services.s]\nconsumes = []\n'
    path.write_text(text + keys + "\n")
    lines = path.read_text().splitlines()
    line = 4 if key is None else next(i for i, t in enumerate(lines, 1) if t.startswith(key))
    out = bus_cli("run", str(path), "--node", "a")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [f"python -m mycelium_shm.bus: {path}:{line}: {problem}"]


def test_run_refuses_a_rust_node(tmp_path):
    """`run` hosts python nodes only: a rust node is started by its command."""
    path, _ = mixed(tmp_path)
    out = bus_cli("run", str(path), "--node", "md")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"python -m mycelium_shm.bus: {path}:4: node 'md' is a rust node: it runs as its "
        "command (python -m mycelium_shm.bus launch starts it), not in a Python runtime"
    ]


BROADCAST = """\
schema = "{schema}"
shm = "broadcast"

[nodes.feed]
services = ["feed"]
endpoint = {{ kind = "shm", name = "{prefix}.feed", capacity = 65536 }}

[nodes.strategy]
language = "rust"
command = ["./strategy"]
services = ["strategy"]
endpoint = {{ kind = "shm", name = "{prefix}.strategy" }}

[nodes.risk]
services = ["risk"]
endpoint = {{ kind = "shm", name = "{prefix}.risk" }}

[nodes.exec]
services = ["exec"]
endpoint = {{ kind = "shm", name = "{prefix}.exec" }}

[services.feed]
consumes = []

[services.strategy]
consumes = ["MarketTick"]

[services.risk]
consumes = ["MarketTick", "Signal"]

[services.exec]
consumes = ["OrderRequest"]
"""


def test_broadcast_plans_one_channel_per_publishing_node(tmp_path):
    """shm = "broadcast": each shm node publishes on its own channel, read by
    every other shm consumer with a cursor of its name."""
    port = free_port()
    path = tmp_path / "b.toml"
    path.write_text(BROADCAST.format(schema=SCHEMA_PATH, prefix="t-bc", port=port))
    topology = Topology.load(path)
    assert topology.shm_mode == "broadcast"
    feed = topology.plan("feed")
    assert feed["inbound"] is None
    assert feed["publication"] == {
        "kind": "shm-broadcast",
        "name": "t-bc.feed",
        "capacity": 65536,
        "subscribers": ["strategy", "risk", "exec"],
        "spare_readers": 1,
        "untether_ms": 10_000,
        "types": ["MarketTick", "OrderRequest", "Signal"],
    }
    assert feed["subscriptions"] == [] and feed["links"] == []
    risk = topology.plan("risk")
    assert risk["inbound"] is None and risk["links"] == []
    assert risk["publication"]["subscribers"] == ["strategy", "exec"]
    assert risk["subscriptions"] == [
        {"node": "feed", "name": "t-bc.feed", "cursor": "risk"},
        {"node": "strategy", "name": "t-bc.strategy", "cursor": "risk"},
        {"node": "exec", "name": "t-bc.exec", "cursor": "risk"},
    ]
    assert topology.plan("strategy")["language"] == "rust"
    for node in topology.nodes:
        plan = topology.plan(node)
        assert json.loads(json.dumps(plan)) == plan


def test_broadcast_errors(tmp_path):
    """A node sending to shm nodes needs an shm endpoint; a bad shm value is named."""
    path = write(
        tmp_path,
        """\
        schema = "SCHEMA"
        shm = "broadcast"
        [nodes.feed]
        services = ["feed"]
        [nodes.sink]
        services = ["sink"]
        endpoint = { kind = "shm", name = "t-sink" }
        [services.feed]
        consumes = []
        [services.sink]
        consumes = ["MarketTick"]
        """,
    )
    with pytest.raises(TopologyError, match=r":3: node 'feed' sends to shm nodes \(sink\)"):
        Topology.load(path)
    # A socket node cannot send to shm nodes in broadcast mode either.
    text = path.read_text().replace(
        'services = ["feed"]',
        'services = ["feed"]\nendpoint = { kind = "tcp", address = "127.0.0.1:1" }',
    )
    path.write_text(text)
    with pytest.raises(TopologyError, match=r"node 'feed' sends to shm nodes"):
        Topology.load(path)
    path = write(tmp_path, 'schema = "SCHEMA"\nshm = "carrier-pigeon"\n')
    with pytest.raises(TopologyError, match=r":2: shm = 'carrier-pigeon' is not one of"):
        Topology.load(path)


def test_broadcast_bus_writes_once_for_every_subscribing_node(tmp_path, schema):
    """Three nodes' buses built from a broadcast topology: a message consumed
    by two other nodes is one frame in the publisher's channel."""
    from mycelium_shm import inspect, unlink

    text = BROADCAST.format(schema=SCHEMA_PATH, prefix=f"t-bcbus-{os.getpid()}", port=free_port())
    text = text.replace('language = "rust"\ncommand = ["./strategy"]\n', "")
    path = tmp_path / "b.toml"
    path.write_text(text)
    topology = Topology.load(path)
    buses = {n: topology.build_bus(n, schema=schema) for n in ("feed", "strategy", "risk")}
    try:
        got: dict[str, list[int]] = {"strategy": [], "risk": []}
        for name in got:
            buses[name].subscribe(schema.MarketTick, lambda m, n=name: got[n].append(m.seq))
        for bus in buses.values():
            bus.start()
        for i in range(100):
            buses["feed"].publish(tick(schema, i))
        assert wait_for(lambda: all(len(v) == 100 for v in got.values()))
        assert got == {"strategy": list(range(100)), "risk": list(range(100))}
        assert inspect(f"t-bcbus-{os.getpid()}.feed").stats["frames_written"] == 100
    finally:
        for bus in buses.values():
            bus.close(timeout=1)
        for node in ("feed", "strategy", "risk"):
            unlink(f"t-bcbus-{os.getpid()}.{node}", missing_ok=True)


def test_publishes_narrows_the_routes(tmp_path):
    """When every service of a node declares what it publishes, it links (or
    is subscribed to) only the nodes consuming one of those types."""
    path = write(
        tmp_path,
        """\
        schema = "SCHEMA"
        shm = "broadcast"
        [nodes.feed]
        services = ["feed"]
        endpoint = { kind = "shm", name = "t-pub-feed" }
        [nodes.strategy]
        services = ["strategy"]
        endpoint = { kind = "shm", name = "t-pub-strategy" }
        [nodes.report]
        services = ["report"]
        endpoint = { kind = "shm", name = "t-pub-report" }
        [services.feed]
        consumes = []
        publishes = ["MarketTick"]
        [services.strategy]
        consumes = ["MarketTick"]
        publishes = ["Signal"]
        [services.report]
        consumes = ["Signal", "Fill"]
        """,
    )
    topology = Topology.load(path)
    assert topology.plan("feed")["publication"]["subscribers"] == ["strategy"]
    assert topology.plan("feed")["publication"]["types"] == ["MarketTick"]
    assert topology.plan("strategy")["publication"]["subscribers"] == ["report"]
    # report declares nothing: it may publish anything, so strategy (which
    # consumes MarketTick) reads its channel.
    assert topology.plan("report")["publication"]["subscribers"] == ["strategy"]
    assert topology.plan("strategy")["subscriptions"] == [
        {"node": "feed", "name": "t-pub-feed", "cursor": "strategy"},
        {"node": "report", "name": "t-pub-report", "cursor": "strategy"},
    ]
    assert topology.plan("report")["subscriptions"] == [
        {"node": "strategy", "name": "t-pub-strategy", "cursor": "report"}
    ]
    bad = path.read_text().replace('publishes = ["Signal"]', 'publishes = ["Nope"]')
    path.write_text(bad)
    with pytest.raises(TopologyError, match=r"publishes 'Nope', which is not a message type"):
        Topology.load(path)
