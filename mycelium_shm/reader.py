"""ShmReader: the single receiving end of a channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from itertools import accumulate
from types import TracebackType
from typing import Any, Generic, Literal, Optional

from ._fastpath import FastReader, set_view_support
from ._handle import ChannelHandle, MessageT, SchemaLike, cursor_dict
from ._native import (
    POLICIES,
    check_broadcast,
    check_choice,
    check_cursor,
    check_max_frames,
    check_timeout,
    ffi,
    last_error,
    lib,
    raise_for,
    timeout_ns,
    wait_call,
)
from .aio import AsyncReadState
from .aio import frames as _aio_frames
from .errors import ChannelClosed, DecodeError, Lapped
from .frame import Frame, FrameView, FrameViewInUse, guarded_payload, release_payload

__all__ = ["ShmReader"]

_OK = lib.MYC_OK
_EMPTY = lib.MYC_ERR_EMPTY
_read = lib.myc_read
_unpack = ffi.unpack
_LEN_MASK = 0xFFFFFFFF
# read_many copies into one buffer of at most this much (or one max payload).
_BATCH_BYTES = 4 << 20



class ShmReader(ChannelHandle, FastReader, Generic[MessageT]):
    """Reads the frames of channel ``name``, in the order writers committed them.

    A channel has one reader: a second live one gets ``ReaderBusy``; a reader
    whose process died is replaced, and its successor continues from where it
    stopped.  Arguments as for :class:`~mycelium_shm.ShmWriter`, plus
    ``stuck_timeout`` (s): how long an unfinished frame may hold the reader
    before the reader checks whether its writer is alive (and again every such
    interval).  A dead writer's frame is skipped; a live writer's is waited
    for, however long it stalls, and shows as a stall in ``inspect()`` and
    ``mycelium-shm ls`` (see :func:`~mycelium_shm.force_unblock`).  A reader
    is used by one thread at a time.  ``trust_foreign`` as for ShmWriter.

    On a *broadcast* channel (made with ``readers=N``, see ShmWriter), up to N
    readers read the same frames, each at its own cursor:

    * ``cursor="risk"`` names the cursor.  A named cursor is durable: it keeps
      its position when its reader closes or dies, and the next reader
      opening that name resumes there, without loss or duplicate
      (``ReaderBusy`` while a live reader holds it; ``forget_cursor`` frees
      it).  ``cursor=None``: an anonymous cursor, freed when the reader goes.
      A new cursor starts at the tail, or with ``start="oldest"`` at the
      oldest frame writers still keep.  ``TooManyReaders`` if no slot is free.
    * ``policy="tethered"`` (default): writers never overwrite a frame this
      reader has not read, and wait for it (within their timeout), unless it
      dies or stops reading for the channel's untether window: then it is
      untethered (``cursor_info()["untethers"]``), reads on losslessly what is
      left and lossily after that (counted in ``lost``), and is tethered
      again once it has caught up.
    * ``policy="lossy"``: never slows writers.  When lapped it resumes at the
      oldest lap start in the ring and counts exactly the frames it missed in
      ``lost`` (and the laps in ``laps``).  Its ``read_view()`` frames may be
      overwritten while held: the block's exit then raises
      :class:`~mycelium_shm.errors.Lapped`.

    While a ``read_view()`` block is open, every other read of the same
    reader (``read``, ``try_read``, ``read_many``, ``read_view``, ``recv``)
    raises :class:`~mycelium_shm.errors.ReadViewOpen` and leaves the view's
    frame held and unconsumed.

    ``read``, ``try_read`` and ``read_many`` are implemented by the C base
    class for the common case (frames are there now); everything else
    (waiting, errors) reaches the ``_*_slow`` methods below, through cffi.
    They check the arguments (``timeout``: None waits forever, 0 not at
    all, else a finite number of seconds >= 0) and wait until the timeout
    ends, whatever wait slices the C core returns in between.
    """

    __slots__ = (
        "_aio",
        "_batch",
        "_batch_cap",
        "_batch_u8",
        "_buf",
        "_buf_u8",
        "_cap",
        "_h",
        "_lens",
        "_slots",
        "_types",
        "capacity",
        "max_payload",
        "name",
        "schema",
        "unknown_skipped",
    )
    _open_fn = lib.myc_reader_open_ex
    _close_fn = lib.myc_reader_close
    _stats_fn = lib.myc_reader_stats
    _handle_type = "myc_reader"
    schema: Optional[SchemaLike[MessageT]]

    def __init__(
        self,
        name: str,
        *,
        create: bool = False,
        capacity: int = 1 << 20,
        max_payload: int = 0,
        mode: int = 0o600,
        schema: Optional[SchemaLike[MessageT]] = None,
        exist_ok: bool = False,
        stuck_timeout: float = 0.01,
        trust_foreign: bool = False,
        cursor: Optional[str] = None,
        policy: Literal["tethered", "lossy"] = "tethered",
        start: Literal["tail", "oldest"] = "tail",
        readers: int = 0,
        untether: Optional[float] = None,
    ) -> None:
        self.unknown_skipped = 0
        self._aio: Optional[AsyncReadState] = None
        stuck_ns = timeout_ns(stuck_timeout, "stuck_timeout")  # checked before attaching
        raw_cursor = check_cursor(cursor)
        policy_code = POLICIES[check_choice(policy, "policy", tuple(POLICIES))]
        oldest = check_choice(start, "start", ("tail", "oldest")) == "oldest"
        extra = (*check_broadcast(readers, untether), raw_cursor, policy_code)
        self._open(
            name,
            create,
            exist_ok,
            capacity,
            max_payload,
            mode,
            schema,
            trust_foreign,
            extra,
            lib.MYC_START_OLDEST if oldest else 0,
        )
        lib.myc_reader_set_stuck_timeout(self._h, stuck_ns)
        self._cap = max(self.max_payload, 1)
        self._buf = ffi.new("char[]", self._cap)
        self._buf_u8 = ffi.cast("uint8_t *", self._buf)
        self._batch_cap = max(self._cap, min(self.capacity, _BATCH_BYTES))
        self._batch: Any = None
        self._batch_u8: Any = None
        self._slots = 0
        self._types: Any = None
        self._lens: Any = None

    # -- broadcast cursors ----------------------------------------------------

    def cursor_info(self) -> dict[str, Any]:
        """This reader's cursor on a broadcast channel: ``name``, ``policy``,
        ``tethered``, ``position``, ``lag`` (bytes not yet read),
        ``frames_read``, ``lost``, ``laps``, ``untethers``...  ValueError on a
        single-reader channel."""
        out = ffi.new("myc_cursor_info *")
        rc = lib.myc_reader_cursor(self._h, out)
        if rc == lib.MYC_ERR_ARG:
            raise ValueError(f"channel {self.name!r} is a single-reader channel: no cursor")
        if rc != _OK:
            raise_for(rc)
        return cursor_dict(out)

    @property
    def lost(self) -> int:
        """Frames this broadcast reader lost because writers lapped it (0 on
        a single-reader channel, which never loses a frame)."""
        return self._cursor_count("lost")

    @property
    def laps(self) -> int:
        """Times writers lapped this broadcast reader."""
        return self._cursor_count("laps")

    def _cursor_count(self, key: str) -> int:
        out = ffi.new("myc_cursor_info *")
        if self.closed or lib.myc_reader_cursor(self._h, out) != _OK:
            return 0
        return int(getattr(out, key))

    # -- reading -------------------------------------------------------------

    def _read_slow(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """read() when no frame was ready: wait up to ``timeout`` s, or raise."""
        wait = check_timeout(timeout)
        self._check_no_view()  # myc_read would consume a read_view()'s frame
        h, buf, cap = self._h, self._buf_u8, self._cap
        rc = wait_call(lambda ns: _read(h, ns, buf, cap), wait)
        if rc >= 0:
            return Frame(rc >> 32, _unpack(self._buf, rc & _LEN_MASK))
        if rc == _EMPTY:
            return None
        raise_for(rc)

    def _read_many_slow(self, max_frames: int, timeout: Optional[float] = 0) -> list[Frame]:
        """read_many() when no frame was ready: wait up to ``timeout`` s for
        the first, then take what is there in one C call; [] on timeout."""
        max_frames = check_max_frames(max_frames)  # before any buffer is sized by it
        wait = check_timeout(timeout)
        self._check_no_view()  # myc_read_batch would consume a read_view()'s frame
        if max_frames == 0:
            return []
        # The ring never holds more frames than this: a larger count only
        # costs memory (and overflows the C core's uint32 count).
        max_frames = min(max_frames, self.capacity // lib.MYC_FRAME_HEADER_SIZE)
        if max_frames > self._slots:
            self._types = ffi.new("uint16_t[]", max_frames)
            self._lens = ffi.new("uint32_t[]", max_frames)
            self._slots = max_frames
        if self._batch is None:
            self._batch = ffi.new("char[]", self._batch_cap)
            self._batch_u8 = ffi.cast("uint8_t *", self._batch)
        h, types_p, lens_p, batch, batch_cap = (
            self._h,
            self._types,
            self._lens,
            self._batch_u8,
            self._batch_cap,
        )

        def call(ns: int) -> int:
            rc: int = lib.myc_read_batch(h, max_frames, ns, batch, batch_cap, types_p, lens_p)
            return rc

        rc = wait_call(call, wait)
        if rc == _EMPTY:
            return []
        if rc < 0:
            raise_for(rc)
        types = _unpack(self._types, rc)
        ends = list(accumulate(_unpack(self._lens, rc)))
        blob = _unpack(self._batch, ends[-1])
        starts = [0, *ends[:-1]]
        return [
            Frame(type_id, blob[start:end])
            for type_id, start, end in zip(types, starts, ends)
        ]

    # read_view(timeout=None) is FastReader's (_fastpath.c): a with-block
    # that holds and consumes the frame in C when one is there now, and
    # hands the block to _ViewContext below otherwise.

    def recv(
        self,
        timeout: Optional[float] = None,
        on_unknown: Literal["raise", "skip"] = "raise",
    ) -> Optional[MessageT]:
        """The next message decoded with the channel's schema (None on timeout).

        Typed as what the schema's ``decode`` returns (``ShmReader`` is
        generic over it, see :class:`~mycelium_shm._handle.SchemaLike`):
        ``Any`` for a :class:`~mycelium_shm.Schema`, ``T`` for a schema typed
        ``SchemaLike[T]``.

        A frame whose type id the schema does not know raises ``DecodeError``,
        or with ``on_unknown="skip"`` is counted in ``unknown_skipped`` and
        passed over."""
        check_choice(on_unknown, "on_unknown", ("raise", "skip"))
        schema = self.schema
        if schema is None:
            raise ValueError("recv() needs a reader opened with schema=")
        while True:
            frame = self.read(timeout)
            if frame is None:
                return None
            try:
                return schema.decode(frame[0], frame[1])
            except DecodeError:
                if on_unknown == "skip" and not _schema_knows(schema, frame[0]):
                    self.unknown_skipped += 1
                    continue
                raise

    def __iter__(self) -> Iterator[Frame]:
        """Blocking iteration over frames, forever (until an exception)."""
        while True:
            frame = self.read(None)
            if frame is not None:
                yield frame

    # -- asyncio (see mycelium_shm.aio) --------------------------------------------

    async def read_async(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """``await r.read_async(timeout)``: the next frame, None after
        ``timeout`` s (None: wait forever, 0: only a frame there now).

        A frame there now is taken at once (the C fast path); a wait runs in
        the reader's helper thread, so the event loop keeps running.
        Cancelling the awaiting task ends the wait at once, and a frame the
        helper read meanwhile is kept for the next call.  Once a reader is
        read with ``read_async``, read it only that way (see
        :mod:`mycelium_shm.aio`)."""
        if timeout is not None:  # checked even when a frame is there now
            check_timeout(timeout)
        aio = self._aio
        if aio is None:
            aio = self._aio = AsyncReadState(self)
        if aio.quiet():  # no wait going on: the C fast path, no lock
            frame = self.try_read()
            if frame is not None:
                return frame
        return await aio.read(timeout)

    def __aiter__(self) -> AsyncIterator[Frame]:
        """``async for frame in r``: every frame, forever, as ``read_async``."""
        return _aio_frames(self)

    def close(self) -> None:
        """Detach (the channel stays until :func:`unlink`).  Idempotent.  Stops
        the asyncio helper thread first (see :mod:`mycelium_shm.aio`)."""
        if self._aio is not None:
            self._aio.close()
        super().close()


def _schema_knows(schema: SchemaLike, type_id: int) -> bool:
    try:
        schema.message_type(type_id)  # type: ignore[attr-defined]
    except (KeyError, LookupError, DecodeError, ValueError):
        return False
    return True


# Readers whose read_view() block ended while its payload was still
# referenced (FrameViewInUse): id -> (reader, payload view, ring view).  The
# frame stays held, unconsumed, until the next read_view() finds both views
# releasable.  The entry holds the reader, so its id is not reused meanwhile.
_views_in_use: dict[int, tuple[ShmReader, memoryview, memoryview]] = {}

_IN_USE_MSG = (
    "the payload of a read_view() frame is still referenced after its block "
    "({what}): something built over frame.payload (np.frombuffer, a slice or a "
    "memoryview of it...) outlived the block.  The frame is kept unconsumed in "
    "the ring so that memory is not overwritten; drop those references (copy what "
    "you keep inside the block: bytes(...), np.array(...), or schema.decode, which "
    "copies) and the next read_view() consumes it"
)


def _consume_in_use(reader: ShmReader) -> None:
    """Consume the frame a FrameViewInUse left held, or raise it again."""
    _, view, base = _views_in_use[id(reader)]
    if reader.closed:  # close() consumed it
        del _views_in_use[id(reader)]
        return
    if not release_payload(view, base):
        raise FrameViewInUse(_IN_USE_MSG.format(what="still, at the next read_view()"))
    del _views_in_use[id(reader)]
    reader._release_held()


class _ViewContext:
    __slots__ = ("_base", "_reader", "_timeout", "_view")

    def __init__(self, reader: ShmReader, timeout: Optional[float]) -> None:
        self._reader = reader
        self._timeout = timeout
        self._view: Optional[memoryview] = None
        self._base: Optional[memoryview] = None

    def __enter__(self) -> Optional[FrameView]:
        reader = self._reader
        if self._timeout is not None:  # checked even when a frame is there now
            check_timeout(self._timeout)
        if _views_in_use and id(reader) in _views_in_use:
            _consume_in_use(reader)
        held = reader._peek_now()  # a frame there now: no cffi call
        if held is None:
            held = self._peek_slow()
            if held is None:
                return None
        type_id, base = held
        # Hand out a view whose buffer is an export of the ring view, so that
        # __exit__ can tell whether anything derived from it is still alive.
        view = guarded_payload(base)
        self._base = base
        self._view = view
        return FrameView(type_id, view)

    def _peek_slow(self) -> Optional[tuple[int, memoryview]]:
        """Wait for a frame through cffi; None on timeout."""
        reader = self._reader
        if reader.closed:
            raise ChannelClosed("the reader is closed")
        wait = check_timeout(self._timeout)
        reader._check_no_view()  # myc_peek would consume the held frame
        h, frame = reader._h, ffi.new("myc_frame *")
        rc = wait_call(lambda ns: lib.myc_peek(h, ns, frame), wait)
        if rc == _EMPTY:
            return None
        if rc != _OK:
            raise_for(rc)
        return reader._held_view()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        view, base = self._view, self._base
        if view is None or base is None:
            return
        self._view = self._base = None
        _view_exit(self._reader, view, base, exc_type)


def _view_exit(
    reader: ShmReader, view: memoryview, base: memoryview, exc_type: Optional[type[BaseException]]
) -> None:
    """End a read_view() block: release the payload and consume the frame, or
    keep it held (FrameViewInUse) while the payload is still referenced.  The
    C block calls this for the cases it does not handle itself."""
    if not release_payload(view, base):
        # Consuming now would let writers overwrite bytes still referenced.
        _views_in_use[id(reader)] = (reader, view, base)
        raise FrameViewInUse(_IN_USE_MSG.format(what="at the end of the with block"))
    # A lossy (or untethered) broadcast reader: were the bytes overwritten
    # while the block held them?  (Always fine on other readers.)
    intact = lib.myc_reader_check_held(reader._h) if not reader.closed else _OK
    reader._release_held()
    if intact == lib.MYC_ERR_LAPPED and exc_type is None:
        raise Lapped(last_error())


set_view_support(_ViewContext, FrameView, _view_exit, _views_in_use)
