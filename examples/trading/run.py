"""Build and run the trading example; print its latency percentiles and checksum.

``python examples/trading/run.py`` builds the Rust and OCaml node programs
(``make trading-build``), runs ``python -m mycelium_shm.bus launch`` on
``per_language.toml`` and then ``per_service.toml``, and prints one line per
run.  ``--check`` fails (exit 1) unless every run's checksum is the one in
``expected_checksum.txt``; ``--write-expected`` writes that file from a run
whose topologies all agreed.  Other topologies (e.g. ``reference.toml``, the
all-Python twin) can be named on the command line.

Each node prints one ``TAG {json}`` line when its stream ends (MARKET_DATA,
STRATEGY, RISK, TRADING from the venue, OMS); :func:`launch` collects them,
with every process id the launcher started, for tests/test_trading_example.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXPECTED = HERE / "expected_checksum.txt"
DEFAULT_TOPOLOGIES = ("per_language.toml", "per_service.toml")
TAGS = ("MARKET_DATA", "STRATEGY", "RISK", "TRADING", "OMS")


@dataclass
class Run:
    """What one ``launch`` of a topology did."""

    topology: Path
    returncode: Optional[int]
    stdout: str
    stderr: str
    #: ``TAG -> parsed JSON`` of the nodes' summary lines.
    summaries: dict[str, Any] = field(default_factory=dict)
    #: Every process the launcher started (seen while it ran): pid -> start time.
    pids: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def checksum(self) -> Optional[str]:
        """The venue's checksum of every order and fill, if it reported."""
        trading = self.summaries.get("TRADING")
        return None if trading is None else str(trading["checksum"])

    def describe(self) -> str:
        """One line: checksum, counts, tick-to-order latency."""
        trading = self.summaries.get("TRADING")
        if trading is None:
            return f"{self.topology.name}: no TRADING line (exit status {self.returncode})"
        lat = trading["latency_us"]
        return (
            f"{self.topology.name}: checksum {trading['checksum']}  orders {trading['orders']}"
            f"  fills {trading['fills']}  tick-to-order p50 {lat.get('p50')} us"
            f"  p99 {lat.get('p99')} us  p99.9 {lat.get('p99.9')} us  max {lat.get('max')} us"
            f"  ({self.seconds:.1f} s)"
        )


def parse_summaries(stdout: str) -> dict[str, Any]:
    """``TAG {json}`` lines of the nodes, by tag (a later line wins)."""
    found: dict[str, Any] = {}
    for line in stdout.splitlines():
        tag, _, rest = line.partition(" ")
        if tag in TAGS and rest.startswith("{"):
            found[tag] = json.loads(rest)
    return found


def _stat(pid: int) -> Optional[tuple[int, int]]:
    """(parent pid, start time in clock ticks) of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """Processes below ``pid``: process id -> start time (which tells a reused id)."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append((int(entry), stat[1]))
    out: dict[int, int] = {}
    todo = [pid]
    while todo:
        for child, start in children.get(todo.pop(), []):
            if child not in out:
                out[child] = start
                todo.append(child)
    return out


def alive(pid: int, start: int) -> bool:
    """Whether the process ``pid`` that started at ``start`` still exists (zombies count)."""
    stat = _stat(pid)
    return stat is not None and stat[1] == start


def launch(
    topology: Path,
    *,
    timeout: float = 120.0,
    env: Optional[dict[str, str]] = None,
    python: str = sys.executable,
    terminate_after: Optional[float] = None,
) -> Run:
    """``python -m mycelium_shm.bus launch TOPOLOGY``; its output and processes.

    The launcher gets SIGTERM after ``terminate_after`` seconds if given
    (and after ``timeout`` in any case, then SIGKILL 10 s later).
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        [python, "-m", "mycelium_shm.bus", "launch", str(topology)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    pids: dict[int, int] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            pids.update(descendants(proc.pid))
            done.wait(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    deadline = timeout if terminate_after is None else min(timeout, terminate_after)
    try:
        out, err = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    finally:
        done.set()
        watcher.join()
    return Run(
        topology,
        proc.returncode,
        out,
        err,
        parse_summaries(out),
        pids,
        time.monotonic() - started,
    )


def build() -> None:
    """The Rust and OCaml node programs (``make trading-build``)."""
    subprocess.run(["make", "-s", "-C", str(REPO), "trading-build"], check=True)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("topologies", nargs="*", type=Path, help="default: both topologies")
    parser.add_argument("--check", action="store_true", help="compare with expected_checksum.txt")
    parser.add_argument("--write-expected", action="store_true", help="write expected_checksum.txt")
    parser.add_argument("--no-build", action="store_true", help="skip make trading-build")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    args = parser.parse_args(argv)
    topologies = args.topologies or [HERE / name for name in DEFAULT_TOPOLOGIES]
    if not args.no_build:
        build()
    runs = []
    for topology in topologies:
        run = launch(topology, timeout=args.timeout)
        print(run.describe(), flush=True)
        if run.returncode != 0 or run.checksum is None:
            sys.stderr.write(run.stderr[-4000:])
            print(f"{topology}: launch exited with status {run.returncode}", file=sys.stderr)
            return 1
        runs.append(run)
    checksums = {run.checksum for run in runs}
    if len(checksums) != 1:
        print(f"the runs disagree: {sorted(c or '' for c in checksums)}", file=sys.stderr)
        return 1
    checksum = checksums.pop()
    assert checksum is not None
    if args.write_expected:
        EXPECTED.write_text(checksum + "\n", encoding="ascii")
        print(f"wrote {EXPECTED.relative_to(REPO)}: {checksum}")
    if args.check:
        expected = EXPECTED.read_text(encoding="ascii").strip()
        if checksum != expected:
            print(f"checksum {checksum} != expected {expected}", file=sys.stderr)
            return 1
        print(f"checksum {checksum} = expected_checksum.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
