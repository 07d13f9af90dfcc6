"""Building the Rust and OCaml programs the cross-language tests start.

One place for the commands (cargo in release mode, dune), where they land,
and how a failed build fails the test (its last lines of output, never a
skip: CI has both toolchains, installed by the Makefile)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUST = ROOT / "bindings" / "rust"
OCAML = ROOT / "bindings" / "ocaml"

__all__ = ["OCAML", "RUST", "ocaml_exe", "rust_example"]


def _run(argv: list[str], cwd: Path, what: str) -> None:
    tool = argv[0]
    if shutil.which(tool) is None:
        hint = ": run scripts/install-ocaml.sh" if tool == "dune" else ""
        pytest.fail(f"{tool} is not installed{hint}")
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=1200, check=False)
    if proc.returncode != 0:
        pytest.fail(f"building {what} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")


def rust_example(name: str) -> Path:
    """bindings/rust/examples/NAME.rs built in release mode: its path."""
    _run(
        ["cargo", "build", "--locked", "--release", "--example", name, "--quiet"],
        RUST,
        f"the Rust example {name}",
    )
    target = RUST / os.environ.get("CARGO_TARGET_DIR", "target")  # cargo runs in RUST
    return target / "release" / "examples" / name


def ocaml_exe(*targets: str) -> list[Path]:
    """bindings/ocaml executables (dune targets such as
    "./bus/example/bus_probe.exe") built with dune: their paths."""
    _run(["dune", "build", "--root", str(OCAML), *targets], OCAML, "OCaml " + ", ".join(targets))
    return [OCAML / "_build" / "default" / t.removeprefix("./") for t in targets]
