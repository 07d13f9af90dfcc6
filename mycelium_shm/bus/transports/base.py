"""What the bus needs from a transport: outbound links and inbound endpoints.

A transport moves *frames*, a message type id and its encoded payload, and
knows nothing of message classes.  An outbound :class:`Link` carries frames to
one peer endpoint (a shared-memory channel another process reads, a socket
another process listens on).  An :class:`Inbound` endpoint is where frames for
this bus arrive; it either runs its own reader thread (:meth:`Inbound.start`)
or is drained by explicit :meth:`Inbound.poll` calls.

Ordering: frames sent on one link arrive in the order they were sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Deliver", "Inbound", "Link"]

#: Called with (type_id, payload) for every frame an inbound endpoint receives.
Deliver = Callable[[int, bytes], None]


@runtime_checkable
class Link(Protocol):
    """An outbound path to one peer endpoint."""

    #: A short description, e.g. ``"shm:pipeline.risk"`` or ``"tcp:127.0.0.1:7001"``.
    name: str

    def send(self, type_id: int, payload: bytes) -> None:
        """Queue or write one frame; raise rather than lose it silently."""

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every frame sent so far left this process; False on timeout."""

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush (up to ``timeout`` seconds) and release the link."""


@runtime_checkable
class Inbound(Protocol):
    """The endpoint on which frames addressed to this bus arrive."""

    name: str

    def start(self, deliver: Deliver) -> None:
        """Start a reader thread that calls ``deliver`` for every frame."""

    def poll(self, deliver: Deliver, max_frames: int = 1024) -> int:
        """Deliver the frames already waiting (at most ``max_frames``); return how many."""

    def close(self) -> None:
        """Stop the reader thread, if any, and release the endpoint."""
