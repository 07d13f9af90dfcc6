"""Static types of the public API, checked with mypy (skipped without it):
``with ShmWriter(...) as w`` types ``w`` as ShmWriter, ``recv`` follows the
schema's message type, and the API and examples/ pass ``mypy --strict``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent
STRICT_FILES = [
    "mycelium_shm/__init__.py",
    "mycelium_shm/writer.py",
    "mycelium_shm/reader.py",
    "mycelium_shm/channel.py",
    "mycelium_shm/frame.py",
    "mycelium_shm/errors.py",
    "mycelium_shm/_handle.py",
    "mycelium_shm/_native.py",
    "mycelium_shm/aio.py",
    "examples",
]

SNIPPET = """
from __future__ import annotations

from typing import Any

from mycelium_shm import Frame, Schema, ShmReader, ShmWriter


class Tick:
    price: float


class TickSchema:
    @property
    def digest(self) -> bytes:
        return bytes(32)

    def encode(self, message: Any) -> tuple[int, bytes]:
        return 1, b""

    def decode(self, type_id: int, payload: Any) -> Tick:
        return Tick()


async def main(schema: Schema) -> None:
    with ShmWriter("t", create=True) as w, ShmReader("t") as r:
        reveal_type(w)
        reveal_type(r)
        reveal_type(r.read())
        reveal_type(await r.read_async(1.0))
        async for frame in r:
            reveal_type(frame)
            type_id, payload = frame
    with ShmReader("t", schema=TickSchema()) as typed:
        reveal_type(typed.recv())
    with ShmReader("t", schema=schema) as dynamic:
        reveal_type(dynamic.recv())
    plain: ShmReader = ShmReader("t")
    reveal_type(plain.recv(timeout=0))
    maybe: Frame | None = r.try_read()
"""


def run_mypy(*args: str) -> tuple[str, int]:
    out, err, status = api.run(["--strict", "--no-incremental", "--no-error-summary", *args])
    return out + err, status


def test_public_api_and_examples_pass_mypy_strict() -> None:
    out, status = run_mypy("--follow-imports=silent", *(str(ROOT / name) for name in STRICT_FILES))
    assert status == 0, out


def test_revealed_types(tmp_path: Path) -> None:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(SNIPPET))
    out, _ = run_mypy("--follow-imports=silent", str(path))
    revealed = [
        line.split("Revealed type is ", 1)[1].strip('"')
        for line in out.splitlines()
        if "Revealed type is" in line
    ]
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert errors == [], out
    assert revealed == [
        "mycelium_shm.writer.ShmWriter",
        "mycelium_shm.reader.ShmReader[Any]",
        "mycelium_shm.frame.Frame | None",
        "mycelium_shm.frame.Frame | None",
        "mycelium_shm.frame.Frame",
        "snippet.Tick | None",
        "Any | None",
        "Any | None",
    ], out
