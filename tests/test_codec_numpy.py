"""Array fields and NumPy: encoding from arrays and buffers, decoding to arrays or lists."""

from __future__ import annotations

import json
import struct
import sys
from array import array
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mycelium_shm.protocol import SCALARS, Schema
from mycelium_shm.protocol import arrays as arrays_mod
from mycelium_shm.protocol.jsonvalues import from_json, to_json

np = pytest.importorskip("numpy")
hnp = pytest.importorskip("hypothesis.extra.numpy")

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
TRADING = Schema.load(ROOT / "schemas" / "trading.toml", arrays="numpy")
VSCHEMA = Schema.load(VECTORS / "schema.toml", arrays="numpy")
VALID = json.loads((VECTORS / "valid.json").read_text(encoding="utf-8"))

DTYPES = {
    "bool": np.dtype(bool),
    "u8": np.dtype("<u1"),
    "u16": np.dtype("<u2"),
    "u32": np.dtype("<u4"),
    "u64": np.dtype("<u8"),
    "i8": np.dtype("<i1"),
    "i16": np.dtype("<i2"),
    "i32": np.dtype("<i4"),
    "i64": np.dtype("<i8"),
    "f32": np.dtype("<f4"),
    "f64": np.dtype("<f8"),
}


def one_array(scalar: str, mode: str | None = "numpy") -> Schema:
    """A schema of M(tag: u8, a: [scalar]) (the u8 puts the array at an odd offset)."""
    return Schema.from_toml_str(
        f'[[message]]\nname = "M"\nid = 7\nfields = [{{ name = "tag", type = "u8" }},'
        f' {{ name = "a", type = "[{scalar}]" }}]\n',
        arrays=mode,  # type: ignore[arg-type]
    )


def aligned_array(scalar: str, mode: str | None = "numpy") -> Schema:
    """A schema of A(a: [scalar]): the array starts at byte 4 of the payload."""
    return Schema.from_toml_str(
        f'[[message]]\nname = "A"\nid = 8\nfields = [{{ name = "a", type = "[{scalar}]" }}]\n',
        arrays=mode,  # type: ignore[arg-type]
    )


def wire(scalar: str, values: Any) -> bytes:
    """The expected payload of M(tag=1, a=values): the raw little-endian elements."""
    raw = np.asarray(values).astype(DTYPES[scalar]).tobytes()
    return bytes([1]) + struct.pack("<I", len(raw) // DTYPES[scalar].itemsize) + raw


# -- modes -----------------------------------------------------------------------


def test_default_mode_is_numpy_when_installed_and_list_on_request() -> None:
    """Without arrays=, array fields decode to NumPy arrays (NumPy is installed
    here); arrays="list" gives lists."""
    default = Schema.load(ROOT / "schemas" / "trading.toml")
    assert default.arrays == "numpy"
    out = default.decode(*default.encode(default.Signal(1, "S", 2, -1, 0.5, np.ones(2))))
    assert isinstance(out.features, np.ndarray) and out.features.tolist() == [1.0, 1.0]
    lists = Schema.load(ROOT / "schemas" / "trading.toml", arrays="list")
    assert lists.decode(
        *lists.encode(lists.Signal(1, "S", 2, -1, 0.5, np.ones(2)))
    ).features == [1.0, 1.0]
    assert TRADING.arrays == "numpy"
    sig = TRADING.Signal(1, "S", 2, -1, 0.5, [1.0, 2.0])
    out = TRADING.decode(*TRADING.encode(sig))
    assert isinstance(out.features, np.ndarray) and out.features.dtype == np.float32
    assert out.features.tolist() == [1.0, 2.0]


def test_list_mode_and_with_arrays() -> None:
    """arrays="list" decodes lists; with_arrays switches mode keeping classes and digest."""
    lists = TRADING.with_arrays("list")
    assert lists.arrays == "list" and lists.digest == TRADING.digest
    assert lists.Signal is TRADING.Signal
    assert TRADING.with_arrays("numpy") is TRADING
    sig = TRADING.Signal(1, "S", 2, -1, 0.5, np.array([1.5, -2.0], dtype=np.float32))
    out = lists.decode(*TRADING.encode(sig))
    assert out.features == [1.5, -2.0] and type(out.features) is list
    assert Schema.load(ROOT / "schemas" / "trading.toml", arrays="list").arrays == "list"
    b = one_array("bool", "list")
    assert b.decode(*b.encode(b.M(1, np.array([True, False])))).a == [True, False]


def test_bad_mode_and_missing_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown mode is a ValueError; "numpy" without NumPy an ImportError; the
    default (lists) needs no NumPy."""
    with pytest.raises(ValueError, match="'numpy' or 'list'"):
        one_array("f32", "tuple")
    monkeypatch.setattr(arrays_mod, "_numpy_found", False)
    with pytest.raises(ImportError, match="needs NumPy"):
        one_array("f32", "numpy")
    s = one_array("f32", None)
    assert s.arrays == "list"
    assert s.decode(*s.encode(s.M(1, [1.0]))).a == [1.0]


# -- decoding ----------------------------------------------------------------------


@pytest.mark.parametrize("scalar", list(SCALARS))
def test_decode_gives_the_dtype_of_each_scalar(scalar: str) -> None:
    """Every element type decodes to a 1-D array of its little-endian dtype."""
    s = one_array(scalar)
    vals = [True, False] if scalar == "bool" else [0, 1, 100]
    out = s.decode(*s.encode(s.M(1, vals)))
    assert out.a.dtype == DTYPES[scalar] and out.a.ndim == 1
    assert out.a.tolist() == vals


@pytest.mark.parametrize("scalar", list(SCALARS))
def test_decode_from_bytes_is_a_zero_copy_read_only_view(scalar: str) -> None:
    """From a bytes payload the array views that bytes object, aligned or not."""
    for s, type_id, start in ((aligned_array(scalar), 8, 4), (one_array(scalar), 7, 5)):
        vals = [True, False, True] if scalar == "bool" else [1, 2, 3]
        msg = s.A(vals) if type_id == 8 else s.M(1, vals)
        _, payload = s.encode(msg)
        out = s.decode(type_id, payload)
        assert out.a.base is payload and not out.a.flags.writeable
        addr = np.frombuffer(payload, np.uint8).ctypes.data
        assert out.a.__array_interface__["data"][0] == addr + start
        assert out.a.tolist() == vals


@pytest.mark.parametrize("make", [bytearray, lambda p: memoryview(bytearray(p))])
def test_decode_from_mutable_buffers_copies(make: Any) -> None:
    """From a bytearray or memoryview the array owns a copy: later writes don't show."""
    s = aligned_array("i32")
    _, payload = s.encode(s.A([1, 2, 3]))
    buf = make(payload)
    out = s.decode(8, buf)
    buf[4:8] = b"\xff\xff\xff\xff"
    assert out.a.tolist() == [1, 2, 3]
    out.a[0] = 9  # a writable copy


def test_empty_arrays() -> None:
    """Empty arrays encode to a zero count and decode to empty arrays of the dtype."""
    for scalar in SCALARS:
        s = one_array(scalar)
        for empty in ([], (), np.empty(0, DTYPES[scalar]), np.empty(0, np.float64)[::2]):
            type_id, payload = s.encode(s.M(1, empty))
            assert payload == b"\x01\x00\x00\x00\x00"
            out = s.decode(type_id, payload)
            assert out.a.shape == (0,) and out.a.dtype == DTYPES[scalar]


# -- encoding ----------------------------------------------------------------------


class NoIteration(np.ndarray):
    """An ndarray that fails if the encoder walks it element by element."""

    def __iter__(self) -> Any:
        raise AssertionError("iterated")

    def __getitem__(self, i: Any) -> Any:
        raise AssertionError("indexed")

    def tolist(self) -> Any:
        raise AssertionError("tolist")


@pytest.mark.parametrize("scalar", list(SCALARS))
def test_encode_ndarray_takes_the_buffer_whole(scalar: str) -> None:
    """An ndarray of the right dtype is copied as one buffer, never iterated."""
    s = one_array(scalar)
    base = np.arange(6) % 2 == 0 if scalar == "bool" else np.arange(6)
    typed = base.astype(DTYPES[scalar])
    assert s.encode(s.M(1, typed.view(NoIteration))) == (7, wire(scalar, base))
    # Non-contiguous: one gathering copy, still not iterated.
    strided = typed[::2].view(NoIteration)
    assert not strided.flags.c_contiguous
    assert s.encode(s.M(1, strided)) == (7, wire(scalar, base[::2]))


def test_encode_converts_dtype_and_byte_order_once() -> None:
    """Other dtypes and big-endian arrays are converted (values kept) and encoded."""
    s = one_array("f32")
    vals = [0.5, -1.0, float("inf"), 3.0]
    for a in (
        np.array(vals, dtype=">f4"),
        np.array(vals, dtype="<f8"),
        np.array(vals, dtype=">f8")[::1],
        np.array([1, 2, 3], dtype=np.int64),
        np.array([True, False]),
    ):
        assert s.encode(s.M(1, a)) == (7, wire("f32", a.astype(np.float64)))
    i = one_array("i32")
    assert i.encode(i.M(1, np.array([-5, 7], dtype=">i8"))) == (7, wire("i32", [-5, 7]))
    assert i.encode(i.M(1, np.array([1, 2], dtype=np.uint64))) == (7, wire("i32", [1, 2]))
    assert i.encode(i.M(1, np.array([True, False]))) == (7, wire("i32", [1, 0]))
    i64 = one_array("i64")
    assert i64.encode(i64.M(1, np.array([2**63 - 1], dtype=np.uint64)))[1][-8:] == (
        struct.pack("<q", 2**63 - 1)
    )
    o = one_array("u16")
    assert o.encode(o.M(1, np.array([1, 2], dtype=object))) == (7, wire("u16", [1, 2]))


@pytest.mark.parametrize(
    ("scalar", "value", "error", "needle"),
    [
        ("f32", np.array([1.0, 1e39]), ValueError, r"M\.a\[1\]: .* out of range for f32"),
        ("i32", np.array([0, 2**31], dtype=np.int64), ValueError, r"M\.a\[1\]: 2147483648 is out"),
        ("u8", np.array([-1], dtype=np.int8), ValueError, r"M\.a\[0\]: -1 is out of range for u8"),
        ("i64", np.array([2**63], dtype=np.uint64), ValueError, r"M\.a\[0\]: .* out of range"),
        ("i32", np.array([1.0]), TypeError, r"M\.a\[0\]: expected int, got float64"),
        ("u8", np.array([1.5], dtype=np.float32), TypeError, r"M\.a\[0\]: expected int"),
        ("bool", np.array([1, 0], dtype=np.uint8), TypeError, r"M\.a\[0\]: expected bool"),
        ("f64", np.zeros((2, 2)), TypeError, r"M\.a: expected a 1-D array of f64, got 2-D"),
        ("f64", np.array(["x"]), TypeError, r"M\.a\[0\]: expected float, got str_"),
    ],
)
def test_encode_never_changes_a_value(
    scalar: str, value: Any, error: type[Exception], needle: str
) -> None:
    """Conversions that would change a value fail, naming the element."""
    s = one_array(scalar)
    with pytest.raises(error, match=needle):
        s.encode(s.M(1, value))


def test_encode_other_buffers() -> None:
    """array.array, memoryview (strided too), bytes and bytearray encode as their bytes."""
    f64 = one_array("f64")
    vals = [1.0, 2.0, 3.0, 4.0]
    assert f64.encode(f64.M(1, array("d", vals))) == (7, wire("f64", vals))
    assert f64.encode(f64.M(1, memoryview(array("d", vals))[::2])) == (7, wire("f64", vals[::2]))
    f32 = one_array("f32")  # a buffer of another type: converted element by element
    assert f32.encode(f32.M(1, array("d", vals))) == (7, wire("f32", vals))
    u8 = one_array("u8")
    assert u8.encode(u8.M(1, b"\x00\xff")) == (7, wire("u8", [0, 255]))
    assert u8.encode(u8.M(1, bytearray(b"\x01"))) == (7, wire("u8", [1]))
    i8 = one_array("i8")  # bytes are u8 values: 255 does not fit i8
    with pytest.raises(ValueError, match=r"M\.a\[1\]: 255 is out of range for i8"):
        i8.encode(i8.M(1, b"\x00\xff"))
    i64 = one_array("i64")
    assert i64.encode(i64.M(1, array("q", [-1]))) == (7, wire("i64", [-1]))


def test_encode_bool_buffer_with_bad_bytes_is_refused() -> None:
    """A bool array whose bytes are not 0/1 (a reinterpreted view) is refused."""
    s = one_array("bool")
    bad = np.array([0, 2], dtype=np.uint8).view(bool)
    with pytest.raises((TypeError, ValueError)):
        s.encode(s.M(1, bad))


# -- equality, repr, JSON, vectors ------------------------------------------------------


def test_equality_and_repr_with_arrays() -> None:
    """Messages with ndarray fields compare element-wise with lists and arrays."""
    cls = TRADING.Signal
    lst = cls(1, "S", 2, -1, 0.5, [1.0, 2.0])
    arr = TRADING.decode(*TRADING.encode(lst))
    assert arr == lst and lst == arr and not (arr != lst)
    assert arr == TRADING.decode(*TRADING.encode(lst))
    assert arr != cls(1, "S", 2, -1, 0.5, [1.0, 3.0])
    assert arr != cls(1, "S", 2, -1, 0.5, [1.0])  # would broadcast: still unequal
    assert arr != cls(1, "S", 2, -1, 0.5, [1.0, 2.0, 2.0])
    assert arr != cls(1, "S", 2, -1, 0.5, "ab")
    assert cls(1, "S", 2, -1, 0.5, np.array([])) == cls(1, "S", 2, -1, 0.5, [])
    assert cls(1, "S", 2, -1, 0.5, np.array([7.0])) == cls(1, "S", 2, -1, 0.5, [7.0])
    nan = cls(1, "S", 2, -1, 0.5, np.array([float("nan"), 1.0]))
    assert nan != TRADING.decode(*TRADING.encode(nan))  # NaN is unequal, as in lists
    assert arr != cls(2, "S", 2, -1, 0.5, [1.0, 2.0])
    assert "features=array([1., 2.], dtype=float32)" in repr(arr)
    with pytest.raises(TypeError):
        hash(arr)


def test_to_json_of_numpy_fields() -> None:
    """to_json gives the same JSON for ndarray and list fields."""
    v = VSCHEMA.with_arrays("list")
    for case in VALID["cases"]:
        if case["message"] != "Arrays":
            continue
        msg = VSCHEMA.decode(case["type_id"], bytes.fromhex(case["hex"]))
        assert to_json(VSCHEMA, msg) == case["fields"]
        assert json.dumps(to_json(VSCHEMA, msg))
        assert to_json(v, v.decode(case["type_id"], bytes.fromhex(case["hex"]))) == case["fields"]


@pytest.mark.parametrize("mode", ["numpy", "list"])
def test_vectors_byte_for_byte_in_both_modes(mode: str) -> None:
    """Every valid vector decodes and re-encodes to its bytes, and encodes from NumPy arrays."""
    s = VSCHEMA.with_arrays(mode)  # type: ignore[arg-type]
    for case in VALID["cases"]:
        payload = bytes.fromhex(case["hex"])
        for buf in (payload, bytearray(payload), memoryview(payload)):
            out = s.decode(case["type_id"], buf)
            assert s.encode(out) == (case["type_id"], payload), case["name"]
            assert to_json(s, out) == case["fields"], case["name"]
        msg = from_json(s, case["message"], case["fields"])
        m = s.message_def(case["message"])
        for f in m.fields:
            if f.type.kind == "array":
                assert f.type.scalar is not None
                setattr(msg, f.name, np.array(getattr(msg, f.name), DTYPES[f.type.scalar.name]))
        assert s.encode(msg) == (case["type_id"], payload), case["name"]


# -- properties ---------------------------------------------------------------------


def arrays_of(scalar: str) -> st.SearchStrategy[Any]:
    """1-D arrays of a scalar's dtype (NaN and infinities included for floats),
    possibly empty, strided or byte-swapped."""
    dt = DTYPES[scalar]
    base = hnp.arrays(dt, st.integers(0, 40))

    def vary(a: Any, step: int, swap: bool) -> Any:
        a = a[::step]
        if swap and dt.itemsize > 1:
            a = a.astype(dt.newbyteorder(">"))
        return a

    return st.builds(vary, base, st.integers(1, 3), st.booleans())


@pytest.mark.parametrize("scalar", list(SCALARS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_numpy_arrays(scalar: str, data: st.DataObject) -> None:
    """decode(encode(a)) has exactly a's bits, from bytes, bytearray and memoryview;
    the wire bytes are those of the list path; list mode agrees."""
    a = data.draw(arrays_of(scalar))
    s = one_array(scalar)
    type_id, payload = s.encode(s.M(3, a))
    raw = a.astype(DTYPES[scalar]).tobytes()
    assert payload == bytes([3]) + struct.pack("<I", len(a)) + raw
    if scalar not in ("f32",):  # f32 sNaN bits are quieted by the list path's floats
        assert s.encode(s.M(3, a.tolist())) == (type_id, payload)
    for buf in (payload, bytearray(payload), memoryview(payload)):
        out = s.decode(type_id, buf)
        assert out.a.dtype == DTYPES[scalar] and out.a.tobytes() == raw
        assert s.encode(out) == (type_id, payload)
    lists = s.with_arrays("list").decode(type_id, payload)
    assert type(lists.a) is list and len(lists.a) == len(a)
    if DTYPES[scalar].kind != "f":
        assert lists.a == a.tolist()


@settings(max_examples=30, deadline=None)
@given(a=arrays_of("f64"))
def test_f64_into_f32_keeps_nan_inf_and_refuses_overflow(a: Any) -> None:
    """f64 arrays into [f32]: in range values and NaN/inf are rounded as struct would;
    a finite value beyond f32 is a ValueError."""
    s = one_array("f32")
    f32max = float(np.finfo(np.float32).max)
    with np.errstate(over="ignore"):
        narrowed = a.astype("<f4")
    overflow = np.isfinite(a) & np.isinf(narrowed)
    if overflow.any():
        with pytest.raises(ValueError, match="out of range for f32"):
            s.encode(s.M(1, a))
    else:
        _, payload = s.encode(s.M(1, a))
        assert payload[5:] == narrowed.tobytes()
        assert np.all(np.abs(a[np.isfinite(a)]) <= f32max * (1 + 2**-24))


def test_no_numpy_import_for_schemas_without_arrays() -> None:
    """A schema without array fields, in list mode, never needs NumPy (import is lazy)."""
    assert "numpy" in sys.modules  # imported by this test module; nothing more to check
    s = Schema.from_toml_str('[[message]]\nname = "P"\nid = 1\nfields = []\n', arrays="list")
    assert s.decode(*s.encode(s.P())) == s.P()
