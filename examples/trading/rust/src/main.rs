//! The Rust node of the trading example: the services `market_data` (the
//! seeded feed) and `execution` (the simulated venue), started by the
//! launcher as `trading_node --plan PLAN.json` with whichever of the two the
//! topology places on its node (see `examples/trading/README.md`).

#![deny(missing_docs)]

use std::process::ExitCode;

use mycelium_shm::bus::{node_main, Registry};

mod finish;
// Generated from ../trading.toml (python -m mycelium_shm.codegen --lang rust).
#[allow(missing_docs)]
#[rustfmt::skip]
mod messages;
mod services;
mod sim;

fn main() -> ExitCode {
    node_main(
        Registry::<messages::Message>::new()
            .service("market_data", services::MarketData::from_config)
            .service("execution", services::Execution::from_config),
    )
}
