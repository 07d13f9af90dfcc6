"""Tests of mycelium_shm.bus.service and .runtime: actors, restarts, clean shutdown."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from bus_support import wait_for

from mycelium_shm.bus import MessageBus, Runtime, Service, SocketInbound, handles
from mycelium_shm.protocol import Schema

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "schemas" / "trading.toml"


def stop(schema: Schema, n: int, reason: str = ""):
    return schema.Stop(last_seq=n, reason=reason)


class Counter(Service):
    """Counts Stops in its own state; raises on reason == "boom"."""

    instances: ClassVar[list[Counter]] = []

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []
        self.threads: set[str] = set()
        self.started = 0
        Counter.instances.append(self)

    def on_start(self) -> None:
        self.started += 1

    @handles("Stop")
    def on_stop_msg(self, msg: Any) -> None:
        self.threads.add(threading.current_thread().name)
        if msg.reason == "boom":
            raise RuntimeError("boom")
        self.seen.append(msg.last_seq)


@pytest.fixture
def counter_runtime(schema: Schema):
    Counter.instances = []
    bus = MessageBus(schema, name="node")
    runtime = Runtime(bus, {"counter": Counter}, restart_initial=0.01, restart_max=0.04)
    runtime.start()
    yield runtime
    runtime.stop(timeout=2)


def test_handlers_run_in_the_service_thread(schema, counter_runtime):
    """A service's handlers run one at a time in its own thread, not the publisher's."""
    bus = counter_runtime.bus
    for i in range(50):
        bus.publish(stop(schema, i))
    service = counter_runtime.service("counter")
    assert wait_for(lambda: len(service.seen) == 50)
    assert service.seen == list(range(50))
    assert service.threads == {"service counter"}


def test_a_raising_handler_restarts_the_service(schema, counter_runtime, caplog):
    """After a handler raises, a fresh instance starts and receives the next messages."""
    bus = counter_runtime.bus
    with caplog.at_level(logging.WARNING, logger="mycelium_shm.runtime"):
        bus.publish(stop(schema, 1))
        bus.publish(stop(schema, 2, "boom"))
        bus.publish(stop(schema, 3))
        assert wait_for(lambda: len(Counter.instances) == 2 and Counter.instances[1].seen == [3])
    first, second = Counter.instances
    assert first.seen == [1] and second.started == 1
    assert counter_runtime.restarts("counter") == 1
    assert "boom" in caplog.text and "restart 1 in 0.010 s" in caplog.text


def test_restart_backoff_doubles_and_is_bounded(schema, counter_runtime, caplog):
    """Consecutive failures wait 0.01, 0.02, 0.04, 0.04 s (the bound)."""
    bus = counter_runtime.bus
    with caplog.at_level(logging.WARNING, logger="mycelium_shm.runtime"):
        for _ in range(4):
            bus.publish(stop(schema, 0, "boom"))
        bus.publish(stop(schema, 9))
        assert wait_for(lambda: Counter.instances[-1].seen == [9])
    delays = [
        r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records if "restart" in r.getMessage()
    ]
    assert delays == ["0.010 s", "0.020 s", "0.040 s", "0.040 s"]


def test_max_restarts_gives_up_and_stops_the_node(schema):
    """With max_restarts, repeated failures stop the node and run() returns 1."""
    Counter.instances = []
    bus = MessageBus(schema)
    runtime = Runtime(bus, {"counter": Counter}, restart_initial=0.001, max_restarts=1)
    runtime.start()  # subscribed before anything is published
    for _ in range(2):
        bus.publish(stop(schema, 0, "boom"))
    guard = threading.Timer(10, runtime.request_stop)  # fail, never hang
    guard.start()
    assert runtime.run(handle_signals=False) == 1
    guard.cancel()


def test_handler_for_an_undeclared_type_is_refused(schema):
    """A service may only handle the types the topology says it consumes."""
    runtime = Runtime(MessageBus(schema), {"counter": Counter}, consumes={"counter": ["Fill"]})
    with pytest.raises(ValueError, match="does not list it under consumes"):
        runtime.start()
    runtime.stop(timeout=1)


NODE_MODULE = """
import sys
from mycelium_shm.bus import Service, handles


class Producer(Service):
    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def on_start(self) -> None:
        for i in range(self.count):
            self.publish(self.schema.Stop(last_seq=i, reason="p"))
        print("READY", flush=True)

    def on_stop(self) -> None:
        print("STOPPED", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_node_process_shuts_down_cleanly_on_signals(schema, tmp_path, signum):
    """SIGTERM/SIGINT stop a node: on_stop runs, links flush, exit status 0."""
    (tmp_path / "node_services.py").write_text(NODE_MODULE)
    sock = str(tmp_path / "sink.sock")
    (tmp_path / "topology.toml").write_text(
        textwrap.dedent(f"""\
        schema = "{SCHEMA_PATH}"
        [nodes.producer]
        services = ["producer"]
        [nodes.sink]
        services = ["sink"]
        endpoint = {{ kind = "unix", path = "{sock}" }}
        [services.producer]
        class = "node_services:Producer"
        consumes = []
        config = {{ count = 5000 }}
        [services.sink]
        consumes = ["Stop"]
        """)
    )
    received: list[int] = []
    sink = SocketInbound(sock, schema=schema)
    sink.start(lambda t, p: received.append(t))
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mycelium_shm.bus",
            "run",
            str(tmp_path / "topology.toml"),
            "--node",
            "producer",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"READY\n"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err.decode()
        assert out == b"STOPPED\n"
        assert wait_for(lambda: len(received) == 5000)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sink.close()


# A signal handled while the main thread holds the stop event's lock: the stack
# of the reported hang, where a second SIGTERM (the launcher's, just after the
# kernel's parent-death one) was handled inside Event.set() in Runtime.stop().
LOCK_WINDOW_SCRIPT = """
import os, signal, sys, threading
from mycelium_shm.bus import MessageBus, Runtime, Service


class SignalInsideSet(threading.Event):
    # Event.set() with one more SIGTERM handled while it holds the event's lock
    # (threading.Event keeps it in _cond), the way a late second signal can be.
    fired = False

    def set(self):
        with self._cond:
            self._flag = True
            if not self.fired and threading.current_thread() is threading.main_thread():
                self.fired = True
                signal.raise_signal(signal.SIGTERM)
            self._cond.notify_all()


class Killer(Service):
    def on_start(self):
        os.kill(os.getpid(), signal.SIGTERM)


runtime = Runtime(MessageBus(name="lock-window"), {"killer": Killer})
runtime.stopping = SignalInsideSet()
sys.exit(runtime.run())
"""


def python_env() -> dict[str, str]:
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )


def test_a_signal_handled_inside_the_stop_event_does_not_deadlock():
    """A SIGTERM handled while run()'s thread holds the stop event's lock still stops the node."""
    proc = subprocess.run(
        [sys.executable, "-c", LOCK_WINDOW_SCRIPT],
        env=python_env(),
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr.decode()


SPIN_MODULE = """
from mycelium_shm.bus import Service


class Spin(Service):
    # Keeps a thread busy, so the main thread waits for the GIL now and then.
    def on_start(self) -> None:
        print("READY", flush=True)
        n = 0
        while not self.stopping:
            n += 1

    def on_stop(self) -> None:
        print("STOPPED", flush=True)
"""


def test_repeated_sigterms_stop_a_node_once_and_exit_0(tmp_path):
    """SIGTERM after SIGTERM, before and during the shutdown: one clean stop, exit status 0."""
    (tmp_path / "spin_services.py").write_text(SPIN_MODULE)
    (tmp_path / "topology.toml").write_text(
        textwrap.dedent(f"""\
        schema = "{SCHEMA_PATH}"
        [nodes.spin]
        services = ["spin"]
        [services.spin]
        class = "spin_services:Spin"
        consumes = []
        """)
    )
    cmd = [
        sys.executable,
        "-m",
        "mycelium_shm.bus",
        "run",
        str(tmp_path / "topology.toml"),
        "--node",
        "spin",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=python_env())
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"READY\n"
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.001)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err.decode()
        assert out == b"STOPPED\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
