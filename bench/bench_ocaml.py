"""OCaml benchmarks: ping-pong round trips and one-way throughput.

    python -m bench.bench_ocaml [--quick] [--iters N] [--count N] [--size B] [-o FILE]

Runs the roles of ``bindings/ocaml/examples/bench.ml`` (built here with
``dune build``) and, for the Python side, the ``py-pong`` / ``py-recv``
roles of this module, each in its own process pinned to its own core
(``sched_setaffinity`` before exec; the pinger or sender on the first allowed
core, the ponger or receiver on the second):

| name           | mode         | processes                               |
|----------------|--------------|-----------------------------------------|
| `ocaml-ocaml`  | `pingpong`   | OCaml ping, OCaml pong                  |
| `ocaml-python` | `pingpong`   | OCaml ping, Python pong                 |
| `ocaml-ocaml`  | `throughput` | OCaml send, OCaml recv (``with_peek``)  |
| `ocaml-python` | `throughput` | OCaml send, Python recv (``read_many``) |

Prints one JSON row per line (and writes the list to ``-o FILE``), every row
with the keys ``name, mode, payload_bytes, p50_ns, p99_ns, p999_ns,
mean_ns, samples, msgs_per_s, bytes_per_s`` (null where a key does not
apply; the same keys as ``bench.bench_rust``).  Round-trip percentiles are
nearest-rank over ``iters`` measured rounds after ``warmup`` unmeasured ones,
and ``msgs_per_s`` of a ping-pong row is measured round trips per second;
throughput counts from the first frame the receiver sees to the stop frame.
Every channel is unlinked and every child reaped, also on failure.
``--quick`` is a smoke run of a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.lang_roles import ROOT, Language
from bench.lang_roles import main as run

PROJECT = ROOT / "bindings" / "ocaml"


def program() -> Path:
    """The dune build of ``examples/bench.ml``."""
    return PROJECT / "_build" / "default" / "examples" / "bench.exe"


def build() -> None:
    """Build the OCaml bench role program."""
    subprocess.run(
        ["dune", "build", "--root", str(PROJECT), "./examples/bench.exe"], cwd=PROJECT, check=True
    )


OCAML = Language("ocaml", "bench.bench_ocaml", program, build)


def main(argv: Sequence[str] | None = None) -> int:
    return run(OCAML, __doc__ or "", argv)


if __name__ == "__main__":
    sys.exit(main())
