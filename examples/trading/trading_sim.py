"""The deterministic pieces of the trading example that several languages share.

Each function here has a twin in Rust (``rust/src/sim.rs``) and the record
formats also one in OCaml (``ocaml/audit.ml``); the reference services
(``reference.py``) and the test compare them bit for bit:

- :class:`Market`, the seeded feed: integer prices in pips (1e-5), one
  splitmix64 draw per tick.  Market data publishes it; the simulated venue
  replays the same sequence to know the quote an order meets.
- :func:`venue_fills`, the venue's rule for an IOC limit order.
- :func:`order_record`, :func:`fill_record` and :class:`Fnv64`: the checksum
  of the run, FNV-1a 64 over one text record per order and per fill, with
  every float written as its IEEE-754 bit pattern (no formatting differences
  between languages).
- :class:`Finish`: a node stops once every service it hosts has finished.
"""

from __future__ import annotations

import math
import struct
import threading
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

__all__ = [
    "DEFAULT_SYMBOLS",
    "PIP",
    "Finish",
    "Fnv64",
    "Market",
    "Quote",
    "VenueFill",
    "f64_bits",
    "fill_record",
    "order_record",
    "percentiles",
    "pips",
    "price",
    "venue_fills",
]

MASK64 = (1 << 64) - 1
#: Prices are integers of this many units of 1.0 (a pip of 1e-5).
PIP = 100_000
DEFAULT_SYMBOLS = ("EURUSD", "GBPUSD", "AUDUSD")
#: Starting mid, in pips, of the i-th symbol (cycled).
START_MIDS = (108_420, 126_500, 65_800)
#: No mid falls below this many pips.
MIN_MID = 1_000


def price(p: int) -> float:
    """A price in pips as the f64 every language computes: ``p / 100000.0``."""
    return p / 100000.0


def pips(x: float) -> int:
    """The nearest whole pip of a price: ``floor(x * 100000 + 0.5)``."""
    return math.floor(x * 100000.0 + 0.5)


def f64_bits(x: float) -> str:
    """The 16 hex digits of a float's IEEE-754 bit pattern."""
    return f"{struct.unpack('<Q', struct.pack('<d', x))[0]:016x}"


class SplitMix64:
    """splitmix64 (Steele, Lea, Flood 2014): the feed's only source of randomness."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next(self) -> int:
        """The next 64-bit output."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


@dataclass(frozen=True)
class Quote:
    """One tick of the feed, prices in pips."""

    seq: int
    symbol: str
    bid: int
    ask: int
    bid_size: int
    ask_size: int


class Market:
    """The seeded feed: symbols in turn, each a random walk with momentum and order-flow drift.

    Per tick (symbol ``i = seq % n``, one draw ``u``)::

        noise = u % 7 - 3                                  # -3 .. 3 pips
        ret   = clamp((last_ret >> 1) + noise + imb, -10, 10)   # >> floors
        mid   = max(mid + ret, MIN_MID)
        half  = 1 + (u >> 8) % 3                           # half spread, pips
        bid_size = 1 + (u >> 16) % 20;  ask_size = 1 + (u >> 24) % 20
        imb   = sign(bid_size - ask_size)                  # drives the next ret

    so the next move of a symbol follows half its last move and the sign of
    its book imbalance: something an online model can learn.
    """

    def __init__(self, seed: int, symbols: tuple[str, ...] | list[str] = DEFAULT_SYMBOLS) -> None:
        if not symbols:
            raise ValueError("symbols: at least one")
        self.symbols = list(symbols)
        self.rng = SplitMix64(seed)
        n = len(self.symbols)
        self.mid = [START_MIDS[i % len(START_MIDS)] for i in range(n)]
        self.last_ret = [0] * n
        self.imb = [0] * n
        self.quotes: list[Quote | None] = [None] * n
        self.seq = 0

    def next(self) -> Quote:
        """Generate the next tick."""
        i = self.seq % len(self.symbols)
        u = self.rng.next()
        noise = u % 7 - 3
        ret = max(-10, min(10, (self.last_ret[i] >> 1) + noise + self.imb[i]))
        self.mid[i] = max(self.mid[i] + ret, MIN_MID)
        half = 1 + (u >> 8) % 3
        bid_size = 1 + (u >> 16) % 20
        ask_size = 1 + (u >> 24) % 20
        self.imb[i] = (bid_size > ask_size) - (bid_size < ask_size)
        self.last_ret[i] = ret
        quote = Quote(
            self.seq, self.symbols[i], self.mid[i] - half, self.mid[i] + half, bid_size, ask_size
        )
        self.quotes[i] = quote
        self.seq += 1
        return quote

    def quote_after(self, seq: int, symbol: str) -> Quote:
        """The latest quote of ``symbol`` once the feed has produced tick ``seq``.

        Only moves forward (the venue sees orders in order); a ``seq``
        already passed gives the current quote.
        """
        while self.seq <= seq:
            self.next()
        i = self.symbols.index(symbol)
        quote = self.quotes[i]
        if quote is None:
            raise ValueError(f"no tick of {symbol} yet at seq {seq}")
        return quote


@dataclass(frozen=True)
class VenueFill:
    """One report of the venue for an order."""

    qty: int
    price: float
    fee: float
    leaves: int
    last: bool


def venue_fills(
    quote: Quote, side: int, qty: int, limit_price: float, *, lot_units: float, fee_rate: float
) -> list[VenueFill]:
    """The venue's reports for an IOC limit order meeting ``quote``.

    Two price levels: the touch (its size) and one pip through it (twice its
    size).  A buy takes each level priced at or below its limit, a sell each
    at or above, until the quantity is done; the rest is cancelled.  Nothing
    fills: one report of qty 0.  ``fee = qty * lot_units * price * fee_rate``,
    multiplied in that order.
    """
    limit = pips(limit_price)
    if side > 0:
        levels = [(quote.ask, quote.ask_size), (quote.ask + 1, 2 * quote.ask_size)]
        ok: Callable[[int], bool] = lambda p: p <= limit  # noqa: E731
    else:
        levels = [(quote.bid, quote.bid_size), (quote.bid - 1, 2 * quote.bid_size)]
        ok = lambda p: p >= limit  # noqa: E731
    remaining = qty
    parts: list[tuple[int, float]] = []
    for level_price, size in levels:
        if remaining == 0 or not ok(level_price):
            break
        take = min(remaining, size)
        remaining -= take
        parts.append((take, price(level_price)))
    if not parts:
        return [VenueFill(0, 0.0, 0.0, qty, True)]
    out = []
    left = qty
    for n, (take, px) in enumerate(parts):
        left -= take
        fee = float(take) * lot_units * px * fee_rate
        out.append(VenueFill(take, px, fee, left, n == len(parts) - 1))
    return out


def order_record(order: Any) -> str:
    """The checksum record of an OrderRequest (every field but the timestamp)."""
    return (
        f"O,{order.order_id},{order.symbol},{order.side},{order.qty},"
        f"{f64_bits(order.limit_price)},{order.tick_seq}\n"
    )


def fill_record(fill: Any) -> str:
    """The checksum record of a Fill."""
    return (
        f"F,{fill.order_id},{fill.exec_id},{fill.symbol},{fill.side},{fill.qty},"
        f"{f64_bits(fill.price)},{f64_bits(fill.fee)},{fill.leaves},{int(fill.last)},"
        f"{fill.tick_seq}\n"
    )


def percentiles(samples: list[int]) -> dict[str, float]:
    """p50, p99, p99.9 and max of latencies in ns, as microseconds (nearest rank)."""
    if not samples:
        return {}
    ordered = sorted(samples)
    n = len(ordered)

    def rank(q: float) -> float:
        index = max(0, min(n - 1, math.ceil(q * n) - 1))
        return round(ordered[index] / 1000.0, 1)

    return {"p50": rank(0.5), "p99": rank(0.99), "p99.9": rank(0.999), "max": rank(1.0)}


class Fnv64:
    """FNV-1a, 64 bits: a checksum every language computes in a few lines."""

    OFFSET = 0xCBF29CE484222325
    PRIME = 0x100000001B3

    def __init__(self) -> None:
        self.value = self.OFFSET

    def update(self, data: bytes) -> None:
        """Hash more bytes."""
        h = self.value
        for b in data:
            h = ((h ^ b) * self.PRIME) & MASK64
        self.value = h

    def hexdigest(self) -> str:
        """16 lowercase hex digits."""
        return f"{self.value:016x}"


class Finish:
    """Stops a node once every service of this process that registered has finished.

    A service registers when it is built (a runtime builds every service of
    its node before starting any) and calls :meth:`done` when its stream
    ended; the last one to finish stops the node, after everything published
    (the runtime flushes links on the way down).  Rust and OCaml keep the
    same rule in their own processes.
    """

    _lock = threading.Lock()
    _registered: ClassVar[set[str]] = set()
    _done: ClassVar[set[str]] = set()

    @classmethod
    def register(cls, name: str) -> None:
        """A service of this process exists (idempotent: restarts register again)."""
        with cls._lock:
            cls._registered.add(name)

    @classmethod
    def done(cls, name: str) -> bool:
        """``name`` finished; True if it was the last of this process."""
        with cls._lock:
            cls._done.add(name)
            return cls._done >= cls._registered
