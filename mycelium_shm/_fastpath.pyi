"""Types of the C fast path (see _fastpath.c): the bases of ShmWriter and ShmReader."""

from collections.abc import Iterable
from typing import Any, Optional

from .frame import Frame

class FastReservation:
    """A claimed frame being filled in place (ShmWriter.reserve)."""

    @property
    def view(self) -> memoryview:
        """Writable memoryview of the payload."""
    def commit(self) -> None:
        """Publish the frame to the reader."""
    def abort(self) -> None:
        """Give the room back (the reader skips it)."""

class FastWriter:
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

def set_frame_type(frame_type: type[Frame]) -> None: ...
