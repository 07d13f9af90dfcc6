//! Helpers shared by the examples: argument parsing, schema selection and
//! error reporting.  Not an example itself.

#![allow(dead_code)] // each example uses a different part

#[allow(dead_code)]
#[rustfmt::skip]
#[path = "../../tests/vectors_schema/mod.rs"]
pub mod vectors_schema;

/// Exit status of an example that failed on a channel or codec error; the
/// error's kind and detail go to stderr as `error: <Kind>: <detail>`.
pub const EXIT_CHANNEL_ERROR: i32 = 2;
/// Exit status for bad command-line arguments.
pub const EXIT_USAGE: i32 = 64;

/// Print `usage` and exit with [`EXIT_USAGE`].
pub fn usage(usage: &str) -> ! {
    eprintln!("usage: {usage}");
    std::process::exit(EXIT_USAGE)
}

/// Print the error as `error: <Kind>: <detail>` and exit with
/// [`EXIT_CHANNEL_ERROR`].  The kind names match the Python exceptions
/// (`SchemaMismatch`, `ChannelNotFound`, ...), which the tests look for.
/// Takes a [`mycelium_shm::Error`] or a [`mycelium_shm::BatchError`]
/// (which adds how many frames of the batch were written).
pub fn die(context: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("error: {context}: {err}");
    std::process::exit(EXIT_CHANNEL_ERROR)
}

/// Print `error: <context>: <message>` and exit with [`EXIT_CHANNEL_ERROR`]
/// (for failures that are not a [`mycelium_shm::Error`], such as a timeout).
pub fn fail(context: &str, message: &str) -> ! {
    eprintln!("error: {context}: {message}");
    std::process::exit(EXIT_CHANNEL_ERROR)
}

/// Positional arguments and `--key value` options.
pub struct Args {
    /// Arguments not starting with `--`, in order.
    pub positional: Vec<String>,
    options: Vec<(String, String)>,
}

impl Args {
    /// Parse `std::env::args()`; every `--key` takes one value.
    pub fn parse(usage_text: &str) -> Args {
        let mut positional = Vec::new();
        let mut options = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            if let Some(key) = a.strip_prefix("--") {
                match it.next() {
                    Some(v) => options.push((key.to_owned(), v)),
                    None => usage(usage_text),
                }
            } else {
                positional.push(a);
            }
        }
        Args { positional, options }
    }

    /// The value of `--key`, if given.
    pub fn opt(&self, key: &str) -> Option<&str> {
        self.options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `--key` parsed, or `default`.
    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T, usage_text: &str) -> T {
        match self.opt(key) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| usage(usage_text)),
        }
    }

    /// Positional argument `i` parsed.
    pub fn pos<T: std::str::FromStr>(&self, i: usize, usage_text: &str) -> T {
        self.positional.get(i).and_then(|v| v.parse().ok()).unwrap_or_else(|| usage(usage_text))
    }
}

/// The schema digest selected by `--schema trading|vectors` (default
/// trading), or `--digest <64 hex digits>` to claim any digest (used by the
/// schema-mismatch tests).
pub fn digest(args: &Args, usage_text: &str) -> [u8; 32] {
    if let Some(hex) = args.opt("digest") {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        return bytes.try_into().unwrap_or_else(|_| usage(usage_text));
    }
    match args.opt("schema").unwrap_or("trading") {
        "trading" => mycelium_shm::generated::SCHEMA_DIGEST,
        "vectors" => vectors_schema::SCHEMA_DIGEST,
        _ => usage(usage_text),
    }
}
