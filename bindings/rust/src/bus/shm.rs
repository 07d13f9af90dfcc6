//! Frames over shared-memory channels, as `mycelium_shm/bus/transports/shm.py`.
//!
//! Two ways to use channels between nodes:
//!
//! - **Broadcast** ([`ShmPublication`], [`ShmSubscription`]): a node
//!   publishes on one broadcast channel of its own, and every node that
//!   consumes from it reads that channel with its own durable cursor (named
//!   after the consuming node).  A publish reaching K remote nodes costs one
//!   write.
//! - **Mailbox** ([`ShmLink`], [`ShmInbound`]), described below.
//!
//! Mailbox: a node's inbound endpoint is the one channel it reads ([`ShmInbound`],
//! the channel's only reader, which creates it or takes it over); every node
//! that sends to it writes into that channel ([`ShmLink`]).  Frame type id =
//! message type id, payload = the message's encoding, and the channel
//! carries the schema digest.  A link may be opened before its channel
//! exists: frames wait in a bounded queue and a thread retries the attach
//! with exponential backoff; once attached, it writes the queued frames
//! first, then writes straight into the ring from the publishing thread.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{log_line, Deliver, Inbound, Link};
use crate::channel::{Batch, OpenMode, Options, ReaderOptions, ShmReader, ShmWriter};
use crate::error::{Error, Result};

/// A copy of an error for a second caller (io errors lose their kind).
pub(crate) fn copy_error(e: &Error) -> Error {
    match e {
        Error::SchemaMismatch(s) => Error::SchemaMismatch(s.clone()),
        Error::Full(s) => Error::Full(s.clone()),
        Error::BusClosed(s) => Error::BusClosed(s.clone()),
        Error::Transport(s) => Error::Transport(s.clone()),
        Error::Format(s) => Error::Format(s.clone()),
        Error::Foreign(s) => Error::Foreign(s.clone()),
        other => Error::Transport(other.to_string()),
    }
}

struct LinkState {
    pending: VecDeque<(u16, Vec<u8>)>,
    fatal: Option<Error>,
    closing: bool,
}

struct ShmLinkInner {
    name: String,
    channel: String,
    options: Options,
    send_timeout: Option<Duration>,
    max_pending: usize,
    backoff_initial: Duration,
    backoff_max: Duration,
    /// Set once, after the queued frames were written (under `state`).
    writer: OnceLock<ShmWriter>,
    state: Mutex<LinkState>,
    cond: Condvar,
}

/// Writes frames into another node's channel.
///
/// [`Link::send`] writes directly into the ring, waiting up to
/// `send_timeout` (5 s) for room, then [`Error::Full`].  Before the channel
/// exists, frames queue (at most `max_pending`, 65536, then `Full`).  A
/// schema mismatch found when attaching is permanent: `send` and `flush`
/// return it.
///
/// ```
/// use std::time::Duration;
/// use mycelium_shm::bus::{Link, ShmInbound, ShmLink};
/// use mycelium_shm::generated::SCHEMA_DIGEST;
///
/// let name = format!("doc-shmlink-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let link = ShmLink::new(&name, Some(SCHEMA_DIGEST)); // no channel yet: frames wait
/// link.send(5, &[0; 12]).unwrap();
/// assert!(!link.connected());
/// let inbound = ShmInbound::open(&name, Some(SCHEMA_DIGEST), 1 << 16).unwrap();
/// assert!(link.wait_connected(Some(Duration::from_secs(5))).unwrap());
/// link.close(None);
/// # drop(inbound);
/// mycelium_shm::unlink(&name).unwrap();
/// ```
pub struct ShmLink {
    inner: Arc<ShmLinkInner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ShmLink {
    /// A link to the channel `channel` with default limits.
    pub fn new(channel: &str, digest: Option<[u8; 32]>) -> ShmLink {
        ShmLink::with_options(channel, digest, Some(Duration::from_secs(5)), 65536)
    }

    /// A link with an explicit `send_timeout` (`None` waits for ever for
    /// room in the ring) and `max_pending` frames queued before the channel
    /// exists.
    pub fn with_options(
        channel: &str,
        digest: Option<[u8; 32]>,
        send_timeout: Option<Duration>,
        max_pending: usize,
    ) -> ShmLink {
        let mut options = Options::new();
        options.schema_digest = digest;
        let inner = Arc::new(ShmLinkInner {
            name: format!("shm:{channel}"),
            channel: channel.to_owned(),
            options,
            send_timeout,
            max_pending,
            backoff_initial: Duration::from_millis(5),
            backoff_max: Duration::from_millis(500),
            writer: OnceLock::new(),
            state: Mutex::new(LinkState { pending: VecDeque::new(), fatal: None, closing: false }),
            cond: Condvar::new(),
        });
        let link = ShmLink { inner: inner.clone(), thread: Mutex::new(None) };
        if !inner.try_attach() {
            let handle = std::thread::Builder::new()
                .name(format!("attach {}", inner.name))
                .spawn(move || inner.attach_loop())
                .ok();
            *link.thread.lock().unwrap_or_else(|e| e.into_inner()) = handle;
        }
        link
    }

    /// True once the channel is attached.
    pub fn connected(&self) -> bool {
        self.inner.writer.get().is_some()
    }

    /// Frames waiting for the channel to appear.
    pub fn pending(&self) -> usize {
        self.inner.lock().pending.len()
    }

    /// Wait until the channel is attached; the link's permanent error, if any.
    pub fn wait_connected(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.inner.lock();
        loop {
            if self.inner.writer.get().is_some() {
                return Ok(true);
            }
            if let Some(e) = &st.fatal {
                return Err(copy_error(e));
            }
            st = match deadline {
                None => self.inner.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(false);
                    }
                    self.inner.cond.wait_timeout(st, d - now).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }
}

impl ShmLinkInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One attach attempt: true when done (attached, or failed for good).
    fn try_attach(&self) -> bool {
        let writer = match ShmWriter::open(&self.channel, OpenMode::Attach, &self.options) {
            Ok(w) => w,
            Err(Error::NotFound(_)) => return false,
            Err(e) => {
                log_line(&format!("link {}: {e}", self.name));
                let mut st = self.lock();
                st.fatal = Some(e);
                self.cond.notify_all();
                return true;
            }
        };
        let mut st = self.lock();
        while let Some((type_id, payload)) = st.pending.front() {
            if let Err(e) = writer.write(*type_id, payload, self.send_timeout) {
                log_line(&format!("link {}: writing queued frames failed: {e}", self.name));
                st.fatal = Some(e);
                self.cond.notify_all();
                return true;
            }
            st.pending.pop_front();
        }
        let _ = self.writer.set(writer);
        self.cond.notify_all();
        true
    }

    fn attach_loop(&self) {
        let mut delay = self.backoff_initial;
        loop {
            if self.lock().closing {
                return;
            }
            if self.try_attach() {
                return;
            }
            let st = self.lock();
            if st.closing {
                return;
            }
            drop(self.cond.wait_timeout(st, delay).unwrap_or_else(|e| e.into_inner()));
            delay = (delay * 2).min(self.backoff_max);
        }
    }
}

impl Link for ShmLink {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn send(&self, type_id: u16, payload: &[u8]) -> Result<()> {
        let inner = &*self.inner;
        if let Some(w) = inner.writer.get() {
            return w.write(type_id, payload, inner.send_timeout);
        }
        let mut st = inner.lock();
        if let Some(e) = &st.fatal {
            return Err(copy_error(e));
        }
        if st.closing {
            return Err(Error::BusClosed(format!("link {} is closed", inner.name)));
        }
        if let Some(w) = inner.writer.get() {
            drop(st);
            return w.write(type_id, payload, inner.send_timeout);
        }
        if st.pending.len() >= inner.max_pending {
            return Err(Error::Full(format!(
                "link {}: channel absent and {} frames queued",
                inner.name, inner.max_pending
            )));
        }
        st.pending.push_back((type_id, payload.to_vec()));
        Ok(())
    }

    fn flush(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.inner.lock();
        while !st.pending.is_empty() {
            if let Some(e) = &st.fatal {
                return Err(copy_error(e));
            }
            st = match deadline {
                None => self.inner.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(false);
                    }
                    self.inner.cond.wait_timeout(st, d - now).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
        Ok(true)
    }

    fn close(&self, timeout: Option<Duration>) {
        let _ = self.flush(timeout);
        let left = {
            let mut st = self.inner.lock();
            st.closing = true;
            self.inner.cond.notify_all();
            st.pending.len()
        };
        if left > 0 {
            log_line(&format!("link {} closed with {left} frames undelivered (no channel)", self.inner.name));
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for ShmLink {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.closing = true;
        self.inner.cond.notify_all();
    }
}

/// Reads the node's own channel, creating it if it does not exist, or
/// taking over one whose reader died (reading what was written meanwhile).
///
/// ```
/// use mycelium_shm::bus::{MessageBus, ShmInbound};
/// use mycelium_shm::generated::Message;
///
/// let name = format!("doc-shmin-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let bus = MessageBus::with_schema::<Message>("doc");
/// bus.add_inbound(ShmInbound::open(&name, bus.digest(), 1 << 16)?)?;
/// bus.start()?;
/// bus.close(None);
/// mycelium_shm::unlink(&name)?;
/// # Ok::<(), mycelium_shm::Error>(())
/// ```
pub struct ShmInbound {
    name: String,
    channel: String,
    reader: Option<ShmReader>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    unlink_on_close: bool,
}

impl ShmInbound {
    /// Open (create or take over) the channel `channel` as its reader.
    pub fn open(channel: &str, digest: Option<[u8; 32]>, capacity: u64) -> Result<ShmInbound> {
        let mut options = Options::new().capacity(capacity);
        options.schema_digest = digest;
        let reader = ShmReader::open(channel, OpenMode::CreateOrAttach, &options)?;
        Ok(ShmInbound {
            name: format!("shm:{channel}"),
            channel: channel.to_owned(),
            reader: Some(reader),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
            unlink_on_close: false,
        })
    }

    /// Remove the channel when the endpoint closes (default: keep it, so a
    /// restarted node finds the frames sent while it was down).
    pub fn unlink_on_close(mut self, yes: bool) -> ShmInbound {
        self.unlink_on_close = yes;
        self
    }
}

impl Inbound for ShmInbound {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, deliver: Deliver) -> Result<()> {
        let Some(mut reader) = self.reader.take() else {
            return Err(Error::InvalidArgument(format!("{}: reader thread already started", self.name)));
        };
        let stop = self.stop.clone();
        let name = self.name.clone();
        let handle = std::thread::Builder::new().name(format!("read {}", self.name)).spawn(move || {
            let mut buf = Vec::new();
            while !stop.load(Ordering::Acquire) {
                match reader.read_into(&mut buf, Some(Duration::from_millis(50))) {
                    Ok(Some(type_id)) => deliver(type_id, &buf),
                    Ok(None) => {}
                    Err(e) => {
                        if !stop.load(Ordering::Acquire) {
                            log_line(&format!("{name}: reading failed: {e}"));
                        }
                        return;
                    }
                }
            }
        })?;
        self.thread = Some(handle);
        Ok(())
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            // The reader thread itself may drop the last handle of the bus
            // (and so this endpoint) while it delivers: it ends on its own.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        self.reader = None;
        if self.unlink_on_close {
            let _ = crate::channel::unlink(&self.channel);
        }
    }
}

impl Drop for ShmInbound {
    fn drop(&mut self) {
        self.close();
    }
}

/// Parameters of a [`ShmPublication`] (Python's keyword arguments).
///
/// ```
/// use std::time::Duration;
/// use mycelium_shm::bus::PublicationOptions;
///
/// let opts = PublicationOptions::default();
/// assert_eq!((opts.capacity, opts.spare_readers), (1 << 20, 1));
/// assert_eq!(opts.untether, Duration::from_secs(10));
/// assert_eq!(opts.send_timeout, Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicationOptions {
    /// Ring bytes when the publication creates the channel (1 MiB).
    pub capacity: u64,
    /// Cursor slots beyond one per subscriber, for tools such as
    /// `mycelium-shm tail` (1).
    pub spare_readers: u32,
    /// How long a tethered subscriber may hold writers back (or be dead)
    /// before it is untethered (10 s).
    pub untether: Duration,
    /// How long a send waits for room, then [`Error::Full`] (`None`: for
    /// ever; default 5 s).
    pub send_timeout: Option<Duration>,
    /// Remove the channel when the publication closes (default: keep it,
    /// so subscribers read what was published up to the end).
    pub unlink_on_close: bool,
}

impl Default for PublicationOptions {
    fn default() -> Self {
        PublicationOptions {
            capacity: 1 << 20,
            spare_readers: 1,
            untether: Duration::from_secs(10),
            send_timeout: Some(Duration::from_secs(5)),
            unlink_on_close: false,
        }
    }
}

/// The broadcast channel a node publishes on: a [`Link`] whose frames
/// every subscribing node reads ([`ShmSubscription`]).  A publish reaching
/// K nodes is one write.
///
/// Opening creates the channel (or attaches to it, after a restart) with
/// one cursor slot per subscriber plus `spare_readers`, and registers a
/// durable, tethered cursor for each subscriber at once, so no frame is
/// published before a subscriber's cursor exists, whenever its process
/// starts.  Writers wait for the slowest subscriber (`send_timeout`, then
/// [`Error::Full`]); one that died, or holds them back for `untether`, is
/// untethered and counts what it misses.  As Python's `ShmPublication`.
///
/// ```
/// use mycelium_shm::bus::{Link, PublicationOptions, ShmPublication};
/// use mycelium_shm::generated::SCHEMA_DIGEST;
///
/// let name = format!("doc-shmpub-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let opts = PublicationOptions { capacity: 1 << 16, ..Default::default() };
/// let publication = ShmPublication::open(&name, &["risk", "ui"], Some(SCHEMA_DIGEST), &opts)?;
/// publication.send(5, &[0; 12])?;
/// let info = mycelium_shm::inspect(&name)?;
/// assert_eq!((info.stats.frames_written, info.reader_slots), (1, 3));
/// let cursors = mycelium_shm::inspect_cursors(&name)?;
/// assert_eq!(cursors.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["risk", "ui"]);
/// publication.close(None);
/// mycelium_shm::unlink(&name)?;
/// # Ok::<(), mycelium_shm::Error>(())
/// ```
pub struct ShmPublication {
    name: String,
    channel: String,
    subscribers: Vec<String>,
    send_timeout: Option<Duration>,
    unlink_on_close: bool,
    /// `None` once closed.  Sends take the read lock (no contention between
    /// publishing threads); `close` takes the write lock.
    writer: std::sync::RwLock<Option<ShmWriter>>,
    /// CLOCK_REALTIME ns once the cursors were registered: a subscriber
    /// whose cursor was attached later has come (see [`Link::flush`]).
    registered_ns: u64,
    /// Set once every subscriber has attached.
    all_attached: AtomicBool,
}

impl ShmPublication {
    /// Create (or re-attach to) the broadcast channel `channel` for
    /// `subscribers` and register their cursors.
    ///
    /// Errors: [`Error::SchemaMismatch`] if the channel exists with another
    /// digest, [`Error::InvalidArgument`] if it exists with another number
    /// of cursor slots (or is not a broadcast channel), bad cursor names,
    /// [`Error::TooManyReaders`] beyond the cursor table's slots, and the
    /// errors of [`ShmWriter::open`].
    pub fn open(
        channel: &str,
        subscribers: &[&str],
        digest: Option<[u8; 32]>,
        options: &PublicationOptions,
    ) -> Result<ShmPublication> {
        let slots = u32::try_from(subscribers.len())
            .ok()
            .and_then(|n| n.checked_add(options.spare_readers))
            .ok_or_else(|| {
                Error::InvalidArgument(format!("{} subscribers is too many", subscribers.len()))
            })?;
        let mut opts = Options::new().capacity(options.capacity).readers(slots).untether(options.untether);
        opts.schema_digest = digest;
        let writer = ShmWriter::open(channel, OpenMode::CreateOrAttach, &opts)?;
        for cursor in subscribers {
            // A durable cursor at the tail (one that exists, held or not, stays).
            crate::channel::register_cursor(channel, cursor)?;
        }
        let registered_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Ok(ShmPublication {
            name: format!("shm-pub:{channel}"),
            channel: channel.to_owned(),
            subscribers: subscribers.iter().map(|s| (*s).to_owned()).collect(),
            send_timeout: options.send_timeout,
            unlink_on_close: options.unlink_on_close,
            writer: std::sync::RwLock::new(Some(writer)),
            registered_ns,
            all_attached: AtomicBool::new(subscribers.is_empty()),
        })
    }

    /// The subscribers whose cursors this publication registered.
    pub fn subscribers(&self) -> &[String] {
        &self.subscribers
    }

    /// True until [`Link::close`].
    pub fn connected(&self) -> bool {
        self.writer.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Whether every subscriber has attached its cursor since the
    /// publication opened (or holds it now).
    pub fn subscribers_attached(&self) -> Result<bool> {
        if self.all_attached.load(Ordering::Acquire) {
            return Ok(true);
        }
        let cursors = crate::channel::inspect_cursors(&self.channel)?;
        let came = self.subscribers.iter().all(|name| {
            cursors.iter().any(|c| &c.name == name && (c.alive || c.attached_ns > self.registered_ns))
        });
        if came {
            self.all_attached.store(true, Ordering::Release);
        }
        Ok(came)
    }

    /// The channel's counters (`frames_written` counts one per publish,
    /// whatever the number of subscribers).
    pub fn stats(&self) -> Result<crate::channel::Stats> {
        match &*self.writer.read().unwrap_or_else(|e| e.into_inner()) {
            Some(w) => w.stats(),
            None => Err(Error::Closed(format!("publication {} is closed", self.name))),
        }
    }
}

impl Link for ShmPublication {
    fn name(&self) -> &str {
        &self.name
    }

    /// Write one frame for every subscriber, waiting up to `send_timeout`
    /// for room.
    fn send(&self, type_id: u16, payload: &[u8]) -> Result<()> {
        match &*self.writer.read().unwrap_or_else(|e| e.into_inner()) {
            Some(w) => w.write(type_id, payload, self.send_timeout),
            None => Err(Error::BusClosed(format!("link {} is closed", self.name))),
        }
    }

    /// Frames are in the ring once `send` returns, at every subscriber's
    /// cursor; `flush` waits (up to `timeout`) until every subscriber has
    /// attached once, the broadcast twin of a mailbox link reaching its
    /// peer's channel.  False on timeout.
    fn flush(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.subscribers_attached()? {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Detach (and unlink the channel, if asked).  Subscribers keep reading
    /// what was published until they reach the end.
    fn close(&self, _timeout: Option<Duration>) {
        let writer = self.writer.write().unwrap_or_else(|e| e.into_inner()).take();
        if writer.is_some() {
            drop(writer);
            if self.unlink_on_close {
                let _ = crate::channel::unlink(&self.channel);
            }
        }
    }
}

impl fmt::Debug for ShmPublication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShmPublication({} -> {})", self.name, self.subscribers.join(", "))
    }
}

/// Counters of a [`ShmSubscription`], shared with its reader thread.
#[derive(Debug, Default)]
struct SubscriptionCounters {
    frames: AtomicU64,
    lost: AtomicU64,
    attached: AtomicBool,
}

/// What a [`ShmSubscription`] received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriptionStats {
    /// Frames delivered.
    pub frames: u64,
    /// Frames the reader lost because the publisher untethered it.
    pub lost: u64,
}

/// Reads another node's [`ShmPublication`] channel with this node's own
/// durable cursor: an [`Inbound`] endpoint.
///
/// The channel may not exist yet (processes start in any order): the
/// reader thread attaches with exponential backoff (5 ms doubling to
/// 0.5 s).  A restarted node resumes at its cursor, so nothing published
/// while it was down is lost, unless the publisher untethered it, which is
/// logged with the number of frames lost and counted
/// ([`ShmSubscription::stats`]).  As Python's `ShmSubscription`.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use mycelium_shm::bus::{Link, MessageBus, Overflow, PublicationOptions, ShmPublication, ShmSubscription};
/// use mycelium_shm::generated::{MarketTick, Message};
///
/// let name = format!("doc-shmsub-{}", std::process::id());
/// # let _guard = mycelium_shm::UnlinkGuard::new(&name);
/// let node = MessageBus::with_schema::<Message>("risk");
/// let ticks = node.subscriber::<MarketTick>(16, Overflow::Block)?;
/// node.add_inbound(ShmSubscription::open(&name, "risk", node.digest())?)?; // no channel yet
/// node.start()?;
/// let feed = MessageBus::with_schema::<Message>("feed");
/// let opts = PublicationOptions { capacity: 1 << 16, ..Default::default() };
/// let publication = ShmPublication::open(&name, &["risk"], feed.digest(), &opts)?;
/// feed.add_link(publication, &["MarketTick"])?;
/// feed.publish(MarketTick { seq: 7, ..Default::default() })?;
/// assert_eq!(ticks.recv_timeout(Duration::from_secs(5))?.map(|t| t.seq), Some(7));
/// feed.close(None);
/// node.close(None);
/// mycelium_shm::unlink(&name)?;
/// # Ok::<(), mycelium_shm::Error>(())
/// ```
pub struct ShmSubscription {
    name: String,
    channel: String,
    digest: Option<[u8; 32]>,
    reader_options: ReaderOptions,
    reader: Option<ShmReader>,
    counters: Arc<SubscriptionCounters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Frames taken per read call.
const SUBSCRIPTION_BATCH: usize = 256;

impl ShmSubscription {
    /// Read the broadcast channel `channel` with the durable, tethered
    /// cursor `cursor` (the consuming node's name).
    ///
    /// Tries to attach at once: a missing channel is no error (the reader
    /// thread waits for it), nor a cursor another live reader holds (the
    /// thread tries again for [`BUSY_GRACE`], then logs
    /// [`Error::ReaderBusy`]); [`Error::SchemaMismatch`] (the channel
    /// carries another digest) and the like are returned.
    pub fn open(channel: &str, cursor: &str, digest: Option<[u8; 32]>) -> Result<ShmSubscription> {
        ShmSubscription::open_with(channel, &ReaderOptions::new().cursor(cursor), digest)
    }

    /// [`ShmSubscription::open`] with the cursor, its [`Policy`](crate::Policy)
    /// and its [`Start`](crate::Start) given by `reader` (which must name
    /// the cursor).
    pub fn open_with(
        channel: &str,
        reader: &ReaderOptions,
        digest: Option<[u8; 32]>,
    ) -> Result<ShmSubscription> {
        let Some(cursor) = &reader.cursor else {
            return Err(Error::InvalidArgument("a subscription needs a cursor name".into()));
        };
        let mut sub = ShmSubscription {
            name: format!("shm-sub:{channel}[{cursor}]"),
            channel: channel.to_owned(),
            digest,
            reader_options: reader.clone(),
            reader: None,
            counters: Arc::new(SubscriptionCounters::default()),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        sub.reader = try_subscribe(&sub.channel, sub.digest, &sub.reader_options, &mut None)?;
        sub.counters.attached.store(sub.reader.is_some(), Ordering::Release);
        Ok(sub)
    }

    /// True once the reader is attached to the channel.
    pub fn attached(&self) -> bool {
        self.counters.attached.load(Ordering::Acquire)
    }

    /// Frames delivered and frames lost so far.
    pub fn stats(&self) -> SubscriptionStats {
        SubscriptionStats {
            frames: self.counters.frames.load(Ordering::Relaxed),
            lost: self.counters.lost.load(Ordering::Relaxed),
        }
    }
}

/// How long a subscription keeps trying a cursor that another live reader
/// holds (something that attached it for a moment; publications register
/// cursors without holding them, [`crate::register_cursor`]); longer, it is
/// another reader of the same name, and an error.
pub const BUSY_GRACE: Duration = Duration::from_secs(1);

/// One attach attempt: `Ok(None)` while the channel does not exist, or while
/// the cursor has been held by another live reader for less than
/// [`BUSY_GRACE`] (counted from `busy_since`, set at the first such attempt).
fn try_subscribe(
    channel: &str,
    digest: Option<[u8; 32]>,
    reader: &ReaderOptions,
    busy_since: &mut Option<Instant>,
) -> Result<Option<ShmReader>> {
    let mut options = Options::new();
    options.schema_digest = digest;
    match ShmReader::attach_with(channel, &options, reader) {
        Ok(r) => Ok(Some(r)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(Error::ReaderBusy(_)) if busy_since.get_or_insert_with(Instant::now).elapsed() < BUSY_GRACE => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The reader thread of a [`ShmSubscription`].
struct SubscriptionLoop {
    name: String,
    channel: String,
    digest: Option<[u8; 32]>,
    reader_options: ReaderOptions,
    counters: Arc<SubscriptionCounters>,
    stop: Arc<AtomicBool>,
}

impl SubscriptionLoop {
    fn sleep(&self, delay: Duration) {
        // In slices, so close() is prompt whatever the backoff.
        let deadline = Instant::now() + delay;
        while !self.stop.load(Ordering::Acquire) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    fn attach(&self) -> Option<ShmReader> {
        let mut delay = Duration::from_millis(5);
        let mut busy_since = None;
        while !self.stop.load(Ordering::Acquire) {
            match try_subscribe(&self.channel, self.digest, &self.reader_options, &mut busy_since) {
                Ok(Some(r)) => {
                    self.counters.attached.store(true, Ordering::Release);
                    return Some(r);
                }
                Ok(None) => {}
                Err(e) => {
                    log_line(&format!("{}: cannot attach: {e}", self.name));
                    return None;
                }
            }
            self.sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(20));
        }
        None
    }

    fn run(&self, reader: Option<ShmReader>, deliver: &Deliver) {
        let Some(mut reader) = reader.or_else(|| self.attach()) else {
            return;
        };
        let mut batch = Batch::new(SUBSCRIPTION_BATCH, 1 << 16);
        let mut lost_seen = 0u64;
        while !self.stop.load(Ordering::Acquire) {
            let n = match reader.read_batch(&mut batch, Some(Duration::from_millis(50))) {
                Ok(n) => n,
                Err(Error::Interrupted(_)) => continue,
                Err(e) => {
                    if !self.stop.load(Ordering::Acquire) {
                        log_line(&format!("{}: reading failed: {e}", self.name));
                    }
                    return;
                }
            };
            let lost = reader.lost();
            if lost != lost_seen {
                log_line(&format!(
                    "{}: {} frames lost (the publisher untethered this subscriber)",
                    self.name,
                    lost - lost_seen
                ));
                lost_seen = lost;
                self.counters.lost.store(lost, Ordering::Relaxed);
            }
            for (type_id, payload) in batch.iter() {
                deliver(type_id, payload);
            }
            self.counters.frames.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

impl Inbound for ShmSubscription {
    fn name(&self) -> &str {
        &self.name
    }

    /// Start the reader thread (attaching first, with backoff, if need be).
    fn start(&mut self, deliver: Deliver) -> Result<()> {
        if self.thread.is_some() {
            return Err(Error::InvalidArgument(format!("{}: reader thread already started", self.name)));
        }
        let reader = self.reader.take();
        let looper = SubscriptionLoop {
            name: self.name.clone(),
            channel: self.channel.clone(),
            digest: self.digest,
            reader_options: self.reader_options.clone(),
            counters: self.counters.clone(),
            stop: self.stop.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(format!("read {}", self.name))
            .spawn(move || looper.run(reader, &deliver))?;
        self.thread = Some(handle);
        Ok(())
    }

    /// Stop the reader thread and detach (the durable cursor stays).
    fn close(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            // The reader thread may drop the bus (and so this endpoint) itself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        self.reader = None;
    }
}

impl Drop for ShmSubscription {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for ShmSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.attached() { "attached" } else { "waiting" };
        write!(f, "ShmSubscription({} {state})", self.name)
    }
}
