"""What a reader hands out: :class:`Frame` (a copy) and :class:`FrameView` (zero-copy)."""

from __future__ import annotations

from operator import itemgetter
from typing import Any


class Frame(tuple):  # type: ignore[type-arg]
    """One frame: ``type_id`` (1..65535) and ``payload`` (bytes).

    A tuple underneath, so building one costs a single C-level allocation;
    unpack it as ``type_id, payload = frame``.
    """

    __slots__ = ()

    type_id: int = property(itemgetter(0))  # type: ignore[assignment]
    payload: bytes = property(itemgetter(1))  # type: ignore[assignment]

    def __new__(cls, type_id: int, payload: bytes) -> Frame:
        return tuple.__new__(cls, (type_id, payload))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        payload = self[1]
        shown = payload if len(payload) <= 32 else payload[:32] + b"..."
        return f"Frame(type_id={self[0]}, payload={shown!r} [{len(payload)} bytes])"


class FrameView:
    """A frame still inside the ring: ``payload`` is a memoryview valid only
    inside the ``with reader.read_view()`` block that produced it."""

    __slots__ = ("payload", "type_id")

    def __init__(self, type_id: int, payload: memoryview) -> None:
        self.type_id = type_id
        self.payload = payload

    def __repr__(self) -> str:
        return f"FrameView(type_id={self.type_id}, {len(self.payload)} bytes)"
