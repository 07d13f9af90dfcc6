"""The exception family of mycelium-shm.

Every error the package raises on purpose derives from :class:`MyceliumError`,
so ``except MyceliumError`` catches them all.  Where a builtin exception says
the same thing, it is a parent too (``ChannelNotFound`` is a
``FileNotFoundError``), so code written against the standard library keeps
working.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
    "ChannelClosed",
    "ChannelExists",
    "ChannelNotFound",
    "ChannelOSError",
    "CorruptChannel",
    "DecodeError",
    "ForeignChannel",
    "ForkedHandle",
    "FormatError",
    "FrameAbandoned",
    "Full",
    "HandleBusy",
    "Interrupted",
    "InvalidArgument",
    "InvalidName",
    "Lapped",
    "MyceliumError",
    "PermissionDenied",
    "ReadViewOpen",
    "ReaderBusy",
    "SchemaMismatch",
    "TooManyReaders",
    "TooManyWriters",
]


class MyceliumError(Exception):
    """Root of every error raised by mycelium-shm."""


class InvalidName(MyceliumError, ValueError):
    """A channel name is empty, too long, not valid UTF-8 (a lone surrogate in
    a Python ``str``, say), or holds '/', '..' or control characters."""


class InvalidArgument(MyceliumError, ValueError):
    """The C core refused an argument (a frame larger than the read buffer,
    a capacity that is not a power of two...).  Arguments checked in Python
    before they reach C raise plain ``TypeError``/``ValueError``."""


class ChannelOSError(MyceliumError, OSError):
    """The operating system refused a channel operation (``errno`` says why:
    ENOSPC for a full /dev/shm, ENOMEM...)."""


class PermissionDenied(MyceliumError, PermissionError):
    """The operating system denied access to the channel's object (EACCES, EPERM)."""


class ForeignChannel(MyceliumError, PermissionError):
    """Attaching was refused: the channel's file is owned by another uid, or
    its mode is wider than the one the caller opened with (a name squatted
    with mode 0666, say).  Pass ``trust_foreign=True`` to attach anyway
    (see the threat model in docs/FORMAT.md)."""


class HandleBusy(MyceliumError, RuntimeError):
    """A reader handle was used by two threads at once (a reader serves one thread)."""


class ReadViewOpen(MyceliumError, RuntimeError):
    """A read on a reader whose ``read_view()`` block is still open: the
    view's frame stays held (and unconsumed); leave the block first."""


class Interrupted(MyceliumError, InterruptedError):
    """A wait of the C core was interrupted (only seen by direct callers of
    the core: the Python API resumes its waits)."""


class ChannelNotFound(MyceliumError, FileNotFoundError):
    """No channel of that name exists."""


class ChannelExists(MyceliumError, FileExistsError):
    """A channel of that name already exists (create=True)."""


class FormatError(MyceliumError):
    """The shared-memory object is not a channel of a format this code reads."""


class CorruptChannel(MyceliumError):
    """The channel's shared state breaks the format (a bad frame length, say)."""


class Full(MyceliumError):
    """A write found no room in the ring before its timeout.

    Raised by a writer, the message says which channel, how large the frame
    was (payload and ring bytes), the timeout, how full the ring is and
    whether a live reader is attached; the same facts are attributes
    (None when unknown, as for a ``Full`` raised by the bus's own queues).
    """

    def __init__(
        self,
        *args: Any,
        channel: Optional[str] = None,
        payload_bytes: Optional[int] = None,
        frame_bytes: Optional[int] = None,
        timeout: Optional[float] = None,
        reader_pid: Optional[int] = None,
        reader_alive: Optional[bool] = None,
    ) -> None:
        super().__init__(*args)
        self.channel = channel
        self.payload_bytes = payload_bytes
        self.frame_bytes = frame_bytes
        self.timeout = timeout
        #: The attached reader's pid (0: none attached), as inspect() saw it.
        self.reader_pid = reader_pid
        self.reader_alive = reader_alive


class TooManyWriters(MyceliumError):
    """Every writer slot of the channel holds a live writer (one slot per writing thread)."""


class ReaderBusy(MyceliumError):
    """A live reader is already attached to the channel (or, on a broadcast
    channel, holds the cursor of that name)."""


class TooManyReaders(MyceliumError):
    """Every cursor slot of a broadcast channel holds a reader (or a durable
    cursor: ``forget_cursor`` frees one), or a channel was asked for more
    readers than the header's cursor table has slots."""


class Lapped(MyceliumError):
    """A lossy (or untethered) reader's ``read_view()`` frame was overwritten
    by writers while the block held it: what was read through the view is not
    reliable.  The reader resumes past the loss (counted in ``lost``)."""


class SchemaMismatch(MyceliumError):
    """The two sides of a channel or connection use different schemas."""


class DecodeError(MyceliumError, ValueError):
    """Bytes do not decode as a message of the schema."""


class SchemaError(MyceliumError, ValueError):
    """A message schema is invalid; the text names the message and the field."""


class PayloadError(DecodeError):
    """A payload breaks the message encoding; ``kind`` names the defect.

    ``kind`` is one of ``short``, ``length``, ``trailing``, ``utf8``, ``bool``
    and ``unknown_type`` (docs/FORMAT.md (Part 2), "Decoding errors").
    """

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class ChannelClosed(MyceliumError, ValueError):
    """The writer or reader was used after close()."""


class ForkedHandle(ChannelClosed):
    """A writer or reader was used in a process forked after it was opened.

    The handle belongs to the parent: the child's copy refuses every write
    and read (and never touches the parent's writer slots, reader ownership
    or held frame), so the parent keeps working.  Open a new ShmWriter or
    ShmReader in the child instead.  A ``ChannelClosed`` (the child's copy
    is closed to it), so ``except ChannelClosed`` catches it too."""


class FrameAbandoned(MyceliumError):
    """An operator force-unblocked this frame while its writer was stalled
    (:func:`mycelium_shm.force_unblock`, ``mycelium-shm unblock``): it was
    dropped, and no byte of it was delivered."""

    #: From ``write_many``: how many frames of the call were written before
    #: this one was dropped (see :func:`batch_failed`); None otherwise.
    written: Optional[int] = None


def batch_failed(exc: BaseException, written: int, total: int) -> BaseException:
    """Record on ``exc`` that a ``write_many`` of ``total`` frames failed after
    writing the first ``written``: sets ``exc.written`` and ends the message
    with "(k of n frames were written)".  Calling it again replaces the
    earlier figures (a caller that wrote frames before the failing call
    corrects them).  Returns ``exc``."""
    exc.written = written  # type: ignore[attr-defined]
    state = exc.__dict__
    if "_batch_args" not in state:
        state["_batch_args"] = exc.args
    base = state["_batch_args"]
    note = f"{written} of {total} frames were written"
    if not base:
        exc.args = (note,)
    elif len(base) == 1 and isinstance(base[0], str):
        exc.args = (f"{base[0]} ({note})",)
    elif hasattr(exc, "add_note"):  # e.g. OSError(errno, text): Python 3.11+
        exc.add_note(note)
    return exc
