"""mycelium-shm tail: frames copied read-only, the reader undisturbed, misses counted."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Callable

import pytest
from conftest import ROOT, Processes, poke
from test_cli_support import assert_one_error_line, wait_stopped
from workers import check_payload

from mycelium_shm import CorruptChannel, ShmReader, ShmWriter, cursors, exists, inspect
from mycelium_shm.cli import cmd_tail, main
from mycelium_shm.cli.payload import make_payload
from mycelium_shm.cli.rawview import Follower, RawChannel, TailFrame
from mycelium_shm.protocol import Schema

TRADING = ROOT / "schemas" / "trading.toml"


class LineCollector:
    """Lines of a child's stream, gathered by a thread so tests can wait with deadlines."""

    def __init__(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with self._lock:
                self.lines.append(raw.decode())

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.lines)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.01)
        raise AssertionError(f"timed out; lines so far: {self.lines}")

    def finish(self) -> list[str]:
        self._thread.join(timeout=10)
        return self.lines


def test_tail_decodes_with_a_schema(channel_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--schema: each frame is shown as its message, in JSON as its fields."""
    schema = Schema.load(TRADING)
    tick = schema.message_type("MarketTick")("EURUSD", 7, 123, 1.5, 1.75, 10, 20)
    with ShmWriter(channel_name, create=True, capacity=4096, schema=schema) as w:
        w.send(tick)
        w.send(tick)
        argv = ["tail", channel_name, "--from-start", "--count", "2", "--schema", str(TRADING)]
        assert main([*argv, "--json"]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert lines[0]["message"] == "MarketTick"
        assert lines[0]["fields"]["symbol"] == "EURUSD"
        assert lines[0]["fields"]["ask"] == 1.75
        assert lines[2]["summary"]["shown"] == 2
        assert lines[2]["summary"]["missed"] == 0
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.count("MarketTick(symbol='EURUSD'") == 2
        assert inspect(channel_name).stats["frames_read"] == 0


def test_tail_shows_hex_and_refuses_another_schema(
    channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a schema frames are hex; a schema with another digest is refused."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        w.write(9, bytes(range(100)))
        assert main(["tail", channel_name, "--from-start", "--count", "1", "--max-bytes", "4"]) == 0
        captured = capsys.readouterr()
        assert "type 9" in captured.out
        assert "00 01 02 03 ... (+96 bytes)" in captured.out
        assert "1 frame shown, 0 missed" in captured.err
        assert main(["tail", channel_name, "--schema", str(TRADING), "--count", "1"]) == 1
        assert_one_error_line(capsys.readouterr().err, "schema digest")


def test_follower_sees_frames_the_reader_consumed(channel_name: str) -> None:
    """The reader never erases a frame: tail still copies those it consumed first;
    padding and an aborted reservation are skipped, never shown."""
    with (
        ShmWriter(channel_name, create=True, capacity=4096) as w,
        ShmReader(channel_name) as r,
        RawChannel(channel_name) as ch,
    ):
        follower = Follower(ch, from_start=True)
        for i in range(5):
            w.write(1 + i, bytes([i]) * 10)
        with pytest.raises(RuntimeError):
            with w.reserve(40, 30) as buf:
                buf[:] = b"x" * 30
                raise RuntimeError("abort")  # the claim becomes padding
        for _ in range(5):
            assert r.read(timeout=1) is not None
        assert r.try_read() is None
        assert [(f.type_id, f.payload) for f in follower.poll()] == [
            (1 + i, bytes([i]) * 10) for i in range(5)
        ]
        w.write(6, b"late")
        assert r.read(timeout=1) == (6, b"late")
        assert [(f.type_id, f.payload) for f in follower.poll()] == [(6, b"late")]
        assert follower.poll() == []
        assert follower.missed() == 0
        assert follower.seen == 6
        assert follower.lapped == 0


def test_follower_without_from_start_sees_only_new_frames(channel_name: str) -> None:
    """The default start is the tail: frames already in the ring are not shown."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        w.write(1, b"old")
        with RawChannel(channel_name) as ch:
            follower = Follower(ch)
            w.write(2, b"new")
            assert [f.payload for f in follower.poll()] == [b"new"]
            assert follower.missed() == 0


def _seq(frame: TailFrame) -> int:
    return int.from_bytes(frame.payload[:4], "little")


def test_follower_lapped_by_writers_counts_what_it_missed(channel_name: str) -> None:
    """A follower that lags by more than the ring loses frames to the writers: it
    shows the rest in order, intact, and counts the lost ones exactly."""
    total = 600
    with (
        ShmWriter(channel_name, create=True, capacity=4096) as w,
        ShmReader(channel_name) as r,
        RawChannel(channel_name) as ch,
    ):
        follower = Follower(ch)
        shown: list[TailFrame] = []
        for i in range(total):
            w.write(7, i.to_bytes(4, "little") * 25)  # 100 bytes: 128 ring bytes
            assert r.read(timeout=1) is not None  # the reader keeps up, tail does not
            if i % 3 == 0:
                shown += follower.poll(limit=1)
        shown += follower.poll(limit=10_000)
        seqs = [_seq(f) for f in shown]
        assert all(f.payload == f.payload[:4] * 25 for f in shown)  # no mixed bytes
        assert seqs == sorted(set(seqs))  # in order, no repeat
        assert seqs[-1] == total - 1  # caught up
        assert follower.lapped > 0
        assert follower.missed() == total - len(shown)
        assert 0 < len(shown) < total


def test_follower_never_shows_a_frame_recycled_while_it_copied(
    channel_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers overwrite the frame being copied (they lapped tail mid-copy): the copy
    is dropped and counted as missed, and tail resumes at an intact frame."""
    with (
        ShmWriter(channel_name, create=True, capacity=4096) as w,
        ShmReader(channel_name) as r,
        RawChannel(channel_name) as ch,
    ):
        follower = Follower(ch, from_start=True)
        w.write(1, b"A" * 100)
        real_copy = ch.copy
        laps: list[int] = []

        def copy_while_lapped(index: int, size: int) -> bytes:
            data = real_copy(index, size)
            if not laps:  # once: the reader consumes, writers go round the ring
                laps.append(1)
                for i in range(40):
                    w.write(2, bytes([i]) * 100)
                    assert r.read(timeout=1) is not None
                assert ch.tail() > ch.capacity  # position 0 was overwritten
            return data

        monkeypatch.setattr(ch, "copy", copy_while_lapped)
        frames = follower.poll(limit=1000)
        assert follower.discarded == 1
        assert follower.lapped == 1
        assert all(f.type_id == 2 and f.payload == f.payload[:1] * 100 for f in frames)
        assert frames[-1].payload == bytes([39]) * 100
        assert follower.missed() == 41 - len(frames)


def test_follower_skips_a_dead_writers_claim(channel_name: str, procs: Processes) -> None:
    """A writer killed inside its claim: the reader skips the claim; tail, behind
    the reader, skips it the same way and shows the frames around it."""
    with (
        ShmWriter(channel_name, create=True, capacity=4096) as w,
        ShmReader(channel_name, stuck_timeout=0.01) as r,
    ):
        w.write(1, b"before")
        holder = procs.start("hold-claim", channel_name)
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"claimed\n"
        holder.kill()
        holder.wait(timeout=10)
        w.write(2, b"after")
        assert r.read(timeout=5) == (1, b"before")
        assert r.read(timeout=5) == (2, b"after")  # the dead claim was skipped
        assert inspect(channel_name).stats["unblocks"] == 1
        with RawChannel(channel_name) as ch:
            follower = Follower(ch, from_start=True)
            assert [(f.type_id, f.payload) for f in follower.poll()] == [
                (1, b"before"),
                (2, b"after"),
            ]
            assert follower.missed() == 0


def test_follower_never_trusts_a_frame_length(channel_name: str) -> None:
    """A committed length running past the tail or the ring, or shorter than a
    header, is CorruptChannel, never a bad read; a stamp naming another
    position is not a frame."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        w.write(1, b"abc")
        poke(channel_name, 4096 + 8, "<I", 4000)
        with RawChannel(channel_name) as ch:
            with pytest.raises(CorruptChannel, match="past the tail"):
                Follower(ch, from_start=True).poll()
        poke(channel_name, 4096 + 8, "<I", 1 << 30)
        with RawChannel(channel_name) as ch:
            with pytest.raises(CorruptChannel, match="past the end"):
                Follower(ch, from_start=True).poll()
        poke(channel_name, 4096 + 8, "<I", 12)
        with RawChannel(channel_name) as ch:
            with pytest.raises(CorruptChannel, match="< 16"):
                Follower(ch, from_start=True).poll()
        poke(channel_name, 4096 + 8, "<I", 16 + 3)
        poke(channel_name, 4096, "<Q", 4096 | 2)  # a stamp from the next lap
        with RawChannel(channel_name) as ch:
            assert Follower(ch, from_start=True).poll() == []  # not a frame: wait


def test_tail_refuses_bad_positions(channel_name: str) -> None:
    """A tail that is not 16-aligned, or beyond head + capacity, is CorruptChannel."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    poke(channel_name, 0x080, "<Q", 8)
    with pytest.raises(CorruptChannel, match="multiples of 16"):
        RawChannel(channel_name)
    poke(channel_name, 0x080, "<Q", 4096 + 16)
    with pytest.raises(CorruptChannel, match="not head <= tail"):
        RawChannel(channel_name)


def test_tail_on_a_foreign_object(channel_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """tail validates the header itself: a foreign magic is one error line."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    poke(channel_name, 0x08, "<I", 3)
    assert main(["tail", channel_name, "--count", "1"]) == 1
    assert_one_error_line(capsys.readouterr().err, "format version 3, not 2")
    assert main(["tail", channel_name, "--max-bytes", "-1"]) == 2
    assert_one_error_line(capsys.readouterr().err, "--max-bytes", "negative")


def test_tail_does_not_disturb_the_reader(channel_name: str, procs: Processes) -> None:
    """While tail follows, the real reader attaches and still gets every frame;
    at Ctrl-C tail reports shown + missed == frames written, without a traceback."""
    frames = 300
    with ShmWriter(channel_name, create=True, capacity=1 << 14) as w:
        tail = subprocess.Popen(
            [sys.executable, "-m", "mycelium_shm", "tail", channel_name, "--from-start", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        procs.started.append(tail)  # reaped by the fixture whatever happens
        out, err = LineCollector(tail.stdout), LineCollector(tail.stderr)
        err.wait_for(lambda lines: any("following" in x for x in lines), timeout=30)
        reader = procs.start("read-some", channel_name, str(frames))
        procs.run("writer", channel_name, "0", str(frames), "8", "200", "mixed")
        assert reader.stdout is not None
        seqs = reader.stdout.readline().split()
        assert list(map(int, seqs)) == list(range(frames))  # every frame, in order
        info = inspect(channel_name)
        assert info.reader_pid == reader.pid  # tail never became the reader
        w.write(99, b"sentinel")  # nobody reads it: tail must see it
        out.wait_for(lambda lines: any('"type_id":99' in x for x in lines), timeout=30)
        tail.send_signal(signal.SIGINT)
        assert tail.wait(timeout=30) == 130
        lines = out.finish()
        errors = "".join(err.finish())
    assert "Traceback" not in errors
    shown = [json.loads(x) for x in lines[:-1]]
    summary = json.loads(lines[-1])["summary"]
    data = [f for f in shown if f["type_id"] == 1]
    assert summary["shown"] == len(shown) == len(data) + 1
    assert summary["missed"] == frames - len(data)
    for frame in data:  # what tail showed is intact
        check_payload(bytes.fromhex(frame["payload"]))
    assert f"tail: {len(shown)} frame" in errors
    assert f"shown, {summary['missed']} missed" in errors


def test_tail_stops_when_the_channel_is_removed(channel_name: str, procs: Processes) -> None:
    """Once the channel is unlinked no frame can come: tail says so and exits 0."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    tail = subprocess.Popen(
        [sys.executable, "-m", "mycelium_shm", "tail", channel_name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    procs.started.append(tail)
    err = LineCollector(tail.stderr)
    err.wait_for(lambda lines: any("following" in x for x in lines), timeout=30)
    assert main(["rm", channel_name]) == 0
    assert tail.wait(timeout=30) == 0
    lines = err.finish()
    assert f"tail: channel {channel_name!r} was removed\n" in lines
    assert lines[-1].startswith("tail: 0 frames shown, 0 missed")


def test_tail_stops_with_an_error_when_the_file_is_shrunk_under_it(
    channel_name: str, procs: Processes
) -> None:
    """A file shrunk while tail idles is one error line and exit status 1, not SIGBUS."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    tail, err = _start_tail(procs, channel_name)
    os.truncate(f"/dev/shm/mycelium.{channel_name}", 4096)
    assert tail.wait(timeout=30) == 1
    errors = "".join(err.finish())
    assert f"channel {channel_name!r} was truncated under this observer's 8192-byte mapping" in errors
    assert "Traceback" not in errors


def test_tail_beside_a_fast_reader_shows_only_intact_frames(channel_name: str) -> None:
    """tail racing `stress` (2 writers, a C-speed reader, a small ring): whatever it
    shows passes its CRC, and the stress run is unharmed."""
    stress = subprocess.Popen(
        [sys.executable, "-m", "mycelium_shm", "stress", "--name", channel_name,
         "--writers", "2", "--frames", "5000", "--capacity", "4k", "--sizes", "16-900",
         "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )  # fmt: skip
    tail = None
    try:
        deadline = time.monotonic() + 30
        while not exists(channel_name) and stress.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        tail = subprocess.Popen(
            [sys.executable, "-m", "mycelium_shm", "tail", channel_name, "--from-start", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        out, err = stress.communicate(timeout=120)
        assert stress.returncode == 0, err
        assert json.loads(out)["passed"] is True
        tail_out, tail_err = tail.communicate(timeout=60)  # ends: the channel is removed
    finally:
        for proc in (stress, tail):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    assert tail.returncode in (0, 1), tail_err  # 1: stress was done before tail attached
    for line in tail_out.decode().splitlines()[:-1]:
        check_payload(bytes.fromhex(json.loads(line)["payload"]))


def _start_tail(procs: Processes, *args: str) -> tuple[subprocess.Popen[bytes], LineCollector]:
    """`mycelium-shm tail ARGS` in a child (reaped by the fixture), once it follows;
    its stderr is collected, its stdout left to the caller."""
    tail = subprocess.Popen(
        [sys.executable, "-m", "mycelium_shm", "tail", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    procs.started.append(tail)
    err = LineCollector(tail.stderr)
    err.wait_for(lambda lines: any("following" in x for x in lines), timeout=30)
    return tail, err


def _finish_tail(
    tail: subprocess.Popen[bytes], out: LineCollector, err: LineCollector
) -> tuple[list[dict], dict, str]:
    """Ctrl-C a tail that has shown the sentinel: (frames, summary, stderr)."""
    out.wait_for(lambda lines: any('"type_id":99' in x for x in lines), timeout=60)
    tail.send_signal(signal.SIGINT)
    assert tail.wait(timeout=30) == 130
    lines = out.finish()
    errors = "".join(err.finish())
    assert "Traceback" not in errors
    return [json.loads(x) for x in lines[:-1]], json.loads(lines[-1])["summary"], errors


def _checked(shown: list[dict]) -> list[tuple[int, int]]:
    """(writer id, seq) of the data frames tail showed, checking each payload's CRC
    and that positions only grow."""
    positions = [frame["position"] for frame in shown]
    assert positions == sorted(set(positions))
    ids = []
    for frame in shown:
        if frame["type_id"] == 99:
            continue
        writer_id, seq = check_payload(bytes.fromhex(frame["payload"]))  # never corrupt
        assert frame["type_id"] == 1 + writer_id
        ids.append((writer_id, seq))
    return ids


def test_tail_sees_every_frame_the_reader_consumed_first(
    channel_name: str, procs: Processes
) -> None:
    """A C-speed reader consumes each frame at once; tail still shows all of them,
    in order, intact (the reader does not erase frames), and misses none."""
    frames = 5000  # at most 5000 * 128 ring bytes: the writer never laps tail
    with ShmWriter(channel_name, create=True, capacity=1 << 20) as w:
        tail, err = _start_tail(procs, channel_name, "--json")
        out = LineCollector(tail.stdout)
        reader = procs.start("read-some", channel_name, str(frames))
        procs.run("writer", channel_name, "0", str(frames), "8", "100", "mixed")
        assert reader.stdout is not None
        assert list(map(int, reader.stdout.readline().split())) == list(range(frames))
        w.write(99, b"sentinel")
        shown, summary, errors = _finish_tail(tail, out, err)
    assert _checked(shown) == [(0, seq) for seq in range(frames)]
    assert summary["shown"] == frames + 1
    assert summary["missed"] == 0
    assert summary["lapped"] == 0
    assert f"tail: {frames + 1} frames shown, 0 missed" in errors


def test_tail_lapped_by_a_fast_writer_shows_intact_frames_and_counts_the_rest(
    channel_name: str, procs: Processes
) -> None:
    """Two writers, the reader keeping up: the first paced, the second as fast as
    it goes round the ring while tail is stopped, so tail is lapped for sure.
    tail shows frames in order, never a corrupt one, and the frames it missed
    are exactly the gaps in each writer's sequence numbers."""
    first, second = 5000, 20_000
    with ShmWriter(channel_name, create=True, capacity=1 << 16) as w:
        tail, err = _start_tail(procs, channel_name, "--json")
        out = LineCollector(tail.stdout)
        reader = procs.start("read-some", channel_name, str(first + second))
        rng = random.Random(0)
        for seq in range(first):  # paced: tail keeps up with this one
            w.write(1, make_payload(0, seq, rng.randint(8, 200), rng))
            if seq % 50 == 49:
                time.sleep(0.002)
        # Wherever tail is now, the second writer goes round the ring past it;
        # tail runs again while that writer still writes.
        tail.send_signal(signal.SIGSTOP)
        wait_stopped(tail.pid)
        try:
            past = inspect(channel_name).stats["tail"] + 4 * (1 << 16)
            fast = procs.start("writer", channel_name, "1", str(second), "8", "200", "mixed")
            deadline = time.monotonic() + 60
            while inspect(channel_name).stats["tail"] < past:
                assert time.monotonic() < deadline, "the second writer made no progress"
                time.sleep(0.0005)
        finally:
            tail.send_signal(signal.SIGCONT)
        assert fast.stdout is not None
        assert fast.stdout.read() == b"done\n"
        assert fast.wait(timeout=60) == 0
        assert reader.stdout is not None
        assert len(reader.stdout.readline().split()) == first + second  # it read every frame
        assert inspect(channel_name).reader_pid == reader.pid  # tail never became the reader
        w.write(99, b"sentinel")
        shown, summary, errors = _finish_tail(tail, out, err)
    ids = _checked(shown)
    assert summary["shown"] == len(ids) + 1 == len(shown)
    assert summary["missed"] == first + second - len(ids)
    gaps = 0
    for writer_id, count in ((0, first), (1, second)):
        seqs = [seq for wid, seq in ids if wid == writer_id]
        assert seqs == sorted(set(seqs))  # in order, never twice
        assert all(0 <= seq < count for seq in seqs)
        gaps += count - len(seqs)
    assert ids == sorted(ids)  # every frame of writer 0 before any of writer 1
    assert gaps == summary["missed"] > 0
    assert summary["lapped"] > 0
    assert f"shown, {summary['missed']} missed" in errors
    assert f"lapped {summary['lapped']} time" in errors


# -- broadcast channels: tail is an anonymous lossy reader ----------------------


def _frames_and_gaps(lines: list[dict]) -> tuple[list[int], list[tuple[int, int]]]:
    """The sequence numbers tail showed (writer 0, checked) and, for every
    lapped note, (index in those numbers where it came, frames it says it missed)."""
    seqs: list[int] = []
    gaps: list[tuple[int, int]] = []
    for line in lines:
        if "lapped" in line:
            gaps.append((len(seqs), line["lapped"]["missed"]))
        elif line["type_id"] != 99:
            writer_id, seq = check_payload(bytes.fromhex(line["payload"]))  # never corrupt
            assert (writer_id, line["type_id"]) == (0, 1)
            seqs.append(seq)
    return seqs, gaps


def test_tail_on_a_broadcast_channel_reads_every_frame_and_leaves_no_cursor(
    channel_name: str, procs: Processes
) -> None:
    """On a broadcast channel tail attaches its own anonymous lossy cursor: it shows
    every frame in order, intact, while a tethered reader reads them too, misses
    none, and its cursor is gone once it ends."""
    frames = 3000  # at most 3000 * 224 ring bytes < 1 MiB: never lapped
    with ShmWriter(channel_name, create=True, capacity=1 << 20, readers=3) as w:
        with ShmReader(channel_name, cursor="main") as main_reader:
            tail, err = _start_tail(procs, channel_name, "--json")
            out = LineCollector(tail.stdout)
            (tail_cursor,) = [c for c in cursors(channel_name) if not c["durable"]]
            assert (tail_cursor["policy"], tail_cursor["pid"]) == ("lossy", tail.pid)
            assert tail_cursor["tethered"] is False  # it never holds writers back
            procs.run("writer", channel_name, "0", str(frames), "8", "200", "mixed")
            got = [check_payload(main_reader.read(timeout=10).payload)[1] for _ in range(frames)]
            assert got == list(range(frames))
            w.write(99, b"sentinel")
            lines, summary, errors = _finish_tail(tail, out, err)
        assert [c["name"] for c in cursors(channel_name)] == ["main"]  # durable, detached
    seqs, gaps = _frames_and_gaps(lines)
    assert seqs == list(range(frames))
    assert gaps == []
    assert summary["shown"] == frames + 1
    assert summary["missed"] == summary["lapped"] == 0
    assert summary["cursor"]["policy"] == "lossy"
    positions = [line["position"] for line in lines]
    assert positions == sorted(set(positions))
    assert "as a lossy reader" in errors
    assert f"tail: {frames + 1} frames shown, 0 missed" in errors


def test_tail_lapped_on_a_broadcast_channel_says_exactly_how_many_frames_it_missed(
    channel_name: str, procs: Processes
) -> None:
    """tail stopped (SIGSTOP) while a writer goes round a small ring several times:
    it prints a line where it was lapped saying how many frames it missed, and
    that count is exactly the gap in the sequence numbers at that point; the
    summary's total is the sum.  Its cursor is gone after Ctrl-C."""
    first, second = 2000, 3000
    capacity = 1 << 14
    rng = random.Random(3)
    with ShmWriter(channel_name, create=True, capacity=capacity, readers=2) as w:
        tail, err = _start_tail(procs, channel_name, "--json")
        out = LineCollector(tail.stdout)
        for seq in range(first):  # paced: tail keeps up with these
            w.write(1, make_payload(0, seq, rng.randint(8, 200), rng))
            if seq % 20 == 19:
                time.sleep(0.002)
        last_seq = (first - 1).to_bytes(8, "little").hex()
        out.wait_for(lambda lines: any(f'"payload":"00000000{last_seq}' in x for x in lines), 60)
        tail.send_signal(signal.SIGSTOP)
        wait_stopped(tail.pid)
        try:
            start = inspect(channel_name).stats["tail"]
            for seq in range(first, first + second):  # never waits: tail is lossy
                w.write(1, make_payload(0, seq, rng.randint(8, 200), rng))
            assert inspect(channel_name).stats["tail"] - start > 4 * capacity
        finally:
            tail.send_signal(signal.SIGCONT)
        w.write(99, b"sentinel")
        lines, summary, errors = _finish_tail(tail, out, err)
        assert cursors(channel_name) == []  # the anonymous cursor went with tail
    seqs, gaps = _frames_and_gaps(lines)
    assert seqs == sorted(set(seqs))  # in order, never twice
    assert seqs[-1] == first + second - 1  # and caught up at the end
    assert gaps, "tail was never lapped"
    for index, missed in gaps:  # each note sits exactly where the numbers jump
        assert 0 < index < len(seqs)
        assert seqs[index] - seqs[index - 1] - 1 == missed > 0
    assert sum(missed for _, missed in gaps) == first + second - len(seqs) == summary["missed"]
    assert summary["lapped"] >= 1
    assert summary["shown"] == len(seqs) + 1
    assert f"shown, {summary['missed']} missed" in errors


def test_tail_lapped_mid_run_prints_the_missed_count_in_its_output(
    channel_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text output: after the first frame is shown the writer laps tail (a 4 KiB
    ring, 200 frames); the next thing printed is one line with exactly the
    number of frames tail missed, then the frames from there on."""
    with ShmWriter(channel_name, create=True, capacity=4096, readers=1) as w:
        real_show = cmd_tail._show
        lapped: list[int] = []

        def show_then_lap(frame: TailFrame, *args: object) -> None:
            real_show(frame, *args)  # type: ignore[arg-type]
            if not lapped:
                lapped.append(1)
                for seq in range(1, 201):
                    w.write(5, seq.to_bytes(4, "little") * 25)  # 128 ring bytes each

        monkeypatch.setattr(cmd_tail, "_show", show_then_lap)
        w.write(5, (0).to_bytes(4, "little") * 25)
        assert main(["tail", channel_name, "--from-start", "--count", "5", "--max-bytes", "4"]) == 0
        assert cursors(channel_name) == []
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 6
    assert "type 5" in lines[0] and lines[0].endswith("00 00 00 00 ... (+96 bytes)")
    seqs = [int.from_bytes(bytes.fromhex(line.split("B  ")[1][:11]), "little") for line in
            [lines[0], *lines[2:]]]  # fmt: skip
    assert seqs[1:] == list(range(seqs[1], seqs[1] + 4))
    missed = seqs[1] - 1
    assert missed > 0
    assert lines[1].startswith(f"-- lapped: missed {missed} frames (writers overwrote them")
    assert f"tail: 5 frames shown, {missed} missed" in err
    assert "lapped 1 time" in err


def test_tail_on_a_full_broadcast_channel_is_one_error_line(
    channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every reader slot taken: tail says so in one line, and how to free one."""
    with (
        ShmWriter(channel_name, create=True, capacity=4096, readers=2),
        ShmReader(channel_name, cursor="a"),
    ):
        ShmReader(channel_name, cursor="kept").close()  # durable: it keeps its slot
        assert main(["tail", channel_name, "--count", "1"]) == 1
        assert_one_error_line(
            capsys.readouterr().err,
            "tail cannot attach its lossy reader",
            "2 reader slots and all are taken",
            "mycelium-shm cursor rm",
        )
        assert main(["cursor", "rm", channel_name, "kept"]) == 0
        capsys.readouterr()
        assert main(["tail", channel_name, "--timeout", "0.05"]) == 0
        assert "as a lossy reader" in capsys.readouterr().err
        assert [c["name"] for c in cursors(channel_name)] == ["a"]


def test_tail_ended_by_sigterm_frees_its_cursor(channel_name: str, procs: Processes) -> None:
    """SIGTERM ends tail as Ctrl-C does (summary, exit 143), and its lossy cursor
    goes with it; a tethered reader beside it keeps its own."""
    with (
        ShmWriter(channel_name, create=True, capacity=4096, readers=2) as w,
        ShmReader(channel_name, cursor="keep"),
    ):
        tail, err = _start_tail(procs, channel_name, "--json")
        out = LineCollector(tail.stdout)
        assert len(cursors(channel_name)) == 2
        w.write(99, b"sentinel")
        out.wait_for(lambda lines: any('"type_id":99' in x for x in lines), timeout=30)
        tail.send_signal(signal.SIGTERM)
        assert tail.wait(timeout=30) == 143
        summary = json.loads(out.finish()[-1])["summary"]
        assert "Traceback" not in "".join(err.finish())
        assert (summary["shown"], summary["missed"], summary["interrupted"]) == (1, 0, True)
        assert [c["name"] for c in cursors(channel_name)] == ["keep"]
