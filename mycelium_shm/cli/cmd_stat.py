"""``mycelium-shm stat NAME``: live counters and rates of one channel."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..channel import ChannelInfo, inspect
from ._common import (
    channel_name,
    emit_json,
    format_bytes,
    format_count,
    format_pid,
    format_rate,
    hold_note,
    non_negative_int,
    positive_float,
    positive_int,
    stall_note,
    stalled_writer,
    unique_writers,
)

__all__ = ["COUNTERS", "add_parser", "run"]

#: (stats key, label, short key for plain lines, unit)
COUNTERS: tuple[tuple[str, str, str, str], ...] = (
    ("frames_written", "frames written", "written", ""),
    ("frames_read", "frames read", "read", ""),
    ("bytes_written", "bytes written", "wbytes", "B"),
    ("bytes_read", "bytes read", "rbytes", "B"),
    ("full_events", "full events", "full", ""),
    ("write_timeouts", "write timeouts", "timeouts", ""),
    ("unblocks", "unblocks", "unblocks", ""),
    ("padding_frames", "padding frames", "padding", ""),
    ("reader_sleeps", "reader sleeps", "sleeps", ""),
    ("reader_wakes", "reader wakes", "rwakes", ""),
    ("writer_wakes", "writer wakes", "wwakes", ""),
    ("takeovers", "reader takeovers", "takeovers", ""),
)


# Kept under their old names: other modules import them from here.
_positive_float = positive_float
_non_negative_int = non_negative_int
_positive_int = positive_int


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "stat",
        help="live counters and rates of a channel",
        description="Show a channel's counters and their rates, refreshed every interval.",
    )
    p.add_argument("name", metavar="NAME", type=channel_name)
    p.add_argument(
        "--interval", type=_positive_float, default=1.0, metavar="S", help="seconds between samples"
    )
    p.add_argument(
        "--count", type=_positive_int, metavar="N", help="stop after N samples (default: never)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per sample")
    p.set_defaults(run=run)


def _rates(prev: ChannelInfo, cur: ChannelInfo, dt: float) -> dict[str, float]:
    return {key: (cur.stats[key] - prev.stats[key]) / dt for key, *_ in COUNTERS}


def _notes(info: ChannelInfo, now_ns: int) -> list[str]:
    """The stalled writer and the held revoked frame, if any, as lines."""
    notes = (stall_note(stalled_writer(info, now_ns)), hold_note(info.hold_position))
    return [note for note in notes if note is not None]


def _block(info: ChannelInfo, rates: dict[str, float], elapsed: float) -> list[str]:
    used = info.used_bytes
    writers = " ".join(format_pid(p, ok) for p, ok in unique_writers(info.writers)) or "-"
    lines = [
        f"channel {info.name}  capacity {format_bytes(info.capacity)}  "
        f"max payload {format_bytes(info.max_payload)}  t={elapsed:.1f}s",
        f"used {format_bytes(used)} ({100.0 * used / info.capacity:.1f}%)  "
        f"creator {format_pid(info.creator_pid, info.creator_alive)}  "
        f"reader {format_pid(info.reader_pid, info.reader_alive)}  writers {writers}",
        f"{'':18}{'total':>12}  {'rate':>14}",
    ]
    for key, label, _, unit in COUNTERS:
        total = info.stats[key]
        shown = format_bytes(total) if unit == "B" else str(total)
        lines.append(f"{label:18}{shown:>12}  {format_rate(rates[key], unit):>14}")
    lines.extend(_notes(info, time.time_ns()))
    return lines


def _line(info: ChannelInfo, rates: dict[str, float], elapsed: float) -> str:
    used = info.used_bytes
    parts = [f"t={elapsed:.1f}s", f"used={used}({100.0 * used / info.capacity:.1f}%)"]
    for key, _, short, _unit in COUNTERS:
        parts.append(f"{short}={info.stats[key]}(+{format_count(rates[key])}/s)")
    line = " ".join(parts)
    notes = _notes(info, time.time_ns())
    return line if not notes else f"{line}  [{'; '.join(notes)}]"


def run(args: argparse.Namespace) -> int:
    name: str = args.name
    prev = inspect(name)
    start = prev_t = time.monotonic()
    tty = sys.stdout.isatty() and not args.json
    shown_lines = 0
    sample = 0
    while args.count is None or sample < args.count:
        time.sleep(args.interval)
        cur = inspect(name)
        now = time.monotonic()
        rates = _rates(prev, cur, max(now - prev_t, 1e-9))
        elapsed = now - start
        if args.json:
            emit_json(
                {
                    "name": name,
                    "elapsed_s": elapsed,
                    "interval_s": now - prev_t,
                    "capacity": cur.capacity,
                    "used_bytes": cur.used_bytes,
                    "counters": {key: cur.stats[key] for key, *_ in COUNTERS},
                    "rates": rates,
                    "stalled_writer": stalled_writer(cur, time.time_ns()),
                    "hold_position": cur.hold_position,
                }
            )
        elif tty:
            lines = _block(cur, rates, elapsed)
            # Back to the top of the previous block, clear it, draw the new one.
            redraw = f"\x1b[{shown_lines}F\x1b[J" if shown_lines else ""
            sys.stdout.write(redraw + "\n".join(lines) + "\n")
            sys.stdout.flush()
            shown_lines = len(lines)
        else:
            print(_line(cur, rates, elapsed), flush=True)
        prev, prev_t = cur, now
        sample += 1
    return 0
