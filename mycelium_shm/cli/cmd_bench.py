"""``mycelium-shm bench [ARGS...]``: run the benchmark suite (``python -m bench``).

The suite lives in the ``bench`` package of a source checkout, beside
``mycelium_shm``; it is looked up there first, then on ``sys.path``.  ARGS
are passed through unchanged (``mycelium-shm bench --help`` shows them).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from ._common import CliError

__all__ = ["find_bench", "main"]


def find_bench() -> Optional[Path]:
    """The directory to run ``python -m bench`` from, or None if there is no suite."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "bench" / "__main__.py").is_file():
        return checkout
    try:
        spec = importlib.util.find_spec("bench.__main__")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parents[1]


def main(argv: Sequence[str]) -> int:
    root = find_bench()
    if root is None:
        raise CliError(
            "the benchmark suite (package 'bench') is not importable: "
            "run from a mycelium-shm source checkout"
        )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(root), env.get("PYTHONPATH"))))
    return subprocess.call([sys.executable, "-m", "bench", *argv], cwd=root, env=env)
