"""mycelium-shm: shared-memory channels between Python, Rust and OCaml processes.

>>> from mycelium_shm import ShmWriter, ShmReader, unlink
>>> w = ShmWriter("doc-example", create=True, capacity=1 << 16)
>>> r = ShmReader("doc-example")
>>> w.write(7, b"hello")
>>> r.read(timeout=1.0)
Frame(type_id=7, payload=b'hello' [5 bytes])
>>> w.close(); r.close(); unlink("doc-example")
"""

from __future__ import annotations

from .channel import (
    ChannelInfo,
    check_name,
    cursors,
    exists,
    force_unblock,
    forget_cursor,
    inspect,
    list_channels,
    register_cursor,
    unlink,
)
from .errors import (
    ChannelClosed,
    ChannelExists,
    ChannelNotFound,
    ChannelOSError,
    CorruptChannel,
    DecodeError,
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
    PayloadError,
    PermissionDenied,
    ReaderBusy,
    ReadViewOpen,
    SchemaError,
    SchemaMismatch,
    TooManyReaders,
    TooManyWriters,
)
from .frame import Frame, FrameView, FrameViewInUse
from .protocol import Schema, message
from .reader import ShmReader
from .writer import ShmWriter

__version__ = "0.1.0"

__all__ = [
    "ChannelClosed",
    "ChannelExists",
    "ChannelInfo",
    "ChannelNotFound",
    "ChannelOSError",
    "CorruptChannel",
    "DecodeError",
    "ForeignChannel",
    "ForkedHandle",
    "FormatError",
    "Frame",
    "FrameAbandoned",
    "FrameView",
    "FrameViewInUse",
    "Full",
    "HandleBusy",
    "Interrupted",
    "InvalidArgument",
    "InvalidName",
    "Lapped",
    "MyceliumError",
    "PayloadError",
    "PermissionDenied",
    "ReadViewOpen",
    "ReaderBusy",
    "Schema",
    "SchemaError",
    "SchemaMismatch",
    "ShmReader",
    "ShmWriter",
    "TooManyReaders",
    "TooManyWriters",
    "check_name",
    "cursors",
    "exists",
    "force_unblock",
    "forget_cursor",
    "inspect",
    "list_channels",
    "message",
    "register_cursor",
    "unlink",
]
