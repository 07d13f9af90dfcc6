"""OCaml code generator: one module per message, a ``message`` variant, codecs.

``python -m mycelium_shm.codegen --lang ocaml schemas/trading.toml -o
bindings/ocaml/generated/`` writes ``trading.ml`` and ``trading.mli`` (the
module takes the schema file's name):

- one submodule per message (``Trading.MarketTick``) with a record type
  ``t``, ``type_id``, ``name``, ``encode``, ``decode`` (a ``result``),
  ``decode_exn``, ``write`` (append to a ``Buffer.t``), the field list
  ``fields`` and the conversions ``to_value`` / ``of_value`` to the
  schema-independent ``Mycelium_codec.value``;
- the variant ``message`` over all messages, and the whole schema as a
  ``Mycelium_codec.SCHEMA`` (``encode``, ``decode ~type_id``, ...);
- ``schema_digest``: the 32 bytes of the Python model's digest.

The generated code calls the hand-written runtime
``bindings/ocaml/codec/mycelium_codec.ml``, which checks every length before
reading and reports the error kinds of docs/FORMAT.md (Part 2).  Nested messages
are flattened into their parent, so every error label is a literal such as
``"Envelope.segment.a"`` / ``"x"``, the path the Python codec reports, and
decoding evaluates fields strictly in wire order.  Submodules come in
dependency order (a nested message before its users), otherwise in file
order.  The output is deterministic: the same model gives the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import SchemaError
from ..protocol import Schema
from ..protocol.model import MessageDef, Model
from ..protocol.types import FieldType, Scalar

__all__ = ["generate", "module_file_stem", "render"]

#: The runtime module the generated code calls.
RUNTIME = "Mycelium_codec"

# scalar name -> (OCaml type, runtime reader/writer suffix, value constructor, getter)
_SCALARS = {
    "bool": ("bool", "bool", "Bool", "get_bool"),
    "u8": ("int", "u8", "Int", "get_int"),
    "u16": ("int", "u16", "Int", "get_int"),
    "u32": ("int", "u32", "Int", "get_int"),
    "u64": ("int64", "u64", "Int64", "get_int64"),
    "i8": ("int", "i8", "Int", "get_int"),
    "i16": ("int", "i16", "Int", "get_int"),
    "i32": ("int", "i32", "Int", "get_int"),
    "i64": ("int64", "i64", "Int64", "get_int64"),
    "f32": ("float", "f32", "Float", "get_float"),
    "f64": ("float", "f64", "Float", "get_float"),
}


def module_file_stem(source: Path) -> str:
    """The file name (without extension) of the generated module: the schema
    file's stem, lowercased, with anything not ``[a-z0-9_]`` turned into
    ``_`` and a leading ``m_`` if it would not start with a letter."""
    stem = re.sub(r"[^a-z0-9_]", "_", source.stem.lower())
    if not stem or not stem[0].isalpha():
        stem = "m_" + stem
    return stem


def _str_lit(s: str) -> str:
    """An OCaml string literal holding the UTF-8 bytes of ``s``."""
    out = []
    for byte in s.encode("utf-8"):
        ch = chr(byte)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def _bytes_lit(data: bytes) -> str:
    return '"' + "".join(f"\\x{b:02x}" for b in data) + '"'


def _doc_text(text: str) -> str:
    """``text`` made safe inside an OCaml doc comment.

    The OCaml lexer reads string and quoted-string literals inside comments,
    so double quotes become single quotes and ``{|`` / ``{id|`` are split; comment
    delimiters are split; odoc markup characters are escaped.
    """
    t = " ".join(text.split())
    t = t.replace('"', "'").replace("(*", "( *").replace("*)", "* )")
    t = re.sub(r"\{(?=[%A-Za-z0-9_.']*\s*\|)", "{ ", t)  # {| and {id| open quoted strings
    t = re.sub(r"([{}\[\]@])", r"\\\1", t)
    return t


def _doc(text: str, indent: str) -> list[str]:
    t = _doc_text(text)
    return [f"{indent}(** {t} *)"] if t else []


def _scalar(s: Scalar) -> tuple[str, str, str, str]:
    return _SCALARS[s.name]


def _ocaml_type(t: FieldType) -> str:
    if t.kind == "scalar":
        assert t.scalar is not None
        return _scalar(t.scalar)[0]
    if t.kind in ("str", "bytes", "fixed_bytes"):
        return "string"
    if t.kind == "array":
        assert t.scalar is not None
        return f"{_scalar(t.scalar)[0]} array"
    assert t.message is not None
    return f"{t.message}.t"


def _wire_comment(t: FieldType) -> str:
    """The wire type as an odoc code span (type strings have balanced brackets)."""
    return f"[{t.canonical}]" if t.kind != "message" else f"message [{t.message}]"


def _ftype(t: FieldType) -> str:
    if t.kind == "scalar":
        assert t.scalar is not None
        return f"C_.T_{t.scalar.name}"
    if t.kind == "str":
        return "C_.T_str"
    if t.kind == "bytes":
        return "C_.T_bytes"
    if t.kind == "fixed_bytes":
        return f"(C_.T_fixed {t.length})"
    if t.kind == "array":
        assert t.scalar is not None
        return f"(C_.T_array C_.T_{t.scalar.name})"
    return f"(C_.T_message {_str_lit(t.message or '')})"


def _reader(t: FieldType) -> str:
    """The runtime call reading one non-message item (applied to c path field)."""
    if t.kind == "scalar":
        assert t.scalar is not None
        return f"C_.{_scalar(t.scalar)[1]}"
    if t.kind == "str":
        return "C_.str"
    if t.kind == "bytes":
        return "C_.bytes"
    if t.kind == "fixed_bytes":
        return f"C_.fixed {t.length}"
    assert t.kind == "array" and t.scalar is not None
    return f"C_.array {t.scalar.size} C_.{_scalar(t.scalar)[1]}"


def _writer(t: FieldType) -> str:
    """The runtime call writing one non-message item (applied to b path field v)."""
    if t.kind == "scalar":
        assert t.scalar is not None
        return f"C_.add_{_scalar(t.scalar)[1]}"
    if t.kind == "str":
        return "C_.add_str"
    if t.kind == "bytes":
        return "C_.add_bytes"
    if t.kind == "fixed_bytes":
        return f"C_.add_fixed {t.length}"
    assert t.kind == "array" and t.scalar is not None
    return f"C_.add_array C_.add_{_scalar(t.scalar)[1]}"


def _to_value(t: FieldType, expr: str) -> str:
    if t.kind == "scalar":
        assert t.scalar is not None
        return f"C_.{_scalar(t.scalar)[2]} {expr}"
    if t.kind in ("str", "bytes", "fixed_bytes"):
        return f"C_.String {expr}"
    if t.kind == "array":
        assert t.scalar is not None
        return f"C_.Array (Stdlib.Array.map (fun x -> C_.{_scalar(t.scalar)[2]} x) {expr})"
    return f"{t.message}.to_value {expr}"


def _of_value(t: FieldType, expr: str, label: str) -> str:
    lab = _str_lit(label)
    if t.kind == "scalar":
        assert t.scalar is not None
        return f"C_.{_scalar(t.scalar)[3]} {lab} ({expr})"
    if t.kind in ("str", "bytes", "fixed_bytes"):
        return f"C_.get_string {lab} ({expr})"
    if t.kind == "array":
        assert t.scalar is not None
        return f"C_.get_array {lab} (C_.{_scalar(t.scalar)[3]} {lab}) ({expr})"
    return f"{t.message}.of_value ({expr})"


def _dependency_order(model: Model) -> list[MessageDef]:
    """Messages with every nested message before its users, else file order."""
    done: dict[str, MessageDef] = {}

    def visit(m: MessageDef) -> None:
        if m.name in done:
            return
        for f in m.fields:
            if f.type.kind == "message":
                visit(model.nested(f))
        done[m.name] = m

    for m in model.messages:
        visit(m)
    return list(done.values())


class _Vars:
    def __init__(self) -> None:
        self.n = 0

    def fresh(self) -> str:
        self.n += 1
        return f"v{self.n}"


def _decode_lines(
    model: Model, m: MessageDef, path: str, vars: _Vars, own: bool
) -> tuple[list[str], str]:
    """``let``-bindings reading ``m`` (flattened) and the record expression."""
    lines: list[str] = []
    parts: list[str] = []
    for i, f in enumerate(m.fields):
        t = f.type
        if t.kind == "message":
            sub_lines, expr = _decode_lines(
                model, model.nested(f), f"{path}.{f.name}", vars, own=False
            )
            lines += sub_lines
            v = vars.fresh()
            lines.append(f"let {v} = {expr} in")
        else:
            v = vars.fresh()
            lines.append(f"let {v} = {_reader(t)} c {_str_lit(path)} {_str_lit(f.name)} in")
        qual = "" if own or i > 0 else f"{m.name}."
        parts.append(f"{qual}{f.name} = {v}")
    if not parts:
        return lines, "()"
    return lines, "{ " + "; ".join(parts) + " }"


def _encode_lines(model: Model, m: MessageDef, expr: str, path: str, own: bool) -> list[str]:
    lines: list[str] = []
    for f in m.fields:
        t = f.type
        access = f"{expr}.{f.name}" if own else f"{expr}.{m.name}.{f.name}"
        if t.kind == "message":
            lines += _encode_lines(model, model.nested(f), access, f"{path}.{f.name}", own=False)
        else:
            lines.append(f"{_writer(t)} b {_str_lit(path)} {_str_lit(f.name)} {access};")
    return lines


def _message_ml(model: Model, m: MessageDef) -> Iterator[str]:
    yield f"module {m.name} = struct"
    if m.fields:
        yield "  type t = {"
        for f in m.fields:
            yield f"    {f.name} : {_ocaml_type(f.type)};"
        yield "  }"
    else:
        yield "  type t = unit"
    yield ""
    yield f"  let type_id = {m.type_id}"
    yield f"  let name = {_str_lit(m.name)}"
    yield ""
    yield "  let fields = ["
    for f in m.fields:
        yield f"    ({_str_lit(f.name)}, {_ftype(f.type)});"
    yield "  ]"
    yield ""
    enc = _encode_lines(model, m, "m", m.name, own=True)
    if enc:
        yield "  let write b m ="
        for i, line in enumerate(enc):
            yield "    " + (line if i < len(enc) - 1 else line.rstrip(";"))
    else:
        yield "  let write (_ : Stdlib.Buffer.t) () = ()"
    yield ""
    size = m.fixed_size if m.fixed_size is not None else 64
    yield "  let encode m ="
    yield f"    let b = Stdlib.Buffer.create {max(size, 1)} in"
    yield "    write b m;"
    yield "    Stdlib.Buffer.contents b"
    yield ""
    dec, rec = _decode_lines(model, m, m.name, _Vars(), own=True)
    yield "  let read c ="
    if not dec:
        yield "    ignore (c : C_.cursor)"
    for line in dec:
        yield "    " + line
    if dec:
        yield f"    {rec}"
    yield ""
    yield "  let decode payload = C_.decode read payload"
    yield ""
    yield "  let decode_exn payload ="
    yield "    match decode payload with Stdlib.Ok m -> m | Stdlib.Error e -> raise (C_.Decode_error e)"
    yield ""
    if m.fields:
        yield "  let to_value m ="
        yield "    C_.Record"
        yield "      ["
        for f in m.fields:
            yield f"        ({_str_lit(f.name)}, {_to_value(f.type, 'm.' + f.name)});"
        yield "      ]"
        yield ""
        yield "  let of_value v ="
        yield "    {"
        for f in m.fields:
            get = f"C_.field name v {_str_lit(f.name)}"
            yield f"      {f.name} = {_of_value(f.type, get, m.name + '.' + f.name)};"
        yield "    }"
    else:
        yield "  let to_value () = C_.Record []"
        yield ""
        yield "  let of_value v ="
        yield "    match v with"
        yield "    | C_.Record _ -> ()"
        yield '    | _ -> invalid_arg (name ^ ": not a record")'
    yield "end"


def _message_mli(m: MessageDef) -> Iterator[str]:
    yield f"module {m.name} : sig"
    yield from _doc(f"{m.doc} Type id {m.type_id}." if m.doc else f"Type id {m.type_id}.", "  ")
    yield ""
    if m.fields:
        yield "  type t = {"
        for f in m.fields:
            doc = f"{_wire_comment(f.type)} {_doc_text(f.doc)}".strip()
            yield f"    {f.name} : {_ocaml_type(f.type)};  (** {doc} *)"
        yield "  }"
    else:
        yield "  type t = unit"
    yield "  (** The message's fields, in wire order. *)"
    yield ""
    yield "  val type_id : int"
    yield f"  (** [{m.type_id}]. *)"
    yield ""
    yield "  val name : string"
    yield f"  (** [{_str_lit(m.name)}]. *)"
    yield ""
    yield f"  val fields : (string * {RUNTIME}.ftype) list"
    yield "  (** The field names and wire types, in wire order. *)"
    yield ""
    yield "  val encode : t -> string"
    yield "  (** [encode m] is the payload of [m]; [Invalid_argument] if a value does"
    yield "      not fit its wire type. *)"
    yield ""
    yield "  val write : Stdlib.Buffer.t -> t -> unit"
    yield "  (** [write b m] appends the payload of [m] to [b]. *)"
    yield ""
    yield f"  val decode : string -> (t, {RUNTIME}.error) result"
    yield "  (** [decode payload] checks every length and value and refuses trailing"
    yield "      bytes. *)"
    yield ""
    yield "  val decode_exn : string -> t"
    yield f"  (** [decode_exn] is {{!decode}}, raising [{RUNTIME}.Decode_error]. *)"
    yield ""
    yield f"  val to_value : t -> {RUNTIME}.value"
    yield "  (** [to_value m] is [m] as a [Record] of its fields. *)"
    yield ""
    yield f"  val of_value : {RUNTIME}.value -> t"
    yield "  (** [of_value v] is the message with the fields of the [Record] [v];"
    yield "      [Invalid_argument] if one is missing or has the wrong shape. *)"
    yield "end"


def render(model: Model, digest: bytes, source_label: str) -> tuple[str, str]:
    """The ``.ml`` and ``.mli`` text for ``model``."""
    header = [
        "(* Generated by `python -m mycelium_shm.codegen --lang ocaml` from",
        f"   {_doc_text(source_label)}.  Do not edit: regenerate instead",
        "   (tests/test_ocaml_codegen.py fails when this file is stale). *)",
        "",
    ]
    for m in model.messages:
        if m.name == "Stdlib":
            raise SchemaError(
                f"message {m.name!r}: the OCaml generator cannot name a module Stdlib"
            )
    ordered = _dependency_order(model)
    ml = [*header, f"module C_ = {RUNTIME}", ""]
    ml.append(f"let schema_digest = {_bytes_lit(digest)}")
    ml.append(f"let schema_digest_hex = {_str_lit(digest.hex())}")
    ml.append("")
    for m in ordered:
        ml += list(_message_ml(model, m))
        ml.append("")
    ml.append("type message =")
    for m in model.messages:
        ml.append(f"  | {m.name} of {m.name}.t")
    ml.append("")
    ml.append("let messages = [")
    for m in model.messages:
        ml.append(f"  ({_str_lit(m.name)}, {m.type_id});")
    ml.append("]")
    ml.append("")

    def by_message(fn: str, body: str) -> None:
        ml.append(f"let {fn} = function")
        for m in model.messages:
            x = "x" if "x" in body else "_"
            ml.append(f"  | {m.name} {x} -> {body.format(M=m.name)}")
        ml.append("")

    by_message("type_id", "{M}.type_id")
    by_message("name", "{M}.name")
    by_message("encode", "({M}.type_id, {M}.encode x)")
    by_message("to_value", "{M}.to_value x")
    ml.append("let decode ~type_id payload =")
    ml.append("  match type_id with")
    for m in model.messages:
        ml.append(f"  | {m.type_id} -> (")
        ml.append(f"      match {m.name}.decode payload with")
        ml.append(f"      | Stdlib.Ok x -> Stdlib.Ok ({m.name} x)")
        ml.append("      | Stdlib.Error e -> Stdlib.Error e)")
    ml.append("  | _ -> C_.unknown_type type_id")
    ml.append("")
    ml.append("let fields = function")
    for m in model.messages:
        ml.append(f"  | {_str_lit(m.name)} -> {m.name}.fields")
    ml.append("  | _ -> raise Not_found")
    ml.append("")
    ml.append("let of_value name v =")
    ml.append("  match name with")
    for m in model.messages:
        ml.append(f"  | {_str_lit(m.name)} -> {m.name} ({m.name}.of_value v)")
    ml.append('  | _ -> invalid_arg ("no message " ^ name ^ " in the schema")')

    mli = [*header]
    mli.append(f"(** The messages of {_doc_text(source_label)}, with their codecs")
    mli.append("    (docs/FORMAT.md (Part 2)).  See [Mycelium_codec] for the OCaml")
    mli.append("    representation of each wire type. *)")
    mli.append("")
    mli.append("(** Schema digest (SHA-256, as the Python model computes it):")
    mli.append(f"    [{digest.hex()}].")
    mli.append("    [schema_digest] holds its 32 bytes; pass it to")
    mli.append("    [Writer.create ~schema_digest] and friends. *)")
    mli.append("")
    for m in ordered:
        mli += list(_message_mli(m))
        mli.append("")
    mli.append("(** A message of any type of the schema. *)")
    mli.append("type message =")
    for m in model.messages:
        mli.append(f"  | {m.name} of {m.name}.t")
    mli.append("")
    mli.append(f"include {RUNTIME}.SCHEMA with type message := message")
    mli.append("(** Encoding, decoding and reflection over all messages. *)")
    return "\n".join(ml) + "\n", "\n".join(mli) + "\n"


def _source_label(source: Path) -> str:
    """The schema path as written into the header: relative to the working
    directory when it lies below it, so output does not depend on where the
    checkout is."""
    try:
        return source.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return source.name


def generate(schema: Schema, out_dir: Path, source: Path) -> list[Path]:
    """Write ``<stem>.ml`` and ``<stem>.mli`` for ``schema`` into ``out_dir``
    (``<stem>`` from :func:`module_file_stem`); return their paths."""
    stem = module_file_stem(source)
    ml, mli = render(schema.model, schema.digest, _source_label(source))
    written = []
    for name, text in ((f"{stem}.ml", ml), (f"{stem}.mli", mli)):
        path = out_dir / name
        path.write_bytes(text.encode("utf-8"))  # "\n" line ends on every OS
        written.append(path)
    return written
