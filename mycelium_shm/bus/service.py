"""Services: actors with one handler per message type and their own state.

A service is a class deriving from :class:`Service` whose methods are marked
with :func:`handles`::

    class Strategy(Service):
        def __init__(self, window: int = 8) -> None:
            super().__init__()
            self.window = window
            self.mids: list[float] = []

        @handles("MarketTick")
        def on_tick(self, tick: MarketTick) -> None:
            self.mids.append((tick.bid + tick.ask) / 2)
            self.publish(self.schema.Signal(...))

The :class:`~mycelium_shm.bus.runtime.Runtime` gives every service its own
mailbox and thread: handlers of one service never run concurrently, so a
service's state needs no lock.  When a handler raises, the runtime logs it,
waits (exponential backoff, bounded), and restarts the service: a fresh
instance from the same factory, ``on_start`` again, then the next messages of
the same mailbox (the failing message is not retried).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Service", "ServiceContext", "handles"]

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "_mycelium_handles"


def handles(*message_types: type | str) -> Callable[[F], F]:
    """Mark a method as the handler of one or more message types (classes or names)."""
    if not message_types:
        raise TypeError("handles() needs at least one message type")

    def mark(fn: F) -> F:
        setattr(fn, _MARK, (*getattr(fn, _MARK, ()), *message_types))
        return fn

    return mark


class ServiceContext:
    """What the runtime gives a service: a way to publish and to stop the node."""

    def __init__(
        self,
        name: str,
        publish: Callable[[Any], None],
        request_stop: Callable[[], None],
        stopping: threading.Event,
        schema: Any = None,
    ) -> None:
        self.name = name
        self.schema = schema
        self.publish = publish
        self.request_stop = request_stop
        self.stopping = stopping


class Service:
    """Base class of services; see the module docstring.

    Subclasses may override :meth:`on_start` (runs in the service's thread
    before its first message, again after every restart; a producer may loop
    there while ``not self.stopping``) and :meth:`on_stop`.
    """

    _context: ServiceContext | None = None

    def __init__(self) -> None:
        self.log = logging.getLogger(f"mycelium_shm.service.{type(self).__name__}")

    # -- handler discovery ----------------------------------------------------

    @classmethod
    def handlers(cls) -> dict[type | str, str]:
        """Message type (class or name) -> name of the method that handles it."""
        found: dict[type | str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for message_type in getattr(value, _MARK, ()):
                    found[message_type] = attr
        return found

    # -- what handlers use ------------------------------------------------------

    def bind(self, context: ServiceContext) -> None:
        """Attach the runtime's context (the runtime calls this)."""
        self._context = context
        self.log = logging.getLogger(f"mycelium_shm.service.{context.name}")

    @property
    def name(self) -> str:
        """The service's name in its topology (its class name before binding)."""
        return self._context.name if self._context is not None else type(self).__name__

    @property
    def schema(self) -> Any:
        """The node's schema; message classes are its attributes (``self.schema.Fill``)."""
        if self._context is None or self._context.schema is None:
            raise RuntimeError(f"service {self.name} has no schema outside a runtime")
        return self._context.schema

    def publish(self, msg: Any) -> None:
        """Publish a message on the node's bus."""
        if self._context is None:
            raise RuntimeError(f"service {self.name} is not running in a runtime")
        self._context.publish(msg)

    def stop_node(self) -> None:
        """Ask the runtime hosting this service to shut the whole node down."""
        if self._context is not None:
            self._context.request_stop()

    @property
    def stopping(self) -> bool:
        """True once the node is shutting down (long loops should return)."""
        return self._context is not None and self._context.stopping.is_set()

    # -- lifecycle hooks ---------------------------------------------------------

    def on_start(self) -> None:
        """Called in the service's thread before its first message (and after restarts)."""

    def on_stop(self) -> None:
        """Called in the service's thread once its mailbox is closed and drained."""
