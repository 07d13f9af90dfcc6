"""The benchmark suite: `python -m bench [--quick]` (or `python bench/run.py`).

Measures, in one run, round-trip latency and one-way throughput of
mycelium-shm (Python: single calls, batches, zero-copy; C: the ceiling)
against the transports a user would pick instead, with the pure-Python
shared-memory ring (bench/baseline_pyring.py) as the baseline every ratio is
taken against and the physical floor (bench/c/floor.c: cache-line
ping-pong, minimal SPSC ring) as what every row is also divided by; multi-writer scaling; MessageBus publish-to-handler latency
(bench/bench_bus.py); and rows from bench/bench_rust*.py and
bench/bench_ocaml*.py when present.  Writes results.json, results.md and PNG
plots to bench/results/ (or --out).
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import subprocess
import sys

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "bench"

from bench import bus, common, extensions, report, suite
from bench.cring import CRingTransport
from bench.floor import FloorTransport, floor_transports
from bench.transports import iceoryx_shm_objects, peer_transports, remove_iceoryx_leftovers
from bench.transports_mycelium import MyceliumTransport, mycelium_transports

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "results")
SCHEMA_VERSION = 1

METHOD = [
    "Every run uses fresh processes forked for it (C rows: fresh ring_bench processes), "
    "each pinned with sched_setaffinity: ping / sender on the first allowed core, "
    "pong / receiver on the second.",
    "No connection setup is timed: all roles attach, then meet at a barrier.",
    "A calibration run (discarded; also a warm-up) sizes the timed runs to about "
    "`target_s` each, within fixed count bounds; each timed run also skips its first "
    "10% of messages (warm-up).",
    "Round trips: every round trip timed with perf_counter_ns (C: CLOCK_MONOTONIC); "
    "nearest-rank p50/p99/p99.9 per run; a row reports the median over repeats.",
    "Throughput: the receiver times from the end of its warm-up to its last message; "
    "a row reports the median msgs/s over repeats. MB/s = payload bytes / 10^6 / s.",
    "Every shared-memory transport gets a 1 MiB ring (mycelium, pyring, faster-fifo "
    "buffer); mp.Queue is bounded at 1024 messages.",
    "busy-poll rows spin on a non-blocking call; blocking rows let the transport wait "
    "(mycelium: spin about 50 us in C, then futex).",
    "The physical floor (bench/c/floor.c: a cache-line ping-pong and a minimal SPSC "
    "ring, two busy-polling processes over one MAP_SHARED memfd, same cores) is measured "
    "in every run, first at each size; `x floor` = p50 / ping-pong p50 for round trips, "
    "msgs/s / SPSC msgs/s for throughput.",
    "Ratios and targets compare rows measured in the same run only.",
]


def machine_info():
    info = {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "allowed_cores": common.allowed_cores(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "gcc": _first_line(["gcc", "--version"]),
        "loadavg_start": _loadavg(),
        "packages": _versions(
            ["pyzmq", "faster-fifo", "iceoryx2", "matplotlib", "cffi", "mycelium-shm"]
        ),
    }
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0] if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _versions(names):
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def c_transports():
    return [
        CRingTransport("single", "blocking"),
        CRingTransport("single", "busy-poll"),
        CRingTransport("batch", "blocking"),
        CRingTransport("zero-copy", "blocking"),
    ]


def _matches(selector, transport):
    """A selector names a transport by part of its name ("fifo", "mp.pipe",
    "mycelium-c") or by a whole word of its label ("busy-poll", "batch"), so
    "bus" (the MessageBus rows) does not pick every busy-poll row."""
    names = (transport.name.lower(), f"{transport.name}-{transport.lang}".lower())
    words = re.findall(r"[\w.+-]+", transport.label().lower())
    return selector in words or any(selector in n for n in names)


def _selected(transport, only, skip):
    if only and not any(_matches(o, transport) for o in only):
        return False
    if skip and any(_matches(s, transport) for s in skip):
        return False
    return True


def plan(args, cfg):
    """The ordered list of (kind, transport, size, writers) to measure."""
    only = [s.strip().lower() for s in args.only.split(",")] if args.only else []
    skip = [s.strip().lower() for s in args.skip.split(",")] if args.skip else []
    transports = peer_transports() + mycelium_transports()
    if not args.no_c:
        transports += c_transports()
    transports = [t for t in transports if _selected(t, only, skip)]
    mw = []
    if not args.no_mw:
        mw = [MyceliumTransport("single", "blocking")]
        if not args.no_c:
            mw.append(CRingTransport("single", "blocking"))
        mw = [t for t in mw if _selected(t, only, skip) or not only]
    floors = []
    if not args.no_floor and (transports or mw):
        # The floor is the reference of every row: measured in every run that
        # measures rows, first at each size (--only need not name it; --skip can).
        floors = [t for t in floor_transports() if _selected(t, [], skip)]
    transports = floors + transports
    steps = []
    for t in transports:
        if "rtt" in t.kinds:
            steps.append(("rtt", t, 64, None))
    for size in cfg.sizes:
        for t in transports:
            if "tput" in t.kinds:
                steps.append(("tput", t, size, None))
    if mw and suite.MW_SIZE not in cfg.sizes:  # the multi-writer rows need their floor too
        steps += [("tput", t, suite.MW_SIZE, None) for t in floors if "tput" in t.kinds]
    for t in mw:
        for writers in cfg.mw_writers:
            steps.append(("mw", t, suite.MW_SIZE, writers))
    return steps


def bus_skip_reason(args):
    """Why the MessageBus rows are not run (None: run them)."""
    if args.no_bus:
        return "--no-bus"
    names = ("bus", "messagebus")
    only = [s.strip().lower() for s in args.only.split(",") if s.strip()]
    skip = [s.strip().lower() for s in args.skip.split(",") if s.strip()]
    if only and not any(o in n for o in only for n in names):
        return "not in --only"
    if any(s in n for s in skip for n in names):
        return "--skip"
    return None


def run_bus(args, cfg, clock):
    """(bus rows, run report, incomplete notes) for this run."""
    reason = bus_skip_reason(args)
    if reason:
        return (
            [],
            {"status": f"skipped ({reason})", "rows": 0},
            [f"MessageBus rows skipped ({reason})"],
        )
    if clock.over_budget():
        clock.step("MessageBus rows skipped: suite time budget spent")
        rows = bus.skipped_rows("suite time budget spent")
        return (
            rows,
            {"status": "skipped (suite time budget spent)", "rows": 0},
            ["MessageBus rows skipped (suite time budget spent)"],
        )
    clock.show("MessageBus rows (bench/bench_bus.py)")
    rows, rep = bus.run(cfg.quick, cfg.bus_timeout, clock.log)
    clock.step(
        "MessageBus: "
        + ", ".join(
            f"{r['mode']} p50 {r['p50_ns'] / 1000:.2f} us" if r["status"] == "ok"
            else f"{r['mode']} {r['status']}"
            for r in rows
        )
    )  # fmt: skip
    incomplete = [] if rep["status"] == "ok" else [f"MessageBus rows: {rep['status']}"]
    return rows, rep, incomplete


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="about one minute: tiny counts, 2 repeats (a smoke run, not results)",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help="output directory (default bench/results)")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated transport names to keep (substring match), e.g. "
        "pyring,mp.pipe,mycelium",
    )
    p.add_argument("--skip", default="", help="comma-separated transport names to drop")
    p.add_argument("--sizes", default="", help="payload sizes for throughput, e.g. 64,65536")
    p.add_argument("--writers", default="", help="multi-writer counts, e.g. 1,2,4,8")
    p.add_argument("--repeats", type=int, help="timed runs per row")
    p.add_argument("--target-s", type=float, help="wanted seconds per timed run")
    p.add_argument("--budget-s", type=float, help="skip remaining rows after this many seconds")
    p.add_argument("--no-c", action="store_true", help="skip the C ceiling rows")
    p.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the physical floor rows (bench/c/floor.c) and every ratio to them",
    )
    p.add_argument("--no-mw", action="store_true", help="skip multi-writer scaling")
    p.add_argument("--no-ext", action="store_true", help="skip Rust/OCaml extension rows")
    p.add_argument(
        "--no-bus", action="store_true", help="skip the MessageBus rows (bench/bench_bus.py)"
    )
    p.add_argument("--no-plots", action="store_true", help="write no PNGs")
    p.add_argument(
        "--check-targets",
        action="store_true",
        help="exit 1 if a target is missed or cannot be judged",
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = suite.Config.quick_() if args.quick else suite.Config.full()
    if args.sizes:
        cfg.sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.writers:
        cfg.mw_writers = tuple(int(s) for s in args.writers.split(","))
    if args.repeats:
        cfg.repeats = args.repeats
    if args.target_s:
        cfg.target_s = args.target_s
    if args.budget_s:
        cfg.budget_s = args.budget_s
    common.install_cleanup_handlers()
    iox2_before = iceoryx_shm_objects()
    common.register_cleanup("iceoryx2", lambda: remove_iceoryx_leftovers(iox2_before))
    os.makedirs(args.out, exist_ok=True)

    started = datetime.datetime.now(datetime.timezone.utc)
    machine = machine_info()
    steps = plan(args, cfg)
    extra = (0 if args.no_ext else 1) + (0 if bus_skip_reason(args) else 1)
    clock = suite.Clock(len(steps) + extra, cfg.budget_s, sys.stderr)
    clock.log(
        f"{'quick' if cfg.quick else 'full'} run: {len(steps)} measurements, "
        f"load average {machine['loadavg_start']}, output {args.out}"
    )

    rows = []
    floor_refs = {}  # ("rtt" | "tput", size) -> suite.FloorRef, once that floor row is measured
    for kind, transport, size, writers in steps:
        ref_key = ("rtt" if kind == "rtt" else "tput", size)
        floor = None if isinstance(transport, FloorTransport) else floor_refs.get(ref_key)
        if kind == "rtt":
            row = suite.guarded(transport, kind, size, cfg, clock, suite.measure_rtt, floor=floor)
        elif kind == "tput":
            row = suite.guarded(transport, kind, size, cfg, clock, suite.measure_tput, floor=floor)
        else:
            row = suite.guarded(
                transport, kind, size, cfg, clock, suite.measure_tput, writers, floor=floor
            )
            row["writers"] = writers
        rows.append(row)
        # Round trips are paired with the ping-pong (stable run to run, while
        # the machine drifts between rows).  Throughput rows are not: the
        # per-message SPSC ring is bimodal run to run (it streams, or it locks
        # into polling every index store: 30 vs 350 M msgs/s here), so a short
        # paired run adds noise; they are divided by the floor row, the median
        # of its full-length repeats.
        if isinstance(transport, FloorTransport) and transport.what == "pingpong":
            ref = _floor_ref(transport, row, cfg)
            if ref is not None:
                floor_refs[ref_key] = ref
        clock.step(_done_line(row))

    bus_rows, bus_report, incomplete = run_bus(args, cfg, clock)
    rows += bus_rows

    ext_reports = []
    if args.no_ext:
        incomplete.append("extension rows skipped (--no-ext)")
    else:
        clock.show("extension rows (Rust, OCaml)")
        ext_rows, ext_reports, ext_incomplete = extensions.collect(
            cfg.quick, cfg.ext_timeout, clock.log, sizes=cfg.sizes, budget_s=cfg.ext_budget_s
        )
        rows += ext_rows
        incomplete += ext_incomplete
        clock.step(f"extension rows: {len(ext_rows)}")

    common.unregister_cleanup("iceoryx2")
    for path in remove_iceoryx_leftovers(iox2_before):
        clock.log(f"removed iceoryx2 leftover {path}")
    report.add_ratios(rows)
    report.add_floor_ratios(rows)
    machine["loadavg_end"] = _loadavg()
    result = {
        "schema_version": SCHEMA_VERSION,
        "started_utc": started.isoformat(timespec="seconds"),
        "elapsed_s": round(clock.elapsed(), 1),
        "quick": cfg.quick,
        "config": dataclasses.asdict(cfg),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "machine": machine,
        "method": METHOD,
        "rows": rows,
        "targets": report.evaluate_targets(rows),
        "floor": report.floor_summary(rows),
        "peer_matrix": {f"{k}/{s}": v for (k, s), v in report.peer_matrix(rows).items()},
        "bindings_vs_c": report.bindings_vs_c(rows),
        "bus": dict(bus_report, **report.bus_summary(rows)),
        "extensions": ext_reports,
        "incomplete": incomplete,
    }
    md = report.markdown(dict(result, peer_matrix=report.peer_matrix(rows)))
    outputs = {
        "json": os.path.join(args.out, "results.json"),
        "markdown": os.path.join(args.out, "results.md"),
    }
    if not args.no_plots:
        from bench import plots

        try:
            outputs["plots"] = plots.make_all(result, args.out)
        except Exception as exc:  # plots are a convenience; the data is in JSON
            clock.log(f"plotting failed: {type(exc).__name__}: {exc}")
            outputs["plots"] = []
    result["outputs"] = outputs
    _write(outputs["json"], json.dumps(result, indent=1, default=_json_default) + "\n")
    _write(outputs["markdown"], md + "\n")

    print(_summary(result))
    if args.check_targets and not all(t["pass"] for t in result["targets"]):
        return 1
    return 0


def _floor_ref(transport, row, cfg):
    """How later rows rerun this floor row before each of their repeats: a
    quarter of its run length (the pairing, not the floor row, is what needs
    to be close in time), never below the suite's minimum counts."""
    if row.get("status") != "ok":
        return None
    low = cfg.rtt_min if row["kind"] == "rtt" else cfg.tput_min
    n = max(low, row["n"] // 4)
    return suite.FloorRef(transport, n, min(row["warm"], n // 10))


def _done_line(row):
    what = f"{row['kind']} {row['size']} B {report.label(row)}"
    if row["kind"] == "mw":
        what += f" x{row['writers']}"
    if row["status"] != "ok":
        return f"{what}: {row['status']}"
    if row["kind"] == "rtt":
        return f"{what}: p50 {row['p50_ns'] / 1000:.2f} us"
    return f"{what}: {row['msgs_per_s']:,.0f} msgs/s"


def _write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


def _summary(result):
    lines = [
        f"bench: {len(result['rows'])} rows in {result['elapsed_s']} s"
        + (" (quick smoke run: not results)" if result["quick"] else "")
    ]
    fl = result.get("floor") or {}
    if fl.get("pingpong_p50_ns") is not None or fl.get("spsc_msgs_per_s"):
        pp = fl.get("pingpong_p50_ns")
        lines.append(
            "  floor: cache-line ping-pong p50 "
            + (f"{pp:.0f} ns" if pp is not None else report.NOT_MEASURED)
            + "; SPSC ring "
            + (
                ", ".join(
                    f"{size} B {rate / 1e6:.2f} M msgs/s"
                    for size, rate in fl.get("spsc_msgs_per_s", {}).items()
                )
                or report.NOT_MEASURED
            )
        )
    for t in result["targets"]:
        verdict = report.verdict(t).upper()
        value = report.target_value(t)
        lines.append(f"  {verdict} {t['description']}: {value} {t['row'] or t.get('note', '')}")
    for note in result["incomplete"]:
        lines.append(f"  incomplete: {note}")
    lines.append(
        f"  wrote {result['outputs']['json']}, {result['outputs']['markdown']}"
        + "".join(f", {p}" for p in result["outputs"].get("plots", []))
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
