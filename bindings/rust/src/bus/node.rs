//! A node process: the plan the launcher hands over (JSON, see
//! `/work/notes/plan-format.md` and `python -m mycelium_shm.bus plan`), a
//! registry of service factories, and [`node_main`], which runs a node until
//! SIGINT/SIGTERM.
//!
//! Signals: [`StopSignals::block`] blocks SIGINT and SIGTERM in the calling
//! thread before any other thread exists, so every thread inherits the mask
//! and no handler ever runs; the main thread takes them with
//! `sigtimedwait`.  A signal sent while the node starts stays pending and is
//! seen at the first wait (the launcher, which starts nodes with the signals
//! blocked, relies on this), and however many arrive the shutdown runs once.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::service::BoxError;
use super::{
    log_line, set_log_prefix, Link, MessageBus, PublicationOptions, Runtime, RuntimeOptions, Service,
    ShmInbound, ShmLink, ShmPublication, ShmSubscription, SocketAddress, SocketInbound, SocketLink,
};
use crate::codec::Schema;
use crate::error::{Error, Result};

/// An inbound endpoint or a link's destination in a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A shared-memory channel (`capacity` for the inbound side, bytes).
    Shm {
        /// Channel name.
        name: String,
        /// Ring capacity when the inbound side creates the channel.
        capacity: Option<u64>,
    },
    /// A Unix socket path.
    Unix {
        /// Absolute socket path.
        path: PathBuf,
    },
    /// A TCP address.
    Tcp {
        /// Host (an IP address on loopback in tests).
        host: String,
        /// Port.
        port: u16,
    },
}

/// One service of a node in a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    /// The service's name (the key of the [`Registry`]).
    pub name: String,
    /// Message type names its mailbox receives.
    pub consumes: Vec<String>,
    /// The topology's `config` table, as JSON (an empty object if none).
    pub config: Value,
}

/// One link of a node in a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkPlan {
    /// The consuming node.
    pub node: String,
    /// Type names published here that a service there consumes.
    pub types: Vec<String>,
    /// That node's inbound endpoint.
    pub endpoint: Endpoint,
}

/// The broadcast channel a node publishes on (`"publication"` of a plan
/// of a `shm = "broadcast"` topology): see [`ShmPublication`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationPlan {
    /// Channel name.
    pub name: String,
    /// Ring capacity when the channel is created, bytes.
    pub capacity: u64,
    /// The consuming nodes: one durable cursor each, named after the node.
    pub subscribers: Vec<String>,
    /// Cursor slots beyond one per subscriber.
    pub spare_readers: u32,
    /// Untether window, milliseconds.
    pub untether_ms: u64,
    /// Type names published here that a subscriber consumes.
    pub types: Vec<String>,
}

/// Another node's broadcast channel this node reads (`"subscriptions"` of
/// a plan): see [`ShmSubscription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionPlan {
    /// The publishing node.
    pub node: String,
    /// Its broadcast channel.
    pub name: String,
    /// This node's cursor on it.
    pub cursor: String,
}

/// A node's resolved plan, as produced by the Python topology code.
///
/// ```
/// use mycelium_shm::bus::{Endpoint, Plan};
///
/// let plan = Plan::parse(r#"{"version": 1, "topology": "/t.toml", "node": "md", "language": "rust",
///     "schema": {"path": "/s.toml", "digest": "00000000000000000000000000000000000000000000000000000000000000ff"},
///     "services": [{"name": "ticker", "consumes": [], "config": {"count": 3}}],
///     "inbound": null,
///     "links": [{"node": "py", "types": ["MarketTick"], "endpoint": {"kind": "tcp", "host": "127.0.0.1", "port": 7001}}]}"#,
///     "inline")?;
/// assert_eq!(plan.node, "md");
/// assert_eq!(plan.schema_digest[31], 0xff);
/// assert_eq!(plan.services[0].config["count"], 3);
/// assert_eq!(plan.links[0].endpoint, Endpoint::Tcp { host: "127.0.0.1".into(), port: 7001 });
/// assert_eq!((plan.publication, plan.subscriptions.len()), (None, 0)); // a mailbox plan
/// # Ok::<(), mycelium_shm::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Plan format version (1).
    pub version: u64,
    /// The topology file the plan was made from.
    pub topology: String,
    /// This node's name.
    pub node: String,
    /// `"rust"`.
    pub language: String,
    /// The schema file.
    pub schema_path: String,
    /// The schema digest every channel and socket of the node must carry.
    pub schema_digest: [u8; 32],
    /// Services, in topology order (shutdown drains in this order).
    pub services: Vec<ServicePlan>,
    /// Where this node receives, if it consumes anything remotely.
    pub inbound: Option<Endpoint>,
    /// One link per remote node this node sends to (in a broadcast
    /// topology: the unix/tcp ones only).
    pub links: Vec<LinkPlan>,
    /// The broadcast channel this node publishes on, if any.
    pub publication: Option<PublicationPlan>,
    /// The broadcast channels of other nodes this node reads.
    pub subscriptions: Vec<SubscriptionPlan>,
}

struct Json<'a> {
    origin: &'a str,
}

impl Json<'_> {
    fn err(&self, key: &str, what: &str) -> Error {
        Error::Config(format!("plan {}: {key}: {what}", self.origin))
    }

    fn get<'v>(&self, v: &'v Value, key: &str, path: &str) -> Result<&'v Value> {
        v.get(key).ok_or_else(|| self.err(&format!("{path}{key}"), "missing"))
    }

    fn str(&self, v: &Value, key: &str, path: &str) -> Result<String> {
        self.get(v, key, path)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.err(&format!("{path}{key}"), "expected a string"))
    }

    fn strings(&self, v: &Value, key: &str, path: &str) -> Result<Vec<String>> {
        let arr = self
            .get(v, key, path)?
            .as_array()
            .ok_or_else(|| self.err(&format!("{path}{key}"), "expected a list"))?;
        arr.iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.err(&format!("{path}{key}[{i}]"), "expected a string"))
            })
            .collect()
    }

    fn u64(&self, v: &Value, key: &str, path: &str) -> Result<u64> {
        self.get(v, key, path)?
            .as_u64()
            .ok_or_else(|| self.err(&format!("{path}{key}"), "expected a non-negative integer"))
    }

    fn publication(&self, v: &Value) -> Result<PublicationPlan> {
        let p = "publication.";
        let kind = self.str(v, "kind", p)?;
        if kind != "shm-broadcast" {
            return Err(self.err("publication.kind", &format!("unknown kind {kind:?} (shm-broadcast)")));
        }
        let spare = self.u64(v, "spare_readers", p)?;
        Ok(PublicationPlan {
            name: self.str(v, "name", p)?,
            capacity: self.u64(v, "capacity", p)?,
            subscribers: self.strings(v, "subscribers", p)?,
            spare_readers: u32::try_from(spare)
                .map_err(|_| self.err("publication.spare_readers", "out of range"))?,
            untether_ms: self.u64(v, "untether_ms", p)?,
            types: self.strings(v, "types", p)?,
        })
    }

    fn endpoint(&self, v: &Value, path: &str) -> Result<Endpoint> {
        let kind = self.str(v, "kind", path)?;
        match kind.as_str() {
            "shm" => Ok(Endpoint::Shm {
                name: self.str(v, "name", path)?,
                capacity: match v.get("capacity") {
                    None | Some(Value::Null) => None,
                    Some(c) => Some(
                        c.as_u64()
                            .ok_or_else(|| self.err(&format!("{path}capacity"), "expected an integer"))?,
                    ),
                },
            }),
            "unix" => Ok(Endpoint::Unix { path: PathBuf::from(self.str(v, "path", path)?) }),
            "tcp" => {
                let port = self.get(v, "port", path)?;
                let port = port
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p > 0)
                    .ok_or_else(|| self.err(&format!("{path}port"), "expected a port 1..65535"))?;
                Ok(Endpoint::Tcp { host: self.str(v, "host", path)?, port })
            }
            other => Err(self
                .err(&format!("{path}kind"), &format!("unknown endpoint kind {other:?} (shm, unix, tcp)"))),
        }
    }
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Plan {
    /// Read and check a plan file.
    pub fn load(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("plan {}: cannot read: {e}", path.display())))?;
        Plan::parse(&text, &path.display().to_string())
    }

    /// Parse and check plan JSON; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Plan> {
        let j = Json { origin };
        let doc: Value =
            serde_json::from_str(text).map_err(|e| Error::Config(format!("plan {origin}: not JSON: {e}")))?;
        let version =
            j.get(&doc, "version", "")?.as_u64().ok_or_else(|| j.err("version", "expected an integer"))?;
        if version != 1 {
            return Err(j.err("version", &format!("version {version} is not supported (1)")));
        }
        let schema = j.get(&doc, "schema", "")?;
        let digest_hex = j.str(schema, "digest", "schema.")?;
        let schema_digest =
            parse_digest(&digest_hex).ok_or_else(|| j.err("schema.digest", "expected 64 hex digits"))?;
        let services = j
            .get(&doc, "services", "")?
            .as_array()
            .ok_or_else(|| j.err("services", "expected a list"))?
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let p = format!("services[{i}].");
                Ok(ServicePlan {
                    name: j.str(s, "name", &p)?,
                    consumes: j.strings(s, "consumes", &p)?,
                    config: match s.get("config") {
                        None | Some(Value::Null) => Value::Object(Default::default()),
                        Some(c) if c.is_object() => c.clone(),
                        Some(_) => return Err(j.err(&format!("{p}config"), "expected an object")),
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let inbound = match doc.get("inbound") {
            None | Some(Value::Null) => None,
            Some(v) => Some(j.endpoint(v, "inbound.")?),
        };
        let links = match doc.get("links") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => v
                .as_array()
                .ok_or_else(|| j.err("links", "expected a list"))?
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let p = format!("links[{i}].");
                    Ok(LinkPlan {
                        node: j.str(l, "node", &p)?,
                        types: j.strings(l, "types", &p)?,
                        endpoint: j.endpoint(j.get(l, "endpoint", &p)?, &format!("{p}endpoint."))?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let publication = match doc.get("publication") {
            None | Some(Value::Null) => None,
            Some(v) => Some(j.publication(v)?),
        };
        let subscriptions = match doc.get("subscriptions") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => v
                .as_array()
                .ok_or_else(|| j.err("subscriptions", "expected a list"))?
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let p = format!("subscriptions[{i}].");
                    Ok(SubscriptionPlan {
                        node: j.str(s, "node", &p)?,
                        name: j.str(s, "name", &p)?,
                        cursor: j.str(s, "cursor", &p)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(Plan {
            version,
            topology: doc.get("topology").and_then(Value::as_str).unwrap_or("").to_owned(),
            node: j.str(&doc, "node", "")?,
            language: doc.get("language").and_then(Value::as_str).unwrap_or("rust").to_owned(),
            schema_path: schema.get("path").and_then(Value::as_str).unwrap_or("").to_owned(),
            schema_digest,
            services,
            inbound,
            links,
            publication,
            subscriptions,
        })
    }
}

type ServiceFactory = Arc<dyn Fn(&Value) -> std::result::Result<Box<dyn Service>, BoxError> + Send + Sync>;

/// The services a node binary can host: name → factory taking the
/// service's `config` (JSON), for the generated schema `S`.
///
/// ```
/// use mycelium_shm::bus::{BoxError, Context, Envelope, Registry, Service};
/// use mycelium_shm::generated::Message;
///
/// struct Quiet;
/// impl Service for Quiet {
///     fn handle(&mut self, _: &Context, _: &Envelope) -> Result<(), BoxError> {
///         Ok(())
///     }
/// }
/// let registry = Registry::<Message>::new().service("quiet", |_config| Ok(Quiet));
/// assert_eq!(registry.names(), ["quiet"]);
/// ```
pub struct Registry<S: Schema> {
    factories: BTreeMap<String, ServiceFactory>,
    _schema: PhantomData<fn() -> S>,
}

impl<S: Schema> fmt::Debug for Registry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Registry({:?})", self.names())
    }
}

impl<S: Schema> Default for Registry<S> {
    fn default() -> Self {
        Registry { factories: BTreeMap::new(), _schema: PhantomData }
    }
}

impl<S: Schema> Registry<S> {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Register the factory of the service `name`; it is called with the
    /// service's `config` for the first instance and at every restart.
    pub fn service<T, F>(mut self, name: &str, factory: F) -> Self
    where
        T: Service + 'static,
        F: Fn(&Value) -> std::result::Result<T, BoxError> + Send + Sync + 'static,
    {
        self.factories
            .insert(name.to_owned(), Arc::new(move |cfg| Ok(Box::new(factory(cfg)?) as Box<dyn Service>)));
        self
    }

    /// The registered service names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }
}

/// SIGINT/SIGTERM taken synchronously: blocked in every thread, received
/// by [`StopSignals::wait`].
#[derive(Clone, Copy)]
pub struct StopSignals {
    set: libc::sigset_t,
}

impl fmt::Debug for StopSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StopSignals(SIGINT, SIGTERM)")
    }
}

impl StopSignals {
    /// Block SIGINT and SIGTERM in the calling thread (and so in every
    /// thread it starts afterwards).  Call it first thing in `main`.
    pub fn block() -> Result<StopSignals> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before
        // use, and sigaddset/pthread_sigmask get valid pointers to it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(Error::System(std::io::Error::from_raw_os_error(rc)));
            }
            Ok(StopSignals { set })
        }
    }

    /// Wait up to `timeout` for SIGINT or SIGTERM; the signal number.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: set and ts are valid for the call; a null siginfo pointer is allowed.
        let r = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) };
        (r > 0).then_some(r)
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Build a plan's node (bus, inbound, links, services), run it until a stop
/// signal or a service asks to stop, and shut down cleanly; the exit code
/// (0, or 1 if a service gave up).  [`node_main`] calls this.
pub fn run_node<S: Schema>(plan: &Plan, registry: &Registry<S>, signals: &StopSignals) -> Result<u8> {
    if plan.schema_digest != S::DIGEST {
        return Err(Error::SchemaMismatch(format!(
            "the plan's schema {} has digest {}..., this binary was built for {}...",
            plan.schema_path,
            plan.schema_digest.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>(),
            S::DIGEST.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>()
        )));
    }
    let bus = MessageBus::with_schema::<S>(&plan.node);
    let digest = Some(S::DIGEST);
    match &plan.inbound {
        None => {}
        Some(Endpoint::Shm { name, capacity }) => {
            bus.add_inbound(ShmInbound::open(name, digest, capacity.unwrap_or(1 << 20))?)?;
        }
        Some(Endpoint::Unix { path }) => {
            bus.add_inbound(SocketInbound::bind(&SocketAddress::Unix(path.clone()), digest)?)?
        }
        Some(Endpoint::Tcp { host, port }) => {
            bus.add_inbound(SocketInbound::bind(&SocketAddress::tcp(host, *port), digest)?)?;
        }
    }
    for link in &plan.links {
        let l: Arc<dyn Link> = match &link.endpoint {
            Endpoint::Shm { name, .. } => Arc::new(ShmLink::new(name, digest)),
            Endpoint::Unix { path } => Arc::new(SocketLink::new(SocketAddress::Unix(path.clone()), digest)),
            Endpoint::Tcp { host, port } => {
                Arc::new(SocketLink::new(SocketAddress::tcp(host, *port), digest))
            }
        };
        let types: Vec<&str> = link.types.iter().map(String::as_str).collect();
        bus.add_link_arc(l, &types)?;
    }
    if let Some(p) = &plan.publication {
        let subscribers: Vec<&str> = p.subscribers.iter().map(String::as_str).collect();
        let options = PublicationOptions {
            capacity: p.capacity,
            spare_readers: p.spare_readers,
            untether: Duration::from_millis(p.untether_ms),
            ..PublicationOptions::default()
        };
        let publication = ShmPublication::open(&p.name, &subscribers, digest, &options)?;
        let types: Vec<&str> = p.types.iter().map(String::as_str).collect();
        bus.add_link(publication, &types)?;
    }
    for s in &plan.subscriptions {
        bus.add_inbound(ShmSubscription::open(&s.name, &s.cursor, digest)?)?;
    }
    let mut runtime = Runtime::new(bus.clone(), RuntimeOptions::default());
    for svc in &plan.services {
        let factory = registry.factories.get(&svc.name).cloned().ok_or_else(|| {
            Error::Config(format!(
                "plan: service {:?} is not compiled into this binary (it has: {})",
                svc.name,
                registry.names().join(", ")
            ))
        })?;
        let config = svc.config.clone();
        let consumes: Vec<&str> = svc.consumes.iter().map(String::as_str).collect();
        if let Err(e) = runtime.add_service(&svc.name, &consumes, move || factory(&config)) {
            bus.close(Some(Duration::ZERO));
            return Err(e);
        }
    }
    if let Some(sig) = signals.wait(Duration::ZERO) {
        log_line(&format!("node {}: {} before start, shutting down", plan.node, signal_name(sig)));
        bus.close(None);
        return Ok(0);
    }
    runtime.start()?;
    while !runtime.stopping() {
        if let Some(sig) = signals.wait(Duration::from_millis(100)) {
            log_line(&format!("node {}: {}, shutting down", plan.node, signal_name(sig)));
            break;
        }
    }
    runtime.stop();
    Ok(if runtime.failed() { 1 } else { 0 })
}

/// The whole `main` of a node binary: block SIGINT/SIGTERM, read the plan
/// named by `--plan PATH` (or the environment variable
/// `MYCELIUM_BUS_PLAN`), run the node with the services of `registry` until
/// signalled, shut down cleanly.  Exit code 0 after a clean shutdown, 1 if
/// a service gave up, 2 if the node could not start (one log line says why).
///
/// ```no_run
/// use mycelium_shm::bus::{node_main, BoxError, Context, Envelope, Registry, Service};
/// use mycelium_shm::generated::{Message, Stop};
///
/// struct Printer;
/// impl Service for Printer {
///     fn handle(&mut self, ctx: &Context, msg: &Envelope) -> Result<(), BoxError> {
///         if let Some(stop) = msg.get::<Stop>() {
///             eprintln!("{}: stop after {}", ctx.name(), stop.last_seq);
///         }
///         Ok(())
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     node_main(Registry::<Message>::new().service("printer", |_config| Ok(Printer)))
/// }
/// ```
pub fn node_main<S: Schema>(registry: Registry<S>) -> ExitCode {
    let signals = match StopSignals::block() {
        Ok(s) => s,
        Err(e) => {
            log_line(&format!("cannot block SIGINT/SIGTERM: {e}"));
            return ExitCode::from(2);
        }
    };
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let thread = std::thread::current();
        let payload = info.payload();
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_owned());
        log_line(&format!("panic in thread {}{place}: {text}", thread.name().unwrap_or("?")));
    }));
    let mut args = std::env::args().skip(1);
    let mut plan_path: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        if arg == "--plan" {
            plan_path = args.next().map(PathBuf::from);
            if plan_path.is_none() {
                log_line("--plan needs a path");
                return ExitCode::from(2);
            }
        } else if let Some(p) = arg.strip_prefix("--plan=") {
            plan_path = Some(PathBuf::from(p));
        } else {
            log_line(&format!("unknown argument {arg:?} (usage: --plan PATH)"));
            return ExitCode::from(2);
        }
    }
    let plan_path = match plan_path.or_else(|| std::env::var_os("MYCELIUM_BUS_PLAN").map(PathBuf::from)) {
        Some(p) => p,
        None => {
            log_line("no plan: pass --plan PATH or set MYCELIUM_BUS_PLAN");
            return ExitCode::from(2);
        }
    };
    let plan = match Plan::load(&plan_path) {
        Ok(p) => p,
        Err(e) => {
            log_line(&e.to_string());
            return ExitCode::from(2);
        }
    };
    set_log_prefix(&plan.node);
    match run_node(&plan, &registry, &signals) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            log_line(&format!("node {} failed to start: {e}", plan.node));
            ExitCode::from(2)
        }
    }
}
