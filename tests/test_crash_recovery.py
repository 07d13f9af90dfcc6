"""Processes that die mid-operation do not stop the channel."""

from __future__ import annotations

import random
import signal

import pytest

from mycelium_shm import Full, ShmReader, ShmWriter
from mycelium_shm.cli.payload import check_payload, make_payload


def test_writer_killed_between_claim_and_commit(channel_name: str, procs) -> None:
    """After the stuck timeout the dead writer's claim becomes padding and later frames flow."""
    reader = ShmReader(channel_name, create=True, capacity=1 << 14, stuck_timeout=0.2)
    try:
        holder = procs.start("hold-claim", channel_name)
        assert holder.stdout.readline().strip() == b"claimed"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with ShmWriter(channel_name) as w:
            for i in range(100):
                w.write(2, b"after %d" % i)
        got = [reader.read(timeout=5) for _ in range(100)]
        assert [f.payload for f in got] == [b"after %d" % i for i in range(100)]
        assert reader.stats()["unblocks"] == 1
        assert reader.try_read() is None
    finally:
        reader.close()


def test_reader_killed_and_replaced(channel_name: str, procs) -> None:
    """A new reader takes over from a SIGKILLed one and continues where it stopped."""
    rng = random.Random(7)
    with ShmWriter(channel_name, create=True, capacity=1 << 16) as w:
        for seq in range(200):
            w.write(1, make_payload(0, seq, rng.randint(12, 300), rng))
        first = procs.start("read-some", channel_name, "80")
        seen = [int(s) for s in first.stdout.readline().split()]
        assert seen == list(range(80))
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        with ShmReader(channel_name) as second:
            rest = [check_payload(second.read(timeout=5).payload)[1] for _ in range(120)]
            assert rest == list(range(80, 200))
            assert second.stats()["takeovers"] == 1


def test_dead_reader_does_not_hang_writers(channel_name: str, procs) -> None:
    """With the reader gone, blocking writes time out with Full once the ring fills."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        reader = procs.start("read-some", channel_name, "0")
        assert reader.stdout.readline().strip() == b""
        reader.send_signal(signal.SIGKILL)
        reader.wait(timeout=10)
        with pytest.raises(Full):
            for _ in range(1000):
                w.write(1, b"x" * 100, timeout=0.1)
        assert w.stats()["write_timeouts"] == 1
