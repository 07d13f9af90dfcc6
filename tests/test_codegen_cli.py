"""Tests of the code generator command line and its language registry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mycelium_shm import codegen
from mycelium_shm.protocol import Schema

ROOT = Path(__file__).resolve().parent.parent
TRADING = ROOT / "schemas" / "trading.toml"


@pytest.fixture
def registry() -> Iterator[dict[str, object]]:
    """The language registry, restored after the test."""
    saved = dict(codegen.LANGUAGES)
    yield codegen.LANGUAGES  # type: ignore[misc]
    codegen.LANGUAGES.clear()
    codegen.LANGUAGES.update(saved)


def test_registry_lists_rust_ocaml_json() -> None:
    """rust, ocaml and json are registered."""
    assert {"rust", "ocaml", "json"} <= set(codegen.LANGUAGES)


def test_json_language_writes_the_model(tmp_path: Path) -> None:
    """--lang json writes schema.json holding the model and digest."""
    assert codegen.main(["--lang", "json", str(TRADING), "-o", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "schema.json").read_text(encoding="utf-8"))
    schema = Schema.load(TRADING)
    assert data["digest"] == schema.digest_hex
    assert data["canonical"] == schema.model.canonical_text()
    tick = data["messages"][0]
    assert tick["name"] == "MarketTick" and tick["type_id"] == 1
    assert tick["fields"][1] == {
        "name": "seq",
        "doc": "Feed sequence number, gap free per feed.",
        "type": "u64",
        "kind": "scalar",
        "scalar": "u64",
        "length": None,
        "message": None,
        "fixed_size": 8,
    }


def test_registered_function_is_called(tmp_path: Path, registry: dict[str, object]) -> None:
    """A language registered as a function gets the schema, the directory and the source."""
    seen: list[tuple[Schema, Path, Path]] = []

    def fake(schema: Schema, out: Path, source: Path) -> list[Path]:
        seen.append((schema, out, source))
        path = out / "x.txt"
        path.write_text(schema.digest_hex, encoding="utf-8")
        return [path]

    codegen.register("fake", fake)
    assert codegen.main(["--lang", "fake", str(TRADING), "-o", str(tmp_path)]) == 0
    assert seen[0][1] == tmp_path and seen[0][2] == TRADING
    assert (tmp_path / "x.txt").read_text(encoding="utf-8") == seen[0][0].digest_hex


def test_unknown_language(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown language exits 1 with a message listing the known ones."""
    assert codegen.main(["--lang", "cobol", str(TRADING), "-o", str(tmp_path)]) == 1
    assert "unknown language 'cobol'" in capsys.readouterr().err


def test_uninstalled_language(
    tmp_path: Path, registry: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    """A language whose module is missing exits 1 and says so."""
    codegen.register("ghost", "mycelium_shm.codegen.no_such_module")
    assert codegen.main(["--lang", "ghost", str(TRADING), "-o", str(tmp_path)]) == 1
    assert "is not installed" in capsys.readouterr().err


def test_invalid_schema_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A broken schema file exits 1 with the SchemaError text."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[message]]\nname = "M"\nid = 0\nfields = []\n', encoding="utf-8")
    assert codegen.main(["--lang", "json", str(bad), "-o", str(tmp_path / "o")]) == 1
    assert "0 is reserved" in capsys.readouterr().err


def test_missing_schema_file(tmp_path: Path) -> None:
    """A schema path that does not exist exits 1."""
    assert codegen.main(["--lang", "json", str(tmp_path / "nope.toml"), "-o", str(tmp_path)]) == 1


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """Missing --lang, SCHEMA or -o exits 2."""
    assert codegen.main(["--lang", "json"]) == 2
    assert "required" in capsys.readouterr().err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    """--list prints one language per line."""
    assert codegen.main(["--list"]) == 0
    assert {"json", "rust", "ocaml"} <= set(capsys.readouterr().out.split())


def test_python_dash_m(tmp_path: Path) -> None:
    """python -m mycelium_shm.codegen runs main and prints the written paths."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mycelium_shm.codegen",
            "--lang",
            "json",
            str(TRADING),
            "-o",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == str(tmp_path / "schema.json")
