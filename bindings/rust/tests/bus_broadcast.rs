//! The Rust bus over broadcast channels, in one process: a `ShmPublication`
//! (one channel per publishing node) read by `ShmSubscription`s (one durable
//! cursor per consuming node).  A publish reaching K subscribers is one
//! write; a subscriber that starts late, or restarts, loses nothing; one
//! the publisher untethered counts what it lost; a schema mismatch is
//! refused on both sides; plans with "publication"/"subscriptions" parse.
//! (Across processes and languages: tests/test_bus_broadcast_langs.py.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mycelium_shm::bus::{
    Inbound, Link, MessageBus, Overflow, Plan, PublicationOptions, PublicationPlan, ShmPublication,
    ShmSubscription, Subscriber, SubscriptionPlan,
};
use mycelium_shm::codec::Schema;
use mycelium_shm::generated::{MarketTick, Message, SCHEMA_DIGEST};
use mycelium_shm::{
    inspect, inspect_cursors, Error, Options, ReaderOptions, ShmReader, ShmWriter, UnlinkGuard,
};

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
    format!("rs-bbc-{}-{}-{label}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn other_digest() -> [u8; 32] {
    let mut d = SCHEMA_DIGEST;
    d[0] ^= 0xff;
    d
}

fn small() -> PublicationOptions {
    PublicationOptions { capacity: 1 << 18, ..Default::default() }
}

/// The seqs of `n` ticks from `sub`, failing after WAIT.
fn seqs(sub: &Subscriber<Arc<MarketTick>>, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {} of {n} ticks arrived", got.len());
        if let Some(t) = sub.recv_timeout(left).expect("recv") {
            assert_eq!(*t, tick(t.seq), "tick {} arrived altered", t.seq);
            got.push(t.seq);
        }
    }
    got
}

/// A started node reading `channel` with cursor `node`, and its tick queue.
fn subscriber_node(channel: &str, node: &str) -> (MessageBus, Subscriber<Arc<MarketTick>>) {
    let bus = MessageBus::with_schema::<Message>(node);
    let sub = bus.subscriber::<MarketTick>(100_000, Overflow::Block).unwrap();
    bus.add_inbound(ShmSubscription::open(channel, node, bus.digest()).unwrap()).unwrap();
    bus.start().unwrap();
    (bus, sub)
}

#[test]
fn one_write_per_publish_reaches_three_subscribers_in_order() {
    let name = unique("three");
    let _guard = UnlinkGuard::new(&name);
    let feed = MessageBus::with_schema::<Message>("feed");
    let publication = ShmPublication::open(&name, &["a", "b", "c"], feed.digest(), &small()).unwrap();
    assert_eq!(publication.subscribers(), ["a", "b", "c"]);
    feed.add_link(publication, &["MarketTick"]).unwrap();
    let nodes: Vec<_> = ["a", "b", "c"].iter().map(|n| subscriber_node(&name, n)).collect();
    let total = 3000u64;
    let ticks = feed.publisher::<MarketTick>();
    for seq in 0..total {
        ticks.publish(tick(seq)).unwrap();
    }
    for (bus, sub) in &nodes {
        assert_eq!(seqs(sub, total as usize), (0..total).collect::<Vec<_>>(), "node {}", bus.name());
    }
    // Once, not once per subscriber.
    assert_eq!(inspect(&name).unwrap().stats.frames_written, total);
    let cursors = inspect_cursors(&name).unwrap();
    let mut names: Vec<&str> = cursors.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "b", "c"]);
    for c in &cursors {
        assert!(c.durable && c.tethered, "cursor {c:?}");
        assert_eq!((c.frames_read, c.lost), (total, 0), "cursor {}", c.name);
    }
    feed.close(None);
    for (bus, _) in nodes {
        bus.close(None);
    }
}

#[test]
fn a_cursor_held_for_an_instant_is_waited_for() {
    // A subscriber that finds its cursor held by another live reader for a
    // moment (here the test's own reader) tries again.
    let name = unique("held");
    let _guard = UnlinkGuard::new(&name);
    let feed = MessageBus::with_schema::<Message>("feed");
    feed.add_link(ShmPublication::open(&name, &["n"], feed.digest(), &small()).unwrap(), &["MarketTick"])
        .unwrap();
    let mut options = Options::new();
    options.schema_digest = feed.digest();
    let holder = ShmReader::attach_with(&name, &options, &ReaderOptions::new().cursor("n")).unwrap();
    let (node, sub) = subscriber_node(&name, "n"); // no error: not attached yet
    feed.publish(tick(1)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(holder);
    assert_eq!(seqs(&sub, 1), [1]);
    feed.close(None);
    node.close(None);
}

#[test]
fn frames_published_before_a_subscriber_starts_are_kept() {
    let name = unique("late");
    let _guard = UnlinkGuard::new(&name);
    let feed = MessageBus::with_schema::<Message>("feed");
    feed.add_link(ShmPublication::open(&name, &["late"], feed.digest(), &small()).unwrap(), &["MarketTick"])
        .unwrap();
    for seq in 0..50 {
        feed.publish(tick(seq)).unwrap();
    }
    let (late, sub) = subscriber_node(&name, "late");
    assert_eq!(seqs(&sub, 50), (0..50).collect::<Vec<_>>());
    feed.publish(tick(50)).unwrap();
    assert_eq!(seqs(&sub, 1), [50]);
    late.close(None);
    feed.close(None);
}

#[test]
fn a_subscription_waits_for_its_channel() {
    let name = unique("wait");
    let _guard = UnlinkGuard::new(&name);
    let node = MessageBus::with_schema::<Message>("node");
    let sub = node.subscriber::<MarketTick>(16, Overflow::Block).unwrap();
    let subscription = ShmSubscription::open(&name, "node", node.digest()).unwrap();
    assert!(!subscription.attached());
    node.add_inbound(subscription).unwrap();
    node.start().unwrap();
    std::thread::sleep(Duration::from_millis(50)); // a few attach attempts fail
    let publication = ShmPublication::open(&name, &["node"], Some(SCHEMA_DIGEST), &small()).unwrap();
    for seq in 0..5 {
        let (type_id, payload) = mycelium_shm::codec::Encode::try_encode(&tick(seq)).unwrap();
        publication.send(type_id, &payload).unwrap();
    }
    assert_eq!(seqs(&sub, 5), [0, 1, 2, 3, 4]);
    publication.close(None);
    assert!(!publication.connected());
    assert!(matches!(publication.send(1, b""), Err(Error::BusClosed(_))));
    node.close(None);
}

#[test]
fn a_restarted_subscriber_resumes_at_its_cursor() {
    let name = unique("resume");
    let _guard = UnlinkGuard::new(&name);
    let feed = MessageBus::with_schema::<Message>("feed");
    feed.add_link(ShmPublication::open(&name, &["r"], feed.digest(), &small()).unwrap(), &["MarketTick"])
        .unwrap();
    let (first, sub) = subscriber_node(&name, "r");
    for seq in 0..10 {
        feed.publish(tick(seq)).unwrap();
    }
    assert_eq!(seqs(&sub, 10), (0..10).collect::<Vec<_>>());
    first.close(None);
    for seq in 10..25 {
        feed.publish(tick(seq)).unwrap();
    }
    let (second, sub) = subscriber_node(&name, "r");
    assert_eq!(seqs(&sub, 15), (10..25).collect::<Vec<_>>());
    assert!(sub.recv_timeout(Duration::from_millis(100)).unwrap().is_none(), "a duplicate arrived");
    second.close(None);
    feed.close(None);
}

#[test]
fn a_reopened_publication_keeps_the_channel_and_a_live_cursor() {
    let name = unique("reopen");
    let _guard = UnlinkGuard::new(&name);
    let (node, sub) = {
        let first = ShmPublication::open(&name, &["x"], Some(SCHEMA_DIGEST), &small()).unwrap();
        let pair = subscriber_node(&name, "x");
        first.close(None);
        pair
    };
    // The publisher restarts while "x" reads: its cursor is busy, which is fine.
    let feed = MessageBus::with_schema::<Message>("feed");
    feed.add_link(ShmPublication::open(&name, &["x"], feed.digest(), &small()).unwrap(), &["MarketTick"])
        .unwrap();
    feed.publish(tick(1)).unwrap();
    assert_eq!(seqs(&sub, 1), [1]);
    node.close(None);
    feed.close(None);
}

#[test]
fn an_untethered_subscriber_counts_what_it_lost() {
    let name = unique("lost");
    let _guard = UnlinkGuard::new(&name);
    let opts =
        PublicationOptions { capacity: 4096, untether: Duration::from_millis(20), ..Default::default() };
    let feed = MessageBus::with_schema::<Message>("feed");
    feed.add_link(ShmPublication::open(&name, &["slow"], feed.digest(), &opts).unwrap(), &["MarketTick"])
        .unwrap();
    // Nobody reads "slow": once the ring is full the writer waits out the
    // untether window, then overwrites.
    let total = 400u64;
    for seq in 0..total {
        feed.publish(tick(seq)).unwrap();
    }
    // The endpoint alone (the bus would own it): deliver decodes and keeps the seqs.
    let got: Arc<Mutex<Vec<u64>>> = Arc::default();
    let g = got.clone();
    let mut subscription = ShmSubscription::open(&name, "slow", Some(SCHEMA_DIGEST)).unwrap();
    subscription
        .start(Arc::new(move |type_id, payload: &[u8]| {
            let Ok(Message::MarketTick(t)) = <Message as Schema>::decode(type_id, payload) else {
                panic!("frame of type {type_id} is not a MarketTick");
            };
            g.lock().unwrap().push(t.seq);
        }))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = subscription.stats();
        let n = got.lock().unwrap().len() as u64;
        if stats.lost > 0 && stats.frames + stats.lost == total && n == stats.frames {
            break;
        }
        assert!(Instant::now() < deadline, "got {n} frames, stats {stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    subscription.close();
    let got = got.lock().unwrap();
    assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
    assert_eq!(got.last(), Some(&(total - 1)));
    let cursor = inspect_cursors(&name).unwrap().into_iter().find(|c| c.name == "slow").unwrap();
    assert_eq!(cursor.lost, subscription.stats().lost);
    feed.close(None);
}

#[test]
fn a_schema_mismatch_is_refused_on_both_sides() {
    let name = unique("mm");
    let _guard = UnlinkGuard::new(&name);
    let publication = ShmPublication::open(&name, &["a"], Some(SCHEMA_DIGEST), &small()).unwrap();
    let err = ShmSubscription::open(&name, "a", Some(other_digest())).unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch(_)), "{err}");
    let err = ShmPublication::open(&name, &["a"], Some(other_digest()), &small()).unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch(_)), "{err}");
    publication.close(None);
    assert_eq!(inspect(&name).unwrap().stats.frames_written, 0);
}

#[test]
fn a_mailbox_channel_is_not_a_publication() {
    let name = unique("mailbox");
    let _guard = UnlinkGuard::new(&name);
    let _w = ShmWriter::create(&name, &mycelium_shm::Options::new().capacity(4096)).unwrap();
    let err = ShmPublication::open(&name, &["a"], None, &small()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
fn plans_carry_publication_and_subscriptions() {
    let base = r#""version": 1, "node": "feed", "services": [],
        "schema": {"path": "/s.toml", "digest": "00000000000000000000000000000000000000000000000000000000000000ff"}"#;
    let plan = Plan::parse(
        &format!(
            r#"{{{base}, "inbound": null, "links": [],
            "publication": {{"kind": "shm-broadcast", "name": "pipeline.feed", "capacity": 1048576,
                "subscribers": ["risk", "strategy"], "spare_readers": 1, "untether_ms": 10000,
                "types": ["MarketTick", "Stop"]}},
            "subscriptions": [{{"node": "md", "name": "pipeline.md", "cursor": "feed"}}]}}"#
        ),
        "inline",
    )
    .unwrap();
    assert_eq!(
        plan.publication,
        Some(PublicationPlan {
            name: "pipeline.feed".into(),
            capacity: 1 << 20,
            subscribers: vec!["risk".into(), "strategy".into()],
            spare_readers: 1,
            untether_ms: 10_000,
            types: vec!["MarketTick".into(), "Stop".into()],
        })
    );
    assert_eq!(
        plan.subscriptions,
        [SubscriptionPlan { node: "md".into(), name: "pipeline.md".into(), cursor: "feed".into() }]
    );
    for empty in
        [r#""publication": null, "subscriptions": []"#, r#""publication": null, "subscriptions": null"#]
    {
        let plan = Plan::parse(&format!("{{{base}, {empty}}}"), "inline").unwrap();
        assert_eq!((plan.publication, plan.subscriptions.len()), (None, 0));
    }
    let bad = Plan::parse(&format!(r#"{{{base}, "publication": {{"kind": "shm", "name": "x"}}}}"#), "inline")
        .unwrap_err();
    assert!(bad.to_string().contains("publication.kind"), "{bad}");
    let bad =
        Plan::parse(&format!(r#"{{{base}, "subscriptions": [{{"node": "md", "name": "x"}}]}}"#), "inline")
            .unwrap_err();
    assert!(bad.to_string().contains("subscriptions[0].cursor"), "{bad}");
}
