"""Random write/read sequences against a model of the ring.

The model predicts byte positions exactly (16-byte frame headers and
alignment, padding before a frame that would straddle the end), so it knows which writes must fail with
Full, and the test also checks every frame's content and the counters.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mycelium_shm import Frame, ShmReader, ShmWriter

CAPACITY = 1024
# docs/FORMAT.md section 3, written out here so the model checks the core
# against the document rather than against itself.
FRAME_HEADER = 16
ALIGN = 16
MAX_PAYLOAD = CAPACITY // 4 - FRAME_HEADER


def frame_size(payload_len: int) -> int:
    return (FRAME_HEADER + payload_len + ALIGN - 1) & ~(ALIGN - 1)


class RingModel:
    """Where frames land in a ring of CAPACITY bytes."""

    def __init__(self) -> None:
        self.head = self.tail = 0
        self.frames: deque[tuple[int, bytes, int]] = deque()  # type, payload, bytes used
        self.padding = 0

    def claim(self, payload_len: int) -> int | None:
        """Bytes a frame takes now (padding included), None if it does not fit."""
        frame_bytes = frame_size(payload_len)
        to_end = CAPACITY - self.tail % CAPACITY
        need = frame_bytes if frame_bytes <= to_end else to_end + frame_bytes
        return None if self.tail + need - self.head > CAPACITY else need

    def write(self, type_id: int, payload: bytes) -> bool:
        need = self.claim(len(payload))
        if need is None:
            return False
        if need != frame_size(len(payload)):
            self.padding += 1
        self.tail += need
        self.frames.append((type_id, payload, need))
        return True

    def read(self) -> tuple[int, bytes] | None:
        if not self.frames:
            return None
        type_id, payload, need = self.frames.popleft()
        self.head += need
        return type_id, payload


payloads = st.binary(min_size=0, max_size=MAX_PAYLOAD)
type_ids = st.integers(min_value=1, max_value=65535)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), type_ids, payloads),
        st.tuples(st.just("write_many"), st.lists(st.tuples(type_ids, payloads), max_size=12)),
        st.tuples(st.just("reserve"), type_ids, payloads),
        st.tuples(st.just("read")),
        st.tuples(st.just("read_many"), st.integers(min_value=1, max_value=12)),
        st.tuples(st.just("read_view")),
    ),
    max_size=120,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_ring_matches_model(channel_names: Callable[[], str], ops: list) -> None:
    """Every operation's outcome, every frame's bytes and the counters match the model."""
    name = channel_names()
    model = RingModel()
    with ShmWriter(name, create=True, capacity=CAPACITY) as w, ShmReader(name) as r:
        for op in ops:
            kind = op[0]
            if kind == "write":
                assert w.try_write(op[1], op[2]) == model.write(op[1], op[2])
            elif kind == "write_many":
                expected = 0
                for type_id, payload in op[1]:
                    if not model.write(type_id, payload):
                        break
                    expected += 1
                assert w.write_many(op[1], timeout=0) == expected
            elif kind == "reserve":
                if model.claim(len(op[2])) is None:
                    assert not w.try_write(op[1], op[2])  # the same claim must fail
                    continue
                model.write(op[1], op[2])
                with w.reserve(op[1], len(op[2]), timeout=0) as buf:
                    buf[:] = op[2]
            elif kind == "read":
                expected_frame = model.read()
                got = r.try_read()
                assert got == (None if expected_frame is None else Frame(*expected_frame))
            elif kind == "read_many":
                expected_frames = []
                for _ in range(op[1]):
                    item = model.read()
                    if item is None:
                        break
                    expected_frames.append(Frame(*item))
                assert r.read_many(op[1]) == expected_frames
            else:
                item = model.read()
                with r.read_view(timeout=0) as view:
                    if item is None:
                        assert view is None
                    else:
                        assert (view.type_id, bytes(view.payload)) == item
            stats = r.stats()
            assert (stats["head"], stats["tail"]) == (model.head, model.tail)
        leftover = []
        while (item := model.read()) is not None:
            leftover.append(Frame(*item))
        assert r.read_many(len(leftover) + 1) == leftover
        stats = r.stats()
        assert stats["padding_frames"] == model.padding
        assert stats["frames_read"] == stats["frames_written"]
