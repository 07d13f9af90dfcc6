"""mycelium-shm record and replay: a channel's frames to a file and back, in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
from conftest import ROOT
from test_cli_support import assert_one_error_line, run_cli

from mycelium_shm import ShmReader, ShmWriter, inspect
from mycelium_shm.cli import main
from mycelium_shm.record import HEADER, MAGIC, RECORD, RecordingReader

FRAMES = 60

# A writer process with known frames: type 1 + k % 7, payload "frame-k" repeated.
WRITER = """
import sys, time
from mycelium_shm import ShmWriter
with ShmWriter(sys.argv[1]) as w:
    for k in range(int(sys.argv[2])):
        w.write(1 + k % 7, f"frame-{k};".encode() * (1 + k % 5))
        time.sleep(0.005)
"""


def expected(n: int = FRAMES) -> list[tuple[int, bytes]]:
    return [(1 + k % 7, f"frame-{k};".encode() * (1 + k % 5)) for k in range(n)]


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mycelium_shm", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def _wait_reader(name: str, pid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        info = inspect(name)
        if info.reader_pid == pid and info.reader_alive:
            return
        assert time.monotonic() < deadline, "the recorder never attached"
        time.sleep(0.01)


def _finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture
def recording(
    channel_names: Callable[[], str], schema: object, tmp_path: Path
) -> tuple[Path, str, dict]:
    """A channel with a schema digest, written by a subprocess, recorded to a file."""
    source = channel_names()
    ShmWriter(source, create=True, capacity=1 << 16, schema=schema).close()
    path = tmp_path / "run.rec"
    recorder = _cli("record", source, "-o", str(path), "--count", str(FRAMES), "--json")
    writer: subprocess.Popen[str] | None = None
    try:
        _wait_reader(source, recorder.pid)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, source, str(FRAMES)],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        assert writer.wait(timeout=60) == 0
        out, err = _finish(recorder)
    finally:
        for proc in (recorder, writer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert recorder.returncode == 0, err
    return path, source, json.loads(out)


def test_record_then_replay_gives_the_same_frames(
    recording: tuple[Path, str, dict],
    channel_names: Callable[[], str],
    schema: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Type ids and payloads in order, the schema digest carried to the new channel."""
    path, _source, summary = recording
    assert summary["frames"] == FRAMES and summary["stopped_by"] == "count"
    digest = schema.digest  # type: ignore[attr-defined]
    assert summary["schema_digest"] == digest.hex()
    with RecordingReader(path) as rec:
        assert rec.header.schema_digest == digest
        assert rec.header.capacity == 1 << 16
        records = list(rec)
        assert not rec.truncated
    assert [(r.type_id, r.payload) for r in records] == expected()
    times = [r.t_ns for r in records]
    assert times == sorted(times)

    target = channel_names()
    assert main(["replay", str(path), "--to", target, "--speed", "max", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["created"] and done["frames"] == FRAMES and not done["truncated"]
    info = inspect(target)
    assert info.schema_digest == digest
    assert info.capacity == 1 << 16
    # The digest is on the channel: a reader with the schema attaches.
    with ShmReader(target, schema=schema) as reader:  # type: ignore[arg-type]
        got = reader.read_many(FRAMES + 10, timeout=1)
    assert [(f.type_id, bytes(f.payload)) for f in got] == expected()


def test_replay_speed_scales_the_recorded_timing(
    recording: tuple[Path, str, dict], channel_names: Callable[[], str]
) -> None:
    """--speed 10 takes about a tenth of the recorded span (a generous bound only)."""
    path, _, _ = recording
    with RecordingReader(path) as rec:
        span = list(rec)[-1].t_ns / 1e9
    assert span > 0.1  # the writer slept 5 ms between frames
    target = channel_names()
    started = time.monotonic()
    done = run_cli("replay", str(path), "--to", target, "--speed", "10", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["frames"] == FRAMES
    # At least the scaled span (minus slack), and well under the unscaled one.
    assert summary["seconds"] >= span / 10 * 0.5
    assert time.monotonic() - started < 30
    assert summary["seconds"] < span + 5
    with ShmReader(target) as reader:
        got = reader.read_many(FRAMES + 10, timeout=1)
    assert [(f.type_id, bytes(f.payload)) for f in got] == expected()


def test_a_truncated_recording_replays_up_to_its_last_complete_record(
    recording: tuple[Path, str, dict],
    channel_names: Callable[[], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A file cut inside its last record (a killed recorder) replays the complete ones."""
    path, _, _ = recording
    data = path.read_bytes()
    last_len = len(expected()[-1][1])
    cut = path.with_name("cut.rec")
    cut.write_bytes(data[: len(data) - last_len // 2])
    with RecordingReader(cut) as rec:
        records = list(rec)
        assert rec.truncated
    assert [(r.type_id, r.payload) for r in records] == expected()[:-1]
    # Cut inside a record header too.
    cut.write_bytes(data[: len(data) - last_len - RECORD.size + 3])
    target = channel_names()
    assert main(["replay", str(cut), "--to", target, "--speed", "max", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["truncated"] and summary["frames"] == FRAMES - 1
    with ShmReader(target) as reader:
        got = reader.read_many(FRAMES + 10, timeout=1)
    assert [(f.type_id, bytes(f.payload)) for f in got] == expected()[:-1]


def test_a_killed_recorder_leaves_a_readable_file(channel_name: str, tmp_path: Path) -> None:
    """SIGKILL while frames flow: the file reads cleanly up to its last complete record."""
    ShmWriter(channel_name, create=True, capacity=1 << 16).close()
    path = tmp_path / "killed.rec"
    recorder = _cli("record", channel_name, "-o", str(path))
    writer: subprocess.Popen[bytes] | None = None
    try:
        _wait_reader(channel_name, recorder.pid)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, channel_name, "100000"],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        deadline = time.monotonic() + 20
        while path.stat().st_size < HEADER.size + 2000:
            assert time.monotonic() < deadline, "nothing recorded"
            time.sleep(0.01)
        recorder.kill()
        recorder.wait(timeout=10)
    finally:
        for proc in (recorder, writer):
            if proc is not None and proc.poll() is None:
                proc.kill()
            if proc is not None:
                proc.wait()
        _finish(recorder)
    with RecordingReader(path) as rec:
        records = list(rec)
    assert len(records) >= 10
    assert [(r.type_id, r.payload) for r in records] == expected(len(records))


def test_record_stops_on_sigterm_and_duration(channel_name: str, tmp_path: Path) -> None:
    """SIGTERM ends a recording cleanly (exit 0, summary); so does --duration."""
    ShmWriter(channel_name, create=True, capacity=1 << 16).close()
    path = tmp_path / "term.rec"
    recorder = _cli("record", channel_name, "-o", str(path), "--json")
    try:
        _wait_reader(channel_name, recorder.pid)
        recorder.terminate()
        out, err = _finish(recorder)
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait()
    assert recorder.returncode == 0, err
    assert json.loads(out)["stopped_by"] == "signal"
    done = run_cli("record", channel_name, "-o", str(path), "--duration", "0.2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stopped_by"] == "duration"
    with RecordingReader(path) as rec:
        assert list(rec) == [] and not rec.truncated


def test_a_bad_file_is_one_error_line(
    tmp_path: Path, channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wrong magic, or a missing file: one error line, status 1, no channel made."""
    bad = tmp_path / "bad.rec"
    bad.write_bytes(b"NOTAREC!" + bytes(200))
    done = run_cli("replay", str(bad), "--to", channel_name)
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "not a mycelium-shm recording", str(bad))
    assert main(["replay", str(tmp_path / "missing.rec"), "--to", channel_name]) == 1
    assert_one_error_line(capsys.readouterr().err, "missing.rec")
    assert not os.path.exists(f"/dev/shm/mycelium.{channel_name}")
    future = tmp_path / "future.rec"
    future.write_bytes(MAGIC + (99).to_bytes(2, "little") + bytes(200))
    assert main(["replay", str(future), "--to", channel_name]) == 1
    assert_one_error_line(capsys.readouterr().err, "version 99")


def test_record_of_a_missing_channel_or_busy_reader(
    channel_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No channel, or a live reader already: one error line, no file left behind."""
    path = tmp_path / "none.rec"
    assert main(["record", channel_name, "-o", str(path)]) == 1
    assert_one_error_line(capsys.readouterr().err, channel_name)
    with ShmReader(channel_name, create=True, capacity=1 << 16):
        assert main(["record", channel_name, "-o", str(path)]) == 1
        assert len(capsys.readouterr().err.splitlines()) == 1
    assert not path.exists()


def test_replay_into_a_channel_with_another_digest_is_refused(
    recording: tuple[Path, str, dict],
    channel_names: Callable[[], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An existing channel without the recorded schema digest: SchemaMismatch, one line."""
    path, _, _ = recording
    target = channel_names()
    ShmWriter(target, create=True, capacity=1 << 16).close()
    assert main(["replay", str(path), "--to", target, "--speed", "max"]) == 1
    assert len(capsys.readouterr().err.splitlines()) == 1
