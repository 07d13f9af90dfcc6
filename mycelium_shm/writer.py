"""ShmWriter: the sending end of a channel (many may write to one channel)."""

from __future__ import annotations

from collections.abc import Iterable
from time import monotonic
from types import TracebackType
from typing import Any, Optional

from ._fastpath import FastWriter, set_reserve_support
from ._handle import ChannelHandle, SchemaLike
from ._native import (
    check_broadcast,
    check_frames,
    check_payload,
    check_size,
    check_timeout,
    check_type_id,
    ffi,
    last_error,
    lib,
    raise_for,
    wait_call,
)
from .channel import frame_bytes
from .errors import ChannelClosed, FrameAbandoned, Full, MyceliumError, batch_failed

__all__ = ["Reservation", "ShmWriter"]

_OK = lib.MYC_OK
_FULL = lib.MYC_ERR_FULL
_write = lib.myc_write
_from_buffer = ffi.from_buffer


class ShmWriter(ChannelHandle, FastWriter):
    """Writes frames into the channel ``name`` (the object /dev/shm/mycelium.<name>).

    ``create=True`` makes the channel (``ChannelExists`` if it exists, unless
    ``exist_ok``); otherwise it must exist (``ChannelNotFound``).  ``capacity``
    is the ring size in bytes, a power of two; ``max_payload`` the largest
    payload (0: capacity / 4 - 8).  With a ``schema``, its digest is stored on
    create and checked on attach (``SchemaMismatch``), and :meth:`send`
    encodes messages.  One writer may be shared by threads.

    Attaching to a channel owned by another user, or whose file mode is wider
    than ``mode`` (default 0600; e.g. a name squatted with mode 0666), raises
    :class:`~mycelium_shm.errors.ForeignChannel` unless ``trust_foreign=True``:
    whoever else may open the file can corrupt, stall or truncate the channel
    (see the threat model in docs/FORMAT.md).

    ``readers=N`` (1..10) creates a *broadcast* channel: up to N readers, each
    with its own cursor (see :class:`~mycelium_shm.ShmReader`), every one of
    them getting every frame; one write reaches them all.  Writers wait for
    the slowest *tethered* reader, but a tethered reader that died, or that
    held writers back for ``untether`` seconds (default 2) without reading, is
    untethered (counted; it then reads on as a lossy reader until it has
    caught up).  Attaching with ``readers=N`` checks the channel has N slots.

    ``write``, ``try_write`` and ``write_many`` are implemented by the C base
    class for the common case (the frames fit now); everything else reaches
    the ``_*_slow`` methods below, which go through cffi.  They check the
    arguments (``timeout``: None waits forever, 0 not at all, else a finite
    number of seconds >= 0), wait until the timeout ends, whatever wait
    slices the C core returns in between, and raise :class:`Full` saying why.
    """

    __slots__ = ("_h", "capacity", "max_payload", "name", "schema")
    _open_fn = lib.myc_writer_open_ex
    _close_fn = lib.myc_writer_close
    _stats_fn = lib.myc_writer_stats
    _handle_type = "myc_writer"

    def __init__(
        self,
        name: str,
        *,
        create: bool = False,
        capacity: int = 1 << 20,
        max_payload: int = 0,
        mode: int = 0o600,
        schema: Optional[SchemaLike] = None,
        exist_ok: bool = False,
        trust_foreign: bool = False,
        readers: int = 0,
        untether: Optional[float] = None,
    ) -> None:
        extra = check_broadcast(readers, untether)
        self._open(
            name, create, exist_ok, capacity, max_payload, mode, schema, trust_foreign, extra
        )

    # -- writing -------------------------------------------------------------

    def _write_slow(self, type_id: Any, payload: Any, timeout: Any = None) -> None:
        """write() when the fast path could not: check, wait for room, or raise."""
        type_id = check_type_id(type_id)
        data = check_payload(payload, self.max_payload)
        wait = check_timeout(timeout)
        rc = self._write_wait(type_id, data, wait)
        if rc == _OK:
            return
        if rc == _FULL:
            raise self._full(len(data), wait)
        raise_for(rc)

    def _write_wait(self, type_id: int, data: Any, timeout: Optional[float]) -> int:
        """One checked frame through cffi: the C result once room came or
        ``timeout`` (checked) ran out."""
        h, n = self._h, len(data)
        buf = data if type(data) is bytes else _from_buffer(data)
        return wait_call(lambda ns: _write(h, type_id, buf, n, ns), timeout)

    def _try_write_slow(self, type_id: Any, payload: Any) -> bool:
        """try_write() when the fast path could not: False if full, or raise."""
        type_id = check_type_id(type_id)
        data = check_payload(payload, self.max_payload)
        rc = self._write_wait(type_id, data, 0)
        if rc == _OK:
            return True
        if rc == _FULL:
            return False
        raise_for(rc)

    def _write_many_slow(self, frames: Iterable[tuple[int, Any]], timeout: Any = None) -> int:
        """write_many() for what the fast path left: waits for room, writing
        what fits at each moment; returns how many were written (fewer than
        given only if ``timeout`` expired).

        Every argument is checked before anything is written.  Any exception
        raised once the frames are listed (a bad frame, a FrameAbandoned, a
        closed writer, a KeyboardInterrupt while waiting) carries ``written``
        and says "k of n frames were written"
        (:func:`~mycelium_shm.errors.batch_failed`)."""
        try:
            items = list(frames)
        except TypeError:
            raise TypeError(
                f"frames must be an iterable of (type_id, payload) pairs, "
                f"not {type(frames).__name__}"
            ) from None
        total = len(items)
        done = 0
        try:
            pairs = check_frames(items, self.max_payload)
            wait = check_timeout(timeout)
            deadline = None if wait is None else monotonic() + wait
            while done < total:
                rest = pairs[done:] if done else pairs
                try:
                    fast = self._try_write_many(rest)
                except FrameAbandoned as exc:
                    done += exc.written or 0  # the frames of `rest` before it
                    raise
                if fast:
                    done += fast
                    continue
                # One frame through cffi: waits for room (or raises); then
                # the fast path takes what fits again.
                type_id, payload = rest[0]
                if deadline is not None:
                    wait = max(0.0, deadline - monotonic())
                rc = self._write_wait(type_id, payload, wait)
                if rc == _FULL:
                    break
                if rc != _OK:
                    raise_for(rc)
                done += 1
        except BaseException as exc:
            batch_failed(exc, done, total)
            raise
        return done

    def _full(self, payload_len: int, timeout: Optional[float]) -> Full:
        """The Full error for a frame of ``payload_len`` bytes that found no
        room within ``timeout``.  Built only when raising: it looks at the
        channel through this writer's mapping to say whether a live reader
        is attached."""
        frame = frame_bytes(payload_len)
        if timeout is None:
            waited = "while waiting"
        elif timeout == 0:
            waited = "without waiting (timeout=0)"
        else:
            waited = f"within the timeout of {timeout:g} s"
        facts = []
        try:
            stats = self.stats()
            facts.append(
                f"{stats['tail'] - stats['head']} of {stats['capacity']} ring bytes unread"
            )
        except MyceliumError:
            pass
        reader_pid: Optional[int] = None
        reader_alive: Optional[bool] = None
        # Through this writer's own mapping, not by name: the name may now be
        # another object (or a header never initialised, waited for 2 s).
        info = ffi.new("myc_info *")
        rc = lib.myc_writer_inspect(self._h, info)
        if rc != lib.MYC_OK:
            facts.append(f"whether a live reader is attached is unknown ({last_error()})")
        else:
            reader_pid, reader_alive = int(info.reader_pid), bool(info.reader_alive)
            if reader_alive:
                facts.append(f"its live reader (pid {reader_pid}) is not keeping up")
            elif reader_pid:
                facts.append(
                    f"no live reader: reader pid {reader_pid} has exited, "
                    "so no room is freed until a new reader attaches"
                )
            else:
                facts.append(
                    "no live reader is attached, so no room is freed until a reader attaches"
                )
        return Full(
            f"channel {self.name!r} is full: no room for a {frame}-byte frame "
            f"({payload_len}-byte payload) {waited}; " + "; ".join(facts),
            channel=self.name,
            payload_bytes=payload_len,
            frame_bytes=frame,
            timeout=timeout,
            reader_pid=reader_pid,
            reader_alive=reader_alive,
        )

    # reserve(type_id, size, timeout=None) is FastWriter's (_fastpath.c): a
    # with-block that claims and commits in C when there is room and no
    # timeout, and hands the block to Reservation below otherwise.

    def send(self, message: Any, timeout: Optional[float] = None) -> None:
        """Encode ``message`` with the channel's schema and write it."""
        if self.schema is None:
            raise ValueError("send() needs a writer opened with schema=")
        type_id, payload = self.schema.encode(message)
        self.write(type_id, payload, timeout)


class Reservation:
    """A frame being filled in place; see ``ShmWriter.reserve``.  The C block
    (``_fastpath.ReserveBlock``) hands a block to this class when it cannot
    claim at once: a timeout to honour, no room now, or an argument to check."""

    __slots__ = ("_claim", "_size", "_timeout", "_type_id", "_writer")

    def __init__(self, writer: ShmWriter, type_id: int, size: int, timeout: Optional[float]):
        self._writer = writer
        self._type_id = type_id
        self._size = size
        self._timeout = timeout
        self._claim: Any = None

    def __enter__(self) -> memoryview:
        if self._timeout is not None:  # checked even when there is room now
            check_timeout(self._timeout)
        claim = self._writer._reserve(self._type_id, self._size)  # room now: no cffi call
        if claim is None:
            claim = self._reserve_slow()
        self._claim = claim
        return claim.view

    def _reserve_slow(self) -> Any:
        """Claim through cffi: check, wait for room, or raise the right error."""
        writer = self._writer
        if writer.closed:
            raise ChannelClosed("the writer is closed")
        type_id = check_type_id(self._type_id)
        size = check_size(self._size, writer.max_payload)
        wait = check_timeout(self._timeout)
        h, res = writer._h, ffi.new("myc_reservation *")
        rc = wait_call(lambda ns: lib.myc_reserve(h, type_id, size, ns, res), wait)
        if rc == _FULL:
            raise writer._full(size, wait)
        if rc != _OK:
            raise_for(rc)
        return writer._adopt(res.position, res.payload_len)

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        claim, self._claim = self._claim, None
        if exc_type is None:
            claim.commit()  # FrameAbandoned if the reader gave up on it
            return
        try:
            claim.abort()
        except MyceliumError:
            pass  # the block's own exception is the one to see


set_reserve_support(Reservation)
