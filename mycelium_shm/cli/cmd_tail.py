"""``mycelium-shm tail NAME``: print frames as they pass, without touching the reader.

The channel is mapped read-only (see :mod:`.rawview`), so the real reader
keeps every frame.  The reader never erases what it consumed, so ``tail``
sees every frame as long as it keeps within one ring of the writers; frames
the writers overwrite before ``tail`` could copy them are counted as missed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional

from ..errors import DecodeError, SchemaMismatch
from ..protocol import Schema
from ._common import CliError, channel_name, emit_json
from .cmd_stat import _non_negative_int, _positive_int
from .rawview import Follower, RawChannel, TailFrame

__all__ = ["add_parser", "run"]

_IDLE_MIN_S = 0.0005
_IDLE_MAX_S = 0.02
# How often an idle tail checks that the channel still exists.
_LINK_CHECK_S = 0.25


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tail",
        help="print a channel's frames without disturbing its reader",
        description="Print frames as writers commit them (decoded with --schema, "
        "else in hex), reading the channel read-only: its reader is not disturbed. "
        "Frames stay in the ring after the reader consumed them, so tail sees them all "
        "while it keeps up; frames the writers overwrite first are counted as missed.",
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
        "--from-start",
        action="store_true",
        help="begin with the oldest frames known to be in the ring: every frame if the "
        "ring has not wrapped yet, else the unread ones (default: only new frames)",
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


def run(args: argparse.Namespace) -> int:
    schema = _load_schema(args.schema)
    with RawChannel(args.name) as channel:
        if schema is not None and channel.schema_digest != schema.digest:
            theirs = (
                f"schema digest {channel.schema_digest[:8].hex()}..."
                if any(channel.schema_digest)
                else "no schema digest"
            )
            raise SchemaMismatch(
                f"channel {args.name!r} has {theirs}, "
                f"{str(args.schema)!r} has {schema.digest[:8].hex()}..."
            )
        follower = Follower(channel, from_start=args.from_start)
        where = "the frames still in the ring" if args.from_start else "new frames"
        print(
            f"tail: following {args.name!r} from position {follower.start} ({where}); "
            "Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        shown = 0
        interrupted = removed = False
        idle = _IDLE_MIN_S
        next_check = time.monotonic() + _LINK_CHECK_S
        try:
            while args.count is None or shown < args.count:
                limit = 256 if args.count is None else min(256, args.count - shown)
                frames = follower.poll(limit)
                if not frames:
                    if time.monotonic() >= next_check:
                        # Nothing more can come once the channel is removed.
                        if not channel.still_linked():
                            removed = True
                            break
                        next_check = time.monotonic() + _LINK_CHECK_S
                    time.sleep(idle)
                    idle = min(idle * 2, _IDLE_MAX_S)
                    continue
                idle = _IDLE_MIN_S
                for frame in frames:
                    _show(frame, schema, args)
                    shown += 1
                sys.stdout.flush()
        except KeyboardInterrupt:
            interrupted = True
        # Frames a Ctrl-C caught between poll() and the screen count as missed.
        missed = follower.missed(shown)
        if args.json:
            emit_json(
                {
                    "summary": {
                        "shown": shown,
                        "missed": missed,
                        "discarded": follower.discarded,
                        "lapped": follower.lapped,
                        "skipped_bytes": follower.skipped_bytes,
                        "start": follower.start,
                        "position": follower.position,
                        "interrupted": interrupted,
                        "removed": removed,
                    }
                }
            )
        if removed:
            print(f"tail: channel {args.name!r} was removed", file=sys.stderr)
        lapped = (
            f"; lapped {follower.lapped} time{'s' if follower.lapped != 1 else ''}"
            if follower.lapped
            else ""
        )
        print(
            f"tail: {shown} frame{'s' if shown != 1 else ''} shown, {missed} missed "
            f"(overwritten by writers before tail could copy them{lapped})",
            file=sys.stderr,
            flush=True,
        )
    return 130 if interrupted else 0
