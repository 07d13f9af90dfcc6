//! The safe channel API: [`ShmWriter`], [`ShmReader`] and their guards.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::os::raw::c_int;
use std::ptr::{self, NonNull};
use std::time::{Duration, SystemTime};

use crate::codec::{Encode, Schema};
use crate::error::{check, BatchError, Error, Result};
use crate::sys;

/// Counters of a channel (`myc_stats`), from [`ShmWriter::stats`],
/// [`ShmReader::stats`] or [`inspect`].
pub type Stats = sys::MycStats;

/// How an open call treats an existing channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenMode {
    /// The channel must exist (`MYC_ATTACH`).
    #[default]
    Attach,
    /// The channel must not exist; it is created (`MYC_CREATE`).
    Create,
    /// Create the channel unless it exists, else attach (`MYC_CREATE_OR_ATTACH`).
    CreateOrAttach,
}

impl OpenMode {
    fn flags(self) -> c_int {
        match self {
            OpenMode::Attach => sys::MYC_ATTACH,
            OpenMode::Create => sys::MYC_CREATE,
            OpenMode::CreateOrAttach => sys::MYC_CREATE_OR_ATTACH,
        }
    }
}

/// Parameters of a channel, used by every open call.
///
/// `capacity`, `max_payload`, `mode` and `untether` only matter when the
/// call creates the channel; a `schema_digest` is checked on attach too (a
/// channel made with another digest is refused with
/// [`Error::SchemaMismatch`]), and so is a non-zero `readers` (a channel
/// with another number of cursor slots is refused with
/// [`Error::InvalidArgument`]).
///
/// ```
/// use std::time::Duration;
/// use mycelium_shm::Options;
///
/// let opts = Options::new().capacity(1 << 16).max_payload(1024).mode(0o600);
/// assert_eq!(opts.capacity, 65536);
/// // A broadcast channel: up to 4 readers, each with its own cursor.
/// let fan_out = Options::new().readers(4).untether(Duration::from_millis(500));
/// assert_eq!((fan_out.readers, fan_out.untether), (4, Some(Duration::from_millis(500))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Ring bytes: a power of two from 1 KiB to 4 GiB.
    pub capacity: u64,
    /// Largest payload of a frame; 0 means `capacity / 4 - 16` (a quarter
    /// of the ring less one frame header).
    pub max_payload: u32,
    /// File mode of the shared-memory object; 0 means 0600.
    pub mode: u32,
    /// SHA-256 digest of the message schema; `None` means no schema.
    pub schema_digest: Option<[u8; 32]>,
    /// Cursor slots of a broadcast channel: 0 (the default) makes a
    /// single-reader channel; 1 to [`MAX_READERS`] a broadcast channel that
    /// many readers may read at once, each at its own cursor.  When
    /// attaching, 0 accepts any channel and a non-zero value must equal the
    /// channel's.
    pub readers: u32,
    /// Broadcast channels: how long a tethered reader may hold writers back
    /// without reading before a writer untethers it; `None` means the
    /// default, 2 s.  At least 1 ms.
    pub untether: Option<Duration>,
}

/// The most readers a broadcast channel can have (the slots of the cursor
/// table in the channel header).
pub const MAX_READERS: u32 = sys::MYC_READER_SLOTS as u32;

/// The longest cursor name, in bytes of UTF-8.
pub const CURSOR_NAME_MAX: usize = sys::MYC_CURSOR_NAME_MAX;

impl Default for Options {
    fn default() -> Self {
        Options {
            capacity: Options::DEFAULT_CAPACITY,
            max_payload: 0,
            mode: 0,
            schema_digest: None,
            readers: 0,
            untether: None,
        }
    }
}

impl Options {
    /// Ring capacity used when none is given: 1 MiB.
    pub const DEFAULT_CAPACITY: u64 = 1 << 20;

    /// The defaults: 1 MiB ring, default max payload and mode, no schema.
    ///
    /// ```
    /// assert_eq!(mycelium_shm::Options::new().schema_digest, None);
    /// ```
    pub fn new() -> Self {
        Options::default()
    }

    /// Set the ring capacity in bytes.
    ///
    /// ```
    /// assert_eq!(mycelium_shm::Options::new().capacity(4096).capacity, 4096);
    /// ```
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Set the largest payload in bytes.
    ///
    /// ```
    /// assert_eq!(mycelium_shm::Options::new().max_payload(100).max_payload, 100);
    /// ```
    pub fn max_payload(mut self, max_payload: u32) -> Self {
        self.max_payload = max_payload;
        self
    }

    /// Set the file mode of the shared-memory object.
    ///
    /// ```
    /// assert_eq!(mycelium_shm::Options::new().mode(0o640).mode, 0o640);
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Set the schema digest (see [`crate::generated::SCHEMA_DIGEST`]).
    ///
    /// ```
    /// let opts = mycelium_shm::Options::new().schema_digest([7; 32]);
    /// assert_eq!(opts.schema_digest, Some([7; 32]));
    /// ```
    pub fn schema_digest(mut self, digest: [u8; 32]) -> Self {
        self.schema_digest = Some(digest);
        self
    }

    /// Set the schema digest to that of the generated schema `M`
    /// ([`Schema::DIGEST`]).
    ///
    /// ```
    /// use mycelium_shm::generated::{Message, SCHEMA_DIGEST};
    ///
    /// let opts = mycelium_shm::Options::new().schema::<Message>();
    /// assert_eq!(opts.schema_digest, Some(SCHEMA_DIGEST));
    /// ```
    pub fn schema<M: Schema>(self) -> Self {
        self.schema_digest(M::DIGEST)
    }

    /// Make (or, attaching, expect) a broadcast channel with `readers`
    /// cursor slots (1 to [`MAX_READERS`]; 0: a single-reader channel).
    /// More than [`MAX_READERS`] is refused by the open call with
    /// [`Error::TooManyReaders`].
    ///
    /// ```
    /// assert_eq!(mycelium_shm::Options::new().readers(3).readers, 3);
    /// ```
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers;
        self
    }

    /// Set the untether window of a broadcast channel being created: a
    /// tethered reader that holds writers back for this long without
    /// reading (or whose process died) is untethered, so writers go on.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let opts = mycelium_shm::Options::new().readers(2).untether(Duration::from_secs(1));
    /// assert_eq!(opts.untether, Some(Duration::from_secs(1)));
    /// ```
    pub fn untether(mut self, window: Duration) -> Self {
        self.untether = Some(window);
        self
    }

    /// `untether` in milliseconds as the C core takes it (0: the default).
    fn untether_ms(&self) -> Result<u32> {
        match self.untether {
            None => Ok(0),
            Some(d) => match u32::try_from(d.as_millis()) {
                Ok(ms) if ms >= 1 => Ok(ms),
                _ => Err(Error::InvalidArgument(format!(
                    "untether must be from 1 ms to {} ms, not {d:?}",
                    u32::MAX
                ))),
            },
        }
    }

    fn digest_ptr(&self) -> *const u8 {
        match &self.schema_digest {
            Some(d) => d.as_ptr(),
            None => ptr::null(),
        }
    }
}

/// Convert a timeout to the C convention: `None` waits forever (-1),
/// `Some(d)` waits at most `d` (0 = do not wait), saturating at `i64::MAX` ns.
fn timeout_ns(timeout: Option<Duration>) -> i64 {
    match timeout {
        None => -1,
        Some(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
    }
}

fn c_name(name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| Error::InvalidName(format!("channel name {name:?} holds a NUL byte")))
}

fn payload_len(payload: usize) -> Result<u32> {
    u32::try_from(payload).map_err(|_| Error::TooLarge(format!("payload of {payload} bytes exceeds u32")))
}

/// Check that `name` is a valid channel name.
///
/// ```
/// use mycelium_shm::{check_name, Error};
///
/// assert!(check_name("orders-1").is_ok());
/// assert!(matches!(check_name("a/b"), Err(Error::InvalidName(_))));
/// ```
pub fn check_name(name: &str) -> Result<()> {
    let c = c_name(name)?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    check(unsafe { sys::myc_name_check(c.as_ptr()) })
}

/// Remove a channel's shared-memory object.  Open handles stay valid; the
/// memory is freed when the last one closes.
///
/// ```
/// use mycelium_shm::{unlink, Error};
///
/// assert!(matches!(unlink("no-such-channel-doc-unlink"), Err(Error::NotFound(_))));
/// ```
pub fn unlink(name: &str) -> Result<()> {
    let c = c_name(name)?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    check(unsafe { sys::myc_unlink(c.as_ptr()) })
}

/// Unlinks a channel when dropped, even if the code in between panics: for
/// tests, examples and channels that live as long as one scope.  A channel
/// already gone is not an error.
///
/// ```
/// use mycelium_shm::{inspect, Options, ShmWriter, UnlinkGuard};
///
/// let name = format!("doc-guard-{}", std::process::id());
/// {
///     let _guard = UnlinkGuard::new(&name);
///     let _w = ShmWriter::create(&name, &Options::new()).unwrap();
/// }
/// assert!(inspect(&name).is_err());
/// ```
#[derive(Debug)]
pub struct UnlinkGuard(String);

impl UnlinkGuard {
    /// Guard the channel `name`.
    ///
    /// ```
    /// let _guard = mycelium_shm::UnlinkGuard::new("doc-guard-new");
    /// ```
    pub fn new(name: &str) -> UnlinkGuard {
        UnlinkGuard(name.to_owned())
    }
}

impl Drop for UnlinkGuard {
    fn drop(&mut self) {
        let _ = unlink(&self.0);
    }
}

/// Process-wide: make every blocking call of this process return
/// [`Error::Interrupted`] at least every `slice` (`None`, the default: never),
/// so a caller can look at flags set by its signal handlers and call again
/// with the time left.  Without a slice, only a signal delivered to the
/// waiting thread interrupts a wait.
///
/// ```
/// use std::time::Duration;
/// use mycelium_shm::{set_wait_slice, unlink, Error, Options, ShmReader};
///
/// let name = format!("doc-slice-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let mut r = ShmReader::create(&name, &Options::new()).unwrap();
/// set_wait_slice(Some(Duration::from_millis(5)));
/// assert!(matches!(r.read(Some(Duration::from_secs(5))), Err(Error::Interrupted(_))));
/// set_wait_slice(None);
/// unlink(&name).unwrap();
/// ```
pub fn set_wait_slice(slice: Option<Duration>) {
    let ns = match slice {
        None => 0,
        Some(d) => timeout_ns(Some(d)).max(1),
    };
    // SAFETY: a relaxed store of a process-wide setting; any value is valid.
    unsafe { sys::myc_set_wait_slice(ns) }
}

/// A snapshot of a channel, taken by [`inspect`] without attaching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Counters.
    pub stats: Stats,
    /// Schema digest, `None` when the channel has none (all zero).
    pub schema_digest: Option<[u8; 32]>,
    /// CLOCK_REALTIME at creation, in nanoseconds.
    pub created_ns: u64,
    /// Size of the shared-memory object in bytes.
    pub file_size: u64,
    /// Pid of the creating process.
    pub creator_pid: i32,
    /// Whether the creating process still lives.
    pub creator_alive: bool,
    /// Pid of the attached reader, `None` if no reader is attached.
    pub reader_pid: Option<i32>,
    /// Whether the attached reader still lives.
    pub reader_alive: bool,
    /// Format version of the channel.
    pub format_version: u32,
    /// `(pid, alive)` of every registered writer (one entry per process,
    /// whatever its number of writing threads).
    pub writers: Vec<(i32, bool)>,
    /// Pid of the live writer whose unfinished claim the reader is waiting
    /// on (back-pressure), `None` if the reader is not held.  Such a stall
    /// can be ended by [`force_unblock`].
    pub stalled_pid: Option<i32>,
    /// When that stall began (CLOCK_REALTIME), `None` if there is none.
    pub stalled_since: Option<SystemTime>,
    /// Ring position of a force-unblocked claim whose writer has not yet
    /// returned from it: writers do not reuse space from there until it
    /// does (or dies).  `None` when no such claim is held.
    pub hold_position: Option<u64>,
    /// Cursor slots: 0 for a single-reader channel, else the most readers
    /// of this broadcast channel (see [`inspect_cursors`]).
    pub reader_slots: u32,
}

/// Inspect a channel without attaching as reader or writer.
///
/// ```
/// use mycelium_shm::{inspect, unlink, Options, ShmWriter};
///
/// let name = format!("doc-inspect-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let w = ShmWriter::create(&name, &Options::new().capacity(4096)).unwrap();
/// let info = inspect(&name).unwrap();
/// assert_eq!(info.stats.capacity, 4096);
/// assert_eq!(info.creator_pid, std::process::id() as i32);
/// assert_eq!(info.writers, [(std::process::id() as i32, true)]);
/// drop(w);
/// unlink(&name).unwrap();
/// ```
pub fn inspect(name: &str) -> Result<Info> {
    let c = c_name(name)?;
    let mut raw = std::mem::MaybeUninit::<sys::MycInfo>::zeroed();
    // SAFETY: c is NUL-terminated; raw points to writable memory of the
    // size and layout of myc_info (checked by the layout assertions), and
    // all-zero bytes are a valid MycInfo.
    check(unsafe { sys::myc_inspect(c.as_ptr(), raw.as_mut_ptr()) })?;
    // SAFETY: zero-initialised and then filled by the C core; every bit
    // pattern is valid for this plain-integer struct.
    let raw = unsafe { raw.assume_init() };
    let writers = raw
        .writer_pids
        .iter()
        .zip(raw.writer_alive.iter())
        .take((raw.writer_count as usize).min(sys::MYC_WRITER_SLOTS))
        .map(|(pid, alive)| (*pid, *alive != 0))
        .collect();
    Ok(Info {
        stats: raw.stats,
        schema_digest: if raw.schema_digest == [0; 32] { None } else { Some(raw.schema_digest) },
        created_ns: raw.created_ns,
        file_size: raw.file_size,
        creator_pid: raw.creator_pid,
        creator_alive: raw.creator_alive != 0,
        reader_pid: if raw.reader_pid == 0 { None } else { Some(raw.reader_pid) },
        reader_alive: raw.reader_alive != 0,
        format_version: raw.format_version,
        writers,
        stalled_pid: if raw.stalled_pid == 0 { None } else { Some(raw.stalled_pid) },
        stalled_since: if raw.stalled_since_ns == 0 {
            None
        } else {
            Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(raw.stalled_since_ns))
        },
        hold_position: if raw.hold_position == sys::MYC_NO_HOLD { None } else { Some(raw.hold_position) },
        reader_slots: raw.reader_slots,
    })
}

/// The operator's escape hatch: revoke the unfinished claim of a live
/// writer that holds the reader of channel `name` (a writer stopped, or
/// stuck, between claiming a frame and committing it).  Returns the pid of
/// that writer and the ring position of the revoked frame.
///
/// The reader skips the revoked frame and goes on; none of its bytes reach
/// a reader.  The writer's commit then fails with [`Error::Abandoned`] (a
/// [`ShmWriter::write_batch`] reports how many of its frames went out before
/// it, see [`BatchError`]).  Writers do not reuse the frame's space until
/// that writer has returned or died ([`Info::hold_position`] shows it).
/// A claim of a *dead* writer needs none of this: the reader skips it by
/// itself.
///
/// Errors: [`Error::Empty`] if no claim holds the reader (nothing to do, or
/// the frame was committed meanwhile); [`Error::ReaderBusy`] if the claim
/// cannot be revoked yet (its writer has not written the frame header, or
/// an earlier revoked claim is still held); [`Error::NotFound`] if there is
/// no such channel.
///
/// ```
/// use std::time::Duration;
/// use mycelium_shm::{force_unblock, inspect, Error, Options, ShmReader, ShmWriter};
///
/// let name = format!("doc-force-unblock-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let mut reader = ShmReader::create(&name, &Options::new()).unwrap();
/// reader.set_stuck_timeout(Duration::from_millis(1));
/// let writer = ShmWriter::attach(&name, &Options::new()).unwrap();
/// let other = ShmWriter::attach(&name, &Options::new()).unwrap();
/// assert!(matches!(force_unblock(&name), Err(Error::Empty(_))), "nothing holds the reader");
///
/// // A live writer claims a frame and stalls; the frame after it waits.
/// let stalled = writer.reserve(1, 8, None).unwrap();
/// other.write(2, b"next", None).unwrap();
/// assert_eq!(reader.read(Some(Duration::from_millis(20))).unwrap(), None);
/// assert_eq!(inspect(&name).unwrap().stalled_pid, Some(std::process::id() as i32));
///
/// let (pid, position) = force_unblock(&name).unwrap();
/// assert_eq!((pid, position), (std::process::id() as i32, 0));
/// assert_eq!(reader.read(None).unwrap().unwrap().payload, b"next");
/// assert!(matches!(stalled.commit(), Err(Error::Abandoned(_))));
/// ```
pub fn force_unblock(name: &str) -> Result<(i32, u64)> {
    let c = c_name(name)?;
    let mut pid: i32 = 0;
    let mut position: u64 = 0;
    // SAFETY: c is NUL-terminated; pid and position are valid, writable
    // places for the C core to store an i32 and a u64 during the call.
    check(unsafe { sys::myc_force_unblock(c.as_ptr(), &mut pid, &mut position) })?;
    Ok((pid, position))
}

// ------------------------------------------------------------------------
// Broadcast channels: reader cursors
// ------------------------------------------------------------------------

/// How a broadcast reader treats writers (chosen when it attaches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Policy {
    /// Writers never overwrite a frame this reader has not read: they wait
    /// for it (within their timeout), unless it dies or stops reading for
    /// the channel's untether window; then it is untethered (counted), reads
    /// on what is left and lossily after that, and is tethered again once
    /// it has caught up.
    #[default]
    Tethered,
    /// Never slows writers.  When lapped, the reader resumes at the oldest
    /// frame still in the ring and counts exactly the frames it missed
    /// ([`ShmReader::lost`]); its zero-copy views may be overwritten while
    /// held ([`Error::Lapped`]).
    Lossy,
}

impl Policy {
    fn raw(self) -> u32 {
        match self {
            Policy::Tethered => sys::MYC_POLICY_TETHERED,
            Policy::Lossy => sys::MYC_POLICY_LOSSY,
        }
    }

    /// The policy of a `MYC_POLICY_*` code, `None` for another value.
    ///
    /// ```
    /// use mycelium_shm::{sys, Policy};
    ///
    /// assert_eq!(Policy::from_raw(sys::MYC_POLICY_LOSSY), Some(Policy::Lossy));
    /// assert_eq!(Policy::from_raw(7), None);
    /// ```
    pub fn from_raw(code: u32) -> Option<Policy> {
        match code {
            sys::MYC_POLICY_TETHERED => Some(Policy::Tethered),
            sys::MYC_POLICY_LOSSY => Some(Policy::Lossy),
            _ => None,
        }
    }

    /// The policy's name, as the Python package spells it.
    ///
    /// ```
    /// assert_eq!(mycelium_shm::Policy::Lossy.name(), "lossy");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Policy::Tethered => "tethered",
            Policy::Lossy => "lossy",
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = Error;

    /// `"tethered"` or `"lossy"`; [`Error::InvalidArgument`] otherwise.
    ///
    /// ```
    /// use mycelium_shm::{Error, Policy};
    ///
    /// assert_eq!("lossy".parse::<Policy>().unwrap(), Policy::Lossy);
    /// assert!(matches!("eager".parse::<Policy>(), Err(Error::InvalidArgument(_))));
    /// ```
    fn from_str(s: &str) -> Result<Policy> {
        match s {
            "tethered" => Ok(Policy::Tethered),
            "lossy" => Ok(Policy::Lossy),
            other => Err(Error::InvalidArgument(format!(
                "unknown reader policy {other:?}: use \"tethered\" or \"lossy\""
            ))),
        }
    }
}

/// Where a *new* cursor of a broadcast reader starts (a named cursor that
/// already exists resumes at its own position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Start {
    /// At the tail: the reader gets the frames written after it attached.
    #[default]
    Tail,
    /// At the oldest frame writers still keep in the ring.
    Oldest,
}

/// How a reader attaches to a broadcast channel: its cursor's name,
/// [`Policy`] and, for a new cursor, where it [`Start`]s.  The default
/// (anonymous, tethered, at the tail) is what [`ShmReader::open`] uses.
///
/// A named cursor is durable: it keeps its position when its reader closes
/// or dies, and the next reader opening that name resumes there, without
/// loss or duplicate ([`Error::ReaderBusy`] while a live reader holds it;
/// [`forget_cursor`] frees it).  An anonymous cursor is freed when its
/// reader goes.
///
/// ```
/// use mycelium_shm::{Policy, ReaderOptions, Start};
///
/// let opts = ReaderOptions::new().cursor("risk").policy(Policy::Lossy).start(Start::Oldest);
/// assert_eq!(opts.cursor.as_deref(), Some("risk"));
/// assert_eq!((opts.policy, opts.start), (Policy::Lossy, Start::Oldest));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReaderOptions {
    /// The cursor's name (1 to [`CURSOR_NAME_MAX`] bytes, no control
    /// character); `None`: an anonymous cursor.
    pub cursor: Option<String>,
    /// Tethered (the default) or lossy.
    pub policy: Policy,
    /// Where a new cursor starts.
    pub start: Start,
}

impl ReaderOptions {
    /// An anonymous tethered cursor starting at the tail.
    ///
    /// ```
    /// assert_eq!(mycelium_shm::ReaderOptions::new().cursor, None);
    /// ```
    pub fn new() -> Self {
        ReaderOptions::default()
    }

    /// Name the cursor (making it durable).
    ///
    /// ```
    /// let opts = mycelium_shm::ReaderOptions::new().cursor("audit");
    /// assert_eq!(opts.cursor.as_deref(), Some("audit"));
    /// ```
    pub fn cursor(mut self, name: &str) -> Self {
        self.cursor = Some(name.to_owned());
        self
    }

    /// Set the policy.
    ///
    /// ```
    /// use mycelium_shm::{Policy, ReaderOptions};
    ///
    /// assert_eq!(ReaderOptions::new().policy(Policy::Lossy).policy, Policy::Lossy);
    /// ```
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Set where a new cursor starts.
    ///
    /// ```
    /// use mycelium_shm::{ReaderOptions, Start};
    ///
    /// assert_eq!(ReaderOptions::new().start(Start::Oldest).start, Start::Oldest);
    /// ```
    pub fn start(mut self, start: Start) -> Self {
        self.start = start;
        self
    }
}

/// One reader's cursor in a broadcast channel's table, from
/// [`ShmReader::cursor_info`] or [`inspect_cursors`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorInfo {
    /// The cursor's name, `""` for an anonymous cursor.
    pub name: String,
    /// Its slot in the cursor table.
    pub slot: u32,
    /// Its reader's policy.
    pub policy: Policy,
    /// Named: kept, with its position, after its reader leaves.
    pub durable: bool,
    /// Writers currently wait for it.
    pub tethered: bool,
    /// Pid of its reader, `None` when no reader is attached.
    pub pid: Option<i32>,
    /// Whether that reader still lives.
    pub alive: bool,
    /// Ring position: everything before it is read.
    pub position: u64,
    /// Bytes written but not yet read by it.
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
    /// CLOCK_REALTIME of its last attach, in nanoseconds.
    pub attached_ns: u64,
}

impl CursorInfo {
    fn from_raw(raw: &sys::MycCursorInfo) -> Result<CursorInfo> {
        // The name: bytes up to the first NUL (the C core terminates it).
        let bytes: Vec<u8> = raw.name.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
        let policy = Policy::from_raw(raw.policy).ok_or_else(|| {
            Error::Corrupt(format!("cursor slot {} has an unknown policy {}", raw.slot, raw.policy))
        })?;
        Ok(CursorInfo {
            name: String::from_utf8_lossy(&bytes).into_owned(),
            slot: raw.slot,
            policy,
            durable: raw.durable != 0,
            tethered: raw.tethered != 0,
            pid: if raw.pid == 0 { None } else { Some(raw.pid) },
            alive: raw.alive != 0,
            position: raw.position,
            lag: raw.lag,
            frames_read: raw.frames_read,
            bytes_read: raw.bytes_read,
            lost: raw.lost,
            laps: raw.laps,
            untethers: raw.untethers,
            attached_ns: raw.attached_ns,
        })
    }
}

fn c_cursor(cursor: &str) -> Result<CString> {
    CString::new(cursor)
        .map_err(|_| Error::InvalidArgument(format!("cursor name {cursor:?} holds a NUL byte")))
}

/// The readers' cursors of the broadcast channel `name`, in slot order,
/// without attaching to it; empty for a single-reader channel.
///
/// ```
/// use mycelium_shm::{inspect_cursors, Options, ReaderOptions, ShmReader, ShmWriter};
///
/// let name = format!("doc-inspect-cursors-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let _w = ShmWriter::create(&name, &Options::new().readers(3)).unwrap();
/// let _r = ShmReader::attach_with(&name, &Options::new(), &ReaderOptions::new().cursor("ui")).unwrap();
/// let table = inspect_cursors(&name).unwrap();
/// assert_eq!(table.len(), 1);
/// assert_eq!((table[0].name.as_str(), table[0].pid), ("ui", Some(std::process::id() as i32)));
/// ```
pub fn inspect_cursors(name: &str) -> Result<Vec<CursorInfo>> {
    let c = c_name(name)?;
    let empty = sys::MycCursorInfo {
        name: [0; sys::MYC_CURSOR_NAME_MAX + 1],
        slot: 0,
        policy: 0,
        durable: 0,
        tethered: 0,
        pid: 0,
        alive: 0,
        position: 0,
        lag: 0,
        frames_read: 0,
        bytes_read: 0,
        lost: 0,
        laps: 0,
        untethers: 0,
        attached_ns: 0,
    };
    let mut out = [empty; sys::MYC_READER_SLOTS];
    let mut count: u32 = 0;
    // SAFETY: c is NUL-terminated; out holds MYC_READER_SLOTS writable
    // entries of the layout of myc_cursor_info and the C core fills at most
    // `max` of them; count is a valid place for a u32.
    check(unsafe {
        sys::myc_inspect_cursors(c.as_ptr(), out.as_mut_ptr(), sys::MYC_READER_SLOTS as u32, &mut count)
    })?;
    let filled = (count as usize).min(sys::MYC_READER_SLOTS);
    out[..filled].iter().map(CursorInfo::from_raw).collect()
}

/// Create the durable, tethered cursor `cursor` of the broadcast channel
/// `name` at its tail, held by nobody: writers keep every later frame for a
/// reader that attaches it later.  This is what attaching it and dropping
/// the reader would leave, without the moment in which this process holds
/// it (a subscriber attaching then would find it busy).  `Ok` if it exists
/// already, held or not; [`Error::TooManyReaders`] if no slot is free;
/// [`Error::InvalidArgument`] on a single-reader channel or a bad name.
///
/// ```
/// use mycelium_shm::{inspect_cursors, register_cursor, Options, ShmWriter};
///
/// let name = format!("doc-register-cursor-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let _w = ShmWriter::create(&name, &Options::new().readers(2)).unwrap();
/// register_cursor(&name, "later").unwrap();
/// let cursors = inspect_cursors(&name).unwrap();
/// assert_eq!((cursors[0].name.as_str(), cursors[0].pid), ("later", None)); // held by nobody
/// register_cursor(&name, "later").unwrap(); // exists: unchanged
/// assert_eq!(inspect_cursors(&name).unwrap().len(), 1);
/// ```
pub fn register_cursor(name: &str, cursor: &str) -> Result<()> {
    let c = c_name(name)?;
    let k = c_cursor(cursor)?;
    // SAFETY: both strings are NUL-terminated and live for the call.
    check(unsafe { sys::myc_cursor_register(c.as_ptr(), k.as_ptr()) })
}

/// Free the durable cursor `cursor` of the broadcast channel `name`: writers
/// stop keeping frames for it and its slot is free for another reader.
/// [`Error::ReaderBusy`] while a live reader holds it; [`Error::NotFound`]
/// if there is no cursor of that name (or no such channel);
/// [`Error::InvalidArgument`] on a single-reader channel.
///
/// ```
/// use mycelium_shm::{forget_cursor, inspect_cursors, Error, Options, ReaderOptions, ShmReader, ShmWriter};
///
/// let name = format!("doc-forget-cursor-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let _w = ShmWriter::create(&name, &Options::new().readers(2)).unwrap();
/// let r = ShmReader::attach_with(&name, &Options::new(), &ReaderOptions::new().cursor("old")).unwrap();
/// assert!(matches!(forget_cursor(&name, "old"), Err(Error::ReaderBusy(_))));
/// drop(r); // the durable cursor stays, with its position
/// assert_eq!(inspect_cursors(&name).unwrap().len(), 1);
/// forget_cursor(&name, "old").unwrap();
/// assert!(inspect_cursors(&name).unwrap().is_empty());
/// assert!(matches!(forget_cursor(&name, "old"), Err(Error::NotFound(_))));
/// ```
pub fn forget_cursor(name: &str, cursor: &str) -> Result<()> {
    let c = c_name(name)?;
    let k = c_cursor(cursor)?;
    // SAFETY: both strings are NUL-terminated and live for the call.
    check(unsafe { sys::myc_cursor_forget(c.as_ptr(), k.as_ptr()) })
}

// ------------------------------------------------------------------------
// Writer
// ------------------------------------------------------------------------

/// A writer of a channel.  Many writers, in any processes, may write to one
/// channel at once; one `ShmWriter` may also be shared by threads.
///
/// Created with [`Options::readers`], the channel is a *broadcast* channel:
/// up to that many readers, each with its own cursor (see
/// [`ReaderOptions`]), get every frame, and one write reaches them all.
/// Writers wait for the slowest *tethered* reader, unless it died or held
/// them back for the untether window ([`Options::untether`]) without
/// reading: then it is untethered (counted in [`CursorInfo::untethers`])
/// and writers go on.
///
/// ```
/// use mycelium_shm::{unlink, Options, ShmReader, ShmWriter};
///
/// let name = format!("doc-writer-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let writer = ShmWriter::create(&name, &Options::new().capacity(1 << 16)).unwrap();
/// let mut reader = ShmReader::attach(&name, &Options::new()).unwrap();
/// writer.write(7, b"hello", None).unwrap();
/// let frame = reader.try_read().unwrap().unwrap();
/// assert_eq!((frame.type_id, &frame.payload[..]), (7, &b"hello"[..]));
/// unlink(&name).unwrap();
/// ```
#[derive(Debug)]
pub struct ShmWriter {
    /// Handle owned by this value; valid until `Drop` closes it.
    raw: NonNull<sys::MycWriter>,
    name: String,
}

// SAFETY: ring.h states "A writer handle may be shared by threads": every
// writer entry point is safe to call concurrently on one handle, and the
// handle is not tied to the thread that opened it.  The only mutating setter
// (`set_spin`) takes `&mut self`.
unsafe impl Send for ShmWriter {}
// SAFETY: see `Send` above; the C writer is thread-safe.
unsafe impl Sync for ShmWriter {}

impl ShmWriter {
    /// Open a writer on `name` with an explicit [`OpenMode`].
    ///
    /// ```
    /// use mycelium_shm::{unlink, OpenMode, Options, ShmWriter};
    ///
    /// let name = format!("doc-open-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::open(&name, OpenMode::CreateOrAttach, &Options::new()).unwrap();
    /// assert_eq!(w.name(), name);
    /// unlink(&name).unwrap();
    /// ```
    pub fn open(name: &str, mode: OpenMode, options: &Options) -> Result<ShmWriter> {
        let c = c_name(name)?;
        let max_payload = options.max_payload;
        let untether_ms = options.untether_ms()?;
        let mut out: *mut sys::MycWriter = ptr::null_mut();
        // SAFETY: c is NUL-terminated; the digest pointer is NULL or points
        // at 32 bytes living in `options` for the duration of the call; `out`
        // is a valid place for the C core to store the new handle.
        let rc = unsafe {
            sys::myc_writer_open_ex(
                c.as_ptr(),
                mode.flags(),
                options.capacity,
                max_payload,
                options.mode,
                options.digest_ptr(),
                options.readers,
                untether_ms,
                &mut out,
            )
        };
        check(rc)?;
        let raw = NonNull::new(out).ok_or_else(|| {
            Error::System(std::io::Error::other("myc_writer_open returned MYC_OK and NULL"))
        })?;
        Ok(ShmWriter { raw, name: name.to_owned() })
    }

    /// Create the channel `name` (it must not exist) and open a writer.
    ///
    /// ```
    /// use mycelium_shm::{unlink, Error, Options, ShmWriter};
    ///
    /// let name = format!("doc-create-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// assert!(matches!(ShmWriter::create(&name, &Options::new()), Err(Error::Exists(_))));
    /// unlink(&name).unwrap();
    /// ```
    pub fn create(name: &str, options: &Options) -> Result<ShmWriter> {
        ShmWriter::open(name, OpenMode::Create, options)
    }

    /// Attach a writer to the existing channel `name`.
    ///
    /// ```
    /// use mycelium_shm::{Error, Options, ShmWriter};
    ///
    /// let err = ShmWriter::attach("doc-attach-missing", &Options::new()).unwrap_err();
    /// assert!(matches!(err, Error::NotFound(_)));
    /// ```
    pub fn attach(name: &str, options: &Options) -> Result<ShmWriter> {
        ShmWriter::open(name, OpenMode::Attach, options)
    }

    /// The channel name this writer was opened with.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmWriter};
    /// # let name = format!("doc-name-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// assert_eq!(w.name(), name);
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Write one frame, waiting up to `timeout` for room (`None` waits
    /// forever).  [`Error::Full`] if the ring stayed full; [`Error::TooLarge`]
    /// if the payload exceeds the channel's maximum; [`Error::Interrupted`]
    /// if a signal (or the [`set_wait_slice`] slice) cut the wait short.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmWriter};
    /// # use std::time::Duration;
    /// # let name = format!("doc-write-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// w.write(1, &[1, 2, 3], Some(Duration::from_millis(10))).unwrap();
    /// ```
    pub fn write(&self, type_id: u16, payload: &[u8], timeout: Option<Duration>) -> Result<()> {
        let len = payload_len(payload.len())?;
        // SAFETY: the handle is open (owned by self); payload points at len
        // readable bytes that the C core only reads during the call.
        check(unsafe {
            sys::myc_write(self.raw.as_ptr(), type_id.into(), payload.as_ptr(), len, timeout_ns(timeout))
        })
    }

    /// Write one frame without waiting: [`Error::Full`] if there is no room.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Error, Options, ShmWriter};
    /// # let name = format!("doc-try-write-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::create(&name, &Options::new().capacity(1024).max_payload(200)).unwrap();
    /// let mut full = false;
    /// for _ in 0..100 {
    ///     if let Err(Error::Full(_)) = w.try_write(1, &[0; 200]) {
    ///         full = true;
    ///         break;
    ///     }
    /// }
    /// assert!(full);
    /// ```
    pub fn try_write(&self, type_id: u16, payload: &[u8]) -> Result<()> {
        self.write(type_id, payload, Some(Duration::ZERO))
    }

    /// Write several frames with one claim: the longest prefix of `frames`
    /// that fits (waiting up to `timeout` for room for the first one).
    /// Returns how many were written (at least 1 unless `frames` is empty);
    /// the caller sends the rest again.
    ///
    /// On failure the [`BatchError`] says how many frames at the start of
    /// the batch were written before it (0 unless a frame was
    /// force-unblocked part-way, see [`force_unblock`]); `?` turns it into a
    /// plain [`Error`].
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Error, Options, ShmWriter};
    /// # let name = format!("doc-batch-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::create(&name, &Options::new().capacity(4096).max_payload(512)).unwrap();
    /// let n = w.write_batch(&[(1, &b"a"[..]), (2, &b"bc"[..])], None).unwrap();
    /// assert_eq!(n, 2);
    /// let err = w.write_batch(&[(1, &[0; 513][..])], None).unwrap_err();
    /// assert_eq!(err.written, 0);
    /// assert!(matches!(err.error, Error::TooLarge(_)));
    /// ```
    pub fn write_batch(
        &self,
        frames: &[(u16, &[u8])],
        timeout: Option<Duration>,
    ) -> std::result::Result<usize, BatchError> {
        let refused = |error| BatchError { written: 0, error };
        if frames.is_empty() {
            return Ok(0);
        }
        let count = u32::try_from(frames.len()).map_err(|_| {
            refused(Error::InvalidArgument(format!("batch of {} frames exceeds u32", frames.len())))
        })?;
        let total: usize = frames.iter().map(|(_, p)| p.len()).sum();
        let mut type_ids = Vec::with_capacity(frames.len());
        let mut lens = Vec::with_capacity(frames.len());
        let mut payloads = Vec::with_capacity(total);
        for (type_id, payload) in frames {
            type_ids.push(*type_id);
            lens.push(payload_len(payload.len()).map_err(refused)?);
            payloads.extend_from_slice(payload);
        }
        // SAFETY: the handle is open; type_ids and lens hold `count` entries
        // and payloads holds the sum of lens bytes, all alive for the call.
        let n = unsafe {
            sys::myc_write_batch(
                self.raw.as_ptr(),
                count,
                type_ids.as_ptr(),
                lens.as_ptr(),
                payloads.as_ptr(),
                timeout_ns(timeout),
            )
        };
        if n < 0 {
            return Err(BatchError::from_code(n));
        }
        usize::try_from(n).map_err(|_| refused(Error::Corrupt(format!("myc_write_batch returned {n}"))))
    }

    /// Claim room for a frame of `len` payload bytes and fill it in place
    /// (zero-copy).  The frame is published by [`Reservation::commit`];
    /// dropping the reservation without committing aborts it (the reader
    /// skips it as padding).
    ///
    /// A thread holds at most one claim per writer: while the reservation is
    /// open, writing or reserving through this writer *on the same thread*
    /// fails with [`Error::InvalidArgument`] (other threads, and other
    /// writer handles, are not affected).  An open reservation holds the
    /// reader back: it waits for the commit, however long the writer takes
    /// (see [`force_unblock`]).
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-reserve-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// let mut r = ShmReader::attach(&name, &Options::new()).unwrap();
    /// let mut res = w.reserve(9, 4, None).unwrap();
    /// res.copy_from_slice(b"abcd");
    /// res.commit().unwrap();
    /// assert_eq!(r.try_read().unwrap().unwrap().payload, b"abcd");
    /// ```
    pub fn reserve(&self, type_id: u16, len: usize, timeout: Option<Duration>) -> Result<Reservation<'_>> {
        let len = payload_len(len)?;
        let mut res =
            sys::MycReservation { payload: ptr::null_mut(), position: 0, payload_len: 0, type_id: 0 };
        // SAFETY: the handle is open; res is a valid place for the C core to
        // describe the claim.
        check(unsafe {
            sys::myc_reserve(self.raw.as_ptr(), type_id.into(), len, timeout_ns(timeout), &mut res)
        })?;
        if res.payload.is_null() && res.payload_len != 0 {
            return Err(Error::Corrupt("myc_reserve returned a NULL payload".into()));
        }
        Ok(Reservation { writer: self, res, finished: false })
    }

    /// Encode `message` and write it (see [`ShmWriter::write`]): a message
    /// struct or the `Message` enum of any generated schema ([`Encode`]);
    /// [`Error::TooLarge`] if a field has more than `u32::MAX` items.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader, ShmWriter};
    /// # use mycelium_shm::generated::{Message, Stop};
    /// # let name = format!("doc-write-msg-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// # let mut r = ShmReader::attach(&name, &Options::new()).unwrap();
    /// let msg = Message::from(Stop { last_seq: 9, reason: "done".into() });
    /// w.write_message(&msg, None).unwrap();
    /// w.write_message(&Stop { last_seq: 10, reason: String::new() }, None).unwrap(); // a struct, as is
    /// assert_eq!(r.read_message(None).unwrap(), Some(msg));
    /// assert_eq!(r.read_message::<Message>(None).unwrap().map(|m| m.type_id()), Some(Stop::TYPE_ID));
    /// ```
    pub fn write_message<M: Encode + ?Sized>(&self, message: &M, timeout: Option<Duration>) -> Result<()> {
        let (type_id, payload) = message.try_encode()?;
        self.write(type_id, &payload, timeout)
    }

    /// Counters of the channel.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmWriter};
    /// # let name = format!("doc-wstats-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// w.write(1, b"xy", None).unwrap();
    /// let s = w.stats().unwrap();
    /// assert_eq!((s.frames_written, s.bytes_written), (1, 2));
    /// ```
    pub fn stats(&self) -> Result<Stats> {
        let mut out = Stats::default();
        // SAFETY: the handle is open; out is a valid myc_stats.
        check(unsafe { sys::myc_writer_stats(self.raw.as_ptr(), &mut out) })?;
        Ok(out)
    }

    /// Set how long a writer waiting for room spins before sleeping.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmWriter};
    /// # use std::time::Duration;
    /// # let name = format!("doc-wspin-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let mut w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// w.set_spin(Duration::from_micros(10));
    /// ```
    pub fn set_spin(&mut self, spin: Duration) {
        // SAFETY: the handle is open and exclusively borrowed.
        unsafe { sys::myc_writer_set_spin(self.raw.as_ptr(), timeout_ns(Some(spin))) }
    }
}

impl Drop for ShmWriter {
    fn drop(&mut self) {
        // SAFETY: the handle is open and owned by self; no Reservation can
        // outlive it (they borrow self); it is never used again.
        unsafe { sys::myc_writer_close(self.raw.as_ptr()) }
    }
}

/// A claimed frame being filled in place (see [`ShmWriter::reserve`]).
/// Dereferences to its writable payload bytes.  Committed by
/// [`Reservation::commit`]; aborted when dropped uncommitted.
#[derive(Debug)]
pub struct Reservation<'w> {
    writer: &'w ShmWriter,
    /// The claim; its payload points at `payload_len` ring bytes that belong
    /// to this reservation alone until commit or abort.
    res: sys::MycReservation,
    finished: bool,
}

impl Reservation<'_> {
    /// The frame's type id.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmWriter};
    /// # let name = format!("doc-res-type-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// let res = w.reserve(5, 3, None).unwrap();
    /// assert_eq!((res.type_id(), res.len()), (5, 3));
    /// ```
    pub fn type_id(&self) -> u16 {
        // The type id was passed in as a u16 by `reserve`.
        self.res.type_id as u16
    }

    /// Publish the frame to the reader.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmWriter};
    /// # let name = format!("doc-res-commit-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// let mut res = w.reserve(5, 2, None).unwrap();
    /// res[0] = 1;
    /// res[1] = 2;
    /// res.commit().unwrap();
    /// assert_eq!(w.stats().unwrap().frames_written, 1);
    /// ```
    pub fn commit(mut self) -> Result<()> {
        self.finished = true;
        // SAFETY: the writer handle is open (borrowed for 'w) and res is the
        // live claim made by myc_reserve on it, committed at most once
        // (finished is set so Drop will not abort it).
        check(unsafe { sys::myc_commit(self.writer.raw.as_ptr(), &mut self.res) })
    }

    /// Give the claim back: the reader skips it as padding.  Dropping the
    /// reservation does the same, ignoring errors.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmWriter};
    /// # let name = format!("doc-res-abort-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let w = ShmWriter::create(&name, &Options::new()).unwrap();
    /// let res = w.reserve(5, 2, None).unwrap();
    /// res.abort().unwrap();
    /// assert_eq!(w.stats().unwrap().frames_written, 0);
    /// ```
    pub fn abort(mut self) -> Result<()> {
        self.finished = true;
        // SAFETY: as in commit: a live claim on an open handle, finished once.
        check(unsafe { sys::myc_abort(self.writer.raw.as_ptr(), &mut self.res) })
    }
}

impl Deref for Reservation<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        if self.res.payload_len == 0 {
            return &[];
        }
        // SAFETY: res.payload points at payload_len bytes of the mapped ring
        // claimed by this reservation: no reader sees them and no other
        // writer touches them until commit/abort, which consume self.  The
        // mapping outlives the writer handle borrowed for 'w.
        unsafe { std::slice::from_raw_parts(self.res.payload, self.res.payload_len as usize) }
    }
}

impl DerefMut for Reservation<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        if self.res.payload_len == 0 {
            return &mut [];
        }
        // SAFETY: as in deref; &mut self makes this the only live view.
        unsafe { std::slice::from_raw_parts_mut(self.res.payload, self.res.payload_len as usize) }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // SAFETY: a live, unfinished claim on an open handle.  An error
            // cannot be reported from drop (a claim that failed to abort
            // holds the reader until force_unblock or this process's death).
            let _ = unsafe { sys::myc_abort(self.writer.raw.as_ptr(), &mut self.res) };
        }
    }
}

// ------------------------------------------------------------------------
// Reader
// ------------------------------------------------------------------------

/// One frame copied out of the ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Frame type id (never 0: padding is skipped).
    pub type_id: u16,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// Reusable buffers for [`ShmReader::read_batch`]: frames copied out of the
/// ring back to back, with their type ids and lengths.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Payload bytes of the frames, back to back (all initialised).
    buf: Vec<u8>,
    /// `type_ids[i]` of frame i; its length is the most frames per call.
    type_ids: Vec<u16>,
    /// `lens[i]` of frame i; as long as `type_ids`.
    lens: Vec<u32>,
    /// Frames held by the last call (`<= type_ids.len()`).
    count: usize,
}

impl Batch {
    /// Buffers for up to `max_frames` frames (at least 1) of `max_bytes`
    /// payload bytes in all; the reader grows the byte buffer to its
    /// channel's largest payload if it is smaller.
    ///
    /// ```
    /// let batch = mycelium_shm::Batch::new(128, 1 << 16);
    /// assert_eq!((batch.max_frames(), batch.len()), (128, 0));
    /// ```
    pub fn new(max_frames: usize, max_bytes: usize) -> Batch {
        let max_frames = max_frames.max(1);
        Batch { buf: vec![0; max_bytes], type_ids: vec![0; max_frames], lens: vec![0; max_frames], count: 0 }
    }

    /// The most frames a batch may ask for: a ring of the largest capacity
    /// holds no more frames than this (one 16-byte header each).
    pub const MAX_FRAMES: usize = (sys::MYC_MAX_CAPACITY / sys::MYC_FRAME_HEADER_SIZE as u64) as usize;
    /// The most payload bytes a batch may ask for: the largest ring.
    pub const MAX_BYTES: usize = sys::MYC_MAX_CAPACITY as usize;

    /// As [`Batch::new`], but the sizes are checked before anything is
    /// allocated: [`Error::InvalidArgument`] naming `max_frames` (1 to
    /// [`Batch::MAX_FRAMES`]) or `max_bytes` (0 to [`Batch::MAX_BYTES`])
    /// instead of an allocation failure.
    ///
    /// ```
    /// use mycelium_shm::{Batch, Error};
    ///
    /// assert_eq!(Batch::try_new(64, 4096).unwrap().max_frames(), 64);
    /// assert!(matches!(Batch::try_new(1 << 40, 0), Err(Error::InvalidArgument(m)) if m.starts_with("max_frames")));
    /// ```
    pub fn try_new(max_frames: usize, max_bytes: usize) -> Result<Batch> {
        if max_frames == 0 || max_frames > Batch::MAX_FRAMES {
            return Err(Error::InvalidArgument(format!(
                "max_frames must be in 1..{}, not {max_frames}",
                Batch::MAX_FRAMES
            )));
        }
        if max_bytes > Batch::MAX_BYTES {
            return Err(Error::InvalidArgument(format!(
                "max_bytes must be in 0..{}, not {max_bytes}",
                Batch::MAX_BYTES
            )));
        }
        Ok(Batch::new(max_frames, max_bytes))
    }

    /// The most frames one call may return.
    ///
    /// ```
    /// assert_eq!(mycelium_shm::Batch::new(0, 0).max_frames(), 1);
    /// ```
    pub fn max_frames(&self) -> usize {
        self.type_ids.len()
    }

    /// How many frames the last [`ShmReader::read_batch`] returned.
    ///
    /// ```
    /// assert_eq!(mycelium_shm::Batch::new(8, 64).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the last [`ShmReader::read_batch`] returned no frame.
    ///
    /// ```
    /// assert!(mycelium_shm::Batch::new(8, 64).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// `(type id, payload)` of each frame, in ring order.
    ///
    /// ```
    /// assert_eq!(mycelium_shm::Batch::new(8, 64).iter().count(), 0);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (u16, &[u8])> + '_ {
        let mut offset = 0;
        self.type_ids.iter().zip(self.lens.iter()).take(self.count).map(move |(&t, &len)| {
            let start = offset;
            offset += len as usize;
            (t, &self.buf[start..offset])
        })
    }
}

/// A reader of a channel.  A single-reader channel has one live reader at a
/// time ([`Error::ReaderBusy`] otherwise); a dead reader's place is taken
/// over.  A broadcast channel ([`Options::readers`]) has up to that many,
/// each at its own cursor ([`ShmReader::open_with`], [`ReaderOptions`]),
/// every one of them reading every frame.  `Send` but not `Sync`: the C
/// reader handle must be used by one thread at a time, which `&mut self` on
/// every read enforces.
///
/// ```
/// use mycelium_shm::{unlink, Error, Options, ShmReader, ShmWriter};
///
/// let name = format!("doc-reader-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let mut reader = ShmReader::create(&name, &Options::new()).unwrap();
/// assert!(matches!(ShmReader::attach(&name, &Options::new()), Err(Error::ReaderBusy(_))));
/// let w = ShmWriter::attach(&name, &Options::new()).unwrap();
/// w.write(3, b"x", None).unwrap();
/// assert_eq!(reader.try_read().unwrap().unwrap().type_id, 3);
/// assert_eq!(reader.try_read().unwrap(), None);
/// unlink(&name).unwrap();
/// ```
///
/// A reader cannot be shared between threads by reference:
///
/// ```compile_fail
/// fn needs_sync<T: Sync>() {}
/// needs_sync::<mycelium_shm::ShmReader>();
/// ```
#[derive(Debug)]
pub struct ShmReader {
    /// Handle owned by this value; valid until `Drop` closes it.  `NonNull`
    /// is `!Sync`, which keeps `ShmReader` `!Sync`.
    raw: NonNull<sys::MycReader>,
    name: String,
    /// The channel's largest payload: a buffer this big holds any frame.
    max_payload: usize,
}

// SAFETY: the C reader handle is not tied to the thread that opened it; it
// only must not be used by two threads at once, which the missing Sync impl
// and `&mut self` on every entry point that touches its state guarantee.
unsafe impl Send for ShmReader {}

impl ShmReader {
    /// Open the reader of `name` with an explicit [`OpenMode`].
    ///
    /// ```
    /// use mycelium_shm::{unlink, OpenMode, Options, ShmReader};
    ///
    /// let name = format!("doc-ropen-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let r = ShmReader::open(&name, OpenMode::CreateOrAttach, &Options::new()).unwrap();
    /// assert_eq!(r.name(), name);
    /// unlink(&name).unwrap();
    /// ```
    pub fn open(name: &str, mode: OpenMode, options: &Options) -> Result<ShmReader> {
        ShmReader::open_with(name, mode, options, &ReaderOptions::new())
    }

    /// Open a reader of `name` with an explicit [`OpenMode`] and, on a
    /// broadcast channel, its own cursor as `reader` says (name, policy,
    /// where a new cursor starts).  On a single-reader channel `reader` must
    /// be the default ([`Error::InvalidArgument`] otherwise).
    ///
    /// Errors besides those of [`ShmReader::open`]:
    /// [`Error::TooManyReaders`] when every cursor slot is taken,
    /// [`Error::ReaderBusy`] when a live reader holds the named cursor,
    /// [`Error::InvalidArgument`] for a cursor name that is empty, longer
    /// than [`CURSOR_NAME_MAX`] bytes or holds a control character.
    ///
    /// ```
    /// use mycelium_shm::{OpenMode, Options, Policy, ReaderOptions, ShmReader, ShmWriter};
    ///
    /// let name = format!("doc-ropen-with-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let opts = Options::new().readers(2);
    /// let w = ShmWriter::create(&name, &opts).unwrap();
    /// let mut audit = ShmReader::open_with(&name, OpenMode::Attach, &opts, &ReaderOptions::new().cursor("audit")).unwrap();
    /// let mut ui = ShmReader::attach_with(&name, &Options::new(), &ReaderOptions::new().policy(Policy::Lossy)).unwrap();
    /// w.write(1, b"to all", None).unwrap();
    /// assert_eq!(audit.try_read().unwrap().unwrap().payload, b"to all");
    /// assert_eq!(ui.try_read().unwrap().unwrap().payload, b"to all");
    /// assert_eq!(audit.cursor_info().unwrap().name, "audit");
    /// ```
    pub fn open_with(
        name: &str,
        mode: OpenMode,
        options: &Options,
        reader: &ReaderOptions,
    ) -> Result<ShmReader> {
        let c = c_name(name)?;
        let untether_ms = options.untether_ms()?;
        let cursor = match &reader.cursor {
            None => None,
            Some(cursor) => Some(c_cursor(cursor)?),
        };
        let flags = mode.flags() | if reader.start == Start::Oldest { sys::MYC_START_OLDEST } else { 0 };
        let mut out: *mut sys::MycReader = ptr::null_mut();
        // SAFETY: as in ShmWriter::open; the cursor pointer is NULL or a
        // NUL-terminated string living in `cursor` for the duration of the
        // call.
        let rc = unsafe {
            sys::myc_reader_open_ex(
                c.as_ptr(),
                flags,
                options.capacity,
                options.max_payload,
                options.mode,
                options.digest_ptr(),
                options.readers,
                untether_ms,
                cursor.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                reader.policy.raw(),
                &mut out,
            )
        };
        check(rc)?;
        let raw = NonNull::new(out).ok_or_else(|| {
            Error::System(std::io::Error::other("myc_reader_open returned MYC_OK and NULL"))
        })?;
        let mut reader = ShmReader { raw, name: name.to_owned(), max_payload: 0 };
        let max_payload = reader.stats()?.max_payload;
        reader.max_payload = usize::try_from(max_payload)
            .map_err(|_| Error::Corrupt(format!("max_payload {max_payload} does not fit in memory")))?;
        Ok(reader)
    }

    /// Create the channel `name` (it must not exist) and open its reader.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader};
    /// let name = format!("doc-rcreate-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let r = ShmReader::create(&name, &Options::new().capacity(4096)).unwrap();
    /// assert_eq!(r.stats().unwrap().capacity, 4096);
    /// ```
    pub fn create(name: &str, options: &Options) -> Result<ShmReader> {
        ShmReader::open(name, OpenMode::Create, options)
    }

    /// Create the channel `name` (a broadcast channel if
    /// [`Options::readers`] is set) and open a reader with its own cursor
    /// (see [`ShmReader::open_with`]).
    ///
    /// ```
    /// # use mycelium_shm::{Options, ReaderOptions, ShmReader};
    /// let name = format!("doc-rcreate-with-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let r = ShmReader::create_with(&name, &Options::new().readers(4), &ReaderOptions::new().cursor("a")).unwrap();
    /// assert_eq!(mycelium_shm::inspect(&name).unwrap().reader_slots, 4);
    /// # drop(r);
    /// ```
    pub fn create_with(name: &str, options: &Options, reader: &ReaderOptions) -> Result<ShmReader> {
        ShmReader::open_with(name, OpenMode::Create, options, reader)
    }

    /// Attach as the reader of the existing channel `name`.
    ///
    /// ```
    /// # use mycelium_shm::{Error, Options, ShmReader};
    /// assert!(matches!(ShmReader::attach("doc-rattach-missing", &Options::new()), Err(Error::NotFound(_))));
    /// ```
    pub fn attach(name: &str, options: &Options) -> Result<ShmReader> {
        ShmReader::open(name, OpenMode::Attach, options)
    }

    /// Attach a reader with its own cursor to the existing broadcast
    /// channel `name` (see [`ShmReader::open_with`]).
    ///
    /// ```
    /// use mycelium_shm::{Error, Options, ReaderOptions, ShmReader, ShmWriter};
    ///
    /// let name = format!("doc-rattach-with-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let _w = ShmWriter::create(&name, &Options::new().readers(1)).unwrap();
    /// let risk = ReaderOptions::new().cursor("risk");
    /// let _r = ShmReader::attach_with(&name, &Options::new(), &risk).unwrap();
    /// let second = ShmReader::attach_with(&name, &Options::new(), &ReaderOptions::new());
    /// assert!(matches!(second, Err(Error::TooManyReaders(_))));
    /// ```
    pub fn attach_with(name: &str, options: &Options, reader: &ReaderOptions) -> Result<ShmReader> {
        ShmReader::open_with(name, OpenMode::Attach, options, reader)
    }

    /// The channel name this reader was opened with.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader};
    /// # let name = format!("doc-rname-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let r = ShmReader::create(&name, &Options::new()).unwrap();
    /// assert_eq!(r.name(), name);
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The largest payload a frame of this channel may carry.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader};
    /// # let name = format!("doc-rmax-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let r = ShmReader::create(&name, &Options::new().capacity(4096).max_payload(100)).unwrap();
    /// assert_eq!(r.max_payload(), 100);
    /// ```
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Read the next frame into `buf` (replacing its contents), waiting up to
    /// `timeout` (`None` waits forever).  Returns the type id, or `None` if
    /// no frame came in time.  Reusing `buf` avoids an allocation per frame.
    /// [`Error::Interrupted`] if a signal (or the [`set_wait_slice`] slice)
    /// cut the wait short.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader, ShmWriter};
    /// # use std::time::Duration;
    /// # let name = format!("doc-read-into-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(2, b"abc", None).unwrap();
    /// let mut buf = Vec::new();
    /// assert_eq!(r.read_into(&mut buf, Some(Duration::from_millis(100))).unwrap(), Some(2));
    /// assert_eq!(buf, b"abc");
    /// ```
    pub fn read_into(&mut self, buf: &mut Vec<u8>, timeout: Option<Duration>) -> Result<Option<u16>> {
        buf.clear();
        buf.reserve(self.max_payload);
        let cap = buf.capacity();
        // SAFETY: the handle is open and exclusively borrowed; buf's spare
        // capacity is `cap` writable bytes (len is 0).  The C core writes
        // only the payload length it returns, which is <= cap.
        let r =
            unsafe { sys::myc_read(self.raw.as_ptr(), timeout_ns(timeout), buf.as_mut_ptr(), cap as u64) };
        if r == i64::from(sys::MYC_ERR_EMPTY) {
            return Ok(None);
        }
        if r < 0 {
            return Err(Error::from_code(r));
        }
        let len = (r & 0xFFFF_FFFF) as usize;
        let type_id = ((r >> 32) & 0xFFFF) as u16;
        if len > cap {
            return Err(Error::Corrupt(format!("myc_read returned {len} bytes for a {cap}-byte buffer")));
        }
        // SAFETY: the C core initialised the first `len` bytes (len <= cap).
        unsafe { buf.set_len(len) };
        Ok(Some(type_id))
    }

    /// Read the next frame, waiting up to `timeout` (`None` waits forever);
    /// `None` if no frame came in time.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader};
    /// # use std::time::Duration;
    /// # let name = format!("doc-read-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// assert_eq!(r.read(Some(Duration::from_millis(5))).unwrap(), None);
    /// ```
    pub fn read(&mut self, timeout: Option<Duration>) -> Result<Option<Frame>> {
        let mut payload = Vec::new();
        Ok(self.read_into(&mut payload, timeout)?.map(|type_id| Frame { type_id, payload }))
    }

    /// Read the next frame if there is one, without waiting.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader};
    /// # let name = format!("doc-try-read-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// assert_eq!(r.try_read().unwrap(), None);
    /// ```
    pub fn try_read(&mut self) -> Result<Option<Frame>> {
        self.read(Some(Duration::ZERO))
    }

    /// Copy up to `batch.max_frames()` frames in one call, waiting up to
    /// `timeout` for the first (`None` waits forever); fewer if the batch's
    /// byte buffer fills.  Returns how many frames `batch` now holds (0 if
    /// none came in time).  The batch's buffers are reused from call to call.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Batch, Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-read-batch-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(1, b"a", None).unwrap();
    /// w.write(2, b"bc", None).unwrap();
    /// let mut batch = Batch::new(64, 1 << 16);
    /// assert_eq!(r.read_batch(&mut batch, None).unwrap(), 2);
    /// let frames: Vec<(u16, &[u8])> = batch.iter().collect();
    /// assert_eq!(frames, [(1, &b"a"[..]), (2, &b"bc"[..])]);
    /// ```
    pub fn read_batch(&mut self, batch: &mut Batch, timeout: Option<Duration>) -> Result<usize> {
        batch.count = 0;
        if batch.buf.len() < self.max_payload {
            // Any single frame must fit, or the C core could not return it.
            batch.buf.resize(self.max_payload, 0);
        }
        let max_frames = u32::try_from(batch.type_ids.len()).unwrap_or(u32::MAX);
        // SAFETY: the handle is open and exclusively borrowed; buf holds
        // buf.len() initialised writable bytes, type_ids and lens hold at
        // least max_frames entries each; the C core writes within those.
        let n = unsafe {
            sys::myc_read_batch(
                self.raw.as_ptr(),
                max_frames,
                timeout_ns(timeout),
                batch.buf.as_mut_ptr(),
                batch.buf.len() as u64,
                batch.type_ids.as_mut_ptr(),
                batch.lens.as_mut_ptr(),
            )
        };
        if n == i64::from(sys::MYC_ERR_EMPTY) {
            return Ok(0);
        }
        if n < 0 {
            return Err(Error::from_code(n));
        }
        let count = usize::try_from(n).unwrap_or(usize::MAX);
        let bytes: u64 = batch.lens.iter().take(count).map(|&l| u64::from(l)).sum();
        if count > batch.type_ids.len() || bytes > batch.buf.len() as u64 {
            return Err(Error::Corrupt(format!("myc_read_batch returned {n} frames of {bytes} bytes")));
        }
        batch.count = count;
        Ok(count)
    }

    /// Read and decode the next message as a message of the schema `M` (the
    /// `Message` enum of any generated schema, see [`Schema::decode`]); the
    /// frame is consumed even when it does not decode.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Error, Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-read-msg-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(65535, b"", None).unwrap(); // no message has this type id
    /// let got = r.read_message::<mycelium_shm::generated::Message>(None);
    /// assert!(matches!(got, Err(Error::Decode(_))));
    /// ```
    pub fn read_message<M: Schema>(&mut self, timeout: Option<Duration>) -> Result<Option<M>> {
        match self.peek(timeout)? {
            None => Ok(None),
            Some(view) => {
                let decoded = M::decode(view.type_id(), view.payload());
                // A lossy reader's frame may have been overwritten while it
                // was decoded: Lapped wins over whatever the decoder said.
                view.release()?;
                decoded.map(Some)
            }
        }
    }

    /// Zero-copy read: a view of the next frame in the ring, waiting up to
    /// `timeout`.  The frame is consumed when the view is dropped; while it
    /// lives the reader is borrowed and the writers cannot reuse its bytes,
    /// except on a lossy (or untethered) broadcast reader, whose writers
    /// never wait: there, confirm what was read with [`FrameView::release`]
    /// or [`FrameView::check`] ([`Error::Lapped`] if it was overwritten), or
    /// use [`ShmReader::peek_with`], which does it.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-peek-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(4, b"view", None).unwrap();
    /// {
    ///     let view = r.peek(None).unwrap().unwrap();
    ///     assert_eq!((view.type_id(), view.payload()), (4, &b"view"[..]));
    /// } // released here
    /// assert_eq!(r.try_read().unwrap(), None);
    /// ```
    pub fn peek(&mut self, timeout: Option<Duration>) -> Result<Option<FrameView<'_>>> {
        let mut frame = sys::MycFrame { payload: ptr::null(), payload_len: 0, type_id: 0, flags: 0 };
        // SAFETY: the handle is open and exclusively borrowed; frame is a
        // valid place for the C core to describe the frame.
        let rc = unsafe { sys::myc_peek(self.raw.as_ptr(), timeout_ns(timeout), &mut frame) };
        if rc == sys::MYC_ERR_EMPTY {
            return Ok(None);
        }
        check(rc)?;
        if frame.payload.is_null() && frame.payload_len != 0 {
            // SAFETY: a frame was peeked on this open handle; give it back.
            unsafe { sys::myc_release(self.raw.as_ptr()) };
            return Err(Error::Corrupt("myc_peek returned a NULL payload".into()));
        }
        Ok(Some(FrameView { reader: self.raw, frame, _borrow: PhantomData }))
    }

    /// Zero-copy read of the next frame through `f`, waiting up to
    /// `timeout`: `Ok(Some(f(&view)))`, `Ok(None)` if no frame came in time.
    /// The frame is consumed when `f` returns (or panics).
    ///
    /// On a lossy (or untethered) broadcast reader, writers may overwrite
    /// the frame while `f` looks at it; the frame is checked after `f`, and
    /// if it was overwritten the result of `f` is dropped and the call
    /// fails with [`Error::Lapped`] (the reader goes on past the loss,
    /// counted in [`ShmReader::lost`]).  On other readers the frame cannot
    /// change and the check always passes.
    ///
    /// ```
    /// use mycelium_shm::{Error, Options, Policy, ReaderOptions, ShmReader, ShmWriter};
    ///
    /// let name = format!("doc-peek-with-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::create(&name, &Options::new().capacity(4096).readers(1)).unwrap();
    /// let lossy = ReaderOptions::new().policy(Policy::Lossy);
    /// let mut r = ShmReader::attach_with(&name, &Options::new(), &lossy).unwrap();
    /// w.write(1, b"first", None).unwrap();
    /// assert_eq!(r.peek_with(None, |view| view.to_vec()).unwrap(), Some(b"first".to_vec()));
    ///
    /// // Writers lap the reader while it holds a frame: the view is not to be trusted.
    /// w.write(1, b"second", None).unwrap();
    /// let got = r.peek_with(None, |view| {
    ///     for _ in 0..100 {
    ///         w.write(2, &[0; 200], None).unwrap(); // a lossy reader never slows writers
    ///     }
    ///     view.to_vec()
    /// });
    /// assert!(matches!(got, Err(Error::Lapped(_))));
    /// // The next read resumes at the oldest frame left, counting what it skipped.
    /// assert_eq!(r.read(None).unwrap().unwrap().type_id, 2);
    /// assert!(r.lost() > 0);
    /// ```
    pub fn peek_with<R>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(&FrameView<'_>) -> R,
    ) -> Result<Option<R>> {
        match self.peek(timeout)? {
            None => Ok(None),
            Some(view) => {
                let out = f(&view);
                view.release()?;
                Ok(Some(out))
            }
        }
    }

    /// This reader's cursor on a broadcast channel: its name, policy,
    /// position, lag, counts of frames read, lost and laps.
    /// [`Error::InvalidArgument`] on a single-reader channel.
    ///
    /// ```
    /// use mycelium_shm::{Error, Options, Policy, ReaderOptions, ShmReader, ShmWriter};
    ///
    /// let name = format!("doc-cursor-info-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let w = ShmWriter::create(&name, &Options::new().readers(2)).unwrap();
    /// let mut r = ShmReader::attach_with(&name, &Options::new(), &ReaderOptions::new().cursor("books")).unwrap();
    /// w.write(1, b"abc", None).unwrap();
    /// r.read(None).unwrap();
    /// let info = r.cursor_info().unwrap();
    /// assert_eq!((info.name.as_str(), info.policy, info.durable), ("books", Policy::Tethered, true));
    /// assert_eq!((info.frames_read, info.bytes_read, info.lag, info.lost), (1, 3, 0, 0));
    /// # drop(r);
    /// # let single = format!("doc-cursor-info-single-{}", std::process::id());
    /// # let _guard2 = mycelium_shm::UnlinkGuard::new(&single);
    /// let r = ShmReader::create(&single, &Options::new()).unwrap();
    /// assert!(matches!(r.cursor_info(), Err(Error::InvalidArgument(_))));
    /// ```
    pub fn cursor_info(&self) -> Result<CursorInfo> {
        let mut raw = std::mem::MaybeUninit::<sys::MycCursorInfo>::zeroed();
        // SAFETY: the handle is open; raw is writable memory of the size and
        // layout of myc_cursor_info (checked by the layout assertions).
        // &self excludes concurrent reads (the reader is not Sync).
        check(unsafe { sys::myc_reader_cursor(self.raw.as_ptr(), raw.as_mut_ptr()) })?;
        // SAFETY: zero-initialised and then filled by the C core; every bit
        // pattern is valid for this struct of integers and a char array.
        CursorInfo::from_raw(unsafe { &raw.assume_init() })
    }

    /// Frames this broadcast reader lost because writers lapped it (a lossy
    /// reader, or a tethered one while it was untethered); 0 on a
    /// single-reader channel, which never loses a frame.
    ///
    /// ```
    /// # use mycelium_shm::{Options, ShmReader};
    /// # let name = format!("doc-lost-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let r = ShmReader::create(&name, &Options::new()).unwrap();
    /// assert_eq!((r.lost(), r.laps()), (0, 0));
    /// ```
    pub fn lost(&self) -> u64 {
        self.cursor_info().map_or(0, |c| c.lost)
    }

    /// Times writers lapped this broadcast reader (0 on a single-reader
    /// channel).
    ///
    /// ```
    /// # use mycelium_shm::{Options, ReaderOptions, ShmReader};
    /// # let name = format!("doc-laps-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let r = ShmReader::create_with(&name, &Options::new().readers(1), &ReaderOptions::new()).unwrap();
    /// assert_eq!(r.laps(), 0);
    /// ```
    pub fn laps(&self) -> u64 {
        self.cursor_info().map_or(0, |c| c.laps)
    }

    /// Zero-copy read without waiting (see [`ShmReader::peek`]).
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader};
    /// # let name = format!("doc-try-peek-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// assert!(r.try_peek().unwrap().is_none());
    /// ```
    pub fn try_peek(&mut self) -> Result<Option<FrameView<'_>>> {
        self.peek(Some(Duration::ZERO))
    }

    /// Counters of the channel.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader};
    /// # let name = format!("doc-rstats-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let r = ShmReader::create(&name, &Options::new()).unwrap();
    /// assert_eq!(r.stats().unwrap().frames_read, 0);
    /// ```
    pub fn stats(&self) -> Result<Stats> {
        let mut out = Stats::default();
        // SAFETY: the handle is open; out is a valid myc_stats.  Stats only
        // read shared counters, and &self excludes concurrent reads (the
        // reader is not Sync, and reads take &mut self).
        check(unsafe { sys::myc_reader_stats(self.raw.as_ptr(), &mut out) })?;
        Ok(out)
    }

    /// Set how long a claimed-but-uncommitted frame may hold the reader
    /// before it checks whether the claiming writer is alive (default
    /// 10 ms, then again every such interval).  A dead writer's claim is
    /// skipped; a live writer's is waited for (back-pressure), shown by
    /// [`inspect`] as [`Info::stalled_pid`] and ended, if need be, by
    /// [`force_unblock`].
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader};
    /// # use std::time::Duration;
    /// # let name = format!("doc-stuck-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// r.set_stuck_timeout(Duration::from_millis(100));
    /// ```
    pub fn set_stuck_timeout(&mut self, timeout: Duration) {
        // SAFETY: the handle is open and exclusively borrowed.
        unsafe { sys::myc_reader_set_stuck_timeout(self.raw.as_ptr(), timeout_ns(Some(timeout))) }
    }

    /// Set how long a waiting reader spins before sleeping (default 50 us).
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader};
    /// # use std::time::Duration;
    /// # let name = format!("doc-rspin-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// r.set_spin(Duration::ZERO);
    /// ```
    pub fn set_spin(&mut self, spin: Duration) {
        // SAFETY: the handle is open and exclusively borrowed.
        unsafe { sys::myc_reader_set_spin(self.raw.as_ptr(), timeout_ns(Some(spin))) }
    }
}

impl Drop for ShmReader {
    fn drop(&mut self) {
        // SAFETY: the handle is open and owned by self; no FrameView can
        // outlive it (they borrow self mutably); it is never used again.
        unsafe { sys::myc_reader_close(self.raw.as_ptr()) }
    }
}

/// A zero-copy view of one frame in the ring (see [`ShmReader::peek`]).
/// Dereferences to the payload bytes; the frame is consumed on drop.
///
/// The view borrows its reader mutably, so the reader cannot move on while
/// the view's bytes are in use:
///
/// ```compile_fail
/// # use mycelium_shm::{Options, ShmReader};
/// let mut r = ShmReader::attach("some-channel", &Options::new()).unwrap();
/// let view = r.peek(None).unwrap().unwrap();
/// let next = r.try_read(); // error: `r` is still borrowed by `view`
/// drop(view);
/// ```
#[derive(Debug)]
pub struct FrameView<'r> {
    /// The reader's handle, exclusively borrowed for 'r (see `_borrow`).
    reader: NonNull<sys::MycReader>,
    /// The peeked frame; its payload stays valid until myc_release.
    frame: sys::MycFrame,
    _borrow: PhantomData<&'r mut ShmReader>,
}

impl FrameView<'_> {
    /// The frame's type id.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-view-type-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(12, b"", None).unwrap();
    /// assert_eq!(r.peek(None).unwrap().unwrap().type_id(), 12);
    /// ```
    pub fn type_id(&self) -> u16 {
        self.frame.type_id
    }

    /// The frame's flags (0 in format version 2).
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-view-flags-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(12, b"", None).unwrap();
    /// assert_eq!(r.peek(None).unwrap().unwrap().flags(), 0);
    /// ```
    pub fn flags(&self) -> u16 {
        self.frame.flags
    }

    /// The payload bytes, in the ring.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-view-payload-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(12, b"zz", None).unwrap();
    /// assert_eq!(r.peek(None).unwrap().unwrap().payload(), b"zz");
    /// ```
    ///
    /// On a lossy (or untethered) broadcast reader, writers in other
    /// processes may overwrite these bytes while the view lives (that reader
    /// never holds them back): read them, then confirm with
    /// [`FrameView::check`] or [`FrameView::release`] (or use
    /// [`ShmReader::peek_with`], which does it).
    pub fn payload(&self) -> &[u8] {
        if self.frame.payload_len == 0 {
            return &[];
        }
        // SAFETY: myc_peek pointed frame.payload at payload_len committed
        // bytes of the mapped ring, which stays mapped until the reader
        // closes (the view borrows the reader, so not before the slice is
        // gone).  On single-reader channels and tethered readers no writer
        // reuses them until myc_release, which only Drop calls.  A lossy
        // (or untethered) reader's bytes may be rewritten by writers in
        // other processes meanwhile: that is shared memory outside this
        // program, read as plain bytes (any value is a valid u8), and the
        // documented check (myc_reader_check_held) tells whether what was
        // read is the frame.
        unsafe { std::slice::from_raw_parts(self.frame.payload, self.frame.payload_len as usize) }
    }

    /// Copy the frame out.
    ///
    /// ```
    /// # use mycelium_shm::{unlink, Frame, Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-view-copy-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(1, b"q", None).unwrap();
    /// let frame = r.peek(None).unwrap().unwrap().to_frame();
    /// assert_eq!(frame, Frame { type_id: 1, payload: b"q".to_vec() });
    /// ```
    pub fn to_frame(&self) -> Frame {
        Frame { type_id: self.type_id(), payload: self.payload().to_vec() }
    }

    /// Whether the frame is still intact: always `Ok` on a single-reader
    /// channel or a tethered reader; on a lossy (or untethered) broadcast
    /// reader, [`Error::Lapped`] if writers may have overwritten it since it
    /// was peeked.  Bytes copied out of the view *before* an `Ok` check are
    /// the frame's.
    ///
    /// ```
    /// # use mycelium_shm::{Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-view-check-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(1, b"q", None).unwrap();
    /// let view = r.peek(None).unwrap().unwrap();
    /// let copy = view.to_vec();
    /// view.check().unwrap(); // `copy` is the frame's payload
    /// # assert_eq!(copy, b"q");
    /// ```
    pub fn check(&self) -> Result<()> {
        // SAFETY: the reader handle is open and exclusively borrowed for the
        // view's lifetime; the call only reads shared positions.
        check(unsafe { sys::myc_reader_check_held(self.reader.as_ptr()) })
    }

    /// Consume the frame, reporting whether it stayed intact while it was
    /// held ([`FrameView::check`]): [`Error::Lapped`] if a lossy reader's
    /// frame was overwritten.  Dropping the view consumes it without the
    /// check.
    ///
    /// ```
    /// # use mycelium_shm::{Options, ShmReader, ShmWriter};
    /// # let name = format!("doc-view-release-{}", std::process::id());
    /// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
    /// # let mut r = ShmReader::create(&name, &Options::new()).unwrap();
    /// # let w = ShmWriter::attach(&name, &Options::new()).unwrap();
    /// w.write(1, b"q", None).unwrap();
    /// let view = r.peek(None).unwrap().unwrap();
    /// assert_eq!(&*view, b"q");
    /// view.release().unwrap();
    /// assert_eq!(r.try_read().unwrap(), None);
    /// ```
    pub fn release(self) -> Result<()> {
        let intact = self.check();
        drop(self);
        intact
    }
}

impl Deref for FrameView<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.payload()
    }
}

impl Drop for FrameView<'_> {
    fn drop(&mut self) {
        // SAFETY: the reader handle is open and exclusively borrowed for the
        // view's lifetime; this releases the frame myc_peek returned, once.
        unsafe { sys::myc_release(self.reader.as_ptr()) }
    }
}
