"""Command line: run one node of a topology, or launch them all.

``python -m mycelium_shm.bus run TOPOLOGY --node NODE``
    Host the node's services in this process until SIGINT/SIGTERM (or a
    service stops the node).  Modules next to the topology file are
    importable, so ``class = "services:Strategy"`` finds ``services.py``.
``python -m mycelium_shm.bus launch TOPOLOGY [--node NODE ...]``
    One process per node, whatever its language, restarted when it dies
    (see :mod:`.launcher`).
``python -m mycelium_shm.bus plan TOPOLOGY --node NODE``
    Print the node's plan (JSON, :meth:`.Topology.plan`): what a rust or
    ocaml node is started with.

A topology error, or a node that cannot start, is one line on stderr (the
traceback too with ``--log-level DEBUG``) and exit status 2 (:data:`EXIT_CONFIG`);
the launcher does not restart a node that exits with it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from ._signals import StopSignals, unblock_stop_signals
from .errors import TopologyError
from .launcher import EXIT_CONFIG, Launcher
from .runtime import Runtime
from .topology import Topology

PR_SET_PDEATHSIG = 1
PROG = "python -m mycelium_shm.bus"
log = logging.getLogger("mycelium_shm.bus")


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel send SIGTERM to this process when its parent dies (Linux).

    A node started by a :class:`Launcher` so never outlives the launcher,
    even one that was killed with SIGKILL.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def run_node(topology: Path, node: str, parent_pid: Optional[int]) -> int:
    """Host one node until SIGINT/SIGTERM; a stop signal at any moment means exit 0.

    The handlers go in before anything else, and a :class:`Launcher` starts
    nodes with both signals blocked, so a signal sent while the process was
    still starting waits here and then shuts the node down cleanly.  Once
    the node is down further stop signals are ignored, so a late one (the
    launcher's SIGTERM after the kernel's parent-death one) cannot turn a
    clean exit into death by signal.
    """
    signals = StopSignals().install()
    unblock_stop_signals()
    try:
        if parent_pid is not None:
            die_with_parent(parent_pid)
        sys.path.insert(0, str(topology.resolve().parent))
        runtime = Runtime.from_topology(topology, node)
        return runtime.run(signals=signals)
    finally:
        signals.ignore()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(prog=PROG)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="host one node's services in this process")
    run.add_argument("topology", type=Path)
    run.add_argument("--node", required=True)
    run.add_argument("--parent-pid", type=int, help="get SIGTERM when this parent process dies")
    launch = sub.add_parser("launch", help="one supervised process per node")
    launch.add_argument("topology", type=Path)
    launch.add_argument("--node", action="append", dest="nodes")
    launch.add_argument("--log-dir", type=Path)
    plan = sub.add_parser("plan", help="print a node's plan (JSON), as rust/ocaml nodes get it")
    plan.add_argument("topology", type=Path)
    plan.add_argument("--node", required=True)
    for p in (run, launch, plan):
        p.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    prefix = f"{args.node} " if args.command == "run" else ""
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format=prefix + "%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s",
    )
    try:
        if args.command == "run":
            return run_node(args.topology, args.node, args.parent_pid)
        if args.command == "plan":
            print(json.dumps(Topology.load(args.topology).plan(args.node), indent=2))
            return 0
        launcher = Launcher(
            args.topology, nodes=args.nodes, log_dir=args.log_dir, log_level=args.log_level
        )
        return launcher.run()
    except (TopologyError, KeyError) as exc:
        log.debug("details", exc_info=True)
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{PROG}: {message}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as exc:
        # A service whose constructor or on-start code raised, a channel that
        # cannot be made: the node cannot start.  One line; DEBUG has the rest.
        log.debug("details", exc_info=True)
        where = f"node {args.node!r}: " if args.command == "run" else ""
        print(f"{PROG}: {where}cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
