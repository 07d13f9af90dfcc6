/*
 * Build-time check that the Rust mirrors in bindings/rust/src/sys.rs match
 * the C structs of csrc/ring.h.  Every number here is repeated as a const
 * assertion in sys.rs; if either side changes, one of the two builds fails.
 * This file adds no code to the library.
 */
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

_Static_assert(sizeof(myc_stats) == 128, "myc_stats size (sys.rs: MycStats)");
_Static_assert(offsetof(myc_stats, takeovers) == 120, "myc_stats.takeovers");

_Static_assert(sizeof(myc_frame) == 16, "myc_frame size (sys.rs: MycFrame)");
_Static_assert(offsetof(myc_frame, payload_len) == 8, "myc_frame.payload_len");
_Static_assert(offsetof(myc_frame, type_id) == 12, "myc_frame.type_id");
_Static_assert(offsetof(myc_frame, flags) == 14, "myc_frame.flags");

_Static_assert(sizeof(myc_reservation) == 24, "myc_reservation size (sys.rs: MycReservation)");
_Static_assert(offsetof(myc_reservation, position) == 8, "myc_reservation.position");
_Static_assert(offsetof(myc_reservation, payload_len) == 16, "myc_reservation.payload_len");
_Static_assert(offsetof(myc_reservation, type_id) == 20, "myc_reservation.type_id");

_Static_assert(sizeof(myc_info) == 480, "myc_info size (sys.rs: MycInfo)");
_Static_assert(offsetof(myc_info, schema_digest) == 128, "myc_info.schema_digest");
_Static_assert(offsetof(myc_info, created_ns) == 160, "myc_info.created_ns");
_Static_assert(offsetof(myc_info, file_size) == 168, "myc_info.file_size");
_Static_assert(offsetof(myc_info, creator_pid) == 176, "myc_info.creator_pid");
_Static_assert(offsetof(myc_info, reader_pid) == 184, "myc_info.reader_pid");
_Static_assert(offsetof(myc_info, format_version) == 192, "myc_info.format_version");
_Static_assert(offsetof(myc_info, writer_count) == 196, "myc_info.writer_count");
_Static_assert(offsetof(myc_info, writer_pids) == 200, "myc_info.writer_pids");
_Static_assert(offsetof(myc_info, writer_alive) == 328, "myc_info.writer_alive");
_Static_assert(offsetof(myc_info, stalled_pid) == 456, "myc_info.stalled_pid");
_Static_assert(offsetof(myc_info, reader_slots) == 460, "myc_info.reader_slots");
_Static_assert(offsetof(myc_info, stalled_since_ns) == 464, "myc_info.stalled_since_ns");
_Static_assert(offsetof(myc_info, hold_position) == 472, "myc_info.hold_position");

_Static_assert(sizeof(myc_cursor_info) == 128, "myc_cursor_info size (sys.rs: MycCursorInfo)");
_Static_assert(offsetof(myc_cursor_info, slot) == 40, "myc_cursor_info.slot");
_Static_assert(offsetof(myc_cursor_info, alive) == 60, "myc_cursor_info.alive");
_Static_assert(offsetof(myc_cursor_info, position) == 64, "myc_cursor_info.position");
_Static_assert(offsetof(myc_cursor_info, attached_ns) == 120, "myc_cursor_info.attached_ns");

/* The result codes and open flags that sys.rs repeats as constants. */
_Static_assert(MYC_ERR_FULL == -1 && MYC_ERR_EMPTY == -2 && MYC_ERR_ARG == -3, "results");
_Static_assert(MYC_ERR_NAME == -4 && MYC_ERR_NOT_FOUND == -5 && MYC_ERR_EXISTS == -6, "results");
_Static_assert(MYC_ERR_FORMAT == -7 && MYC_ERR_CORRUPT == -8 && MYC_ERR_READER_BUSY == -9, "results");
_Static_assert(MYC_ERR_SCHEMA == -10 && MYC_ERR_TOO_LARGE == -11 && MYC_ERR_INTERRUPTED == -12, "results");
_Static_assert(MYC_ERR_SYSTEM == -13 && MYC_ERR_HANDLE_BUSY == -14 && MYC_ERR_CLOSED == -15, "results");
_Static_assert(MYC_ERR_ABANDONED == -16 && MYC_ERR_TOO_MANY_WRITERS == -17, "results");
_Static_assert(MYC_ERR_FOREIGN == -18 && MYC_ERR_FORKED == -19, "results");
_Static_assert(MYC_ERR_LAPPED == -20 && MYC_ERR_TOO_MANY_READERS == -21, "results");
_Static_assert(MYC_TRUST_FOREIGN == 0x100 && MYC_START_OLDEST == 0x200, "open flags");
_Static_assert(MYC_READER_SLOTS == 10 && MYC_CURSOR_NAME_MAX == 39, "broadcast limits");
_Static_assert(MYC_POLICY_TETHERED == 1 && MYC_POLICY_LOSSY == 2, "reader policies");
_Static_assert(MYC_DEFAULT_UNTETHER_MS == 2000 && MYC_FEATURE_BROADCAST == 0x1, "broadcast");
_Static_assert(MYC_ATTACH == 0 && MYC_CREATE == 1 && MYC_CREATE_OR_ATTACH == 2, "open flags");
_Static_assert(MYC_DIGEST_SIZE == 32 && MYC_WRITER_SLOTS == 32, "array sizes");
_Static_assert(MYC_NAME_MAX == 245 && MYC_MIN_CAPACITY == 1024 && MYC_MAX_CAPACITY == (1ull << 32), "limits");
_Static_assert(MYC_FRAME_HEADER_SIZE == 16 && MYC_FRAME_ALIGNMENT == 16 && MYC_HEADER_SIZE == 4096, "frame");
_Static_assert(MYC_MAGIC == 0x4D55494C4543594DULL && MYC_FORMAT_VERSION == 2, "format version");
_Static_assert(MYC_TYPE_PADDING == 0 && MYC_TYPE_ID_MAX == 65535, "type ids");
_Static_assert(MYC_NO_HOLD == UINT64_MAX, "MYC_NO_HOLD");

/* The layout constants that sys.rs repeats. */
_Static_assert(MYC_INIT_READY == 0x21594452u, "MYC_INIT_READY");
_Static_assert(sizeof(MYC_NAME_PREFIX) == 11, "MYC_NAME_PREFIX is \"/mycelium.\"");
_Static_assert(MYC_BLOCK_SIZE == 128, "MYC_BLOCK_SIZE");
_Static_assert(MYC_OFF_MAGIC == 0x000, "MYC_OFF_MAGIC");
_Static_assert(MYC_OFF_VERSION == 0x008, "MYC_OFF_VERSION");
_Static_assert(MYC_OFF_HEADER_SIZE == 0x00C, "MYC_OFF_HEADER_SIZE");
_Static_assert(MYC_OFF_CAPACITY == 0x010, "MYC_OFF_CAPACITY");
_Static_assert(MYC_OFF_MAX_PAYLOAD == 0x018, "MYC_OFF_MAX_PAYLOAD");
_Static_assert(MYC_OFF_FEATURES == 0x01C, "MYC_OFF_FEATURES");
_Static_assert(MYC_OFF_SCHEMA_DIGEST == 0x020, "MYC_OFF_SCHEMA_DIGEST");
_Static_assert(MYC_OFF_CREATOR_PID == 0x040, "MYC_OFF_CREATOR_PID");
_Static_assert(MYC_OFF_CREATOR_START == 0x048, "MYC_OFF_CREATOR_START");
_Static_assert(MYC_OFF_CREATED_NS == 0x050, "MYC_OFF_CREATED_NS");
_Static_assert(MYC_OFF_READER_SLOTS == 0x058, "MYC_OFF_READER_SLOTS");
_Static_assert(MYC_OFF_UNTETHER_MS == 0x05C, "MYC_OFF_UNTETHER_MS");
_Static_assert(MYC_OFF_INIT == 0x078, "MYC_OFF_INIT");
_Static_assert(MYC_OFF_TAIL == 0x080, "MYC_OFF_TAIL");
_Static_assert(MYC_OFF_SEQ == 0x088, "MYC_OFF_SEQ");
_Static_assert(MYC_OFF_LAP_TABLE == 0x0C0 && MYC_LAP_ENTRIES == 4 && MYC_LAP_ENTRY_SIZE == 16, "lap table");
_Static_assert(MYC_OFF_CURSOR_LOCK == 0x128, "MYC_OFF_CURSOR_LOCK");
_Static_assert(MYC_OFF_READERS_SLEEPING == 0x190, "MYC_OFF_READERS_SLEEPING");
_Static_assert(MYC_OFF_UNTETHERED == 0x230, "MYC_OFF_UNTETHERED");
_Static_assert(MYC_CURSOR_SLOT_SIZE == 128, "MYC_CURSOR_SLOT_SIZE");
_Static_assert(MYC_OFF_HEAD == 0x100, "MYC_OFF_HEAD");
_Static_assert(MYC_OFF_READER_OWNER == 0x108, "MYC_OFF_READER_OWNER");
_Static_assert(MYC_OFF_HOLD == 0x110, "MYC_OFF_HOLD");
_Static_assert(MYC_OFF_HOLD_SLOT == 0x118, "MYC_OFF_HOLD_SLOT");
_Static_assert(MYC_OFF_STALL_PID == 0x11C, "MYC_OFF_STALL_PID");
_Static_assert(MYC_OFF_STALL_SINCE == 0x120, "MYC_OFF_STALL_SINCE");
_Static_assert(MYC_OFF_READER_FUTEX == 0x180, "MYC_OFF_READER_FUTEX");
_Static_assert(MYC_OFF_READER_SLEEPING == 0x184, "MYC_OFF_READER_SLEEPING");
_Static_assert(MYC_OFF_SPACE_FUTEX == 0x188, "MYC_OFF_SPACE_FUTEX");
_Static_assert(MYC_OFF_WAITING_MASK == 0x18C, "MYC_OFF_WAITING_MASK");
_Static_assert(MYC_OFF_FRAMES_WRITTEN == 0x200, "MYC_OFF_FRAMES_WRITTEN");
_Static_assert(MYC_OFF_BYTES_WRITTEN == 0x208, "MYC_OFF_BYTES_WRITTEN");
_Static_assert(MYC_OFF_FULL_EVENTS == 0x210, "MYC_OFF_FULL_EVENTS");
_Static_assert(MYC_OFF_WRITE_TIMEOUTS == 0x218, "MYC_OFF_WRITE_TIMEOUTS");
_Static_assert(MYC_OFF_WRITER_WAKES == 0x220, "MYC_OFF_WRITER_WAKES");
_Static_assert(MYC_OFF_ABANDONED == 0x228, "MYC_OFF_ABANDONED");
_Static_assert(MYC_OFF_FRAMES_READ == 0x280, "MYC_OFF_FRAMES_READ");
_Static_assert(MYC_OFF_BYTES_READ == 0x288, "MYC_OFF_BYTES_READ");
_Static_assert(MYC_OFF_PADDING_FRAMES == 0x290, "MYC_OFF_PADDING_FRAMES");
_Static_assert(MYC_OFF_UNBLOCKS == 0x298, "MYC_OFF_UNBLOCKS");
_Static_assert(MYC_OFF_READER_WAKES == 0x2A0, "MYC_OFF_READER_WAKES");
_Static_assert(MYC_OFF_READER_SLEEPS == 0x2A8, "MYC_OFF_READER_SLEEPS");
_Static_assert(MYC_OFF_TAKEOVERS == 0x2B0, "MYC_OFF_TAKEOVERS");
_Static_assert(MYC_OFF_FORCED_UNBLOCKS == 0x2B8, "MYC_OFF_FORCED_UNBLOCKS");
_Static_assert(MYC_OFF_WRITER_TABLE == 0x300, "MYC_OFF_WRITER_TABLE");
_Static_assert(MYC_WRITER_SLOT_SIZE == 64, "MYC_WRITER_SLOT_SIZE");
_Static_assert(MYC_SLOT_OFF_OWNER == 0, "MYC_SLOT_OFF_OWNER");
_Static_assert(MYC_SLOT_OFF_CLAIM_START == 8, "MYC_SLOT_OFF_CLAIM_START");
_Static_assert(MYC_SLOT_OFF_CLAIM_END == 16, "MYC_SLOT_OFF_CLAIM_END");
_Static_assert(MYC_SLOT_OFF_FRAMES == 24, "MYC_SLOT_OFF_FRAMES");
_Static_assert(MYC_SLOT_OFF_BYTES == 32, "MYC_SLOT_OFF_BYTES");
_Static_assert(MYC_SLOT_OFF_FULL == 40, "MYC_SLOT_OFF_FULL");
_Static_assert(MYC_SLOT_OFF_TIMEOUTS == 48, "MYC_SLOT_OFF_TIMEOUTS");
_Static_assert(MYC_OFF_READER_TABLE == 0xB00, "MYC_OFF_READER_TABLE");
_Static_assert(MYC_FRAME_OFF_STAMP == 0, "MYC_FRAME_OFF_STAMP");
_Static_assert(MYC_FRAME_OFF_LEN == 8, "MYC_FRAME_OFF_LEN");
_Static_assert(MYC_FRAME_OFF_TYPE == 12, "MYC_FRAME_OFF_TYPE");
_Static_assert(MYC_FRAME_OFF_FLAGS == 14, "MYC_FRAME_OFF_FLAGS");
_Static_assert(MYC_STAMP_STATE_MASK == 0xF && MYC_STAMP_CLAIMED == 1 && MYC_STAMP_COMMITTED == 2, "stamps");
_Static_assert(MYC_STAMP_PADDING == 3 && MYC_STAMP_REVOKED == 4, "stamps");

/* MYC_OWNER and its accessors (sys.rs: myc_owner, myc_owner_pid, myc_owner_start). */
_Static_assert(MYC_OWNER(1234, 0x100000007ull) == ((7ull << 32) | 1234u), "MYC_OWNER");
_Static_assert(MYC_OWNER_PID(0xffffffff00000042ull) == 0x42, "MYC_OWNER_PID");
_Static_assert(MYC_OWNER_START(0x0000000900000042ull) == 9, "MYC_OWNER_START");

/* ISO C forbids an empty translation unit. */
typedef int myc_rs_layout_checked;
