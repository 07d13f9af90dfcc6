//! JSON conversions of the generated messages, following the value
//! conventions of tests/vectors/README.md (u64/i64 as decimal strings, floats
//! as `"0x"` + hex bit pattern, bytes as hex, nested messages as objects).
//!
//! Generated with `mod.rs`; compiled only under `cfg(test)` (needs the
//! `serde_json` dev-dependency).

#![allow(dead_code)]

use super::*;
use serde_json::{Map, Value};

type R<T> = ::std::result::Result<T, ::std::string::String>;

fn j_int(v: &Value, what: &str) -> R<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
        .ok_or_else(|| format!("{what}: expected a JSON integer, got {v}"))
}

fn j_dec(v: &Value, what: &str) -> R<i128> {
    let s = v.as_str().ok_or_else(|| format!("{what}: expected a decimal string, got {v}"))?;
    s.parse::<i128>().map_err(|e| format!("{what}: {s:?}: {e}"))
}

fn j_narrow<T: ::std::convert::TryFrom<i128>>(x: i128, what: &str) -> R<T> {
    T::try_from(x).map_err(|_| format!("{what}: {x} out of range"))
}

fn j_hex(v: &Value, what: &str) -> R<::std::vec::Vec<u8>> {
    let s = v.as_str().ok_or_else(|| format!("{what}: expected a hex string, got {v}"))?;
    if s.len() % 2 != 0 {
        return Err(format!("{what}: odd-length hex {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("{what}: {s:?}: {e}")))
        .collect()
}

fn j_bits(v: &Value, digits: usize, what: &str) -> R<u64> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{what}: expected a \"0x\" bit-pattern string, got {v}"))?;
    let h = s.strip_prefix("0x").ok_or_else(|| format!("{what}: {s:?} lacks 0x"))?;
    if h.len() != digits {
        return Err(format!("{what}: {s:?} should have {digits} hex digits"));
    }
    u64::from_str_radix(h, 16).map_err(|e| format!("{what}: {s:?}: {e}"))
}

fn j_array<'a>(v: &'a Value, what: &str) -> R<&'a ::std::vec::Vec<Value>> {
    v.as_array().ok_or_else(|| format!("{what}: expected a JSON array, got {v}"))
}

type Object = Map<::std::string::String, Value>;

fn j_object<'a>(v: &'a Value, fields: &[&str], what: &str) -> R<&'a Object> {
    let o = v.as_object().ok_or_else(|| format!("{what}: expected a JSON object, got {v}"))?;
    for k in o.keys() {
        if !fields.contains(&k.as_str()) {
            return Err(format!("{what}: unknown field {k:?}"));
        }
    }
    Ok(o)
}

fn j_field<'a>(o: &'a Object, name: &str, what: &str) -> R<&'a Value> {
    o.get(name).ok_or_else(|| format!("{what}: missing field {name:?}"))
}

fn hex(b: &[u8]) -> Value {
    Value::String(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn from_bool(v: &Value, what: &str) -> R<bool> {
    v.as_bool().ok_or_else(|| format!("{what}: expected true/false, got {v}"))
}
fn from_u8(v: &Value, what: &str) -> R<u8> { j_narrow(j_int(v, what)?, what) }
fn from_u16(v: &Value, what: &str) -> R<u16> { j_narrow(j_int(v, what)?, what) }
fn from_u32(v: &Value, what: &str) -> R<u32> { j_narrow(j_int(v, what)?, what) }
fn from_u64(v: &Value, what: &str) -> R<u64> { j_narrow(j_dec(v, what)?, what) }
fn from_i8(v: &Value, what: &str) -> R<i8> { j_narrow(j_int(v, what)?, what) }
fn from_i16(v: &Value, what: &str) -> R<i16> { j_narrow(j_int(v, what)?, what) }
fn from_i32(v: &Value, what: &str) -> R<i32> { j_narrow(j_int(v, what)?, what) }
fn from_i64(v: &Value, what: &str) -> R<i64> { j_narrow(j_dec(v, what)?, what) }
fn from_f32(v: &Value, what: &str) -> R<f32> { Ok(f32::from_bits(j_bits(v, 8, what)? as u32)) }
fn from_f64(v: &Value, what: &str) -> R<f64> { Ok(f64::from_bits(j_bits(v, 16, what)?)) }
fn from_str(v: &Value, what: &str) -> R<::std::string::String> {
    v.as_str().map(str::to_owned).ok_or_else(|| format!("{what}: expected a string, got {v}"))
}
fn from_bytes(v: &Value, what: &str) -> R<::std::vec::Vec<u8>> { j_hex(v, what) }
fn from_fixed<const N: usize>(v: &Value, what: &str) -> R<[u8; N]> {
    let b = j_hex(v, what)?;
    <[u8; N]>::try_from(b.as_slice())
        .map_err(|_| format!("{what}: expected {N} bytes, got {}", b.len()))
}
fn from_array<T>(v: &Value, what: &str, f: fn(&Value, &str) -> R<T>) -> R<::std::vec::Vec<T>> {
    j_array(v, what)?.iter().map(|x| f(x, what)).collect()
}

fn to_bool(x: &bool) -> Value { Value::Bool(*x) }
fn to_u8(x: &u8) -> Value { Value::from(*x) }
fn to_u16(x: &u16) -> Value { Value::from(*x) }
fn to_u32(x: &u32) -> Value { Value::from(*x) }
fn to_u64(x: &u64) -> Value { Value::String(x.to_string()) }
fn to_i8(x: &i8) -> Value { Value::from(*x) }
fn to_i16(x: &i16) -> Value { Value::from(*x) }
fn to_i32(x: &i32) -> Value { Value::from(*x) }
fn to_i64(x: &i64) -> Value { Value::String(x.to_string()) }
fn to_f32(x: &f32) -> Value { Value::String(format!("0x{:08x}", x.to_bits())) }
fn to_f64(x: &f64) -> Value { Value::String(format!("0x{:016x}", x.to_bits())) }
fn to_str(x: &str) -> Value { Value::String(x.to_owned()) }
fn to_bytes(x: &[u8]) -> Value { hex(x) }
fn to_array<T>(x: &[T], f: fn(&T) -> Value) -> Value { Value::Array(x.iter().map(f).collect()) }


impl MarketTick {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("symbol".into(), to_str(&self.symbol));
        o.insert("seq".into(), to_u64(&self.seq));
        o.insert("ts_ns".into(), to_i64(&self.ts_ns));
        o.insert("bid".into(), to_f64(&self.bid));
        o.insert("ask".into(), to_f64(&self.ask));
        o.insert("bid_size".into(), to_u32(&self.bid_size));
        o.insert("ask_size".into(), to_u32(&self.ask_size));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["symbol", "seq", "ts_ns", "bid", "ask", "bid_size", "ask_size"], "MarketTick")?;
        Ok(MarketTick {
            symbol: from_str(j_field(o, "symbol", "MarketTick")?, "MarketTick.symbol")?,
            seq: from_u64(j_field(o, "seq", "MarketTick")?, "MarketTick.seq")?,
            ts_ns: from_i64(j_field(o, "ts_ns", "MarketTick")?, "MarketTick.ts_ns")?,
            bid: from_f64(j_field(o, "bid", "MarketTick")?, "MarketTick.bid")?,
            ask: from_f64(j_field(o, "ask", "MarketTick")?, "MarketTick.ask")?,
            bid_size: from_u32(j_field(o, "bid_size", "MarketTick")?, "MarketTick.bid_size")?,
            ask_size: from_u32(j_field(o, "ask_size", "MarketTick")?, "MarketTick.ask_size")?,
        })
    }
}

impl Signal {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("strategy_id".into(), to_u16(&self.strategy_id));
        o.insert("symbol".into(), to_str(&self.symbol));
        o.insert("tick_seq".into(), to_u64(&self.tick_seq));
        o.insert("side".into(), to_i8(&self.side));
        o.insert("strength".into(), to_f32(&self.strength));
        o.insert("features".into(), to_array(&self.features, to_f32));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["strategy_id", "symbol", "tick_seq", "side", "strength", "features"], "Signal")?;
        Ok(Signal {
            strategy_id: from_u16(j_field(o, "strategy_id", "Signal")?, "Signal.strategy_id")?,
            symbol: from_str(j_field(o, "symbol", "Signal")?, "Signal.symbol")?,
            tick_seq: from_u64(j_field(o, "tick_seq", "Signal")?, "Signal.tick_seq")?,
            side: from_i8(j_field(o, "side", "Signal")?, "Signal.side")?,
            strength: from_f32(j_field(o, "strength", "Signal")?, "Signal.strength")?,
            features: from_array(j_field(o, "features", "Signal")?, "Signal.features", from_f32)?,
        })
    }
}

impl OrderRequest {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("order_id".into(), to_u64(&self.order_id));
        o.insert("symbol".into(), to_str(&self.symbol));
        o.insert("side".into(), to_i8(&self.side));
        o.insert("qty".into(), to_u32(&self.qty));
        o.insert("limit_price".into(), to_f64(&self.limit_price));
        o.insert("ioc".into(), to_bool(&self.ioc));
        o.insert("ts_ns".into(), to_i64(&self.ts_ns));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["order_id", "symbol", "side", "qty", "limit_price", "ioc", "ts_ns"], "OrderRequest")?;
        Ok(OrderRequest {
            order_id: from_u64(j_field(o, "order_id", "OrderRequest")?, "OrderRequest.order_id")?,
            symbol: from_str(j_field(o, "symbol", "OrderRequest")?, "OrderRequest.symbol")?,
            side: from_i8(j_field(o, "side", "OrderRequest")?, "OrderRequest.side")?,
            qty: from_u32(j_field(o, "qty", "OrderRequest")?, "OrderRequest.qty")?,
            limit_price: from_f64(j_field(o, "limit_price", "OrderRequest")?, "OrderRequest.limit_price")?,
            ioc: from_bool(j_field(o, "ioc", "OrderRequest")?, "OrderRequest.ioc")?,
            ts_ns: from_i64(j_field(o, "ts_ns", "OrderRequest")?, "OrderRequest.ts_ns")?,
        })
    }
}

impl Fill {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("order_id".into(), to_u64(&self.order_id));
        o.insert("venue".into(), to_bytes(&self.venue));
        o.insert("qty".into(), to_u32(&self.qty));
        o.insert("price".into(), to_f64(&self.price));
        o.insert("fee".into(), to_f64(&self.fee));
        o.insert("ts_ns".into(), to_i64(&self.ts_ns));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["order_id", "venue", "qty", "price", "fee", "ts_ns"], "Fill")?;
        Ok(Fill {
            order_id: from_u64(j_field(o, "order_id", "Fill")?, "Fill.order_id")?,
            venue: from_fixed::<4>(j_field(o, "venue", "Fill")?, "Fill.venue")?,
            qty: from_u32(j_field(o, "qty", "Fill")?, "Fill.qty")?,
            price: from_f64(j_field(o, "price", "Fill")?, "Fill.price")?,
            fee: from_f64(j_field(o, "fee", "Fill")?, "Fill.fee")?,
            ts_ns: from_i64(j_field(o, "ts_ns", "Fill")?, "Fill.ts_ns")?,
        })
    }
}

impl Stop {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("last_seq".into(), to_u64(&self.last_seq));
        o.insert("reason".into(), to_str(&self.reason));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["last_seq", "reason"], "Stop")?;
        Ok(Stop {
            last_seq: from_u64(j_field(o, "last_seq", "Stop")?, "Stop.last_seq")?,
            reason: from_str(j_field(o, "reason", "Stop")?, "Stop.reason")?,
        })
    }
}

impl Scalars {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("b".into(), to_bool(&self.b));
        o.insert("u8".into(), to_u8(&self.u8));
        o.insert("u16".into(), to_u16(&self.u16));
        o.insert("u32".into(), to_u32(&self.u32));
        o.insert("u64".into(), to_u64(&self.u64));
        o.insert("i8".into(), to_i8(&self.i8));
        o.insert("i16".into(), to_i16(&self.i16));
        o.insert("i32".into(), to_i32(&self.i32));
        o.insert("i64".into(), to_i64(&self.i64));
        o.insert("f32".into(), to_f32(&self.f32));
        o.insert("f64".into(), to_f64(&self.f64));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["b", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64"], "Scalars")?;
        Ok(Scalars {
            b: from_bool(j_field(o, "b", "Scalars")?, "Scalars.b")?,
            u8: from_u8(j_field(o, "u8", "Scalars")?, "Scalars.u8")?,
            u16: from_u16(j_field(o, "u16", "Scalars")?, "Scalars.u16")?,
            u32: from_u32(j_field(o, "u32", "Scalars")?, "Scalars.u32")?,
            u64: from_u64(j_field(o, "u64", "Scalars")?, "Scalars.u64")?,
            i8: from_i8(j_field(o, "i8", "Scalars")?, "Scalars.i8")?,
            i16: from_i16(j_field(o, "i16", "Scalars")?, "Scalars.i16")?,
            i32: from_i32(j_field(o, "i32", "Scalars")?, "Scalars.i32")?,
            i64: from_i64(j_field(o, "i64", "Scalars")?, "Scalars.i64")?,
            f32: from_f32(j_field(o, "f32", "Scalars")?, "Scalars.f32")?,
            f64: from_f64(j_field(o, "f64", "Scalars")?, "Scalars.f64")?,
        })
    }
}

impl Text {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("s".into(), to_str(&self.s));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["s"], "Text")?;
        Ok(Text {
            s: from_str(j_field(o, "s", "Text")?, "Text.s")?,
        })
    }
}

impl Blob {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("data".into(), to_bytes(&self.data));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["data"], "Blob")?;
        Ok(Blob {
            data: from_bytes(j_field(o, "data", "Blob")?, "Blob.data")?,
        })
    }
}

impl Fixed {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("one".into(), to_bytes(&self.one));
        o.insert("key".into(), to_bytes(&self.key));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["one", "key"], "Fixed")?;
        Ok(Fixed {
            one: from_fixed::<1>(j_field(o, "one", "Fixed")?, "Fixed.one")?,
            key: from_fixed::<16>(j_field(o, "key", "Fixed")?, "Fixed.key")?,
        })
    }
}

impl Arrays {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("bools".into(), to_array(&self.bools, to_bool));
        o.insert("u8s".into(), to_array(&self.u8s, to_u8));
        o.insert("u16s".into(), to_array(&self.u16s, to_u16));
        o.insert("u32s".into(), to_array(&self.u32s, to_u32));
        o.insert("u64s".into(), to_array(&self.u64s, to_u64));
        o.insert("i8s".into(), to_array(&self.i8s, to_i8));
        o.insert("i16s".into(), to_array(&self.i16s, to_i16));
        o.insert("i32s".into(), to_array(&self.i32s, to_i32));
        o.insert("i64s".into(), to_array(&self.i64s, to_i64));
        o.insert("f32s".into(), to_array(&self.f32s, to_f32));
        o.insert("f64s".into(), to_array(&self.f64s, to_f64));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["bools", "u8s", "u16s", "u32s", "u64s", "i8s", "i16s", "i32s", "i64s", "f32s", "f64s"], "Arrays")?;
        Ok(Arrays {
            bools: from_array(j_field(o, "bools", "Arrays")?, "Arrays.bools", from_bool)?,
            u8s: from_array(j_field(o, "u8s", "Arrays")?, "Arrays.u8s", from_u8)?,
            u16s: from_array(j_field(o, "u16s", "Arrays")?, "Arrays.u16s", from_u16)?,
            u32s: from_array(j_field(o, "u32s", "Arrays")?, "Arrays.u32s", from_u32)?,
            u64s: from_array(j_field(o, "u64s", "Arrays")?, "Arrays.u64s", from_u64)?,
            i8s: from_array(j_field(o, "i8s", "Arrays")?, "Arrays.i8s", from_i8)?,
            i16s: from_array(j_field(o, "i16s", "Arrays")?, "Arrays.i16s", from_i16)?,
            i32s: from_array(j_field(o, "i32s", "Arrays")?, "Arrays.i32s", from_i32)?,
            i64s: from_array(j_field(o, "i64s", "Arrays")?, "Arrays.i64s", from_i64)?,
            f32s: from_array(j_field(o, "f32s", "Arrays")?, "Arrays.f32s", from_f32)?,
            f64s: from_array(j_field(o, "f64s", "Arrays")?, "Arrays.f64s", from_f64)?,
        })
    }
}

impl Point {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("x".into(), to_f64(&self.x));
        o.insert("y".into(), to_f64(&self.y));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["x", "y"], "Point")?;
        Ok(Point {
            x: from_f64(j_field(o, "x", "Point")?, "Point.x")?,
            y: from_f64(j_field(o, "y", "Point")?, "Point.y")?,
        })
    }
}

impl Segment {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("a".into(), self.a.to_json());
        o.insert("b".into(), self.b.to_json());
        o.insert("label".into(), to_str(&self.label));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["a", "b", "label"], "Segment")?;
        Ok(Segment {
            a: Point::from_json(j_field(o, "a", "Segment")?)?,
            b: Point::from_json(j_field(o, "b", "Segment")?)?,
            label: from_str(j_field(o, "label", "Segment")?, "Segment.label")?,
        })
    }
}

impl Envelope {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("seq".into(), to_u64(&self.seq));
        o.insert("segment".into(), self.segment.to_json());
        o.insert("tick".into(), self.tick.to_json());
        o.insert("tail".into(), to_array(&self.tail, to_u16));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["seq", "segment", "tick", "tail"], "Envelope")?;
        Ok(Envelope {
            seq: from_u64(j_field(o, "seq", "Envelope")?, "Envelope.seq")?,
            segment: Segment::from_json(j_field(o, "segment", "Envelope")?)?,
            tick: MarketTick::from_json(j_field(o, "tick", "Envelope")?)?,
            tail: from_array(j_field(o, "tail", "Envelope")?, "Envelope.tail", from_u16)?,
        })
    }
}

impl Empty {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let o = Map::new();
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &[], "Empty")?;
        let _ = o;
        Ok(Empty {
        })
    }
}

impl MaxId {
    /// The message as a JSON object of its fields.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("flag".into(), to_bool(&self.flag));
        Value::Object(o)
    }

    /// The message from a JSON object holding exactly its fields.
    pub fn from_json(v: &Value) -> R<Self> {
        let o = j_object(v, &["flag"], "MaxId")?;
        Ok(MaxId {
            flag: from_bool(j_field(o, "flag", "MaxId")?, "MaxId.flag")?,
        })
    }
}

impl Message {
    /// The message's fields as a JSON object.
    pub fn to_json(&self) -> Value {
        match self {
            Message::MarketTick(m) => m.to_json(),
            Message::Signal(m) => m.to_json(),
            Message::OrderRequest(m) => m.to_json(),
            Message::Fill(m) => m.to_json(),
            Message::Stop(m) => m.to_json(),
            Message::Scalars(m) => m.to_json(),
            Message::Text(m) => m.to_json(),
            Message::Blob(m) => m.to_json(),
            Message::Fixed(m) => m.to_json(),
            Message::Arrays(m) => m.to_json(),
            Message::Point(m) => m.to_json(),
            Message::Segment(m) => m.to_json(),
            Message::Envelope(m) => m.to_json(),
            Message::Empty(m) => m.to_json(),
            Message::MaxId(m) => m.to_json(),
        }
    }

    /// The message named `name` from a JSON object of its fields.
    pub fn from_json(name: &str, v: &Value) -> R<Message> {
        match name {
            "MarketTick" => MarketTick::from_json(v).map(Message::MarketTick),
            "Signal" => Signal::from_json(v).map(Message::Signal),
            "OrderRequest" => OrderRequest::from_json(v).map(Message::OrderRequest),
            "Fill" => Fill::from_json(v).map(Message::Fill),
            "Stop" => Stop::from_json(v).map(Message::Stop),
            "Scalars" => Scalars::from_json(v).map(Message::Scalars),
            "Text" => Text::from_json(v).map(Message::Text),
            "Blob" => Blob::from_json(v).map(Message::Blob),
            "Fixed" => Fixed::from_json(v).map(Message::Fixed),
            "Arrays" => Arrays::from_json(v).map(Message::Arrays),
            "Point" => Point::from_json(v).map(Message::Point),
            "Segment" => Segment::from_json(v).map(Message::Segment),
            "Envelope" => Envelope::from_json(v).map(Message::Envelope),
            "Empty" => Empty::from_json(v).map(Message::Empty),
            "MaxId" => MaxId::from_json(v).map(Message::MaxId),
            other => Err(format!("no message named {other:?}")),
        }
    }
}
