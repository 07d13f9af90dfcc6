"""Tests of messages declared in Python with @message."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest

from mycelium_shm.errors import SchemaError
from mycelium_shm.protocol import (
    F32,
    F64,
    I8,
    I64,
    U16,
    U32,
    U64,
    Bool,
    FixedBytes,
    Message,
    Schema,
    Str,
    message,
)

ROOT = Path(__file__).resolve().parent.parent


@message(id=1)
class MarketTick:
    """Top of book for one instrument."""

    symbol: Str
    seq: U64
    ts_ns: I64
    bid: F64
    ask: F64
    bid_size: U32
    ask_size: U32

    def mid(self) -> float:
        """The mid price."""
        return (self.bid + self.ask) / 2


@message(id=2)
class Signal:
    strategy_id: U16
    symbol: Str
    tick_seq: U64
    side: I8
    strength: F32
    features: list[F32]


@message(id=3)
class OrderRequest:
    order_id: U64
    symbol: Str
    side: I8
    qty: U32
    limit_price: F64
    ioc: Bool
    ts_ns: I64


@message(id=4)
class Fill:
    order_id: U64
    venue: Annotated[bytes, FixedBytes(4)]
    qty: U32
    price: F64
    fee: F64
    ts_ns: I64


@message(id=5)
class Stop:
    last_seq: U64
    reason: Str


@message(id=16)
class Segment:
    a: Point  # declared below: resolved by Schema.from_classes
    b: Point
    label: Str


@message(id=15)
class Point:
    x: F64
    y: F64


def test_same_digest_as_toml() -> None:
    """The trading messages declared in Python have the TOML file's digest."""
    py = Schema.from_classes(MarketTick, Signal, OrderRequest, Fill, Stop)
    toml = Schema.load(ROOT / "schemas" / "trading.toml")
    assert py.digest == toml.digest
    assert py.model.canonical_text() == toml.model.canonical_text()


def test_class_order_does_not_change_digest() -> None:
    """Passing the classes in another order gives the same digest."""
    a = Schema.from_classes(MarketTick, Signal, OrderRequest, Fill, Stop)
    b = Schema.from_classes(Stop, Fill, OrderRequest, Signal, MarketTick)
    assert a.digest == b.digest
    assert b.messages[0].name == "Stop"


def test_decorated_class_is_a_message() -> None:
    """The decorator gives slots, init, eq, repr and keeps the class's methods."""
    t = MarketTick("X", 1, 2, 1.0, 3.0, 4, 5)
    assert isinstance(t, Message)
    assert MarketTick.__match_args__ == (
        "symbol",
        "seq",
        "ts_ns",
        "bid",
        "ask",
        "bid_size",
        "ask_size",
    )
    assert not hasattr(t, "__dict__")
    assert t.mid() == 2.0
    assert t == MarketTick(symbol="X", seq=1, ts_ns=2, bid=1.0, ask=3.0, bid_size=4, ask_size=5)
    assert repr(t).startswith("MarketTick(symbol='X', seq=1,")
    assert MarketTick.__doc__ == "Top of book for one instrument."
    assert MarketTick.__qualname__ == "MarketTick"


def test_round_trip_uses_the_decorated_classes() -> None:
    """Decoding yields instances of the decorated classes, nested ones included."""
    s = Schema.from_classes(Segment, Point, Fill)
    seg = Segment(Point(1.0, 2.0), Point(3.0, 4.0), "ab")
    type_id, payload = s.encode(seg)
    assert type_id == 16
    out = s.decode(type_id, payload)
    assert type(out) is Segment and type(out.a) is Point
    assert out == seg
    assert s.message_type("Point") is Point
    assert s.type_id_of(Fill) == 4


def test_same_digest_as_toml_with_nesting() -> None:
    """Nested, fixed-bytes and array fields map to the same canonical types as TOML."""
    toml = """
    [[message]]
    name = "Point"
    id = 15
    fields = [{ name = "x", type = "f64" }, { name = "y", type = "f64" }]
    [[message]]
    name = "Segment"
    id = 16
    fields = [{ name = "a", type = "Point" }, { name = "b", type = "Point" },
              { name = "label", type = "str" }]
    """
    assert Schema.from_classes(Segment, Point).digest == Schema.from_toml_str(toml).digest


def test_missing_nested_class_is_an_error() -> None:
    """A nested message class must be passed to from_classes too."""
    with pytest.raises(SchemaError, match="Segment"):
        Schema.from_classes(Segment)


def test_defaults_are_refused() -> None:
    """A field with a default value is a SchemaError."""
    with pytest.raises(SchemaError, match="defaults"):

        @message(id=9)
        class WithDefault:
            x: U32 = 0


def test_bases_are_refused() -> None:
    """A message class cannot inherit from another class."""

    class Base:
        pass

    with pytest.raises(SchemaError, match="bases"):

        @message(id=9)
        class Child(Base):
            x: U32


def test_unmappable_annotation_is_an_error() -> None:
    """An annotation with no schema type (plain int) is a SchemaError naming the field."""

    @message(id=9)
    class Plain:
        x: int

    with pytest.raises(SchemaError, match="field 'x'"):
        Schema.from_classes(Plain)


def test_array_of_strings_is_refused() -> None:
    """list[Str] is not an array type."""

    @message(id=9)
    class Texts:
        xs: list[Str]

    with pytest.raises(SchemaError, match="array elements"):
        Schema.from_classes(Texts)


def test_undecorated_class_is_refused() -> None:
    """from_classes only takes @message classes."""

    class NotAMessage:
        x: U32

    with pytest.raises(SchemaError, match="not a @message class"):
        Schema.from_classes(NotAMessage)


def test_bad_id_is_refused() -> None:
    """Type ids are checked as in TOML."""

    @message(id=0)
    class Zero:
        x: U32

    with pytest.raises(SchemaError, match="0 is reserved"):
        Schema.from_classes(Zero)
