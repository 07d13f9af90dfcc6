"""``mycelium-shm replay FILE --to NAME``: write a recording's frames into a channel.

The frames go in their recorded order, spaced as they were recorded divided
by ``--speed`` (``max``: as fast as the channel takes them).  A missing
channel is created with the recording's capacity, max payload and schema
digest; an existing one must have the same schema digest (SchemaMismatch
otherwise) and room for the largest frame.  A recording whose last record
is incomplete (its recorder was killed) replays up to the last complete one.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, Optional, Union

from ..channel import exists
from ..errors import ChannelExists
from ..record import RecordingReader
from ..writer import ShmWriter
from ._common import CliError, channel_name, emit_json, format_bytes, positive_float

__all__ = ["add_parser", "parse_speed", "run"]

_BATCH = 256


def parse_speed(text: str) -> Union[float, str]:
    """``max``, or a positive finite factor (1.0 = recorded timing)."""
    if text.strip().lower() == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'max': {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive factor or 'max', not {text}")
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "replay",
        help="write a recording's frames into a channel",
        description="Write the frames of recording FILE (made by 'mycelium-shm record') "
        "into channel NAME, in order, with the recorded spacing divided by --speed "
        "('max': no waiting).  A missing channel is created with the recorded capacity, "
        "max payload and schema digest; an existing one must have the same digest.",
    )
    p.add_argument("file", metavar="FILE", type=Path)
    p.add_argument("--to", required=True, dest="name", metavar="NAME", type=channel_name)
    p.add_argument(
        "--speed",
        type=parse_speed,
        default=1.0,
        metavar="X|max",
        help="timing factor: 2 = twice as fast, max = as fast as possible",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        metavar="S",
        help="fail if the channel has no room for a frame for S seconds "
        "(default: wait as long as it takes)",
    )
    p.add_argument("--json", action="store_true", help="a JSON summary at the end")
    p.set_defaults(run=run)


class _Digest:
    """Just enough of a schema for ShmWriter: the digest to store or check."""

    def __init__(self, digest: bytes) -> None:
        self.digest = digest

    def encode(self, message: Any) -> tuple[int, bytes]:
        raise TypeError("replay writes raw frames")

    def decode(self, type_id: int, payload: Any) -> Any:
        raise TypeError("replay writes raw frames")


def _open(name: str, recording: RecordingReader) -> tuple[ShmWriter, bool]:
    """The writer of channel NAME, created from the recording's header if missing."""
    header = recording.header
    schema = _Digest(header.schema_digest) if header.has_schema else None
    if not exists(name):
        try:
            return (
                ShmWriter(
                    name,
                    create=True,
                    capacity=header.capacity,
                    max_payload=header.max_payload,
                    schema=schema,
                ),
                True,
            )
        except ChannelExists:  # created meanwhile: attach to it as below
            pass
    return ShmWriter(name, schema=schema), False


def run(args: argparse.Namespace) -> int:
    speed = args.speed
    with RecordingReader(args.file) as recording:
        writer, created = _open(args.name, recording)
        frames = 0
        payload_bytes = 0
        last_t = 0
        try:
            start = time.monotonic_ns()
            batch: list[tuple[int, bytes]] = []

            def flush() -> None:
                nonlocal frames, payload_bytes
                if not batch:
                    return
                written = writer.write_many(batch, timeout=args.timeout)
                if written < len(batch):
                    raise CliError(
                        f"channel {args.name!r} had no room for {args.timeout:g} s: "
                        f"{frames + written} frames written"
                    )
                frames += written
                payload_bytes += sum(len(p) for _, p in batch)
                batch.clear()

            for record in recording:
                if len(record.payload) > writer.max_payload:
                    flush()
                    raise CliError(
                        f"a {len(record.payload)}-byte frame does not fit channel "
                        f"{args.name!r} (max payload {writer.max_payload})"
                    )
                last_t = record.t_ns
                if speed != "max":
                    due = start + int(record.t_ns / speed)
                    delay = due - time.monotonic_ns()
                    if delay > 0:
                        flush()
                        time.sleep(delay / 1e9)
                batch.append((record.type_id, record.payload))
                if len(batch) >= _BATCH:
                    flush()
            flush()
            seconds = (time.monotonic_ns() - start) / 1e9
        finally:
            writer.close()
        truncated = recording.truncated
        header = recording.header
    summary: dict[str, Optional[Any]] = {
        "file": str(args.file),
        "to": args.name,
        "created": created,
        "frames": frames,
        "bytes": payload_bytes,
        "seconds": seconds,
        "recorded_seconds": last_t / 1e9,
        "speed": speed,
        "truncated": truncated,
        "schema_digest": header.schema_digest.hex() if header.has_schema else None,
    }
    if args.json:
        emit_json(summary)
    else:
        note = "; the recording ends in an incomplete record (skipped)" if truncated else ""
        print(
            f"replayed {frames} frame{'s' if frames != 1 else ''} ({format_bytes(payload_bytes)}) "
            f"into {args.name!r}{' (created)' if created else ''} in {seconds:.1f} s"
            f"{note}",
            flush=True,
        )
    return 0
