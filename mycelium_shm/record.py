"""Recording files: the frames a channel delivered, with their timing, in a file.

``mycelium-shm record`` writes one and ``mycelium-shm replay`` plays one back
into a channel; the layout, byte by byte, is docs/FORMAT.md, Part 3.  In
short: an 80-byte header (magic, version, the source channel's geometry and
schema digest, the wall-clock start), then one record per frame: a 20-byte
record header (nanoseconds since the start, type id, length, CRC-32) and the
payload.  Records are appended and flushed as they come, so a file whose
writer was killed ends, at worst, in one incomplete record: the reader
reports it (``truncated``) and stops at the last complete one.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Optional

__all__ = [
    "DIGEST_SIZE",
    "HEADER",
    "MAGIC",
    "RECORD",
    "VERSION",
    "Record",
    "RecordingError",
    "RecordingHeader",
    "RecordingReader",
    "RecordingWriter",
]

#: The first 8 bytes of every recording.
MAGIC = b"MYCSHREC"
#: The recording format this module writes and reads.
VERSION = 1
DIGEST_SIZE = 32

# magic, version, header size, flags, capacity, max payload, channel format
# version, start (CLOCK_REALTIME ns), schema digest, reserved.
HEADER = struct.Struct("<8sHHIQIIQ32s8x")
# ns since the start, type id, reserved, payload length, CRC-32.
RECORD = struct.Struct("<QHHII")
_RECORD_CRC_SPAN = 16  # the CRC covers the record header's first 16 bytes, then the payload

assert HEADER.size == 80 and RECORD.size == 20


class RecordingError(ValueError):
    """A file that is not a readable recording (bad magic, version, corrupt record)."""


@dataclass(frozen=True)
class RecordingHeader:
    """What a recording says about its source channel and its start."""

    capacity: int
    max_payload: int
    schema_digest: bytes = bytes(DIGEST_SIZE)
    start_ns: int = 0
    channel_format: int = 0
    version: int = VERSION

    @property
    def has_schema(self) -> bool:
        return any(self.schema_digest)

    def pack(self) -> bytes:
        digest = bytes(self.schema_digest)
        if len(digest) != DIGEST_SIZE:
            raise ValueError(f"schema digest must be {DIGEST_SIZE} bytes, not {len(digest)}")
        return HEADER.pack(
            MAGIC,
            VERSION,
            HEADER.size,
            0,
            self.capacity,
            self.max_payload,
            self.channel_format,
            self.start_ns,
            digest,
        )


@dataclass(frozen=True)
class Record:
    """One recorded frame: when (ns since the recording's start), type id, payload."""

    t_ns: int
    type_id: int
    payload: bytes


def _record_crc(head16: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(head16))


def pack_record(t_ns: int, type_id: int, payload: bytes) -> bytes:
    """One record, header and payload, as bytes."""
    head = RECORD.pack(t_ns, type_id, 0, len(payload), 0)[:_RECORD_CRC_SPAN]
    return head + struct.pack("<I", _record_crc(head, payload)) + payload


class RecordingWriter:
    """Appends records to a new recording file, flushing after every batch.

    The header is written (and flushed) when the file is opened; each
    :meth:`write` call goes to the file in one ``write`` of whole records, so
    a killed recorder leaves every record of earlier calls intact.
    """

    def __init__(self, path: str | os.PathLike[str], header: RecordingHeader) -> None:
        self.path = os.fspath(path)
        self.header = header
        self.frames = 0
        self.payload_bytes = 0
        self._file: Optional[BinaryIO] = open(self.path, "wb", buffering=0)
        try:
            self._file.write(header.pack())
        except BaseException:
            self.close()
            raise

    def write(self, t_ns: int, frames: Iterable[tuple[int, bytes]]) -> int:
        """Append frames all stamped ``t_ns``; how many."""
        if self._file is None:
            raise ValueError("recording is closed")
        chunk = bytearray()
        n = 0
        for type_id, payload in frames:
            chunk += pack_record(t_ns, type_id, bytes(payload))
            self.payload_bytes += len(payload)
            n += 1
        if chunk:
            view = memoryview(chunk)
            while view:  # an unbuffered write may be short
                done = self._file.write(view)
                view = view[done or 0 :]
        self.frames += n
        return n

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordingReader:
    """Reads a recording: :attr:`header`, then the records by iterating.

    Iteration stops at the end of the file; if the file ends inside a record
    (its writer was killed), iteration stops before it and :attr:`truncated`
    is True.  A bad magic, an unknown version or a record that is corrupt
    (CRC mismatch, length above the max payload, nonzero reserved bytes)
    raises :class:`RecordingError`, one line naming the file and offset.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.truncated = False
        self.records_read = 0
        self._file: Optional[BinaryIO] = open(self.path, "rb")
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def _fail(self, what: str) -> RecordingError:
        return RecordingError(f"{self.path}: {what}")

    def _read_header(self) -> RecordingHeader:
        assert self._file is not None
        raw = self._file.read(HEADER.size)
        if raw[: len(MAGIC)] != MAGIC:
            raise self._fail(
                f"not a mycelium-shm recording (magic {raw[: len(MAGIC)]!r}, expected {MAGIC!r})"
            )
        if len(raw) < 12:
            raise self._fail(f"truncated header ({len(raw)} of {HEADER.size} bytes)")
        version, header_size = struct.unpack_from("<HH", raw, 8)
        if version != VERSION:
            raise self._fail(
                f"recording format version {version} is not supported (this reads {VERSION})"
            )
        if len(raw) < HEADER.size:
            raise self._fail(f"truncated header ({len(raw)} of {HEADER.size} bytes)")
        if header_size < HEADER.size:
            raise self._fail(f"header size {header_size} is below {HEADER.size}")
        _, _, _, _flags, capacity, max_payload, channel_format, start_ns, digest = HEADER.unpack(
            raw
        )
        if header_size > HEADER.size:  # a later minor addition: skip what we do not know
            extra = self._file.read(header_size - HEADER.size)
            if len(extra) < header_size - HEADER.size:
                raise self._fail(f"truncated header ({HEADER.size + len(extra)} bytes)")
        return RecordingHeader(
            capacity=capacity,
            max_payload=max_payload,
            schema_digest=digest,
            start_ns=start_ns,
            channel_format=channel_format,
            version=version,
        )

    def __iter__(self) -> Iterator[Record]:
        f = self._file
        if f is None:
            raise ValueError("recording is closed")
        limit = self.header.max_payload
        while True:
            offset = f.tell()
            head = f.read(RECORD.size)
            if not head:
                return
            if len(head) < RECORD.size:
                self.truncated = True
                return
            t_ns, type_id, reserved, length, crc = RECORD.unpack(head)
            if reserved != 0 or type_id == 0 or (limit and length > limit):
                raise self._fail(
                    f"corrupt record {self.records_read} at offset {offset} "
                    f"(type id {type_id}, length {length}, max payload {limit})"
                )
            payload = f.read(length)
            if len(payload) < length:
                self.truncated = True
                return
            if _record_crc(head[:_RECORD_CRC_SPAN], payload) != crc:
                raise self._fail(
                    f"corrupt record {self.records_read} at offset {offset} (CRC mismatch)"
                )
            self.records_read += 1
            yield Record(t_ns, type_id, payload)

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
