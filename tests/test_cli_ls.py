"""mycelium-shm ls: fill, counters, processes (dead ones too) and broken channels."""

from __future__ import annotations

import json
import os
from typing import Callable

import pytest
from conftest import ROOT, Processes, poke
from test_cli_support import killed_holder, run_cli

from mycelium_shm import ShmWriter
from mycelium_shm.cli import main
from mycelium_shm.protocol import Schema


def ls_json(capsys: pytest.CaptureFixture[str], *names: str) -> tuple[int, list[dict]]:
    rc = main(["ls", "--json", *names])
    return rc, json.loads(capsys.readouterr().out)


def test_ls_shows_a_dead_writer(
    channel_name: str, procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SIGKILLed writer keeps its registry slot and is shown dead, as is the creator."""
    pid = killed_holder(procs, channel_name)
    rc, entries = ls_json(capsys, channel_name)
    assert rc == 0
    (entry,) = entries
    assert entry["writers"] == [{"pid": pid, "alive": False}]
    assert entry["creator"] == {"pid": pid, "alive": False}
    assert entry["reader"] is None
    assert entry["in_use"] is False
    assert main(["ls", channel_name]) == 0
    table = capsys.readouterr().out
    assert table.startswith("NAME")
    assert f"{pid}(dead)" in table.splitlines()[1]


def test_ls_counts_fill_and_schema(channel_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Frames written and read, used bytes, fill and the schema digest are reported."""
    schema = Schema.load(ROOT / "schemas" / "trading.toml")
    with ShmWriter(channel_name, create=True, capacity=4096, schema=schema) as w:
        for _ in range(3):
            w.write(1, b"x" * 100)
        rc, (entry,) = ls_json(capsys, channel_name)
        assert rc == 0
        assert entry["frames_written"] == 3
        assert entry["frames_read"] == 0
        assert entry["used_bytes"] == 3 * 128  # align16(16 + 100)
        assert entry["fill"] == pytest.approx(384 / 4096)
        assert entry["stalled_writer"] is None
        assert entry["hold_position"] is None
        assert entry["schema_digest"] == schema.digest.hex()
        assert entry["creator"] == {"pid": os.getpid(), "alive": True}
        assert entry["writers"] == [{"pid": os.getpid(), "alive": True}]
        assert main(["ls", channel_name]) == 0
        row = capsys.readouterr().out.splitlines()[1].split()
        assert row[0] == channel_name
        assert schema.digest[:8].hex() in row


def test_ls_lists_a_corrupt_channel_with_its_error(
    channel_names: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A channel with a foreign magic is a row with its error, not a crash."""
    bad, good = channel_names(), channel_names()
    ShmWriter(bad, create=True, capacity=4096).close()
    ShmWriter(good, create=True, capacity=4096).close()
    poke(bad, 0, "<Q", 0x1122334455667788)
    assert main(["ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (bad_row,) = [line for line in lines if line.split()[:1] == [bad]]
    assert "error: FormatError" in bad_row
    assert any(line.split()[:1] == [good] for line in lines)
    rc, entries = ls_json(capsys, bad, good)
    assert rc == 1  # a named channel could not be inspected
    assert "not a mycelium channel" in entries[0]["error"]
    assert entries[1]["name"] == good and "error" not in entries[1]


def test_ls_runs_as_a_module(channel_name: str) -> None:
    """`python -m mycelium_shm ls` runs the same command."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    done = run_cli("ls", channel_name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[0] == channel_name
