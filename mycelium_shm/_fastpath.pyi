"""Types of the C fast path (see _fastpath.c): the bases of ShmWriter and ShmReader."""

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Optional

from .frame import Frame, FrameView

class FastReservation:
    """A claimed frame being filled in place (ShmWriter.reserve)."""

    @property
    def view(self) -> memoryview:
        """Writable memoryview of the payload."""
    def commit(self) -> None:
        """Publish the frame to the reader."""
    def abort(self) -> None:
        """Give the room back (the reader skips it)."""

class ReserveBlock:
    """``with w.reserve(type_id, size, timeout=None) as buf:``: claims in
    ``__enter__``, commits on a clean exit, aborts if the block raised."""

    def __enter__(self) -> memoryview: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...

class ViewBlock:
    """``with r.read_view(timeout=None) as frame:``: holds the next frame
    (None on timeout) and consumes it when the block ends."""

    def __enter__(self) -> Optional[FrameView]: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...

class FastWriter:
    def reserve(self, type_id: int, size: int, timeout: Optional[float] = None) -> ReserveBlock:
        """Zero-copy write: ``with w.reserve(t, n) as buf: buf[:] = ...`` fills
        ``n`` bytes in the ring and commits on exit (aborts on an exception)."""
    def _attach(self, address: int) -> None: ...
    def _detach(self) -> None: ...
    def _reserve(self, type_id: int, size: int) -> Optional[FastReservation]:
        """Claim room now: a FastReservation, or None (no room now, or an
        argument for the slow path to reject)."""
    def _adopt(self, position: int, size: int) -> FastReservation:
        """The FastReservation of a frame the cffi path (myc_reserve) claimed."""
    def _try_write_many(self, items: list[tuple[int, Any]]) -> int:
        """How many of the first frames of ``items`` went in now."""
    def write(self, type_id: int, payload: Any, timeout: Optional[float] = None) -> None:
        """Copy one frame in; wait while the ring is full (Full after timeout s)."""
    def try_write(self, type_id: int, payload: Any) -> bool:
        """Copy one frame in if there is room now; False if the ring is full."""
    def write_many(self, frames: Iterable[tuple[int, Any]], timeout: Optional[float] = None) -> int:
        """Write (type_id, payload) pairs, claiming room for as many as fit at once."""

class FastReader:
    def read_view(self, timeout: Optional[float] = None) -> ViewBlock:
        """Zero-copy: ``with r.read_view() as frame:`` gives a FrameView (None on
        timeout) whose payload stays in the ring until the block ends."""
    def _attach(self, address: int) -> None: ...
    def _detach(self) -> None: ...
    def _peek_now(self) -> Optional[tuple[int, memoryview]]:
        """Hold the next frame if one is there now: (type_id, view), else None."""
    def _held_view(self) -> tuple[int, memoryview]:
        """(type_id, view) of the frame held by myc_peek."""
    def _release_held(self) -> None:
        """Consume the held frame."""
    def read(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The next frame, waiting up to timeout s (None: forever); None on timeout."""
    def try_read(self) -> Optional[Frame]:
        """The next frame if one is committed now, else None."""
    def read_many(self, max_frames: int, timeout: Optional[float] = 0) -> list[Frame]:
        """Up to max_frames frames at once, waiting up to timeout s for the first."""
    def _check_no_view(self) -> None:
        """Raise ReadViewOpen if a read_view() block holds a frame."""

def set_reserve_support(reservation_type: type[Any]) -> None: ...
def set_view_support(
    view_context_type: type[Any],
    frame_view_type: type[FrameView],
    view_exit: Callable[..., None],
    views_in_use: dict[int, Any],
) -> None: ...
