//! Echo peer: reads messages from a request channel, transforms each one and
//! writes it to a reply channel, until a `Stop` message.
//!
//! ```text
//! cargo run --example echo -- REQUEST REPLY [--schema trading|vectors]
//! ```
//!
//! Both channels must exist (the driver creates them); the echo attaches as
//! the reader of REQUEST and a writer of REPLY, both with the schema's digest
//! (a channel of another schema is refused: exit status 2, `SchemaMismatch`
//! on stderr).
//!
//! The transformation, applied to the decoded message before re-encoding:
//!
//! | message        | change                              |
//! |----------------|-------------------------------------|
//! | `MarketTick`   | `seq` + 1 (wrapping)                |
//! | `Signal`       | `tick_seq` + 1 (wrapping)           |
//! | `OrderRequest` | `order_id` + 1 (wrapping)           |
//! | `Fill`         | `order_id` + 1 (wrapping)           |
//! | `Stop`         | none; echoed, then the echo exits 0 |
//! | any other      | none (decoded and re-encoded as is) |
//!
//! A payload that does not decode is reported on stderr
//! (`decode error: <kind>: ...`) and answered with nothing; the echo goes on.
//! With `--schema vectors` every message of tests/vectors/schema.toml is
//! understood, so a driver can send every test vector through.

mod common;

use common::{die, Args};
use mycelium_shm::{Error, Options, ShmReader, ShmWriter};

const USAGE: &str = "echo REQUEST REPLY [--schema trading|vectors | --digest HEX]";

/// What to send back for one request, and whether it was the last.
struct Reply {
    type_id: u16,
    payload: Vec<u8>,
    stop: bool,
}

macro_rules! echo_rule {
    ($name:ident, $($schema:ident)::+) => {
        /// The documented transformation for the messages of one schema.
        #[allow(unreachable_patterns)]
        fn $name(type_id: u16, payload: &[u8]) -> mycelium_shm::Result<Reply> {
            use $($schema)::+::Message;
            let mut stop = false;
            let msg = match Message::decode(type_id, payload)? {
                Message::MarketTick(mut m) => {
                    m.seq = m.seq.wrapping_add(1);
                    Message::MarketTick(m)
                }
                Message::Signal(mut m) => {
                    m.tick_seq = m.tick_seq.wrapping_add(1);
                    Message::Signal(m)
                }
                Message::OrderRequest(mut m) => {
                    m.order_id = m.order_id.wrapping_add(1);
                    Message::OrderRequest(m)
                }
                Message::Fill(mut m) => {
                    m.order_id = m.order_id.wrapping_add(1);
                    Message::Fill(m)
                }
                Message::Stop(m) => {
                    stop = true;
                    Message::Stop(m)
                }
                other => other,
            };
            let (type_id, payload) = msg.try_encode()?;
            Ok(Reply { type_id, payload, stop })
        }
    };
}

echo_rule!(trading_rule, mycelium_shm::generated);
echo_rule!(vectors_rule, common::vectors_schema);

fn main() {
    let args = Args::parse(USAGE);
    if args.positional.len() != 2 {
        common::usage(USAGE);
    }
    let rule: fn(u16, &[u8]) -> mycelium_shm::Result<Reply> = match args.opt("schema") {
        Some("vectors") => vectors_rule,
        _ => trading_rule,
    };
    let opts = Options::new().schema_digest(common::digest(&args, USAGE));
    let mut requests =
        ShmReader::attach(&args.positional[0], &opts).unwrap_or_else(|e| die("attach request channel", e));
    let replies =
        ShmWriter::attach(&args.positional[1], &opts).unwrap_or_else(|e| die("attach reply channel", e));

    let mut answered: u64 = 0;
    loop {
        // Decode straight from the ring; the view is released before the
        // (possibly blocking) reply write.
        let reply = {
            let view = match requests.peek(None) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(Error::Interrupted(_)) => continue,
                Err(e) => die("read request", e),
            };
            rule(view.type_id(), view.payload())
        };
        match reply {
            Ok(r) => {
                if let Err(e) = replies.write(r.type_id, &r.payload, None) {
                    die("write reply", e);
                }
                answered += 1;
                if r.stop {
                    break;
                }
            }
            Err(Error::Decode(e)) => eprintln!("decode error: {e}"),
            Err(e) => die("encode reply", e),
        }
    }
    eprintln!("echo: answered {answered} messages");
}
