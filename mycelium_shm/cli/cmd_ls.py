"""``mycelium-shm ls``: every channel, its fill, counters, processes and age.

Below the table, one line per channel whose reader is held by a stalled
writer (``stalled: writer 1234 for 2.3 s``) or that holds a revoked frame
(see ``mycelium-shm unblock``).  Under a broadcast channel, its cursors: one
row per reader (see ``mycelium-shm cursor ls``)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..channel import ChannelInfo, display_name, inspect, list_channels, object_kind
from ..errors import MyceliumError
from ._common import (
    channel_name,
    emit_json,
    format_age,
    format_bytes,
    format_count,
    format_pid,
    hold_note,
    render_table,
    stall_note,
    stalled_writer,
    unique_writers,
)
from .cmd_cursor import cursor_json, cursor_notes, cursor_table, reader_cell

__all__ = ["add_parser", "describe", "info_dict", "run"]

HEADERS = (
    "NAME",
    "OWNER",
    "MODE",
    "CAPACITY",
    "USED",
    "FILL",
    "WRITTEN",
    "READ",
    "CREATOR",
    "READER",
    "WRITERS",
    "SCHEMA",
    "AGE",
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ls", help="list channels", description="List channels in /dev/shm.")
    p.add_argument(
        "names", nargs="*", metavar="NAME", type=channel_name, help="only these channels"
    )
    p.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    p.set_defaults(run=run)


def describe(name: str) -> tuple[ChannelInfo | None, str | None]:
    """``(info, None)``, or ``(None, error text)`` if the channel cannot be
    inspected: whatever lies in /dev/shm under the prefix (a directory, a
    symlink, a foreign or unreadable file, a name that is not UTF-8) is a
    row with its error, never the end of a listing."""
    try:
        return inspect(name), None
    except (MyceliumError, OSError) as exc:  # one bad channel must not stop a listing
        return None, f"{type(exc).__name__}: {exc}"


def _owner(uid: int) -> str:
    return "-" if uid < 0 else str(uid)


def _mode(mode: int, uid: int) -> str:
    return "-" if uid < 0 else f"0{mode:03o}"


def info_dict(info: ChannelInfo, now_ns: int) -> dict[str, Any]:
    """A channel snapshot as JSON-ready data."""
    s = info.stats
    return {
        "name": display_name(info.name),
        "owner_uid": info.owner_uid,
        "mode": f"0{info.mode:03o}",
        "format_version": info.format_version,
        "capacity": info.capacity,
        "max_payload": info.max_payload,
        "used_bytes": info.used_bytes,
        "fill": info.used_bytes / info.capacity if info.capacity else 0.0,
        "head": s["head"],
        "tail": s["tail"],
        "frames_written": s["frames_written"],
        "frames_read": s["frames_read"],
        "bytes_written": s["bytes_written"],
        "bytes_read": s["bytes_read"],
        "creator": {"pid": info.creator_pid, "alive": info.creator_alive},
        "reader": (
            {"pid": info.reader_pid, "alive": info.reader_alive} if info.reader_pid else None
        ),
        # One entry per process: the registry has a slot per writing thread.
        "writers": [{"pid": pid, "alive": alive} for pid, alive in unique_writers(info.writers)],
        "schema_digest": info.schema_digest.hex() if info.has_schema else None,
        "created_ns": info.created_ns,
        "age_s": max(0.0, (now_ns - info.created_ns) / 1e9),
        "in_use": info.any_process_alive,
        "stalled_writer": stalled_writer(info, now_ns),
        "hold_position": info.hold_position,
        # 0 and [] for a single-reader channel.
        "reader_slots": info.reader_slots,
        "cursors": [cursor_json(c, info.capacity) for c in info.cursors],
    }


def _row(info: ChannelInfo, now_ns: int) -> list[str]:
    s = info.stats
    writers = " ".join(format_pid(p, ok) for p, ok in unique_writers(info.writers)) or "-"
    return [
        display_name(info.name),
        _owner(info.owner_uid),
        _mode(info.mode, info.owner_uid),
        format_bytes(info.capacity),
        format_bytes(info.used_bytes),
        f"{100.0 * info.used_bytes / info.capacity:.1f}%",
        format_count(s["frames_written"]),
        format_count(s["frames_read"]),
        format_pid(info.creator_pid, info.creator_alive),
        reader_cell(info),
        writers,
        info.schema_digest[:8].hex() if info.has_schema else "-",
        format_age((now_ns - info.created_ns) / 1e9),
    ]


def run(args: argparse.Namespace) -> int:
    names = args.names or list_channels()
    now_ns = time.time_ns()
    described = [(name, *describe(name)) for name in names]
    failed = bool(args.names) and any(info is None for _, info, _ in described)
    if args.json:
        emit_json(
            [
                info_dict(info, now_ns) if info is not None else _error_dict(name, error)
                for name, info, error in described
            ]
        )
        return 1 if failed else 0
    if not described:
        print("no channels")
        return 0
    rows = [
        _row(info, now_ns) if info is not None else _error_row(name, error)
        for name, info, error in described
    ]
    print(render_table(HEADERS, rows))
    for _, info, _ in described:
        if info is not None and info.reader_slots:
            print()
            print("\n".join(cursor_table(info)))
    notes = [
        f"{display_name(name)}: {note}"
        for name, info, _ in described
        if info is not None
        for note in (
            stall_note(stalled_writer(info, now_ns)),
            hold_note(info.hold_position),
            *cursor_notes(info),
        )
        if note is not None
    ]
    if notes:
        print()
        print("\n".join(notes))
    return 1 if failed else 0


def _error_dict(name: str, error: str | None) -> dict[str, Any]:
    kind, uid, mode = object_kind(name)
    return {
        "name": display_name(name),
        "kind": kind,
        "owner_uid": uid,
        "mode": f"0{mode:03o}" if uid >= 0 else None,
        "error": error,
    }


def _error_row(name: str, error: str | None) -> list[str]:
    kind, uid, mode = object_kind(name)
    what = "" if kind == "file" else f"{kind}; "
    return [display_name(name), _owner(uid), _mode(mode, uid), f"error: {what}{error}"]
