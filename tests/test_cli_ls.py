"""mycelium-shm ls: fill, counters, processes (dead ones too) and broken channels."""

from __future__ import annotations

import json
import os
from typing import Callable

import pytest
from conftest import ROOT, Processes, poke
from test_cli_support import killed_holder, run_cli

from mycelium_shm import ShmReader, ShmWriter
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


def _dead_reader(procs: Processes, name: str, cursor: str) -> int:
    """A reader of broadcast channel NAME holding CURSOR (tethered), SIGKILLed
    and reaped: its pid."""
    proc = procs.start("bc-reader", name, cursor, "tethered", "1000000", "60")
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.kill()
    proc.wait(timeout=10)
    return proc.pid


def test_ls_lists_every_reader_of_a_broadcast_channel(
    channel_names: Callable[[], str], procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broadcast channel with a named tethered reader, an anonymous lossy one and
    a dead one: each is a row with its policy, tether, position, lag, counters,
    pid and state, in the table and in --json; a single-reader channel beside it
    keeps its plain row."""
    name, single = channel_names(), channel_names()
    ShmWriter(single, create=True, capacity=4096).close()
    with ShmWriter(name, create=True, capacity=4096, readers=4, untether=60) as w:
        dead = _dead_reader(procs, name, "audit")  # attached at position 0
        with (
            ShmReader(name, cursor="risk") as risk,
            ShmReader(name, policy="lossy") as lossy,
        ):
            for _ in range(4):
                w.write(1, b"x" * 100)  # 128 ring bytes each
            for _ in range(3):
                assert risk.read(timeout=1) is not None
            assert lossy.read(timeout=1) is not None
            rc, entries = ls_json(capsys, name, single)
            assert main(["ls", name, single]) == 0
            table = capsys.readouterr().out
    assert rc == 0
    entry, plain = entries
    assert (plain["reader_slots"], plain["cursors"]) == (0, [])
    assert entry["reader_slots"] == 4
    by_name = {c["name"]: c for c in entry["cursors"]}
    assert set(by_name) == {"audit", "risk", None}
    me = os.getpid()
    expect = {  # name: (policy, tethered, pid, alive, state, position, frames read)
        "risk": ("tethered", True, me, True, "alive", 384, 3),
        None: ("lossy", False, me, True, "alive", 128, 1),
        "audit": ("tethered", True, dead, False, "dead", 0, 0),
    }
    for key, (policy, tethered, pid, alive, state, position, read) in expect.items():
        c = by_name[key]
        got = (c["policy"], c["tethered"], c["pid"], c["alive"], c["state"], c["position"])
        assert got == (policy, tethered, pid, alive, state, position), c
        assert c["frames_read"] == read
        assert c["lag"] == 512 - position
        assert c["lag_fraction"] == pytest.approx((512 - position) / 4096)
        assert c["lost"] == c["laps"] == c["untethers"] == 0
        assert c["durable"] is (key is not None)
    lines = table.splitlines()
    at, end = lines[0].index("READER"), lines[0].index("WRITERS")
    (row,) = [line for line in lines if line.split()[:1] == [name]]
    assert row[at:end].strip() == "3/4 cursors"  # READER: cursor slots in use
    (plain_row,) = [line for line in lines if line.split()[:1] == [single]]
    assert plain_row[at:end].strip() == "-"  # no reader, shown as before
    assert f"{name}: broadcast, 3 of 4 reader slots in use" in lines
    header = lines.index(f"{name}: broadcast, 3 of 4 reader slots in use") + 1
    assert lines[header].split() == [
        "CURSOR", "POLICY", "TETHER", "POSITION", "LAG", "READ", "LOST", "LAPS",
        "UNTETHERS", "PID", "STATE",
    ]  # fmt: skip
    cells = {line.split()[0]: line.split() for line in lines[header + 1 : header + 4]}
    assert cells["risk"] == [
        "risk", "tethered", "tethered", "384", "128", "B", "(3.1%)", "3", "0", "0", "0",
        str(me), "alive",
    ]  # fmt: skip
    assert cells["(anonymous)"][:4] == ["(anonymous)", "lossy", "-", "128"]
    assert cells["(anonymous)"][-2:] == [str(me), "alive"]
    assert cells["audit"][-2:] == [f"{dead}(dead)", "dead"]
    assert any(f"its reader {dead} died" in line and "cursor rm" in line for line in lines)


def test_ls_shows_a_durable_cursor_without_reader_as_detached(
    channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A named reader that closed leaves its cursor: no pid, state detached."""
    with ShmWriter(channel_name, create=True, capacity=4096, readers=2) as w:
        with ShmReader(channel_name, cursor="nightly") as r:
            w.write(1, b"abc")
            assert r.read(timeout=1) == (1, b"abc")
        w.write(1, b"def")
        rc, (entry,) = ls_json(capsys, channel_name)
        assert main(["ls", channel_name]) == 0
        table = capsys.readouterr().out
    assert rc == 0
    (c,) = entry["cursors"]
    assert (c["name"], c["pid"], c["alive"], c["state"]) == ("nightly", None, False, "detached")
    assert (c["position"], c["lag"], c["frames_read"]) == (32, 32, 1)
    (row,) = [line.split() for line in table.splitlines() if line.split()[:1] == ["nightly"]]
    assert row[-2:] == ["-", "detached"]
