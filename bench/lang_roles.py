"""The measuring side of the Rust and OCaml benchmarks (bench_rust, bench_ocaml).

Each language ships a ``bench`` program with the roles ``ping``, ``pong``,
``send`` and ``recv``; this module runs them, and the Python roles
``py-pong`` / ``py-recv``, each in its own process pinned to its own core
(``sched_setaffinity`` before exec; the pinger or sender on the first
allowed core, the ponger or receiver on the second), and reports rows with
the keys of ``ROW_KEYS`` (see ``bench/extensions.py`` for how the suite
reads them).  Every channel is unlinked and every child reaped, also on
failure.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STOP = 65535
DEADLINE_S = 300


@dataclass(frozen=True)
class Language:
    """How to build and find one language's bench program."""

    name: str  # "rust": rows are named "rust-rust" and "rust-python"
    module: str  # "bench.bench_rust": runs the Python roles
    program: Callable[[], Path]
    build: Callable[[], None]


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
            f"bench-{os.getpid()}-{secrets.token_hex(3)}-{label}-{i}" for i in range(channels)
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


def pingpong(
    lang: Language, name: str, pong_argv: list[Any], args: argparse.Namespace
) -> dict[str, Any]:
    cores = allowed_cores()
    bench = lang.program()
    with Run(f"pp-{name}", 2, 1 << 20) as run:
        req, rep = run.names
        pong = run.start(cores[1 % len(cores)], [*pong_argv, req, rep])
        ping = run.start(
            cores[0],
            [
                bench,
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


def throughput(
    lang: Language, name: str, recv_argv: list[Any], args: argparse.Namespace
) -> dict[str, Any]:
    cores = allowed_cores()
    bench = lang.program()
    with Run(f"tp-{name}", 1, 1 << 22) as run:
        (ch,) = run.names
        recv = run.start(cores[1 % len(cores)], [*recv_argv, ch])
        send = run.start(
            cores[0],
            [bench, "send", ch, "--count", args.count, "--size", args.size, "--batch", args.batch],
        )
        run.result(send)
        stats = run.result(recv)
    return row(name, "throughput", args.size, **stats)


def measure(lang: Language, args: argparse.Namespace) -> list[dict[str, Any]]:
    bench = lang.program()
    py = [sys.executable, "-m", lang.module]
    same, mixed = f"{lang.name}-{lang.name}", f"{lang.name}-python"
    return [
        pingpong(lang, same, [bench, "pong"], args),
        pingpong(lang, mixed, [*py, "py-pong"], args),
        throughput(lang, same, [bench, "recv"], args),
        throughput(lang, mixed, [*py, "py-recv"], args),
    ]


def main(lang: Language, doc: str, argv: Sequence[str] | None = None) -> int:
    """The command line of ``python -m <lang.module>``: measure, or play a Python role."""
    p = argparse.ArgumentParser(prog=f"python -m {lang.module}", description=doc.split("\n")[0])
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
        lang.build()
    rows = measure(lang, args)
    for r in rows:
        print(json.dumps(r))
    if args.output is not None:
        args.output.write_text(json.dumps(rows, indent=2) + "\n")
    return 0
