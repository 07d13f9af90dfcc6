"""Channel-level operations that need no writer or reader: names, removal, inspection."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any, Optional

from ._handle import cursor_dict, stats_dict
from ._native import check_bool, check_cursor, encode_name, ffi, last_error, lib, raise_for
from .errors import ChannelNotFound

__all__ = [
    "ChannelInfo",
    "check_name",
    "cursors",
    "display_name",
    "force_unblock",
    "forget_cursor",
    "inspect",
    "list_channels",
    "object_kind",
    "object_path",
    "register_cursor",
    "unlink",
]

#: The channel format this library reads and writes (docs/FORMAT.md).
FORMAT_VERSION: int = lib.MYC_FORMAT_VERSION
#: Bytes of the header in front of every frame's payload.
FRAME_HEADER_SIZE: int = lib.MYC_FRAME_HEADER_SIZE
#: Every frame starts at a multiple of this many ring bytes.
FRAME_ALIGNMENT: int = lib.MYC_FRAME_ALIGNMENT


def frame_bytes(payload_len: int) -> int:
    """Ring bytes a frame with ``payload_len`` payload bytes occupies."""
    return -(-(FRAME_HEADER_SIZE + payload_len) // FRAME_ALIGNMENT) * FRAME_ALIGNMENT


SHM_DIR = "/dev/shm"
OBJECT_PREFIX = "mycelium."


def check_name(name: str) -> None:
    """Raise ``InvalidName`` unless ``name`` can name a channel."""
    rc = lib.myc_name_check(encode_name(name))
    if rc != lib.MYC_OK:
        raise_for(rc)


def object_path(name: str) -> str:
    """Where the channel lives on Linux: /dev/shm/mycelium.<name>."""
    check_name(name)
    return f"{SHM_DIR}/{OBJECT_PREFIX}{name}"


def unlink(name: str, missing_ok: bool = False) -> None:
    """Remove channel ``name``.  Attached processes keep their mapping."""
    raw = encode_name(name)
    missing_ok = check_bool(missing_ok, "missing_ok")
    rc = lib.myc_unlink(raw)
    if rc == lib.MYC_OK:
        return
    if rc == lib.MYC_ERR_NOT_FOUND and missing_ok:
        return
    raise_for(rc)


def display_name(name: str) -> str:
    """``name`` printable whatever it holds: a name ``os.listdir`` decoded from
    bytes that are not UTF-8 (lone surrogates) shows those bytes as ``\\xff``."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def object_kind(name: str) -> tuple[str, int, int]:
    """What lies at the path of channel ``name`` (any ``list_channels`` entry,
    valid or not), without following a symlink: ``(kind, owner uid, mode
    bits)``; kind is "file", "directory", "symlink", "other", or "missing"
    (uid -1, mode 0)."""
    try:
        st = os.lstat(f"{SHM_DIR}/{OBJECT_PREFIX}{name}")
    except OSError:
        return "missing", -1, 0
    if stat.S_ISREG(st.st_mode):
        kind = "file"
    elif stat.S_ISDIR(st.st_mode):
        kind = "directory"
    elif stat.S_ISLNK(st.st_mode):
        kind = "symlink"
    else:
        kind = "other"
    return kind, st.st_uid, stat.S_IMODE(st.st_mode)


def list_channels() -> list[str]:
    """Names of every channel object in /dev/shm, sorted (not validated: an
    entry may be a directory, a symlink, a foreign file, or a name that is not
    UTF-8, decoded with surrogate escapes; see :func:`display_name`)."""
    try:
        entries = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return []
    return sorted(e[len(OBJECT_PREFIX) :] for e in entries if e.startswith(OBJECT_PREFIX))


@dataclass(frozen=True)
class ChannelInfo:
    """A snapshot of a channel, taken without attaching to it."""

    name: str
    format_version: int
    capacity: int
    max_payload: int
    file_size: int
    schema_digest: bytes
    created_ns: int
    creator_pid: int
    creator_alive: bool
    reader_pid: int
    reader_alive: bool
    writers: list[tuple[int, bool]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    #: A live writer whose unfinished frame holds the reader (0: none), and
    #: since when (CLOCK_REALTIME ns).  See ``force_unblock``.
    stalled_pid: int = 0
    stalled_since_ns: int = 0
    #: Start of a force-unblocked claim whose writer has not returned yet
    #: (writers do not reuse the ring from there), or None.
    hold_position: Optional[int] = None
    #: The object's owner uid and permission bits (-1 and 0 if unknown).
    owner_uid: int = -1
    mode: int = 0
    #: Cursor slots of a broadcast channel (0: a single-reader channel), and
    #: its readers' cursors (see :func:`cursors`).
    reader_slots: int = 0
    cursors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def used_bytes(self) -> int:
        """Bytes claimed by writers and not yet consumed."""
        return self.stats["tail"] - self.stats["head"]

    @property
    def has_schema(self) -> bool:
        return any(self.schema_digest)

    @property
    def any_process_alive(self) -> bool:
        """Whether any registered process (creator, reader, writer) still runs."""
        return self.creator_alive or self.reader_alive or any(alive for _, alive in self.writers)


def inspect(name: str) -> ChannelInfo:
    """Validate the channel's header and read its state; attaches to nothing."""
    out = ffi.new("myc_info *")
    rc = lib.myc_inspect(encode_name(name), out)
    if rc != lib.MYC_OK:
        raise_for(rc)
    writers = [
        (int(out.writer_pids[i]), bool(out.writer_alive[i])) for i in range(out.writer_count)
    ]
    _, owner_uid, mode = object_kind(name)
    return ChannelInfo(
        name=name,
        format_version=int(out.format_version),
        capacity=int(out.stats.capacity),
        max_payload=int(out.stats.max_payload),
        file_size=int(out.file_size),
        schema_digest=bytes(ffi.buffer(out.schema_digest)),
        created_ns=int(out.created_ns),
        creator_pid=int(out.creator_pid),
        creator_alive=bool(out.creator_alive),
        reader_pid=int(out.reader_pid),
        reader_alive=bool(out.reader_alive),
        writers=writers,
        stats=stats_dict(out.stats),
        stalled_pid=int(out.stalled_pid),
        stalled_since_ns=int(out.stalled_since_ns),
        hold_position=None if out.hold_position == _NO_HOLD else int(out.hold_position),
        owner_uid=owner_uid,
        mode=mode,
        reader_slots=int(out.reader_slots),
        cursors=cursors(name) if out.reader_slots else [],
    )


def cursors(name: str) -> list[dict[str, Any]]:
    """The readers' cursors of broadcast channel ``name`` (attaches to
    nothing): for each, ``name`` ("" if anonymous), ``policy``, ``durable``,
    ``tethered``, ``pid`` (0: detached) and ``alive``, ``position``, ``lag``
    (bytes not yet read), ``frames_read``, ``lost``, ``laps``, ``untethers``.
    [] for a single-reader channel."""
    slots = lib.MYC_READER_SLOTS
    out = ffi.new("myc_cursor_info[]", slots)
    count = ffi.new("uint32_t *")
    rc = lib.myc_inspect_cursors(encode_name(name), out, slots, count)
    if rc != lib.MYC_OK:
        raise_for(rc)
    return [cursor_dict(out[i]) for i in range(min(int(count[0]), slots))]


def register_cursor(name: str, cursor: str) -> None:
    """Create the durable, tethered cursor ``cursor`` of broadcast channel
    ``name`` at its tail, held by nobody: writers keep every later frame for
    a reader that attaches it later.  This is what attaching it and closing
    would leave, without the moment in which this process holds it (a
    reader attaching then would get ``ReaderBusy``).  Nothing happens if it
    exists already, held or not; ``TooManyReaders`` if no slot is free;
    ``ValueError`` on a single-reader channel or a bad name."""
    _cursor_call(lib.myc_cursor_register, name, cursor)


def forget_cursor(name: str, cursor: str) -> None:
    """Free the durable cursor ``cursor`` of broadcast channel ``name``:
    writers stop keeping frames for it and its slot is free.  ``ReaderBusy``
    while a live reader holds it; ``ChannelNotFound`` if there is no such
    cursor (or channel)."""
    _cursor_call(lib.myc_cursor_forget, name, cursor)


def _cursor_call(call: Any, name: str, cursor: str) -> None:
    """``call(name, cursor)`` of the C core, its error raised."""
    raw = check_cursor(cursor)
    if raw == ffi.NULL:
        raise TypeError("cursor must be a str")
    rc = call(encode_name(name), raw)
    if rc != lib.MYC_OK:
        raise_for(rc)


_NO_HOLD = (1 << 64) - 1


def force_unblock(name: str) -> tuple[int, int]:
    """Revoke the unfinished frame of a live, stalled writer that holds the reader.

    The reader skips it at once; the writer's commit then raises
    :class:`FrameAbandoned`, and no byte of that frame is ever delivered.
    Returns ``(writer_pid, position)``.  Raises ``ValueError`` when the
    reader is not held by a live writer's frame, and :class:`ReaderBusy` when
    the claim cannot be revoked yet (its writer stopped before writing the
    frame header, or an earlier revoked frame is still held).
    """
    pid = ffi.new("int32_t *")
    position = ffi.new("uint64_t *")
    rc = lib.myc_force_unblock(encode_name(name), pid, position)
    if rc == lib.MYC_ERR_EMPTY:
        raise ValueError(last_error())
    if rc != lib.MYC_OK:
        raise_for(rc)
    return int(pid[0]), int(position[0])


def exists(name: str) -> bool:
    """Whether a channel object of that name exists (it may still be invalid)."""
    return os.path.exists(object_path(name))


__all__ += ["ChannelNotFound", "exists"]
