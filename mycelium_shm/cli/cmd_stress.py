"""``mycelium-shm stress``: N writer processes, one verifying reader, a verdict.

Each writer (:mod:`.stress_writer`, a process of its own) writes ``--frames``
self-checking payloads (:mod:`.payload`); the reader checks every frame and
counts, per writer, frames lost, duplicated, out of order and corrupt.  All
four must be zero (and every writer must exit 0) for exit status 0.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import time
from typing import Any, Optional, TextIO

from ..channel import FRAME_HEADER_SIZE, unlink
from ..reader import ShmReader
from ._common import (
    CliError,
    channel_name,
    emit_json,
    format_bytes,
    format_count,
    positive_float,
    positive_int,
)
from .payload import HEAD, MODES, PayloadError, check_payload, type_id_of

__all__ = ["Verifier", "add_parser", "parse_size", "parse_sizes", "run"]

# The writers run `python -m mycelium_shm.cli.stress_writer`; this module must
# not import that one, or runpy warns that it was imported before it ran.
MAX_WRITERS = 64
_PROGRESS_EVERY_S = 0.1
_BAR_WIDTH = 30
_LINE_WIDTH = 78


def parse_size(text: str) -> int:
    """``65536``, ``64k``, ``1M``, ``1MiB``: a byte count (binary multiples)."""
    if text.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"a size must not be negative, not {text.strip()}")
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)(?:i?B)?\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 65536, 64k, 1M)")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
    return int(m.group(1)) * scale


def parse_sizes(text: str) -> tuple[int, int]:
    """``A-B`` (or ``A``): the payload size range, A <= B."""
    if text.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"sizes must not be negative, not {text.strip()}")
    parts = text.split("-")
    if len(parts) > 2 or not all(p.strip() for p in parts):
        raise argparse.ArgumentTypeError(f"expected A-B (e.g. 16-256), not {text!r}")
    low, high = (parse_size(p) for p in (parts * 2)[:2])
    if low > high:
        raise argparse.ArgumentTypeError(f"{text!r}: the low size is above the high size")
    return low, high


_count = positive_int


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "stress",
        help="multi-writer stress test with a verifying reader",
        description="Start N writer processes on a fresh channel; a reader checks every "
        "frame.  Exit 0 if none was lost, duplicated, reordered or corrupt.",
    )
    p.add_argument("--writers", type=_count, default=4, metavar="N", help="writer processes")
    p.add_argument("--frames", type=_count, default=10_000, metavar="M", help="frames per writer")
    p.add_argument(
        "--sizes",
        type=parse_sizes,
        default=(HEAD.size, 256),
        metavar="A-B",
        help=f"payload sizes in bytes (default {HEAD.size}-256)",
    )
    p.add_argument(
        "--capacity", type=parse_size, default=1 << 20, metavar="C", help="ring bytes (default 1M)"
    )
    p.add_argument(
        "--mode", choices=MODES, default="mixed", help="how writers write: " + ", ".join(MODES)
    )
    p.add_argument("--name", type=channel_name, help="channel name (default: a fresh one)")
    p.add_argument(
        "--stall-timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="fail if no frame arrives for S seconds while writers run (default 30)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: if stderr is a terminal)",
    )
    p.add_argument("--json", action="store_true", help="the result as one JSON object")
    p.set_defaults(run=run)


class Verifier:
    """Checks frames from ``writers`` writers of ``frames`` frames each."""

    def __init__(self, writers: int, frames: int) -> None:
        self.writers = writers
        self.frames = frames
        self._seen = [bytearray(frames) for _ in range(writers)]
        self._last = [-1] * writers
        self.received = 0
        self.distinct = 0
        self.bytes = 0
        self.duplicated = 0
        self.out_of_order = 0
        self.corrupt = 0

    def check(self, type_id: int, payload: bytes) -> None:
        self.received += 1
        self.bytes += len(payload)
        try:
            wid, seq = check_payload(payload)
        except PayloadError:
            self.corrupt += 1
            return
        if wid >= self.writers or seq >= self.frames or type_id != type_id_of(wid):
            self.corrupt += 1
            return
        seen = self._seen[wid]
        if seen[seq]:
            self.duplicated += 1
            return
        seen[seq] = 1
        self.distinct += 1
        if seq < self._last[wid]:
            self.out_of_order += 1
        else:
            self._last[wid] = seq

    @property
    def expected(self) -> int:
        return self.writers * self.frames

    @property
    def lost(self) -> int:
        return self.expected - self.distinct

    @property
    def clean(self) -> bool:
        return self.lost == self.duplicated == self.out_of_order == self.corrupt == 0


class _Progress:
    def __init__(self, total: int, stream: Optional[TextIO]) -> None:
        self.total = total
        self.stream = stream
        self.start: Optional[float] = None  # the first update: writers have started
        self._next = 0.0

    def update(self, done: int, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if self.start is None:
            self.start = now
        if not force and now < self._next:
            return
        self._next = now + _PROGRESS_EVERY_S
        frac = min(1.0, done / self.total)
        filled = int(frac * _BAR_WIDTH)
        rate = format_count(done / (now - self.start)) if now > self.start else "-"
        line = (
            f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {100 * frac:5.1f}% "
            f"{done}/{self.total} frames {rate} frames/s"
        )
        # Padded so that a shorter line fully covers the previous one.
        self.stream.write("\r" + line.ljust(_LINE_WIDTH))
        self.stream.flush()

    def finish(self, done: int) -> None:
        if self.stream is not None:
            self.update(done, force=True)
            self.stream.write("\n")
            self.stream.flush()


def _check_args(args: argparse.Namespace) -> None:
    low, high = args.sizes
    capacity = args.capacity
    if args.writers > MAX_WRITERS:
        raise CliError(f"--writers: at most {MAX_WRITERS}", 2)
    if capacity < 1024 or capacity > 1 << 32 or capacity & (capacity - 1):
        raise CliError(f"--capacity: {capacity} is not a power of two in 1024..2^32", 2)
    if low < HEAD.size:
        raise CliError(
            f"--sizes: payloads are at least {HEAD.size} bytes (writer id, sequence, CRC)", 2
        )
    max_payload = capacity // 4 - FRAME_HEADER_SIZE
    if high > max_payload:
        raise CliError(
            f"--sizes: {high} bytes is more than the max payload {max_payload} "
            f"of a {capacity}-byte ring (raise --capacity)",
            2,
        )
    if not args.stall_timeout > 0:
        raise CliError("--stall-timeout must be positive", 2)


def _spawn(name: str, wid: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    low, high = args.sizes
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mycelium_shm.cli.stress_writer",
            name,
            str(wid),
            str(args.frames),
            str(low),
            str(high),
            args.mode,
            str(args.stall_timeout),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _reap(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[str]:
    """Wait for (then kill) every writer; the failures, one line each."""
    deadline = time.monotonic() + timeout
    failures = []
    for wid, proc in enumerate(procs):
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        if proc.stderr is not None:
            proc.stderr.close()
        if proc.returncode != 0:
            last = err.splitlines()[-1] if err else ""
            failures.append(
                f"writer {wid} exited {proc.returncode}" + (f": {last}" if last else "")
            )
    return failures


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    name = args.name or f"stress-{os.getpid()}-{secrets.token_hex(4)}"
    verifier = Verifier(args.writers, args.frames)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    progress = _Progress(verifier.expected, sys.stderr if show else None)
    reader = ShmReader(name, create=True, capacity=args.capacity)
    procs: list[subprocess.Popen[bytes]] = []
    stalled = False
    first_t: Optional[float] = None
    last_t = time.monotonic()
    try:
        start = time.monotonic()
        procs = [_spawn(name, wid, args) for wid in range(args.writers)]
        while verifier.distinct < verifier.expected:
            frames = reader.read_many(1024, timeout=0.05)
            now = time.monotonic()
            if frames:
                first_t = now if first_t is None else first_t
                last_t = now
                for type_id, payload in frames:
                    verifier.check(type_id, payload)
                progress.update(verifier.distinct)
            elif all(p.poll() is not None for p in procs):
                break  # every writer is done and the ring is empty
            elif now - max(last_t, start) > args.stall_timeout:
                stalled = True
                break
        failures = _reap(procs, timeout=5.0 if not stalled else 0.0)
        # Late frames (duplicates would show here) until the ring stays empty.
        while frames := reader.read_many(1024, timeout=0.05):
            last_t = time.monotonic()
            for type_id, payload in frames:
                verifier.check(type_id, payload)
        progress.finish(verifier.distinct)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        reader.close()
        unlink(name, missing_ok=True)
    return _report(args, verifier, failures, stalled, first_t, last_t)


def _report(
    args: argparse.Namespace,
    v: Verifier,
    failures: list[str],
    stalled: bool,
    first_t: Optional[float],
    last_t: float,
) -> int:
    seconds = (last_t - first_t) if first_t is not None else 0.0
    passed = v.clean and not failures and not stalled
    fps = v.received / seconds if seconds > 0 else 0.0
    bps = v.bytes / seconds if seconds > 0 else 0.0
    if args.json:
        emit_json(
            {
                "passed": passed,
                "writers": args.writers,
                "frames_per_writer": args.frames,
                "sizes": list(args.sizes),
                "capacity": args.capacity,
                "mode": args.mode,
                "expected": v.expected,
                "received": v.received,
                "lost": v.lost,
                "duplicated": v.duplicated,
                "out_of_order": v.out_of_order,
                "corrupt": v.corrupt,
                "bytes": v.bytes,
                "seconds": seconds,
                "frames_per_s": fps,
                "bytes_per_s": bps,
                "stalled": stalled,
                "writer_failures": failures,
            }
        )
    else:
        for failure in failures:
            print(f"mycelium-shm: {failure}", file=sys.stderr)
        if stalled:
            print(
                f"mycelium-shm: no frame for {args.stall_timeout:g} s while writers ran",
                file=sys.stderr,
            )
        low, high = args.sizes
        print(
            f"{'PASS' if passed else 'FAIL'}: {args.writers} writers x {args.frames} frames "
            f"({low}-{high} B): {v.lost} lost, {v.duplicated} duplicated, "
            f"{v.out_of_order} out of order, {v.corrupt} corrupt; "
            f"{v.received} frames, {format_bytes(v.bytes)} in {seconds:.2f} s = "
            f"{format_count(fps)} frames/s, {format_bytes(bps)}/s",
            flush=True,
        )
    return 0 if passed else 1
