//! A node stops once every service it hosts has finished: each service
//! registers when it is built (the runtime builds every service of the node
//! before starting any) and reports when its stream has ended; the last one
//! asks the node to stop, which flushes every link on the way down.  The
//! same rule as `Finish` in trading_sim.py and `Sim.finished` in OCaml.

use std::collections::BTreeSet;
use std::sync::Mutex;

struct Services {
    registered: BTreeSet<&'static str>,
    done: BTreeSet<&'static str>,
}

static SERVICES: Mutex<Services> =
    Mutex::new(Services { registered: BTreeSet::new(), done: BTreeSet::new() });

/// A service of this process exists (idempotent: restarts register again).
pub fn register(name: &'static str) {
    SERVICES.lock().unwrap_or_else(|e| e.into_inner()).registered.insert(name);
}

/// `name` has finished; true if every registered service of this process has.
pub fn done(name: &'static str) -> bool {
    let mut s = SERVICES.lock().unwrap_or_else(|e| e.into_inner());
    s.done.insert(name);
    s.registered.is_subset(&s.done)
}
