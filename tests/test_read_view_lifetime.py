"""read_view(): nothing built over a frame's payload may outlive the ring slot.

A payload view is released when its block ends; anything still derived from
it then (a NumPy array over it, a slice, a memoryview) makes the exit raise
FrameViewInUse and keeps the frame unconsumed, so writers cannot overwrite
the bytes those references read.  Decoding a FrameView copies.
"""

from __future__ import annotations

from typing import Any

import pytest

from mycelium_shm import Full, MyceliumError, ShmReader, ShmWriter
from mycelium_shm.channel import frame_bytes
from mycelium_shm.frame import FrameViewInUse
from mycelium_shm.protocol import Schema

np = pytest.importorskip("numpy")

CAP = 4096
PAYLOAD = bytes(range(256)) * 2  # 512 bytes, a recognisable pattern


def fill_ring(w: ShmWriter) -> int:
    """Write 0xEE frames until the ring is full; the number written."""
    n = 0
    while True:
        try:
            w.write(9, b"\xee" * 500, timeout=0)
        except Full:
            return n
        n += 1


def derived(kind: str, payload: memoryview) -> Any:
    """Something built over a frame's payload, of the given kind."""
    if kind == "frombuffer":
        return np.frombuffer(payload, dtype=np.uint8)
    if kind == "slice":
        return payload[10:20]
    if kind == "memoryview":
        return memoryview(payload)
    if kind == "frombuffer_of_slice":
        return np.frombuffer(payload[8:], dtype="<u4")
    raise AssertionError(kind)


def as_bytes(obj: Any) -> bytes:
    return obj.tobytes() if hasattr(obj, "tobytes") else bytes(obj)


@pytest.mark.parametrize("kind", ["frombuffer", "slice", "memoryview", "frombuffer_of_slice"])
def test_a_reference_kept_past_the_block_raises_and_pins_the_frame(
    channel_name: str, kind: str
) -> None:
    """The exit raises FrameViewInUse, the frame stays in the ring and is never overwritten."""
    with ShmWriter(channel_name, create=True, capacity=CAP) as w, ShmReader(channel_name) as r:
        w.write(5, PAYLOAD)
        w.write(6, b"next")
        with pytest.raises(FrameViewInUse) as info:
            with r.read_view(timeout=1) as frame:
                assert frame is not None
                kept = derived(kind, frame.payload)
                expected = as_bytes(kept)
        err = info.value
        assert isinstance(err, MyceliumError) and isinstance(err, BufferError)
        assert "still referenced" in str(err) and "np.frombuffer" in str(err)
        assert r.stats()["head"] == 0  # not consumed
        # Writers find no room where the frame is, so its bytes stay intact.
        fill_ring(w)
        assert as_bytes(kept) == expected
        # Other reads refuse rather than consume the pinned frame.
        with pytest.raises(MyceliumError):
            r.read(timeout=0)
        assert r.stats()["head"] == 0
        # While the reference lives, the next read_view() raises again.
        with pytest.raises(FrameViewInUse, match="next read_view"):
            with r.read_view(timeout=0):
                pass
        assert r.stats()["head"] == 0
        del kept
        # Gone: the next read_view() consumes it and goes on with the next frame.
        with r.read_view(timeout=1) as frame:
            assert frame is not None
            assert (frame.type_id, bytes(frame.payload)) == (6, b"next")
        assert r.stats()["head"] == frame_bytes(len(PAYLOAD)) + frame_bytes(4)


def test_the_exit_error_chains_the_blocks_own_exception(channel_name: str) -> None:
    """An exception leaving the block is kept as the FrameViewInUse's context."""
    with ShmWriter(channel_name, create=True, capacity=CAP) as w, ShmReader(channel_name) as r:
        w.write(5, PAYLOAD)
        with pytest.raises(FrameViewInUse) as info:
            with r.read_view(timeout=1) as frame:
                kept = np.frombuffer(frame.payload, dtype=np.uint8)
                raise KeyError("inside")
        assert isinstance(info.value.__context__, KeyError)
        del kept
        with r.read_view(timeout=0) as frame:
            assert frame is None
        assert r.stats()["head"] == frame_bytes(len(PAYLOAD))


def test_copies_and_released_views_do_not_pin(channel_name: str) -> None:
    """Copies made inside the block, and the FrameView kept after it, are fine."""
    with ShmWriter(channel_name, create=True, capacity=CAP) as w, ShmReader(channel_name) as r:
        w.write(5, PAYLOAD)
        with r.read_view(timeout=1) as frame:
            a = np.array(frame.payload)  # copies
            b = np.frombuffer(frame.payload, dtype=np.uint8).copy()
            c = bytes(frame.payload[1:4])
            tmp = np.frombuffer(frame.payload, dtype=np.uint8)
            total = int(tmp.sum())
            del tmp  # dropped inside the block: fine
        assert r.stats()["head"] == frame_bytes(len(PAYLOAD))
        with pytest.raises(ValueError):
            bytes(frame.payload)  # the view itself is released
        fill_ring(w)
        assert a.tobytes() == b.tobytes() == PAYLOAD and c == PAYLOAD[1:4]
        assert total == sum(PAYLOAD)


def test_decoding_a_frame_view_copies_arrays(channel_name: str) -> None:
    """schema.decode over frame.payload gives arrays that own their data (arrays="numpy")."""
    schema = Schema.load("schemas/trading.toml", arrays="numpy")
    sig = schema.Signal(1, "S", 2, -1, 0.5, np.arange(100, dtype=np.float32))
    with (
        ShmWriter(channel_name, create=True, capacity=CAP, schema=schema) as w,
        ShmReader(channel_name, schema=schema) as r,
    ):
        w.write(*schema.encode(sig))
        with r.read_view(timeout=1) as frame:
            out = schema.decode(frame.type_id, frame.payload)
        assert r.stats()["head"] > 0  # consumed, no FrameViewInUse
        fill_ring(w)  # the slot's bytes are overwritten with 0xEE
        assert out == sig  # a copy: the ring's bytes are 0xEE by now
        assert isinstance(out.features, np.ndarray) and out.features.dtype == np.float32
