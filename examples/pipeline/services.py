"""The services of the trading pipeline: market data -> strategy -> risk -> execution.

The same classes run in every deployment (one process, one process per
service over shared memory, two processes over TCP); only the topology file
changes.  Everything is deterministic: prices come from a seeded generator
and each stage answers only its upstream, so every deployment produces the
same fills in the same order.

End of stream: each stage, once its upstream sent ``Stop``, publishes its own
``Stop`` (``reason`` = its name).  A stage reacts only to its upstream's
``Stop``; since one sender's messages arrive in order, that ``Stop`` comes
after everything the upstream sent before it.  The report service prints
the summary line when execution's ``Stop`` arrives, then stops its node.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import sys
from collections import deque
from typing import Any

from mycelium_shm.bus import Service, handles

__all__ = ["Execution", "MarketData", "Report", "Risk", "Strategy"]

#: Which stage's Stop each stage waits for.
UPSTREAM = {
    "strategy": "market_data",
    "risk": "strategy",
    "execution": "risk",
    "report": "execution",
}


def f32(x: float) -> float:
    """``x`` rounded to float32, as a field of type f32 carries it across processes.

    Local subscribers get the very object published, unencoded; rounding f32
    fields at the source keeps the in-process and cross-process runs equal.
    """
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


class MarketData(Service):
    """Publishes ``ticks`` MarketTicks (a seeded random walk per symbol), then Stop."""

    def __init__(
        self,
        ticks: int = 2000,
        seed: int = 7,
        symbols: tuple[str, ...] | list[str] = ("EURUSD", "GBPUSD", "USDJPY"),
    ) -> None:
        super().__init__()
        self.ticks = ticks
        self.seed = seed
        self.symbols = list(symbols)

    def on_start(self) -> None:
        rng = random.Random(self.seed)
        tick_cls, stop_cls = self.schema.MarketTick, self.schema.Stop
        mids = {s: 1.0 + 0.25 * i for i, s in enumerate(self.symbols)}
        for seq in range(self.ticks):
            if self.stopping:
                return
            symbol = self.symbols[seq % len(self.symbols)]
            mids[symbol] += rng.uniform(-1.0, 1.0) * 0.0004
            half_spread = 0.00005 + rng.random() * 0.00005
            self.publish(
                tick_cls(
                    symbol=symbol,
                    seq=seq,
                    ts_ns=1_700_000_000_000_000_000 + seq * 1_000,
                    bid=round(mids[symbol] - half_spread, 6),
                    ask=round(mids[symbol] + half_spread, 6),
                    bid_size=rng.randint(1, 50),
                    ask_size=rng.randint(1, 50),
                )
            )
        self.publish(stop_cls(last_seq=max(self.ticks - 1, 0), reason="market_data"))


class Strategy(Service):
    """Mean reversion against a moving average: a Signal for every tick."""

    def __init__(self, window: int = 16, threshold: float = 0.0002, strategy_id: int = 1) -> None:
        super().__init__()
        self.window = window
        self.threshold = threshold
        self.strategy_id = strategy_id
        self.mids: dict[str, deque[float]] = {}
        self.signals = 0

    @handles("MarketTick")
    def on_tick(self, tick: Any) -> None:
        mid = (tick.bid + tick.ask) / 2
        history = self.mids.setdefault(tick.symbol, deque(maxlen=self.window))
        history.append(mid)
        average = sum(history) / len(history)
        diff = mid - average
        side = 0
        if len(history) == self.window and abs(diff) > self.threshold:
            side = -1 if diff > 0 else 1
        self.signals += 1
        self.publish(
            self.schema.Signal(
                strategy_id=self.strategy_id,
                symbol=tick.symbol,
                tick_seq=tick.seq,
                side=side,
                strength=f32(min(1.0, abs(diff) / (4 * self.threshold))),
                features=[f32(mid), f32(average)],
            )
        )

    @handles("Stop")
    def on_stop_msg(self, stop: Any) -> None:
        if stop.reason == UPSTREAM["strategy"]:
            self.publish(self.schema.Stop(last_seq=self.signals, reason="strategy"))


class Risk(Service):
    """Turns strong signals into orders while the position stays within limits."""

    def __init__(self, max_position: int = 3, min_strength: float = 0.3, lot: int = 2) -> None:
        super().__init__()
        self.max_position = max_position
        self.min_strength = min_strength
        self.lot = lot
        self.position: dict[str, int] = {}
        self.next_order_id = 1

    @handles("Signal")
    def on_signal(self, signal: Any) -> None:
        if signal.side == 0 or signal.strength < self.min_strength:
            return
        position = self.position.get(signal.symbol, 0) + signal.side * self.lot
        if abs(position) > self.max_position * self.lot:
            return
        self.position[signal.symbol] = position
        order_id, self.next_order_id = self.next_order_id, self.next_order_id + 1
        self.publish(
            self.schema.OrderRequest(
                order_id=order_id,
                symbol=signal.symbol,
                side=signal.side,
                qty=self.lot,
                limit_price=round(float(signal.features[0]), 5),
                ioc=True,
                ts_ns=1_700_000_000_000_000_000 + signal.tick_seq * 1_000 + 100,
            )
        )

    @handles("Stop")
    def on_stop_msg(self, stop: Any) -> None:
        if stop.reason == UPSTREAM["risk"]:
            self.publish(self.schema.Stop(last_seq=self.next_order_id - 1, reason="risk"))


class Execution(Service):
    """A simulated venue: fills every order at its limit plus slippage, in two parts."""

    def __init__(self, venue: str = "SIMX", fee_rate: float = 0.00002, slippage: float = 0.00001):
        super().__init__()
        self.venue = venue.encode("ascii")[:4].ljust(4, b"\0")
        self.fee_rate = fee_rate
        self.slippage = slippage
        self.fills = 0

    @handles("OrderRequest")
    def on_order(self, order: Any) -> None:
        price = round(order.limit_price + order.side * self.slippage, 6)
        first = (order.qty + 1) // 2
        for n, qty in enumerate((first, order.qty - first)):
            if qty == 0:
                continue
            self.fills += 1
            self.publish(
                self.schema.Fill(
                    order_id=order.order_id,
                    venue=self.venue,
                    qty=qty,
                    price=price,
                    fee=round(price * qty * self.fee_rate, 9),
                    ts_ns=order.ts_ns + 200 + n,
                )
            )

    @handles("Stop")
    def on_stop_msg(self, stop: Any) -> None:
        if stop.reason == UPSTREAM["execution"]:
            self.publish(self.schema.Stop(last_seq=self.fills, reason="execution"))


class Report(Service):
    """Counts fills and hashes them in arrival order; prints one summary line at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.fills = 0
        self.qty = 0
        self.fees = 0.0
        self.hash = hashlib.sha256()

    @handles("Fill")
    def on_fill(self, fill: Any) -> None:
        self.fills += 1
        self.qty += fill.qty
        self.fees += fill.fee
        self.hash.update(
            f"{fill.order_id},{fill.venue.hex()},{fill.qty},{fill.price!r},{fill.fee!r},"
            f"{fill.ts_ns};".encode()
        )

    @handles("Stop")
    def on_stop_msg(self, stop: Any) -> None:
        if stop.reason != UPSTREAM["report"]:
            return
        summary = {
            "fills": self.fills,
            "fills_announced": stop.last_seq,
            "qty": self.qty,
            "fees": round(self.fees, 9),
            "checksum": self.hash.hexdigest()[:16],
        }
        sys.stdout.write("SUMMARY " + json.dumps(summary, sort_keys=True) + "\n")
        sys.stdout.flush()
        self.stop_node()
