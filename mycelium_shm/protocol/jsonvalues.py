"""Messages as JSON values, with the conventions of the test vectors.

u64/i64 as decimal strings, f32/f64 as ``"0x"`` + the IEEE bit pattern in
hex, bytes as lowercase hex, arrays (lists or NumPy arrays) as lists, nested messages as objects
(tests/vectors/README.md).  Used to write and to check the test vectors, and
handy for logging messages losslessly.
"""

from __future__ import annotations

import struct
from typing import Any

from .schema import Schema
from .types import FieldType, Scalar

__all__ = ["float_from_hex", "float_to_hex", "from_json", "to_json"]


def float_to_hex(s: Scalar, v: float) -> str:
    """``"0x"`` + the bit pattern of ``v`` as f32 or f64."""
    if s.size == 4:
        return f"0x{struct.unpack('<I', struct.pack('<f', v))[0]:08x}"
    return f"0x{struct.unpack('<Q', struct.pack('<d', v))[0]:016x}"


def float_from_hex(s: Scalar, text: str) -> float:
    """The float with bit pattern ``text`` (``"0x..."``) as f32 or f64."""
    bits = int(text, 16)
    if s.size == 4:
        return float(struct.unpack("<f", struct.pack("<I", bits))[0])
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


def _scalar_to(s: Scalar, v: Any) -> Any:
    if s.kind == "float":
        return float_to_hex(s, v)
    if s.kind == "int" and s.size == 8:
        return str(v)
    return v


def _scalar_from(s: Scalar, v: Any) -> Any:
    if s.kind == "float":
        return float_from_hex(s, v)
    if s.kind == "int" and s.size == 8:
        return int(v)
    return v


def _to(schema: Schema, t: FieldType, v: Any) -> Any:
    if t.kind == "scalar":
        assert t.scalar is not None
        return _scalar_to(t.scalar, v)
    if t.kind == "array":
        assert t.scalar is not None
        if hasattr(v, "tolist"):  # a NumPy array (or array.array): Python scalars
            v = v.tolist()
        return [_scalar_to(t.scalar, x) for x in v]
    if t.kind in ("bytes", "fixed_bytes"):
        return bytes(v).hex()
    if t.kind == "str":
        return v
    return to_json(schema, v)


def _from(schema: Schema, t: FieldType, v: Any) -> Any:
    if t.kind == "scalar":
        assert t.scalar is not None
        return _scalar_from(t.scalar, v)
    if t.kind == "array":
        assert t.scalar is not None
        return [_scalar_from(t.scalar, x) for x in v]
    if t.kind in ("bytes", "fixed_bytes"):
        return bytes.fromhex(v)
    if t.kind == "str":
        return v
    assert t.message is not None
    return from_json(schema, t.message, v)


def to_json(schema: Schema, msg: Any) -> dict[str, Any]:
    """The JSON object of a message's fields, in declared order."""
    m = schema.message_def(type(msg))
    return {f.name: _to(schema, f.type, getattr(msg, f.name)) for f in m.fields}


def from_json(schema: Schema, name: str, fields: dict[str, Any]) -> Any:
    """The message ``name`` built from a JSON object of its fields.

    KeyError if a field is missing, ValueError if there is an extra one.
    """
    m = schema.message_def(name)
    extra = set(fields) - set(m.field_names)
    if extra:
        raise ValueError(f"{name}: unknown field(s) {sorted(extra)}")
    cls = schema.message_type(name)
    return cls(*(_from(schema, f.type, fields[f.name]) for f in m.fields))
