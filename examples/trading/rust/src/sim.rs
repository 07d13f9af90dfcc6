//! The deterministic core of the Rust services: the seeded feed, the venue's
//! fill rule and the run's checksum.  Operation for operation the twin of
//! `examples/trading/trading_sim.py` (the tests compare the two bit for bit
//! through the checksum of a whole run).

use crate::messages::{Fill, OrderRequest};

/// Units of price per 1.0: prices are whole pips of 1e-5.
pub const PIP: f64 = 100000.0;
/// The symbols when the config names none.
pub const DEFAULT_SYMBOLS: [&str; 3] = ["EURUSD", "GBPUSD", "AUDUSD"];
/// Starting mid, in pips, of the i-th symbol (cycled).
const START_MIDS: [i64; 3] = [108_420, 126_500, 65_800];
/// No mid falls below this many pips.
const MIN_MID: i64 = 1_000;

/// A price in pips as the f64 every language computes: `p / 100000.0`.
pub fn price(p: i64) -> f64 {
    p as f64 / PIP
}

/// The nearest whole pip of a price: `floor(x * 100000 + 0.5)`.
pub fn pips(x: f64) -> i64 {
    (x * PIP + 0.5).floor() as i64
}

/// splitmix64 (Steele, Lea, Flood 2014): the feed's only randomness.
#[derive(Debug, Clone)]
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One tick of the feed, prices in pips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Feed sequence number.
    pub seq: u64,
    /// Index of the symbol in the market's list.
    pub symbol: usize,
    /// Best bid, pips.
    pub bid: i64,
    /// Best ask, pips.
    pub ask: i64,
    /// Lots at the bid.
    pub bid_size: u32,
    /// Lots at the ask.
    pub ask_size: u32,
}

/// The seeded feed (see `Market` in trading_sim.py for the rule).
#[derive(Debug, Clone)]
pub struct Market {
    symbols: Vec<String>,
    rng: SplitMix64,
    mid: Vec<i64>,
    last_ret: Vec<i64>,
    imb: Vec<i64>,
    quotes: Vec<Option<Quote>>,
    seq: u64,
}

impl Market {
    /// A feed of `symbols` (at least one) from `seed`.
    pub fn new(seed: u64, symbols: &[String]) -> Market {
        assert!(!symbols.is_empty(), "a market needs a symbol");
        let n = symbols.len();
        Market {
            symbols: symbols.to_vec(),
            rng: SplitMix64 { state: seed },
            mid: (0..n).map(|i| START_MIDS[i % START_MIDS.len()]).collect(),
            last_ret: vec![0; n],
            imb: vec![0; n],
            quotes: vec![None; n],
            seq: 0,
        }
    }

    /// The symbols, in feed order.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// Generate the next tick.
    pub fn next_quote(&mut self) -> Quote {
        let i = (self.seq % self.symbols.len() as u64) as usize;
        let u = self.rng.next();
        let noise = (u % 7) as i64 - 3;
        let ret = ((self.last_ret[i] >> 1) + noise + self.imb[i]).clamp(-10, 10);
        self.mid[i] = (self.mid[i] + ret).max(MIN_MID);
        let half = 1 + ((u >> 8) % 3) as i64;
        let bid_size = 1 + ((u >> 16) % 20) as u32;
        let ask_size = 1 + ((u >> 24) % 20) as u32;
        self.imb[i] = i64::from(bid_size > ask_size) - i64::from(bid_size < ask_size);
        self.last_ret[i] = ret;
        let quote = Quote {
            seq: self.seq,
            symbol: i,
            bid: self.mid[i] - half,
            ask: self.mid[i] + half,
            bid_size,
            ask_size,
        };
        self.quotes[i] = Some(quote.clone());
        self.seq += 1;
        quote
    }

    /// The latest quote of `symbol` once the feed has produced tick `seq`
    /// (only moves forward); None for a symbol the market does not have or
    /// that has not ticked yet.
    pub fn quote_after(&mut self, seq: u64, symbol: &str) -> Option<Quote> {
        let i = self.symbols.iter().position(|s| s == symbol)?;
        while self.seq <= seq {
            self.next_quote();
        }
        self.quotes[i].clone()
    }
}

/// One report of the venue for an order.
#[derive(Debug, Clone, PartialEq)]
pub struct VenueFill {
    /// Lots filled (0: none).
    pub qty: u32,
    /// Price (0.0 when nothing filled).
    pub price: f64,
    /// Fee.
    pub fee: f64,
    /// Lots still open after this report.
    pub leaves: u32,
    /// The order's last report.
    pub last: bool,
}

/// The venue's reports for an IOC limit order meeting `quote`: the touch
/// (its size), then one pip through it (twice its size), each level within
/// the limit, until the quantity is done; the rest is cancelled.  Nothing
/// filled: one report of qty 0.  `fee = qty * lot_units * price * fee_rate`.
pub fn venue_fills(
    quote: &Quote,
    side: i8,
    qty: u32,
    limit_price: f64,
    lot_units: f64,
    fee_rate: f64,
) -> Vec<VenueFill> {
    let limit = pips(limit_price);
    let (levels, buy) = if side > 0 {
        ([(quote.ask, quote.ask_size), (quote.ask + 1, 2 * quote.ask_size)], true)
    } else {
        ([(quote.bid, quote.bid_size), (quote.bid - 1, 2 * quote.bid_size)], false)
    };
    let mut remaining = qty;
    let mut parts: Vec<(u32, f64)> = Vec::new();
    for (level_price, size) in levels {
        let ok = if buy { level_price <= limit } else { level_price >= limit };
        if remaining == 0 || !ok {
            break;
        }
        let take = remaining.min(size);
        remaining -= take;
        parts.push((take, price(level_price)));
    }
    if parts.is_empty() {
        return vec![VenueFill { qty: 0, price: 0.0, fee: 0.0, leaves: qty, last: true }];
    }
    let mut left = qty;
    let count = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(n, (take, px))| {
            left -= take;
            VenueFill {
                qty: take,
                price: px,
                fee: f64::from(take) * lot_units * px * fee_rate,
                leaves: left,
                last: n + 1 == count,
            }
        })
        .collect()
}

/// The checksum record of an order (every field but the timestamp).
pub fn order_record(o: &OrderRequest) -> String {
    format!(
        "O,{},{},{},{},{:016x},{}\n",
        o.order_id,
        o.symbol,
        o.side,
        o.qty,
        o.limit_price.to_bits(),
        o.tick_seq
    )
}

/// The checksum record of a fill.
pub fn fill_record(f: &Fill) -> String {
    format!(
        "F,{},{},{},{},{},{:016x},{:016x},{},{},{}\n",
        f.order_id,
        f.exec_id,
        f.symbol,
        f.side,
        f.qty,
        f.price.to_bits(),
        f.fee.to_bits(),
        f.leaves,
        u8::from(f.last),
        f.tick_seq
    )
}

/// FNV-1a, 64 bits.
#[derive(Debug, Clone)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Fnv64 {
        Fnv64(0xCBF2_9CE4_8422_2325)
    }
}

impl Fnv64 {
    /// Hash more bytes.
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    /// 16 lowercase hex digits.
    pub fn hexdigest(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Latency percentiles in microseconds, nearest rank: `(p50, p99, p99.9, max)`.
pub fn percentiles(samples: &mut [i64]) -> Option<[f64; 4]> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let n = samples.len();
    let rank = |q: f64| {
        let index = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        (samples[index] as f64 / 100.0).round() / 10.0
    };
    Some([rank(0.5), rank(0.99), rank(0.999), rank(1.0)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_known_answer() {
        // splitmix64 seeded with 0: the reference implementation's first outputs.
        let mut r = SplitMix64 { state: 0 };
        assert_eq!(r.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn fnv_known_answer() {
        let mut h = Fnv64::default();
        h.update(b"a");
        assert_eq!(h.hexdigest(), "af63dc4c8601ec8c");
    }

    #[test]
    fn ioc_buy_takes_two_levels_then_cancels() {
        let q = Quote { seq: 0, symbol: 0, bid: 100, ask: 102, bid_size: 3, ask_size: 2 };
        let fills = venue_fills(&q, 1, 10, price(103), 100000.0, 0.00002);
        assert_eq!(
            fills.iter().map(|f| (f.qty, f.leaves, f.last)).collect::<Vec<_>>(),
            [(2, 8, false), (4, 4, true)]
        );
        let none = venue_fills(&q, -1, 3, price(101), 100000.0, 0.00002);
        assert_eq!(none, [VenueFill { qty: 0, price: 0.0, fee: 0.0, leaves: 3, last: true }]);
    }
}
