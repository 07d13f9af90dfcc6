//! Pull-style subscriptions: a bounded queue the bus fills and a consumer
//! drains, with the overflow policies of Python's `Overflow`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// What a full [`Subscriber`] queue does with one more message.
///
/// ```
/// use mycelium_shm::bus::{MessageBus, Overflow};
/// use mycelium_shm::generated::{Message, Stop};
///
/// let bus = MessageBus::with_schema::<Message>("doc-overflow");
/// let latest = bus.subscriber::<Stop>(2, Overflow::DropOldest).unwrap();
/// for seq in 1..=5 {
///     bus.publish(Stop { last_seq: seq, ..Default::default() }).unwrap();
/// }
/// let kept: Vec<u64> = latest.drain().iter().map(|s| s.last_seq).collect();
/// assert_eq!((kept, latest.dropped()), (vec![4, 5], 3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The publisher waits for room: nothing is lost, a slow consumer slows
    /// its producers down (the default; never block on a subscriber from
    /// the thread that drains it).
    #[default]
    Block,
    /// Discard the oldest queued message (counted in [`Subscriber::dropped`]).
    DropOldest,
    /// Discard the new message (counted).
    DropNewest,
    /// `publish` fails with [`Error::Overflow`] and the message is not
    /// queued; a frame from a transport has nobody to fail to: dropped and
    /// counted.
    Raise,
}

impl Overflow {
    /// Parse Python's names: `"block"`, `"drop_oldest"`, `"drop_newest"`, `"raise"`.
    ///
    /// ```
    /// use mycelium_shm::bus::Overflow;
    /// assert_eq!(Overflow::parse("drop_newest").unwrap(), Overflow::DropNewest);
    /// assert!(Overflow::parse("sometimes").is_err());
    /// ```
    pub fn parse(name: &str) -> Result<Overflow> {
        match name {
            "block" => Ok(Overflow::Block),
            "drop_oldest" => Ok(Overflow::DropOldest),
            "drop_newest" => Ok(Overflow::DropNewest),
            "raise" => Ok(Overflow::Raise),
            other => Err(Error::InvalidArgument(format!(
                "overflow policy {other:?} is not block, drop_oldest, drop_newest or raise"
            ))),
        }
    }
}

struct State<M> {
    items: VecDeque<M>,
    closed: bool,
}

/// The queue shared by the bus (filling) and a [`Subscriber`] (draining).
pub(crate) struct Queue<M> {
    state: Mutex<State<M>>,
    not_empty: Condvar,
    not_full: Condvar,
    maxsize: usize,
    overflow: Overflow,
    dropped: AtomicU64,
}

impl<M> Queue<M> {
    pub(crate) fn new(maxsize: usize, overflow: Overflow) -> Result<Queue<M>> {
        if maxsize < 1 {
            return Err(Error::InvalidArgument(format!("maxsize must be at least 1, not {maxsize}")));
        }
        Ok(Queue {
            state: Mutex::new(State { items: VecDeque::new(), closed: false }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            maxsize,
            overflow,
            dropped: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `msg` under the overflow policy.  Ignored after close;
    /// [`Error::Overflow`] under `Raise` (unless `from_transport`);
    /// [`Error::BusClosed`] if a `Block` wait is ended by close.
    pub(crate) fn offer(&self, msg: M, from_transport: bool) -> Result<()> {
        let mut st = self.lock();
        if st.closed {
            return Ok(());
        }
        if st.items.len() >= self.maxsize {
            match self.overflow {
                Overflow::Block => {
                    while st.items.len() >= self.maxsize && !st.closed {
                        st = self.not_full.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                    if st.closed {
                        return Err(Error::BusClosed(
                            "subscriber closed while a publisher waited for room".into(),
                        ));
                    }
                }
                Overflow::DropOldest => {
                    st.items.pop_front();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Overflow::DropNewest => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Overflow::Raise => {
                    if from_transport {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    return Err(Error::Overflow(format!(
                        "subscriber queue full ({} messages) under Overflow::Raise",
                        self.maxsize
                    )));
                }
            }
        }
        st.items.push_back(msg);
        drop(st);
        self.not_empty.notify_one();
        Ok(())
    }

    pub(crate) fn close(&self) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        drop(st);
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}

/// A bounded FIFO of messages filled by a [`MessageBus`](super::MessageBus):
/// `Subscriber<Arc<T>>` from [`subscriber`](super::MessageBus::subscriber),
/// `Subscriber<Envelope>` (several types) from
/// [`subscriber_by_names`](super::MessageBus::subscriber_by_names).
///
/// Safe to fill from many threads; drain it from one consumer at a time.
/// Closing (or dropping) it unsubscribes; what is queued can still be
/// drained after [`Subscriber::close`], then [`Subscriber::recv`] gives `None`.
/// Iterating (`for msg in &sub`) waits for messages and ends once the
/// subscriber is closed and empty.
pub struct Subscriber<M> {
    queue: Arc<Queue<M>>,
    detach: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl<M> fmt::Debug for Subscriber<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subscriber({}/{} {:?})", self.len(), self.queue.maxsize, self.queue.overflow)
    }
}

impl<M> Subscriber<M> {
    pub(crate) fn new(queue: Arc<Queue<M>>, detach: Box<dyn FnOnce() + Send>) -> Subscriber<M> {
        Subscriber { queue, detach: Mutex::new(Some(detach)) }
    }

    /// The oldest message, waiting for one; `None` once closed and empty.
    pub fn recv(&self) -> Option<M> {
        let mut st = self.queue.lock();
        loop {
            if let Some(m) = st.items.pop_front() {
                drop(st);
                self.queue.not_full.notify_one();
                return Some(m);
            }
            if st.closed {
                return None;
            }
            st = self.queue.not_empty.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The oldest message, waiting up to `timeout`: `Ok(None)` if nothing
    /// came in time, [`Error::BusClosed`] once closed and empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<M>> {
        let deadline = Instant::now() + timeout;
        let mut st = self.queue.lock();
        loop {
            if let Some(m) = st.items.pop_front() {
                drop(st);
                self.queue.not_full.notify_one();
                return Ok(Some(m));
            }
            if st.closed {
                return Err(Error::BusClosed("subscriber is closed".into()));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            st = self.queue.not_empty.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The oldest message if one is queued.
    pub fn try_recv(&self) -> Option<M> {
        let m = self.queue.lock().items.pop_front();
        if m.is_some() {
            self.queue.not_full.notify_one();
        }
        m
    }

    /// Every queued message, without waiting.
    pub fn drain(&self) -> Vec<M> {
        let items: Vec<M> = self.queue.lock().items.drain(..).collect();
        self.queue.not_full.notify_all();
        items
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.queue.lock().items.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages discarded by `DropOldest`/`DropNewest` (or refused by
    /// `Raise` for frames from a transport).
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }

    /// The queue's bound.
    pub fn maxsize(&self) -> usize {
        self.queue.maxsize
    }

    /// The overflow policy.
    pub fn overflow(&self) -> Overflow {
        self.queue.overflow
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.queue.lock().closed
    }

    /// Unsubscribe; queued messages can still be drained.  Safe to call twice.
    pub fn close(&self) {
        self.queue.close();
        let detach = self.detach.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(detach) = detach {
            detach();
        }
    }
}

impl<M> Drop for Subscriber<M> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<'a, M> IntoIterator for &'a Subscriber<M> {
    type Item = M;
    type IntoIter = Iter<'a, M>;

    fn into_iter(self) -> Iter<'a, M> {
        Iter { sub: self }
    }
}

/// Iterator over a [`Subscriber`]: waits for each message, ends once the
/// subscriber is closed and drained.
#[derive(Debug)]
pub struct Iter<'a, M> {
    sub: &'a Subscriber<M>,
}

impl<M> Iterator for Iter<'_, M> {
    type Item = M;

    fn next(&mut self) -> Option<M> {
        self.sub.recv()
    }
}
