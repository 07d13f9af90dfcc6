"""Write the message test vectors: valid.json, invalid.json, canonical.txt.

Run from anywhere: ``python tests/vectors/generate.py``.  The cases are the
lists below; the payloads come from the Python codec, and every invalid case
is built from a valid payload with exactly one defect.  tests/test_vectors.py
checks that the committed files equal a fresh run, so edit this script, never
the JSON.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from mycelium_shm.protocol import Schema  # noqa: E402
from mycelium_shm.protocol.jsonvalues import to_json  # noqa: E402

U64_MAX = 2**64 - 1
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
INF = float("inf")


def f64(bits: int) -> float:
    """The f64 with this bit pattern."""
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


def f32(bits: int) -> float:
    """The f32 with this bit pattern, widened to a Python float."""
    return float(struct.unpack("<f", struct.pack("<I", bits))[0])


NAN = f64(0x7FF8000000000000)
NAN_PAYLOAD = f64(0x7FF8000000000001)
NEG_NAN = f64(0xFFF8000000000000)
F32_NAN = f32(0x7FC00000)
F32_NAN_PAYLOAD = f32(0x7FC00001)
F32_MAX = f32(0x7F7FFFFF)
F32_MIN_SUB = f32(0x00000001)
F64_MAX = f64(0x7FEFFFFFFFFFFFFF)
F64_MIN_SUB = f64(0x0000000000000001)


def valid_cases(s: Schema) -> list[tuple[str, Any]]:
    """(case name, message) for valid.json."""
    tick = s.MarketTick("EURUSD", 1, 1_700_000_000_000_000_000, 1.0825, 1.0827, 1_000_000, 250_000)
    p0, p1 = s.Point(0.0, 0.0), s.Point(-1.5, 2.25)
    arr_empty = s.Arrays([], [], [], [], [], [], [], [], [], [], [])
    return [
        ("market_tick_basic", tick),
        ("market_tick_empty_symbol", s.MarketTick("", 0, 0, 0.0, 0.0, 0, 0)),
        ("market_tick_unicode_symbol", s.MarketTick("日経225", 7, -1, 38000.5, 38001.0, 3, 4)),
        (
            "market_tick_extremes",
            s.MarketTick("X" * 64, U64_MAX, I64_MIN, -INF, INF, 2**32 - 1, 2**32 - 1),
        ),
        ("market_tick_nan_prices", s.MarketTick("NAN", 2, I64_MAX, NAN, NEG_NAN, 0, 1)),
        ("signal_basic", s.Signal(7, "EURUSD", 1, 1, 0.75, [0.5, -0.25, 3.0])),
        ("signal_no_features", s.Signal(0, "", 0, 0, 0.0, [])),
        (
            "signal_flat_specials",
            s.Signal(65535, "BTC", U64_MAX, -1, F32_MAX, [F32_NAN, INF, -INF, -0.0]),
        ),
        (
            "order_request_buy_ioc",
            s.OrderRequest(1, "EURUSD", 1, 100, 1.0826, True, 1_700_000_000_000_000_001),
        ),
        (
            "order_request_sell_gtc",
            s.OrderRequest(U64_MAX, "USDJPY", -1, 2**32 - 1, 151.5, False, I64_MIN),
        ),
        ("fill_basic", s.Fill(1, b"XLON", 100, 1.0826, 0.02, 1_700_000_000_000_000_002)),
        ("fill_venue_nul_padded", s.Fill(2, b"IB\x00\x00", 1, 0.0, -0.0, 0)),
        ("fill_venue_high_bytes", s.Fill(3, b"\xff\xfe\x80\x7f", 0, F64_MAX, F64_MIN_SUB, -1)),
        ("stop_empty_reason", s.Stop(0, "")),
        ("stop_with_reason", s.Stop(12345, "end of session ✓")),
        ("scalars_zero", s.Scalars(False, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0)),
        (
            "scalars_max",
            s.Scalars(
                True,
                255,
                65535,
                2**32 - 1,
                U64_MAX,
                127,
                32767,
                2**31 - 1,
                I64_MAX,
                F32_MAX,
                F64_MAX,
            ),
        ),
        (
            "scalars_min",
            s.Scalars(False, 0, 0, 0, 0, -128, -32768, -(2**31), I64_MIN, -F32_MAX, -F64_MAX),
        ),
        ("scalars_one", s.Scalars(True, 1, 1, 1, 1, -1, -1, -1, -1, 1.0, 1.0)),
        ("scalars_infinities", s.Scalars(False, 0, 0, 0, 0, 0, 0, 0, 0, INF, -INF)),
        ("scalars_neg_infinities", s.Scalars(False, 0, 0, 0, 0, 0, 0, 0, 0, -INF, INF)),
        ("scalars_nan", s.Scalars(False, 0, 0, 0, 0, 0, 0, 0, 0, F32_NAN, NAN)),
        (
            "scalars_nan_payloads",
            s.Scalars(True, 0, 0, 0, 0, 0, 0, 0, 0, F32_NAN_PAYLOAD, NAN_PAYLOAD),
        ),
        ("scalars_negative_nan_and_zero", s.Scalars(False, 0, 0, 0, 0, 0, 0, 0, 0, -0.0, NEG_NAN)),
        ("scalars_subnormals", s.Scalars(False, 0, 0, 0, 0, 0, 0, 0, 0, F32_MIN_SUB, F64_MIN_SUB)),
        (
            "scalars_pattern",
            s.Scalars(
                True,
                0x12,
                0x1234,
                0x12345678,
                0x123456789ABCDEF0,
                -2,
                -300,
                -70000,
                -(2**40),
                0.1,
                0.1,
            ),
        ),
        ("text_empty", s.Text("")),
        ("text_ascii", s.Text("hello, world")),
        ("text_two_byte", s.Text("été")),
        ("text_three_byte", s.Text("€ 価格")),
        ("text_four_byte", s.Text("🍄🦀🐫")),
        ("text_nul_and_controls", s.Text("a\x00b\n\t\x7f")),
        ("text_max_code_point", s.Text("\U0010ffff")),
        ("text_long", s.Text("mycelium " * 40)),
        ("blob_empty", s.Blob(b"")),
        ("blob_zero", s.Blob(b"\x00")),
        ("blob_all_bytes", s.Blob(bytes(range(256)))),
        ("fixed_zero", s.Fixed(b"\x00", bytes(16))),
        ("fixed_ff", s.Fixed(b"\xff", b"\xff" * 16)),
        ("fixed_pattern", s.Fixed(b"k", bytes(range(16)))),
        ("arrays_empty", arr_empty),
        (
            "arrays_one_each",
            s.Arrays([True], [1], [2], [3], [4], [-1], [-2], [-3], [-4], [0.5], [1.5]),
        ),
        (
            "arrays_extremes",
            s.Arrays(
                [False, True, True, False],
                [0, 255],
                [0, 65535],
                [0, 2**32 - 1],
                [0, U64_MAX],
                [-128, 127],
                [-32768, 32767],
                [-(2**31), 2**31 - 1],
                [I64_MIN, I64_MAX],
                [F32_MAX, -F32_MAX, F32_MIN_SUB],
                [F64_MAX, -F64_MAX, F64_MIN_SUB],
            ),
        ),
        (
            "arrays_float_specials",
            s.Arrays(
                [],
                [],
                [],
                [],
                [],
                [],
                [],
                [],
                [],
                [F32_NAN, INF, -INF, -0.0],
                [NAN, NAN_PAYLOAD, NEG_NAN, INF, -INF, -0.0],
            ),
        ),
        (
            "arrays_many_bytes",
            s.Arrays([True] * 9, list(range(256)), [], [], [], [], [], [], [], [], []),
        ),
        ("point_zero", s.Point(0.0, 0.0)),
        ("point_nan", s.Point(NAN, -NAN)),
        ("segment_basic", s.Segment(p0, p1, "a-b")),
        ("segment_unicode_label", s.Segment(p1, p0, "→ ∞")),
        ("envelope_basic", s.Envelope(1, s.Segment(p0, p1, "seg"), tick, [1, 2, 65535])),
        (
            "envelope_empty_parts",
            s.Envelope(0, s.Segment(p0, p0, ""), s.MarketTick("", 0, 0, 0.0, 0.0, 0, 0), []),
        ),
        (
            "envelope_max",
            s.Envelope(
                U64_MAX, s.Segment(s.Point(INF, -INF), s.Point(NAN, 0.0), "max"), tick, [65535] * 3
            ),
        ),
        ("empty", s.Empty()),
        ("max_id_true", s.MaxId(True)),
        ("max_id_false", s.MaxId(False)),
    ]


def _u32(n: int) -> bytes:
    return struct.pack("<I", n)


def invalid_cases(s: Schema) -> list[tuple[str, int, bytes, str]]:
    """(case name, type id, payload, error kind) for invalid.json."""

    def enc(msg: Any) -> bytes:
        return s.encode(msg)[1]

    tick = enc(s.MarketTick("EURUSD", 1, 2, 1.0, 2.0, 3, 4))
    scalars = enc(s.Scalars(True, 1, 1, 1, 1, 1, 1, 1, 1, 1.0, 1.0))
    arrays_empty = enc(s.Arrays([], [], [], [], [], [], [], [], [], [], []))
    arrays_prefix = arrays_empty[:-4]  # every array empty but the last (f64s)
    order = enc(s.OrderRequest(1, "X", 1, 1, 1.0, True, 0))
    ioc_at = 4 + 1 + 8 + 1 + 4 + 8  # symbol prefix and text, order_id, side, qty, limit_price
    assert order[ioc_at] == 1
    return [
        ("unknown_type_zero", 0, b"", "unknown_type"),
        ("unknown_type_zero_with_payload", 0, tick, "unknown_type"),
        ("unknown_type_6", 6, b"\x00", "unknown_type"),
        ("unknown_type_65534", 65534, b"", "unknown_type"),
        ("market_tick_empty", 1, b"", "short"),
        ("market_tick_prefix_cut", 1, b"\x06\x00\x00", "short"),
        ("market_tick_fixed_part_cut", 1, tick[:-1], "short"),
        ("market_tick_trailing", 1, tick + b"\x00", "trailing"),
        ("scalars_one_short", 10, scalars[:-1], "short"),
        ("scalars_one_long", 10, scalars + b"\x00", "trailing"),
        ("scalars_bool_2", 10, b"\x02" + scalars[1:], "bool"),
        ("scalars_bool_ff", 10, b"\xff" + scalars[1:], "bool"),
        ("point_short", 15, bytes(15), "short"),
        ("point_trailing", 15, bytes(17), "trailing"),
        ("empty_trailing", 18, b"\x00", "trailing"),
        ("max_id_empty", 65535, b"", "short"),
        ("max_id_bool_2", 65535, b"\x02", "bool"),
        ("fixed_short", 13, bytes(16), "short"),
        ("fixed_trailing", 13, bytes(18), "trailing"),
        ("order_request_ioc_2", 3, order[:ioc_at] + b"\x02" + order[ioc_at + 1 :], "bool"),
        ("text_length_past_end", 11, _u32(5) + b"abcd", "length"),
        ("text_length_max_u32", 11, _u32(0xFFFFFFFF) + b"abc", "length"),
        ("text_trailing", 11, _u32(1) + b"ab", "trailing"),
        ("text_invalid_byte", 11, _u32(1) + b"\xff", "utf8"),
        ("text_overlong_nul", 11, _u32(2) + b"\xc0\x80", "utf8"),
        ("text_surrogate", 11, _u32(3) + b"\xed\xa0\x80", "utf8"),
        ("text_truncated_sequence", 11, _u32(2) + b"\xe2\x82", "utf8"),
        ("text_above_max_code_point", 11, _u32(4) + b"\xf4\x90\x80\x80", "utf8"),
        ("text_lone_continuation", 11, _u32(3) + b"a\x80b", "utf8"),
        ("stop_reason_invalid_utf8", 5, struct.pack("<Q", 1) + _u32(1) + b"\xfe", "utf8"),
        ("stop_reason_past_end", 5, struct.pack("<Q", 1) + _u32(2) + b"x", "length"),
        ("blob_length_past_end", 12, _u32(1), "length"),
        ("blob_prefix_cut", 12, b"\x00\x00", "short"),
        ("arrays_empty_payload", 14, b"", "short"),
        ("arrays_f64_past_end", 14, arrays_prefix + _u32(2) + bytes(8), "length"),
        ("arrays_f64_count_wraps_u32", 14, arrays_prefix + _u32(0x20000000), "length"),
        ("arrays_f64_partial_element", 14, arrays_prefix + _u32(1) + bytes(7), "length"),
        ("arrays_f64_trailing", 14, arrays_prefix + _u32(1) + bytes(9), "trailing"),
        ("arrays_bool_element_2", 14, _u32(2) + b"\x01\x02" + arrays_empty[4:], "bool"),
        (
            "signal_features_past_end",
            2,
            enc(s.Signal(1, "A", 1, 1, 1.0, []))[:-4] + _u32(1),
            "length",
        ),
        (
            "envelope_tail_past_end",
            17,
            enc(
                s.Envelope(
                    0,
                    s.Segment(s.Point(0.0, 0.0), s.Point(0.0, 0.0), ""),
                    s.MarketTick("", 0, 0, 0.0, 0.0, 0, 0),
                    [],
                )
            )[:-4]
            + _u32(1)
            + b"\x00",
            "length",
        ),
    ]


def build() -> dict[str, str]:
    """The generated files, by name, as text."""
    schema = Schema.load(HERE / "schema.toml")
    valid = []
    for name, msg in valid_cases(schema):
        type_id, payload = schema.encode(msg)
        assert schema.encode(schema.decode(type_id, payload))[1] == payload, name
        valid.append(
            {
                "name": name,
                "message": type(msg).__name__,
                "type_id": type_id,
                "fields": to_json(schema, msg),
                "hex": payload.hex(),
            }
        )
    invalid = []
    for name, type_id, payload, kind in invalid_cases(schema):
        try:
            message: str | None = schema.message_type(type_id).__name__
        except KeyError:
            message = None
        invalid.append(
            {
                "name": name,
                "message": message,
                "type_id": type_id,
                "hex": payload.hex(),
                "error": kind,
            }
        )
    names = [c["name"] for c in valid] + [c["name"] for c in invalid]
    assert len(names) == len(set(names)), "case names must be unique"

    def dump(obj: Any) -> str:
        return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"

    return {
        "valid.json": dump({"schema": "schema.toml", "digest": schema.digest_hex, "cases": valid}),
        "invalid.json": dump({"schema": "schema.toml", "cases": invalid}),
        "canonical.txt": schema.model.canonical_text(),
    }


def main() -> None:
    """Write the files next to this script."""
    for name, text in build().items():
        (HERE / name).write_bytes(text.encode("utf-8"))  # "\n" line ends on every OS
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
