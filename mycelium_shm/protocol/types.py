"""Field types of the message schema: parsing and canonical spelling.

A field type is written as one of these strings (docs/FORMAT.md (Part 2)):

    bool  u8 u16 u32 u64  i8 i16 i32 i64  f32 f64     fixed-width scalars
    str                                              UTF-8 text
    bytes                                            raw bytes
    bytes[N]                                         exactly N raw bytes
    [T]                                              array of scalar T
    Name                                             another message, inline

The canonical spelling (used by the digest) is exactly the forms above, with
no spaces and N in decimal without leading zeros.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MAX_FIXED_BYTES",
    "SCALARS",
    "FieldKind",
    "FieldType",
    "Scalar",
    "parse_type",
]

#: Largest N accepted in ``bytes[N]``.
MAX_FIXED_BYTES = 65536


@dataclass(frozen=True)
class Scalar:
    """A fixed-width scalar type and how it maps onto the struct module."""

    name: str
    """Canonical name, e.g. ``u32``."""
    code: str
    """struct format character (always used with ``<``, little-endian)."""
    size: int
    """Width in bytes."""
    kind: Literal["bool", "int", "float"]
    """Value family."""
    min: int
    """Smallest value for ints, 0 for bool and floats."""
    max: int
    """Largest value for ints, 1 for bool, 0 for floats."""


def _int(name: str, code: str, size: int, signed: bool) -> Scalar:
    bits = 8 * size
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    return Scalar(name, code, size, "int", lo, hi)


#: Every scalar type by canonical name, in the order the docs list them.
SCALARS: dict[str, Scalar] = {
    s.name: s
    for s in (
        Scalar("bool", "?", 1, "bool", 0, 1),
        _int("u8", "B", 1, False),
        _int("u16", "H", 2, False),
        _int("u32", "I", 4, False),
        _int("u64", "Q", 8, False),
        _int("i8", "b", 1, True),
        _int("i16", "h", 2, True),
        _int("i32", "i", 4, True),
        _int("i64", "q", 8, True),
        Scalar("f32", "f", 4, "float", 0, 0),
        Scalar("f64", "d", 8, "float", 0, 0),
    )
}

FieldKind = Literal["scalar", "str", "bytes", "fixed_bytes", "array", "message"]


@dataclass(frozen=True)
class FieldType:
    """The type of one field, as the codecs and code generators see it.

    Exactly the attributes that fit ``kind`` are set:

    - ``scalar``: ``scalar`` is the :class:`Scalar`.
    - ``str`` / ``bytes``: nothing else.
    - ``fixed_bytes``: ``length`` is N.
    - ``array``: ``scalar`` is the element type.
    - ``message``: ``message`` is the nested message's name.
    """

    kind: FieldKind
    canonical: str
    """Canonical type string, as hashed by the digest."""
    scalar: Scalar | None = None
    length: int | None = None
    message: str | None = None

    @property
    def fixed_size(self) -> int | None:
        """Encoded width if it does not depend on the value (None otherwise).

        Nested messages answer None here; ask the schema model instead.
        """
        if self.kind == "scalar":
            assert self.scalar is not None
            return self.scalar.size
        if self.kind == "fixed_bytes":
            return self.length
        return None


_FIXED_RE = re.compile(r"bytes\s*\[\s*([0-9]+)\s*\]")
_ARRAY_RE = re.compile(r"\[\s*([a-z0-9]+)\s*\]")
MESSAGE_NAME_RE = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")


def scalar_type(name: str) -> FieldType:
    """The FieldType of scalar ``name`` (a key of SCALARS)."""
    return FieldType("scalar", name, scalar=SCALARS[name])


def parse_type(text: str) -> FieldType:
    """Parse a type string; raise ValueError saying what is wrong.

    Spaces around and inside brackets are accepted and dropped from the
    canonical form.
    """
    t = text.strip()
    if t in SCALARS:
        return scalar_type(t)
    if t == "str":
        return FieldType("str", "str")
    if t == "bytes":
        return FieldType("bytes", "bytes")
    m = _FIXED_RE.fullmatch(t)
    if m:
        digits = m.group(1)
        n = int(digits)
        if digits != str(n) or not 1 <= n <= MAX_FIXED_BYTES:
            raise ValueError(
                f"bytes[N] needs N in 1..{MAX_FIXED_BYTES} without leading zeros, got {text!r}"
            )
        return FieldType("fixed_bytes", f"bytes[{n}]", length=n)
    m = _ARRAY_RE.fullmatch(t)
    if m:
        elem = m.group(1)
        if elem not in SCALARS:
            raise ValueError(
                f"array elements must be a scalar type ({', '.join(SCALARS)}), got {text!r}"
            )
        return FieldType("array", f"[{elem}]", scalar=SCALARS[elem])
    if MESSAGE_NAME_RE.fullmatch(t):
        return FieldType("message", t, message=t)
    raise ValueError(f"unknown type {text!r}")
