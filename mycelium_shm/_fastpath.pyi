"""Types of the C fast path (see _fastpath.c): the bases of ShmWriter and ShmReader."""

from collections.abc import Iterable
from typing import Any, Optional

from .frame import Frame

class FastWriter:
    def _attach(self, address: int) -> None: ...
    def _detach(self) -> None: ...
    def write(self, type_id: int, payload: Any, timeout: Optional[float] = None) -> None:
        """Copy one frame in; wait while the ring is full (Full after timeout s)."""
    def try_write(self, type_id: int, payload: Any) -> bool:
        """Copy one frame in if there is room now; False if the ring is full."""
    def write_many(self, frames: Iterable[tuple[int, Any]], timeout: Optional[float] = None) -> int:
        """Write (type_id, payload) pairs, claiming room for as many as fit at once."""

class FastReader:
    def _attach(self, address: int) -> None: ...
    def _detach(self) -> None: ...
    def read(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The next frame, waiting up to timeout s (None: forever); None on timeout."""
    def try_read(self) -> Optional[Frame]:
        """The next frame if one is committed now, else None."""
    def read_many(self, max_frames: int, timeout: Optional[float] = 0) -> list[Frame]:
        """Up to max_frames frames at once, waiting up to timeout s for the first."""

def set_frame_type(frame_type: type) -> None: ...
