"""An SMA-crossover strategy as services: bars -> strategy -> execution -> portfolio.

The same classes run in a sweep (:mod:`mycelium_shm.sweep`, thousands of
isolated instances, see ``grid.toml`` and ``montecarlo.toml``) and in a live
topology (``live.toml``, one thread per service).  Messages come from
``schema.toml`` by name (``self.schema.Bar``).

Rules (those of backtrader's classic SmaCross, so ``bench/bench_sweep.py``
can compare trades): long only; buy ``size`` when the fast SMA crosses above
the slow one while flat, sell everything when it crosses below; market
orders fill at the open of the next bar.  A cross is backtrader's: the last
non-zero difference fast - slow was negative (positive) and it is now
positive (negative).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Optional

from mycelium_shm.bus import Service, handles

__all__ = ["BarFeed", "Execution", "Portfolio", "SmaCross"]


class BarFeed(Service):
    """Publishes every bar, then Stop.

    In a sweep the bars are given (``bars``); live, they come from ``source``
    (a :mod:`mycelium_shm.sweep.data` config such as ``{kind = "gbm", bars = 500}``)
    generated from ``seed``.  ``interval`` (seconds) paces a live feed, as a
    market would; a sweep publishes as fast as the services handle the bars.
    """

    def __init__(
        self,
        bars: Any = None,
        source: Optional[dict[str, Any]] = None,
        seed: int = 0,
        interval: float = 0.0,
    ) -> None:
        super().__init__()
        self.interval = interval
        if bars is None:
            from mycelium_shm.sweep.data import make_source, path_rng

            options = dict(source or {"kind": "gbm"})
            bars = make_source(options.pop("kind", "gbm"), options).generate(path_rng(seed, 0))
        self.bars = bars

    def on_start(self) -> None:
        bar_cls = self.schema.Bar
        publish = self.publish
        seq = -1
        pace = self.interval
        for seq, ts, o, h, lo, c, v in self.bars.rows():
            if pace:
                if self.stopping:
                    return
                time.sleep(pace)
            elif not seq & 255 and self.stopping:
                return
            publish(bar_cls(seq, ts, o, h, lo, c, v))
        publish(self.schema.Stop(max(seq, 0), "feed"))


class SmaCross(Service):
    """Long ``size`` while the fast SMA is above the slow one (see the module docstring)."""

    def __init__(self, fast: int = 10, slow: int = 30, size: float = 10.0) -> None:
        super().__init__()
        if not 1 <= fast < slow:
            raise ValueError(f"need 1 <= fast < slow, not fast={fast}, slow={slow}")
        self.fast, self.slow, self.size = fast, slow, size
        self._fw: deque[float] = deque()
        self._sw: deque[float] = deque()
        self._fs = 0.0
        self._ss = 0.0
        self._last_nz = 0.0
        self.position = 0.0
        self.orders = 0

    @handles("Bar")
    def on_bar(self, bar: Any) -> None:
        c = bar.close
        fw, sw = self._fw, self._sw
        fw.append(c)
        sw.append(c)
        self._fs += c
        self._ss += c
        if len(fw) > self.fast:
            self._fs -= fw.popleft()
        if len(sw) > self.slow:
            self._ss -= sw.popleft()
        elif len(sw) < self.slow:
            return
        diff = self._fs / self.fast - self._ss / self.slow
        last = self._last_nz
        if diff:
            self._last_nz = diff
        if last < 0 < diff and not self.position:
            self.position = self.size
            self.orders += 1
            self.publish(self.schema.Order(bar.seq, 1, self.size))
        elif diff < 0 < last and self.position:
            qty, self.position = self.position, 0.0
            self.orders += 1
            self.publish(self.schema.Order(bar.seq, -1, qty))

    @handles("Stop")
    def on_end(self, stop: Any) -> None:
        if stop.reason == "feed":  # each stage ends after its upstream (live runs)
            self.publish(self.schema.Stop(stop.last_seq, "strategy"))


class Execution(Service):
    """A simulated venue: market orders fill at the next bar's open (plus slippage, fees)."""

    def __init__(self, commission: float = 0.0, slippage: float = 0.0) -> None:
        super().__init__()
        self.commission = commission
        self.slippage = slippage
        self._pending: list[Any] = []

    @handles("Order")
    def on_order(self, order: Any) -> None:
        self._pending.append(order)

    @handles("Bar")
    def on_bar(self, bar: Any) -> None:
        if not self._pending:
            return
        ready = [o for o in self._pending if o.bar_seq < bar.seq]
        if not ready:
            return
        self._pending = [o for o in self._pending if o.bar_seq >= bar.seq]
        fill = self.schema.Fill
        for o in ready:
            price = bar.open_px + o.side * self.slippage
            self.publish(fill(bar.seq, o.side, o.qty, price, abs(price * o.qty) * self.commission))

    @handles("Stop")
    def on_end(self, stop: Any) -> None:
        if stop.reason == "strategy":
            self.publish(self.schema.Stop(stop.last_seq, "execution"))


class Portfolio(Service):
    """Cash, position and equity after every bar; the sweep's metrics come from here.

    ``result()`` reports ``equity`` (turned into pnl, sharpe, max_drawdown by
    the sweep), ``trades`` (round trips closed) and, with ``record_trades``,
    the (entry bar, exit bar) of each.  With ``announce`` (live runs) it
    prints a summary line at Stop and stops the node.
    """

    def __init__(self, cash: float = 100_000.0, record_trades: bool = False, announce: bool = False) -> None:
        super().__init__()
        self.cash = cash
        self.qty = 0.0
        self.equity: list[float] = []
        self.trades = 0
        self.fees = 0.0
        self.record_trades = record_trades
        self.announce = announce
        self.trade_bars: list[tuple[int, int]] = []
        self._entry: Optional[int] = None

    @handles("Fill")
    def on_fill(self, fill: Any) -> None:
        was_flat = not self.qty
        self.qty += fill.side * fill.qty
        self.cash -= fill.side * fill.qty * fill.price + fill.fee
        self.fees += fill.fee
        if was_flat and self.qty:
            self._entry = fill.bar_seq
        elif not self.qty:
            self.trades += 1
            if self.record_trades and self._entry is not None:
                self.trade_bars.append((self._entry, fill.bar_seq))
            self._entry = None

    @handles("Bar")
    def on_bar(self, bar: Any) -> None:
        self.equity.append(self.cash + self.qty * bar.close)

    @handles("Stop")
    def on_end(self, stop: Any) -> None:
        if self.announce and stop.reason == "execution":
            import json

            eq = self.equity[-1] if self.equity else self.cash
            print("SUMMARY " + json.dumps({"bars": len(self.equity), "trades": self.trades, "equity": round(eq, 6)}), flush=True)
            self.stop_node()

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "equity": self.equity,
            "trades": self.trades,
            "fees": self.fees,
            "open_position": self.qty,
            "bars": len(self.equity),
        }
        if self.record_trades:
            out["trade_bars"] = self.trade_bars
        return out
