"""What runs in a worker: a batch of instances, one JSON line each.

A result line is ``{"index", "params", "path", "seed", "ok", "metrics"}`` (or
``"error"`` and ``"traceback"`` instead of ``"metrics"`` when the instance
raised), serialized with sorted keys: the same instance gives the same bytes
whatever the executor, the worker or the batch.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from typing import Any, Optional

from .data import Bars, path_rng
from .driver import InstanceError, build_and_run
from .spec import SweepSpec, load_class

__all__ = ["BatchResult", "run_batch"]

#: (index, JSON line without newline, setup ns, ok)
BatchResult = tuple[int, str, int, bool]


class _Plan:
    """A spec's classes, schema and last path, loaded once per worker process."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.classes = {s.name: load_class(s.class_path, spec.sys_paths) for s in spec.services}
        self.schema: Any = None
        if spec.schema is not None:
            from ..protocol import Schema

            self.schema = Schema.load(spec.schema)
        self._bars: tuple[int, Bars] | None = None

    def bars(self, path: int) -> Bars:
        if self._bars is None or self._bars[0] != path:
            self._bars = (path, self.spec.source.generate(path_rng(self.spec.seed, path)))
        return self._bars[1]

    def run(self, index: int) -> tuple[str, int, bool]:
        spec = self.spec
        params, path = spec.instance(index)
        record: dict[str, Any] = {"index": index, "params": params, "path": path, "seed": [spec.seed, path]}
        setup = 0
        try:
            bars = self.bars(path)
            factories = []
            for name, _, config in spec.service_configs(params):
                if name == spec.feed:
                    config["bars"] = bars
                factories.append((name, self.classes[name], config))
            metrics, setup = build_and_run(factories, self.schema, spec.periods_per_year)
            record["ok"] = True
            record["metrics"] = metrics
        except InstanceError as exc:
            record["ok"] = False
            record["error"] = str(exc)
            record["traceback"] = exc.format()
        except Exception as exc:
            record["ok"] = False
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = ""
        return json.dumps(record, sort_keys=True, default=repr), setup, record["ok"]


_PLANS: dict[str, _Plan] = {}


def _plan(spec: SweepSpec) -> _Plan:
    key = spec.digest()
    plan = _PLANS.get(key)
    if plan is None:
        _PLANS.clear()
        plan = _PLANS[key] = _Plan(spec)
    return plan


def run_batch(spec: SweepSpec, indices: Sequence[int]) -> list[BatchResult]:
    """Run the instances ``indices``; a failing instance is a line with ``ok: false``."""
    plan = _plan(spec)
    out = []
    for i in indices:
        line, setup, ok = plan.run(i)
        out.append((i, line, setup, ok))
    return out


def init_worker(ignore_sigint: bool = True) -> None:
    """Pool initializer: Ctrl-C is the parent's business (it stops the pool)."""
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def warm(spec: Optional[SweepSpec]) -> int:
    """Load a spec's plan (a no-op task that makes workers import everything)."""
    if spec is not None:
        _plan(spec)
    return 0
