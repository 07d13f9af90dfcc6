//! Raw `extern "C"` declarations mirroring `csrc/ring.h`.
//!
//! Nothing here is safe to call without reading the contract in `ring.h`;
//! the safe API lives in [`crate::ShmWriter`] and [`crate::ShmReader`].
//! Struct layouts are checked twice: by the const assertions at the end of
//! this file and by `csrc_check/layout.c`, compiled by `build.rs` against the
//! real header, which repeats the same sizes and offsets as `_Static_assert`s.

use std::os::raw::{c_char, c_int};

/// The 8 bytes "MYCELIUM" read as a little-endian u64.
pub const MYC_MAGIC: u64 = 0x4D55_494C_4543_594D;
/// Format version written into every channel header.
pub const MYC_FORMAT_VERSION: u32 = 2;
/// Bytes of channel header before the ring.
pub const MYC_HEADER_SIZE: u32 = 4096;
/// Size of the schema digest (SHA-256).
pub const MYC_DIGEST_SIZE: usize = 32;
/// Bytes of frame header before each payload (stamp, length, type, flags).
pub const MYC_FRAME_HEADER_SIZE: u32 = 16;
/// Alignment of every frame in the ring; a frame occupies its length
/// rounded up to this.
pub const MYC_FRAME_ALIGNMENT: u32 = 16;
/// Type id 0 is reserved for padding frames.
pub const MYC_TYPE_PADDING: u32 = 0;
/// Largest type id.
pub const MYC_TYPE_ID_MAX: u32 = 65535;
/// Smallest ring capacity in bytes.
pub const MYC_MIN_CAPACITY: u64 = 1024;
/// Largest ring capacity in bytes.
pub const MYC_MAX_CAPACITY: u64 = 1 << 32;
/// Number of writer registry slots.
pub const MYC_WRITER_SLOTS: usize = 32;
/// Longest channel name in bytes.
pub const MYC_NAME_MAX: usize = 245;
/// Value of the HOLD word (and of [`MycInfo::hold_position`]) when no
/// force-unblocked claim is held.
pub const MYC_NO_HOLD: u64 = u64::MAX;

/// Success.
pub const MYC_OK: c_int = 0;
/// No room before the timeout.
pub const MYC_ERR_FULL: c_int = -1;
/// No frame before the timeout.
pub const MYC_ERR_EMPTY: c_int = -2;
/// Bad argument (see `myc_last_error`).
pub const MYC_ERR_ARG: c_int = -3;
/// Invalid channel name.
pub const MYC_ERR_NAME: c_int = -4;
/// No channel of that name.
pub const MYC_ERR_NOT_FOUND: c_int = -5;
/// Channel already exists.
pub const MYC_ERR_EXISTS: c_int = -6;
/// Not a channel of this format/version.
pub const MYC_ERR_FORMAT: c_int = -7;
/// Shared state violates the format.
pub const MYC_ERR_CORRUPT: c_int = -8;
/// A live reader is attached.
pub const MYC_ERR_READER_BUSY: c_int = -9;
/// Schema digest differs.
pub const MYC_ERR_SCHEMA: c_int = -10;
/// Payload larger than the channel maximum.
pub const MYC_ERR_TOO_LARGE: c_int = -11;
/// A signal arrived while waiting.
pub const MYC_ERR_INTERRUPTED: c_int = -12;
/// OS error; `myc_last_errno()` has errno.
pub const MYC_ERR_SYSTEM: c_int = -13;
/// Reader handle used by two threads.
pub const MYC_ERR_HANDLE_BUSY: c_int = -14;
/// Handle already closed.
pub const MYC_ERR_CLOSED: c_int = -15;
/// An operator force-unblocked this claim; the frame was dropped, never delivered.
pub const MYC_ERR_ABANDONED: c_int = -16;
/// All `MYC_WRITER_SLOTS` writer slots are taken.
pub const MYC_ERR_TOO_MANY_WRITERS: c_int = -17;
/// The channel is owned by another uid, or its mode is wider than the
/// opener's; refused without `MYC_TRUST_FOREIGN`.
pub const MYC_ERR_FOREIGN: c_int = -18;
/// The handle was opened by the parent of this forked process.
pub const MYC_ERR_FORKED: c_int = -19;
/// A frame held by a lossy (or untethered) broadcast reader was overwritten
/// while held: the bytes seen through it are not reliable.
pub const MYC_ERR_LAPPED: c_int = -20;
/// Every cursor slot of a broadcast channel holds a reader (or more readers
/// were asked for than [`MYC_READER_SLOTS`]).
pub const MYC_ERR_TOO_MANY_READERS: c_int = -21;

/// Open flag: the channel must exist.
pub const MYC_ATTACH: c_int = 0;
/// Open flag: the channel must not exist.
pub const MYC_CREATE: c_int = 1;
/// Open flag: create the channel unless it exists, else attach.
pub const MYC_CREATE_OR_ATTACH: c_int = 2;
/// Open flag (ORed in): attach to a channel of another uid, or with a wider
/// mode than the open's.
pub const MYC_TRUST_FOREIGN: c_int = 0x100;
/// Reader open flag (ORed in, broadcast): a new cursor starts at the oldest
/// frame writers still keep, not at the tail.
pub const MYC_START_OLDEST: c_int = 0x200;

/// Cursor slots of the header's cursor table: the most readers a broadcast
/// channel can have.
pub const MYC_READER_SLOTS: usize = 10;
/// Longest cursor name in bytes (UTF-8).
pub const MYC_CURSOR_NAME_MAX: usize = 39;
/// Reader policy: writers never overwrite a frame this reader has not read.
pub const MYC_POLICY_TETHERED: u32 = 1;
/// Reader policy: never slows writers; counts the frames it lost.
pub const MYC_POLICY_LOSSY: u32 = 2;
/// Untether window used when a channel is created with `untether_ms == 0`.
pub const MYC_DEFAULT_UNTETHER_MS: u32 = 2000;
/// Feature bit: `READER_SLOTS > 0`, the cursor table rules.
pub const MYC_FEATURE_BROADCAST: u32 = 0x1;

// Shared-memory layout (byte offsets), for tools that read a channel
// directly; the safe API never does.  Checked against ring.h by
// csrc_check/layout.c.

/// Value of the init word once the creator has finished the header ("RDY!").
pub const MYC_INIT_READY: u32 = 0x2159_4452;
/// Prefix of the POSIX shared-memory object name: "/mycelium." + name.
pub const MYC_NAME_PREFIX: &str = "/mycelium.";
/// Bytes per header block (each block has its own cache lines).
pub const MYC_BLOCK_SIZE: usize = 128;
/// `u64`: MYC_MAGIC.
pub const MYC_OFF_MAGIC: usize = 0x000;
/// `u32`: MYC_FORMAT_VERSION.
pub const MYC_OFF_VERSION: usize = 0x008;
/// `u32`: MYC_HEADER_SIZE.
pub const MYC_OFF_HEADER_SIZE: usize = 0x00C;
/// `u64`: ring bytes, power of two.
pub const MYC_OFF_CAPACITY: usize = 0x010;
/// `u32`: largest payload a frame may carry.
pub const MYC_OFF_MAX_PAYLOAD: usize = 0x018;
/// `u32`: feature bits ([`MYC_FEATURE_BROADCAST`]).
pub const MYC_OFF_FEATURES: usize = 0x01C;
/// `u8[32]`: SHA-256, all zero = no schema.
pub const MYC_OFF_SCHEMA_DIGEST: usize = 0x020;
/// `i32`: pid of the creating process.
pub const MYC_OFF_CREATOR_PID: usize = 0x040;
/// `u64`: creator start time (clock ticks).
pub const MYC_OFF_CREATOR_START: usize = 0x048;
/// `u64`: CLOCK_REALTIME at creation, ns.
pub const MYC_OFF_CREATED_NS: usize = 0x050;
/// `u32`: cursor slots, 0 = single reader, 1..[`MYC_READER_SLOTS`] = broadcast.
pub const MYC_OFF_READER_SLOTS: usize = 0x058;
/// `u32` (broadcast): how long a tethered reader may hold writers back
/// without reading before it is untethered, in ms.
pub const MYC_OFF_UNTETHER_MS: usize = 0x05C;
/// `u32`: MYC_INIT_READY, release-stored last.
pub const MYC_OFF_INIT: usize = 0x078;
/// `u64`: bytes ever claimed by writers.
pub const MYC_OFF_TAIL: usize = 0x080;
/// `u64` (broadcast): data frames ever claimed; 0 in single-reader channels.
pub const MYC_OFF_SEQ: usize = 0x088;
/// Lap table (broadcast): [`MYC_LAP_ENTRIES`] entries of
/// [`MYC_LAP_ENTRY_SIZE`] bytes, the frame index at each lap start.
pub const MYC_OFF_LAP_TABLE: usize = 0x0C0;
/// Entries of the lap table.
pub const MYC_LAP_ENTRIES: usize = 4;
/// Bytes per lap table entry (`u64` lap + 1, `u64` frame index).
pub const MYC_LAP_ENTRY_SIZE: usize = 16;
/// `u64`: bytes ever consumed by the reader.
pub const MYC_OFF_HEAD: usize = 0x100;
/// `u64`: reader owner identity (see [`myc_owner`]), 0 = none.
pub const MYC_OFF_READER_OWNER: usize = 0x108;
/// `u64`: position of a force-unblocked claim still owned by a live writer
/// (writers do not reuse space from there); [`MYC_NO_HOLD`] = none.
pub const MYC_OFF_HOLD: usize = 0x110;
/// `u32`: writer slot of the held claim.
pub const MYC_OFF_HOLD_SLOT: usize = 0x118;
/// `i32`: pid of the live writer the reader is waiting on, 0 = none.
pub const MYC_OFF_STALL_PID: usize = 0x11C;
/// `u64`: CLOCK_REALTIME ns when that stall began, 0 = none.
pub const MYC_OFF_STALL_SINCE: usize = 0x120;
/// `u64` (broadcast): owner identity of the process changing the cursor
/// table, 0 = none.
pub const MYC_OFF_CURSOR_LOCK: usize = 0x128;
/// `u32`: bumped by writers to wake reader.
pub const MYC_OFF_READER_FUTEX: usize = 0x180;
/// `u32`: 1 while the reader may sleep.
pub const MYC_OFF_READER_SLEEPING: usize = 0x184;
/// `u32`: bumped by reader to wake writers.
pub const MYC_OFF_SPACE_FUTEX: usize = 0x188;
/// `u32`: bit i set while writer slot i sleeps for room.
pub const MYC_OFF_WAITING_MASK: usize = 0x18C;
/// `u32` (broadcast): bit i set while the reader of cursor slot i may sleep.
pub const MYC_OFF_READERS_SLEEPING: usize = 0x190;
/// `u64`: frames committed by released or recycled writer slots (live
/// slots keep their own counts, see [`MYC_SLOT_OFF_FRAMES`]).
pub const MYC_OFF_FRAMES_WRITTEN: usize = 0x200;
/// `u64`: payload bytes committed by released or recycled writer slots.
pub const MYC_OFF_BYTES_WRITTEN: usize = 0x208;
/// `u64`: writes that found the ring full.
pub const MYC_OFF_FULL_EVENTS: usize = 0x210;
/// `u64`: blocking writes that gave up (Full).
pub const MYC_OFF_WRITE_TIMEOUTS: usize = 0x218;
/// `u64`: futex wakes issued by writers.
pub const MYC_OFF_WRITER_WAKES: usize = 0x220;
/// `u64`: frames whose commit found them revoked (force-unblocked).
pub const MYC_OFF_ABANDONED: usize = 0x228;
/// `u64` (broadcast): readers writers untethered.
pub const MYC_OFF_UNTETHERED: usize = 0x230;
/// `u64`: frames consumed by the reader.
pub const MYC_OFF_FRAMES_READ: usize = 0x280;
/// `u64`: payload bytes consumed by the reader.
pub const MYC_OFF_BYTES_READ: usize = 0x288;
/// `u64`: padding and revoked frames skipped.
pub const MYC_OFF_PADDING_FRAMES: usize = 0x290;
/// `u64`: dead writers' claims skipped.
pub const MYC_OFF_UNBLOCKS: usize = 0x298;
/// `u64`: futex wakes issued by the reader.
pub const MYC_OFF_READER_WAKES: usize = 0x2A0;
/// `u64`: times the reader slept on its futex.
pub const MYC_OFF_READER_SLEEPS: usize = 0x2A8;
/// `u64`: readers that replaced a dead reader.
pub const MYC_OFF_TAKEOVERS: usize = 0x2B0;
/// `u64`: claims revoked by `myc_force_unblock`.
pub const MYC_OFF_FORCED_UNBLOCKS: usize = 0x2B8;
/// Writer registry: MYC_WRITER_SLOTS slots of MYC_WRITER_SLOT_SIZE bytes.
pub const MYC_OFF_WRITER_TABLE: usize = 0x300;
/// Bytes per writer registry slot (one cache line, written by its owner
/// thread on every write).
pub const MYC_WRITER_SLOT_SIZE: usize = 64;
/// Slot `u64`: owner identity (see [`myc_owner`]), 0 = free.
pub const MYC_SLOT_OFF_OWNER: usize = 0;
/// Slot `u64`: first position of the slot's last claim.
pub const MYC_SLOT_OFF_CLAIM_START: usize = 8;
/// Slot `u64`: end of the slot's last claim.
pub const MYC_SLOT_OFF_CLAIM_END: usize = 16;
/// Slot `u64`: frames written (by the owner only).
pub const MYC_SLOT_OFF_FRAMES: usize = 24;
/// Slot `u64`: payload bytes written (by the owner only).
pub const MYC_SLOT_OFF_BYTES: usize = 32;
/// Slot `u64`: full events (by the owner only).
pub const MYC_SLOT_OFF_FULL: usize = 40;
/// Slot `u64`: write timeouts (by the owner only).
pub const MYC_SLOT_OFF_TIMEOUTS: usize = 48;
/// Cursor table of a broadcast channel: [`MYC_READER_SLOTS`] slots of
/// [`MYC_CURSOR_SLOT_SIZE`] bytes, one per reader.
pub const MYC_OFF_READER_TABLE: usize = 0xB00;
/// Bytes per cursor slot (two cache lines).
pub const MYC_CURSOR_SLOT_SIZE: usize = 128;
/// `u64` frame stamp: the frame's position | a `MYC_STAMP_*` state.  Valid
/// at position P only when it equals `P | state`.
pub const MYC_FRAME_OFF_STAMP: usize = 0;
/// `u32` frame length: header + payload bytes (not aligned).
pub const MYC_FRAME_OFF_LEN: usize = 8;
/// `u16` type id, 0 = padding.
pub const MYC_FRAME_OFF_TYPE: usize = 12;
/// `u16` flags, 0 in version 2.
pub const MYC_FRAME_OFF_FLAGS: usize = 14;
/// Bits of a stamp that hold the state (positions are 16-aligned).
pub const MYC_STAMP_STATE_MASK: u64 = 0xF;
/// Stamp state: header written, payload being copied.
pub const MYC_STAMP_CLAIMED: u64 = 1;
/// Stamp state: the frame is complete; deliver it.
pub const MYC_STAMP_COMMITTED: u64 = 2;
/// Stamp state: padding; skip frame_len bytes.
pub const MYC_STAMP_PADDING: u64 = 3;
/// Stamp state: force-unblocked; skip, never deliver.
pub const MYC_STAMP_REVOKED: u64 = 4;

/// `MYC_OWNER`: the owner identity stored in the reader owner word and in
/// writer slots: pid in the low half, the low 32 bits of the process start
/// time (clock ticks since boot) in the high half.
///
/// ```
/// use mycelium_shm::sys::{myc_owner, myc_owner_pid, myc_owner_start};
///
/// let owner = myc_owner(1234, 0x1_0000_0007);
/// assert_eq!((myc_owner_pid(owner), myc_owner_start(owner)), (1234, 7));
/// ```
pub const fn myc_owner(pid: i32, start_ticks: u64) -> u64 {
    (pid as u32 as u64) | ((start_ticks as u32 as u64) << 32)
}

/// `MYC_OWNER_PID`: the pid of an owner identity.
///
/// ```
/// assert_eq!(mycelium_shm::sys::myc_owner_pid(0xffff_ffff_0000_0042), 0x42);
/// ```
pub const fn myc_owner_pid(owner: u64) -> i32 {
    owner as u32 as i32
}

/// `MYC_OWNER_START`: the low 32 bits of an owner's process start time.
///
/// ```
/// assert_eq!(mycelium_shm::sys::myc_owner_start(0x0000_0009_0000_0042), 9);
/// ```
pub const fn myc_owner_start(owner: u64) -> u32 {
    (owner >> 32) as u32
}

/// Opaque writer handle (`myc_writer`).
#[repr(C)]
pub struct MycWriter {
    _private: [u8; 0],
}

/// Opaque reader handle (`myc_reader`).
#[repr(C)]
pub struct MycReader {
    _private: [u8; 0],
}

/// `myc_stats`: counters of a channel.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MycStats {
    /// Ring bytes.
    pub capacity: u64,
    /// Largest payload a frame may carry.
    pub max_payload: u64,
    /// Bytes ever consumed by the reader.
    pub head: u64,
    /// Bytes ever claimed by writers.
    pub tail: u64,
    /// Frames committed by writers.
    pub frames_written: u64,
    /// Payload bytes committed by writers.
    pub bytes_written: u64,
    /// Writes that found the ring full.
    pub full_events: u64,
    /// Blocking writes that gave up.
    pub write_timeouts: u64,
    /// Futex wakes issued by writers.
    pub writer_wakes: u64,
    /// Frames consumed by the reader.
    pub frames_read: u64,
    /// Payload bytes consumed by the reader.
    pub bytes_read: u64,
    /// Padding and revoked frames skipped.
    pub padding_frames: u64,
    /// Dead writers' claims skipped.
    pub unblocks: u64,
    /// Futex wakes issued by the reader.
    pub reader_wakes: u64,
    /// Times the reader slept on its futex.
    pub reader_sleeps: u64,
    /// Readers that replaced a dead reader.
    pub takeovers: u64,
}

/// `myc_frame`: a zero-copy view of one frame in the ring.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MycFrame {
    /// First payload byte, in the ring.
    pub payload: *const u8,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// Frame type id.
    pub type_id: u16,
    /// Frame flags (0 in format version 2).
    pub flags: u16,
}

/// `myc_reservation`: a claimed, not yet committed frame.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MycReservation {
    /// First writable payload byte, in the ring.
    pub payload: *mut u8,
    /// Ring position of the frame header.
    pub position: u64,
    /// Writable payload length in bytes.
    pub payload_len: u32,
    /// Frame type id.
    pub type_id: u32,
}

/// `myc_info`: a snapshot of a channel taken without attaching.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MycInfo {
    /// Counters.
    pub stats: MycStats,
    /// Schema digest, all zero for none.
    pub schema_digest: [u8; MYC_DIGEST_SIZE],
    /// CLOCK_REALTIME at creation, ns.
    pub created_ns: u64,
    /// Size of the shared-memory object.
    pub file_size: u64,
    /// Pid of the creating process.
    pub creator_pid: i32,
    /// 1 if the creator still lives.
    pub creator_alive: i32,
    /// Pid of the attached reader, 0 for none.
    pub reader_pid: i32,
    /// 1 if the reader still lives.
    pub reader_alive: i32,
    /// Format version of the channel.
    pub format_version: u32,
    /// Registered writer slots in use.
    pub writer_count: u32,
    /// Pids of registered writers (0 = free slot).
    pub writer_pids: [i32; MYC_WRITER_SLOTS],
    /// 1 where the registered writer still lives.
    pub writer_alive: [i32; MYC_WRITER_SLOTS],
    /// Pid of the live writer whose unfinished claim holds the reader, 0 = none.
    pub stalled_pid: i32,
    /// Reserved (0).
    pub reader_slots: u32,
    /// CLOCK_REALTIME ns when that stall began, 0 = none.
    pub stalled_since_ns: u64,
    /// [`MYC_NO_HOLD`], or the position of a revoked claim whose writer has
    /// not yet returned (writers do not reuse space from there).
    pub hold_position: u64,
}

/// `myc_cursor_info`: one reader's cursor in a broadcast channel's table.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MycCursorInfo {
    /// NUL-terminated UTF-8 name, empty for an anonymous cursor.
    pub name: [c_char; MYC_CURSOR_NAME_MAX + 1],
    /// Slot in the cursor table.
    pub slot: u32,
    /// [`MYC_POLICY_TETHERED`] or [`MYC_POLICY_LOSSY`].
    pub policy: u32,
    /// 1: named, kept (with its position) after its reader leaves.
    pub durable: u32,
    /// 1: writers currently wait for it.
    pub tethered: u32,
    /// Pid of its reader, 0 = detached.
    pub pid: i32,
    /// 1 if that reader still lives.
    pub alive: i32,
    /// Ring position: everything before it is read.
    pub position: u64,
    /// Bytes written but not yet read by it (TAIL - position).
    pub lag: u64,
    /// Frames it read.
    pub frames_read: u64,
    /// Payload bytes it read.
    pub bytes_read: u64,
    /// Frames it lost when writers lapped it.
    pub lost: u64,
    /// Times it was lapped.
    pub laps: u64,
    /// Times writers untethered it.
    pub untethers: u64,
    /// CLOCK_REALTIME ns of its last attach.
    pub attached_ns: u64,
}

extern "C" {
    /// Human-readable detail of the last error on this thread ("" if none).
    pub fn myc_last_error() -> *const c_char;
    /// errno of the last `MYC_ERR_SYSTEM` on this thread.
    pub fn myc_last_errno() -> c_int;
    /// Static name of a result code.
    pub fn myc_result_name(result: c_int) -> *const c_char;

    /// Process-wide: blocking calls return `MYC_ERR_INTERRUPTED` at least
    /// every `slice_ns` (0 = never, the default).
    pub fn myc_set_wait_slice(slice_ns: i64);

    /// `MYC_OK` if `name` is a valid channel name, else `MYC_ERR_NAME`.
    pub fn myc_name_check(name: *const c_char) -> c_int;
    /// Remove the channel's shared-memory object.
    pub fn myc_unlink(name: *const c_char) -> c_int;

    /// Open a writer.
    pub fn myc_writer_open(
        name: *const c_char,
        flags: c_int,
        capacity: u64,
        max_payload: u32,
        mode: u32,
        schema_digest: *const u8,
        out: *mut *mut MycWriter,
    ) -> c_int;
    /// Close a writer handle.
    pub fn myc_writer_close(writer: *mut MycWriter);
    /// Copy one frame in.
    pub fn myc_write(
        writer: *mut MycWriter,
        type_id: u32,
        payload: *const u8,
        payload_len: u32,
        timeout_ns: i64,
    ) -> c_int;
    /// Write the longest prefix of `count` frames that fits, with one claim.
    pub fn myc_write_batch(
        writer: *mut MycWriter,
        count: u32,
        type_ids: *const u16,
        lens: *const u32,
        payloads: *const u8,
        timeout_ns: i64,
    ) -> i64;
    /// Claim room for a frame.
    pub fn myc_reserve(
        writer: *mut MycWriter,
        type_id: u32,
        payload_len: u32,
        timeout_ns: i64,
        res: *mut MycReservation,
    ) -> c_int;
    /// Commit a reservation.
    pub fn myc_commit(writer: *mut MycWriter, res: *mut MycReservation) -> c_int;
    /// Abort a reservation (it becomes padding).
    pub fn myc_abort(writer: *mut MycWriter, res: *mut MycReservation) -> c_int;

    /// Open the channel's single reader.
    pub fn myc_reader_open(
        name: *const c_char,
        flags: c_int,
        capacity: u64,
        max_payload: u32,
        mode: u32,
        schema_digest: *const u8,
        out: *mut *mut MycReader,
    ) -> c_int;
    /// As `myc_writer_open`, plus `readers` (cursor slots of a broadcast
    /// channel; creating only, checked when non-zero on attach) and
    /// `untether_ms` (0 = [`MYC_DEFAULT_UNTETHER_MS`]).
    pub fn myc_writer_open_ex(
        name: *const c_char,
        flags: c_int,
        capacity: u64,
        max_payload: u32,
        mode: u32,
        schema_digest: *const u8,
        readers: u32,
        untether_ms: u32,
        out: *mut *mut MycWriter,
    ) -> c_int;
    /// As `myc_reader_open`, plus the broadcast arguments: `readers` and
    /// `untether_ms` as for `myc_writer_open_ex`, `cursor` (NULL =
    /// anonymous) and `policy` (0 = tethered); flags may hold
    /// [`MYC_START_OLDEST`].
    pub fn myc_reader_open_ex(
        name: *const c_char,
        flags: c_int,
        capacity: u64,
        max_payload: u32,
        mode: u32,
        schema_digest: *const u8,
        readers: u32,
        untether_ms: u32,
        cursor: *const c_char,
        policy: u32,
        out: *mut *mut MycReader,
    ) -> c_int;
    /// This reader's cursor (`MYC_ERR_ARG` on a single-reader channel).
    pub fn myc_reader_cursor(reader: *const MycReader, out: *mut MycCursorInfo) -> c_int;
    /// The cursors of channel `name`: fills up to `max` entries and sets
    /// `*count` to the number in use.
    pub fn myc_inspect_cursors(
        name: *const c_char,
        out: *mut MycCursorInfo,
        max: u32,
        count: *mut u32,
    ) -> c_int;
    /// Free a durable cursor no live reader holds.
    pub fn myc_cursor_forget(name: *const c_char, cursor: *const c_char) -> c_int;
    /// Create a durable, tethered cursor at the tail, held by nobody.
    pub fn myc_cursor_register(name: *const c_char, cursor: *const c_char) -> c_int;
    /// After `myc_peek`: `MYC_OK` if the held frame is intact,
    /// `MYC_ERR_LAPPED` if a writer may have overwritten it.
    pub fn myc_reader_check_held(reader: *mut MycReader) -> c_int;
    /// Close a reader handle.
    pub fn myc_reader_close(reader: *mut MycReader);
    /// Set how long an unfinished claim may hold the reader before it
    /// checks whether the claiming writer is alive.
    pub fn myc_reader_set_stuck_timeout(reader: *mut MycReader, timeout_ns: i64);
    /// Set how long a waiting reader spins before sleeping.
    pub fn myc_reader_set_spin(reader: *mut MycReader, spin_ns: i64);
    /// Set how long a waiting writer spins before sleeping.
    pub fn myc_writer_set_spin(writer: *mut MycWriter, spin_ns: i64);
    /// Copy the next frame's payload into `buf`.
    pub fn myc_read(reader: *mut MycReader, timeout_ns: i64, buf: *mut u8, buf_len: u64) -> i64;
    /// Point `frame` at the next frame in the ring.
    pub fn myc_peek(reader: *mut MycReader, timeout_ns: i64, frame: *mut MycFrame) -> c_int;
    /// Consume the frame returned by the last `myc_peek`.
    pub fn myc_release(reader: *mut MycReader);
    /// Copy up to `max_frames` frames.
    pub fn myc_read_batch(
        reader: *mut MycReader,
        max_frames: u32,
        timeout_ns: i64,
        buf: *mut u8,
        buf_len: u64,
        type_ids: *mut u16,
        lens: *mut u32,
    ) -> i64;

    /// Counters as seen by a writer.
    pub fn myc_writer_stats(writer: *const MycWriter, out: *mut MycStats) -> c_int;
    /// Counters as seen by the reader.
    pub fn myc_reader_stats(reader: *const MycReader, out: *mut MycStats) -> c_int;
    /// Validate a channel's header and fill `out`.
    pub fn myc_inspect(name: *const c_char, out: *mut MycInfo) -> c_int;
    /// Revoke the claim of a live writer that holds the reader of `name`;
    /// `pid_out` / `position_out` (may be NULL) say whose claim and where.
    pub fn myc_force_unblock(name: *const c_char, pid_out: *mut i32, position_out: *mut u64) -> c_int;
    /// Frames a failed `myc_write_batch` wrote (and committed) before
    /// failing, on this thread.
    pub fn myc_last_batch_written() -> u32;
    /// 1 if `pid` is a live process (and the same one, if `start_ticks != 0`).
    pub fn myc_pid_alive(pid: i32, start_ticks: u64) -> c_int;
}

// The same numbers as csrc_check/layout.c asserts against ring.h.
const _: () = assert!(std::mem::size_of::<MycStats>() == 128);
const _: () = assert!(std::mem::size_of::<MycFrame>() == 16);
const _: () = assert!(std::mem::size_of::<MycReservation>() == 24);
const _: () = assert!(std::mem::size_of::<MycInfo>() == 480);
const _: () = assert!(std::mem::offset_of!(MycInfo, created_ns) == 160);
const _: () = assert!(std::mem::offset_of!(MycInfo, format_version) == 192);
const _: () = assert!(std::mem::offset_of!(MycInfo, writer_alive) == 328);
const _: () = assert!(std::mem::offset_of!(MycInfo, stalled_pid) == 456);
const _: () = assert!(std::mem::offset_of!(MycInfo, reader_slots) == 460);
const _: () = assert!(std::mem::offset_of!(MycInfo, stalled_since_ns) == 464);
const _: () = assert!(std::mem::offset_of!(MycInfo, hold_position) == 472);
const _: () = assert!(std::mem::offset_of!(MycFrame, type_id) == 12);
const _: () = assert!(std::mem::offset_of!(MycReservation, type_id) == 20);
const _: () = assert!(std::mem::size_of::<MycCursorInfo>() == 128);
const _: () = assert!(std::mem::offset_of!(MycCursorInfo, slot) == 40);
const _: () = assert!(std::mem::offset_of!(MycCursorInfo, alive) == 60);
const _: () = assert!(std::mem::offset_of!(MycCursorInfo, position) == 64);
const _: () = assert!(std::mem::offset_of!(MycCursorInfo, attached_ns) == 120);
