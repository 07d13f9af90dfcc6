"""The C ceiling: bench/c/ring_bench.c linked with csrc/ring.c, run as processes.

build() compiles it with gcc -O2 into bench/.build/ (again only when a
source is newer than the binary).  CRingTransport runs the same round-trip,
throughput and multi-writer measurements as the Python rows.
"""

import array
import os
import shutil
import subprocess
import tempfile
import time

from . import common
from .transports import Transport, unique_name

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SOURCES = [os.path.join(HERE, "c", "ring_bench.c"), os.path.join(ROOT, "csrc", "ring.c")]
HEADERS = [os.path.join(ROOT, "csrc", "ring.h"), os.path.join(ROOT, "csrc", "myc_atomic.h")]
BUILD_DIR = os.path.join(HERE, ".build")
BINARY = os.path.join(BUILD_DIR, "ring_bench")
CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra"]


def shm_path(name):
    """Where the C core keeps channel `name` (MYC_NAME_PREFIX under /dev/shm)."""
    return "/dev/shm/mycelium." + name


def unlink_channel(name):
    try:
        os.unlink(shm_path(name))
    except FileNotFoundError:
        pass


def build():
    """Compile the C bench if needed.  Returns (binary, None) or (None, reason)."""
    missing = [p for p in SOURCES if not os.path.exists(p)]
    if missing:
        return None, "missing " + ", ".join(os.path.relpath(p, ROOT) for p in missing)
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        return None, f"C compiler {cc!r} not found"
    inputs = SOURCES + [p for p in HEADERS if os.path.exists(p)]
    if os.path.exists(BINARY) and os.path.getmtime(BINARY) >= max(map(os.path.getmtime, inputs)):
        return BINARY, None
    os.makedirs(BUILD_DIR, exist_ok=True)
    tmp = BINARY + f".tmp{os.getpid()}"
    cmd = [cc, *CFLAGS, "-I", os.path.join(ROOT, "csrc"), *SOURCES, "-o", tmp, "-lpthread"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return None, "gcc failed: " + proc.stderr.strip().splitlines()[-1][:300]
    os.replace(tmp, BINARY)
    return BINARY, None


def _run_procs(cmds, timeout):
    """Run commands concurrently; return their stdouts, or raise BenchError."""
    procs = []
    try:
        for cmd in cmds:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            common.track_child(proc)
            procs.append(proc)
        deadline = time.monotonic() + timeout
        outs = []
        for proc in procs:
            left = max(0.0, deadline - time.monotonic())
            try:
                out, err = proc.communicate(timeout=left)
            except subprocess.TimeoutExpired:
                raise common.BenchError(f"timed out after {timeout:.0f} s") from None
            if proc.returncode != 0:
                raise common.BenchError(f"ring_bench exited {proc.returncode}: {err.strip()[:300]}")
            outs.append(out)
        return outs
    finally:
        for proc in procs:
            common.kill_and_reap(proc)


class CRingTransport(Transport):
    """mycelium-shm from C: the ceiling for every Python row."""

    name = "mycelium"
    lang = "c"

    def __init__(self, mode="single", wait="blocking"):
        self.mode = mode
        self.wait = wait
        self.kinds = ("rtt", "tput") if mode == "single" else ("tput",)
        self.note = f"bench/c/ring_bench.c, gcc {' '.join(CFLAGS)}"
        self._cmode = {"single": "single", "batch": "batch", "zero-copy": "zc"}[mode]
        self._cwait = "poll" if wait == "busy-poll" else "block"
        self._binary = None
        self._reason = None

    def unavailable(self):
        if self._binary is None and self._reason is None:
            self._binary, self._reason = build()
        return self._reason

    def _channels(self, count):
        names = [unique_name("cbench") for _ in range(count)]
        for name in names:
            common.register_cleanup(("cring", name), lambda name=name: unlink_channel(name))
        return names

    def _drop(self, names):
        for name in names:
            unlink_channel(name)
            common.unregister_cleanup(("cring", name))

    def run_rtt(self, size, n, warm, timeout):
        names = self._channels(2)
        fd, out_path = tempfile.mkstemp(prefix="myc-bench-lat-")
        os.close(fd)
        try:
            base = [self._binary, "rtt"]
            tail = [*names, str(size), str(n), str(warm)]
            _run_procs(
                [
                    [*base, "pong", *tail, str(common.core_for(1)), self._cwait, "-"],
                    [*base, "ping", *tail, str(common.core_for(0)), self._cwait, out_path],
                ],
                timeout,
            )
            lat = array.array("q")
            with open(out_path, "rb") as f:
                lat.frombytes(f.read())
            if len(lat) != n:
                raise common.BenchError(f"expected {n} latencies, got {len(lat)}")
            return lat
        finally:
            os.unlink(out_path)
            self._drop(names)

    def run_tput(self, size, n, warm, timeout):
        return self._run_send_recv(1, size, n, warm, timeout, self._cmode)

    def run_mw(self, writers, size, n_each, warm, timeout, reader_mode="batch"):
        """writers processes each send n_each frames; one reader times them.

        Multi-writer rows read with myc_read_batch (as the Python rows use
        read_many) so the reader is not the first bottleneck."""
        return self._run_send_recv(writers, size, n_each, warm, timeout, reader_mode)

    def _run_send_recv(self, writers, size, n_each, warm, timeout, reader_mode):
        (name,) = self._channels(1)
        try:
            reader_core, writer_cores = mw_cores(writers)
            total = writers * n_each
            cmds = [
                [
                    self._binary,
                    "recv",
                    name,
                    str(size),
                    str(total),
                    str(warm),
                    str(reader_core),
                    reader_mode,
                    self._cwait,
                ]
            ]
            for core in writer_cores:
                cmds.append(
                    [
                        self._binary,
                        "send",
                        name,
                        str(size),
                        str(n_each),
                        str(core),
                        self._cmode,
                        self._cwait,
                    ]
                )
            outs = _run_procs(cmds, timeout)
            elapsed, count = map(int, outs[0].split())
            return elapsed, count
        finally:
            self._drop([name])


def mw_cores(writers):
    """(reader core, [writer cores]): the reader keeps the last core to itself
    when there are at least two; writers share the others round-robin."""
    cores = common.allowed_cores()
    reader = cores[-1]
    pool = cores[:-1] or cores
    return reader, [pool[i % len(pool)] for i in range(writers)]
