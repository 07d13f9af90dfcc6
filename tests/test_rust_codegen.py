"""The Rust code generator (mycelium_shm/codegen/rust.py) and its committed output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mycelium_shm.codegen import main as codegen_main
from mycelium_shm.codegen.rust import FILES, render
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent
RUST = ROOT / "bindings" / "rust"

#: (schema, committed output directory) pairs; the directory names matter
#: (``generated`` is the library module, see rust.generate).
OUTPUTS = [
    ("schemas/trading.toml", RUST / "src" / "generated"),
    ("tests/vectors/schema.toml", RUST / "tests" / "vectors_schema"),
]


@pytest.mark.parametrize(("schema", "committed"), OUTPUTS, ids=["trading", "vectors"])
def test_committed_rust_code_is_fresh(
    schema: str, committed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regenerating from the schema gives exactly the committed files."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / committed.name
    assert codegen_main(["--lang", "rust", schema, "-o", str(out)]) == 0
    for name in FILES:
        fresh = (out / name).read_text(encoding="utf-8")
        old = (committed / name).read_text(encoding="utf-8")
        assert fresh == old, (
            f"{committed / name} is stale: run "
            f"python -m mycelium_shm.codegen --lang rust {schema} -o {committed.relative_to(ROOT)}/"
        )
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)


@pytest.mark.parametrize(("schema", "committed"), OUTPUTS, ids=["trading", "vectors"])
def test_rust_digest_equals_python_digest(schema: str, committed: Path) -> None:
    """SCHEMA_DIGEST in the committed Rust code is the Python schema's digest."""
    text = (committed / "mod.rs").read_text(encoding="utf-8")
    m = re.search(r"pub const SCHEMA_DIGEST: \[u8; 32\] = \[(.*?)\];", text, re.S)
    assert m is not None
    digest = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-f]{2})", m.group(1)))
    assert digest == Schema.load(ROOT / schema).digest


def test_generation_is_deterministic() -> None:
    """The same model renders to the same text twice."""
    model = Schema.load(ROOT / "tests/vectors/schema.toml").model
    assert render(model, "s") == render(model, "s")


def test_std_names_cannot_be_shadowed_by_messages() -> None:
    """Messages named like std types still generate absolute std paths."""
    schema = Schema.from_toml_str(
        '[[message]]\nname = "String"\nid = 1\nfields = [{ name = "v", type = "[u8]" }]\n'
        '[[message]]\nname = "Vec"\nid = 2\nfields = [{ name = "s", type = "String" },'
        ' { name = "t", type = "str" }, { name = "k", type = "bytes[64]" }]\n'
    )
    mod_rs = render(schema.model, "s")["mod.rs"]
    assert "pub v: ::std::vec::Vec<u8>," in mod_rs
    assert "pub t: ::std::string::String," in mod_rs
    assert "pub s: String," in mod_rs  # the message, by its own name
    # [u8; 64] has no Default impl in std: Vec spells its Default out.
    assert "impl ::std::default::Default for Vec {" in mod_rs
    assert "k: [0; 64]," in mod_rs
