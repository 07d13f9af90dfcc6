"""What a reader hands out: :class:`Frame` (a copy) and :class:`FrameView` (zero-copy)."""

from __future__ import annotations

from pickle import PickleBuffer
from typing import TYPE_CHECKING

from . import _fastpath
from .errors import MyceliumError

__all__ = ["Frame", "FrameView", "FrameViewInUse"]


if TYPE_CHECKING:

    class Frame(tuple):  # type: ignore[type-arg]
        """One frame: ``type_id`` (1..65535) and ``payload`` (bytes).

        A tuple underneath, so building one costs what a tuple does; unpack
        it as ``type_id, payload = frame``.
        """

        @property
        def type_id(self) -> int: ...
        @property
        def payload(self) -> bytes: ...
        def __new__(cls, type_id: int, payload: bytes) -> Frame: ...

else:
    # Defined in C (_fastpath.c): a Python tuple subclass costs a fifth of
    # read_many's time per frame in generic allocation and deallocation.
    Frame = _fastpath.Frame


class FrameView:
    """A frame still inside the ring: ``payload`` is a read-only memoryview
    of the ring's bytes, valid only inside the ``with reader.read_view()``
    block that produced it.

    When the block ends the payload is released (using it then raises
    ValueError) and the frame is consumed, so writers may reuse its bytes.
    Anything still built over the payload at that moment (a slice or a
    ``memoryview`` of it, ``numpy.frombuffer(frame.payload)``...) would read
    recycled memory: instead the block's exit raises
    :class:`FrameViewInUse` and leaves the frame **unconsumed** in the ring
    (its bytes cannot be overwritten) until those references are gone; the
    reader's next ``read_view()`` consumes it then (or raises
    ``FrameViewInUse`` again while they live).  To keep data past the
    block, copy it inside: ``bytes(frame.payload)``, ``np.array(...)``, or
    ``schema.decode(frame.type_id, frame.payload)``, whose values (NumPy
    arrays included) are always copies when decoded from a view.
    """

    __slots__ = ("payload", "type_id")

    def __init__(self, type_id: int, payload: memoryview) -> None:
        self.type_id = type_id
        self.payload = payload

    def __repr__(self) -> str:
        return f"FrameView(type_id={self.type_id}, {len(self.payload)} bytes)"


class FrameViewInUse(MyceliumError, BufferError):
    """A ``read_view()`` block ended while its payload was still referenced.

    Something built over ``frame.payload`` inside the block outlived it (a
    NumPy array from ``np.frombuffer(frame.payload)``, a slice or
    ``memoryview`` of the payload...).  The frame is left held and
    unconsumed in the ring, so that memory is not overwritten while it is
    referenced; drop the references (copy what you keep: ``bytes(...)``,
    ``np.array(...)``, ``arr.copy()``) and the next ``read_view()`` of the
    reader consumes the frame.  Until then other reads of the reader raise
    (the frame is still held), and closing the reader unmaps the ring under
    those references.
    """


def guarded_payload(base: memoryview) -> memoryview:
    """A memoryview of ``base``'s bytes whose buffer is an export of ``base``.

    Every view derived from it (slices, ``memoryview(payload)``, the
    memoryview ``np.frombuffer`` keeps) shares that one export, so
    ``base.release()`` raises BufferError while any of them is alive: the
    way :func:`release_payload` learns that the ring bytes are still in use.
    (``base`` itself, made by ``PyMemoryView_FromMemory``, has no owner that
    could tell.)
    """
    pb = PickleBuffer(base)  # its getbuffer asks base for a fresh export
    try:
        return memoryview(pb)
    finally:
        pb.release()


def release_payload(view: memoryview, base: memoryview) -> bool:
    """Release a :func:`guarded_payload` view and its base; False if either is still in use.

    Safe to call again after False (a released memoryview's release is a no-op).
    """
    try:
        view.release()
        base.release()
    except BufferError:
        return False
    return True
