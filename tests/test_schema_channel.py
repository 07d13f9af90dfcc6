"""Channels with a schema: digest stored and checked, send/recv, unknown types."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mycelium_shm import (
    DecodeError,
    Schema,
    SchemaMismatch,
    ShmReader,
    ShmWriter,
    inspect,
)

ROOT = Path(__file__).resolve().parent.parent
TRADING = ROOT / "schemas" / "trading.toml"


@pytest.fixture(scope="module")
def trading() -> Schema:
    return Schema.load(TRADING)


@pytest.fixture
def renamed_schema(tmp_path: Path) -> Path:
    """trading.toml with one field renamed: a different digest."""
    text = TRADING.read_text().replace('name = "bid_size"', 'name = "bid_qty"')
    path = tmp_path / "renamed.toml"
    path.write_text(text)
    return path


def tick(schema: Schema, seq: int) -> object:
    return schema.MarketTick(
        symbol="EURUSD",
        seq=seq,
        ts_ns=1_700_000_000_000_000_000 + seq,
        bid=1.0842,
        ask=1.0844,
        bid_size=1_000_000,
        ask_size=2_500_000,
    )


def test_send_and_recv_messages(channel_name: str, trading: Schema) -> None:
    """Messages sent with a schema arrive decoded and equal, with the digest in the header."""
    with (
        ShmWriter(channel_name, create=True, capacity=1 << 16, schema=trading) as w,
        ShmReader(channel_name, schema=trading) as r,
    ):
        assert inspect(channel_name).schema_digest == trading.digest
        sent = [tick(trading, i) for i in range(100)]
        for message in sent:
            w.send(message)
        assert [r.recv(timeout=1) for _ in sent] == sent
        assert r.recv(timeout=0.01) is None


def test_unknown_type_raises_or_is_skipped(channel_name: str, trading: Schema) -> None:
    """A frame of a type the schema lacks raises DecodeError, or is counted and skipped."""
    with (
        ShmWriter(channel_name, create=True, capacity=1 << 16, schema=trading) as w,
        ShmReader(channel_name, schema=trading) as r,
    ):
        w.write(999, b"not a message")
        with pytest.raises(DecodeError, match="999"):
            r.recv(timeout=1)
        w.write(999, b"not a message")
        w.send(tick(trading, 7))
        assert r.recv(timeout=1, on_unknown="skip") == tick(trading, 7)
        assert r.unknown_skipped == 1


def test_known_type_with_bad_payload_is_never_skipped(channel_name: str, trading: Schema) -> None:
    """on_unknown='skip' skips only unknown types; a corrupt MarketTick still raises."""
    with ShmReader(channel_name, create=True, capacity=1 << 16, schema=trading) as r:
        with ShmWriter(channel_name) as raw:  # no schema: raw access to any channel
            raw.write(1, b"\x03\x00")  # MarketTick cut short
        with pytest.raises(DecodeError):
            r.recv(timeout=1, on_unknown="skip")


def test_schema_mismatch_in_process(
    channel_name: str, trading: Schema, renamed_schema: Path
) -> None:
    """A different schema is refused with both digest prefixes; no schema means raw access."""
    other = Schema.load(renamed_schema)
    assert other.digest != trading.digest
    with ShmWriter(channel_name, create=True, capacity=4096, schema=trading):
        with pytest.raises(SchemaMismatch) as info:
            ShmReader(channel_name, schema=other)
        assert trading.digest.hex()[:16] in str(info.value)
        assert other.digest.hex()[:16] in str(info.value)
        ShmReader(channel_name).close()


ATTACH = """
import sys
from mycelium_shm import Schema, ShmReader, ShmWriter
schema = Schema.load(sys.argv[3])
try:
    handle = (ShmReader if sys.argv[2] == "reader" else ShmWriter)(sys.argv[1], schema=schema)
except Exception as exc:
    print(type(exc).__name__, exc)
else:
    handle.close()
    print("attached")
"""


def attach_from_another_process(name: str, role: str, schema_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", ATTACH, name, role, str(schema_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("role", ["reader", "writer"])
def test_schema_mismatch_across_processes(
    channel_name: str, trading: Schema, renamed_schema: Path, role: str
) -> None:
    """Another process with a different schema is turned away, as reader or writer; the same schema attaches."""
    with ShmWriter(channel_name, create=True, capacity=4096, schema=trading):
        refused = attach_from_another_process(channel_name, role, renamed_schema)
        assert refused.startswith("SchemaMismatch ")
        assert Schema.load(renamed_schema).digest.hex()[:16] in refused
        assert attach_from_another_process(channel_name, role, TRADING) == "attached"
