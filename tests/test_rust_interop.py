"""Python and Rust processes on the same channels.

The Rust side is the examples of bindings/rust (echo, writer, reader), built
once per session with ``cargo build --release --examples``.  Every test uses
fresh channel names (pid + random), unlinks them afterwards and reaps every
child process, whether it passes or not.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mycelium_shm import ReaderBusy, SchemaMismatch, ShmReader, ShmWriter, inspect, unlink
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent
CRATE = ROOT / "bindings" / "rust"
VECTORS = ROOT / "tests" / "vectors"
TRADING = Schema.load(ROOT / "schemas" / "trading.toml")
VECTOR_SCHEMA = Schema.load(VECTORS / "schema.toml")

#: Exit status of the Rust examples on a channel error (examples/common).
EXIT_CHANNEL_ERROR = 2
#: Seconds any single process may take before the test fails.
PROC_TIMEOUT = 60

U64 = (1 << 64) - 1


@pytest.fixture(scope="session")
def rust_bin() -> Path:
    """Directory of the release example binaries, built once per session."""
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed")
    subprocess.run(
        ["cargo", "build", "--locked", "--release", "--examples", "--quiet"],
        cwd=CRATE,
        check=True,
        timeout=900,
    )
    target = CRATE / os.environ.get("CARGO_TARGET_DIR", "target")  # cargo runs in CRATE
    return target / "release" / "examples"


@pytest.fixture
def channel() -> Iterator[Callable[[str], str]]:
    """Factory of unique channel names; every name is unlinked at teardown."""
    names: list[str] = []

    def make(label: str) -> str:
        name = f"rs-it-{os.getpid()}-{secrets.token_hex(4)}-{label}"
        names.append(name)
        return name

    yield make
    for name in names:
        unlink(name, missing_ok=True)


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start child processes; any still running at teardown is killed and reaped."""
    procs: list[subprocess.Popen[str]] = []

    def start(*argv: Any) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.Popen(
            [str(a) for a in argv],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate(timeout=10)


def finish(p: subprocess.Popen[str], expect: int = 0) -> tuple[str, str]:
    """Wait for ``p``; assert its exit status; return (stdout, stderr)."""
    out, err = p.communicate(timeout=PROC_TIMEOUT)
    assert p.returncode == expect, f"{p.args} exited {p.returncode}, expected {expect}:\n{err}"
    return out, err


def echo_rule(msg: Any) -> Any:
    """The echo example's documented transformation (examples/echo.rs)."""
    kind = type(msg).__name__
    if kind == "MarketTick":
        msg.seq = (msg.seq + 1) & U64
    elif kind == "Signal":
        msg.tick_seq = (msg.tick_seq + 1) & U64
    elif kind in ("OrderRequest", "Fill"):
        msg.order_id = (msg.order_id + 1) & U64
    return msg


def tick_fields(writer: int, i: int) -> tuple[Any, ...]:
    """MarketTick i of writer ``writer``, as the writer example makes it."""
    return (f"w{writer}", i, writer, float(i), i + 0.5, writer, 0)


PY_WRITER = r"""
import os, sys, time
from mycelium_shm import ShmWriter
from mycelium_shm.protocol import Schema
name, wid, count, schema_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
start_file = sys.argv[5]
schema = Schema.load(schema_path)
MarketTick, Stop = schema.message_type("MarketTick"), schema.message_type("Stop")
w = ShmWriter(name, schema=schema)
print("ready", flush=True)
while not os.path.exists(start_file):
    time.sleep(0.001)
for i in range(count):
    w.send(MarketTick(f"w{wid}", i, wid, float(i), i + 0.5, wid, 0))
w.send(Stop((count - 1) & ((1 << 64) - 1), f"w{wid}"))
w.close()
"""


def python_writer(
    spawn: Callable[..., subprocess.Popen[str]], name: str, wid: int, count: int, start: Path
) -> subprocess.Popen[str]:
    """The Python twin of the writer example (same ticks, same Stop)."""
    return spawn(
        sys.executable, "-c", PY_WRITER, name, wid, count, ROOT / "schemas/trading.toml", start
    )


def rust_writer(
    spawn: Callable[..., subprocess.Popen[str]],
    rust_bin: Path,
    name: str,
    wid: int,
    count: int,
    start: Path,
    *extra: Any,
) -> subprocess.Popen[str]:
    """The writer example, waiting for ``start`` to exist before writing."""
    return spawn(rust_bin / "writer", name, wid, count, "--start-file", start, *extra)


def start_together(procs: list[subprocess.Popen[str]], start: Path) -> None:
    """Wait until every writer is attached and waiting, then let them all go."""
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line == "ready\n", f"{p.args}: {line!r}"
    start.touch()


def cross_language_switches(messages: list[Any], rust: set[str]) -> int:
    """How often consecutive messages come from a Rust and a Python writer."""
    ids = [getattr(m, "symbol", None) or m.reason for m in messages]
    return sum((a in rust) != (b in rust) for a, b in zip(ids, ids[1:]))


def check_per_writer_order(messages: list[Any], writers: dict[str, int]) -> None:
    """Every writer's ticks arrive in order 0..count-1, then its Stop; nothing else."""
    nxt: dict[str, int] = {}
    stops: set[str] = set()
    for m in messages:
        if type(m).__name__ == "MarketTick":
            assert m.symbol not in stops, f"{m.symbol}: tick after its Stop"
            assert m.seq == nxt.get(m.symbol, 0), f"{m.symbol}: seq {m.seq} out of order"
            wid = int(m.symbol[1:])
            assert (m.symbol, m.seq, m.ts_ns, m.bid, m.ask, m.bid_size, m.ask_size) == tick_fields(
                wid, m.seq
            )
            nxt[m.symbol] = m.seq + 1
        else:
            assert type(m).__name__ == "Stop"
            assert m.last_seq == (nxt.get(m.reason, 0) - 1) & U64
            stops.add(m.reason)
    assert nxt == {w: n for w, n in writers.items() if n}
    assert stops == set(writers)


def test_echo_answers_every_vector_message(rust_bin, channel, spawn) -> None:
    """Python sends every valid test vector to the Rust echo; each reply is the
    documented transformation of the message, byte for byte."""
    req, rep = channel("req"), channel("rep")
    cases = json.loads((VECTORS / "valid.json").read_text())["cases"]
    with (
        ShmWriter(req, create=True, schema=VECTOR_SCHEMA) as w,
        ShmReader(rep, create=True, schema=VECTOR_SCHEMA) as r,
    ):
        stop_id = VECTOR_SCHEMA.type_id_of(VECTOR_SCHEMA.message_type("Stop"))
        # Every Stop ends an echo, so the Stop cases go last, one echo each.
        ordered = [c for c in cases if c["type_id"] != stop_id]
        stops = [c for c in cases if c["type_id"] == stop_id]
        assert stops, "the vectors include a Stop case"
        echo = None
        for case in ordered + stops:
            if echo is None:
                echo = spawn(rust_bin / "echo", req, rep, "--schema", "vectors")
            payload = bytes.fromhex(case["hex"])
            w.write(case["type_id"], payload, timeout=10)
            frame = r.read(timeout=10)
            assert frame is not None, f"{case['name']}: no reply"
            expected = VECTOR_SCHEMA.encode(
                echo_rule(VECTOR_SCHEMA.decode(case["type_id"], payload))
            )
            assert (frame[0], bytes(frame[1])) == expected, case["name"]
            if case["type_id"] == stop_id:
                finish(echo)
                echo = None


def test_echo_reports_every_invalid_vector(rust_bin, channel, spawn) -> None:
    """Malformed payloads are refused by the Rust decoder with the error kind
    the vectors state, and answered with nothing; the echo carries on."""
    req, rep = channel("req"), channel("rep")
    cases = json.loads((VECTORS / "invalid.json").read_text())["cases"]
    # Type id 0 marks padding in the ring: no frame can carry it.
    cases = [c for c in cases if c["type_id"] != 0]
    Stop = VECTOR_SCHEMA.message_type("Stop")
    with (
        ShmWriter(req, create=True, schema=VECTOR_SCHEMA) as w,
        ShmReader(rep, create=True, schema=VECTOR_SCHEMA) as r,
    ):
        echo = spawn(rust_bin / "echo", req, rep, "--schema", "vectors")
        for case in cases:
            w.write(case["type_id"], bytes.fromhex(case["hex"]), timeout=10)
        w.send(Stop(1, "end"))
        assert r.recv(timeout=10) == Stop(1, "end"), "only the Stop is answered"
        _, err = finish(echo)
    kinds = [line.split(": ")[1] for line in err.splitlines() if line.startswith("decode error: ")]
    assert kinds == [c["error"] for c in cases]


def test_echo_with_the_trading_schema(rust_bin, channel, spawn) -> None:
    """The echo of the library's own messages: ticks come back with seq + 1,
    the Stop comes back unchanged and ends the echo."""
    req, rep = channel("req"), channel("rep")
    MarketTick, Fill, Stop = (TRADING.message_type(n) for n in ("MarketTick", "Fill", "Stop"))
    with (
        ShmWriter(req, create=True, schema=TRADING) as w,
        ShmReader(rep, create=True, schema=TRADING) as r,
    ):
        echo = spawn(rust_bin / "echo", req, rep)
        for i in range(200):
            w.send(MarketTick("EURUSD", i, -i, 1.1, float("nan"), i, 0))
        w.send(Fill(U64, b"XNAS", 5, 1.5, -0.0, 7))
        w.send(Stop(199, ""))
        for i in range(200):
            m = r.recv(timeout=10)
            assert (type(m).__name__, m.seq, m.ts_ns) == ("MarketTick", i + 1, -i)
        fill = r.recv(timeout=10)
        assert (fill.order_id, fill.venue) == (0, b"XNAS")  # wrapped
        assert r.recv(timeout=10) == Stop(199, "")
        finish(echo)


def test_rust_writes_python_reads(rust_bin, channel, spawn) -> None:
    """A Rust writer's messages decode in Python with every field intact."""
    name = channel("r2py")
    with ShmReader(name, create=True, capacity=1 << 14, schema=TRADING) as r:
        p = spawn(rust_bin / "writer", name, 7, 3000, "--batch", 16)
        got = [r.recv(timeout=10) for _ in range(3001)]
        finish(p)
        assert r.try_read() is None
    check_per_writer_order(got, {"w7": 3000})


def test_python_and_rust_writers_into_python_reader(rust_bin, channel, spawn, tmp_path) -> None:
    """Two Rust and two Python writers at once, one Python reader: per-writer
    order holds and nothing is lost (a small ring forces waits and wraps)."""
    name = channel("mix-py")
    count = 4000
    start = tmp_path / "go"
    with ShmReader(name, create=True, capacity=1 << 14, schema=TRADING) as r:
        procs = [
            rust_writer(spawn, rust_bin, name, 0, count, start),
            rust_writer(spawn, rust_bin, name, 1, count, start, "--batch", 8),
            python_writer(spawn, name, 2, count, start),
            python_writer(spawn, name, 3, count, start),
        ]
        start_together(procs, start)
        got = []
        stops = 0
        while stops < 4:
            m = r.recv(timeout=PROC_TIMEOUT)
            assert m is not None, f"timed out after {len(got)} messages"
            got.append(m)
            stops += type(m).__name__ == "Stop"
        for p in procs:
            finish(p)
        assert r.try_read() is None
    check_per_writer_order(got, {f"w{i}": count for i in range(4)})
    # They really wrote at the same time: Rust and Python frames interleave.
    assert cross_language_switches(got, {"w0", "w1"}) >= 2


def test_python_and_rust_writers_into_rust_reader(rust_bin, channel, spawn, tmp_path) -> None:
    """The same mix of writers, read by the Rust reader example."""
    name = channel("mix-rs")
    count = 4000
    start = tmp_path / "go"
    # The channel outlives this handle (closed at once): the writers and the
    # Rust reader attach to it.
    ShmWriter(name, create=True, capacity=1 << 14, schema=TRADING).close()
    reader = spawn(rust_bin / "reader", name, 4)
    procs = [
        python_writer(spawn, name, 0, count, start),
        rust_writer(spawn, rust_bin, name, 1, count, start),
        python_writer(spawn, name, 2, count, start),
        rust_writer(spawn, rust_bin, name, 3, count, start, "--batch", 32),
    ]
    start_together(procs, start)
    out, _ = finish(reader)
    for p in procs:
        finish(p)
    summary = json.loads(out)
    assert summary == {
        "frames": 4 * count + 4,
        "writers": {f"w{i}": count for i in range(4)},
        "errors": [],
    }


def test_schema_mismatch_is_refused_on_both_sides(rust_bin, channel, spawn) -> None:
    """A Python channel of one schema refuses Rust processes of another, and a
    Rust channel refuses Python handles of another schema."""
    py_made = channel("py-made")
    with ShmWriter(py_made, create=True, schema=VECTOR_SCHEMA):
        _, err = finish(spawn(rust_bin / "writer", py_made, 0, 1), expect=EXIT_CHANNEL_ERROR)
        assert "SchemaMismatch" in err
        # The echo attaches as the reader of the request channel: refused too.
        _, err = finish(
            spawn(rust_bin / "echo", py_made, channel("reply")), expect=EXIT_CHANNEL_ERROR
        )
        assert "SchemaMismatch" in err

    rs_made = channel("rs-made")
    finish(spawn(rust_bin / "writer", rs_made, 0, 3, "--create", 4096))
    with pytest.raises(SchemaMismatch):
        ShmWriter(rs_made, schema=VECTOR_SCHEMA)
    with pytest.raises(SchemaMismatch):
        ShmReader(rs_made, schema=VECTOR_SCHEMA)
    # The right schema attaches and reads what Rust wrote.
    with ShmReader(rs_made, schema=TRADING) as r:
        got = [r.recv(timeout=5) for _ in range(4)]
    check_per_writer_order(got, {"w0": 3})


def test_python_reader_takes_over_from_a_killed_rust_reader(rust_bin, channel, spawn) -> None:
    """While the Rust reader lives, Python is refused (ReaderBusy); once it is
    killed, a Python reader takes its place and continues where it stopped."""
    name = channel("takeover")
    MarketTick, Stop = TRADING.message_type("MarketTick"), TRADING.message_type("Stop")
    with ShmWriter(name, create=True, schema=TRADING) as w:
        for i in range(10):
            w.send(MarketTick(*tick_fields(0, i)))
        w.send(Stop(9, "w0"))
        # It waits for a second Stop that will not come before it is killed.
        reader = spawn(rust_bin / "reader", name, 2)
        deadline = time.monotonic() + PROC_TIMEOUT
        while inspect(name).stats["head"] < inspect(name).stats["tail"]:
            assert time.monotonic() < deadline, "the Rust reader never caught up"
            time.sleep(0.01)
        with pytest.raises(ReaderBusy):
            ShmReader(name, schema=TRADING)
        reader.kill()
        reader.wait(timeout=10)
        w.send(MarketTick(*tick_fields(1, 0)))
        with ShmReader(name, schema=TRADING) as r:
            assert r.recv(timeout=5) == MarketTick(*tick_fields(1, 0))
            assert r.try_read() is None
            assert r.stats()["takeovers"] == 1
