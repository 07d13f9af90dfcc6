"""One backtest instance: a private in-process MessageBus driven synchronously.

The live :class:`~mycelium_shm.bus.runtime.Runtime` gives every service a
mailbox and a thread.  A sweep runs thousands of instances per core, so it
uses :class:`SyncNode` instead: the same :class:`Service` classes, bound to a
:class:`ServiceContext` the same way, but every handler is subscribed to the
bus directly.  ``MessageBus.publish`` calls local handlers synchronously in
the publishing thread, so a message is handled (depth first) before
``publish`` returns: no thread, no queue, fully deterministic.

Order: ``on_start`` runs for the services in reverse declaration order
(consumers are ready before the producer, which publishes its whole stream
from ``on_start`` as a live feed does), then ``on_stop`` in declaration
order, as the runtime stops them.  A handler that raises stops the instance
(``stopping`` becomes true, so a feed loop returns) and the error is raised
from :meth:`SyncNode.run` as :class:`InstanceError`.

Results: every service may define ``result() -> dict``; the dicts are merged
in declaration order.  Two keys are special: ``equity`` (the marked-to-market
equity after every bar) becomes ``pnl``, ``return``, ``sharpe`` and
``max_drawdown`` (see :func:`equity_metrics`); ``trades`` is kept as is.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from typing import Any, Optional

import numpy as np

from ..bus.bus import MessageBus
from ..bus.service import Service, ServiceContext

__all__ = ["InstanceError", "SyncNode", "equity_metrics", "merge_results"]

_HANDLERS: dict[type, list[tuple[Any, str]]] = {}


def _handlers_of(cls: type[Service]) -> list[tuple[Any, str]]:
    found = _HANDLERS.get(cls)
    if found is None:
        found = _HANDLERS[cls] = list(cls.handlers().items())
    return found


class InstanceError(Exception):
    """An instance failed: a handler or a lifecycle hook raised."""

    def __init__(self, context: str, cause: BaseException) -> None:
        super().__init__(f"{context}: {type(cause).__name__}: {cause}")
        self.context = context
        self.cause = cause

    def format(self) -> str:
        """The failing exception's traceback."""
        return "".join(traceback.format_exception(type(self.cause), self.cause, self.cause.__traceback__))


class SyncNode:
    """Services on one private bus, driven synchronously (see the module docstring)."""

    __slots__ = ("_error", "bus", "schema", "services", "stopping")

    def __init__(self, services: Iterable[tuple[str, Service]], schema: Any = None) -> None:
        self.schema = schema
        self.bus = MessageBus(schema, name="sweep", on_error=self._on_error)
        self.stopping = threading.Event()
        self._error: Optional[tuple[BaseException, str]] = None
        self.services = list(services)
        bus, publish, stop = self.bus, self.bus.publish, self.request_stop
        for name, service in self.services:
            service.bind(ServiceContext(name, publish, stop, self.stopping, schema))
            for message_type, method in _handlers_of(type(service)):
                bus.subscribe(message_type, getattr(service, method))

    def _on_error(self, exc: BaseException, context: str) -> None:
        if self._error is None:
            self._error = (exc, context)
        self.stopping.set()

    def request_stop(self) -> None:
        """What ``Service.stop_node`` calls: ask the feed to stop early."""
        self.stopping.set()

    def run(self) -> dict[str, Any]:
        """Start (reverse order), stop (declaration order); the merged results."""
        for name, service in reversed(self.services):
            self._call(service.on_start, f"service {name}: on_start")
        for name, service in self.services:
            self._call(service.on_stop, f"service {name}: on_stop")
        return merge_results(self.services)

    def _call(self, fn: Any, context: str) -> None:
        try:
            fn()
        except Exception as exc:
            raise InstanceError(context, exc) from exc
        if self._error is not None:
            exc, where = self._error
            raise InstanceError(where, exc) from exc

    def close(self) -> None:
        self.bus.close(timeout=0)


def merge_results(
    services: Iterable[tuple[str, Service]], periods_per_year: float = 252.0
) -> dict[str, Any]:
    """Every service's ``result()`` merged, ``equity`` turned into metrics."""
    merged: dict[str, Any] = {}
    for name, service in services:
        hook = getattr(service, "result", None)
        if hook is None:
            continue
        try:
            got = hook()
        except Exception as exc:
            raise InstanceError(f"service {name}: result", exc) from exc
        if got:
            merged.update(got)
    equity = merged.pop("equity", None)
    if equity is not None:
        merged.update(equity_metrics(equity, periods_per_year))
    return {k: _plain(v) for k, v in merged.items()}


def equity_metrics(equity: Any, periods_per_year: float = 252.0) -> dict[str, float]:
    """P&L, return, annualized Sharpe (per-bar returns) and max drawdown of an equity curve.

    ``max_drawdown`` is the largest fall from a running peak, as a fraction of
    that peak (0.25 = 25 %); ``max_drawdown_abs`` the same in money.
    """
    eq = np.asarray(equity, dtype=np.float64)
    if eq.shape[0] == 0:
        return {"pnl": 0.0, "return": 0.0, "sharpe": 0.0, "max_drawdown": 0.0, "max_drawdown_abs": 0.0}
    start = float(eq[0])
    pnl = float(eq[-1]) - start
    sharpe = 0.0
    if eq.shape[0] > 2 and np.all(eq[:-1] != 0):
        rets = np.diff(eq) / eq[:-1]
        sd = float(np.std(rets, ddof=1))
        if sd > 0 and math.isfinite(sd):
            sharpe = float(np.mean(rets)) / sd * math.sqrt(periods_per_year)
    peak = np.maximum.accumulate(eq)
    drop = peak - eq
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(peak > 0, drop / peak, 0.0)
    return {
        "pnl": pnl,
        "return": pnl / start if start else 0.0,
        "sharpe": sharpe,
        "max_drawdown": float(frac.max()),
        "max_drawdown_abs": float(drop.max()),
    }


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as JSON-able Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def build_and_run(
    factories: Iterable[tuple[str, Any, Mapping[str, Any]]],
    schema: Any = None,
    periods_per_year: float = 252.0,
) -> tuple[dict[str, Any], int]:
    """Construct the services, wire a :class:`SyncNode`, run it: (results, setup ns).

    Setup time is construction plus binding and wiring, measured with
    ``perf_counter_ns``.
    """
    t0 = time.perf_counter_ns()
    services = [(name, cls(**config)) for name, cls, config in factories]
    node = SyncNode(services, schema)
    setup = time.perf_counter_ns() - t0
    try:
        node.run()
        return merge_results(node.services, periods_per_year), setup
    finally:
        node.close()
