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
| `ocaml-ocaml`  | `throughput` | OCaml send, OCaml recv (``read_batch``) |
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

import argparse
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "bindings" / "ocaml"
BENCH_EXE = PROJECT / "_build" / "default" / "examples" / "bench.exe"
STOP = 65535
DEADLINE_S = 300

ROW_KEYS = (
    "name",
    "mode",
    "payload_bytes",
    "p50_ns",
    "p99_ns",
    "p999_ns",
    "mean_ns",
    "samples",
    "msgs_per_s",
    "bytes_per_s",
)


def allowed_cores() -> list[int]:
    """The cores this process may run on, sorted."""
    return sorted(os.sched_getaffinity(0))


def build() -> None:
    """Build the OCaml bench role program."""
    subprocess.run(
        ["dune", "build", "--root", str(PROJECT), "./examples/bench.exe"], cwd=PROJECT, check=True
    )


# -- Python roles (run in their own processes) -------------------------------


def py_pong(req: str, rep: str) -> None:
    """Answer every REQ frame with the same frame on REP, until the stop frame."""
    from mycelium_shm import ShmReader, ShmWriter

    with ShmReader(req) as r, ShmWriter(rep) as w:
        read, write = r.read, w.write
        while True:
            frame = read(None)
            if frame is None:
                continue
            write(frame[0], frame[1])
            if frame[0] == STOP:
                return


def py_recv(channel: str) -> None:
    """Read frames in batches until the stop frame; print the rate as JSON."""
    from time import perf_counter_ns

    from mycelium_shm import ShmReader

    with ShmReader(channel) as r:
        frames = nbytes = 0
        t0 = None
        while True:
            batch = r.read_many(4096, timeout=1.0)
            if not batch:
                continue
            if t0 is None:
                t0 = perf_counter_ns()
            for type_id, payload in batch:
                if type_id == STOP:
                    ns = max(perf_counter_ns() - t0, 1)
                    print(
                        json.dumps(
                            {
                                "frames": frames,
                                "bytes": nbytes,
                                "elapsed_ns": ns,
                                "msgs_per_s": frames * 1e9 / ns,
                                "bytes_per_s": nbytes * 1e9 / ns,
                            }
                        )
                    )
                    return
                frames += 1
                nbytes += len(payload)


# -- driver ------------------------------------------------------------------


def _pinned(core: int):
    def pin() -> None:
        os.sched_setaffinity(0, {core})

    return pin


class Run:
    """Channels and child processes of one measurement; all cleaned up on exit."""

    def __init__(self, label: str, channels: int, capacity: int) -> None:
        from mycelium_shm import ShmWriter

        self.procs: list[subprocess.Popen[str]] = []
        self.names = [
            f"bench-ml-{os.getpid()}-{secrets.token_hex(3)}-{label}-{i}" for i in range(channels)
        ]
        try:
            for name in self.names:
                ShmWriter(name, create=True, capacity=capacity).close()
        except BaseException:
            self.close()
            raise

    def start(self, core: int, argv: Sequence[Any]) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [str(a) for a in argv],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_pinned(core),
        )
        self.procs.append(p)
        return p

    def result(self, p: subprocess.Popen[str]) -> dict[str, Any]:
        out, err = p.communicate(timeout=DEADLINE_S)
        if p.returncode != 0:
            raise RuntimeError(f"{p.args} exited {p.returncode}: {err.strip()}")
        return json.loads(out) if out.strip() else {}

    def close(self) -> None:
        from mycelium_shm import unlink

        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=10)
        for name in self.names:
            unlink(name, missing_ok=True)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def row(name: str, mode: str, size: int, **values: Any) -> dict[str, Any]:
    out = {k: None for k in ROW_KEYS}
    out.update(name=name, mode=mode, payload_bytes=size)
    out.update({k: v for k, v in values.items() if k in ROW_KEYS})
    return out


def pingpong(name: str, pong_argv: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    cores = allowed_cores()
    with Run(f"pp-{name}", 2, 1 << 20) as run:
        req, rep = run.names
        pong = run.start(cores[1 % len(cores)], [*pong_argv, req, rep])
        ping = run.start(
            cores[0],
            [
                BENCH_EXE,
                "ping",
                req,
                rep,
                "--iters",
                args.iters,
                "--warmup",
                args.warmup,
                "--size",
                args.size,
            ],
        )
        stats = run.result(ping)
        run.result(pong)
    return row(name, "pingpong", args.size, **stats)


def throughput(name: str, recv_argv: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    cores = allowed_cores()
    with Run(f"tp-{name}", 1, 1 << 22) as run:
        (ch,) = run.names
        recv = run.start(cores[1 % len(cores)], [*recv_argv, ch])
        send = run.start(
            cores[0],
            [
                BENCH_EXE,
                "send",
                ch,
                "--count",
                args.count,
                "--size",
                args.size,
                "--batch",
                args.batch,
            ],
        )
        run.result(send)
        stats = run.result(recv)
    return row(name, "throughput", args.size, **stats)


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    py = [sys.executable, "-m", "bench.bench_ocaml"]
    return [
        pingpong("ocaml-ocaml", [BENCH_EXE, "pong"], args),
        pingpong("ocaml-python", [*py, "py-pong"], args),
        throughput("ocaml-ocaml", [BENCH_EXE, "recv"], args),
        throughput("ocaml-python", [*py, "py-recv"], args),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.bench_ocaml", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="role")
    pp = sub.add_parser("py-pong", help="(internal) Python pong role")
    pp.add_argument("req")
    pp.add_argument("rep")
    pr = sub.add_parser("py-recv", help="(internal) Python receiver role")
    pr.add_argument("channel")
    p.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    p.add_argument("--iters", type=int, default=200_000, help="measured round trips")
    p.add_argument("--warmup", type=int, default=20_000, help="unmeasured round trips first")
    p.add_argument("--count", type=int, default=5_000_000, help="frames per throughput run")
    p.add_argument("--size", type=int, default=64, help="payload bytes")
    p.add_argument("--batch", type=int, default=1, help="frames per write_batch in `send`")
    p.add_argument("--no-build", action="store_true", help="use the binaries already built")
    p.add_argument("-o", "--output", type=Path, help="also write the rows as a JSON list here")
    args = p.parse_args(argv)
    if args.role == "py-pong":
        py_pong(args.req, args.rep)
        return 0
    if args.role == "py-recv":
        py_recv(args.channel)
        return 0
    if args.quick:
        args.iters, args.warmup, args.count = 5_000, 500, 200_000
    if not args.no_build:
        build()
    rows = measure(args)
    for r in rows:
        print(json.dumps(r))
    if args.output is not None:
        args.output.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
