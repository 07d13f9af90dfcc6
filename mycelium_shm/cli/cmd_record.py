"""``mycelium-shm record NAME -o FILE``: the channel's frames, with their timing, to a file.

``record`` *is* the channel's reader (a :class:`~mycelium_shm.ShmReader`): it
consumes the frames, so it cannot run beside another live reader.  It stops
on Ctrl-C or SIGTERM, after ``--count`` frames or ``--duration`` seconds, or
when the channel is removed and empty.  Every batch of frames read is written
to the file at once (unbuffered), so a recorder killed at any moment leaves a
file that replays up to its last complete record.  The file format is
docs/FORMAT.md, Part 3 (:mod:`mycelium_shm.record`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Optional

from ..channel import exists, inspect
from ..reader import ShmReader
from ..record import RecordingHeader, RecordingWriter
from ._common import (
    CliError,
    channel_name,
    emit_json,
    format_bytes,
    positive_float,
    positive_int,
)

__all__ = ["add_parser", "run"]

_POLL_S = 0.05
_LINK_CHECK_S = 0.25


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "record",
        help="record a channel's frames to a file (as its reader)",
        description="Read channel NAME as its reader and append every frame, with the time "
        "it arrived, to FILE (format: docs/FORMAT.md, Part 3) until Ctrl-C/SIGTERM, "
        "--count or --duration.  The recorder consumes the frames: no other reader may "
        "run meanwhile.  The file is written as frames come; a killed recorder leaves a "
        "file readable up to its last complete record.",
    )
    p.add_argument("name", metavar="NAME", type=channel_name)
    p.add_argument(
        "-o", "--output", required=True, type=Path, metavar="FILE", help="recording to write"
    )
    p.add_argument(
        "--count",
        type=positive_int,
        metavar="N",
        help="stop after N frames (default: until Ctrl-C/SIGTERM)",
    )
    p.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C/SIGTERM)",
    )
    p.add_argument("--json", action="store_true", help="a JSON summary at the end")
    p.set_defaults(run=run)


class _Stop:
    """SIGINT/SIGTERM only set a flag: the loop ends after the batch in hand is saved."""

    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        self.signal = signum

    def install(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def restore(self) -> None:
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    name: str = args.name
    info = inspect(name)  # ChannelNotFound / FormatError: one line, before a file exists
    stop = _Stop().install()
    try:
        reader = ShmReader(name)
    except BaseException:
        stop.restore()
        raise
    header = RecordingHeader(
        capacity=reader.capacity,
        max_payload=reader.max_payload,
        schema_digest=info.schema_digest,
        start_ns=time.time_ns(),
        channel_format=info.format_version,
    )
    try:
        try:
            out = RecordingWriter(args.output, header)
        except OSError as exc:
            raise CliError(f"cannot write {str(args.output)!r}: {exc.strerror or exc}") from None
        if not args.json:
            print(
                f"record: reading {name!r} into {str(args.output)!r}; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
        start = time.monotonic_ns()
        deadline = None if args.duration is None else start + int(args.duration * 1e9)
        why = "signal"
        next_check = time.monotonic() + _LINK_CHECK_S
        with out:
            while True:
                if stop.signal is not None:
                    why = "signal"
                    break
                if args.count is not None and out.frames >= args.count:
                    why = "count"
                    break
                now = time.monotonic_ns()
                if deadline is not None and now >= deadline:
                    why = "duration"
                    break
                want = 1024 if args.count is None else min(1024, args.count - out.frames)
                wait = _POLL_S if deadline is None else min(_POLL_S, (deadline - now) / 1e9)
                frames = reader.read_many(want, timeout=max(0.0, wait))
                if frames:
                    out.write(time.monotonic_ns() - start, frames)
                    continue
                if time.monotonic() >= next_check:
                    # Nothing more can come once the channel is removed and empty.
                    if not exists(name):
                        why = "removed"
                        break
                    next_check = time.monotonic() + _LINK_CHECK_S
        seconds = (time.monotonic_ns() - start) / 1e9
    finally:
        reader.close()
        stop.restore()
    if args.json:
        emit_json(
            {
                "name": name,
                "file": str(args.output),
                "frames": out.frames,
                "bytes": out.payload_bytes,
                "seconds": seconds,
                "stopped_by": why,
                "capacity": header.capacity,
                "max_payload": header.max_payload,
                "schema_digest": header.schema_digest.hex() if header.has_schema else None,
                "start_ns": header.start_ns,
            }
        )
    else:
        print(
            f"recorded {out.frames} frame{'s' if out.frames != 1 else ''} "
            f"({format_bytes(out.payload_bytes)}) from {name!r} in {seconds:.1f} s "
            f"to {str(args.output)!r} (stopped by {why})",
            flush=True,
        )
    return 0
