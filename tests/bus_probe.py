"""The Python probe services of the cross-language bus matrix (tests/test_bus_matrix.py).

The same two services exist in every language, under the same names and with
the same config and output, so the matrix can put any language on either
side of a link (Rust: bindings/rust/examples/bus_probe.rs; OCaml:
bindings/ocaml/bus/example/bus_probe.ml):

``send``, config ``{count, symbol, out}``
    publishes ``count`` MarketTicks at start, tick ``i`` being::

        symbol = symbol, seq = i, ts_ns = 1_700_000_000_000_000_000 + i,
        bid = 1.0 + i / 1024, ask = bid + 0.25, bid_size = i, ask_size = 4_294_967_295 - i

    then appends the line ``sent <count>`` to ``out`` and idles until the node stops.
``recv``, config ``{out, panic_at?}``
    consumes MarketTick: appends one line per tick to ``out``::

        tick <symbol> <seq> <ts_ns> <bid> <ask> <bid_size> <ask_size>

    (floats in any form that reads back to the same double: Python ``repr``,
    Rust ``{:?}``, OCaml ``%.17g``).  With ``panic_at = N`` the handler
    raises (panics) on the tick of seq N instead of writing it, once per
    instance: the runtime restarts the service and the stream goes on.

Lines are written whole (one write each) and flushed at once.
"""

from __future__ import annotations

import os
from typing import Any

from mycelium_shm.bus import Service, handles

TS_BASE = 1_700_000_000_000_000_000
U32_MAX = 4_294_967_295


def expected_tick(symbol: str, i: int) -> tuple[str, int, int, float, float, int, int]:
    """The fields of tick ``i`` of a ``send`` probe, in the order of a ``tick`` line."""
    bid = 1.0 + i / 1024
    return (symbol, i, TS_BASE + i, bid, bid + 0.25, i, U32_MAX - i)


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class Send(Service):
    """Publishes ``count`` deterministic MarketTicks, then says so in ``out``."""

    def __init__(self, count: int, symbol: str, out: str) -> None:
        super().__init__()
        self.count = count
        self.symbol = symbol
        self.out = out

    def on_start(self) -> None:
        tick = self.schema.MarketTick
        for i in range(self.count):
            symbol, seq, ts_ns, bid, ask, bid_size, ask_size = expected_tick(self.symbol, i)
            self.publish(
                tick(
                    symbol=symbol,
                    seq=seq,
                    ts_ns=ts_ns,
                    bid=bid,
                    ask=ask,
                    bid_size=bid_size,
                    ask_size=ask_size,
                )
            )
        _append(self.out, f"sent {self.count}\n")


class Recv(Service):
    """Writes a ``tick`` line to ``out`` for every MarketTick."""

    def __init__(self, out: str, panic_at: int | None = None) -> None:
        super().__init__()
        self.out = out
        self.panic_at = panic_at

    @handles("MarketTick")
    def on_tick(self, t: Any) -> None:
        if t.seq == self.panic_at:
            raise RuntimeError(f"recv: told to fail at seq {t.seq}")
        _append(
            self.out,
            f"tick {t.symbol} {t.seq} {t.ts_ns} {t.bid!r} {t.ask!r} {t.bid_size} {t.ask_size}\n",
        )
