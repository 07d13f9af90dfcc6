"""MessageBus rows: bench/bench_bus.py run as a subprocess of the suite.

``python bench/bench_bus.py [--quick] --modes inproc,shm,unix,tcp`` prints
one JSON row per mode on stdout as it finishes it ({name, mode, p50_ns,
p99_ns, p999_ns, samples}: publish-to-handler latency).  The suite runs it
in its own session with a deadline, like the extension modules: on expiry
the session gets SIGTERM, then SIGKILL, the modes already printed are kept
and every other mode becomes an ``error`` row.  A crash or hang costs a log
line and error rows, never the suite.

Rows become suite rows of kind ``"bus"``: name ``MessageBus``, lang
``python``, mode = the bus path (inproc, shm, unix, tcp), size None (the
message is a MarketTick of schemas/trading.toml, not a raw payload).
"""

import contextlib
import glob
import json
import os
import subprocess
import sys

from . import common
from .extensions import _stop_session

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.join(HERE, "bench_bus.py")
MODES = ("inproc", "shm", "unix", "tcp")
NAME = "MessageBus"
NOTES = {
    "inproc": "bench/bench_bus.py: publish() to the handler on one bus, same thread, no encoding",
    "shm": "bench/bench_bus.py: MarketTick to a handler in another process over a "
    "shared-memory inbound (encode, ring, wake-up, decode, dispatch)",
    "unix": "bench/bench_bus.py: MarketTick to a handler in another process over a "
    "Unix socket inbound",
    "tcp": "bench/bench_bus.py: MarketTick to a handler in another process over TCP loopback",
}


def bus_row(mode, status="ok", reason=None, raw=None):
    """A suite row (kind "bus") for one bus path."""
    row = {
        "name": NAME,
        "lang": "python",
        "mode": mode,
        "wait": "",
        "kind": "bus",
        "size": None,
        "status": status,
        "p50_ns": None,
        "p99_ns": None,
        "p999_ns": None,
        "msgs_per_s": None,
        "mb_per_s": None,
        "note": NOTES.get(mode, "bench/bench_bus.py"),
        "source": "bench_bus",
    }
    if reason is not None:
        row["reason"] = reason
    if raw is not None:
        for key in ("p50_ns", "p99_ns", "p999_ns"):
            row[key] = raw.get(key)
        if raw.get("samples") is not None:
            row["n"] = raw["samples"]
    return row


def parse_output(text, modes=MODES):
    """{mode: raw row} from bench_bus.py stdout (other lines are ignored)."""
    found = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(raw, dict)
            and raw.get("mode") in modes
            and isinstance(raw.get("p50_ns"), (int, float))
        ):
            found[raw["mode"]] = raw
    return found


def rows_from_output(text, modes=MODES, failure=None):
    """One row per mode: measured if bench_bus printed it, else error (failure)."""
    found = parse_output(text, modes)
    out = []
    for mode in modes:
        if mode in found:
            out.append(bus_row(mode, raw=found[mode]))
        else:
            out.append(bus_row(mode, "error", failure or "bench_bus.py printed no row"))
    return out


def skipped_rows(reason, modes=MODES):
    return [bus_row(mode, "skipped", reason) for mode in modes]


def command(quick, timeout, modes=MODES):
    per_mode = max(5.0, timeout / max(1, len(modes)))
    cmd = [sys.executable, SCRIPT, "--modes", ",".join(modes), "--deadline", f"{per_mode:.0f}"]
    return cmd + (["--quick"] if quick else [])


def _remove_leftovers(pid):
    """Unlink shm channels a killed bench_bus.py (pid) left (its names embed pid)."""
    removed = []
    for path in glob.glob(f"/dev/shm/mycelium.bench-bus-[cp]-{pid}-*"):
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed.append(path)
    return removed


def _kill_session(proc):
    with contextlib.suppress(Exception):
        _stop_session(proc)
    _remove_leftovers(proc.pid)


def run(quick, timeout, log, modes=MODES):
    """(rows, report) of one bench_bus.py run bounded by `timeout` seconds."""
    cmd = command(quick, timeout, modes)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))  # fmt: skip
    report = {"script": "bench/bench_bus.py", "argv": cmd[2:], "status": "ok", "rows": 0}
    log("bench_bus.py: running " + " ".join(cmd[2:]))
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # fmt: skip
    except OSError as exc:
        report["status"] = f"error: cannot start: {exc}"
        log(f"bench_bus.py: {report['status']}")
        return rows_from_output("", modes, report["status"]), report
    key = ("bench_bus", proc.pid)
    common.register_cleanup(key, lambda: _kill_session(proc))
    failure = None
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_session(proc)
            failure = f"timed out after {timeout:.0f} s"
            try:
                out, err = proc.communicate(timeout=5)
            except (subprocess.TimeoutExpired, ValueError):
                out, err = "", ""
        if failure is None and proc.returncode != 0:
            tail = (err or "").strip().splitlines()[-1:] or [""]
            failure = f"exit status {proc.returncode}: {tail[0][:300]}"
    finally:
        if proc.poll() is None:
            _stop_session(proc)
        common.unregister_cleanup(key)
        for path in _remove_leftovers(proc.pid):
            log(f"bench_bus.py: removed leftover {path}")
    rows = rows_from_output(out, modes, failure)
    report["rows"] = sum(r["status"] == "ok" for r in rows)
    if failure:
        report["status"] = "error: " + failure
        log(f"bench_bus.py: {failure} ({report['rows']} of {len(modes)} rows kept)")
    elif report["rows"] < len(modes):
        report["status"] = f"error: {len(modes) - report['rows']} modes printed no row"
        log(f"bench_bus.py: {report['status']}")
    return rows, report
