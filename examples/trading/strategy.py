"""The Python strategy of the trading example: features and an online model with numpy.

For every MarketTick the strategy updates the tick's symbol's features,
trains an online linear model (normalised least-mean-squares, i.e. SGD on
the squared error with a step scaled by the input's norm) on the move that
just happened, and forecasts the next mid change in pips.  A forecast beyond
``threshold`` pips becomes a :class:`Signal`: a marketable IOC limit order
proposal (``aggress_pips`` through the touch) of one lot plus one for every
``qty_step`` pips beyond the threshold, at most ``max_qty``.  One model is shared by every
symbol (the feed moves them all by the same rule).

Features of a tick (pips unless said): ``1`` (bias), the last mid change,
the change over 4 ticks, the book imbalance ``(bid_size - ask_size) /
(bid_size + ask_size)``, the spread, and the z-score of the mid in its last
``window`` mids.

Determinism: the outputs are a function of the tick stream only.  Every
reduction (dot products, means, sums of squares) is ``math.fsum``, which is
correctly rounded whatever the order or alignment of its inputs, and every
other operation is an elementwise IEEE-754 ``+ - * /`` or ``sqrt``: no BLAS,
no vectorised transcendental whose last bit depends on the CPU's SIMD
extensions.  So the same ticks give the same signals on any x86-64 or arm64
machine.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import numpy as np
import numpy.typing as npt
from trading_sim import Finish, percentiles, pips, price

from mycelium_shm.bus import Service, handles

__all__ = ["Features", "Strategy"]

Vector = npt.NDArray[np.float64]
N_FEATURES = 6
#: Pips per 1.0 of price.
PIP_F = 100000.0


class Features:
    """The rolling state of one symbol: its last ``window`` mids, in pips, in a ring."""

    def __init__(self, window: int) -> None:
        self.mids: Vector = np.zeros(window, dtype=np.float64)
        self.count = 0

    def ago(self, k: int) -> float:
        """The mid ``k`` ticks before the latest (``k`` < the mids held)."""
        return float(self.mids[(self.count - 1 - k) % len(self.mids)])

    def update(self, bid: float, ask: float, bid_size: int, ask_size: int) -> Vector:
        """Push this tick's mid; the feature vector of the tick."""
        window = len(self.mids)
        mid = (bid + ask) * (PIP_F / 2.0)
        self.mids[self.count % window] = mid
        self.count += 1
        n = min(self.count, window)
        prev = self.ago(1) if n >= 2 else mid
        back4 = self.ago(4) if n >= 5 else self.ago(n - 1)
        # The n mids held, in ring order: fsum and elementwise operations do
        # not depend on the order.
        recent: Vector = self.mids[:n]
        mean = math.fsum(recent) / n
        dev: Vector = recent - mean
        std = math.sqrt(math.fsum(dev * dev) / n)
        return np.array(
            [
                1.0,
                mid - prev,
                mid - back4,
                (bid_size - ask_size) / (bid_size + ask_size),
                (ask - bid) * PIP_F,
                (mid - mean) / (std + 1.0),
            ],
            dtype=np.float64,
        )

    @property
    def mid(self) -> float:
        """The latest mid, pips."""
        return self.ago(0)


class Strategy(Service):
    """Online NLMS forecaster of the next mid change; a Signal when it is large enough."""

    def __init__(
        self,
        window: int = 32,
        warmup: int = 16,
        step: float = 0.05,
        threshold: float = 1.5,
        qty_step: float = 0.25,
        max_qty: int = 8,
        aggress_pips: int = 1,
    ) -> None:
        super().__init__()
        for rule, ok in (
            ("window >= 5", window >= 5),
            ("warmup >= 1", warmup >= 1),
            ("0 < step < 2", 0.0 < step < 2.0),
            ("threshold > 0", threshold > 0.0),
            ("qty_step > 0", qty_step > 0.0),
            ("max_qty >= 1", max_qty >= 1),
        ):
            if not ok:
                raise ValueError(f"strategy config: {rule} does not hold")
        self.window = window
        self.warmup = warmup
        self.step = step
        self.threshold = threshold
        self.qty_step = qty_step
        self.max_qty = max_qty
        self.aggress_pips = aggress_pips
        self.weights: Vector = np.zeros(N_FEATURES, dtype=np.float64)
        self.features: dict[str, Features] = {}
        #: symbol -> (features, forecast) of its previous tick, to learn from.
        self.pending: dict[str, tuple[Vector, float]] = {}
        self.ticks = 0
        self.signals = 0
        self.hits = 0
        self.scored = 0
        self.signal_of: dict[str, int] = {}
        #: Market data to this handler, per tick: the first hop's latency.
        self.hop_ns: list[int] = []
        Finish.register("strategy")

    def forecast(self, x: Vector) -> float:
        """The model's forecast for features ``x``."""
        return math.fsum(self.weights * x)

    def learn(self, x: Vector, predicted: float, actual: float) -> None:
        """One NLMS step: ``w += step * (actual - predicted) * x / (1 + |x|^2)``."""
        gain = self.step * (actual - predicted) / (1.0 + math.fsum(x * x))
        self.weights = self.weights + gain * x

    @handles("MarketTick")
    def on_tick(self, tick: Any) -> None:
        """Learn from the move since the symbol's last tick, forecast the next one."""
        self.ticks += 1
        if tick.seq > 0:  # tick 0 opens the feed: it waited for the link (see the README)
            self.hop_ns.append(time.monotonic_ns() - tick.ts_ns)
        state = self.features.get(tick.symbol)
        if state is None:
            state = self.features[tick.symbol] = Features(self.window)
        before = state.mid if state.count else None
        x = state.update(tick.bid, tick.ask, tick.bid_size, tick.ask_size)
        pending = self.pending.get(tick.symbol)
        if pending is not None and before is not None:
            actual = state.mid - before
            self.learn(pending[0], pending[1], actual)
            side = self.signal_of.pop(tick.symbol, 0)
            if side != 0 and actual != 0.0:
                self.scored += 1
                self.hits += (actual > 0.0) == (side > 0)
        predicted = self.forecast(x)
        self.pending[tick.symbol] = (x, predicted)
        if state.count < self.warmup or abs(predicted) < self.threshold:
            return
        side = 1 if predicted > 0.0 else -1
        qty = min(self.max_qty, 1 + int((abs(predicted) - self.threshold) / self.qty_step))
        touch = pips(tick.ask) if side > 0 else pips(tick.bid)
        self.signal_of[tick.symbol] = side
        self.signals += 1
        self.publish(
            self.schema.Signal(
                symbol=tick.symbol,
                tick_seq=tick.seq,
                tick_ts_ns=tick.ts_ns,
                side=side,
                qty=qty,
                limit_price=price(touch + side * self.aggress_pips),
                ref_price=(tick.bid + tick.ask) / 2.0,
                prediction=predicted,
                features=[float(v) for v in x],
            )
        )

    @handles("EndOfTicks")
    def on_end(self, end: Any) -> None:
        """Market data is done: pass the end on, report, finish."""
        if end.count != self.ticks:
            self.log.error("EndOfTicks says %d ticks, %d arrived", end.count, self.ticks)
        self.publish(self.schema.EndOfSignals(count=self.signals))
        summary = {
            "ticks": self.ticks,
            "tick_to_strategy_us": percentiles(self.hop_ns),
            "signals": self.signals,
            "hit_rate": round(self.hits / self.scored, 4) if self.scored else None,
            "weights": [round(float(w), 4) for w in self.weights],
        }
        sys.stdout.write("STRATEGY " + json.dumps(summary, sort_keys=True) + "\n")
        sys.stdout.flush()
        if Finish.done("strategy"):
            self.stop_node()
