"""What ShmWriter and ShmReader share: opening a channel, the cffi handle,
statistics, closing, and the context-manager protocol."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, ClassVar, Optional, Protocol

from ._native import check_bool, check_open, check_schema, encode_name, ffi, lib, raise_for

if sys.version_info >= (3, 11):
    from typing import Self
elif TYPE_CHECKING:
    from typing_extensions import Self
# else: annotations are strings (__future__), Self is only named in them.

if TYPE_CHECKING:
    # Type checkers: the message type defaults to Any (PEP 696), so a bare
    # ``ShmReader`` or ``SchemaLike`` means "messages of any type".
    from typing_extensions import TypeVar

    MessageT = TypeVar("MessageT", default=Any)
    MessageT_co = TypeVar("MessageT_co", covariant=True, default=Any)
else:  # at run time the default does not matter (typing_extensions not needed)
    from typing import TypeVar

    MessageT = TypeVar("MessageT")
    MessageT_co = TypeVar("MessageT_co", covariant=True)

__all__ = ["ChannelHandle", "MessageT", "SchemaLike", "cursor_dict", "stats_dict"]


class SchemaLike(Protocol[MessageT_co]):
    """What a channel needs of a schema (see :mod:`mycelium_shm.protocol`).

    Generic over the type of the messages ``decode`` returns, which
    ``ShmReader.recv`` returns: ``Schema`` decodes to ``Any`` (its message
    classes are made at run time); a schema typed ``SchemaLike[Tick]`` makes
    ``ShmReader(..., schema=s).recv()`` a ``Tick | None``."""

    @property
    def digest(self) -> bytes: ...

    def encode(self, message: Any) -> tuple[int, bytes]: ...

    def decode(self, type_id: int, payload: Any) -> MessageT_co: ...


def stats_dict(stats: Any) -> dict[str, int]:
    """A ``myc_stats`` struct as a plain dict."""
    return {name: int(getattr(stats, name)) for name, _ in ffi.typeof("myc_stats").fields}


_POLICY_NAMES = {lib.MYC_POLICY_TETHERED: "tethered", lib.MYC_POLICY_LOSSY: "lossy"}


def cursor_dict(info: Any) -> dict[str, Any]:
    """A ``myc_cursor_info`` struct as a plain dict (``policy`` by name)."""
    out: dict[str, Any] = {}
    for name, _ in ffi.typeof("myc_cursor_info").fields:
        value = getattr(info, name)
        if name == "name":
            out[name] = ffi.string(value).decode("utf-8", "replace")
        elif name == "policy":
            out[name] = _POLICY_NAMES.get(int(value), str(int(value)))
        elif name in ("durable", "tethered", "alive"):
            out[name] = bool(value)
        else:
            out[name] = int(value)
    return out


class ChannelHandle:
    """Mixin for one end of a channel.  Subclasses name their C functions
    (``_open_fn`` ...) and also derive from a fast-path type that provides
    ``_attach`` and ``_detach``."""

    # The attributes below are slots of ShmWriter/ShmReader; an empty
    # __slots__ seen by mypy would reject assigning them here.
    if not TYPE_CHECKING:
        __slots__ = ()
    _open_fn: ClassVar[Any]
    _close_fn: ClassVar[Any]
    _stats_fn: ClassVar[Any]
    _handle_type: ClassVar[str]

    _h: Any
    name: str
    schema: Optional[SchemaLike]
    capacity: int
    max_payload: int

    if TYPE_CHECKING:  # provided by the fast-path base class (_fastpath.pyi)

        def _attach(self, address: int) -> None: ...

        def _detach(self) -> None: ...

    def _open(
        self,
        name: str,
        create: bool,
        exist_ok: bool,
        capacity: int,
        max_payload: int,
        mode: int,
        schema: Optional[SchemaLike],
        trust_foreign: bool = False,
        extra: tuple[Any, ...] = (0, 0),
        flags_extra: int = 0,
    ) -> None:
        """Open through cffi (raising the mapped exception) and point the
        fast path at the handle.

        Attaching refuses (:class:`~mycelium_shm.errors.ForeignChannel`) a
        channel owned by another uid, or whose file mode is wider than
        ``mode``, unless ``trust_foreign`` (the threat model in
        docs/FORMAT.md).  ``extra``: the ``_open_fn`` arguments after the
        digest (``readers, untether_ms`` and, for a reader, ``cursor,
        policy``), already checked; ``flags_extra`` is ORed into the flags."""
        self._h = ffi.NULL
        # Every argument is checked (names the argument) before C sees it.
        raw_name = encode_name(name)
        create = check_bool(create, "create")
        exist_ok = check_bool(exist_ok, "exist_ok")
        trust_foreign = check_bool(trust_foreign, "trust_foreign")
        capacity, max_payload, mode = check_open(capacity, max_payload, mode, create)
        raw_digest = check_schema(schema)
        self.name = name
        self.schema = schema
        if not create:
            flags = lib.MYC_ATTACH
        else:
            flags = lib.MYC_CREATE_OR_ATTACH if exist_ok else lib.MYC_CREATE
        if trust_foreign:
            flags |= lib.MYC_TRUST_FOREIGN
        flags |= flags_extra
        digest = ffi.NULL if raw_digest is None else ffi.new("uint8_t[]", raw_digest)
        out = ffi.new(f"{self._handle_type} **")
        rc = self._open_fn(raw_name, flags, capacity, max_payload, mode, digest, *extra, out)
        if rc != lib.MYC_OK:
            raise_for(rc)
        self._h = ffi.gc(out[0], self._close_fn)
        self._attach(int(ffi.cast("uintptr_t", self._h)))
        stats = self.stats()
        self.capacity = stats["capacity"]
        self.max_payload = stats["max_payload"]

    def stats(self) -> dict[str, int]:
        """The channel's counters (frames and bytes written/read, full events...)."""
        out = ffi.new("myc_stats *")
        rc = self._stats_fn(self._h, out)
        if rc != lib.MYC_OK:
            raise_for(rc)
        return stats_dict(out)

    @property
    def closed(self) -> bool:
        return bool(self._h == ffi.NULL)

    def close(self) -> None:
        """Detach (the channel stays until :func:`unlink`).  Idempotent."""
        if self._h != ffi.NULL:
            self._detach()
            handle, self._h = self._h, ffi.NULL
            ffi.release(handle)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"capacity={self.capacity}"
        return f"{type(self).__name__}({self.name!r}, {state})"
