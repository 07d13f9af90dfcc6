"""The message protocol: schemas, generated message classes and codecs.

Public API::

    Schema.load(path) / Schema.from_toml_str(text) / Schema.from_classes(*classes)
    schema.encode(msg) -> (type_id, payload)
    schema.decode(type_id, payload) -> message
    schema.message_type(name_or_id), schema.type_id_of(cls)
    schema.messages (MessageDef, declared order), schema.digest, schema.digest_hex
    @message(id=...) with the type aliases Bool, U8..U64, I8..I64, F32, F64,
    Str, Bytes, FixedBytes(n), list[...] for arrays.

The encoding and the digest are specified in docs/FORMAT.md (Part 2).
"""

from __future__ import annotations

from ..errors import PayloadError, SchemaError
from .classes import Message
from .decorators import (
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
    Bytes,
    FixedBytes,
    Str,
    TypeSpec,
    message,
)
from .model import Field, MessageDef, Model
from .schema import Schema
from .types import SCALARS, FieldType, Scalar, parse_type

__all__ = [
    "F32",
    "F64",
    "I8",
    "I16",
    "I32",
    "I64",
    "SCALARS",
    "U8",
    "U16",
    "U32",
    "U64",
    "Bool",
    "Bytes",
    "Field",
    "FieldType",
    "FixedBytes",
    "Message",
    "MessageDef",
    "Model",
    "PayloadError",
    "Scalar",
    "Schema",
    "SchemaError",
    "Str",
    "TypeSpec",
    "message",
    "parse_type",
]
