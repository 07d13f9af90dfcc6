"""Hardening: names the tools can always list, odd objects in /dev/shm, one
exception family, foreign channels, nested reads, forged owners, truncation.

Objects are planted directly under /dev/shm with unique names and removed by
the fixtures, whatever the outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from conftest import ROOT, poke

from mycelium_shm import (
    ChannelOSError,
    CorruptChannel,
    ForeignChannel,
    FormatError,
    HandleBusy,
    InvalidArgument,
    InvalidName,
    MyceliumError,
    PermissionDenied,
    ReaderBusy,
    ReadViewOpen,
    ShmReader,
    ShmWriter,
    check_name,
    inspect,
    unlink,
)
from mycelium_shm._native import lib, raise_for
from mycelium_shm.cli import main

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
NOBODY = 65534
SHM = b"/dev/shm/mycelium."
ENV = dict(os.environ, PYTHONPATH=str(ROOT))
OFF_READER_OWNER = 0x108


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )


# -- names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "where"),
    [("a\udcff", "U+DCFF at character 1"), ("\ud800xyz", "U+D800 at character 0")],
)
def test_lone_surrogate_is_invalid_name(name: str, where: str) -> None:
    """A str with a lone surrogate raises InvalidName (not UnicodeEncodeError) naming it."""
    for call in (
        lambda: check_name(name),
        lambda: ShmWriter(name, create=True, capacity=4096),
        lambda: ShmReader(name),
        lambda: inspect(name),
    ):
        with pytest.raises(InvalidName) as raised:
            call()
        assert type(raised.value) is InvalidName
        assert "not valid UTF-8: lone surrogate" in str(raised.value)
        assert where in str(raised.value)


def test_valid_utf8_names_pass(channel_names: Callable[[], str]) -> None:
    """Non-ASCII text is a fine name."""
    name = channel_names() + "-caf\u00e9-\U0001f600"
    try:
        with ShmWriter(name, create=True, capacity=4096):
            assert inspect(name).name == name
    finally:
        unlink(name, missing_ok=True)


# -- odd objects under /dev/shm -------------------------------------------------


@pytest.fixture
def odd_objects() -> Iterator[dict[str, bytes]]:
    """A non-UTF-8 name, a file that is not a channel, a directory and a
    symlink, all under the channel prefix; removed at teardown."""
    tag = f"odd-{os.getpid()}-{uuid.uuid4().hex[:8]}".encode()
    paths = {
        "badname": SHM + tag + b"-\xff",
        "notchannel": SHM + tag + b"-file",
        "directory": SHM + tag + b"-dir",
        "symlink": SHM + tag + b"-link",
    }
    with open(paths["badname"], "wb") as f:
        f.write(b"\0" * 8192)
    with open(paths["notchannel"], "wb") as f:
        f.write(b"hello, not a channel\n" * 400)
    for key in ("badname", "notchannel"):
        os.chmod(paths[key], 0o600)  # not refused as too open before its format is seen
    os.mkdir(paths["directory"])
    os.symlink(b"/etc/passwd", paths["symlink"])
    try:
        yield paths
    finally:
        for key, path in paths.items():
            try:
                os.rmdir(path) if key == "directory" else os.unlink(path)
            except FileNotFoundError:
                pass


def _name(path: bytes) -> str:
    return os.fsdecode(path[len(SHM) :])


def test_odd_objects_raise_errors_that_say_what_they_are(odd_objects: dict[str, bytes]) -> None:
    """A symlink and a directory are FormatError naming what was found; a file
    with a foreign magic is FormatError; a non-UTF-8 name is InvalidName."""
    link = _name(odd_objects["symlink"])
    for call in (lambda: ShmWriter(link), lambda: ShmReader(link), lambda: inspect(link)):
        with pytest.raises(FormatError, match="is a symbolic link, not a channel") as raised:
            call()
        assert type(raised.value) is FormatError
    with pytest.raises(FormatError, match="is a symbolic link"):
        ShmWriter(link, create=True, exist_ok=True, capacity=4096)
    directory = _name(odd_objects["directory"])
    for call in (lambda: ShmWriter(directory), lambda: inspect(directory)):
        with pytest.raises(FormatError, match="is a directory, not a channel") as raised:
            call()
        assert type(raised.value) is FormatError
    with pytest.raises(FormatError, match="is not a mycelium channel") as raised:
        ShmReader(_name(odd_objects["notchannel"]))
    assert type(raised.value) is FormatError
    with pytest.raises(InvalidName, match="not valid UTF-8") as raised:
        inspect(_name(odd_objects["badname"]))
    assert type(raised.value) is InvalidName


def test_ls_lists_odd_objects_as_rows(
    odd_objects: dict[str, bytes], channel_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ls` survives every odd object: each is a row with its error, the real
    channel is listed with owner uid and mode."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    assert main(["ls"]) == 0
    table = capsys.readouterr().out
    # Non-empty lines: other channels in /dev/shm may add notes after a blank line.
    lines = [line for line in table.splitlines() if line.strip()]
    assert lines[0].split()[:3] == ["NAME", "OWNER", "MODE"]
    (row,) = [line for line in lines if line.split()[0] == channel_name]
    assert row.split()[1:3] == [str(os.geteuid()), "0600"]
    shown = {key: os.fsdecode(path[len(SHM) :]) for key, path in odd_objects.items()}
    shown["badname"] = shown["badname"].replace("\udcff", "\\xff")
    rows = {key: [line for line in lines if line.split()[0] == name] for key, name in shown.items()}
    assert "InvalidName: channel name is not valid UTF-8" in rows["badname"][0]
    assert "FormatError" in rows["notchannel"][0]
    assert "not a mycelium channel" in rows["notchannel"][0]
    assert "error: directory; FormatError" in rows["directory"][0]
    assert "error: symlink; FormatError" in rows["symlink"][0]

    assert main(["ls", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    assert entries[channel_name]["owner_uid"] == os.geteuid()
    assert entries[channel_name]["mode"] == "0600"
    assert entries[shown["directory"]]["kind"] == "directory"
    assert entries[shown["symlink"]]["kind"] == "symlink"
    assert "is a symbolic link" in entries[shown["symlink"]]["error"]
    assert entries[shown["badname"]]["kind"] == "file"
    assert "not valid UTF-8" in entries[shown["badname"]]["error"]


def test_gc_keeps_odd_objects_and_says_why(
    odd_objects: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """`gc` survives every odd object and keeps it, with the reason."""
    assert main(["gc", "--dry-run", "--json"]) == 0
    decisions = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    shown = {key: os.fsdecode(path[len(SHM) :]) for key, path in odd_objects.items()}
    shown["badname"] = shown["badname"].replace("\udcff", "\\xff")
    for key, name in shown.items():
        assert decisions[name]["action"] == "kept", key
        assert decisions[name]["reason"].startswith("cannot inspect ("), key
    assert "InvalidName" in decisions[shown["badname"]]["reason"]
    assert "is a directory" in decisions[shown["directory"]]["reason"]
    assert main(["gc", "--dry-run"]) == 0  # the table prints the escaped name
    assert shown["badname"] in capsys.readouterr().out
    for path in odd_objects.values():
        assert os.path.lexists(path)


@needs_root
def test_ls_as_another_user_shows_unreadable_channels(
    odd_objects: dict[str, bytes], channel_name: str
) -> None:
    """A 0600 channel of root listed by nobody: a PermissionDenied row, not a crash."""
    ShmWriter(channel_name, create=True, capacity=4096).close()
    code = (
        "import os, shutil, sys\n"  # shutil: argparse imports it lazily, and the
        # interpreter's stdlib may live where nobody cannot read (/root/.pyenv)
        "from mycelium_shm.cli import main\n"
        f"os.setgid({NOBODY}); os.setuid({NOBODY})\n"
        "sys.exit(main(['ls']))\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if line.split()[:1] == [channel_name]]
    assert "error: PermissionDenied" in row
    assert "Permission denied" in row


# -- one exception family ---------------------------------------------------------


@pytest.mark.parametrize(
    ("errno_value", "expected"),
    [(13, PermissionDenied), (1, PermissionDenied), (28, ChannelOSError), (12, ChannelOSError)],
)
def test_system_errors_are_mycelium_errors(errno_value: int, expected: type) -> None:
    """MYC_ERR_SYSTEM becomes PermissionDenied (EACCES, EPERM) or ChannelOSError,
    both MyceliumError and OSError carrying errno."""
    with pytest.raises(expected) as raised:
        _raise_system(errno_value)
    assert type(raised.value) is expected
    assert isinstance(raised.value, MyceliumError)
    assert isinstance(raised.value, OSError)
    assert raised.value.errno == errno_value


def _raise_system(errno_value: int) -> None:
    """raise_for(MYC_ERR_SYSTEM) with the C core's last errno set to errno_value."""
    import mycelium_shm._native as native

    real = native.lib
    errno_fn: Any = lambda: errno_value  # noqa: E731

    class Lib:
        def __getattr__(self, attr: str) -> Any:
            return errno_fn if attr == "myc_last_errno" else getattr(real, attr)

    native.lib = Lib()  # type: ignore[assignment]
    try:
        raise_for(real.MYC_ERR_SYSTEM)
    finally:
        native.lib = real


@pytest.mark.parametrize(
    ("code", "expected", "builtin"),
    [
        (lib.MYC_ERR_HANDLE_BUSY, HandleBusy, RuntimeError),
        (lib.MYC_ERR_ARG, InvalidArgument, ValueError),
        (lib.MYC_ERR_INTERRUPTED, None, InterruptedError),
        (lib.MYC_ERR_FOREIGN, ForeignChannel, PermissionError),
        (-99, MyceliumError, Exception),
    ],
)
def test_every_result_code_is_a_mycelium_error(code: int, expected: Any, builtin: type) -> None:
    with pytest.raises(MyceliumError) as raised:
        raise_for(code)
    if expected is not None:
        assert type(raised.value) is expected
    assert isinstance(raised.value, builtin)


# -- foreign channels -------------------------------------------------------------

CREATE_AS_NOBODY = (
    "import os, sys\n"
    "from mycelium_shm import ShmWriter\n"
    f"os.setgid({NOBODY}); os.setuid({NOBODY})\n"
    "ShmWriter(sys.argv[1], create=True, capacity=4096, mode=0o666).close()\n"
    "print(os.stat('/dev/shm/mycelium.' + sys.argv[1]).st_uid)\n"
)


@needs_root
def test_squatted_channel_of_another_user_is_refused(channel_name: str) -> None:
    """nobody pre-creates the name with mode 0666: create-or-attach, attach and a
    reader are refused (ForeignChannel naming the uid); trust_foreign attaches."""
    done = run_python(CREATE_AS_NOBODY, channel_name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(NOBODY)
    for call in (
        lambda: ShmWriter(channel_name, create=True, exist_ok=True, capacity=4096),
        lambda: ShmWriter(channel_name),
        lambda: ShmReader(channel_name, mode=0o666),
    ):
        with pytest.raises(ForeignChannel) as raised:
            call()
        assert type(raised.value) is ForeignChannel
        message = str(raised.value)
        assert f"is owned by uid {NOBODY}, not by this process's uid {os.geteuid()}" in message
        assert "trust_foreign=True" in message
        assert isinstance(raised.value, PermissionError)
    with ShmWriter(channel_name, create=True, exist_ok=True, trust_foreign=True) as w:
        w.write(1, b"trusted")
        with ShmReader(channel_name, trust_foreign=True) as r:
            assert tuple(r.read(timeout=1)) == (1, b"trusted")
    info = inspect(channel_name)  # an observer: no rule
    assert (info.owner_uid, info.mode) == (NOBODY, 0o666)


def test_mode_wider_than_asked_is_refused(channel_name: str, capsys: Any) -> None:
    """A 0666 channel of this very user is refused to a default (0600) opener;
    opening with mode=0o666 or trust_foreign=True attaches."""
    with ShmWriter(channel_name, create=True, capacity=4096, mode=0o666):
        with pytest.raises(ForeignChannel) as raised:
            ShmWriter(channel_name, create=True, exist_ok=True)
        assert type(raised.value) is ForeignChannel
        assert "has mode 0666, wider than the 0600 this open allows" in str(raised.value)
        with pytest.raises(ForeignChannel, match="mode 0666, wider than the 0640"):
            ShmReader(channel_name, mode=0o640)
        ShmWriter(channel_name, mode=0o666).close()
        ShmReader(channel_name, trust_foreign=True).close()
    assert main(["ls", channel_name]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:3] == [channel_name, str(os.geteuid()), "0666"]


# -- nested reads -------------------------------------------------------------------

class Seconds(float):
    """A float subclass: the C fast path hands it to the Python slow path."""


class Count(int):
    """An int subclass: the same for read_many's count."""


NESTED: dict[str, Callable[[ShmReader], Any]] = {
    "read": lambda r: r.read(),
    "read-timeout": lambda r: r.read(timeout=0.2),
    "read-slow-path": lambda r: r.read(timeout=Seconds(0.2)),  # not for the fast path
    "read_many-slow-path": lambda r: r.read_many(Count(3)),
    "try_read": lambda r: r.try_read(),
    "read_many": lambda r: r.read_many(10),
    "read_many-timeout": lambda r: r.read_many(10, timeout=0.2),
    "read_view": lambda r: r.read_view().__enter__(),
    "read_view-timeout": lambda r: r.read_view(timeout=0.2).__enter__(),
    "iter": lambda r: next(iter(r)),
}


@pytest.mark.parametrize("call", sorted(NESTED))
def test_read_inside_read_view_is_refused(channel_name: str, call: str) -> None:
    """Any read while a read_view block is open raises ReadViewOpen and consumes
    nothing: the view keeps its payload, the next frames come in order."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        w.write(1, b"held frame")
        w.write(2, b"next frame")
        with r.read_view() as view:
            assert view is not None
            with pytest.raises(ReadViewOpen) as raised:
                NESTED[call](r)
            assert type(raised.value) is ReadViewOpen
            assert "read_view() block of this reader is still open" in str(raised.value)
            assert isinstance(raised.value, RuntimeError)
            assert (view.type_id, bytes(view.payload)) == (1, b"held frame")
        assert r.stats()["frames_read"] == 1
        assert tuple(r.read(timeout=1)) == (2, b"next frame")
        assert r.read(0) is None


def test_read_view_after_refusal_still_works(channel_name: str) -> None:
    """Leaving the block consumes the held frame once; reads work again."""
    with ShmWriter(channel_name, create=True, capacity=4096) as w, ShmReader(channel_name) as r:
        w.write(1, b"a")
        with r.read_view() as view:
            with pytest.raises(ReadViewOpen):
                r.read_many(5, timeout=0)
            assert bytes(view.payload) == b"a"
        w.write(2, b"b")
        with r.read_view(timeout=1) as view:
            assert bytes(view.payload) == b"b"
        assert r.stats()["frames_read"] == 2


# -- forged owner words ---------------------------------------------------------------


def _start_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def test_forged_reader_owner_with_wrong_start_time_is_dead(channel_name: str) -> None:
    """A peer writes pid 1 (alive) with a start time that is not pid 1's into the
    reader owner word: the owner counts as dead and a reader takes over."""
    start = _start_ticks(1) & 0xFFFFFFFF
    wrong = (start + 12345) & 0xFFFFFFFF or 1
    with ShmWriter(channel_name, create=True, capacity=4096) as w:
        poke(channel_name, OFF_READER_OWNER, "<Q", 1 | (wrong << 32))
        assert inspect(channel_name).reader_pid == 1
        assert inspect(channel_name).reader_alive is False
        with ShmReader(channel_name) as r:
            assert r.stats()["takeovers"] == 1
            w.write(1, b"x")
            assert tuple(r.read(timeout=1)) == (1, b"x")


def test_forged_reader_owner_with_true_start_time_blocks(channel_name: str) -> None:
    """The start time defends against pid reuse, not a hostile peer: one that
    copies pid 1's true start time blocks takeover (the threat model says so)."""
    with ShmWriter(channel_name, create=True, capacity=4096):
        poke(channel_name, OFF_READER_OWNER, "<Q", 1 | ((_start_ticks(1) & 0xFFFFFFFF) << 32))
        with pytest.raises(ReaderBusy, match=r"already has a live reader \(pid 1\)") as raised:
            ShmReader(channel_name)
        assert type(raised.value) is ReaderBusy


# -- truncation -------------------------------------------------------------------------

TRUNCATE_WHILE_WAITING = (
    "import os, sys, threading\n"
    "from mycelium_shm import ShmReader, ShmWriter, CorruptChannel\n"
    "name = sys.argv[1]\n"
    "ShmWriter(name, create=True, capacity=4096).close()\n"
    "r = ShmReader(name)\n"
    "path = '/dev/shm/mycelium.' + name\n"
    "threading.Timer(0.2, lambda: os.truncate(path, 4096)).start()\n"
    "try:\n"
    "    r.read(timeout=5)\n"
    "    print('no error')\n"
    "except CorruptChannel as exc:\n"
    "    print('CorruptChannel', exc)\n"
    "try:\n"
    "    r.try_read()\n"
    "except CorruptChannel as exc:\n"
    "    print('CorruptChannel', exc)\n"
    "r.close()\n"
)


def test_truncation_while_a_reader_waits_is_corrupt_channel(channel_name: str) -> None:
    """A file truncated while the reader sleeps is CorruptChannel on waking (not
    SIGBUS), and the handle stays refused.  In a child: a truncation at any
    other moment would be SIGBUS, as the threat model says."""
    done = run_python(TRUNCATE_WHILE_WAITING, channel_name)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        assert line.startswith("CorruptChannel channel "), line
        assert "was truncated under this handle's 8192-byte mapping" in line
    assert CorruptChannel.__mro__[1] is MyceliumError


TRUNCATE_UNDER_A_WRITER = (
    "import os, sys, threading\n"
    "from mycelium_shm import ShmReader, ShmWriter, CorruptChannel\n"
    "name, size = sys.argv[1], int(sys.argv[2])\n"
    "w = ShmWriter(name, create=True, capacity=4096, max_payload=1000)\n"
    "while w.try_write(1, b'x' * 200):\n"
    "    pass\n"
    "r = ShmReader(name)\n"
    "path = '/dev/shm/mycelium.' + name\n"
    "threading.Timer(0.2, lambda: os.truncate(path, size)).start()\n"
    "def reserve():\n"
    "    with w.reserve(1, 8, timeout=0) as block:\n"
    "        block[:] = b'12345678'\n"
    "calls = [('write', lambda: w.write(1, b'y' * 200, timeout=5)),\n"
    "         ('try_write', lambda: w.try_write(1, b'q')),\n"
    "         ('write0', lambda: w.write(1, b'q', timeout=0)),\n"
    "         ('write_many', lambda: w.write_many([(1, b'q')], timeout=0)),\n"
    "         ('reserve', reserve), ('writer_stats', w.stats), ('reader_stats', r.stats),\n"
    "         ('try_read', r.try_read)]\n"
    "for what, call in calls:\n"
    "    try:\n"
    "        call()\n"
    "        print(what, 'no error')\n"
    "    except CorruptChannel as exc:\n"
    "        print(what, 'CorruptChannel', exc)\n"
    "w.close()\n"
    "r.close()\n"
)


OBSERVE_WHILE_FLIPPED = (
    "import collections, sys\n"
    "import mycelium_shm as m\n"
    "seen = collections.Counter()\n"
    "for _ in range(3):\n"
    "    for look in (m.inspect, m.cursors):\n"
    "        try:\n"
    "            look(sys.argv[1])\n"
    "            seen['ok'] += 1\n"
    "        except m.MyceliumError as exc:\n"
    "            seen[type(exc).__name__] += 1\n"
    "print(sum(seen.values()))\n"
)


def test_observers_survive_a_file_whose_size_flips(channel_name: str) -> None:
    """inspect() and cursors() copy the header with pread, never through a mapping: a
    peer flipping the file between 0 bytes and its full size (every look may land
    on a missing page) gives typed errors or answers, never SIGBUS."""
    ShmWriter(channel_name, create=True, capacity=4096, readers=2).close()
    path = f"/dev/shm/mycelium.{channel_name}"
    stop = threading.Event()

    def flip() -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            while not stop.is_set():
                os.ftruncate(fd, 0)
                os.ftruncate(fd, 4096 + 4096)
        finally:
            os.close(fd)

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        done = run_python(OBSERVE_WHILE_FLIPPED, channel_name)
    finally:
        stop.set()
        flipper.join()
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert done.stdout.split() == ["6"]


@pytest.mark.parametrize("size", [4096, 0])
def test_a_writer_found_truncated_stays_refused(channel_name: str, size: int) -> None:
    """Once a blocking write has found the file truncated (to the header, or to
    nothing), every later call on that writer, and stats on any handle, raise
    CorruptChannel instead of touching the vanished pages (SIGBUS); close works."""
    done = run_python(TRUNCATE_UNDER_A_WRITER, channel_name, str(size))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "write", "try_write", "write0", "write_many", "reserve", "writer_stats",
        "reader_stats", "try_read",
    ]  # fmt: skip
    for line in lines:
        assert line.split()[1] == "CorruptChannel", line
        assert "was truncated under this handle's 8192-byte mapping" in line
