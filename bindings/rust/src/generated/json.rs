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

impl Message {
    /// The message's fields as a JSON object.
    pub fn to_json(&self) -> Value {
        match self {
            Message::MarketTick(m) => m.to_json(),
            Message::Signal(m) => m.to_json(),
            Message::OrderRequest(m) => m.to_json(),
            Message::Fill(m) => m.to_json(),
            Message::Stop(m) => m.to_json(),
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
            other => Err(format!("no message named {other:?}")),
        }
    }
}
