"""Python twins of the Rust and OCaml services of the trading example.

The real system runs market data and execution in Rust (``rust/``) and risk
and the order manager in OCaml (``ocaml/``).  These classes implement the
same rules, operation for operation, so that ``reference.toml`` (every
service in one Python process) must print the very checksum the
multi-language topologies print, and write the same audit logs: an
independent check of three implementations (tests/test_trading_example.py).

Rules (the Rust and OCaml code cite them):

- :class:`MarketData`: ``ticks`` ticks of :class:`trading_sim.Market`, one
  every ``interval_us`` microseconds (paced against CLOCK_MONOTONIC; late
  ticks go out at once), then ``EndOfTicks``.
- :class:`Risk`: the pre-trade checks of :meth:`Risk.check`, in that order,
  on positions from the fills, with one order in flight at a time (signals
  queue meanwhile), so every decision sees exactly the fills of the orders
  before it, whenever they arrive.
- :class:`Execution`: :func:`trading_sim.venue_fills` against the quote of
  the order's symbol once the feed reached ``tick_seq + latency_ticks``.
- :class:`OrderManager`: order states, positions and cash from the fills.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from trading_sim import (
    DEFAULT_SYMBOLS,
    Finish,
    Fnv64,
    Market,
    fill_record,
    order_record,
    percentiles,
    pips,
    venue_fills,
)

from mycelium_shm.bus import Service, handles

__all__ = ["Execution", "MarketData", "OrderManager", "Risk"]

HERE = Path(__file__).resolve().parent


_OPENED: set[Path] = set()


def open_audit(audit_dir: str, name: str) -> IO[str]:
    """``audit_dir/name`` (a relative ``audit_dir`` is relative to this directory).

    Truncated the first time in this process, appended to after that: a
    restarted service keeps its predecessor's lines.
    """
    path = HERE / audit_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "a" if path in _OPENED else "w"
    _OPENED.add(path)
    return path.open(mode, encoding="utf-8")


def emit(tag: str, summary: dict[str, Any]) -> None:
    """One ``TAG {json}`` line on stdout."""
    sys.stdout.write(f"{tag} {json.dumps(summary, sort_keys=True)}\n")
    sys.stdout.flush()


class MarketData(Service):
    """The seeded feed: ``ticks`` MarketTicks, then EndOfTicks."""

    def __init__(
        self,
        ticks: int = 10_000,
        seed: int = 7,
        symbols: list[str] | tuple[str, ...] = DEFAULT_SYMBOLS,
        interval_us: int = 100,
    ) -> None:
        super().__init__()
        self.ticks = ticks
        self.seed = seed
        self.symbols = tuple(symbols)
        self.interval_ns = interval_us * 1000
        Finish.register("market_data")

    def on_start(self) -> None:
        market = Market(self.seed, self.symbols)
        start = time.monotonic_ns()
        for n in range(self.ticks):
            if self.stopping:
                return
            delay = start + n * self.interval_ns - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            q = market.next()
            self.publish(
                self.schema.MarketTick(
                    symbol=q.symbol,
                    seq=q.seq,
                    ts_ns=time.monotonic_ns(),
                    bid=q.bid / 100000.0,
                    ask=q.ask / 100000.0,
                    bid_size=q.bid_size,
                    ask_size=q.ask_size,
                )
            )
        self.publish(self.schema.EndOfTicks(count=self.ticks))
        emit("MARKET_DATA", {"ticks": self.ticks})
        if Finish.done("market_data"):
            self.stop_node()


class Risk(Service):
    """Pre-trade checks on each Signal, one order in flight; approved ones become OrderRequests.

    Positions come from the venue's fills.  So that no decision depends on
    when a fill arrives, at most one order is in flight: a Signal that
    arrives while an order waits for its last Fill is queued, and the queue
    is worked off, in arrival order, when that Fill comes.  Every decision
    therefore sees the fills of every earlier order and nothing else.
    """

    REASONS = ("qty", "collar", "rate", "position", "notional")

    def __init__(
        self,
        max_order_qty: int = 5,
        max_position: int = 12,
        max_gross_notional: float = 25.0,
        collar_pips: int = 3,
        max_orders: int = 40,
        window_ticks: int = 300,
        audit_dir: str = "audit",
    ) -> None:
        super().__init__()
        self.max_order_qty = max_order_qty
        self.max_position = max_position
        self.max_gross_pips = pips(max_gross_notional)
        self.collar_pips = collar_pips
        self.max_orders = max_orders
        self.window_ticks = window_ticks
        self.audit = open_audit(audit_dir, "risk.log")
        self.position: dict[str, int] = {}
        self.ref_pips: dict[str, int] = {}
        self.recent: deque[int] = deque()
        self.queue: deque[tuple[Any, int]] = deque()
        self.hop_ns: list[int] = []
        self.wait_ns: list[int] = []
        self.in_flight: int | None = None
        self.end: int | None = None
        self.next_order_id = 1
        self.signals = 0
        self.rejected = dict.fromkeys(self.REASONS, 0)
        Finish.register("risk")

    def gross(self, symbol: str, new_position: int) -> int:
        """Sum of |position| x reference price in pips, with ``symbol`` at ``new_position``."""
        total = 0
        for sym, pos in self.position.items():
            total += abs(new_position if sym == symbol else pos) * self.ref_pips[sym]
        if symbol not in self.position:
            total += abs(new_position) * self.ref_pips[symbol]
        return total

    def check(self, signal: Any) -> str | None:
        """The first failed check's name, or None: the order may go."""
        if not 1 <= signal.qty <= self.max_order_qty:
            return "qty"
        if abs(pips(signal.limit_price) - self.ref_pips[signal.symbol]) > self.collar_pips:
            return "collar"
        while self.recent and self.recent[0] + self.window_ticks <= signal.tick_seq:
            self.recent.popleft()
        if len(self.recent) >= self.max_orders:
            return "rate"
        new_position = self.position.get(signal.symbol, 0) + signal.side * signal.qty
        if abs(new_position) > self.max_position:
            return "position"
        if self.gross(signal.symbol, new_position) > self.max_gross_pips:
            return "notional"
        return None

    def decide(self, signal: Any) -> None:
        """Check, then approve (publish the order) or reject; one audit line either way."""
        self.ref_pips[signal.symbol] = pips(signal.ref_price)
        reason = self.check(signal)
        if reason is None:
            order_id = self.next_order_id
            self.next_order_id += 1
            self.in_flight = order_id
            self.recent.append(signal.tick_seq)
            self.publish(
                self.schema.OrderRequest(
                    order_id=order_id,
                    symbol=signal.symbol,
                    side=signal.side,
                    qty=signal.qty,
                    limit_price=signal.limit_price,
                    tick_seq=signal.tick_seq,
                    tick_ts_ns=signal.tick_ts_ns,
                )
            )
            decision = f"APPROVE {order_id}"
        else:
            self.rejected[reason] += 1
            decision = f"REJECT {reason}"
        pos = self.position.get(signal.symbol, 0)
        self.audit.write(
            f"{signal.tick_seq} {signal.symbol} {signal.side:+d} {signal.qty} "
            f"{signal.limit_price:.5f} {decision} pos={pos} "
            f"gross={self.gross(signal.symbol, pos)}\n"
        )

    def work(self) -> None:
        """Decide queued signals until one order is in flight; finish after the end."""
        while self.in_flight is None and self.queue:
            signal, arrived = self.queue.popleft()
            self.wait_ns.append(time.monotonic_ns() - arrived)
            self.decide(signal)
        if self.in_flight is None and self.end is not None:
            self.finish(self.end)

    @handles("Signal")
    def on_signal(self, signal: Any) -> None:
        """Queue the signal; decide it now if no order is in flight."""
        now = time.monotonic_ns()
        self.signals += 1
        self.hop_ns.append(now - signal.tick_ts_ns)
        self.queue.append((signal, now))
        self.work()

    @handles("Fill")
    def on_fill(self, fill: Any) -> None:
        """Book the fill into the position; the order's last one frees the queue."""
        if fill.qty > 0:
            self.position[fill.symbol] = self.position.get(fill.symbol, 0) + fill.side * fill.qty
        if fill.last and fill.order_id == self.in_flight:
            self.in_flight = None
            self.work()

    @handles("EndOfSignals")
    def on_end(self, end: Any) -> None:
        """The strategy is done; finish once the queue is empty and no order is in flight."""
        self.end = end.count
        self.work()

    def finish(self, announced: int) -> None:
        """Pass the end on, close the audit log, report."""
        if announced != self.signals:
            self.log.error("EndOfSignals says %d signals, %d arrived", announced, self.signals)
        self.end = None
        approved = self.next_order_id - 1
        self.publish(self.schema.EndOfOrders(count=approved))
        rejected = " ".join(f"{r}={self.rejected[r]}" for r in self.REASONS)
        self.audit.write(f"END signals={self.signals} approved={approved} {rejected}\n")
        self.audit.close()
        emit(
            "RISK",
            {
                "signals": self.signals,
                "approved": approved,
                "rejected": self.rejected,
                "tick_to_risk_us": percentiles(self.hop_ns),
                "queue_wait_us": percentiles(self.wait_ns),
            },
        )
        if Finish.done("risk"):
            self.stop_node()


class Execution(Service):
    """The simulated venue: fills each order against the replayed feed; the run's checksum."""

    def __init__(
        self,
        seed: int = 7,
        symbols: list[str] | tuple[str, ...] = DEFAULT_SYMBOLS,
        latency_ticks: int = 3,
        lot_units: float = 100000.0,
        fee_rate: float = 0.00002,
    ) -> None:
        super().__init__()
        self.market = Market(seed, tuple(symbols))
        self.latency_ticks = latency_ticks
        self.lot_units = lot_units
        self.fee_rate = fee_rate
        self.checksum = Fnv64()
        self.fills_checksum = Fnv64()
        self.latencies: list[int] = []
        self.orders = 0
        self.fills = 0
        Finish.register("execution")

    @handles("OrderRequest")
    def on_order(self, order: Any) -> None:
        """Latency on arrival, then the venue's reports."""
        self.latencies.append(time.monotonic_ns() - order.tick_ts_ns)
        self.orders += 1
        self.checksum.update(order_record(order).encode())
        quote = self.market.quote_after(order.tick_seq + self.latency_ticks, order.symbol)
        for part in venue_fills(
            quote,
            order.side,
            order.qty,
            order.limit_price,
            lot_units=self.lot_units,
            fee_rate=self.fee_rate,
        ):
            self.fills += 1
            fill = self.schema.Fill(
                order_id=order.order_id,
                exec_id=self.fills,
                symbol=order.symbol,
                side=order.side,
                qty=part.qty,
                price=part.price,
                fee=part.fee,
                leaves=part.leaves,
                last=part.last,
                tick_seq=order.tick_seq,
            )
            record = fill_record(fill).encode()
            self.checksum.update(record)
            self.fills_checksum.update(record)
            self.publish(fill)

    @handles("EndOfOrders")
    def on_end(self, end: Any) -> None:
        """Risk is done: pass the end on and print the run's summary."""
        if end.count != self.orders:
            self.log.error("EndOfOrders says %d orders, %d arrived", end.count, self.orders)
        self.publish(self.schema.EndOfFills(count=self.fills))
        emit(
            "TRADING",
            {
                "checksum": self.checksum.hexdigest(),
                "fills_checksum": self.fills_checksum.hexdigest(),
                "orders": self.orders,
                "fills": self.fills,
                "latency_us": percentiles(self.latencies),
            },
        )
        if Finish.done("execution"):
            self.stop_node()


class OrderManager(Service):
    """Order states, positions and cash from the venue's reports; the execution audit log."""

    def __init__(self, lot_units: float = 100000.0, audit_dir: str = "audit") -> None:
        super().__init__()
        self.lot_units = lot_units
        self.audit = open_audit(audit_dir, "oms.log")
        self.filled: dict[int, int] = {}
        self.position: dict[str, int] = {}
        self.cash = 0.0
        self.fills = 0
        self.status = {"filled": 0, "partial": 0, "cancelled": 0}
        self.fills_checksum = Fnv64()
        Finish.register("oms")

    @handles("Fill")
    def on_fill(self, fill: Any) -> None:
        """Book one report; close the order on its last one."""
        self.fills += 1
        self.fills_checksum.update(fill_record(fill).encode())
        done = self.filled.get(fill.order_id, 0) + fill.qty
        self.filled[fill.order_id] = done
        if fill.qty > 0:
            self.position[fill.symbol] = self.position.get(fill.symbol, 0) + fill.side * fill.qty
            self.cash = (
                self.cash - float(fill.side * fill.qty) * self.lot_units * fill.price - fill.fee
            )
            self.audit.write(
                f"{fill.exec_id} order={fill.order_id} {fill.symbol} {fill.side:+d} "
                f"{fill.qty}@{fill.price:.5f} fee={fill.fee:.6f} leaves={fill.leaves}\n"
            )
        if fill.last:
            del self.filled[fill.order_id]
            if done == 0:
                status = "cancelled"
            elif fill.leaves == 0:
                status = "filled"
            else:
                status = "partial"
            self.status[status] += 1
            self.audit.write(f"order {fill.order_id} {status} {done}/{done + fill.leaves}\n")

    @handles("EndOfFills")
    def on_end(self, end: Any) -> None:
        """Execution is done: final positions into the audit log; report."""
        if end.count != self.fills:
            self.log.error("EndOfFills says %d fills, %d arrived", end.count, self.fills)
        if self.filled:
            self.log.error("orders without a last report: %s", sorted(self.filled))
        for symbol in sorted(self.position):
            self.audit.write(f"position {symbol} {self.position[symbol]}\n")
        self.audit.write(f"END fills={self.fills} cash={self.cash:.2f}\n")
        self.audit.close()
        emit(
            "OMS",
            {
                "fills": self.fills,
                "fills_checksum": self.fills_checksum.hexdigest(),
                "orders": dict(self.status),
                "positions": dict(sorted(self.position.items())),
                "cash": round(self.cash, 2),
                "open": len(self.filled),
            },
        )
        if Finish.done("oms"):
            self.stop_node()
