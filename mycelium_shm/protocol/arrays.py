"""Array fields (``[T]``): packing from sequences and buffers, unpacking to lists or NumPy.

Encoding (the same whatever the schema's ``arrays`` mode):

- a ``list`` (or tuple, or any other sequence) is packed element by element
  with one ``struct.pack`` call, every element checked;
- an object with the buffer protocol (a NumPy array, ``array.array``,
  ``memoryview``, ``bytes``/``bytearray`` for ``[u8]``...) that is 1-D and
  whose format is the element type (same kind, signedness and width) is
  copied once, as it is, into the payload: no per-element Python work.
  Strided (non-contiguous) input is gathered by that one copy;
- a NumPy array of another dtype or byte order is converted once with
  ``astype``, after vectorised checks that the conversion changes no value:
  integers must be in the target's range, a float narrowed to f32 must not
  overflow to infinity (NaN and infinities are kept), floats are never
  turned into integers and only bool arrays fill ``[bool]``.  Anything that
  fails is diagnosed by :func:`~.validate.check_message`, which names the
  first bad element.

Decoding depends on the mode:

- ``"numpy"``: a 1-D ``numpy.ndarray`` of the element's little-endian dtype
  (``[bool]`` gives ``dtype=bool``).  From a ``bytes`` payload the array is
  a **zero-copy, read-only view** of that bytes object (which it keeps
  alive; a small array keeps the whole payload alive).  Its data may be
  unaligned for the dtype (``arr.flags.aligned`` False: the wire format has
  no padding): NumPy handles that transparently; ``arr.copy()`` gives an
  aligned, writable array.
  From any other buffer (``bytearray``, ``memoryview``, a ring view of
  ``read_view()``) the array is a **copy**, so it never aliases memory that
  may be reused.  Treat decoded arrays as read-only (views of bytes are;
  a message with a ``str`` field decoded from a memoryview is decoded from
  one bytes copy of it, so its arrays are read-only views of that copy):
  ``arr.copy()`` gives a writable array.
- ``"list"``: a ``list`` of Python ``bool``/``int``/``float``.

NumPy is imported only when a ``"numpy"`` schema with an array field is
built, or when a NumPy array is being encoded (then it is already imported).
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from array import array
from collections.abc import Callable
from typing import Any, Literal

from .types import Scalar

__all__ = [
    "ARRAY_MODES",
    "ArraysMode",
    "make_packer",
    "make_unpacker",
    "numpy_available",
    "resolve_mode",
]

ArraysMode = Literal["numpy", "list"]
ARRAY_MODES: tuple[str, ...] = ("numpy", "list")

_LITTLE = sys.byteorder == "little"
# Byte-order / alignment prefixes of a buffer format meaning "little-endian
# and standard sizes" on this host (1-D buffers: alignment does not matter).
_PREFIXES = "@=<" if _LITTLE else "<"
_NOT_ARRAYS = (str, dict, set, frozenset)

_numpy_found: bool | None = None


def numpy_available() -> bool:
    """True if NumPy can be imported (looked up once, without importing it)."""
    global _numpy_found
    if _numpy_found is None:
        _numpy_found = "numpy" in sys.modules or importlib.util.find_spec("numpy") is not None
    return _numpy_found


def resolve_mode(mode: str | None) -> str:
    """The decode mode to use: ``mode``, or when None "numpy" if NumPy is
    installed (array fields decode to NumPy arrays, the form ML services
    use) and "list" otherwise.  ``arrays="list"`` keeps Python lists.
    """
    if mode is None:
        return "numpy" if numpy_available() else "list"
    if mode not in ARRAY_MODES:
        raise ValueError(f"arrays must be 'numpy' or 'list', not {mode!r}")
    if mode == "numpy" and not numpy_available():
        raise ImportError("arrays='numpy' needs NumPy, which is not installed (use arrays='list')")
    return mode


def _formats(s: Scalar) -> frozenset[str]:
    """Buffer format characters (no prefix) whose values are exactly those of ``s``."""
    if s.kind == "bool":
        return frozenset("?")
    if s.kind == "float":
        return frozenset(s.code)
    chars = "bhilqn" if s.min < 0 else "BHILQN"
    return frozenset(c for c in chars if struct.calcsize(c) == s.size)


def _np_dtype_str(s: Scalar) -> str:
    if s.kind == "bool":
        return "|b1"
    kind = "f" if s.kind == "float" else ("i" if s.min < 0 else "u")
    return f"<{kind}{s.size}"


def make_packer(s: Scalar, bad: type[Exception]) -> Callable[[Any], Any]:
    """The encoder of an array of ``s``: value -> bytes-like (the elements' wire bytes).

    Raises ``bad`` (or a struct/Type/Value/OverflowError) when the value
    cannot be encoded as it is; the generated encoder then asks
    check_message for an error naming the field.  The result may be a
    contiguous memoryview of the caller's buffer: the encoder concatenates
    it into the payload at once (that concatenation is the one copy).
    """
    formats = _formats(s)
    size = s.size
    code = s.code
    pack = struct.pack
    is_bool = s.kind == "bool"
    dtype_str = _np_dtype_str(s)

    def from_sequence(a: Any) -> bytes:
        if isinstance(a, _NOT_ARRAYS):
            raise bad  # unordered or text: check_message says which field
        if is_bool:
            for x in a:
                if x is not True and x is not False:
                    raise bad
            return bytes(a)
        return pack(f"<{len(a)}{code}", *a)

    def from_buffer(a: Any, mv: memoryview) -> Any:
        fmt = mv.format.lstrip(_PREFIXES)
        if mv.ndim == 1 and mv.itemsize == size and fmt in formats:
            if is_bool:
                data = mv.tobytes()
                if data.translate(None, b"\x00\x01"):
                    raise bad  # a bool buffer holding other bytes
                return data
            if a.__class__ is bytes:
                return a
            return mv if mv.c_contiguous else mv.tobytes()
        np = sys.modules.get("numpy")
        if np is not None and isinstance(a, np.ndarray):
            return _convert_ndarray(np, a)
        if mv.ndim != 1:
            raise bad
        return from_sequence(a)

    def _convert_ndarray(np: Any, a: Any) -> Any:
        if a.ndim != 1:
            raise bad
        if not a.size:
            return b""  # no value to change, whatever the dtype
        kind = a.dtype.kind
        if kind == "O":
            return from_sequence(a.tolist())
        target = np.dtype(dtype_str)
        if is_bool:
            raise bad  # only bool arrays (handled above) fill [bool]
        if s.kind == "int":
            if kind in "iu":
                if not np.can_cast(a.dtype, target):
                    if int(a.min()) < s.min or int(a.max()) > s.max:
                        raise bad
            elif kind != "b":
                raise bad  # floats are never truncated to ints
            return a.astype(target).data
        # float target
        if kind in "biu":
            return a.astype(target).data
        if kind != "f":
            raise bad
        with np.errstate(over="ignore"):
            out = a.astype(target)
        if a.dtype.itemsize > size:
            if bool((np.isinf(out) & np.isfinite(a)).any()):
                raise bad  # a finite value too large for f32: never rounded to inf
        return out.data

    def pack_array(a: Any) -> Any:
        if a.__class__ is list:
            if is_bool:
                return from_sequence(a)
            return pack(f"<{len(a)}{code}", *a)
        if a.__class__ is tuple:
            return from_sequence(a)
        try:
            mv = memoryview(a)
        except TypeError:
            return from_sequence(a)
        return from_buffer(a, mv)

    return pack_array


def _array_typecode(s: Scalar) -> str | None:
    """An array-module typecode with the width of ``s`` (None if none)."""
    if s.kind == "float":
        return s.code
    candidates = "bhilq" if s.min < 0 else "BHILQ"
    for tc in candidates:
        if array(tc).itemsize == s.size:
            return tc
    return None  # pragma: no cover - every CPython platform has them all


def make_unpacker(s: Scalar, mode: str) -> Callable[[Any, int, int], Any]:
    """Decoder of ``count`` elements of ``s`` at ``start`` of ``buf`` (bounds already checked).

    ``[bool]`` elements must already be checked to be 0 or 1.
    """
    size = s.size
    if mode == "numpy":
        import numpy as np

        dtype = np.dtype(_np_dtype_str(s))
        if not _LITTLE:  # pragma: no cover - big-endian hosts only
            native = dtype.newbyteorder("=")

            def unpack_swapped(buf: Any, start: int, count: int) -> Any:
                return np.frombuffer(buf, dtype, count, start).astype(native)

            return unpack_swapped
        frombuffer = np.frombuffer

        def unpack_numpy(buf: Any, start: int, count: int) -> Any:
            if buf.__class__ is bytes:
                # Immutable: the array may view it (read-only) and keep it alive.
                return frombuffer(buf, dtype, count, start)
            # Mutable or borrowed memory (a ring slot): own a copy.
            return frombuffer(buf, dtype, count, start).copy()

        return unpack_numpy
    if s.kind == "bool":

        def unpack_bools(buf: Any, start: int, count: int) -> list[bool]:
            return list(map(bool, bytes(buf[start : start + count])))

        return unpack_bools
    tc = _array_typecode(s)
    if tc is not None:
        swap = not _LITTLE

        def unpack_array(buf: Any, start: int, count: int) -> list[Any]:
            a = array(tc)
            a.frombytes(buf[start : start + count * size])
            if swap:  # pragma: no cover - big-endian hosts only
                a.byteswap()
            return a.tolist()

        return unpack_array
    code = s.code  # pragma: no cover

    def unpack_struct(buf: Any, start: int, count: int) -> list[Any]:  # pragma: no cover
        return list(struct.unpack_from(f"<{count}{code}", buf, start))

    return unpack_struct  # pragma: no cover
