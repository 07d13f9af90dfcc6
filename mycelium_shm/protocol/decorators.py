"""Declaring messages in Python code.

    from typing import Annotated
    from mycelium_shm.protocol import F64, I64, U32, U64, Str, FixedBytes, message

    @message(id=1)
    class MarketTick:
        symbol: Str
        seq: U64
        ts_ns: I64
        bid: F64
        features: list[F32]                     # the array type [f32]
        venue: Annotated[bytes, FixedBytes(4)]  # bytes[4]
        inner: Point                            # a nested @message class

    schema = Schema.from_classes(MarketTick, Point)

Each type alias is ``Annotated[<python type>, TypeSpec(...)]``, so type
checkers see plain ``int``/``float``/``str``/``bytes``/``bool``.  The
decorator replaces the class by a :class:`~.classes.Message` subclass with
``__slots__``, the generated ``__init__``/``__repr__``/``__eq__`` and the
class's own methods; fields have no defaults.  Field types are resolved by
:meth:`Schema.from_classes`, so annotations may name classes defined later.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from ..errors import SchemaError
from .classes import Message, make_message_class
from .model import Field, MessageDef
from .types import FieldType, parse_type

__all__ = [
    "F32",
    "F64",
    "I8",
    "I16",
    "I32",
    "I64",
    "U8",
    "U16",
    "U32",
    "U64",
    "Bool",
    "Bytes",
    "FixedBytes",
    "Str",
    "TypeSpec",
    "message",
    "message_def_of",
]


@dataclass(frozen=True)
class TypeSpec:
    """Marks an annotation with the schema type it stands for."""

    type: str
    """A type string, as in the TOML schema (``"u64"``, ``"[f32]"``...)."""


def FixedBytes(n: int) -> TypeSpec:
    """The marker of ``bytes[n]``: ``Annotated[bytes, FixedBytes(16)]``."""
    return TypeSpec(f"bytes[{n}]")


Bool = Annotated[bool, TypeSpec("bool")]
U8 = Annotated[int, TypeSpec("u8")]
U16 = Annotated[int, TypeSpec("u16")]
U32 = Annotated[int, TypeSpec("u32")]
U64 = Annotated[int, TypeSpec("u64")]
I8 = Annotated[int, TypeSpec("i8")]
I16 = Annotated[int, TypeSpec("i16")]
I32 = Annotated[int, TypeSpec("i32")]
I64 = Annotated[int, TypeSpec("i64")]
F32 = Annotated[float, TypeSpec("f32")]
F64 = Annotated[float, TypeSpec("f64")]
Str = Annotated[str, TypeSpec("str")]
Bytes = Annotated[bytes, TypeSpec("bytes")]

_T = TypeVar("_T")
_F = TypeVar("_F")

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python < 3.11

    def dataclass_transform(**_: Any) -> Callable[[_F], _F]:
        """No-op stand-in: only type checkers read the real one."""
        return lambda f: f


_ID_ATTR = "__message_id__"
_DOC_ATTR = "__message_doc__"
_SKIP = {"__dict__", "__weakref__", "__slots__", "__doc__", "__module__", "__qualname__"}


@dataclass_transform()
def message(*, id: int, doc: str | None = None) -> Callable[[type[_T]], type[_T]]:
    """Class decorator: declare a message with type id ``id``.

    ``doc`` defaults to the class docstring.
    """

    def decorate(cls: type[_T]) -> type[_T]:
        if cls.__bases__ != (object,):
            raise SchemaError(f"message {cls.__name__!r}: a message class cannot have bases")
        # The class's own annotations, in source order (never resolved here,
        # so they may name classes defined later).
        names = tuple(vars(cls).get("__annotations__", {}))
        for n in names:
            if n in cls.__dict__:
                raise SchemaError(
                    f"message {cls.__name__!r}, field {n!r}: fields cannot have defaults"
                )
        extra = {k: v for k, v in cls.__dict__.items() if k not in _SKIP}
        extra[_ID_ATTR] = id
        text = cls.__doc__ if doc is None else doc
        extra[_DOC_ATTR] = text or ""
        new = make_message_class(cls.__name__, names, text or "", cls.__module__, extra)
        new.__qualname__ = cls.__qualname__
        return typing.cast("type[_T]", new)

    return decorate


def _type_of(hint: Any, where: str) -> FieldType:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        specs = [x for x in hint.__metadata__ if isinstance(x, TypeSpec)]
        if len(specs) != 1:
            raise SchemaError(f"{where}: Annotated[...] needs exactly one TypeSpec")
        try:
            return parse_type(specs[0].type)
        except ValueError as e:
            raise SchemaError(f"{where}: {e}") from None
    if origin is list:
        (arg,) = typing.get_args(hint)
        elem = _type_of(arg, where)
        if elem.kind != "scalar":
            raise SchemaError(f"{where}: array elements must be a scalar type")
        return parse_type(f"[{elem.canonical}]")
    if isinstance(hint, type) and issubclass(hint, Message) and hasattr(hint, _ID_ATTR):
        return parse_type(hint.__name__)
    raise SchemaError(
        f"{where}: cannot map annotation {hint!r} to a schema type "
        "(use U64, Str, list[F64], Annotated[bytes, FixedBytes(n)], a @message class...)"
    )


def message_def_of(cls: type, localns: dict[str, Any] | None = None) -> MessageDef:
    """The (unchecked) MessageDef of a @message class."""
    if not hasattr(cls, _ID_ATTR):
        raise SchemaError(f"{cls.__name__!r} is not a @message class")
    try:
        hints = typing.get_type_hints(cls, localns=localns, include_extras=True)
    except NameError as e:
        raise SchemaError(f"message {cls.__name__!r}: unresolved annotation: {e}") from None
    fields = []
    for name in cls.__message_fields__:  # type: ignore[attr-defined]
        fields.append(
            Field(name, _type_of(hints[name], f"message {cls.__name__!r}, field {name!r}"))
        )
    return MessageDef(cls.__name__, getattr(cls, _ID_ATTR), tuple(fields), getattr(cls, _DOC_ATTR))
