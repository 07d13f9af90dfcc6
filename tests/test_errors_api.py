"""The error contract of ShmWriter and ShmReader.

A timed wait ends with the API's own answer (None, [], Full, a short count)
after the whole timeout, never with the C core's "wait slice over"; a bad
argument raises TypeError (wrong kind) or ValueError (out of range) naming
the argument; Full says what a user needs to act on it; a failed write_many
says how many of its frames were written.
"""

from __future__ import annotations

import enum
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import pytest

from mycelium_shm import (
    ChannelClosed,
    FrameAbandoned,
    Full,
    MyceliumError,
    Schema,
    ShmReader,
    ShmWriter,
)
from mycelium_shm.channel import frame_bytes

ROOT = Path(__file__).resolve().parent.parent
WAIT = 0.3
# A wait may overrun on a loaded machine; it must never stop early (at a
# 50 ms wait slice) nor start over at each slice.
SLACK = 1.5
CAPACITY = 1024
BIG = 120  # payload bytes: CAPACITY // frame_bytes(BIG) frames fill the ring


def fill(w: ShmWriter) -> None:
    """Write until not even an empty frame fits."""
    while w.try_write(1, b"x" * BIG):
        pass
    while w.try_write(1, b""):
        pass


@contextmanager
def elapsed_between(low: float, high: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert low <= elapsed < high, f"took {elapsed:.3f} s, expected {low}..{high}"


@contextmanager
def signal_every(interval: float, handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Deliver SIGALRM to this (the main) thread every ``interval`` s."""
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def tick(schema: Schema) -> object:
    return schema.MarketTick(  # type: ignore[attr-defined]
        symbol="EURUSD", seq=1, ts_ns=1, bid=1.0, ask=1.1, bid_size=1, ask_size=2
    )


# -- timed waits: the API's answer after the whole timeout --------------------


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        (lambda r: r.read(timeout=WAIT), None),
        (lambda r: r.read(WAIT), None),
        (lambda r: r.read_many(10, timeout=WAIT), []),
        (lambda r: r.recv(timeout=WAIT), None),
    ],
    ids=["read", "read-positional", "read_many", "recv"],
)
def test_timed_read_on_empty_ring_returns_its_timeout_answer(
    channel_name: str, schema: Schema, call: Callable[[ShmReader], Any], answer: Any
) -> None:
    """A blocking read with timeout 0.3 s returns None / [] after 0.3 s, not a wait-slice error."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY, schema=schema):
        with ShmReader(channel_name, schema=schema) as r:
            with elapsed_between(WAIT, WAIT + SLACK):
                assert call(r) == answer


def test_timed_read_view_on_empty_ring_gives_none(channel_name: str) -> None:
    """read_view(timeout=0.3) yields None after 0.3 s."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY), ShmReader(channel_name) as r:
        with elapsed_between(WAIT, WAIT + SLACK):
            with r.read_view(timeout=WAIT) as frame:
                assert frame is None


def test_timed_write_on_full_ring_raises_full_saying_why(channel_name: str) -> None:
    """write(timeout=0.3) on a full ring raises Full after 0.3 s naming the channel,
    the frame's payload and ring bytes, the timeout and the live reader."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name):
        fill(w)
        with elapsed_between(WAIT, WAIT + SLACK):
            with pytest.raises(Full) as raised:
                w.write(2, b"y" * BIG, timeout=WAIT)
    error = raised.value
    assert type(error) is Full
    message = str(error)
    assert "wait slice" not in message
    assert message.startswith(f"channel {channel_name!r} is full: ")
    assert f"no room for a {frame_bytes(BIG)}-byte frame ({BIG}-byte payload)" in message
    assert "within the timeout of 0.3 s" in message
    assert f"{CAPACITY} of {CAPACITY} ring bytes unread" in message
    assert f"its live reader (pid {os.getpid()}) is not keeping up" in message
    assert error.channel == channel_name
    assert (error.payload_bytes, error.frame_bytes) == (BIG, frame_bytes(BIG))
    assert error.timeout == WAIT
    assert (error.reader_pid, error.reader_alive) == (os.getpid(), True)


@pytest.mark.parametrize(
    "call",
    [
        lambda w: w.reserve(2, BIG, timeout=WAIT).__enter__(),
        lambda w: w.write(2, bytearray(BIG), WAIT),  # through the slow path from the start
    ],
    ids=["reserve", "write-bytearray"],
)
def test_every_timed_write_raises_full(channel_name: str, call: Callable[[ShmWriter], Any]) -> None:
    """reserve() and write() of any payload type time out with the same Full."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name):
        fill(w)
        with elapsed_between(WAIT, WAIT + SLACK):
            with pytest.raises(Full, match=r"within the timeout of 0\.3 s") as raised:
                call(w)
    assert "wait slice" not in str(raised.value)
    assert raised.value.payload_bytes == BIG


def test_timed_write_many_on_full_ring_returns_the_count(channel_name: str) -> None:
    """write_many(timeout=0.3) on a full ring returns 0 (frames written) after 0.3 s."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name):
        fill(w)
        with elapsed_between(WAIT, WAIT + SLACK):
            assert w.write_many([(2, b"y"), (3, b"z")], timeout=WAIT) == 0


def test_timed_send_on_full_ring_raises_full(channel_name: str, schema: Schema) -> None:
    """send(timeout=0.3) times out with Full like write()."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY, schema=schema) as w:
        fill(w)
        with elapsed_between(WAIT, WAIT + SLACK):
            with pytest.raises(Full, match=f"channel {channel_name!r} is full"):
                w.send(tick(schema), timeout=WAIT)


def test_full_without_waiting_and_without_a_reader(channel_name: str) -> None:
    """timeout=0 says it did not wait; with no reader attached Full says so."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w:
        fill(w)
        with pytest.raises(Full, match=r"without waiting \(timeout=0\)") as raised:
            w.write(1, b"y", timeout=0)
    assert "no live reader is attached" in str(raised.value)
    assert (raised.value.reader_pid, raised.value.reader_alive) == (0, False)


def test_full_looks_through_the_writers_own_mapping_not_the_name(channel_name: str) -> None:
    """Full's reader facts come from this writer's mapping: with the name now another
    object (a file whose header was never initialised, which a lookup by name waits
    2 s for), timeout=0 still raises at once and still names the live reader."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name):
        fill(w)
        path = f"/dev/shm/mycelium.{channel_name}"
        os.unlink(path)
        with open(path, "wb") as f:
            f.write(bytes(8192))
        started = time.monotonic()
        with pytest.raises(Full, match=r"without waiting \(timeout=0\)") as raised:
            w.write(1, b"y", timeout=0)
        assert time.monotonic() - started < 1.0
    assert f"its live reader (pid {os.getpid()}) is not keeping up" in str(raised.value)
    assert (raised.value.reader_pid, raised.value.reader_alive) == (os.getpid(), True)


def test_full_names_a_dead_reader(channel_name: str) -> None:
    """A reader whose process died is named as such."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w:
        code = (
            "import os, sys; from mycelium_shm import ShmReader; "
            "r = ShmReader(sys.argv[1]); print(os.getpid(), flush=True); os._exit(0)"
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [sys.executable, "-c", code, channel_name],
            capture_output=True,
            env=env,
            timeout=60,
            check=True,
        )
        pid = int(done.stdout)
        fill(w)
        with pytest.raises(Full, match=f"no live reader: reader pid {pid} has exited") as raised:
            w.write(1, b"y", timeout=0.05)
    assert (raised.value.reader_pid, raised.value.reader_alive) == (pid, False)


def test_full_raised_elsewhere_keeps_its_plain_form() -> None:
    """Full("text") (as the bus raises it) still works; its facts are None."""
    error = Full("queue full")
    assert str(error) == "queue full"
    assert error.channel is None and error.timeout is None and error.reader_alive is None


def test_signals_during_a_wait_do_not_end_it(channel_name: str) -> None:
    """SIGALRM every 10 ms, handled without raising, wakes the C wait again and
    again; read and write still wait their whole timeout and answer None / Full."""
    calls = []
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        with signal_every(0.01, lambda signum, frame: calls.append(signum)):
            with elapsed_between(WAIT, WAIT + SLACK):
                assert r.read(timeout=WAIT) is None
            fill(w)
            with elapsed_between(WAIT, WAIT + SLACK):
                with pytest.raises(Full, match=r"within the timeout of 0\.3 s"):
                    w.write(1, b"y" * BIG, timeout=WAIT)
    assert len(calls) > 10


def test_none_waits_across_many_slices(channel_name: str) -> None:
    """timeout=None waits as long as it takes (here 0.4 s: eight wait slices)."""
    import threading

    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        timer = threading.Timer(0.4, lambda: w.write(9, b"late"))
        timer.start()
        try:
            with elapsed_between(0.3, 0.4 + SLACK):  # the timer started just before
                frame = r.read(timeout=None)
        finally:
            timer.join()
        assert tuple(frame) == (9, b"late")


# -- type ids -----------------------------------------------------------------

WRITE_CALLS = {
    "write": lambda w, type_id: w.write(type_id, b"x"),
    "try_write": lambda w, type_id: w.try_write(type_id, b"x"),
    "reserve": lambda w, type_id: w.reserve(type_id, 1).__enter__(),
}


@pytest.mark.parametrize("entry", sorted(WRITE_CALLS))
@pytest.mark.parametrize("type_id", [0, -1, 65536, 2**70])
def test_type_id_out_of_range_is_value_error(channel_name: str, entry: str, type_id: int) -> None:
    """0, negative ids and ids over 65535 raise ValueError naming type_id and 1..65535."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        with pytest.raises(ValueError, match=r"^type_id must be in 1\.\.65535") as raised:
            WRITE_CALLS[entry](w, type_id)
        assert type(raised.value) is ValueError
        assert str(raised.value).endswith(f"not {type_id}")
        assert r.try_read() is None


@pytest.mark.parametrize("entry", sorted(WRITE_CALLS))
@pytest.mark.parametrize("type_id", [True, 1.0, "1", None])
def test_type_id_of_wrong_type_is_type_error(channel_name: str, entry: str, type_id: Any) -> None:
    """bool, float and other non-int ids raise TypeError naming type_id and its range."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        with pytest.raises(
            TypeError, match=r"^type_id must be an int in 1\.\.65535, not "
        ) as raised:
            WRITE_CALLS[entry](w, type_id)
        assert type(raised.value) is TypeError
        assert r.try_read() is None


def test_zero_type_id_mentions_padding(channel_name: str) -> None:
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w:
        with pytest.raises(ValueError, match=r"0 is reserved for padding"):
            w.write(0, b"x")


def test_write_many_names_the_bad_frame(channel_name: str) -> None:
    """In write_many the message names the frame: frames[i] type_id / payload."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        with pytest.raises(ValueError, match=r"^frames\[1\] type_id must be in 1\.\.65535, not -1"):
            w.write_many([(1, b"a"), (-1, b"b")])
        with pytest.raises(TypeError, match=r"^frames\[0\] type_id must be an int in 1\.\.65535"):
            w.write_many([(True, b"a")])
        with pytest.raises(TypeError, match=r"^frames\[2\] must be a \(type_id, payload\) pair"):
            w.write_many([(1, b"a"), (2, b"b"), 5])
        with pytest.raises(TypeError, match=r"^frames must be an iterable"):
            w.write_many(5)
        assert r.try_read() is None


def test_integer_types_are_accepted_as_type_ids(channel_name: str) -> None:
    """An IntEnum member is an int: it is written, and read back as a plain int."""

    class Kind(enum.IntEnum):
        TICK = 5

    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        w.write(Kind.TICK, b"a")
        w.write_many([(Kind.TICK, b"b")])
        with w.reserve(Kind.TICK, 1) as buf:
            buf[:] = b"c"
        frames = [r.read(timeout=1) for _ in range(3)]
        assert [tuple(f) for f in frames] == [(5, b"a"), (5, b"b"), (5, b"c")]
        assert all(type(f.type_id) is int for f in frames)


# -- payloads and sizes -------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda w, p: w.write(1, p), "payload"),
        (lambda w, p: w.write(1, p, 0.1), "payload"),
        (lambda w, p: w.try_write(1, p), "payload"),
        (lambda w, p: w.write_many([(1, b"ok"), (2, p)]), r"frames\[1\] payload"),
    ],
    ids=["write", "write-timeout", "try_write", "write_many"],
)
@pytest.mark.parametrize("payload", ["text", None, 7])
def test_payload_must_be_bytes_like(
    channel_name: str, call: Callable[[ShmWriter, Any], Any], arg: str, payload: Any
) -> None:
    """str, None and ints raise TypeError saying "bytes-like" and naming the argument."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        with pytest.raises(TypeError, match=f"^{arg} must be a bytes-like object") as raised:
            call(w, payload)
        assert type(raised.value) is TypeError
        if isinstance(payload, str):
            assert "encode the text first" in str(raised.value)
        assert r.try_read() is None


def test_any_buffer_is_a_payload(channel_name: str) -> None:
    """Non-contiguous views and typed arrays are written as their bytes."""
    import array

    numbers = array.array("H", [1, 2])
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        w.write(1, memoryview(b"abcdef")[::2])
        w.write(2, numbers)
        w.write_many([(3, memoryview(b"uvwxyz")[1::2])])
        assert [tuple(r.read(timeout=1)) for _ in range(3)] == [
            (1, b"ace"),
            (2, numbers.tobytes()),
            (3, b"vxz"),
        ]


def test_oversized_payload_says_the_maximum(channel_name: str) -> None:
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w:
        too_big = w.max_payload + 1
        with pytest.raises(
            ValueError, match=f"^payload of {too_big} bytes exceeds the channel maximum"
        ):
            w.write(1, bytearray(too_big))
        with pytest.raises(ValueError, match=rf"^frames\[0\] payload of {too_big} bytes"):
            w.write_many([(1, b"x" * too_big)])


@pytest.mark.parametrize(
    ("size", "exc", "message"),
    [
        (-1, ValueError, r"^size must be >= 0 bytes, not -1"),
        (1.5, TypeError, r"^size must be an int \(payload bytes\), not float"),
        ("3", TypeError, r"^size must be an int \(payload bytes\), not str"),
        (True, TypeError, r"^size must be an int \(payload bytes\), not bool"),
        (10_000, ValueError, r"^size of 10000 bytes exceeds the channel maximum of \d+ bytes"),
    ],
)
def test_reserve_size_is_checked(
    channel_name: str, size: Any, exc: type[Exception], message: str
) -> None:
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        with pytest.raises(exc, match=message) as raised:
            with w.reserve(1, size):
                pass
        assert type(raised.value) is exc
        assert r.try_read() is None


# -- timeouts -----------------------------------------------------------------

BAD_TIMEOUT_VALUES = [-1, -0.001, math.nan, math.inf, -math.inf]
BAD_TIMEOUT_TYPES = ["1", True, b""]


def reader_calls() -> dict[str, Callable[[ShmReader, Any], Any]]:
    return {
        "read": lambda r, t: r.read(t),
        "read-keyword": lambda r, t: r.read(timeout=t),
        "read_many": lambda r, t: r.read_many(5, t),
        "read_view": lambda r, t: r.read_view(t).__enter__(),
    }


def writer_calls() -> dict[str, Callable[[ShmWriter, Any], Any]]:
    return {
        "write": lambda w, t: w.write(1, b"y" * BIG, t),
        "write-keyword": lambda w, t: w.write(1, b"y" * BIG, timeout=t),
        "write_many": lambda w, t: w.write_many([(1, b"y")], t),
        "reserve": lambda w, t: w.reserve(1, BIG, t).__enter__(),
    }


@pytest.mark.parametrize("entry", sorted(reader_calls()))
@pytest.mark.parametrize("timeout", BAD_TIMEOUT_VALUES + BAD_TIMEOUT_TYPES)
def test_reader_timeout_is_checked(channel_name: str, entry: str, timeout: Any) -> None:
    """Negative, NaN and infinite timeouts are ValueError, non-numbers TypeError; both name timeout."""
    exc = TypeError if timeout in BAD_TIMEOUT_TYPES else ValueError
    message = r"^timeout must be None (\(wait forever\)|or a number of seconds)"
    with ShmWriter(channel_name, create=True, capacity=CAPACITY), ShmReader(channel_name) as r:
        with pytest.raises(exc, match=message) as raised:
            reader_calls()[entry](r, timeout)
        assert type(raised.value) is exc


@pytest.mark.parametrize("entry", sorted(writer_calls()))
@pytest.mark.parametrize("timeout", BAD_TIMEOUT_VALUES + BAD_TIMEOUT_TYPES)
def test_writer_timeout_is_checked(channel_name: str, entry: str, timeout: Any) -> None:
    """On a full ring, where the timeout matters, bad timeouts raise before waiting."""
    exc = TypeError if timeout in BAD_TIMEOUT_TYPES else ValueError
    message = r"^timeout must be None (\(wait forever\)|or a number of seconds)"
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name):
        fill(w)
        with elapsed_between(0, 0.2):
            with pytest.raises(exc, match=message) as raised:
                writer_calls()[entry](w, timeout)
        assert type(raised.value) is exc


@pytest.mark.parametrize("entry", sorted(writer_calls()))
@pytest.mark.parametrize("timeout", BAD_TIMEOUT_VALUES + BAD_TIMEOUT_TYPES)
def test_writer_timeout_is_checked_with_room(channel_name: str, entry: str, timeout: Any) -> None:
    """With room (the C fast path's case), a bad timeout is still refused and nothing is written."""
    exc = TypeError if timeout in BAD_TIMEOUT_TYPES else ValueError
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        with pytest.raises(exc, match=r"^timeout must be None"):
            writer_calls()[entry](w, timeout)
        assert r.read_many(10) == []


@pytest.mark.parametrize("entry", sorted(reader_calls()))
@pytest.mark.parametrize("timeout", BAD_TIMEOUT_VALUES + BAD_TIMEOUT_TYPES)
def test_reader_timeout_is_checked_with_a_frame_there(
    channel_name: str, entry: str, timeout: Any
) -> None:
    """A frame waiting (the C fast path's case) does not let a bad timeout through."""
    exc = TypeError if timeout in BAD_TIMEOUT_TYPES else ValueError
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        w.write(1, b"waiting")
        with pytest.raises(exc, match=r"^timeout must be None"):
            reader_calls()[entry](r, timeout)
        assert [f.payload for f in r.read_many(10)] == [b"waiting"]


def test_valid_timeouts_keep_their_meaning(channel_name: str) -> None:
    """0 does not wait, any real number of seconds is a timeout, None waits forever."""
    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        with elapsed_between(0, 0.2):
            assert r.read(0) is None
            assert r.read(0.0) is None
            assert r.read_many(3, 0) == []
        with elapsed_between(0.1, 0.1 + SLACK):
            assert r.read(Fraction(1, 10)) is None
        w.write(1, b"a")
        assert tuple(r.read(None)) == (1, b"a")


def test_stuck_timeout_is_checked(channel_name: str) -> None:
    ShmWriter(channel_name, create=True, capacity=CAPACITY).close()
    with pytest.raises(ValueError, match=r"^stuck_timeout must be None \(wait forever\)"):
        ShmReader(channel_name, stuck_timeout=-1)


def test_other_reader_arguments_are_checked(channel_name: str, schema: Schema) -> None:
    with ShmWriter(channel_name, create=True, capacity=CAPACITY, schema=schema):
        with ShmReader(channel_name, schema=schema) as r:
            with pytest.raises(TypeError, match=r"^max_frames must be an int in 0\.\.\d+, not float"):
                r.read_many(2.0)
            with pytest.raises(ValueError, match=r"^on_unknown must be 'raise' or 'skip'"):
                r.recv(timeout=0, on_unknown="ignore")  # type: ignore[arg-type]


# -- write_many that fails part way -------------------------------------------


def test_write_many_interrupted_while_waiting_says_how_many_were_written(
    channel_name: str,
) -> None:
    """Ctrl-C while write_many waits for room: the KeyboardInterrupt carries
    ``written`` and says "k of n frames were written"."""
    fits = CAPACITY // frame_bytes(BIG)
    frames = [(1, bytearray(BIG))] * (fits + 3)  # not bytes: the slow path from the start
    fired = []

    def interrupt(signum: int, frame: Any) -> None:
        if not fired:
            fired.append(signum)
            raise KeyboardInterrupt

    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name) as r:
        with signal_every(0.2, interrupt):
            with pytest.raises(KeyboardInterrupt) as raised:
                w.write_many(frames, timeout=10)
        assert raised.value.written == fits
        assert str(raised.value) == f"{fits} of {fits + 3} frames were written"
        assert len(r.read_many(100)) == fits


def test_write_many_counts_the_frames_the_fast_path_wrote(channel_name: str) -> None:
    """As above with bytes payloads: the C fast path writes the first frames."""
    fits = CAPACITY // frame_bytes(BIG)
    frames = [(1, b"z" * BIG)] * (fits + 3)
    fired = []

    def interrupt(signum: int, frame: Any) -> None:
        if not fired:
            fired.append(signum)
            raise KeyboardInterrupt

    with ShmWriter(channel_name, create=True, capacity=CAPACITY) as w, ShmReader(channel_name):
        with signal_every(0.2, interrupt):
            with pytest.raises(KeyboardInterrupt) as raised:
                w.write_many(frames, timeout=10)
        assert raised.value.written == fits
        assert str(raised.value) == f"{fits} of {fits + 3} frames were written"


class AbandoningWriter(ShmWriter):
    """Its batched fast call drops the third frame the way _fastpath.c reports
    a frame revoked by force_unblock: the frames before it are written, then
    FrameAbandoned with ``written`` (frames of that call)."""

    def _try_write_many(self, frames: list[tuple[int, bytes]]) -> int:
        done = super()._try_write_many(frames[:2])
        error = FrameAbandoned("the frame was revoked")
        error.written = done
        raise error


def test_write_many_frame_abandoned_carries_written(channel_name: str) -> None:
    """A FrameAbandoned from a batch says how many frames of the call were written."""
    frames = [(1, bytearray(b"%d" % i)) for i in range(5)]
    with AbandoningWriter(channel_name, create=True, capacity=CAPACITY) as w:
        with ShmReader(channel_name) as r:
            with pytest.raises(FrameAbandoned) as raised:
                w.write_many(frames)
            assert type(raised.value) is FrameAbandoned
            assert raised.value.written == 2
            assert str(raised.value) == "the frame was revoked (2 of 5 frames were written)"
            assert [f.payload for f in r.read_many(10)] == [b"0", b"1"]


def test_write_many_failing_before_writing_says_none_were_written(channel_name: str) -> None:
    """A bad frame, or a closed writer, fails before anything is written: written == 0."""
    w = ShmWriter(channel_name, create=True, capacity=CAPACITY)
    with pytest.raises(ValueError) as raised:
        w.write_many([(1, b"a"), (0, b"b")])
    assert raised.value.written == 0
    assert str(raised.value).endswith("(0 of 2 frames were written)")
    w.close()
    with pytest.raises(ChannelClosed) as closed:
        w.write_many([(1, bytearray(b"a"))])
    assert closed.value.written == 0
    assert str(closed.value).endswith("(0 of 1 frames were written)")
    assert isinstance(closed.value, MyceliumError)
