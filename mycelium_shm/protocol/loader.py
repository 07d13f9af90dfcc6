"""Reading a schema from TOML into the model (docs/FORMAT.md (Part 2), "Schema file").

The file is a list of ``[[message]]`` tables::

    [[message]]
    name = "MarketTick"          # CamelCase, unique
    id = 1                       # type id, 1..65535, unique
    doc = "optional text"        # not part of the digest
    fields = [                   # ordered; may be empty
      { name = "symbol", type = "str", doc = "optional" },
      { name = "bid", type = "f64" },
    ]

Unknown keys are errors, so a typo never passes silently.
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import SchemaError
from .model import Field, MessageDef, Model
from .types import parse_type

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 and older
    import tomli as tomllib

__all__ = ["model_from_toml"]

_MESSAGE_KEYS = {"name", "id", "doc", "fields"}
_FIELD_KEYS = {"name", "type", "doc"}


def _doc(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise SchemaError(f"{where}: doc must be a string")
    return value


def _parse_field(raw: Any, where: str, index: int) -> Field:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}, field #{index + 1}: expected a table {{name=, type=}}")
    fname = raw.get("name")
    fw = f"{where}, field {fname!r}" if isinstance(fname, str) else f"{where}, field #{index + 1}"
    unknown = set(raw) - _FIELD_KEYS
    if unknown:
        raise SchemaError(f"{fw}: unknown key(s) {sorted(unknown)}")
    if not isinstance(fname, str):
        raise SchemaError(f"{fw}: missing or non-string 'name'")
    ftype = raw.get("type")
    if not isinstance(ftype, str):
        raise SchemaError(f"{fw}: missing or non-string 'type'")
    try:
        parsed = parse_type(ftype)
    except ValueError as e:
        raise SchemaError(f"{fw}: {e}") from None
    return Field(fname, parsed, _doc(raw.get("doc", ""), fw))


def _parse_message(raw: Any, index: int) -> MessageDef:
    if not isinstance(raw, dict):
        raise SchemaError(f"message #{index + 1}: expected a [[message]] table")
    name = raw.get("name")
    where = f"message {name!r}" if isinstance(name, str) else f"message #{index + 1}"
    unknown = set(raw) - _MESSAGE_KEYS
    if unknown:
        raise SchemaError(f"{where}: unknown key(s) {sorted(unknown)}")
    if not isinstance(name, str):
        raise SchemaError(f"{where}: missing or non-string 'name'")
    if "id" not in raw:
        raise SchemaError(f"{where}: missing 'id'")
    fields = raw.get("fields")
    if not isinstance(fields, list):
        raise SchemaError(f"{where}: missing 'fields' array (use fields = [] for none)")
    parsed = tuple(_parse_field(f, where, i) for i, f in enumerate(fields))
    return MessageDef(name, raw["id"], parsed, _doc(raw.get("doc", ""), where))


def model_from_toml(text: str, source: str = "<string>") -> Model:
    """Parse and check schema TOML text; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SchemaError(f"{source}: invalid TOML: {e}") from None
    unknown = set(data) - {"message"}
    if unknown:
        raise SchemaError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
    messages = data.get("message", [])
    if not isinstance(messages, list):
        raise SchemaError(f"{source}: 'message' must be an array of tables ([[message]])")
    try:
        return Model(_parse_message(m, i) for i, m in enumerate(messages))
    except SchemaError as e:
        raise SchemaError(f"{source}: {e}") from None
