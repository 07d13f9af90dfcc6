"""Tests of mycelium_shm.bus.launcher: a killed node is detected, restarted, and resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bus_support import wait_for

from mycelium_shm import unlink
from mycelium_shm.bus import Launcher

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "schemas" / "trading.toml"

SERVICES = '''
import os
import time
from mycelium_shm.bus import Service, handles


class Pinger(Service):
    """Publishes a MarketTick every 10 ms until the node stops."""

    def on_start(self) -> None:
        seq = 0
        while not self.stopping:
            self.publish(self.schema.MarketTick(symbol="P", seq=seq, ts_ns=os.getpid(),
                                                bid=1.0, ask=1.0, bid_size=0, ask_size=0))
            seq += 1
            time.sleep(0.01)


class Sink(Service):
    """Appends "<pid> <seq>" to a file for every tick."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.file = open(path, "a", buffering=1)

    @handles("MarketTick")
    def on_tick(self, tick) -> None:
        self.file.write(f"{os.getpid()} {tick.seq} {tick.ts_ns}\\n")
'''


# Process start-up and restarts take longer than in-process delivery.
PROCESS_TIMEOUT = 10.0


def records(path: Path) -> list[tuple[int, int, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return rows


@pytest.fixture(params=["shm", "unix"])
def topology(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    channel = f"test-launch-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if request.param == "shm":
        endpoint = f'{{ kind = "shm", name = "{channel}" }}'
    else:
        endpoint = f'{{ kind = "unix", path = "{tmp_path / "sink.sock"}" }}'
    (tmp_path / "launch_services.py").write_text(SERVICES)
    path = tmp_path / "topology.toml"
    path.write_text(
        textwrap.dedent(f"""\
        schema = "{SCHEMA_PATH}"
        [nodes.pinger]
        services = ["pinger"]
        [nodes.sink]
        services = ["sink"]
        endpoint = {endpoint}
        [services.pinger]
        class = "launch_services:Pinger"
        consumes = []
        [services.sink]
        class = "launch_services:Sink"
        consumes = ["MarketTick"]
        config = {{ path = "{tmp_path / "sink.log"}" }}
        """)
    )
    yield path
    unlink(channel, missing_ok=True)


def test_killed_node_is_detected_restarted_and_resumes(topology):
    """kill -9 of a node: the launcher sees it, its peer keeps running, the new one receives."""
    log_path = topology.parent / "sink.log"
    launcher = Launcher(topology, log_dir=topology.parent / "logs", backoff_initial=0.05)
    launcher.start()
    try:
        assert wait_for(lambda: len(records(log_path)) >= 5, timeout=PROCESS_TIMEOUT), (
            "sink never received"
        )
        pinger_pid = launcher.pid("pinger")
        victim = launcher.pid("sink")
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        assert wait_for(
            lambda: any(e.node == "sink" for e in launcher.exits), timeout=PROCESS_TIMEOUT
        )
        exit_ = next(e for e in launcher.exits if e.node == "sink")
        assert exit_.pid == victim and exit_.returncode == -signal.SIGKILL
        assert wait_for(lambda: launcher.starts("sink") == 2, timeout=PROCESS_TIMEOUT)
        new_pid = launcher.pid("sink")
        assert wait_for(
            lambda: sum(1 for r in records(log_path) if r[0] == new_pid) >= 5,
            timeout=PROCESS_TIMEOUT,
        ), "restarted sink never received"
        # The peer kept running: same process, still alive, still publishing.
        assert launcher.pid("pinger") == pinger_pid and launcher.alive("pinger")
        assert launcher.starts("pinger") == 1
        before = [r[1] for r in records(log_path) if r[0] == victim]
        after = [r[1] for r in records(log_path) if r[0] == new_pid]
        assert after[-1] > before[-1]
        assert {r[2] for r in records(log_path)} == {pinger_pid}
    finally:
        statuses = launcher.stop(timeout=10)
    assert statuses == {"pinger": 0, "sink": 0}


def test_nodes_stopped_while_starting_exit_cleanly(topology):
    """SIGTERM sent right after the nodes were spawned: each shuts down with status 0."""
    launcher = Launcher(topology, log_dir=topology.parent / "logs")
    launcher.start()
    statuses = launcher.stop(timeout=20)
    assert statuses == {"pinger": 0, "sink": 0}


def test_a_node_stopped_while_restarting_exits_cleanly(topology):
    """SIGTERM sent while a killed node's successor is still starting: status 0 for all."""
    launcher = Launcher(topology, log_dir=topology.parent / "logs", backoff_initial=0.01)
    launcher.start()
    try:
        victim = launcher.pid("sink")
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: launcher.starts("sink") == 2, timeout=PROCESS_TIMEOUT)
    finally:
        statuses = launcher.stop(timeout=20)
    assert statuses == {"pinger": 0, "sink": 0}


def test_nodes_do_not_outlive_a_killed_launcher(topology):
    """SIGKILL of the launcher process takes its node processes down too."""
    psutil = pytest.importorskip("psutil")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mycelium_shm.bus",
            "launch",
            str(topology),
            "--log-dir",
            str(topology.parent / "logs"),
        ],
        env=env,
    )
    children: list[Any] = []
    try:
        parent = psutil.Process(launcher.pid)
        assert wait_for(lambda: len(parent.children()) == 2, timeout=PROCESS_TIMEOUT)
        children = parent.children()
        launcher.kill()
        launcher.wait(10)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for child in children:
            if child.is_running():
                child.kill()


# -- channel cleanup ------------------------------------------------------------

FAILING_SERVICES = '''
from mycelium_shm.bus import Service, handles


class BrokenSink(Service):
    """Fails in its constructor: the node dies after its channel was created."""

    def __init__(self) -> None:
        raise RuntimeError("this sink never starts")

    @handles("MarketTick")
    def on_tick(self, tick) -> None:
        pass
'''


def _shm_objects(channel: str) -> list[str]:
    """The /dev/shm objects of a channel (its name, or a name it is a prefix of)."""
    return [e for e in os.listdir("/dev/shm") if e.startswith(f"mycelium.{channel}")]


def _shm_topology(tmp_path: Path, sink_class: str, sink_config: str = "") -> tuple[Path, str]:
    channel = f"test-clean-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    (tmp_path / "launch_services.py").write_text(SERVICES)
    (tmp_path / "failing_services.py").write_text(FAILING_SERVICES)
    path = tmp_path / "topology.toml"
    path.write_text(
        textwrap.dedent(f"""\
        schema = "{SCHEMA_PATH}"
        [nodes.pinger]
        services = ["pinger"]
        [nodes.sink]
        services = ["sink"]
        endpoint = {{ kind = "shm", name = "{channel}" }}
        [services.pinger]
        class = "launch_services:Pinger"
        consumes = []
        [services.sink]
        class = "{sink_class}"
        consumes = ["MarketTick"]
        config = {{ {sink_config} }}
        """)
    )
    return path, channel


def test_a_clean_stop_leaves_no_channel(tmp_path: Path) -> None:
    """After frames flowed and every node stopped cleanly, no mycelium.* object is left."""
    path, channel = _shm_topology(
        tmp_path, "launch_services:Sink", f'path = "{tmp_path / "sink.log"}"'
    )
    launcher = Launcher(path, log_dir=tmp_path / "logs")
    try:
        launcher.start()
        assert wait_for(lambda: len(records(tmp_path / "sink.log")) >= 3, PROCESS_TIMEOUT)
        assert _shm_objects(channel) == [f"mycelium.{channel}"]
    finally:
        statuses = launcher.stop(timeout=10)
        leftover = _shm_objects(channel)
        unlink(channel, missing_ok=True)
    assert statuses == {"pinger": 0, "sink": 0}
    assert leftover == []


def test_the_node_itself_unlinks_its_channel_on_a_clean_exit(tmp_path: Path) -> None:
    """Not only the launcher's sweep: a node stopped by SIGTERM removes its own channel."""
    path, channel = _shm_topology(
        tmp_path, "launch_services:Sink", f'path = "{tmp_path / "sink.log"}"'
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(tmp_path)]))
    node = subprocess.Popen(
        [sys.executable, "-m", "mycelium_shm.bus", "run", str(path), "--node", "sink"],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(lambda: bool(_shm_objects(channel)), PROCESS_TIMEOUT)
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=PROCESS_TIMEOUT) == 0
        assert _shm_objects(channel) == []
    finally:
        if node.poll() is None:
            node.kill()
        node.wait()
        assert node.stderr is not None
        node.stderr.close()
        unlink(channel, missing_ok=True)


def test_a_node_that_fails_to_start_leaves_no_channel(tmp_path: Path) -> None:
    """The sink creates its channel, then its service fails: the channel goes with it."""
    path, channel = _shm_topology(tmp_path, "failing_services:BrokenSink")
    launcher = Launcher(path, log_dir=tmp_path / "logs", restart=False)
    try:
        launcher.start()
        assert launcher.wait("sink", timeout=PROCESS_TIMEOUT) == 1
        # The node's own cleanup, before any launcher sweep at stop.
        leftover_at_failure = _shm_objects(channel)
        assert "this sink never starts" in (tmp_path / "logs" / "sink.err").read_text()
    finally:
        statuses = launcher.stop(timeout=10)
        leftover = _shm_objects(channel)
        unlink(channel, missing_ok=True)
    assert leftover_at_failure == []
    assert leftover == []
    assert statuses["pinger"] == 0 and statuses["sink"] == 1
