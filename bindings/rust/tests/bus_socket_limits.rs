//! The limits of the socket endpoints under hostile or stuck peers
//! (loopback only): connection churn leaves the endpoint serving with every
//! connection thread reaped; the frame deadline runs from a frame's first
//! byte and is checked on every read; partial frames share one byte budget;
//! a link closes promptly while its peer does not read.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mycelium_shm::bus::{
    Inbound, InboundMonitor, Link, SocketAddress, SocketInbound, SocketLink, FRAME_HEADER_SIZE, HELLO_SIZE,
    MAGIC, PROTOCOL_VERSION,
};

const DIGEST: [u8; 32] = [7; 32];

fn hello(max_payload: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(HELLO_SIZE);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    h.extend_from_slice(&max_payload.to_le_bytes());
    h.extend_from_slice(&DIGEST);
    h
}

fn header(payload_len: usize, type_id: u16) -> [u8; FRAME_HEADER_SIZE] {
    let mut h = [0u8; FRAME_HEADER_SIZE];
    h[..4].copy_from_slice(&((payload_len + FRAME_HEADER_SIZE) as u32).to_le_bytes());
    h[4..6].copy_from_slice(&type_id.to_le_bytes());
    h
}

/// Frames delivered (count and payload bytes).
#[derive(Default)]
struct Got {
    frames: AtomicU64,
    bytes: AtomicU64,
}

fn start(inbound: &mut SocketInbound) -> Arc<Got> {
    let got = Arc::new(Got::default());
    let g = got.clone();
    inbound
        .start(Arc::new(move |_t, payload: &[u8]| {
            g.bytes.fetch_add(payload.len() as u64, Ordering::Relaxed);
            g.frames.fetch_add(1, Ordering::Relaxed);
        }))
        .unwrap();
    got
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tcp_port(inbound: &SocketInbound) -> u16 {
    match inbound.local_address() {
        SocketAddress::Tcp(_, port) => port,
        other => panic!("not TCP: {other}"),
    }
}

fn temp_sock(label: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "rs-limits-{}-{}-{label}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A client connection of either family.
enum Client {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Client {
    fn connect(address: &SocketAddress) -> std::io::Result<Client> {
        match address {
            SocketAddress::Tcp(h, p) => TcpStream::connect((h.as_str(), *p)).map(Client::Tcp),
            SocketAddress::Unix(p) => UnixStream::connect(p).map(Client::Unix),
        }
    }
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Client::Tcp(s) => s.write_all(b),
            Client::Unix(s) => s.write_all(b),
        }
    }
}

// -- F1: churn ------------------------------------------------------------------

fn churn(address: SocketAddress, inbound: SocketInbound) {
    let mut inbound = inbound.max_connections(16);
    let monitor: Arc<InboundMonitor> = inbound.monitor();
    let got = start(&mut inbound);
    let done = Arc::new(AtomicBool::new(false));
    // Sample the live counts while the churn runs: never above the cap.
    let sampler = {
        let (monitor, done) = (monitor.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut max_threads, mut max_open) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                max_threads = max_threads.max(monitor.threads());
                max_open = max_open.max(monitor.open());
                std::thread::sleep(Duration::from_millis(1));
            }
            (max_threads, max_open)
        })
    };
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let address = address.clone();
            std::thread::spawn(move || {
                for n in 0..750 {
                    let Ok(mut c) = Client::connect(&address) else { continue };
                    if (n + i) % 3 == 0 {
                        let _ = c.write_all(&hello(1 << 20));
                    }
                    drop(c);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // Every connection ends and every thread is reaped, with no new
    // connection arriving to trigger it.
    wait_for("the connections to end and be reaped", Duration::from_secs(10), || {
        monitor.open() == 0 && monitor.threads() == 0
    });
    done.store(true, Ordering::Relaxed);
    let (max_threads, max_open) = sampler.join().unwrap();
    assert!(max_threads <= 16, "{max_threads} connection threads held (cap 16)");
    assert!(max_open <= 16, "{max_open} connections open (cap 16)");
    // Still serving.
    let link = SocketLink::new(address, Some(DIGEST));
    for i in 0..100u32 {
        link.send(1, &i.to_le_bytes()).unwrap();
    }
    assert!(link.flush(Some(Duration::from_secs(10))).unwrap());
    wait_for("the frames after the churn", Duration::from_secs(10), || {
        got.frames.load(Ordering::Relaxed) == 100
    });
    link.close(Some(Duration::from_secs(5)));
    inbound.close();
    assert_eq!(monitor.open(), 0);
    assert_eq!(monitor.threads(), 0);
}

#[test]
fn tcp_churn_reaps_every_connection_thread_and_keeps_serving() {
    let inbound = SocketInbound::bind(&SocketAddress::tcp("127.0.0.1", 0), Some(DIGEST)).unwrap();
    churn(inbound.local_address(), inbound);
}

#[test]
fn unix_churn_reaps_every_connection_thread_and_keeps_serving() {
    let path = temp_sock("churn");
    let inbound = SocketInbound::bind(&SocketAddress::unix(&path), Some(DIGEST)).unwrap();
    churn(inbound.local_address(), inbound);
    assert!(!path.exists());
}

// -- F2: the frame deadline ---------------------------------------------------------

/// Read the server's hello; then whether the server dropped the connection
/// within `within` (EOF or reset), reading nothing else.
fn dropped_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => panic!("the server sent data after its hello"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(_) => true,
    }
}

fn read_hello(s: &mut TcpStream) {
    let mut h = [0u8; HELLO_SIZE];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_exact(&mut h).unwrap();
}

#[test]
fn a_frame_begun_with_the_hello_gets_the_frame_deadline_not_the_handshake_one() {
    let mut inbound = SocketInbound::bind(&SocketAddress::tcp("127.0.0.1", 0), Some(DIGEST))
        .unwrap()
        .timeouts(Duration::from_millis(500), Duration::from_secs(4));
    let monitor = inbound.monitor();
    let got = start(&mut inbound);
    let mut s = TcpStream::connect(("127.0.0.1", tcp_port(&inbound))).unwrap();
    read_hello(&mut s);
    // The hello and the first bytes of a frame in one write.
    let payload = [5u8; 100];
    let mut first = hello(1 << 20);
    first.extend_from_slice(&header(payload.len(), 3));
    first.extend_from_slice(&payload[..10]);
    s.write_all(&first).unwrap();
    // Well past the handshake deadline, well within the frame deadline.
    assert!(!dropped_within(&mut s, Duration::from_millis(1500)), "dropped by the handshake deadline");
    s.write_all(&payload[10..]).unwrap();
    wait_for("the frame", Duration::from_secs(5), || got.frames.load(Ordering::Relaxed) == 1);
    assert_eq!(got.bytes.load(Ordering::Relaxed), 100);
    assert_eq!(monitor.timed_out(), 0, "{:?}", monitor.errors());
    // The connection still serves frames.
    let mut second = header(4, 3).to_vec();
    second.extend_from_slice(b"more");
    s.write_all(&second).unwrap();
    wait_for("the second frame", Duration::from_secs(5), || got.frames.load(Ordering::Relaxed) == 2);
    drop(s);
    inbound.close();
}

#[test]
fn a_dripped_frame_is_dropped_at_the_frame_deadline() {
    let frame_timeout = Duration::from_millis(1500);
    let mut inbound = SocketInbound::bind(&SocketAddress::tcp("127.0.0.1", 0), Some(DIGEST))
        .unwrap()
        .timeouts(Duration::from_secs(5), frame_timeout);
    let monitor = inbound.monitor();
    let got = start(&mut inbound);
    let mut s = TcpStream::connect(("127.0.0.1", tcp_port(&inbound))).unwrap();
    read_hello(&mut s);
    s.write_all(&hello(1 << 20)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let begun = Instant::now();
    s.write_all(&header(1 << 20, 3)).unwrap();
    // Drip a byte every 20 ms (so no read ever times out) until dropped.
    let mut dropped_after = None;
    while begun.elapsed() < Duration::from_secs(6) {
        if s.write_all(&[1]).is_err() {
            dropped_after = Some(begun.elapsed());
            break;
        }
        if dropped_within(&mut s, Duration::from_millis(20)) {
            dropped_after = Some(begun.elapsed());
            break;
        }
    }
    let after = dropped_after.expect("a frame dripped byte by byte was never dropped");
    assert!(after >= frame_timeout - Duration::from_millis(100), "dropped early, after {after:?}");
    assert!(after < frame_timeout + Duration::from_secs(1), "dropped late, after {after:?}");
    wait_for("the timeout to be reported", Duration::from_secs(5), || {
        monitor.timed_out() == 1 && !monitor.errors().is_empty()
    });
    assert!(monitor.errors()[0].contains("frame not completed within 1.5s"), "{:?}", monitor.errors());
    assert_eq!(got.frames.load(Ordering::Relaxed), 0);
    drop(s);
    inbound.close();
}

// -- F3: the shared budget of partial frames ---------------------------------------------

#[test]
fn partial_frames_share_one_budget_and_waiting_ones_resume() {
    const CONNS: usize = 12;
    const PAYLOAD: usize = 1 << 20;
    const BUDGET: usize = 1 << 20;
    let mut inbound = SocketInbound::bind(&SocketAddress::tcp("127.0.0.1", 0), Some(DIGEST))
        .unwrap()
        .max_buffered(BUDGET)
        .timeouts(Duration::from_secs(5), Duration::from_secs(20));
    let monitor = inbound.monitor();
    let got = start(&mut inbound);
    let port = tcp_port(&inbound);
    // Each client sends its hello, the header of a 1 MiB frame and half the
    // payload, waits for the go, then the rest.
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go_rx = Arc::new(std::sync::Mutex::new(go_rx));
    let halfway = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CONNS)
        .map(|i| {
            let (go_rx, halfway) = (go_rx.clone(), halfway.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                read_hello(&mut s);
                let payload = vec![i as u8; PAYLOAD];
                let mut first = hello(1 << 20);
                first.extend_from_slice(&header(PAYLOAD, 2));
                s.write_all(&first).unwrap();
                // Into the socket buffers: the server reads what its budget lets it.
                s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
                s.write_all(&payload[..PAYLOAD / 2]).unwrap();
                halfway.fetch_add(1, Ordering::Relaxed);
                go_rx.lock().unwrap().recv().unwrap();
                s.write_all(&payload[PAYLOAD / 2..]).unwrap();
                s
            })
        })
        .collect();
    // The server holds at most the budget beyond the reserves, however much
    // was announced and sent.
    wait_for("the clients to send half", Duration::from_secs(20), || {
        halfway.load(Ordering::Relaxed) == CONNS
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(monitor.buffered() as usize <= BUDGET, "{} bytes buffered", monitor.buffered());
    assert!(monitor.buffered() > 0);
    for _ in 0..CONNS {
        go_tx.send(()).unwrap();
    }
    let streams: Vec<TcpStream> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    wait_for("every frame", Duration::from_secs(20), || got.frames.load(Ordering::Relaxed) == CONNS as u64);
    assert_eq!(got.bytes.load(Ordering::Relaxed), (CONNS * PAYLOAD) as u64);
    assert!(monitor.peak_buffered() as usize <= BUDGET, "peak {} > budget {BUDGET}", monitor.peak_buffered());
    assert_eq!(monitor.buffered(), 0, "the budget is returned once the frames are complete");
    assert_eq!(monitor.timed_out(), 0, "{:?}", monitor.errors());
    drop(streams);
    inbound.close();
}

#[test]
fn a_connection_starved_of_budget_is_dropped_at_its_frame_deadline() {
    let mut inbound = SocketInbound::bind(&SocketAddress::tcp("127.0.0.1", 0), Some(DIGEST))
        .unwrap()
        .max_buffered(0)
        .timeouts(Duration::from_secs(5), Duration::from_secs(1));
    let monitor = inbound.monitor();
    let got = start(&mut inbound);
    let mut s = TcpStream::connect(("127.0.0.1", tcp_port(&inbound))).unwrap();
    read_hello(&mut s);
    let mut first = hello(1 << 20);
    first.extend_from_slice(&header(1 << 20, 2));
    first.extend_from_slice(&vec![0u8; 200 << 10]);
    s.write_all(&first).unwrap();
    let begun = Instant::now();
    assert!(dropped_within(&mut s, Duration::from_secs(4)), "never dropped");
    assert!(begun.elapsed() < Duration::from_secs(3));
    wait_for("the timeout to be counted", Duration::from_secs(5), || monitor.timed_out() == 1);
    assert_eq!(monitor.peak_buffered(), 0);
    assert_eq!(got.frames.load(Ordering::Relaxed), 0);
    inbound.close();
}

// -- F10: closing a link whose peer does not read ----------------------------------------

/// A peer that handshakes and then neither reads nor closes until dropped.
fn deaf_peer() -> (SocketAddress, std::thread::JoinHandle<()>, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&hello(1 << 20)).unwrap();
        let mut h = [0u8; HELLO_SIZE];
        s.read_exact(&mut h).unwrap();
        let _ = rx.recv(); // until the test is done
    });
    (SocketAddress::tcp("127.0.0.1", port), t, tx)
}

/// Run `close` in a thread; how long it took, or None after 15 s.
fn timed_close(link: Arc<SocketLink>, timeout: Option<Duration>) -> Option<Duration> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        link.close(timeout);
        let _ = tx.send(t0.elapsed());
    });
    rx.recv_timeout(Duration::from_secs(15)).ok()
}

#[test]
fn a_link_closes_promptly_while_its_peer_does_not_read() {
    let (address, peer, release) = deaf_peer();
    let link = Arc::new(SocketLink::new(address, Some(DIGEST)));
    assert!(link.wait_connected(Some(Duration::from_secs(5))).unwrap());
    // Far more than the socket buffers hold: the writing blocks, but never
    // send() (it queues).
    let (sent_tx, sent_rx) = mpsc::channel();
    let sender = link.clone();
    std::thread::spawn(move || {
        let payload = vec![9u8; 64 << 10];
        for _ in 0..512 {
            sender.send(4, &payload).unwrap();
        }
        let _ = sent_tx.send(());
    });
    sent_rx.recv_timeout(Duration::from_secs(10)).expect("send() blocked on a peer that does not read");
    std::thread::sleep(Duration::from_millis(300));
    assert!(link.pending() > 0);
    let took = timed_close(link.clone(), Some(Duration::from_millis(500)))
        .expect("close() hung while the peer did not read");
    assert!(took < Duration::from_secs(3), "close took {took:?}");
    let _ = release.send(());
    peer.join().unwrap();
}

#[test]
fn a_flushed_link_closes_promptly_while_its_peer_never_closes() {
    let (address, peer, release) = deaf_peer();
    let link = Arc::new(SocketLink::new(address, Some(DIGEST)));
    assert!(link.wait_connected(Some(Duration::from_secs(5))).unwrap());
    link.send(4, b"small").unwrap();
    assert!(link.flush(Some(Duration::from_secs(5))).unwrap());
    // Everything is written; the peer never reads it nor closes.
    let took = timed_close(link.clone(), None).expect("close() hung while the peer did not close");
    assert!(took < Duration::from_secs(4), "close took {took:?}");
    let _ = release.send(());
    peer.join().unwrap();
}
