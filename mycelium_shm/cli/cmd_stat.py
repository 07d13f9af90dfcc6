"""``mycelium-shm stat NAME``: live counters and rates of one channel.

On a broadcast channel every sample also shows each reader's cursor (its
policy, position, lag, frames read and their rate, lost, laps, untethers,
pid and state), as ``mycelium-shm cursor ls`` does."""

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
from .cmd_cursor import cursor_json, cursor_notes, cursor_row, cursor_table, reader_cell

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


def _cursor_key(cursor: dict[str, Any]) -> tuple[int, str, int]:
    # The same cursor in two samples: its slot, name and attach time.
    return cursor["slot"], cursor["name"], cursor["attached_ns"]


def _read_rates(prev: ChannelInfo, cur: ChannelInfo, dt: float) -> list[float]:
    """Frames read per second by each of ``cur``'s cursors since ``prev`` (a
    cursor new since then counts from 0)."""
    before = {_cursor_key(c): c["frames_read"] for c in prev.cursors}
    return [max(0, c["frames_read"] - before.get(_cursor_key(c), 0)) / dt for c in cur.cursors]


def _notes(info: ChannelInfo, now_ns: int) -> list[str]:
    """The stalled writer, the held revoked frame and dead readers' cursors, if
    any, as lines."""
    notes = (stall_note(stalled_writer(info, now_ns)), hold_note(info.hold_position))
    return [note for note in notes if note is not None] + cursor_notes(info)


def _block(
    info: ChannelInfo, rates: dict[str, float], elapsed: float, read_rates: list[float]
) -> list[str]:
    used = info.used_bytes
    writers = " ".join(format_pid(p, ok) for p, ok in unique_writers(info.writers)) or "-"
    lines = [
        f"channel {info.name}  capacity {format_bytes(info.capacity)}  "
        f"max payload {format_bytes(info.max_payload)}  t={elapsed:.1f}s",
        f"used {format_bytes(used)} ({100.0 * used / info.capacity:.1f}%)  "
        f"creator {format_pid(info.creator_pid, info.creator_alive)}  "
        f"reader {reader_cell(info)}  writers {writers}",
        f"{'':18}{'total':>12}  {'rate':>14}",
    ]
    for key, label, _, unit in COUNTERS:
        total = info.stats[key]
        shown = format_bytes(total) if unit == "B" else str(total)
        lines.append(f"{label:18}{shown:>12}  {format_rate(rates[key], unit):>14}")
    if info.reader_slots:
        lines.extend(cursor_table(info, read_rates=read_rates))
    lines.extend(_notes(info, time.time_ns()))
    return lines


def _line(
    info: ChannelInfo, rates: dict[str, float], elapsed: float, read_rates: list[float]
) -> str:
    """One sample as one line; on a broadcast channel followed by one line per
    cursor (``  cursor NAME policy=... lag=...``)."""
    used = info.used_bytes
    parts = [f"t={elapsed:.1f}s", f"used={used}({100.0 * used / info.capacity:.1f}%)"]
    for key, _, short, _unit in COUNTERS:
        parts.append(f"{short}={info.stats[key]}(+{format_count(rates[key])}/s)")
    line = " ".join(parts)
    notes = _notes(info, time.time_ns())
    if notes:
        line = f"{line}  [{'; '.join(notes)}]"
    for cursor, rate in zip(info.cursors, read_rates):
        name, policy, tether, position, _, _, lost, laps, untethers, pid, state = cursor_row(
            cursor, info.capacity
        )
        lag = cursor["lag"]
        line += (
            f"\n  cursor {name} policy={policy} tether={tether} position={position} "
            f"lag={lag}({100.0 * lag / info.capacity:.1f}%) "
            f"read={cursor['frames_read']}(+{format_count(rate)}/s) lost={lost} laps={laps} "
            f"untethers={untethers} pid={pid} state={state}"
        )
    return line


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
        dt = max(now - prev_t, 1e-9)
        rates = _rates(prev, cur, dt)
        read_rates = _read_rates(prev, cur, dt)
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
                    # 0 and [] for a single-reader channel.
                    "reader_slots": cur.reader_slots,
                    "cursors": [
                        {**cursor_json(c, cur.capacity), "read_rate": rate}
                        for c, rate in zip(cur.cursors, read_rates)
                    ],
                }
            )
        elif tty:
            lines = _block(cur, rates, elapsed, read_rates)
            # Back to the top of the previous block, clear it, draw the new one.
            redraw = f"\x1b[{shown_lines}F\x1b[J" if shown_lines else ""
            sys.stdout.write(redraw + "\n".join(lines) + "\n")
            sys.stdout.flush()
            shown_lines = len(lines)
        else:
            print(_line(cur, rates, elapsed, read_rates), flush=True)
        prev, prev_t = cur, now
        sample += 1
    return 0
