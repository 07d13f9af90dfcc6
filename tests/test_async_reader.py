"""ShmReader under asyncio: read_async and ``async for`` (mycelium_shm.aio).

Each test runs its own event loop with asyncio.run (no plugin needed)."""

from __future__ import annotations

import asyncio
import os
import random
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mycelium_shm import ChannelClosed, Frame, ShmReader, ShmWriter, aio

ROOT = Path(__file__).resolve().parent.parent
SEQ = struct.Struct("<Q")

# A writer process: COUNT frames whose payload is their sequence number, in
# bursts of 1..8 frames with pauses of up to 4 ms, so a reader finds the
# ring sometimes full, mostly empty (and then waits).
WRITER = """
import random, struct, sys, time
from mycelium_shm import ShmWriter
name, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
seq = struct.Struct("<Q")
with ShmWriter(name) as w:
    i = 0
    while i < count:
        for _ in range(min(rng.randint(1, 8), count - i)):
            w.write(5, seq.pack(i) + bytes(rng.randint(0, 64)), timeout=30)
            i += 1
        time.sleep(rng.random() * 0.004)
print("done", flush=True)
"""


@pytest.fixture
def writer_process() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def start_writer(
    started: list[subprocess.Popen[bytes]], name: str, count: int, seed: int
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, name, str(count), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    started.append(proc)
    return proc


def seq_of(frame: Frame) -> int:
    return int(SEQ.unpack_from(frame.payload)[0])


def test_timeout_returns_none(channel_name: str) -> None:
    """Nothing written: None after the timeout (0: at once); a frame there now at once."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:

        async def main() -> None:
            assert await r.read_async(0) is None
            start = time.monotonic()
            assert await r.read_async(0.1) is None
            assert 0.09 <= time.monotonic() - start < 2
            w.write(3, b"now")
            assert await r.read_async(0) == Frame(3, b"now")
            w.write(4, b"soon")
            assert await r.read_async(1) == Frame(4, b"soon")
            assert await r.read_async(timeout=0.01) is None

        asyncio.run(main())


def test_bad_timeout_is_rejected(channel_name: str) -> None:
    with ShmWriter(channel_name, create=True, capacity=4096), ShmReader(channel_name) as r:

        async def main() -> None:
            with pytest.raises(ValueError):
                await r.read_async(-1)
            with pytest.raises(TypeError):
                await r.read_async("1")  # type: ignore[arg-type]  # the wrong type on purpose

        asyncio.run(main())


def test_loop_keeps_running_while_a_read_waits(channel_name: str) -> None:
    """A ticker task keeps ticking while read_async waits for a late frame."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        ticks = 0

        async def ticker(stop: asyncio.Event) -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        async def main() -> Frame | None:
            stop = asyncio.Event()
            task = asyncio.create_task(ticker(stop))
            timer = threading.Timer(0.3, w.write, (9, b"late"))
            timer.start()
            try:
                start = time.monotonic()
                frame = await r.read_async(5)
                waited = time.monotonic() - start
            finally:
                stop.set()
                await task
                timer.join()
            assert 0.25 <= waited < 5
            return frame

        assert asyncio.run(main()) == Frame(9, b"late")
        # 1 ms sleeps for 300 ms: far more than the few a blocked loop allows.
        assert ticks >= 50, ticks


def test_async_for_many_frames_in_order(channel_name: str) -> None:
    """20,000 frames from a writer thread through a 16 KiB ring, in order."""
    count = 20_000
    with ShmWriter(channel_name, create=True, capacity=1 << 14) as w, ShmReader(channel_name) as r:

        def produce() -> None:
            for i in range(count):
                w.write(1 + i % 7, SEQ.pack(i), timeout=30)

        async def main() -> list[Frame]:
            got: list[Frame] = []
            async for frame in r:
                got.append(frame)
                if len(got) == count:
                    break
            return got

        thread = threading.Thread(target=produce)
        thread.start()
        try:
            got = asyncio.run(asyncio.wait_for(main(), 60))
        finally:
            thread.join()
        assert [seq_of(f) for f in got] == list(range(count))
        assert [f.type_id for f in got] == [1 + i % 7 for i in range(count)]
        assert r.stats()["frames_read"] == count


def test_cancelled_wait_keeps_the_frame_the_helper_read(channel_name: str) -> None:
    """The helper thread reads a frame after the awaiting task was cancelled:
    the frame is kept for the next read_async, not dropped."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:

        async def main() -> None:
            task = asyncio.create_task(r.read_async(10))
            await asyncio.sleep(0.05)  # the helper waits in C now
            task.cancel()  # the future is cancelled now ...
            w.write(2, b"kept")
            time.sleep(0.2)  # ... and the helper reads the frame (loop blocked on purpose)
            with pytest.raises(asyncio.CancelledError):
                await task
            state = r._aio
            assert state is not None and list(state._pending) == [Frame(2, b"kept")]
            assert await r.read_async(0) == Frame(2, b"kept")
            assert await r.read_async(0) is None
            w.write(3, b"next")
            assert await r.read_async(1) == Frame(3, b"next")

        asyncio.run(main())


def test_cancellation_loses_and_repeats_no_frame(
    channel_name: str, writer_process: list[subprocess.Popen[bytes]]
) -> None:
    """Reads cancelled at random moments (wait_for timeouts, task.cancel)
    while a writer process writes numbered frames: every number arrives
    exactly once, in order."""
    count = 3_000
    rng = random.Random(1234)
    with ShmWriter(channel_name, create=True, capacity=1 << 12), ShmReader(channel_name) as r:
        proc = start_writer(writer_process, channel_name, count, seed=99)

        async def main() -> tuple[list[int], int]:
            seqs: list[int] = []
            cancelled = 0
            deadline = time.monotonic() + 90
            while len(seqs) < count and time.monotonic() < deadline:
                how = rng.random()
                if how < 0.4:
                    try:
                        frame = await asyncio.wait_for(r.read_async(), rng.random() * 0.002)
                    except asyncio.TimeoutError:
                        cancelled += 1
                        continue
                elif how < 0.6:
                    task = asyncio.create_task(r.read_async(None))
                    await asyncio.sleep(rng.random() * 0.001)
                    if task.cancel():
                        cancelled += 1
                    try:
                        frame = await task
                    except asyncio.CancelledError:
                        continue
                else:
                    frame = await r.read_async(rng.choice((0, 0.0005, 1.0)))
                    if frame is None:
                        continue
                assert frame is not None
                seqs.append(seq_of(frame))
            return seqs, cancelled

        seqs, cancelled = asyncio.run(main())
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        assert seqs == list(range(count)), (len(seqs), seqs[:5])
        assert cancelled > 100, cancelled


def test_concurrent_readers_tasks_get_frames_in_call_order(channel_name: str) -> None:
    """Three tasks wait on one reader: the frames go out in the order of the calls."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:

        async def main() -> list[Frame | None]:
            tasks = []
            for _ in range(3):
                tasks.append(asyncio.create_task(r.read_async(5)))
                await asyncio.sleep(0.01)
            for i in range(3):
                w.write(1, b"%d" % i)
            return list(await asyncio.gather(*tasks))

        assert asyncio.run(main()) == [Frame(1, b"0"), Frame(1, b"1"), Frame(1, b"2")]


def test_close_ends_a_waiting_read(channel_name: str) -> None:
    """close() stops the helper thread (before the handle goes) and a waiting
    read raises ChannelClosed; so does a later one."""
    with ShmWriter(channel_name, create=True, capacity=4096):
        r = ShmReader(channel_name)

        async def main() -> None:
            task = asyncio.create_task(r.read_async(None))
            await asyncio.sleep(0.05)
            state = r._aio
            assert state is not None and state._thread is not None
            helper = state._thread
            start = time.monotonic()
            r.close()
            assert time.monotonic() - start < 1
            assert not helper.is_alive()
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(task, 2)
            with pytest.raises(ChannelClosed):
                await r.read_async(1)

        asyncio.run(main())


def test_helper_thread_exits_when_idle(channel_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no read waiting, the helper thread exits (after IDLE_EXIT s) and
    comes back for the next wait."""
    monkeypatch.setattr(aio, "IDLE_EXIT", 0.05)
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:

        async def main() -> None:
            assert await r.read_async(0.03) is None
            state = r._aio
            assert state is not None
            helper = state._thread
            assert helper is not None
            helper.join(timeout=2)
            assert not helper.is_alive() and state._thread is None
            threading.Timer(0.05, w.write, (1, b"again")).start()
            assert await r.read_async(2) == Frame(1, b"again")

        asyncio.run(main())
