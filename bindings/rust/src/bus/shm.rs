//! Frames over shared-memory channels, as `mycelium_shm/bus/transports/shm.py`.
//!
//! A node's inbound endpoint is the one channel it reads ([`ShmInbound`],
//! the channel's only reader, which creates it or takes it over); every node
//! that sends to it writes into that channel ([`ShmLink`]).  Frame type id =
//! message type id, payload = the message's encoding, and the channel
//! carries the schema digest.  A link may be opened before its channel
//! exists: frames wait in a bounded queue and a thread retries the attach
//! with exponential backoff; once attached, it writes the queued frames
//! first, then writes straight into the ring from the publishing thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{log_line, Deliver, Inbound, Link};
use crate::channel::{OpenMode, Options, ShmReader, ShmWriter};
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
