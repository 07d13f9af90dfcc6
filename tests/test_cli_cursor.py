"""mycelium-shm cursor ls / rm: a broadcast channel's cursors, listed and forgotten."""

from __future__ import annotations

import json
import os

import pytest
from conftest import Processes
from test_cli_support import assert_one_error_line

from mycelium_shm import ShmReader, ShmWriter, cursors
from mycelium_shm.cli import main


def _dead_reader(procs: Processes, name: str, cursor: str) -> int:
    """A tethered reader of CURSOR, SIGKILLed and reaped: its pid."""
    proc = procs.start("bc-reader", name, cursor, "tethered", "1000000", "60")
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.kill()
    proc.wait(timeout=10)
    return proc.pid


def test_cursor_ls_lists_live_dead_and_detached_cursors(
    channel_name: str, procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cursor ls` (and --json) shows each cursor's state: alive, dead, detached."""
    with ShmWriter(channel_name, create=True, capacity=4096, readers=3) as w:
        dead = _dead_reader(procs, channel_name, "crashed")
        ShmReader(channel_name, cursor="later").close()
        with ShmReader(channel_name, policy="lossy"):
            w.write(1, b"x" * 16)
            assert main(["cursor", "ls", channel_name, "--json"]) == 0
            doc = json.loads(capsys.readouterr().out)
            assert main(["cursor", "ls", channel_name]) == 0
            text = capsys.readouterr().out.splitlines()
    assert (doc["name"], doc["reader_slots"], doc["capacity"]) == (channel_name, 3, 4096)
    states = {c["name"]: (c["state"], c["pid"], c["lag"]) for c in doc["cursors"]}
    assert states == {
        "crashed": ("dead", dead, 32),
        "later": ("detached", None, 32),
        None: ("alive", os.getpid(), 32),
    }
    assert text[0] == f"{channel_name}: broadcast, 3 of 3 reader slots in use"
    assert text[1].startswith("CURSOR")
    rows = {line.split()[0]: line.split() for line in text[2:5]}
    assert rows["crashed"][-1] == "dead" and rows["later"][-1] == "detached"
    assert rows["(anonymous)"][-2:] == [str(os.getpid()), "alive"]


def test_cursor_rm_frees_a_durable_cursor(
    channel_name: str, procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cursor rm` forgets a detached cursor and a dead reader's one: their slots
    are free again and the next reader of that name starts afresh."""
    with ShmWriter(channel_name, create=True, capacity=4096, readers=2) as w:
        _dead_reader(procs, channel_name, "crashed")
        ShmReader(channel_name, cursor="later").close()
        w.write(1, b"old")
        assert main(["cursor", "rm", channel_name, "later", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc == {
            "name": channel_name,
            "cursor": "later",
            "forgotten": True,
            "position": 0,
            "lag": 32,
        }
        assert main(["cursor", "rm", channel_name, "crashed"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"forgot cursor 'crashed' of {channel_name!r}")
        assert cursors(channel_name) == []
        with ShmReader(channel_name, cursor="later") as again:  # a fresh cursor at the tail
            assert again.try_read() is None
            assert again.cursor_info()["position"] == 32


def test_cursor_rm_refuses_a_live_reader_and_an_unknown_name(
    channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cursor a live reader holds, a name that is no cursor, an anonymous cursor
    and a single-reader channel: one error line each, exit status 1, nothing freed."""
    with (
        ShmWriter(channel_name, create=True, capacity=4096, readers=3),
        ShmReader(channel_name, cursor="busy"),
        ShmReader(channel_name),
    ):
        ShmReader(channel_name, cursor="kept").close()
        assert main(["cursor", "rm", channel_name, "busy"]) == 1
        assert_one_error_line(
            capsys.readouterr().err,
            f"cursor 'busy' of channel {channel_name!r} is held by live reader {os.getpid()}",
        )
        assert main(["cursor", "rm", channel_name, "nope"]) == 1
        assert_one_error_line(
            capsys.readouterr().err,
            "no durable cursor named 'nope'",
            "durable cursors: 'busy', 'kept'",
        )
        assert len(cursors(channel_name)) == 3
    assert main(["cursor", "rm", channel_name, "x" * 40]) == 1
    assert_one_error_line(capsys.readouterr().err, "cursor name must be 1 to 39 bytes")


def test_cursor_commands_on_a_single_reader_channel(
    channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A single-reader channel has no cursors: ls and rm say so in one line; a
    missing channel and a missing verb are one line too."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    for argv in (["cursor", "ls", channel_name], ["cursor", "rm", channel_name, "a"]):
        assert main(argv) == 1
        assert_one_error_line(capsys.readouterr().err, "is a single-reader channel")
    assert main(["cursor", "ls", channel_name + "-missing"]) == 1
    assert_one_error_line(capsys.readouterr().err, "no channel named")
    assert main(["cursor"]) == 2
    assert_one_error_line(capsys.readouterr().err, "a VERB is required")
