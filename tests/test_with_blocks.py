"""The with-blocks of the zero-copy API, ``w.reserve()`` and ``r.read_view()``.

Both are C objects (_fastpath.c) that do the common case themselves (room or
a frame there now, no timeout) and hand every other block to the Python
classes (writer.Reservation, reader._ViewContext).  These tests pin the rules
both halves must share: nothing is claimed or held before ``__enter__``, a
block is entered once, commit on a clean exit, abort on an exception, and the
frame a view held is consumed when the block ends.
"""

from __future__ import annotations

import pytest

from mycelium_shm import Full, ShmReader, ShmWriter
from mycelium_shm.frame import FrameView

CAP = 4096


@pytest.fixture
def pair(channel_name: str):  # type: ignore[no-untyped-def]
    w = ShmWriter(channel_name, create=True, capacity=CAP)
    r = ShmReader(channel_name)
    yield w, r
    r.close()
    w.close()


def test_reserve_claims_only_when_entered(pair) -> None:  # type: ignore[no-untyped-def]
    """A reserve() block never entered holds nothing: later frames flow."""
    w, r = pair
    block = w.reserve(1, 100)
    w.write(2, b"after")
    assert r.read(timeout=0) == (2, b"after")
    with block as buf:
        buf[:] = b"x" * 100
    assert r.read(timeout=0) == (1, b"x" * 100)


@pytest.mark.parametrize("timeout", [None, 1.0])  # the C path, the Reservation path
def test_reserve_commits_on_exit_and_aborts_on_an_exception(pair, timeout) -> None:  # type: ignore[no-untyped-def]
    w, r = pair
    with w.reserve(3, 5, timeout) as buf:
        assert isinstance(buf, memoryview) and not buf.readonly and len(buf) == 5
        buf[:] = b"hello"
    assert r.read(timeout=0) == (3, b"hello")
    with pytest.raises(KeyError), w.reserve(3, 5, timeout) as buf:
        buf[:] = b"never"
        raise KeyError("the block's own error")
    w.write(4, b"next")
    assert r.read(timeout=0) == (4, b"next")  # the aborted frame was skipped
    assert r.read(timeout=0) is None
    with pytest.raises(ValueError, match="released"):
        buf[0]  # the payload view ended with its block


def test_a_block_is_entered_once(pair) -> None:  # type: ignore[no-untyped-def]
    w, r = pair
    block = w.reserve(1, 3)
    with block as buf:
        buf[:] = b"abc"
    with pytest.raises(ValueError, match="entered only once"):
        block.__enter__()
    view = r.read_view()
    with view as frame:
        assert frame is not None and bytes(frame.payload) == b"abc"
    with pytest.raises(ValueError, match="entered only once"):
        view.__enter__()
    assert r.read(timeout=0) is None  # consumed exactly once


def test_reserve_full_and_bad_arguments_take_the_checked_path(pair) -> None:  # type: ignore[no-untyped-def]
    w, _ = pair
    with pytest.raises(ValueError, match="type"), w.reserve(0, 10):
        pass
    with pytest.raises(TypeError):
        w.reserve(1)  # type: ignore[call-arg]
    while True:
        try:
            w.write(1, b"\xee" * 500, timeout=0)
        except Full:
            break
    with pytest.raises(Full, match="no room"), w.reserve(1, 500, 0):
        pass


@pytest.mark.parametrize("timeout", [None, 1.0])
def test_read_view_holds_then_consumes(pair, timeout) -> None:  # type: ignore[no-untyped-def]
    """The frame stays in the ring for the block, and is consumed at its end."""
    w, r = pair
    w.write(7, b"payload")
    w.write(8, b"second")
    with r.read_view(timeout) as frame:
        assert isinstance(frame, FrameView) and frame.type_id == 7
        assert frame.payload.readonly and bytes(frame.payload) == b"payload"
        assert r.stats()["head"] == 0  # held, not consumed
        kept = frame.payload
    with pytest.raises(ValueError, match="released"):
        kept[0]
    assert r.read(timeout=0) == (8, b"second")


def test_read_view_consumes_even_when_the_block_raises(pair) -> None:  # type: ignore[no-untyped-def]
    w, r = pair
    w.write(1, b"one")
    w.write(2, b"two")
    with pytest.raises(RuntimeError), r.read_view() as frame:
        assert frame is not None
        raise RuntimeError("in the block")
    assert r.read(timeout=0) == (2, b"two")


def test_read_view_times_out_with_none(pair) -> None:  # type: ignore[no-untyped-def]
    _, r = pair
    with r.read_view(0.01) as frame:
        assert frame is None
    with r.read_view(0) as frame:
        assert frame is None
    with pytest.raises(TypeError):
        r.read_view(1, 2)  # type: ignore[call-arg]
