"""Processes that tests start: writers, readers and misbehaving peers.

Run as ``python tests/workers.py COMMAND ARGS...``; each command prints what
the test needs on stdout.  Payloads written by ``writer`` are the stress
tool's self-checking ones (:mod:`mycelium_shm.cli.payload`: writer id,
sequence number, CRC of the rest), so a reader can check per-writer
completeness, order and integrity.
"""

from __future__ import annotations

import os
import random
import sys
import time

from mycelium_shm import ShmReader, ShmWriter
from mycelium_shm.cli.payload import check_payload, make_payload


def cmd_writer(name: str, writer_id: str, frames: str, low: str, high: str, mode: str) -> None:
    """Write FRAMES frames of LOW..HIGH bytes with single calls, batches,
    reservations or a mix of all three."""
    wid, count, lo, hi = int(writer_id), int(frames), int(low), int(high)
    rng = random.Random(wid)
    with ShmWriter(name) as w:
        seq = 0
        while seq < count:
            how = mode if mode != "mixed" else rng.choice(("single", "batch", "reserve"))
            if how == "single":
                w.write(1 + wid, make_payload(wid, seq, rng.randint(lo, hi), rng))
                seq += 1
            elif how == "batch":
                n = min(rng.randint(1, 64), count - seq)
                batch = [
                    (1 + wid, make_payload(wid, seq + i, rng.randint(lo, hi), rng))
                    for i in range(n)
                ]
                written = w.write_many(batch)
                assert written == n, (written, n)
                seq += n
            else:
                payload = make_payload(wid, seq, rng.randint(lo, hi), rng)
                with w.reserve(1 + wid, len(payload)) as buf:
                    buf[:] = payload
                seq += 1
    print("done", flush=True)


def cmd_hold_claim(name: str) -> None:
    """Claim a frame, say so, then hang until killed (a writer that dies
    between claim and commit)."""
    w = ShmWriter(name)
    reservation = w.reserve(1, 64)
    buf = reservation.__enter__()
    buf[:8] = b"partial!"
    print("claimed", flush=True)
    time.sleep(3600)


def cmd_read_some(name: str, count: str) -> None:
    """Read COUNT frames, print their sequence numbers, then hang until killed
    (a reader that dies without closing)."""
    r = ShmReader(name)
    seqs = [check_payload(r.read(timeout=10).payload)[1] for _ in range(int(count))]
    print(" ".join(map(str, seqs)), flush=True)
    time.sleep(3600)


def cmd_block_read(name: str, timeout: str) -> None:
    """Block in read(); print the monotonic time at which Ctrl-C arrived."""
    r = ShmReader(name)
    print("waiting", flush=True)
    try:
        frame = r.read(timeout=None if timeout == "none" else float(timeout))
        print("returned", frame, flush=True)
    except KeyboardInterrupt:
        print(f"interrupted {time.monotonic():.6f}", flush=True)


def cmd_attach_as_nobody(name: str, role: str) -> None:
    """Drop root, then try to attach; print the outcome's class name."""
    os.setgid(65534)
    os.setuid(65534)
    try:
        handle = ShmReader(name) if role == "reader" else ShmWriter(name)
        handle.close()
        print("attached", flush=True)
    except Exception as exc:
        print(type(exc).__name__, flush=True)


def cmd_create(name: str, capacity: str) -> None:
    """Try to create a channel; print the outcome (for a full /dev/shm)."""
    try:
        ShmWriter(name, create=True, capacity=int(capacity)).close()
        print("created", flush=True)
    except OSError as exc:
        print(f"{type(exc).__name__} {exc.errno} {exc}", flush=True)


COMMANDS = {
    "writer": cmd_writer,
    "hold-claim": cmd_hold_claim,
    "read-some": cmd_read_some,
    "block-read": cmd_block_read,
    "attach-as-nobody": cmd_attach_as_nobody,
    "create": cmd_create,
}


def cmd_cli_hold(name: str, role: str, create: str) -> None:
    """Open a writer or reader of NAME (creating the channel if CREATE is
    "create"), print "ready", then hang until killed (a registered process
    that dies without closing, for the CLI's ls and gc)."""
    make = create == "create"
    handle = (
        ShmWriter(name, create=make, capacity=1 << 16)
        if role == "writer"
        else ShmReader(name, create=make, capacity=1 << 16)
    )
    print("ready", flush=True)
    time.sleep(3600)
    handle.close()


COMMANDS["cli-hold"] = cmd_cli_hold

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
