"""``mycelium-shm unblock NAME``: revoke the frame of a stalled writer that holds the reader.

A live writer stopped between reserving a frame and committing it (SIGSTOP,
a debugger, a thread that hangs) holds the channel's reader: the reader
waits for that frame, as it must for a live writer, and ``ls``/``stat``
show the stall.  ``unblock`` is the operator's way out
(:func:`mycelium_shm.force_unblock`): the frame is revoked, the reader skips
it at once, and the writer's commit fails with ``FrameAbandoned``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..channel import force_unblock, inspect
from ..errors import ReaderBusy
from ._common import CliError, channel_name, emit_json

__all__ = ["add_parser", "run"]

_DESCRIPTION = (
    "Revoke the unfinished frame that holds the reader of channel NAME: the frame "
    "of a live writer stalled between reserving and committing it (ls and stat show "
    "'stalled: writer PID for N s').  The reader skips the frame at once and goes on "
    "with the next one.  The stalled writer, when it runs again, gets FrameAbandoned "
    "from its commit, and none of that frame's bytes are ever delivered to a reader.  "
    "Writers do not reuse the frame's space until its writer has returned or died.  "
    "Fails (exit status 1, one line) if the reader is not held by such a frame, or if "
    "the frame cannot be revoked yet: its writer stopped before writing the frame "
    "header, or an earlier revoked frame is still held."
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "unblock",
        help="revoke a stalled writer's frame that holds the reader (the writer gets "
        "FrameAbandoned)",
        description=_DESCRIPTION,
    )
    p.add_argument("name", metavar="NAME", type=channel_name)
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    name: str = args.name
    try:
        pid, position = force_unblock(name)
    except (ValueError, ReaderBusy) as exc:
        # ValueError: the reader is not held by a claim; ReaderBusy: it is,
        # but the claim cannot be revoked now.
        held = inspect(name)
        if held.hold_position is not None and held.hold_position == held.stats["head"]:
            raise CliError(
                f"nothing to unblock: the frame at position {held.hold_position} of channel "
                f"{name!r} is already revoked; the reader skips it on its next read"
            ) from None
        what = "nothing to unblock" if isinstance(exc, ValueError) else "cannot unblock yet"
        raise CliError(f"{what}: {exc}") from None
    if args.json:
        emit_json({"name": name, "writer_pid": pid or None, "position": position})
        return 0
    whose = f"writer {pid}" if pid else "a writer"
    print(
        f"unblocked {name!r}: revoked the frame of {whose} at position {position}; "
        "the reader skips it, the writer's commit will raise FrameAbandoned "
        "and none of its bytes are delivered"
    )
    return 0
