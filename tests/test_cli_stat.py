"""mycelium-shm stat: counters, rates per interval, and one-line errors."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import poke
from test_cli_support import assert_one_error_line, run_cli

from mycelium_shm import ShmReader, ShmWriter
from mycelium_shm.cli import cmd_stat, main


def test_stat_rates_follow_the_counters(
    channel_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sample's rate times its interval is what happened in that interval."""
    with ShmWriter(channel_name, create=True, capacity=1 << 16) as w, ShmReader(channel_name) as r:
        real_sleep = time.sleep

        def busy_sleep(seconds: float) -> None:
            # During every "interval": 50 frames of 10 bytes written, 20 read.
            for _ in range(50):
                w.write(3, b"0123456789")
            for _ in range(20):
                assert r.read(timeout=1) is not None
            real_sleep(0.01)

        monkeypatch.setattr(cmd_stat.time, "sleep", busy_sleep)
        assert main(["stat", channel_name, "--interval", "0.01", "--count", "3", "--json"]) == 0
    samples = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(samples) == 3
    for i, sample in enumerate(samples, start=1):
        dt = sample["interval_s"]
        assert sample["counters"]["frames_written"] == 50 * i
        assert sample["counters"]["frames_read"] == 20 * i
        assert sample["rates"]["frames_written"] * dt == pytest.approx(50)
        assert sample["rates"]["bytes_written"] * dt == pytest.approx(500)
        assert sample["rates"]["frames_read"] * dt == pytest.approx(20)
        assert sample["used_bytes"] == 30 * i * 32  # align16(16 + 10) per unread frame
        assert sample["stalled_writer"] is None
        assert sample["hold_position"] is None


def test_stat_prints_plain_lines_off_a_terminal(
    channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not on a TTY: one line per sample, no cursor movement."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    assert main(["stat", channel_name, "--interval", "0.01", "--count", "2"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("t=") and "written=0" in line for line in lines)
    assert "\x1b" not in out


def test_stat_on_a_corrupt_channel_is_one_error_line(channel_name: str) -> None:
    """A bad magic: `stat` exits non-zero with one readable line, no traceback."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    poke(channel_name, 0, "<Q", 0x1122334455667788)
    done = run_cli("stat", channel_name, "--count", "1", "--interval", "0.01")
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "not a mycelium channel")
    assert done.stdout == ""


@pytest.mark.parametrize("bad", [["--interval", "0"], ["--interval", "x"], ["--count", "0"]])
def test_stat_bad_options(
    channel_name: str, bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad interval or count is a usage error (status 2), one line."""
    assert main(["stat", channel_name, *bad]) == 2
    assert_one_error_line(capsys.readouterr().err, "stat: argument")


def test_stat_missing_channel(channel_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A channel that does not exist: status 1, one line naming it."""
    assert main(["stat", channel_name, "--count", "1"]) == 1
    assert_one_error_line(capsys.readouterr().err, f"no channel named {channel_name!r}")


def test_stat_on_a_broadcast_channel_shows_each_cursor_and_its_read_rate(
    channel_name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sample lists every cursor; a cursor's read rate times the interval is
    what it read in that interval; plain lines add one line per cursor."""
    with (
        ShmWriter(channel_name, create=True, capacity=1 << 16, readers=3) as w,
        ShmReader(channel_name, cursor="fast") as fast,
        ShmReader(channel_name, cursor="slow", policy="lossy") as slow,
    ):
        real_sleep = time.sleep

        def busy_sleep(seconds: float) -> None:
            # During every "interval": 30 frames written, fast reads 30, slow 10.
            for _ in range(30):
                w.write(3, b"0123456789")
            for _ in range(30):
                assert fast.read(timeout=1) is not None
            for _ in range(10):
                assert slow.read(timeout=1) is not None
            real_sleep(0.01)

        monkeypatch.setattr(cmd_stat.time, "sleep", busy_sleep)
        assert main(["stat", channel_name, "--interval", "0.01", "--count", "2", "--json"]) == 0
        samples = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert main(["stat", channel_name, "--interval", "0.01", "--count", "1"]) == 0
        lines = capsys.readouterr().out.splitlines()
    assert len(samples) == 2
    for i, sample in enumerate(samples, start=1):
        assert sample["reader_slots"] == 3
        by_name = {c["name"]: c for c in sample["cursors"]}
        assert set(by_name) == {"fast", "slow"}
        dt = sample["interval_s"]
        assert by_name["fast"]["frames_read"] == 30 * i
        assert by_name["slow"]["frames_read"] == 10 * i
        assert by_name["fast"]["read_rate"] * dt == pytest.approx(30)
        assert by_name["slow"]["read_rate"] * dt == pytest.approx(10)
        assert by_name["fast"]["lag"] == 0
        assert by_name["slow"]["lag"] == 20 * i * 32  # align16(16 + 10) per unread frame
        assert by_name["slow"]["policy"] == "lossy"
        assert by_name["fast"]["state"] == by_name["slow"]["state"] == "alive"
    assert len(lines) == 3 and lines[0].startswith("t=")
    assert lines[1].startswith("  cursor fast policy=tethered tether=tethered ")
    assert "lag=0(0.0%) read=90(+" in lines[1]
    assert lines[2].startswith("  cursor slow policy=lossy tether=- ")
    assert "lag=1920(2.9%) read=30(+" in lines[2]
    assert lines[2].endswith(f"pid={os.getpid()} state=alive")
