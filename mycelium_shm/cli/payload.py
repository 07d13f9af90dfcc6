"""Self-checking payloads for ``stress``: writer id, sequence number, CRC.

Every payload starts with :data:`HEAD` (u32 writer id, u64 sequence number,
u32 CRC-32 of the rest), followed by bytes cut from a fixed pseudo-random
pool, so a reader can check completeness, order and integrity per writer.
"""

from __future__ import annotations

import random
import struct
import zlib

__all__ = ["HEAD", "MODES", "PayloadError", "check_payload", "make_payload", "type_id_of"]

HEAD = struct.Struct("<IQI")
#: How stress writers write: single calls, batches, reservations, or a mix.
MODES = ("single", "batch", "reserve", "mixed")
_POOL = random.Random(0x5EED).randbytes(1 << 16)


class PayloadError(ValueError):
    """A payload is not one :func:`make_payload` wrote (short, or bad CRC)."""


def type_id_of(writer_id: int) -> int:
    """The frame type a writer uses: its id + 1 (type 0 is padding)."""
    return 1 + writer_id % 65535


def make_payload(writer_id: int, seq: int, size: int, rng: random.Random) -> bytes:
    """A payload of ``max(size, HEAD.size)`` bytes for frame ``seq`` of ``writer_id``."""
    body_len = max(size, HEAD.size) - HEAD.size
    start = rng.randrange(0, len(_POOL) - body_len) if body_len else 0
    body = _POOL[start : start + body_len]
    return HEAD.pack(writer_id, seq, zlib.crc32(body)) + body


def check_payload(payload: bytes) -> tuple[int, int]:
    """``(writer id, seq)`` of a payload; PayloadError if it is short or corrupt."""
    if len(payload) < HEAD.size:
        raise PayloadError(f"payload of {len(payload)} bytes is shorter than its header")
    writer_id, seq, crc = HEAD.unpack_from(payload)
    if zlib.crc32(memoryview(payload)[HEAD.size :]) != crc:
        raise PayloadError(f"checksum mismatch in frame {seq} of writer {writer_id}")
    return writer_id, seq
