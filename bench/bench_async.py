"""Benchmark: asyncio reads (read_async, ``async for``) against the blocking read.

    python bench/bench_async.py [--count N] [--interval-us US] [--quick] [--json PATH]

Wake-up latency (a reader waiting for each frame): a writer process writes
``--count`` frames, one every ``--interval-us`` microseconds, each carrying
``time.perf_counter_ns()`` (CLOCK_MONOTONIC, the same in every process); the
reader records ``now - stamp`` as it gets the frame, with

* ``read``: ``ShmReader.read()`` in a plain loop (the C read waits);
* ``read_async``: ``await reader.read_async()`` on an event loop (the wait
  runs in the reader's helper thread, the frame comes to the loop through
  ``call_soon_threadsafe``);
* ``async for``: ``async for frame in reader`` (the same path).

Fast path (frames already there, nothing waits): ns per frame to drain
``--count`` frames written beforehand, with ``read(0)`` and
``await read_async(0)``.

The first 10 % of latency samples are warm-up and dropped.  Prints a table,
and with ``--json`` writes the rows, one JSON object per line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mycelium_shm import ShmReader, ShmWriter, unlink  # noqa: E402

STAMP = struct.Struct("<Q")

WRITER = """
import struct, sys, time
from mycelium_shm import ShmWriter
name, count, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1e9
stamp = struct.Struct("<Q")
clock = time.perf_counter_ns
with ShmWriter(name) as w:
    for _ in range(count):
        time.sleep(interval)
        w.write(1, stamp.pack(clock()) + bytes(24), timeout=30)
"""


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_writer(name: str, count: int, interval_ns: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, name, str(count), str(interval_ns)],
        stderr=subprocess.PIPE,
        env=env,
    )


def latency_run(mode: str, count: int, interval_ns: int, deadline: float) -> dict[str, Any]:
    name = f"bench-async-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    clock = time.perf_counter_ns
    samples: list[int] = []
    try:
        with ShmReader(name, create=True, capacity=1 << 16) as reader:
            proc = start_writer(name, count, interval_ns)
            try:
                if mode == "read":
                    for _ in range(count):
                        frame = reader.read(deadline)
                        if frame is None:
                            break
                        samples.append(clock() - STAMP.unpack_from(frame.payload)[0])
                elif mode == "read_async":

                    async def by_call() -> None:
                        for _ in range(count):
                            frame = await reader.read_async(deadline)
                            if frame is None:
                                break
                            samples.append(clock() - STAMP.unpack_from(frame.payload)[0])

                    asyncio.run(by_call())
                else:

                    async def by_iteration() -> None:
                        async for frame in reader:
                            samples.append(clock() - STAMP.unpack_from(frame.payload)[0])
                            if len(samples) == count:
                                break

                    asyncio.run(asyncio.wait_for(by_iteration(), deadline))
            finally:
                _, err = proc.communicate(timeout=deadline)
                if proc.returncode != 0:
                    raise RuntimeError(f"writer exited {proc.returncode}: {err.decode()}")
    finally:
        unlink(name, missing_ok=True)
    kept = samples[len(samples) // 10 :]
    return {
        "name": "wake_latency",
        "mode": mode,
        "p50_ns": percentile(kept, 0.50),
        "p99_ns": percentile(kept, 0.99),
        "samples": len(kept),
    }


def fast_path_run(mode: str, count: int) -> dict[str, Any]:
    name = f"bench-async-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with ShmReader(name, create=True, capacity=1 << 22) as reader, ShmWriter(name) as w:
            payload = bytes(32)
            best = None
            for _ in range(5):
                w.write_many([(1, payload)] * count)
                if mode == "read":
                    read: Callable[[float], Any] = reader.read
                    start = time.perf_counter_ns()
                    for _ in range(count):
                        read(0)
                    took = time.perf_counter_ns() - start
                else:

                    async def drain() -> int:
                        read_async = reader.read_async
                        start = time.perf_counter_ns()
                        for _ in range(count):
                            await read_async(0)
                        return time.perf_counter_ns() - start

                    took = asyncio.run(drain())
                best = took if best is None else min(best, took)
            assert best is not None
    finally:
        unlink(name, missing_ok=True)
    return {"name": "fast_path", "mode": mode, "ns_per_frame": best / count, "frames": count}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="frames per latency row")
    parser.add_argument("--interval-us", type=int, default=200, help="writer pause per frame")
    parser.add_argument("--quick", action="store_true", help="500 frames per row")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds per row at most")
    parser.add_argument("--json", help="also write the rows here, one JSON object per line")
    args = parser.parse_args(argv)
    count = 500 if args.quick else args.count
    rows = [
        latency_run(mode, count, args.interval_us * 1000, args.deadline)
        for mode in ("read", "read_async", "async for")
    ]
    rows += [fast_path_run(mode, 10_000) for mode in ("read", "read_async")]

    print(f"{'row':<28} {'p50':>10} {'p99':>10} {'samples':>8}")
    for row in rows:
        label = f"{row['name']} {row['mode']}"
        if row["name"] == "wake_latency":
            print(
                f"{label:<28} {row['p50_ns'] / 1000:>8.1f}us {row['p99_ns'] / 1000:>8.1f}us "
                f"{row['samples']:>8}"
            )
        else:
            print(f"{label:<28} {row['ns_per_frame']:>8.0f}ns/frame {'':>10} {row['frames']:>8}")
    if args.json:
        with open(args.json, "w") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
