//! Runtime of the generated message code: a bounds-checked payload reader,
//! a payload writer, and the decode error kinds of docs/FORMAT.md (Part 2).
//!
//! The encoding: fields in declared order, no padding, little-endian.
//! Scalars take their width (`bool` is one byte, 0 or 1); `bytes[N]` is N raw
//! bytes; `str` and `bytes` are a u32 byte count then the bytes; `[T]` is a
//! u32 element count then the elements; a nested message is its fields,
//! inline.  A payload must end exactly after the last field.

use std::fmt;

use crate::error::{Error, Result};

/// What is wrong with a payload (the `kind` of Python's `PayloadError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeKind {
    /// The payload ends inside a fixed-width item (a scalar, a `bytes[N]`,
    /// or a u32 length prefix).
    Short,
    /// A u32 length prefix reaches past the end of the payload.
    Length,
    /// Bytes remain after the last field.
    Trailing,
    /// A `str` field is not valid UTF-8.
    Utf8,
    /// A `bool` byte is neither 0 nor 1.
    Bool,
    /// The type id is not in the schema.
    UnknownType,
}

impl DecodeKind {
    /// The kind's name in docs/FORMAT.md (Part 2) and the test vectors (`"short"`, ...).
    ///
    /// ```
    /// assert_eq!(mycelium_shm::codec::DecodeKind::UnknownType.as_str(), "unknown_type");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeKind::Short => "short",
            DecodeKind::Length => "length",
            DecodeKind::Trailing => "trailing",
            DecodeKind::Utf8 => "utf8",
            DecodeKind::Bool => "bool",
            DecodeKind::UnknownType => "unknown_type",
        }
    }
}

impl fmt::Display for DecodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload that does not decode: its [`DecodeKind`] and a description
/// naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What is wrong.
    pub kind: DecodeKind,
    /// Where and how, e.g. `"MarketTick.symbol: length 9 runs to byte 13, ..."`.
    pub detail: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

fn decode_error(kind: DecodeKind, detail: String) -> Error {
    Error::Decode(DecodeError { kind, detail })
}

/// The error for a type id that is not in the schema.
///
/// ```
/// use mycelium_shm::{codec, Error};
///
/// let err = codec::unknown_type(0);
/// assert!(matches!(err, Error::Decode(e) if e.kind == codec::DecodeKind::UnknownType));
/// ```
pub fn unknown_type(type_id: u16) -> Error {
    decode_error(DecodeKind::UnknownType, format!("type id {type_id} is not in the schema"))
}

/// A value that encodes to one frame: a message of a generated schema (each
/// message struct) or the schema's `Message` enum.  Implemented by the code
/// `python -m mycelium_shm.codegen --lang rust` generates; taken by
/// [`ShmWriter::write_message`](crate::ShmWriter::write_message).
///
/// ```
/// use mycelium_shm::codec::Encode;
/// use mycelium_shm::generated::Stop;
///
/// let (type_id, payload) = Encode::try_encode(&Stop::default()).unwrap();
/// assert_eq!((type_id, payload), (Stop::TYPE_ID, Stop::default().encode()));
/// ```
pub trait Encode {
    /// The frame's type id and encoded payload; [`Error::TooLarge`] if a
    /// field has more than `u32::MAX` items.
    fn try_encode(&self) -> Result<(u16, Vec<u8>)>;
}

/// The messages of one schema as a whole: the `Message` enum the generator
/// writes for every schema, with the schema's digest.  Lets
/// [`ShmReader::read_message`](crate::ShmReader::read_message),
/// [`ShmWriter::write_message`](crate::ShmWriter::write_message) and
/// [`Options::schema`](crate::Options::schema) work with any generated
/// schema, not only the library's own [`generated`](crate::generated).
///
/// ```
/// use mycelium_shm::codec::Schema;
/// use mycelium_shm::generated::{Message, Stop, SCHEMA_DIGEST};
///
/// assert_eq!(<Message as Schema>::DIGEST, SCHEMA_DIGEST);
/// let msg = Message::from(Stop::default());
/// let (id, payload) = msg.encode();
/// assert_eq!(<Message as Schema>::decode(id, &payload).unwrap(), msg);
/// ```
pub trait Schema: Encode + Sized {
    /// SHA-256 of [`Self::CANONICAL`]: the schema digest a channel carries.
    const DIGEST: [u8; 32];
    /// The exact text the digest hashes.
    const CANONICAL: &'static str;
    /// `(type id, name)` of every message, in schema order.
    const MESSAGE_TYPES: &'static [(u16, &'static str)];

    /// Decode the payload of a frame of type `type_id`; an id outside the
    /// schema is a decode error of kind [`DecodeKind::UnknownType`].
    fn decode(type_id: u16, payload: &[u8]) -> Result<Self>;

    /// Call [`TypeVisitor::visit`] once for every message struct of the
    /// schema, in schema order (generated code does; the default visits
    /// nothing).  This is how the [`bus`](crate::bus) learns the Rust type
    /// behind each type id.
    ///
    /// ```
    /// use mycelium_shm::codec::{MessageType, Schema, TypeVisitor};
    /// use mycelium_shm::generated::Message;
    ///
    /// struct Names(Vec<&'static str>);
    /// impl TypeVisitor for Names {
    ///     fn visit<T: MessageType>(&mut self) {
    ///         self.0.push(T::NAME);
    ///     }
    /// }
    /// let mut names = Names(Vec::new());
    /// Message::visit_types(&mut names);
    /// assert_eq!(names.0, ["MarketTick", "Signal", "OrderRequest", "Fill", "Stop"]);
    /// ```
    fn visit_types<V: TypeVisitor>(visitor: &mut V) {
        let _ = visitor;
    }
}

/// One message struct of a generated schema: its type id, its name and its
/// decoder.  Implemented by generated code for every message struct.
///
/// ```
/// use mycelium_shm::codec::MessageType;
/// use mycelium_shm::generated::Fill;
///
/// assert_eq!((<Fill as MessageType>::TYPE_ID, <Fill as MessageType>::NAME), (4, "Fill"));
/// let payload = Fill::default().encode();
/// assert_eq!(<Fill as MessageType>::decode(&payload).unwrap(), Fill::default());
/// ```
pub trait MessageType: Encode + Send + Sync + Sized + 'static {
    /// The frame type id of this message.
    const TYPE_ID: u16;
    /// The message's name in the schema.
    const NAME: &'static str;

    /// Decode a complete payload, checking every length.
    fn decode(payload: &[u8]) -> Result<Self>;
}

/// Receives the message types of a schema from [`Schema::visit_types`].
pub trait TypeVisitor {
    /// Called once per message struct `T` of the schema.
    fn visit<T: MessageType>(&mut self);
}

/// A cursor over a payload that checks every length before reading.
///
/// ```
/// use mycelium_shm::codec::PayloadReader;
///
/// let mut r = PayloadReader::new(&[2, 0, 0, 0, b'h', b'i', 7]);
/// assert_eq!(r.str("T.s").unwrap(), "hi");
/// assert_eq!(r.u8("T.n").unwrap(), 7);
/// r.finish("T").unwrap();
/// ```
#[derive(Debug)]
pub struct PayloadReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

macro_rules! read_scalar {
    ($(#[$doc:meta] $name:ident: $t:ty;)*) => {$(
        #[$doc]
        pub fn $name(&mut self, label: &str) -> Result<$t> {
            let b = self.take(std::mem::size_of::<$t>(), label)?;
            let mut a = [0u8; std::mem::size_of::<$t>()];
            a.copy_from_slice(b);
            Ok(<$t>::from_le_bytes(a))
        }
    )*};
}

macro_rules! read_array {
    ($(#[$doc:meta] $name:ident: $t:ty;)*) => {$(
        #[$doc]
        pub fn $name(&mut self, label: &str) -> Result<Vec<$t>> {
            const W: usize = std::mem::size_of::<$t>();
            let b = self.prefixed(W, label)?;
            Ok(b.chunks_exact(W)
                .map(|c| {
                    let mut a = [0u8; W];
                    a.copy_from_slice(c);
                    <$t>::from_le_bytes(a)
                })
                .collect())
        }
    )*};
}

impl<'a> PayloadReader<'a> {
    /// A reader at the start of `buf`.
    ///
    /// ```
    /// let r = mycelium_shm::codec::PayloadReader::new(b"");
    /// r.finish("Empty").unwrap();
    /// ```
    pub fn new(buf: &'a [u8]) -> Self {
        PayloadReader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, label: &str) -> Result<&'a [u8]> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(decode_error(
                DecodeKind::Short,
                format!(
                    "{label}: needs bytes {}..{}, the payload has {}",
                    self.pos,
                    self.pos as u64 + n as u64,
                    self.buf.len()
                ),
            ));
        }
        let b = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    /// A u32 count prefix followed by `count * width` bytes; returns them.
    fn prefixed(&mut self, width: usize, label: &str) -> Result<&'a [u8]> {
        let count = self.u32(label)?;
        let bytes = u64::from(count) * width as u64;
        let end = self.pos as u64 + bytes;
        if end > self.buf.len() as u64 {
            return Err(decode_error(
                DecodeKind::Length,
                format!(
                    "{label}: length {count} runs to byte {end}, past the end of the payload ({} bytes)",
                    self.buf.len()
                ),
            ));
        }
        // end <= buf.len(), so bytes fits in usize.
        self.take(bytes as usize, label)
    }

    read_scalar! {
        /// Read a `u8`.
        u8: u8;
        /// Read a little-endian `u16`.
        u16: u16;
        /// Read a little-endian `u32`.
        u32: u32;
        /// Read a little-endian `u64`.
        u64: u64;
        /// Read an `i8`.
        i8: i8;
        /// Read a little-endian `i16`.
        i16: i16;
        /// Read a little-endian `i32`.
        i32: i32;
        /// Read a little-endian `i64`.
        i64: i64;
    }

    /// Read a little-endian `f32`, bit for bit (NaN payloads survive).
    pub fn f32(&mut self, label: &str) -> Result<f32> {
        self.u32(label).map(f32::from_bits)
    }

    /// Read a little-endian `f64`, bit for bit (NaN payloads survive).
    pub fn f64(&mut self, label: &str) -> Result<f64> {
        self.u64(label).map(f64::from_bits)
    }

    /// Read a `bool` byte: 0 or 1, anything else is a [`DecodeKind::Bool`] error.
    pub fn bool(&mut self, label: &str) -> Result<bool> {
        match self.take(1, label)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(decode_error(DecodeKind::Bool, format!("{label}: byte {b} is not a bool (0 or 1)"))),
        }
    }

    /// Read `N` raw bytes (`bytes[N]`).
    pub fn fixed_bytes<const N: usize>(&mut self, label: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, label)?);
        Ok(a)
    }

    /// Read a u32 byte count and that many bytes (`bytes`).
    pub fn bytes(&mut self, label: &str) -> Result<Vec<u8>> {
        Ok(self.prefixed(1, label)?.to_vec())
    }

    /// Read a u32 byte count and that many bytes of UTF-8 (`str`).
    pub fn str(&mut self, label: &str) -> Result<String> {
        let b = self.prefixed(1, label)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(decode_error(DecodeKind::Utf8, format!("{label}: invalid UTF-8: {e}"))),
        }
    }

    /// Read a u32 element count and that many `bool` bytes (`[bool]`).
    pub fn bool_array(&mut self, label: &str) -> Result<Vec<bool>> {
        let b = self.prefixed(1, label)?;
        b.iter()
            .map(|&x| match x {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(decode_error(
                    DecodeKind::Bool,
                    format!("{label}: an element is not a bool (0 or 1): {x}"),
                )),
            })
            .collect()
    }

    read_array! {
        /// Read a u32 element count and that many `u8` (`[u8]`).
        u8_array: u8;
        /// Read a u32 element count and that many `u16` (`[u16]`).
        u16_array: u16;
        /// Read a u32 element count and that many `u32` (`[u32]`).
        u32_array: u32;
        /// Read a u32 element count and that many `u64` (`[u64]`).
        u64_array: u64;
        /// Read a u32 element count and that many `i8` (`[i8]`).
        i8_array: i8;
        /// Read a u32 element count and that many `i16` (`[i16]`).
        i16_array: i16;
        /// Read a u32 element count and that many `i32` (`[i32]`).
        i32_array: i32;
        /// Read a u32 element count and that many `i64` (`[i64]`).
        i64_array: i64;
    }

    /// Read a u32 element count and that many `f32`, bit for bit (`[f32]`).
    pub fn f32_array(&mut self, label: &str) -> Result<Vec<f32>> {
        Ok(self.u32_array(label)?.into_iter().map(f32::from_bits).collect())
    }

    /// Read a u32 element count and that many `f64`, bit for bit (`[f64]`).
    pub fn f64_array(&mut self, label: &str) -> Result<Vec<f64>> {
        Ok(self.u64_array(label)?.into_iter().map(f64::from_bits).collect())
    }

    /// Check that the whole payload was read ([`DecodeKind::Trailing`] otherwise).
    pub fn finish(self, message: &str) -> Result<()> {
        let left = self.buf.len() - self.pos;
        if left == 0 {
            Ok(())
        } else {
            Err(decode_error(DecodeKind::Trailing, format!("{message}: {left} bytes after the last field")))
        }
    }
}

/// Appends encoded fields to a byte vector.
///
/// ```
/// use mycelium_shm::codec::PayloadWriter;
///
/// let mut out = Vec::new();
/// let mut w = PayloadWriter::new(&mut out);
/// w.str("T.s", "hi").unwrap();
/// w.u8(7);
/// assert_eq!(out, [2, 0, 0, 0, b'h', b'i', 7]);
/// ```
#[derive(Debug)]
pub struct PayloadWriter<'a> {
    out: &'a mut Vec<u8>,
}

macro_rules! write_scalar {
    ($(#[$doc:meta] $name:ident: $t:ty;)*) => {$(
        #[$doc]
        pub fn $name(&mut self, v: $t) {
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    )*};
}

macro_rules! write_array {
    ($(#[$doc:meta] $name:ident: $t:ty;)*) => {$(
        #[$doc]
        pub fn $name(&mut self, label: &str, v: &[$t]) -> Result<()> {
            self.prefix(label, v.len())?;
            self.out.reserve(v.len() * std::mem::size_of::<$t>());
            for x in v {
                self.out.extend_from_slice(&x.to_le_bytes());
            }
            Ok(())
        }
    )*};
}

impl<'a> PayloadWriter<'a> {
    /// A writer appending to `out`.
    ///
    /// ```
    /// let mut out = vec![1];
    /// mycelium_shm::codec::PayloadWriter::new(&mut out).bool(true);
    /// assert_eq!(out, [1, 1]);
    /// ```
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        PayloadWriter { out }
    }

    fn prefix(&mut self, label: &str, count: usize) -> Result<()> {
        let n = u32::try_from(count)
            .map_err(|_| Error::TooLarge(format!("{label}: {count} items do not fit a u32 length prefix")))?;
        self.u32(n);
        Ok(())
    }

    write_scalar! {
        /// Write a `u8`.
        u8: u8;
        /// Write a little-endian `u16`.
        u16: u16;
        /// Write a little-endian `u32`.
        u32: u32;
        /// Write a little-endian `u64`.
        u64: u64;
        /// Write an `i8`.
        i8: i8;
        /// Write a little-endian `i16`.
        i16: i16;
        /// Write a little-endian `i32`.
        i32: i32;
        /// Write a little-endian `i64`.
        i64: i64;
    }

    /// Write a little-endian `f32`, bit for bit.
    pub fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }

    /// Write a little-endian `f64`, bit for bit.
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }

    /// Write a `bool` as one byte, 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }

    /// Write `N` raw bytes (`bytes[N]`).
    pub fn fixed_bytes<const N: usize>(&mut self, v: &[u8; N]) {
        self.out.extend_from_slice(v);
    }

    /// Write a u32 byte count and the bytes (`bytes`); [`Error::TooLarge`]
    /// past `u32::MAX` bytes.
    pub fn bytes(&mut self, label: &str, v: &[u8]) -> Result<()> {
        self.prefix(label, v.len())?;
        self.out.extend_from_slice(v);
        Ok(())
    }

    /// Write a u32 byte count and the UTF-8 bytes (`str`).
    pub fn str(&mut self, label: &str, v: &str) -> Result<()> {
        self.bytes(label, v.as_bytes())
    }

    /// Write a u32 element count and the `bool` bytes (`[bool]`).
    pub fn bool_array(&mut self, label: &str, v: &[bool]) -> Result<()> {
        self.prefix(label, v.len())?;
        self.out.extend(v.iter().map(|&b| u8::from(b)));
        Ok(())
    }

    write_array! {
        /// Write a u32 element count and the `u8` elements (`[u8]`).
        u8_array: u8;
        /// Write a u32 element count and the `u16` elements (`[u16]`).
        u16_array: u16;
        /// Write a u32 element count and the `u32` elements (`[u32]`).
        u32_array: u32;
        /// Write a u32 element count and the `u64` elements (`[u64]`).
        u64_array: u64;
        /// Write a u32 element count and the `i8` elements (`[i8]`).
        i8_array: i8;
        /// Write a u32 element count and the `i16` elements (`[i16]`).
        i16_array: i16;
        /// Write a u32 element count and the `i32` elements (`[i32]`).
        i32_array: i32;
        /// Write a u32 element count and the `i64` elements (`[i64]`).
        i64_array: i64;
        /// Write a u32 element count and the `f32` elements, bit for bit (`[f32]`).
        f32_array: f32;
        /// Write a u32 element count and the `f64` elements, bit for bit (`[f64]`).
        f64_array: f64;
    }
}
