"""Benchmark: encode+decode of a MarketTick, mycelium codec vs the alternatives.

    python bench/bench_codec.py [--repeat 7] [--target 0.05] [--json PATH]

Every contender starts from the same message object and ends with an equal
one (checked before timing):

- ``mycelium``: ``schema.encode`` then ``schema.decode`` (type-id lookup,
  range checks, length checks, class construction included);
- ``struct``: hand-written ``struct.Struct`` pack/unpack of the same fields
  and wire format (u32-prefixed UTF-8 symbol, then ``<QqddII``), no checks;
- ``pickle``: ``pickle.dumps`` / ``loads`` (protocol 5) of the field tuple;
- ``msgpack``: ``msgpack.packb`` / ``unpackb`` of the field tuple, if installed.

Then, if NumPy is installed, a ``[f32]`` field of 150,528 floats (a 224x224x3
image) from a ``float32`` ndarray: ``decode(*encode(msg))`` (arrays="numpy":
one copy into the payload, a zero-copy view out of it) against a raw copy of
the same 602,112 bytes (``bytes(memoryview(arr))``), reported as a ratio.

Each figure is the median over ``--repeat`` runs of a timeit loop sized to
last about ``--target`` seconds (the JSON also has the minimum); the runs of
all contenders are interleaved, so background load hits them alike.  The
whole run takes about 12 * repeat * target seconds (4 s by default).
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import struct
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mycelium_shm.protocol import Schema  # noqa: E402

try:
    import msgpack  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - optional
    msgpack = None


def contenders(schema: Schema) -> dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]]:
    """name -> (encode, decode); decode(encode(tick)) == tick."""
    tick_cls = schema.MarketTick
    head = struct.Struct("<I")
    body = struct.Struct("<QqddII")
    head_pack, body_pack = head.pack, body.pack
    head_unpack, body_unpack = head.unpack_from, body.unpack_from

    def struct_encode(t: Any) -> bytes:
        sym: bytes = t.symbol.encode("utf-8")
        return (
            head_pack(len(sym))
            + sym
            + body_pack(t.seq, t.ts_ns, t.bid, t.ask, t.bid_size, t.ask_size)
        )

    def struct_decode(p: bytes) -> Any:
        (n,) = head_unpack(p, 0)
        return tick_cls(p[4 : 4 + n].decode(), *body_unpack(p, 4 + n))

    def fields(t: Any) -> tuple[Any, ...]:
        return (t.symbol, t.seq, t.ts_ns, t.bid, t.ask, t.bid_size, t.ask_size)

    encode, decode = schema.encode, schema.decode

    out: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        # encode returns (type_id, payload); decode takes them as two arguments.
        "mycelium": (encode, lambda frame: decode(*frame)),
        "struct": (struct_encode, struct_decode),
        "pickle": (
            lambda t: pickle.dumps(fields(t), 5),
            lambda p: tick_cls(*pickle.loads(p)),
        ),
    }
    if msgpack is not None:
        out["msgpack"] = (
            lambda t: msgpack.packb(fields(t)),
            lambda p: tick_cls(*msgpack.unpackb(p)),
        )
    return out


def measure(
    calls: dict[tuple[str, str], Callable[[], Any]], repeat: int, target: float
) -> dict[tuple[str, str], list[float]]:
    """Seconds per call of each function, ``repeat`` samples each.

    The repeats are interleaved (every function once per round), so a burst
    of load from other processes hits every contender alike.
    """
    timers = {k: timeit.Timer(fn) for k, fn in calls.items()}
    numbers = {}
    for k, timer in timers.items():
        per_call = max(timer.timeit(number=200) / 200, 1e-9)
        numbers[k] = max(1, int(target / per_call))
    samples: dict[tuple[str, str], list[float]] = {k: [] for k in calls}
    for _ in range(repeat):
        for k, timer in timers.items():
            samples[k].append(timer.timeit(number=numbers[k]) / numbers[k])
    return samples


Call = Callable[[], Any]


def mycelium_calls(schema: Schema, tick: Any) -> tuple[Call, Call, Call]:
    """Zero-argument encode, decode and round-trip calls through the Schema API."""
    encode, decode = schema.encode, schema.decode
    tid, payload = encode(tick)
    return (
        lambda: encode(tick),
        lambda: decode(tid, payload),
        lambda: decode(*encode(tick)),
    )


def generic_calls(
    enc: Callable[[Any], Any], dec: Callable[[Any], Any], tick: Any
) -> tuple[Call, Call, Call]:
    """Zero-argument encode, decode and round-trip calls of one contender."""
    wire = enc(tick)
    return (lambda: enc(tick), lambda: dec(wire), lambda: dec(enc(tick)))


def run(repeat: int, target: float) -> dict[str, Any]:
    """All measurements, in ns per operation."""
    schema = Schema.load(ROOT / "schemas" / "trading.toml")
    tick = schema.MarketTick(
        "EURUSD", 123456789, 1_700_000_000_000_000_000, 1.0825, 1.0827, 1_000_000, 250_000
    )
    calls: dict[tuple[str, str], Callable[[], Any]] = {}
    names = []
    for name, (enc, dec) in contenders(schema).items():
        wire = enc(tick)
        assert dec(wire) == tick, name
        if name == "mycelium":
            # No wrapper layers: the calls a channel makes.
            fns = mycelium_calls(schema, tick)
        else:
            fns = generic_calls(enc, dec, tick)
        names.append(name)
        for op, fn in zip(("encode", "decode", "roundtrip"), fns):
            calls[(name, op)] = fn
    samples = measure(calls, repeat, target)
    results: dict[str, dict[str, float]] = {}
    for name in names:
        r = results[name] = {}
        for op in ("encode", "decode", "roundtrip"):
            r[f"{op}_ns"] = statistics.median(samples[(name, op)]) * 1e9
            r[f"{op}_min_ns"] = min(samples[(name, op)]) * 1e9
    base = results["struct"]["roundtrip_ns"]
    for r in results.values():
        r["roundtrip_vs_struct"] = r["roundtrip_ns"] / base
    return {
        "python": sys.version.split()[0],
        "message": "MarketTick",
        "payload_bytes": len(schema.encode(tick)[1]),
        "repeat": repeat,
        "results": results,
    }


ARRAY_LEN = 150_528  # 224 * 224 * 3
ARRAY_SCHEMA = (
    '[[message]]\nname = "Tensor"\nid = 1\nfields = [{ name = "data", type = "[f32]" }]\n'
)


def run_array(repeat: int, target: float) -> dict[str, Any] | None:
    """The [f32] round trip vs a raw copy, in ns; None without NumPy."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - optional
        return None
    schema = Schema.from_toml_str(ARRAY_SCHEMA, arrays="numpy")
    arr = np.random.default_rng(0).standard_normal(ARRAY_LEN).astype(np.float32)
    msg = schema.Tensor(arr)
    encode, decode = schema.encode, schema.decode
    tid, payload = encode(msg)
    out = decode(tid, payload)
    assert out.data.tobytes() == arr.tobytes() and out == msg
    view = memoryview(arr)
    calls: dict[tuple[str, str], Callable[[], Any]] = {
        ("array", "encode"): lambda: encode(msg),
        ("array", "decode"): lambda: decode(tid, payload),
        ("array", "roundtrip"): lambda: decode(*encode(msg)),
        ("memcpy", "roundtrip"): lambda: bytes(view),
    }
    samples = measure(calls, repeat, target)
    med = {k: statistics.median(v) * 1e9 for k, v in samples.items()}
    return {
        "elements": ARRAY_LEN,
        "payload_bytes": len(payload),
        "encode_ns": med[("array", "encode")],
        "decode_ns": med[("array", "decode")],
        "roundtrip_ns": med[("array", "roundtrip")],
        "memcpy_ns": med[("memcpy", "roundtrip")],
        "roundtrip_vs_memcpy": med[("array", "roundtrip")] / med[("memcpy", "roundtrip")],
    }


def main(argv: list[str] | None = None) -> int:
    """Run, print a table, optionally write JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=7, help="timeit repeats (median taken)")
    p.add_argument("--target", type=float, default=0.05, help="seconds per repeat")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    data = run(args.repeat, args.target)
    print(
        f"MarketTick ({data['payload_bytes']} bytes), Python {data['python']}, "
        f"median of {args.repeat}"
    )
    print(f"{'codec':<10} {'encode ns':>10} {'decode ns':>10} {'enc+dec ns':>11} {'vs struct':>10}")
    for name, r in data["results"].items():
        print(
            f"{name:<10} {r['encode_ns']:>10.0f} {r['decode_ns']:>10.0f} "
            f"{r['roundtrip_ns']:>11.0f} {r['roundtrip_vs_struct']:>9.2f}x"
        )
    arr = run_array(args.repeat, args.target)
    if arr is not None:
        data["array"] = arr
        print(
            f"[f32] x {arr['elements']} ({arr['payload_bytes']} bytes, NumPy): "
            f"encode {arr['encode_ns'] / 1e3:.1f} us, decode {arr['decode_ns'] / 1e3:.2f} us, "
            f"enc+dec {arr['roundtrip_ns'] / 1e3:.1f} us vs memcpy {arr['memcpy_ns'] / 1e3:.1f} us"
            f" = {arr['roundtrip_vs_memcpy']:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
