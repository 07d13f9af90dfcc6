"""The cross-language bus matrix: every language pair, every transport, through the launcher.

For each transport (shm, unix, tcp) and each ordered pair of languages among
python, rust and ocaml (the 6 pairs of two languages, plus each language with
itself), a topology puts a ``send`` probe in a node of the source language
and a ``recv`` probe in a node of the destination language, and
``mycelium_shm.bus.Launcher`` runs it: the Python node from its class, the
Rust and OCaml nodes as programs reading their plan (``--plan``).  The probes
(tests/bus_probe.py says what they do, in every language) write what they
send and receive to files, which the tests compare field by field.

- ``test_a_message_crosses``: every tick arrives once, in order, with every
  field intact, and both nodes exit 0 on SIGTERM.
- ``test_a_schema_mismatch_is_refused``: the two nodes run with different
  schemas (two topology files naming the same endpoints, each launched for
  one node): nothing is delivered, and the side(s) that see the other's
  digest say so: the sending side over shm (the channel carries the
  receiver's digest), both sides over unix/tcp (the handshake).  The
  receiver runs with tests/vectors/schema.toml (the same MarketTick, another
  digest), for which the Rust and OCaml probes are built as well.
- ``test_a_failing_service_is_restarted``: the receiving service raises
  (panics) on one tick; its runtime restarts it, the node stays up, and
  every other tick arrives in order (once per receiving language).
- ``test_sigterm_flushes_links``: the source node publishes while the
  destination is not up (its link queues), then gets SIGTERM as the
  destination starts: it exits 0 only after everything it published reached
  the destination.

The Rust and OCaml rows need their probe programs
(bindings/rust/examples/bus_probe.rs, bindings/ocaml/bus/example/bus_probe.ml)
and build them once per session; a probe whose source is absent makes its
rows skip, naming the file; a probe that fails to build fails them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from bus_probe import expected_tick
from bus_support import wait_for
from lang_build import ocaml_exe, rust_example

from mycelium_shm import unlink
from mycelium_shm.bus import Launcher

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
SCHEMA_PATH = ROOT / "schemas" / "trading.toml"
RUST = ROOT / "bindings" / "rust"
OCAML = ROOT / "bindings" / "ocaml"

LANGS = ("python", "rust", "ocaml")
PAIRS = [(src, dst) for src in LANGS for dst in LANGS]
TRANSPORTS = ("shm", "unix", "tcp")
#: Ticks per run.
COUNT = 500
#: Seconds a node may take to start, deliver everything, or stop.
TIMEOUT = 60.0

#: Another schema with the same MarketTick (and so another digest); the Rust and
#: OCaml probes are built for it too, and run with it when their plan names it.
ODD_SCHEMA = ROOT / "tests" / "vectors" / "schema.toml"

MISMATCH_LINE = re.compile(r"(?i)schema.*(digest|mismatch)|(digest|mismatch).*schema")


# -- the probe programs ------------------------------------------------------------


def _build_rust() -> list[str]:
    return [str(rust_example("bus_probe"))]


def _build_ocaml() -> list[str]:
    return [str(ocaml_exe("./bus/example/bus_probe.exe")[0])]


_BUILT: dict[str, list[str]] = {}


def probe_command(language: str) -> Optional[list[str]]:
    """The command of a language's probe node (None for python), built once."""
    if language == "python":
        return None
    if language not in _BUILT:
        _BUILT[language] = _build_rust() if language == "rust" else _build_ocaml()
    return _BUILT[language]


# -- topologies and runs -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Run:
    """One matrix case's files: topology, outputs, logs and channel."""

    dir: Path
    transport: str
    src: str
    dst: str
    channel: str
    port: int
    #: Extra config keys of the recv service (TOML inline-table syntax).
    recv_extra: str = ""

    @property
    def src_out(self) -> Path:
        return self.dir / "src.out"

    @property
    def dst_out(self) -> Path:
        return self.dir / "dst.out"

    def topology(self, name: str = "topology.toml", schema: Path = SCHEMA_PATH) -> Path:
        """A topology of the two probe nodes (same endpoints whatever the schema)."""
        if self.transport == "shm":
            endpoint = f'{{ kind = "shm", name = "{self.channel}", capacity = 262144 }}'
        elif self.transport == "unix":
            endpoint = f'{{ kind = "unix", path = "{self.dir / "dst.sock"}" }}'
        else:
            endpoint = f'{{ kind = "tcp", address = "127.0.0.1:{self.port}" }}'
        text = f'schema = "{schema}"\n'
        text += self._node("src", self.src, "send")
        text += self._node("dst", self.dst, "recv") + f"endpoint = {endpoint}\n"
        text += self._service(
            "send",
            self.src,
            "[]",
            f'count = {COUNT}, symbol = "{self.src}", out = "{self.src_out}"',
        )
        text += self._service(
            "recv", self.dst, '["MarketTick"]', f'out = "{self.dst_out}"{self.recv_extra}'
        )
        path = self.dir / name
        path.write_text(text)
        return path

    @staticmethod
    def _node(name: str, language: str, service: str) -> str:
        text = f'\n[nodes.{name}]\nservices = ["{service}"]\n'
        command = probe_command(language)
        if command is not None:
            argv = ", ".join(f'"{a}"' for a in command)
            text += f'language = "{language}"\ncommand = [{argv}]\n'
        return text

    @staticmethod
    def _service(name: str, language: str, consumes: str, config: str) -> str:
        text = f"\n[services.{name}]\nconsumes = {consumes}\nconfig = {{ {config} }}\n"
        if language == "python":
            text += f'class = "bus_probe:{name.capitalize()}"\n'
        return text

    def launcher(self, topology: Path, nodes: list[str]) -> Launcher:
        return Launcher(
            topology,
            nodes=nodes,
            log_dir=self.dir / "logs",
            extra_paths=[TESTS],
            log_level="INFO",
        )

    def log(self, node: str) -> str:
        path = self.dir / "logs" / f"{node}.err"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {n}.err ---\n{self.log(n)[-3000:]}" for n in ("src", "dst"))


def _lines(path: Path) -> list[str]:
    """The complete lines of a probe's output so far."""
    if not path.exists():
        return []
    return path.read_text().split("\n")[:-1]


def ticks(path: Path) -> list[tuple[str, int, int, float, float, int, int]]:
    rows = []
    for line in _lines(path):
        parts = line.split()
        assert parts[0] == "tick" and len(parts) == 8, line
        rows.append(
            (
                parts[1],
                int(parts[2]),
                int(parts[3]),
                float(parts[4]),
                float(parts[5]),
                int(parts[6]),
                int(parts[7]),
            )
        )
    return rows


def sent(path: Path) -> Optional[int]:
    for line in _lines(path):
        if line.startswith("sent "):
            return int(line.split()[1])
    return None


@pytest.fixture
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """A fresh short directory (unix socket paths), channel name and port; cleaned up after."""
    transport = request.node.callspec.params["transport"]
    src, dst = request.node.callspec.params["pair"]
    for language in (src, dst):
        probe_command(language)  # builds, or skips the case
    directory = Path(tempfile.mkdtemp(prefix="mx-", dir="/tmp"))
    channel = f"mx-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        yield Run(directory, transport, src, dst, channel, free_port())
    finally:
        unlink(channel, missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)


def _ids(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-to-{pair[1]}"


matrix = pytest.mark.parametrize("pair", PAIRS, ids=_ids)
transports = pytest.mark.parametrize("transport", TRANSPORTS)


# -- the matrix ------------------------------------------------------------------------


@transports
@matrix
def test_a_message_crosses(run: Run, transport: str, pair: tuple[str, str]) -> None:
    """Every tick published in the source language arrives in the destination's, in order."""
    launcher = run.launcher(run.topology(), ["src", "dst"])
    try:
        launcher.start()
        arrived = wait_for(lambda: len(_lines(run.dst_out)) >= COUNT, TIMEOUT)
        assert arrived, f"{len(_lines(run.dst_out))} of {COUNT} ticks arrived\n{run.logs()}"
        # The sender reports after its publish loop returns, which may come
        # after the receiver has everything.
        assert wait_for(lambda: sent(run.src_out) == COUNT, TIMEOUT), run.logs()
    finally:
        statuses = launcher.stop(timeout=TIMEOUT)
    assert ticks(run.dst_out) == [expected_tick(run.src, i) for i in range(COUNT)]
    assert statuses == {"src": 0, "dst": 0}, run.logs()
    assert launcher.exits == [], run.logs()


@transports
@matrix
def test_a_schema_mismatch_is_refused(run: Run, transport: str, pair: tuple[str, str]) -> None:
    """Different schemas: nothing crosses, and each side that sees the other's digest says so."""
    src_topology = run.topology("src.toml", SCHEMA_PATH)
    dst_topology = run.topology("dst.toml", ODD_SCHEMA)
    receiver = run.launcher(dst_topology, ["dst"])
    sender = run.launcher(src_topology, ["src"])
    try:
        receiver.start()
        sender.start()
        # (A publisher may see the refusal as an error of its own: Python's publish
        # raises it, so its send service does not finish; no "sent" line is expected.)
        refusing = ["src"] if transport == "shm" else ["src", "dst"]
        assert wait_for(lambda: all(MISMATCH_LINE.search(run.log(n)) for n in refusing), TIMEOUT), (
            f"no schema mismatch reported by {refusing}\n{run.logs()}"
        )
        wait_for(lambda: bool(_lines(run.dst_out)), 1.0)  # what would cross, would have by now
    finally:
        statuses = {**sender.stop(timeout=TIMEOUT), **receiver.stop(timeout=TIMEOUT)}
    assert _lines(run.dst_out) == [], run.logs()
    assert statuses == {"src": 0, "dst": 0}, run.logs()
    assert sender.exits == receiver.exits == [], run.logs()


@transports
@matrix
def test_sigterm_flushes_links(run: Run, transport: str, pair: tuple[str, str]) -> None:
    """SIGTERM to a node whose link still queues: it delivers everything, then exits 0."""
    topology = run.topology()
    sender = run.launcher(topology, ["src"])
    receiver = run.launcher(topology, ["dst"])
    try:
        sender.start()
        # Published while the destination is down: every tick waits in the link.
        assert wait_for(lambda: sent(run.src_out) == COUNT, TIMEOUT), run.logs()
        assert _lines(run.dst_out) == []
        receiver.start()
        src_pid = sender.pid("src")
        assert src_pid is not None
        os.kill(src_pid, signal.SIGTERM)
        status = sender.wait("src", timeout=TIMEOUT)
        assert status == 0, f"src ended with {status}\n{run.logs()}"
        arrived = wait_for(lambda: len(_lines(run.dst_out)) >= COUNT, TIMEOUT)
        assert arrived, f"{len(_lines(run.dst_out))} of {COUNT} ticks arrived\n{run.logs()}"
    finally:
        statuses = {**sender.stop(timeout=TIMEOUT), **receiver.stop(timeout=TIMEOUT)}
    assert ticks(run.dst_out) == [expected_tick(run.src, i) for i in range(COUNT)]
    assert statuses == {"src": 0, "dst": 0}, run.logs()
    assert sender.starts("src") == 1


@pytest.mark.parametrize("transport", ["shm"])
@pytest.mark.parametrize("pair", [("python", dst) for dst in LANGS], ids=_ids)
def test_a_failing_service_is_restarted(run: Run, transport: str, pair: tuple[str, str]) -> None:
    """recv fails on tick 100: restarted in its process, the stream goes on without that tick."""
    run.recv_extra = ", panic_at = 100"
    launcher = run.launcher(run.topology(), ["src", "dst"])
    try:
        launcher.start()
        arrived = wait_for(lambda: len(_lines(run.dst_out)) >= COUNT - 1, TIMEOUT)
        assert arrived, f"{len(_lines(run.dst_out))} of {COUNT - 1} ticks arrived\n{run.logs()}"
        assert re.search(r"(?i)restart", run.log("dst")), run.logs()
    finally:
        statuses = launcher.stop(timeout=TIMEOUT)
    expected = [expected_tick(run.src, i) for i in range(COUNT) if i != 100]
    assert ticks(run.dst_out) == expected
    assert statuses == {"src": 0, "dst": 0}, run.logs()
    assert launcher.exits == [] and launcher.starts("dst") == 1, run.logs()
