//! The Rust bus: in-process delivery and overflow policies, Rust-to-Rust over
//! shared memory, Unix and TCP sockets (one process, threads), the socket
//! protocol's checks, schema mismatches, restarts after a panic, and a
//! node binary (examples/bus_probe.rs) shutting down cleanly on SIGTERM.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mycelium_shm::bus::{
    BoxError, BusMessage, Context, Envelope, Inbound, Link, MessageBus, Overflow, Runtime, RuntimeOptions,
    Service, ShmInbound, ShmLink, SocketAddress, SocketInbound, SocketLink, HELLO_SIZE,
};
use mycelium_shm::generated::{Fill, MarketTick, Message, Stop, SCHEMA_DIGEST};
use mycelium_shm::{Error, UnlinkGuard};

const WAIT: Duration = Duration::from_secs(10);

fn tick(seq: u64) -> MarketTick {
    MarketTick {
        symbol: format!("S{seq}"),
        seq,
        ts_ns: -(seq as i64),
        bid: 1.0 + seq as f64 / 1024.0,
        ask: 2.5,
        bid_size: seq as u32,
        ask_size: u32::MAX - seq as u32,
    }
}

fn unique(label: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("rs-bus-{}-{}-{label}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(label));
        std::fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Receive `n` messages from a subscriber or fail after WAIT.
fn recv_n<M>(sub: &mycelium_shm::bus::Subscriber<M>, n: usize) -> Vec<M> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {} of {n} messages arrived", got.len());
        if let Some(m) = sub.recv_timeout(left).expect("recv") {
            got.push(m);
        }
    }
    got
}

// -- in process --------------------------------------------------------------------

#[test]
fn handlers_and_queues_get_the_published_arc() {
    let bus = MessageBus::with_schema::<Message>("local");
    let seen: Arc<Mutex<Vec<Arc<MarketTick>>>> = Arc::default();
    let s = seen.clone();
    bus.subscribe::<MarketTick, _>(move |t| s.lock().unwrap().push(t.clone())).unwrap();
    let sub = bus.subscriber::<MarketTick>(16, Overflow::Block).unwrap();
    let other = bus.subscriber::<Fill>(16, Overflow::Block).unwrap();
    let mailbox = bus.subscriber_by_names(&["MarketTick", "Stop"], 16, Overflow::Block).unwrap();
    let ticks = bus.publisher::<MarketTick>();
    for seq in 0..5 {
        ticks.publish(tick(seq)).unwrap();
    }
    bus.publish(Stop { last_seq: 4, reason: "end".into() }).unwrap();

    let queued = sub.drain();
    let handled = seen.lock().unwrap().clone();
    assert_eq!(queued.iter().map(|t| t.seq).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    for (a, b) in queued.iter().zip(&handled) {
        assert!(Arc::ptr_eq(a, b), "handler and queue must share the one published value");
    }
    assert_eq!(*queued[3], tick(3));
    assert!(other.is_empty());
    let envs = mailbox.drain();
    let names: Vec<&str> = envs.iter().map(Envelope::name).collect();
    assert_eq!(names, ["MarketTick", "MarketTick", "MarketTick", "MarketTick", "MarketTick", "Stop"]);
    assert!(Arc::ptr_eq(&envs[2].downcast::<MarketTick>().unwrap(), &queued[2]));
    assert_eq!(envs[5].get::<Stop>().unwrap().reason, "end");
    assert_eq!(bus.subscribed_types(), ["Fill", "MarketTick", "Stop"]);
}

#[test]
fn a_panicking_handler_is_counted_and_the_others_still_run() {
    let bus = MessageBus::with_schema::<Message>("panics");
    let after = Arc::new(AtomicU64::new(0));
    bus.subscribe::<Stop, _>(|_| panic!("handler fails on purpose")).unwrap();
    let a = after.clone();
    let sub = bus
        .subscribe::<Stop, _>(move |s| {
            a.fetch_add(s.last_seq, Ordering::Relaxed);
        })
        .unwrap();
    bus.publish(Stop { last_seq: 3, ..Default::default() }).unwrap();
    assert_eq!((after.load(Ordering::Relaxed), bus.stats().handler_errors), (3, 1));
    sub.cancel();
    sub.cancel();
    bus.publish(Stop { last_seq: 3, ..Default::default() }).unwrap();
    assert_eq!((after.load(Ordering::Relaxed), bus.stats().handler_errors), (3, 2));
}

struct Local(u32);
impl BusMessage for Local {}

#[test]
fn local_types_travel_without_a_schema_but_not_to_links() {
    let bus = MessageBus::new("plain");
    let sub = bus.subscriber::<Local>(4, Overflow::Block).unwrap();
    bus.publish(Local(9)).unwrap();
    assert_eq!(sub.try_recv().unwrap().0, 9);
    let err = bus.add_link(ShmLink::new(&unique("never"), None), &["MarketTick"]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
fn overflow_drop_oldest_drop_newest_and_raise() {
    let bus = MessageBus::with_schema::<Message>("overflow");
    let oldest = bus.subscriber::<Stop>(3, Overflow::DropOldest).unwrap();
    let newest = bus.subscriber::<Stop>(3, Overflow::DropNewest).unwrap();
    let stops = bus.publisher::<Stop>();
    for n in 0..10 {
        stops.publish(Stop { last_seq: n, ..Default::default() }).unwrap();
    }
    let seqs = |v: Vec<Arc<Stop>>| v.iter().map(|s| s.last_seq).collect::<Vec<_>>();
    assert_eq!(seqs(oldest.drain()), [7, 8, 9]);
    assert_eq!(seqs(newest.drain()), [0, 1, 2]);
    assert_eq!((oldest.dropped(), newest.dropped()), (7, 7));
    oldest.close();
    newest.close();

    let raise = bus.subscriber::<Stop>(2, Overflow::Raise).unwrap();
    stops.publish(Stop::default()).unwrap();
    stops.publish(Stop::default()).unwrap();
    let err = stops.publish(Stop::default()).unwrap_err();
    assert!(matches!(err, Error::Overflow(_)), "{err}");
    assert_eq!((raise.len(), raise.dropped()), (2, 0));
    // A frame from a transport has no publisher to fail: dropped and counted.
    let (id, payload) = Message::Stop(Stop::default()).encode();
    bus.deliver_frame(id, &payload);
    assert_eq!((raise.len(), raise.dropped()), (2, 1));
    raise.close();
    assert!(raise.try_recv().is_some(), "queued messages stay drainable after close");
}

#[test]
fn overflow_block_makes_the_publisher_wait_and_loses_nothing() {
    let bus = MessageBus::with_schema::<Message>("block");
    let sub = bus.subscriber::<Stop>(1, Overflow::Block).unwrap();
    let published = Arc::new(AtomicU64::new(0));
    let (b, p) = (bus.clone(), published.clone());
    let producer = std::thread::spawn(move || {
        for n in 0..50 {
            b.publish(Stop { last_seq: n, ..Default::default() }).unwrap();
            p.fetch_add(1, Ordering::SeqCst);
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(published.load(Ordering::SeqCst) <= 2, "the publisher must wait for room");
    let got: Vec<u64> = recv_n(&sub, 50).iter().map(|s| s.last_seq).collect();
    producer.join().unwrap();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    assert_eq!(sub.dropped(), 0);
}

#[test]
fn closing_the_bus_ends_iteration_and_refuses_publishing() {
    let bus = MessageBus::with_schema::<Message>("closing");
    let sub = bus.subscriber::<Stop>(4, Overflow::Block).unwrap();
    bus.publish(Stop::default()).unwrap();
    bus.close(None);
    assert_eq!((&sub).into_iter().count(), 1);
    assert!(matches!(bus.publish(Stop::default()), Err(Error::BusClosed(_))));
    assert!(matches!(bus.subscriber::<Stop>(4, Overflow::Block), Err(Error::BusClosed(_))));
}

// -- across buses --------------------------------------------------------------------

enum Transport {
    Shm,
    Unix,
    Tcp,
}

/// A receiving bus with an inbound endpoint of the transport, and a link to it.
fn endpoint_pair(
    t: &Transport,
    dir: &Path,
    digest: [u8; 32],
) -> (Box<dyn Inbound>, Arc<dyn Link>, Option<UnlinkGuard>) {
    match t {
        Transport::Shm => {
            let name = unique("shm");
            let guard = UnlinkGuard::new(&name);
            let inbound = ShmInbound::open(&name, Some(SCHEMA_DIGEST), 1 << 18).unwrap();
            (Box::new(inbound), Arc::new(ShmLink::new(&name, Some(digest))), Some(guard))
        }
        Transport::Unix => {
            let addr = SocketAddress::unix(dir.join("in.sock"));
            let inbound = SocketInbound::bind(&addr, Some(SCHEMA_DIGEST)).unwrap();
            (Box::new(inbound), Arc::new(SocketLink::new(addr, Some(digest))), None)
        }
        Transport::Tcp => {
            let inbound =
                SocketInbound::bind(&SocketAddress::tcp("127.0.0.1", 0), Some(SCHEMA_DIGEST)).unwrap();
            let addr = inbound.local_address();
            (Box::new(inbound), Arc::new(SocketLink::new(addr, Some(digest))), None)
        }
    }
}

struct BoxedInbound(Box<dyn Inbound>);
impl Inbound for BoxedInbound {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn start(&mut self, deliver: mycelium_shm::bus::Deliver) -> mycelium_shm::Result<()> {
        self.0.start(deliver)
    }
    fn close(&mut self) {
        self.0.close()
    }
}

fn crosses(t: Transport) {
    let dir = TempDir::new("x");
    let (inbound, link, _guard) = endpoint_pair(&t, &dir.0, SCHEMA_DIGEST);
    let receiver = MessageBus::with_schema::<Message>("receiver");
    let ticks_in = receiver.subscriber::<MarketTick>(4096, Overflow::Block).unwrap();
    let stops_in = receiver.subscriber::<Stop>(16, Overflow::Block).unwrap();
    // The receiver links MarketTick onward to a third bus: a frame that came
    // from a transport must never be forwarded there.
    let (third_in, third_link, _g3) = endpoint_pair(&Transport::Shm, &dir.0, SCHEMA_DIGEST);
    let third = MessageBus::with_schema::<Message>("third");
    let third_ticks = third.subscriber::<MarketTick>(16, Overflow::Block).unwrap();
    third.add_inbound(BoxedInbound(third_in)).unwrap();
    third.start().unwrap();
    receiver.add_link_arc(third_link, &["MarketTick"]).unwrap();
    receiver.add_inbound(BoxedInbound(inbound)).unwrap();
    receiver.start().unwrap();

    let sender = MessageBus::with_schema::<Message>("sender");
    sender.add_link_arc(link, &["MarketTick", "Stop"]).unwrap();
    assert_eq!(sender.links_of("Fill").unwrap().len(), 0);
    let local = sender.subscriber::<MarketTick>(4096, Overflow::Block).unwrap();
    let ticks = sender.publisher::<MarketTick>();
    for seq in 0..2000 {
        ticks.publish(tick(seq)).unwrap();
    }
    sender.publish(Stop { last_seq: 1999, reason: "done".into() }).unwrap();
    sender.publish(Fill::default()).unwrap(); // not linked: stays here
    assert!(sender.flush(Some(WAIT)).unwrap());

    let got = recv_n(&ticks_in, 2000);
    for (i, t) in got.iter().enumerate() {
        assert_eq!(**t, tick(i as u64), "tick {i} differs");
    }
    assert_eq!(recv_n(&stops_in, 1)[0].reason, "done");
    assert_eq!(local.len(), 2000, "local subscribers of the sender get them too");
    std::thread::sleep(Duration::from_millis(200));
    assert!(third_ticks.is_empty(), "an inbound frame was forwarded to a link");
    assert_eq!(receiver.stats().received, 2001);
    sender.close(None);
    receiver.close(None);
    third.close(None);
}

#[test]
fn rust_to_rust_over_shm() {
    crosses(Transport::Shm);
}

#[test]
fn rust_to_rust_over_unix() {
    crosses(Transport::Unix);
}

#[test]
fn rust_to_rust_over_tcp() {
    crosses(Transport::Tcp);
}

/// A link opened before its peer exists queues, retries and delivers everything.
fn link_before_peer(t: Transport) {
    let dir = TempDir::new("late");
    let sender = MessageBus::with_schema::<Message>("early");
    let (name, addr) = (unique("late"), SocketAddress::unix(dir.0.join("late.sock")));
    let _guard = UnlinkGuard::new(&name);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let link: Arc<dyn Link> = match t {
        Transport::Shm => Arc::new(ShmLink::new(&name, Some(SCHEMA_DIGEST))),
        Transport::Unix => Arc::new(SocketLink::new(addr.clone(), Some(SCHEMA_DIGEST))),
        Transport::Tcp => {
            Arc::new(SocketLink::new(SocketAddress::tcp("127.0.0.1", port), Some(SCHEMA_DIGEST)))
        }
    };
    sender.add_link_arc(link, &["MarketTick"]).unwrap();
    for seq in 0..100 {
        sender.publish(tick(seq)).unwrap();
    }
    assert!(!sender.flush(Some(Duration::from_millis(50))).unwrap(), "nothing can be delivered yet");
    std::thread::sleep(Duration::from_millis(150));
    let receiver = MessageBus::with_schema::<Message>("late");
    let sub = receiver.subscriber::<MarketTick>(256, Overflow::Block).unwrap();
    match t {
        Transport::Shm => {
            receiver.add_inbound(ShmInbound::open(&name, Some(SCHEMA_DIGEST), 1 << 16).unwrap())
        }
        Transport::Unix => receiver.add_inbound(SocketInbound::bind(&addr, Some(SCHEMA_DIGEST)).unwrap()),
        Transport::Tcp => receiver.add_inbound(
            SocketInbound::bind(&SocketAddress::tcp("127.0.0.1", port), Some(SCHEMA_DIGEST)).unwrap(),
        ),
    }
    .unwrap();
    receiver.start().unwrap();
    sender.close(None); // flushes: everything reaches the late peer
    let got: Vec<u64> = recv_n(&sub, 100).iter().map(|t| t.seq).collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    receiver.close(None);
}

#[test]
fn shm_link_waits_for_its_channel() {
    link_before_peer(Transport::Shm);
}

#[test]
fn unix_link_waits_for_its_listener() {
    link_before_peer(Transport::Unix);
}

#[test]
fn tcp_link_waits_for_its_listener() {
    link_before_peer(Transport::Tcp);
}

// -- refusals --------------------------------------------------------------------------

fn other_digest() -> [u8; 32] {
    let mut d = SCHEMA_DIGEST;
    d[0] ^= 0xff;
    d
}

#[test]
fn schema_mismatch_is_refused_on_both_sides_of_a_socket() {
    for tcp in [false, true] {
        let dir = TempDir::new("mm");
        let addr =
            if tcp { SocketAddress::tcp("127.0.0.1", 0) } else { SocketAddress::unix(dir.0.join("mm.sock")) };
        let mut inbound = SocketInbound::bind(&addr, Some(SCHEMA_DIGEST)).unwrap();
        let monitor = inbound.monitor();
        let delivered = Arc::new(AtomicU64::new(0));
        let d = delivered.clone();
        inbound
            .start(Arc::new(move |_, _| {
                d.fetch_add(1, Ordering::Relaxed);
            }))
            .unwrap();
        let link = SocketLink::new(inbound.local_address(), Some(other_digest()));
        let err = link.wait_connected(Some(WAIT)).unwrap_err();
        assert!(matches!(err, Error::SchemaMismatch(_)), "{err}");
        assert!(matches!(link.send(1, b"x"), Err(Error::SchemaMismatch(_))));
        let deadline = Instant::now() + WAIT;
        while monitor.errors().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let errors = monitor.errors();
        assert!(errors.iter().any(|e| e.starts_with("SchemaMismatch")), "{errors:?}");
        assert_eq!((delivered.load(Ordering::Relaxed), monitor.connections()), (0, 0));
        link.close(None);
        inbound.close();
    }
}

#[test]
fn schema_mismatch_is_refused_by_a_shm_channel() {
    let name = unique("mmshm");
    let _guard = UnlinkGuard::new(&name);
    let _inbound = ShmInbound::open(&name, Some(SCHEMA_DIGEST), 1 << 16).unwrap();
    let link = ShmLink::new(&name, Some(other_digest()));
    assert!(matches!(link.wait_connected(Some(WAIT)), Err(Error::SchemaMismatch(_))));
    assert!(matches!(link.send(1, b""), Err(Error::SchemaMismatch(_))));
}

/// A raw peer: our hello, then whatever bytes the test wants.
fn raw_peer(path: &Path, then: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut hello = Vec::new();
    hello.extend_from_slice(b"MYCELBUS");
    hello.extend_from_slice(&1u32.to_le_bytes());
    hello.extend_from_slice(&(1u32 << 20).to_le_bytes());
    hello.extend_from_slice(&SCHEMA_DIGEST);
    s.write_all(&hello).unwrap();
    s.write_all(then).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap(); // a peer that ends there
    let mut theirs = vec![0u8; HELLO_SIZE];
    s.read_exact(&mut theirs).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest); // ends when the inbound drops us
    theirs
}

#[test]
fn socket_inbound_checks_every_length_and_type_before_the_payload() {
    let dir = TempDir::new("frames");
    let path = dir.0.join("f.sock");
    let mut inbound =
        SocketInbound::bind(&SocketAddress::unix(&path), Some(SCHEMA_DIGEST)).unwrap().max_payload(64);
    let monitor = inbound.monitor();
    type Frames = Arc<Mutex<Vec<(u16, Vec<u8>)>>>;
    let frames: Frames = Arc::default();
    let f = frames.clone();
    inbound.start(Arc::new(move |t, p| f.lock().unwrap().push((t, p.to_vec())))).unwrap();

    let frame = |len: u32, ty: u16, payload: &[u8]| {
        let mut v = len.to_le_bytes().to_vec();
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(payload);
        v
    };
    // The inbound's hello: magic, version 1, its max payload, the digest.
    let theirs = raw_peer(&path, &frame(11, 5, b"abc"));
    assert_eq!(&theirs[..8], b"MYCELBUS");
    assert_eq!(u32::from_le_bytes(theirs[8..12].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(theirs[12..16].try_into().unwrap()), 64);
    assert_eq!(theirs[16..], SCHEMA_DIGEST);
    // A header announcing more than the agreed maximum: dropped before any payload.
    raw_peer(&path, &frame(8 + 65, 5, &[]));
    // Shorter than a header, and type 0.
    raw_peer(&path, &frame(7, 5, &[]));
    raw_peer(&path, &frame(8, 0, &[]));
    // A frame cut short by the peer.
    raw_peer(&path, &frame(20, 5, b"12"));
    let deadline = Instant::now() + WAIT;
    while monitor.errors().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*frames.lock().unwrap(), [(5, b"abc".to_vec())]);
    assert_eq!(monitor.oversized(), 1);
    let errors = monitor.errors().join("\n");
    for needle in
        ["frame length 73 outside 8..72", "frame length 7", "type 0", "inside a record (2 of 12 bytes)"]
    {
        assert!(errors.contains(needle), "{needle:?} not in {errors}");
    }
    inbound.close();
    assert!(!path.exists(), "the socket file is removed on close");
}

// -- services ---------------------------------------------------------------------------

struct Flaky {
    seen: Arc<Mutex<Vec<u64>>>,
    starts: Arc<AtomicU64>,
}

impl Service for Flaky {
    fn on_start(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn handle(&mut self, ctx: &Context, msg: &Envelope) -> Result<(), BoxError> {
        let t = msg.get::<MarketTick>().ok_or("not a tick")?;
        match t.seq {
            3 => panic!("seq 3 fails"),
            6 => return Err("seq 6 fails too".into()),
            _ => {}
        }
        self.seen.lock().unwrap().push(t.seq);
        ctx.publish(Fill { order_id: t.seq, ..Default::default() })?;
        Ok(())
    }
}

#[test]
fn a_failing_service_is_restarted_and_the_stream_goes_on() {
    let bus = MessageBus::with_schema::<Message>("restarts");
    let fills = bus.subscriber::<Fill>(64, Overflow::Block).unwrap();
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let starts = Arc::new(AtomicU64::new(0));
    let options = RuntimeOptions { restart_initial: Duration::from_millis(5), ..Default::default() };
    let mut rt = Runtime::new(bus.clone(), options);
    let (s, n) = (seen.clone(), starts.clone());
    rt.add_service("flaky", &["MarketTick"], move || {
        Ok(Box::new(Flaky { seen: s.clone(), starts: n.clone() }))
    })
    .unwrap();
    rt.start().unwrap();
    for seq in 0..10 {
        bus.publish(tick(seq)).unwrap();
    }
    let got: Vec<u64> = recv_n(&fills, 8).iter().map(|f| f.order_id).collect();
    assert_eq!(got, [0, 1, 2, 4, 5, 7, 8, 9]);
    assert_eq!(rt.restarts("flaky"), Some(2));
    assert_eq!(starts.load(Ordering::SeqCst), 3, "a fresh instance, started again, per restart");
    rt.stop();
}

#[test]
fn max_restarts_gives_up_and_stops_the_node() {
    struct Broken;
    impl Service for Broken {
        fn on_start(&mut self, _ctx: &Context) -> Result<(), BoxError> {
            Err("never starts".into())
        }
        fn handle(&mut self, _ctx: &Context, _msg: &Envelope) -> Result<(), BoxError> {
            Ok(())
        }
    }
    let bus = MessageBus::with_schema::<Message>("gives-up");
    let options = RuntimeOptions {
        restart_initial: Duration::from_millis(1),
        max_restarts: Some(2),
        ..Default::default()
    };
    let mut rt = Runtime::new(bus, options);
    rt.add_service("broken", &[], || Ok(Box::new(Broken))).unwrap();
    rt.start().unwrap();
    assert!(rt.wait_stop(Some(WAIT)), "the node is asked to stop");
    rt.stop();
    assert!(rt.failed());
    assert_eq!(rt.restarts("broken"), Some(2));
}

#[test]
fn stop_drains_mailboxes_in_order_then_on_stop() {
    struct Slow {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
    }
    impl Service for Slow {
        fn handle(&mut self, _ctx: &Context, msg: &Envelope) -> Result<(), BoxError> {
            std::thread::sleep(Duration::from_millis(1));
            let s = msg.get::<Stop>().ok_or("not a stop")?;
            self.log.lock().unwrap().push(format!("{} {}", self.name, s.last_seq));
            Ok(())
        }
        fn on_stop(&mut self, _ctx: &Context) {
            self.log.lock().unwrap().push(format!("{} stopped", self.name));
        }
    }
    let bus = MessageBus::with_schema::<Message>("drain");
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut rt = Runtime::new(bus.clone(), RuntimeOptions::default());
    for name in ["first", "second"] {
        let l = log.clone();
        rt.add_service(name, &["Stop"], move || Ok(Box::new(Slow { name, log: l.clone() }))).unwrap();
    }
    rt.start().unwrap();
    for n in 0..20 {
        bus.publish(Stop { last_seq: n, ..Default::default() }).unwrap();
    }
    rt.stop();
    let log = log.lock().unwrap();
    for name in ["first", "second"] {
        let mine: Vec<&String> = log.iter().filter(|l| l.starts_with(name)).collect();
        assert_eq!(mine.len(), 21, "{name}: every message, then on_stop");
        assert_eq!(mine[20], &format!("{name} stopped"));
    }
    let first_stop = log.iter().position(|l| l == "first stopped").unwrap();
    let second_stop = log.iter().position(|l| l == "second stopped").unwrap();
    assert!(first_stop < second_stop, "services stop in topology order");
}

// -- a node process ------------------------------------------------------------------------

/// The bus_probe example, built (debug) if cargo test did not build it yet.
fn probe_binary() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", "bus_probe", "--manifest-path"])
        .arg(manifest.join("Cargo.toml"))
        .status()
        .expect("cargo build");
    assert!(status.success());
    // target/debug/deps/bus-xxxx -> target/debug/examples/bus_probe
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join("bus_probe");
    assert!(path.exists(), "{} missing", path.display());
    path
}

/// A child that is killed and reaped on drop.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn wait_for_file(path: &Path, needle: &str) {
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(path).unwrap_or_default().contains(needle) {
        assert!(Instant::now() < deadline, "{} never said {needle:?}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sigterm_flushes(endpoint_json: &str, inbound: impl FnOnce() -> Box<dyn Inbound>, dir: &TempDir) {
    const COUNT: u64 = 3000;
    let out = dir.0.join("send.out");
    let plan = dir.0.join("plan.json");
    let plan_text = format!(
        r#"{{"version": 1, "topology": "/test.toml", "node": "src", "language": "rust",
            "schema": {{"path": "schemas/trading.toml", "digest": "{}"}},
            "services": [{{"name": "send", "consumes": [], "config": {{"count": {COUNT}, "symbol": "RS", "out": "{}"}}}}],
            "inbound": null,
            "links": [{{"node": "dst", "types": ["MarketTick"], "endpoint": {endpoint_json}}}]}}"#,
        hex(&SCHEMA_DIGEST),
        out.display()
    );
    std::fs::write(&plan, plan_text).unwrap();
    let child = Command::new(probe_binary())
        .arg("--plan")
        .arg(&plan)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bus_probe");
    let mut node = Node(child);
    // Everything is published while the destination is not up: it waits in the link.
    wait_for_file(&out, &format!("sent {COUNT}"));
    // SIGTERM while the destination is still down, then bring it up: the
    // node must wait for it and deliver everything before it exits.
    // Two signals in a row: the shutdown runs once, whatever arrives during it.
    for _ in 0..2 {
        // SAFETY: kill() with a child's pid and a valid signal number.
        assert_eq!(unsafe { libc::kill(node.0.id() as i32, libc::SIGTERM) }, 0);
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(node.0.try_wait().unwrap().is_none(), "the node exited with its link unflushed");
    let bus = MessageBus::with_schema::<Message>("dst");
    let sub = bus.subscriber::<MarketTick>(COUNT as usize, Overflow::Block).unwrap();
    bus.add_inbound(BoxedInbound(inbound())).unwrap();
    bus.start().unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = node.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the node did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    node.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("src: node src: SIGTERM, shutting down"), "stderr:\n{stderr}");
    for line in stderr.lines() {
        assert!(line.starts_with("src: "), "a log line without the node prefix: {line:?}");
    }
    let got = recv_n(&sub, COUNT as usize);
    for (i, t) in got.iter().enumerate() {
        let i = i as u64;
        assert_eq!(
            (t.seq, t.ts_ns, t.ask_size),
            (i, 1_700_000_000_000_000_000 + i as i64, u32::MAX - i as u32)
        );
    }
    bus.close(None);
}

#[test]
fn sigterm_flushes_a_unix_link_and_exits_0() {
    let dir = TempDir::new("sig-unix");
    let path = dir.0.join("dst.sock");
    let json = format!(r#"{{"kind": "unix", "path": "{}"}}"#, path.display());
    sigterm_flushes(
        &json,
        || Box::new(SocketInbound::bind(&SocketAddress::unix(&path), Some(SCHEMA_DIGEST)).unwrap()),
        &dir,
    );
}

#[test]
fn sigterm_flushes_a_shm_link_and_exits_0() {
    let dir = TempDir::new("sig-shm");
    let name = unique("sig");
    let _guard = UnlinkGuard::new(&name);
    let json = format!(r#"{{"kind": "shm", "name": "{name}"}}"#);
    sigterm_flushes(&json, || Box::new(ShmInbound::open(&name, Some(SCHEMA_DIGEST), 1 << 20).unwrap()), &dir);
}

#[test]
fn a_plan_for_another_schema_is_refused_with_exit_2() {
    let dir = TempDir::new("plan-mm");
    let plan = dir.0.join("plan.json");
    let text = format!(
        r#"{{"version": 1, "node": "n", "schema": {{"path": "x.toml", "digest": "{}"}}, "services": [], "inbound": null, "links": []}}"#,
        hex(&other_digest())
    );
    std::fs::write(&plan, text).unwrap();
    let out = Command::new(probe_binary()).env("MYCELIUM_BUS_PLAN", &plan).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SchemaMismatch"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn a_socket_link_reconnects_to_a_restarted_peer_and_keeps_its_queue() {
    let dir = TempDir::new("reconnect");
    let addr = SocketAddress::unix(dir.0.join("peer.sock"));
    let link = SocketLink::new(addr.clone(), Some(SCHEMA_DIGEST));
    let got: Arc<Mutex<Vec<u64>>> = Arc::default();
    let receiving = |got: &Arc<Mutex<Vec<u64>>>| {
        let g = got.clone();
        let mut inbound = SocketInbound::bind(&addr, Some(SCHEMA_DIGEST)).unwrap();
        inbound
            .start(Arc::new(move |_, payload| {
                g.lock().unwrap().push(MarketTick::decode(payload).unwrap().seq);
            }))
            .unwrap();
        inbound
    };
    let send = |range: std::ops::Range<u64>| {
        for seq in range {
            let (id, payload) = Message::MarketTick(tick(seq)).encode();
            link.send(id, &payload).unwrap();
        }
    };
    let mut first = receiving(&got);
    assert!(link.wait_connected(Some(WAIT)).unwrap());
    send(0..10);
    assert!(link.flush(Some(WAIT)).unwrap());
    let deadline = Instant::now() + WAIT;
    while got.lock().unwrap().len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    first.close(); // the peer goes away; the link notices while idle
    let deadline = Instant::now() + WAIT;
    while link.connected() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!link.connected(), "the link did not notice its peer left");
    send(10..20); // queued while nobody listens
    std::thread::sleep(Duration::from_millis(50));
    let mut second = receiving(&got);
    Link::close(&link, Some(WAIT)); // reconnects, sends the queue, ends cleanly
    second.close();
    assert_eq!(*got.lock().unwrap(), (0..20).collect::<Vec<_>>());
    assert_eq!((link.sent(), link.lost(), link.connects()), (20, 0, 2));
}
