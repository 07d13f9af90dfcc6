//! Compiles the C core (`csrc/ring.c`) into a static library linked into
//! this crate, plus a layout check that fails the build when the Rust
//! mirrors in `src/sys.rs` drift from the structs in `csrc/ring.h`.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let csrc = manifest.join("../../csrc");
    let csrc = csrc.canonicalize().unwrap_or(csrc);
    let ring_c = csrc.join("ring.c");

    println!("cargo:rerun-if-changed={}", csrc.display());
    println!("cargo:rerun-if-changed=csrc_check");
    println!("cargo:rerun-if-changed=build.rs");

    if !ring_c.exists() {
        panic!(
            "mycelium-shm: {} not found; the Rust binding builds the C core from the repository checkout",
            ring_c.display()
        );
    }

    cc::Build::new()
        .file(&ring_c)
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
