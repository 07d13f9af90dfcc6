"""The compiled core and the one place where C result codes become exceptions."""

from __future__ import annotations

import errno as _errno
import os
from time import monotonic
from typing import Callable, NoReturn, Optional

from ._ring import ffi, lib
from .errors import (
    ChannelClosed,
    ChannelExists,
    ChannelNotFound,
    CorruptChannel,
    FormatError,
    FrameAbandoned,
    Full,
    InvalidName,
    MyceliumError,
    ReaderBusy,
    SchemaMismatch,
)

__all__ = ["WAIT_SLICE_NS", "encode_name", "ffi", "lib", "raise_for", "resume_wait", "timeout_ns"]

# Blocking calls wait in C for at most this long before returning to Python
# (MYC_ERR_INTERRUPTED), which runs pending signal handlers, so Ctrl-C is
# answered within 100 ms, then resumes the wait.
WAIT_SLICE_NS = 50_000_000
_WAIT_SLICE_S = WAIT_SLICE_NS / 1e9
lib.myc_set_wait_slice(WAIT_SLICE_NS)
_INTERRUPTED = lib.MYC_ERR_INTERRUPTED

_EXCEPTIONS: dict[int, type[Exception]] = {
    lib.MYC_ERR_FULL: Full,
    lib.MYC_ERR_ARG: ValueError,
    lib.MYC_ERR_TOO_LARGE: ValueError,
    lib.MYC_ERR_NAME: InvalidName,
    lib.MYC_ERR_NOT_FOUND: ChannelNotFound,
    lib.MYC_ERR_EXISTS: ChannelExists,
    lib.MYC_ERR_FORMAT: FormatError,
    lib.MYC_ERR_CORRUPT: CorruptChannel,
    lib.MYC_ERR_READER_BUSY: ReaderBusy,
    lib.MYC_ERR_SCHEMA: SchemaMismatch,
    lib.MYC_ERR_HANDLE_BUSY: RuntimeError,
    lib.MYC_ERR_CLOSED: ChannelClosed,
    lib.MYC_ERR_ABANDONED: FrameAbandoned,
}


def last_error() -> str:
    """The C core's detail message for the last failure on this thread."""
    return ffi.string(lib.myc_last_error()).decode("utf-8", "replace")


def raise_for(rc: int) -> NoReturn:
    """Raise the exception that C result code ``rc`` stands for."""
    message = last_error()
    if rc == lib.MYC_ERR_SYSTEM:
        err = lib.myc_last_errno()
        if err in (_errno.EACCES, _errno.EPERM):
            raise PermissionError(err, message)
        if err == _errno.ENOSPC:
            raise OSError(err, message)
        raise OSError(err, message)
    if rc == lib.MYC_ERR_INTERRUPTED:
        raise InterruptedError(message)
    exc = _EXCEPTIONS.get(rc)
    if exc is None:
        raise MyceliumError(f"unexpected result {rc}: {message}")
    raise exc(message)


def timeout_ns(timeout: Optional[float]) -> int:
    """Seconds (None = forever) as the C core's timeout: -1, 0 or nanoseconds."""
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError(f"timeout must be None or >= 0, not {timeout}")
    return int(timeout * 1e9)


def encode_name(name: str) -> bytes:
    """The channel name as the C core takes it (UTF-8, no NUL)."""
    if not isinstance(name, str):
        raise TypeError(f"channel name must be str, not {type(name).__name__}")
    raw = os.fsencode(name)
    if b"\0" in raw:
        raise InvalidName("channel name contains a NUL byte")
    return raw


def resume_wait(call: Callable[[int], int], timeout: Optional[float]) -> int:
    """Finish a blocking C call that returned MYC_ERR_INTERRUPTED.

    ``call(timeout_ns)`` repeats the call; the first attempt already waited
    about one slice.  Between attempts Python runs signal handlers, so a
    KeyboardInterrupt surfaces here.
    """
    deadline = None if timeout is None else monotonic() + max(0.0, timeout - _WAIT_SLICE_S)
    while True:
        if deadline is None:
            wait_ns = -1
        else:
            wait_ns = max(0, int((deadline - monotonic()) * 1e9))
        rc = call(wait_ns)
        if rc != _INTERRUPTED:
            return rc
