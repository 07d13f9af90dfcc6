"""Channel operations without a handle: unlink, inspect, list, names."""

from __future__ import annotations

import os

import pytest

from mycelium_shm import (
    ChannelNotFound,
    InvalidName,
    ShmReader,
    ShmWriter,
    check_name,
    exists,
    inspect,
    list_channels,
    unlink,
)
from mycelium_shm.channel import FORMAT_VERSION, frame_bytes


def test_unlink_removes_and_reports_missing(channel_name: str) -> None:
    """unlink removes the object; a second unlink raises unless missing_ok."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    assert exists(channel_name)
    assert channel_name in list_channels()
    unlink(channel_name)
    assert not exists(channel_name)
    with pytest.raises(ChannelNotFound):
        unlink(channel_name)
    unlink(channel_name, missing_ok=True)


def test_inspect_reports_processes_and_counters(channel_name: str) -> None:
    """inspect shows capacity, fill, counters, and which processes are attached and alive."""
    with ShmWriter(channel_name, create=True, capacity=1 << 14) as w, ShmReader(channel_name) as r:
        w.write(1, b"x" * 100)
        w.write(1, b"y" * 100)
        r.read(timeout=1)
        info = inspect(channel_name)
        assert info.capacity == 1 << 14 and info.format_version == FORMAT_VERSION == 2
        assert info.creator_pid == os.getpid() and info.creator_alive
        assert info.reader_pid == os.getpid() and info.reader_alive
        assert info.writers == [(os.getpid(), True)]
        assert info.stats["frames_written"] == 2 and info.stats["frames_read"] == 1
        assert info.used_bytes == frame_bytes(100)
        assert not info.has_schema
    info = inspect(channel_name)
    assert info.reader_pid == 0 and info.writers == []


def test_check_name() -> None:
    """check_name accepts ordinary names and refuses bad ones."""
    check_name("market.ticks-1")
    with pytest.raises(InvalidName):
        check_name("a/b")
    with pytest.raises(InvalidName):
        check_name("bad\x00name")
