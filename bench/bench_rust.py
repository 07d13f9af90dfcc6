"""Rust benchmarks: ping-pong round trips and one-way throughput.

    python -m bench.bench_rust [--quick] [--iters N] [--count N] [--size B] [-o FILE]

Runs the roles of ``bindings/rust/examples/bench.rs`` (built here with
``cargo build --release --examples``) and, for the Python side, the
``py-pong`` / ``py-recv`` roles of this module, each in its own process
pinned to its own core (``sched_setaffinity`` before exec; the pinger or
sender on the first allowed core, the ponger or receiver on the second):

| name          | mode         | processes                                   |
|---------------|--------------|---------------------------------------------|
| `rust-rust`   | `pingpong`   | Rust ping, Rust pong                        |
| `rust-python` | `pingpong`   | Rust ping, Python pong                      |
| `rust-rust`   | `throughput` | Rust send, Rust recv                        |
| `rust-python` | `throughput` | Rust send, Python recv (``read_many``)      |

Prints one JSON row per line (and writes the list to ``-o FILE``), every row
with the keys ``name, mode, payload_bytes, p50_ns, p99_ns, p999_ns,
mean_ns, samples, msgs_per_s, bytes_per_s`` (null where a key does not
apply).  Round-trip percentiles are nearest-rank over ``iters`` measured
rounds after ``warmup`` unmeasured ones; throughput counts from the first
frame the receiver sees to the stop frame.  Every channel is unlinked and
every child reaped, also on failure.  ``--quick`` is a smoke run of a few
seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.lang_roles import ROOT, Language
from bench.lang_roles import main as run

CRATE = ROOT / "bindings" / "rust"


def program() -> Path:
    """The release build of ``examples/bench.rs``."""
    target = CRATE / os.environ.get("CARGO_TARGET_DIR", "target")  # cargo runs in CRATE
    return target / "release" / "examples" / "bench"


def build() -> None:
    """Build the release examples (bench, echo, writer, reader)."""
    subprocess.run(
        ["cargo", "build", "--locked", "--release", "--examples", "--quiet"], cwd=CRATE, check=True
    )


RUST = Language("rust", "bench.bench_rust", program, build)


def main(argv: Sequence[str] | None = None) -> int:
    return run(RUST, __doc__ or "", argv)


if __name__ == "__main__":
    sys.exit(main())
