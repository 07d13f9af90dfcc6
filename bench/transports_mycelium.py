"""mycelium-shm's own Python rows: single calls, batches and zero-copy.

Every row uses the public API only (ShmWriter / ShmReader), with the same
1 MiB ring as the other shared-memory transports.  "blocking" rows let the
library wait (it spins briefly in C, then sleeps on a futex); "busy-poll"
rows spin in Python on try_write/try_read (or timeout=0 calls).
"""

import array
import os
import time

from . import common
from .transports import RING_CAPACITY, Endpoint, ForkedTransport, unique_name

TYPE_ID = 1
BATCH = 64  # frames per write_many / read_many call (fewer for big payloads)

# Which (mode, wait) pairs exist for which measurement.
RTT_VARIANTS = [("single", "blocking"), ("single", "busy-poll"), ("zero-copy", "blocking")]
TPUT_VARIANTS = [
    ("single", "blocking"),
    ("single", "busy-poll"),
    ("batch", "blocking"),
    ("batch", "busy-poll"),
    ("zero-copy", "blocking"),
]


def import_error():
    """None if mycelium_shm's channel API can be imported, else why not."""
    try:
        from mycelium_shm import ShmReader, ShmWriter, unlink  # noqa: F401
    except Exception as exc:  # ImportError, or a half-built extension
        return f"mycelium_shm not importable ({type(exc).__name__}: {exc}); run `make build`"
    return None


def batch_size(size):
    """Frames per batch call: BATCH, but a batch stays within 1/4 of the ring."""
    return max(1, min(BATCH, RING_CAPACITY // 4 // (size + 8)))


class MyceliumTransport(ForkedTransport):
    """mycelium_shm.ShmWriter/ShmReader in one of its calling modes."""

    name = "mycelium"

    def __init__(self, mode="single", wait="blocking"):
        self.mode = mode
        self.wait = wait
        kinds = []
        if (mode, wait) in RTT_VARIANTS:
            kinds.append("rtt")
        if (mode, wait) in TPUT_VARIANTS:
            kinds.append("tput")
        self.kinds = tuple(kinds)
        self.note = {
            "single": "write()/read()" if wait == "blocking" else "try_write()/try_read() spin",
            "batch": (
                f"write_many()/read_many(), up to {BATCH} frames per call"
                + ("" if wait == "blocking" else ", read_many(timeout=0) spin")
            ),
            "zero-copy": "reserve()/read_view(); the reader touches one payload byte",
        }[mode]

    def unavailable(self):
        return import_error()

    # -- parent side ------------------------------------------------------- #

    def prepare(self, kind, size, count=None):
        from mycelium_shm import ShmWriter, unlink

        names = [unique_name("mbench") for _ in range(count or (2 if kind == "rtt" else 1))]
        for name in names:
            common.register_cleanup(
                ("mycelium", name), lambda name=name: _quiet_unlink(unlink, name)
            )
            ShmWriter(name, create=True, capacity=RING_CAPACITY).close()
        return names

    def cleanup(self, names):
        from mycelium_shm import unlink

        for name in names:
            _quiet_unlink(unlink, name)
            common.unregister_cleanup(("mycelium", name))

    # -- child side -------------------------------------------------------- #

    def open(self, names, role):
        from mycelium_shm import ShmReader, ShmWriter

        if role == "send":
            w = ShmWriter(names[0])
            return Endpoint(closers=[w.close], send=w, recv=None)
        if role == "recv":
            r = ShmReader(names[0])
            return Endpoint(closers=[r.close], send=None, recv=r)
        out_name, in_name = (names[0], names[1]) if role == "ping" else (names[1], names[0])
        r = ShmReader(in_name)
        w = ShmWriter(out_name)
        return Endpoint(closers=[r.close, w.close], send=w, recv=r)

    # The loops below are written out per mode, as tight as a user would
    # write them (bound methods in locals, no wrapper function per message),
    # so the rows measure the library rather than the harness.

    def ping(self, ep, payload, n, warm):
        trips = self._trips(ep, payload)
        trips(warm, None)  # warm-up, untimed
        lat = array.array("q", bytes(8 * n))
        got = trips(n, lat)
        if got != len(payload):
            raise common.BenchError(f"echo of {got} bytes, sent {len(payload)}")
        return lat

    def _trips(self, ep, payload):
        """A function doing k round trips, storing times in lat (if given);
        it returns the last echo's length."""
        w, r = ep.send, ep.recv
        clock = time.perf_counter_ns
        size = len(payload)
        if self.mode == "zero-copy":
            reserve, view = w.reserve, r.read_view

            def trips(k, lat):
                got = 0
                for i in range(k):
                    t0 = clock()
                    with reserve(TYPE_ID, size) as buf:
                        buf[:] = payload
                    with view() as frame:
                        got = frame.payload.nbytes  # only the length: zero-copy
                    if lat is not None:
                        lat[i] = clock() - t0
                return got
        elif self.wait == "busy-poll":
            try_write, try_read = w.try_write, r.try_read

            def trips(k, lat):
                frame = (0, b"")
                for i in range(k):
                    t0 = clock()
                    while not try_write(TYPE_ID, payload):
                        pass
                    frame = try_read()
                    while frame is None:
                        frame = try_read()
                    if lat is not None:
                        lat[i] = clock() - t0
                return len(frame[1])
        else:
            write, read = w.write, r.read

            def trips(k, lat):
                frame = (0, b"")
                for i in range(k):
                    t0 = clock()
                    write(TYPE_ID, payload)
                    frame = read()
                    if lat is not None:
                        lat[i] = clock() - t0
                return len(frame[1])

        return trips

    def pong(self, ep, size, total):
        w, r = ep.send, ep.recv
        if self.mode == "zero-copy":
            reserve, view = w.reserve, r.read_view
            for _ in range(total):
                with view() as frame:
                    data = frame.payload
                    with reserve(frame.type_id, len(data)) as buf:
                        buf[:] = data  # ring to ring, no Python bytes object
        elif self.wait == "busy-poll":
            try_write, try_read = w.try_write, r.try_read
            for _ in range(total):
                frame = try_read()
                while frame is None:
                    frame = try_read()
                while not try_write(frame[0], frame[1]):
                    pass
        else:
            write, read = w.write, r.read
            for _ in range(total):
                write(*read())
        return None

    def send(self, ep, payload, n):
        w = ep.send
        if self.mode == "batch":
            per = batch_size(len(payload))
            batch = [(TYPE_ID, payload)] * per
            write_many = w.write_many
            timeout = 0 if self.wait == "busy-poll" else None
            left = n
            while left:
                left -= write_many(batch if left >= per else batch[:left], timeout)
        elif self.mode == "zero-copy":
            reserve, size = w.reserve, len(payload)
            for _ in range(n):
                with reserve(TYPE_ID, size) as buf:
                    buf[:] = payload
        elif self.wait == "busy-poll":
            try_write = w.try_write
            for _ in range(n):
                while not try_write(TYPE_ID, payload):
                    pass
        else:
            write = w.write
            for _ in range(n):
                write(TYPE_ID, payload)
        return None

    def recv(self, ep, size, n, warm):
        r = ep.recv
        if self.mode == "batch":
            return _recv_batched(
                r, size, n, warm, batch_size(size), None if self.wait == "blocking" else 0
            )
        if self.mode == "zero-copy":
            view = r.read_view

            def reads(k):
                got = 0
                for _ in range(k):
                    with view() as frame:
                        payload = frame.payload
                        payload[-1]  # touch the data, as a consumer would
                        got = payload.nbytes
                return got
        elif self.wait == "busy-poll":
            try_read = r.try_read

            def reads(k):
                frame = (0, b"")
                for _ in range(k):
                    frame = try_read()
                    while frame is None:
                        frame = try_read()
                return len(frame[1])
        else:
            read = r.read

            def reads(k):
                frame = (0, b"")
                for _ in range(k):
                    frame = read()
                return len(frame[1])

        reads(warm)
        t0 = time.perf_counter_ns()
        got = reads(n - warm)
        elapsed = time.perf_counter_ns() - t0
        if got != size:
            raise common.BenchError(f"received {got} bytes, expected {size}")
        return elapsed, n - warm

    # -- multi-writer ------------------------------------------------------ #

    def run_mw(self, writers, size, n_each, warm, timeout):
        """`writers` processes write() n_each frames each into one channel;
        one reader drains it with read_many() and times the total."""
        from .cring import mw_cores

        names = self.prepare("tput", size)
        try:
            reader_core, writer_cores = mw_cores(writers)
            barrier = common.CTX.Barrier(writers + 1)
            payload = common.payload_of(size)
            reader = MyceliumTransport("batch", "blocking")
            tasks = [
                (
                    _mw_role,
                    (reader, names, "recv", barrier, (size, writers * n_each, warm)),
                    reader_core,
                )
            ]
            for core in writer_cores:
                tasks.append((_mw_role, (self, names, "send", barrier, (payload, n_each)), core))
            return common.run_group(tasks, timeout)[0]
        finally:
            self.cleanup(names)


def _mw_role(transport, names, role, barrier, args):
    from .transports import _role_main

    return _role_main(transport, names, role, barrier, args)


def _recv_batched(reader, size, n, warm, per, timeout):
    read_many = reader.read_many
    clock = common.time.perf_counter_ns
    got = 0
    t0 = None
    timed_from = 0
    last = None
    if warm == 0:
        t0 = clock()
    while got < n:
        frames = read_many(min(per, n - got), timeout=timeout)
        if not frames:
            continue
        got += len(frames)
        last = frames[-1][1]
        if t0 is None and got >= warm:
            t0 = clock()
            timed_from = got
    elapsed = clock() - t0
    common.check_len(last, size)
    return elapsed, n - timed_from


def _quiet_unlink(unlink, name):
    try:
        unlink(name)
    except FileNotFoundError:
        pass
    except OSError:
        # The object may already be gone; make sure of it by path.
        try:
            os.unlink("/dev/shm/mycelium." + name)
        except FileNotFoundError:
            pass


def mycelium_transports():
    """Every Python mycelium row, single calls first."""
    seen = []
    for variant in RTT_VARIANTS + TPUT_VARIANTS:
        if variant not in seen:
            seen.append(variant)
    return [MyceliumTransport(mode, wait) for mode, wait in seen]
