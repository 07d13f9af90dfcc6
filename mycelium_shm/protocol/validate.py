"""Field-by-field checks of a message, for clear encode errors.

The generated encoders (codec.py) leave most checks to ``struct``, which is
fast but says little ("argument out of range").  When an encoder fails, it
calls :func:`check_message`, which walks the message slowly and raises a
TypeError (wrong type) or ValueError (right type, bad value) that names the
field, e.g. ``MarketTick.bid_size: 4294967296 is out of range for u32
(0..4294967295)``.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Mapping
from typing import Any

from .model import MessageDef, Model
from .types import FieldType, Scalar

__all__ = ["MAX_LENGTH", "check_message", "check_scalar"]

#: Largest byte length of a str or bytes, and element count of an array.
MAX_LENGTH = 0xFFFFFFFF


def check_scalar(s: Scalar, v: Any, path: str) -> None:
    """Raise TypeError/ValueError if ``v`` is not a valid value of ``s``."""
    if s.kind == "bool":
        if v is not True and v is not False:
            raise TypeError(f"{path}: expected bool, got {type(v).__name__}")
        return
    if s.kind == "int":
        try:
            i = operator.index(v)
        except TypeError:
            raise TypeError(f"{path}: expected int, got {type(v).__name__}") from None
        if not s.min <= i <= s.max:
            raise ValueError(f"{path}: {i} is out of range for {s.name} ({s.min}..{s.max})")
        return
    if isinstance(v, (str, bytes, bytearray)) or not hasattr(type(v), "__float__"):
        raise TypeError(f"{path}: expected float, got {type(v).__name__}")
    try:
        struct.pack("<" + s.code, v)
    except OverflowError:
        raise ValueError(f"{path}: {v!r} is out of range for {s.name}") from None
    except (struct.error, TypeError, ValueError) as e:
        raise TypeError(f"{path}: not a {s.name}: {e}") from None


def _byte_length(v: Any, path: str, what: str) -> int:
    if isinstance(v, (bytes, bytearray)):
        return len(v)
    if isinstance(v, memoryview):
        return v.nbytes
    raise TypeError(
        f"{path}: expected {what} (bytes, bytearray or memoryview), got {type(v).__name__}"
    )


def _check_field(
    model: Model, classes: Mapping[str, type], t: FieldType, v: Any, path: str
) -> None:
    if t.kind == "scalar":
        assert t.scalar is not None
        check_scalar(t.scalar, v, path)
    elif t.kind == "str":
        if not isinstance(v, str):
            raise TypeError(f"{path}: expected str, got {type(v).__name__}")
        try:
            n = len(v.encode("utf-8"))
        except UnicodeEncodeError as e:
            raise ValueError(f"{path}: not encodable as UTF-8: {e.reason}") from None
        if n > MAX_LENGTH:
            raise ValueError(f"{path}: {n} bytes of UTF-8, more than {MAX_LENGTH}")
    elif t.kind == "bytes":
        n = _byte_length(v, path, "bytes")
        if n > MAX_LENGTH:
            raise ValueError(f"{path}: {n} bytes, more than {MAX_LENGTH}")
    elif t.kind == "fixed_bytes":
        n = _byte_length(v, path, t.canonical)
        if n != t.length:
            raise ValueError(f"{path}: {t.canonical} needs exactly {t.length} bytes, got {n}")
    elif t.kind == "array":
        assert t.scalar is not None
        if isinstance(v, (str, dict, set, frozenset)) or not hasattr(v, "__len__"):
            raise TypeError(
                f"{path}: expected a sequence of {t.scalar.name}, got {type(v).__name__}"
            )
        ndim = getattr(v, "ndim", 1)
        if ndim != 1:  # a NumPy array or memoryview of another shape
            raise TypeError(
                f"{path}: expected a 1-D array of {t.scalar.name}, got {ndim}-D {type(v).__name__}"
            )
        if len(v) > MAX_LENGTH:
            raise ValueError(f"{path}: {len(v)} elements, more than {MAX_LENGTH}")
        for i, x in enumerate(v):
            check_scalar(t.scalar, x, f"{path}[{i}]")
    else:
        assert t.message is not None
        check_message(model, classes, model.by_name[t.message], v, path)


def check_message(
    model: Model, classes: Mapping[str, type], m: MessageDef, obj: Any, path: str = ""
) -> None:
    """Raise TypeError/ValueError naming the first field of ``obj`` that cannot be encoded."""
    path = path or m.name
    cls = classes[m.name]
    if obj.__class__ is not cls:
        raise TypeError(f"{path}: expected a {m.name} message, got {type(obj).__name__}")
    for f in m.fields:
        try:
            v = getattr(obj, f.name)
        except AttributeError:
            raise TypeError(f"{path}.{f.name}: field is not set") from None
        _check_field(model, classes, f.type, v, f"{path}.{f.name}")
