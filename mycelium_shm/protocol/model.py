"""The parsed schema: messages, fields, their checks, and the digest.

This is the intermediate model every consumer reads: the Python codec, and
the code generators of the other languages (``mycelium_shm.codegen``).  It
holds no Python classes and no codec, only checked facts:

- :class:`Field`: ``name``, ``type`` (a :class:`~.types.FieldType`), ``doc``.
- :class:`MessageDef`: ``name``, ``type_id``, ``fields``, ``doc``, and the
  derived ``fixed_size`` (payload width when every field is fixed-width,
  nested messages included; None otherwise).
- :class:`Model`: ``messages`` in declared order, lookups by name and id,
  ``canonical_text()``, ``digest``.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import SchemaError
from .types import MESSAGE_NAME_RE, FieldType

__all__ = ["CANONICAL_HEADER", "RESERVED_FIELD_NAMES", "Field", "MessageDef", "Model"]

#: First line of the canonical form hashed by the digest.
CANONICAL_HEADER = "mycelium-schema 1"

_FIELD_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")

_RUST_KEYWORDS = """as async await break const continue crate dyn else enum extern false fn
for if impl in let loop match mod move mut pub ref return self static struct super trait
true type unsafe use where while abstract become box do final macro override priv try
typeof unsized virtual yield""".split()
_OCAML_KEYWORDS = """and as assert asr begin class constraint do done downto else end
exception external false for fun function functor if in include inherit initializer land
lazy let lor lsl lsr lxor match method mod module mutable new nonrec object of open or
private rec sig struct then to true try type val virtual when while with""".split()

#: Field names refused because they are keywords in Python, Rust or OCaml.
RESERVED_FIELD_NAMES: frozenset[str] = frozenset(
    [*keyword.kwlist, *keyword.softkwlist, *_RUST_KEYWORDS, *_OCAML_KEYWORDS]
)
_RESERVED_MESSAGE_NAMES = frozenset({"Self", "Message", "Schema"})


@dataclass(frozen=True)
class Field:
    """One field of a message."""

    name: str
    type: FieldType
    doc: str = ""


@dataclass(frozen=True)
class MessageDef:
    """One message: its name, type id, ordered fields and derived facts."""

    name: str
    type_id: int
    fields: tuple[Field, ...]
    doc: str = ""
    fixed_size: int | None = field(default=None, compare=False)
    """Payload width if it never varies (set by :class:`Model`)."""

    @property
    def field_names(self) -> tuple[str, ...]:
        """The field names in declared order."""
        return tuple(f.name for f in self.fields)


def _check_message_shape(m: MessageDef) -> None:
    where = f"message {m.name!r}"
    if not isinstance(m.name, str) or not MESSAGE_NAME_RE.fullmatch(m.name):
        raise SchemaError(
            f"{where}: a message name is CamelCase ASCII: [A-Z][A-Za-z0-9]*, at most 64 chars"
        )
    if m.name in _RESERVED_MESSAGE_NAMES:
        raise SchemaError(f"{where}: the name {m.name!r} is reserved")
    if isinstance(m.type_id, bool) or not isinstance(m.type_id, int):
        raise SchemaError(f"{where}: id must be an integer, got {m.type_id!r}")
    if not 1 <= m.type_id <= 0xFFFF:
        raise SchemaError(f"{where}: id must be in 1..65535 (0 is reserved), got {m.type_id}")
    seen: set[str] = set()
    for f in m.fields:
        fw = f"{where}, field {f.name!r}"
        if not isinstance(f.name, str) or not _FIELD_NAME_RE.fullmatch(f.name):
            raise SchemaError(
                f"{fw}: a field name is snake_case ASCII: [a-z][a-z0-9_]*, at most 64 chars"
            )
        if f.name in RESERVED_FIELD_NAMES:
            raise SchemaError(f"{fw}: {f.name!r} is a keyword in Python, Rust or OCaml")
        if f.name in seen:
            raise SchemaError(f"{fw}: duplicate field name")
        seen.add(f.name)


class Model:
    """A checked set of messages.

    Checks: names and ids are well formed and unique, every nested message
    exists, and no message contains itself (directly or through others).
    Raises :class:`~mycelium_shm.errors.SchemaError` naming the culprit.
    """

    __slots__ = ("_digest", "by_id", "by_name", "messages")

    messages: tuple[MessageDef, ...]
    by_name: Mapping[str, MessageDef]
    by_id: Mapping[int, MessageDef]

    def __init__(self, messages: Iterable[MessageDef]) -> None:
        raw = list(messages)
        by_name: dict[str, MessageDef] = {}
        by_id: dict[int, MessageDef] = {}
        for m in raw:
            _check_message_shape(m)
            if m.name in by_name:
                raise SchemaError(f"message {m.name!r}: duplicate message name")
            if m.type_id in by_id:
                raise SchemaError(
                    f"message {m.name!r}: id {m.type_id} is already used by "
                    f"{by_id[m.type_id].name!r}"
                )
            by_name[m.name] = m
            by_id[m.type_id] = m
        for m in raw:
            for f in m.fields:
                if f.type.kind == "message" and f.type.message not in by_name:
                    raise SchemaError(
                        f"message {m.name!r}, field {f.name!r}: "
                        f"unknown type {f.type.canonical!r} (no such message)"
                    )
        sizes: dict[str, int | None] = {}
        for m in raw:
            self._size_of(m.name, by_name, sizes, ())
        done = [
            MessageDef(m.name, m.type_id, m.fields, m.doc, fixed_size=sizes[m.name]) for m in raw
        ]
        self.messages = tuple(done)
        self.by_name = {m.name: m for m in done}
        self.by_id = {m.type_id: m for m in done}
        self._digest = hashlib.sha256(self.canonical_text().encode("utf-8")).digest()

    @staticmethod
    def _size_of(
        name: str,
        by_name: Mapping[str, MessageDef],
        sizes: dict[str, int | None],
        stack: tuple[str, ...],
    ) -> int | None:
        if name in sizes:
            return sizes[name]
        if name in stack:
            cycle = " -> ".join([*stack[stack.index(name) :], name])
            raise SchemaError(f"message {name!r} contains itself: {cycle}")
        total: int | None = 0
        for f in by_name[name].fields:
            if f.type.kind == "message":
                assert f.type.message is not None
                w = Model._size_of(f.type.message, by_name, sizes, (*stack, name))
            else:
                w = f.type.fixed_size
            total = None if (w is None or total is None) else total + w
        sizes[name] = total
        return total

    def canonical_text(self) -> str:
        """The exact text the digest hashes (UTF-8 encoded).

        One line per item, each ending in ``\\n``: the header
        ``mycelium-schema 1``; then, messages sorted by type id,
        ``message <id> <Name>`` followed by ``field <name> <type>`` for each
        field in declared order, ``<type>`` being the canonical type string.
        """
        lines = [CANONICAL_HEADER]
        for m in sorted(self.messages, key=lambda m: m.type_id):
            lines.append(f"message {m.type_id} {m.name}")
            lines.extend(f"field {f.name} {f.type.canonical}" for f in m.fields)
        return "".join(line + "\n" for line in lines)

    @property
    def digest(self) -> bytes:
        """SHA-256 of :meth:`canonical_text`, 32 bytes."""
        return self._digest

    def nested(self, f: Field) -> MessageDef:
        """The message a ``message``-kind field holds."""
        assert f.type.message is not None
        return self.by_name[f.type.message]
