//! The message bus: typed publish/subscribe inside a process, bridged to
//! other processes over shared-memory channels, Unix sockets and TCP, with
//! services as actors and a runtime that hosts one node of a topology.
//!
//! The Rust twin of the Python package `mycelium_shm.bus`; both speak the
//! same frames, so Rust, Python and OCaml nodes join one system.
//!
//! | item | concept (Python) |
//! |------|------------------|
//! | [`MessageBus`], [`Publisher`], [`Subscription`], [`Envelope`] | `bus.py`: local delivery, bridges |
//! | [`Subscriber`], [`Overflow`] | `subscriber.py`: bounded queues |
//! | [`Link`], [`Inbound`], [`ShmLink`], [`ShmInbound`], [`ShmPublication`], [`ShmSubscription`] | `transports/shm.py` |
//! | [`SocketLink`], [`SocketInbound`], [`SocketAddress`] | `transports/socket.py`: same wire bytes and hello |
//! | [`Service`], [`Context`], [`Runtime`] | `service.py`, `runtime.py`: actors, restarts |
//! | [`Plan`], [`Registry`], [`node_main`] | a node started by the launcher with `--plan` |
//!
//! Local delivery is synchronous and copy-free: [`Publisher::publish`] wraps
//! the value in an [`Arc`] once and calls every handler of its type in the
//! publishing thread with that `Arc`, and puts clones of the same `Arc` in
//! every [`Subscriber`] queue.  A handler that panics is logged and counted
//! (`handler_errors`); the other handlers still run.  A published message
//! of a type that has links is encoded once and written to each of them; a
//! frame arriving on an inbound endpoint is decoded and delivered to local
//! subscribers only: no echo, no forwarding, no loops.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use mycelium_shm::bus::{MessageBus, Overflow};
//! use mycelium_shm::generated::{MarketTick, Message};
//!
//! let bus = MessageBus::with_schema::<Message>("doc");
//! let seen = Arc::new(AtomicU64::new(0));
//! let counter = seen.clone();
//! bus.subscribe::<MarketTick, _>(move |tick| {
//!     counter.fetch_add(tick.seq, Ordering::Relaxed);
//! })?;
//! let fills = bus.subscriber::<MarketTick>(16, Overflow::DropOldest)?;
//! let ticks = bus.publisher::<MarketTick>();
//! ticks.publish(MarketTick { seq: 7, ..Default::default() })?;
//! assert_eq!(seen.load(Ordering::Relaxed), 7);
//! assert_eq!(fills.try_recv().map(|t| t.seq), Some(7));
//! bus.close(None);
//! # Ok::<(), mycelium_shm::Error>(())
//! ```

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use crate::codec::{MessageType, Schema, TypeVisitor};
use crate::error::{Error, Result};

mod log;
mod node;
mod service;
mod shm;
mod socket;
mod subscriber;

pub use log::{log_prefix, set_log_prefix};
pub use node::{
    node_main, run_node, Endpoint, LinkPlan, Plan, PublicationPlan, Registry, ServicePlan, StopSignals,
    SubscriptionPlan,
};
pub use service::{BoxError, Context, Runtime, RuntimeOptions, Service};
pub use shm::{PublicationOptions, ShmInbound, ShmLink, ShmPublication, ShmSubscription, SubscriptionStats};
pub use socket::{
    handshake, InboundMonitor, SocketAddress, SocketInbound, SocketLink, CLOSE_ABORT_GRACE, CLOSE_GRACE,
    DEFAULT_MAX_BUFFERED, DEFAULT_MAX_PAYLOAD, FRAME_HEADER_SIZE, HELLO_SIZE, MAGIC, PROTOCOL_VERSION,
};
pub use subscriber::{Iter as SubscriberIter, Overflow, Subscriber};

pub(crate) use log::log_line;
use subscriber::Queue;

/// A type that can travel on a [`MessageBus`].
///
/// Every message struct of a generated schema is one (through
/// [`MessageType`]) and can also cross to other processes.  A type of one's
/// own can travel inside the process only: implement the trait with its
/// defaults.
///
/// ```
/// use mycelium_shm::bus::{BusMessage, MessageBus};
///
/// struct Tick(u64); // local only: never encoded
/// impl BusMessage for Tick {}
///
/// let bus = MessageBus::new("doc-local");
/// let sub = bus.subscriber::<Tick>(4, Default::default()).unwrap();
/// bus.publish(Tick(3)).unwrap();
/// assert_eq!(sub.try_recv().unwrap().0, 3);
/// ```
pub trait BusMessage: Send + Sync + 'static {
    /// The frame type id, for a type that can cross processes.
    const WIRE_ID: Option<u16> = None;

    /// The name in logs and plans (the schema name of a generated message).
    fn type_name() -> &'static str
    where
        Self: Sized,
    {
        std::any::type_name::<Self>()
    }

    /// The encoded payload of a frame (generated messages only).
    fn encode_payload(&self) -> Result<Vec<u8>> {
        Err(Error::InvalidArgument("a local-only bus message cannot be sent to a link".into()))
    }
}

impl<T: MessageType> BusMessage for T {
    const WIRE_ID: Option<u16> = Some(T::TYPE_ID);

    fn type_name() -> &'static str {
        T::NAME
    }

    fn encode_payload(&self) -> Result<Vec<u8>> {
        crate::codec::Encode::try_encode(self).map(|(_, payload)| payload)
    }
}

/// A message of any type, as a service mailbox or a multi-type
/// [`Subscriber`] holds it: the published [`Arc`], type-erased.
///
/// ```
/// use mycelium_shm::bus::{MessageBus, Overflow};
/// use mycelium_shm::generated::{Fill, Message, Stop};
///
/// let bus = MessageBus::with_schema::<Message>("doc-env");
/// let mailbox = bus.subscriber_by_names(&["Fill", "Stop"], 8, Overflow::Block).unwrap();
/// bus.publish(Fill { qty: 5, ..Default::default() }).unwrap();
/// let env = mailbox.try_recv().unwrap();
/// assert_eq!((env.name(), env.wire_id()), ("Fill", Some(4)));
/// assert_eq!(env.get::<Fill>().map(|f| f.qty), Some(5));
/// assert!(env.get::<Stop>().is_none());
/// ```
#[derive(Clone)]
pub struct Envelope {
    msg: Arc<dyn Any + Send + Sync>,
    name: &'static str,
    wire_id: Option<u16>,
}

impl Envelope {
    /// Wrap a message (the bus does this; handy in tests of a service).
    ///
    /// ```
    /// use mycelium_shm::bus::Envelope;
    /// use mycelium_shm::generated::Stop;
    ///
    /// let env = Envelope::new(Stop { last_seq: 3, ..Default::default() });
    /// assert_eq!(env.get::<Stop>().unwrap().last_seq, 3);
    /// ```
    pub fn new<T: BusMessage>(msg: T) -> Envelope {
        Envelope::from_arc(Arc::new(msg))
    }

    /// Wrap a message that is already behind an [`Arc`] (no copy).
    pub fn from_arc<T: BusMessage>(msg: Arc<T>) -> Envelope {
        Envelope { msg, name: T::type_name(), wire_id: T::WIRE_ID }
    }

    /// The message if it is a `T`.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.msg.downcast_ref::<T>()
    }

    /// The message's [`Arc`] if it is a `T` (no copy of the message).
    pub fn downcast<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.msg.clone().downcast::<T>().ok()
    }

    /// True if the message is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.msg.is::<T>()
    }

    /// The message type's name (the schema name of a generated message).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The message type's frame type id, if it can cross processes.
    pub fn wire_id(&self) -> Option<u16> {
        self.wire_id
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Envelope({})", self.name)
    }
}

/// An outbound path to one peer endpoint: a shared-memory channel
/// ([`ShmLink`]) or a socket ([`SocketLink`]).  Frames sent on one link
/// arrive in the order they were sent.
pub trait Link: Send + Sync {
    /// A short description, e.g. `"shm:pipeline.risk"` or `"tcp:127.0.0.1:7001"`.
    fn name(&self) -> &str;
    /// Write or queue one frame; an error rather than a silent loss.
    fn send(&self, type_id: u16, payload: &[u8]) -> Result<()>;
    /// Wait until every frame sent so far left this process; `Ok(false)` on timeout.
    fn flush(&self, timeout: Option<Duration>) -> Result<bool>;
    /// Flush (up to `timeout`) and release the link.
    fn close(&self, timeout: Option<Duration>);
}

impl fmt::Debug for dyn Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Link({})", self.name())
    }
}

/// Called with `(type_id, payload)` for every frame an inbound endpoint receives.
pub type Deliver = Arc<dyn Fn(u16, &[u8]) + Send + Sync>;

/// The endpoint on which frames addressed to this bus arrive:
/// [`ShmInbound`] or [`SocketInbound`].
pub trait Inbound: Send {
    /// A short description of the endpoint.
    fn name(&self) -> &str;
    /// Start the reader thread(s), calling `deliver` for every frame.
    fn start(&mut self, deliver: Deliver) -> Result<()>;
    /// Stop the reader thread(s) and release the endpoint.
    fn close(&mut self);
}

type Handler<T> = Arc<dyn Fn(&Arc<T>) + Send + Sync>;
type Decoder<T> = fn(&[u8]) -> Result<T>;

/// Everything a route delivers to; replaced as a whole (copy-on-write), so
/// publishing only clones an `Arc` under a read lock.
struct Targets<T> {
    handlers: Vec<(u64, Handler<T>)>,
    queues: Vec<Arc<Queue<Arc<T>>>>,
    any_queues: Vec<Arc<Queue<Envelope>>>,
    links: Vec<Arc<dyn Link>>,
}

impl<T> Clone for Targets<T> {
    fn clone(&self) -> Self {
        Targets {
            handlers: self.handlers.clone(),
            queues: self.queues.clone(),
            any_queues: self.any_queues.clone(),
            links: self.links.clone(),
        }
    }
}

impl<T> Default for Targets<T> {
    fn default() -> Self {
        Targets { handlers: Vec::new(), queues: Vec::new(), any_queues: Vec::new(), links: Vec::new() }
    }
}

/// Everything the bus knows about one message type.
struct Route<T: BusMessage> {
    decode: Option<Decoder<T>>,
    targets: RwLock<Arc<Targets<T>>>,
}

impl<T: BusMessage> Route<T> {
    fn new(decode: Option<Decoder<T>>) -> Self {
        Route { decode, targets: RwLock::new(Arc::new(Targets::default())) }
    }

    fn snapshot(&self) -> Arc<Targets<T>> {
        self.targets.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut Targets<T>)) {
        let mut guard = self.targets.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (**guard).clone();
        f(&mut next);
        *guard = Arc::new(next);
    }

    /// Local delivery: handlers, then typed queues, then mailboxes.
    fn deliver_local(
        &self,
        bus: &BusInner,
        targets: &Targets<T>,
        msg: &Arc<T>,
        from_transport: bool,
    ) -> Result<()> {
        for (_, handler) in &targets.handlers {
            if catch_unwind(AssertUnwindSafe(|| handler(msg))).is_err() {
                bus.report(&format!("a handler panicked on {}", T::type_name()));
            }
        }
        for queue in &targets.queues {
            match queue.offer(msg.clone(), from_transport) {
                Ok(()) | Err(Error::BusClosed(_)) if from_transport => {}
                other => other?,
            }
        }
        if !targets.any_queues.is_empty() {
            let env = Envelope::from_arc(msg.clone());
            for queue in &targets.any_queues {
                match queue.offer(env.clone(), from_transport) {
                    Ok(()) | Err(Error::BusClosed(_)) if from_transport => {}
                    other => other?,
                }
            }
        }
        Ok(())
    }
}

/// The type-erased face of a [`Route`].
trait AnyRoute: Send + Sync {
    fn name(&self) -> &'static str;
    fn wire_id(&self) -> Option<u16>;
    fn deliver_frame(&self, bus: &BusInner, payload: &[u8]);
    fn add_any_queue(&self, queue: Arc<Queue<Envelope>>);
    fn remove_any_queue(&self, queue: &Arc<Queue<Envelope>>);
    fn add_link(&self, link: Arc<dyn Link>);
    fn links(&self) -> Vec<Arc<dyn Link>>;
    fn has_local(&self) -> bool;
    fn close_queues(&self);
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T: BusMessage> AnyRoute for Route<T> {
    fn name(&self) -> &'static str {
        T::type_name()
    }

    fn wire_id(&self) -> Option<u16> {
        T::WIRE_ID
    }

    fn deliver_frame(&self, bus: &BusInner, payload: &[u8]) {
        let targets = self.snapshot();
        if targets.handlers.is_empty() && targets.queues.is_empty() && targets.any_queues.is_empty() {
            bus.stats.unrouted.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(decode) = self.decode else {
            bus.stats.unrouted.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match decode(payload) {
            Ok(msg) => {
                let msg = Arc::new(msg);
                if let Err(e) = self.deliver_local(bus, &targets, &msg, true) {
                    bus.report(&format!("delivering a {} failed: {e}", T::type_name()));
                }
            }
            Err(e) => {
                bus.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                bus.report(&format!(
                    "frame of type {} ({} bytes) did not decode: {e}",
                    T::type_name(),
                    payload.len()
                ));
            }
        }
    }

    fn add_any_queue(&self, queue: Arc<Queue<Envelope>>) {
        self.update(|t| t.any_queues.push(queue));
    }

    fn remove_any_queue(&self, queue: &Arc<Queue<Envelope>>) {
        self.update(|t| t.any_queues.retain(|q| !Arc::ptr_eq(q, queue)));
    }

    fn add_link(&self, link: Arc<dyn Link>) {
        self.update(|t| {
            if !t.links.iter().any(|l| Arc::ptr_eq(l, &link)) {
                t.links.push(link);
            }
        });
    }

    fn links(&self) -> Vec<Arc<dyn Link>> {
        self.snapshot().links.clone()
    }

    fn has_local(&self) -> bool {
        let t = self.snapshot();
        !(t.handlers.is_empty() && t.queues.is_empty() && t.any_queues.is_empty())
    }

    fn close_queues(&self) {
        let t = self.snapshot();
        for q in &t.queues {
            q.close();
        }
        for q in &t.any_queues {
            q.close();
        }
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// Counters of a bus (see [`MessageBus::stats`]).
#[derive(Debug, Default)]
struct BusStats {
    received: AtomicU64,
    unrouted: AtomicU64,
    decode_errors: AtomicU64,
    handler_errors: AtomicU64,
}

/// A snapshot of a bus's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BusCounters {
    /// Frames received from inbound endpoints.
    pub received: u64,
    /// Frames of a type nobody here subscribes to (or not in the schema).
    pub unrouted: u64,
    /// Frames that did not decode.
    pub decode_errors: u64,
    /// Handlers that panicked, and delivery failures of inbound frames.
    pub handler_errors: u64,
}

struct BusInner {
    name: String,
    digest: Option<[u8; 32]>,
    routes: RwLock<HashMap<TypeId, Arc<dyn AnyRoute>>>,
    by_wire: RwLock<HashMap<u16, Arc<dyn AnyRoute>>>,
    by_name: RwLock<HashMap<&'static str, Arc<dyn AnyRoute>>>,
    links: Mutex<Vec<Arc<dyn Link>>>,
    inbound: Mutex<Vec<Box<dyn Inbound>>>,
    deliver: Mutex<Option<Deliver>>,
    started: AtomicBool,
    closed: AtomicBool,
    next_handler: AtomicU64,
    stats: BusStats,
}

impl BusInner {
    fn report(&self, context: &str) {
        self.stats.handler_errors.fetch_add(1, Ordering::Relaxed);
        log_line(&format!("bus {}: {context}", self.name));
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::BusClosed(format!("bus {:?} is closed", self.name)));
        }
        Ok(())
    }

    fn route<T: BusMessage>(&self) -> Arc<Route<T>> {
        let key = TypeId::of::<T>();
        if let Some(r) = self.routes.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return downcast_route(r.clone());
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        let r = routes.entry(key).or_insert_with(|| Arc::new(Route::<T>::new(None)) as Arc<dyn AnyRoute>);
        downcast_route(r.clone())
    }

    fn route_by_name(&self, name: &str) -> Result<Arc<dyn AnyRoute>> {
        self.by_name.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "message type {name:?} is not in the schema of bus {:?}",
                self.name
            ))
        })
    }

    fn deliver_frame(&self, type_id: u16, payload: &[u8]) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let route = self.by_wire.read().unwrap_or_else(|e| e.into_inner()).get(&type_id).cloned();
        match route {
            Some(route) => route.deliver_frame(self, payload),
            None => {
                self.stats.unrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn downcast_route<T: BusMessage>(r: Arc<dyn AnyRoute>) -> Arc<Route<T>> {
    match r.as_any().downcast::<Route<T>>() {
        Ok(r) => r,
        // Routes are keyed by TypeId::of::<T>(), so the entry is a Route<T>.
        Err(_) => unreachable!("route of {} has another type", std::any::type_name::<T>()),
    }
}

struct Registrar<'a>(&'a BusInner);

impl TypeVisitor for Registrar<'_> {
    fn visit<T: MessageType>(&mut self) {
        let route: Arc<dyn AnyRoute> = Arc::new(Route::<T>::new(Some(<T as MessageType>::decode)));
        let inner = self.0;
        inner.routes.write().unwrap_or_else(|e| e.into_inner()).insert(TypeId::of::<T>(), route.clone());
        inner.by_wire.write().unwrap_or_else(|e| e.into_inner()).insert(T::TYPE_ID, route.clone());
        inner.by_name.write().unwrap_or_else(|e| e.into_inner()).insert(T::NAME, route);
    }
}

/// Typed publish/subscribe, local and across processes.  Cheap to clone
/// (clones share one bus); safe to use from any thread.
///
/// A bus made with [`MessageBus::with_schema`] knows every message of a
/// generated schema by type, name and type id, and can be bridged to other
/// processes; [`MessageBus::new`] makes a purely local bus.
#[derive(Clone)]
pub struct MessageBus {
    inner: Arc<BusInner>,
}

impl fmt::Debug for MessageBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageBus({:?})", self.inner.name)
    }
}

impl MessageBus {
    fn build(name: &str, digest: Option<[u8; 32]>) -> MessageBus {
        MessageBus {
            inner: Arc::new(BusInner {
                name: name.to_owned(),
                digest,
                routes: RwLock::new(HashMap::new()),
                by_wire: RwLock::new(HashMap::new()),
                by_name: RwLock::new(HashMap::new()),
                links: Mutex::new(Vec::new()),
                inbound: Mutex::new(Vec::new()),
                deliver: Mutex::new(None),
                started: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                next_handler: AtomicU64::new(1),
                stats: BusStats::default(),
            }),
        }
    }

    /// A local bus without a schema: any [`BusMessage`] type, no bridges.
    ///
    /// ```
    /// let bus = mycelium_shm::bus::MessageBus::new("local");
    /// assert_eq!(bus.name(), "local");
    /// ```
    pub fn new(name: &str) -> MessageBus {
        MessageBus::build(name, None)
    }

    /// A bus for the generated schema `S` (its `Message` enum): message
    /// types by name and type id, links and inbound endpoints carrying
    /// `S::DIGEST`.  Inbound endpoints start once [`MessageBus::start`] runs,
    /// so subscriptions can be made before the first frame arrives.
    ///
    /// ```
    /// use mycelium_shm::bus::MessageBus;
    /// use mycelium_shm::generated::{Message, SCHEMA_DIGEST};
    ///
    /// let bus = MessageBus::with_schema::<Message>("node");
    /// assert_eq!(bus.digest(), Some(SCHEMA_DIGEST));
    /// assert_eq!(bus.type_id_of("Fill").unwrap(), 4);
    /// ```
    pub fn with_schema<S: Schema>(name: &str) -> MessageBus {
        let bus = MessageBus::build(name, Some(S::DIGEST));
        S::visit_types(&mut Registrar(&bus.inner));
        bus
    }

    /// The bus's name (a node's name in a topology).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The schema digest links and inbound endpoints carry, if any.
    pub fn digest(&self) -> Option<[u8; 32]> {
        self.inner.digest
    }

    /// The frame type id of a message name of the schema.
    pub fn type_id_of(&self, name: &str) -> Result<u16> {
        let route = self.inner.route_by_name(name)?;
        route.wire_id().ok_or_else(|| Error::InvalidArgument(format!("{name} has no type id")))
    }

    /// A [`Publisher`] of messages of type `T`.
    pub fn publisher<T: BusMessage>(&self) -> Publisher<T> {
        Publisher { bus: self.inner.clone(), route: self.inner.route::<T>() }
    }

    /// Publish one message (a convenience for [`Publisher::publish`]).
    pub fn publish<T: BusMessage>(&self, msg: T) -> Result<()> {
        self.publisher::<T>().publish(msg)
    }

    /// Call `handler` with every message of type `T`, in the delivering
    /// thread: the publisher's for local messages, an inbound reader thread
    /// for messages from other processes.  The handler stays until
    /// [`Subscription::cancel`].
    pub fn subscribe<T, F>(&self, handler: F) -> Result<Subscription>
    where
        T: BusMessage,
        F: Fn(&Arc<T>) + Send + Sync + 'static,
    {
        self.inner.check_open()?;
        let route = self.inner.route::<T>();
        let id = self.inner.next_handler.fetch_add(1, Ordering::Relaxed);
        let handler: Handler<T> = Arc::new(handler);
        route.update(|t| t.handlers.push((id, handler)));
        let weak: Weak<Route<T>> = Arc::downgrade(&route);
        Ok(Subscription {
            cancel: Mutex::new(Some(Box::new(move || {
                if let Some(route) = weak.upgrade() {
                    route.update(|t| t.handlers.retain(|(h, _)| *h != id));
                }
            }))),
        })
    }

    /// A bounded queue of every message of type `T` (see [`Overflow`]).
    pub fn subscriber<T: BusMessage>(
        &self,
        maxsize: usize,
        overflow: Overflow,
    ) -> Result<Subscriber<Arc<T>>> {
        self.inner.check_open()?;
        let queue = Arc::new(Queue::new(maxsize, overflow)?);
        let route = self.inner.route::<T>();
        route.update(|t| t.queues.push(queue.clone()));
        let weak = Arc::downgrade(&route);
        let q = queue.clone();
        Ok(Subscriber::new(
            queue,
            Box::new(move || {
                if let Some(route) = weak.upgrade() {
                    route.update(|t| t.queues.retain(|x| !Arc::ptr_eq(x, &q)));
                }
            }),
        ))
    }

    /// One bounded queue of messages of several schema types, by name, in
    /// delivery order (a service's mailbox).
    pub fn subscriber_by_names(
        &self,
        names: &[&str],
        maxsize: usize,
        overflow: Overflow,
    ) -> Result<Subscriber<Envelope>> {
        self.inner.check_open()?;
        if names.is_empty() {
            return Err(Error::InvalidArgument("subscriber_by_names needs at least one type".into()));
        }
        let routes = names.iter().map(|n| self.inner.route_by_name(n)).collect::<Result<Vec<_>>>()?;
        let queue = Arc::new(Queue::new(maxsize, overflow)?);
        for r in &routes {
            r.add_any_queue(queue.clone());
        }
        let q = queue.clone();
        Ok(Subscriber::new(
            queue,
            Box::new(move || {
                for r in &routes {
                    r.remove_any_queue(&q);
                }
            }),
        ))
    }

    /// Send every published message of the named types out on `link` too.
    /// The bus owns the link from now on: [`MessageBus::close`] flushes and
    /// closes it.
    pub fn add_link<L: Link + 'static>(&self, link: L, types: &[&str]) -> Result<Arc<dyn Link>> {
        self.add_link_arc(Arc::new(link), types)
    }

    /// [`MessageBus::add_link`] for a link behind an [`Arc`].
    pub fn add_link_arc(&self, link: Arc<dyn Link>, types: &[&str]) -> Result<Arc<dyn Link>> {
        self.inner.check_open()?;
        if self.inner.digest.is_none() {
            return Err(Error::InvalidArgument("bridging to other processes needs a schema".into()));
        }
        let routes = types.iter().map(|n| self.inner.route_by_name(n)).collect::<Result<Vec<_>>>()?;
        {
            let mut links = self.inner.links.lock().unwrap_or_else(|e| e.into_inner());
            if !links.iter().any(|l| Arc::ptr_eq(l, &link)) {
                links.push(link.clone());
            }
        }
        for r in routes {
            r.add_link(link.clone());
        }
        Ok(link)
    }

    /// The names of the links a message type is written to.
    pub fn links_of(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.inner.route_by_name(name)?.links().iter().map(|l| l.name().to_owned()).collect())
    }

    /// Deliver the frames arriving on `inbound` to local subscribers.  The
    /// reader starts now if the bus was started, else in [`MessageBus::start`].
    pub fn add_inbound<I: Inbound + 'static>(&self, inbound: I) -> Result<()> {
        self.inner.check_open()?;
        if self.inner.digest.is_none() {
            return Err(Error::InvalidArgument("receiving from other processes needs a schema".into()));
        }
        let mut inbound: Box<dyn Inbound> = Box::new(inbound);
        if self.inner.started.load(Ordering::Acquire) {
            inbound.start(self.deliverer())?;
        }
        self.inner.inbound.lock().unwrap_or_else(|e| e.into_inner()).push(inbound);
        Ok(())
    }

    fn deliverer(&self) -> Deliver {
        let mut slot = self.inner.deliver.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| {
            let weak = Arc::downgrade(&self.inner);
            Arc::new(move |type_id: u16, payload: &[u8]| {
                if let Some(inner) = weak.upgrade() {
                    inner.deliver_frame(type_id, payload);
                }
            })
        })
        .clone()
    }

    /// Start the reader threads of the inbound endpoints.
    pub fn start(&self) -> Result<()> {
        self.inner.check_open()?;
        if self.inner.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let deliver = self.deliverer();
        let mut inbound = self.inner.inbound.lock().unwrap_or_else(|e| e.into_inner());
        for endpoint in inbound.iter_mut() {
            endpoint.start(deliver.clone())?;
        }
        Ok(())
    }

    /// Decode one frame from a transport and hand it to local subscribers
    /// only (what inbound endpoints call).
    pub fn deliver_frame(&self, type_id: u16, payload: &[u8]) {
        self.inner.deliver_frame(type_id, payload);
    }

    /// Wait until every link has sent what it was given; `Ok(false)` on timeout.
    pub fn flush(&self, timeout: Option<Duration>) -> Result<bool> {
        let links = self.inner.links.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut ok = true;
        for link in links {
            ok = link.flush(timeout)? && ok;
        }
        Ok(ok)
    }

    /// The bus's counters now.
    pub fn stats(&self) -> BusCounters {
        let s = &self.inner.stats;
        BusCounters {
            received: s.received.load(Ordering::Relaxed),
            unrouted: s.unrouted.load(Ordering::Relaxed),
            decode_errors: s.decode_errors.load(Ordering::Relaxed),
            handler_errors: s.handler_errors.load(Ordering::Relaxed),
        }
    }

    /// True once [`MessageBus::close`] ran.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Stop receiving from other processes; publishing and links keep working.
    pub fn close_inbound(&self) {
        let endpoints: Vec<Box<dyn Inbound>> =
            std::mem::take(&mut *self.inner.inbound.lock().unwrap_or_else(|e| e.into_inner()));
        for mut endpoint in endpoints {
            endpoint.close();
        }
    }

    /// Stop receiving, flush and close every link (each gets up to
    /// `timeout`, `None` = 5 s), close every subscriber.
    pub fn close(&self, timeout: Option<Duration>) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.close_inbound();
        let timeout = timeout.or(Some(Duration::from_secs(5)));
        let links = std::mem::take(&mut *self.inner.links.lock().unwrap_or_else(|e| e.into_inner()));
        for link in links {
            link.close(timeout);
        }
        let routes: Vec<Arc<dyn AnyRoute>> =
            self.inner.routes.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for route in routes {
            route.close_queues();
        }
    }

    /// The names of the message types that have a local handler or queue.
    pub fn subscribed_types(&self) -> Vec<&'static str> {
        let routes = self.inner.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&'static str> =
            routes.values().filter(|r| r.has_local()).map(|r| r.name()).collect();
        names.sort_unstable();
        names
    }
}

/// Publishes messages of one type; get one from [`MessageBus::publisher`].
/// Cheap to clone; keep one per type on hot paths.
pub struct Publisher<T: BusMessage> {
    bus: Arc<BusInner>,
    route: Arc<Route<T>>,
}

impl<T: BusMessage> Clone for Publisher<T> {
    fn clone(&self) -> Self {
        Publisher { bus: self.bus.clone(), route: self.route.clone() }
    }
}

impl<T: BusMessage> fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Publisher<{}> on {:?}", T::type_name(), self.bus.name)
    }
}

impl<T: BusMessage> Publisher<T> {
    /// Deliver `msg` to every local handler and queue of its type and write
    /// it to every link of its type (encoded once).
    ///
    /// Errors: [`Error::BusClosed`] after the bus closed, [`Error::Overflow`]
    /// from a full [`Overflow::Raise`] queue, and whatever a link returns
    /// ([`Error::Full`], [`Error::SchemaMismatch`], ...).
    pub fn publish(&self, msg: T) -> Result<()> {
        self.publish_arc(Arc::new(msg))
    }

    /// [`Publisher::publish`] for a message already behind an [`Arc`].
    pub fn publish_arc(&self, msg: Arc<T>) -> Result<()> {
        let bus = &*self.bus;
        if bus.closed.load(Ordering::Acquire) {
            return Err(Error::BusClosed(format!("bus {:?} is closed", bus.name)));
        }
        let targets = self.route.snapshot();
        self.route.deliver_local(bus, &targets, &msg, false)?;
        if !targets.links.is_empty() {
            let Some(type_id) = T::WIRE_ID else {
                return Err(Error::InvalidArgument(format!("{} has no frame type id", T::type_name())));
            };
            let payload = msg.encode_payload()?;
            for link in &targets.links {
                link.send(type_id, &payload)?;
            }
        }
        Ok(())
    }
}

/// A handler's registration; [`Subscription::cancel`] removes it.
pub struct Subscription {
    cancel: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subscription")
    }
}

impl Subscription {
    /// Stop calling the handler; safe to call twice.
    ///
    /// ```
    /// use mycelium_shm::bus::MessageBus;
    /// use mycelium_shm::generated::{Message, Stop};
    ///
    /// let bus = MessageBus::with_schema::<Message>("doc-cancel");
    /// let sub = bus.subscribe::<Stop, _>(|_| panic!("cancelled")).unwrap();
    /// sub.cancel();
    /// bus.publish(Stop::default()).unwrap();
    /// assert_eq!(bus.stats().handler_errors, 0);
    /// ```
    pub fn cancel(&self) {
        let f = self.cancel.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = f {
            f();
        }
    }
}
