"""Rust code generator: message structs, a ``Message`` enum and codecs.

``python -m mycelium_shm.codegen --lang rust schemas/trading.toml -o
bindings/rust/src/generated/`` writes two files (the test-vector schema goes
to ``bindings/rust/tests/vectors_schema/`` the same way):

- ``mod.rs``: one struct per message (``Default``, ``encode``, ``decode``,
  ``encoded_len``), the ``Message`` enum over all of them with
  ``encode(&self) -> (u16, Vec<u8>)`` and ``decode(type_id, &[u8])``, and the
  schema digest ``SCHEMA_DIGEST`` (equal to the Python model's digest).
- ``json.rs``: conversions to and from the JSON value conventions of
  ``tests/vectors/README.md``, compiled only under ``cfg(test)`` (it needs
  ``serde_json``, a dev-dependency of the crate).  Written only for the
  mycelium-shm crate's own directories (see :func:`generate`).

The enum and every struct implement the runtime's traits
(``mycelium_shm::codec::Encode``; the enum also ``Schema``, with the digest),
so ``ShmWriter::write_message`` / ``ShmReader::read_message`` take the
messages of any generated schema.

Code for a crate of one's own (``standalone``: any output directory outside
the mycelium-shm crate) is ``mod.rs`` alone: no ``json`` module (no
``serde_json`` needed, in tests either), ``#![allow(dead_code)]`` (a program
may use a few of the messages only), and no doc examples (they would name a
module path the generator cannot know).  Declare it with ``mod NAME;`` and
depend on ``mycelium-shm``.

The generated code calls the crate's hand-written runtime
(``mycelium_shm::codec``): a reader that checks every length before reading
and reports the error kinds of docs/FORMAT.md (Part 2), and a writer.  Nested
messages are flattened into their parent, so every error label is a static
string such as ``"Envelope.segment.a.x"``, the same path the Python codec
reports.  All paths into ``std`` are absolute, so a message named ``String``
or ``Vec`` cannot shadow them.  The output is deterministic: the same model
gives the same bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from ..protocol import Schema
from ..protocol.model import Field, MessageDef, Model
from ..protocol.types import FieldType

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tomli backport has the same API
    import tomli as tomllib

__all__ = ["CRATE_PATH", "FILES", "generate", "is_standalone", "render"]

#: The files :func:`generate` returns, in order.
FILES = ("mod.rs", "json.rs")

#: Path of the crate that holds the runtime (``codec``, ``Error``).  The crate
#: declares ``extern crate self as mycelium_shm`` so this path also works
#: inside it.
CRATE_PATH = "::mycelium_shm"

_STRING = "::std::string::String"
_VEC = "::std::vec::Vec"
_RESULT = f"{CRATE_PATH}::Result"
_CODEC = f"{CRATE_PATH}::codec"

_RUST_SCALARS = {
    "bool": "bool",
    "u8": "u8",
    "u16": "u16",
    "u32": "u32",
    "u64": "u64",
    "i8": "i8",
    "i16": "i16",
    "i32": "i32",
    "i64": "i64",
    "f32": "f32",
    "f64": "f64",
}


def _rust_type(t: FieldType) -> str:
    if t.kind == "scalar":
        assert t.scalar is not None
        return _RUST_SCALARS[t.scalar.name]
    if t.kind == "str":
        return _STRING
    if t.kind == "bytes":
        return f"{_VEC}<u8>"
    if t.kind == "fixed_bytes":
        return f"[u8; {t.length}]"
    if t.kind == "array":
        assert t.scalar is not None
        return f"{_VEC}<{_RUST_SCALARS[t.scalar.name]}>"
    assert t.message is not None
    return t.message


def _default(model: Model, t: FieldType) -> str:
    if t.kind == "scalar":
        assert t.scalar is not None
        return {"bool": "false", "float": "0.0"}.get(t.scalar.kind, "0")
    if t.kind == "str":
        return f"{_STRING}::new()"
    if t.kind in ("bytes", "array"):
        return f"{_VEC}::new()"
    if t.kind == "fixed_bytes":
        return f"[0; {t.length}]"
    assert t.message is not None
    return f"{t.message}::default()"


def _has_float(model: Model, m: MessageDef) -> bool:
    for f in m.fields:
        t = f.type
        if t.kind in ("scalar", "array"):
            assert t.scalar is not None
            if t.scalar.kind == "float":
                return True
        elif t.kind == "message" and _has_float(model, model.nested(f)):
            return True
    return False


def _doc_lines(text: str, indent: str) -> Iterator[str]:
    for line in text.strip().splitlines() or [""]:
        line = line.rstrip()
        yield f"{indent}///{' ' if line else ''}{line}"


def _str_lit(s: str) -> str:
    out = []
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _reader_call(t: FieldType, label: str) -> str:
    lab = _str_lit(label)
    if t.kind == "scalar":
        assert t.scalar is not None
        return f"r.{t.scalar.name}({lab})?"
    if t.kind == "str":
        return f"r.str({lab})?"
    if t.kind == "bytes":
        return f"r.bytes({lab})?"
    if t.kind == "fixed_bytes":
        return f"r.fixed_bytes::<{t.length}>({lab})?"
    assert t.kind == "array" and t.scalar is not None
    return f"r.{t.scalar.name}_array({lab})?"


def _decode_expr(model: Model, m: MessageDef, path: str, indent: str) -> list[str]:
    """A struct literal reading ``m``'s fields in order (fields of a struct
    expression are evaluated in the order written)."""
    lines = [f"{m.name} {{"]
    inner = indent + "    "
    for f in m.fields:
        label = f"{path}.{f.name}"
        if f.type.kind == "message":
            sub = _decode_expr(model, model.nested(f), label, inner)
            lines.append(f"{inner}{f.name}: {sub[0]}")
            lines.extend(sub[1:-1])
            lines.append(f"{sub[-1]},")
        else:
            lines.append(f"{inner}{f.name}: {_reader_call(f.type, label)},")
    lines.append(f"{indent}}}")
    return lines


def _encode_stmts(model: Model, m: MessageDef, expr: str, path: str) -> list[str]:
    out: list[str] = []
    for f in m.fields:
        t = f.type
        value = f"{expr}.{f.name}"
        lab = _str_lit(f"{path}.{f.name}")
        if t.kind == "scalar":
            assert t.scalar is not None
            out.append(f"w.{t.scalar.name}({value});")
        elif t.kind == "str":
            out.append(f"w.str({lab}, &{value})?;")
        elif t.kind == "bytes":
            out.append(f"w.bytes({lab}, &{value})?;")
        elif t.kind == "fixed_bytes":
            out.append(f"w.fixed_bytes(&{value});")
        elif t.kind == "array":
            assert t.scalar is not None
            out.append(f"w.{t.scalar.name}_array({lab}, &{value})?;")
        else:
            out.extend(_encode_stmts(model, model.nested(f), value, f"{path}.{f.name}"))
    return out


def _len_terms(model: Model, m: MessageDef, expr: str) -> tuple[int, list[str]]:
    """Fixed byte count and the variable terms of ``m``'s encoded length."""
    fixed = 0
    terms: list[str] = []
    for f in m.fields:
        t = f.type
        value = f"{expr}.{f.name}"
        if t.kind == "message":
            sub_fixed, sub_terms = _len_terms(model, model.nested(f), value)
            fixed += sub_fixed
            terms.extend(sub_terms)
        elif t.kind in ("str", "bytes"):
            fixed += 4
            terms.append(f"{value}.len()")
        elif t.kind == "array":
            assert t.scalar is not None
            fixed += 4
            terms.append(f"{value}.len()" + (f" * {t.scalar.size}" if t.scalar.size != 1 else ""))
        else:
            size = t.fixed_size
            assert size is not None
            fixed += size
    return fixed, terms


def _type_doc(t: FieldType) -> str:
    return f"`{t.canonical}`"


def _field_doc(f: Field) -> str:
    return f.doc or f"Field `{f.name}`."


def _fence(module_path: str | None) -> str:
    return "/// ```" if module_path is not None else "/// ```ignore"


def _message_struct(
    model: Model, m: MessageDef, module_path: str | None, examples: bool = True
) -> list[str]:
    L: list[str] = []
    emit = L.append
    L.extend(_doc_lines(m.doc or f"Message `{m.name}`.", ""))
    emit("///")
    size = f"always {m.fixed_size} bytes" if m.fixed_size is not None else "variable length"
    emit(f"/// Type id {m.type_id}; encoded payload: {size}.")
    if examples:
        emit("///")
        emit(_fence(module_path))
        emit(f"/// use {module_path or 'generated'}::{m.name};")
        emit("///")
        emit(f"/// let m = {m.name}::default();")
        emit(f"/// assert_eq!({m.name}::decode(&m.encode()).unwrap(), m);")
        emit("/// ```")
    derive_default = all(
        f.type.kind != "fixed_bytes" or (f.type.length or 0) <= 32 for f in m.fields
    )
    derives = "Debug, Clone, PartialEq" + ("" if _has_float(model, m) else ", Eq")
    if derive_default:
        derives += ", Default"
    emit(f"#[derive({derives})]")
    emit(f"pub struct {m.name} {{")
    for f in m.fields:
        L.extend(_doc_lines(f"{_field_doc(f)} ({_type_doc(f.type)})", "    "))
        emit(f"    pub {f.name}: {_rust_type(f.type)},")
    emit("}")
    emit("")
    if not derive_default:
        # [u8; N] has Default only up to N = 32: spell the zero value out.
        emit(f"impl ::std::default::Default for {m.name} {{")
        emit("    fn default() -> Self {")
        emit(f"        {m.name} {{")
        for f in m.fields:
            emit(f"            {f.name}: {_default(model, f.type)},")
        emit("        }")
        emit("    }")
        emit("}")
        emit("")
    fixed, terms = _len_terms(model, m, "self")
    enc = _encode_stmts(model, m, "self", m.name)
    emit(f"impl {m.name} {{")
    emit("    /// The message's type id.")
    emit(f"    pub const TYPE_ID: u16 = {m.type_id};")
    emit("    /// The message's name in the schema.")
    emit(f'    pub const NAME: &\'static str = "{m.name}";')
    emit("")
    emit("    /// Length of the encoded payload in bytes.")
    emit("    pub fn encoded_len(&self) -> usize {")
    emit(f"        {' + '.join([str(fixed), *terms])}")
    emit("    }")
    emit("")
    emit("    /// Append the encoded payload to `out`.  [`Error::TooLarge`] if a")
    emit("    /// `str`, `bytes` or array field has more than `u32::MAX` items.")
    emit("    ///")
    emit(f"    /// [`Error::TooLarge`]: {CRATE_PATH}::Error::TooLarge")
    emit(f"    pub fn encode_into(&self, out: &mut {_VEC}<u8>) -> {_RESULT}<()> {{")
    if enc:
        emit("        out.reserve(self.encoded_len());")
        emit(f"        let mut w = {_CODEC}::PayloadWriter::new(out);")
        for s in enc:
            emit(f"        {s}")
    else:
        emit("        let _ = out;")
    emit("        Ok(())")
    emit("    }")
    emit("")
    emit("    /// The encoded payload.")
    emit("    ///")
    emit("    /// # Panics")
    emit("    ///")
    emit("    /// If a `str`, `bytes` or array field has more than `u32::MAX` items")
    emit("    /// (see [`Self::encode_into`] for the fallible form).")
    emit(f"    pub fn encode(&self) -> {_VEC}<u8> {{")
    emit(f"        let mut out = {_VEC}::with_capacity(self.encoded_len());")
    emit("        if let Err(e) = self.encode_into(&mut out) {")
    emit('            panic!("{e}");')
    emit("        }")
    emit("        out")
    emit("    }")
    emit("")
    emit("    /// Decode a complete payload, checking every length;")
    emit(f"    /// [`Error::Decode`]({CRATE_PATH}::Error::Decode) says what is wrong.")
    emit(f"    pub fn decode(payload: &[u8]) -> {_RESULT}<Self> {{")
    if m.fields:
        emit(f"        let mut r = {_CODEC}::PayloadReader::new(payload);")
        expr = _decode_expr(model, m, m.name, "        ")
        emit(f"        let m = {expr[0]}")
        L.extend(expr[1:-1])
        emit(f"{expr[-1]};")
        emit(f'        r.finish("{m.name}")?;')
        emit("        Ok(m)")
    else:
        emit(f'        {_CODEC}::PayloadReader::new(payload).finish("{m.name}")?;')
        emit(f"        Ok({m.name} {{}})")
    emit("    }")
    emit("}")
    emit("")
    emit(f"impl ::std::convert::From<{m.name}> for Message {{")
    emit(f"    fn from(m: {m.name}) -> Self {{")
    emit(f"        Message::{m.name}(m)")
    emit("    }")
    emit("}")
    emit("")
    emit(f"impl {_CODEC}::Encode for {m.name} {{")
    emit(f"    fn try_encode(&self) -> {_RESULT}<(u16, {_VEC}<u8>)> {{")
    emit(f"        let mut out = {_VEC}::with_capacity(self.encoded_len());")
    emit("        self.encode_into(&mut out)?;")
    emit("        Ok((Self::TYPE_ID, out))")
    emit("    }")
    emit("}")
    emit("")
    emit(f"impl {_CODEC}::MessageType for {m.name} {{")
    emit(f"    const TYPE_ID: u16 = {m.type_id};")
    emit(f'    const NAME: &\'static str = "{m.name}";')
    emit("")
    emit(f"    fn decode(payload: &[u8]) -> {_RESULT}<Self> {{")
    emit(f"        {m.name}::decode(payload)")
    emit("    }")
    emit("}")
    return L


def _mod_rs(model: Model, source: str, module_path: str | None, standalone: bool = False) -> str:
    L: list[str] = []
    emit = L.append
    examples = not standalone
    emit(f"//! Message types of the schema `{source}`.")
    emit("//!")
    if standalone:
        emit("//! Generated by `python -m mycelium_shm.codegen --lang rust` from the schema;")
        emit("//! do not edit, regenerate after a change of the schema.  The encoding is")
        emit("//! that of mycelium-shm's docs/FORMAT.md (Part 2); the runtime is")
        emit("//! [`mycelium_shm::codec`], the crate this code depends on.")
        emit("//!")
        emit("//! [`mycelium_shm::codec`]: " + f"{_CODEC}")
        emit("")
        emit("// A program may use a few of the messages only.")
        emit("#![allow(dead_code)]")
        emit("")
    else:
        emit("//! Generated by `python -m mycelium_shm.codegen --lang rust` from the schema;")
        emit("//! do not edit (a test fails when this file is stale).  The encoding is")
        emit("//! described in docs/FORMAT.md (Part 2) and in [`mycelium_shm::codec`].")
        emit("//!")
        emit("//! [`mycelium_shm::codec`]: " + f"{_CODEC}")
        emit("")
        emit("#[cfg(test)]")
        emit("pub mod json;")
        emit("")
    emit("/// SHA-256 of [`SCHEMA_CANONICAL`]: the schema digest a channel carries.")
    emit("/// Equal to `model.digest` of the Python schema model.")
    d = model.digest
    emit("pub const SCHEMA_DIGEST: [u8; 32] = [")
    for i in range(0, 32, 8):
        emit("    " + " ".join(f"0x{b:02x}," for b in d[i : i + 8]))
    emit("];")
    emit("")
    emit('/// The exact text the schema digest hashes (docs/FORMAT.md (Part 2), "Digest").')
    canon = model.canonical_text()
    emit("pub const SCHEMA_CANONICAL: &str = concat!(")
    for line in canon.splitlines(keepends=True):
        emit(f"    {_str_lit(line)},")
    emit(");")
    emit("")
    emit("/// `(type id, name)` of every message, in schema order.")
    emit("pub const MESSAGE_TYPES: &[(u16, &str)] = &[")
    for m in model.messages:
        emit(f'    ({m.type_id}, "{m.name}"),')
    emit("];")
    emit("")
    first = model.messages[0] if model.messages else None
    emit("/// Any message of the schema.")
    if first is not None and examples:
        emit("///")
        emit(_fence(module_path))
        emit(f"/// use {module_path or 'generated'}::{{{first.name}, Message}};")
        emit("///")
        emit(f"/// let msg = Message::from({first.name}::default());")
        emit("/// let (type_id, payload) = msg.encode();")
        emit(f"/// assert_eq!(type_id, {first.type_id});")
        emit("/// assert_eq!(Message::decode(type_id, &payload).unwrap(), msg);")
        emit("/// ```")
    any_float = any(_has_float(model, m) for m in model.messages)
    emit(f"#[derive(Debug, Clone, PartialEq{'' if any_float else ', Eq'})]")
    emit("pub enum Message {")
    for m in model.messages:
        emit(f"    /// Type id {m.type_id}.")
        emit(f"    {m.name}({m.name}),")
    emit("}")
    emit("")
    emit("impl Message {")
    emit("    /// The message's type id.")
    emit("    pub fn type_id(&self) -> u16 {")
    if model.messages:
        emit("        match self {")
        for m in model.messages:
            emit(f"            Message::{m.name}(_) => {m.name}::TYPE_ID,")
        emit("        }")
    else:
        emit("        match *self {}")
    emit("    }")
    emit("")
    emit("    /// The message's name in the schema.")
    emit("    pub fn name(&self) -> &'static str {")
    if model.messages:
        emit("        match self {")
        for m in model.messages:
            emit(f"            Message::{m.name}(_) => {m.name}::NAME,")
        emit("        }")
    else:
        emit("        match *self {}")
    emit("    }")
    emit("")
    emit("    /// The type id and encoded payload; [`Error::TooLarge`] if a field has")
    emit("    /// more than `u32::MAX` items.")
    emit("    ///")
    emit(f"    /// [`Error::TooLarge`]: {CRATE_PATH}::Error::TooLarge")
    emit(f"    pub fn try_encode(&self) -> {_RESULT}<(u16, {_VEC}<u8>)> {{")
    emit(f"        let mut out = {_VEC}::new();")
    if model.messages:
        emit("        match self {")
        for m in model.messages:
            emit(f"            Message::{m.name}(m) => m.encode_into(&mut out)?,")
        emit("        }")
    else:
        emit("        match *self {}")
    emit("        Ok((self.type_id(), out))")
    emit("    }")
    emit("")
    emit("    /// The type id and encoded payload.")
    emit("    ///")
    emit("    /// # Panics")
    emit("    ///")
    emit("    /// If a field has more than `u32::MAX` items (see [`Self::try_encode`]).")
    emit(f"    pub fn encode(&self) -> (u16, {_VEC}<u8>) {{")
    emit("        match self.try_encode() {")
    emit("            Ok(v) => v,")
    emit('            Err(e) => panic!("{e}"),')
    emit("        }")
    emit("    }")
    emit("")
    emit("    /// Decode the payload of a frame of type `type_id`; an id outside the")
    emit("    /// schema is a decode error of kind `unknown_type`.")
    emit(f"    pub fn decode(type_id: u16, payload: &[u8]) -> {_RESULT}<Message> {{")
    emit("        match type_id {")
    for m in model.messages:
        emit(f"            {m.type_id} => {m.name}::decode(payload).map(Message::{m.name}),")
    emit(f"            other => Err({_CODEC}::unknown_type(other)),")
    emit("        }")
    emit("    }")
    emit("}")
    emit("")
    emit(f"impl {_CODEC}::Encode for Message {{")
    emit(f"    fn try_encode(&self) -> {_RESULT}<(u16, {_VEC}<u8>)> {{")
    emit("        Message::try_encode(self)")
    emit("    }")
    emit("}")
    emit("")
    emit(f"impl {_CODEC}::Schema for Message {{")
    emit("    const DIGEST: [u8; 32] = SCHEMA_DIGEST;")
    emit("    const CANONICAL: &'static str = SCHEMA_CANONICAL;")
    emit("    const MESSAGE_TYPES: &'static [(u16, &'static str)] = MESSAGE_TYPES;")
    emit("")
    emit(f"    fn decode(type_id: u16, payload: &[u8]) -> {_RESULT}<Self> {{")
    emit("        Message::decode(type_id, payload)")
    emit("    }")
    emit("")
    emit(f"    fn visit_types<V: {_CODEC}::TypeVisitor>(visitor: &mut V) {{")
    for m in model.messages:
        emit(f"        visitor.visit::<{m.name}>();")
    emit("    }")
    emit("}")
    for m in model.messages:
        emit("")
        L.extend(_message_struct(model, m, module_path, examples))
    return "\n".join(L) + "\n"


_JSON_PRELUDE = """\
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
        .ok_or_else(|| format!("{what}: expected a \\"0x\\" bit-pattern string, got {v}"))?;
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
"""


def _json_from(t: FieldType, v: str, what: str) -> str:
    if t.kind == "scalar":
        assert t.scalar is not None
        return f"from_{t.scalar.name}({v}, {what})?"
    if t.kind == "str":
        return f"from_str({v}, {what})?"
    if t.kind == "bytes":
        return f"from_bytes({v}, {what})?"
    if t.kind == "fixed_bytes":
        return f"from_fixed::<{t.length}>({v}, {what})?"
    if t.kind == "array":
        assert t.scalar is not None
        return f"from_array({v}, {what}, from_{t.scalar.name})?"
    return f"{t.message}::from_json({v})?"


def _json_to(t: FieldType, v: str) -> str:
    if t.kind == "scalar":
        assert t.scalar is not None
        return f"to_{t.scalar.name}(&{v})"
    if t.kind == "str":
        return f"to_str(&{v})"
    if t.kind in ("bytes", "fixed_bytes"):
        return f"to_bytes(&{v})"
    if t.kind == "array":
        assert t.scalar is not None
        return f"to_array(&{v}, to_{t.scalar.name})"
    return f"{v}.to_json()"


def _json_rs(model: Model) -> str:
    L: list[str] = [_JSON_PRELUDE]
    emit = L.append
    for m in model.messages:
        names = ", ".join(f'"{f.name}"' for f in m.fields)
        emit("")
        emit(f"impl {m.name} {{")
        emit("    /// The message as a JSON object of its fields.")
        emit("    pub fn to_json(&self) -> Value {")
        emit(f"        let {'mut ' if m.fields else ''}o = Map::new();")
        for f in m.fields:
            emit(f'        o.insert("{f.name}".into(), {_json_to(f.type, "self." + f.name)});')
        emit("        Value::Object(o)")
        emit("    }")
        emit("")
        emit("    /// The message from a JSON object holding exactly its fields.")
        emit("    pub fn from_json(v: &Value) -> R<Self> {")
        emit(f'        let o = j_object(v, &[{names}], "{m.name}")?;')
        if not m.fields:
            emit("        let _ = o;")
        emit(f"        Ok({m.name} {{")
        for f in m.fields:
            what = f'"{m.name}.{f.name}"'
            get = f'j_field(o, "{f.name}", "{m.name}")?'
            emit(f"            {f.name}: {_json_from(f.type, get, what)},")
        emit("        })")
        emit("    }")
        emit("}")
    emit("")
    emit("impl Message {")
    emit("    /// The message's fields as a JSON object.")
    emit("    pub fn to_json(&self) -> Value {")
    if model.messages:
        emit("        match self {")
        for m in model.messages:
            emit(f"            Message::{m.name}(m) => m.to_json(),")
        emit("        }")
    else:
        emit("        match *self {}")
    emit("    }")
    emit("")
    emit("    /// The message named `name` from a JSON object of its fields.")
    emit("    pub fn from_json(name: &str, v: &Value) -> R<Message> {")
    emit("        match name {")
    for m in model.messages:
        emit(f'            "{m.name}" => {m.name}::from_json(v).map(Message::{m.name}),')
    emit('            other => Err(format!("no message named {other:?}")),')
    emit("        }")
    emit("    }")
    emit("}")
    return "\n".join(L) + "\n"


def render(
    model: Model,
    source: str = "schema",
    module_path: str | None = "mycelium_shm::generated",
    standalone: bool = False,
) -> dict[str, str]:
    """The generated files of ``model`` as {file name: text}.

    ``source`` names the schema in the module doc; ``module_path`` is the
    Rust path the module is reachable at, used by the doc examples (None:
    the module is not part of the library, its examples are not compiled).
    ``standalone``: code for a crate of one's own, ``mod.rs`` only (see the
    module doc).
    """
    if standalone:
        return {"mod.rs": _mod_rs(model, source, None, standalone=True)}
    return {"mod.rs": _mod_rs(model, source, module_path), "json.rs": _json_rs(model)}


def _source_label(source: Path) -> str:
    """The schema path as written into the header: relative to the working
    directory when it lies below it, so output does not depend on where the
    checkout is."""
    try:
        return source.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return source.name


#: The crate whose own directories get the JSON helpers and doc examples.
CRATE_NAME = "mycelium-shm"

#: Output directory names of the mycelium-shm crate's own generated code:
#: the library module and the test-vector schema.
OWN_DIRS = ("generated", "vectors_schema")


def _package_name(manifest: Path) -> str | None:
    try:
        with manifest.open("rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    package = doc.get("package")
    name = package.get("name") if isinstance(package, dict) else None
    return name if isinstance(name, str) else None


def _enclosing_package(out_dir: Path) -> str | None:
    """Name of the Cargo package whose directory holds ``out_dir`` (None:
    none does, or its Cargo.toml has no package name)."""
    for d in [out_dir.resolve(), *out_dir.resolve().parents]:
        manifest = d / "Cargo.toml"
        if manifest.is_file():
            return _package_name(manifest)
    return None


def is_standalone(out_dir: Path) -> bool:
    """Whether output into ``out_dir`` is for a crate of one's own: any
    directory inside another Cargo package, or not named like one of the
    mycelium-shm crate's own (:data:`OWN_DIRS`)."""
    if out_dir.name not in OWN_DIRS:
        return True
    package = _enclosing_package(out_dir)
    return package is not None and package != CRATE_NAME


def generate(
    schema: Schema, out_dir: Path, source: Path, *, standalone: bool | None = None
) -> list[Path]:
    """Write the files for ``schema`` into ``out_dir``.

    ``standalone`` (default: :func:`is_standalone` of ``out_dir``): ``mod.rs``
    alone, for a crate of one's own.  Otherwise ``mod.rs`` and ``json.rs``
    for the mycelium-shm crate's own directories; ``generated`` is taken to be
    the library's ``src/generated`` (``mycelium_shm::generated``), whose doc
    examples are compiled, any other gets examples that are not compiled.
    """
    if standalone is None:
        standalone = is_standalone(out_dir)
    module_path = "mycelium_shm::generated" if out_dir.name == "generated" else None
    written = []
    rendered = render(schema.model, _source_label(source), module_path, standalone=standalone)
    for name, text in rendered.items():
        path = out_dir / name
        path.write_bytes(text.encode("utf-8"))  # "\n" line ends on every OS
        written.append(path)
    return written
