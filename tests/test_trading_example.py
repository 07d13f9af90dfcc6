"""The multi-language trading example (examples/trading) end to end.

Rust market data and venue, the Python strategy, OCaml risk and order
manager, launched with ``python -m mycelium_shm.bus launch`` under both
topologies (one process per language; one per service), twice each, on
private copies (unique channel names, audit logs in a temporary directory).
Every run must print the committed checksum of every order and fill, every
stage must have seen every message, the audit logs must equal those of the
all-Python twin (reference.toml), and the launcher must leave no process and
no /dev/shm object behind, also when a node cannot start.

The Rust and OCaml programs are built by ``make trading-build`` (once per
session); without cargo or dune the tests fail rather than skip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tomli backport has the same API
    import tomli as tomllib

from mycelium_shm import unlink

REPO = Path(__file__).resolve().parents[1]
TRADING = REPO / "examples" / "trading"
RUST_NODE = TRADING / "rust" / "target" / "release" / "trading_node"
OCAML_NODE = TRADING / "ocaml" / "_build" / "default" / "src" / "trading_node.exe"
TICKS = 10_000  # the committed topologies' count: expected_checksum.txt is for it


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"trading_{name}", TRADING / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


trading_run = _load("run")
trading_sim = _load("trading_sim")
EXPECTED = (TRADING / "expected_checksum.txt").read_text(encoding="ascii").strip()


@pytest.fixture(scope="module")
def programs() -> None:
    """The Rust and OCaml node programs, built by ``make trading-build``."""
    for tool in ("cargo", "dune", "make"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (make test installs what it needs)")
    proc = subprocess.run(
        ["make", "-s", "-C", str(REPO), "trading-build"], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"make trading-build failed:\n{proc.stdout}\n{proc.stderr}"
    assert RUST_NODE.is_file() and OCAML_NODE.is_file()


class Copies:
    """Private copies of the example's topologies: unique channel names and audit directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.prefix = f"trading-{os.getpid()}-{uuid.uuid4().hex[:6]}."
        self.channels: set[str] = set()
        self.env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                p for p in (str(TRADING), str(REPO), os.environ.get("PYTHONPATH")) if p
            ),
        )

    def make(self, name: str, run: str, edit: Any = None) -> Path:
        """``examples/trading/<name>`` as ``<tmp>/<run>/<name>``; ``edit(text)`` may change it."""
        text = (TRADING / name).read_text(encoding="utf-8")
        text = text.replace('schema = "trading.toml"', f'schema = "{TRADING / "trading.toml"}"')
        text = text.replace('"rust/target/release/trading_node"', f'"{RUST_NODE}"')
        text = text.replace('"ocaml/_build/default/src/trading_node.exe"', f'"{OCAML_NODE}"')
        text = text.replace('name = "trading.', f'name = "{self.prefix}{run}.')
        text = re.sub(
            r'audit_dir = "audit/[\w.-]+"', f'audit_dir = "{self.tmp / run / "audit"}"', text
        )
        for relative in ('"rust/target/', '"ocaml/_build/', 'schema = "trading.toml"', '"audit/'):
            assert relative not in text, f"{name}: {relative} was not rewritten"
        if edit is not None:
            text = edit(text)
        self.channels.update(re.findall(r'name = "([^"]+)"', text))
        path = self.tmp / run / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def shm_left(self) -> list[str]:
        """Objects in /dev/shm whose name holds this test's prefix."""
        return sorted(n for n in os.listdir("/dev/shm") if self.prefix in n)

    def cleanup(self) -> None:
        for name in self.channels:
            unlink(name, missing_ok=True)


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Copies]:
    c = Copies(tmp_path_factory.mktemp("trading"))
    yield c
    c.cleanup()


RUNS = ["per_language.1", "per_service.1", "per_language.2", "per_service.2", "reference.1"]


@pytest.fixture(scope="module")
def runs(programs: None, copies: Copies) -> dict[str, Any]:
    """Each topology launched twice, and the all-Python twin once."""
    out: dict[str, Any] = {}
    for run in RUNS:
        topology = copies.make(f"{run.split('.')[0]}.toml", run)
        out[run] = trading_run.launch(topology, timeout=120, env=copies.env)
    return out


def _report(run: Any) -> str:
    return f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-3000:]}"


@pytest.mark.parametrize("run", RUNS)
def test_checksum_is_the_committed_one(runs: dict[str, Any], run: str) -> None:
    """Every run, whatever the topology, prints the checksum of expected_checksum.txt."""
    result = runs[run]
    assert result.returncode == 0, _report(result)
    assert result.checksum == EXPECTED, _report(result)


@pytest.mark.parametrize("run", RUNS)
def test_every_stage_saw_every_message(runs: dict[str, Any], run: str) -> None:
    """Counts agree from stage to stage and the order manager booked the venue's fills."""
    s = runs[run].summaries
    assert set(s) == set(trading_run.TAGS), _report(runs[run])
    assert "arrived" not in runs[run].stderr, _report(runs[run])  # no count check failed
    assert s["MARKET_DATA"]["ticks"] == s["STRATEGY"]["ticks"] == TICKS
    assert s["RISK"]["signals"] == s["STRATEGY"]["signals"] > 0
    assert int(s["RISK"]["approved"]) == s["TRADING"]["orders"] > 0
    assert s["RISK"]["signals"] == int(s["RISK"]["approved"]) + sum(s["RISK"]["rejected"].values())
    assert all(n > 0 for n in s["RISK"]["rejected"].values()), s["RISK"]  # every check fires
    assert s["OMS"]["fills"] == s["TRADING"]["fills"] >= s["TRADING"]["orders"]
    assert s["OMS"]["fills_checksum"] == s["TRADING"]["fills_checksum"]
    assert s["OMS"]["open"] == 0
    assert sum(s["OMS"]["orders"].values()) == s["TRADING"]["orders"]
    assert all(abs(p) <= 12 for p in s["OMS"]["positions"].values())  # risk's max_position


@pytest.mark.parametrize("run", RUNS)
def test_latency_is_reported(runs: dict[str, Any], run: str) -> None:
    """The venue reports tick-to-order percentiles, the strategy and risk those of the
    hops before them, in order, on one clock (positive)."""
    s = runs[run].summaries
    for lat in (
        s["TRADING"]["latency_us"],
        s["STRATEGY"]["tick_to_strategy_us"],  # the first hop
        s["RISK"]["tick_to_risk_us"],  # two hops
    ):
        assert 0 < lat["p50"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    wait = s["RISK"]["queue_wait_us"]  # signals waiting for the order in flight
    assert 0 <= wait["p50"] <= wait["p99"] <= wait["p99.9"] <= wait["max"]


@pytest.mark.parametrize("run", [r for r in RUNS if not r.startswith("reference")])
def test_audit_logs_equal_the_python_twins(runs: dict[str, Any], copies: Copies, run: str) -> None:
    """OCaml's risk and order-manager audit logs equal, byte for byte, those of reference.py."""
    assert runs[run].returncode == 0, _report(runs[run])
    for log in ("risk.log", "oms.log"):
        ours = (copies.tmp / run / "audit" / log).read_bytes()
        twin = (copies.tmp / "reference.1" / "audit" / log).read_bytes()
        assert ours == twin, log
        assert ours.count(b"\n") > 100


@pytest.mark.parametrize("run", RUNS)
def test_nothing_left_behind(runs: dict[str, Any], copies: Copies, run: str) -> None:
    """Once launch returned, none of its processes lives and none of its channels exists."""
    result = runs[run]
    nodes = {"per_language": 3, "per_service": 5, "reference": 1}[run.split(".")[0]]
    assert len(result.pids) >= nodes, _report(result)  # one process per node at least
    assert not [p for p, start in result.pids.items() if trading_run.alive(p, start)]
    assert not [n for n in copies.shm_left() if f".{run}." in n]


def _assert_clean(copies: Copies, result: Any, run: str) -> None:
    assert not [p for p, start in result.pids.items() if trading_run.alive(p, start)], _report(
        result
    )
    assert not [n for n in copies.shm_left() if f".{run}." in n], _report(result)


def test_bad_command_fails_cleanly(programs: None, copies: Copies) -> None:
    """A node whose program does not exist: launch fails with one line naming it, and
    the nodes already started are stopped and their channels removed."""
    run = "badcommand"
    topology = copies.make(
        "per_language.toml",
        run,
        lambda text: text.replace(f'"{OCAML_NODE}"', '"/nonexistent/trading_node.exe"'),
    )
    result = trading_run.launch(topology, timeout=60, env=copies.env)
    assert result.returncode not in (0, None), _report(result)
    assert "/nonexistent/trading_node.exe" in result.stderr, _report(result)
    assert "Traceback" not in result.stderr, _report(result)
    assert "TRADING" not in result.summaries
    _assert_clean(copies, result, run)


def test_node_that_cannot_start_is_cleaned_up(programs: None, copies: Copies) -> None:
    """The OCaml node asked to host a service it does not have exits at start; the
    launcher, stopped by SIGTERM, leaves no process and no channel."""

    def edit(text: str) -> str:
        text = text.replace('services = ["risk", "oms"]', 'services = ["risk", "oms", "ghost"]')
        return text + '\n[services.ghost]\nconsumes = ["Fill"]\n'

    run = "nostart"
    topology = copies.make("per_language.toml", run, edit)
    result = trading_run.launch(topology, timeout=60, env=copies.env, terminate_after=4.0)
    assert result.returncode is not None, _report(result)
    assert "ghost" in result.stderr, _report(result)
    assert "TRADING" not in result.summaries
    assert len(result.pids) >= 2, _report(result)  # the rust and python nodes at least
    _assert_clean(copies, result, run)


@pytest.mark.parametrize("name", ["per_language", "per_service"])
def test_checksum_holds_under_backpressure(programs: None, copies: Copies, name: str) -> None:
    """Other timing, same result: 4 KiB channels (writers wait for room all the time)
    and an unpaced feed (ticks as fast as market data can publish them)."""

    def squeeze(text: str) -> str:
        text = re.sub(r'(name = "[^"]+") \}', r"\1, capacity = 4096 }", text)
        return text.replace("interval_us = 100", "interval_us = 0")

    run = f"squeezed-{name}"
    result = trading_run.launch(copies.make(f"{name}.toml", run, squeeze), env=copies.env)
    assert result.returncode == 0, _report(result)
    assert result.checksum == EXPECTED, _report(result)
    _assert_clean(copies, result, run)


def test_sigterm_midway_leaves_nothing(programs: None, copies: Copies) -> None:
    """SIGTERM to the launcher in the middle of a run (5 processes, 3 languages): every
    node shuts down, and no process and no channel is left."""
    run = "midway"

    def slow(text: str) -> str:  # 100,000 ticks: the run is still going at 1.5 s
        return text.replace("ticks = 10000,", "ticks = 100000,")

    topology = copies.make("per_service.toml", run, slow)
    result = trading_run.launch(topology, timeout=60, env=copies.env, terminate_after=1.5)
    assert result.returncode is not None, _report(result)
    assert "TRADING" not in result.summaries, _report(result)
    assert len(result.pids) >= 5, _report(result)
    _assert_clean(copies, result, run)


def test_topologies_differ_in_placement_only() -> None:
    """per_language, per_service and reference give every service the same config (but
    the audit directory), and the venue replays the feed's seed."""
    configs = {}
    for name in ("per_language", "per_service", "reference"):
        data = tomllib.loads((TRADING / f"{name}.toml").read_text(encoding="utf-8"))
        services = data["services"]
        for service in services.values():
            service.get("config", {}).pop("audit_dir", None)
            service.pop("class", None)
        configs[name] = services
        assert services["execution"]["config"]["seed"] == services["market_data"]["config"]["seed"]
    assert configs["per_language"] == configs["per_service"] == configs["reference"]


@pytest.mark.parametrize("lang", ["rust", "ocaml"])
def test_generated_code_is_fresh(lang: str, tmp_path: Path) -> None:
    """The committed Rust and OCaml code of examples/trading/trading.toml is current."""
    committed = {
        "rust": TRADING / "rust" / "src" / "messages",
        "ocaml": TRADING / "ocaml" / "generated",
    }[lang]
    fresh = tmp_path / committed.name
    fresh.mkdir()
    if lang == "rust":
        (tmp_path / "Cargo.toml").write_text('[package]\nname = "scratch"\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mycelium_shm.codegen",
            "--lang",
            lang,
            "examples/trading/trading.toml",
            "-o",
            str(fresh),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in fresh.iterdir())
    assert written == sorted(p.name for p in committed.iterdir() if p.name != "dune")
    for name in written:
        assert (fresh / name).read_text() == (committed / name).read_text(), (
            f"{committed / name} is stale: run python -m mycelium_shm.codegen --lang {lang} "
            f"examples/trading/trading.toml -o {committed.relative_to(REPO)}/"
        )


def test_sim_known_answers() -> None:
    """The Python twins of rust/src/sim.rs give the answers its unit tests pin."""
    rng = trading_sim.SplitMix64(0)
    assert (rng.next(), rng.next()) == (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4)
    h = trading_sim.Fnv64()
    h.update(b"a")
    assert h.hexdigest() == "af63dc4c8601ec8c"
    quote = trading_sim.Quote(0, "X", 100, 102, 3, 2)
    fills = trading_sim.venue_fills(
        quote, 1, 10, trading_sim.price(103), lot_units=100000.0, fee_rate=0.00002
    )
    assert [(f.qty, f.leaves, f.last) for f in fills] == [(2, 8, False), (4, 4, True)]
    none = trading_sim.venue_fills(
        quote, -1, 3, trading_sim.price(101), lot_units=100000.0, fee_rate=0.00002
    )
    assert none == [trading_sim.VenueFill(0, 0.0, 0.0, 3, True)]


def test_market_is_seeded() -> None:
    """The feed is a function of its seed: equal seeds, equal ticks; another seed differs."""

    def ticks(seed: int) -> list[Any]:
        market = trading_sim.Market(seed)
        return [market.next() for _ in range(300)]

    assert ticks(7) == ticks(7)
    assert ticks(7) != ticks(8)
    assert {q.symbol for q in ticks(7)} == set(trading_sim.DEFAULT_SYMBOLS)
    assert all(q.bid < q.ask for q in ticks(7))
