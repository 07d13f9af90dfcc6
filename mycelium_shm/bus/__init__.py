"""The message bus: typed publish/subscribe within and across processes.

>>> from mycelium_shm.bus import MessageBus
>>> class Ping:
...     pass
>>> bus = MessageBus()
>>> seen = []
>>> sub = bus.subscribe(Ping, seen.append)
>>> msg = Ping()
>>> bus.publisher(Ping).publish(msg)
>>> seen[0] is msg
True
>>> bus.close()

Modules: :mod:`~mycelium_shm.bus.bus` (the bus, publishers, bridges),
:mod:`~mycelium_shm.bus.subscriber` (queues and overflow policies),
:mod:`~mycelium_shm.bus.transports` (shared memory, Unix and TCP sockets),
:mod:`~mycelium_shm.bus.topology` (topology files),
:mod:`~mycelium_shm.bus.service` and :mod:`~mycelium_shm.bus.runtime`
(services as actors), :mod:`~mycelium_shm.bus.launcher` (one process per
node, restarted when it dies).
"""

from __future__ import annotations

from .bus import Codec, MessageBus, Publisher, Subscription
from .errors import BusClosed, SubscriberOverflow, TopologyError, TransportError
from .launcher import Launcher
from .runtime import Runtime
from .service import Service, ServiceContext, handles
from .subscriber import Overflow, Subscriber
from .topology import Endpoint, NodeSpec, ServiceSpec, Topology
from .transports import (
    ShmInbound,
    ShmLink,
    ShmPublication,
    ShmSubscription,
    SocketInbound,
    SocketLink,
)

__all__ = [
    "BusClosed",
    "Codec",
    "Endpoint",
    "Launcher",
    "MessageBus",
    "NodeSpec",
    "Overflow",
    "Publisher",
    "Runtime",
    "Service",
    "ServiceContext",
    "ServiceSpec",
    "ShmInbound",
    "ShmLink",
    "ShmPublication",
    "ShmSubscription",
    "SocketInbound",
    "SocketLink",
    "Subscriber",
    "SubscriberOverflow",
    "Subscription",
    "Topology",
    "TopologyError",
    "TransportError",
    "handles",
]
