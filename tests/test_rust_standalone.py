"""The Rust crate used from a Cargo project of one's own, outside the checkout.

- ``cargo package`` carries the C core: the crate's ``csrc`` (a link to the
  repository's ``csrc/``) is packaged as regular files.
- A scratch crate in a temporary directory depends, by path, on the crate
  unpacked from that package (so nothing of the checkout but the crate's own
  files is reachable), generates the code of a schema of its own with
  ``python -m mycelium_shm codegen --lang rust``, and writes and reads frames
  through the generic ``write_message`` / ``read_message``: ``cargo run`` and
  ``cargo test`` pass with ``-D warnings``, ``cargo clippy`` too.

Offline when the registry cache holds the crate's dependencies (``cc``);
otherwise cargo fetches them from crates.io.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mycelium_shm.codegen.rust import is_standalone, render
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent
CRATE = ROOT / "bindings" / "rust"
MANIFEST = CRATE / "Cargo.toml"

CARGO = shutil.which("cargo")
needs_cargo = pytest.mark.skipif(CARGO is None, reason="cargo is not installed")

SCHEMA_TOML = """\
[[message]]
name = "Ping"
id = 10
doc = "A request."
fields = [
  { name = "seq", type = "u64", doc = "Sequence number." },
  { name = "note", type = "str" },
]

[[message]]
name = "Pong"
id = 11
fields = [
  { name = "seq", type = "u64" },
  { name = "took_ns", type = "[i64]" },
  { name = "ok", type = "bool" },
]
"""

CARGO_TOML = """\
[package]
name = "scratch"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
mycelium-shm = {{ path = "{crate}" }}

[workspace]
"""

LIB_RS = """\
//! A library exposing a schema of its own (missing docs are errors).
#![deny(missing_docs)]

/// The messages of schema.toml, generated.
pub mod schema;
"""

# Private module in a program that uses only some of the messages: no
# dead-code warnings either.
MAIN_RS = """\
mod schema;

use mycelium_shm::{unlink, Options, ShmReader, ShmWriter, UnlinkGuard};
use schema::{Message, Ping};

fn roundtrip(name: &str) -> mycelium_shm::Result<Message> {
    let _guard = UnlinkGuard::new(name);
    let opts = Options::new().capacity(1 << 16).schema::<Message>();
    let mut reader = ShmReader::create(name, &opts)?;
    let writer = ShmWriter::attach(name, &opts)?;
    writer.write_message(&Ping { seq: 7, note: "hello".into() }, None)?;
    let got = reader.read_message::<Message>(None)?.expect("a frame");
    unlink(name)?;
    Ok(got)
}

fn main() {
    let name = format!("scratch-main-{}", std::process::id());
    match roundtrip(&name) {
        Ok(Message::Ping(p)) if p.seq == 7 && p.note == "hello" => println!("scratch ok: {p:?}"),
        other => {
            eprintln!("scratch: unexpected {other:?}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::schema::{Message, Pong, SCHEMA_DIGEST};
    use mycelium_shm::{Options, Schema, ShmReader, ShmWriter, UnlinkGuard};

    #[test]
    fn ping_roundtrip() {
        let name = format!("scratch-test-ping-{}", std::process::id());
        match super::roundtrip(&name).unwrap() {
            Message::Ping(p) => assert_eq!((p.seq, p.note.as_str()), (7, "hello")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pong_through_the_enum_and_raw_frames() {
        let name = format!("scratch-test-pong-{}", std::process::id());
        let _guard = UnlinkGuard::new(&name);
        assert_eq!(<Message as Schema>::DIGEST, SCHEMA_DIGEST);
        let opts = Options::new().capacity(1 << 16).schema_digest(SCHEMA_DIGEST);
        let mut r = ShmReader::create(&name, &opts).unwrap();
        let w = ShmWriter::attach(&name, &opts).unwrap();
        let pong = Message::from(Pong { seq: 1, took_ns: vec![-1, 2], ok: true });
        w.write_message(&pong, None).unwrap();
        let (id, payload) = pong.encode();
        w.write(id, &payload, None).unwrap();
        assert_eq!(r.read_message::<Message>(None).unwrap(), Some(pong.clone()));
        let frame = r.read(None).unwrap().expect("a frame");
        assert_eq!(Message::decode(frame.type_id, &frame.payload).unwrap(), pong);
        w.write(99, b"", None).unwrap();
        assert!(r.read_message::<Message>(None).is_err());
    }
}
"""


def _cargo(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    proc = subprocess.run(
        [CARGO or "cargo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"cargo {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


@needs_cargo
def test_package_carries_the_c_core() -> None:
    """``cargo package --list`` names every csrc/*.c and *.h of the repository."""
    out = _cargo(
        ["package", "--list", "--allow-dirty", "--offline", "--manifest-path", str(MANIFEST)],
        ROOT,
        dict(os.environ),
    )
    listed = set(out.split())
    core = sorted(p.name for p in (ROOT / "csrc").iterdir() if p.suffix in (".c", ".h"))
    assert core and any(name.endswith(".c") for name in core)
    missing = [name for name in core if f"csrc/{name}" not in listed]
    assert not missing, f"cargo package leaves out {missing}:\n{out}"


def test_crate_csrc_is_the_repository_csrc() -> None:
    """The crate's csrc is the repository's (a link), so it cannot drift."""
    crate_csrc = CRATE / "csrc"
    assert crate_csrc.is_dir(), f"{crate_csrc} is missing"
    if crate_csrc.resolve() == (ROOT / "csrc").resolve():
        return
    # A copy instead of a link (e.g. a checkout without symlinks): same files.
    for src in (ROOT / "csrc").iterdir():
        if src.suffix in (".c", ".h"):
            copy = crate_csrc / src.name
            assert copy.is_file() and copy.read_bytes() == src.read_bytes(), f"{copy} differs"


def test_standalone_output_has_no_test_helpers() -> None:
    """Code for one's own crate: mod.rs only, no serde_json, dead code allowed."""
    model = Schema.from_toml_str(SCHEMA_TOML).model
    files = render(model, "schema.toml", standalone=True)
    assert list(files) == ["mod.rs"]
    mod_rs = files["mod.rs"]
    assert "json" not in mod_rs and "serde" not in mod_rs
    assert "#![allow(dead_code)]" in mod_rs
    assert "```" not in mod_rs  # no doc examples naming a path we cannot know
    assert "impl ::mycelium_shm::codec::Schema for Message {" in mod_rs


def test_standalone_is_the_default_outside_the_crate(tmp_path: Path) -> None:
    """The crate's own directories keep their JSON helpers; any other is standalone."""
    assert not is_standalone(CRATE / "src" / "generated")
    assert not is_standalone(CRATE / "tests" / "vectors_schema")
    assert is_standalone(tmp_path / "schema")
    own = tmp_path / "mine"
    (own / "src").mkdir(parents=True)
    (own / "Cargo.toml").write_text('[package]\nname = "mine"\nversion = "0.1.0"\n')
    assert is_standalone(own / "src" / "generated")


def _unpacked_crate(dest: Path, env: dict[str, str]) -> Path:
    """The crate as `cargo package` writes it, unpacked under ``dest``."""
    target = dest / "package-target"
    _cargo(
        [
            "package",
            "--allow-dirty",
            "--no-verify",
            "--offline",
            "--manifest-path",
            str(MANIFEST),
            "--target-dir",
            str(target),
        ],
        ROOT,
        env,
    )
    (crate_file,) = (target / "package").glob("mycelium-shm-*.crate")
    with tarfile.open(crate_file) as tar:
        if sys.version_info >= (3, 12):
            tar.extractall(dest / "unpacked", filter="data")
        else:  # pragma: no cover
            tar.extractall(dest / "unpacked")
    (crate,) = (dest / "unpacked").iterdir()
    assert (crate / "csrc" / "ring.h").is_file() and not (crate / "csrc").is_symlink()
    return crate


@needs_cargo
def test_scratch_crate_outside_the_repository(tmp_path: Path) -> None:
    """A crate of one's own, with its own schema, builds and passes with -D warnings."""
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = str(tmp_path / "target")
    env["RUSTFLAGS"] = "-D warnings"
    env["RUSTDOCFLAGS"] = "-D warnings"
    env.pop("CARGO_BUILD_TARGET_DIR", None)
    crate = _unpacked_crate(tmp_path, env)

    scratch = tmp_path / "scratch"
    (scratch / "src").mkdir(parents=True)
    (scratch / "Cargo.toml").write_text(CARGO_TOML.format(crate=crate.as_posix()))
    (scratch / "schema.toml").write_text(SCHEMA_TOML)
    (scratch / "src" / "lib.rs").write_text(LIB_RS)
    (scratch / "src" / "main.rs").write_text(MAIN_RS)
    gen = subprocess.run(
        [
            sys.executable,
            "-m",
            "mycelium_shm",
            "codegen",
            "--lang",
            "rust",
            "schema.toml",
            "-o",
            "src/schema",
        ],
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gen.returncode == 0, gen.stderr
    assert sorted(p.name for p in (scratch / "src" / "schema").iterdir()) == ["mod.rs"]

    # The lock file from the local registry cache when it has what is needed.
    lock = subprocess.run(
        [CARGO or "cargo", "generate-lockfile", "--offline"],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if lock.returncode != 0:
        _cargo(["generate-lockfile"], scratch, env)
    offline = ["--offline"] if lock.returncode == 0 else []

    out = _cargo(["run", "--quiet", *offline], scratch, env)
    assert "scratch ok" in out
    test_out = _cargo(["test", *offline], scratch, env)
    assert "2 passed" in test_out, test_out
    if shutil.which("cargo-clippy") is not None:
        _cargo(["clippy", "--all-targets", *offline, "--", "-D", "warnings"], scratch, env)
