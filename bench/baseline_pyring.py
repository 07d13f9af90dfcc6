"""The baseline: a single-producer single-consumer byte ring in pure Python.

This is what a careful Python programmer writes instead of using
mycelium-shm: a ring over `multiprocessing.shared_memory`, indices and
lengths read and written through typed memoryviews, busy-polling on both
sides.  It is written to be fast (cached opposite index, typed views instead
of struct calls, one slice copy per payload), since every mycelium-shm ratio
in the report is measured against it.

Layout of the shared-memory object (all integers little-endian):

    0x000  u64 head   bytes ever consumed; written by the consumer only
    0x080  u64 tail   bytes ever produced; written by the producer only
    0x100  data[capacity]  (a power of two)

Each record starts at an 8-aligned ring offset:

    +----------+-------------+-----------------+
    | len u32  | payload     | pad to 8 bytes  |
    +----------+-------------+-----------------+

A len of WRAP (0xFFFFFFFF) tells the consumer to skip to ring offset 0; the
producer writes it when a record would not fit before the end.

Atomicity.  head and tail are read and written through a native 'Q'
memoryview cast, which CPython turns into one aligned 8-byte load or store.
struct.pack_into must not be used for them: it zero-fills its target before
packing, so a concurrent reader can see a transient 0 (we hit exactly that).

Ordering.  The producer stores the record, then the new tail; the consumer
loads the tail, then the record, then stores the new head.  Each of those is
one C call from CPython's evaluation loop, executed in program order, and
x86-64 (TSO) keeps store->store and load->load/store order between cores, so
no fences are needed there.  On weaker memory models (arm64) this ring would
need barriers Python cannot express; the benchmark refuses to run it there.
"""

import platform
import sys
from multiprocessing import resource_tracker, shared_memory

OFF_HEAD = 0x000
OFF_TAIL = 0x080
OFF_DATA = 0x100
RECORD_HEADER = 4
ALIGN = 8
WRAP = 0xFFFFFFFF

IDX_HEAD = OFF_HEAD // 8  # index into the 'Q' view of the header
IDX_TAIL = OFF_TAIL // 8

SUPPORTED_MACHINES = ("x86_64", "AMD64", "i686", "i386")


def unsupported_reason():
    """None if this ring is safe on this CPU, else why not."""
    machine = platform.machine()
    if machine not in SUPPORTED_MACHINES:
        return f"pure-Python ring relies on x86 TSO ordering; machine is {machine}"
    if sys.byteorder != "little":
        return "pure-Python ring uses native little-endian views"
    return None


def _attach(name):
    """Open an existing segment without registering it for cleanup.

    Python < 3.13 registers every attached segment with the resource
    tracker, which would unlink it when the attaching process exits (and an
    unregister would drop the creator's entry); the creator owns it.
    """
    register = resource_tracker.register
    resource_tracker.register = lambda name, rtype: None
    try:
        return shared_memory.SharedMemory(name)
    finally:
        resource_tracker.register = register


def _record_size(payload_len):
    return (RECORD_HEADER + payload_len + ALIGN - 1) & ~(ALIGN - 1)


class PyRing:
    """One end of a named SPSC ring; use as producer or consumer, not both."""

    def __init__(self, name, create=False, capacity=1 << 20):
        if create:
            if capacity < 1024 or capacity & (capacity - 1):
                raise ValueError("capacity must be a power of two >= 1024")
            shm = shared_memory.SharedMemory(name, create=True, size=OFF_DATA + capacity)
            shm.buf[:OFF_DATA] = bytes(OFF_DATA)
        else:
            shm = _attach(name)
            capacity = shm.size - OFF_DATA
            capacity = 1 << (capacity.bit_length() - 1)
        self._shm = shm
        self._idx = shm.buf[:OFF_DATA].cast("Q")  # head, tail
        self._buf = shm.buf[OFF_DATA : OFF_DATA + capacity]  # the ring bytes
        self._u32 = self._buf.cast("I")  # record lengths
        self.capacity = capacity
        self.max_payload = capacity // 2 - RECORD_HEADER - ALIGN
        self._mask = capacity - 1
        # Local copies: our own index, and a cache of the other side's.
        self._tail = self._idx[IDX_TAIL]
        self._head = self._idx[IDX_HEAD]
        self._head_cache = self._head
        self._tail_cache = self._tail

    # -- producer ---------------------------------------------------------- #
    # write() and try_write() differ only in what a full ring does; they are
    # written out twice because a shared helper costs a call per message.

    def write(self, payload):
        """Append one record, spinning while the ring is full."""
        n = len(payload)
        if n > self.max_payload:
            raise ValueError(f"payload of {n} bytes exceeds {self.max_payload}")
        need = (n + (RECORD_HEADER + ALIGN - 1)) & ~(ALIGN - 1)
        tail = self._tail
        off = tail & self._mask
        room_to_end = self.capacity - off
        total = need if need <= room_to_end else room_to_end + need
        limit = tail + total - self.capacity
        if limit > self._head_cache:
            idx = self._idx
            head = idx[IDX_HEAD]
            while limit > head:  # full: spin on the consumer's head
                head = idx[IDX_HEAD]
            self._head_cache = head
        if need > room_to_end:
            self._u32[off >> 2] = WRAP
            tail += room_to_end
            off = 0
        self._u32[off >> 2] = n
        self._buf[off + RECORD_HEADER : off + RECORD_HEADER + n] = payload
        self._tail = tail = tail + need
        self._idx[IDX_TAIL] = tail  # publish: after the record is complete

    def try_write(self, payload):
        """Append one record; False if the ring has no room right now."""
        n = len(payload)
        if n > self.max_payload:
            raise ValueError(f"payload of {n} bytes exceeds {self.max_payload}")
        need = (n + (RECORD_HEADER + ALIGN - 1)) & ~(ALIGN - 1)
        tail = self._tail
        off = tail & self._mask
        room_to_end = self.capacity - off
        total = need if need <= room_to_end else room_to_end + need
        limit = tail + total - self.capacity
        if limit > self._head_cache:
            self._head_cache = self._idx[IDX_HEAD]
            if limit > self._head_cache:
                return False
        if need > room_to_end:
            self._u32[off >> 2] = WRAP
            tail += room_to_end
            off = 0
        self._u32[off >> 2] = n
        self._buf[off + RECORD_HEADER : off + RECORD_HEADER + n] = payload
        self._tail = tail = tail + need
        self._idx[IDX_TAIL] = tail  # publish: after the record is complete
        return True

    # -- consumer ---------------------------------------------------------- #

    def read(self):
        """The next payload as bytes, spinning while the ring is empty."""
        head = self._head
        if head == self._tail_cache:
            idx = self._idx
            tail = idx[IDX_TAIL]
            while tail == head:  # empty: spin on the producer's tail
                tail = idx[IDX_TAIL]
            self._tail_cache = tail
        off = head & self._mask
        n = self._u32[off >> 2]
        if n == WRAP:
            head += self.capacity - off
            off = 0
            n = self._u32[0]
        data = self._buf[off + RECORD_HEADER : off + RECORD_HEADER + n].tobytes()
        self._head = head = head + ((n + (RECORD_HEADER + ALIGN - 1)) & ~(ALIGN - 1))
        self._idx[IDX_HEAD] = head  # release the space: after the copy
        return data

    def try_read(self):
        """The next payload as bytes, or None if the ring is empty."""
        head = self._head
        if head == self._tail_cache:
            self._tail_cache = self._idx[IDX_TAIL]
            if head == self._tail_cache:
                return None
        off = head & self._mask
        n = self._u32[off >> 2]
        if n == WRAP:
            head += self.capacity - off
            off = 0
            n = self._u32[0]
        data = self._buf[off + RECORD_HEADER : off + RECORD_HEADER + n].tobytes()
        self._head = head = head + ((n + (RECORD_HEADER + ALIGN - 1)) & ~(ALIGN - 1))
        self._idx[IDX_HEAD] = head  # release the space: after the copy
        return data

    # -- lifetime ---------------------------------------------------------- #

    def close(self):
        """Unmap this end (the segment lives on until unlink)."""
        if self._shm is not None:
            for view in (self._u32, self._buf, self._idx):
                view.release()
            self._u32 = self._buf = self._idx = None
            self._shm.close()
            self._shm = None


def unlink(name):
    """Remove the named segment created by PyRing(create=True); no error if gone."""
    try:
        shm = shared_memory.SharedMemory(name)
    except FileNotFoundError:
        return
    shm.close()
    shm.unlink()
