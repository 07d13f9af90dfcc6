"""Broadcast channels from Python, across processes: many writers and many
readers, tethered and lossy policies, untethering, durable cursors, bad
input (docs/FORMAT.md section 14).

Workers (tests/workers.py bc-writer / bc-reader) write self-describing
frames (writer, sequence number, bytes derived from both) and readers check
every byte, the per-writer order, and count the gaps the sequence numbers
show; a reader's own ``lost`` count must equal those gaps exactly.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable

import pytest
from conftest import Processes

from mycelium_shm import (
    ReaderBusy,
    ShmReader,
    ShmWriter,
    TooManyReaders,
    cursors,
    forget_cursor,
    inspect,
)
from mycelium_shm.errors import Lapped


def _ready(proc) -> None:  # type: ignore[no-untyped-def]
    line = proc.stdout.readline().decode().strip()
    assert line == "ready", (line, proc.stderr.read().decode() if proc.poll() is not None else "")


def _report(proc, timeout: float = 180) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(("writers", "frames"), [(1, 1_000_000), (3, 333_334)])
def test_every_tethered_reader_gets_every_frame(
    procs: Processes, channel_names: Callable[[], str], writers: int, frames: int
) -> None:
    name = channel_names()
    creator = ShmWriter(name, create=True, capacity=1 << 20, readers=4, untether=60)
    readers = [
        procs.start("bc-reader", name, f"r{i}", "tethered", str(writers * frames), "30")
        for i in range(4)
    ]
    for proc in readers:
        _ready(proc)  # every cursor exists before the first frame
    writer_procs = [
        procs.start("bc-writer", name, str(w), str(frames), "7") for w in range(writers)
    ]
    for proc in writer_procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.decode().strip() == "done", err.decode()
    for proc in readers:
        report = _report(proc, timeout=300)
        assert report == {
            "frames": writers * frames,
            "gaps": 0,
            "bad": 0,
            "lost": 0,
            "laps": 0,
            "untethers": 0,
        }
    table = cursors(name)
    assert sorted(c["name"] for c in table) == ["r0", "r1", "r2", "r3"]
    assert all(c["frames_read"] == writers * frames and not c["alive"] for c in table)
    creator.close()


def test_lossy_reader_stopped_counts_exactly_what_it_lost(
    procs: Processes, channel_names: Callable[[], str]
) -> None:
    name = channel_names()
    creator = ShmWriter(name, create=True, capacity=1 << 16, readers=2)
    total = 60_000
    reader = procs.start("bc-reader", name, "lossy", "lossy", str(total), "3")
    _ready(reader)
    writer = procs.start("bc-writer", name, "0", str(total), "3")
    time.sleep(0.05)
    os.kill(reader.pid, signal.SIGSTOP)  # writers lap it: lossy never slows them
    _out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err.decode()
    os.kill(reader.pid, signal.SIGCONT)
    report = _report(reader)
    assert report["bad"] == 0
    assert report["laps"] >= 1
    assert report["lost"] > 0
    assert report["lost"] == report["gaps"]  # exactly what the sequence numbers say
    assert report["frames"] + report["lost"] == total
    creator.close()


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_stuck_tethered_reader_is_untethered_and_others_lose_nothing(
    procs: Processes, channel_names: Callable[[], str], how: str
) -> None:
    name = channel_names()
    creator = ShmWriter(name, create=True, capacity=1 << 16, readers=3, untether=0.3)
    total = 40_000
    victim = procs.start("bc-reader", name, "victim", "tethered", str(total), "30")
    good = [procs.start("bc-reader", name, f"good{i}", "tethered", str(total), "30") for i in range(2)]
    for proc in (victim, *good):
        _ready(proc)
    os.kill(victim.pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
    started = time.monotonic()
    writer = procs.start("bc-writer", name, "0", str(total), "5")
    _out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err.decode()
    elapsed = time.monotonic() - started
    for proc in good:
        assert _report(proc)["frames"] == total  # with gaps 0, bad 0: checked below
    table = {c["name"]: c for c in cursors(name)}
    assert table["victim"]["untethers"] == 1
    assert not table["victim"]["tethered"]
    assert table["good0"]["untethers"] == table["good1"]["untethers"] == 0
    if how == "stop":
        assert elapsed >= 0.3  # it held writers for the window first
        os.kill(victim.pid, signal.SIGCONT)
        report = _report(victim)
        assert report["bad"] == 0 and report["lost"] == report["gaps"]
        assert report["frames"] + report["lost"] == total
    creator.close()


def test_reattach_by_name_resumes_without_loss_or_duplicates(
    channel_names: Callable[[], str],
) -> None:
    name = channel_names()
    w = ShmWriter(name, create=True, capacity=1 << 16, readers=2)
    seen: list[int] = []
    seq = 0
    for _round in range(20):
        r = ShmReader(name, cursor="durable")
        for _ in range(50):
            w.write(1, seq.to_bytes(8, "little"))
            seq += 1
        for frame in r.read_many(37):
            seen.append(int.from_bytes(frame.payload, "little"))
        r.close()
        w.write(1, seq.to_bytes(8, "little"))  # written while no reader holds it
        seq += 1
    r = ShmReader(name, cursor="durable")
    while (frame := r.read(0)) is not None:
        seen.append(int.from_bytes(frame.payload, "little"))
    assert seen == list(range(seq))
    assert r.lost == 0
    r.close()
    w.close()


def test_lossy_read_view_overwritten_raises_lapped(channel_names: Callable[[], str]) -> None:
    name = channel_names()
    w = ShmWriter(name, create=True, capacity=1 << 12, readers=1)
    r = ShmReader(name, cursor="l", policy="lossy")
    w.write(1, b"a" * 900)
    with pytest.raises(Lapped):
        with r.read_view(0) as view:
            assert view is not None and bytes(view.payload) == b"a" * 900
            for _ in range(20):
                w.write(1, b"b" * 900)
    w.write(1, b"c" * 10)
    frames = [f.payload for f in r.read_many(100)]
    assert frames[-1] == b"c" * 10 and r.lost > 0
    r.close()
    w.close()


def test_bad_input(channel_names: Callable[[], str]) -> None:
    name = channel_names()
    w = ShmWriter(name, create=True, capacity=1 << 16, readers=2)
    a = ShmReader(name, cursor="a")
    b = ShmReader(name)
    with pytest.raises(TooManyReaders, match="2 reader slots"):
        ShmReader(name, cursor="c")
    with pytest.raises(ReaderBusy, match="cursor 'a'"):
        ShmReader(name, cursor="a")
    with pytest.raises(ValueError, match="policy must be"):
        ShmReader(name, cursor="x", policy="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1 to 39 bytes"):
        ShmReader(name, cursor="n" * 40)
    with pytest.raises(ValueError, match="control character"):
        ShmReader(name, cursor="a\nb")
    with pytest.raises(TooManyReaders, match="at most 10"):
        ShmWriter(channel_names(), create=True, readers=11)
    with pytest.raises(ValueError, match="readers must be"):
        ShmWriter(channel_names(), create=True, readers=-1)
    single = channel_names()
    ShmWriter(single, create=True).close()
    with pytest.raises(ValueError, match="single-reader channel"):
        ShmReader(single, cursor="a")
    with pytest.raises(ReaderBusy):
        forget_cursor(name, "a")
    a.close()
    forget_cursor(name, "a")
    assert [c["name"] for c in cursors(name)] == [""]  # only the anonymous one
    info = inspect(name)
    assert info.reader_slots == 2 and len(info.cursors) == 1
    b.close()
    assert cursors(name) == []
    w.close()


def test_register_cursor_keeps_later_frames_and_never_holds_the_cursor(channel_name: str) -> None:
    """register_cursor makes a durable cursor nobody holds: frames written after
    it wait for its reader, and a reader attaching it while another thread keeps
    registering it is never refused (attach-and-close registration was)."""
    import threading

    from mycelium_shm import register_cursor
    from mycelium_shm.errors import TooManyReaders

    with ShmWriter(channel_name, create=True, capacity=1 << 16, readers=2) as w:
        w.write(1, b"before")
        register_cursor(channel_name, "n")
        (info,) = cursors(channel_name)
        assert (info["name"], info["pid"], info["durable"], info["tethered"]) == ("n", 0, True, True)
        w.write(2, b"after")
        stop = threading.Event()
        failures: list[BaseException] = []

        def keep_registering() -> None:
            while not stop.is_set():
                try:
                    register_cursor(channel_name, "n")
                except BaseException as exc:
                    failures.append(exc)
                    return

        thread = threading.Thread(target=keep_registering)
        thread.start()
        try:
            for _ in range(300):
                ShmReader(channel_name, cursor="n").close()
        finally:
            stop.set()
            thread.join()
        assert failures == []
        with ShmReader(channel_name, cursor="n") as r:
            assert r.read(timeout=0) == (2, b"after")
            assert r.read(timeout=0) is None
        register_cursor(channel_name, "m")
        with pytest.raises(TooManyReaders):
            register_cursor(channel_name, "third")
