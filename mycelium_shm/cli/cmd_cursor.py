"""``mycelium-shm cursor ls|rm``: the readers' cursors of a broadcast channel.

``cursor ls NAME`` lists every cursor (a reader attached now, or a durable
one whose reader left or died) with its policy, position, lag and counters;
``cursor rm NAME CURSOR`` forgets a durable cursor no live reader holds, so
writers stop keeping frames for it and its slot is free
(:func:`mycelium_shm.forget_cursor`).  ``ls`` and ``stat`` show the same
table under a broadcast channel; the helpers here draw it for all three.
"""

from __future__ import annotations

import argparse
from typing import Any, Optional

from ..channel import ChannelInfo, cursors, display_name, forget_cursor, inspect
from ..errors import ChannelNotFound, ReaderBusy
from ._common import CliError, channel_name, emit_json, format_bytes, format_pid, render_table

__all__ = [
    "CURSOR_HEADERS",
    "add_parser",
    "cursor_json",
    "cursor_notes",
    "cursor_row",
    "cursor_state",
    "cursor_table",
    "reader_cell",
]

#: Columns of a cursor table (``ls``, ``stat``, ``cursor ls``).
CURSOR_HEADERS = (
    "CURSOR",
    "POLICY",
    "TETHER",
    "POSITION",
    "LAG",
    "READ",
    "LOST",
    "LAPS",
    "UNTETHERS",
    "PID",
    "STATE",
)

ANONYMOUS = "(anonymous)"


def cursor_state(cursor: dict[str, Any]) -> str:
    """``alive`` (its reader runs), ``dead`` (its reader died without closing) or
    ``detached`` (a durable cursor whose reader closed: it waits for the next)."""
    if cursor["pid"] == 0:
        return "detached"
    return "alive" if cursor["alive"] else "dead"


def cursor_json(cursor: dict[str, Any], capacity: int) -> dict[str, Any]:
    """One cursor (as :func:`mycelium_shm.cursors` gives it) as JSON data:
    ``name`` is null for an anonymous cursor, ``pid`` null when detached,
    ``state`` as :func:`cursor_state`, ``lag_fraction`` the lag over the
    ring's capacity."""
    return {
        "name": cursor["name"] or None,
        "slot": cursor["slot"],
        "policy": cursor["policy"],
        "durable": cursor["durable"],
        "tethered": cursor["tethered"],
        "pid": cursor["pid"] or None,
        "alive": cursor["alive"],
        "state": cursor_state(cursor),
        "position": cursor["position"],
        "lag": cursor["lag"],
        "lag_fraction": cursor["lag"] / capacity if capacity else 0.0,
        "frames_read": cursor["frames_read"],
        "bytes_read": cursor["bytes_read"],
        "lost": cursor["lost"],
        "laps": cursor["laps"],
        "untethers": cursor["untethers"],
        "attached_ns": cursor["attached_ns"],
    }


def _tether(cursor: dict[str, Any]) -> str:
    # A lossy cursor never holds writers back: "untethered" would read as an event.
    if cursor["policy"] != "tethered":
        return "-"
    return "tethered" if cursor["tethered"] else "untethered"


def cursor_row(
    cursor: dict[str, Any], capacity: int, read_rate: Optional[float] = None
) -> list[str]:
    """A cursor as a row under :data:`CURSOR_HEADERS`; with ``read_rate``
    (frames/s) the READ cell ends with it."""
    lag = cursor["lag"]
    read = str(cursor["frames_read"])
    if read_rate is not None:
        read += f" (+{read_rate:.0f}/s)" if read_rate < 1000 else f" (+{read_rate / 1e3:.3g}k/s)"
    return [
        cursor["name"] or ANONYMOUS,
        cursor["policy"],
        _tether(cursor),
        str(cursor["position"]),
        f"{format_bytes(lag)} ({100.0 * lag / capacity if capacity else 0.0:.1f}%)",
        read,
        str(cursor["lost"]),
        str(cursor["laps"]),
        str(cursor["untethers"]),
        format_pid(cursor["pid"], cursor["alive"]) if cursor["pid"] else "-",
        cursor_state(cursor),
    ]


def cursor_table(
    info: ChannelInfo, indent: str = "  ", read_rates: Optional[list[float]] = None
) -> list[str]:
    """A broadcast channel's cursors: a title line, then the table (indented);
    ``read_rates`` one per cursor, as :func:`cursor_row`."""
    used = len(info.cursors)
    title = (
        f"{display_name(info.name)}: broadcast, {used} of {info.reader_slots} reader "
        f"slot{'s' if info.reader_slots != 1 else ''} in use"
    )
    if not info.cursors:
        return [f"{title} (no reader)"]
    rows = [
        cursor_row(c, info.capacity, None if read_rates is None else read_rates[i])
        for i, c in enumerate(info.cursors)
    ]
    table = render_table(CURSOR_HEADERS, rows).splitlines()
    return [title, *(indent + line for line in table)]


def reader_cell(info: ChannelInfo) -> str:
    """The READER cell of ``ls`` and the reader field of ``stat``: the reader's
    pid, or for a broadcast channel how many of its cursor slots are in use."""
    if info.reader_slots:
        return f"{len(info.cursors)}/{info.reader_slots} cursors"
    return format_pid(info.reader_pid, info.reader_alive)


def cursor_notes(info: ChannelInfo) -> list[str]:
    """Lines about cursors that hold a slot without a reader, or dead readers."""
    notes = []
    for c in info.cursors:
        state = cursor_state(c)
        if state == "dead" and c["durable"]:
            notes.append(
                f"cursor {c['name']!r}: its reader {c['pid']} died; the next reader of that "
                "name resumes it (mycelium-shm cursor rm frees it)"
            )
        elif state == "dead":
            notes.append(
                f"an anonymous cursor of dead reader {c['pid']} (slot {c['slot']}): "
                "its slot is free for the next reader"
            )
    return notes


# -- the subcommand ---------------------------------------------------------------


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "cursor",
        help="list or forget the readers' cursors of a broadcast channel",
        description="The cursors of a broadcast channel (made with readers=N): one per "
        "reader attached now, plus the durable (named) cursors whose reader left or died.",
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    ls = verbs.add_parser(
        "ls",
        help="list the cursors: policy, position, lag, counters, reader and its state",
        description="List the cursors of broadcast channel NAME: name (or (anonymous)), "
        "policy, tethered or untethered, position, lag (bytes not yet read, and their share "
        "of the ring), frames read, frames lost when writers lapped it, laps, times "
        "writers untethered it, the reader's pid and its state (alive, dead, or detached: "
        "a durable cursor waiting for its next reader).",
    )
    ls.add_argument("name", metavar="NAME", type=channel_name)
    ls.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    ls.set_defaults(run=run_ls)
    rm = verbs.add_parser(
        "rm",
        help="forget a durable cursor no live reader holds (frees its slot)",
        description="Forget the durable cursor CURSOR of broadcast channel NAME: writers "
        "stop keeping frames for it and its slot is free for another reader.  The next "
        "reader of that name starts afresh.  Fails (one line, exit status 1) while a live "
        "reader holds the cursor, or if the channel has no cursor of that name.",
    )
    rm.add_argument("name", metavar="NAME", type=channel_name)
    rm.add_argument("cursor", metavar="CURSOR", help="the cursor's name")
    rm.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    rm.set_defaults(run=run_rm)
    p.set_defaults(run=_no_verb)


def _no_verb(args: argparse.Namespace) -> int:
    raise CliError("cursor: a VERB is required: ls or rm (see cursor --help)", 2)


def _broadcast(name: str) -> ChannelInfo:
    info = inspect(name)
    if not info.reader_slots:
        raise CliError(
            f"channel {name!r} is a single-reader channel: it has no cursors "
            "(ls and stat show its reader)"
        )
    return info


def run_ls(args: argparse.Namespace) -> int:
    info = _broadcast(args.name)
    if args.json:
        emit_json(
            {
                "name": display_name(info.name),
                "capacity": info.capacity,
                "reader_slots": info.reader_slots,
                "cursors": [cursor_json(c, info.capacity) for c in info.cursors],
            }
        )
        return 0
    print("\n".join(cursor_table(info, indent="")))
    notes = cursor_notes(info)
    if notes:
        print()
        print("\n".join(notes))
    return 0


def _named(name: str, cursor: str) -> Optional[dict[str, Any]]:
    return next((c for c in cursors(name) if c["durable"] and c["name"] == cursor), None)


def run_rm(args: argparse.Namespace) -> int:
    name: str = args.name
    cursor: str = args.cursor
    info = _broadcast(name)
    before = _named(name, cursor)
    try:
        forget_cursor(name, cursor)
    except ReaderBusy:
        held = _named(name, cursor)
        whose = f"live reader {held['pid']}" if held and held["pid"] else "a live reader"
        raise CliError(
            f"cursor {cursor!r} of channel {name!r} is held by {whose}: stop that reader "
            "first (it keeps the cursor while it runs)"
        ) from None
    except ChannelNotFound:
        known = [c["name"] for c in info.cursors if c["durable"]]
        listed = ", ".join(repr(k) for k in known) if known else "none"
        raise CliError(
            f"channel {name!r} has no durable cursor named {cursor!r} (durable cursors: "
            f"{listed}; anonymous ones go with their reader)"
        ) from None
    if args.json:
        emit_json(
            {
                "name": name,
                "cursor": cursor,
                "forgotten": True,
                "position": None if before is None else before["position"],
                "lag": None if before is None else before["lag"],
            }
        )
        return 0
    where = (
        ""
        if before is None
        else f" (it was at position {before['position']}, "
        + (f"{format_bytes(before['lag'])} behind)")
    )
    print(
        f"forgot cursor {cursor!r} of {name!r}{where}: writers no longer keep frames "
        "for it and its slot is free"
    )
    return 0
