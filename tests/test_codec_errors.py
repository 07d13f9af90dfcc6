"""Tests of decoding malformed payloads: every error kind, and no crash on any input."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mycelium_shm.errors import DecodeError, MyceliumError, PayloadError
from mycelium_shm.protocol import FieldType, Schema
from mycelium_shm.protocol.types import Scalar

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Schema.load(ROOT / "tests" / "vectors" / "schema.toml")
IDS = [m.type_id for m in SCHEMA.messages]


def any_message(name: str) -> st.SearchStrategy[Any]:
    """Valid messages of type ``name`` (a compact twin of test_codec.messages)."""

    def scalar(sc: Scalar) -> st.SearchStrategy[Any]:
        if sc.kind == "bool":
            return st.booleans()
        if sc.kind == "int":
            return st.integers(sc.min, sc.max)
        return st.floats(width=32 if sc.size == 4 else 64)

    def value(t: FieldType) -> st.SearchStrategy[Any]:
        if t.kind == "scalar" and t.scalar:
            return scalar(t.scalar)
        if t.kind == "array" and t.scalar:
            return st.lists(scalar(t.scalar), max_size=5)
        if t.kind == "str":
            return st.text(max_size=10)
        if t.kind == "bytes":
            return st.binary(max_size=10)
        if t.kind == "fixed_bytes":
            return st.binary(min_size=t.length or 0, max_size=t.length)
        assert t.message is not None
        return any_message(t.message)

    m = SCHEMA.message_def(name)
    cls = SCHEMA.message_type(name)
    return st.tuples(*(value(f.type) for f in m.fields)).map(lambda v: cls(*v))


def assert_reencodes(type_id: int, msg: Any, payload: bytes) -> None:
    """An accepted payload re-encodes to itself.

    Except for f32 signalling NaNs, which CPython < 3.14 quiets when it
    widens f32 to float: there only the length must match, and the second
    round trip must be exact.
    """
    again = SCHEMA.encode(msg)
    assert again[0] == type_id and len(again[1]) == len(payload)
    if again[1] != payload:
        assert SCHEMA.encode(SCHEMA.decode(type_id, again[1])) == again


def kind_of(type_id: int, payload: bytes) -> str:
    """The PayloadError kind decoding raises."""
    with pytest.raises(PayloadError) as info:
        SCHEMA.decode(type_id, payload)
    return info.value.kind


def u32(n: int) -> bytes:
    """A u32 length prefix."""
    return struct.pack("<I", n)


def tick_payload() -> bytes:
    """A valid MarketTick payload."""
    return SCHEMA.encode(SCHEMA.MarketTick("EURUSD", 1, 2, 1.0, 2.0, 3, 4))[1]


def test_error_is_a_decode_error() -> None:
    """PayloadError is a DecodeError, a MyceliumError and a ValueError, and says its kind."""
    with pytest.raises(PayloadError) as info:
        SCHEMA.decode(11, b"")
    e = info.value
    assert isinstance(e, DecodeError) and isinstance(e, MyceliumError)
    assert isinstance(e, ValueError)
    assert str(e).startswith("short: ")


@pytest.mark.parametrize("type_id", [0, 6, 9, 19, 65534, -1, 65536])
def test_unknown_type(type_id: int) -> None:
    """A type id not in the schema (0 included) is unknown_type."""
    assert kind_of(type_id, b"") == "unknown_type"


@pytest.mark.parametrize("type_id", ["1", None, 1.0, True])
def test_type_id_of_the_wrong_type(type_id: object) -> None:
    """A type id that is not an int is a TypeError naming type_id, not a payload error."""
    with pytest.raises(TypeError, match=r"^type_id must be an int"):
        SCHEMA.decode(type_id, b"")  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", range(50))
def test_every_truncation_of_a_tick(cut: int) -> None:
    """Every strict prefix of a MarketTick payload is short or length, never a crash."""
    payload = tick_payload()
    assert len(payload) == 50
    kind = kind_of(1, payload[:cut])
    assert kind == ("length" if 4 <= cut < 10 else "short")


def test_short_fixed_message() -> None:
    """A fixed-size message one byte short is short."""
    assert kind_of(15, bytes(15)) == "short"
    assert kind_of(10, bytes(42)) == "short"


def test_short_error_names_the_message() -> None:
    """The short error's text names the message and its byte count."""
    with pytest.raises(PayloadError, match=r"MarketTick: the payload \(3 bytes\)"):
        SCHEMA.decode(1, b"\x06\x00\x00")


@pytest.mark.parametrize("extra", [b"\x00", b"\xff" * 9])
def test_trailing(extra: bytes) -> None:
    """Bytes after the last field are trailing, for fixed and variable messages."""
    assert kind_of(1, tick_payload() + extra) == "trailing"
    assert kind_of(15, bytes(16) + extra) == "trailing"
    assert kind_of(18, extra) == "trailing"
    assert kind_of(11, u32(0) + extra) == "trailing"


@pytest.mark.parametrize(
    "raw", [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"a\x80"]
)
def test_utf8(raw: bytes) -> None:
    """Invalid UTF-8 (bad bytes, overlong, surrogate, truncated, too high) is utf8."""
    assert kind_of(11, u32(len(raw)) + raw) == "utf8"


def test_utf8_error_names_the_field() -> None:
    """The utf8 error's text names the nested field's path."""
    seg = SCHEMA.encode(SCHEMA.Segment(SCHEMA.Point(0.0, 0.0), SCHEMA.Point(0.0, 0.0), "x"))[1]
    with pytest.raises(PayloadError, match=r"Segment\.label: invalid UTF-8"):
        SCHEMA.decode(16, seg[:-1] + b"\xff")


@pytest.mark.parametrize("byte", [2, 3, 0x80, 0xFF])
def test_bool(byte: int) -> None:
    """A bool byte other than 0/1, as a field or array element, is bool."""
    good = SCHEMA.encode(SCHEMA.Scalars(True, 1, 1, 1, 1, 1, 1, 1, 1, 1.0, 1.0))[1]
    assert kind_of(10, bytes([byte]) + good[1:]) == "bool"
    assert kind_of(65535, bytes([byte])) == "bool"
    arrays = SCHEMA.encode(SCHEMA.Arrays([True, False], *([[]] * 10)))[1]
    assert kind_of(14, arrays[:5] + bytes([byte]) + arrays[6:]) == "bool"


def test_bool_error_names_the_field() -> None:
    """The bool error's text names the field and the byte."""
    with pytest.raises(PayloadError, match=r"MaxId.flag: byte 2 is not a bool"):
        SCHEMA.decode(65535, b"\x02")


@pytest.mark.parametrize("count", [1, 5, 0x1FFFFFFF, 0x20000000, 0xFFFFFFFF])
def test_length(count: int) -> None:
    """A length or element count past the end is length, even when count*size wraps 2**32."""
    assert kind_of(11, u32(count)) == "length"
    assert kind_of(12, u32(count)) == "length"
    empty_but_last = SCHEMA.encode(SCHEMA.Arrays(*([[]] * 11)))[1][:-4]
    assert kind_of(14, empty_but_last + u32(count)) == "length"


def test_partial_array_element() -> None:
    """An f64 array whose last element is cut is length."""
    empty_but_last = SCHEMA.encode(SCHEMA.Arrays(*([[]] * 11)))[1][:-4]
    assert kind_of(14, empty_but_last + u32(1) + bytes(7)) == "length"


@settings(max_examples=300, deadline=None)
@given(type_id=st.sampled_from([*IDS, 0, 7]), payload=st.binary(max_size=120))
def test_random_bytes_never_crash(type_id: int, payload: bytes) -> None:
    """Random payloads decode or raise PayloadError, never anything else."""
    try:
        msg = SCHEMA.decode(type_id, payload)
    except PayloadError:
        return
    assert_reencodes(type_id, msg, payload)


@settings(max_examples=200, deadline=None)
@given(
    type_id=st.sampled_from(IDS),
    data=st.data(),
)
def test_mutated_valid_payloads_never_crash(type_id: int, data: st.DataObject) -> None:
    """Valid payloads with one byte changed, cut or appended decode or raise PayloadError."""
    msg = data.draw(any_message(SCHEMA.message_def(type_id).name))
    payload = bytearray(SCHEMA.encode(msg)[1])
    op = data.draw(st.sampled_from(["flip", "cut", "append"]))
    if op == "flip" and payload:
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    elif op == "cut" and payload:
        del payload[data.draw(st.integers(0, len(payload) - 1)) :]
    else:
        payload += data.draw(st.binary(min_size=1, max_size=5))
    try:
        out = SCHEMA.decode(type_id, memoryview(payload))
    except PayloadError:
        return
    assert_reencodes(type_id, out, bytes(payload))
