"""Tests of the language-neutral test vectors (tests/vectors), both directions."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mycelium_shm.errors import PayloadError
from mycelium_shm.protocol import Schema
from mycelium_shm.protocol.jsonvalues import from_json, to_json

VECTORS = Path(__file__).resolve().parent / "vectors"
SCHEMA = Schema.load(VECTORS / "schema.toml")
VALID = json.loads((VECTORS / "valid.json").read_text(encoding="utf-8"))
INVALID = json.loads((VECTORS / "invalid.json").read_text(encoding="utf-8"))
KINDS = {"short", "length", "trailing", "utf8", "bool", "unknown_type"}


def load_generator() -> ModuleType:
    """tests/vectors/generate.py as a module."""
    spec = importlib.util.spec_from_file_location("vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_files_equal_a_fresh_generation() -> None:
    """valid.json, invalid.json and canonical.txt are exactly what generate.py writes."""
    for name, text in load_generator().build().items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, f"regenerate {name}"


def test_counts_and_coverage() -> None:
    """There are >= 40 valid and >= 20 invalid cases, covering every message and error kind."""
    assert len(VALID["cases"]) >= 40
    assert len(INVALID["cases"]) >= 20
    assert {c["message"] for c in VALID["cases"]} == {m.name for m in SCHEMA.messages}
    assert {c["error"] for c in INVALID["cases"]} == KINDS
    types = {f.type.canonical for m in SCHEMA.messages for f in m.fields}
    for t in ["bool", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64"]:
        assert t in types and f"[{t}]" in types
    assert {"str", "bytes", "bytes[1]", "bytes[16]", "Point", "Segment"} <= types


def test_digest_and_canonical_text() -> None:
    """The recorded digest is SHA-256 of canonical.txt and the schema's digest."""
    canonical = (VECTORS / "canonical.txt").read_bytes()
    assert hashlib.sha256(canonical).hexdigest() == VALID["digest"] == SCHEMA.digest_hex


def test_vector_schema_extends_trading() -> None:
    """The vector schema's messages 1-5 are those of schemas/trading.toml."""
    trading = Schema.load(VECTORS.parent.parent / "schemas" / "trading.toml")
    assert [m for m in SCHEMA.messages if m.type_id <= 5] == list(trading.messages)


@pytest.mark.parametrize("case", VALID["cases"], ids=lambda c: c["name"])
def test_valid_decode(case: dict[str, Any]) -> None:
    """Decoding the hex gives the listed fields (floats by bit pattern)."""
    msg = SCHEMA.decode(case["type_id"], bytes.fromhex(case["hex"]))
    assert type(msg).__name__ == case["message"]
    assert to_json(SCHEMA, msg) == case["fields"]
    assert list(case["fields"]) == list(SCHEMA.message_def(case["message"]).field_names)


@pytest.mark.parametrize("case", VALID["cases"], ids=lambda c: c["name"])
def test_valid_encode(case: dict[str, Any]) -> None:
    """Encoding the listed fields gives the hex."""
    msg = from_json(SCHEMA, case["message"], case["fields"])
    assert SCHEMA.encode(msg) == (case["type_id"], bytes.fromhex(case["hex"]))


@pytest.mark.parametrize("case", INVALID["cases"], ids=lambda c: c["name"])
def test_invalid(case: dict[str, Any]) -> None:
    """Each invalid payload raises PayloadError of the listed kind."""
    with pytest.raises(PayloadError) as info:
        SCHEMA.decode(case["type_id"], bytes.fromhex(case["hex"]))
    assert info.value.kind == case["error"]
    if case["message"] is None:
        assert case["error"] == "unknown_type"
    else:
        assert SCHEMA.message_def(case["type_id"]).name == case["message"]


def test_json_conventions() -> None:
    """u64/i64 are decimal strings, floats 0x-hex bit patterns, bytes lowercase hex."""
    case = next(c for c in VALID["cases"] if c["name"] == "scalars_max")
    f = case["fields"]
    assert f["u64"] == "18446744073709551615" and f["i64"] == "9223372036854775807"
    assert f["u32"] == 4294967295 and f["b"] is True
    assert f["f32"] == "0x7f7fffff" and f["f64"] == "0x7fefffffffffffff"
    blob = next(c for c in VALID["cases"] if c["name"] == "blob_all_bytes")
    assert blob["fields"]["data"] == bytes(range(256)).hex()
    nan = next(c for c in VALID["cases"] if c["name"] == "scalars_nan")
    assert nan["fields"]["f64"] == "0x7ff8000000000000"


def test_from_json_rejects_unknown_fields() -> None:
    """from_json refuses a field the message does not have."""
    with pytest.raises(ValueError, match="unknown field"):
        from_json(SCHEMA, "Text", {"s": "", "t": 1})
