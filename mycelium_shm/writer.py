"""ShmWriter: the sending end of a channel (many may write to one channel)."""

from __future__ import annotations

from collections.abc import Iterable
from time import monotonic
from types import TracebackType
from typing import Any, Optional

from ._fastpath import FastWriter
from ._handle import ChannelHandle, SchemaLike
from ._native import ffi, lib, raise_for, resume_wait, timeout_ns
from .errors import ChannelClosed, Full, MyceliumError

__all__ = ["Reservation", "ShmWriter"]

_OK = lib.MYC_OK
_FULL = lib.MYC_ERR_FULL
_INTERRUPTED = lib.MYC_ERR_INTERRUPTED
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

    ``write``, ``try_write`` and ``write_many`` are implemented by the C base
    class for the common case (the frames fit now); everything else reaches
    the ``_*_slow`` methods below, which go through cffi.
    """

    __slots__ = ("_h", "capacity", "max_payload", "name", "schema")
    _open_fn = lib.myc_writer_open
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
    ) -> None:
        self._open(name, create, exist_ok, capacity, max_payload, mode, schema)

    # -- writing -------------------------------------------------------------

    def _write_slow(self, type_id: int, payload: Any, timeout: Optional[float] = None) -> None:
        """write() when the fast path could not: wait for room, or raise."""
        if type(payload) is not bytes:
            payload = _from_buffer(payload)
        rc = _write(
            self._h, type_id, payload, len(payload), -1 if timeout is None else timeout_ns(timeout)
        )
        if rc == _OK:
            return
        if rc == _INTERRUPTED:
            h = self._h
            rc = resume_wait(lambda ns: _write(h, type_id, payload, len(payload), ns), timeout)
            if rc == _OK:
                return
        raise_for(rc)

    def _try_write_slow(self, type_id: int, payload: Any) -> bool:
        """try_write() when the fast path could not: False if full, or raise."""
        if type(payload) is not bytes:
            payload = _from_buffer(payload)
        rc = _write(self._h, type_id, payload, len(payload), 0)
        if rc == _OK:
            return True
        if rc == _FULL:
            return False
        raise_for(rc)

    def _write_many_slow(
        self, frames: Iterable[tuple[int, Any]], timeout: Optional[float] = None
    ) -> int:
        """write_many() for what the fast path left: waits for room, writing
        what fits at each moment; returns how many were written (fewer than
        given only if ``timeout`` expired)."""
        pairs = [tuple(pair) for pair in frames]
        for type_id, payload in pairs:  # all or nothing: check before writing any
            if not 1 <= type_id <= lib.MYC_TYPE_ID_MAX:
                raise ValueError(f"type id {type_id} is out of range 1..{lib.MYC_TYPE_ID_MAX}")
            if len(payload) > self.max_payload:
                raise ValueError(
                    f"payload of {len(payload)} bytes exceeds the channel maximum of {self.max_payload}"
                )
        deadline = None if timeout is None else monotonic() + timeout
        done = 0
        while done < len(pairs):
            rest = pairs[done:] if done else pairs
            fast = self._try_write_many(rest)
            if fast:
                done += fast
                continue
            type_id, payload = rest[0]
            if deadline is None:
                wait = None
            else:
                wait = max(0.0, deadline - monotonic())
            try:
                # One frame through cffi: waits for room (or raises the
                # argument error); then the fast path takes what fits again.
                self._write_slow(type_id, payload, wait)
            except Full:
                break
            done += 1
        return done

    def reserve(self, type_id: int, size: int, timeout: Optional[float] = None) -> Reservation:
        """Zero-copy write: ``with w.reserve(t, n) as buf: buf[:] = ...`` fills
        ``n`` bytes in the ring and commits on exit (aborts on an exception)."""
        return Reservation(self, type_id, size, timeout)

    def send(self, message: Any, timeout: Optional[float] = None) -> None:
        """Encode ``message`` with the channel's schema and write it."""
        if self.schema is None:
            raise ValueError("send() needs a writer opened with schema=")
        type_id, payload = self.schema.encode(message)
        self.write(type_id, payload, timeout)


class Reservation:
    """A frame being filled in place; see :meth:`ShmWriter.reserve`."""

    __slots__ = ("_claim", "_size", "_timeout", "_type_id", "_writer")

    def __init__(self, writer: ShmWriter, type_id: int, size: int, timeout: Optional[float]):
        self._writer = writer
        self._type_id = type_id
        self._size = size
        self._timeout = timeout
        self._claim: Any = None

    def __enter__(self) -> memoryview:
        claim = self._writer._reserve(self._type_id, self._size)  # room now: no cffi call
        if claim is None:
            claim = self._reserve_slow()
        self._claim = claim
        return claim.view  # type: ignore[no-any-return]

    def _reserve_slow(self) -> Any:
        """Claim through cffi: wait for room, or raise the right error."""
        writer = self._writer
        if writer.closed:
            raise ChannelClosed("the writer is closed")
        h, type_id, size, timeout = writer._h, self._type_id, self._size, self._timeout
        res = ffi.new("myc_reservation *")
        rc = lib.myc_reserve(h, type_id, size, -1 if timeout is None else timeout_ns(timeout), res)
        if rc == _INTERRUPTED:
            rc = resume_wait(lambda ns: lib.myc_reserve(h, type_id, size, ns, res), timeout)
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
