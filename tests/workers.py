"""Processes that tests start: writers, readers and misbehaving peers.

Run as ``python tests/workers.py COMMAND ARGS...``; each command prints what
the test needs on stdout.  Payloads written by ``writer`` are the stress
tool's self-checking ones (:mod:`mycelium_shm.cli.payload`: writer id,
sequence number, CRC of the rest), so a reader can check per-writer
completeness, order and integrity.
"""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import sys
import time
import zlib

from mycelium_shm import Full, ShmReader, ShmWriter
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


def cmd_attach_as_nobody(name: str, role: str, trust: str = "") -> None:
    """Drop root, then try to attach (trusting a foreign channel if TRUST is
    "trust"); print the outcome's class name."""
    os.setgid(65534)
    os.setuid(65534)
    trusted = trust == "trust"
    try:
        handle = (
            ShmReader(name, trust_foreign=trusted)
            if role == "reader"
            else ShmWriter(name, trust_foreign=trusted)
        )
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


# -- kill campaign (tests/test_kill_campaign.py) -------------------------------
#
# Frames carry (lane, seq) and a body that is a pure function of
# (seed, lane, seq), so a reader can rebuild every payload it is given and
# tell a frame that was written from one that never was.  Writers log each
# write call to an append-only file *around* the call: an INTENT record
# before it, a DONE record (how many frames the call wrote) only after it
# returned; a SIGKILL between the two leaves the call "in flight".

KC_HEAD = struct.Struct("<IQII")  # lane, seq, body length, CRC-32 of the rest
KC_RECORD = struct.Struct("<BQQ")  # kind, first seq, end seq (exclusive)
KC_REPORT = struct.Struct("<BIQ")  # kind, lane, seq: one frame a reader got
KC_INTENT, KC_DONE, KC_ERROR = ord("I"), ord("A"), ord("E")
KC_GOOD, KC_BAD = ord("G"), ord("B")
KC_WRITE_TIMEOUT = 0.5
_KC_POOL = random.Random(0xC0FFEE).randbytes(1 << 16)
_KC_KEY = struct.Struct("<QIQ")


def kc_payload(seed: int, lane: int, seq: int) -> bytes:
    """The one payload frame SEQ of LANE has in a run with SEED: mostly
    short, one in sixteen up to 6000 bytes (the ring wraps and pads often)."""
    h = zlib.crc32(_KC_KEY.pack(seed, lane, seq))
    size = (h >> 4) % 6000 if h & 15 == 0 else (h >> 4) % 300
    start = (h >> 8) % (len(_KC_POOL) - size)
    body = _KC_POOL[start : start + size]
    crc = zlib.crc32(body, zlib.crc32(struct.pack("<IQI", lane, seq, size)))
    return KC_HEAD.pack(lane, seq, size, crc) + body


def kc_check(seed: int, type_id: int, payload: bytes) -> tuple[int, int, str]:
    """(lane, seq, problem) of a frame; problem is "" for an intact frame
    that kc_payload wrote, else short, length, crc, type or content."""
    if len(payload) < KC_HEAD.size:
        return -1, -1, "short"
    lane, seq, size, crc = KC_HEAD.unpack_from(payload)
    if len(payload) != KC_HEAD.size + size:
        return lane, seq, "length"
    body = memoryview(payload)[KC_HEAD.size :]
    if zlib.crc32(body, zlib.crc32(struct.pack("<IQI", lane, seq, size))) != crc:
        return lane, seq, "crc"
    if type_id != kc_type_id(lane):
        return lane, seq, "type"
    if payload != kc_payload(seed, lane, seq):
        return lane, seq, "content"
    return lane, seq, ""


def kc_type_id(lane: int) -> int:
    return 1 + lane


def cmd_kc_writer(name: str, lane_s: str, start_s: str, seed_s: str, rng_s: str, log: str) -> None:
    """Write frames SEQ = START, START+1 ... of LANE with single writes,
    batches and reservations until SIGTERM, logging every call to LOG.
    Exit 0 after SIGTERM; on an error other than Full (which means nothing
    more was written: retry), log it, say it on stderr and exit 3."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    lane, seq, seed = int(lane_s), int(start_s), int(seed_s)
    rng = random.Random(int(rng_s))
    type_id = kc_type_id(lane)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    w = ShmWriter(name)
    print("ready", flush=True)
    while not stop:
        pick = rng.random()
        count = rng.randint(2, 8) if pick < 0.2 else 1
        payloads = [kc_payload(seed, lane, seq + i) for i in range(count)]
        os.write(fd, KC_RECORD.pack(KC_INTENT, seq, seq + count))
        try:
            if count > 1:
                done = w.write_many([(type_id, p) for p in payloads], timeout=KC_WRITE_TIMEOUT)
            elif pick < 0.55:
                # Filled piecemeal, so a good share of this process's time is
                # spent between claim and commit, where a kill or stop hurts.
                # Now and then the writer dawdles inside its claim as well
                # (a live writer that is slow to commit must be waited for).
                payload = payloads[0]
                dawdle = rng.uniform(0.0005, 0.003) if rng.random() < 0.05 else 0.0
                with w.reserve(type_id, len(payload), timeout=KC_WRITE_TIMEOUT) as buf:
                    at = 0
                    while at < len(payload):
                        end = at + rng.randint(1, 16)
                        buf[at:end] = payload[at:end]
                        at = end
                        if dawdle and at >= len(payload) // 2:
                            time.sleep(dawdle)
                            dawdle = 0.0
                done = 1
            else:
                w.write(type_id, payloads[0], timeout=KC_WRITE_TIMEOUT)
                done = 1
        except Full:
            done = 0
        except Exception as exc:
            os.write(fd, KC_RECORD.pack(KC_ERROR, seq, seq + count))
            print(f"seq {seq}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            os._exit(3)
        os.write(fd, KC_RECORD.pack(KC_DONE, seq, seq + done))
        seq += done
    w.close()
    os.close(fd)
    print(f"done {seq}", flush=True)


def cmd_kc_reader(name: str, seed_s: str, mode: str, report: str) -> None:
    """Take the channel over and read forever, appending (lane, seq) of every
    frame to REPORT after read() returned it ("copy") or before the view is
    released ("view").  A frame that is not intact is reported as bad."""
    seed = int(seed_s)
    fd = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    r = ShmReader(name, stuck_timeout=0.01)
    print("ready", flush=True)
    pack = KC_REPORT.pack
    while True:
        if mode == "copy":
            frame = r.read(timeout=0.05)
            if frame is None:
                continue
            lane, seq, problem = kc_check(seed, frame[0], frame[1])
            os.write(fd, pack(KC_BAD if problem else KC_GOOD, max(lane, 0), max(seq, 0)))
        else:
            with r.read_view(timeout=0.05) as view:
                if view is None:
                    continue
                lane, seq, problem = kc_check(seed, view.type_id, bytes(view.payload))
                os.write(fd, pack(KC_BAD if problem else KC_GOOD, max(lane, 0), max(seq, 0)))


def cmd_kc_stall_claim(name: str, seed_s: str, lane_s: str) -> None:
    """Reserve frame 0 of LANE, fill half of it, say "claimed", stop itself
    (SIGSTOP) while holding the claim; once continued, fill the rest and
    commit; print "committed" or the error."""
    seed, lane = int(seed_s), int(lane_s)
    payload = kc_payload(seed, lane, 0)
    w = ShmWriter(name)
    try:
        with w.reserve(kc_type_id(lane), len(payload)) as buf:
            half = len(payload) // 2
            buf[:half] = payload[:half]
            print("claimed", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
            buf[half:] = payload[half:]
        print("committed", flush=True)
    except Exception as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)


def cmd_kc_block_write(name: str, size: str) -> None:
    """Say "writing", then write one SIZE-byte frame, waiting for room for
    as long as it takes; print "written" once it returned."""
    w = ShmWriter(name)
    print("writing", flush=True)
    w.write(1, b"b" * int(size), timeout=None)
    print("written", flush=True)


# -- broadcast channels (tests/test_broadcast.py) ---------------------------


_BC_PATTERN = bytes(range(256)) * 17


def bc_payload(writer: int, seq: int, size: int) -> bytes:
    """Frame SEQ of WRITER: (writer, seq) then SIZE bytes derived from both."""
    start = (writer * 31 + seq * 7) % 251
    return struct.pack("<IQ", writer, seq) + _BC_PATTERN[start : start + size]


def bc_size(rng: random.Random) -> int:
    return rng.choice((0, 8, 24, 100, 300, 1000, 3000)) + rng.randrange(16)


def cmd_bc_writer(name: str, writer_s: str, frames_s: str, seed_s: str) -> None:
    """Write FRAMES frames of random sizes as WRITER (batches of up to 64),
    waiting for room as long as it takes; print "done"."""
    writer, frames = int(writer_s), int(frames_s)
    rng = random.Random(int(seed_s) * 1000 + writer)
    w = ShmWriter(name)
    seq = 0
    while seq < frames:
        count = min(frames - seq, rng.randrange(1, 65))
        batch = [(1 + writer, bc_payload(writer, seq + i, bc_size(rng))) for i in range(count)]
        w.write_many(batch, timeout=None)
        seq += count
    w.close()
    print("done", flush=True)


def cmd_bc_reader(name: str, cursor: str, policy: str, total_s: str, idle_s: str) -> None:
    """Read as CURSOR with POLICY until TOTAL frames were seen or nothing came
    for IDLE s; check each frame's bytes and per-writer order; print one JSON
    line: frames, gaps (frames skipped per the sequence numbers), lost and
    laps (the reader's own count), bad (corrupt or out of order)."""
    total, idle = int(total_s), float(idle_s)
    r = ShmReader(name, cursor=cursor, policy=policy)  # type: ignore[arg-type]
    print("ready", flush=True)
    nxt: dict[int, int] = {}
    frames = gaps = bad = 0
    while frames < total:
        batch = r.read_many(256, timeout=idle)
        if not batch:
            break
        for type_id, payload in batch:
            writer, seq = struct.unpack_from("<IQ", payload)
            if type_id != 1 + writer or payload != bc_payload(writer, seq, len(payload) - 12):
                bad += 1
                continue
            expect = nxt.get(writer, 0)
            if seq < expect:
                bad += 1
            gaps += max(0, seq - expect)
            nxt[writer] = seq + 1
            frames += 1
    info = r.cursor_info()
    print(json.dumps({"frames": frames, "gaps": gaps, "bad": bad, "lost": info["lost"],
                      "laps": info["laps"], "untethers": info["untethers"]}), flush=True)
    r.close()


COMMANDS["bc-writer"] = cmd_bc_writer
COMMANDS["bc-reader"] = cmd_bc_reader
COMMANDS["kc-writer"] = cmd_kc_writer
COMMANDS["kc-reader"] = cmd_kc_reader
COMMANDS["kc-stall-claim"] = cmd_kc_stall_claim
COMMANDS["kc-block-write"] = cmd_kc_block_write

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
