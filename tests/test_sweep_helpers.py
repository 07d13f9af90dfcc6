"""Services and helpers for tests/test_sweep.py (imported by sweep workers too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mycelium_shm.bus import Service, handles

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "sweep"


class Boom(Service):
    """Raises in its Bar handler at bar ``at`` when ``fail`` is true."""

    def __init__(self, fail: bool = False, at: int = 100) -> None:
        super().__init__()
        self.fail = fail
        self.at = at

    @handles("Bar")
    def on_bar(self, bar: Any) -> None:
        if self.fail and bar.seq == self.at:
            raise RuntimeError(f"boom at bar {bar.seq}")
