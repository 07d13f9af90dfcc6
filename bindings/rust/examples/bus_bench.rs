//! In-process publish-to-handler latency of the Rust bus (reference: about
//! 100 ns).  Prints one line per measurement.
//!
//! ```text
//! cargo run --release --example bus_bench [-- ROUNDS]
//! ```
//!
//! - `publish_to_handler`: the time from just before `Publisher::publish`
//!   to the first instruction of the handler (one clock, `Instant`), per
//!   message: p50/p99/p99.9 over ROUNDS messages (default 200000).
//! - `publish_loop`: ROUNDS publishes of a `MarketTick` to one handler,
//!   total time / ROUNDS (the cost of `publish` including the `Arc`).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mycelium_shm::bus::MessageBus;
use mycelium_shm::generated::{MarketTick, Message};

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let bus = MessageBus::with_schema::<Message>("bench");
    let base = Instant::now();
    let seen = Arc::new(AtomicU64::new(0));
    let stamp = seen.clone();
    bus.subscribe::<MarketTick, _>(move |tick| {
        let now = base.elapsed().as_nanos() as u64;
        stamp.store(now, Ordering::Relaxed);
        black_box(tick.seq);
    })
    .expect("subscribe");
    let ticks = bus.publisher::<MarketTick>();

    // Warm up, then time each publish from just before the call to the handler.
    for seq in 0..10_000 {
        ticks.publish(MarketTick { seq, ..Default::default() }).expect("publish");
    }
    let mut lat = Vec::with_capacity(rounds);
    for seq in 0..rounds as u64 {
        let msg = MarketTick { seq, ..Default::default() };
        let before = base.elapsed().as_nanos() as u64;
        ticks.publish(msg).expect("publish");
        lat.push(seen.load(Ordering::Relaxed).saturating_sub(before));
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "publish_to_handler rounds={rounds} p50_ns={} p99_ns={} p999_ns={}",
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );

    let start = Instant::now();
    for seq in 0..rounds as u64 {
        ticks.publish(MarketTick { seq, ..Default::default() }).expect("publish");
    }
    let per = start.elapsed().as_nanos() as f64 / rounds as f64;
    println!("publish_loop rounds={rounds} mean_ns={per:.1}");
    bus.close(None);
}
