"""Benchmark: MessageBus publish-to-handler latency, in process and across processes.

    python bench/bench_bus.py [--modes inproc,shm,unix,tcp] [--count N] [--quick] [--json PATH]

Rows (one JSON object per line on stdout, also written to ``--json``)::

    {"name": "publish_to_handler", "mode": "shm", "p50_ns": ..., "p99_ns": ...,
     "p999_ns": ..., "samples": N}

``inproc``: ``publisher.publish(tick)`` on a bus whose one handler stamps the
time; the latency is handler time minus the time taken just before
``publish`` (a MarketTick of the example schema, same object, no encoding).

``shm``/``unix``/``tcp``: a child process hosts a bus whose inbound endpoint is
a shared-memory channel, a Unix socket or a TCP loopback socket, with its
default reader thread.  The parent publishes MarketTicks carrying
``time.perf_counter_ns()`` (CLOCK_MONOTONIC, shared by all processes of the
machine) in ``ts_ns``; the child's handler records ``now - ts_ns`` (encode,
transport, wake-up, decode, dispatch) and answers with a Stop, and the
parent waits for that answer before the next tick, so no sample queues
behind another.  The first 10 % of samples are warm-up and dropped.

Runtime is bounded: ``--quick`` takes 20 000 in-process and 300 cross-process
samples (a few seconds); every child is killed after ``--deadline`` seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mycelium_shm import unlink  # noqa: E402
from mycelium_shm.bus import (  # noqa: E402
    MessageBus,
    ShmInbound,
    ShmLink,
    SocketInbound,
    SocketLink,
)
from mycelium_shm.protocol import Schema  # noqa: E402

SCHEMA_PATH = ROOT / "schemas" / "trading.toml"
CROSS_MODES = ("shm", "unix", "tcp")


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of a sorted list (q in 0..1)."""
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


def row(mode: str, samples: list[int]) -> dict[str, Any]:
    """One result row from raw latency samples (warm-up already dropped)."""
    values = sorted(samples)
    return {
        "name": "publish_to_handler",
        "mode": mode,
        "p50_ns": percentile(values, 0.50),
        "p99_ns": percentile(values, 0.99),
        "p999_ns": percentile(values, 0.999),
        "samples": len(values),
    }


def tick(schema: Schema, seq: int, ts_ns: int) -> Any:
    tick_cls: Any = schema.MarketTick
    return tick_cls(symbol="EURUSD", seq=seq, ts_ns=ts_ns, bid=1.1, ask=1.2, bid_size=5, ask_size=7)


def bench_inproc(schema: Schema, count: int) -> dict[str, Any]:
    """Publish-to-handler latency on one bus, one handler, same thread."""
    bus = MessageBus(schema, name="bench")
    clock = time.perf_counter_ns
    stamp = [0]

    def handler(msg: Any, stamp: list[int] = stamp, clock: Any = clock) -> None:
        stamp[0] = clock()

    bus.subscribe(schema.MarketTick, handler)
    publish = bus.publisher(schema.MarketTick).publish
    msg = tick(schema, 0, 0)
    samples = [0] * count
    for i in range(count):
        t0 = clock()
        publish(msg)
        samples[i] = stamp[0] - t0
    bus.close()
    return row("inproc", samples[count // 10 :])


def endpoints(mode: str, tmp: str) -> tuple[Any, Any]:
    """(child inbound address, parent inbound address) for one transport."""
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    if mode == "shm":
        return f"bench-bus-c-{tag}", f"bench-bus-p-{tag}"
    if mode == "unix":
        return f"{tmp}/c.sock", f"{tmp}/p.sock"
    return ("127.0.0.1", 0), ("127.0.0.1", 0)


def make_inbound(mode: str, address: Any, schema: Schema) -> Any:
    if mode == "shm":
        return ShmInbound(address, schema=schema, unlink_on_close=True)
    return SocketInbound(tuple(address) if mode == "tcp" else address, schema=schema)


def make_link(mode: str, address: Any, schema: Schema) -> Any:
    if mode == "shm":
        return ShmLink(address, schema=schema)
    return SocketLink(tuple(address) if mode == "tcp" else address, schema=schema)


def child_main(mode: str, own: Any, parent: Any, count: int) -> None:
    """The receiving side: record latency per tick, answer each with a Stop."""
    schema = Schema.load(SCHEMA_PATH)
    bus = MessageBus(schema, name="bench-child")
    clock = time.perf_counter_ns
    samples: list[int] = []
    done = threading.Event()
    answer = bus.publisher(schema.Stop).publish
    stop_cls: Any = schema.Stop

    def on_tick(msg: Any) -> None:
        samples.append(clock() - msg.ts_ns)
        answer(stop_cls(last_seq=msg.seq, reason=""))
        if len(samples) >= count:
            done.set()

    bus.subscribe(schema.MarketTick, on_tick)
    inbound = bus.add_inbound(make_inbound(mode, own, schema))
    bus.add_link(make_link(mode, parent, schema), [schema.Stop])
    address = inbound.address if mode == "tcp" else own
    print(json.dumps({"ready": list(address) if mode == "tcp" else address}), flush=True)
    done.wait()
    bus.flush(5)
    print(json.dumps(row(mode, samples[count // 10 :])), flush=True)
    bus.close(timeout=2)


def bench_cross(schema: Schema, mode: str, count: int, deadline: float) -> dict[str, Any]:
    """Spawn the child, ping it ``count`` times, collect its row."""
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp:
        child_addr, parent_addr = endpoints(mode, tmp)
        bus = MessageBus(schema, name="bench-parent")
        inbound = bus.add_inbound(make_inbound(mode, parent_addr, schema))
        replies = bus.subscriber(schema.Stop, maxsize=4)
        if mode == "tcp":
            parent_addr = list(inbound.address)
        cmd = [
            sys.executable,
            __file__,
            "--child",
            mode,
            json.dumps(child_addr),
            json.dumps(parent_addr),
            str(count),
        ]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            ready = json.loads(child.stdout.readline())["ready"]
            bus.add_link(make_link(mode, ready, schema), [schema.MarketTick])
            publish = bus.publisher(schema.MarketTick).publish
            clock = time.perf_counter_ns
            end = time.monotonic() + deadline
            for seq in range(count):
                publish(tick(schema, seq, clock()))
                reply = replies.get(timeout=max(0.1, end - time.monotonic()))
                assert reply.last_seq == seq
            out, _ = child.communicate(timeout=max(1.0, end - time.monotonic()))
            result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
            return result
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            bus.close(timeout=1)
            if mode == "shm":
                unlink(child_addr, missing_ok=True)
                unlink(parent_addr, missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="inproc,shm,unix,tcp")
    parser.add_argument("--count", type=int, help="samples per mode (default 200k / 5k)")
    parser.add_argument("--quick", action="store_true", help="smoke run: few samples")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds per mode")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, own, parent, count = args.child
        child_main(mode, json.loads(own), json.loads(parent), int(count))
        return 0
    schema = Schema.load(SCHEMA_PATH)
    rows = []
    for mode in args.modes.split(","):
        if mode == "inproc":
            count = args.count or (20_000 if args.quick else 200_000)
            result = bench_inproc(schema, count)
        elif mode in CROSS_MODES:
            count = args.count or (300 if args.quick else 5_000)
            result = bench_cross(schema, mode, count, args.deadline)
        else:
            parser.error(f"unknown mode {mode!r}")
        print(json.dumps(result), flush=True)
        rows.append(result)
    if args.json:
        args.json.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
