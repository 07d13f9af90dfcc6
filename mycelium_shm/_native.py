"""The compiled core, the one place where C result codes become exceptions,
and the one place where a call's arguments are checked before they reach C.

The C fast path (_fastpath.c) takes only arguments it can use as they are
and hands everything else to the Python slow paths; those call the
``check_*`` functions below, so every entry point reports a bad argument the
same way: ``TypeError`` for the wrong kind of value, ``ValueError`` for one
out of range, the message naming the argument and what it accepts.
"""

from __future__ import annotations

import errno as _errno
import numbers
import operator
from time import monotonic
from typing import Any, Callable, NoReturn, Optional, Union

from ._ring import ffi, lib
from .errors import (
    ChannelClosed,
    ChannelExists,
    ChannelNotFound,
    ChannelOSError,
    CorruptChannel,
    ForeignChannel,
    ForkedHandle,
    FormatError,
    FrameAbandoned,
    Full,
    HandleBusy,
    Interrupted,
    InvalidArgument,
    InvalidName,
    Lapped,
    MyceliumError,
    PermissionDenied,
    ReaderBusy,
    SchemaMismatch,
    TooManyReaders,
    TooManyWriters,
)

__all__ = [
    "MAX_READ_FRAMES",
    "POLICIES",
    "WAIT_SLICE_NS",
    "check_bool",
    "check_broadcast",
    "check_choice",
    "check_cursor",
    "check_frames",
    "check_int",
    "check_max_frames",
    "check_open",
    "check_payload",
    "check_schema",
    "check_size",
    "check_timeout",
    "check_type_id",
    "encode_name",
    "ffi",
    "last_error",
    "lib",
    "raise_for",
    "timeout_ns",
    "wait_call",
]

# Blocking calls wait in C for at most this long before returning to Python
# (MYC_ERR_INTERRUPTED), which runs pending signal handlers, so Ctrl-C is
# answered within 100 ms; wait_call then resumes the wait.
WAIT_SLICE_NS = 50_000_000
lib.myc_set_wait_slice(WAIT_SLICE_NS)
_INTERRUPTED = lib.MYC_ERR_INTERRUPTED
_TYPE_ID_MAX = lib.MYC_TYPE_ID_MAX
# The longest wait handed to C in one call: C adds it to a CLOCK_MONOTONIC
# reading in int64 nanoseconds (about 146 years; a longer finite timeout is
# simply resumed, like a slice).
_MAX_WAIT_NS = 1 << 62
_MAX_WAIT_S = _MAX_WAIT_NS / 1e9

# Every code maps to a MyceliumError subclass (with the builtin exception
# that says the same as a second parent), so ``except MyceliumError`` catches
# whatever a channel operation raises.
_EXCEPTIONS: dict[int, type[MyceliumError]] = {
    lib.MYC_ERR_FULL: Full,
    lib.MYC_ERR_ARG: InvalidArgument,
    lib.MYC_ERR_TOO_LARGE: InvalidArgument,
    lib.MYC_ERR_NAME: InvalidName,
    lib.MYC_ERR_NOT_FOUND: ChannelNotFound,
    lib.MYC_ERR_EXISTS: ChannelExists,
    lib.MYC_ERR_FORMAT: FormatError,
    lib.MYC_ERR_CORRUPT: CorruptChannel,
    lib.MYC_ERR_READER_BUSY: ReaderBusy,
    lib.MYC_ERR_SCHEMA: SchemaMismatch,
    lib.MYC_ERR_HANDLE_BUSY: HandleBusy,
    lib.MYC_ERR_CLOSED: ChannelClosed,
    lib.MYC_ERR_ABANDONED: FrameAbandoned,
    lib.MYC_ERR_TOO_MANY_WRITERS: TooManyWriters,
    lib.MYC_ERR_FOREIGN: ForeignChannel,
    lib.MYC_ERR_FORKED: ForkedHandle,
    lib.MYC_ERR_INTERRUPTED: Interrupted,
    lib.MYC_ERR_LAPPED: Lapped,
    lib.MYC_ERR_TOO_MANY_READERS: TooManyReaders,
}


def last_error() -> str:
    """The C core's detail message for the last failure on this thread."""
    raw: bytes = ffi.string(lib.myc_last_error())
    return raw.decode("utf-8", "replace")


def raise_for(rc: int) -> NoReturn:
    """Raise the exception that C result code ``rc`` stands for."""
    message = last_error()
    if rc == lib.MYC_ERR_SYSTEM:
        err = lib.myc_last_errno()
        if err in (_errno.EACCES, _errno.EPERM):
            raise PermissionDenied(err, message)
        raise ChannelOSError(err, message)
    exc = _EXCEPTIONS.get(rc)
    if exc is None:
        raise MyceliumError(f"unexpected result {rc}: {message}")
    raise exc(message)


def encode_name(name: str) -> bytes:
    """The channel name as the C core takes it (UTF-8, no NUL).

    A ``str`` that is not Unicode text (a lone surrogate, such as the
    ``"\\udcff"`` that ``os.listdir`` makes of a non-UTF-8 file name) raises
    InvalidName naming the position; the C core checks the rest."""
    if not isinstance(name, str):
        raise TypeError(f"channel name must be str, not {type(name).__name__}")
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = name[exc.start]
        raise InvalidName(
            f"channel name is not valid UTF-8: lone surrogate U+{ord(bad):04X} at character "
            f"{exc.start} of {name.encode('utf-8', 'backslashreplace').decode('ascii', 'replace')!r}"
        ) from None
    if b"\0" in raw:
        raise InvalidName("channel name contains a NUL byte")
    return raw


def _kind(value: object) -> str:
    return type(value).__name__


def check_int(value: object, arg: str, accepted: str = "an int") -> int:
    """``value`` as a plain int: ints and integer types (``IntEnum``, NumPy
    integers) pass, ``bool`` and ``float`` do not.  TypeError names ``arg``
    and says what it accepts."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            pass
    raise TypeError(f"{arg} must be {accepted}, not {_kind(value)}")


def check_type_id(type_id: object, arg: str = "type_id") -> int:
    """A frame type id: an int in 1..65535 (0 marks padding)."""
    value = check_int(type_id, arg, f"an int in 1..{_TYPE_ID_MAX}")
    if not 1 <= value <= _TYPE_ID_MAX:
        reserved = " (0 is reserved for padding)" if value == 0 else ""
        raise ValueError(f"{arg} must be in 1..{_TYPE_ID_MAX}{reserved}, not {value}")
    return value


def check_payload(
    payload: object, max_payload: int, arg: str = "payload"
) -> Union[bytes, memoryview]:
    """A payload as ``bytes`` (unchanged) or a C-contiguous byte memoryview,
    whose ``len`` is its size in bytes; any bytes-like object is taken (a
    non-contiguous one is copied).  TypeError for anything else (``str``
    included), ValueError if it exceeds the channel's ``max_payload``."""
    if type(payload) is bytes:
        data: Union[bytes, memoryview] = payload
    else:
        if isinstance(payload, str):
            raise TypeError(
                f"{arg} must be a bytes-like object (bytes, bytearray, memoryview), "
                "not str; encode the text first (str.encode)"
            )
        try:
            view = memoryview(payload)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                f"{arg} must be a bytes-like object (bytes, bytearray, memoryview), "
                f"not {_kind(payload)}"
            ) from None
        data = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
    if len(data) > max_payload:
        raise ValueError(
            f"{arg} of {len(data)} bytes exceeds the channel maximum of {max_payload} bytes"
        )
    return data


def check_frames(items: list[Any], max_payload: int, arg: str = "frames") -> list[Any]:
    """A batch of frames for write_many as (int, bytes) pairs, which the C
    fast path takes: ``items`` itself when every item is one already (the
    usual case, checked inline), else a checked copy.  Errors name the item,
    e.g. ``frames[3] type_id``."""
    top = _TYPE_ID_MAX
    i = 0
    for pair in items:  # one pass of cheap tests, on the write path
        if type(pair) is not tuple or len(pair) != 2:
            break
        type_id, payload = pair
        if (
            type(type_id) is not int
            or type(payload) is not bytes
            or not 0 < type_id <= top
            or len(payload) > max_payload
        ):
            break
        i += 1
    else:
        return items
    checked = items[:i]
    for j in range(i, len(items)):
        pair = items[j]
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            shape = f" of length {len(pair)}" if isinstance(pair, (tuple, list)) else ""
            raise TypeError(
                f"{arg}[{j}] must be a (type_id, payload) pair, not {_kind(pair)}{shape}"
            )
        type_id = check_type_id(pair[0], f"{arg}[{j}] type_id")
        data = check_payload(pair[1], max_payload, f"{arg}[{j}] payload")
        checked.append((type_id, data.tobytes() if isinstance(data, memoryview) else data))
    return checked


def check_bool(value: object, arg: str) -> bool:
    """A flag: ``True`` or ``False`` only (TypeError naming ``arg`` otherwise),
    so that ``create="no"`` is not silently true."""
    if value is True or value is False:
        return value
    raise TypeError(f"{arg} must be True or False, not {_kind(value)}")


def _check_range(value: object, arg: str, low: int, high: int, what: str) -> int:
    number = check_int(value, arg, f"an int in {low}..{high}{what}")
    if not low <= number <= high:
        raise ValueError(f"{arg} must be in {low}..{high}{what}, not {number}")
    return number


_MIN_CAPACITY = lib.MYC_MIN_CAPACITY
_MAX_CAPACITY = lib.MYC_MAX_CAPACITY
_U32_MAX = (1 << 32) - 1


def check_open(
    capacity: object, max_payload: object, mode: object, create: bool
) -> tuple[int, int, int]:
    """The ``capacity``, ``max_payload`` and ``mode`` of an open, checked
    before anything is mapped or allocated: ints (TypeError otherwise, bool
    included) in range (ValueError naming the argument and its range).

    ``capacity`` is a power of two in MYC_MIN_CAPACITY..MYC_MAX_CAPACITY and
    ``max_payload`` at most capacity / 2 - 16 (0: capacity / 4 - 16) when the
    open may create the channel; attaching ignores both, but they must still
    be numbers the C core can take.  ``mode`` is file permission bits,
    0..0o777 (0: 0o600)."""
    cap = _check_range(capacity, "capacity", 0, _MAX_CAPACITY, " (ring bytes)")
    payload = _check_range(
        max_payload, "max_payload", 0, _U32_MAX, " (bytes; 0: capacity / 4 - 16)"
    )
    bits = check_int(mode, "mode", "an int in 0..0o777 (permission bits)")
    if not 0 <= bits <= 0o777:
        shown = f"{bits:#o}" if bits > 0 else str(bits)
        raise ValueError(f"mode must be in 0..0o777 (permission bits), not {shown}")
    if create:
        if cap < _MIN_CAPACITY or cap & (cap - 1):
            raise ValueError(
                f"capacity must be a power of two in {_MIN_CAPACITY}..{_MAX_CAPACITY} "
                f"(ring bytes), not {cap}"
            )
        limit = cap // 2 - lib.MYC_FRAME_HEADER_SIZE
        if payload > limit:
            raise ValueError(
                f"max_payload must be in 0..{limit} (0: capacity / 4 - 16), not {payload}: "
                f"it exceeds the limit {limit} for capacity {cap}"
            )
    return cap, payload, bits


#: Reader policies of a broadcast channel, by name (docs/FORMAT.md 14).
POLICIES = {"tethered": lib.MYC_POLICY_TETHERED, "lossy": lib.MYC_POLICY_LOSSY}
_READER_SLOTS = lib.MYC_READER_SLOTS
_CURSOR_NAME_MAX = lib.MYC_CURSOR_NAME_MAX


def check_broadcast(readers: object, untether: object) -> tuple[int, int]:
    """``readers`` (0: a single-reader channel, else cursor slots, at most
    MYC_READER_SLOTS) and ``untether`` (seconds a tethered reader may hold
    writers back without reading; None: the default) as the C core takes
    them: ``(readers, untether_ms)``."""
    count = check_int(readers, "readers", f"an int in 0..{_READER_SLOTS}")
    if count < 0:
        raise ValueError(f"readers must be in 0..{_READER_SLOTS}, not {count}")
    if count > _READER_SLOTS:
        raise TooManyReaders(
            f"readers={count}: a broadcast channel has at most {_READER_SLOTS} reader slots "
            "(the cursor table in the header)"
        )
    if untether is None:
        return count, 0
    seconds = check_timeout(untether, "untether")
    assert seconds is not None
    ms = int(seconds * 1000)
    if not 1 <= ms <= _U32_MAX:
        raise ValueError(f"untether must be from 0.001 s to {_U32_MAX // 1000} s, not {untether!r}")
    return count, ms


def check_cursor(cursor: object) -> Any:
    """A cursor name as the C core takes it: ``ffi.NULL`` for None
    (anonymous), else 1 to MYC_CURSOR_NAME_MAX bytes of UTF-8 without
    control characters (ValueError naming the problem)."""
    if cursor is None:
        return ffi.NULL
    if not isinstance(cursor, str):
        raise TypeError(f"cursor must be a str or None, not {_kind(cursor)}")
    try:
        raw = cursor.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"cursor name {cursor!r} is not valid UTF-8") from None
    if not 1 <= len(raw) <= _CURSOR_NAME_MAX:
        raise ValueError(
            f"cursor name must be 1 to {_CURSOR_NAME_MAX} bytes of UTF-8, not {len(raw)}: {cursor!r}"
        )
    if any(b < 0x20 or b == 0x7F for b in raw):
        raise ValueError(f"cursor name {cursor!r} has a control character")
    return raw


#: The most frames one ``read_many`` may ask for (the C core's uint32 count).
MAX_READ_FRAMES = _U32_MAX


def check_max_frames(max_frames: object, arg: str = "max_frames") -> int:
    """A count of frames to read: an int in 0..MAX_READ_FRAMES, checked
    before any buffer is sized by it."""
    return _check_range(max_frames, arg, 0, MAX_READ_FRAMES, "")


def check_schema(schema: object, arg: str = "schema") -> Optional[bytes]:
    """The 32-byte digest of ``schema`` (None for no schema).  TypeError if
    it is not a schema (an object with ``digest``, ``encode`` and
    ``decode``), ValueError if its digest is not 32 bytes."""
    if schema is None:
        return None
    if not all(hasattr(schema, name) for name in ("digest", "encode", "decode")):
        raise TypeError(
            f"{arg} must be a Schema (an object with digest, encode and decode) or None, "
            f"not {_kind(schema)}"
        )
    digest = schema.digest  # type: ignore[attr-defined]
    try:
        raw = bytes(digest)
    except TypeError:
        raise TypeError(
            f"{arg}.digest must be {lib.MYC_DIGEST_SIZE} bytes, not {_kind(digest)}"
        ) from None
    if len(raw) != lib.MYC_DIGEST_SIZE:
        raise ValueError(f"{arg}.digest must be {lib.MYC_DIGEST_SIZE} bytes, not {len(raw)}")
    return raw


def check_choice(value: object, arg: str, choices: tuple[str, ...]) -> str:
    """One of the strings ``choices``: TypeError for a non-str, ValueError
    for another string, both naming ``arg`` and the choices."""
    allowed = " or ".join(repr(c) for c in choices)
    if not isinstance(value, str):
        raise TypeError(f"{arg} must be {allowed}, not {_kind(value)}")
    if value not in choices:
        raise ValueError(f"{arg} must be {allowed}, not {value!r}")
    return value


def check_size(size: object, max_payload: int, arg: str = "size") -> int:
    """A payload size to reserve: an int in 0..max_payload."""
    value = check_int(size, arg, "an int (payload bytes)")
    if value < 0:
        raise ValueError(f"{arg} must be >= 0 bytes, not {value}")
    if value > max_payload:
        raise ValueError(
            f"{arg} of {value} bytes exceeds the channel maximum of {max_payload} bytes"
        )
    return value


def check_timeout(timeout: object, arg: str = "timeout") -> Optional[float]:
    """Seconds to wait: None (wait forever), 0 (do not wait) or a finite
    number >= 0, returned as a float (None stays None).  ``bool`` and
    non-numbers are TypeError; negative, NaN and infinite values ValueError."""
    if timeout is None:
        return None
    if (
        type(timeout) is float
        or type(timeout) is int
        or (isinstance(timeout, numbers.Real) and not isinstance(timeout, bool))
    ):
        try:
            value = float(timeout)
        except OverflowError:  # an int beyond float range
            value = float("inf")
        if 0.0 <= value < float("inf"):  # False for NaN
            return value
        raise ValueError(
            f"{arg} must be None (wait forever), 0 (do not wait) or a finite number of "
            f"seconds >= 0, not {timeout!r}"
        )
    raise TypeError(f"{arg} must be None or a number of seconds, not {_kind(timeout)}")


def _seconds_ns(seconds: float) -> int:
    if seconds >= _MAX_WAIT_S:  # also where seconds * 1e9 would be inf (1e300)
        return _MAX_WAIT_NS
    return max(0, int(seconds * 1e9))


def timeout_ns(timeout: object, arg: str = "timeout") -> int:
    """A timeout (checked as :func:`check_timeout`) as the C core takes it:
    -1 (wait forever), 0 (do not wait) or nanoseconds."""
    value = check_timeout(timeout, arg)
    return -1 if value is None else _seconds_ns(value)


def wait_call(call: Callable[[int], int], timeout: Optional[float]) -> int:
    """Run the blocking C call ``call(timeout_ns)`` to its end; its result,
    never MYC_ERR_INTERRUPTED.

    ``timeout`` is the caller's, already checked (None: wait forever).  The C
    core hands the thread back at the end of every wait slice, and when a
    signal interrupts its sleep, with MYC_ERR_INTERRUPTED.  Python runs the
    pending signal handlers between two calls (a KeyboardInterrupt surfaces
    here), then the call is repeated with what is left of ``timeout``, so a
    wait ends with the call's own answer (a frame, room, Empty, Full or a
    real error), after ``timeout`` seconds in all.
    """
    if timeout is None:
        rc = call(-1)
        while rc == _INTERRUPTED:
            rc = call(-1)
        return rc
    deadline = monotonic() + timeout
    rc = call(_seconds_ns(timeout))
    while rc == _INTERRUPTED:
        rc = call(_seconds_ns(deadline - monotonic()))
    return rc
