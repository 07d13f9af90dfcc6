"""Channel-level operations that need no writer or reader: names, removal, inspection."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ._handle import stats_dict
from ._native import encode_name, ffi, lib, raise_for
from .errors import ChannelNotFound

__all__ = ["ChannelInfo", "check_name", "inspect", "list_channels", "object_path", "unlink"]

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
    rc = lib.myc_unlink(encode_name(name))
    if rc == lib.MYC_OK:
        return
    if rc == lib.MYC_ERR_NOT_FOUND and missing_ok:
        return
    raise_for(rc)


def list_channels() -> list[str]:
    """Names of every channel object in /dev/shm, sorted (not validated)."""
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
    )


def exists(name: str) -> bool:
    """Whether a channel object of that name exists (it may still be invalid)."""
    return os.path.exists(object_path(name))


__all__ += ["ChannelNotFound", "exists"]
