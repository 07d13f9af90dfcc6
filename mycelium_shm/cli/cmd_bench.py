"""``mycelium-shm bench [ARGS...]``: run the benchmark suite (``python -m bench``).

The suite lives in the ``bench`` package of a source checkout, beside
``mycelium_shm``; it is looked up there first, then on ``sys.path``.  An
installed package has no suite: the command then says, in one line, how to
run it from a checkout (``make bench``).  ARGS
are passed through unchanged (``mycelium-shm bench --help`` shows them).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from ._common import CliError, emit_json

__all__ = ["NOT_INSTALLED", "find_bench", "main"]

#: The one line ``mycelium-shm bench`` prints where there is no suite (an
#: installed package: the suite is not part of the wheel).
NOT_INSTALLED = (
    "the benchmark suite is not installed with the package: in a mycelium-shm source "
    "checkout run `make bench` (or `make bench-quick`, about 1 min)"
)


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


def _out_dir(words: Sequence[str], root: Path) -> Path:
    """The --out directory of a bench command line (bench/results by default)."""
    out: Optional[str] = None
    for i, word in enumerate(words):
        if word == "--out" and i + 1 < len(words):
            out = words[i + 1]
        elif word.startswith("--out="):
            out = word.split("=", 1)[1]
    return root / "bench" / "results" if out is None else (root / out)


def main(argv: Sequence[str]) -> int:
    """Run the suite; with ``--json`` (taken out of ARGS) its output goes to
    stderr and stdout gets one JSON object: status and where the results are."""
    words = list(argv)
    as_json = "--json" in words and not ("-h" in words or "--help" in words)
    words = [w for w in words if w != "--json"] if as_json else words
    root = find_bench()
    if root is None:
        raise CliError(NOT_INSTALLED)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(root), env.get("PYTHONPATH"))))
    if not as_json:
        return subprocess.call([sys.executable, "-m", "bench", *words], cwd=root, env=env)
    try:
        # The suite's own report goes to stderr: stdout is for the JSON object.
        log: Any = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        log = subprocess.DEVNULL
    status = subprocess.call([sys.executable, "-m", "bench", *words], cwd=root, env=env, stdout=log)
    out = _out_dir(words, root)
    results = out / "results.json"
    emit_json(
        {
            "status": status,
            "out": str(out),
            "results_json": str(results) if results.is_file() else None,
            "results_md": str(out / "results.md") if (out / "results.md").is_file() else None,
        }
    )
    return status
