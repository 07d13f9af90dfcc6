"""Tests of the generated encoders and decoders: round trips and encode checks."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mycelium_shm.protocol import FieldType, Schema
from mycelium_shm.protocol.jsonvalues import to_json
from mycelium_shm.protocol.types import SCALARS, Scalar

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Schema.load(ROOT / "tests" / "vectors" / "schema.toml")
TRADING = Schema.load(ROOT / "schemas" / "trading.toml")


def scalar_values(s: Scalar) -> st.SearchStrategy[Any]:
    """Every valid value of a scalar type, NaN and infinities included."""
    if s.kind == "bool":
        return st.booleans()
    if s.kind == "int":
        return st.integers(s.min, s.max)
    return st.floats(width=32 if s.size == 4 else 64)


def values(schema: Schema, t: FieldType) -> st.SearchStrategy[Any]:
    """Every valid value of a field type."""
    if t.kind == "scalar":
        assert t.scalar is not None
        return scalar_values(t.scalar)
    if t.kind == "array":
        assert t.scalar is not None
        return st.lists(scalar_values(t.scalar), max_size=20)
    if t.kind == "str":
        return st.text(max_size=40)
    if t.kind == "bytes":
        return st.binary(max_size=40)
    if t.kind == "fixed_bytes":
        assert t.length is not None
        return st.binary(min_size=t.length, max_size=t.length)
    assert t.message is not None
    return messages(schema, t.message)


def messages(schema: Schema, name: str) -> st.SearchStrategy[Any]:
    """Every valid message of type ``name``."""
    m = schema.message_def(name)
    cls = schema.message_type(name)
    return st.tuples(*(values(schema, f.type) for f in m.fields)).map(lambda v: cls(*v))


def check_round_trip(schema: Schema, msg: Any) -> None:
    """decode(encode(msg)) holds the same bits, from bytes, bytearray and memoryview."""
    type_id, payload = schema.encode(msg)
    assert type_id == schema.type_id_of(type(msg))
    fixed = schema.message_def(type(msg)).fixed_size
    if fixed is not None:
        assert len(payload) == fixed
    for buf in (payload, bytearray(payload), memoryview(payload)):
        out = schema.decode(type_id, buf)
        assert type(out) is type(msg)
        assert to_json(schema, out) == to_json(schema, msg)  # floats compared by bits
        assert schema.encode(out) == (type_id, payload)


@pytest.mark.parametrize("name", [m.name for m in SCHEMA.messages])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_every_message(name: str, data: st.DataObject) -> None:
    """Every message of the vector schema (one per field type) round-trips."""
    check_round_trip(SCHEMA, data.draw(messages(SCHEMA, name)))


@pytest.mark.parametrize("scalar", list(SCALARS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trip_each_scalar_and_array(scalar: str, data: st.DataObject) -> None:
    """A message of one scalar field and one array field round-trips for every scalar type."""
    s = Schema.from_toml_str(
        f'[[message]]\nname = "M"\nid = 7\nfields = [{{ name = "v", type = "{scalar}" }},'
        f' {{ name = "a", type = "[{scalar}]" }}]\n'
    )
    check_round_trip(s, data.draw(messages(s, "M")))


def test_equal_without_nan() -> None:
    """A decoded message equals the original when no field is NaN."""
    t = TRADING.MarketTick("EURUSD", 1, -2, 1.5, float("inf"), 3, 4)
    assert TRADING.decode(*TRADING.encode(t)) == t


def test_known_bytes() -> None:
    """The payload layout is the documented one (docs/FORMAT.md (Part 2) example)."""
    t = TRADING.MarketTick("AB", 1, -1, 0.5, 2.0, 7, 9)
    expected = struct.pack("<I", 2) + b"AB" + struct.pack("<QqddII", 1, -1, 0.5, 2.0, 7, 9)
    assert TRADING.encode(t) == (1, expected)


def test_nested_inline() -> None:
    """Nested messages are inlined: a Segment is two Points then its label."""
    seg = SCHEMA.Segment(SCHEMA.Point(1.0, 2.0), SCHEMA.Point(3.0, 4.0), "ab")
    payload = struct.pack("<4dI", 1.0, 2.0, 3.0, 4.0, 2) + b"ab"
    assert SCHEMA.encode(seg) == (16, payload)


def test_accepts_bytes_like_and_sequences() -> None:
    """bytes fields take bytearray/memoryview; arrays take tuples; decode gives bytes,
    and lists when asked (arrays="list"; NumPy arrays by default, test_codec_numpy)."""
    f = TRADING.Fill(1, bytearray(b"XLON"), 2, 1.0, 0.0, 3)
    out = TRADING.decode(*TRADING.encode(f))
    assert out.venue == b"XLON" and type(out.venue) is bytes
    b = SCHEMA.Blob(memoryview(b"xyz"))
    assert SCHEMA.decode(*SCHEMA.encode(b)).data == b"xyz"
    lists = TRADING.with_arrays("list")
    sig = lists.Signal(1, "S", 2, -1, 0.5, (1.0, 2.0))
    assert lists.decode(*lists.encode(sig)).features == [1.0, 2.0]


def test_decoded_values_do_not_alias_the_buffer() -> None:
    """Decoded bytes and strings survive the payload buffer being overwritten."""
    buf = bytearray(SCHEMA.encode(SCHEMA.Blob(b"abc"))[1])
    out = SCHEMA.decode(12, memoryview(buf))
    buf[4:7] = b"zzz"
    assert out.data == b"abc"


def test_large_array() -> None:
    """A 100 000-element f32 array round-trips."""
    sig = TRADING.Signal(1, "S", 2, 0, 0.0, [float(i) for i in range(100_000)])
    type_id, payload = TRADING.encode(sig)
    assert len(payload) == 2 + 4 + 1 + 8 + 1 + 4 + 4 + 4 * 100_000
    assert TRADING.decode(type_id, payload).features[-1] == 99_999.0


def test_codec_source_is_readable() -> None:
    """The generated source is available and names each message's functions."""
    src = SCHEMA.codec_source()
    assert "def encode_MarketTick(m):" in src and "def decode_Envelope(buf):" in src


# -- encode checks -------------------------------------------------------------


def scalars(**kw: Any) -> Any:
    """A valid Scalars message with some fields replaced."""
    base: dict[str, Any] = {
        "b": True,
        "u8": 0,
        "u16": 0,
        "u32": 0,
        "u64": 0,
        "i8": 0,
        "i16": 0,
        "i32": 0,
        "i64": 0,
        "f32": 0.0,
        "f64": 0.0,
    }
    base.update(kw)
    return SCHEMA.Scalars(**base)


@pytest.mark.parametrize("name", [n for n, s in SCALARS.items() if s.kind == "int"])
def test_int_range_checked(name: str) -> None:
    """Ints one past either end of their range are a ValueError naming the field."""
    s = SCALARS[name]
    assert SCHEMA.encode(scalars(**{name: s.min}))
    assert SCHEMA.encode(scalars(**{name: s.max}))
    for bad in (s.min - 1, s.max + 1):
        with pytest.raises(ValueError, match=f"Scalars.{name}: {bad} is out of range for {name}"):
            SCHEMA.encode(scalars(**{name: bad}))


@pytest.mark.parametrize(
    ("field", "value", "error", "needle"),
    [
        ("b", 1, TypeError, "Scalars.b: expected bool, got int"),
        ("b", None, TypeError, "Scalars.b: expected bool"),
        ("u32", 1.0, TypeError, "Scalars.u32: expected int, got float"),
        ("u32", "1", TypeError, "Scalars.u32: expected int, got str"),
        ("f64", "1.0", TypeError, "Scalars.f64: expected float, got str"),
        ("f64", None, TypeError, "Scalars.f64: expected float"),
        ("f32", 1e39, ValueError, r"Scalars.f32: 1e\+39 is out of range for f32"),
        ("f32", -1e300, ValueError, "out of range for f32"),
    ],
)
def test_scalar_type_checks(field: str, value: Any, error: type[Exception], needle: str) -> None:
    """Wrong types and unrepresentable floats raise with the field's path."""
    with pytest.raises(error, match=needle):
        SCHEMA.encode(scalars(**{field: value}))


def test_scalar_ok_edge_values() -> None:
    """bool counts as an int, ints as floats, and f32 infinities and NaN are fine."""
    SCHEMA.encode(scalars(u8=True, f64=3, f32=float("inf")))
    SCHEMA.encode(scalars(f32=float("nan")))


@pytest.mark.parametrize(
    ("msg", "error", "needle"),
    [
        (SCHEMA.Text(b"x"), TypeError, "Text.s: expected str, got bytes"),
        (SCHEMA.Text("\ud800"), ValueError, "Text.s: not encodable as UTF-8"),
        (SCHEMA.Blob("x"), TypeError, "Blob.data: expected bytes"),
        (SCHEMA.Blob([1, 2]), TypeError, "Blob.data: expected bytes"),
        (SCHEMA.Fixed(b"", bytes(16)), ValueError, r"Fixed.one: bytes\[1\] needs exactly 1"),
        (SCHEMA.Fixed(b"a", bytes(17)), ValueError, "needs exactly 16 bytes, got 17"),
        (SCHEMA.Fixed(b"a", bytes(15)), ValueError, "needs exactly 16 bytes, got 15"),
        (SCHEMA.Fixed(b"a", "x" * 16), TypeError, "Fixed.key: expected bytes"),
        (
            SCHEMA.Segment(SCHEMA.Point(0.0, 0.0), (1.0, 2.0), "x"),
            TypeError,
            "Segment.b: expected a Point message, got tuple",
        ),
        (
            SCHEMA.Segment(SCHEMA.Point(0.0, "y"), SCHEMA.Point(0.0, 0.0), "x"),
            TypeError,
            "Segment.a.y: expected float, got str",
        ),
    ],
)
def test_field_checks(msg: Any, error: type[Exception], needle: str) -> None:
    """Bad str, bytes, bytes[N] and nested values raise with the field's path."""
    with pytest.raises(error, match=needle):
        SCHEMA.encode(msg)


def arrays(**kw: Any) -> Any:
    """An Arrays message, every array empty unless given."""
    names = SCHEMA.message_def("Arrays").field_names
    return SCHEMA.Arrays(**{n: kw.get(n, []) for n in names})


@pytest.mark.parametrize(
    ("field", "value", "error", "needle"),
    [
        ("u8s", [1, 256], ValueError, r"Arrays.u8s\[1\]: 256 is out of range for u8"),
        ("i64s", [2**63], ValueError, r"Arrays.i64s\[0\]: .* out of range for i64"),
        ("bools", [True, 0], TypeError, r"Arrays.bools\[1\]: expected bool, got int"),
        ("f32s", [1e40], ValueError, r"Arrays.f32s\[0\]: .* out of range for f32"),
        ("f64s", ["x"], TypeError, r"Arrays.f64s\[0\]: expected float"),
        ("u16s", "ab", TypeError, "Arrays.u16s: expected a sequence of u16, got str"),
        ("u16s", 3, TypeError, "Arrays.u16s: expected a sequence of u16, got int"),
        ("u16s", {1, 2}, TypeError, "Arrays.u16s: expected a sequence of u16, got set"),
        ("bools", {True: 1}, TypeError, "Arrays.bools: expected a sequence of bool, got dict"),
    ],
)
def test_array_checks(field: str, value: Any, error: type[Exception], needle: str) -> None:
    """Bad array elements raise with the element's index."""
    with pytest.raises(error, match=needle):
        SCHEMA.encode(arrays(**{field: value}))


def test_not_a_message() -> None:
    """Encoding a non-message or another schema's message is a TypeError."""
    with pytest.raises(TypeError, match="not a message class of this schema"):
        SCHEMA.encode(("MarketTick", 1))
    with pytest.raises(TypeError):
        SCHEMA.encode(TRADING.Stop(1, ""))


def test_unset_field_is_a_type_error() -> None:
    """A message whose slot was deleted cannot be encoded."""
    t = SCHEMA.Text("x")
    del t.s
    with pytest.raises(TypeError, match=r"Text\.s: field is not set"):
        SCHEMA.encode(t)
