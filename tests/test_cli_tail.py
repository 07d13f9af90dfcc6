"""mycelium-shm tail: frames copied read-only, the reader undisturbed, misses counted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Callable

import pytest
from conftest import ROOT, Processes, poke
from test_cli_support import assert_one_error_line
from workers import check_payload

from mycelium_shm import CorruptChannel, ShmReader, ShmWriter, exists, inspect
from mycelium_shm.cli import main
from mycelium_shm.cli.rawview import Follower, RawChannel
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


def test_follower_counts_frames_the_reader_consumed_first(channel_name: str) -> None:
    """Frames the reader consumes before tail copies them are missed, and counted."""
    with (
        ShmWriter(channel_name, create=True, capacity=4096) as w,
        ShmReader(channel_name) as r,
        RawChannel(channel_name) as ch,
    ):
        follower = Follower(ch, from_start=True)
        for i in range(5):
            w.write(1 + i, bytes([i]) * 10)
        for _ in range(3):
            assert r.read(timeout=1) is not None
        assert [(f.type_id, f.payload) for f in follower.poll()] == [
            (4, b"\x03" * 10),
            (5, b"\x04" * 10),
        ]
        assert follower.missed() == 3
        w.write(6, b"late")
        w.write(7, b"later")
        assert [r.read(timeout=1).type_id for _ in range(4)] == [4, 5, 6, 7]  # type: ignore[union-attr]
        assert follower.poll() == []
        assert follower.missed() == 5
        assert follower.seen == 2


def test_follower_without_from_start_sees_only_new_frames(channel_name: str) -> None:
    """The default start is the tail: frames already in the ring are not shown."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        w.write(1, b"old")
        with RawChannel(channel_name) as ch:
            follower = Follower(ch)
            w.write(2, b"new")
            assert [f.payload for f in follower.poll()] == [b"new"]
            assert follower.missed() == 0


def test_follower_never_trusts_a_frame_length(channel_name: str) -> None:
    """A committed length running past the tail is CorruptChannel, never a bad read."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        w.write(1, b"abc")
        poke(channel_name, 4096, "<i", 4000)
        with RawChannel(channel_name) as ch:
            with pytest.raises(CorruptChannel, match="past"):
                Follower(ch, from_start=True).poll()
        poke(channel_name, 4096, "<i", 1 << 30)
        with RawChannel(channel_name) as ch:
            with pytest.raises(CorruptChannel, match="past the end"):
                Follower(ch, from_start=True).poll()


def test_tail_on_a_foreign_object(channel_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """tail validates the header itself: a foreign magic is one error line."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    poke(channel_name, 0x08, "<I", 2)
    assert main(["tail", channel_name, "--count", "1"]) == 1
    assert_one_error_line(capsys.readouterr().err, "format version 2")


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


def test_follower_drops_a_frame_zeroed_while_it_copied(
    channel_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader zeroes a frame before it moves head: a copy taken meanwhile is dropped."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        w.write(1, b"payload!")
        with RawChannel(channel_name) as ch:
            follower = Follower(ch, from_start=True)
            real_copy = ch.copy

            def copy_while_zeroed(index: int, size: int) -> bytes:
                data = real_copy(index, size)
                poke(channel_name, 4096, "<Q", 0)  # the reader's memset, head not yet moved
                return data

            monkeypatch.setattr(ch, "copy", copy_while_zeroed)
            assert follower.poll() == []
            assert follower.discarded == 1
            assert follower.seen == 0


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
