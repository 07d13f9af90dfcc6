"""A channel seen read-only, straight from docs/FORMAT.md: for ``tail``.

:class:`RawChannel` maps the object with ``PROT_READ`` (it cannot write a
byte, so it can neither take the reader's place nor zero a frame) after
validating the header as section 1-2 of the format say.  :class:`Follower`
walks the frames between head and tail from a cursor of its own, trusting
nothing it reads: a frame is delivered only if, after its payload was
copied, the reader's head has still not passed it (the reader zeroes a frame
before it moves head past it, and writers reuse the bytes only after that).

The reader zeroes a frame *before* it stores the new head (several frames
may be zeroed before one head store), so a head check alone would accept a
payload zeroed under our copy.  But it zeroes the length word first, then
the rest (FORMAT.md section 5), so a copy is kept
only if, after it, the frame's length and type are unchanged and head has
not passed it: then no byte of the copy was zeroed or reused (a seqlock).
``tail`` is a debugging view, not a second reader: the real reader gets
every frame.

Memory ordering: the loads below are plain aligned loads made in program
order by the interpreter.  On x86-64 (TSO) every load is an acquire load, as
the format asks, and stores are seen in the order they were made; on weakly
ordered CPUs the checks still reject consumed frames, but a payload copy
might see older bytes, so ``tail`` there is a best-effort view.
"""

from __future__ import annotations

import mmap
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Optional

from ..channel import check_name, object_path
from ..errors import ChannelNotFound, CorruptChannel, FormatError

__all__ = ["Follower", "RawChannel", "TailFrame"]

# Section 2 of docs/FORMAT.md.
MAGIC = 0x4D55494C4543594D  # "MYCELIUM"
INIT_READY = 0x21594452  # "RDY!"
FORMAT_VERSION = 1
HEADER_SIZE = 4096
MIN_CAPACITY = 1024
MAX_CAPACITY = 1 << 32
OFF_MAGIC = 0x000
OFF_VERSION = 0x008
OFF_HEADER_SIZE = 0x00C
OFF_CAPACITY = 0x010
OFF_MAX_PAYLOAD = 0x018
OFF_FEATURES = 0x01C
OFF_DIGEST = 0x020
DIGEST_SIZE = 32
OFF_INIT = 0x078
OFF_TAIL = 0x080
OFF_HEAD = 0x100
OFF_FRAMES_WRITTEN = 0x200
OFF_FRAMES_READ = 0x280
# Section 3: a frame is i32 length, u16 type, u16 flags, payload.
FRAME_HEADER = 8
FRAME_OFF_TYPE = 4
# How long an attacher waits for a creator to publish the header (section 2).
ATTACH_WAIT_S = 2.0
# Retries of a head/tail snapshot before a moving head is reported as corrupt.
_SNAPSHOT_TRIES = 10_000


def align8(n: int) -> int:
    return (n + 7) & ~7


@dataclass(frozen=True)
class TailFrame:
    """A frame copied out of the ring: where it was, its type and payload."""

    position: int
    type_id: int
    payload: bytes


class RawChannel:
    """The channel ``name`` mapped read-only, its header validated.

    Raises ``InvalidName``, ``ChannelNotFound``, ``PermissionError``,
    ``FormatError`` (header) or ``CorruptChannel`` (positions), as an attacher
    would.
    """

    def __init__(self, name: str, attach_wait: float = ATTACH_WAIT_S) -> None:
        if sys.byteorder != "little":
            raise FormatError("reading a channel in place needs a little-endian host")
        check_name(name)
        self.name = name
        try:
            fd = os.open(object_path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ChannelNotFound(f"no channel named {name!r}") from None
        try:
            self._mem = self._map(fd, attach_wait)
            st = os.fstat(fd)
            self._identity = (st.st_dev, st.st_ino)
        finally:
            os.close(fd)
        self._bytes = memoryview(self._mem)
        self._u64 = self._bytes.cast("Q")
        self._i32 = self._bytes.cast("i")
        self._u16 = self._bytes.cast("H")
        self.schema_digest = bytes(self._bytes[OFF_DIGEST : OFF_DIGEST + DIGEST_SIZE])
        self.positions()  # head <= tail <= head + capacity, else CorruptChannel

    def _map(self, fd: int, attach_wait: float) -> mmap.mmap:
        deadline = time.monotonic() + attach_wait
        while True:
            size = os.fstat(fd).st_size
            if size >= HEADER_SIZE:
                head = mmap.mmap(fd, HEADER_SIZE, mmap.MAP_SHARED, mmap.PROT_READ)
                try:
                    # The init word first: nothing else is valid before it is set.
                    if _u32(head, OFF_INIT) == INIT_READY:
                        return self._validate(fd, head)
                    magic = _u64(head, OFF_MAGIC)
                finally:
                    head.close()
                if magic not in (0, MAGIC):
                    raise FormatError(f"channel {self.name!r} is not a mycelium channel")
            if time.monotonic() >= deadline:
                raise FormatError(
                    f"channel {self.name!r} was not initialised within {attach_wait:g} s "
                    f"({size} bytes, header incomplete)"
                )
            time.sleep(0.01)

    def _validate(self, fd: int, head: mmap.mmap) -> mmap.mmap:
        name = self.name
        if _u64(head, OFF_MAGIC) != MAGIC:
            raise FormatError(f"channel {name!r} is not a mycelium channel")
        version = _u32(head, OFF_VERSION)
        if version != FORMAT_VERSION:
            raise FormatError(f"channel {name!r} has format version {version}, not 1")
        header_size = _u32(head, OFF_HEADER_SIZE)
        if header_size != HEADER_SIZE:
            raise FormatError(f"channel {name!r} has header size {header_size}, not 4096")
        features = _u32(head, OFF_FEATURES)
        if features != 0:
            raise FormatError(f"channel {name!r} uses unknown features {features:#x}")
        capacity = _u64(head, OFF_CAPACITY)
        if capacity < MIN_CAPACITY or capacity > MAX_CAPACITY or capacity & (capacity - 1):
            raise FormatError(
                f"channel {name!r} has capacity {capacity}: not a power of two "
                f"in {MIN_CAPACITY}..{MAX_CAPACITY}"
            )
        max_payload = _u32(head, OFF_MAX_PAYLOAD)
        if not 1 <= max_payload <= capacity // 2 - FRAME_HEADER:
            raise FormatError(
                f"channel {name!r} has max payload {max_payload}, "
                f"outside 1..{capacity // 2 - FRAME_HEADER}"
            )
        size = os.fstat(fd).st_size
        if size != HEADER_SIZE + capacity:
            raise FormatError(
                f"channel {name!r}: the file is {size} bytes, "
                f"the header says {HEADER_SIZE + capacity}"
            )
        self.capacity = capacity
        self.mask = capacity - 1
        self.max_payload = max_payload
        return mmap.mmap(fd, HEADER_SIZE + capacity, mmap.MAP_SHARED, mmap.PROT_READ)

    # -- shared words (plain aligned loads; see the module docstring) ----------

    def head(self) -> int:
        return int(self._u64[OFF_HEAD >> 3])

    def tail(self) -> int:
        return int(self._u64[OFF_TAIL >> 3])

    def frames_read(self) -> int:
        return int(self._u64[OFF_FRAMES_READ >> 3])

    def frames_written(self) -> int:
        return int(self._u64[OFF_FRAMES_WRITTEN >> 3])

    def positions(self) -> tuple[int, int]:
        """A consistent ``(head, tail)``: head did not move while tail was read."""
        for _ in range(_SNAPSHOT_TRIES):
            head = self.head()
            tail = self.tail()
            if self.head() != head:
                continue
            if not head <= tail <= head + self.capacity:
                raise CorruptChannel(
                    f"channel {self.name!r} has head {head} and tail {tail}: "
                    f"not head <= tail <= head + {self.capacity}"
                )
            return head, tail
        raise CorruptChannel(f"channel {self.name!r}: head never held still")

    def counter_at_head(self, counter: int) -> tuple[int, int]:
        """``(head, counter)`` read together: the counter did not change around head."""
        for _ in range(_SNAPSHOT_TRIES):
            before = int(self._u64[counter >> 3])
            head = self.head()
            if int(self._u64[counter >> 3]) == before:
                return head, before
        raise CorruptChannel(f"channel {self.name!r}: counters never held still")

    def counter_at_tail(self, counter: int) -> tuple[int, int]:
        """``(tail, counter)`` read together, as :meth:`counter_at_head`."""
        for _ in range(_SNAPSHOT_TRIES):
            before = int(self._u64[counter >> 3])
            tail = self.tail()
            if int(self._u64[counter >> 3]) == before:
                return tail, before
        raise CorruptChannel(f"channel {self.name!r}: counters never held still")

    def frame_length(self, index: int) -> int:
        return int(self._i32[(HEADER_SIZE + index) >> 2])

    def frame_type(self, index: int) -> int:
        return int(self._u16[(HEADER_SIZE + index + FRAME_OFF_TYPE) >> 1])

    def copy(self, index: int, size: int) -> bytes:
        start = HEADER_SIZE + index
        return bytes(self._bytes[start : start + size])

    def still_linked(self) -> bool:
        """Whether the channel's name still points to the object we mapped (not removed)."""
        try:
            st = os.stat(object_path(self.name))
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def close(self) -> None:
        """Unmap (idempotent)."""
        if self._mem.closed:
            return
        for view in (self._u64, self._i32, self._u16, self._bytes):
            view.release()
        self._mem.close()

    def __enter__(self) -> RawChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _u32(mem: mmap.mmap, offset: int) -> int:
    return int.from_bytes(mem[offset : offset + 4], "little")


def _u64(mem: mmap.mmap, offset: int) -> int:
    return int.from_bytes(mem[offset : offset + 8], "little")


class Follower:
    """Frames of a :class:`RawChannel` from a cursor of our own, never disturbing the reader.

    ``from_start``: begin at the reader's head (every frame still in the
    ring); otherwise at the tail (only frames written from now on).

    Missed frames are those the channel's reader consumed before we could
    copy them.  They leave no trace in the ring (consumed bytes are zero), so
    they are counted from the reader's ``frames read`` counter: frames it
    consumed in our window, less those we saw.  The count is exact once the
    channel is quiet; while it runs it may be ahead by the frames of one read
    batch (the reader publishes its counters just before its head), and a
    frame claimed before our start but committed after it may count once too
    often.
    """

    def __init__(self, channel: RawChannel, from_start: bool = False) -> None:
        self.channel = channel
        if from_start:
            self.position, self._base = channel.counter_at_head(OFF_FRAMES_READ)
        else:
            self.position, self._base = channel.counter_at_tail(OFF_FRAMES_WRITTEN)
        self.start = self.position
        self.seen = 0  # data frames delivered
        self.discarded = 0  # data frames copied, then found consumed meanwhile
        self.jumps = 0  # times the reader's head overtook us
        self._seen_unconsumed: deque[int] = deque()
        self._seen_consumed = 0

    def _retire(self, head: int) -> None:
        """Count the frames we saw that the reader has since consumed."""
        seen = self._seen_unconsumed
        while seen and seen[0] < head:
            seen.popleft()
            self._seen_consumed += 1

    def _jump(self, head: int) -> None:
        self.position = head
        self.jumps += 1

    def missed(self) -> int:
        """Frames consumed by the reader in our window that we never delivered."""
        head, frames_read = self.channel.counter_at_head(OFF_FRAMES_READ)
        self._retire(head)
        if head <= self.start:
            return 0
        return max(0, frames_read - self._base - self._seen_consumed)

    def poll(self, limit: int = 256) -> list[TailFrame]:
        """Up to ``limit`` frames committed past our cursor now ([] if none yet)."""
        ch = self.channel
        out: list[TailFrame] = []
        while len(out) < limit:
            head, tail = ch.positions()
            self._retire(head)
            pos = self.position
            if pos < head:
                self._jump(head)
                continue
            if pos >= tail:
                if pos > tail:
                    raise CorruptChannel(
                        f"channel {ch.name!r}: tail {tail} went back behind position {pos}"
                    )
                break
            index = pos & ch.mask
            length = ch.frame_length(index)
            if length <= 0:
                # Claimed but not committed yet, or consumed under our feet.
                now = ch.head()
                if now > pos:
                    self._jump(now)
                    continue
                break
            size = align8(length)
            type_id = ch.frame_type(index)
            problem = _check_frame(ch, pos, index, length, size, type_id, tail)
            if problem is not None:
                now = ch.head()
                if now > pos:  # the bytes were reused while we looked
                    self._jump(now)
                    continue
                raise CorruptChannel(f"channel {ch.name!r}: {problem}")
            payload = ch.copy(index + FRAME_HEADER, length - FRAME_HEADER) if type_id else b""
            # The reader zeroes a frame (header included) and only then moves
            # head past it, so a copy is good only if the header is intact
            # after it and head has still not passed it.
            intact = ch.frame_length(index) == length and ch.frame_type(index) == type_id
            now = ch.head()
            if now > pos or not intact:
                # Consumed while we copied: the bytes may be zero or a newer
                # frame's.  Drop the copy.
                if type_id:
                    self.discarded += 1
                if now > pos:
                    self._jump(now)
                    continue
                # Being zeroed: head will pass it shortly.
                break
            if type_id:
                out.append(TailFrame(pos, type_id, payload))
                self.seen += 1
                self._seen_unconsumed.append(pos)
            self.position = pos + size
        return out


def _check_frame(
    ch: RawChannel, pos: int, index: int, length: int, size: int, type_id: int, tail: int
) -> Optional[str]:
    """Why a committed frame header breaks section 5 step 3, or None."""
    if length < FRAME_HEADER:
        return f"frame at position {pos} has length {length} (< 8)"
    if size > ch.capacity - index:
        return f"frame at position {pos} of {length} bytes runs past the end of the ring"
    if pos + size > tail:
        return f"frame at position {pos} of {length} bytes runs past the tail {tail}"
    if type_id != 0 and length - FRAME_HEADER > ch.max_payload:
        return (
            f"frame at position {pos} has a {length - FRAME_HEADER}-byte payload, "
            f"more than the max payload {ch.max_payload}"
        )
    return None
