"""Sweep benchmark: our sweep vs backtrader 1.9 ``optstrategy``, and scaling.

    python bench/bench_sweep.py [--quick] [--json]

1. The SMA-crossover of examples/sweep on the same bars (a CSV both read),
   over the same parameter grid: backtrader ``optstrategy`` (one process,
   ``maxcpus=1``) against ``mycelium_shm.sweep`` (serial executor, one core):
   bar events processed per second per core.  For one parameter set both must
   make the same trades (same entry and exit bars).
2. 10,000 instances of a few thousand bars on the local executor: wall time,
   instances/s, setup median; serial vs local with 2 workers; peak RSS at
   1,000 and 10,000 instances (each in a fresh process).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "sweep"
sys.path[:0] = [str(ROOT), str(EXAMPLES)]

from mycelium_shm.sweep import GBM, CsvSource, SweepSpec, iter_results, path_rng, run_sweep  # noqa: E402

SERVICES = {
    "feed": "sma:BarFeed",
    "strategy": "sma:SmaCross",
    "execution": "sma:Execution",
    "portfolio": ("sma:Portfolio", {"record_trades": True}),
}


def write_csv(path: Path, bars: int, seed: int) -> None:
    b = GBM(bars=bars, sigma=0.3).generate(path_rng(seed, 0))
    cols = [b.open.tolist(), b.high.tolist(), b.low.tolist(), b.close.tolist(), b.volume.tolist()]
    with open(path, "w") as f:
        f.write("datetime,open,high,low,close,volume\n")
        for i in range(bars):
            day = time.strftime("%Y-%m-%d", time.gmtime(946684800 + 86400 * i))
            f.write(day + "".join(f",{c[i]!r}" for c in cols) + "\n")


def run_backtrader(csv: Path, fasts: list[int], slows: list[int]) -> tuple[float, dict[tuple[int, int], list[tuple[int, int]]]]:
    import backtrader as bt

    trades: dict[tuple[int, int], list[tuple[int, int]]] = {}

    class SmaCross(bt.Strategy):
        params = (("fast", 10), ("slow", 30), ("size", 10))

        def __init__(self) -> None:
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))
            self.entry = -1
            self.mine: list[tuple[int, int]] = []

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                bar = len(self) - 1
                if order.isbuy():
                    self.entry = bar
                else:
                    self.mine.append((self.entry, bar))

        def next(self) -> None:
            if not self.position:
                if self.cross > 0:
                    self.buy(size=self.p.size)
            elif self.cross < 0:
                self.close()

        def stop(self) -> None:
            trades[(self.p.fast, self.p.slow)] = self.mine

    cerebro = bt.Cerebro(maxcpus=1, optreturn=True, stdstats=False)
    cerebro.adddata(bt.feeds.GenericCSVData(
        dataname=str(csv), dtformat="%Y-%m-%d", datetime=0, open=1, high=2, low=3, close=4,
        volume=5, openinterest=-1, headers=True,
    ))
    cerebro.broker.setcash(1e9)
    cerebro.optstrategy(SmaCross, fast=fasts, slow=slows)
    t0 = time.perf_counter()
    cerebro.run()
    return time.perf_counter() - t0, trades


def compare(quick: bool) -> dict[str, Any]:
    bars = 2000
    fasts = [5, 10, 15, 20] if quick else [5, 8, 10, 12, 15, 20, 25, 28]
    slows = [30, 50] if quick else [30, 40, 50, 60, 80, 100]
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "bars.csv"
        write_csv(csv, bars, seed=5)
        bt_s, bt_trades = run_backtrader(csv, fasts, slows)
        spec = SweepSpec.create(
            SERVICES, CsvSource(str(csv)), grid={"strategy.fast": fasts, "strategy.slow": slows},
            schema=EXAMPLES / "schema.toml", sys_paths=[str(EXAMPLES)],
        )
        t0 = time.perf_counter()
        res = run_sweep(spec, Path(tmp) / "out", executor="serial", progress=False)
        ours_s = time.perf_counter() - t0
        ours = {(r["params"]["strategy.fast"], r["params"]["strategy.slow"]): [tuple(t) for t in r["metrics"]["trade_bars"]] for r in iter_results(res.path)}
    n = len(fasts) * len(slows)
    events = bars * n
    same = {k: ours[k] == bt_trades.get(k) for k in ours}
    return {
        "instances": n,
        "bars": bars,
        "backtrader_s": round(bt_s, 3),
        "backtrader_events_per_s_core": round(events / bt_s),
        "sweep_s": round(ours_s, 3),
        "sweep_events_per_s_core": round(events / ours_s),
        "speedup_per_core": round(bt_s / ours_s, 2),
        "same_trades_fast10_slow30": ours.get((10, 30)) == bt_trades.get((10, 30)),
        "trades_fast10_slow30": len(ours.get((10, 30), [])),
        "same_trades_all": sum(same.values()),
    }


def child(n: int, executor: str, workers: int, bars: int) -> dict[str, Any]:
    spec = SweepSpec.create(
        {**SERVICES, "portfolio": "sma:Portfolio"},
        GBM(bars=bars, sigma=0.3), grid={"strategy.fast": list(range(2, 2 + n // 100)), "strategy.slow": list(range(60, 160))},
        paths=1, seed=1, schema=EXAMPLES / "schema.toml", sys_paths=[str(EXAMPLES)],
    ) if n >= 100 else None
    assert spec is not None and spec.size == n
    import threading

    import psutil

    peak = [0]
    done = threading.Event()

    def sample() -> None:  # forkserver workers are grandchildren: not in RUSAGE_CHILDREN
        me = psutil.Process()
        while not done.wait(0.2):
            try:
                peak[0] = max([peak[0]] + [c.memory_info().rss for c in me.children(recursive=True)])
            except psutil.Error:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_sweep(spec, tmp, executor=executor, workers=workers, progress=False)
        wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = peak[0] / 1024
    return {"n": n, "executor": executor, "workers": workers, "wall_s": round(wall, 2),
            "instances_per_s": round(n / wall, 1), "setup_median_us": res.summary["setup_median_us"],
            "peak_rss_parent_mb": round(me / 1024, 1), "peak_rss_worker_mb": round(kids / 1024, 1), "load_avg": [round(x, 2) for x in __import__("os").getloadavg()]}


def spawn(n: int, executor: str, workers: int, bars: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", str(n), executor, str(workers), str(bars)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        n, ex, w, bars = args.child
        print(json.dumps(child(int(n), ex, int(w), int(bars))))
        return 0
    bars = 2000
    big = 1000 if args.quick else 10_000
    report: dict[str, Any] = {"backtrader": compare(args.quick)}
    print(json.dumps(report["backtrader"]), file=sys.stderr)
    report["serial_1000"] = spawn(1000, "serial", 1, bars)
    report["local2_1000"] = spawn(1000, "local", 2, bars)
    print(json.dumps(report), file=sys.stderr)
    report[f"serial_{big}"] = spawn(big, "serial", 1, bars)
    report[f"local2_{big}"] = spawn(big, "local", 2, bars)
    # The speedup on the large run: at 1,000 instances (about 2 s of work) the
    # workers' start-up (forkserver, imports) is a fixed cost that hides it.
    for n in (1000, big):
        report[f"local_speedup_2_workers_{n}"] = round(
            report[f"serial_{n}"]["wall_s"] / report[f"local2_{n}"]["wall_s"], 2
        )
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
