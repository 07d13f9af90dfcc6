"""Transports of the bus: shared-memory channels and stream sockets."""

from __future__ import annotations

from .base import Deliver, Inbound, Link
from .shm import ShmInbound, ShmLink, ShmPublication, ShmSubscription
from .socket import SocketAddress, SocketInbound, SocketLink, handshake, parse_tcp_address

__all__ = [
    "Deliver",
    "Inbound",
    "Link",
    "ShmInbound",
    "ShmLink",
    "ShmPublication",
    "ShmSubscription",
    "SocketAddress",
    "SocketInbound",
    "SocketLink",
    "handshake",
    "parse_tcp_address",
]
