"""Run every node of a topology as its own process, and restart the ones that die.

A python node runs ``python -m mycelium_shm.bus run <topology> --node <name>``.
A rust or ocaml node runs its ``command`` followed by ``--plan <file>``, with
the environment variable ``MYCELIUM_BUS_PLAN=<file>`` too: the file is the
node's plan (:meth:`Topology.plan`, JSON), written into a private directory
(mode 0700) that the launcher removes when it stops.  Such a program starts
in the topology file's directory, with SIGINT and SIGTERM unblocked and
their default actions, and gets SIGTERM from the kernel if the launcher dies
(PR_SET_PDEATHSIG).  A command that cannot be executed is a
:class:`TopologyError` at the line of ``command``; the nodes started before
it are stopped and their channels removed.

A monitor thread notices a node that exits: exit status 0 means the node
finished (a service called ``stop_node()``) and it stays down;
:data:`EXIT_CONFIG` (2) means it cannot start as configured, which a restart
would not change: it stays down too, and :meth:`Launcher.run` gives up the
whole launch.  Any other status (a crash, ``kill -9``) is logged and the
node is started again after a pause that doubles with each consecutive
crash, from ``backoff_initial`` to ``backoff_max`` seconds (a node that ran
for ``stable_after`` seconds counts as healthy again).  The other nodes keep running meanwhile: their links
buffer or reconnect.

:meth:`Launcher.stop` (and SIGINT/SIGTERM under :meth:`Launcher.run`) sends
SIGTERM to every node, waits for their clean shutdown, and kills the ones
still running after the timeout.  A python node removes its shared-memory
channel when it exits cleanly or fails to start; after a stop the launcher
removes every inbound channel its nodes' plans name that no live process
reads (what killed nodes and programs that do not clean up left), also after
a start that failed.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional

from ._signals import STOP_SIGNALS, StopSignals, block_stop_signals
from .errors import TopologyError
from .topology import Topology

__all__ = ["EXIT_CONFIG", "Launcher", "NodeExit"]

log = logging.getLogger("mycelium_shm.launcher")

#: Exit status of a node that cannot start as configured (a topology or plan
#: error, an unknown service): the launcher does not restart it.
EXIT_CONFIG = 2

_PR_SET_PDEATHSIG = 1


def _foreign_child_setup() -> None:
    """Runs in a rust/ocaml node's process between fork and exec.

    The monitor thread has SIGINT/SIGTERM blocked (see ``_supervise``): a
    program that installs ordinary handlers must get them unblocked.  The
    kernel sends SIGTERM to the node when the launcher's monitor thread ends.
    Nothing here takes a lock another thread may have held at fork time: two
    system calls, through a function looked up before any fork.
    """
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up once here, never in a forked child.
_prctl = _load_prctl()


@dataclass(frozen=True)
class NodeExit:
    """A node process that ended: which, how (``returncode``, negative = signal), when."""

    node: str
    pid: int
    returncode: int
    at: float = field(default_factory=time.monotonic)


class _Child:
    def __init__(self, node: str) -> None:
        self.node = node
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.started_at = 0.0
        self.failures = 0
        self.restart_at: Optional[float] = None
        self.done = threading.Event()  # set by the monitor thread: the node is down for good
        self.starts = 0
        self.files: list[IO[bytes]] = []


class Launcher:
    """Starts one process per node of a topology file and supervises them.

    ``nodes`` limits it to some nodes.  With ``log_dir`` each node's stdout
    and stderr go to ``<log_dir>/<node>.out`` and ``.err`` (appended across
    restarts); otherwise they are inherited.  ``extra_paths`` are prepended to
    the children's ``PYTHONPATH`` (the package itself and the topology's
    directory always are).
    """

    def __init__(
        self,
        topology: str | Path,
        *,
        nodes: Optional[Sequence[str]] = None,
        restart: bool = True,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        stable_after: float = 10.0,
        log_dir: str | Path | None = None,
        log_level: str = "WARNING",
        extra_paths: Sequence[str | Path] = (),
        python: str = sys.executable,
    ) -> None:
        self.topology_path = Path(topology).resolve()
        self.topology = Topology.load(self.topology_path)
        names = list(self.topology.nodes) if nodes is None else list(nodes)
        for name in names:
            if name not in self.topology.nodes:
                raise KeyError(f"no node {name!r} in {self.topology_path}")
        self.restart = restart
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.log_level = log_level
        self.python = python
        package_root = Path(__file__).resolve().parents[2]
        paths = [str(p) for p in extra_paths]
        paths += [str(package_root), str(self.topology_path.parent)]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        self._env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
        #: The plan of every rust/ocaml node launched here (python nodes read the file).
        self.plans: dict[str, dict[str, Any]] = {
            name: self.topology.plan(name)
            for name in names
            if self.topology.nodes[name].language != "python"
        }
        self._plan_dir: Optional[str] = None
        self._children = {name: _Child(name) for name in names}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: Optional[threading.Thread] = None
        self._stop_timeout = 5.0
        self._statuses: dict[str, Optional[int]] = {}
        #: Every node exit seen so far, in order.
        self.exits: list[NodeExit] = []

    # -- processes -----------------------------------------------------------

    def _plan_file(self, node: str) -> str:
        """Write a node's plan into the launcher's private directory; its path."""
        if self._plan_dir is None:
            self._plan_dir = tempfile.mkdtemp(prefix="mycelium-plans-")
        path = os.path.join(self._plan_dir, f"{node}.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.plans[node], f, indent=2)
        return path

    def _command(self, child: _Child) -> tuple[list[str], dict[str, str], Optional[str], Any]:
        """argv, environment, working directory and preexec function of a node."""
        spec = self.topology.nodes[child.node]
        if spec.language == "python":
            return self._python_command(child), self._env, None, None
        assert spec.command is not None
        plan = self._plan_file(child.node)
        env = dict(self._env, MYCELIUM_BUS_PLAN=plan)
        cmd = [*spec.command, "--plan", plan]
        return cmd, env, str(self.topology_path.parent), _foreign_child_setup

    def _python_command(self, child: _Child) -> list[str]:
        return [
            self.python,
            "-m",
            "mycelium_shm.bus",
            "run",
            str(self.topology_path),
            "--node",
            child.node,
            "--log-level",
            self.log_level,
            "--parent-pid",
            str(os.getpid()),
        ]

    def _spawn(self, child: _Child) -> None:
        cmd, env, cwd, preexec = self._command(child)
        stdout: Any = None
        stderr: Any = None
        for f in child.files:
            f.close()
        child.files = []
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            stdout = open(self.log_dir / f"{child.node}.out", "ab")
            stderr = open(self.log_dir / f"{child.node}.err", "ab")
            child.files = [stdout, stderr]
        try:
            child.proc = subprocess.Popen(
                cmd, stdout=stdout, stderr=stderr, env=env, cwd=cwd, preexec_fn=preexec
            )
        except OSError as exc:
            for f in child.files:
                f.close()
            child.files = []
            raise self.topology.error(
                f"node {child.node!r}: cannot start {cmd[0]!r}: {exc.strerror or exc}",
                "nodes",
                child.node,
                "command",
            ) from None
        child.started_at = time.monotonic()
        child.starts += 1
        child.restart_at = None
        log.info("node %s: started (pid %d)", child.node, child.proc.pid)

    def start(self) -> None:
        """Start the monitor thread, which starts every node; returns once they are."""
        if self._monitor is not None:
            raise RuntimeError("launcher already started")
        spawned = threading.Event()
        failure: list[BaseException] = []
        self._monitor = threading.Thread(
            target=self._supervise, args=(spawned, failure), name="launcher", daemon=True
        )
        self._monitor.start()
        spawned.wait()
        if failure:
            self._monitor.join()
            raise failure[0]

    def _supervise(self, spawned: threading.Event, failure: list[BaseException]) -> None:
        """The monitor thread: start the nodes, restart the ones that die, stop them all.

        Every node is started from this thread, with SIGINT and SIGTERM blocked
        in it, for two reasons.  A child inherits the signal mask, so a node
        sent SIGTERM before it installed its handler keeps the signal pending
        and shuts down cleanly once it has (see ``__main__.run_node``).  And
        PR_SET_PDEATHSIG fires when the *thread* that started a process ends,
        not the process: this thread ends only after every node it started
        has been stopped and reaped.
        """
        block_stop_signals()
        try:
            with self._lock:
                for child in self._children.values():
                    self._spawn(child)
        except BaseException as exc:
            failure.append(exc)
            self._shutdown(self._stop_timeout)
            return
        finally:
            spawned.set()
        try:
            while not self._stopping.wait(0.02):
                with self._lock:
                    now = time.monotonic()
                    for child in self._children.values():
                        self._check(child, now)
        finally:
            self._statuses = self._shutdown(self._stop_timeout)

    def _check(self, child: _Child, now: float) -> None:
        if self._stopping.is_set():
            return
        proc = child.proc
        if proc is not None and not child.done.is_set() and child.restart_at is None:
            rc = proc.poll()
            if rc is None:
                return
            self.exits.append(NodeExit(child.node, proc.pid, rc))
            if rc == 0:
                log.info("node %s finished", child.node)
                child.done.set()
                return
            if rc == EXIT_CONFIG:
                log.error(
                    "node %s (pid %d) cannot start as configured (exit status %d; its "
                    "stderr says why); not restarting it",
                    child.node,
                    proc.pid,
                    rc,
                )
                child.done.set()
                return
            how = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"status {rc}"
            if not self.restart:
                log.error("node %s (pid %d) died with %s", child.node, proc.pid, how)
                child.done.set()
                return
            if now - child.started_at >= self.stable_after:
                child.failures = 0
            child.failures += 1
            delay = min(self.backoff_initial * 2 ** (child.failures - 1), self.backoff_max)
            log.warning(
                "node %s (pid %d) died with %s; restarting in %.2f s",
                child.node,
                proc.pid,
                how,
                delay,
            )
            child.restart_at = now + delay
        if child.restart_at is not None and now >= child.restart_at:
            try:
                self._spawn(child)
            except TopologyError as exc:  # the program went away since the first start
                log.error("%s; not restarting it", exc)
                child.restart_at = None
                child.done.set()

    # -- queries ---------------------------------------------------------------

    def pid(self, node: str) -> Optional[int]:
        """The current process id of a node (None before it started)."""
        proc = self._children[node].proc
        return None if proc is None else proc.pid

    def starts(self, node: str) -> int:
        """How many times a node's process was started (1 + restarts)."""
        return self._children[node].starts

    def alive(self, node: str) -> bool:
        """Whether the node's current process is running."""
        proc = self._children[node].proc
        return proc is not None and proc.poll() is None

    def wait(self, node: str, timeout: Optional[float] = None) -> Optional[int]:
        """Wait until a node is down for good; its last status.

        That is: it exited 0 or :data:`EXIT_CONFIG`, or died with restarts
        off, or its program could not be started again.

        Returns None on timeout.
        """
        child = self._children[node]
        if not child.done.wait(timeout):
            return None
        assert child.proc is not None
        return child.proc.returncode

    # -- shutdown --------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> dict[str, Optional[int]]:
        """SIGTERM every node, wait up to ``timeout`` s, SIGKILL the rest; their statuses.

        The monitor thread does it (see :meth:`_supervise`); this waits for it.
        """
        monitor = self._monitor
        if monitor is None:
            return {}
        with self._lock:
            if not self._stopping.is_set():
                self._stop_timeout = timeout
                self._stopping.set()
        if monitor is not threading.current_thread():
            monitor.join()
        return dict(self._statuses)

    def _shutdown(self, timeout: float) -> dict[str, Optional[int]]:
        with self._lock:
            procs = {c.node: c.proc for c in self._children.values() if c.proc is not None}
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        statuses: dict[str, Optional[int]] = {}
        for node, proc in procs.items():
            try:
                statuses[node] = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("node %s ignored SIGTERM for %.1f s; killing it", node, timeout)
                proc.kill()
                statuses[node] = proc.wait()
        for child in self._children.values():
            for f in child.files:
                f.close()
            child.files = []
        self._unlink_channels()
        if self._plan_dir is not None:
            shutil.rmtree(self._plan_dir, ignore_errors=True)
            self._plan_dir = None
        return statuses

    def _unlink_channels(self) -> None:
        """Remove the shm channels of this launcher's nodes, now all stopped.

        These are the channels the nodes' plans name as ``inbound`` (mailbox)
        or ``publication`` (broadcast: the channel a node publishes on).  A python
        node removes its own when it exits cleanly; this catches the ones left
        by a node that was killed (SIGKILL after the stop timeout, a crash not
        restarted), that never got to start, or whose program does not remove
        it.  A channel that another live process reads is kept (a live
        reader of a broadcast channel: any cursor whose reader lives).
        """
        from mycelium_shm import inspect, unlink
        from mycelium_shm.errors import ChannelNotFound, MyceliumError

        for name in self._children:
            endpoint = self.topology.nodes[name].endpoint
            if endpoint is None or endpoint.kind != "shm":
                continue
            if not (
                self.topology.has_inbound(name) or self.topology.publication_plan(name) is not None
            ):
                continue
            try:
                info = inspect(endpoint.target)
                live = [c["pid"] for c in info.cursors if c["alive"] and c["pid"] != os.getpid()]
                if live:
                    log.warning(
                        "channel %s of node %s is read by live pid %d: not removed",
                        endpoint.target,
                        name,
                        live[0],
                    )
                    continue
                if info.reader_pid and info.reader_alive:
                    log.warning(
                        "channel %s of node %s is read by live pid %d: not removed",
                        endpoint.target,
                        name,
                        info.reader_pid,
                    )
                    continue
                unlink(endpoint.target, missing_ok=True)
            except ChannelNotFound:
                continue
            except (MyceliumError, OSError) as exc:
                log.warning("channel %s of node %s: not removed: %s", endpoint.target, name, exc)

    def run(self) -> int:
        """Start, supervise until SIGINT/SIGTERM or every node finished, stop; 0 if all clean."""
        signals = StopSignals().install()
        try:
            self.start()
            while signals.wait(0.1) is None:
                if all(c.done.is_set() for c in self._children.values()):
                    break
                if any(e.returncode == EXIT_CONFIG for e in self.exits):
                    break  # a node that cannot start: the launch as a whole fails
        finally:
            statuses = self.stop()
            signals.restore()
        return 0 if all(rc in (0, -signal.SIGTERM) for rc in statuses.values()) else 1

    def __enter__(self) -> Launcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
