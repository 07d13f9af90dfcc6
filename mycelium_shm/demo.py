"""The main job, end to end: several writer processes stream into one channel,
one reader checks every frame.  ``python -m mycelium_shm.demo`` (``make demo``).

Two phases:

* **throughput**: each writer sends as fast as the ring takes frames (batches
  of ``--batch`` frames per call); the reader drains with ``read_many``.
* **latency**: each writer paces itself (``--rate`` frames/s) so the ring
  stays nearly empty; every frame carries its send time (CLOCK_MONOTONIC,
  shared by all processes) and the reader measures send-to-receive latency.

Every frame carries (writer id, sequence number); the reader checks that each
writer's frames arrive complete and in order, and prints the count lost (0).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import struct
import sys
import time
import uuid
from collections.abc import Callable
from typing import Optional

from . import ShmReader, ShmWriter, unlink

FRAME = struct.Struct("<IQq")  # writer id, sequence number, send time (ns)
TYPE_TICK = 1


def _writer(name: str, writer_id: int, frames: int, batch: int, rate: float, size: int) -> None:
    pad = bytes(max(0, size - FRAME.size))
    pack = FRAME.pack
    now = time.monotonic_ns
    with ShmWriter(name) as w:
        if rate <= 0:
            for start in range(0, frames, batch):
                t = now()
                w.write_many(
                    [
                        (TYPE_TICK, pack(writer_id, seq, t) + pad)
                        for seq in range(start, min(frames, start + batch))
                    ]
                )
            return
        interval = 1e9 / rate
        next_send = now()
        for seq in range(frames):
            delay = next_send - now()
            if delay > 0:
                # Sleep, not spin: on a 2-core machine spinning writers would
                # starve the reader and the latency measured would be theirs.
                time.sleep(delay / 1e9)
            w.write(TYPE_TICK, pack(writer_id, seq, now()) + pad)
            next_send += interval


_PLAIN_EVERY_S = 5.0


def _progress(label: str, done: int, total: int, started: float) -> None:
    """A bar redrawn in place (``\\r``) on a terminal; elsewhere (a log, a pipe)
    a plain line at most every few seconds, so logs get no carriage returns."""
    global _last_plain
    elapsed = max(time.monotonic() - started, 1e-9)
    rate = f"{done / elapsed / 1e6:6.2f} M frames/s"
    if sys.stderr.isatty():
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(
            f"\r  {label:<10} [{'#' * filled}{'.' * (width - filled)}] {done:>10,}/{total:,} {rate}"
        )
        sys.stderr.flush()
        return
    now = time.monotonic()
    if done < total and now - _last_plain < _PLAIN_EVERY_S:
        return
    _last_plain = now
    sys.stderr.write(f"  {label}: {done:,}/{total:,} frames, {rate.strip()}\n")
    sys.stderr.flush()


def _progress_done() -> None:
    """End the bar's line (a terminal only: plain lines end themselves)."""
    if sys.stderr.isatty():
        sys.stderr.write("\n")
        sys.stderr.flush()


_last_plain = time.monotonic()


def _run_phase(
    name: str, label: str, writers: int, frames: int, batch: int, rate: float, size: int
) -> tuple[int, float, list[int], int]:
    """Returns (frames received, seconds, latencies in ns, frames lost)."""
    ctx = multiprocessing.get_context("spawn")
    reader = ShmReader(name, create=True, capacity=1 << 22)
    procs = [
        ctx.Process(target=_writer, args=(name, i, frames, batch, rate, size), daemon=True)
        for i in range(writers)
    ]
    next_seq = [0] * writers
    latencies: list[int] = []
    received = 0
    total = writers * frames
    try:
        for proc in procs:
            proc.start()
        started = time.monotonic()
        last_shown = 0.0
        unpack = FRAME.unpack_from
        now = time.monotonic_ns
        keep_latency = rate > 0
        while received < total:
            batch_frames = reader.read_many(1024, timeout=10)
            if not batch_frames:
                break  # a writer died: report what was lost
            t = now()
            for frame in batch_frames:
                writer_id, seq, sent = unpack(frame[1])
                if seq != next_seq[writer_id]:
                    raise SystemExit(
                        f"writer {writer_id}: expected frame {next_seq[writer_id]}, got {seq}"
                    )
                next_seq[writer_id] = seq + 1
                if keep_latency:
                    latencies.append(t - sent)
            received += len(batch_frames)
            if time.monotonic() - last_shown > 0.25:
                _progress(label, received, total, started)
                last_shown = time.monotonic()
        elapsed = time.monotonic() - started
        _progress(label, received, total, started)
        _progress_done()
        for proc in procs:
            proc.join(timeout=10)
        return received, elapsed, latencies, total - received
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join(timeout=5)
        reader.close()
        unlink(name, missing_ok=True)


def _percentile(sorted_values: list[int], q: float) -> float:
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index] / 1000.0


def _at_least(low: int) -> Callable[[str], int]:
    """argparse type: an integer >= low (a negative count or size is refused)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive rate, not {text}")
    return value


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mycelium_shm.demo",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--writers", type=_at_least(1), default=3, help="writer processes")
    parser.add_argument(
        "--frames", type=_at_least(1), default=1_000_000, help="per writer, throughput phase"
    )
    parser.add_argument("--batch", type=_at_least(1), default=64, help="frames per write_many call")
    parser.add_argument("--size", type=_at_least(0), default=64, help="payload bytes")
    parser.add_argument(
        "--latency-frames", type=_at_least(1), default=20_000, help="per writer, latency phase"
    )
    parser.add_argument(
        "--rate", type=_positive_rate, default=10_000, help="frames/s per writer, latency phase"
    )
    args = parser.parse_args(argv)

    name = f"demo-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    print(
        f"mycelium-shm demo: {args.writers} writer processes -> /dev/shm/mycelium.{name} -> 1 reader"
    )
    print(
        f"  payload {max(args.size, FRAME.size)} bytes, pid {os.getpid()}, {os.cpu_count()} cores"
    )

    got, secs, _, lost_t = _run_phase(
        name + "-t", "throughput", args.writers, args.frames, args.batch, 0, args.size
    )
    print(
        f"  throughput: {got:,} frames in {secs:.2f} s = {got / secs / 1e6:.2f} M frames/s "
        f"({got * max(args.size, FRAME.size) / secs / 1e6:.0f} MB/s), {lost_t} lost"
    )

    got_l, _, lat, lost_l = _run_phase(
        name + "-l", "latency", args.writers, args.latency_frames, 1, args.rate, args.size
    )
    lat.sort()
    if lat:
        print(
            f"  latency ({args.writers} x {args.rate:,.0f} frames/s, send to receive): "
            f"p50 {_percentile(lat, 0.50):.1f} us, p99 {_percentile(lat, 0.99):.1f} us, "
            f"p99.9 {_percentile(lat, 0.999):.1f} us, max {lat[-1] / 1000:.1f} us "
            f"(mean {statistics.fmean(lat) / 1000:.1f} us)"
        )
    lost = lost_t + lost_l
    print(f"  {lost} lost, {got + got_l:,} frames checked in order per writer")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
