//! Compiles the C core (every `csrc/*.c`) into a static library linked into
//! this crate, plus a layout check that fails the build when the Rust
//! mirrors in `src/sys.rs` drift from the structs in `csrc/ring.h`.
//!
//! `csrc` is the crate's own directory: in the repository a symbolic link to
//! the repository's `csrc/` (one copy of the core, never out of sync); `cargo
//! package` and git dependencies carry the files it points to, so the crate
//! builds the same from a path, a git or a packaged dependency.

use std::path::{Path, PathBuf};

/// The core's translation units: every `*.c` directly in `csrc`, sorted so
/// the build is the same whatever order the directory lists them in.
/// (`amalgamation.h` includes them all for a one-unit build; it is a header
/// and is not compiled here.)
fn core_sources(csrc: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(csrc).unwrap_or_else(|e| {
        panic!(
            "mycelium-shm: cannot list {}: {e}; the crate's csrc (a link to the repository's csrc/) must hold the C core",
            csrc.display()
        )
    });
    let mut sources: Vec<PathBuf> = entries
        .map(|entry| entry.expect("read a csrc directory entry").path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "c"))
        .collect();
    sources.sort();
    sources
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let csrc = manifest.join("csrc");
    let csrc = csrc.canonicalize().unwrap_or(csrc);

    // The directory itself: a unit added or removed changes its listing.
    println!("cargo:rerun-if-changed={}", csrc.display());
    println!("cargo:rerun-if-changed=csrc_check");
    println!("cargo:rerun-if-changed=build.rs");

    let sources = core_sources(&csrc);
    if sources.is_empty() {
        panic!(
            "mycelium-shm: no C sources in {}; the crate's csrc (a link to the repository's csrc/) must hold the C core",
            csrc.display()
        );
    }
    for path in &sources {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    // The headers every unit includes (ring.h, ring_internal.h, ...).
    if let Ok(entries) = std::fs::read_dir(&csrc) {
        let mut headers: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "h"))
            .collect();
        headers.sort();
        for path in headers {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }

    cc::Build::new()
        .files(&sources)
        .file(manifest.join("csrc_check/layout.c"))
        .include(&csrc)
        .flag("-std=c11")
        .flag("-O2")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .warnings(false) // the explicit -Wall -Wextra -Werror above are the policy
        .compile("mycelium_ring");

    // shm_open lives in librt on glibc < 2.34; futex waits may use pthreads.
    println!("cargo:rustc-link-lib=rt");
    println!("cargo:rustc-link-lib=pthread");
}
