"""The exception family of mycelium-shm.

Every error the package raises on purpose derives from :class:`MyceliumError`,
so ``except MyceliumError`` catches them all.  Where a builtin exception says
the same thing, it is a parent too (``ChannelNotFound`` is a
``FileNotFoundError``), so code written against the standard library keeps
working.
"""

from __future__ import annotations

__all__ = [
    "ChannelClosed",
    "ChannelExists",
    "ChannelNotFound",
    "CorruptChannel",
    "DecodeError",
    "FormatError",
    "FrameAbandoned",
    "Full",
    "InvalidName",
    "MyceliumError",
    "ReaderBusy",
    "SchemaMismatch",
]


class MyceliumError(Exception):
    """Root of every error raised by mycelium-shm."""


class InvalidName(MyceliumError, ValueError):
    """A channel name is empty, too long, or holds '/', '..' or control characters."""


class ChannelNotFound(MyceliumError, FileNotFoundError):
    """No channel of that name exists."""


class ChannelExists(MyceliumError, FileExistsError):
    """A channel of that name already exists (create=True)."""


class FormatError(MyceliumError):
    """The shared-memory object is not a channel of a format this code reads."""


class CorruptChannel(MyceliumError):
    """The channel's shared state breaks the format (a bad frame length, say)."""


class Full(MyceliumError):
    """A write found no room in the ring before its timeout."""


class ReaderBusy(MyceliumError):
    """A live reader is already attached to the channel."""


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


class FrameAbandoned(MyceliumError):
    """The reader dropped this writer's frame: the writer stalled past the stuck timeout."""
