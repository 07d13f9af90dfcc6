"""Install a built wheel into a fresh venv outside the checkout and use it there.

    python scripts/check-wheel.py dist/mycelium_shm-...-manylinux_...whl

Run by ``make wheel`` (part of ``make test``).  Checks, with the checkout
out of sight (temporary directory as cwd, ``python -I``):

* the wheel installs (its dependencies come from PyPI);
* ``mycelium_shm`` is imported from the venv, and a frame is written and read
  back through a channel, raw and as a message of the trading schema;
* ``schemas/trading.toml`` is inside the installed package
  (``mycelium_shm.schemas.path("trading")``), byte for byte the checkout's;
* ``mycelium-shm bench``, which needs the source checkout, fails with one
  line that says how to run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECK = r"""
import os, sys
from pathlib import Path
import mycelium_shm
from mycelium_shm import Schema, ShmReader, ShmWriter, schemas, unlink

package = Path(mycelium_shm.__file__).resolve().parent
assert Path(sys.prefix).resolve() in package.parents, package
schema_file = schemas.path("trading")
assert schema_file.resolve().parent == package / "schemas", schema_file
assert schema_file.read_bytes() == Path(sys.argv[1]).read_bytes(), "stale schema copy"

name = f"wheel-check-{os.getpid()}"
schema = Schema.load(schema_file)
try:
    with ShmWriter(name, create=True, capacity=1 << 16, schema=schema) as w, \
            ShmReader(name, schema=schema) as r:
        w.write(7, b"hello", timeout=1.0)
        frame = r.read(timeout=1.0)
        assert frame is not None and tuple(frame) == (7, b"hello"), frame
        w.send(schema.Stop(last_seq=1, reason="wheel"), timeout=1.0)
        stop = r.recv(timeout=1.0)
        assert stop is not None and stop.reason == "wheel", stop
finally:
    unlink(name, missing_ok=True)
print(f"wheel ok: {package}, {schema_file.name} inside, a frame written and read")
"""


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    wheel = Path(argv[0]).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="mycelium-wheel-"))
    try:
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
            check=True,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        subprocess.run(
            [python, "-I", "-c", CHECK, str(ROOT / "schemas" / "trading.toml")],
            cwd=tmp,
            env=env,
            check=True,
        )
        bench = subprocess.run(
            [str(venv / "bin" / "mycelium-shm"), "bench", "--quick"],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = bench.stderr.splitlines()
        if bench.returncode != 1 or len(lines) != 1 or "make bench" not in lines[0]:
            print(
                f"check-wheel: mycelium-shm bench outside a checkout: exit "
                f"{bench.returncode}, stderr {bench.stderr!r}",
                file=sys.stderr,
            )
            return 1
        print(f"bench outside a checkout: {lines[0]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
