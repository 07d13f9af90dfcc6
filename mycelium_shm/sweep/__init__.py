"""Parallel backtests and Monte Carlo: thousands of isolated bus instances.

>>> from mycelium_shm.sweep import GBM, SweepSpec, run_sweep      # doctest: +SKIP
>>> spec = SweepSpec.create(
...     {"feed": BarFeed, "strategy": SmaCross, "portfolio": Portfolio},
...     GBM(bars=2000), grid={"strategy.fast": [5, 10], "strategy.slow": [30, 60]},
...     schema="examples/sweep/schema.toml")
>>> result = run_sweep(spec, "out", executor="local")               # or "serial", "ray"
>>> result.report()["best"]

Each instance is the same :class:`~mycelium_shm.bus.Service` classes a live
topology runs, on a private in-process :class:`~mycelium_shm.bus.MessageBus`
driven synchronously (:mod:`.driver`).  Modules: :mod:`.spec` (what runs,
config files), :mod:`.data` (market data), :mod:`.executors` (serial, local,
ray), :mod:`.runner` (streaming results, resume, progress), :mod:`.report`.
"""

from __future__ import annotations

from .data import GBM, Bars, Bootstrap, CsvSource, load_csv, path_rng
from .driver import InstanceError, SyncNode, equity_metrics
from .executors import EXECUTORS, Executor, make_executor
from .report import best, format_table, risk_metrics, write_reports
from .runner import SweepInterrupted, SweepResult, iter_results, run_sweep
from .spec import ServiceDef, SweepConfigError, SweepSpec, load_config

__all__ = [
    "EXECUTORS",
    "GBM",
    "Bars",
    "Bootstrap",
    "CsvSource",
    "Executor",
    "InstanceError",
    "ServiceDef",
    "SweepConfigError",
    "SweepInterrupted",
    "SweepResult",
    "SweepSpec",
    "SyncNode",
    "best",
    "equity_metrics",
    "format_table",
    "iter_results",
    "load_config",
    "load_csv",
    "make_executor",
    "path_rng",
    "risk_metrics",
    "run_sweep",
    "write_reports",
]
