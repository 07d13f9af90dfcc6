"""``mycelium-shm tail NAME``: print frames as they pass, without slowing anyone.

A single-reader channel is mapped read-only (see :mod:`.rawview`), so the
real reader keeps every frame.  The reader never erases what it consumed, so
``tail`` sees every frame as long as it keeps within one ring of the
writers; frames the writers overwrite before ``tail`` could copy them are
counted as missed.

On a broadcast channel ``tail`` is a reader of its own: an anonymous
*lossy* cursor, which never slows writers.  It sees every frame while it
keeps up; when writers lap it, it prints a line saying exactly how many
frames it missed (the growth of the cursor's ``lost`` count) and goes on.
The cursor is freed when ``tail`` ends (Ctrl-C, SIGTERM, ``--count``,
``--timeout``, the channel removed).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Optional

from ..errors import DecodeError, SchemaMismatch, TooManyReaders
from ..protocol import Schema
from ..reader import ShmReader
from ._common import CliError, channel_name, emit_json, positive_float
from .cmd_stat import _non_negative_int, _positive_int
from .rawview import Follower, RawChannel, TailFrame, align16

__all__ = ["add_parser", "run"]

_IDLE_MIN_S = 0.0005
_IDLE_MAX_S = 0.02
# How often an idle tail checks that the channel still exists.
_LINK_CHECK_S = 0.25


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tail",
        help="print a channel's frames without disturbing its readers or slowing writers",
        description="Print frames as writers commit them (decoded with --schema, "
        "else in hex).  A single-reader channel is read read-only: its reader is not "
        "disturbed.  Frames stay in the ring after the reader consumed them, so tail sees "
        "them all while it keeps up; frames the writers overwrite first are counted as "
        "missed.  On a broadcast channel tail attaches an anonymous lossy cursor (it takes "
        "one reader slot while it runs, and never slows writers): it sees every frame while "
        "it keeps up, and when writers lap it prints how many frames it missed, then goes on.",
    )
    p.add_argument("name", metavar="NAME", type=channel_name)
    p.add_argument(
        "--schema",
        type=Path,
        metavar="FILE",
        help="decode with this schema (TOML) (default: show payloads in hex)",
    )
    p.add_argument(
        "--count",
        type=_positive_int,
        metavar="N",
        help="stop after N frames (default: until Ctrl-C)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help="stop when no frame has come for S seconds (default: wait forever)",
    )
    p.add_argument(
        "--from-start",
        action="store_true",
        help="begin with the oldest frames known to be in the ring: every frame if the "
        "ring has not wrapped yet, else the unread ones; on a broadcast channel the oldest "
        "frame writers still keep (default: only new frames)",
    )
    p.add_argument(
        "--max-bytes",
        type=_non_negative_int,
        default=64,
        metavar="N",
        help="hex bytes shown per frame (default 64, 0 = all)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per frame, then a summary")
    p.set_defaults(run=run)


def _load_schema(path: Optional[Path]) -> Optional[Schema]:
    if path is None:
        return None
    try:
        return Schema.load(path)
    except OSError as exc:
        raise CliError(f"cannot read schema {str(path)!r}: {exc.strerror or exc}") from None
    except ValueError as exc:  # SchemaError, TOML errors
        raise CliError(f"schema {str(path)!r}: {exc}") from None


def _plain(schema: Schema, value: Any) -> Any:
    """A decoded value as JSON data: bytes in hex, nested messages as objects."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(schema, v) for v in value]
    if type(value) in schema.classes:
        return _fields(schema, value)
    return value


def _fields(schema: Schema, msg: Any) -> dict[str, Any]:
    definition = schema.message_def(type(msg))
    return {f.name: _plain(schema, getattr(msg, f.name)) for f in definition.fields}


def _hex(payload: bytes, limit: int) -> str:
    if limit <= 0 or len(payload) <= limit:
        return payload.hex(" ")
    return f"{payload[:limit].hex(' ')} ... (+{len(payload) - limit} bytes)"


def _show(frame: TailFrame, schema: Optional[Schema], args: argparse.Namespace) -> None:
    decoded: Any = None
    problem: Optional[str] = None
    if schema is not None:
        try:
            decoded = schema.decode(frame.type_id, frame.payload)
        except DecodeError as exc:
            problem = str(exc)
    if args.json:
        record: dict[str, Any] = {
            "position": frame.position,
            "type_id": frame.type_id,
            "length": len(frame.payload),
            "payload": frame.payload.hex(),
        }
        if decoded is not None:
            record["message"] = type(decoded).__name__
            record["fields"] = _fields(schema, decoded)  # type: ignore[arg-type]
        if problem is not None:
            record["decode_error"] = problem
        # One line per frame; run() flushes after each batch, not each line.
        sys.stdout.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        return
    head = f"{frame.position:>12}  type {frame.type_id:<5} {len(frame.payload):>7} B  "
    if decoded is not None:
        body = repr(decoded)
    elif problem is not None:
        body = f"<cannot decode: {problem}> {_hex(frame.payload, args.max_bytes)}"
    else:
        body = _hex(frame.payload, args.max_bytes)
    sys.stdout.write(head + body + "\n")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where tail runs so that it ends as after Ctrl-C: its
    summary printed, its broadcast cursor freed."""


@contextmanager
def _sigterm_ends_tail() -> Iterator[None]:
    def handler(signum: int, frame: Optional[FrameType]) -> None:
        raise _Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tail run from a library): leave it
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _End:
    """Why and how a tail ended: what goes into its summary."""

    shown: int = 0
    interrupted: bool = False
    terminated: bool = False
    removed: bool = False
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def stop(self, exc: KeyboardInterrupt) -> None:
        self.interrupted = True
        self.terminated = isinstance(exc, _Terminated)

    @property
    def status(self) -> int:
        if self.terminated:
            return 128 + signal.SIGTERM
        return 130 if self.interrupted else 0


def _check_schema(channel: RawChannel, schema: Optional[Schema], args: argparse.Namespace) -> None:
    if schema is None or channel.schema_digest == schema.digest:
        return
    theirs = (
        f"schema digest {channel.schema_digest[:8].hex()}..."
        if any(channel.schema_digest)
        else "no schema digest"
    )
    raise SchemaMismatch(
        f"channel {args.name!r} has {theirs}, {str(args.schema)!r} has {schema.digest[:8].hex()}..."
    )


def run(args: argparse.Namespace) -> int:
    schema = _load_schema(args.schema)
    with RawChannel(args.name) as channel:
        _check_schema(channel, schema, args)
        with _sigterm_ends_tail():
            if channel.reader_slots:
                end = _tail_cursor(channel, schema, args)
            else:
                end = _tail_observer(channel, schema, args)
        if args.json:
            emit_json(
                {
                    "summary": {
                        "shown": end.shown,
                        **end.extra,
                        "interrupted": end.interrupted,
                        "removed": end.removed,
                        "timed_out": end.timed_out,
                    }
                }
            )
        if end.removed:
            print(f"tail: channel {args.name!r} was removed", file=sys.stderr)
        missed, lapped = end.extra["missed"], end.extra["lapped"]
        laps = f"; lapped {lapped} time{'s' if lapped != 1 else ''}" if lapped else ""
        how = "read" if channel.reader_slots else "could copy"
        print(
            f"tail: {end.shown} frame{'s' if end.shown != 1 else ''} shown, {missed} missed "
            f"(overwritten by writers before tail {how} them{laps})",
            file=sys.stderr,
            flush=True,
        )
    return end.status


def _tail_observer(channel: RawChannel, schema: Optional[Schema], args: argparse.Namespace) -> _End:
    """Follow a single-reader channel read-only (:class:`.rawview.Follower`)."""
    follower = Follower(channel, from_start=args.from_start)
    where = "the frames still in the ring" if args.from_start else "new frames"
    print(
        f"tail: following {args.name!r} from position {follower.start} ({where}); Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    end = _End()
    idle = _IDLE_MIN_S
    last_frame = time.monotonic()
    next_check = last_frame + _LINK_CHECK_S
    try:
        while args.count is None or end.shown < args.count:
            limit = 256 if args.count is None else min(256, args.count - end.shown)
            frames = follower.poll(limit)
            if not frames:
                now = time.monotonic()
                if args.timeout is not None and now - last_frame >= args.timeout:
                    end.timed_out = True
                    break
                if now >= next_check:
                    # Nothing more can come once the channel is removed.
                    if not channel.still_linked():
                        end.removed = True
                        break
                    next_check = time.monotonic() + _LINK_CHECK_S
                time.sleep(idle)
                channel.check_size()  # shrunk while we slept: an error, not SIGBUS
                idle = min(idle * 2, _IDLE_MAX_S)
                continue
            idle = _IDLE_MIN_S
            last_frame = time.monotonic()
            for frame in frames:
                _show(frame, schema, args)
                end.shown += 1
            sys.stdout.flush()
    except KeyboardInterrupt as exc:
        end.stop(exc)
    # Frames a Ctrl-C caught between poll() and the screen count as missed.
    end.extra = {
        "missed": follower.missed(end.shown),
        "discarded": follower.discarded,
        "lapped": follower.lapped,
        "skipped_bytes": follower.skipped_bytes,
        "start": follower.start,
        "position": follower.position,
    }
    return end


def _attach_lossy(args: argparse.Namespace) -> ShmReader[Any]:
    """tail's own reader on a broadcast channel: an anonymous lossy cursor.

    ``trust_foreign``: the operator names the channel on purpose (as for
    ``unblock``), and a lossy cursor cannot hold writers back."""
    try:
        return ShmReader(
            args.name,
            policy="lossy",
            start="oldest" if args.from_start else "tail",
            trust_foreign=True,
        )
    except TooManyReaders as exc:
        raise CliError(f"tail cannot attach its lossy reader: {exc}") from None


def _show_gap(missed: int, position: int, laps: int, args: argparse.Namespace) -> None:
    """The line where writers lapped tail: exactly how many frames it missed there."""
    if args.json:
        gap = {"missed": missed, "position": position, "laps": laps}
        sys.stdout.write(json.dumps({"lapped": gap}, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(
            f"-- lapped: missed {missed} frame{'s' if missed != 1 else ''} "
            f"(writers overwrote them before tail read them); going on at position "
            f"{position} --\n"
        )


def _tail_cursor(channel: RawChannel, schema: Optional[Schema], args: argparse.Namespace) -> _End:
    """Read a broadcast channel through an anonymous lossy cursor, freed at the end."""
    with _attach_lossy(args) as reader:
        first = reader.cursor_info()
        slots = channel.reader_slots
        lost_at_start, laps_at_start = first["lost"], first["laps"]
        where = "the oldest frame writers keep" if args.from_start else "new frames"
        print(
            f"tail: following {args.name!r} as a lossy reader (anonymous cursor in slot "
            f"{first['slot']}; the channel has {slots} reader slot{'s' if slots != 1 else ''}) "
            f"from position "
            f"{first['position']} ({where}); Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        end = _End()
        lost = lost_at_start
        last_frame = time.monotonic()
        try:
            while args.count is None or end.shown < args.count:
                frame = reader.try_read()
                if frame is None:
                    sys.stdout.flush()
                    wait = _LINK_CHECK_S
                    if args.timeout is not None:
                        left = args.timeout - (time.monotonic() - last_frame)
                        if left <= 0:
                            end.timed_out = True
                            break
                        wait = min(wait, left)
                    frame = reader.read(timeout=wait)
                    if frame is None:
                        # Nothing more can come once the channel is removed.
                        if not channel.still_linked():
                            end.removed = True
                            break
                        continue
                last_frame = time.monotonic()
                cursor = reader.cursor_info()
                # The cursor is past this frame; a lap, if any, came before it.
                position = cursor["position"] - align16(16 + len(frame.payload))
                if cursor["lost"] != lost:
                    _show_gap(cursor["lost"] - lost, position, cursor["laps"], args)
                    lost = cursor["lost"]
                _show(TailFrame(position, frame.type_id, frame.payload), schema, args)
                end.shown += 1
        except KeyboardInterrupt as exc:
            end.stop(exc)
        sys.stdout.flush()
        last = reader.cursor_info()
        # Frames lost to laps, and any a Ctrl-C caught between read and screen
        # (the cursor counts every frame it consumed).
        unshown = last["frames_read"] - first["frames_read"] - end.shown
        end.extra = {
            "missed": last["lost"] - lost_at_start + unshown,
            "lapped": last["laps"] - laps_at_start,
            "start": first["position"],
            "position": last["position"],
            "cursor": {"slot": first["slot"], "policy": first["policy"]},
        }
    return end
