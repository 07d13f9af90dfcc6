"""Smoke test of bench/bench_codec.py: it runs, agrees on results and writes JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_codec.py"


def test_bench_smoke(tmp_path: Path) -> None:
    """A minimal run reports every contender and writes the JSON file."""
    spec = importlib.util.spec_from_file_location("bench_codec", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "bench.json"
    assert mod.main(["--repeat", "1", "--target", "0.002", "--json", str(out)]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {"mycelium", "struct", "pickle"} <= set(data["results"])
    assert data["results"]["struct"]["roundtrip_vs_struct"] == 1.0
    assert data["payload_bytes"] == 50
    arr = data["array"]  # NumPy is a test dependency
    assert arr["elements"] == 150_528 and arr["payload_bytes"] == 4 + 4 * 150_528
    assert arr["roundtrip_vs_memcpy"] > 0
