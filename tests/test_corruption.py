"""Bytes from another process are never trusted: bad headers and frames give typed errors."""

from __future__ import annotations

import os

import pytest
from conftest import poke

from mycelium_shm import (
    CorruptChannel,
    FormatError,
    ShmReader,
    ShmWriter,
    inspect,
)

HEADER = 4096
FRAME_OFF_LEN = 8  # docs/FORMAT.md: frame header = u64 stamp, u32 frame_len, u16 type, u16 flags


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "message"),
    [
        (0x00, "<Q", 0x1122334455667788, "not a mycelium channel"),
        (0x08, "<I", 1, "format version 1; this library reads version 2 only"),
        (0x08, "<I", 3, "format version 3"),
        (0x0C, "<I", 8192, "header size"),
        (0x10, "<Q", 3000, "not a power of two"),
        (0x10, "<Q", 1 << 20, "file is"),
        (0x18, "<I", 0, "max payload"),
        (0x1C, "<I", 4, "unknown features"),
        (0x58, "<I", 3, "with 3 reader slots"),
        (0x5C, "<I", 5, r"untether 5 ms\): a broadcast channel has 1 to 10 slots and a non-zero"),
    ],
)
def test_corrupt_or_foreign_header(
    channel_name: str, offset: int, fmt: str, value: int, message: str
) -> None:
    """Each header field is validated on attach and inspect: FormatError naming the problem."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    poke(channel_name, offset, fmt, value)
    with pytest.raises(FormatError, match=message):
        ShmReader(channel_name)
    with pytest.raises(FormatError, match=message):
        ShmWriter(channel_name)
    with pytest.raises(FormatError):
        inspect(channel_name)


def test_foreign_object_in_the_namespace(channel_name: str) -> None:
    """A non-channel object with our prefix is refused quickly with FormatError."""
    path = f"/dev/shm/mycelium.{channel_name}"
    with open(path, "wb") as f:
        f.write(b"GIF89a" + bytes(8000))
    with pytest.raises(FormatError, match="not a mycelium channel"):
        ShmReader(channel_name)


def test_truncated_object(channel_name: str) -> None:
    """A file shorter than its header says raises FormatError, not SIGBUS."""
    ShmWriter(channel_name, create=True, capacity=1 << 16).close()
    os.truncate(f"/dev/shm/mycelium.{channel_name}", HEADER + 100)
    with pytest.raises(FormatError, match="file is"):
        ShmReader(channel_name)


def test_a_tail_glitch_once_corrected_leaves_the_reader_working(channel_name: str) -> None:
    """TAIL set a lap ahead for one call (a hostile store that passes the position
    checks), then restored: the reader does not keep the glitched value as a claim
    "no writer slot covers" (CorruptChannel forever); it waits, and delivers new frames."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        for i in range(3):
            w.write(1, b"%d" % i)
        tail = r.stats()["tail"]
        poke(channel_name, 0x80, "<Q", tail + 4096)
        assert [bytes(f.payload) for f in r.read_many(10, timeout=0.05)] == [b"0", b"1", b"2"]
        poke(channel_name, 0x80, "<Q", tail)
        assert r.read_many(10, timeout=0.2) == []
        assert r.read(timeout=0.2) is None and r.try_read() is None
        w.write(1, b"later")
        assert tuple(r.read(timeout=1)) == (1, b"later")
        assert r.read(timeout=0.2) is None
        assert r.stats()["unblocks"] == 0


@pytest.mark.parametrize(
    ("length", "message"),
    [
        (0x7FFFFFF0, "to the end"),
        (3, "has length 3"),
        (2000, "runs past the tail"),
    ],
)
def test_corrupt_frame_length(channel_name: str, length: int, message: str) -> None:
    """A frame length outside the ring or past the tail raises CorruptChannel and reads nothing."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        w.write(1, b"good frame")
        poke(channel_name, HEADER + FRAME_OFF_LEN, "<I", length)
        with pytest.raises(CorruptChannel, match=message):
            r.read(timeout=0.1)
        with pytest.raises(CorruptChannel):
            r.read_many(4)
        with pytest.raises(CorruptChannel):
            with r.read_view(timeout=0):
                pass


def test_inconsistent_positions(channel_name: str) -> None:
    """A head beyond the tail is refused at attach with CorruptChannel."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    poke(channel_name, 0x100, "<Q", 64)
    with pytest.raises(CorruptChannel, match="inconsistent"):
        ShmReader(channel_name)
