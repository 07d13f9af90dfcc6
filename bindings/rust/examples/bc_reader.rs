//! A broadcast reader checking what `tests/workers.py bc-writer` writes:
//! the Rust twin of `workers.py bc-reader`, used by the cross-language
//! broadcast tests (tests/test_broadcast_langs.py).
//!
//! ```text
//! cargo run --example bc_reader -- CHANNEL CURSOR POLICY TOTAL IDLE_S [--mode batch|peek]
//! ```
//!
//! Attaches to the broadcast channel CHANNEL with the durable cursor CURSOR
//! and POLICY (`tethered` or `lossy`), prints `ready`, then reads until
//! TOTAL frames were seen or nothing came for IDLE_S seconds: by copy, 256
//! frames per call (`--mode batch`, the default), or zero-copy one frame at
//! a time (`--mode peek`, each view checked for overwrites after use).
//! Every frame of writer W with sequence number S has type id 1 + W and the
//! payload `W (u32 LE) | S (u64 LE) | pattern[start .. start + size]`,
//! `pattern` being the bytes 0..=255 repeated and `start = (31 W + 7 S) % 251`.
//! Prints one JSON line: `frames` (intact frames in order), `gaps` (frames
//! skipped per the sequence numbers), `bad` (corrupt or out of order),
//! `lost`, `laps` and `untethers` (the reader's own counts), `lapped_views`
//! (peeked views overwritten while held).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{die, Args};
use mycelium_shm::{Batch, Error, Options, Policy, ReaderOptions, ShmReader};

const USAGE: &str = "bc_reader CHANNEL CURSOR POLICY TOTAL IDLE_S [--mode batch|peek]";

/// Per-writer bookkeeping of what arrived, as `bc-reader` keeps it.
#[derive(Default)]
struct Tally {
    next: HashMap<u32, u64>,
    frames: u64,
    gaps: u64,
    bad: u64,
}

/// A frame's `(writer, seq)` if its type id and bytes are intact.
fn verdict(type_id: u16, p: &[u8]) -> Option<(u32, u64)> {
    let (writer, seq) = header(p)?;
    (u32::from(type_id) == writer + 1 && body_ok(writer, seq, &p[12..])).then_some((writer, seq))
}

impl Tally {
    /// Count one frame, checked by [`verdict`]: bad, or its place in its
    /// writer's order.
    fn frame(&mut self, verdict: Option<(u32, u64)>) {
        let Some((writer, seq)) = verdict else {
            self.bad += 1;
            return;
        };
        let expect = self.next.get(&writer).copied().unwrap_or(0);
        if seq < expect {
            self.bad += 1;
        }
        self.gaps += seq.saturating_sub(expect);
        self.next.insert(writer, seq + 1);
        self.frames += 1;
    }
}

fn header(p: &[u8]) -> Option<(u32, u64)> {
    let writer = u32::from_le_bytes(p.get(..4)?.try_into().ok()?);
    let seq = u64::from_le_bytes(p.get(4..12)?.try_into().ok()?);
    Some((writer, seq))
}

/// `bc_payload`'s bytes after the header: `(start + i) % 256`, within the
/// 17 repetitions of the 256-byte pattern.
fn body_ok(writer: u32, seq: u64, body: &[u8]) -> bool {
    let start = ((u64::from(writer) * 31 + seq * 7) % 251) as usize;
    start + body.len() <= 256 * 17 && body.iter().enumerate().all(|(i, &b)| b == ((start + i) % 256) as u8)
}

fn main() {
    let args = Args::parse(USAGE);
    if args.positional.len() != 5 {
        common::usage(USAGE);
    }
    let name = &args.positional[0];
    let policy: Policy = args.positional[2].parse().unwrap_or_else(|e| die("policy", e));
    let total: u64 = args.pos(3, USAGE);
    let idle_s: f64 = args.pos(4, USAGE);
    let idle = Some(Duration::from_secs_f64(idle_s));
    let peek = match args.opt("mode").unwrap_or("batch") {
        "batch" => false,
        "peek" => true,
        _ => common::usage(USAGE),
    };
    let cursor = ReaderOptions::new().cursor(&args.positional[1]).policy(policy);
    let mut r = ShmReader::attach_with(name, &Options::new(), &cursor).unwrap_or_else(|e| die("attach", e));
    println!("ready");

    let mut tally = Tally::default();
    let mut lapped_views = 0u64;
    let mut batch = Batch::new(256, 1 << 20);
    while tally.frames < total {
        if peek {
            // Checked in place; the verdict counts only if the view was not
            // overwritten meanwhile.
            match r.peek_with(idle, |view| verdict(view.type_id(), view)) {
                Ok(Some(v)) => tally.frame(v),
                Ok(None) => break,
                // Overwritten while held: its bytes are not the frame's.
                Err(Error::Lapped(_)) => lapped_views += 1,
                Err(e) => die("peek", e),
            }
        } else {
            let n = r.read_batch(&mut batch, idle).unwrap_or_else(|e| die("read", e));
            if n == 0 {
                break;
            }
            for (type_id, p) in batch.iter() {
                tally.frame(verdict(type_id, p));
            }
        }
    }
    let info = r.cursor_info().unwrap_or_else(|e| die("cursor_info", e));
    println!(
        "{{\"frames\": {}, \"gaps\": {}, \"bad\": {}, \"lost\": {}, \"laps\": {}, \"untethers\": {}, \"lapped_views\": {}}}",
        tally.frames, tally.gaps, tally.bad, info.lost, info.laps, info.untethers, lapped_views
    );
}
