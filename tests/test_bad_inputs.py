"""One table of bad inputs for every public call.

Each row is (call, expected exception type, regex): the call gets a fresh
channel (writer ``w`` with a reader ``r`` attached, both on the trading
schema) and must raise exactly that type, with a message that names the
argument (and what it accepts).  Rows already covered by test_errors_api.py
(type ids 0/-1/65536/2**70 and wrong types, payload types, oversized
payloads, reserve sizes -1/1.5/"3"/True, bad timeouts of read/read_many/
read_view/write/write_many/reserve, stuck_timeout=-1, max_frames=2.0,
on_unknown="ignore") and test_hardening.py (nested reads of read/try_read/
read_many/read_view/iter, result-code mapping) are not repeated here.

Forked children: a handle used in a process forked after it was opened
raises ForkedHandle (a ChannelClosed) naming the fork, and the parent's
writer and reader keep working.
"""

from __future__ import annotations

import asyncio
import math
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from conftest import ROOT

from mycelium_shm import (
    ChannelClosed,
    CorruptChannel,
    ForkedHandle,
    InvalidName,
    MyceliumError,
    ReadViewOpen,
    Schema,
    ShmReader,
    ShmWriter,
    check_name,
    exists,
    force_unblock,
    inspect,
    unlink,
)
from mycelium_shm._native import lib

CAPACITY = 4096
HUGE = [2**40, 2**64]


@dataclass
class Ends:
    name: str
    w: ShmWriter
    r: ShmReader
    schema: Schema


@pytest.fixture
def ends(channel_name: str, schema: Schema) -> Iterator[Ends]:
    w = ShmWriter(channel_name, create=True, capacity=CAPACITY, schema=schema)
    r = ShmReader(channel_name, schema=schema)
    try:
        yield Ends(channel_name, w, r, schema)
    finally:
        r.close()
        w.close()


def writer(e: Ends, **kw: Any) -> None:
    """Open another writer: of e's channel, or (create=True) of a new one."""
    name = e.name + "-new" if kw.get("create") else e.name
    try:
        ShmWriter(name, **kw).close()
    finally:
        if name != e.name:
            unlink(name, missing_ok=True)


def reader(e: Ends, **kw: Any) -> None:
    e.r.close()  # the channel's one reader slot
    ShmReader(e.name, **kw).close()


def closed_writer(e: Ends) -> ShmWriter:
    e.w.close()
    return e.w


def closed_reader(e: Ends) -> ShmReader:
    e.r.close()
    return e.r


def commit_after_close(e: Ends) -> None:
    reservation = e.w.reserve(1, 1)
    reservation.__enter__()
    e.w.close()
    reservation.__exit__(None, None, None)


def tick(e: Ends) -> Any:
    return e.schema.MarketTick(  # type: ignore[attr-defined]
        symbol="EURUSD", seq=1, ts_ns=1, bid=1.0, ask=1.1, bid_size=1, ask_size=2
    )


def nested(call: Callable[[ShmReader], Any]) -> Callable[[Ends], Any]:
    """``call`` made while a read_view() block of the same reader is open."""

    def run(e: Ends) -> Any:
        e.w.write(1, b"held")
        with e.r.read_view(timeout=1) as view:
            assert view is not None
            return call(e.r)

    return run


Row = tuple[str, Callable[[Ends], Any], type[BaseException], str]

TIMEOUT_VALUE = r"^timeout must be None \(wait forever\), 0 \(do not wait\) or a finite number"
TIMEOUT_TYPE = r"^timeout must be None or a number of seconds, not "
NAME_TYPE = r"^channel name must be str, not "

ROWS: list[Row] = [
    # -- constructors: capacity ----------------------------------------------------
    *[
        (
            f"writer-capacity-{v!r}",
            lambda e, v=v: writer(e, create=True, capacity=v),
            ValueError,
            r"^capacity must be (a power of two )?in (0|1024)\.\.4294967296 \(ring bytes\), not -?\d+$",
        )
        for v in [-1, 0, 1000, 3000, 2**33, *HUGE]
    ],
    *[
        (
            f"writer-capacity-{v!r}",
            lambda e, v=v: writer(e, create=True, capacity=v),
            TypeError,
            r"^capacity must be an int in 0\.\.4294967296 \(ring bytes\), not ",
        )
        for v in [1.5, math.nan, math.inf, "4096", None, True]
    ],
    (
        "reader-capacity-negative",
        lambda e: reader(e, capacity=-1),
        ValueError,
        r"^capacity must be in 0\.\.",
    ),
    (
        "attach-capacity-huge",
        lambda e: writer(e, capacity=2**64),
        ValueError,
        r"^capacity must be in 0\.\.",
    ),
    # -- constructors: max_payload -------------------------------------------------
    *[
        (
            f"writer-max_payload-{v!r}",
            lambda e, v=v: writer(e, create=True, capacity=CAPACITY, max_payload=v),
            ValueError,
            r"^max_payload must be in 0\.\.\d+ ",
        )
        for v in [-1, 2033, 2**32, *HUGE]
    ],
    *[
        (
            f"writer-max_payload-{v!r}",
            lambda e, v=v: writer(e, create=True, max_payload=v),
            TypeError,
            r"^max_payload must be an int in 0\.\.4294967295 ",
        )
        for v in [1.5, math.nan, None, False, b"1"]
    ],
    (
        "reader-max_payload-negative",
        lambda e: reader(e, max_payload=-1),
        ValueError,
        r"^max_payload must be in 0\.\.",
    ),
    # -- constructors: mode ------------------------------------------------------------
    *[
        (
            f"writer-mode-{v!r}",
            lambda e, v=v: writer(e, create=True, mode=v),
            ValueError,
            r"^mode must be in 0\.\.0o777 \(permission bits\), not ",
        )
        for v in [-1, 0o1000, 0o4755, *HUGE]
    ],
    *[
        (
            f"writer-mode-{v!r}",
            lambda e, v=v: writer(e, create=True, mode=v),
            TypeError,
            r"^mode must be an int in 0\.\.0o777 \(permission bits\), not ",
        )
        for v in ["0600", 6.0, None]
    ],
    (
        "reader-mode-negative",
        lambda e: reader(e, mode=-1),
        ValueError,
        r"^mode must be in 0\.\.0o777",
    ),
    # -- constructors: flags, name, schema, stuck_timeout ---------------------------------------
    *[
        (
            f"writer-{flag}-{v!r}",
            lambda e, flag=flag, v=v: writer(e, **{flag: v}),
            TypeError,
            rf"^{flag} must be True or False, not ",
        )
        for flag in ["create", "exist_ok", "trust_foreign"]
        for v in ["yes", 1, None]
    ],
    (
        "reader-create-str",
        lambda e: reader(e, create="no"),
        TypeError,
        r"^create must be True or False",
    ),
    *[
        (
            f"{cls.__name__}-name-{v!r}",
            lambda e, cls=cls, v=v: cls(v, create=True),
            TypeError,
            NAME_TYPE,
        )
        for cls in [ShmWriter, ShmReader]
        for v in [None, 5, b"abc"]
    ],
    (
        "writer-name-empty",
        lambda e: ShmWriter("", create=True),
        InvalidName,
        r"^channel name is empty",
    ),
    (
        "writer-name-slash",
        lambda e: ShmWriter("a/b", create=True),
        InvalidName,
        r"^channel name 'a/b' contains '/'",
    ),
    (
        "writer-name-long",
        lambda e: ShmWriter("x" * 300, create=True),
        InvalidName,
        r"^channel name is 300 bytes, the limit is 245",
    ),
    (
        "writer-name-nul",
        lambda e: ShmWriter("a\0b", create=True),
        InvalidName,
        r"^channel name contains a NUL byte",
    ),
    (
        "writer-schema-int",
        lambda e: writer(e, schema=5),
        TypeError,
        r"^schema must be a Schema .* or None, not int",
    ),
    (
        "reader-schema-str",
        lambda e: reader(e, schema="trading"),
        TypeError,
        r"^schema must be a Schema .* not str",
    ),
    *[
        (
            f"reader-stuck_timeout-{v!r}",
            lambda e, v=v: reader(e, stuck_timeout=v),
            ValueError,
            r"^stuck_timeout must be None \(wait forever\), 0 \(do not wait\)",
        )
        for v in [math.nan, math.inf, -math.inf, -(2**64), 10**400]
    ],
    (
        "reader-stuck_timeout-str",
        lambda e: reader(e, stuck_timeout="1"),
        TypeError,
        r"^stuck_timeout must be None or a number",
    ),
    (
        "reader-stuck_timeout-bool",
        lambda e: reader(e, stuck_timeout=True),
        TypeError,
        r"^stuck_timeout must be None or a number",
    ),
    # -- writing: huge and odd values ----------------------------------------------------
    (
        "write-type_id-2**64",
        lambda e: e.w.write(2**64, b"x"),
        ValueError,
        r"^type_id must be in 1\.\.65535, not 18446744073709551616$",
    ),
    (
        "try_write-type_id-nan",
        lambda e: e.w.try_write(math.nan, b"x"),
        TypeError,
        r"^type_id must be an int in 1\.\.65535, not float",
    ),
    (
        "write_many-type_id-2**40",
        lambda e: e.w.write_many([(2**40, b"x")]),
        ValueError,
        r"^frames\[0\] type_id must be in 1\.\.65535",
    ),
    (
        "write_many-not-iterable",
        lambda e: e.w.write_many(None),
        TypeError,
        r"^frames must be an iterable of \(type_id, payload\) pairs",
    ),
    (
        "write_many-short-pair",
        lambda e: e.w.write_many([(1,)]),
        TypeError,
        r"^frames\[0\] must be a \(type_id, payload\) pair, not tuple of length 1",
    ),
    (
        "write_many-timeout-nan",
        lambda e: e.w.write_many([(1, b"x")], math.nan),
        ValueError,
        TIMEOUT_VALUE,
    ),
    *[
        (
            f"reserve-size-{v!r}",
            lambda e, v=v: e.w.reserve(1, v).__enter__(),
            ValueError,
            r"^size of \d+ bytes exceeds the channel maximum of \d+ bytes",
        )
        for v in HUGE
    ],
    (
        "reserve-size-nan",
        lambda e: e.w.reserve(1, math.nan).__enter__(),
        TypeError,
        r"^size must be an int \(payload bytes\)",
    ),
    (
        "reserve-type_id-2**64",
        lambda e: e.w.reserve(2**64, 1).__enter__(),
        ValueError,
        r"^type_id must be in 1\.\.65535",
    ),
    ("write-timeout-huge-int", lambda e: e.w.write(1, b"x", 10**400), ValueError, TIMEOUT_VALUE),
    ("write-timeout-neg-huge", lambda e: e.w.write(1, b"x", -(2**64)), ValueError, TIMEOUT_VALUE),
    (
        "send-not-a-message",
        lambda e: e.w.send(5),
        TypeError,
        r"'int' is not a message class of this schema",
    ),
    ("send-timeout-nan", lambda e: e.w.send(tick(e), math.nan), ValueError, TIMEOUT_VALUE),
    ("send-timeout-str", lambda e: e.w.send(tick(e), "1"), TypeError, TIMEOUT_TYPE),
    # -- reading: max_frames, timeouts, on_unknown ---------------------------------------
    *[
        (
            f"read_many-max_frames-{v!r}",
            lambda e, v=v: e.r.read_many(v),
            ValueError,
            rf"^max_frames must be in 0\.\.4294967295, not {v}$",
        )
        for v in [*HUGE, -1, -(2**64), 2**32]
    ],
    (
        "read_many-max_frames-2**40-frames-there",
        lambda e: (e.w.write(1, b"x"), e.r.read_many(2**40)),
        ValueError,
        r"^max_frames must be in 0\.\.4294967295, not 1099511627776$",
    ),
    (
        "read_many-max_frames-2**40-timeout",
        lambda e: e.r.read_many(2**40, 0.01),
        ValueError,
        r"^max_frames must be in 0\.\.",
    ),
    *[
        (
            f"read_many-max_frames-{v!r}",
            lambda e, v=v: e.r.read_many(v),
            TypeError,
            r"^max_frames must be an int in 0\.\.4294967295, not ",
        )
        for v in [math.nan, math.inf, None, "3", True]
    ],
    ("read-timeout-huge-int", lambda e: e.r.read(10**400), ValueError, TIMEOUT_VALUE),
    ("try_read-arg", lambda e: e.r.try_read(1), TypeError, r"try_read\(\) takes no arguments"),
    ("recv-timeout-nan", lambda e: e.r.recv(math.nan), ValueError, TIMEOUT_VALUE),
    ("recv-timeout-inf", lambda e: e.r.recv(timeout=math.inf), ValueError, TIMEOUT_VALUE),
    ("recv-timeout-str", lambda e: e.r.recv("1"), TypeError, TIMEOUT_TYPE),
    (
        "recv-on_unknown-int",
        lambda e: e.r.recv(0, on_unknown=5),
        TypeError,
        r"^on_unknown must be 'raise' or 'skip', not int",
    ),
    *[
        (
            f"read_async-timeout-{v!r}",
            lambda e, v=v: asyncio.run(e.r.read_async(v)),
            ValueError,
            TIMEOUT_VALUE,
        )
        for v in [math.nan, math.inf, -1]
    ],
    ("read_async-timeout-str", lambda e: asyncio.run(e.r.read_async("1")), TypeError, TIMEOUT_TYPE),
    ("stats-arg", lambda e: e.w.stats(1), TypeError, r"stats\(\) takes 1 positional argument"),
    # -- channel functions -------------------------------------------------------------
    *[
        (f"{fn.__name__}-name-{v!r}", lambda e, fn=fn, v=v: fn(v), TypeError, NAME_TYPE)
        for fn in [inspect, unlink, exists, check_name, force_unblock]
        for v in [None, 5, b"x"]
    ],
    *[
        (
            f"{fn.__name__}-name-empty",
            lambda e, fn=fn: fn(""),
            InvalidName,
            r"^channel name is empty",
        )
        for fn in [inspect, unlink, exists, check_name, force_unblock]
    ],
    (
        "inspect-lone-surrogate",
        lambda e: inspect("a\udcff"),
        InvalidName,
        r"^channel name is not valid UTF-8: lone surrogate",
    ),
    (
        "unlink-missing_ok-str",
        lambda e: unlink("no-such-channel-bad-inputs", missing_ok="yes"),
        TypeError,
        r"^missing_ok must be True or False, not str",
    ),
    (
        "list_channels-arg",
        lambda e: __import__("mycelium_shm").list_channels(1),
        TypeError,
        r"list_channels\(\) takes 0 positional arguments",
    ),
    # -- Schema ----------------------------------------------------------------------------
    *[
        (
            f"Schema.load-path-{v!r}",
            lambda e, v=v: Schema.load(v),
            TypeError,
            r"^path must be a str or os\.PathLike, not ",
        )
        for v in [None, 5, b"schemas/trading.toml"]
    ],
    (
        "Schema.load-missing",
        lambda e: Schema.load(ROOT / "no-such-schema.toml"),
        FileNotFoundError,
        r"no-such-schema\.toml",
    ),
    (
        "Schema.encode-None",
        lambda e: e.schema.encode(None),
        TypeError,
        r"'NoneType' is not a message class of this schema",
    ),
    *[
        (
            f"Schema.decode-payload-{v!r}",
            lambda e, v=v: e.schema.decode(1, v),
            TypeError,
            r"^payload must be a bytes-like object \(bytes, bytearray, memoryview\), not ",
        )
        for v in [None, "text", 5, [1, 2]]
    ],
    # -- closed handles -----------------------------------------------------------------
    *[
        (
            f"closed-writer-{label}",
            lambda e, call=call: call(closed_writer(e), e),
            ChannelClosed,
            r"^the writer is closed",
        )
        for label, call in {
            "write": lambda w, e: w.write(1, b"x"),
            "write-timeout": lambda w, e: w.write(1, b"x", 0.1),
            "try_write": lambda w, e: w.try_write(1, b"x"),
            "write_many": lambda w, e: w.write_many([(1, b"x")]),
            "reserve": lambda w, e: w.reserve(1, 1).__enter__(),
            "send": lambda w, e: w.send(tick(e)),
            "stats": lambda w, e: w.stats(),
        }.items()
    ],
    (
        "closed-writer-commit",
        lambda e: commit_after_close(e),
        ChannelClosed,
        r"^the writer is closed",
    ),
    *[
        (
            f"closed-reader-{label}",
            lambda e, call=call: call(closed_reader(e)),
            ChannelClosed,
            r"^the reader is closed",
        )
        for label, call in {
            "read": lambda r: r.read(0),
            "read-forever": lambda r: r.read(),
            "try_read": lambda r: r.try_read(),
            "read_many": lambda r: r.read_many(3),
            "read_view": lambda r: r.read_view(0).__enter__(),
            "recv": lambda r: r.recv(0),
            "read_async": lambda r: asyncio.run(r.read_async(0)),
            "stats": lambda r: r.stats(),
        }.items()
    ],
    # -- nested reads not in test_hardening.py -------------------------------------------
    (
        "nested-recv",
        nested(lambda r: r.recv(0)),
        ReadViewOpen,
        r"read_view\(\) block of this reader is still open",
    ),
    (
        "nested-read_async",
        nested(lambda r: asyncio.run(r.read_async(0))),
        ReadViewOpen,
        r"read_view\(\) block of this reader is still open",
    ),
    (
        "nested-read_many-slow",
        nested(lambda r: r.read_many(5, timeout=0.05)),
        ReadViewOpen,
        r"read_view\(\) block",
    ),
]


def test_row_ids_are_unique() -> None:
    ids = [row[0] for row in ROWS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize(
    ("call", "exc", "message"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS]
)
def test_bad_input(
    ends: Ends, call: Callable[[Ends], Any], exc: type[BaseException], message: str
) -> None:
    """The exact exception type, a message naming the argument, nothing written or read."""
    import re

    before = ends.w.stats() if not ends.w.closed else None
    with pytest.raises(exc) as raised:
        call(ends)
    assert type(raised.value) is exc, f"{type(raised.value).__name__}: {raised.value}"
    assert re.search(message, str(raised.value)), str(raised.value)
    # No interpreter-internal or cffi message leaks through.
    assert "initializer for ctype" not in str(raised.value)
    assert "can't convert negative" not in str(raised.value)
    if before is not None and not ends.w.closed:
        assert ends.w.stats()["frames_written"] - before["frames_written"] <= 1  # a row's own frame


def test_valid_edges_are_accepted(ends: Ends) -> None:
    """The edges of each range pass: max_frames 0 and 2**32 - 1, timeouts 0 and huge, mode 0."""
    assert ends.r.read_many(0) == []
    assert ends.r.read_many(2**32 - 1) == []
    ends.w.write(1, b"a", 2**64)  # a finite timeout, however long
    assert [f.payload for f in ends.r.read_many(2**32 - 1, 1e300)] == [b"a"]
    name = ends.name + "-edge"
    try:
        with ShmWriter(name, create=True, capacity=1024, max_payload=1024 // 2 - 16, mode=0) as w:
            assert w.max_payload == 496
        with ShmWriter(name, capacity=0, max_payload=0, mode=0o600):  # attaching: sizes ignored
            pass
    finally:
        unlink(name, missing_ok=True)


# -- forked children ---------------------------------------------------------------------


def in_child(action: Callable[[], Any]) -> tuple[str, str]:
    """Run ``action`` in a forked child; (exception type name, message), or
    ("ok", repr(result)), reported through a pipe.  The child leaves with
    os._exit: no atexit handler, no finaliser of the parent's objects."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(rfd)
            try:
                result = ("ok", repr(action()))
            except BaseException as exc:  # reported to the parent
                result = (type(exc).__name__, str(exc))
            os.write(wfd, pickle.dumps(result))
            os.close(wfd)
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    kind, message = pickle.loads(data)
    return kind, message


def parent_still_works(e: Ends) -> None:
    """The parent's writer and reader are untouched by what the child did."""
    e.w.write(7, b"after the child")
    assert tuple(e.r.read(timeout=1)) == (7, b"after the child")
    assert e.r.read(0) is None
    info = inspect(e.name)
    assert (info.reader_pid, info.reader_alive) == (os.getpid(), True)
    assert info.stats["takeovers"] == 0
    assert [pid for pid, _ in info.writers] == [os.getpid()]
    assert e.r.stats()["unblocks"] == 0


FORKED: dict[str, Callable[[Ends], Any]] = {
    "write": lambda e: e.w.write(1, b"child"),
    "write-timeout": lambda e: e.w.write(1, b"child", 0.1),
    "write-bytearray": lambda e: e.w.write(1, bytearray(b"child")),
    "try_write": lambda e: e.w.try_write(1, b"child"),
    "write_many": lambda e: e.w.write_many([(1, b"a"), (2, b"b")]),
    "reserve": lambda e: e.w.reserve(1, 4).__enter__(),
    "send": lambda e: e.w.send(tick(e)),
    "read": lambda e: e.r.read(0),
    "read-forever": lambda e: e.r.read(),
    "try_read": lambda e: e.r.try_read(),
    "read_many": lambda e: e.r.read_many(10),
    "read_view": lambda e: e.r.read_view(0).__enter__(),
    "recv": lambda e: e.r.recv(0),
}


@pytest.mark.parametrize("call", sorted(FORKED))
@pytest.mark.parametrize("pending", [False, True], ids=["empty", "frame-pending"])
def test_forked_child_cannot_use_the_parents_handles(ends: Ends, call: str, pending: bool) -> None:
    """In a forked child every write and read raises ForkedHandle (a
    ChannelClosed) naming the fork; the parent's ends keep working, its
    reader is not taken over and its frames are not consumed."""
    if pending:
        ends.w.write(3, b"parent's frame")
    kind, message = in_child(lambda: FORKED[call](ends))
    assert kind == "ForkedHandle", (kind, message)
    assert "forked process" in message
    assert "parent" in message
    assert issubclass(ForkedHandle, ChannelClosed)
    if pending:
        assert tuple(ends.r.read(timeout=1)) == (3, b"parent's frame")
    parent_still_works(ends)


def test_forked_child_may_close_and_open_its_own(ends: Ends) -> None:
    """The child closes its copies (the parent's slots stay the parent's) and
    opens its own writer, whose frame the parent's reader gets."""

    def child() -> str:
        ends.w.close()
        ends.r.close()
        with ShmWriter(ends.name) as own:
            own.write(5, b"from the child's own writer")
        return "done"

    assert in_child(child) == ("ok", "'done'")
    assert tuple(ends.r.read(timeout=1)) == (5, b"from the child's own writer")
    parent_still_works(ends)


def test_fork_during_an_open_reservation_leaves_it_to_the_parent(ends: Ends) -> None:
    """A reservation open at fork: the child cannot commit it; the parent does."""
    reservation = ends.w.reserve(1, 5)
    buf = reservation.__enter__()
    kind, message = in_child(lambda: reservation.__exit__(None, None, None))
    assert kind == "ForkedHandle", (kind, message)
    assert "forked process" in message
    buf[:] = b"hello"
    reservation.__exit__(None, None, None)
    assert tuple(ends.r.read(timeout=1)) == (1, b"hello")
    parent_still_works(ends)


def test_fork_during_a_read_view_leaves_the_frame_to_the_parent(ends: Ends) -> None:
    """A read_view() block open at fork: the child leaving it consumes nothing;
    the parent's view still shows the frame, which the parent then consumes once."""
    ends.w.write(1, b"viewed")
    ends.w.write(2, b"next")
    with ends.r.read_view(timeout=1) as view:
        assert view is not None

        def child() -> Any:
            try:
                ends.r.read(0)
            except ForkedHandle:
                pass
            else:
                raise AssertionError("read in the child did not raise")
            with ends.r.read_view(0):  # a view of its own: refused
                pass

        kind, message = in_child(child)
        assert kind == "ForkedHandle", (kind, message)
        assert bytes(view.payload) == b"viewed"
    assert ends.r.stats()["frames_read"] == 1
    assert tuple(ends.r.read(timeout=1)) == (2, b"next")
    parent_still_works(ends)


def test_forked_handle_is_a_mycelium_error() -> None:
    assert issubclass(ForkedHandle, MyceliumError)
    assert issubclass(ForkedHandle, ValueError)  # as ChannelClosed
    assert lib.MYC_ERR_FORKED == -19
    assert not issubclass(ForkedHandle, CorruptChannel)
