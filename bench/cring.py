"""The C ceiling: bench/c/ring_bench.c linked with every csrc/*.c, run as processes.

build() compiles it with gcc -O2 into bench/.build/ (again only when a
source is newer than the binary).  CRingTransport runs the same round-trip,
throughput and multi-writer measurements as the Python rows.
"""

import array
import glob
import os
import selectors
import shutil
import subprocess
import tempfile
import time

from . import common
from .transports import Transport, unique_name

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The core under test: every csrc/*.c (the core is split into several files;
# csrc/ring.h stays its public header).  MYC_BENCH_CORE_DIR points the C rows
# at another copy of the core, e.g. a snapshot of a previous commit.
CORE_DIR = os.environ.get("MYC_BENCH_CORE_DIR") or os.path.join(ROOT, "csrc")
BENCH_SOURCE = os.path.join(HERE, "c", "ring_bench.c")
BUILD_DIR = os.path.join(HERE, ".build")
BINARY = os.path.join(BUILD_DIR, "ring_bench")
CFLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra"]


def core_sources():
    """Every C file of the core, found when asked (files come and go)."""
    return sorted(glob.glob(os.path.join(CORE_DIR, "*.c")))


def core_headers():
    return sorted(glob.glob(os.path.join(CORE_DIR, "*.h")))


def sources():
    """What ring_bench is compiled from: the bench program and all of the core."""
    return [BENCH_SOURCE, *core_sources()]


def shm_path(name):
    """Where the C core keeps channel `name` (MYC_NAME_PREFIX under /dev/shm)."""
    return "/dev/shm/mycelium." + name


def unlink_channel(name):
    try:
        os.unlink(shm_path(name))
    except FileNotFoundError:
        pass


def compile_c(binary, srcs, headers=(), include_dirs=(), cflags=CFLAGS, libs=("-lpthread",)):
    """gcc `srcs` into `binary` unless it is newer than every input and was
    built by the same command.  Returns (binary, None) or (None, reason)."""
    missing = [p for p in srcs if not os.path.exists(p)]
    if missing:
        return None, "missing " + ", ".join(os.path.relpath(p, ROOT) for p in missing)
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        return None, f"C compiler {cc!r} not found"
    includes = [arg for d in include_dirs for arg in ("-I", d)]
    cmd_text = " ".join([cc, *cflags, *includes, *srcs, *libs])
    stamp = binary + ".cmd"
    inputs = list(srcs) + [p for p in headers if os.path.exists(p)]
    try:
        with open(stamp) as f:
            same_cmd = f.read() == cmd_text
    except OSError:
        same_cmd = False
    if (
        same_cmd
        and os.path.exists(binary)
        and os.path.getmtime(binary) >= max(map(os.path.getmtime, inputs))
    ):
        return binary, None
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    tmp = binary + f".tmp{os.getpid()}"
    cmd = [cc, *cflags, *includes, *srcs, "-o", tmp, *libs]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        errors = [
            ln for ln in proc.stderr.splitlines() if "error" in ln
        ] or proc.stderr.splitlines()
        return None, f"{cc} failed: " + (errors[0] if errors else "?").strip()[:300]
    os.replace(tmp, binary)
    with open(stamp, "w") as f:
        f.write(cmd_text)
    return binary, None


def build():
    """Compile the C bench if needed.  Returns (binary, None) or (None, reason)."""
    if not core_sources():
        return None, f"no C core sources (*.c) in {os.path.relpath(CORE_DIR, ROOT)}"
    return compile_c(BINARY, sources(), core_headers(), include_dirs=[CORE_DIR])


def _run_procs(cmds, timeout, barrier=False):
    """Run commands concurrently; return their stdouts, or raise BenchError.

    With barrier, each command's stdin is a pipe: it prints "ready" once
    attached, and all are told to go together (see bench/c/ring_bench.c),
    as the Python rows meet at a multiprocessing barrier."""
    procs = []
    try:
        for cmd in cmds:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE if barrier else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            common.track_child(proc)
            procs.append(proc)
        deadline = time.monotonic() + timeout
        if barrier:
            _meet(procs, deadline, timeout)
        outs = []
        for proc in procs:
            left = max(0.0, deadline - time.monotonic())
            try:
                out, err = proc.communicate(timeout=left)
            except subprocess.TimeoutExpired:
                raise common.BenchError(f"timed out after {timeout:.0f} s") from None
            if proc.returncode != 0:
                program = os.path.basename(proc.args[0])
                raise common.BenchError(f"{program} exited {proc.returncode}: {err.strip()[:300]}")
            outs.append(out)
        return outs
    finally:
        for proc in procs:
            common.kill_and_reap(proc)


def _meet(procs, deadline, timeout):
    """Wait for every process's "ready" line, then let them all go.  A process
    that ends first is left for communicate() to report."""
    waiting = {proc.stdout.fileno(): b"" for proc in procs}
    with selectors.DefaultSelector() as sel:
        for fd in waiting:
            sel.register(fd, selectors.EVENT_READ)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise common.BenchError(f"timed out after {timeout:.0f} s waiting for ready")
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 64)  # nothing follows "ready" before the go
                got = waiting[key.fd] + chunk
                if not chunk or got.endswith(b"\n"):
                    sel.unregister(key.fd)
                    del waiting[key.fd]
                else:
                    waiting[key.fd] = got
    for proc in procs:
        try:
            proc.stdin.write("g")
            proc.stdin.flush()  # communicate() closes it
        except OSError:  # it died before the go: communicate() reports why
            pass


class CRingTransport(Transport):
    """mycelium-shm from C: the ceiling for every Python row."""

    name = "mycelium"
    lang = "c"
    barrier = True  # processes meet before the timed part (ring_bench's start barrier)

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
                barrier=self.barrier,
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
            outs = _run_procs(cmds, timeout, barrier=self.barrier)
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
