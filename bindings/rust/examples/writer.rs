//! One of several concurrent writers: writes COUNT sequence-numbered
//! `MarketTick`s and then one `Stop` into CHANNEL.
//!
//! ```text
//! cargo run --example writer -- CHANNEL WRITER_ID COUNT [--batch N] [--create CAPACITY]
//!     [--start-file PATH] [--schema trading|--digest HEX]
//! ```
//!
//! With `--start-file PATH`, the writer attaches, prints `ready` on stdout
//! and waits until PATH exists before writing, so that a driver can start
//! several writers at the same moment.
//!
//! The channel must exist, unless `--create CAPACITY` is given: then the
//! writer creates it (a ring of CAPACITY bytes) and leaves it behind when it
//! exits, for a reader to attach to later.
//!
//! Frame `i` (0-based) of writer `W` is
//! `MarketTick { symbol: "w<W>", seq: i, ts_ns: W, bid: i, ask: i + 0.5,
//! bid_size: W, ask_size: 0 }`; the last frame is
//! `Stop { last_seq: COUNT - 1, reason: "w<W>" }` (for COUNT = 0,
//! `last_seq` is `u64::MAX`).  A reader checks per-writer order and loss by
//! `symbol` and `seq`.  Writes block while the ring is full.  With
//! `--batch N`, ticks go out N at a time through `write_batch`.
//! Prints `writer <W>: wrote <COUNT> ticks` to stderr; exit status 2 on a
//! channel error (for instance `SchemaMismatch`).

mod common;

use std::io::Write;

use common::{die, Args};
use mycelium_shm::generated::{MarketTick, Stop};
use mycelium_shm::{Options, ShmWriter};

const USAGE: &str = "writer CHANNEL WRITER_ID COUNT [--batch N] [--create CAPACITY] [--start-file PATH] \
                     [--schema trading | --digest HEX]";

fn tick(writer: u32, i: u64) -> MarketTick {
    MarketTick {
        symbol: format!("w{writer}"),
        seq: i,
        ts_ns: i64::from(writer),
        bid: i as f64,
        ask: i as f64 + 0.5,
        bid_size: writer,
        ask_size: 0,
    }
}

fn main() {
    let args = Args::parse(USAGE);
    if args.positional.len() != 3 {
        common::usage(USAGE);
    }
    let channel = &args.positional[0];
    let writer_id: u32 = args.pos(1, USAGE);
    let count: u64 = args.pos(2, USAGE);
    let batch: usize = args.num("batch", 1, USAGE).max(1);
    let opts = Options::new().schema_digest(common::digest(&args, USAGE));
    let w = match args.opt("create") {
        None => ShmWriter::attach(channel, &opts),
        Some(_) => ShmWriter::create(channel, &opts.capacity(args.num("create", 0, USAGE))),
    }
    .unwrap_or_else(|e| die("open", e));
    if let Some(path) = args.opt("start-file") {
        println!("ready");
        let _ = std::io::stdout().flush();
        while !std::path::Path::new(path).exists() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    let mut i = 0;
    while i < count {
        let n = (count - i).min(batch as u64);
        if n == 1 {
            let t = tick(writer_id, i);
            w.write(MarketTick::TYPE_ID, &t.encode(), None).unwrap_or_else(|e| die("write", e));
            i += 1;
            continue;
        }
        let payloads: Vec<Vec<u8>> = (i..i + n).map(|s| tick(writer_id, s).encode()).collect();
        let mut frames: Vec<(u16, &[u8])> = payloads.iter().map(|p| (MarketTick::TYPE_ID, &p[..])).collect();
        while !frames.is_empty() {
            let done = w.write_batch(&frames, None).unwrap_or_else(|e| die("write_batch", e));
            frames.drain(..done);
            i += done as u64;
        }
    }
    let stop = Stop { last_seq: count.wrapping_sub(1), reason: format!("w{writer_id}") };
    w.write(Stop::TYPE_ID, &stop.encode(), None).unwrap_or_else(|e| die("write stop", e));
    eprintln!("writer {writer_id}: wrote {count} ticks");
}
