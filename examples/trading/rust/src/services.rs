//! The two Rust services.  Their rules, operation for operation, are those
//! of `MarketData` and `Execution` in examples/trading/reference.py.

use std::time::Duration;

use mycelium_shm::bus::{log_prefix, BoxError, Context, Envelope, Service};
use serde_json::Value;

use crate::finish;
use crate::messages::{EndOfFills, EndOfOrders, EndOfTicks, Fill, MarketTick, OrderRequest};
use crate::sim::{
    fill_record, order_record, percentiles, price, venue_fills, Fnv64, Market, DEFAULT_SYMBOLS,
};

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the
/// machine, so a tick's timestamp and an order's arrival in another process
/// can be subtracted.
pub fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call; CLOCK_MONOTONIC exists on every Linux, so the call cannot fail.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

fn config_u64(cfg: &Value, key: &str, default: u64) -> Result<u64, BoxError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            v.as_u64().ok_or_else(|| format!("config {key}: expected a non-negative integer, got {v}").into())
        }
    }
}

fn config_f64(cfg: &Value, key: &str, default: f64) -> Result<f64, BoxError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_f64().ok_or_else(|| format!("config {key}: expected a number, got {v}").into()),
    }
}

fn config_symbols(cfg: &Value) -> Result<Vec<String>, BoxError> {
    match cfg.get("symbols") {
        None | Some(Value::Null) => Ok(DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect()),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("config symbols: {v} is not a string").into())
            })
            .collect(),
        Some(v) => Err(format!("config symbols: expected a non-empty list of strings, got {v}").into()),
    }
}

/// One log line on stderr, prefixed with the node's name (the node contract).
fn log(text: &str) {
    use std::io::Write;
    let line = format!("{}: {}\n", log_prefix(), text.replace('\n', " | "));
    // One write per line, so lines of concurrent threads do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// One `TAG {json}` line on stdout.
fn emit(tag: &str, json: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout must not fail the service: the summary is advisory.
    let _ = writeln!(out, "{tag} {json}");
    let _ = out.flush();
}

/// The seeded feed: `ticks` MarketTicks, one every `interval_us`
/// microseconds (late ticks go out at once), then EndOfTicks.  After the
/// first tick it waits (up to `open_timeout_ms`) until that tick has left
/// the process, then paces the rest from there.
#[derive(Debug)]
pub struct MarketData {
    ticks: u64,
    seed: u64,
    symbols: Vec<String>,
    interval_ns: i64,
    open_timeout_ms: u64,
}

impl MarketData {
    /// Build from the topology's config (`ticks`, `seed`, `symbols`,
    /// `interval_us`, `open_timeout_ms`).
    pub fn from_config(cfg: &Value) -> Result<MarketData, BoxError> {
        finish::register("market_data");
        Ok(MarketData {
            ticks: config_u64(cfg, "ticks", 10_000)?,
            seed: config_u64(cfg, "seed", 7)?,
            symbols: config_symbols(cfg)?,
            interval_ns: i64::try_from(config_u64(cfg, "interval_us", 100)?)? * 1000,
            open_timeout_ms: config_u64(cfg, "open_timeout_ms", 10_000)?,
        })
    }
}

impl Service for MarketData {
    fn on_start(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let ticks = ctx.publisher::<MarketTick>();
        let mut market = Market::new(self.seed, &self.symbols);
        let mut start = monotonic_ns();
        for n in 0..self.ticks {
            if ctx.stopping() {
                return Ok(());
            }
            if n == 1 {
                // The feed opens once its first tick has left this process,
                // i.e. the link to the strategy's node is attached (which
                // waits for that node to exist), so the latencies measure
                // the running pipeline rather than the processes starting.
                // Flushed in slices, so that a stop request is seen at once.
                let deadline = monotonic_ns() + self.open_timeout_ms as i64 * 1_000_000;
                while !ctx.bus().flush(Some(Duration::from_millis(20)))? {
                    if ctx.stopping() {
                        return Ok(());
                    }
                    if monotonic_ns() > deadline {
                        log(&format!(
                            "market_data: the first tick did not leave within {} ms; going on",
                            self.open_timeout_ms
                        ));
                        break;
                    }
                }
                start = monotonic_ns() - self.interval_ns;
            }
            let delay = start + n as i64 * self.interval_ns - monotonic_ns();
            if delay > 0 {
                std::thread::sleep(Duration::from_nanos(delay as u64));
            }
            let q = market.next_quote();
            ticks.publish(MarketTick {
                symbol: market.symbols()[q.symbol].clone(),
                seq: q.seq,
                ts_ns: monotonic_ns(),
                bid: price(q.bid),
                ask: price(q.ask),
                bid_size: q.bid_size,
                ask_size: q.ask_size,
            })?;
        }
        ctx.publish(EndOfTicks { count: self.ticks })?;
        emit("MARKET_DATA", &format!("{{\"ticks\": {}}}", self.ticks));
        if finish::done("market_data") {
            ctx.request_stop();
        }
        Ok(())
    }

    fn handle(&mut self, _ctx: &Context, msg: &Envelope) -> Result<(), BoxError> {
        Err(format!("market_data consumes nothing, got {}", msg.name()).into())
    }
}

/// The simulated venue: fills each order against the replayed feed, keeps
/// the run's checksum and the tick-to-order latencies.
#[derive(Debug)]
pub struct Execution {
    market: Market,
    latency_ticks: u64,
    lot_units: f64,
    fee_rate: f64,
    checksum: Fnv64,
    fills_checksum: Fnv64,
    latencies: Vec<i64>,
    orders: u64,
    fills: u64,
}

impl Execution {
    /// Build from the topology's config (`seed`, `symbols`: those of market
    /// data; `latency_ticks`, `lot_units`, `fee_rate`).
    pub fn from_config(cfg: &Value) -> Result<Execution, BoxError> {
        finish::register("execution");
        Ok(Execution {
            market: Market::new(config_u64(cfg, "seed", 7)?, &config_symbols(cfg)?),
            latency_ticks: config_u64(cfg, "latency_ticks", 3)?,
            lot_units: config_f64(cfg, "lot_units", 100000.0)?,
            fee_rate: config_f64(cfg, "fee_rate", 0.00002)?,
            checksum: Fnv64::default(),
            fills_checksum: Fnv64::default(),
            latencies: Vec::with_capacity(1 << 16),
            orders: 0,
            fills: 0,
        })
    }

    fn on_order(&mut self, ctx: &Context, order: &OrderRequest) -> Result<(), BoxError> {
        self.latencies.push(monotonic_ns() - order.tick_ts_ns);
        self.orders += 1;
        self.checksum.update(order_record(order).as_bytes());
        let quote =
            self.market.quote_after(order.tick_seq + self.latency_ticks, &order.symbol).ok_or_else(|| {
                format!("order {}: the venue does not trade {:?}", order.order_id, order.symbol)
            })?;
        for part in
            venue_fills(&quote, order.side, order.qty, order.limit_price, self.lot_units, self.fee_rate)
        {
            self.fills += 1;
            let fill = Fill {
                order_id: order.order_id,
                exec_id: self.fills,
                symbol: order.symbol.clone(),
                side: order.side,
                qty: part.qty,
                price: part.price,
                fee: part.fee,
                leaves: part.leaves,
                last: part.last,
                tick_seq: order.tick_seq,
            };
            let record = fill_record(&fill);
            self.checksum.update(record.as_bytes());
            self.fills_checksum.update(record.as_bytes());
            ctx.publish(fill)?;
        }
        Ok(())
    }

    fn on_end(&mut self, ctx: &Context, end: &EndOfOrders) -> Result<(), BoxError> {
        if end.count != self.orders {
            log(&format!("execution: EndOfOrders says {} orders, {} arrived", end.count, self.orders));
        }
        ctx.publish(EndOfFills { count: self.fills })?;
        let latency = match percentiles(&mut self.latencies) {
            Some([p50, p99, p999, max]) => {
                format!("{{\"max\": {max}, \"p50\": {p50}, \"p99\": {p99}, \"p99.9\": {p999}}}")
            }
            None => "{}".to_owned(),
        };
        emit(
            "TRADING",
            &format!(
                "{{\"checksum\": \"{}\", \"fills\": {}, \"fills_checksum\": \"{}\", \"latency_us\": {latency}, \"orders\": {}}}",
                self.checksum.hexdigest(),
                self.fills,
                self.fills_checksum.hexdigest(),
                self.orders
            ),
        );
        if finish::done("execution") {
            ctx.request_stop();
        }
        Ok(())
    }
}

impl Service for Execution {
    fn handle(&mut self, ctx: &Context, msg: &Envelope) -> Result<(), BoxError> {
        if let Some(order) = msg.get::<OrderRequest>() {
            self.on_order(ctx, order)
        } else if let Some(end) = msg.get::<EndOfOrders>() {
            self.on_end(ctx, end)
        } else {
            Err(format!("execution does not handle {}", msg.name()).into())
        }
    }
}
