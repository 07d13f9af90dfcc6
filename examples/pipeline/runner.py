"""Runs the trading pipeline under one topology and prints its summary line.

Shared by ``run_inprocess.py``, ``run_shm.py`` and ``run_tcp.py``.  Whatever
the deployment, the output is the single line the report service prints::

    SUMMARY {"checksum": "...", "fees": ..., "fills": ..., "fills_announced": ..., "qty": ...}

Exit status 0 on success, 1 if the pipeline failed or timed out.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import NoReturn, Optional

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from mycelium_shm.bus import Launcher, Runtime, Topology  # noqa: E402

REPORT_SERVICE = "report"


def run_in_process(topology: Path, timeout: float) -> int:
    """Host the single node of ``topology`` here; the report service prints and stops it."""
    topo = Topology.load(topology)
    if len(topo.nodes) != 1:
        print(f"{topology}: an in-process run needs exactly one node", file=sys.stderr)
        return 1
    runtime = Runtime.from_topology(topology, next(iter(topo.nodes)))
    timed_out = threading.Event()

    def give_up() -> None:
        timed_out.set()
        runtime.request_stop()

    timer = threading.Timer(timeout, give_up)
    timer.daemon = True
    timer.start()
    try:
        status = runtime.run()
    finally:
        timer.cancel()
    if timed_out.is_set():
        print(f"pipeline did not finish within {timeout} s", file=sys.stderr)
        return 1
    return status


def run_processes(topology: Path, timeout: float) -> int:
    """One process per node; wait for the report node to finish, stop the rest."""
    topo = Topology.load(topology)
    report_node = topo.node_of(REPORT_SERVICE).name
    topo.unlink_channels()  # leftovers of an earlier, killed run
    with tempfile.TemporaryDirectory(prefix="pipeline-") as logs:
        launcher = Launcher(topology, log_dir=logs, extra_paths=[HERE])
        launcher.start()
        try:
            status = launcher.wait(report_node, timeout)
        finally:
            launcher.stop()
            topo.unlink_channels()
        out = (Path(logs) / f"{report_node}.out").read_text(errors="replace")
        lines = [line for line in out.splitlines() if line.startswith("SUMMARY ")]
        if status != 0 or not lines:
            why = "timed out" if status is None else f"exited with status {status}"
            print(f"report node {report_node!r} {why}", file=sys.stderr)
            for err in sorted(Path(logs).glob("*.err")):
                text = err.read_text(errors="replace").strip()
                if text:
                    print(f"--- {err.name}\n{text[-4000:]}", file=sys.stderr)
            return 1
        print(lines[-1], flush=True)
        return 0


def main(default_topology: str, in_process: bool, argv: Optional[list[str]] = None) -> NoReturn:
    """Command line of the three runner scripts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", type=Path, default=HERE / default_topology)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    def on_term(signum: int, frame: object) -> None:
        sys.exit(128 + signum)

    if not in_process:
        signal.signal(signal.SIGTERM, on_term)
    run = run_in_process if in_process else run_processes
    sys.exit(run(args.topology, args.timeout))
