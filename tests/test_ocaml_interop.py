"""Python, OCaml and Rust processes on the same channels.

Drives the OCaml example programs (bindings/ocaml/examples: echo, writer,
reader) as real processes against Python readers and writers, and the Rust
examples (bindings/rust/examples) for the three-language test.  Every test
uses fresh channel names, unlinks them and kills and reaps its children, even
when it fails.  Needs the OCaml toolchain (scripts/install-ocaml.sh) and
cargo; without them the tests fail rather than skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mycelium_shm import SchemaMismatch, ShmReader, ShmWriter, inspect, unlink
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent
OCAML = ROOT / "bindings" / "ocaml"
OCAML_BIN = OCAML / "_build" / "default" / "examples"
RUST = ROOT / "bindings" / "rust"
VECTORS = ROOT / "tests" / "vectors"
TIMEOUT = 60.0

TRADING = Schema.load(ROOT / "schemas" / "trading.toml")
VECTOR_SCHEMA = Schema.load(VECTORS / "schema.toml")

U64 = 1 << 64


# -- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ocaml_bin() -> Path:
    """bindings/ocaml built with dune; the directory of the example programs."""
    if shutil.which("dune") is None:
        pytest.fail("dune is not installed: run scripts/install-ocaml.sh")
    proc = subprocess.run(
        [
            "dune",
            "build",
            "--root",
            str(OCAML),
            "./examples/echo.exe",
            "./examples/writer.exe",
            "./examples/reader.exe",
        ],
        cwd=OCAML,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return OCAML_BIN


@pytest.fixture(scope="module")
def rust_bin() -> Path:
    """The Rust examples, built as tests/test_rust_interop.py builds them (release, so
    the two share one build); the directory holding them."""
    if shutil.which("cargo") is None:
        pytest.fail("cargo is not installed")
    proc = subprocess.run(
        ["cargo", "build", "--locked", "--release", "--examples", "--quiet"],
        cwd=RUST,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return RUST / os.environ.get("CARGO_TARGET_DIR", "target") / "release" / "examples"


class Procs:
    """Child processes of one test: each is killed (if still running) and reaped."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[str]] = []
        self.n = 0

    def start(self, args: list[str], **kw: Any) -> subprocess.Popen[str]:
        self.n += 1
        err = open(self.tmp / f"stderr.{self.n}", "w+")
        p = subprocess.Popen(
            [str(a) for a in args], stdout=subprocess.PIPE, stderr=err, text=True, **kw
        )
        p.stderr_file = err  # type: ignore[attr-defined]
        self.procs.append(p)
        return p

    @staticmethod
    def finish(p: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[int, str, str]:
        """Wait for ``p``; (exit status, stdout, stderr)."""
        out, _ = p.communicate(timeout=timeout)
        f = p.stderr_file  # type: ignore[attr-defined]
        f.seek(0)
        return p.returncode, out, f.read()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(timeout=10)
            finally:
                p.stderr_file.close()  # type: ignore[attr-defined]


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def names() -> Iterator[Any]:
    """``names(tag)`` gives a fresh channel name; all are unlinked at the end."""
    made: list[str] = []

    def make(tag: str) -> str:
        name = f"ocaml-it.{os.getpid()}.{uuid.uuid4().hex[:8]}.{tag}"
        made.append(name)
        return name

    try:
        yield make
    finally:
        for n in made:
            unlink(n, missing_ok=True)


# -- helpers -----------------------------------------------------------------


def echo_expected(schema: Schema, type_id: int, payload: bytes) -> tuple[int, bytes]:
    """What the echo examples answer (bindings/rust/examples/echo.rs, the table)."""
    m = schema.decode(type_id, payload)
    name = type(m).__name__
    field = {
        "MarketTick": "seq",
        "Signal": "tick_seq",
        "OrderRequest": "order_id",
        "Fill": "order_id",
    }.get(name)
    if field is not None:
        setattr(m, field, (getattr(m, field) + 1) % U64)
    return schema.encode(m)


def check_ticks(frames: list[tuple[int, bytes]], writers: dict[str, int]) -> None:
    """Every writer's ticks in order 0..n-1, none lost or doubled, then its Stop."""
    nxt: dict[str, int] = {}
    stops: dict[str, int] = {}
    for type_id, payload in frames:
        m = TRADING.decode(type_id, payload)
        if type(m).__name__ == "MarketTick":
            w = m.symbol
            assert w not in stops, f"{w}: tick after its Stop"
            assert m.seq == nxt.get(w, 0), f"{w}: seq {m.seq} where {nxt.get(w, 0)} was due"
            wid = int(w[1:])
            assert (m.ts_ns, m.bid, m.ask, m.bid_size, m.ask_size) == (
                wid,
                float(m.seq),
                m.seq + 0.5,
                wid,
                0,
            )
            nxt[w] = m.seq + 1
        else:
            assert type(m).__name__ == "Stop"
            stops[m.reason] = (m.last_seq + 1) % U64
    assert nxt == {w: n for w, n in writers.items() if n}
    assert stops == writers


PY_WRITER = """
import sys
from mycelium_shm import ShmWriter
from mycelium_shm.protocol import Schema
name, wid, count, schema_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = Schema.load(schema_path)
w = ShmWriter(name, schema=s)
for i in range(count):
    w.write(*s.encode(s.MarketTick(symbol=f"w{wid}", seq=i, ts_ns=wid, bid=float(i),
                                    ask=i + 0.5, bid_size=wid, ask_size=0)))
w.write(*s.encode(s.Stop(last_seq=(count - 1) % (1 << 64), reason=f"w{wid}")))
w.close()
"""


def python_writer(procs: Procs, channel: str, wid: int, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return procs.start(
        [
            sys.executable,
            "-c",
            PY_WRITER,
            channel,
            str(wid),
            str(count),
            str(ROOT / "schemas" / "trading.toml"),
        ],
        env=env,
    )


def read_all(r: ShmReader, stops: int) -> list[tuple[int, bytes]]:
    frames = []
    seen = 0
    while seen < stops:
        f = r.read(timeout=TIMEOUT)
        assert f is not None, f"no frame within {TIMEOUT} s ({seen} stops seen)"
        frames.append((f.type_id, bytes(f.payload)))
        if f.type_id == TRADING.message_def("Stop").type_id:
            seen += 1
    return frames


# -- tests -------------------------------------------------------------------


def test_python_to_ocaml_echo_every_vector(ocaml_bin: Path, procs: Procs, names: Any) -> None:
    """Every valid vector goes Python -> OCaml echo -> Python and comes back transformed;
    malformed payloads are reported and skipped; Stop ends the echo."""
    valid = json.loads((VECTORS / "valid.json").read_text())["cases"]
    invalid = json.loads((VECTORS / "invalid.json").read_text())["cases"]
    req, rep = names("req"), names("rep")
    with (
        ShmWriter(req, create=True, capacity=1 << 16, schema=VECTOR_SCHEMA) as w,
        ShmReader(rep, create=True, capacity=1 << 16, schema=VECTOR_SCHEMA) as r,
    ):
        echo = procs.start([ocaml_bin / "echo.exe", req, rep, "--schema", "vectors"])
        # Defective payloads first: each is reported on stderr and not answered.
        bad = [
            next(c for c in invalid if c["error"] == kind and c["type_id"] != 0)
            for kind in ("short", "utf8", "unknown_type", "length", "bool", "trailing")
        ]
        for c in bad:
            w.write(c["type_id"], bytes.fromhex(c["hex"]))
        stop_cases = [c for c in valid if c["message"] == "Stop"]
        for c in [c for c in valid if c["message"] != "Stop"] + stop_cases[-1:]:
            payload = bytes.fromhex(c["hex"])
            w.write(c["type_id"], payload)
            f = r.read(timeout=TIMEOUT)
            assert f is not None, f"{c['name']}: no reply"
            assert (f.type_id, bytes(f.payload)) == echo_expected(
                VECTOR_SCHEMA, c["type_id"], payload
            ), c["name"]
        status, _, err = procs.finish(echo)
        assert status == 0, err
        assert r.try_read() is None
    lines = [ln for ln in err.splitlines() if ln.startswith("decode error: ")]
    assert [ln.split(":")[1].strip() for ln in lines] == [c["error"] for c in bad]
    assert f"echo: answered {len(valid) - len(stop_cases) + 1} messages" in err


def test_python_to_ocaml_echo_trading(ocaml_bin: Path, procs: Procs, names: Any) -> None:
    """With the default trading schema the echo applies the documented rule to each type."""
    req, rep = names("req"), names("rep")
    s = TRADING
    msgs = [
        s.MarketTick(
            symbol="EURUSD",
            seq=U64 - 1,
            ts_ns=-5,
            bid=1.5,
            ask=float("inf"),
            bid_size=1,
            ask_size=2,
        ),
        s.Signal(
            strategy_id=7, symbol="X", tick_seq=41, side=-1, strength=0.5, features=[1.0, -2.0]
        ),
        s.OrderRequest(order_id=9, symbol="Y", side=1, qty=3, limit_price=2.25, ioc=True, ts_ns=0),
        s.Fill(order_id=10, venue=b"XNYS", qty=3, price=2.0, fee=0.01, ts_ns=1),
        s.Stop(last_seq=4, reason="done"),
    ]
    with ShmWriter(req, create=True, schema=s) as w, ShmReader(rep, create=True, schema=s) as r:
        echo = procs.start([ocaml_bin / "echo.exe", req, rep])
        for m in msgs:
            type_id, payload = s.encode(m)
            w.write(type_id, payload)
            f = r.read(timeout=TIMEOUT)
            assert f is not None
            assert (f.type_id, bytes(f.payload)) == echo_expected(s, type_id, payload)
        status, _, err = procs.finish(echo)
        assert status == 0, err
    assert s.decode(f.type_id, f.payload) == msgs[-1]


def test_ocaml_writes_python_reads(ocaml_bin: Path, procs: Procs, names: Any) -> None:
    """Two OCaml writers (one batching) into a small ring read by Python: order kept, no loss."""
    ch = names("ch")
    with ShmReader(ch, create=True, capacity=1 << 14, schema=TRADING) as r:
        a = procs.start([ocaml_bin / "writer.exe", ch, "1", "3000"])
        b = procs.start([ocaml_bin / "writer.exe", ch, "2", "3000", "--batch", "16"])
        frames = read_all(r, 2)
        for p in (a, b):
            status, _, err = procs.finish(p)
            assert status == 0, err
        assert r.try_read() is None
    check_ticks(frames, {"w1": 3000, "w2": 3000})


def test_ocaml_created_channel_read_by_python(ocaml_bin: Path, procs: Procs, names: Any) -> None:
    """A channel the OCaml writer creates (and leaves behind) opens in Python with the
    same schema, and holds its frames."""
    ch = names("ch")
    status, _, err = procs.finish(
        procs.start([ocaml_bin / "writer.exe", ch, "3", "100", "--create", "65536"])
    )
    assert status == 0, err
    assert err.strip() == "writer 3: wrote 100 ticks"
    with ShmReader(ch, schema=TRADING) as r:
        assert r.capacity == 65536
        frames = read_all(r, 1)
    check_ticks(frames, {"w3": 100})


@pytest.mark.parametrize("reader", ["python", "ocaml", "rust"])
def test_three_languages_write_one_channel(
    reader: str, ocaml_bin: Path, rust_bin: Path, procs: Procs, names: Any
) -> None:
    """Python, OCaml and Rust writers at once into one small ring, read by each language
    in turn: every writer's frames in order, none lost."""
    ch = names("multi")
    count = 5000
    writers = {"w0": count, "w1": count, "w2": count, "w3": count, "w4": count}
    creator = (
        ShmReader(ch, create=True, capacity=1 << 15, schema=TRADING)
        if reader == "python"
        else ShmWriter(ch, create=True, capacity=1 << 15, schema=TRADING)
    )
    with creator:
        rd = None
        if reader == "ocaml":
            rd = procs.start([ocaml_bin / "reader.exe", ch, "5", "--timeout-ms", "60000"])
        elif reader == "rust":
            rd = procs.start([rust_bin / "reader", ch, "5", "--timeout-ms", "60000"])
        ws = [
            python_writer(procs, ch, 0, count),
            procs.start([ocaml_bin / "writer.exe", ch, "1", str(count)]),
            procs.start([ocaml_bin / "writer.exe", ch, "2", str(count), "--batch", "8"]),
            procs.start([rust_bin / "writer", ch, "3", str(count)]),
            procs.start([rust_bin / "writer", ch, "4", str(count), "--batch", "8"]),
        ]
        if rd is None:
            assert isinstance(creator, ShmReader)
            frames = read_all(creator, 5)
            assert creator.try_read() is None
            check_ticks(frames, writers)
        for p in ws:
            status, _, err = procs.finish(p)
            assert status == 0, err
        if rd is not None:
            status, out, err = procs.finish(rd)
            assert status == 0, out + err
            result = json.loads(out)
            assert result == {"frames": 5 * count + 5, "writers": writers, "errors": []}


def test_schema_mismatch_refused_both_sides(ocaml_bin: Path, procs: Procs, names: Any) -> None:
    """OCaml refuses a Python channel of another schema, and Python one of OCaml's."""
    req, rep, ch = names("req"), names("rep"), names("ch")
    with ShmWriter(req, create=True, schema=TRADING), ShmReader(rep, create=True, schema=TRADING):
        status, _, err = procs.finish(
            procs.start([ocaml_bin / "echo.exe", req, rep, "--schema", "vectors"])
        )
        assert status == 2
        assert "error: attach request channel: SchemaMismatch" in err
        status, _, err = procs.finish(
            procs.start([ocaml_bin / "writer.exe", rep, "1", "1", "--digest", "ab" * 32])
        )
        assert status == 2
        assert "error: open: SchemaMismatch" in err
    status, _, err = procs.finish(
        procs.start([ocaml_bin / "writer.exe", ch, "1", "1", "--create", "4096"])
    )
    assert status == 0, err
    with pytest.raises(SchemaMismatch):
        ShmReader(ch, schema=VECTOR_SCHEMA)
    with pytest.raises(SchemaMismatch):
        ShmWriter(ch, schema=VECTOR_SCHEMA)
    with ShmReader(ch, schema=TRADING) as r:
        assert len(read_all(r, 1)) == 2


def _wait_for_reader(channel: str, pid: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while inspect(channel).reader_pid != pid:
        assert time.monotonic() < deadline, "the reader never attached"
        time.sleep(0.01)


def test_dead_reader_replaced_across_languages(ocaml_bin: Path, procs: Procs, names: Any) -> None:
    """A killed OCaml reader is replaced by a Python one, and a killed Python reader by an
    OCaml one; each successor reads on from where its predecessor stopped."""
    ch = names("ch")
    s = TRADING
    with ShmWriter(ch, create=True, capacity=1 << 14, schema=s) as w:
        ocaml_reader = procs.start([ocaml_bin / "reader.exe", ch, "1"])
        _wait_for_reader(ch, ocaml_reader.pid)
        ocaml_reader.kill()
        ocaml_reader.wait(timeout=TIMEOUT)
        w.write(
            *s.encode(
                s.MarketTick(symbol="w5", seq=0, ts_ns=5, bid=0.0, ask=0.5, bid_size=5, ask_size=0)
            )
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        py_reader = procs.start(
            [
                sys.executable,
                "-c",
                "import sys, time; from mycelium_shm import ShmReader; "
                "r = ShmReader(sys.argv[1]); f = r.read(timeout=60); "
                "print(f.type_id, flush=True); time.sleep(600)",
                ch,
            ],
            env=env,
        )
        assert py_reader.stdout is not None
        assert py_reader.stdout.readline().strip() == "1"  # took over, read the tick
        py_reader.kill()
        py_reader.wait(timeout=TIMEOUT)
        w.write(
            *s.encode(
                s.MarketTick(symbol="w5", seq=1, ts_ns=5, bid=1.0, ask=1.5, bid_size=5, ask_size=0)
            )
        )
        w.write(*s.encode(s.Stop(last_seq=1, reason="w5")))
        # The OCaml successor sees only what the dead Python reader left: seq 1 and
        # the Stop, so it reports seq 1 where 0 was due (it never saw seq 0).
        status, out, err = procs.finish(procs.start([ocaml_bin / "reader.exe", ch, "1"]))
        assert status == 3, err
        result = json.loads(out)
        assert result["frames"] == 2
        assert result["errors"] == ["w5: seq 1 where 0 was due"]
        assert inspect(ch).stats["takeovers"] >= 2
