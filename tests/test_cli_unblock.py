"""ls and stat show a writer stalled inside its frame; `unblock` revokes that frame."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import Processes
from test_cli_support import assert_one_error_line, run_cli, wait_stopped

from mycelium_shm import ShmReader, ShmWriter
from mycelium_shm.cli import main
from mycelium_shm.cli.rawview import Follower, RawChannel


def _stalled_writer(procs: Processes, name: str) -> subprocess.Popen[bytes]:
    """A writer that reserved a frame, filled half of it and stopped itself (SIGSTOP)."""
    holder = procs.start("kc-stall-claim", name, "7", "0")
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"claimed\n"
    wait_stopped(holder.pid)
    return holder


def _ls(capsys: pytest.CaptureFixture[str], name: str) -> dict:
    assert main(["ls", "--json", name]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    return entry


def _ls_text(capsys: pytest.CaptureFixture[str], name: str) -> str:
    assert main(["ls", name]) == 0
    return capsys.readouterr().out


def test_a_stalled_writer_is_shown_and_unblocked(
    channel_name: str, procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live writer stopped inside its frame holds the reader: ls and stat name it
    and say for how long; unblock revokes the frame, the reader gets the next
    writer's frame, and the stalled writer's commit fails with FrameAbandoned."""
    with (
        ShmReader(channel_name, create=True, capacity=1 << 16, stuck_timeout=0.01) as r,
        ShmWriter(channel_name) as w,
    ):
        entry = _ls(capsys, channel_name)
        assert entry["stalled_writer"] is None and entry["hold_position"] is None
        holder = _stalled_writer(procs, channel_name)
        before_ns = time.time_ns()
        assert r.read(timeout=0.2) is None  # the reader waits for the live writer
        after_ns = time.time_ns()

        entry = _ls(capsys, channel_name)
        stall = entry["stalled_writer"]
        assert stall["pid"] == holder.pid
        assert before_ns <= stall["since_ns"] <= after_ns
        assert 0 <= stall["seconds"] < 60
        assert entry["hold_position"] is None
        assert f"{channel_name}: stalled: writer {holder.pid} for " in _ls_text(
            capsys, channel_name
        )

        assert main(["stat", channel_name, "--count", "1", "--interval", "0.01", "--json"]) == 0
        sample = json.loads(capsys.readouterr().out)
        assert sample["stalled_writer"]["pid"] == holder.pid
        assert sample["stalled_writer"]["seconds"] >= 0.01
        assert sample["hold_position"] is None
        assert main(["stat", channel_name, "--count", "1", "--interval", "0.01"]) == 0
        assert f"stalled: writer {holder.pid} for " in capsys.readouterr().out

        assert main(["unblock", channel_name, "--json"]) == 0
        revoked = json.loads(capsys.readouterr().out)
        assert revoked == {"name": channel_name, "writer_pid": holder.pid, "position": 0}
        entry = _ls(capsys, channel_name)
        assert entry["hold_position"] == 0  # its writer has not returned yet
        assert entry["stalled_writer"] is None  # the reader skips it on its next read
        assert f"{channel_name}: hold: revoked frame at position 0" in _ls_text(
            capsys, channel_name
        )
        assert main(["stat", channel_name, "--count", "1", "--interval", "0.01", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["hold_position"] == 0

        # Revoked already: a second unblock has nothing to do.
        assert main(["unblock", channel_name]) == 1
        assert_one_error_line(capsys.readouterr().err, "nothing to unblock", "already revoked")

        # The reader skips the revoked frame and gets the next writer's.
        w.write(5, b"next")
        assert r.read(timeout=5) == (5, b"next")
        entry = _ls(capsys, channel_name)
        assert entry["stalled_writer"] is None
        assert entry["hold_position"] == 0
        assert main(["unblock", channel_name]) == 1
        assert_one_error_line(capsys.readouterr().err, "nothing to unblock", "not held")

        # The stalled writer runs again: its commit is refused.
        os.kill(holder.pid, signal.SIGCONT)
        assert holder.stdout is not None
        said = holder.stdout.readline().decode()
        assert said.startswith("error FrameAbandoned: "), said
        assert holder.wait(timeout=10) == 0
        entry = _ls(capsys, channel_name)
        assert entry["hold_position"] is None  # released by its writer
        assert "hold:" not in _ls_text(capsys, channel_name)

        # None of its bytes reached the reader, nor tail.
        assert r.try_read() is None
        with RawChannel(channel_name) as ch:
            follower = Follower(ch, from_start=True)
            assert [(f.type_id, f.payload) for f in follower.poll()] == [(5, b"next")]
            assert follower.missed() == 0
        w.write(6, b"after")
        assert r.read(timeout=5) == (6, b"after")


def test_unblock_text_output(
    channel_name: str, procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --json: one line naming the writer, the position and FrameAbandoned."""
    with ShmReader(channel_name, create=True, capacity=1 << 16, stuck_timeout=0.01) as r:
        holder = _stalled_writer(procs, channel_name)
        assert r.read(timeout=0.1) is None
        done = run_cli("unblock", channel_name)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            f"unblocked {channel_name!r}: revoked the frame of writer {holder.pid} at "
            "position 0; the reader skips it, the writer's commit will raise "
            "FrameAbandoned and none of its bytes are delivered"
        ]
        assert r.try_read() is None
        os.kill(holder.pid, signal.SIGCONT)
        assert holder.stdout is not None
        assert holder.stdout.readline().startswith(b"error FrameAbandoned")


def test_unblock_with_nothing_held_is_one_error_line(channel_name: str) -> None:
    """A reader not held by a claim, or no channel at all: status 1, one line."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        w.write(1, b"committed")
        done = run_cli("unblock", channel_name, "--json")
        assert done.returncode == 1
        assert_one_error_line(done.stderr, "nothing to unblock", channel_name)
        assert done.stdout == ""
    done = run_cli("unblock", channel_name + "-missing")
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "no channel named")


def test_unblock_help_says_what_the_writer_gets() -> None:
    """--help: the writer gets FrameAbandoned and none of its bytes are delivered."""
    done = run_cli("unblock", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "FrameAbandoned" in text
    assert "none of that frame's bytes are ever delivered" in text
    assert "unblock" in run_cli("--help").stdout
