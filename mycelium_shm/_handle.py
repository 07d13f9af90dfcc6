"""What ShmWriter and ShmReader share: opening a channel, the cffi handle,
statistics, closing, and the context-manager protocol."""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Protocol

from ._native import encode_name, ffi, lib, raise_for

__all__ = ["ChannelHandle", "SchemaLike", "stats_dict"]


class SchemaLike(Protocol):
    """What a channel needs of a schema (see :mod:`mycelium_shm.protocol`)."""

    @property
    def digest(self) -> bytes: ...

    def encode(self, message: Any) -> tuple[int, bytes]: ...

    def decode(self, type_id: int, payload: Any) -> Any: ...


def stats_dict(stats: Any) -> dict[str, int]:
    """A ``myc_stats`` struct as a plain dict."""
    return {name: int(getattr(stats, name)) for name, _ in ffi.typeof("myc_stats").fields}


class ChannelHandle:
    """Mixin for one end of a channel.  Subclasses name their C functions
    (``_open_fn`` ...) and also derive from a fast-path type that provides
    ``_attach`` and ``_detach``."""

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

    def _open(
        self,
        name: str,
        create: bool,
        exist_ok: bool,
        capacity: int,
        max_payload: int,
        mode: int,
        schema: Optional[SchemaLike],
    ) -> None:
        """Open through cffi (raising the mapped exception) and point the
        fast path at the handle."""
        self._h = ffi.NULL
        self.name = name
        self.schema = schema
        if not create:
            flags = lib.MYC_ATTACH
        else:
            flags = lib.MYC_CREATE_OR_ATTACH if exist_ok else lib.MYC_CREATE
        digest = ffi.NULL
        if schema is not None:
            raw = bytes(schema.digest)
            if len(raw) != lib.MYC_DIGEST_SIZE:
                raise ValueError(
                    f"schema digest must be {lib.MYC_DIGEST_SIZE} bytes, not {len(raw)}"
                )
            digest = ffi.new("uint8_t[]", raw)
        out = ffi.new(f"{self._handle_type} **")
        rc = self._open_fn(encode_name(name), flags, capacity, max_payload, mode, digest, out)
        if rc != lib.MYC_OK:
            raise_for(rc)
        self._h = ffi.gc(out[0], self._close_fn)
        self._attach(int(ffi.cast("uintptr_t", self._h)))  # type: ignore[attr-defined]
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
            self._detach()  # type: ignore[attr-defined]
            handle, self._h = self._h, ffi.NULL
            ffi.release(handle)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"capacity={self.capacity}"
        return f"{type(self).__name__}({self.name!r}, {state})"
