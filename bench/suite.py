"""Measurement plans: calibrate, repeat, summarise into result rows.

Each measurement first runs a short calibration (also a warm-up for caches
and page faults), sizes its runs to take about `target_s` seconds each from
the calibrated speed, clamps that count, then repeats `repeats` times.  A
row reports the median over repeats of each statistic.

Given a FloorRef (a floor row of the same kind and size, measured earlier in
the run), every repeat is paired with one run of the floor right before it,
and the row's vs_floor is the median of the per-repeat ratios: the machine
drifts between rows (on a shared VM the ping-pong can move 5x within a
minute), and a ratio of two numbers taken seconds apart cancels that drift.
run.py pairs the round trips with the ping-pong (see there why not the
throughput rows).
"""

import dataclasses
import math
import time

from . import common

SIZES = (64, 1024, 65536)
MW_WRITERS = (1, 2, 4, 8)
MW_SIZE = 64


@dataclasses.dataclass
class Config:
    """Counts and times of one suite run (see full() and quick())."""

    quick: bool
    repeats: int
    target_s: float  # wanted duration of one timed run
    rtt_cal: int  # round trips in the calibration run
    rtt_min: int  # clamp of timed round trips per run
    rtt_max: int
    tput_cal_bytes: int  # payload bytes in a throughput calibration run
    tput_min: int
    tput_max: int
    run_timeout: float  # kill a run's processes after this many seconds
    budget_s: float  # skip what is left once the suite ran this long
    ext_timeout: float  # per Rust/OCaml extension call
    ext_budget_s: float  # for all extension calls together
    sizes: tuple = SIZES
    mw_writers: tuple = MW_WRITERS
    bus_timeout: float = 90.0  # bench/bench_bus.py, all modes together

    @classmethod
    def full(cls):
        return cls(
            quick=False,
            repeats=5,
            target_s=0.35,
            rtt_cal=2000,
            rtt_min=10000,
            rtt_max=200000,
            tput_cal_bytes=4 << 20,
            tput_min=2000,
            tput_max=5_000_000,
            run_timeout=60.0,
            budget_s=400.0,
            ext_timeout=120.0,
            ext_budget_s=150.0,
        )

    @classmethod
    def quick_(cls):
        return cls(
            quick=True,
            repeats=2,
            target_s=0.06,
            rtt_cal=300,
            rtt_min=500,
            rtt_max=20000,
            tput_cal_bytes=1 << 20,
            tput_min=300,
            tput_max=400_000,
            run_timeout=30.0,
            budget_s=60.0,
            ext_timeout=30.0,
            ext_budget_s=40.0,
            bus_timeout=30.0,
        )


@dataclasses.dataclass
class FloorRef:
    """How to rerun a floor row: its transport and the counts it was measured with."""

    transport: object
    n: int
    warm: int

    def rtt_p50(self, size, timeout):
        lat = self.transport.run_rtt(size, self.n, self.warm, timeout)
        return common.latency_summary(lat)["p50_ns"]

    def msgs_per_s(self, size, timeout):
        elapsed, count = self.transport.run_tput(size, self.n, self.warm, timeout)
        return _rate(elapsed, count)


def _paired(row, values, floor_values):
    """Record the floor runs paired with a row's repeats; vs_floor is the
    median of the per-repeat value / floor (p50s for RTT, msgs/s otherwise)."""
    ratios = [
        v / f for v, f in zip(values, floor_values) if f and math.isfinite(v / f)
    ]  # fmt: skip
    row["floor_runs"] = floor_values
    row["vs_floor"] = common.median(ratios) if ratios else None
    row["floor_paired"] = bool(ratios)


def clamp(value, low, high):
    return max(low, min(high, value))


class Clock:
    """Elapsed time and progress reporting on stderr."""

    def __init__(self, total_steps, budget_s, stream):
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self.total = total_steps
        self.done = 0
        self.budget_s = budget_s
        self.stream = stream

    def elapsed(self):
        return time.monotonic() - self.start

    def over_budget(self):
        return self.elapsed() > self.budget_s

    def step(self, what):
        """A measurement finished: one line per step (kept on a log file)."""
        self.done += 1
        self._write(what, final=True)

    def show(self, what):
        """Progress within a step: redrawn in place on a terminal only."""
        if self.tty:
            self._write(what, final=False)

    def _write(self, what, final):
        secs = int(self.elapsed())
        line = f"[bench {secs // 60}:{secs % 60:02d} {self.done}/{self.total}] {what}"
        if self.tty:
            self.stream.write("\r\033[K" + line[:150] + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def log(self, message):
        self.stream.write(("\r\033[K" if self.tty else "") + "[bench] " + message + "\n")
        self.stream.flush()


def base_row(transport, kind, size):
    row = transport.describe()
    row.update({"kind": kind, "size": size, "status": "ok"})
    return row


def unavailable_row(transport, kind, size, reason):
    row = base_row(transport, kind, size)
    row.update({"status": "unavailable", "reason": reason})
    return row


def error_row(transport, kind, size, exc):
    row = base_row(transport, kind, size)
    row.update({"status": "error", "reason": str(exc).strip().splitlines()[0][:300]})
    return row


def skipped_row(transport, kind, size):
    row = base_row(transport, kind, size)
    row.update({"status": "skipped", "reason": "suite time budget spent"})
    return row


def measure_rtt(transport, size, cfg, clock, floor=None):
    """Round-trip latency row of one transport at one payload size; with a
    FloorRef, each repeat follows a run of the ping-pong floor."""
    label = f"rtt {size} B {transport.label()}"
    clock.show(label + ": calibrating")
    cal = transport.run_rtt(size, cfg.rtt_cal, max(20, cfg.rtt_cal // 5), cfg.run_timeout)
    # Size runs by the mean of the calibration's fastest 99%: a few
    # scheduler stalls in a short run must not shrink every timed run.
    kept = sorted(cal)[: max(1, len(cal) * 99 // 100)]
    mean_ns = max(1.0, sum(kept) / len(kept))
    n = clamp(int(cfg.target_s * 1e9 / mean_ns), cfg.rtt_min, cfg.rtt_max)
    warm = clamp(n // 10, 100, 5000)
    runs = []
    curves = []
    floor_p50 = []
    for i in range(cfg.repeats):
        if floor is not None:
            clock.show(f"{label}: floor before run {i + 1}/{cfg.repeats}")
            floor_p50.append(floor.rtt_p50(size, cfg.run_timeout))
        clock.show(f"{label}: run {i + 1}/{cfg.repeats} ({n} round trips)")
        lat = transport.run_rtt(size, n, warm, cfg.run_timeout)
        summary = common.latency_summary(lat)
        runs.append(summary)
        curves.append((summary["p50_ns"], common.quantile_curve(lat)))
    row = base_row(transport, "rtt", size)
    for key in ("p50_ns", "p99_ns", "p999_ns", "mean_ns", "min_ns"):
        row[key] = common.median([run[key] for run in runs])
    row.update(
        {
            "msgs_per_s": None,
            "mb_per_s": None,
            "n": n,
            "warm": warm,
            "repeats": cfg.repeats,
            "runs": [
                {k: run[k] for k in ("p50_ns", "p99_ns", "p999_ns", "mean_ns")} for run in runs
            ],
        }
    )
    if floor is not None:
        _paired(row, [run["p50_ns"] for run in runs], floor_p50)
    # The plotted distribution is the run whose p50 is the median one.
    curves.sort(key=lambda item: item[0])
    row["curve"] = curves[len(curves) // 2][1]
    return row


def _rate(elapsed_ns, count):
    return count / (elapsed_ns / 1e9) if elapsed_ns > 0 else float("nan")


def measure_tput(transport, size, cfg, clock, writers=None, floor=None):
    """One-way throughput row (or multi-writer row when writers is given);
    with a FloorRef, each repeat follows a run of the SPSC floor."""
    kind = "tput" if writers is None else "mw"
    who = "" if writers is None else f" x{writers} writers"
    label = f"{kind} {size} B{who} {transport.label()}"

    def run(n_each, warm):
        if writers is None:
            return transport.run_tput(size, n_each, warm, cfg.run_timeout)
        return transport.run_mw(writers, size, n_each, warm, cfg.run_timeout)

    parts = writers or 1
    clock.show(label + ": calibrating")
    cal_n = clamp(cfg.tput_cal_bytes // size, 200, 20000)
    elapsed, count = run(max(1, cal_n // parts), cal_n // 10)
    rate = _rate(elapsed, count)
    n = clamp(int(rate * cfg.target_s), cfg.tput_min, cfg.tput_max)
    n_each = max(1, n // parts)
    warm = clamp((n_each * parts) // 10, 50, 100000)
    rates = []
    floor_rates = []
    for i in range(cfg.repeats):
        if floor is not None:
            clock.show(f"{label}: floor before run {i + 1}/{cfg.repeats}")
            floor_rates.append(floor.msgs_per_s(size, cfg.run_timeout))
        clock.show(f"{label}: run {i + 1}/{cfg.repeats} ({n_each * parts} messages)")
        elapsed, count = run(n_each, warm)
        rates.append(_rate(elapsed, count))
    row = base_row(transport, kind, size)
    msgs = common.median(rates)
    row.update(
        {
            "msgs_per_s": msgs,
            "mb_per_s": msgs * size / 1e6,
            "p50_ns": None,
            "p99_ns": None,
            "p999_ns": None,
            "n": n_each * parts,
            "warm": warm,
            "repeats": cfg.repeats,
            "runs": [{"msgs_per_s": r} for r in rates],
        }
    )
    if writers is not None:
        row["writers"] = writers
    if floor is not None:
        _paired(row, rates, floor_rates)
    return row


def guarded(transport, kind, size, cfg, clock, func, *args, **kwargs):
    """Run one measurement; unavailable, failed or over-budget become rows."""
    reason = transport.unavailable()
    if reason:
        return unavailable_row(transport, kind, size, reason)
    if clock.over_budget():
        return skipped_row(transport, kind, size)
    try:
        return func(transport, size, cfg, clock, *args, **kwargs)
    except Exception as exc:  # one broken transport must not end the suite
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        clock.log(f"{kind} {size} B {transport.label()} failed: {first}")
        return error_row(
            transport,
            kind,
            size,
            f"{type(exc).__name__}: {first}" if not isinstance(exc, common.BenchError) else exc,
        )
