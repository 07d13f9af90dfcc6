"""ShmReader: reading one, many, zero-copy; ownership; iteration."""

from __future__ import annotations

import threading

import pytest

from mycelium_shm import ChannelClosed, Frame, ReaderBusy, ShmReader, ShmWriter
from mycelium_shm.channel import frame_bytes


def test_read_returns_frames_in_order(channel_name: str) -> None:
    """Frames come back as written: type id and payload bytes, in order."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        assert r.try_read() is None
        assert r.read(timeout=0.01) is None
        for i in range(1, 50):
            w.write(i, bytes([i]) * i)
        frames = [r.read(timeout=1) for _ in range(49)]
        assert [(f.type_id, f.payload) for f in frames] == [
            (i, bytes([i]) * i) for i in range(1, 50)
        ]
        assert frames[0] == Frame(1, b"\x01")
        type_id, payload = frames[1]
        assert (type_id, payload) == (2, b"\x02\x02")


def test_read_many_and_partial_batches(channel_name: str) -> None:
    """read_many returns up to max_frames frames, [] when empty."""
    with ShmWriter(channel_name, create=True, capacity=1 << 16) as w, ShmReader(channel_name) as r:
        assert r.read_many(10) == []
        w.write_many([(7, b"%d" % i) for i in range(25)])
        first = r.read_many(10)
        rest = r.read_many(100, timeout=1)
        assert [f.payload for f in first + rest] == [b"%d" % i for i in range(25)]
        assert all(f.type_id == 7 for f in first + rest)
        stats = r.stats()
        assert stats["frames_read"] == 25 and stats["head"] == stats["tail"]


def test_read_view_is_zero_copy_and_released_after_the_block(channel_name: str) -> None:
    """read_view exposes the payload in place; the frame is consumed when the block ends."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        w.write(5, b"in place")
        with r.read_view(timeout=1) as frame:
            assert frame.type_id == 5
            assert bytes(frame.payload) == b"in place"
            assert r.stats()["head"] == 0  # still in the ring
            with pytest.raises(TypeError):
                frame.payload[0] = 1  # read-only
        assert r.stats()["head"] == frame_bytes(len(b"in place"))
        with pytest.raises(ValueError):
            bytes(frame.payload)  # released
        with r.read_view(timeout=0.01) as nothing:
            assert nothing is None


def test_second_live_reader_is_refused(channel_name: str) -> None:
    """A second reader while one is alive raises ReaderBusy; after close it may attach."""
    with ShmWriter(channel_name, create=True, capacity=4096):
        r = ShmReader(channel_name)
        with pytest.raises(ReaderBusy, match="live reader"):
            ShmReader(channel_name)
        r.close()
        ShmReader(channel_name).close()


def test_reader_may_create(channel_name: str) -> None:
    """ShmReader(create=True) makes the channel writers then attach to."""
    with ShmReader(channel_name, create=True, capacity=4096) as r, ShmWriter(channel_name) as w:
        w.write(1, b"x")
        assert r.read(timeout=1).payload == b"x"


def test_blocking_read_wakes_on_write(channel_name: str) -> None:
    """A reader blocked in read() returns the frame a thread writes later."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        timer = threading.Timer(0.2, lambda: w.write(9, b"late"))
        timer.start()
        frame = r.read()
        timer.join()
        assert frame == Frame(9, b"late")
        assert r.stats()["writer_wakes"] >= 1


def test_iteration_yields_frames(channel_name: str) -> None:
    """Iterating a reader yields frames as they arrive."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        w.write_many([(1, b"a"), (2, b"b"), (3, b"c")])
        it = iter(r)
        assert [next(it).payload for _ in range(3)] == [b"a", b"b", b"c"]


def test_closed_reader_raises(channel_name: str) -> None:
    """Using a reader after close() raises ChannelClosed."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    r = ShmReader(channel_name)
    r.close()
    with pytest.raises(ChannelClosed):
        r.read(timeout=0)
    with pytest.raises(ChannelClosed):
        with r.read_view():
            pass


def test_frame_repr_and_pickle() -> None:
    """Frames print their type and a payload prefix and survive pickling."""
    import pickle

    frame = Frame(3, b"x" * 100)
    assert "type_id=3" in repr(frame) and "[100 bytes]" in repr(frame)
    assert pickle.loads(pickle.dumps(frame)) == frame
