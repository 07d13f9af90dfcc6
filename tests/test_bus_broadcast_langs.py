"""The bus's broadcast shared-memory transport across languages (issue #11).

A publishing node in each language (python, rust, ocaml) publishes COUNT
MarketTicks on its own broadcast channel (``ShmPublication``); a node in each
of the two other languages reads that channel with its own durable cursor
(``ShmSubscription``), and so does a Python subscriber in this process.  The
Rust and OCaml nodes are the bus probes (bindings/rust/examples/bus_probe.rs,
bindings/ocaml/bus/example/bus_probe.ml: the ``send`` and ``recv`` services of
tests/bus_probe.py) started as the launcher starts them, ``command --plan
FILE``, with hand-written plans carrying the broadcast keys ("publication",
"subscriptions"; see the plan-format notes).  The Python publisher and
subscriber are a MessageBus in this process.

Checked: every tick arrives once, in order and intact, at every subscriber;
the channel's ``frames_written`` is COUNT (one write per publish, however
many subscribers) and every cursor read COUNT frames and lost none; every
node exits 0 on SIGTERM.  Both start orders: subscribers first (they wait for
the channel), and publisher first (it publishes everything before any
subscriber runs: the cursors it registered keep the frames).

``test_a_broadcast_topology_through_the_launcher`` does the same from a
``shm = "broadcast"`` topology file run by ``mycelium_shm.bus.Launcher``
(plans made by the Python topology code): a publisher in each language read
by a Rust or OCaml node and a launched Python node.

Every process is reaped and every channel unlinked, even on failure; without
cargo or dune the tests fail rather than skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bus_probe import expected_tick
from bus_support import wait_for
from lang_build import ocaml_exe, rust_example

from mycelium_shm import cursors, inspect, unlink
from mycelium_shm.bus import Launcher, MessageBus, ShmPublication, ShmSubscription
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
RUST = ROOT / "bindings" / "rust"
OCAML = ROOT / "bindings" / "ocaml"
SCHEMA_PATH = ROOT / "schemas" / "trading.toml"

LANGS = ("python", "rust", "ocaml")
#: Ticks per run.
COUNT = 1000
#: Ring bytes: room for every tick, so a subscriber that is not up yet never
#: holds the publisher back.
CAPACITY = 1 << 20
#: Seconds a node may take to start, deliver everything, or stop.
TIMEOUT = 60.0

Tick = tuple[str, int, int, float, float, int, int]


# -- the probe programs ------------------------------------------------------------


@pytest.fixture(scope="module")
def programs() -> dict[str, list[str]]:
    """The command of the Rust and OCaml bus probes, built once."""
    return {
        "rust": [str(rust_example("bus_probe"))],
        "ocaml": [str(ocaml_exe("./bus/example/bus_probe.exe")[0])],
    }


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.load(SCHEMA_PATH)


# -- one run -----------------------------------------------------------------------


class Broadcast:
    """One run's directory, channel, node processes and Python buses; reaps,
    closes and unlinks everything in ``cleanup``."""

    def __init__(self, publisher: str, programs: dict[str, list[str]], schema: Schema) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bbx-", dir="/tmp"))
        self.channel = f"bbx-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.publisher = publisher
        self.programs = programs
        self.schema = schema
        #: Subscribing nodes: one per other language, plus a Python one here.
        self.subscribers = [f"sub-{lang}" for lang in LANGS if lang != publisher]
        if "sub-python" not in self.subscribers:
            self.subscribers.append("sub-python")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.buses: list[MessageBus] = []
        self.py_ticks: list[Tick] = []

    # plans

    def _plan(
        self, node: str, language: str, services: list[dict[str, Any]], **broadcast: Any
    ) -> Path:
        plan = {
            "version": 1,
            "topology": str(self.dir / "topology.toml"),
            "node": node,
            "language": language,
            "schema": {"path": str(SCHEMA_PATH), "digest": self.schema.digest_hex},
            "services": services,
            "inbound": None,
            "links": [],
            "publication": broadcast.get("publication"),
            "subscriptions": broadcast.get("subscriptions", []),
        }
        path = self.dir / f"{node}.plan.json"
        path.write_text(json.dumps(plan, indent=1))
        path.chmod(0o600)
        return path

    def out(self, node: str) -> Path:
        return self.dir / f"{node}.out"

    def log(self, node: str) -> str:
        path = self.dir / f"{node}.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {n}.err ---\n{self.log(n)[-3000:]}" for n in self.procs)

    def _spawn(self, node: str, language: str, plan: Path) -> None:
        with open(self.dir / f"{node}.err", "wb") as err:
            self.procs[node] = subprocess.Popen(
                [*self.programs[language], "--plan", str(plan)],
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=dict(os.environ, MYCELIUM_BUS_PLAN=str(plan)),
            )

    # the publisher

    def start_publisher(self) -> None:
        if self.publisher == "python":
            bus = MessageBus(self.schema, name="pub-python")
            self.buses.append(bus)
            bus.add_link(
                ShmPublication(
                    self.channel,
                    subscribers=self.subscribers,
                    schema=self.schema,
                    capacity=CAPACITY,
                ),
                [self.schema.MarketTick],
            )
            for i in range(COUNT):
                symbol, seq, ts_ns, bid, ask, bid_size, ask_size = expected_tick("python", i)
                bus.publish(
                    self.schema.MarketTick(
                        symbol=symbol,
                        seq=seq,
                        ts_ns=ts_ns,
                        bid=bid,
                        ask=ask,
                        bid_size=bid_size,
                        ask_size=ask_size,
                    )
                )
            return
        node = f"pub-{self.publisher}"
        send = {
            "name": "send",
            "consumes": [],
            "config": {"count": COUNT, "symbol": self.publisher, "out": str(self.out(node))},
        }
        publication = {
            "kind": "shm-broadcast",
            "name": self.channel,
            "capacity": CAPACITY,
            "subscribers": self.subscribers,
            "spare_readers": 1,
            "untether_ms": 10000,
            "types": ["MarketTick"],
        }
        self._spawn(
            node, self.publisher, self._plan(node, self.publisher, [send], publication=publication)
        )

    def published(self) -> bool:
        if self.publisher == "python":
            return True
        path = self.out(f"pub-{self.publisher}")
        return path.exists() and f"sent {COUNT}\n" in path.read_text()

    # the subscribers

    def start_subscribers(self) -> None:
        for node in self.subscribers:
            language = node.removeprefix("sub-")
            if language == "python":
                bus = MessageBus(self.schema, name=node)
                self.buses.append(bus)
                bus.subscribe(
                    self.schema.MarketTick,
                    lambda t: self.py_ticks.append(
                        (t.symbol, t.seq, t.ts_ns, t.bid, t.ask, t.bid_size, t.ask_size)
                    ),
                )
                bus.add_inbound(ShmSubscription(self.channel, node, schema=self.schema))
                continue
            recv = {
                "name": "recv",
                "consumes": ["MarketTick"],
                "config": {"out": str(self.out(node))},
            }
            subscription = {"node": f"pub-{self.publisher}", "name": self.channel, "cursor": node}
            self._spawn(
                node, language, self._plan(node, language, [recv], subscriptions=[subscription])
            )

    def ticks(self, node: str) -> list[Tick]:
        if node == "sub-python":
            return list(self.py_ticks)
        path = self.out(node)
        rows: list[Tick] = []
        for line in path.read_text().split("\n")[:-1] if path.exists() else []:
            parts = line.split()
            assert parts[0] == "tick" and len(parts) == 8, line
            rows.append(
                (
                    parts[1],
                    int(parts[2]),
                    int(parts[3]),
                    float(parts[4]),
                    float(parts[5]),
                    int(parts[6]),
                    int(parts[7]),
                )
            )
        return rows

    def all_arrived(self) -> bool:
        return all(len(self.ticks(node)) >= COUNT for node in self.subscribers)

    # the end

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every node, wait for each (killed after TIMEOUT); the statuses."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        statuses: dict[str, int | None] = {}
        for node, proc in self.procs.items():
            try:
                statuses[node] = proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                statuses[node] = None
        for bus in self.buses:
            bus.close(timeout=5)
        return statuses

    def cleanup(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for bus in self.buses:
            bus.close(timeout=1)
        unlink(self.channel, missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def broadcast(
    request: pytest.FixtureRequest, programs: dict[str, list[str]], schema: Schema
) -> Iterator[Broadcast]:
    run = Broadcast(request.node.callspec.params["publisher"], programs, schema)
    try:
        yield run
    finally:
        run.cleanup()


@pytest.mark.parametrize("order", ["subscribers-first", "publisher-first"])
@pytest.mark.parametrize("publisher", LANGS)
def test_one_broadcast_channel_reaches_every_language(
    broadcast: Broadcast, publisher: str, order: str
) -> None:
    """Every tick reaches every subscriber in order; one write per publish; clean exits."""
    run = broadcast
    if order == "subscribers-first":
        run.start_subscribers()
        run.start_publisher()
    else:
        run.start_publisher()
        # Everything is published before any subscriber runs: the cursors the
        # publication registered keep it.
        assert wait_for(run.published, TIMEOUT), run.logs()
        run.start_subscribers()
    arrived = wait_for(run.all_arrived, TIMEOUT)
    counts = {node: len(run.ticks(node)) for node in run.subscribers}
    assert arrived, f"ticks arrived: {counts} of {COUNT}\n{run.logs()}"
    assert wait_for(run.published, TIMEOUT), run.logs()

    statuses = run.stop()
    expected = [expected_tick(publisher, i) for i in range(COUNT)]
    for node in run.subscribers:
        assert run.ticks(node) == expected, f"{node}\n{run.logs()}"
    assert statuses == dict.fromkeys(run.procs, 0), run.logs()

    # One write per publish, whatever the number of subscribers.
    assert inspect(run.channel).stats["frames_written"] == COUNT
    table = {c["name"]: c for c in cursors(run.channel)}
    assert set(table) == set(run.subscribers)
    for node, cursor in table.items():
        assert (cursor["frames_read"], cursor["lost"]) == (COUNT, 0), (node, cursor)


# -- from a topology file, through the launcher ------------------------------------


def _topology(
    directory: Path, channel: str, publisher: str, reader: str, programs: dict[str, list[str]]
) -> Path:
    """src (``send`` in ``publisher``'s language) publishing on ``channel``,
    read by sub-<reader> (the ``recv`` of a compiled probe: one per topology,
    both probes naming it so) and sub-python (``recv_python``, the Python
    ``Recv``).  A subscriber publishes nothing: its own channel name is
    never created."""

    def node(name: str, language: str, service: str, endpoint: str) -> str:
        text = f'\n[nodes.{name}]\nservices = ["{service}"]\n'
        text += f'endpoint = {{ kind = "shm", name = "{endpoint}", capacity = {CAPACITY} }}\n'
        if language != "python":
            argv = ", ".join(f'"{a}"' for a in programs[language])
            text += f'language = "{language}"\ncommand = [{argv}]\n'
        return text

    def service(name: str, language: str, consumes: str, config: str, cls: str) -> str:
        text = f"\n[services.{name}]\nconsumes = {consumes}\nconfig = {{ {config} }}\n"
        if language == "python":
            text += f'class = "bus_probe:{cls}"\n'
        return text

    def out(node: str) -> str:
        return str(directory / f"{node}.out")

    text = f'schema = "{SCHEMA_PATH}"\nshm = "broadcast"\n'
    text += node("src", publisher, "send", channel)
    text += node(f"sub-{reader}", reader, "recv", f"{channel}-{reader}")
    text += node("sub-python", "python", "recv_python", f"{channel}-python")
    config = f'count = {COUNT}, symbol = "{publisher}", out = "{out("src")}"'
    text += service("send", publisher, "[]", config, "Send")
    text += service("recv", reader, '["MarketTick"]', f'out = "{out(f"sub-{reader}")}"', "Recv")
    text += service(
        "recv_python", "python", '["MarketTick"]', f'out = "{out("sub-python")}"', "Recv"
    )
    path = directory / "topology.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("publisher", "reader"),
    [(p, r) for p in LANGS for r in ("rust", "ocaml") if r != p],
)
def test_a_broadcast_topology_through_the_launcher(
    programs: dict[str, list[str]], publisher: str, reader: str
) -> None:
    """Launched from a topology: one channel, read in two other languages, one write per publish."""
    directory = Path(tempfile.mkdtemp(prefix="bbt-", dir="/tmp"))
    channel = f"bbt-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    subscribers = [f"sub-{reader}", "sub-python"]
    topology = _topology(directory, channel, publisher, reader, programs)
    launcher = Launcher(
        topology,
        log_dir=directory / "logs",
        extra_paths=[TESTS],
        log_level="INFO",
    )

    def lines(node: str) -> list[str]:
        path = directory / f"{node}.out"
        return path.read_text().split("\n")[:-1] if path.exists() else []

    def logs() -> str:
        out = []
        for node in ["src", *subscribers]:
            path = directory / "logs" / f"{node}.err"
            text = path.read_text(errors="replace")[-3000:] if path.exists() else ""
            out.append(f"--- {node}.err ---\n{text}")
        return "\n".join(out)

    try:
        launcher.start()
        arrived = wait_for(lambda: all(len(lines(n)) >= COUNT for n in subscribers), TIMEOUT)
        counts = {n: len(lines(n)) for n in subscribers}
        assert arrived, f"ticks arrived: {counts} of {COUNT}\n{logs()}"
        # Before the launcher stops (it removes the nodes' channels then).
        assert inspect(channel).stats["frames_written"] == COUNT
        table = {c["name"]: c for c in cursors(channel)}
        assert set(table) == set(subscribers)
        assert all((c["frames_read"], c["lost"]) == (COUNT, 0) for c in table.values()), table
    finally:
        statuses = launcher.stop(timeout=TIMEOUT)
        for name in [channel, *(f"{channel}-{lang}" for lang in LANGS)]:
            unlink(name, missing_ok=True)
        texts = {n: "\n".join(lines(n)) for n in subscribers}
        shutil.rmtree(directory, ignore_errors=True)
    expected = [expected_tick(publisher, i) for i in range(COUNT)]
    for node in subscribers:
        got = [_parse_tick(line) for line in texts[node].split("\n") if line]
        assert got == expected, node
    assert statuses == dict.fromkeys(["src", *subscribers], 0)
    assert launcher.exits == []


def _parse_tick(line: str) -> Tick:
    parts = line.split()
    assert parts[0] == "tick" and len(parts) == 8, line
    return (
        parts[1],
        int(parts[2]),
        int(parts[3]),
        float(parts[4]),
        float(parts[5]),
        int(parts[6]),
        int(parts[7]),
    )
