"""The OCaml binding builds, its own test suite passes, and generated code compiles.

Runs ``dune build`` and ``dune test`` in bindings/ocaml (the alcotest suites:
the shared vectors both ways, the invalid cases, the channel API), then
compiles the generator's output for a schema full of awkward names.  Needs
the OCaml toolchain of scripts/install-ocaml.sh; without it these tests fail
(they never skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mycelium_shm.codegen.ocaml import render
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent
OCAML = ROOT / "bindings" / "ocaml"


def _dune(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    if shutil.which("dune") is None:
        pytest.fail("dune is not installed: run scripts/install-ocaml.sh")
    return subprocess.run(
        ["dune", *args, "--root", str(OCAML)],
        cwd=OCAML,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "MYCELIUM_VECTORS": str(ROOT / "tests" / "vectors")},
    )


@pytest.fixture(scope="module")
def built() -> None:
    proc = _dune("build")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dune_test_passes(built: None) -> None:
    """`dune test` (vectors both ways, invalid cases, channel API) succeeds."""
    proc = _dune("test", "--force")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Test Successful" in out
    assert "FAIL" not in out


AWKWARD = """
[[message]]
name = "Ok"
id = 1
doc = 'Shadows the result constructor; doc with *) and (* and "quotes" and {|x|}.'
fields = [{ name = "v1", type = "u8" }, { name = "name", type = "str" }]

[[message]]
name = "Error"
id = 2
fields = [{ name = "m", type = "Ok" }, { name = "type_id", type = "u64" },
          { name = "fields", type = "Buffer" }]

[[message]]
name = "Buffer"
id = 3
fields = []

[[message]]
name = "Array"
id = 4
fields = [{ name = "b", type = "Buffer" }, { name = "c", type = "[u64]" },
          { name = "x", type = "[bool]" }]

[[message]]
name = "C"
id = 5
fields = [{ name = "c", type = "str" }, { name = "s", type = "bytes[3]" },
          { name = "e", type = "Error" }]

[[message]]
name = "String"
id = 65535
fields = [{ name = "list", type = "bytes" }, { name = "int64", type = "i64" }]
"""


def test_awkward_names_compile(built: None, tmp_path: Path) -> None:
    """Messages named Ok, Error, Buffer, Array, C, String and odd docs still compile."""
    schema = Schema.from_toml_str(AWKWARD)
    ml, mli = render(schema.model, schema.digest, "awkward.toml")
    (tmp_path / "awkward.ml").write_text(ml)
    (tmp_path / "awkward.mli").write_text(mli)
    objs = OCAML / "_build" / "default" / "codec" / ".mycelium_codec.objs"
    proc = subprocess.run(
        [
            "ocamlfind",
            "ocamlopt",
            "-w",
            "+a-4-40-41-42-44-45-70",
            "-warn-error",
            "+a",
            "-I",
            str(objs / "byte"),
            "-I",
            str(objs / "native"),
            "-c",
            "awkward.mli",
            "awkward.ml",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "awkward.cmx").exists()
