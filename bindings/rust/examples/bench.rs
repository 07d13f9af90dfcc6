//! Benchmark roles driven by `bench/bench_rust.py` (one process per role,
//! pinned to a core by the driver with `taskset`).
//!
//! ```text
//! bench ping REQ REP [--iters N] [--warmup N] [--size BYTES]
//! bench pong REQ REP
//! bench send CHANNEL [--count N] [--size BYTES] [--batch N]
//! bench recv CHANNEL
//! ```
//!
//! All channels must exist (the driver creates them).  Frames are raw
//! (type id 1, `size` payload bytes); type id 65535 is the stop frame.
//!
//! - `ping` writes a frame to REQ and waits for the echo on REP, `iters`
//!   times after `warmup` unmeasured rounds, then sends the stop frame and
//!   prints one JSON object: `p50_ns`, `p99_ns`, `p999_ns`, `mean_ns`,
//!   `min_ns`, `max_ns`, `samples` (nearest-rank percentiles of the
//!   round-trip times).
//! - `pong` answers every REQ frame with the same payload on REP (zero-copy
//!   read, copy write) until the stop frame, which it forwards.
//! - `send` writes `count` frames (by `write_batch` when `batch` > 1), then
//!   the stop frame; prints `{"elapsed_ns": ...}`.
//! - `recv` reads until the stop frame; prints `frames`, `bytes`,
//!   `elapsed_ns` (first frame to stop frame), `msgs_per_s`, `bytes_per_s`.

mod common;

use std::time::{Duration, Instant};

use common::{die, fail, Args};
use mycelium_shm::{Options, ShmReader, ShmWriter};

const USAGE: &str = "bench ping REQ REP [--iters N] [--warmup N] [--size B] | bench pong REQ REP \
                     | bench send CH [--count N] [--size B] [--batch N] | bench recv CH";
const DATA: u16 = 1;
const STOP: u16 = 65535;

fn writer(name: &str) -> ShmWriter {
    ShmWriter::attach(name, &Options::new()).unwrap_or_else(|e| die("attach writer", e))
}

fn reader(name: &str) -> ShmReader {
    ShmReader::attach(name, &Options::new()).unwrap_or_else(|e| die("attach reader", e))
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ping(args: &Args) {
    let iters: usize = args.num("iters", 100_000, USAGE).max(1);
    let warmup: usize = args.num("warmup", 10_000, USAGE);
    let size: usize = args.num("size", 64, USAGE);
    let req = writer(&args.positional[1]);
    let mut rep = reader(&args.positional[2]);
    let payload = vec![0xA5u8; size];
    let mut samples = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let t0 = Instant::now();
        req.write(DATA, &payload, None).unwrap_or_else(|e| die("write", e));
        match rep.peek(Some(Duration::from_secs(10))) {
            Ok(Some(v)) => debug_assert_eq!(v.len(), size),
            Ok(None) => fail("read", "no echo within 10 s"),
            Err(e) => die("read", e),
        }
        let ns = t0.elapsed().as_nanos() as u64;
        if i >= warmup {
            samples.push(ns);
        }
    }
    req.write(STOP, b"", None).unwrap_or_else(|e| die("write stop", e));
    let _ = rep.read(Some(Duration::from_secs(10)));
    samples.sort_unstable();
    let mean = samples.iter().sum::<u64>() as f64 / samples.len() as f64;
    println!(
        "{{\"p50_ns\": {}, \"p99_ns\": {}, \"p999_ns\": {}, \"mean_ns\": {mean:.1}, \"min_ns\": {}, \"max_ns\": {}, \"samples\": {}}}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 0.999),
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    );
}

fn pong(args: &Args) {
    let mut req = reader(&args.positional[1]);
    let rep = writer(&args.positional[2]);
    loop {
        let view = match req.peek(None) {
            Ok(Some(v)) => v,
            Ok(None) | Err(mycelium_shm::Error::Interrupted(_)) => continue,
            Err(e) => die("read", e),
        };
        let type_id = view.type_id();
        rep.write(type_id, &view, None).unwrap_or_else(|e| die("write", e));
        if type_id == STOP {
            break;
        }
    }
}

fn send(args: &Args) {
    let count: usize = args.num("count", 2_000_000, USAGE);
    let size: usize = args.num("size", 64, USAGE);
    let batch: usize = args.num("batch", 1, USAGE).max(1);
    let w = writer(&args.positional[1]);
    let payload = vec![0x5Au8; size];
    let t0 = Instant::now();
    if batch == 1 {
        for _ in 0..count {
            w.write(DATA, &payload, None).unwrap_or_else(|e| die("write", e));
        }
    } else {
        let frames: Vec<(u16, &[u8])> = vec![(DATA, &payload[..]); batch];
        let mut left = count;
        while left > 0 {
            let n = left.min(batch);
            left -= w.write_batch(&frames[..n], None).unwrap_or_else(|e| die("write_batch", e));
        }
    }
    w.write(STOP, b"", None).unwrap_or_else(|e| die("write stop", e));
    println!("{{\"elapsed_ns\": {}}}", t0.elapsed().as_nanos());
}

fn recv(args: &Args) {
    let mut r = reader(&args.positional[1]);
    let mut frames: u64 = 0;
    let mut bytes: u64 = 0;
    let mut t0 = None;
    loop {
        let view = match r.peek(None) {
            Ok(Some(v)) => v,
            Ok(None) | Err(mycelium_shm::Error::Interrupted(_)) => continue,
            Err(e) => die("read", e),
        };
        let start = *t0.get_or_insert_with(Instant::now);
        if view.type_id() == STOP {
            let ns = start.elapsed().as_nanos().max(1) as f64;
            println!(
                "{{\"frames\": {frames}, \"bytes\": {bytes}, \"elapsed_ns\": {ns:.0}, \"msgs_per_s\": {:.1}, \"bytes_per_s\": {:.1}}}",
                frames as f64 * 1e9 / ns,
                bytes as f64 * 1e9 / ns
            );
            return;
        }
        frames += 1;
        bytes += view.len() as u64;
    }
}

fn main() {
    let args = Args::parse(USAGE);
    let want = |n: usize| {
        if args.positional.len() != n {
            common::usage(USAGE)
        }
    };
    match args.positional.first().map(String::as_str) {
        Some("ping") => {
            want(3);
            ping(&args)
        }
        Some("pong") => {
            want(3);
            pong(&args)
        }
        Some("send") => {
            want(2);
            send(&args)
        }
        Some("recv") => {
            want(2);
            recv(&args)
        }
        _ => common::usage(USAGE),
    }
}
