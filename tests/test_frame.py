"""Frame, the (type_id, payload) tuple every copying read returns.

It is a C type (_fastpath.c) with a free list of its own; these tests pin
what it promises as a tuple, as a value and as a public class.
"""

from __future__ import annotations

import copy
import gc
import pickle
import weakref

import pytest

from mycelium_shm import Frame, ShmReader, ShmWriter


def test_a_frame_is_a_tuple_with_named_fields() -> None:
    frame = Frame(7, b"hello")
    assert isinstance(frame, tuple) and type(frame) is Frame
    assert (frame.type_id, frame.payload) == (7, b"hello") == tuple(frame)
    type_id, payload = frame
    assert (type_id, payload) == (7, b"hello")
    assert frame == (7, b"hello") and hash(frame) == hash((7, b"hello"))
    assert Frame(type_id=1, payload=b"") == (1, b"")
    assert Frame.__module__ == "mycelium_shm.frame" and Frame.__qualname__ == "Frame"


def test_repr_shows_at_most_32_payload_bytes() -> None:
    assert repr(Frame(7, b"hello")) == "Frame(type_id=7, payload=b'hello' [5 bytes])"
    long = Frame(2, b"x" * 40)
    assert repr(long) == f"Frame(type_id=2, payload={b'x' * 32 + b'...'!r} [40 bytes])"


def test_pickle_and_copy_give_equal_frames() -> None:
    frame = Frame(3, b"\x00\x01" * 50)
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(frame, proto))
        assert type(back) is Frame and back == frame
    assert copy.copy(frame) == frame and copy.deepcopy(frame) == frame


def test_bad_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError):
        Frame(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Frame(1, b"a", b"b")  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        Frame(1, b"a").type_id = 2  # type: ignore[misc]


def test_a_subclass_keeps_its_type_and_frames_stay_frames() -> None:
    """Freed frames are reused; a subclass instance must never be (it would
    hand out a Frame of the wrong type)."""

    class Tagged(Frame):
        pass

    for _ in range(1000):
        tagged = Tagged(1, b"t")
        assert type(tagged) is Tagged and tagged.payload == b"t"
        del tagged
        assert type(Frame(2, b"f")) is Frame


def test_a_cycle_through_a_frame_is_collected() -> None:
    class Box:
        pass

    box = Box()
    frame = Frame(1, box)  # type: ignore[arg-type]
    box.frame = frame  # type: ignore[attr-defined]
    alive = weakref.ref(box)
    del box, frame
    gc.collect()
    assert alive() is None


def test_frames_read_from_a_channel_survive_their_reader(channel_name: str) -> None:
    """Reads build Frames from the free list; each keeps its own bytes."""
    with ShmWriter(channel_name, create=True, capacity=1 << 16) as w, ShmReader(channel_name) as r:
        kept = []
        for round_ in range(50):
            w.write_many([(1 + i, bytes([round_, i]) * 8) for i in range(20)])
            got = r.read_many(100)
            assert [f.type_id for f in got] == list(range(1, 21))
            kept += got[::7]
            del got
        assert all(type(f) is Frame for f in kept)
        assert [f.payload[:2] for f in kept[:3]] == [bytes([0, 0]), bytes([0, 7]), bytes([0, 14])]
        assert len({id(f) for f in kept}) == len(kept)
