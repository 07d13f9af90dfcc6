"""The message bus: typed publish/subscribe inside a process, bridged to others.

Local delivery is synchronous and copy-free: ``publish(msg)`` calls every
handler subscribed to ``type(msg)`` in the publishing thread, with the very
object that was published, and puts that same object in every matching
:class:`Subscriber` queue.  A handler that raises is logged (and reported to
``on_error``); the other handlers still get the message.

Bridges connect the bus to other processes.  :meth:`MessageBus.add_link` sends
the chosen message types out on a :class:`Link` (a shared-memory channel or a
socket): a published message of such a type is encoded once and written to
every link of its type.  :meth:`MessageBus.add_inbound` attaches the endpoint
where this bus's own frames arrive; each frame is decoded and delivered to the
local subscribers of its type only.  A frame that arrived from a transport is
never written to any link, so a message never echoes back to the channel it
came from (and buses bridged both ways cannot loop).

Thread safety: publishing, subscribing and unsubscribing may happen from any
thread at any time.  Subscriptions are copy-on-write tuples, so publishing
takes no lock.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mycelium_shm.errors import DecodeError

from ._ratelimit import LogLimiter
from .errors import BusClosed
from .subscriber import Overflow, Subscriber
from .transports.base import Inbound, Link

__all__ = ["Codec", "MessageBus", "Publisher", "Subscription"]

log = logging.getLogger("mycelium_shm.bus")

Handler = Callable[[Any], object]
L = TypeVar("L", bound=Link)
In = TypeVar("In", bound=Inbound)
ErrorHook = Callable[[BaseException, str], object]


class Codec(Protocol):
    """The part of :class:`mycelium_shm.protocol.Schema` the bus uses."""

    @property
    def digest(self) -> bytes: ...

    def encode(self, msg: Any) -> tuple[int, bytes]: ...

    def decode(self, type_id: int, payload: bytes) -> Any: ...

    def message_type(self, name_or_id: str | int) -> type: ...

    def type_id_of(self, cls: type) -> int: ...


class _Route:
    """Everything the bus knows about one message type."""

    __slots__ = ("cls", "handlers", "links", "queues", "type_id")

    def __init__(self, cls: type, type_id: int | None) -> None:
        self.cls = cls
        self.type_id = type_id
        self.handlers: tuple[Handler, ...] = ()
        self.queues: tuple[Subscriber, ...] = ()
        self.links: tuple[Link, ...] = ()


class Publisher:
    """Publishes messages of one type; get one from :meth:`MessageBus.publisher`."""

    __slots__ = ("_bus", "_route", "message_type")

    def __init__(self, bus: MessageBus, route: _Route) -> None:
        self._bus = bus
        self._route = route
        self.message_type = route.cls

    def publish(self, msg: Any) -> None:
        """Deliver ``msg`` to every local subscriber and every link of its type.

        Raises :class:`TypeError` if ``msg`` is not of this publisher's type,
        :class:`BusClosed` after the bus closed, and whatever a link or a
        ``RAISE`` subscriber raises (``Full``, ``SubscriberOverflow``, ...).
        """
        route = self._route
        if msg.__class__ is not route.cls:
            raise TypeError(f"this publisher sends {route.cls.__name__}, not {type(msg).__name__}")
        bus = self._bus
        if bus._closed:
            raise BusClosed(f"bus {bus.name!r} is closed")
        for handler in route.handlers:
            try:
                handler(msg)
            except Exception as exc:
                bus._report(exc, f"handler {_name_of(handler)} failed on {route.cls.__name__}")
        for queue in route.queues:
            queue.offer(msg)
        if route.links:
            type_id, payload = bus._encode(msg)
            for link in route.links:
                link.send(type_id, payload)

    __call__ = publish

    def __repr__(self) -> str:
        return f"<Publisher {self.message_type.__name__} on {self._bus.name!r}>"


class Subscription:
    """A handler's registration; :meth:`cancel` (or ``with``) removes it."""

    def __init__(self, bus: MessageBus, route: _Route, handler: Handler) -> None:
        self._bus = bus
        self._route = route
        self.handler = handler
        self.active = True

    def cancel(self) -> None:
        """Stop calling the handler; safe to call twice."""
        if self.active:
            self.active = False
            self._bus._remove_handler(self._route, self.handler)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class MessageBus:
    """Typed publish/subscribe, local and across processes.

    ``schema`` (a :class:`mycelium_shm.protocol.Schema`) is needed to bridge to
    other processes and to name types by string; a purely local bus works
    without one, with any Python classes as message types.  ``on_error`` is
    called with ``(exception, context)`` for failures nobody else can see (a
    handler that raised, a frame that did not decode); by default they are
    logged on the ``mycelium_shm.bus`` logger.  Frames that do not decode are
    logged per inbound endpoint at a bounded rate (a peer controls how many
    it sends): the first with its traceback, then at most 10 lines a second,
    and the rest as one ``"N more undecodable frames not logged"`` line a
    second later, or when the bus closes.  With ``autostart=False``,
    inbound reader threads wait for :meth:`start`, so subscriptions can be
    made before the first frame arrives.
    """

    def __init__(
        self,
        schema: Codec | None = None,
        *,
        name: str = "bus",
        on_error: ErrorHook | None = None,
        autostart: bool = True,
    ) -> None:
        self.schema = schema
        self.name = name
        self.on_error = on_error
        self._lock = threading.RLock()
        self._routes: dict[type, _Route] = {}
        self._by_id: dict[int, _Route] = {}
        self._publishers: dict[type, Publisher] = {}
        self._links: list[Link] = []
        # Each endpoint, whether it runs its own thread, and the deliver
        # function it is given (with that endpoint's decode-error limiter).
        self._inbound: list[tuple[Inbound, bool, Callable[[int, bytes], None]]] = []
        self._decode_logs: list[LogLimiter] = []
        self._decode_log = self._decode_limiter(f"bus {name!r}")
        self._closed = False
        self._started = autostart
        self._poll_lock = threading.Lock()
        #: Counters: ``received`` frames, ``unrouted`` frames nobody here
        #: subscribes to, ``decode_errors``, ``handler_errors``.  Updated
        #: without a lock: exact for one reader thread, approximate for several.
        self.stats: dict[str, int] = {
            "received": 0,
            "unrouted": 0,
            "decode_errors": 0,
            "handler_errors": 0,
        }

    # -- types and routes -------------------------------------------------

    def resolve(self, message_type: type | str | int) -> type:
        """The message class for a class, a schema name or a schema type id."""
        if isinstance(message_type, type):
            return message_type
        if self.schema is None:
            raise TypeError(f"naming a message type ({message_type!r}) needs a schema")
        return self.schema.message_type(message_type)

    def _route_for(self, message_type: type | str | int) -> _Route:
        cls = self.resolve(message_type)
        route = self._routes.get(cls)
        if route is not None:
            return route
        with self._lock:
            route = self._routes.get(cls)
            if route is None:
                type_id = None if self.schema is None else self.schema.type_id_of(cls)
                route = _Route(cls, type_id)
                self._routes[cls] = route
                if type_id is not None:
                    self._by_id[type_id] = route
            return route

    def _encode(self, msg: Any) -> tuple[int, bytes]:
        if self.schema is None:
            raise TypeError("a bus without a schema cannot send messages to links")
        return self.schema.encode(msg)

    # -- publishing -------------------------------------------------------

    def publisher(self, message_type: type | str | int) -> Publisher:
        """A :class:`Publisher` for one message type (class, name or id)."""
        return Publisher(self, self._route_for(message_type))

    def publish(self, msg: Any) -> None:
        """Publish ``msg`` (a convenience for ``publisher(type(msg)).publish``)."""
        publisher = self._publishers.get(msg.__class__)
        if publisher is None:
            publisher = self._publishers[msg.__class__] = self.publisher(msg.__class__)
        publisher.publish(msg)

    # -- subscribing ------------------------------------------------------

    def subscribe(self, message_type: type | str | int, handler: Handler) -> Subscription:
        """Call ``handler(msg)`` for every message of that type, in the delivering thread.

        Local messages are handled in the publisher's thread; messages from
        transports in the inbound reader thread or the :meth:`poll` caller.
        """
        self._check_open()
        route = self._route_for(message_type)
        with self._lock:
            route.handlers = (*route.handlers, handler)
        return Subscription(self, route, handler)

    def _remove_handler(self, route: _Route, handler: Handler) -> None:
        with self._lock:
            handlers = list(route.handlers)
            if handler in handlers:
                handlers.remove(handler)
            route.handlers = tuple(handlers)

    def subscriber(
        self,
        *message_types: type | str | int,
        maxsize: int = 1024,
        overflow: Overflow | str = Overflow.BLOCK,
    ) -> Subscriber:
        """A :class:`Subscriber` queue receiving every message of the given types.

        Messages of all the types share one FIFO, in delivery order.  See
        :mod:`mycelium_shm.bus.subscriber` for the overflow policies.
        """
        self._check_open()
        if not message_types:
            raise TypeError("subscriber() needs at least one message type")
        routes = [self._route_for(t) for t in message_types]
        sub = Subscriber(
            tuple(r.cls for r in routes),
            maxsize=maxsize,
            overflow=Overflow(overflow),
            on_close=self._remove_queue,
        )
        with self._lock:
            for route in routes:
                route.queues = (*route.queues, sub)
        return sub

    def _remove_queue(self, sub: Subscriber) -> None:
        with self._lock:
            for route in self._routes.values():
                if sub in route.queues:
                    route.queues = tuple(q for q in route.queues if q is not sub)

    def subscribed_types(self) -> list[type]:
        """The message types that currently have a local handler or queue."""
        return [r.cls for r in self._routes.values() if r.handlers or r.queues]

    # -- bridges ----------------------------------------------------------

    def add_link(self, link: L, message_types: Iterable[type | str | int]) -> L:
        """Send every published message of ``message_types`` out on ``link`` too.

        The bus owns the link from now on: :meth:`close` flushes and closes it.
        """
        self._check_open()
        if self.schema is None:
            raise TypeError("bridging to other processes needs a schema")
        routes = [self._route_for(t) for t in message_types]
        with self._lock:
            if link not in self._links:
                self._links.append(link)
            for route in routes:
                if link not in route.links:
                    route.links = (*route.links, link)
        return link

    def links_of(self, message_type: type | str | int) -> tuple[Link, ...]:
        """The links a published message of that type is written to."""
        return self._route_for(message_type).links

    def add_inbound(self, inbound: In, *, thread: bool = True) -> In:
        """Deliver the frames arriving on ``inbound`` to local subscribers.

        With ``thread=True`` the endpoint runs its own reader thread; with
        ``thread=False`` nothing arrives until you call :meth:`poll`.  (On a
        bus made with ``autostart=False`` the thread starts in :meth:`start`.)  The
        bus owns the endpoint from now on and closes it in :meth:`close`.
        """
        self._check_open()
        if self.schema is None:
            raise TypeError("receiving from other processes needs a schema")
        with self._lock:
            limiter = self._decode_limiter(f"bus {self.name!r} inbound {inbound.name}")
            deliver = functools.partial(self._deliver_frame, limiter)
            self._inbound.append((inbound, thread, deliver))
            start_now = thread and self._started
        if start_now:
            inbound.start(deliver)
        return inbound

    def _decode_limiter(self, name: str) -> LogLimiter:
        limiter = LogLimiter(log, name, "undecodable frames", level=logging.ERROR)
        self._decode_logs.append(limiter)
        return limiter

    def start(self) -> None:
        """Start the reader threads of inbound endpoints (``autostart=False`` buses)."""
        self._check_open()
        with self._lock:
            if self._started:
                return
            self._started = True
            threaded = [(i, d) for i, t, d in self._inbound if t]
        for inbound, deliver in threaded:
            inbound.start(deliver)

    def poll(self, max_frames: int = 1024) -> int:
        """Deliver frames waiting on the polled (``thread=False``) endpoints.

        Handlers run in the calling thread.  Returns the number of frames
        taken, at most ``max_frames`` per endpoint.
        """
        total = 0
        with self._poll_lock:
            for inbound, threaded, deliver in list(self._inbound):
                if not threaded:
                    total += inbound.poll(deliver, max_frames)
        return total

    def deliver_frame(self, type_id: int, payload: bytes) -> None:
        """Decode one frame from a transport and hand it to local subscribers only."""
        self._deliver_frame(self._decode_log, type_id, payload)

    def _deliver_frame(self, decode_log: LogLimiter, type_id: int, payload: bytes) -> None:
        self.stats["received"] += 1
        route = self._by_id.get(type_id)
        if route is None or not (route.handlers or route.queues):
            self.stats["unrouted"] += 1
            return
        try:
            msg = self.schema.decode(type_id, payload)  # type: ignore[union-attr]
        except DecodeError as exc:
            self.stats["decode_errors"] += 1
            self._report(
                exc,
                f"frame of type {type_id} ({len(payload)} bytes) did not decode",
                decode_log,
            )
            return
        for handler in route.handlers:
            try:
                handler(msg)
            except Exception as exc:
                self._report(exc, f"handler {_name_of(handler)} failed on {route.cls.__name__}")
        for queue in route.queues:
            try:
                queue.offer(msg, from_transport=True)
            except BusClosed:
                pass

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every link has sent what it was given; False on timeout."""
        ok = True
        for link in list(self._links):
            ok = link.flush(timeout) and ok
        return ok

    # -- errors and lifetime ------------------------------------------------

    def _report(self, exc: BaseException, context: str, limiter: LogLimiter | None = None) -> None:
        if not isinstance(exc, DecodeError):
            self.stats["handler_errors"] += 1
        if self.on_error is not None:
            try:
                self.on_error(exc, context)
                return
            except Exception:
                log.exception("on_error hook of bus %r failed", self.name)
        if limiter is not None:
            # A peer decides how many of these arrive: bounded, summarised.
            limiter.log("%s: %s: %s", limiter.name, context, exc, exc_info=exc)
            return
        log.error("bus %r: %s", self.name, context, exc_info=exc)

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosed(f"bus {self.name!r} is closed")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close_inbound(self) -> None:
        """Stop receiving from other processes; publishing and links keep working."""
        with self._lock:
            inbound = [i for i, _, _ in self._inbound]
            self._inbound = []
        for endpoint in inbound:
            try:
                endpoint.close()
            except Exception as exc:
                log.warning("bus %r: closing %s failed: %s", self.name, endpoint.name, exc)
        self._flush_decode_logs()

    def _flush_decode_logs(self) -> None:
        """Log the pending "N more undecodable frames" summaries now."""
        with self._lock:
            limiters = list(self._decode_logs)
        for limiter in limiters:
            limiter.flush()

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop receiving, flush and close every link, close every subscriber.

        Links get up to ``timeout`` seconds each to deliver what they hold.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            links = list(self._links)
            queues = {q for r in self._routes.values() for q in r.queues}
        self.close_inbound()
        for link in links:
            try:
                link.close(timeout)
            except Exception as exc:
                log.warning("bus %r: closing %s failed: %s", self.name, link.name, exc)
        for queue in queues:
            queue.close()
        self._flush_decode_logs()

    def __enter__(self) -> MessageBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def from_topology(
        cls,
        path: str | Path,
        service_name: str,
        *,
        schema: Codec | None = None,
        thread: bool = True,
    ) -> MessageBus:
        """The bus of the node that hosts ``service_name`` in a topology file.

        See :mod:`mycelium_shm.bus.topology` for the file format and routing.
        The bus comes back not started: subscribe, then call :meth:`start`
        (or :meth:`poll` with ``thread=False``).
        """
        from .topology import Topology

        topology = Topology.load(path, schema=schema)
        return topology.build_bus(topology.node_of(service_name).name, schema=schema, thread=thread)

    def __repr__(self) -> str:
        return f"<MessageBus {self.name!r} {len(self._routes)} types, {len(self._links)} links>"


def _name_of(handler: Handler) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
