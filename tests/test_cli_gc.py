"""mycelium-shm rm and gc: dead channels go, channels in use never do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Callable

import pytest
from conftest import ROOT, Processes, poke
from test_cli_support import assert_one_error_line, killed_holder, start_holder

from mycelium_shm import ShmWriter, exists
from mycelium_shm.cli import main
from mycelium_shm.cli.rawview import RawChannel


def gc_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict]]:
    rc = main(["gc", "--json", *args])
    return rc, json.loads(capsys.readouterr().out)


def test_gc_removes_a_channel_whose_processes_all_died(
    channel_name: str, procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Creator and writer SIGKILLed: --dry-run only says so, gc removes it."""
    pid = killed_holder(procs, channel_name)
    rc, (decision,) = gc_json(capsys, "--dry-run", channel_name)
    assert rc == 0
    assert decision["action"] == "would remove"
    assert f"writer {pid}(dead)" in decision["reason"]
    assert exists(channel_name)
    assert main(["gc", channel_name]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:2] == ["removed", channel_name]
    assert not exists(channel_name)


def test_gc_never_removes_a_channel_with_a_live_process(
    channel_names: Callable[[], str], procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live reader (creator dead), or a live creator, keeps its channel."""
    with_reader, with_creator = channel_names(), channel_names()
    killed_holder(procs, with_reader)
    reader = start_holder(procs, with_reader, "reader", create=False)
    ShmWriter(with_creator, create=True, capacity=4096).close()  # creator: this process
    rc, decisions = gc_json(capsys, with_reader, with_creator)
    assert rc == 0
    assert [d["action"] for d in decisions] == ["kept", "kept"]
    assert decisions[0]["reason"] == f"in use: reader {reader.pid}"
    assert decisions[1]["reason"].startswith("in use: creator")
    assert exists(with_reader) and exists(with_creator)
    reader.kill()
    reader.wait(timeout=10)
    rc, decisions = gc_json(capsys, with_reader)
    assert decisions[0]["action"] == "removed"


def test_gc_keeps_a_channel_some_process_maps(
    channel_name: str, procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A process outside the registry (here a read-only mapping) still counts as use."""
    killed_holder(procs, channel_name)
    with RawChannel(channel_name):
        rc, (decision,) = gc_json(capsys, channel_name)
        assert rc == 0
        assert decision["action"] == "kept"
        assert decision["reason"].startswith("mapped by pid")
    assert exists(channel_name)


def test_gc_keeps_a_channel_it_cannot_inspect(
    channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrupt object is kept: nothing says who uses it."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    poke(channel_name, 0, "<Q", 1)
    rc, (decision,) = gc_json(capsys, channel_name)
    assert rc == 0
    assert decision["action"] == "kept"
    assert "cannot inspect (FormatError" in decision["reason"]
    assert exists(channel_name)


def test_gc_missing_channel(channel_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A named channel that does not exist is an error line and status 1."""
    assert main(["gc", channel_name]) == 1
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, f"no channel named {channel_name!r}")


def test_rm_removes_and_reports_missing_ones(
    channel_names: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """rm removes each name; a missing one is an error line, the others still go."""
    a, missing, b = channel_names(), channel_names(), channel_names()
    for name in (a, b):
        ShmWriter(name, create=True, capacity=4096).close()
    assert main(["rm", a, missing, b]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"removed {a}", f"removed {b}"]
    assert_one_error_line(captured.err, f"no channel named {missing!r}")
    assert not exists(a) and not exists(b)


def test_rm_refuses_a_channel_with_a_live_reader_or_writer(
    channel_names: Callable[[], str], procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live reader or writer: one error line naming its pid, the channel stays;
    --force removes it anyway."""
    with_writer, with_reader = channel_names(), channel_names()
    writer = start_holder(procs, with_writer, "writer", create=True)
    reader = start_holder(procs, with_reader, "reader", create=True)
    assert main(["rm", with_writer]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_error_line(captured.err, with_writer, str(writer.pid), "--force")
    assert exists(with_writer)
    rc = main(["rm", "--json", with_reader])
    captured = capsys.readouterr()
    assert rc == 1
    (outcome,) = json.loads(captured.out)
    assert outcome["action"] == "refused"
    assert {"role": "reader", "pid": reader.pid} in outcome["live"]
    assert_one_error_line(captured.err, str(reader.pid))
    assert exists(with_reader)
    rc = main(["rm", "--force", "--json", with_writer, with_reader])
    assert rc == 0
    outcomes = json.loads(capsys.readouterr().out)
    assert [(o["name"], o["action"]) for o in outcomes] == [
        (with_writer, "removed"),
        (with_reader, "removed"),
    ]
    assert not exists(with_writer) and not exists(with_reader)


def test_rm_json_reports_removed_and_missing(
    channel_names: Callable[[], str], procs: Processes, capsys: pytest.CaptureFixture[str]
) -> None:
    """rm --json: one array, an entry per name; dead processes do not hold a channel."""
    dead, missing = channel_names(), channel_names()
    killed_holder(procs, dead)
    assert main(["rm", "--json", dead, missing]) == 1
    captured = capsys.readouterr()
    outcomes = json.loads(captured.out)
    assert [o["action"] for o in outcomes] == ["removed", "missing"]
    assert_one_error_line(captured.err, f"no channel named {missing!r}")
    assert not exists(dead)


THREADED_WRITER = """
import sys, threading, time
from mycelium_shm import ShmWriter
w = ShmWriter(sys.argv[1], create=True, capacity=1 << 16)
def write():
    for _ in range(20):
        w.write(1, b"x" * 8)
threads = [threading.Thread(target=write) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("ready", flush=True)
time.sleep(3600)
"""


def test_gc_and_ls_name_each_writer_pid_once(
    channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A writer that wrote from many threads (a registry slot each) is one pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", THREADED_WRITER, channel_name],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        rc, (decision,) = gc_json(capsys, "--dry-run", channel_name)
        assert rc == 0
        assert decision["reason"].count(f"writer {proc.pid}") == 1, decision
        assert main(["ls", "--json", channel_name]) == 0
        (entry,) = json.loads(capsys.readouterr().out)
        assert entry["writers"] == [{"pid": proc.pid, "alive": True}]
        proc.kill()
        proc.wait(timeout=10)
        rc, (decision,) = gc_json(capsys, "--dry-run", channel_name)
        assert decision["action"] == "would remove"
        assert decision["reason"].count(f"writer {proc.pid}(dead)") == 1, decision
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
