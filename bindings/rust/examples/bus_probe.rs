//! The Rust probe node of the cross-language bus tests: the services `send`
//! and `recv` of tests/bus_probe.py (same names, config and output in every
//! language), run by [`node_main`] from the plan the launcher hands over.
//! The cross-language tests run it: tests/test_bus_matrix.py (mailbox links)
//! and tests/test_bus_broadcast_langs.py (plans with a broadcast
//! "publication" or "subscriptions").
//!
//! ```text
//! cargo build --release --example bus_probe
//! target/release/examples/bus_probe --plan PLAN.json   # or MYCELIUM_BUS_PLAN=PLAN.json
//! ```
//!
//! - `send`, config `{count, symbol, out}`: publishes `count` MarketTicks at
//!   start (tick `i`: `seq = i`, `ts_ns = 1_700_000_000_000_000_000 + i`,
//!   `bid = 1 + i/1024`, `ask = bid + 0.25`, `bid_size = i`,
//!   `ask_size = u32::MAX - i`), appends `sent <count>` to `out`, then idles
//!   until the node stops.
//! - `recv`, config `{out, panic_at?}`: appends
//!   `tick <symbol> <seq> <ts_ns> <bid> <ask> <bid_size> <ask_size>` to `out`
//!   for every MarketTick; with `panic_at = N` it panics on the tick of seq
//!   `N` instead (once per instance: the runtime restarts it and the stream
//!   goes on without that tick).
//!
//! The probe is built for two schemas: schemas/trading.toml and
//! tests/vectors/schema.toml (the same MarketTick, another digest), and runs
//! with the one whose digest the plan names, so the matrix can put two
//! compiled languages on a link with different schemas and see both refuse.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mycelium_shm::bus::{BoxError, Plan};
use serde_json::Value;

/// The messages of tests/vectors/schema.toml (generated code, shared with
/// the vector tests).
#[path = "../tests/vectors_schema/mod.rs"]
#[allow(dead_code)] // only MarketTick and the digest are used
#[rustfmt::skip]
mod vectors_schema;

const TS_BASE: i64 = 1_700_000_000_000_000_000;

/// Append one whole line to `path` (one write call).
fn append(path: &str, line: &str) -> Result<(), BoxError> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(line.as_bytes())?;
    Ok(())
}

fn string(config: &Value, key: &str) -> Result<String, BoxError> {
    config[key].as_str().map(str::to_owned).ok_or_else(|| format!("config.{key}: expected a string").into())
}

/// The services `send` and `recv` over the MarketTick and Message of one
/// generated schema module, and a `run()` serving them with [`node_main`].
macro_rules! probe {
    ($name:ident, $schema:path) => {
        mod $name {
            use std::process::ExitCode;

            use mycelium_shm::bus::{node_main, BoxError, Context, Envelope, Registry, Service};
            use serde_json::Value;
            use $schema::{MarketTick, Message};

            use super::{append, string, TS_BASE};

            /// Publishes `count` deterministic ticks at start.
            struct Send {
                count: u64,
                symbol: String,
                out: String,
            }

            impl Send {
                fn from_config(config: &Value) -> Result<Send, BoxError> {
                    Ok(Send {
                        count: config["count"].as_u64().ok_or("config.count: expected an integer")?,
                        symbol: string(config, "symbol")?,
                        out: string(config, "out")?,
                    })
                }
            }

            impl Service for Send {
                fn on_start(&mut self, ctx: &Context) -> Result<(), BoxError> {
                    let ticks = ctx.publisher::<MarketTick>();
                    for i in 0..self.count {
                        let bid = 1.0 + i as f64 / 1024.0;
                        ticks.publish(MarketTick {
                            symbol: self.symbol.clone(),
                            seq: i,
                            ts_ns: TS_BASE + i as i64,
                            bid,
                            ask: bid + 0.25,
                            bid_size: i as u32,
                            ask_size: u32::MAX - i as u32,
                        })?;
                    }
                    append(&self.out, &format!("sent {}\n", self.count))
                }

                fn handle(&mut self, _ctx: &Context, _msg: &Envelope) -> Result<(), BoxError> {
                    Ok(())
                }
            }

            /// Writes a line per tick.
            struct Recv {
                out: String,
                panic_at: Option<u64>,
            }

            impl Service for Recv {
                fn handle(&mut self, _ctx: &Context, msg: &Envelope) -> Result<(), BoxError> {
                    if let Some(t) = msg.get::<MarketTick>() {
                        if self.panic_at == Some(t.seq) {
                            panic!("recv: told to panic at seq {}", t.seq);
                        }
                        append(
                            &self.out,
                            &format!(
                                "tick {} {} {} {:?} {:?} {} {}\n",
                                t.symbol, t.seq, t.ts_ns, t.bid, t.ask, t.bid_size, t.ask_size
                            ),
                        )?;
                    }
                    Ok(())
                }
            }

            /// Run the node with this schema's services.
            pub fn run() -> ExitCode {
                node_main(
                    Registry::<Message>::new().service("send", Send::from_config).service("recv", |config| {
                        Ok(Recv { out: string(config, "out")?, panic_at: config["panic_at"].as_u64() })
                    }),
                )
            }
        }
    };
}

probe!(trading, mycelium_shm::generated);
probe!(vectors, crate::vectors_schema);

/// The plan's path as [`node_main`] finds it (`--plan PATH`, `--plan=PATH`
/// or `MYCELIUM_BUS_PLAN`).
fn plan_path() -> Option<PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--plan" {
            return args.next().map(PathBuf::from);
        }
        if let Some(p) = arg.strip_prefix("--plan=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("MYCELIUM_BUS_PLAN").map(PathBuf::from)
}

fn main() -> ExitCode {
    // The schema the plan names; anything unreadable goes to node_main, which reports it.
    let digest = plan_path().and_then(|p| Plan::load(&p).ok()).map(|plan| plan.schema_digest);
    if digest == Some(vectors_schema::SCHEMA_DIGEST) {
        return vectors::run();
    }
    // Any other digest: node_main checks it against trading's and exits 2 on a mismatch.
    trading::run()
}
