"""Tests of mycelium_shm.bus.launcher: a killed node is detected, restarted, and resumes;
nodes in other languages get their plan; failed starts leave nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bus_support import wait_for

from mycelium_shm import unlink
from mycelium_shm.bus import Launcher, Topology

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


# -- nodes in other languages: the plan contract --------------------------------

FOREIGN_NODE = Path(__file__).resolve().parent / "bus_foreign_node.py"

SIGNAL_SINK = '''
import os
from mycelium_shm.bus import Service, handles


class SignalSink(Service):
    """Appends "<pid> <tick_seq> <symbol>" for every Signal."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.file = open(path, "a", buffering=1)

    @handles("Signal")
    def on_signal(self, sig) -> None:
        self.file.write(f"{os.getpid()} {sig.tick_seq} {sig.symbol}\\n")
'''


def _foreign_topology(tmp_path: Path, relay_config: str = "") -> tuple[Path, dict[str, str]]:
    """pinger (python) -> relay (rust: bus_foreign_node.py) -> sink (python), over shm."""
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    channels = {"relay": f"test-fgn-relay-{tag}", "sink": f"test-fgn-sink-{tag}"}
    (tmp_path / "launch_services.py").write_text(SERVICES)
    (tmp_path / "signal_services.py").write_text(SIGNAL_SINK)
    (tmp_path / "foreign_node.py").write_text(FOREIGN_NODE.read_text())
    path = tmp_path / "topology.toml"
    path.write_text(
        textwrap.dedent(f"""\
        schema = "{SCHEMA_PATH}"
        [nodes.pinger]
        services = ["pinger"]
        [nodes.relay]
        language = "rust"
        command = ["{sys.executable}", "foreign_node.py"]
        services = ["relay"]
        endpoint = {{ kind = "shm", name = "{channels["relay"]}", capacity = 65536 }}
        [nodes.sink]
        services = ["sink"]
        endpoint = {{ kind = "shm", name = "{channels["sink"]}" }}
        [services.pinger]
        class = "launch_services:Pinger"
        consumes = []
        [services.relay]
        consumes = ["MarketTick"]
        config = {{ report = "{tmp_path / "relay.jsonl"}" {relay_config} }}
        [services.sink]
        class = "signal_services:SignalSink"
        consumes = ["Signal"]
        config = {{ path = "{tmp_path / "sink.log"}" }}
        """)
    )
    return path, channels


def _reports(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _signals(path: Path) -> list[tuple[int, int, str]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            rows.append((int(parts[0]), int(parts[1]), parts[2]))
    return rows


def test_a_foreign_node_gets_its_plan_and_joins_the_pipeline(tmp_path: Path) -> None:
    """python -> plan-driven node -> python: argv/env/file mode of the plan, frames both ways."""
    path, channels = _foreign_topology(tmp_path)
    report, sink_log = tmp_path / "relay.jsonl", tmp_path / "sink.log"
    launcher = Launcher(path, log_dir=tmp_path / "logs", backoff_initial=0.05)
    try:
        launcher.start()
        relay_pid = launcher.pid("relay")
        assert wait_for(lambda: len(_signals(sink_log)) >= 20, PROCESS_TIMEOUT), (
            tmp_path / "logs" / "relay.err"
        ).read_text()
        start = _reports(report)[0]
        plan_file = start["argv"][-1]
        assert start["event"] == "start" and start["pid"] == relay_pid
        # command + ["--plan", FILE], run in the topology's directory (so relative paths work).
        assert start["argv"] == ["foreign_node.py", "--plan", plan_file]
        assert start["env_plan"] == plan_file
        assert start["cwd"] == str(tmp_path)
        assert (start["plan_mode"], start["plan_dir_mode"]) == ("0o600", "0o700")
        assert start["plan"] == launcher.plans["relay"] == Topology.load(path).plan("relay")
        assert start["plan"]["links"] == [
            {
                "node": "sink",
                "types": ["Signal"],
                "endpoint": {"kind": "shm", "name": channels["sink"], "capacity": 1 << 20},
            }
        ]
        # Every Signal was made by the relay process from a tick of the pinger, in order.
        rows = _signals(sink_log)
        assert {r[2] for r in rows} == {f"relay-{relay_pid}"}
        seqs = [r[1] for r in rows]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        received = [e["seq"] for e in _reports(report) if e["event"] == "recv"]
        assert seqs == received[: len(seqs)]
        # kill -9: restarted with the same plan, the stream continues through the new one.
        os.kill(relay_pid, signal.SIGKILL)
        assert wait_for(lambda: launcher.starts("relay") == 2, PROCESS_TIMEOUT)
        new_pid = launcher.pid("relay")
        assert wait_for(
            lambda: any(r[2] == f"relay-{new_pid}" for r in _signals(sink_log)), PROCESS_TIMEOUT
        )
        assert os.path.exists(plan_file)
        plan_dir = os.path.dirname(plan_file)
    finally:
        statuses = launcher.stop(timeout=10)
        leftover = [_shm_objects(c) for c in channels.values()]
        for channel in channels.values():
            unlink(channel, missing_ok=True)
    assert statuses == {"pinger": 0, "relay": 0, "sink": 0}
    assert [e["event"] for e in _reports(report)][-1] == "stop"
    assert [e.node for e in launcher.exits] == ["relay"]
    # The relay leaves its channel; the launcher removes it, and the plans.
    assert leftover == [[], []]
    assert not os.path.exists(plan_dir)


def test_a_foreign_node_that_ignores_sigterm_is_killed_and_cleaned_up(tmp_path: Path) -> None:
    """SIGTERM ignored: SIGKILL after the timeout, the process reaped, its channel removed."""
    path, channels = _foreign_topology(tmp_path, ", ignore_sigterm = true")
    launcher = Launcher(path, log_dir=tmp_path / "logs")
    try:
        launcher.start()
        assert wait_for(lambda: len(_reports(tmp_path / "relay.jsonl")) >= 1, PROCESS_TIMEOUT)
        assert wait_for(lambda: bool(_shm_objects(channels["relay"])), PROCESS_TIMEOUT)
        relay_pid = launcher.pid("relay")
    finally:
        statuses = launcher.stop(timeout=1)
        leftover = _shm_objects(channels["relay"])
        for channel in channels.values():
            unlink(channel, missing_ok=True)
    assert statuses == {"pinger": 0, "relay": -signal.SIGKILL, "sink": 0}
    assert leftover == []
    with pytest.raises(ProcessLookupError):
        os.kill(relay_pid, 0)


MISSING_COMMAND = """\
schema = "{schema}"
[nodes.pinger]
services = ["pinger"]
[nodes.sink]
services = ["sink"]
endpoint = {{ kind = "shm", name = "{sink}" }}
[nodes.md]
language = "rust"
services = ["md"]
endpoint = {{ kind = "shm", name = "{md}" }}
command = ["./target/release/no_such_node", "--fast"]
[services.pinger]
class = "launch_services:Pinger"
consumes = []
[services.sink]
class = "launch_services:Sink"
consumes = ["MarketTick"]
config = {{ path = "{log}" }}
[services.md]
consumes = ["MarketTick"]
"""


def _missing_command_topology(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    channels = {"sink": f"test-nocmd-sink-{tag}", "md": f"test-nocmd-md-{tag}"}
    (tmp_path / "launch_services.py").write_text(SERVICES)
    path = tmp_path / "topology.toml"
    path.write_text(
        MISSING_COMMAND.format(schema=SCHEMA_PATH, log=tmp_path / "sink.log", **channels)
    )
    # As a node that got as far as making its channel would have left it.
    from mycelium_shm import ShmWriter
    from mycelium_shm.protocol import Schema

    ShmWriter(channels["sink"], create=True, schema=Schema.load(SCHEMA_PATH)).close()
    return path, channels


def test_a_command_that_does_not_exist_leaves_no_process_and_no_channel(tmp_path: Path) -> None:
    """start() raises a TopologyError at the command's line; the started nodes are reaped."""
    from mycelium_shm.bus import TopologyError

    path, channels = _missing_command_topology(tmp_path)
    launcher = Launcher(path, log_dir=tmp_path / "logs")
    try:
        with pytest.raises(TopologyError) as info:
            launcher.start()
        started = [launcher.pid(n) for n in ("pinger", "sink")]
        leftover = [_shm_objects(c) for c in channels.values()]
    finally:
        launcher.stop()
        for channel in channels.values():
            unlink(channel, missing_ok=True)
    program = tmp_path / "target" / "release" / "no_such_node"
    assert str(info.value) == (
        f"{path}:11: node 'md': cannot start '{program}': No such file or directory"
    )
    assert launcher.pid("md") is None
    for pid in started:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert leftover == [[], []]


def test_launch_command_with_a_missing_program_is_one_line(tmp_path: Path) -> None:
    """`launch`: exit 2, one line on stderr, no node process and no channel left."""
    psutil = pytest.importorskip("psutil")
    path, channels = _missing_command_topology(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        out = subprocess.run(
            [sys.executable, "-m", "mycelium_shm.bus", "launch", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        leftover = [_shm_objects(c) for c in channels.values()]
        strays = [
            p.pid
            for p in psutil.process_iter(["cmdline"])
            if str(path) in " ".join(p.info["cmdline"] or ())
        ]
    finally:
        for channel in channels.values():
            unlink(channel, missing_ok=True)
    program = tmp_path / "target" / "release" / "no_such_node"
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"python -m mycelium_shm.bus: {path}:11: node 'md': cannot start '{program}': "
        "No such file or directory"
    ]
    assert leftover == [[], []]
    assert strays == []


def test_a_node_that_cannot_start_as_configured_is_not_restarted(tmp_path: Path) -> None:
    """A bad config key: the node exits 2 with one line; no restart; `launch` stops the rest."""
    path, channel = _shm_topology(tmp_path, "launch_services:Sink", 'pth = "x"')
    launcher = Launcher(path, log_dir=tmp_path / "logs", backoff_initial=0.01)
    try:
        launcher.start()
        assert launcher.wait("sink", timeout=PROCESS_TIMEOUT) == 2
        time.sleep(0.3)  # a restart would come after 10 ms
        assert launcher.starts("sink") == 1
        assert launcher.alive("pinger")
        err = (tmp_path / "logs" / "sink.err").read_text().splitlines()
        assert err == [
            f"python -m mycelium_shm.bus: {path}:13: service 'sink': config key 'pth' is "
            "not a parameter of launch_services:Sink (parameters: path)"
        ]
    finally:
        statuses = launcher.stop(timeout=10)
    assert statuses == {"pinger": 0, "sink": 2}
    assert _shm_objects(channel) == []
    # The command line gives up on the whole launch.
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-m", "mycelium_shm.bus", "launch", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 1
    assert "config key 'pth' is not a parameter" in out.stderr
    assert "Traceback" not in out.stderr
    assert _shm_objects(channel) == []


def test_a_foreign_node_does_not_outlive_a_killed_launcher(tmp_path: Path) -> None:
    """SIGKILL of `launch`: the plan-driven node (which sets up nothing itself) dies too."""
    psutil = pytest.importorskip("psutil")
    path, channels = _foreign_topology(tmp_path)
    # A killed launcher cannot remove its plans' directory: make it here.
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path))
    launcher = subprocess.Popen(
        [sys.executable, "-m", "mycelium_shm.bus", "launch", str(path), "--log-dir", str(tmp_path)],
        env=env,
    )
    children: list[Any] = []
    try:
        parent = psutil.Process(launcher.pid)
        assert wait_for(lambda: len(parent.children()) == 3, timeout=PROCESS_TIMEOUT)
        assert wait_for(lambda: len(_reports(tmp_path / "relay.jsonl")) >= 1, PROCESS_TIMEOUT)
        children = parent.children()
        relay = [c for c in children if "foreign_node.py" in " ".join(c.cmdline())]
        assert len(relay) == 1
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
        for channel in channels.values():
            unlink(channel, missing_ok=True)


def test_a_program_gone_at_restart_is_reported_and_not_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The node's program is deleted, then the node dies: one error line, no restart loop."""
    path, channels = _foreign_topology(tmp_path)
    program = tmp_path / "relay_node"
    program.write_text(f"#!{sys.executable}\n" + FOREIGN_NODE.read_text())
    program.chmod(0o755)
    text = path.read_text().replace(f'["{sys.executable}", "foreign_node.py"]', '["./relay_node"]')
    path.write_text(text)
    launcher = Launcher(path, log_dir=tmp_path / "logs", backoff_initial=0.01)
    try:
        launcher.start()
        assert wait_for(lambda: len(_reports(tmp_path / "relay.jsonl")) >= 1, PROCESS_TIMEOUT)
        program.unlink()
        relay_pid = launcher.pid("relay")
        assert relay_pid is not None
        with caplog.at_level("ERROR", logger="mycelium_shm.launcher"):
            os.kill(relay_pid, signal.SIGKILL)
            assert launcher.wait("relay", timeout=PROCESS_TIMEOUT) == -signal.SIGKILL
        assert launcher.starts("relay") == 1 and launcher.alive("sink")
    finally:
        statuses = launcher.stop(timeout=10)
        leftover = [_shm_objects(c) for c in channels.values()]
        for channel in channels.values():
            unlink(channel, missing_ok=True)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"{path}:6: node 'relay': cannot start '{program}': No such file or directory; "
        "not restarting it"
    ]
    assert statuses == {"pinger": 0, "relay": -signal.SIGKILL, "sink": 0}
    assert leftover == [[], []]
