//! Services as actors, and the runtime hosting one node's services
//! (`service.py` and `runtime.py` of the Python bus).
//!
//! Every service gets a mailbox (a [`Subscriber`] of the types it consumes,
//! [`Overflow::Block`]) and a thread of its own, so its handlers never run
//! concurrently and its state needs no lock.  A handler that panics or
//! returns an error is logged and the service restarts after a pause that
//! doubles with every consecutive failure, from `restart_initial` up to
//! `restart_max`: a fresh instance from the same factory, `on_start` again,
//! then the next messages of the same mailbox (the failing message is not
//! retried).  [`Runtime::stop`] shuts down cleanly: inbound endpoints close
//! first, each service drains its mailbox in the order the services were
//! added (topology order) and runs `on_stop`, then the bus flushes its links.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{log_line, BusMessage, Envelope, MessageBus, Overflow, Publisher, Subscriber};
use crate::error::{Error, Result};

/// The error a service hook returns: anything that is an error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service: an actor with its own state, fed one message at a time.
///
/// ```
/// use mycelium_shm::bus::{BoxError, Context, Envelope, Service};
/// use mycelium_shm::generated::{Fill, OrderRequest};
///
/// /// Fills every order at its limit price.
/// struct Venue {
///     fills: u64,
/// }
///
/// impl Service for Venue {
///     fn handle(&mut self, ctx: &Context, msg: &Envelope) -> Result<(), BoxError> {
///         if let Some(order) = msg.get::<OrderRequest>() {
///             self.fills += 1;
///             ctx.publish(Fill { order_id: order.order_id, qty: order.qty, price: order.limit_price, ..Default::default() })?;
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Service: Send {
    /// Called in the service's thread before its first message, and again
    /// after every restart.  A producer may loop here while
    /// `!ctx.stopping()`.
    fn on_start(&mut self, ctx: &Context) -> std::result::Result<(), BoxError> {
        let _ = ctx;
        Ok(())
    }

    /// Handle one message of a type the service consumes.  A panic or an
    /// error restarts the service.
    fn handle(&mut self, ctx: &Context, msg: &Envelope) -> std::result::Result<(), BoxError>;

    /// Called in the service's thread once its mailbox is closed and drained.
    fn on_stop(&mut self, ctx: &Context) {
        let _ = ctx;
    }
}

/// The node's stop request: a flag to poll and to wait on.
#[derive(Default)]
pub(crate) struct StopFlag {
    set: AtomicBool,
    lock: Mutex<bool>,
    cond: Condvar,
}

impl StopFlag {
    pub(crate) fn request(&self) {
        self.set.store(true, Ordering::Release);
        *self.lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_all();
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Wait until set or `timeout` (`None`: for ever); whether it is set.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*g {
            g = match deadline {
                None => self.cond.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.cond.wait_timeout(g, d - now).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
        true
    }
}

/// What the runtime gives a service: its name, the bus to publish on, and
/// the node's stop flag.  Cheap to clone.
#[derive(Clone)]
pub struct Context {
    name: Arc<str>,
    bus: MessageBus,
    stop: Arc<StopFlag>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Context({})", self.name)
    }
}

impl Context {
    /// A context outside a runtime (for testing a service by hand).
    ///
    /// ```
    /// use mycelium_shm::bus::{Context, MessageBus};
    ///
    /// let ctx = Context::detached("svc", MessageBus::new("test"));
    /// assert!(!ctx.stopping());
    /// ctx.request_stop();
    /// assert!(ctx.stopping());
    /// ```
    pub fn detached(name: &str, bus: MessageBus) -> Context {
        Context { name: name.into(), bus, stop: Arc::new(StopFlag::default()) }
    }

    /// The service's name in its topology.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's bus.
    pub fn bus(&self) -> &MessageBus {
        &self.bus
    }

    /// Publish a message on the node's bus.
    pub fn publish<T: BusMessage>(&self, msg: T) -> Result<()> {
        self.bus.publish(msg)
    }

    /// A publisher of `T` on the node's bus (keep it for hot loops).
    pub fn publisher<T: BusMessage>(&self) -> Publisher<T> {
        self.bus.publisher::<T>()
    }

    /// True once the node is shutting down (long loops should return).
    pub fn stopping(&self) -> bool {
        self.stop.is_set()
    }

    /// Sleep up to `timeout`, waking early when the node starts shutting
    /// down; whether it is.
    pub fn sleep(&self, timeout: Duration) -> bool {
        self.stop.wait(Some(timeout))
    }

    /// Ask the node to shut down (as SIGTERM does).
    pub fn request_stop(&self) {
        self.stop.request();
    }
}

/// Tuning of a [`Runtime`] (the defaults are Python's).
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Messages a mailbox holds before publishers wait (8192).
    pub mailbox_size: usize,
    /// Pause before the first restart (50 ms); doubles per consecutive failure.
    pub restart_initial: Duration,
    /// Longest pause between restarts (5 s).
    pub restart_max: Duration,
    /// Consecutive failures after which a service gives up and the node
    /// stops with exit code 1 (`None`: never).
    pub max_restarts: Option<u32>,
    /// How long [`Runtime::stop`] waits for each service and link (5 s).
    pub stop_timeout: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            mailbox_size: 8192,
            restart_initial: Duration::from_millis(50),
            restart_max: Duration::from_secs(5),
            max_restarts: None,
            stop_timeout: Duration::from_secs(5),
        }
    }
}

type Factory = Arc<dyn Fn() -> std::result::Result<Box<dyn Service>, BoxError> + Send + Sync>;

struct Host {
    name: String,
    consumes: Vec<String>,
    factory: Factory,
    first: Option<Box<dyn Service>>,
    restarts: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
    mailbox: Option<Arc<Subscriber<Envelope>>>,
    thread: Option<JoinHandle<()>>,
}

/// Hosts a node's services on one bus.
///
/// ```
/// use std::time::Duration;
/// use mycelium_shm::bus::{BoxError, Context, Envelope, MessageBus, Runtime, RuntimeOptions, Service};
/// use mycelium_shm::generated::{Message, Stop};
///
/// struct Counter(u64);
/// impl Service for Counter {
///     fn handle(&mut self, _ctx: &Context, msg: &Envelope) -> Result<(), BoxError> {
///         self.0 += msg.get::<Stop>().map_or(0, |s| s.last_seq);
///         Ok(())
///     }
///     fn on_stop(&mut self, _ctx: &Context) {
///         assert_eq!(self.0, 6);
///     }
/// }
///
/// let bus = MessageBus::with_schema::<Message>("doc-rt");
/// let mut rt = Runtime::new(bus.clone(), RuntimeOptions::default());
/// rt.add_service("counter", &["Stop"], || Ok(Box::new(Counter(0))))?;
/// rt.start()?;
/// for n in 1..=3 {
///     bus.publish(Stop { last_seq: n, ..Default::default() })?;
/// }
/// rt.stop(); // drains the mailbox, then on_stop
/// # Ok::<(), mycelium_shm::Error>(())
/// ```
pub struct Runtime {
    bus: MessageBus,
    options: RuntimeOptions,
    hosts: Vec<Host>,
    stop: Arc<StopFlag>,
    started: bool,
    stopped: bool,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        write!(f, "Runtime({}: {names:?})", self.bus.name())
    }
}

impl Runtime {
    /// A runtime for services on `bus`.
    pub fn new(bus: MessageBus, options: RuntimeOptions) -> Runtime {
        Runtime {
            bus,
            options,
            hosts: Vec::new(),
            stop: Arc::new(StopFlag::default()),
            started: false,
            stopped: false,
        }
    }

    /// The runtime's bus.
    pub fn bus(&self) -> &MessageBus {
        &self.bus
    }

    /// Host a service named `name` whose mailbox gets the message types
    /// `consumes` (schema names; none: no mailbox, e.g. a producer).  The
    /// factory builds the first instance now (its error is returned as
    /// [`Error::Config`]) and a fresh one at every restart.
    pub fn add_service<F>(&mut self, name: &str, consumes: &[&str], factory: F) -> Result<()>
    where
        F: Fn() -> std::result::Result<Box<dyn Service>, BoxError> + Send + Sync + 'static,
    {
        if self.started {
            return Err(Error::InvalidArgument(format!("add_service({name:?}) after start")));
        }
        if self.hosts.iter().any(|h| h.name == name) {
            return Err(Error::InvalidArgument(format!("service {name:?} added twice")));
        }
        for t in consumes {
            self.bus.type_id_of(t)?;
        }
        let first = factory()
            .map_err(|e| Error::Config(format!("service {name:?}: building the service failed: {e}")))?;
        self.hosts.push(Host {
            name: name.to_owned(),
            consumes: consumes.iter().map(|s| (*s).to_owned()).collect(),
            factory: Arc::new(factory),
            first: Some(first),
            restarts: Arc::new(AtomicU64::new(0)),
            failed: Arc::new(AtomicBool::new(false)),
            mailbox: None,
            thread: None,
        });
        Ok(())
    }

    /// Open the mailboxes, start the service threads, then start receiving
    /// from other processes (so no frame arrives before its mailbox exists).
    pub fn start(&mut self) -> Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        for host in &mut self.hosts {
            if !host.consumes.is_empty() {
                let names: Vec<&str> = host.consumes.iter().map(String::as_str).collect();
                host.mailbox = Some(Arc::new(self.bus.subscriber_by_names(
                    &names,
                    self.options.mailbox_size,
                    Overflow::Block,
                )?));
            }
        }
        for host in &mut self.hosts {
            let ctx =
                Context { name: host.name.as_str().into(), bus: self.bus.clone(), stop: self.stop.clone() };
            let worker = Worker {
                ctx,
                factory: host.factory.clone(),
                mailbox: host.mailbox.clone(),
                options: self.options.clone(),
                restarts: host.restarts.clone(),
                failed: host.failed.clone(),
                failures: 0,
            };
            let first = host.first.take();
            host.thread = Some(
                std::thread::Builder::new()
                    .name(format!("service {}", host.name))
                    .spawn(move || worker.main(first))?,
            );
        }
        self.bus.start()?;
        let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        log_line(&format!("node {}: started {}", self.bus.name(), names.join(", ")));
        Ok(())
    }

    /// Ask the node to shut down (thread-safe through [`Context::request_stop`]).
    pub fn request_stop(&self) {
        self.stop.request();
    }

    /// True once a stop was requested.
    pub fn stopping(&self) -> bool {
        self.stop.is_set()
    }

    /// Wait up to `timeout` for a stop request; whether one came.
    pub fn wait_stop(&self, timeout: Option<Duration>) -> bool {
        self.stop.wait(timeout)
    }

    /// How many times the service `name` was restarted.
    pub fn restarts(&self, name: &str) -> Option<u64> {
        self.hosts.iter().find(|h| h.name == name).map(|h| h.restarts.load(Ordering::Relaxed))
    }

    /// True if a service gave up after `max_restarts` failures.
    pub fn failed(&self) -> bool {
        self.hosts.iter().any(|h| h.failed.load(Ordering::Relaxed))
    }

    /// Shut down: stop receiving, drain and stop the services in order,
    /// flush and close the links.  Safe to call twice.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.stop.request();
        self.bus.close_inbound();
        let timeout = self.options.stop_timeout;
        for host in &mut self.hosts {
            if let Some(mb) = &host.mailbox {
                mb.close();
            }
            if let Some(t) = host.thread.take() {
                let deadline = Instant::now() + timeout;
                while !t.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
                if t.is_finished() {
                    let _ = t.join();
                } else {
                    log_line(&format!("service {} did not stop within {timeout:?}", host.name));
                }
            }
        }
        self.bus.close(Some(timeout));
        log_line(&format!("node {}: stopped", self.bus.name()));
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.started {
            self.stop();
        }
    }
}

/// One service's thread: its instance, mailbox and restart bookkeeping.
struct Worker {
    ctx: Context,
    factory: Factory,
    mailbox: Option<Arc<Subscriber<Envelope>>>,
    options: RuntimeOptions,
    restarts: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
    failures: u32,
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

impl Worker {
    fn call(&self, what: &str, f: impl FnOnce() -> std::result::Result<(), BoxError>) -> bool {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                log_line(&format!("service {}: {what} failed: {e}", self.ctx.name));
                false
            }
            Err(p) => {
                log_line(&format!("service {}: {what} panicked: {}", self.ctx.name, panic_text(&*p)));
                false
            }
        }
    }

    fn main(mut self, first: Option<Box<dyn Service>>) {
        let mut current = first;
        if let Some(svc) = current.as_mut() {
            let ctx = self.ctx.clone();
            if !self.call("on_start", || svc.on_start(&ctx)) {
                current = self.restart();
            }
        }
        if current.is_some() && self.mailbox.is_none() {
            self.ctx.stop.wait(None);
        }
        while let (Some(svc), Some(mailbox)) = (current.as_mut(), self.mailbox.clone()) {
            let Some(msg) = mailbox.recv() else { break };
            let ctx = self.ctx.clone();
            if self.call(&format!("handler for {}", msg.name()), || svc.handle(&ctx, &msg)) {
                self.failures = 0;
                continue;
            }
            current = self.restart();
        }
        if let Some(mut svc) = current {
            let ctx = self.ctx.clone();
            self.call("on_stop", || {
                svc.on_stop(&ctx);
                Ok(())
            });
        }
    }

    /// Back off, then build and start a fresh instance; None if giving up or stopping.
    fn restart(&mut self) -> Option<Box<dyn Service>> {
        loop {
            self.failures += 1;
            if let Some(max) = self.options.max_restarts {
                if self.failures > max {
                    log_line(&format!(
                        "service {} failed {} times in a row; giving up, stopping the node",
                        self.ctx.name, self.failures
                    ));
                    self.failed.store(true, Ordering::Relaxed);
                    self.ctx.stop.request();
                    return None;
                }
            }
            let exp = self.failures.saturating_sub(1).min(30);
            let delay =
                self.options.restart_initial.saturating_mul(1u32 << exp).min(self.options.restart_max);
            log_line(&format!(
                "service {}: restart {} in {:.3} s",
                self.ctx.name,
                self.restarts.load(Ordering::Relaxed) + 1,
                delay.as_secs_f64()
            ));
            if self.ctx.stop.wait(Some(delay)) {
                return None;
            }
            self.restarts.fetch_add(1, Ordering::Relaxed);
            let mut instance = match catch_unwind(AssertUnwindSafe(|| (self.factory)())) {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    log_line(&format!(
                        "service {}: constructing a fresh instance failed: {e}",
                        self.ctx.name
                    ));
                    continue;
                }
                Err(p) => {
                    log_line(&format!(
                        "service {}: constructing a fresh instance panicked: {}",
                        self.ctx.name,
                        panic_text(&*p)
                    ));
                    continue;
                }
            };
            let ctx = self.ctx.clone();
            if self.call("on_start", || instance.on_start(&ctx)) {
                return Some(instance);
            }
        }
    }
}
