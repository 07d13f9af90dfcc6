//! Log lines of a node: one line each on stderr, prefixed with the node name
//! (the node process contract of the multi-language bus).

use std::io::Write;
use std::sync::RwLock;

static PREFIX: RwLock<String> = RwLock::new(String::new());

/// Set the prefix of every bus log line (a node's name; [`node_main`]
/// sets it from the plan).
///
/// [`node_main`]: super::node_main
///
/// ```
/// mycelium_shm::bus::set_log_prefix("md");
/// assert_eq!(mycelium_shm::bus::log_prefix(), "md");
/// ```
pub fn set_log_prefix(prefix: &str) {
    let mut p = PREFIX.write().unwrap_or_else(|e| e.into_inner());
    p.clear();
    p.push_str(prefix);
}

/// The prefix of bus log lines (empty: `"mycelium"`).
pub fn log_prefix() -> String {
    PREFIX.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Write one log line to stderr: `"<node>: <text>"`, newlines in `text`
/// replaced so a line stays a line.
pub(crate) fn log_line(text: &str) {
    let prefix = log_prefix();
    let prefix = if prefix.is_empty() { "mycelium" } else { prefix.as_str() };
    let line = format!("{prefix}: {}\n", text.replace('\n', " | "));
    // One write call per line so lines of concurrent threads do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
