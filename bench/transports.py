"""The transports a user would pick instead of mycelium-shm, behind one interface.

A Transport measures two things:

* run_rtt(size, n, warm, timeout) -> array of n round-trip times in ns
  (ping on core 0 sends, pong on core 1 echoes; warm untimed trips first);
* run_tput(size, n, warm, timeout) -> (elapsed_ns, timed_messages)
  (sender on core 0 sends n messages as fast as it can; the receiver on
  core 1 times the last n - warm of them).

ForkedTransport implements both with forked Python processes: prepare()
makes whatever the parent must create (queues, socket pairs, shm segments),
open() attaches one role's endpoint inside its child, and the default
ping/pong/send/recv loops drive the endpoint's send and recv callables.
Every transport here is configured the way a performance-minded user would
configure it (no pickling where the API allows raw bytes, buffered socket
reads), so that the comparison is with each peer at its best.
"""

import abc
import ctypes
import functools
import gc
import glob
import itertools
import os
import shutil
import socket
import struct
import tempfile

from . import common
from .baseline_pyring import PyRing, unsupported_reason
from .baseline_pyring import unlink as pyring_unlink

RING_CAPACITY = 1 << 20  # every shared-memory transport gets 1 MiB of ring
_serial = itertools.count()


def unique_name(prefix):
    """A name no other run (or concurrent suite) uses."""
    return f"{prefix}{os.getpid()}x{next(_serial)}"


class Endpoint:
    """One role's attached end: send/recv callables plus what to close."""

    def __init__(self, send=None, recv=None, closers=()):
        self.send = send
        self.recv = recv
        self.closers = list(closers)
        self.extra = {}

    def close(self):
        for close in reversed(self.closers):
            close()
        self.closers = []


class Transport:
    """Base: a labelled transport; subclasses implement run_rtt/run_tput."""

    name = "?"
    lang = "python"
    mode = "single"
    wait = "blocking"
    kinds = ("rtt", "tput")
    note = ""

    def unavailable(self):
        """None if usable here, else a one-line reason."""
        return None

    def label(self):
        return f"{self.name} [{self.lang}] {self.mode} {self.wait}"

    def describe(self):
        return {
            "name": self.name,
            "lang": self.lang,
            "mode": self.mode,
            "wait": self.wait,
            "note": self.note,
        }


class ForkedTransport(Transport, abc.ABC):
    """A transport driven from forked Python processes."""

    def prepare(self, kind, size):
        """Parent side, before fork.  Returns state shared with children."""
        return None

    def cleanup(self, state):
        """Parent side, after the children are reaped.  Must not raise."""

    @abc.abstractmethod
    def open(self, state, role):
        """Child side: attach role ('ping', 'pong', 'send', 'recv')."""

    # Default loops over Endpoint.send / Endpoint.recv.
    def ping(self, ep, payload, n, warm):
        return common.ping_loop(ep.send, ep.recv, payload, n, warm)

    def pong(self, ep, size, total):
        return common.pong_loop(ep.send, ep.recv, total)

    def send(self, ep, payload, n):
        return common.send_loop(ep.send, payload, n)

    def recv(self, ep, size, n, warm):
        return common.recv_loop(ep.recv, n, warm, size)

    # The harness entry points.
    def run_rtt(self, size, n, warm, timeout):
        payload = common.payload_of(size)
        results = self._run(
            "rtt", size, [("ping", (payload, n, warm)), ("pong", (size, n + warm))], timeout
        )
        return results[0]

    def run_tput(self, size, n, warm, timeout):
        payload = common.payload_of(size)
        results = self._run(
            "tput", size, [("send", (payload, n)), ("recv", (size, n, warm))], timeout
        )
        return results[1]

    def _run(self, kind, size, roles, timeout):
        state = self.prepare(kind, size)
        try:
            barrier = common.CTX.Barrier(len(roles))
            tasks = [
                (_role_main, (self, state, role, barrier, args), common.core_for(i))
                for i, (role, args) in enumerate(roles)
            ]
            return common.run_group(tasks, timeout)
        finally:
            self.cleanup(state)


def _role_main(transport, state, role, barrier, args):
    """Child body: attach, wait for the other roles, run the loop, detach."""
    ep = transport.open(state, role)
    try:
        common.wait_barrier(barrier)
        return getattr(transport, role)(ep, *args)
    finally:
        ep.close()
        del ep
        gc.collect()


# ------------------------------------------------------------------------- #
# The baseline                                                               #
# ------------------------------------------------------------------------- #


class PyRingTransport(ForkedTransport):
    """bench/baseline_pyring.py: pure-Python SPSC ring, busy-polling."""

    name = "pyring"
    wait = "busy-poll"
    note = "hand-written pure-Python SPSC ring over multiprocessing.shared_memory"

    def unavailable(self):
        return unsupported_reason()

    def prepare(self, kind, size):
        names = [unique_name("pyr")]
        if kind == "rtt":
            names.append(unique_name("pyr"))
        for name in names:
            common.register_cleanup(("pyring", name), lambda name=name: pyring_unlink(name))
            PyRing(name, create=True, capacity=RING_CAPACITY).close()
        return names

    def cleanup(self, names):
        for name in names:
            pyring_unlink(name)
            common.unregister_cleanup(("pyring", name))

    def open(self, names, role):
        if role in ("send", "recv"):
            ring = PyRing(names[0])
            return Endpoint(ring.write, ring.read, [ring.close])
        ab, ba = PyRing(names[0]), PyRing(names[1])
        out, inp = (ab, ba) if role == "ping" else (ba, ab)
        return Endpoint(out.write, inp.read, [ab.close, ba.close])


# ------------------------------------------------------------------------- #
# multiprocessing                                                            #
# ------------------------------------------------------------------------- #


class PipeTransport(ForkedTransport):
    """multiprocessing.Pipe with send_bytes/recv_bytes (no pickling)."""

    name = "mp.Pipe"
    note = "multiprocessing.Pipe, send_bytes/recv_bytes"

    def prepare(self, kind, size):
        return common.CTX.Pipe(duplex=(kind == "rtt"))

    def cleanup(self, conns):
        for conn in conns:
            conn.close()

    def open(self, conns, role):
        # rtt: conns = (ping end, pong end); tput: conns = (reader, writer).
        conn = conns[0] if role in ("ping", "recv") else conns[1]
        return Endpoint(conn.send_bytes, conn.recv_bytes)


class QueueTransport(ForkedTransport):
    """multiprocessing.Queue (pickles; a feeder thread writes a pipe)."""

    name = "mp.Queue"
    note = "multiprocessing.Queue(maxsize=1024), put/get"

    def prepare(self, kind, size):
        count = 2 if kind == "rtt" else 1
        return [common.CTX.Queue(maxsize=1024) for _ in range(count)]

    def cleanup(self, queues):
        for queue in queues:
            queue.close()
            queue.cancel_join_thread()

    def open(self, queues, role):
        if role in ("send", "recv"):
            return Endpoint(queues[0].put, queues[0].get)
        out, inp = (queues[0], queues[1]) if role == "ping" else (queues[1], queues[0])
        return Endpoint(out.put, inp.get)


# ------------------------------------------------------------------------- #
# faster-fifo                                                                #
# ------------------------------------------------------------------------- #


def _identity(data):
    return data


class FasterFifoTransport(ForkedTransport):
    """faster_fifo.Queue carrying raw bytes (identity dumps, bytes loads)."""

    name = "faster-fifo"
    note = "faster_fifo.Queue(1 MiB), dumps=identity, loads=bytes"
    TIMEOUT = 60.0

    def __init__(self, batch=False):
        self.batch = batch
        if batch:
            self.mode = "batch"
            self.kinds = ("tput",)
            self.note += "; put_many/get_many of 256"

    def unavailable(self):
        try:
            import faster_fifo  # noqa: F401
        except ImportError as exc:
            return f"faster-fifo not importable: {exc}"
        return None

    def prepare(self, kind, size):
        import faster_fifo

        count = 2 if kind == "rtt" else 1
        return [
            faster_fifo.Queue(max_size_bytes=RING_CAPACITY, loads=bytes, dumps=_identity)
            for _ in range(count)
        ]

    def cleanup(self, queues):
        for queue in queues:
            queue.close()

    def open(self, queues, role):
        timeout = self.TIMEOUT
        if role in ("send", "recv"):
            out = inp = queues[0]
        elif role == "ping":
            out, inp = queues
        else:
            inp, out = queues
        ep = Endpoint(
            functools.partial(out.put, timeout=timeout), functools.partial(inp.get, timeout=timeout)
        )
        ep.extra["queue"] = queues[0]
        return ep

    def send(self, ep, payload, n):
        if not self.batch:
            return super().send(ep, payload, n)
        queue = ep.extra["queue"]
        # put_many needs the whole batch to fit in the queue's buffer.
        per = max(1, min(256, RING_CAPACITY // (len(payload) + 64) // 2))
        batch = [payload] * per
        left = n
        while left:
            chunk = batch if left >= per else batch[:left]
            queue.put_many(chunk, timeout=self.TIMEOUT)
            left -= len(chunk)
        return None

    def recv(self, ep, size, n, warm):
        if not self.batch:
            return super().recv(ep, size, n, warm)
        queue = ep.extra["queue"]
        clock = common.time.perf_counter_ns
        got = 0
        t0 = None
        last = None
        while got < n:
            msgs = queue.get_many(timeout=self.TIMEOUT, max_messages_to_get=min(256, n - got))
            got += len(msgs)
            last = msgs[-1]
            if t0 is None and got >= warm:
                t0 = clock()
                timed_from = got
        elapsed = clock() - t0
        common.check_len(last, size)
        return elapsed, n - timed_from


# ------------------------------------------------------------------------- #
# pyzmq                                                                      #
# ------------------------------------------------------------------------- #


class ZmqTransport(ForkedTransport):
    """pyzmq over ipc:// in a private temporary directory."""

    name = "pyzmq"
    note = "pyzmq ipc://, PAIR for rtt, PUSH/PULL for throughput"

    def unavailable(self):
        try:
            import zmq  # noqa: F401
        except ImportError as exc:
            return f"pyzmq not importable: {exc}"
        return None

    def prepare(self, kind, size):
        tmp = tempfile.mkdtemp(prefix="myc-bench-zmq-")
        common.register_cleanup(("zmq", tmp), lambda: shutil.rmtree(tmp, ignore_errors=True))
        # Set by the receiver once it has everything; the sender keeps its
        # socket open until then.  (A PUSH socket that closes while its PULL
        # peer sits at its receive high-water mark loses the messages still
        # in the kernel buffer, about 2% of runs here; LINGER does not help.)
        return {
            "kind": kind,
            "addr": f"ipc://{tmp}/sock",
            "dir": tmp,
            "received": common.CTX.Event(),
        }

    def cleanup(self, state):
        shutil.rmtree(state["dir"], ignore_errors=True)
        common.unregister_cleanup(("zmq", state["dir"]))

    def open(self, state, role):
        import zmq

        ctx = zmq.Context()
        if state["kind"] == "rtt":
            sock = ctx.socket(zmq.PAIR)
        else:
            sock = ctx.socket(zmq.PUSH if role == "send" else zmq.PULL)
        # The sender must not drop queued messages on close; readers may.
        sock.setsockopt(zmq.LINGER, 10000 if role == "send" else 0)
        if role in ("pong", "recv"):
            sock.bind(state["addr"])
        else:
            sock.connect(state["addr"])

        # copy=False: pyzmq still copies below zmq.COPY_THRESHOLD (64 KiB),
        # and hands larger buffers to libzmq without a copy.
        send = functools.partial(sock.send, copy=False)

        def close():
            if role == "send":
                state["received"].wait(60)
            elif role == "recv":
                state["received"].set()
            sock.close()
            ctx.term()

        return Endpoint(send, sock.recv, [close])


# ------------------------------------------------------------------------- #
# Unix stream socket                                                         #
# ------------------------------------------------------------------------- #

_LEN = struct.Struct("<I")


class FramedReader:
    """Length-prefixed frames from a stream socket, read in large chunks."""

    def __init__(self, sock, size=1 << 20):
        self._sock = sock
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0

    def recv(self):
        buf, view = self._buf, self._view
        while True:
            start, end = self._start, self._end
            if end - start >= 4:
                n = _LEN.unpack_from(buf, start)[0]
                if end - start >= 4 + n:
                    self._start = start + 4 + n
                    return view[start + 4 : start + 4 + n].tobytes()
                if 4 + n > len(buf):
                    raise ValueError(f"frame of {n} bytes exceeds the read buffer")
            if start:
                # Move the partial frame to the front so recv_into has room.
                view[: end - start] = view[start:end]
                self._end = end = end - start
                self._start = 0
            got = self._sock.recv_into(view[end:])
            if not got:
                raise EOFError("peer closed the socket")
            self._end = end + got

    def close(self):
        self._view.release()


class UnixSocketTransport(ForkedTransport):
    """socket.socketpair(AF_UNIX, SOCK_STREAM), u32 length prefix per message."""

    name = "unix-socket"
    note = "AF_UNIX stream socketpair, u32 length prefix, 1 MiB buffered reads"

    def prepare(self, kind, size):
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def cleanup(self, socks):
        for sock in socks:
            sock.close()

    def open(self, socks, role):
        sock = socks[0] if role in ("ping", "send") else socks[1]
        reader = FramedReader(sock)

        def send(data, _sendall=sock.sendall, _pack=_LEN.pack):
            _sendall(_pack(len(data)) + data)

        return Endpoint(send, reader.recv, [reader.close])


# ------------------------------------------------------------------------- #
# iceoryx2                                                                   #
# ------------------------------------------------------------------------- #


class IceoryxTransport(ForkedTransport):
    """iceoryx2 Python binding: publish-subscribe of Slice[c_uint8]."""

    name = "iceoryx2"
    wait = "busy-poll"
    note = (
        "iceoryx2 ipc publish-subscribe, Slice[c_uint8], no safe overflow, "
        "RetryUntilDelivered; subscriber polls receive()"
    )
    BUFFER = 64

    def unavailable(self):
        try:
            import iceoryx2 as iox2

            iox2.Slice  # noqa: B018 (the API this transport needs)
            iox2.BackpressureStrategy.RetryUntilDelivered  # noqa: B018
        except Exception as exc:  # ImportError or an API this code predates
            return f"iceoryx2 Python binding unusable: {type(exc).__name__}: {exc}"
        return None

    def prepare(self, kind, size):
        count = 2 if kind == "rtt" else 1
        # The sender sends one "hello" sample and waits for the receiver to
        # have it before streaming: without that, about 2% of runs lost the
        # samples right after the subscriber's first full buffer in spite of
        # RetryUntilDelivered (cf. iceoryx2 issue #305).  It also keeps its
        # port until the receiver is done.
        return {
            "names": [unique_name("mycbench_") for _ in range(count)],
            "size": size,
            "hello": common.CTX.Event(),
            "received": common.CTX.Event(),
        }

    def _service(self, node, name):
        import iceoryx2 as iox2

        return (
            node.service_builder(iox2.ServiceName.new(name))
            .publish_subscribe(iox2.Slice[ctypes.c_uint8])
            .enable_safe_overflow(False)
            .history_size(0)
            .subscriber_max_buffer_size(self.BUFFER)
            .open_or_create()
        )

    def open(self, state, role):
        import iceoryx2 as iox2

        names = state["names"]
        iox2.set_log_level(iox2.LogLevel.Error)
        node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
        services = [self._service(node, name) for name in names]
        if role in ("send", "recv"):
            out_svc = in_svc = services[0]
        elif role == "ping":
            out_svc, in_svc = services
        else:
            in_svc, out_svc = services
        ports = []
        send = recv = None
        if role != "recv":
            pub = (
                out_svc.publisher_builder()
                .initial_max_slice_len(max(1, state["size"]))
                .backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
                .create()
            )
            ports.append(pub)

            def send(data, _loan=pub.loan_slice_uninit, _move=ctypes.memmove):
                sample = _loan(len(data))
                _move(sample.payload_ptr, data, len(data))
                sample.assume_init().send()

        if role != "send":
            sub = in_svc.subscriber_builder().buffer_size(self.BUFFER).create()
            ports.append(sub)

            def recv(_receive=sub.receive, _string_at=ctypes.string_at):
                while True:
                    sample = _receive()
                    if sample is not None:
                        data = _string_at(sample.payload_ptr, sample.header.number_of_elements)
                        sample.delete()
                        return data

        holder = {"node": node, "services": services, "ports": ports}

        def close():
            if role == "send":
                state["received"].wait(60)
            elif role == "recv":
                state["received"].set()
            for port in holder["ports"]:
                port.delete()
            holder.clear()
            gc.collect()

        ep = Endpoint(send, recv, [close])
        ep.extra["hello"] = state["hello"]
        return ep

    def send(self, ep, payload, n):
        ep.send(payload)
        if not ep.extra["hello"].wait(60):
            raise common.BenchError("iceoryx2 receiver never saw the hello sample")
        return super().send(ep, payload, n)

    def recv(self, ep, size, n, warm):
        ep.recv()
        ep.extra["hello"].set()
        return super().recv(ep, size, n, warm)


IOX2_SHM_GLOB = "/dev/shm/iox2_*"
IOX2_NODES_DIR = "/tmp/iceoryx2/nodes"


def iceoryx_shm_objects():
    """iceoryx2's shared-memory files present now."""
    return set(glob.glob(IOX2_SHM_GLOB))


def remove_iceoryx_leftovers(before):
    """Remove iceoryx2 shm files this run created, once no iceoryx2 node is alive.

    iceoryx2 keeps a small global management segment after its last node
    exits; other users' segments (present before the run) are left alone."""
    try:
        if os.listdir(IOX2_NODES_DIR):
            return []
    except FileNotFoundError:
        pass
    removed = []
    for path in sorted(iceoryx_shm_objects() - set(before)):
        try:
            os.unlink(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def peer_transports():
    """Every peer, in report order (the baseline first)."""
    return [
        PyRingTransport(),
        PipeTransport(),
        QueueTransport(),
        FasterFifoTransport(),
        FasterFifoTransport(batch=True),
        ZmqTransport(),
        UnixSocketTransport(),
        IceoryxTransport(),
    ]
