"""mycelium-shm stress: the verdict counts every defect, and a clean run passes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from test_cli_support import assert_one_error_line, run_cli

from mycelium_shm import ChannelNotFound, ShmWriter, exists, inspect
from mycelium_shm.channel import FRAME_HEADER_SIZE
from mycelium_shm.cli import main
from mycelium_shm.cli.cmd_stress import Verifier, parse_sizes
from mycelium_shm.cli.payload import make_payload, type_id_of


def test_stress_run_passes(channel_name: str) -> None:
    """Two writer processes, a verifying reader: nothing lost, exit 0, channel removed."""
    done = run_cli(
        "stress",
        "--writers", "2",
        "--frames", "2000",
        "--sizes", "16-300",
        "--capacity", "8k",
        "--name", channel_name,
        "--json",
        "--progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["passed"] is True
    assert result["received"] == result["expected"] == 4000
    for key in ("lost", "duplicated", "out_of_order", "corrupt"):
        assert result[key] == 0
    assert result["frames_per_s"] > 0
    assert "100.0% 4000/4000 frames" in done.stderr
    assert "Warning" not in done.stderr
    assert not exists(channel_name)


def test_verifier_counts_each_defect() -> None:
    """Lost, duplicated, out-of-order and corrupt frames are each counted."""
    rng = random.Random(1)
    v = Verifier(writers=2, frames=4)
    p = {(w, s): make_payload(w, s, 40, rng) for w in range(2) for s in range(4)}
    for w, s in [(0, 0), (0, 2), (0, 1), (0, 2), (1, 0), (1, 1)]:
        v.check(type_id_of(w), p[w, s])
    v.check(type_id_of(1), p[1, 2][:-1] + b"!")  # bad CRC
    v.check(type_id_of(0), p[1, 3])  # writer 1's frame with writer 0's type
    v.check(type_id_of(0), b"short")
    assert (v.lost, v.duplicated, v.out_of_order, v.corrupt) == (3, 1, 1, 3)
    assert not v.clean


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--sizes", "300-200"], "low size is above"),
        (["--sizes", "a-b"], "not a size"),
        (["--sizes", "1-2-3"], "expected A-B"),
        (["--sizes", "4-100"], "at least 16 bytes"),
        (["--sizes", "16-5000", "--capacity", "16k"], f"more than the max payload {16384 // 4 - FRAME_HEADER_SIZE}"),
        (["--capacity", "3000"], "not a power of two"),
        (["--writers", "0"], "at least 1"),
    ],
)
def test_stress_bad_arguments(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad sizes, capacity or counts: one line, status 2, nothing started."""
    assert main(["stress", *args]) == 2
    assert_one_error_line(capsys.readouterr().err, fragment)


def test_parse_sizes() -> None:
    """A-B, a single size, and binary suffixes."""
    assert parse_sizes("16-256") == (16, 256)
    assert parse_sizes("64") == (64, 64)
    assert parse_sizes("1k-2k") == (1024, 2048)


def test_stress_refuses_an_existing_channel(
    channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--name of a channel that exists: one error line, and the channel is left alone."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    assert main(["stress", "--name", channel_name, "--frames", "1"]) == 1
    assert_one_error_line(capsys.readouterr().err, "exists")
    assert exists(channel_name)


def test_stress_fails_when_a_writer_dies(channel_name: str) -> None:
    """A writer SIGKILLed mid-run: frames are lost, the verdict is FAIL, exit 1."""
    stress = subprocess.Popen(
        [sys.executable, "-m", "mycelium_shm", "stress", "--name", channel_name,
         "--writers", "1", "--frames", "10000000", "--capacity", "4k"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        writers: list[tuple[int, bool]] = []
        while not writers:
            assert time.monotonic() < deadline and stress.poll() is None
            try:
                writers = inspect(channel_name).writers
            except ChannelNotFound:
                time.sleep(0.01)
        os.kill(writers[0][0], signal.SIGKILL)
        out, err = stress.communicate(timeout=60)
    finally:
        if stress.poll() is None:
            stress.kill()
            stress.communicate(timeout=10)
    assert stress.returncode == 1
    assert out.startswith(b"FAIL: 1 writers x 10000000 frames")
    assert b" 0 duplicated, 0 out of order, 0 corrupt" in out
    assert b"mycelium-shm: writer 0 exited -9" in err
    assert b"Warning" not in err
    assert not exists(channel_name)
