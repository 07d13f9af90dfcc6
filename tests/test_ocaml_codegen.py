"""The OCaml code generator (mycelium_shm/codegen/ocaml.py) and its committed output.

The generated modules under bindings/ocaml are committed; these tests
regenerate them into a temporary directory and fail when the committed files
differ, so a schema or generator change cannot land without its output.
They need Python only (the OCaml side is compiled by tests/test_ocaml_dune.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mycelium_shm.codegen import get_generator
from mycelium_shm.codegen.ocaml import module_file_stem, render
from mycelium_shm.errors import SchemaError
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent

#: (schema file, committed output directory), both relative to ROOT.
OUTPUTS = [
    ("schemas/trading.toml", "bindings/ocaml/generated"),
    ("tests/vectors/schema.toml", "bindings/ocaml/test/vectors"),
]


@pytest.mark.parametrize(("schema_file", "out_dir"), OUTPUTS)
def test_committed_output_is_fresh(
    schema_file: str, out_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regenerating from the schema gives exactly the committed .ml and .mli."""
    monkeypatch.chdir(ROOT)  # the header names the schema relative to the cwd
    written = get_generator("ocaml")(Schema.load(schema_file), tmp_path, Path(schema_file))
    assert [p.name for p in written] == [
        f"{module_file_stem(Path(schema_file))}.ml",
        f"{module_file_stem(Path(schema_file))}.mli",
    ]
    for fresh in written:
        committed = ROOT / out_dir / fresh.name
        assert committed.exists(), f"{committed} is missing: run the generator"
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{committed.relative_to(ROOT)} is stale: run "
            f"python -m mycelium_shm.codegen --lang ocaml {schema_file} -o {out_dir}/"
        )


@pytest.mark.parametrize(("schema_file", "out_dir"), OUTPUTS)
def test_digest_constant_equals_python(schema_file: str, out_dir: str) -> None:
    """The committed schema_digest literal holds the Python model's digest bytes."""
    schema = Schema.load(ROOT / schema_file)
    ml = (ROOT / out_dir / f"{module_file_stem(Path(schema_file))}.ml").read_text()
    m = re.search(r'^let schema_digest = "((?:\\x[0-9a-f]{2}){32})"$', ml, re.M)
    assert m, "no schema_digest literal"
    assert bytes.fromhex(m.group(1).replace("\\x", "")) == schema.digest
    assert f'let schema_digest_hex = "{schema.digest_hex}"' in ml


def test_command_line(tmp_path: Path) -> None:
    """python -m mycelium_shm.codegen --lang ocaml writes and lists both files."""
    out = tmp_path / "gen"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mycelium_shm.codegen",
            "--lang",
            "ocaml",
            "schemas/trading.toml",
            "-o",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(out / "trading.ml"), str(out / "trading.mli")]


def test_output_is_deterministic() -> None:
    """The same model renders to the same text twice."""
    schema = Schema.load(ROOT / "tests/vectors/schema.toml")
    assert render(schema.model, schema.digest, "x.toml") == render(
        schema.model, schema.digest, "x.toml"
    )


def test_nested_messages_come_first() -> None:
    """A nested message's module precedes its users even when declared after them."""
    schema = Schema.from_toml_str(
        """
        [[message]]
        name = "Outer"
        id = 1
        fields = [{ name = "inner", type = "Inner" }]
        [[message]]
        name = "Inner"
        id = 2
        fields = [{ name = "x", type = "u8" }]
        """
    )
    ml, mli = render(schema.model, schema.digest, "s.toml")
    for text in (ml, mli):
        assert text.index("module Inner ") < text.index("module Outer ")
    # Nested fields are flattened with literal error paths.
    assert 'C_.u8 c "Outer.inner" "x"' in ml


def test_docs_cannot_break_comments() -> None:
    """Doc strings with quotes, comment delimiters and odoc markup are neutralised."""
    schema = Schema.from_toml_str(
        """
        [[message]]
        name = "Odd"
        id = 1
        doc = 'Ends a comment *) opens (* one, a "quote, a {|quoted|} string, [code] and @tag'
        fields = [{ name = "x", type = "u8", doc = 'one " quote' }]
        """
    )
    _, mli = render(schema.model, schema.digest, "s.toml")
    doc = next(line for line in mli.splitlines() if "Ends a comment" in line)
    body = doc.strip()[len("(**") : -len("*)")]
    assert "*)" not in body and "(*" not in body and '"' not in body
    assert not re.search(r"\{[%A-Za-z0-9_.']*\|", body)
    assert "\\[code\\]" in body and "\\@tag" in body
    assert '"' not in next(line for line in mli.splitlines() if "one " in line and "quote" in line)


def test_stdlib_message_name_refused() -> None:
    """A message named Stdlib would hide the standard library: refused with a SchemaError."""
    schema = Schema.from_toml_str(
        """
        [[message]]
        name = "Stdlib"
        id = 1
        fields = []
        """
    )
    with pytest.raises(SchemaError, match="Stdlib"):
        render(schema.model, schema.digest, "s.toml")


@pytest.mark.parametrize(
    ("path", "stem"),
    [
        ("schemas/trading.toml", "trading"),
        ("a/My-Schema.v2.toml", "my_schema_v2"),
        ("x/2fast.toml", "m_2fast"),
    ],
)
def test_module_file_stem(path: str, stem: str) -> None:
    """The module file is named after the schema file, as a valid OCaml module name."""
    assert module_file_stem(Path(path)) == stem
