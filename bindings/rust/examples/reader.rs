//! Reader of a multi-writer run: attaches as the reader of CHANNEL, reads
//! `MarketTick`s until it has seen STOPS `Stop` messages, and checks that
//! every writer's ticks arrive in order with none lost or duplicated.
//!
//! ```text
//! cargo run --example reader -- CHANNEL STOPS [--timeout-ms MS] [--schema trading|--digest HEX]
//! ```
//!
//! Writers are told apart by the tick's `symbol` (see the `writer`
//! example); each writer's `seq` must run 0, 1, 2, ... and its `Stop` must
//! name the last `seq` it sent.  Prints one JSON line to stdout:
//! `{"frames": N, "writers": {"w0": COUNT, ...}, "errors": [..]}` and
//! exits 0 when `errors` is empty, 3 otherwise, 2 on a channel error (for
//! instance `SchemaMismatch`, or no frame within the timeout, default 30 s).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{die, fail, Args};
use mycelium_shm::generated::Message;
use mycelium_shm::{Error, Options, ShmReader};

const USAGE: &str = "reader CHANNEL STOPS [--timeout-ms MS] [--schema trading | --digest HEX]";

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn main() {
    let args = Args::parse(USAGE);
    if args.positional.len() != 2 {
        common::usage(USAGE);
    }
    let stops_wanted: usize = args.pos(1, USAGE);
    let timeout = Duration::from_millis(args.num("timeout-ms", 30_000, USAGE));
    let opts = Options::new().schema_digest(common::digest(&args, USAGE));
    let mut r = ShmReader::attach(&args.positional[0], &opts).unwrap_or_else(|e| die("attach", e));

    let mut next: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    let mut frames: u64 = 0;
    let mut stops = 0;
    while stops < stops_wanted {
        let msg = match r.read_message::<Message>(Some(timeout)) {
            Ok(Some(m)) => m,
            Ok(None) => fail("read", &format!("no frame within {timeout:?} ({stops} stops seen)")),
            Err(Error::Decode(e)) => {
                errors.push(format!("frame {frames}: {e}"));
                frames += 1;
                continue;
            }
            Err(e) => die("read", e),
        };
        frames += 1;
        match msg {
            Message::MarketTick(t) => {
                let expected = next.entry(t.symbol.clone()).or_insert(0);
                if t.seq != *expected {
                    errors.push(format!("{}: seq {} where {} was due", t.symbol, t.seq, expected));
                }
                *expected = t.seq + 1;
            }
            Message::Stop(s) => {
                stops += 1;
                let sent = next.get(&s.reason).copied().unwrap_or(0);
                if s.last_seq.wrapping_add(1) != sent {
                    errors.push(format!(
                        "{}: stop says last_seq {} but {} ticks arrived",
                        s.reason, s.last_seq, sent
                    ));
                }
            }
            other => errors.push(format!("unexpected {}", other.name())),
        }
    }
    let writers: Vec<String> = next.iter().map(|(k, v)| format!("{}: {v}", json_str(k))).collect();
    let errs: Vec<String> = errors.iter().map(|e| json_str(e)).collect();
    println!(
        "{{\"frames\": {frames}, \"writers\": {{{}}}, \"errors\": [{}]}}",
        writers.join(", "),
        errs.join(", ")
    );
    std::process::exit(if errors.is_empty() { 0 } else { 3 });
}
