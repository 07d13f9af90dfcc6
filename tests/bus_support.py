"""Helpers the MessageBus tests share (their fixtures, ``schema``, ``buses``
and ``channel``, are in conftest.py): a tick, and waiting on a condition
with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mycelium_shm.protocol import Schema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "trading.toml"


def tick(schema: Schema, seq: int) -> Any:
    return schema.MarketTick(
        symbol="EURUSD", seq=seq, ts_ns=seq, bid=1.0, ask=1.5, bid_size=1, ask_size=2
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Whether predicate() became true within timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True
