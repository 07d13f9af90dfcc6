"""The physical floor, measured in the same run as every other row.

bench/c/floor.c (built like ring_bench, gcc -O2 into bench/.build/) runs two
processes over one MAP_SHARED memfd mapping, pinned to the same two cores as
the other rows, both busy-polling:

* "floor: cache-line ping-pong" (RTT rows): one 64-byte line each way per
  round trip, each trip timed with CLOCK_MONOTONIC exactly as ring_bench
  times its own.  Nothing that crosses processes through shared memory can
  make a 64 B round trip faster.
* "floor: framed ping-pong" (RTT, shown beside the RTT targets, never a
  divisor): the same round trips with the 64 B payload behind a 16-byte
  header (stamp and length) at positions advancing by 80 bytes, so each
  message spans two cache lines as a 64 B ring frame does.  It shows, in the
  same run, what a header in front of the payload costs by itself.
* "floor: SPSC ring" (throughput rows): a minimal single-producer
  single-consumer ring of fixed-size messages (1 MiB of slots, cached
  opposite index, release/acquire), copying each message in and out; mode
  "single" publishes an index per message, "batch" once per up to 64.
* "floor: MPSC ring" (throughput rows): the same ring with what any ring
  that several writers may share must add: one locked fetch-add to claim
  each message, a per-slot stamp the consumer polls.  Not a divisor: it
  shows, in the same run, what one locked instruction per message leaves
  of the SPSC floor (the ceiling of a multi-writer ring's single-call rows).

report.add_floor_ratios() then divides every row by these (see report.py).
"""

import array
import os
import tempfile

from . import common
from .cring import BUILD_DIR, HERE, _run_procs, compile_c
from .report import FLOOR_FRAMED as FRAMED
from .report import FLOOR_MPSC as MPSC
from .report import FLOOR_PINGPONG as PINGPONG
from .report import FLOOR_SPSC as SPSC
from .transports import Transport

SOURCE = os.path.join(HERE, "c", "floor.c")
BINARY = os.path.join(BUILD_DIR, "floor")
LINE = 64  # the ping-pong moves one cache line each way
BATCH = 64  # messages per published index in the batched SPSC floor


def build():
    """Compile floor.c if needed.  Returns (binary, None) or (None, reason)."""
    return compile_c(BINARY, [SOURCE])


class FloorTransport(Transport):
    """One of the two floor programs, behind the Transport interface."""

    lang = "c"
    wait = "busy-poll"

    def __init__(self, what, mode="single"):
        if what not in ("pingpong", "framed", "spsc", "mpsc"):
            raise ValueError(what)
        self.what = what
        self.mode = mode
        if what == "pingpong":
            self.name = PINGPONG
            self.kinds = ("rtt",)
            self.note = "bench/c/floor.c pingpong: one 64 B line each way per round trip"
        elif what == "framed":
            self.name = FRAMED
            self.kinds = ("rtt",)
            self.note = (
                "bench/c/floor.c framed: a 16 B stamp header + 64 B payload each way, "
                "80 B frames advancing through a ring (two cache lines per message)"
            )
        elif what == "mpsc":
            self.name = MPSC
            self.kinds = ("tput",)
            self.batch = 1
            self.note = (
                "bench/c/floor.c mpsc: the SPSC ring plus one locked fetch-add claim per "
                "message and a per-slot stamp (what a multi-writer ring cannot avoid)"
            )
        else:
            self.name = SPSC
            self.kinds = ("tput",)
            self.batch = BATCH if mode == "batch" else 1
            self.note = (
                "bench/c/floor.c spsc: fixed-size slots in 1 MiB, cached opposite index, "
                + (
                    "one index store per message"
                    if self.batch == 1
                    else f"one index store per up to {BATCH} messages"
                )
            )
        self._binary = None
        self._reason = None

    def unavailable(self):
        if self._binary is None and self._reason is None:
            self._binary, self._reason = build()
        return self._reason

    def run_rtt(self, size, n, warm, timeout):
        if size != LINE:
            raise common.BenchError(f"the ping-pong floors move {LINE} B, not {size} B")
        fd, out_path = tempfile.mkstemp(prefix="myc-bench-floor-")
        os.close(fd)
        try:
            cmd = [self._binary, self.what, str(n), str(warm),
                   str(common.core_for(0)), str(common.core_for(1)), out_path]  # fmt: skip
            _run_procs([cmd], timeout)
            lat = array.array("q")
            with open(out_path, "rb") as f:
                lat.frombytes(f.read())
            if len(lat) != n:
                raise common.BenchError(f"expected {n} latencies, got {len(lat)}")
            return lat
        finally:
            os.unlink(out_path)

    def run_tput(self, size, n, warm, timeout):
        warm = min(warm, n - 1)
        if self.what == "mpsc":
            cmd = [self._binary, "mpsc", str(size), str(n), str(warm),
                   str(common.core_for(0)), str(common.core_for(1))]  # fmt: skip
        else:
            cmd = [self._binary, "spsc", str(size), str(n), str(warm), str(self.batch),
                   str(common.core_for(0)), str(common.core_for(1))]  # fmt: skip
        (out,) = _run_procs([cmd], timeout)
        elapsed, count = map(int, out.split())
        return elapsed, count


def floor_transports():
    """The floor rows: RTT ping-pong (then its framed variant), the SPSC ring
    per message and batched, then the MPSC ring (one locked claim per message)."""
    return [
        FloorTransport("pingpong"),
        FloorTransport("framed"),
        FloorTransport("spsc", "single"),
        FloorTransport("spsc", "batch"),
        FloorTransport("mpsc"),
    ]
