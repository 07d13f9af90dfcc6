"""The Schema: message classes, their codecs and the digest, in one object.

schema = Schema.load("schemas/trading.toml")
tick = schema.MarketTick(symbol="EURUSD", seq=1, ts_ns=0, bid=1.1,
                         ask=1.2, bid_size=5, ask_size=7)
type_id, payload = schema.encode(tick)       # (1, b"...")
assert schema.decode(type_id, payload) == tick

Array fields (``[f32]``...) decode to lists, or to NumPy arrays with
``arrays="numpy"`` on any constructor
(see :mod:`.arrays` and docs/FORMAT.md (Part 2), "Arrays and NumPy").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PayloadError
from .arrays import ArraysMode, resolve_mode
from .classes import Message, make_message_class
from .codec import Decoder, Encoder, compile_codecs, generated_source
from .decorators import message_def_of
from .loader import model_from_toml
from .model import MessageDef, Model

__all__ = ["Schema"]


class Schema:
    """A checked set of messages with a generated class and codec for each.

    Build one with :meth:`load`, :meth:`from_toml_str` or
    :meth:`from_classes`.  ``schema.<MessageName>`` is the message class.

    ``arrays`` says what array fields decode to: ``"numpy"`` (1-D
    ``numpy.ndarray``), ``"list"``, or None (the default): ``"list"``.
    Encoding takes lists and NumPy arrays alike, whatever the mode.
    """

    def __init__(
        self,
        model: Model,
        classes: dict[str, type[Message]] | None = None,
        *,
        arrays: ArraysMode | None = None,
    ) -> None:
        """Wrap ``model``; generate classes for messages missing from ``classes``."""
        self.model = model
        #: What array fields decode to: "numpy" or "list".  (NumPy itself is
        #: imported only if an array field is decoded to it.)
        self.arrays: str = resolve_mode(arrays)
        given = classes or {}
        built: dict[str, type[Message]] = {}
        for m in model.messages:
            cls = given.get(m.name)
            if cls is None:
                cls = make_message_class(m.name, m.field_names, m.doc)
            built[m.name] = cls
        codecs = compile_codecs(model, built, self.arrays)
        self.__dict__.update(built)
        self._classes = built
        self._by_name: dict[str, type[Message]] = dict(built)
        self._by_id: dict[int, type[Message]] = {m.type_id: built[m.name] for m in model.messages}
        self._ids: dict[type, int] = {built[m.name]: m.type_id for m in model.messages}
        self._encoders: dict[type, Encoder] = {
            built[m.name]: codecs[m.name][0] for m in model.messages
        }
        self._decoders: dict[int, Decoder] = {m.type_id: codecs[m.name][1] for m in model.messages}
        # The hot paths are closures stored on the instance: a call skips the
        # bound-method step and finds the codec with one dict lookup.
        self.encode = _make_encode(self._encoders)  # type: ignore[method-assign,assignment]
        self.decode = _make_decode(self._decoders)  # type: ignore[method-assign,assignment]

    # -- construction ----------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, *, arrays: ArraysMode | None = None) -> Schema:
        """Load a TOML schema file (``path``: a str or os.PathLike)."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
        p = Path(path)
        return cls(model_from_toml(p.read_text(encoding="utf-8"), str(p)), arrays=arrays)

    @classmethod
    def from_toml_str(cls, text: str, *, arrays: ArraysMode | None = None) -> Schema:
        """Load a schema from TOML text."""
        return cls(model_from_toml(text), arrays=arrays)

    @classmethod
    def from_classes(cls, *classes: type, arrays: ArraysMode | None = None) -> Schema:
        """A schema of ``@message`` classes; decoded messages are instances of them.

        Every nested message class must be passed too.
        """
        localns = {c.__name__: c for c in classes}
        defs = [message_def_of(c, localns) for c in classes]
        model = Model(defs)
        return cls(model, {c.__name__: c for c in classes}, arrays=arrays)

    def with_arrays(self, arrays: ArraysMode) -> Schema:
        """This schema, same classes and digest, with array fields decoding to ``arrays``."""
        if arrays == self.arrays:
            return self
        return Schema(self.model, dict(self._classes), arrays=arrays)

    # -- introspection ---------------------------------------------------

    @property
    def messages(self) -> tuple[MessageDef, ...]:
        """The message definitions, in declared order (file order, or argument order)."""
        return self.model.messages

    @property
    def classes(self) -> tuple[type[Message], ...]:
        """The message classes, in the order of :attr:`messages`."""
        return tuple(self._classes[m.name] for m in self.model.messages)

    @property
    def digest(self) -> bytes:
        """SHA-256 of the canonical form (docs/FORMAT.md (Part 2), "Digest"), 32 bytes."""
        return self.model.digest

    @property
    def digest_hex(self) -> str:
        """:attr:`digest` as 64 lowercase hex digits."""
        return self.model.digest.hex()

    def message_type(self, name_or_id: str | int) -> type[Message]:
        """The class of a message given its name or type id; KeyError if none."""
        try:
            if isinstance(name_or_id, str):
                return self._by_name[name_or_id]
            return self._by_id[name_or_id]
        except KeyError:
            raise KeyError(f"no message {name_or_id!r} in this schema") from None

    def message_def(self, name_or_id: str | int | type) -> MessageDef:
        """The MessageDef of a message given its name, type id or class."""
        if isinstance(name_or_id, type):
            name_or_id = self.type_id_of(name_or_id)
        try:
            if isinstance(name_or_id, str):
                return self.model.by_name[name_or_id]
            return self.model.by_id[name_or_id]
        except KeyError:
            raise KeyError(f"no message {name_or_id!r} in this schema") from None

    def type_id_of(self, cls: type) -> int:
        """The type id of a message class of this schema; KeyError if none."""
        try:
            return self._ids[cls]
        except KeyError:
            raise KeyError(f"{cls!r} is not a message class of this schema") from None

    if TYPE_CHECKING:
        # At run time the message classes are plain instance attributes
        # (set in __init__); a real __getattr__ would slow every method call.
        def __getattr__(self, name: str) -> type[Message]: ...

    def __repr__(self) -> str:
        names = ", ".join(m.name for m in self.model.messages)
        return f"<Schema {self.digest_hex[:12]} [{names}]>"

    def codec_source(self) -> str:
        """The generated Python source of the codecs (for debugging)."""
        return generated_source(self.model, self._classes, self.arrays)

    # -- codec -------------------------------------------------------------

    def encode(self, msg: Any) -> tuple[int, bytes]:
        """``(type_id, payload)`` of a message.

        TypeError if ``msg`` is not a message of this schema or a field has
        the wrong type; ValueError if a value is out of range.
        """
        # __init__ shadows this method with a faster closure of the same logic.
        enc = self._encoders.get(msg.__class__)
        if enc is None:
            raise TypeError(f"{type(msg).__name__!r} is not a message class of this schema")
        return enc(msg)

    def decode(self, type_id: int, payload: bytes | bytearray | memoryview) -> Any:
        """The message a payload holds; PayloadError (a DecodeError) if it is malformed.

        A memoryview must be of bytes (format "B", the default).  The result
        never references a ``bytearray`` or ``memoryview`` payload, so a
        shared buffer (a ``read_view()`` ring slot) may be reused at once;
        with ``arrays="numpy"``, arrays decoded from a ``bytes`` payload are
        read-only zero-copy views of that (immutable) bytes object.
        """
        # __init__ shadows this method with a faster closure of the same logic.
        _check_type_id_type(type_id)
        dec = self._decoders.get(type_id)
        if dec is None:
            raise PayloadError("unknown_type", f"type id {type_id!r} is not in the schema")
        try:
            return dec(payload)
        except TypeError:
            _check_payload(payload)
            raise


def _check_type_id_type(type_id: object) -> None:
    """A type id of the wrong type is a TypeError naming it (an int that the
    schema does not know is a PayloadError, "unknown_type")."""
    if not isinstance(type_id, int) or isinstance(type_id, bool):
        raise TypeError(f"type_id must be an int, not {type(type_id).__name__}")


def _make_encode(encoders: dict[type, Encoder]) -> Callable[[Any], tuple[int, bytes]]:
    def encode(msg: Any) -> tuple[int, bytes]:
        try:
            enc = encoders[msg.__class__]
        except KeyError:
            raise TypeError(
                f"{type(msg).__name__!r} is not a message class of this schema"
            ) from None
        return enc(msg)

    encode.__doc__ = Schema.encode.__doc__
    return encode


def _check_payload(payload: Any) -> None:
    """TypeError naming ``payload`` unless it is a bytes-like object (the
    decoders' own TypeError for, say, a str would not name it)."""
    if isinstance(payload, str):
        raise TypeError(
            "payload must be a bytes-like object (bytes, bytearray, memoryview), not str"
        ) from None
    try:
        memoryview(payload)
    except TypeError:
        raise TypeError(
            "payload must be a bytes-like object (bytes, bytearray, memoryview), "
            f"not {type(payload).__name__}"
        ) from None


def _make_decode(decoders: dict[int, Decoder]) -> Callable[[int, Any], Any]:
    def decode(type_id: int, payload: Any) -> Any:
        if type_id.__class__ is not int:  # one comparison on the common path
            _check_type_id_type(type_id)
        try:
            dec = decoders[type_id]
        except (KeyError, TypeError):
            _check_type_id_type(type_id)  # only on this slow path
            raise PayloadError(
                "unknown_type", f"type id {type_id!r} is not in the schema"
            ) from None
        try:
            return dec(payload)
        except TypeError:  # no cost unless raised
            _check_payload(payload)
            raise

    decode.__doc__ = Schema.decode.__doc__
    return decode
