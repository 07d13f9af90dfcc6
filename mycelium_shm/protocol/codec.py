"""Specialised encode/decode functions, generated per message at load time.

For each message this module writes the Python source of one encoder and one
decoder and compiles it (as dataclasses and attrs do).  Nested messages are
flattened into their parent, and every run of consecutive fixed-width items
(scalars, ``bytes[N]``, and the u32 length prefix of the variable-width item
that ends the run) becomes one precompiled ``struct.Struct``, so a message
costs one ``pack``/``unpack_from`` per run and no per-field dispatch.
Decoders build messages with ``object.__new__`` and store the fields into
the slots (a run's tuple unpacked straight into them), skipping the Python
``__init__``.

Encoders check only what ``struct`` would let through (bool is True/False,
``bytes[N]`` has N bytes, a nested value has the right class); on any
failure they call :func:`~.validate.check_message` for an error naming the
field.  Decoders check every length before reading and raise
:class:`~mycelium_shm.errors.PayloadError`; the values they return never
alias a mutable or borrowed input buffer (the one exception: with
``arrays="numpy"``, arrays decoded from a ``bytes`` payload are read-only
views of that immutable bytes object; see :mod:`.arrays`).  Array fields
encode from lists and sequences element-wise, and from NumPy arrays and
other buffers with one copy (:mod:`.arrays`).

Set ``MYCELIUM_SHOW_CODEC=1`` to print the generated source.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import PayloadError
from .arrays import make_packer, make_unpacker
from .model import MessageDef, Model
from .validate import check_message

__all__ = ["Decoder", "Encoder", "compile_codecs", "generated_source"]

Encoder = Callable[[Any], tuple[int, bytes]]
Decoder = Callable[[Any], Any]


class _Bad(Exception):
    """Internal: a fast-path check failed; check_message says which field."""


def _as_bytes(v: Any) -> bytes:
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise _Bad


class _Names:
    """Global constants of the generated module, by generated name."""

    def __init__(self) -> None:
        self.glob: dict[str, Any] = {}
        self._n = 0

    def add(self, prefix: str, value: Any) -> str:
        self._n += 1
        name = f"_{prefix}{self._n}"
        self.glob[name] = value
        return name

    def local(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"


class _EncodeGen:
    def __init__(self, model: Model, cls_names: Mapping[str, str], names: _Names) -> None:
        self.model = model
        self.cls_names = cls_names
        self.names = names
        self.lines: list[str] = []
        self.pieces: list[str] = []
        self.codes: list[str] = []
        self.args: list[str] = []

    def flush(self) -> None:
        if self.codes:
            s = struct.Struct("<" + "".join(self.codes))
            pack = self.names.add("pack", s.pack)
            self.pieces.append(f"{pack}({', '.join(self.args)})")
        self.codes, self.args = [], []

    def walk(self, m: MessageDef, obj: str) -> None:
        emit = self.lines.append
        for f in m.fields:
            expr = f"{obj}.{f.name}"
            t = f.type
            if t.kind == "scalar":
                assert t.scalar is not None
                if t.scalar.kind == "bool":
                    v = self.names.local("v")
                    emit(f"{v} = {expr}")
                    emit(f"if {v} is not True and {v} is not False: raise _Bad")
                    expr = v
                self.codes.append(t.scalar.code)
                self.args.append(expr)
            elif t.kind == "fixed_bytes":
                v = self.names.local("v")
                emit(f"{v} = {expr}")
                emit(f"if {v}.__class__ is not bytes: {v} = _as_bytes({v})")
                emit(f"if len({v}) != {t.length}: raise _Bad")
                self.codes.append(f"{t.length}s")
                self.args.append(v)
            elif t.kind in ("str", "bytes", "array"):
                v = self.names.local("v")
                if t.kind == "str":
                    emit(f"{v} = _str_encode({expr})")
                    piece = v
                elif t.kind == "bytes":
                    emit(f"{v} = {expr}")
                    emit(f"if {v}.__class__ is not bytes: {v} = _as_bytes({v})")
                    piece = v
                else:
                    assert t.scalar is not None
                    packer = self.names.add("packarr", make_packer(t.scalar, _Bad))
                    emit(f"{v} = {expr}")
                    piece = f"{packer}({v})"
                self.codes.append("I")
                self.args.append(f"len({v})")
                self.flush()
                self.pieces.append(piece)
            else:
                sub = self.model.nested(f)
                v = self.names.local("n")
                emit(f"{v} = {expr}")
                emit(f"if {v}.__class__ is not {self.cls_names[sub.name]}: raise _Bad")
                self.walk(sub, v)

    def source(self, m: MessageDef, fname: str, diagnose: str) -> str:
        """An encoder returning ``(type_id, payload)``."""
        self.walk(m, "m")
        self.flush()
        if not self.pieces:
            ret = 'b""'
        elif len(self.pieces) <= 3:
            ret = " + ".join(self.pieces)
        else:
            ret = 'b"".join((' + ", ".join(self.pieces) + "))"
        body = "".join(f"        {line}\n" for line in self.lines)
        return (
            f"def {fname}(m):\n"
            f"    try:\n{body}"
            f"        return {m.type_id}, {ret}\n"
            f"    except _ENCODE_ERRORS as e:\n"
            f"        {diagnose}(m, e)\n"
            f"        raise\n"
        )


class _Ctor:
    """A message a decoder builds, once every run is flushed.

    ``args`` holds one entry per field: a local name, ``*rN`` for a run
    tuple that fills this and the next fields (those hold ``_SKIP``), or a
    nested ``_Ctor``.  :meth:`build` emits ``obj = _new(Cls)`` and stores
    the fields straight into the slots: about half the cost of calling the
    class, whose ``__init__`` is Python code.
    """

    def __init__(self, cls_name: str, fields: tuple[str, ...], args: list[Any]) -> None:
        self.cls_name = cls_name
        self.fields = fields
        self.args = args

    def build(self, emit: Callable[[str], None], names: _Names) -> str:
        """Emit the statements building this message; return its local name."""
        obj = names.local("m")
        emit(f"{obj} = _new({self.cls_name})")
        i = 0
        while i < len(self.args):
            a = self.args[i]
            if isinstance(a, _Ctor):
                emit(f"{obj}.{self.fields[i]} = {a.build(emit, names)}")
                i += 1
            elif a.startswith("*"):
                j = i + 1
                while j < len(self.args) and self.args[j] is _SKIP:
                    j += 1
                targets = ", ".join(f"{obj}.{f}" for f in self.fields[i:j])
                emit(f"{targets}, = {a[1:]}")
                i = j
            else:
                emit(f"{obj}.{self.fields[i]} = {a}")
                i += 1
        return obj


_SKIP = object()


class _DecodeGen:
    def __init__(
        self,
        model: Model,
        cls_names: Mapping[str, str],
        names: _Names,
        fixed: bool,
        arrays: str = "list",
    ) -> None:
        self.model = model
        self.arrays = arrays
        self.cls_names = cls_names
        self.names = names
        self.fixed = fixed
        self.lines: list[str] = []
        self.pos_var: str | None = None
        self.pos_const = 0
        # pending run: (struct code, target, label, is_bool, owner args, index)
        self.run: list[tuple[str, str, str, bool, list[Any] | None, int]] = []
        self.short_labels: list[str] = []
        self.has_str = False

    def pos(self, extra: int = 0) -> str:
        k = self.pos_const + extra
        if self.pos_var is None:
            return str(k)
        return f"{self.pos_var} + {k}" if k else self.pos_var

    def flush(self) -> None:
        if not self.run:
            return
        emit = self.lines.append
        s = struct.Struct("<" + "".join(r[0] for r in self.run))
        unpack = self.names.add("unpack", s.unpack_from)
        first, last = self.run[0][2], self.run[-1][2]
        label = first if first == last else f"{first}..{last}"
        # No length check here: unpack_from raises struct.error on a short
        # buffer, which source() turns into PayloadError('short').
        self.short_labels.append(label)
        owner, start = self.run[0][4], self.run[0][5]
        splat = owner is not None and all(
            r[4] is owner and r[5] == start + i for i, r in enumerate(self.run)
        )
        if splat:
            # The run is a contiguous slice of one constructor's arguments:
            # pass the unpacked tuple with *, no locals.
            assert owner is not None
            tup = self.names.local("r")
            emit(f"{tup} = {unpack}(buf, {self.pos()})")
            owner[start] = f"*{tup}"
            for i in range(1, len(self.run)):
                owner[start + i] = _SKIP
        else:
            targets = ", ".join(r[1] for r in self.run)
            emit(f"{targets}, = {unpack}(buf, {self.pos()})")
        off = 0
        for code, _, lab, is_bool, _, _ in self.run:
            if is_bool:
                emit(
                    f"if buf[{self.pos(off)}] > 1: raise _E('bool', "
                    f"f'{lab}: byte {{buf[{self.pos(off)}]}} is not a bool (0 or 1)')"
                )
            off += struct.calcsize("<" + code)
        self.pos_const += s.size
        self.run = []

    def walk(self, m: MessageDef, path: str) -> _Ctor:
        """Emit the reads of ``m``'s fields; return the constructor call."""
        emit = self.lines.append
        values: list[Any] = []
        for f in m.fields:
            t = f.type
            label = f"{path}.{f.name}"
            if t.kind in ("scalar", "fixed_bytes"):
                v = self.names.local("f")
                if t.kind == "scalar":
                    assert t.scalar is not None
                    code, is_bool = t.scalar.code, t.scalar.kind == "bool"
                else:
                    code, is_bool = f"{t.length}s", False
                self.run.append((code, v, label, is_bool, values, len(values)))
                values.append(v)
            elif t.kind in ("str", "bytes", "array"):
                count = self.names.local("c")
                self.run.append(("I", count, label, False, None, 0))
                self.flush()
                if self.pos_var is None:
                    start = str(self.pos_const)
                else:
                    start = self.names.local("o")
                    emit(f"{start} = {self.pos()}")
                end = self.names.local("o")
                v = self.names.local("f")
                width = 1
                if t.kind == "array":
                    assert t.scalar is not None
                    width = t.scalar.size
                emit(f"{end} = {start} + {count}" + (f" * {width}" if width != 1 else ""))
                emit(
                    f"if {end} > n: raise _E('length', "
                    f"f'{label}: length {{{count}}} runs to byte {{{end}}}, "
                    f"past the end of the payload ({{n}} bytes)')"
                )
                if t.kind == "str":
                    self.has_str = True
                    emit("try:")
                    emit(f"    {v} = buf[{start}:{end}].decode()")
                    emit("except UnicodeDecodeError as e:")
                    emit(f"    raise _E('utf8', f'{label}: invalid UTF-8: {{e.reason}}') from None")
                elif t.kind == "bytes":
                    emit(f"{v} = bytes(buf[{start}:{end}])")
                else:
                    assert t.scalar is not None
                    if t.scalar.kind == "bool":
                        emit(f"{v} = bytes(buf[{start}:{end}])")
                        emit(
                            f"if {v}.translate(None, b'\\x00\\x01'): raise _E('bool', "
                            f"f'{label}: an element is not a bool (0 or 1)')"
                        )
                    if t.scalar.kind == "bool" and self.arrays == "list":
                        emit(f"{v} = list(map(bool, {v}))")
                    else:
                        unp = self.names.add("unparr", make_unpacker(t.scalar, self.arrays))
                        emit(f"{v} = {unp}(buf, {start}, {count})")
                values.append(v)
                self.pos_var, self.pos_const = end, 0
            else:
                values.append(self.walk(self.model.nested(f), label))
        return _Ctor(self.cls_names[m.name], m.field_names, values)

    def source(self, m: MessageDef, fname: str) -> str:
        lines = self.lines
        if self.fixed:
            assert m.fixed_size is not None
            size = m.fixed_size
            lines.append("n = len(buf)")
            lines.append(
                f"if n != {size}: raise _E('short' if n < {size} else 'trailing', "
                f"f'{m.name}: a payload of {size} bytes expected, got {{n}}')"
            )
        else:
            lines.append("n = len(buf)")
        ctor = self.walk(m, m.name)
        self.flush()
        if not self.fixed:
            lines.append(
                f"if n != {self.pos()}: raise _E('trailing', "
                f"f'{m.name}: {{n - ({self.pos()})}} bytes after the last field')"
            )
        lines.append(f"return {ctor.build(lines.append, self.names)}")
        if self.fixed:
            body = "".join(f"    {line}\n" for line in lines)
            return f"def {fname}(buf):\n{body}"
        head, rest = lines[:1], lines[1:]
        labels = ", ".join(self.short_labels)
        # str fields decode with the slice's .decode() (bytes and bytearray
        # have it); a memoryview has none, so it is copied to bytes once and
        # decoded again.  The try costs nothing when nothing is raised.
        retry = (
            "    except AttributeError:\n"
            "        if buf.__class__ is memoryview:\n"
            f"            return {fname}(bytes(buf))\n"
            "        raise\n"
            if self.has_str
            else ""
        )
        return (
            f"def {fname}(buf):\n"
            + "".join(f"    {line}\n" for line in head)
            + "    try:\n"
            + "".join(f"        {line}\n" for line in rest)
            + "    except _struct_error:\n"
            + f"        raise _E('short', f'{m.name}: the payload ({{n}} bytes) ends inside "
            + f"one of the fixed-width parts ({labels})') from None\n"
            + retry
        )


def _module_source(
    model: Model, classes: Mapping[str, type], arrays: str = "list"
) -> tuple[str, dict[str, Any], dict[str, tuple[str, str]]]:
    names = _Names()
    glob = names.glob
    glob.update(
        {
            "_Bad": _Bad,
            "_E": PayloadError,
            "_as_bytes": _as_bytes,
            "_str_encode": str.encode,
            "_struct_error": struct.error,
            "_new": object.__new__,
            "_ENCODE_ERRORS": (
                _Bad,
                struct.error,
                OverflowError,
                TypeError,
                ValueError,
                AttributeError,
            ),
        }
    )
    cls_names = {name: names.add(f"C_{name}_", cls) for name, cls in classes.items()}
    chunks: list[str] = []
    fn_names: dict[str, tuple[str, str]] = {}
    for m in model.messages:

        def diagnose(obj: Any, err: BaseException, m: MessageDef = m) -> None:
            check_message(model, classes, m, obj)
            raise ValueError(f"{m.name}: cannot encode: {err!r}") from err

        diag = names.add(f"diagnose_{m.name}_", diagnose)
        enc = f"encode_{m.name}"
        dec = f"decode_{m.name}"
        chunks.append(_EncodeGen(model, cls_names, names).source(m, enc, diag))
        fixed = m.fixed_size is not None
        chunks.append(_DecodeGen(model, cls_names, names, fixed, arrays).source(m, dec))
        fn_names[m.name] = (enc, dec)
    return "\n\n".join(chunks), glob, fn_names


def generated_source(model: Model, classes: Mapping[str, type], arrays: str = "list") -> str:
    """The Python source the codecs of ``model`` are compiled from."""
    return _module_source(model, classes, arrays)[0]


def compile_codecs(
    model: Model, classes: Mapping[str, type], arrays: str = "list"
) -> dict[str, tuple[Encoder, Decoder]]:
    """An (encoder, decoder) pair per message name.

    ``encoder(msg) -> (type_id, payload)``; ``decoder(payload) -> msg``.
    ``classes`` maps each message name to its class (decoders build them,
    encoders check nested values against them).  ``arrays`` is the decode
    mode of array fields, ``"list"`` or ``"numpy"`` (see :mod:`.arrays`).
    """
    src, glob, fn_names = _module_source(model, classes, arrays)
    if os.environ.get("MYCELIUM_SHOW_CODEC"):
        print(src, file=sys.stderr)
    exec(compile(src, "<mycelium codecs>", "exec"), glob)
    return {name: (glob[enc], glob[dec]) for name, (enc, dec) in fn_names.items()}
