//! The one error type of the crate, built from a C result code in one place.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::os::raw::c_int;

use crate::codec::DecodeError;
use crate::sys;

/// Every error this crate returns.
///
/// The variants mirror the Python exceptions of `mycelium_shm.errors`
/// (`ChannelNotFound` is [`Error::NotFound`], `DecodeError` is
/// [`Error::Decode`], ...).  The `String` of each variant is the C core's
/// detail text (`myc_last_error()`), or the codec's description.
///
/// ```
/// use mycelium_shm::{Error, Options, ShmWriter};
///
/// let err = ShmWriter::attach("no-such-channel-for-this-doc-test", &Options::default())
///     .unwrap_err();
/// assert!(matches!(err, Error::NotFound(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// No channel of that name exists (Python: `ChannelNotFound`).
    NotFound(String),
    /// A channel of that name already exists (Python: `ChannelExists`).
    Exists(String),
    /// The object is not a channel of a format this code reads (Python: `FormatError`).
    Format(String),
    /// The channel's shared state breaks the format (Python: `CorruptChannel`).
    Corrupt(String),
    /// A write found no room before its timeout (Python: `Full`).
    Full(String),
    /// There was nothing to act on: [`force_unblock`] found no claim
    /// holding the reader (`MYC_ERR_EMPTY`; OCaml: `Empty`).  Reads never
    /// return it: they report an empty ring as `Ok(None)` (or 0 frames).
    ///
    /// [`force_unblock`]: crate::force_unblock
    Empty(String),
    /// A live reader is already attached (Python: `ReaderBusy`).
    ReaderBusy(String),
    /// The two sides use different schemas (Python: `SchemaMismatch`).
    SchemaMismatch(String),
    /// Bytes do not decode as a message of the schema (Python:
    /// `PayloadError`, a `DecodeError`); says which [`DecodeKind`].
    ///
    /// [`DecodeKind`]: crate::codec::DecodeKind
    Decode(DecodeError),
    /// A channel name is empty, too long, or holds forbidden characters (Python: `InvalidName`).
    InvalidName(String),
    /// An argument is out of range (Python: `ValueError`).
    InvalidArgument(String),
    /// A payload is larger than the channel's maximum (Python: `ValueError`).
    TooLarge(String),
    /// A signal arrived while waiting (Python: `InterruptedError`).
    Interrupted(String),
    /// A reader handle was used by two threads at once (Python: `RuntimeError`).
    HandleBusy(String),
    /// The handle was already closed (Python: `ChannelClosed`).
    Closed(String),
    /// An operator force-unblocked this writer's claimed frame (see
    /// [`force_unblock`]): the reader skipped it and the frame was dropped,
    /// never delivered (Python: `FrameAbandoned`).
    ///
    /// [`force_unblock`]: crate::force_unblock
    Abandoned(String),
    /// Every one of the channel's writer slots (`MYC_WRITER_SLOTS`, 32) is
    /// held by a live writer, or by a dead writer's claim the reader has not
    /// skipped yet.  A slot is taken per writing *thread*: one [`ShmWriter`]
    /// used from several threads takes one slot for each (Python:
    /// `TooManyWriters`).
    ///
    /// [`ShmWriter`]: crate::ShmWriter
    TooManyWriters(String),
    /// Attaching was refused: the channel's file is owned by another uid,
    /// or its mode is wider than the one this open allows (Python:
    /// `ForeignChannel`).  See the threat model in docs/FORMAT.md.
    Foreign(String),
    /// The handle was opened by the parent of this forked process: the
    /// child's copy refuses every write and read and never touches the
    /// parent's state; open a new handle in the child (Python:
    /// `ForkedHandle`).
    Forked(String),
    /// An operating-system error (Python: `OSError`).
    System(io::Error),
    /// Every cursor slot of a broadcast channel holds a reader, or a
    /// durable cursor no reader needs ([`forget_cursor`] frees one), or a
    /// channel was asked for more readers than the header's cursor table
    /// has slots (`MYC_READER_SLOTS`, 10) (Python: `TooManyReaders`).
    ///
    /// [`forget_cursor`]: crate::forget_cursor
    TooManyReaders(String),
    /// A lossy (or untethered) broadcast reader's zero-copy frame was
    /// overwritten by writers while it was held: what was read through the
    /// view is not reliable.  The reader resumes past the loss, counted in
    /// [`ShmReader::lost`] (Python: `Lapped`).
    ///
    /// [`ShmReader::lost`]: crate::ShmReader::lost
    Lapped(String),
    /// A bus subscriber queue under [`Overflow::Raise`] was full (Python:
    /// `SubscriberOverflow`).
    ///
    /// [`Overflow::Raise`]: crate::bus::Overflow::Raise
    Overflow(String),
    /// A socket peer broke the bus wire protocol: bad hello, a frame length
    /// or type out of range, a connection ended inside a record (Python:
    /// `TransportError`).
    Transport(String),
    /// The bus, a subscriber or a link was closed (Python: `BusClosed`).
    BusClosed(String),
    /// A node plan or a service configuration is invalid (the message names
    /// the file and the key).
    Config(String),
}

impl Error {
    /// Build the error for a negative C result code, taking the detail text
    /// (and, for `MYC_ERR_SYSTEM`, errno) from the calling thread's C error
    /// state.  Must be called on the thread that made the failing call,
    /// before any other call into the C core.
    pub(crate) fn from_code(code: i64) -> Error {
        let detail = last_error_text();
        let code = match c_int::try_from(code) {
            Ok(c) => c,
            Err(_) => {
                return Error::System(io::Error::other(format!("unknown result code {code}: {detail}")))
            }
        };
        match code {
            sys::MYC_ERR_FULL => Error::Full(detail),
            sys::MYC_ERR_EMPTY => Error::Empty(detail),
            sys::MYC_ERR_ARG => Error::InvalidArgument(detail),
            sys::MYC_ERR_NAME => Error::InvalidName(detail),
            sys::MYC_ERR_NOT_FOUND => Error::NotFound(detail),
            sys::MYC_ERR_EXISTS => Error::Exists(detail),
            sys::MYC_ERR_FORMAT => Error::Format(detail),
            sys::MYC_ERR_CORRUPT => Error::Corrupt(detail),
            sys::MYC_ERR_READER_BUSY => Error::ReaderBusy(detail),
            sys::MYC_ERR_SCHEMA => Error::SchemaMismatch(detail),
            sys::MYC_ERR_TOO_LARGE => Error::TooLarge(detail),
            sys::MYC_ERR_INTERRUPTED => Error::Interrupted(detail),
            sys::MYC_ERR_HANDLE_BUSY => Error::HandleBusy(detail),
            sys::MYC_ERR_CLOSED => Error::Closed(detail),
            sys::MYC_ERR_ABANDONED => Error::Abandoned(detail),
            sys::MYC_ERR_TOO_MANY_WRITERS => Error::TooManyWriters(detail),
            sys::MYC_ERR_FOREIGN => Error::Foreign(detail),
            sys::MYC_ERR_FORKED => Error::Forked(detail),
            sys::MYC_ERR_TOO_MANY_READERS => Error::TooManyReaders(detail),
            sys::MYC_ERR_LAPPED => Error::Lapped(detail),
            sys::MYC_ERR_SYSTEM => {
                // SAFETY: myc_last_errno only reads a thread-local int.
                let errno = unsafe { sys::myc_last_errno() };
                let os = io::Error::from_raw_os_error(errno);
                if detail.is_empty() {
                    Error::System(os)
                } else {
                    Error::System(io::Error::new(os.kind(), format!("{detail}: {os}")))
                }
            }
            // A code this crate does not know (a newer C core).
            other => Error::System(io::Error::other(format!("{} ({other}): {detail}", result_name(other)))),
        }
    }

    /// The C core's detail text, or the codec's description.
    pub fn detail(&self) -> String {
        match self {
            Error::NotFound(s)
            | Error::Exists(s)
            | Error::Format(s)
            | Error::Corrupt(s)
            | Error::Full(s)
            | Error::Empty(s)
            | Error::ReaderBusy(s)
            | Error::SchemaMismatch(s)
            | Error::InvalidName(s)
            | Error::InvalidArgument(s)
            | Error::TooLarge(s)
            | Error::Interrupted(s)
            | Error::HandleBusy(s)
            | Error::Closed(s)
            | Error::Abandoned(s)
            | Error::TooManyWriters(s)
            | Error::Foreign(s)
            | Error::Forked(s)
            | Error::TooManyReaders(s)
            | Error::Lapped(s)
            | Error::Overflow(s)
            | Error::Transport(s)
            | Error::BusClosed(s)
            | Error::Config(s) => s.clone(),
            Error::Decode(e) => e.to_string(),
            Error::System(e) => e.to_string(),
        }
    }

    /// Short name of the error kind, the same as the Python exception class
    /// where there is one (`"ChannelNotFound"`, `"Full"`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "ChannelNotFound",
            Error::Exists(_) => "ChannelExists",
            Error::Format(_) => "FormatError",
            Error::Corrupt(_) => "CorruptChannel",
            Error::Full(_) => "Full",
            Error::Empty(_) => "Empty",
            Error::ReaderBusy(_) => "ReaderBusy",
            Error::SchemaMismatch(_) => "SchemaMismatch",
            Error::Decode(_) => "PayloadError",
            Error::InvalidName(_) => "InvalidName",
            Error::InvalidArgument(_) => "InvalidArgument",
            Error::TooLarge(_) => "TooLarge",
            Error::Interrupted(_) => "Interrupted",
            Error::HandleBusy(_) => "HandleBusy",
            Error::Closed(_) => "ChannelClosed",
            Error::Abandoned(_) => "FrameAbandoned",
            Error::TooManyWriters(_) => "TooManyWriters",
            Error::Foreign(_) => "ForeignChannel",
            Error::Forked(_) => "ForkedHandle",
            Error::System(_) => "OSError",
            Error::TooManyReaders(_) => "TooManyReaders",
            Error::Lapped(_) => "Lapped",
            Error::Overflow(_) => "SubscriberOverflow",
            Error::Transport(_) => "TransportError",
            Error::BusClosed(_) => "BusClosed",
            Error::Config(_) => "ConfigError",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self.detail();
        if detail.is_empty() {
            f.write_str(self.kind_name())
        } else {
            write!(f, "{}: {}", self.kind_name(), detail)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::System(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::System(e)
    }
}

/// A `Result` whose error is [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The error of [`ShmWriter::write_batch`]: what went wrong, and how many
/// frames at the start of the batch had been written (committed, and so
/// delivered to the reader) before it did.
///
/// A batch is claimed at once but committed frame by frame, so it can fail
/// part-way: when an operator [`force_unblock`]s one of its frames, that
/// frame's commit fails with [`Error::Abandoned`], the frames before it are
/// delivered and the rest are dropped.  A caller that retries should resend
/// only `frames[written..]`.  Errors met before anything was claimed
/// ([`Error::Full`], [`Error::TooLarge`], ...) have `written == 0`.
///
/// `?` converts it into the plain [`Error`] (dropping the count), so
/// `write_batch` fits functions returning [`Result`]:
///
/// ```
/// use mycelium_shm::{Error, Options, ShmWriter};
///
/// fn send(w: &ShmWriter) -> mycelium_shm::Result<usize> {
///     Ok(w.write_batch(&[(1, &b"a"[..]), (0, &b"b"[..])], None)?)
/// }
///
/// let name = format!("doc-batch-error-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let w = ShmWriter::create(&name, &Options::new()).unwrap();
/// // Type id 0 is reserved for padding: the batch is refused before any write.
/// let err = w.write_batch(&[(1, &b"a"[..]), (0, &b"b"[..])], None).unwrap_err();
/// assert_eq!(err.written, 0);
/// assert!(matches!(err.error, Error::InvalidArgument(_)));
/// assert!(matches!(send(&w), Err(Error::InvalidArgument(_))));
/// ```
///
/// [`ShmWriter::write_batch`]: crate::ShmWriter::write_batch
/// [`force_unblock`]: crate::force_unblock
#[derive(Debug)]
pub struct BatchError {
    /// Frames at the start of the batch written before the failure
    /// (`myc_last_batch_written()`).
    pub written: usize,
    /// What went wrong.
    pub error: Error,
}

impl BatchError {
    /// Build the error of a failed `myc_write_batch`, reading the count of
    /// frames it wrote from the calling thread's C state.  Must be called on
    /// the thread that made the failing call, before any other call into the
    /// C core.
    pub(crate) fn from_code(code: i64) -> BatchError {
        // SAFETY: myc_last_batch_written only reads a thread-local u32; it
        // is read before Error::from_code, which makes no call that resets it.
        let written = unsafe { sys::myc_last_batch_written() };
        let error = Error::from_code(code);
        BatchError { written: usize::try_from(written).unwrap_or(usize::MAX), error }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (after {} frame(s) of the batch were written)", self.error, self.written)
    }
}

impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<BatchError> for Error {
    /// The error alone, without the count of frames written.
    fn from(e: BatchError) -> Self {
        e.error
    }
}

fn last_error_text() -> String {
    // SAFETY: myc_last_error returns a pointer to a NUL-terminated,
    // thread-local buffer ("" if none) that stays valid until the next call
    // into the C core on this thread; it is copied out before returning.
    unsafe {
        let p = sys::myc_last_error();
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

fn result_name(code: c_int) -> String {
    // SAFETY: myc_result_name returns a static NUL-terminated string (or
    // NULL, handled) for any int.
    unsafe {
        let p = sys::myc_result_name(code);
        if p.is_null() {
            format!("result {code}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Turn a C result into `Ok(value)` or the matching [`Error`].
pub(crate) fn check(code: c_int) -> Result<()> {
    if code >= 0 {
        Ok(())
    } else {
        Err(Error::from_code(code.into()))
    }
}
