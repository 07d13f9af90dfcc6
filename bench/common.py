"""Machinery shared by every benchmark: pinning, child processes, statistics.

Every measurement runs in freshly forked child processes, one per role
(ping/pong, send/recv, or N writers and one reader).  Each child pins itself
to a core, opens its endpoint, waits on a barrier so that no connection setup
is timed, runs its loop and sends one result back over a private pipe.  The
parent waits with a deadline and kills every child of a run that overstays
it, so no run can hang the suite.
"""

import array
import atexit
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
import traceback

# fork: children start in milliseconds and inherit queues, pipes and socket
# pairs made by the parent, which is how users share those objects too.
CTX = multiprocessing.get_context("fork")

PERCENTILES = (0.50, 0.99, 0.999)


class BenchError(Exception):
    """A benchmark run failed or overstayed its deadline."""


# ------------------------------------------------------------------------- #
# Cores                                                                      #
# ------------------------------------------------------------------------- #


def allowed_cores():
    """The cores this process may run on, sorted."""
    return sorted(os.sched_getaffinity(0))


def core_for(index):
    """Core for role `index` (0 = ping/sender, 1 = pong/reader), wrapping."""
    cores = allowed_cores()
    return cores[index % len(cores)]


def pin(core):
    """Pin the calling process to one core; ignore a core we may not use."""
    if core is None:
        return
    try:
        os.sched_setaffinity(0, {core})
    except OSError:
        pass


# ------------------------------------------------------------------------- #
# Statistics                                                                 #
# ------------------------------------------------------------------------- #


def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted sequence (q in 0..1)."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(samples):
    """p50/p99/p99.9/mean/min/max in ns of one run's round-trip samples."""
    values = sorted(samples)
    return {
        "p50_ns": percentile(values, 0.50),
        "p99_ns": percentile(values, 0.99),
        "p999_ns": percentile(values, 0.999),
        "mean_ns": sum(values) / len(values),
        "min_ns": values[0],
        "max_ns": values[-1],
        "samples": len(values),
    }


def quantile_curve(samples, points=400):
    """(q, ns) pairs spaced evenly in log(1/(1-q)) up to the largest sample.

    Enough to redraw a percentile plot and a CDF without storing every
    sample in the JSON.
    """
    values = sorted(samples)
    n = len(values)
    top = math.log10(n)  # q = 1 - 10**-top reaches the last sample
    out = []
    seen = set()
    for i in range(points + 1):
        nines = top * i / points
        q = 1.0 - 10.0 ** (-nines)
        rank = min(n, max(1, math.ceil(q * n)))
        if rank in seen:
            continue
        seen.add(rank)
        out.append((round(rank / n, 7), values[rank - 1]))
    if n not in seen:  # always end on the maximum
        out.append((1.0, values[-1]))
    return out


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    if len(values) % 2:
        return values[mid]
    return (values[mid - 1] + values[mid]) / 2


# ------------------------------------------------------------------------- #
# Child processes                                                            #
# ------------------------------------------------------------------------- #

_live_children = set()
_cleanups = {}


def register_cleanup(key, func):
    """Run func() at exit or on SIGTERM/SIGINT unless unregistered first."""
    _cleanups[key] = func


def unregister_cleanup(key):
    _cleanups.pop(key, None)


def _run_cleanups():
    for proc in list(_live_children):
        _kill(proc)
    for key in list(_cleanups):
        func = _cleanups.pop(key)
        try:
            func()
        except Exception:  # best effort at exit: report, keep cleaning
            traceback.print_exc()


def _on_signal(signum, frame):
    _run_cleanups()
    sys.stderr.write(f"\n[bench] interrupted by signal {signum}\n")
    os._exit(128 + signum)


def install_cleanup_handlers():
    """Make Ctrl-C and kill still unlink shm objects and reap children."""
    atexit.register(_run_cleanups)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def _kill(proc):
    """Kill a multiprocessing.Process or subprocess.Popen and reap it."""
    try:
        if proc.is_alive() if hasattr(proc, "is_alive") else proc.poll() is None:
            proc.kill()
    except (OSError, ValueError):
        pass
    try:
        if hasattr(proc, "join"):
            proc.join(5)
        else:
            proc.wait(5)
    except Exception:
        pass
    _live_children.discard(proc)


def track_child(proc):
    _live_children.add(proc)


def untrack_child(proc):
    _live_children.discard(proc)


def kill_and_reap(proc):
    _kill(proc)


def _child_main(conn, core, func, args):
    # Children must not run the parent's signal handlers or exit hooks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    atexit._clear()
    try:
        pin(core)
        result = ("ok", func(*args))
    except BaseException as exc:  # report everything, the parent decides
        result = ("err", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    try:
        conn.send(result)
    finally:
        conn.close()


def run_group(tasks, timeout):
    """Run tasks [(func, args, core), ...] each in its own forked process.

    Returns their results in task order.  Raises BenchError if any child
    raised, died, or the group outlived `timeout` seconds; every child is
    reaped before returning either way.
    """
    procs = []
    conns = []
    results = [None] * len(tasks)
    pending = {}
    try:
        for i, (func, args, core) in enumerate(tasks):
            parent_end, child_end = CTX.Pipe(duplex=False)
            proc = CTX.Process(target=_child_main, args=(child_end, core, func, args), daemon=False)
            proc.start()
            track_child(proc)
            child_end.close()
            procs.append(proc)
            conns.append(parent_end)
            pending[parent_end] = i
        deadline = time.monotonic() + timeout
        errors = []
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"timed out after {timeout:.0f} s")
            for conn in multiprocessing.connection.wait(list(pending), left):
                i = pending.pop(conn)
                try:
                    status, value = conn.recv()
                except EOFError:
                    status, value = "err", f"child {i} died (exit code {procs[i].exitcode})"
                if status == "ok":
                    results[i] = value
                else:
                    errors.append(value)
            if errors:
                raise BenchError(errors[0].strip().splitlines()[0] + "\n" + errors[0])
        return results
    finally:
        for proc in procs:
            proc.join(0.5 if not pending else 0)
            _kill(proc)
        for conn in conns:
            conn.close()


def wait_barrier(barrier, timeout=30.0):
    """Wait for every role of the run to have opened its endpoint."""
    barrier.wait(timeout)


# ------------------------------------------------------------------------- #
# Loops shared by the transports whose send/recv are plain callables         #
# ------------------------------------------------------------------------- #


def ping_loop(send, recv, payload, n, warm):
    """Time n round trips after warm; returns array('q') of ns per trip."""
    for _ in range(warm):
        send(payload)
        recv()
    lat = array.array("q", bytes(8 * n))
    clock = time.perf_counter_ns
    last = None
    for i in range(n):
        t0 = clock()
        send(payload)
        last = recv()
        lat[i] = clock() - t0
    check_len(last, len(payload))
    return lat


def pong_loop(send, recv, total):
    """Echo total messages back."""
    for _ in range(total):
        send(recv())
    return None


def send_loop(send, payload, n):
    for _ in range(n):
        send(payload)
    return None


def recv_loop(recv, n, warm, size):
    """Receive n messages; time the last n - warm.  Returns (ns, count)."""
    for _ in range(warm):
        recv()
    clock = time.perf_counter_ns
    last = None
    t0 = clock()
    for _ in range(n - warm):
        last = recv()
    elapsed = clock() - t0
    check_len(last, size)
    return elapsed, n - warm


def check_len(message, size):
    """Guard against a transport that silently delivered the wrong thing."""
    if message is not None and len(message) != size:
        raise BenchError(f"received {len(message)} bytes, expected {size}")


def payload_of(size):
    """A deterministic, non-constant payload of `size` bytes."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]
