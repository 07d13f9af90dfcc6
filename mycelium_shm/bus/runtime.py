"""The runtime hosting one node's services.

:meth:`Runtime.start` gives each service a mailbox (a :class:`Subscriber` over
the types it handles, ``Overflow.BLOCK``) and a thread, then starts the bus's
inbound endpoints, so no frame arrives before its subscribers exist.

A handler that raises is logged with its traceback and the service restarts
after a pause that doubles with every consecutive failure, from
``restart_initial`` up to ``restart_max`` seconds (a handled message resets
the count).  With ``max_restarts`` the service gives up after that many
consecutive failures and the node shuts down.

:meth:`Runtime.run` blocks until SIGINT or SIGTERM (or a service calls
``stop_node()``), then shuts down cleanly: inbound endpoints close first, each
service drains its mailbox in topology order and runs ``on_stop``, and the
bus flushes its links so nothing already published is lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._signals import StopSignals
from .bus import MessageBus
from .errors import BusClosed
from .service import Service, ServiceContext
from .subscriber import Overflow, Subscriber

__all__ = ["Runtime"]

log = logging.getLogger("mycelium_shm.runtime")

ServiceFactory = Callable[[], Service]


class _Host:
    """One service: its factory, mailbox, thread and restart bookkeeping."""

    def __init__(self, runtime: Runtime, name: str, factory: ServiceFactory) -> None:
        self.runtime = runtime
        self.name = name
        self.factory = factory
        self.instance = factory()
        self.restarts = 0
        self.failures = 0
        self.mailbox: Subscriber | None = None
        self.thread: threading.Thread | None = None
        self.handlers: dict[type, str] = {}
        self.failed = False

    def open(self, bus: MessageBus, consumes: set[type] | None) -> None:
        declared = {bus.resolve(t): m for t, m in type(self.instance).handlers().items()}
        if consumes is not None:
            missing = [t.__name__ for t in declared if t not in consumes]
            if missing:
                raise ValueError(
                    f"service {self.name!r} handles {', '.join(missing)} but the topology "
                    "does not list it under consumes"
                )
        self.handlers = declared
        if declared:
            self.mailbox = bus.subscriber(
                *declared, maxsize=self.runtime.mailbox_size, overflow=Overflow.BLOCK
            )
        self.thread = threading.Thread(target=self._main, name=f"service {self.name}", daemon=True)

    def _bind(self, instance: Service) -> None:
        runtime = self.runtime
        instance.bind(
            ServiceContext(
                self.name,
                runtime.bus.publish,
                runtime.request_stop,
                runtime.stopping,
                runtime.bus.schema,
            )
        )

    def _main(self) -> None:
        current: Service | None = self.instance
        assert current is not None
        self._bind(current)
        if not self._call("on_start", current.on_start):
            current = self._restart()
        if current is not None and self.mailbox is None:
            self.runtime.stopping.wait()
        while current is not None and self.mailbox is not None:
            try:
                msg = self.mailbox.get()
            except BusClosed:
                break
            handler = getattr(current, self.handlers[msg.__class__])
            if self._call(f"handler for {type(msg).__name__}", handler, msg):
                self.failures = 0
                continue
            current = self._restart()
        if current is None:
            return
        try:
            current.on_stop()
        except Exception:
            log.exception("service %s: on_stop failed", self.name)

    def _call(self, what: str, fn: Callable[..., object], *args: Any) -> bool:
        try:
            fn(*args)
            return True
        except Exception:
            log.exception("service %s: %s raised", self.name, what)
            return False

    def _restart(self) -> Service | None:
        """Back off, then build and start a fresh instance; None if giving up or stopping."""
        runtime = self.runtime
        while True:
            self.failures += 1
            if runtime.max_restarts is not None and self.failures > runtime.max_restarts:
                log.error(
                    "service %s failed %d times in a row; giving up, stopping the node",
                    self.name,
                    self.failures,
                )
                self.failed = True
                runtime.request_stop()
                return None
            delay = min(runtime.restart_initial * 2 ** (self.failures - 1), runtime.restart_max)
            log.warning("service %s: restart %d in %.3f s", self.name, self.restarts + 1, delay)
            if runtime.stopping.wait(delay):
                return None
            self.restarts += 1
            try:
                instance = self.factory()
            except Exception:
                log.exception("service %s: constructing a fresh instance failed", self.name)
                continue
            self.instance = instance
            self._bind(instance)
            if self._call("on_start", instance.on_start):
                return instance


class Runtime:
    """Hosts a node's services on one bus.

    ``services`` maps service names to factories (a :class:`Service` subclass
    or any zero-argument callable returning a service).  ``consumes`` (from a
    topology) lists the type names each service may handle; a handler for an
    undeclared type is an error, because no other node would send it.
    """

    def __init__(
        self,
        bus: MessageBus,
        services: Mapping[str, ServiceFactory],
        *,
        consumes: Mapping[str, list[str] | tuple[str, ...]] | None = None,
        mailbox_size: int = 8192,
        restart_initial: float = 0.05,
        restart_max: float = 5.0,
        max_restarts: int | None = None,
    ) -> None:
        self.bus = bus
        self.mailbox_size = mailbox_size
        self.restart_initial = restart_initial
        self.restart_max = restart_max
        self.max_restarts = max_restarts
        self.stopping = threading.Event()
        self._consumes = consumes
        self._hosts = [_Host(self, name, factory) for name, factory in services.items()]
        self._started = False
        self._stopped = False
        self._signals: StopSignals | None = None

    @classmethod
    def from_topology(
        cls,
        path: str | Path,
        node: str,
        *,
        schema: Any = None,
        factories: Mapping[str, ServiceFactory] | None = None,
        **options: Any,
    ) -> Runtime:
        """The runtime of one node of a topology file.

        Services are built from ``factories`` when given there, else from the
        topology's ``class`` and ``config`` keys.
        """
        from .topology import Topology

        topology = Topology.load(path, schema=schema)
        if node not in topology.nodes:
            raise KeyError(f"no node {node!r} in {path} (nodes: {', '.join(topology.nodes)})")
        spec_node = topology.nodes[node]
        if spec_node.language != "python":
            raise topology.error(
                f"node {node!r} is a {spec_node.language} node: it runs as its command "
                "(python -m mycelium_shm.bus launch starts it), not in a Python runtime",
                "nodes",
                node,
                "language",
            )
        # Classes and configs are checked before the bus exists, so a bad one
        # leaves no channel behind.
        built: dict[str, ServiceFactory] = {}
        consumes: dict[str, tuple[str, ...]] = {}
        for name in spec_node.services:
            consumes[name] = topology.services[name].consumes
            if factories is not None and name in factories:
                built[name] = factories[name]
            else:
                built[name] = topology.service_factory(name)
        bus = topology.build_bus(node, schema=schema)
        try:
            return cls(bus, built, consumes=consumes, **options)
        except BaseException:
            bus.close(timeout=0)
            raise

    # -- lifecycle ----------------------------------------------------------

    def service(self, name: str) -> Service:
        """The current instance of a hosted service (it changes on restart)."""
        for host in self._hosts:
            if host.name == name:
                return host.instance
        raise KeyError(name)

    def restarts(self, name: str) -> int:
        """How many times a service was restarted."""
        for host in self._hosts:
            if host.name == name:
                return host.restarts
        raise KeyError(name)

    def start(self) -> None:
        """Open mailboxes, start service threads, then start receiving."""
        if self._started:
            return
        self._started = True
        for host in self._hosts:
            consumes = None
            if self._consumes is not None:
                consumes = {self.bus.resolve(t) for t in self._consumes.get(host.name, ())}
            host.open(self.bus, consumes)
        for host in self._hosts:
            assert host.thread is not None
            host.thread.start()
        self.bus.start()
        log.info("node %s: started %s", self.bus.name, ", ".join(h.name for h in self._hosts))

    def request_stop(self) -> None:
        """Ask :meth:`run` to return (thread-safe; what SIGINT/SIGTERM do)."""
        self.stopping.set()
        signals = self._signals
        if signals is not None:
            signals.wake()

    def run(self, *, handle_signals: bool = True, signals: StopSignals | None = None) -> int:
        """Start, wait for a stop request or SIGINT/SIGTERM, shut down; the exit code.

        With ``handle_signals`` (and in the main thread) SIGINT and SIGTERM are
        caught while this runs.  ``signals`` is a :class:`StopSignals` installed
        earlier by the caller (``python -m mycelium_shm.bus run`` installs one
        before building the node, so a signal during start-up is not lost); if
        it has a signal already, the node shuts down without starting.

        Returns 0, or 1 if a service gave up after ``max_restarts``.
        """
        own: StopSignals | None = None
        if signals is None and handle_signals:
            if threading.current_thread() is threading.main_thread():
                signals = own = StopSignals().install()
        try:
            if signals is None:
                self.start()
                while not self.stopping.wait(0.1):
                    pass
            else:
                # The handler must not set self.stopping (see _signals): wait
                # on the signals, which request_stop() wakes as well.
                self._signals = signals
                if signals.received is None:
                    self.start()
                while not self.stopping.is_set() and signals.wait() is None:
                    pass
                if signals.received is not None:
                    log.info("node %s: %s, shutting down", self.bus.name, signals.received.name)
        finally:
            self._signals = None
            self.stop()
            if own is not None:
                own.restore()
        return 1 if any(h.failed for h in self._hosts) else 0

    def stop(self, timeout: float = 5.0) -> None:
        """Shut down: stop receiving, drain and stop services in order, flush links."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        self.bus.close_inbound()
        for host in self._hosts:
            if host.mailbox is not None:
                host.mailbox.close()
            if host.thread is not None and host.thread.is_alive():
                if host.thread is not threading.current_thread():
                    host.thread.join(timeout)
                    if host.thread.is_alive():
                        log.warning("service %s did not stop within %.1f s", host.name, timeout)
        self.bus.close(timeout)
        log.info("node %s: stopped", self.bus.name)

    def __enter__(self) -> Runtime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
