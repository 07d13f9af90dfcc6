//! Frames over stream sockets (Unix and TCP), byte for byte the protocol of
//! `mycelium_shm/bus/transports/socket.py`.
//!
//! ```text
//! hello   +----------+---------+-------------+----------------+
//!         | magic 8  | ver u32 | max_pay u32 | schema digest  |
//!         | MYCELBUS |    1    |             |   32 bytes     |
//!         +----------+---------+-------------+----------------+
//!
//! frame   +---------+---------+----------+---------------------+
//!         | len u32 | type u16| flags u16| payload (len-8 B)   |
//!         +---------+---------+----------+---------------------+
//! ```
//!
//! Little-endian; `len` counts the 8-byte header; `flags` is 0.  Each side
//! sends its hello first, then reads the peer's: a different digest is
//! [`Error::SchemaMismatch`] on both sides, another magic or version an
//! [`Error::Transport`].  The largest payload is the smaller of the two
//! `max_pay`; every frame's length (at least 8, at most 8 + that maximum)
//! and type (not 0) are checked as soon as its header arrived, before any
//! payload byte is read.  Only the connecting side ([`SocketLink`]) sends
//! frames.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::shm::copy_error;
use super::{log_line, Deliver, Inbound, Link};
use crate::error::{Error, Result};

/// The first 8 bytes of a hello.
pub const MAGIC: &[u8; 8] = b"MYCELBUS";
/// The protocol version in a hello.
pub const PROTOCOL_VERSION: u32 = 1;
/// Bytes of a hello: magic, version, max payload, schema digest.
pub const HELLO_SIZE: usize = 48;
/// Bytes of a frame header: length, type id, flags.
pub const FRAME_HEADER_SIZE: usize = 8;
/// The largest payload a side accepts unless told otherwise (1 MiB).
pub const DEFAULT_MAX_PAYLOAD: u32 = 1 << 20;
/// Bytes of partial frames the connections of one [`SocketInbound`] share
/// beyond their reserves unless told otherwise (64 MiB).
pub const DEFAULT_MAX_BUFFERED: usize = 64 << 20;
/// Bytes of a partial frame every connection may buffer outside the shared
/// budget.
const RESERVE: usize = 64 << 10;
/// The least budget a connection asks for at a time.
const CHUNK: usize = 256 << 10;
/// How often a connection thread wakes to check `close` and its deadline.
const TICK: Duration = Duration::from_millis(100);

/// Where a [`SocketInbound`] listens and a [`SocketLink`] connects.
///
/// ```
/// use mycelium_shm::bus::SocketAddress;
///
/// assert_eq!(SocketAddress::tcp("127.0.0.1", 7001).to_string(), "tcp:127.0.0.1:7001");
/// assert_eq!(SocketAddress::unix("/tmp/x.sock").to_string(), "unix:/tmp/x.sock");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddress {
    /// A Unix domain socket path.
    Unix(PathBuf),
    /// A TCP host and port.
    Tcp(String, u16),
}

impl SocketAddress {
    /// A Unix socket path.
    pub fn unix(path: impl Into<PathBuf>) -> SocketAddress {
        SocketAddress::Unix(path.into())
    }

    /// A TCP `host:port`.
    pub fn tcp(host: &str, port: u16) -> SocketAddress {
        SocketAddress::Tcp(host.trim_matches(|c| c == '[' || c == ']').to_owned(), port)
    }
}

impl fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketAddress::Unix(p) => write!(f, "unix:{}", p.display()),
            SocketAddress::Tcp(h, p) => write!(f, "tcp:{h}:{p}"),
        }
    }
}

/// A connected stream of either family.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn connect(address: &SocketAddress, timeout: Duration) -> io::Result<Stream> {
        match address {
            SocketAddress::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
            SocketAddress::Tcp(h, port) => {
                let mut last = io::Error::new(ErrorKind::NotFound, format!("{h}:{port} resolves to nothing"));
                for addr in (h.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(s) => {
                            s.set_nodelay(true)?;
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// Shut both directions: a write or read blocked on the socket returns.
    fn shutdown_both(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }

    /// The peer sends nothing after its hello: readable means EOF or reset.
    fn peer_gone(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: fd is an open socket owned by self; the buffer is one
        // writable byte living for the call; MSG_PEEK|MSG_DONTWAIT neither
        // consumes data nor blocks.
        let r = unsafe {
            libc::recv(self.fd(), (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        };
        if r == 0 {
            return true;
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            return !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted);
        }
        false
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match *self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match *self {
            Stream::Unix(s) => (&*s).write(buf),
            Stream::Tcp(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn hello_bytes(digest: &[u8; 32], max_payload: u32) -> [u8; HELLO_SIZE] {
    let mut h = [0u8; HELLO_SIZE];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&max_payload.to_le_bytes());
    h[16..].copy_from_slice(digest);
    h
}

fn hex16(d: &[u8]) -> String {
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Check a peer's 48-byte hello against this side's; the agreed max payload.
fn check_hello(data: &[u8], digest: &[u8; 32], max_payload: u32) -> Result<u32> {
    if data[..8] != MAGIC[..] {
        return Err(Error::Transport(format!("peer is not a mycelium bus (magic {:?})", &data[..8])));
    }
    let word = |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    let version = word(8);
    if version != PROTOCOL_VERSION {
        return Err(Error::Transport(format!(
            "peer speaks protocol version {version}, this side {PROTOCOL_VERSION}"
        )));
    }
    if data[16..48] != digest[..] {
        return Err(Error::SchemaMismatch(format!(
            "peer schema digest {}... differs from this side's {}...",
            hex16(&data[16..48]),
            hex16(digest)
        )));
    }
    Ok(max_payload.min(word(12)))
}

/// Exchange hellos on a connected stream (`std::os::unix::net::UnixStream`
/// or `std::net::TcpStream`, anything `Read + Write`); the agreed max
/// payload.  [`Error::SchemaMismatch`] if the digests differ,
/// [`Error::Transport`] if the peer does not speak this protocol.
///
/// ```
/// use std::os::unix::net::UnixStream;
/// use mycelium_shm::bus::handshake;
///
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// let t = std::thread::spawn(move || handshake(&mut b, &[1; 32], 4096));
/// assert_eq!(handshake(&mut a, &[1; 32], 1 << 20).unwrap(), 4096);
/// assert_eq!(t.join().unwrap().unwrap(), 4096);
/// ```
pub fn handshake<S: Read + Write>(stream: &mut S, digest: &[u8; 32], max_payload: u32) -> Result<u32> {
    stream.write_all(&hello_bytes(digest, max_payload))?;
    let mut data = [0u8; HELLO_SIZE];
    let mut got = 0;
    while got < HELLO_SIZE {
        match stream.read(&mut data[got..]) {
            Ok(0) if got == 0 => {
                return Err(Error::Transport("peer closed the connection during the handshake".into()))
            }
            Ok(0) => {
                return Err(Error::Transport(format!(
                    "connection closed inside a record ({got} of {HELLO_SIZE} bytes)"
                )))
            }
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    check_hello(&data, digest, max_payload)
}

// -- outbound -------------------------------------------------------------------

/// Write as much of `data` as the socket takes without waiting; the bytes
/// written, or `Err` if the connection failed (the peer drops a frame cut
/// short, so it is sent whole again after reconnecting).
fn send_now(stream: &Stream, data: &[u8]) -> std::result::Result<usize, ()> {
    let mut off = 0;
    while off < data.len() {
        let rest = &data[off..];
        // SAFETY: fd is an open socket owned by `stream`; the pointer and
        // length describe `rest`, readable for the call; MSG_DONTWAIT never
        // blocks and MSG_NOSIGNAL turns SIGPIPE into EPIPE.
        let r = unsafe {
            libc::send(stream.fd(), rest.as_ptr().cast(), rest.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
        };
        if r >= 0 {
            off += r as usize;
            continue;
        }
        match io::Error::last_os_error().kind() {
            ErrorKind::Interrupted => continue,
            ErrorKind::WouldBlock => break,
            _ => return Err(()),
        }
    }
    Ok(off)
}

/// How long [`Link::close`] lets a [`SocketLink`]'s sender thread finish by
/// itself (the half-close and the peer's end) before shutting the socket.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The same when `close` gave up frames still queued (the flush timed out).
pub const CLOSE_ABORT_GRACE: Duration = Duration::from_millis(200);

struct LinkState {
    pending: VecDeque<(u16, Vec<u8>)>,
    /// Frames being written outside the lock (by the sender thread, or 1
    /// for a direct write from `send`): nobody else touches the socket.
    in_flight: usize,
    fatal: Option<Error>,
    closing: bool,
    /// The handshaken connection, shared by the sender thread and the
    /// direct writes of `send`.
    stream: Option<Arc<Stream>>,
    /// A write or a liveness check found the connection dead; the sender
    /// thread reconnects.
    broken: bool,
    /// The connection the sender thread (or a direct write) may be blocked
    /// on, until it is dropped: `close` shuts it down to unblock them.
    active: Option<Arc<Stream>>,
    /// The sender thread ended.
    done: bool,
    /// `close` gave up the frames still queued: the sender thread ends
    /// without sending (or reconnecting for) anything more.
    abort: bool,
    /// A frame a direct write from `send` began but the socket buffer could
    /// not take whole: (the encoded frame, bytes written).  The sender
    /// thread writes the rest before anything else.
    partial: Option<PartialFrame>,
}

/// An encoded frame and how many of its bytes were written.
type PartialFrame = (Vec<u8>, usize);

impl LinkState {
    /// Frames queued or being written.
    fn queued(&self) -> usize {
        self.pending.len() + self.in_flight + usize::from(self.partial.is_some())
    }
}

struct SocketLinkInner {
    name: String,
    address: SocketAddress,
    digest: [u8; 32],
    max_payload: u32,
    peer_max: AtomicU32,
    max_pending: usize,
    send_timeout: Option<Duration>,
    connect_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    state: Mutex<LinkState>,
    cond: Condvar,
    sent: AtomicU64,
    lost: AtomicU64,
    connects: AtomicU64,
}

/// Outbound frames to one [`SocketInbound`] (Unix or TCP), with
/// reconnection.
///
/// [`Link::send`] never waits on the network: it queues the frame (waiting
/// up to `send_timeout`, 5 s, for room when 65536 frames are queued, then
/// [`Error::Full`]); a sender thread connects lazily, reconnects with
/// exponential backoff (10 ms doubling to 1 s) and keeps the queue across
/// reconnections.  Frames written into a connection that then broke are
/// counted in [`SocketLink::lost`] and logged.  A schema mismatch is
/// permanent: `send`, `flush` and [`SocketLink::wait_connected`] return it.
/// [`Link::close`] sends everything queued (up to its timeout), half-closes
/// and waits for the peer to read to the end, at most [`CLOSE_GRACE`]
/// longer: then it shuts the socket down, so a peer that stopped reading
/// cannot hold it.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use mycelium_shm::bus::{Inbound, Link, SocketAddress, SocketInbound, SocketLink};
///
/// let mut inbound = SocketInbound::bind(&SocketAddress::tcp("127.0.0.1", 0), Some([7; 32]))?;
/// inbound.start(Arc::new(|_type_id, _payload| {}))?; // accepting from now on
/// let link = SocketLink::new(inbound.local_address(), Some([9; 32])); // another schema
/// let refused = link.wait_connected(Some(Duration::from_secs(5)));
/// assert!(matches!(refused, Err(mycelium_shm::Error::SchemaMismatch(_))));
/// link.close(None);
/// # Ok::<(), mycelium_shm::Error>(())
/// ```
pub struct SocketLink {
    inner: Arc<SocketLinkInner>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl SocketLink {
    /// A link to `address` with default limits; `digest` `None` sends zeros
    /// (a peer without a schema).
    pub fn new(address: SocketAddress, digest: Option<[u8; 32]>) -> SocketLink {
        SocketLink::with_options(address, digest, DEFAULT_MAX_PAYLOAD, 65536, Some(Duration::from_secs(5)))
    }

    /// A link with explicit `max_payload`, `max_pending` and `send_timeout`.
    pub fn with_options(
        address: SocketAddress,
        digest: Option<[u8; 32]>,
        max_payload: u32,
        max_pending: usize,
        send_timeout: Option<Duration>,
    ) -> SocketLink {
        let inner = Arc::new(SocketLinkInner {
            name: address.to_string(),
            address,
            digest: digest.unwrap_or([0; 32]),
            max_payload,
            peer_max: AtomicU32::new(max_payload),
            max_pending: max_pending.max(1),
            send_timeout,
            connect_timeout: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            state: Mutex::new(LinkState {
                pending: VecDeque::new(),
                in_flight: 0,
                fatal: None,
                closing: false,
                stream: None,
                broken: false,
                active: None,
                done: false,
                abort: false,
                partial: None,
            }),
            cond: Condvar::new(),
            sent: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            connects: AtomicU64::new(0),
        });
        let worker = inner.clone();
        let handle =
            std::thread::Builder::new().name(format!("link {}", inner.name)).spawn(move || worker.run()).ok();
        if handle.is_none() {
            let mut st = inner.lock();
            st.fatal = Some(Error::System(io::Error::other("cannot start the link thread")));
            st.done = true;
        }
        SocketLink { inner, thread: Mutex::new(handle) }
    }

    /// Wait for a completed handshake; the link's permanent error, if any.
    pub fn wait_connected(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.inner.lock();
        loop {
            if let Some(e) = &st.fatal {
                return Err(copy_error(e));
            }
            if st.stream.is_some() {
                return Ok(true);
            }
            st = match self.inner.wait(st, deadline) {
                Some(st) => st,
                None => return Ok(false),
            };
        }
    }

    /// True while a handshaken connection is up.
    pub fn connected(&self) -> bool {
        self.inner.lock().stream.is_some()
    }

    /// Frames queued and not yet written.
    pub fn pending(&self) -> usize {
        self.inner.lock().queued()
    }

    /// Frames written to the socket.
    pub fn sent(&self) -> u64 {
        self.inner.sent.load(Ordering::Relaxed)
    }

    /// Frames written into a connection that then broke.
    pub fn lost(&self) -> u64 {
        self.inner.lost.load(Ordering::Relaxed)
    }

    /// Successful handshakes.
    pub fn connects(&self) -> u64 {
        self.inner.connects.load(Ordering::Relaxed)
    }
}

impl SocketLinkInner {
    fn lock(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait up to `timeout` for the sender thread to end; whether it did.
    fn wait_done(&self, timeout: Duration) -> bool {
        let deadline = Some(Instant::now() + timeout);
        let mut st = self.lock();
        while !st.done {
            st = match self.wait(st, deadline) {
                Some(st) => st,
                None => return false,
            };
        }
        true
    }

    /// Wait on the condition until notified or `deadline`; None once past it.
    fn wait<'a>(
        &self,
        st: MutexGuard<'a, LinkState>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, LinkState>> {
        match deadline {
            None => Some(self.cond.wait(st).unwrap_or_else(|e| e.into_inner())),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return None;
                }
                Some(self.cond.wait_timeout(st, d - now).unwrap_or_else(|e| e.into_inner()).0)
            }
        }
    }

    fn connect(&self) -> Result<Stream> {
        let mut stream = Stream::connect(&self.address, self.connect_timeout)?;
        stream.set_read_timeout(Some(self.connect_timeout))?;
        stream.set_write_timeout(Some(self.connect_timeout))?;
        let peer_max = handshake(&mut stream, &self.digest, self.max_payload)?;
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        self.peer_max.store(peer_max, Ordering::Relaxed);
        Ok(stream)
    }

    fn run(&self) {
        /// Marks the sender thread done however it ends.
        struct Done<'a>(&'a SocketLinkInner);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                let mut st = self.0.lock();
                st.done = true;
                st.active = None;
                drop(st);
                self.0.cond.notify_all();
            }
        }
        let _done = Done(self);
        let mut delay = self.backoff_initial;
        let mut failures = 0u32;
        let mut stream: Option<Arc<Stream>> = None;
        loop {
            {
                let st = self.lock();
                if st.closing && (st.abort || st.queued() == 0) {
                    break;
                }
            }
            let Some(s) = stream.clone() else {
                match self.connect() {
                    Ok(s) => {
                        failures = 0;
                        delay = self.backoff_initial;
                        let s = Arc::new(s);
                        stream = Some(s.clone());
                        self.connects.fetch_add(1, Ordering::Relaxed);
                        let mut st = self.lock();
                        st.active = Some(s.clone());
                        st.stream = Some(s);
                        st.broken = false;
                        drop(st);
                        self.cond.notify_all();
                    }
                    Err(e @ Error::SchemaMismatch(_)) => {
                        log_line(&format!("link {}: {e}", self.name));
                        self.lock().fatal = Some(e);
                        self.cond.notify_all();
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == 1 {
                            log_line(&format!(
                                "link {}: connect failed ({e}); retrying every {:?} up to {:?}",
                                self.name, self.backoff_initial, self.backoff_max
                            ));
                        }
                        let st = self.lock();
                        if st.closing {
                            break;
                        }
                        drop(self.cond.wait_timeout(st, delay).unwrap_or_else(|e| e.into_inner()));
                        delay = (delay * 2).min(self.backoff_max);
                    }
                }
                continue;
            };
            if !self.pump(&s) {
                stream = None;
                let mut st = self.lock();
                // Wait out a direct write still using the old connection.
                while st.in_flight > 0 {
                    st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                st.stream = None;
                st.active = None;
                st.broken = false;
                if st.partial.take().is_some() {
                    // Begun on the dead connection: the peer drops it.
                    self.lost.fetch_add(1, Ordering::Relaxed);
                    log_line(&format!("link {}: connection broke inside a frame; 1 frame lost", self.name));
                }
                drop(st);
                self.cond.notify_all();
            }
        }
        self.finish(stream);
    }

    /// Write queued frames until idle and closing; false if the connection broke.
    fn pump(&self, stream: &Stream) -> bool {
        let mut out = Vec::new();
        let tick = Duration::from_millis(50);
        loop {
            let (partial, batch): (Option<PartialFrame>, Vec<(u16, Vec<u8>)>) = {
                let mut st = self.lock();
                loop {
                    if st.abort {
                        return true;
                    }
                    if st.broken {
                        return false;
                    }
                    if st.in_flight > 0 {
                        // A direct write from send() is running.
                        st = self.cond.wait_timeout(st, tick).unwrap_or_else(|e| e.into_inner()).0;
                        continue;
                    }
                    if !st.pending.is_empty() || st.partial.is_some() {
                        break;
                    }
                    if st.closing {
                        return true;
                    }
                    st = self.cond.wait_timeout(st, tick).unwrap_or_else(|e| e.into_inner()).0;
                    if st.queued() == 0 && stream.peer_gone() {
                        st.broken = true;
                        return false;
                    }
                }
                if stream.peer_gone() {
                    // Writing now would land in the kernel buffer of a dead
                    // connection and vanish; reconnect instead.
                    return false;
                }
                let partial = st.partial.take();
                let mut size = 0;
                let mut batch = Vec::new();
                while size < (1 << 18) {
                    let Some(frame) = st.pending.pop_front() else { break };
                    size += frame.1.len() + FRAME_HEADER_SIZE;
                    batch.push(frame);
                }
                st.in_flight = batch.len() + usize::from(partial.is_some());
                (partial, batch)
            };
            out.clear();
            if let Some((frame, written)) = &partial {
                out.extend_from_slice(&frame[*written..]);
            }
            for (type_id, payload) in &batch {
                // send() checked the length against the agreed maximum.
                let len = (payload.len() + FRAME_HEADER_SIZE) as u32;
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&type_id.to_le_bytes());
                out.extend_from_slice(&0u16.to_le_bytes());
                out.extend_from_slice(payload);
            }
            let result = (&*stream).write_all(&out);
            let n = (batch.len() + usize::from(partial.is_some())) as u64;
            let mut st = self.lock();
            st.in_flight = 0;
            match result {
                Ok(()) => {
                    self.sent.fetch_add(n, Ordering::Relaxed);
                    drop(st);
                    self.cond.notify_all();
                }
                Err(e) => {
                    self.lost.fetch_add(n, Ordering::Relaxed);
                    drop(st);
                    self.cond.notify_all();
                    log_line(&format!("link {}: connection broke ({e}); {n} frames lost", self.name));
                    return false;
                }
            }
        }
    }

    /// Clean end: half-close, wait for the peer to read everything and close.
    fn finish(&self, stream: Option<Arc<Stream>>) {
        self.lock().stream = None;
        self.cond.notify_all();
        let Some(s) = stream else { return };
        if s.shutdown_write().is_err() {
            return;
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = [0u8; 4096];
        while let Ok(k) = (&*s).read(&mut buf) {
            if k == 0 {
                break;
            }
        }
    }
}

impl Link for SocketLink {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn send(&self, type_id: u16, payload: &[u8]) -> Result<()> {
        let inner = &*self.inner;
        if type_id == 0 {
            return Err(Error::InvalidArgument("type id 0 is reserved (1..65535)".into()));
        }
        let peer_max = inner.peer_max.load(Ordering::Relaxed) as usize;
        if payload.len() > peer_max {
            return Err(Error::TooLarge(format!(
                "payload of {} bytes exceeds the {peer_max}-byte maximum",
                payload.len()
            )));
        }
        let mut st = inner.lock();
        let deadline = inner.send_timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(e) = &st.fatal {
                return Err(copy_error(e));
            }
            if st.closing {
                return Err(Error::BusClosed(format!("link {} is closed", inner.name)));
            }
            if st.pending.len() < inner.max_pending {
                break;
            }
            st = match inner.wait(st, deadline) {
                Some(st) => st,
                None => {
                    return Err(Error::Full(format!(
                        "link {}: {} frames queued and no room after {:?}",
                        inner.name, inner.max_pending, inner.send_timeout
                    )))
                }
            };
        }
        let direct = match &st.stream {
            Some(s) if st.queued() == 0 && !st.broken => Some(s.clone()),
            _ => None,
        };
        let Some(stream) = direct else {
            st.pending.push_back((type_id, payload.to_vec()));
            drop(st);
            inner.cond.notify_all();
            return Ok(());
        };
        // Fast path: connected and idle, so write from this thread and spare
        // the hand-off to the sender thread; in_flight keeps it off the socket.
        st.in_flight = 1;
        drop(st);
        let mut frame = Vec::with_capacity(FRAME_HEADER_SIZE + payload.len());
        frame.extend_from_slice(&((payload.len() + FRAME_HEADER_SIZE) as u32).to_le_bytes());
        frame.extend_from_slice(&type_id.to_le_bytes());
        frame.extend_from_slice(&0u16.to_le_bytes());
        frame.extend_from_slice(payload);
        // Writing into a dead connection would succeed into the kernel buffer
        // and vanish: check first.  A frame not (completely) written is sent
        // again after reconnecting: the peer never delivers a partial frame.
        // The write never waits: what the socket buffer cannot take now
        // goes to the sender thread.
        let written = if stream.peer_gone() { Err(()) } else { send_now(&stream, &frame) };
        let mut st = inner.lock();
        st.in_flight = 0;
        match written {
            Ok(n) if n == frame.len() => {
                inner.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(0) => st.pending.push_front((type_id, payload.to_vec())),
            Ok(n) => st.partial = Some((frame, n)),
            Err(()) => {
                st.pending.push_front((type_id, payload.to_vec()));
                st.broken = true;
            }
        }
        drop(st);
        inner.cond.notify_all();
        Ok(())
    }

    fn flush(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.inner.lock();
        while st.queued() > 0 {
            if let Some(e) = &st.fatal {
                return Err(copy_error(e));
            }
            st = match self.inner.wait(st, deadline) {
                Some(st) => st,
                None => return Ok(false),
            };
        }
        Ok(true)
    }

    /// Flush up to `timeout`, then end the sender thread within a bounded
    /// time whatever the peer does: after [`CLOSE_GRACE`] (at once, or
    /// [`CLOSE_ABORT_GRACE`] if frames were left unsent) the connection is
    /// shut down in both directions, so a write blocked on a peer that does
    /// not read returns; a thread still running [`CLOSE_GRACE`] later is
    /// left to end by itself.
    fn close(&self, timeout: Option<Duration>) {
        let flushed = self.flush(timeout).unwrap_or(false);
        let left = {
            let mut st = self.inner.lock();
            st.closing = true;
            st.queued()
        };
        self.inner.cond.notify_all();
        if !flushed && left > 0 {
            log_line(&format!("link {} closed with {left} frames undelivered", self.inner.name));
            // Nothing will send them: let the sender thread end now.
            let mut st = self.inner.lock();
            st.pending.clear();
            st.partial = None;
            st.abort = true;
            drop(st);
            self.inner.cond.notify_all();
        }
        let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        let grace = if flushed || left == 0 { CLOSE_GRACE } else { CLOSE_ABORT_GRACE };
        if !self.inner.wait_done(grace) {
            // Blocked on a peer that does not read (or does not close):
            // shut the socket so the blocked call returns.
            let active = {
                let mut st = self.inner.lock();
                st.abort = true;
                st.active.clone()
            };
            if let Some(s) = active {
                let _ = s.shutdown_both();
            }
            self.inner.cond.notify_all();
            if !self.inner.wait_done(CLOSE_GRACE) {
                log_line(&format!(
                    "link {}: the sender thread did not end within {:?}; leaving it",
                    self.inner.name,
                    grace + CLOSE_GRACE
                ));
                return; // dropping the handle detaches the thread
            }
        }
        let _ = t.join();
    }
}

impl Drop for SocketLink {
    fn drop(&mut self) {
        let has_thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        if has_thread {
            Link::close(self, Some(Duration::ZERO));
        }
    }
}

// -- inbound --------------------------------------------------------------------

thread_local! {
    /// True in the thread serving a connection.
    static IN_CONNECTION: Cell<bool> = const { Cell::new(false) };
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    fn fd(&self) -> RawFd {
        match self {
            Listener::Unix(l) => l.as_raw_fd(),
            Listener::Tcp(l) => l.as_raw_fd(),
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
        }
    }
}

/// Counters and recent errors of a [`SocketInbound`], shared with its
/// threads (get one with [`SocketInbound::monitor`]; it stays valid after
/// the endpoint was handed to a bus).
#[derive(Debug, Default)]
pub struct InboundMonitor {
    connections: AtomicU64,
    frames: AtomicU64,
    open: AtomicU64,
    refused: AtomicU64,
    timed_out: AtomicU64,
    oversized: AtomicU64,
    threads: AtomicU64,
    buffered: AtomicU64,
    peak_buffered: AtomicU64,
    errors: Mutex<VecDeque<String>>,
}

impl InboundMonitor {
    /// Connections accepted and handshaken.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
    /// Frames received.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }
    /// Peers refused (over `max_connections`).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
    /// Connections dropped for a missed deadline.
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }
    /// Frames longer than agreed.
    pub fn oversized(&self) -> u64 {
        self.oversized.load(Ordering::Relaxed)
    }
    /// Connection threads the accept thread holds: running, or ended and
    /// not yet reaped (reaped at every accept and every 100 ms; never more
    /// than `max_connections`).
    pub fn threads(&self) -> u64 {
        self.threads.load(Ordering::Relaxed)
    }
    /// Bytes of partial frames held now beyond each connection's 64 KiB
    /// reserve (charged to the shared `max_buffered` budget).
    pub fn buffered(&self) -> u64 {
        self.buffered.load(Ordering::Relaxed)
    }
    /// The most [`InboundMonitor::buffered`] ever was.
    pub fn peak_buffered(&self) -> u64 {
        self.peak_buffered.load(Ordering::Relaxed)
    }
    /// The most recent connection errors (at most 32), as
    /// `"<KindName>: <detail>"` (e.g. `"SchemaMismatch: ..."`).
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    fn report(&self, name: &str, e: &Error) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() >= 32 {
            errors.pop_front();
        }
        errors.push_back(e.to_string());
        drop(errors);
        log_line(&format!("{name}: connection ended: {e}"));
    }
}

#[derive(Clone)]
struct InboundConfig {
    name: String,
    digest: [u8; 32],
    max_payload: u32,
    handshake_timeout: Duration,
    frame_timeout: Duration,
    max_connections: u64,
    max_buffered: usize,
}

/// Listens on a Unix path or a TCP address and receives frames from
/// [`SocketLink`]s (Rust, Python or OCaml).
///
/// The socket is bound by [`SocketInbound::bind`] (a stale Unix socket file
/// nobody listens on is replaced; another process's live one is an error);
/// connections are accepted once the bus starts.  One thread accepts (it
/// polls the listener with a 100 ms timeout to notice `close`) and one
/// thread serves each connection (at most `max_connections`, 1024: the
/// threads still alive are counted, and ended ones reaped, at every accept;
/// more peers are accepted and closed at once, as are peers for which no
/// thread can be started).  A peer must complete its hello within 5 s, and
/// a frame within 30 s of its first byte (checked after every read).
/// Buffers grow as bytes arrive, never from an announced length: each
/// connection may buffer 64 KiB of a partial frame, and beyond that partial
/// frames share `max_buffered` bytes (64 MiB); a connection that would
/// exceed it is not read until others free room (its frame deadline keeps
/// running).  Errors of one connection end that connection only and are
/// logged and kept in the [`InboundMonitor`].
pub struct SocketInbound {
    config: InboundConfig,
    address: SocketAddress,
    listener: Option<Listener>,
    unix_path: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
    monitor: Arc<InboundMonitor>,
}

fn remove_stale_unix_socket(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !meta.file_type().is_socket() {
        return Err(Error::Exists(format!("{} exists and is not a socket", path.display())));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(Error::Exists(format!("{}: another process is listening there", path.display()))),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => {
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(_) => Ok(()),
    }
}

impl SocketInbound {
    /// Bind `address` (TCP port 0 picks a free port: see
    /// [`SocketInbound::local_address`]); `digest` `None` means zeros.
    pub fn bind(address: &SocketAddress, digest: Option<[u8; 32]>) -> Result<SocketInbound> {
        let (listener, bound, unix_path) = match address {
            SocketAddress::Unix(p) => {
                remove_stale_unix_socket(p)?;
                let l = UnixListener::bind(p)?;
                (Listener::Unix(l), address.clone(), Some(p.clone()))
            }
            SocketAddress::Tcp(h, port) => {
                let l = TcpListener::bind((h.as_str(), *port))?;
                let local = l.local_addr()?;
                (Listener::Tcp(l), SocketAddress::Tcp(h.clone(), local.port()), None)
            }
        };
        match &listener {
            Listener::Unix(l) => l.set_nonblocking(true)?,
            Listener::Tcp(l) => l.set_nonblocking(true)?,
        }
        Ok(SocketInbound {
            config: InboundConfig {
                name: bound.to_string(),
                digest: digest.unwrap_or([0; 32]),
                max_payload: DEFAULT_MAX_PAYLOAD,
                handshake_timeout: Duration::from_secs(5),
                frame_timeout: Duration::from_secs(30),
                max_connections: 1024,
                max_buffered: DEFAULT_MAX_BUFFERED,
            },
            address: bound,
            listener: Some(listener),
            unix_path,
            stop: Arc::new(AtomicBool::new(false)),
            accept_thread: None,
            monitor: Arc::new(InboundMonitor::default()),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_address(&self) -> SocketAddress {
        self.address.clone()
    }

    /// The endpoint's counters and recent errors.
    pub fn monitor(&self) -> Arc<InboundMonitor> {
        self.monitor.clone()
    }

    /// Set the largest payload this side accepts (default 1 MiB).
    pub fn max_payload(mut self, max_payload: u32) -> SocketInbound {
        self.config.max_payload = max_payload;
        self
    }

    /// Set the handshake and frame deadlines (defaults 5 s and 30 s).
    pub fn timeouts(mut self, handshake: Duration, frame: Duration) -> SocketInbound {
        self.config.handshake_timeout = handshake;
        self.config.frame_timeout = frame;
        self
    }

    /// Set how many connections may be open at once (default 1024, at
    /// least 1); more are accepted and closed at once.
    pub fn max_connections(mut self, max_connections: u64) -> SocketInbound {
        self.config.max_connections = max_connections.max(1);
        self
    }

    /// Set the bytes of partial frames all connections together may buffer
    /// beyond their 64 KiB reserves (default 64 MiB).
    pub fn max_buffered(mut self, max_buffered: usize) -> SocketInbound {
        self.config.max_buffered = max_buffered;
        self
    }
}

/// The bytes of partial frames the connections of one endpoint may hold
/// beyond their reserves, shared by the connection threads.
struct Budget {
    max: usize,
    used: Mutex<usize>,
    cond: Condvar,
    monitor: Arc<InboundMonitor>,
}

impl Budget {
    fn new(max: usize, monitor: Arc<InboundMonitor>) -> Budget {
        Budget { max, used: Mutex::new(0), cond: Condvar::new(), monitor }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, used: usize) {
        self.monitor.buffered.store(used as u64, Ordering::Relaxed);
        self.monitor.peak_buffered.fetch_max(used as u64, Ordering::Relaxed);
    }

    /// Take `want` bytes (at most the whole budget) all at once, waiting
    /// until `until` for that much room; the bytes granted (0 if the room
    /// did not come free in time).
    fn take(&self, want: usize, until: Instant) -> usize {
        let want = want.min(self.max);
        let mut used = self.lock();
        loop {
            if want > 0 && self.max.saturating_sub(*used) >= want {
                *used += want;
                self.publish(*used);
                return want;
            }
            let now = Instant::now();
            if now >= until {
                return 0;
            }
            used = self.cond.wait_timeout(used, until - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Charge `n` bytes the allocator handed out beyond what was granted.
    fn force(&self, n: usize) {
        let mut used = self.lock();
        *used += n;
        self.publish(*used);
    }

    /// Return `n` bytes.
    fn give(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut used = self.lock();
        *used = used.saturating_sub(n);
        self.publish(*used);
        drop(used);
        self.cond.notify_all();
    }
}

/// A connection's receive buffer.  Its capacity beyond [`RESERVE`] is
/// always covered by `charged`, bytes taken from the shared [`Budget`]: a
/// frame that outgrows the reserve takes the rest of its length at once (so
/// a frame that got budget can always complete), while the capacity still
/// grows only as bytes arrive.  The charge is returned when the frame is
/// complete (or the connection ends).
struct RecvBuf<'a> {
    buf: Vec<u8>,
    charged: usize,
    budget: &'a Budget,
}

impl RecvBuf<'_> {
    /// Charge what the allocator handed out beyond the charge, if anything.
    fn cover(&mut self) {
        let extra = self.buf.capacity().saturating_sub(RESERVE);
        if extra > self.charged {
            self.budget.force(extra - self.charged);
            self.charged = extra;
        }
    }

    /// A frame completed: free the capacity the remaining bytes do not need
    /// and return the charge beyond that capacity.
    fn trim(&mut self) {
        let keep = self.buf.len().max(RESERVE);
        if self.buf.capacity() > keep {
            self.buf.shrink_to(keep);
        }
        let extra = self.buf.capacity().saturating_sub(RESERVE);
        if extra < self.charged {
            self.budget.give(self.charged - extra);
            self.charged = extra;
        }
        self.cover();
    }

    /// Receive into the spare capacity (at most what is there).
    fn recv(&mut self, stream: &Stream) -> io::Result<usize> {
        let spare = self.buf.spare_capacity_mut();
        // SAFETY: fd is an open socket owned by `stream`; the pointer and
        // length describe the vector's spare capacity, writable memory that
        // stays allocated (and unaliased: `self` is borrowed mutably) for the
        // duration of the call; recv writes at most that many bytes.
        let r = unsafe { libc::recv(stream.fd(), spare.as_mut_ptr().cast(), spare.len(), 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let k = r as usize;
        // SAFETY: recv initialised the first k (<= spare length) bytes past
        // the current length, so the first len + k elements are initialised.
        unsafe { self.buf.set_len(self.buf.len() + k) };
        Ok(k)
    }
}

impl Drop for RecvBuf<'_> {
    fn drop(&mut self) {
        self.budget.give(self.charged);
    }
}

/// Counts a connection as open from before its thread is started until the
/// thread ends (or the thread could not be started and the closure holding
/// this was dropped).
struct OpenGuard(Arc<InboundMonitor>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn accept_loop(
    listener: Listener,
    config: InboundConfig,
    stop: Arc<AtomicBool>,
    monitor: Arc<InboundMonitor>,
    budget: Arc<Budget>,
    deliver: Deliver,
) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    // Refused in the current burst (0: not refusing), for one log line per burst.
    let mut refusing = 0u64;
    let reap = |conns: &mut Vec<JoinHandle<()>>| {
        // A finished thread's handle is dropped, which detaches it: its
        // resources go now (a thread kept unjoined keeps its stack mapped).
        conns.retain(|h| !h.is_finished());
        monitor.threads.store(conns.len() as u64, Ordering::Relaxed);
    };
    while !stop.load(Ordering::Acquire) {
        let mut pfd = libc::pollfd { fd: listener.fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: pfd is one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        reap(&mut conns);
        if r <= 0 {
            continue;
        }
        for _ in 0..256 {
            let stream = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted) => {
                    continue
                }
                Err(e) => {
                    log_line(&format!("{}: accept failed: {e}", config.name));
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            };
            reap(&mut conns);
            if conns.len() as u64 >= config.max_connections {
                monitor.refused.fetch_add(1, Ordering::Relaxed);
                if refusing == 0 {
                    log_line(&format!(
                        "{}: {} connections open; refusing new ones",
                        config.name,
                        conns.len()
                    ));
                }
                refusing += 1;
                continue; // dropping the stream closes it
            }
            monitor.open.fetch_add(1, Ordering::Relaxed);
            let guard = OpenGuard(monitor.clone());
            let (cfg, stp, mon, bud, dlv) =
                (config.clone(), stop.clone(), monitor.clone(), budget.clone(), deliver.clone());
            let name = &config.name;
            let spawned = std::thread::Builder::new().name(format!("conn {name}")).spawn(move || {
                let _guard = guard;
                IN_CONNECTION.with(|c| c.set(true));
                if let Err(e) = serve(stream, &cfg, &stp, &mon, &bud, &dlv) {
                    if !stp.load(Ordering::Acquire) {
                        mon.report(&cfg.name, &e);
                    }
                }
            });
            match spawned {
                Ok(h) => {
                    conns.push(h);
                    monitor.threads.store(conns.len() as u64, Ordering::Relaxed);
                    if refusing > 0 {
                        log_line(&format!("{name}: accepting again ({refusing} refused)"));
                        refusing = 0;
                    }
                }
                Err(e) => {
                    // The closure (with the stream and the open count) was
                    // dropped: that peer is refused, the endpoint goes on.
                    monitor.refused.fetch_add(1, Ordering::Relaxed);
                    if refusing == 0 {
                        log_line(&format!(
                            "{name}: cannot start a connection thread ({e}); refusing new connections"
                        ));
                    }
                    refusing += 1;
                }
            }
        }
    }
    for h in conns {
        let _ = h.join();
    }
    monitor.threads.store(0, Ordering::Relaxed);
}

/// Serve one connection: hello, then frames until EOF, an error or stop.
fn serve(
    stream: Stream,
    c: &InboundConfig,
    stop: &AtomicBool,
    m: &InboundMonitor,
    budget: &Budget,
    deliver: &Deliver,
) -> Result<()> {
    if let Stream::Tcp(s) = &stream {
        let _ = s.set_nodelay(true);
    }
    stream.set_write_timeout(Some(c.handshake_timeout))?;
    (&stream).write_all(&hello_bytes(&c.digest, c.max_payload))?;
    stream.set_read_timeout(Some(TICK))?;
    let mut rx = RecvBuf { buf: Vec::new(), charged: 0, budget };
    let mut limit: Option<usize> = None; // Some(max payload) once the hello is in
                                         // When the connection is dropped unless the hello (or the frame begun)
                                         // is complete; None between frames.
    let mut deadline = Some(Instant::now() + c.handshake_timeout);
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(d) = deadline {
            if now >= d {
                m.timed_out.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Transport(match limit {
                    None => format!("no handshake within {:?}; connection dropped", c.handshake_timeout),
                    Some(_) => {
                        format!("frame not completed within {:?}; connection dropped", c.frame_timeout)
                    }
                }));
            }
        }
        let len = rx.buf.len();
        if rx.buf.capacity() < RESERVE {
            rx.buf.reserve_exact(RESERVE - len);
        } else if rx.buf.capacity() == len {
            // The buffer is full of one partial frame (its header checked)
            // beyond the reserve: more room for it costs budget.
            let frame_len = u32::from_le_bytes([rx.buf[0], rx.buf[1], rx.buf[2], rx.buf[3]]) as usize;
            let needed = frame_len.saturating_sub(RESERVE);
            if rx.charged < needed {
                let until = deadline.map_or(now + TICK, |d| d.min(now + TICK));
                let granted = budget.take(needed - rx.charged, until);
                if granted == 0 {
                    continue; // not read until others free room
                }
                rx.charged += granted;
            }
            let allowed = (RESERVE + rx.charged).saturating_sub(len);
            if allowed == 0 {
                // The frame is larger than the whole budget can cover.
                let until = deadline.map_or(now + TICK, |d| d.min(now + TICK));
                std::thread::sleep(until.saturating_duration_since(now));
                continue;
            }
            rx.buf.reserve_exact(allowed.min(CHUNK.max(len / 2)));
            rx.cover();
        }
        let k = match rx.recv(&stream) {
            Ok(k) => k,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        let buf = &rx.buf;
        if k == 0 {
            return match (limit, buf.len()) {
                (None, 0) => Err(Error::Transport("peer closed the connection during the handshake".into())),
                (None, got) => Err(Error::Transport(format!(
                    "connection closed inside a record ({got} of {HELLO_SIZE} bytes)"
                ))),
                (Some(_), 0) => Ok(()),
                (Some(_), got) if got < FRAME_HEADER_SIZE => Err(Error::Transport(format!(
                    "connection closed inside a record ({got} of {FRAME_HEADER_SIZE} bytes)"
                ))),
                (Some(_), got) if got == FRAME_HEADER_SIZE => {
                    Err(Error::Transport("connection closed between a frame header and payload".into()))
                }
                (Some(_), got) => {
                    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    Err(Error::Transport(format!(
                        "connection closed inside a record ({} of {} bytes)",
                        got - FRAME_HEADER_SIZE,
                        len - FRAME_HEADER_SIZE
                    )))
                }
            };
        }
        // A frame was under way before this read (so its deadline runs on).
        let had_partial = limit.is_some() && len > 0;
        let mut off = 0;
        if limit.is_none() {
            if buf.len() < HELLO_SIZE {
                continue;
            }
            limit = Some(check_hello(&buf[..HELLO_SIZE], &c.digest, c.max_payload)? as usize);
            m.connections.fetch_add(1, Ordering::Relaxed);
            deadline = None;
            off = HELLO_SIZE;
        }
        let limit_bytes = limit.unwrap_or(0);
        let mut delivered = 0u64;
        while buf.len() - off >= FRAME_HEADER_SIZE {
            let h = &buf[off..off + FRAME_HEADER_SIZE];
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            let type_id = u16::from_le_bytes([h[4], h[5]]);
            if len < FRAME_HEADER_SIZE || len - FRAME_HEADER_SIZE > limit_bytes {
                if len > FRAME_HEADER_SIZE {
                    m.oversized.fetch_add(1, Ordering::Relaxed);
                }
                return Err(Error::Transport(format!(
                    "frame length {len} outside {FRAME_HEADER_SIZE}..{}",
                    FRAME_HEADER_SIZE + limit_bytes
                )));
            }
            if type_id == 0 {
                return Err(Error::Transport("frame of type 0 (reserved for padding)".into()));
            }
            if buf.len() - off < len {
                break;
            }
            deliver(type_id, &buf[off + FRAME_HEADER_SIZE..off + len]);
            m.frames.fetch_add(1, Ordering::Relaxed);
            delivered += 1;
            off += len;
        }
        if off > 0 {
            rx.buf.drain(..off);
            rx.trim();
        }
        if rx.buf.is_empty() {
            deadline = None;
        } else if limit.is_some() && (!had_partial || delivered > 0) {
            // A frame began with this read: its whole must come in time.
            deadline = Some(Instant::now() + c.frame_timeout);
        }
    }
}

impl Inbound for SocketInbound {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn start(&mut self, deliver: Deliver) -> Result<()> {
        let Some(listener) = self.listener.take() else {
            return Err(Error::InvalidArgument(format!("{}: already started or closed", self.config.name)));
        };
        let (config, stop, monitor) = (self.config.clone(), self.stop.clone(), self.monitor.clone());
        let budget = Arc::new(Budget::new(self.config.max_buffered, monitor.clone()));
        let handle = std::thread::Builder::new()
            .name(format!("accept {}", self.config.name))
            .spawn(move || accept_loop(listener, config, stop, monitor, budget, deliver))?;
        self.accept_thread = Some(handle);
        Ok(())
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.accept_thread.take() {
            // A connection thread may drop the last handle of the bus (and
            // so this endpoint) while it delivers: then do not wait here for
            // the threads to end (the accept thread waits for that one).
            if !IN_CONNECTION.with(Cell::get) {
                let _ = t.join();
            }
        }
        self.listener = None;
        if let Some(p) = self.unix_path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for SocketInbound {
    fn drop(&mut self) {
        self.close();
    }
}
