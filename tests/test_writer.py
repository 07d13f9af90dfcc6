"""ShmWriter: creating, attaching, writing, batching, reserving."""

from __future__ import annotations

import os
import stat

import pytest

from mycelium_shm import (
    ChannelClosed,
    ChannelExists,
    ChannelNotFound,
    Full,
    InvalidName,
    ShmReader,
    ShmWriter,
)
from mycelium_shm.channel import FRAME_HEADER_SIZE, frame_bytes


def test_create_makes_the_named_object_with_mode_0600(channel_name: str) -> None:
    """A created channel is /dev/shm/mycelium.<name>, mode 0600, header + ring bytes."""
    with ShmWriter(channel_name, create=True, capacity=1 << 16) as w:
        st = os.stat(f"/dev/shm/mycelium.{channel_name}")
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_size == 4096 + (1 << 16)
        assert w.capacity == 1 << 16
        assert w.max_payload == (1 << 16) // 4 - FRAME_HEADER_SIZE


def test_mode_is_a_parameter(channel_name: str) -> None:
    """The file mode given at creation is applied exactly, whatever the umask."""
    old = os.umask(0o077)
    try:
        ShmWriter(channel_name, create=True, capacity=4096, mode=0o644).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(f"/dev/shm/mycelium.{channel_name}").st_mode) == 0o644


def test_create_twice_and_attach_missing(channel_name: str) -> None:
    """create=True on an existing channel raises ChannelExists; attaching a missing one ChannelNotFound."""
    with pytest.raises(ChannelNotFound):
        ShmWriter(channel_name)
    with ShmWriter(channel_name, create=True, capacity=4096):
        with pytest.raises(ChannelExists):
            ShmWriter(channel_name, create=True, capacity=4096)
        ShmWriter(channel_name, create=True, capacity=4096, exist_ok=True).close()
        assert isinstance(ChannelExists("x"), FileExistsError)


@pytest.mark.parametrize("name", ["", "a/b", "..", "x..y", ".", "tab\there", "nul\x7f", "n" * 246])
def test_invalid_names_are_refused(name: str) -> None:
    """Empty names, '/', '..', control characters and over-long names raise InvalidName."""
    with pytest.raises(InvalidName):
        ShmWriter(name, create=True, capacity=4096)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": 3000}, "power of two"),
        ({"capacity": 512}, "power of two"),
        ({"capacity": 4096, "max_payload": 4096}, f"exceeds the limit {2048 - FRAME_HEADER_SIZE}"),
    ],
)
def test_bad_geometry_says_the_limit(channel_name: str, kwargs: dict, message: str) -> None:
    """A capacity that is not a power of two or a too-large max_payload raises ValueError naming the limit."""
    with pytest.raises(ValueError, match=message):
        ShmWriter(channel_name, create=True, **kwargs)


def test_frame_arguments_are_checked(channel_name: str) -> None:
    """Type ids outside 1..65535 and payloads over the maximum raise ValueError with the limit."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        with pytest.raises(ValueError, match=r"1\.\.65535"):
            w.write(0, b"x")
        with pytest.raises(ValueError, match=r"1\.\.65535"):
            w.write(65536, b"x")
        with pytest.raises(ValueError, match=r"type_id must be in 1\.\.65535, not -1"):
            w.write(-1, b"x")
        with pytest.raises(ValueError, match=f"maximum of {w.max_payload}"):
            w.write(1, b"x" * (w.max_payload + 1))
        with pytest.raises(ValueError, match=r"1\.\.65535"):
            w.write_many([(1, b"a"), (70000, b"b")])


def test_full_ring_try_write_and_timeout(channel_name: str) -> None:
    """With no room, try_write returns False and write raises Full after its timeout."""
    fits = 1024 // frame_bytes(120)
    with ShmWriter(channel_name, create=True, capacity=1024) as w:
        for _ in range(fits):
            assert w.try_write(1, b"x" * 120)
        assert not w.try_write(1, b"x" * 120)
        with pytest.raises(Full):
            w.write(1, b"x" * 120, timeout=0.05)
        stats = w.stats()
        assert stats["full_events"] >= 2
        assert stats["frames_written"] == fits


def test_write_many_blocks_until_all_are_written(channel_name: str) -> None:
    """write_many writes batches larger than the ring as the reader drains it."""
    import threading

    frames = [(1 + i % 7, bytes([i % 256]) * (i % 50)) for i in range(2000)]
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        got: list = []
        reader = threading.Thread(target=lambda: got.extend(r.read(timeout=5) for _ in frames))
        reader.start()
        assert w.write_many(frames) == len(frames)
        reader.join(10)
        assert [tuple(f) for f in got] == frames


def test_write_many_with_zero_timeout_writes_what_fits(channel_name: str) -> None:
    """With timeout=0, write_many returns how many frames fit."""
    with ShmWriter(channel_name, create=True, capacity=1024) as w:
        assert w.write_many([(1, b"y" * 120)] * 10, timeout=0) == 1024 // frame_bytes(120)


def test_reserve_commits_on_exit_and_aborts_on_error(channel_name: str) -> None:
    """A reservation becomes a frame when its block ends, and padding if the block raises."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        with pytest.raises(RuntimeError):
            with w.reserve(3, 5) as buf:
                buf[:] = b"wrong"
                raise RuntimeError("abandon")
        with w.reserve(4, 5) as buf:
            buf[:] = b"right"
        frame = r.read(timeout=1)
        assert (frame.type_id, frame.payload) == (4, b"right")
        assert r.stats()["padding_frames"] == 1
        with pytest.raises(ValueError):
            buf[0] = 1  # the view died with the block


def test_buffers_other_than_bytes(channel_name: str) -> None:
    """bytearray and memoryview payloads are written as their bytes."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        w.write(1, bytearray(b"abc"))
        w.write(2, memoryview(b"xyzw")[1:])
        assert r.read(timeout=1).payload == b"abc"
        assert r.read(timeout=1).payload == b"yzw"


def test_closed_writer_raises(channel_name: str) -> None:
    """Using a writer after close() raises ChannelClosed; close is idempotent."""
    w = ShmWriter(channel_name, create=True, capacity=4096)
    w.close()
    w.close()
    with pytest.raises(ChannelClosed):
        w.write(1, b"x")
    with pytest.raises(ChannelClosed):
        w.stats()
    assert "closed" in repr(w)
