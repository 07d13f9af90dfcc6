"""Benchmark: broadcast channels, one writer fanning out to 1, 2 and 4 reader processes.

    python bench/bench_broadcast.py [--quick | --smoke] [--readers 1,2,4] [--sizes 64,65536]
        [--only mycelium,iceoryx2,zenoh] [--repeats N] [--target-s S] [--out DIR]
        [--check-targets]

Rows, measured in one run on the same cores (see METHOD below for the details):

* **mycelium single-reader**: an ordinary channel (``ShmWriter(name, create=True)``,
  ``ShmReader(name)``), one reader: the baseline of the fan-out ratios.
* **mycelium broadcast x N**: ``ShmWriter(name, create=True, readers=N)``, N reader
  processes ``ShmReader(name, cursor="rI", policy="tethered")``.
* **iceoryx2 x N**: iceoryx2's Python publish-subscribe (``Slice[c_uint8]``, N
  subscribers of one service, ``RetryUntilDelivered``, no safe overflow).
* **zenoh x N**: eclipse-zenoh's Python API in peer mode over loopback, every payload
  allocated from zenoh's shared-memory provider (``zenoh.shm.ShmProvider``), so
  readers on this host receive it through shared memory (checked per sample with
  ``ZBytes.as_shm()`` and reported as ``shm_fraction``).

Two measurements per row and payload size (64 B and 64 KiB by default):

* ``tput``: the writer streams frames carrying a sequence number as fast as it can;
  every reader checks each sequence number (gaps are counted as ``lost``) and times
  the frames after its first 10 %.  ``per_reader_msgs_per_s`` is the slowest
  reader's rate (every reader received every frame at least that fast);
  ``aggregate_msgs_per_s`` the sum over readers.
* ``rtt``: the writer sends one frame to all N readers; every reader answers with
  the 8-byte sequence number on one shared return channel (N writers, one reader:
  a second ordinary mycelium channel, a second iceoryx2 service with N publishers, a
  second zenoh key); a round trip ends when the writer holds all N answers, so it is
  the fan-out latency to the slowest reader.

Writes ``broadcast.json`` and ``broadcast.md`` to ``--out`` (default bench/results/)
and prints a summary.  ``--smoke`` runs tiny fixed counts (a harness check run by
tests/test_bench_broadcast.py; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import glob
import inspect
import json
import os
import platform
import socket
import struct
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.transports import iceoryx_shm_objects, remove_iceoryx_leftovers  # noqa: E402

CAPACITY = 1 << 20  # every backend gets 1 MiB of shared memory for its frames
TYPE_ID = 1
SEQ = struct.Struct("<Q")
HELLO = (1 << 64) - 1  # sequence number of the peers' handshake samples
SMALL = 4096  # up to this size the writer builds a bytes frame; above, it copies in place
READERS = (1, 2, 4)
WAITS = ("blocking", "poll+yield")  # how the mycelium rows wait
SIZES = (64, 65536)
SHM_PREFIX = "bbench"
ZENOH_SHM_GLOB = "/dev/shm/*.zenoh"
IOX2_BUFFER = 64  # iceoryx2 subscriber buffer (samples), as in the suite
FANOUT_TARGET = 0.7
PEER_TARGET = 3.0

METHOD = [
    "Every run uses fresh forked processes: one writer and N readers; all attach, then "
    "meet at a barrier, so no setup is timed. iceoryx2 and zenoh writers also repeat a "
    "handshake sample until every reader has one (subscriptions take effect "
    "asynchronously); readers skip it.",
    "Pinning (sched_setaffinity, `--pin`): by default (`apart`) the writer runs alone on "
    "the first allowed core and the readers round-robin on the others; `spread` puts "
    "reader i on core (i + 1) mod cores, `none` lets the scheduler place everything. "
    "The same placement applies to every row of a run. With 2 cores, 2 and 4 readers "
    "share a core: that is the point of the fan-out rows.",
    "Payload: an 8-byte little-endian sequence number, then fixed bytes. Writers: up to "
    "4 KiB a bytes frame is built per message (mycelium write()/try_write(), iceoryx2 "
    "loan + one memmove, zenoh alloc + one slice copy); 64 KiB frames are copied once "
    "into the loaned/reserved shared memory (mycelium reserve() in the blocking rows, "
    "iceoryx2 loan_slice_uninit, zenoh ShmProvider.alloc) and the sequence number "
    "written over the start. The mycelium poll+yield rows build a bytes frame at every "
    "size and try_write() it (a failed reserve(timeout=0) costs about 75 us: its Full "
    "error inspects the channel).",
    "Readers: every frame's sequence number is read and checked (a gap counts as lost, "
    "going backwards is an error); 64 KiB readers also touch the last byte. mycelium "
    "reads with read()/try_read() up to 4 KiB and read_view() (zero-copy) above; "
    "iceoryx2 reads through payload_ptr (zero-copy); zenoh's Python ZBytes offers no "
    "view, so its readers call to_bytes() (one copy).",
    "Waiting: mycelium rows come in two kinds. `blocking`: write()/read() wait in the "
    "library (spin about 50 us, then futex). `poll+yield`: try_write()/try_read() and "
    "sched_yield() after every miss. iceoryx2's Python subscriber has no blocking "
    "receive, so its readers (and the round-trip writer) poll receive() the same way, "
    "with sched_yield() after an empty poll; its publisher blocks inside send() "
    "(RetryUntilDelivered). zenoh readers block in the default FIFO handler's recv(). "
    "Peer targets are judged on the better mycelium row of the same run.",
    "Throughput: each reader times its frames after the first 10 %; a run's per-reader "
    "msgs/s is the slowest reader's; aggregate msgs/s the sum. Round trips: perf_counter_ns "
    "per trip after 10 % untimed warm-up trips, nearest-rank percentiles.",
    "A calibration run per row (discarded) sizes its runs to about target_s. Repeats are "
    "interleaved: repeat i of every row of a size runs before repeat i + 1 of any, and "
    "every ratio is the median of per-repeat ratios, so drift of the machine between "
    "rows cancels. Row values are medians over repeats.",
    "zenoh: peer mode, multicast and gossip scouting off, the writer listens on a TCP "
    "loopback port and readers connect to it; transport/shared_memory/enabled = true; "
    "publisher congestion control BLOCK (no drops); SHM pool of 1 MiB per writer (and "
    "64 KiB per reader for answers).",
]


# --------------------------------------------------------------------------- #
# Configuration                                                               #
# --------------------------------------------------------------------------- #


class Config:
    """Counts and times of one run."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.repeats = {"full": 5, "quick": 2, "smoke": 1}[mode]
        self.target_s = {"full": 0.3, "quick": 0.08, "smoke": 0.0}[mode]
        self.run_timeout = {"full": 90.0, "quick": 60.0, "smoke": 60.0}[mode]
        self.budget_s = {"full": 900.0, "quick": 240.0, "smoke": 240.0}[mode]

    def calibration(self, kind: str, size: int) -> int:
        """Messages (or round trips) of the calibration run."""
        if kind == "rtt":
            return 300 if self.mode != "smoke" else 40
        n = max(200, min(20000, (2 << 20) // size))
        return n if self.mode != "smoke" else 60

    def count(self, kind: str, rate: float) -> int:
        """Timed messages (round trips) for a row running at `rate` per second."""
        if self.mode == "smoke":
            return 40 if kind == "rtt" else 60
        low, high = (500, 100_000) if kind == "rtt" else (2000, 4_000_000)
        return int(max(low, min(high, rate * self.target_s)))

    def asdict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "repeats": self.repeats,
            "target_s": self.target_s,
            "run_timeout": self.run_timeout,
            "budget_s": self.budget_s,
            "capacity": CAPACITY,
        }


PINNINGS = {
    "apart": "the writer alone on the first allowed core, the readers round-robin on the "
    "other cores (with 2 cores: every reader on the second core)",
    "spread": "the writer on the first allowed core, reader i on core (i + 1) mod cores "
    "(with 2 cores: readers alternate, every other one beside the writer)",
    "none": "no pinning: the scheduler places every process",
}
PINNING = {"layout": "apart"}  # set from --pin before any run


def reader_core(index: int) -> int | None:
    """Core of reader `index` under the run's pinning (None: not pinned)."""
    cores = common.allowed_cores()
    layout = PINNING["layout"]
    if layout == "none":
        return None
    if layout == "apart" and len(cores) > 1:
        return cores[1 + index % (len(cores) - 1)]
    return cores[(index + 1) % len(cores)]


def writer_core() -> int | None:
    return None if PINNING["layout"] == "none" else common.allowed_cores()[0]


class Sync:
    """What the processes of one run share (created before the fork)."""

    def __init__(self, readers: int) -> None:
        self.start = common.CTX.Barrier(readers + 1)
        self.finish = common.CTX.Barrier(readers + 1)
        self.ready = [common.CTX.Event() for _ in range(readers)]

    def all_ready(self) -> bool:
        return all(e.is_set() for e in self.ready)


def _frame_builder(size: int) -> Callable[[int], bytes]:
    tail = common.payload_of(size)[8:]
    pack = SEQ.pack

    def build(seq: int) -> bytes:
        return pack(seq) + tail

    return build


def _gap(seq: int, expected: int) -> int:
    """Frames lost between `expected` and `seq`; raise if `seq` went backwards."""
    if seq < expected:
        raise common.BenchError(f"sequence went backwards: got {seq}, expected {expected}")
    return seq - expected


def _tput_result(
    t0: int, t1: int, timed: int, lost: int, shm: int = -1, received: int = 0
) -> dict[str, Any]:
    """One reader's result; zenoh readers also count the samples they received
    (handshakes and warm-up included) and how many of them came as SHM buffers."""
    return {
        "elapsed_ns": t1 - t0,
        "count": timed,
        "lost": lost,
        "shm": shm,
        "received": received,
    }


# --------------------------------------------------------------------------- #
# Backends                                                                    #
# --------------------------------------------------------------------------- #


class Backend(ABC):
    """One way of fanning frames out: what the parent prepares, what each role runs."""

    name = "?"
    variant = ""
    wait = ""
    note = ""

    def unavailable(self) -> str | None:
        return None

    def label(self, readers: int) -> str:
        return f"{self.name} {self.variant} x{readers}".replace("  ", " ")

    def prepare(self, kind: str, size: int, readers: int) -> Any:
        return None

    def cleanup(self, state: Any) -> None:  # noqa: B027 - optional hook, nothing by default
        """Parent side, after the run's processes are reaped.  Must not raise."""

    # Roles (run in forked children).
    @abstractmethod
    def writer(self, state: Any, sync: Sync, n: int, size: int) -> None:
        """Runs in a forked child; each backend implements it."""

    @abstractmethod
    def reader(
        self, state: Any, sync: Sync, idx: int, n: int, warm: int, size: int
    ) -> dict[str, Any]:
        """Runs in a forked child; each backend implements it."""

    @abstractmethod
    def pinger(self, state: Any, sync: Sync, n: int, warm: int, size: int) -> Any:
        """Runs in a forked child; each backend implements it."""

    @abstractmethod
    def ponger(self, state: Any, sync: Sync, idx: int, total: int, size: int) -> dict[str, Any]:
        """Runs in a forked child; each backend implements it."""

    # The harness entry points.
    def run_tput(
        self, readers: int, size: int, n: int, warm: int, timeout: float
    ) -> list[dict[str, Any]]:
        state = self.prepare("tput", size, readers)
        try:
            sync = Sync(readers)
            tasks: list[tuple[Any, tuple[Any, ...], int | None]] = [
                (_role, (self, "writer", state, sync, n, size), writer_core())
            ]
            for i in range(readers):
                tasks.append(
                    (_role, (self, "reader", state, sync, i, n, warm, size), reader_core(i))
                )
            results = common.run_group(tasks, timeout)
            return results[1:]
        finally:
            self.cleanup(state)

    def run_rtt(self, readers: int, size: int, n: int, warm: int, timeout: float) -> Any:
        state = self.prepare("rtt", size, readers)
        try:
            sync = Sync(readers)
            tasks: list[tuple[Any, tuple[Any, ...], int | None]] = [
                (_role, (self, "pinger", state, sync, n, warm, size), writer_core())
            ]
            for i in range(readers):
                tasks.append(
                    (_role, (self, "ponger", state, sync, i, n + warm, size), reader_core(i))
                )
            return common.run_group(tasks, timeout)[0]
        finally:
            self.cleanup(state)


def _role(backend: Backend, role: str, *args: Any) -> Any:
    result = getattr(backend, role)(*args)
    gc.collect()
    return result


# -- mycelium ----------------------------------------------------------------- #


def _unlink_quiet(name: str) -> None:
    from mycelium_shm import unlink

    with contextlib.suppress(OSError):
        unlink(name)
    with contextlib.suppress(OSError):
        os.unlink("/dev/shm/mycelium." + name)


class Mycelium(Backend):
    """mycelium-shm: an ordinary channel (single-reader) or a broadcast channel,
    read with blocking calls or polled with try_* calls and sched_yield()."""

    name = "mycelium"

    def __init__(self, broadcast: bool, wait: str = "blocking", spin_ns: int | None = None) -> None:
        self.broadcast = broadcast
        self.polling = wait == "poll+yield"
        self.wait = wait
        self.spin_ns = spin_ns
        self.variant = "broadcast" if broadcast else "single-reader"
        self.note = (
            "ShmWriter(create=True, readers=N); ShmReader(cursor=..., policy='tethered')"
            if broadcast
            else "ordinary channel: ShmWriter(create=True); ShmReader(name)"
        )
        if self.polling:
            self.note += (
                "; try_write() of a bytes frame (built per message at every size) and "
                "try_read() (read_view(timeout=0) at 64 KiB), sched_yield() after each "
                "miss, as the iceoryx2 rows poll"
            )
        else:
            self.note += "; blocking write()/read() (reserve()/read_view() at 64 KiB)"
        if spin_ns is not None:
            self.wait += f", spin {spin_ns / 1000:g} us"
            self.note += (
                f"; NOT the default: every reader and writer spins {spin_ns / 1000:g} us "
                "before sleeping (C myc_*_set_spin; default 50 us)"
            )

    def _tuned(self, handle: Any, writer: bool) -> Any:
        """Apply --spin-us (the C core's myc_*_set_spin; no Python API) to a handle."""
        if self.spin_ns is not None:
            from mycelium_shm._ring import lib

            setter = lib.myc_writer_set_spin if writer else lib.myc_reader_set_spin
            setter(handle._h, self.spin_ns)
        return handle

    def unavailable(self) -> str | None:
        try:
            from mycelium_shm import ShmReader, ShmWriter
        except Exception as exc:  # a half-built extension
            return f"mycelium_shm not importable ({type(exc).__name__}: {exc}); run `make build`"
        if self.broadcast:
            if "readers" not in inspect.signature(ShmWriter.__init__).parameters:
                return "this mycelium_shm has no broadcast channels (ShmWriter(readers=N))"
            if "cursor" not in inspect.signature(ShmReader.__init__).parameters:
                return "this mycelium_shm has no broadcast readers (ShmReader(cursor=...))"
        return None

    def label(self, readers: int) -> str:
        how = " poll+yield" if self.polling else ""
        if self.broadcast:
            return f"mycelium broadcast{how} x{readers}"
        return f"mycelium single-reader{how}"

    def prepare(self, kind: str, size: int, readers: int) -> Any:
        from mycelium_shm import ShmWriter

        names = [common_unique(SHM_PREFIX)]
        if kind == "rtt":
            names.append(common_unique(SHM_PREFIX))
        for name in names:
            common.register_cleanup(("bbench", name), lambda name=name: _unlink_quiet(name))
        kwargs: dict[str, Any] = {"readers": readers} if self.broadcast else {}
        ShmWriter(names[0], create=True, capacity=CAPACITY, **kwargs).close()
        if kind == "rtt":  # the return channel: N writers, one reader
            ShmWriter(names[1], create=True, capacity=CAPACITY).close()
        return names

    def cleanup(self, state: Any) -> None:
        for name in state:
            _unlink_quiet(name)
            common.unregister_cleanup(("bbench", name))

    def _reader(self, name: str, idx: int) -> Any:
        from mycelium_shm import ShmReader

        if self.broadcast:
            return self._tuned(ShmReader(name, cursor=f"r{idx}", policy="tethered"), False)
        return self._tuned(ShmReader(name), False)

    def _sender(self, w: Any, size: int) -> Callable[[int], None]:
        """send(seq): one frame of `size` bytes carrying seq (see METHOD)."""
        yield_ = os.sched_yield
        if size <= SMALL or self.polling:
            # Polling builds a bytes frame at every size: try_write() of bytes fails in
            # about 50 ns, reserve(timeout=0) in about 75 us (its Full error inspects
            # the channel), so a polled reserve() would measure the error path.
            build = _frame_builder(size)
            if self.polling:
                try_write = w.try_write

                def send(seq: int) -> None:
                    frame = build(seq)
                    while not try_write(TYPE_ID, frame):
                        yield_()
            else:
                write = w.write

                def send(seq: int) -> None:
                    write(TYPE_ID, build(seq))

            return send
        reserve, payload, pack_into = w.reserve, common.payload_of(size), SEQ.pack_into

        def send_big(seq: int) -> None:
            with reserve(TYPE_ID, size) as buf:
                buf[:] = payload
                pack_into(buf, 0, seq)

        return send_big

    def _receiver(self, r: Any, size: int) -> Callable[[], bytes]:
        """recv(): the first 8 bytes of the next frame (round trips only)."""
        yield_ = os.sched_yield
        if size <= SMALL:
            if self.polling:
                try_read = r.try_read

                def recv() -> bytes:
                    frame = try_read()
                    while frame is None:
                        yield_()
                        frame = try_read()
                    data: bytes = frame[1]
                    return data

                return recv
            read = r.read

            def recv_blocking() -> bytes:
                data: bytes = read()[1]
                return data

            return recv_blocking
        view, timeout = r.read_view, 0 if self.polling else None

        def recv_view() -> bytes:
            while True:
                with view(timeout) as frame:
                    if frame is not None:
                        return bytes(frame.payload[:8])
                yield_()

        return recv_view

    def writer(self, state: Any, sync: Sync, n: int, size: int) -> None:
        from mycelium_shm import ShmWriter

        w = self._tuned(ShmWriter(state[0]), True)
        try:
            sync.start.wait(30)
            if size <= SMALL and not self.polling:  # the tight loop a user would write
                write, build = w.write, _frame_builder(size)
                for i in range(n):
                    write(TYPE_ID, build(i))
            else:
                send = self._sender(w, size)
                for i in range(n):
                    send(i)
            sync.finish.wait(60)
        finally:
            w.close()

    def reader(
        self, state: Any, sync: Sync, idx: int, n: int, warm: int, size: int
    ) -> dict[str, Any]:
        r = self._reader(state[0], idx)
        try:
            sync.start.wait(30)
            unpack, yield_ = SEQ.unpack_from, os.sched_yield
            expected = lost = 0
            clock = time.perf_counter_ns
            t0 = clock()
            timed_from, timing = 0, False
            # The loops are written out per mode, as tight as a user would write them.
            if size <= SMALL and not self.polling:
                read = r.read
                while expected < n:
                    if expected == warm and not timing:
                        t0, timed_from, timing = clock(), expected, True
                    seq = unpack(read()[1])[0]
                    if seq != expected:
                        lost += _gap(seq, expected)
                    expected = seq + 1
            elif size <= SMALL:
                try_read = r.try_read
                while expected < n:
                    if expected == warm and not timing:
                        t0, timed_from, timing = clock(), expected, True
                    frame = try_read()
                    while frame is None:
                        yield_()
                        frame = try_read()
                    seq = unpack(frame[1])[0]
                    if seq != expected:
                        lost += _gap(seq, expected)
                    expected = seq + 1
            else:
                view, timeout = r.read_view, 0 if self.polling else None
                while expected < n:
                    if expected == warm and not timing:
                        t0, timed_from, timing = clock(), expected, True
                    with view(timeout) as frame:
                        if frame is None:
                            seq = -1
                        else:
                            payload = frame.payload
                            seq = unpack(payload)[0]
                            payload[-1]  # touch the data, as a consumer would
                    if seq < 0:
                        yield_()
                        continue
                    if seq != expected:
                        lost += _gap(seq, expected)
                    expected = seq + 1
            t1 = clock()
            sync.finish.wait(60)
            return _tput_result(t0, t1, n - timed_from, lost)
        finally:
            r.close()

    def pinger(self, state: Any, sync: Sync, n: int, warm: int, size: int) -> Any:
        from mycelium_shm import ShmReader, ShmWriter

        w = self._tuned(ShmWriter(state[0]), True)
        r = self._tuned(ShmReader(state[1]), False)
        readers = len(sync.ready)
        try:
            send, recv = self._sender(w, size), self._receiver(r, 8)
            unpack, clock = SEQ.unpack_from, time.perf_counter_ns
            sync.start.wait(30)
            lat = [0] * n
            for i in range(n + warm):
                t0 = clock()
                send(i)
                for _ in range(readers):
                    got = unpack(recv())[0]
                    if got != i:
                        raise common.BenchError(f"answer {got} to ping {i}")
                if i >= warm:
                    lat[i - warm] = clock() - t0
            sync.finish.wait(60)
            return lat
        finally:
            r.close()
            w.close()

    def ponger(self, state: Any, sync: Sync, idx: int, total: int, size: int) -> dict[str, Any]:
        from mycelium_shm import ShmWriter

        r, w = self._reader(state[0], idx), self._tuned(ShmWriter(state[1]), True)
        try:
            recv, reply = self._receiver(r, size), self._sender(w, 8)
            unpack = SEQ.unpack_from
            sync.start.wait(30)
            for _ in range(total):
                reply(unpack(recv())[0])
            sync.finish.wait(60)
            return {}
        finally:
            w.close()
            r.close()


_serial = iter(range(1 << 62))


def common_unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_serial)}"


# -- iceoryx2 ----------------------------------------------------------------- #


class Iceoryx2(Backend):
    """iceoryx2's Python publish-subscribe, one service, N subscribers."""

    name = "iceoryx2"
    variant = ""
    wait = "poll+yield"
    note = (
        "iceoryx2 ipc publish-subscribe of Slice[c_uint8], N subscribers (buffer "
        f"{IOX2_BUFFER}), RetryUntilDelivered, no safe overflow; readers poll receive() "
        "with sched_yield() between empty polls"
    )

    def unavailable(self) -> str | None:
        try:
            import iceoryx2 as iox2

            iox2.Slice  # noqa: B018 (the API this backend needs)
            iox2.BackpressureStrategy.RetryUntilDelivered  # noqa: B018
        except Exception as exc:  # ImportError or an API this code predates
            return f"iceoryx2 Python binding unusable: {type(exc).__name__}: {exc}"
        return None

    def label(self, readers: int) -> str:
        return f"iceoryx2 x{readers}"

    def prepare(self, kind: str, size: int, readers: int) -> Any:
        return {
            "names": [common_unique("bbench_") for _ in range(2 if kind == "rtt" else 1)],
            "readers": readers,
            "size": size,
        }

    @staticmethod
    def _node() -> Any:
        import iceoryx2 as iox2

        iox2.set_log_level(iox2.LogLevel.Error)
        return iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)

    @staticmethod
    def _service(node: Any, name: str, readers: int) -> Any:
        import iceoryx2 as iox2

        return (
            node.service_builder(iox2.ServiceName.new(name))
            .publish_subscribe(iox2.Slice[ctypes.c_uint8])
            .enable_safe_overflow(False)
            .history_size(0)
            .subscriber_max_buffer_size(IOX2_BUFFER)
            .max_subscribers(max(2, readers))
            .max_publishers(readers + 1)
            .open_or_create()
        )

    @staticmethod
    def _publisher(service: Any, size: int) -> Any:
        import iceoryx2 as iox2

        return (
            service.publisher_builder()
            .initial_max_slice_len(max(8, size))
            .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
            .create()
        )

    @staticmethod
    def _sender(pub: Any, size: int) -> Callable[[int], None]:
        loan, move, pack = pub.loan_slice_uninit, ctypes.memmove, SEQ.pack
        if size <= SMALL:
            build = _frame_builder(size)

            def send(seq: int) -> None:
                sample = loan(size)
                move(sample.payload_ptr, build(seq), size)
                sample.assume_init().send()
        else:
            payload = common.payload_of(size)

            def send(seq: int) -> None:
                sample = loan(size)
                ptr = sample.payload_ptr
                move(ptr, payload, size)
                move(ptr, pack(seq), 8)
                sample.assume_init().send()

        return send

    @staticmethod
    def _close(ports: list[Any]) -> None:
        for port in ports:
            port.delete()
        ports.clear()
        gc.collect()

    def writer(self, state: Any, sync: Sync, n: int, size: int) -> None:
        node = self._node()
        svc = self._service(node, state["names"][0], state["readers"])
        pub = self._publisher(svc, size)
        ports = [pub]
        try:
            send = self._sender(pub, size)
            sync.start.wait(30)
            deadline = time.monotonic() + 30
            while not sync.all_ready():  # subscriptions take effect asynchronously
                if time.monotonic() > deadline:
                    raise common.BenchError("iceoryx2 readers never saw the handshake")
                send(HELLO)
                time.sleep(0.001)
            for i in range(n):
                send(i)
            sync.finish.wait(60)
        finally:
            self._close(ports)

    def reader(
        self, state: Any, sync: Sync, idx: int, n: int, warm: int, size: int
    ) -> dict[str, Any]:
        node = self._node()
        svc = self._service(node, state["names"][0], state["readers"])
        sub = svc.subscriber_builder().buffer_size(IOX2_BUFFER).create()
        ports = [sub]
        try:
            sync.start.wait(30)
            receive, string_at, yield_ = sub.receive, ctypes.string_at, os.sched_yield
            unpack = SEQ.unpack
            ready = sync.ready[idx]
            expected = lost = 0
            clock = time.perf_counter_ns
            t0 = clock()
            timed_from, timing = 0, warm == 0
            last_len = 0
            while expected < n:
                sample = receive()
                if sample is None:
                    yield_()
                    continue
                ptr = sample.payload_ptr
                seq = unpack(string_at(ptr, 8))[0]
                if size > SMALL:
                    string_at(ptr + size - 1, 1)  # touch the data
                if seq == HELLO:
                    sample.delete()
                    ready.set()
                    continue
                if seq >= n - 1:
                    last_len = sample.header.number_of_elements
                sample.delete()
                if seq != expected:
                    lost += _gap(seq, expected)
                expected = seq + 1
                if not timing and expected >= warm:
                    t0, timed_from, timing = clock(), expected, True
            t1 = clock()
            if last_len != size:
                raise common.BenchError(f"iceoryx2 sample of {last_len} bytes, sent {size}")
            sync.finish.wait(60)
            return _tput_result(t0, t1, n - timed_from, lost)
        finally:
            self._close(ports)

    def pinger(self, state: Any, sync: Sync, n: int, warm: int, size: int) -> Any:
        readers = state["readers"]
        node = self._node()
        out_svc = self._service(node, state["names"][0], readers)
        in_svc = self._service(node, state["names"][1], readers)
        pub = self._publisher(out_svc, size)
        sub = in_svc.subscriber_builder().buffer_size(IOX2_BUFFER).create()
        ports = [pub, sub]
        try:
            send = self._sender(pub, size)
            receive, string_at, unpack = sub.receive, ctypes.string_at, SEQ.unpack
            yield_, clock = os.sched_yield, time.perf_counter_ns

            def answer() -> int:
                while True:
                    sample = receive()
                    if sample is None:
                        yield_()
                        continue
                    seq: int = unpack(string_at(sample.payload_ptr, 8))[0]
                    sample.delete()
                    if seq < HELLO - 1 - readers:  # else a late handshake answer
                        return seq

            sync.start.wait(30)
            _handshake(send, receive, sync, lambda s: unpack(string_at(s.payload_ptr, 8))[0],
                       lambda s: s.delete())  # fmt: skip
            lat = [0] * n
            for i in range(n + warm):
                t0 = clock()
                send(i)
                for _ in range(readers):
                    got = answer()
                    if got != i:
                        raise common.BenchError(f"answer {got} to ping {i}")
                if i >= warm:
                    lat[i - warm] = clock() - t0
            sync.finish.wait(60)
            return lat
        finally:
            self._close(ports)

    def ponger(self, state: Any, sync: Sync, idx: int, total: int, size: int) -> dict[str, Any]:
        readers = state["readers"]
        node = self._node()
        in_svc = self._service(node, state["names"][0], readers)
        out_svc = self._service(node, state["names"][1], readers)
        sub = in_svc.subscriber_builder().buffer_size(IOX2_BUFFER).create()
        pub = self._publisher(out_svc, 16)
        ports = [sub, pub]
        try:
            reply = self._sender(pub, 16)
            receive, string_at, unpack = sub.receive, ctypes.string_at, SEQ.unpack
            yield_ = os.sched_yield
            sync.start.wait(30)
            done = 0
            while done < total:
                sample = receive()
                if sample is None:
                    yield_()
                    continue
                seq = unpack(string_at(sample.payload_ptr, 8))[0]
                sample.delete()
                if seq == HELLO:
                    reply(HELLO - 1 - idx)  # the handshake answer names the reader
                    continue
                reply(seq)
                done += 1
            sync.finish.wait(60)
            return {}
        finally:
            self._close(ports)


def _handshake(send: Callable[[int], None], receive: Callable[[], Any], sync: Sync,
               seq_of: Callable[[Any], int], release: Callable[[Any], None]) -> None:  # fmt: skip
    """Ping HELLO until every reader answered one (answer HELLO - 1 - idx); the
    answers to later HELLOs are skipped by the caller (they carry no ping)."""
    readers = len(sync.ready)
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    while len(seen) < readers:
        if time.monotonic() > deadline:
            raise common.BenchError(f"only {len(seen)} of {readers} readers answered the handshake")
        send(HELLO)
        end = time.monotonic() + 0.005
        while time.monotonic() < end:
            sample = receive()
            if sample is None:
                os.sched_yield()
                continue
            seq = seq_of(sample)
            release(sample)
            if HELLO - 1 - readers < seq < HELLO:
                seen.add(HELLO - 1 - seq)
    # Late answers to the last HELLOs: drain them so that pings see only pings.
    time.sleep(0.02)
    while True:
        sample = receive()
        if sample is None:
            break
        release(sample)


# -- zenoh -------------------------------------------------------------------- #


ZENOH_KEY = "bbench"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Zenoh(Backend):
    """eclipse-zenoh's Python API, peer mode, payloads in zenoh shared memory."""

    name = "zenoh"
    variant = "shm"
    wait = "blocking"
    note = (
        "eclipse-zenoh peer mode over TCP loopback (scouting off), payloads allocated "
        "from zenoh.shm.ShmProvider (shared-memory mode), CongestionControl.BLOCK, "
        "readers: declare_subscriber() FIFO handler recv(), payload.to_bytes()"
    )

    def unavailable(self) -> str | None:
        try:
            import zenoh

            zenoh.shm.ShmProvider.default_backend  # noqa: B018 (the API this backend needs)
            zenoh.CongestionControl.BLOCK  # noqa: B018
        except Exception as exc:
            return f"eclipse-zenoh Python API unusable: {type(exc).__name__}: {exc}"
        return None

    def label(self, readers: int) -> str:
        return f"zenoh shm x{readers}"

    def prepare(self, kind: str, size: int, readers: int) -> Any:
        return {
            "endpoint": f"tcp/127.0.0.1:{_free_port()}",
            "key": f"{ZENOH_KEY}/{os.getpid()}/{next(_serial)}",
            "readers": readers,
        }

    @staticmethod
    def _open(listen: str | None = None, connect: str | None = None) -> Any:
        import zenoh

        conf = zenoh.Config()
        conf.insert_json5("mode", '"peer"')
        conf.insert_json5("scouting/multicast/enabled", "false")
        conf.insert_json5("scouting/gossip/enabled", "false")
        conf.insert_json5("transport/shared_memory/enabled", "true")
        if listen:
            conf.insert_json5("listen/endpoints", json.dumps([listen]))
        if connect:
            conf.insert_json5("connect/endpoints", json.dumps([connect]))
        return zenoh.open(conf)

    @staticmethod
    def _sender(session: Any, key: str, size: int, pool: int) -> Callable[[int], None]:
        import zenoh

        provider = zenoh.shm.ShmProvider.default_backend(pool)
        pub = session.declare_publisher(key, congestion_control=zenoh.CongestionControl.BLOCK)
        alloc, put = provider.alloc, pub.put
        policy = zenoh.shm.BlockOn(zenoh.shm.GarbageCollect())
        if size <= SMALL:
            build = _frame_builder(size)

            def send(seq: int) -> None:
                buf = alloc(size, policy=policy)
                buf[0:size] = build(seq)
                put(buf)
        else:
            payload, pack = common.payload_of(size), SEQ.pack

            def send(seq: int) -> None:
                buf = alloc(size, policy=policy)
                buf[0:size] = payload
                buf[0:8] = pack(seq)
                put(buf)

        send.publisher = pub  # type: ignore[attr-defined]  # kept alive with the sender
        return send

    def writer(self, state: Any, sync: Sync, n: int, size: int) -> None:
        session = self._open(listen=state["endpoint"])
        try:
            send = self._sender(session, state["key"], size, CAPACITY)
            sync.start.wait(30)
            deadline = time.monotonic() + 30
            while not sync.all_ready():
                if time.monotonic() > deadline:
                    raise common.BenchError("zenoh readers never saw the handshake")
                send(HELLO)
                time.sleep(0.002)
            for i in range(n):
                send(i)
            sync.finish.wait(60)
        finally:
            session.close()

    def reader(
        self, state: Any, sync: Sync, idx: int, n: int, warm: int, size: int
    ) -> dict[str, Any]:
        session = self._open(connect=state["endpoint"])
        try:
            sub = session.declare_subscriber(state["key"])
            recv, unpack = sub.recv, SEQ.unpack_from
            ready = sync.ready[idx]
            sync.start.wait(30)
            expected = lost = shm = received = 0
            clock = time.perf_counter_ns
            t0 = clock()
            timed_from, timing = 0, warm == 0
            data = b""
            while expected < n:
                payload = recv().payload
                received += 1
                if payload.as_shm() is not None:
                    shm += 1
                data = payload.to_bytes()
                seq = unpack(data)[0]
                if seq == HELLO:
                    ready.set()
                    continue
                if seq != expected:
                    lost += _gap(seq, expected)
                expected = seq + 1
                if not timing and expected >= warm:
                    t0, timed_from, timing = clock(), expected, True
            t1 = clock()
            if len(data) != size:
                raise common.BenchError(f"zenoh sample of {len(data)} bytes, sent {size}")
            sync.finish.wait(60)
            return _tput_result(t0, t1, n - timed_from, lost, shm=shm, received=received)
        finally:
            session.close()

    def pinger(self, state: Any, sync: Sync, n: int, warm: int, size: int) -> Any:
        readers = state["readers"]
        session = self._open(listen=state["endpoint"])
        try:
            send = self._sender(session, state["key"] + "/ping", size, CAPACITY)
            sub = session.declare_subscriber(state["key"] + "/pong")
            recv, try_recv, unpack = sub.recv, sub.try_recv, SEQ.unpack_from
            clock = time.perf_counter_ns
            sync.start.wait(30)
            _handshake(send, try_recv, sync, lambda s: unpack(s.payload.to_bytes())[0],
                       lambda s: None)  # fmt: skip
            lat = [0] * n
            for i in range(n + warm):
                t0 = clock()
                send(i)
                for _ in range(readers):
                    got = unpack(recv().payload.to_bytes())[0]
                    while got >= HELLO - 1 - readers:  # a late handshake answer
                        got = unpack(recv().payload.to_bytes())[0]
                    if got != i:
                        raise common.BenchError(f"answer {got} to ping {i}")
                if i >= warm:
                    lat[i - warm] = clock() - t0
            sync.finish.wait(60)
            return lat
        finally:
            session.close()

    def ponger(self, state: Any, sync: Sync, idx: int, total: int, size: int) -> dict[str, Any]:
        session = self._open(connect=state["endpoint"])
        try:
            sub = session.declare_subscriber(state["key"] + "/ping")
            reply = self._sender(session, state["key"] + "/pong", 16, 1 << 16)
            recv, unpack = sub.recv, SEQ.unpack_from
            sync.start.wait(30)
            done = 0
            while done < total:
                seq = unpack(recv().payload.to_bytes())[0]
                if seq == HELLO:
                    reply(HELLO - 1 - idx)
                    continue
                reply(seq)
                done += 1
            sync.finish.wait(60)
            return {}
        finally:
            session.close()


def zenoh_shm_objects() -> set[str]:
    return set(glob.glob(ZENOH_SHM_GLOB))


def backends(spin_ns: int | None = None, waits: tuple[str, ...] = WAITS) -> list[Backend]:
    """Every backend, in report order (the baselines first)."""
    ours: list[Backend] = []
    for wait in waits:
        ours += [Mycelium(False, wait, spin_ns), Mycelium(True, wait, spin_ns)]
    return [*ours, Iceoryx2(), Zenoh()]


# --------------------------------------------------------------------------- #
# Measurement                                                                 #
# --------------------------------------------------------------------------- #


class Entry:
    """A row being measured: its backend, reader count, counts and runs."""

    def __init__(self, backend: Backend, kind: str, size: int, readers: int) -> None:
        self.backend = backend
        self.kind = kind
        self.size = size
        self.readers = readers
        self.n = 0
        self.warm = 0
        self.runs: list[dict[str, Any]] = []
        self.status = "ok"
        self.reason = ""
        self.samples: list[int] = []  # rtt: the median run's samples (for percentiles)

    def run_once(self, n: int, warm: int, timeout: float) -> dict[str, Any]:
        b = self.backend
        if self.kind == "tput":
            per = b.run_tput(self.readers, self.size, n, warm, timeout)
            rates = [r["count"] / (r["elapsed_ns"] / 1e9) for r in per]
            shm = [r["shm"] for r in per if r["shm"] >= 0]
            return {
                "per_reader_msgs_per_s": min(rates),
                "aggregate_msgs_per_s": sum(rates),
                "reader_msgs_per_s": rates,
                "lost": sum(r["lost"] for r in per),
                "shm_samples": sum(shm) if shm else None,
                "received": sum(r["received"] for r in per),
                "samples": sum(r["count"] for r in per),
            }
        lat = sorted(b.run_rtt(self.readers, self.size, n, warm, timeout))
        out = common.latency_summary(lat)
        out["_lat"] = lat
        return out

    def calibrate(self, cfg: Config) -> None:
        """Size the timed runs from one discarded run (smoke runs: fixed counts)."""
        if cfg.mode == "smoke":
            self.n = cfg.count(self.kind, 0.0)
            self.warm = max(1, self.n // 10)
            return
        cal = cfg.calibration(self.kind, self.size)
        warm = max(1, cal // 10) if self.kind == "tput" else max(10, cal // 10)
        run = self.run_once(cal, warm, cfg.run_timeout)
        if self.kind == "tput":
            rate = run["per_reader_msgs_per_s"]
        else:
            rate = 1e9 / max(1.0, run["mean_ns"])
        self.n = cfg.count(self.kind, rate)
        self.warm = max(1, self.n // 10) if self.kind == "tput" else max(10, self.n // 10)

    def measure(self, cfg: Config) -> None:
        run = self.run_once(self.n, self.warm, cfg.run_timeout)
        lat = run.pop("_lat", None)
        self.runs.append(run)
        if lat is not None and len(self.runs) == (cfg.repeats + 1) // 2:
            self.samples = lat  # a middle run's samples, for the percentile curve


def base_row(entry: Entry) -> dict[str, Any]:
    b = entry.backend
    return {
        "name": b.name,
        "variant": b.variant,
        "label": b.label(entry.readers),
        "kind": entry.kind,
        "size": entry.size,
        "readers": entry.readers,
        "wait": b.wait,
        "note": b.note,
        "writer_core": writer_core(),
        "reader_cores": [reader_core(i) for i in range(entry.readers)],
        "status": entry.status,
        "reason": entry.reason or None,
    }


RUN_KEYS = ("per_reader_msgs_per_s", "aggregate_msgs_per_s", "reader_msgs_per_s", "lost")


def finish_row(entry: Entry, cfg: Config) -> dict[str, Any]:
    row = base_row(entry)
    if entry.status != "ok" or not entry.runs:
        return row
    runs = entry.runs
    row.update({"n": entry.n, "warm": entry.warm, "repeats": len(runs)})
    if entry.kind == "tput":
        per = common.median([r["per_reader_msgs_per_s"] for r in runs])
        row.update(
            {
                "per_reader_msgs_per_s": per,
                "aggregate_msgs_per_s": common.median([r["aggregate_msgs_per_s"] for r in runs]),
                "per_reader_mb_per_s": per * entry.size / 1e6,
                "lost": sum(r["lost"] for r in runs),
                "runs": [{k: r[k] for k in RUN_KEYS} for r in runs],
            }
        )
        shm = [r["shm_samples"] for r in runs if r["shm_samples"] is not None]
        if shm:
            row["shm_fraction"] = sum(shm) / max(1, sum(r["received"] for r in runs))
    else:
        for key in ("p50_ns", "p99_ns", "p999_ns", "mean_ns", "min_ns"):
            row[key] = common.median([r[key] for r in runs])
        row["runs"] = [{k: r[k] for k in ("p50_ns", "p99_ns", "p999_ns", "mean_ns")} for r in runs]
        if entry.samples:
            row["curve"] = common.quantile_curve(entry.samples, points=100)
    return row


def plan(selected: list[Backend], readers: tuple[int, ...], size: int, kind: str) -> list[Entry]:
    out: list[Entry] = []
    for b in selected:
        counts = (1,) if isinstance(b, Mycelium) and not b.broadcast else readers
        out.extend(Entry(b, kind, size, n) for n in counts)
    return out


def measure_all(cfg: Config, selected: list[Backend], sizes: tuple[int, ...],
                readers: tuple[int, ...], kinds: tuple[str, ...],
                log: Callable[[str], None]) -> list[dict[str, Any]]:  # fmt: skip
    """Every row: per (kind, size), calibrate each row, then interleave repeats."""
    start = time.monotonic()
    rows = []

    def over_budget() -> bool:
        return time.monotonic() - start > cfg.budget_s

    for kind in kinds:
        for size in sizes:
            entries = plan(selected, readers, size, kind)
            for e in entries:
                reason = e.backend.unavailable()
                if reason:
                    e.status, e.reason = "unavailable", reason
                    continue
                if over_budget():
                    e.status, e.reason = "skipped", "time budget spent"
                    continue
                try:
                    e.calibrate(cfg)
                except Exception as exc:  # one broken backend must not end the run
                    e.status, e.reason = "error", _reason(exc)
                    log(
                        f"{kind} {size} B {e.backend.label(e.readers)}: calibration failed: {e.reason}"
                    )
            for rep in range(cfg.repeats):
                for e in entries:
                    if e.status != "ok":
                        continue
                    if over_budget():
                        e.status, e.reason = "skipped", "time budget spent"
                        continue
                    try:
                        e.measure(cfg)
                    except Exception as exc:
                        e.status, e.reason = "error", _reason(exc)
                        log(f"{kind} {size} B {e.backend.label(e.readers)}: failed: {e.reason}")
                log(f"{kind} {size} B: repeat {rep + 1}/{cfg.repeats} done "
                    f"({time.monotonic() - start:.0f} s)")  # fmt: skip
            for e in entries:
                row = finish_row(e, cfg)
                rows.append(row)
                log(f"  {done_line(row)}")
    return rows


def _reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def done_line(row: dict[str, Any]) -> str:
    what = f"{row['kind']} {_size(row['size'])} {row['label']}"
    if row["status"] != "ok":
        return f"{what}: {row['status']} ({row['reason']})"
    if row["kind"] == "tput":
        return f"{what}: {row['per_reader_msgs_per_s']:,.0f} msgs/s per reader"
    return f"{what}: p50 {row['p50_ns'] / 1000:.2f} us"


# --------------------------------------------------------------------------- #
# Ratios and targets                                                          #
# --------------------------------------------------------------------------- #


def _find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()) and row.get("status") == "ok":
            return row
    return None


def _value(run: dict[str, Any], kind: str) -> float:
    return float(run["per_reader_msgs_per_s"] if kind == "tput" else run["p50_ns"])


def paired_ratio(
    a: dict[str, Any], b: dict[str, Any], kind: str, key: str | None = None
) -> float | None:
    """Median over repeats of a/b (tput: per-reader msgs/s; rtt: p50; or `key` of a's
    runs over b's per-reader msgs/s), repeat i against repeat i."""
    pairs = list(zip(a.get("runs") or [], b.get("runs") or []))
    ratios = [
        (float(x[key]) if key else _value(x, kind)) / _value(y, kind)
        for x, y in pairs
        if _value(y, kind) > 0
    ]
    return common.median(ratios) if ratios else None


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """vs_single_reader on every mycelium broadcast row (against the single-reader row
    that waits the same way); mycelium_advantage on every peer row, against the best
    mycelium broadcast row with as many readers (>= 1: mycelium better; tput: ours /
    peer, rtt: peer p50 / ours p50), with that row's label in mycelium_row."""
    for row in rows:
        if row["status"] != "ok":
            continue
        kind, size = row["kind"], row["size"]
        if row["name"] == "mycelium" and row["variant"] == "broadcast":
            base = _find(rows, name="mycelium", variant="single-reader", kind=kind, size=size,
                         wait=row["wait"])  # fmt: skip
            row["vs_single_reader"] = paired_ratio(row, base, kind) if base else None
            if kind == "tput":  # frames delivered in total, over the single reader's
                row["aggregate_vs_single_reader"] = (
                    paired_ratio(row, base, kind, "aggregate_msgs_per_s") if base else None
                )
        elif row["name"] != "mycelium":
            best: tuple[float, str] | None = None
            for ours in rows:
                if not (
                    ours["name"] == "mycelium"
                    and ours["variant"] == "broadcast"
                    and ours["status"] == "ok"
                    and ours["kind"] == kind
                    and ours["size"] == size
                    and ours["readers"] == row["readers"]
                ):
                    continue  # fmt: skip
                if kind == "tput":
                    ratio = paired_ratio(ours, row, kind)
                else:
                    ratio = paired_ratio(row, ours, kind)
                if ratio is not None and (best is None or ratio > best[0]):
                    best = (ratio, ours["label"])
            row["mycelium_advantage"] = best[0] if best else None
            row["mycelium_row"] = best[1] if best else None


def evaluate_targets(rows: list[dict[str, Any]], sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """The issue's targets, each on the best mycelium row that qualifies; a target
    whose rows are missing reads not measured."""
    out = []
    for size in sizes:
        best: tuple[float, str] | None = None
        for row in rows:
            if (row["name"], row["variant"], row["kind"], row["size"], row["readers"]) == (
                "mycelium", "broadcast", "tput", size, 4
            ) and row.get("vs_single_reader") is not None:  # fmt: skip
                if best is None or row["vs_single_reader"] > best[0]:
                    best = (row["vs_single_reader"], row["label"])
        out.append({
            "id": f"fanout-tput-{size}",
            "description": f"{_size(size)}: per-reader throughput with 4 readers >= "
                           f"{FANOUT_TARGET}x single-reader mode",
            "value": best[0] if best else None, "threshold": FANOUT_TARGET, "op": ">=",
            "pass": best is not None and best[0] >= FANOUT_TARGET,
            "row": best[1] if best else None,
        })  # fmt: skip
    for kind in ("tput", "rtt"):
        for size in sizes:
            for row in rows:
                if row["kind"] != kind or row["size"] != size or row["name"] == "mycelium":
                    continue
                value = row.get("mycelium_advantage")
                what = "per-reader msgs/s" if kind == "tput" else "RTT p50"
                out.append({
                    "id": f"peer-{kind}-{size}-{row['name']}-x{row['readers']}",
                    "description": f"{_size(size)} {what}, {row['readers']} readers: mycelium "
                                   f">= {PEER_TARGET}x {row['label']}",
                    "value": value, "threshold": PEER_TARGET, "op": ">=",
                    "pass": value is not None and value >= PEER_TARGET,
                    "row": row.get("mycelium_row"),
                    "note": None if row["status"] == "ok" else f"{row['status']}: {row['reason']}",
                })  # fmt: skip
    return out


# --------------------------------------------------------------------------- #
# Report                                                                      #
# --------------------------------------------------------------------------- #


def _size(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def _rate(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _us(ns: float | None) -> str:
    return "" if ns is None else f"{ns / 1000:.2f}"


def verdict(target: dict[str, Any]) -> str:
    if target["value"] is None:
        return "not measured"
    return "PASS" if target["pass"] else "FAIL"


def markdown(result: dict[str, Any]) -> str:
    rows, m = result["rows"], result["machine"]
    lines = [
        "# Broadcast fan-out benchmark",
        "",
        f"`{' '.join(['python bench/bench_broadcast.py', *result['argv']])}` at "
        f"{result['started_utc']}, {result['elapsed_s']} s"
        + (" (**smoke/quick run: counts too small, numbers mean nothing**)"
           if result["config"]["mode"] != "full" else "") + ".",
        "",
        f"Machine: {m['cpu_model']}, {m['cpus']} CPUs (allowed {m['allowed_cores']}), kernel "
        f"{m['kernel']}, Python {m['python']}; load average {m['loadavg_start']} before, "
        f"{m['loadavg_end']} after. Packages: "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + ".",
        "",
        f"**Pinning** (`--pin {result['pinning']['layout']}`, sched_setaffinity): "
        f"{result['pinning']['description']}; with {len(m['allowed_cores'])} cores the 2- "
        "and 4-reader rows share cores (each row lists its cores in the JSON). "
        "**zenoh runs in its shared-memory mode** (payloads from `zenoh.shm.ShmProvider`; "
        "the `shm` column is the share of samples that readers received as SHM buffers).",
        "",
        "## Targets",
        "",
        "| target | value | threshold | verdict | mycelium row |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for t in result["targets"]:
        lines.append(f"| {t['description']} | {_x(t['value']) or 'not measured'} | "
                     f"{t['op']} {t['threshold']}x | {verdict(t)} | {t['row'] or ''} |")  # fmt: skip
    lines += [
        "",
        "## Throughput (per reader)",
        "",
        "Per-reader msgs/s is the slowest reader's rate (median over repeats); aggregate is "
        "the sum over readers. `x single` is per-reader msgs/s against the mycelium "
        "single-reader row that waits the same way, `aggregate x single` the aggregate "
        "against it, and `mycelium x` is the better mycelium broadcast row with as many "
        "readers against the row (all medians of per-repeat ratios; >= 1: mycelium "
        "faster). Every reader does the same work per frame as the single reader, so on "
        f"{len(m['allowed_cores'])} cores N readers and a writer cannot all run at once: "
        "per-reader throughput is bounded by about cores / (N + 1) of single-reader "
        "(readers and writer costing alike per frame), whatever the channel does; "
        "`aggregate x single` shows how much of that the channel keeps.",
        "",
        "| row | size | readers | per-reader msgs/s | MB/s | aggregate msgs/s | x single "
        "| aggregate x single | mycelium x | lost | shm | runs (per reader) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        if r["kind"] != "tput" or r["status"] != "ok":
            continue
        runs = [x["per_reader_msgs_per_s"] for x in r["runs"]]
        shm = r.get("shm_fraction")
        lines.append(
            f"| {r['label']} | {_size(r['size'])} | {r['readers']} | "
            f"{_rate(r['per_reader_msgs_per_s'])} | {r['per_reader_mb_per_s']:.1f} | "
            f"{_rate(r['aggregate_msgs_per_s'])} | {_x(r.get('vs_single_reader'))} | "
            f"{_x(r.get('aggregate_vs_single_reader'))} | "
            f"{_x(r.get('mycelium_advantage'))} | {r['lost']} | "
            f"{'' if shm is None else f'{shm:.0%}'} | {_rate(min(runs))} - {_rate(max(runs))} |"
        )  # fmt: skip
    lines += [
        "",
        "## Round trip to all readers",
        "",
        "One frame to every reader, each answers its 8-byte sequence number on a shared "
        "return channel; a trip ends with the last answer. `x single` is p50 against the "
        "single-reader row (higher is slower); `mycelium x` is the row's p50 over mycelium "
        "broadcast's with as many readers (>= 1: mycelium faster).",
        "",
        "| row | size | readers | p50 us | p99 us | p99.9 us | x single | mycelium x | runs p50 us |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] != "rtt" or r["status"] != "ok":
            continue
        runs = [x["p50_ns"] for x in r["runs"]]
        lines.append(
            f"| {r['label']} | {_size(r['size'])} | {r['readers']} | {_us(r['p50_ns'])} | "
            f"{_us(r['p99_ns'])} | {_us(r['p999_ns'])} | {_x(r.get('vs_single_reader'))} | "
            f"{_x(r.get('mycelium_advantage'))} | {_us(min(runs))} - {_us(max(runs))} |"
        )  # fmt: skip
    missing = [r for r in rows if r["status"] != "ok"]
    if missing:
        lines += ["", "## Rows not measured", "", "| row | kind | size | status | reason |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in missing:
            lines.append(f"| {r['label']} | {r['kind']} | {_size(r['size'])} | {r['status']} | "
                         f"{r['reason']} |")  # fmt: skip
    lines += ["", "## Rows", ""]
    seen = set()
    for r in rows:
        key = (r["name"], r["variant"], r["wait"])
        if key not in seen:
            seen.add(key)
            what = f"{r['name']} {r['variant']}".strip()
            lines.append(f"- **{what}** ({r['wait']}): {r['note']}")
    lines += ["", "## Method", ""] + [f"- {m}" for m in result["method"]]
    return "\n".join(lines)


def summary(result: dict[str, Any]) -> str:
    lines = [f"bench_broadcast: {len(result['rows'])} rows in {result['elapsed_s']} s"
             + ("" if result["config"]["mode"] == "full" else
                f" ({result['config']['mode']} run: numbers mean nothing)"),
             f"  pinning ({result['pinning']['layout']}): {result['pinning']['description']}",
             "  zenoh runs in its shared-memory mode (zenoh.shm.ShmProvider payloads)"]  # fmt: skip
    for r in result["rows"]:
        lines.append("  " + done_line(r))
    for t in result["targets"]:
        lines.append(f"  {verdict(t).upper()} {t['description']}: {_x(t['value']) or '-'}")
    lines.append("  wrote " + ", ".join(result["outputs"].values()))
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Main                                                                        #
# --------------------------------------------------------------------------- #


def machine_info() -> dict[str, Any]:
    from importlib import metadata

    packages: dict[str, str | None] = {}
    for name in ("mycelium-shm", "iceoryx2", "eclipse-zenoh"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    return {
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "allowed_cores": common.allowed_cores(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": packages,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def remove_zenoh_leftovers(before: set[str]) -> list[str]:
    """Unlink zenoh SHM segments this run created (its processes are all reaped)."""
    removed = []
    for path in sorted(zenoh_shm_objects() - before):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(path)
    return removed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    speed = p.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="short runs, 2 repeats")
    speed.add_argument("--smoke", action="store_true",
                       help="tiny fixed counts, 1 repeat: checks the harness only")  # fmt: skip
    p.add_argument("--readers", default=",".join(map(str, READERS)), help="e.g. 1,2,4")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="e.g. 64,65536")
    p.add_argument("--kinds", default="tput,rtt", help="tput, rtt or both")
    p.add_argument("--only", default="", help="backends to run: mycelium,iceoryx2,zenoh")
    p.add_argument("--repeats", type=int, help="timed runs per row")
    p.add_argument("--pin", choices=sorted(PINNINGS), default="apart",
                   help="process placement (default apart: " + PINNINGS["apart"] + ")")  # fmt: skip
    p.add_argument("--spin-us", type=float,
                   help="mycelium only, not the default: spin this long before sleeping "
                        "(C myc_*_set_spin; the library default is 50 us)")  # fmt: skip
    p.add_argument("--target-s", type=float, help="wanted seconds per timed run")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"), help="output directory")
    p.add_argument("--check-targets", action="store_true",
                   help="exit 1 if a target is missed or not measured")  # fmt: skip
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config("smoke" if args.smoke else "quick" if args.quick else "full")
    if args.repeats:
        cfg.repeats = args.repeats
    if args.target_s:
        cfg.target_s = args.target_s
    readers = tuple(int(x) for x in args.readers.split(","))
    if max(readers) > 10 or min(readers) < 1:
        raise SystemExit("--readers: 1 to 10 readers per channel")
    sizes = tuple(int(x) for x in args.sizes.split(","))
    kinds = tuple(k for k in ("tput", "rtt") if k in args.kinds.split(","))
    only = [o.strip() for o in args.only.split(",") if o.strip()]
    PINNING["layout"] = args.pin
    spin_ns = None if args.spin_us is None else int(args.spin_us * 1000)
    selected = [b for b in backends(spin_ns) if not only or b.name in only]

    common.install_cleanup_handlers()
    iox2_before, zenoh_before = iceoryx_shm_objects(), zenoh_shm_objects()
    common.register_cleanup("iceoryx2", lambda: remove_iceoryx_leftovers(iox2_before))
    common.register_cleanup("zenoh", lambda: remove_zenoh_leftovers(zenoh_before))
    started = datetime.datetime.now(datetime.timezone.utc)
    machine = machine_info()
    t0 = time.monotonic()

    def log(message: str) -> None:
        sys.stderr.write(f"[bench_broadcast {time.monotonic() - t0:5.0f} s] {message}\n")
        sys.stderr.flush()

    log(f"{cfg.mode} run: readers {readers}, sizes {sizes}, {kinds}, "
        f"load average {machine['loadavg_start']}")  # fmt: skip
    rows = measure_all(cfg, selected, sizes, readers, kinds, log)
    add_ratios(rows)
    common.unregister_cleanup("iceoryx2")
    common.unregister_cleanup("zenoh")
    for path in remove_iceoryx_leftovers(iox2_before) + remove_zenoh_leftovers(zenoh_before):
        log(f"removed leftover {path}")
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    os.makedirs(args.out, exist_ok=True)
    result: dict[str, Any] = {
        "started_utc": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - t0, 1),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "config": cfg.asdict(),
        "machine": machine,
        "method": METHOD,
        "pinning": {
            "layout": args.pin,
            "description": PINNINGS[args.pin],
            "writer_core": writer_core(),
            "reader_cores": [reader_core(i) for i in range(max(readers))],
        },
        "rows": rows,
        "targets": evaluate_targets(rows, sizes),
        "outputs": {
            "json": os.path.join(args.out, "broadcast.json"),
            "markdown": os.path.join(args.out, "broadcast.md"),
        },
    }
    _write(result["outputs"]["json"], json.dumps(result, indent=1) + "\n")
    _write(result["outputs"]["markdown"], markdown(result) + "\n")
    print(summary(result))
    if args.check_targets and not all(t["pass"] for t in result["targets"]):
        return 1
    return 0


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
