"""Command line: run one node of a topology, or launch them all.

``python -m mycelium_shm.bus run TOPOLOGY --node NODE``
    Host the node's services in this process until SIGINT/SIGTERM (or a
    service stops the node).  Modules next to the topology file are
    importable, so ``class = "services:Strategy"`` finds ``services.py``.
``python -m mycelium_shm.bus launch TOPOLOGY [--node NODE ...]``
    One process per node, restarted when it dies (see :mod:`.launcher`).
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from .errors import TopologyError
from .launcher import Launcher
from .runtime import Runtime

PR_SET_PDEATHSIG = 1


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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m mycelium_shm.bus")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="host one node's services in this process")
    run.add_argument("topology", type=Path)
    run.add_argument("--node", required=True)
    run.add_argument("--parent-pid", type=int, help="get SIGTERM when this parent process dies")
    launch = sub.add_parser("launch", help="one supervised process per node")
    launch.add_argument("topology", type=Path)
    launch.add_argument("--node", action="append", dest="nodes")
    launch.add_argument("--log-dir", type=Path)
    for p in (run, launch):
        p.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s",
    )
    try:
        if args.command == "run":
            if args.parent_pid is not None:
                die_with_parent(args.parent_pid)
            sys.path.insert(0, str(args.topology.resolve().parent))
            runtime = Runtime.from_topology(args.topology, args.node)
            return runtime.run()
        launcher = Launcher(
            args.topology, nodes=args.nodes, log_dir=args.log_dir, log_level=args.log_level
        )
        return launcher.run()
    except (TopologyError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{parser.prog}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
