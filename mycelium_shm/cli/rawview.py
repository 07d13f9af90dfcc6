"""A channel seen read-only, straight from docs/FORMAT.md (version 2): for ``tail``.

:class:`RawChannel` maps the object with ``PROT_READ`` (it cannot write a
byte, so it can neither take the reader's place nor disturb a frame) after
validating the header as an attacher would (sections 1-2).  :class:`Follower`
walks the frames from a cursor of its own, trusting nothing it reads: the
passive observer of section 7.  A broadcast channel (feature bit BROADCAST,
section 14) passes the same validation and reports its ``reader_slots``;
``tail`` reads one through a lossy cursor of its own, not a Follower.

Format 2 in the words this module uses.  Positions (HEAD, TAIL) are u64
byte counts that only grow; a frame starts at a 16-aligned position ``Q``
with a 16-byte header: ``u64 stamp`` (``Q | state``), ``u32 frame_len``
(header + payload), ``u16 type``, ``u16 flags``, and occupies
``align16(frame_len)`` bytes.  States: CLAIMED 1, COMMITTED 2, PADDING 3,
REVOKED 4.  A stamp names its own position, so a header left from an
earlier lap (or never-written zero memory) never matches.  The reader never
writes the ring: a consumed frame stays readable until writers claim its
bytes again, one lap later.

How a copy is known to be intact.  Writers move TAIL past a range (and
fence) *before* they store a byte in it, and a byte at position ``p`` is
rewritten only by a claim of position ``p + capacity`` or later.  So a
frame at ``Q`` accepted on ``stamp == Q | COMMITTED`` (its header and
payload are published by that stamp) is copied, and the copy is kept only
if afterwards the stamp is unchanged and TAIL has not passed
``Q + capacity``: no writer can have claimed any of its bytes meanwhile.
Otherwise the frame was recycled under us: it is dropped and counted as
missed, never shown with mixed bytes.  The cursor then resumes at a frame
boundary that is still intact: a value of TAIL it read earlier (TAIL only
ever holds the start of a claim, hence of a frame) not yet overwritten, or
the reader's HEAD, which writers cannot pass.

Missed frames are counted from the writers' ``frames written`` counters
(block-4 totals plus every writer slot's own count): the data frames
committed in our window, less those we showed, less those still ahead of
our cursor.  The count is exact once the channel is quiet; while writers run
it may be off by the frames in flight (claimed but not yet counted) at the
start or the end of the window, and it never goes below zero.

Memory ordering: the loads below are plain aligned loads made in program
order by the interpreter.  On x86-64 (TSO) every load is an acquire load, as
the format asks, and stores are seen in the order they were made; on weakly
ordered CPUs a copy might see older bytes, so ``tail`` there is a
best-effort view.
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

# The header (FORMAT.md section 2; csrc/ring.h).
MAGIC = 0x4D55494C4543594D  # "MYCELIUM"
INIT_READY = 0x21594452  # "RDY!"
FORMAT_VERSION = 2
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
OFF_READER_SLOTS = 0x058  # u32: 0 single reader, 1..READER_SLOTS broadcast
OFF_UNTETHER_MS = 0x05C  # u32: a broadcast channel's untether window
FEATURE_BROADCAST = 0x1  # READER_SLOTS > 0: the cursor table rules (section 14)
READER_SLOTS = 10
OFF_INIT = 0x078
OFF_TAIL = 0x080
OFF_HEAD = 0x100
OFF_FRAMES_WRITTEN = 0x200  # block 4: totals folded in from released slots
OFF_FRAMES_READ = 0x280
# Writer registry: 32 slots of 64 bytes; +0 owner, +8 claim_start (low bit
# CLAIM_PENDING while the range is only intended, before the TAIL CAS),
# +16 claim_end, +24 frames written by the slot's owner.
OFF_WRITER_TABLE = 0x300
WRITER_SLOTS = 32
WRITER_SLOT_SIZE = 64
SLOT_OFF_CLAIM_START = 8
SLOT_OFF_CLAIM_END = 16
SLOT_OFF_FRAMES = 24
CLAIM_PENDING = 1
# The frame header, at a 16-aligned ring offset.
FRAME_HEADER = 16
FRAME_ALIGN = 16
FRAME_OFF_LEN = 8
FRAME_OFF_TYPE = 12
STATE_MASK = 0xF
CLAIMED, COMMITTED, PADDING, REVOKED = 1, 2, 3, 4
# How long an attacher waits for a creator to publish the header.
ATTACH_WAIT_S = 2.0
# Retries of a snapshot of moving words before they are reported as corrupt.
_SNAPSHOT_TRIES = 10_000
# Looks at one position without progress before poll() returns to wait.
_SPIN_LIMIT = 64

_FRAMES_SLOTS = tuple(
    (OFF_WRITER_TABLE + i * WRITER_SLOT_SIZE + SLOT_OFF_FRAMES) >> 3 for i in range(WRITER_SLOTS)
)


def align16(n: int) -> int:
    return (n + FRAME_ALIGN - 1) & ~(FRAME_ALIGN - 1)


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
        except BaseException:
            os.close(fd)
            raise
        # Kept open to notice a truncation (check_size), as the core's handles do.
        self._fd = fd
        self._bytes = memoryview(self._mem)
        self._u64 = self._bytes.cast("Q")
        self._u32 = self._bytes.cast("I")
        self._u16 = self._bytes.cast("H")
        self.schema_digest = bytes(self._bytes[OFF_DIGEST : OFF_DIGEST + DIGEST_SIZE])
        self.positions()  # head <= tail <= head + capacity, aligned, else CorruptChannel

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
            raise FormatError(
                f"channel {name!r} has format version {version}, not {FORMAT_VERSION}"
            )
        header_size = _u32(head, OFF_HEADER_SIZE)
        if header_size != HEADER_SIZE:
            raise FormatError(f"channel {name!r} has header size {header_size}, not 4096")
        features = _u32(head, OFF_FEATURES)
        if features & ~FEATURE_BROADCAST:
            raise FormatError(f"channel {name!r} uses unknown features {features:#x}")
        slots = _u32(head, OFF_READER_SLOTS)
        if (features & FEATURE_BROADCAST) != (FEATURE_BROADCAST if slots else 0) or (
            slots > READER_SLOTS
        ):
            raise FormatError(
                f"channel {name!r} has {slots} reader slots and features {features:#x}: "
                f"a broadcast channel has 1..{READER_SLOTS} slots and feature bit "
                f"{FEATURE_BROADCAST:#x}, a single-reader channel neither"
            )
        self.reader_slots = slots
        self.untether_ms = _u32(head, OFF_UNTETHER_MS) if slots else 0
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
        """Data frames committed and counted: the block-4 total plus every slot's count.

        Two passes that agree (a slot folding its count into the total while
        we add could otherwise be counted twice or not at all)."""
        u64 = self._u64
        for _ in range(_SNAPSHOT_TRIES):
            first = u64[OFF_FRAMES_WRITTEN >> 3] + sum(u64[i] for i in _FRAMES_SLOTS)
            again = u64[OFF_FRAMES_WRITTEN >> 3] + sum(u64[i] for i in _FRAMES_SLOTS)
            if first == again:
                return int(first)
        raise CorruptChannel(f"channel {self.name!r}: counters never held still")

    def positions(self) -> tuple[int, int]:
        """A consistent ``(head, tail)``: head did not move while tail was read."""
        for _ in range(_SNAPSHOT_TRIES):
            head = self.head()
            tail = self.tail()
            if self.head() != head:
                continue
            self.check_positions(head, tail)
            return head, tail
        raise CorruptChannel(f"channel {self.name!r}: head never held still")

    def check_positions(self, head: int, tail: int) -> None:
        """CorruptChannel unless ``head <= tail <= head + capacity``, both 16-aligned."""
        if not head <= tail <= head + self.capacity:
            raise CorruptChannel(
                f"channel {self.name!r} has head {head} and tail {tail}: "
                f"not head <= tail <= head + {self.capacity}"
            )
        if (head | tail) % FRAME_ALIGN:
            raise CorruptChannel(
                f"channel {self.name!r} has head {head} and tail {tail}: "
                f"not multiples of {FRAME_ALIGN}"
            )

    def counter_at_head(self, counter: int) -> tuple[int, int]:
        """``(head, counter)`` read together: the counter did not change around head."""
        for _ in range(_SNAPSHOT_TRIES):
            before = int(self._u64[counter >> 3])
            head = self.head()
            if int(self._u64[counter >> 3]) == before:
                return head, before
        raise CorruptChannel(f"channel {self.name!r}: counters never held still")

    def written_at_tail(self) -> tuple[int, int]:
        """``(tail, frames written)`` read together: no count changed around tail."""
        for _ in range(_SNAPSHOT_TRIES):
            before = self.frames_written()
            tail = self.tail()
            if self.frames_written() == before:
                return tail, before
        raise CorruptChannel(f"channel {self.name!r}: counters never held still")

    def claims(self) -> list[tuple[int, int]]:
        """Every writer slot's last published claim ``(start, end)`` (stale ones too;
        ``start`` as stored, with its CLAIM_PENDING bit)."""
        u64 = self._u64
        out = []
        for i in range(WRITER_SLOTS):
            base = (OFF_WRITER_TABLE + i * WRITER_SLOT_SIZE) >> 3
            start = int(u64[base + (SLOT_OFF_CLAIM_START >> 3)])
            end = int(u64[base + (SLOT_OFF_CLAIM_END >> 3)])
            out.append((start, end))
        return out

    def stamp(self, index: int) -> int:
        return int(self._u64[(HEADER_SIZE + index) >> 3])

    def frame_length(self, index: int) -> int:
        return int(self._u32[(HEADER_SIZE + index + FRAME_OFF_LEN) >> 2])

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

    def check_size(self) -> None:
        """CorruptChannel if another process shrank the file under our mapping:
        touching the missing pages would raise SIGBUS.  One fstat; called after
        each idle sleep, before the ring is looked at again (as the core's
        handles check after they sleep)."""
        size = os.fstat(self._fd).st_size
        if size < len(self._mem):
            raise CorruptChannel(
                f"channel {self.name!r} was truncated under this observer's {len(self._mem)}-byte "
                f"mapping (another process shrank its file to {size} bytes)"
            )

    def close(self) -> None:
        """Unmap (idempotent)."""
        if self._mem.closed:
            return
        os.close(self._fd)
        for view in (self._u64, self._u32, self._u16, self._bytes):
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

    ``from_start``: begin with the oldest frames known to be in the ring:
    position 0 while the ring has not wrapped (every frame ever written),
    else the reader's head (the unread ones).  Otherwise begin at the tail
    (only frames written from now on).

    The cursor may lag behind the reader's head: consumed frames stay in the
    ring until writers lap them.  When they do (TAIL passes our position
    plus the capacity), the frames in between are lost to us: the cursor
    jumps to the oldest boundary known to be intact (``lapped``,
    ``skipped_bytes``) and the lost frames show up in :meth:`missed`.
    """

    def __init__(self, channel: RawChannel, from_start: bool = False) -> None:
        self.channel = channel
        if from_start:
            tail = channel.tail()
            if tail <= channel.capacity:
                # Nothing was ever overwritten: position 0 is the first frame.
                self.position, self._base = 0, 0
            else:
                # Every committed data frame below head was delivered by the reader.
                self.position, self._base = channel.counter_at_head(OFF_FRAMES_READ)
        else:
            self.position, self._base = channel.written_at_tail()
        _, tail = channel.positions()
        if not (self.position <= tail and self.position % FRAME_ALIGN == 0):
            raise CorruptChannel(
                f"channel {channel.name!r}: start position {self.position} "
                f"is not an aligned position before the tail {tail}"
            )
        self.start = self.position
        self.seen = 0  # data frames delivered
        self.discarded = 0  # data frames copied, then found recycled meanwhile
        self.lapped = 0  # times writers overwrote frames before we reached them
        self.skipped_bytes = 0  # ring bytes jumped over after being lapped
        # TAIL values seen, oldest first: each is a frame boundary, intact
        # until TAIL passes it plus the capacity.
        self._marks: deque[int] = deque()

    # -- what we could not show --------------------------------------------------

    def missed(self, shown: Optional[int] = None) -> int:
        """Data frames committed in our window (from the start to our cursor) not
        shown: ``shown`` of them were (default: every frame :meth:`poll` returned)."""
        tail, written = self.channel.written_at_tail()
        ahead = self._count_ahead(tail)
        shown = self.seen if shown is None else shown
        return max(0, written - self._base - shown - ahead)

    def _count_ahead(self, tail: int) -> int:
        """Committed data frames from our cursor to ``tail``, counted, not copied."""
        ch = self.channel
        cap, mask = ch.capacity, ch.mask
        pos, count = self.position, 0
        while pos < tail:
            index = pos & mask
            stamp = ch.stamp(index)
            if stamp & ~STATE_MASK != pos or not CLAIMED <= stamp & STATE_MASK <= REVOKED:
                break  # a claim whose header is not written yet, or a dead one
            length = ch.frame_length(index)
            kind = ch.frame_type(index)
            if ch.tail() > pos + cap:
                break  # lapped: whatever is left is missed
            if length < FRAME_HEADER or align16(length) > cap - index:
                break
            if stamp & STATE_MASK == COMMITTED and kind != 0:
                count += 1
            pos += align16(length)
        return count

    # -- walking ---------------------------------------------------------------

    def _mark(self, tail: int) -> None:
        """Remember ``tail`` (a frame boundary); forget those overwritten since."""
        marks = self._marks
        if (not marks or tail > marks[-1]) and tail % FRAME_ALIGN == 0:
            marks.append(tail)
            floor = tail - self.channel.capacity
            while marks[0] < floor:
                marks.popleft()

    def _resync(self) -> bool:
        """If writers lapped our cursor, resume at the oldest boundary still
        intact (with some room before writers reach it again), or at the
        reader's head if that is older; whether they had lapped us."""
        cap = self.channel.capacity
        head, tail = self.channel.positions()
        if tail <= self.position + cap:
            return False
        floor = tail - cap + cap // 8
        marks = self._marks
        while marks and marks[0] < floor:
            marks.popleft()
        # Both are past our position: head >= tail - capacity > position.
        target = min(head, marks[0]) if marks else head
        self.lapped += 1
        self.skipped_bytes += target - self.position
        self.position = target
        return True

    def _skip_dead_claim(self, pos: int, head: int) -> None:
        """The reader moved past ``pos`` although no finished frame is there: it
        skipped a dead writer's claim, to the end of the confirmed claim covering
        it (else the smallest end of the intended ones).  Do as it did, or
        resume at its head if the slots have moved on since."""
        confirmed, intended = [], []
        for raw_start, end in self.channel.claims():
            start = raw_start & ~CLAIM_PENDING
            if start <= pos < end <= head and end % FRAME_ALIGN == 0:
                (intended if raw_start & CLAIM_PENDING else confirmed).append(end)
        ends = confirmed or intended
        target = min(ends) if ends else head
        self.skipped_bytes += target - pos
        self.position = target

    def poll(self, limit: int = 256) -> list[TailFrame]:
        """Up to ``limit`` frames committed past our cursor now ([] if none yet)."""
        ch = self.channel
        cap, mask = ch.capacity, ch.mask
        out: list[TailFrame] = []
        spins = 0
        last_tail = -1
        while len(out) < limit and spins < _SPIN_LIMIT:
            pos = self.position
            index = pos & mask
            stamp = ch.stamp(index)
            tail = ch.tail()  # loaded after the stamp
            if tail < pos:
                raise CorruptChannel(
                    f"channel {ch.name!r}: tail {tail} went back behind position {pos}"
                )
            if tail != last_tail:
                self._mark(tail)
                last_tail = tail
            if tail > pos + cap:
                if not self._resync():
                    spins += 1  # tail moved oddly; look again
                continue
            state = stamp & STATE_MASK
            if stamp & ~STATE_MASK != pos or not COMMITTED <= state <= REVOKED:
                # No finished frame here (yet).
                if pos == tail:
                    break  # nothing more was claimed
                head, _ = ch.positions()
                if head <= pos:
                    break  # a writer is filling it: wait
                # The reader is past it.  It may have become a frame the
                # reader took: look at the stamp again.
                again = ch.stamp(index)
                if ch.tail() > pos + cap:
                    if not self._resync():
                        spins += 1
                    continue
                if again != stamp:
                    spins += 1
                    continue
                self._skip_dead_claim(pos, head)
                continue
            # Copies of the header words: only these are used.
            length = ch.frame_length(index)
            type_id = ch.frame_type(index)
            size = align16(length)
            data = state == COMMITTED and type_id != 0
            problem = _check_frame(ch, pos, index, length, size, type_id, data, tail)
            if problem is None and data:
                payload = ch.copy(index + FRAME_HEADER, length - FRAME_HEADER)
            else:
                payload = b""
            # The copy (and the header words) are intact iff no writer can
            # have claimed over them: stamp unchanged, TAIL not past Q + capacity.
            if ch.stamp(index) != stamp or ch.tail() > pos + cap:
                if data and problem is None:
                    self.discarded += 1
                if not self._resync():
                    spins += 1
                continue
            if problem is not None:
                raise CorruptChannel(f"channel {ch.name!r}: {problem}")
            if data:
                out.append(TailFrame(pos, type_id, payload))
                self.seen += 1
            self.position = pos + size
            spins = 0
        return out


def _check_frame(
    ch: RawChannel,
    pos: int,
    index: int,
    length: int,
    size: int,
    type_id: int,
    data: bool,
    tail: int,
) -> Optional[str]:
    """Why a finished frame's header breaks the format, or None."""
    if length < FRAME_HEADER:
        return f"frame at position {pos} has length {length} (< {FRAME_HEADER})"
    if size > ch.capacity - index:
        return f"frame at position {pos} of {length} bytes runs past the end of the ring"
    if pos + size > tail:
        return f"frame at position {pos} of {length} bytes runs past the tail {tail}"
    if data and length - FRAME_HEADER > ch.max_payload:
        return (
            f"frame at position {pos} has a {length - FRAME_HEADER}-byte payload, "
            f"more than the max payload {ch.max_payload}"
        )
    return None
