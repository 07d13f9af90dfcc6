"""The example trading pipeline gives the same results in all three deployments."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mycelium_shm import unlink

REPO = Path(__file__).resolve().parents[1]
PIPELINE = REPO / "examples" / "pipeline"
MODES = {
    "inprocess": "run_inprocess.py",
    "shm": "run_shm.py",
    "broadcast": "run_broadcast.py",
    "tcp": "run_tcp.py",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def summaries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Runs every mode once on private copies of the topologies (unique names, free ports)."""
    tmp = tmp_path_factory.mktemp("pipeline")
    prefix = f"pipeline-{os.getpid()}-{uuid.uuid4().hex[:6]}."
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    results: dict[str, str] = {}
    channels: list[str] = []
    try:
        for mode, script in MODES.items():
            text = (PIPELINE / f"{mode}.toml").read_text()
            text = text.replace("../../schemas/trading.toml", str(REPO / "schemas/trading.toml"))
            channels += [prefix + n for n in re.findall(r'name = "pipeline\.([\w.-]+)"', text)]
            text = text.replace('name = "pipeline.', f'name = "{prefix}')
            for port in re.findall(r"127\.0\.0\.1:(\d+)", text):
                text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
            topology = tmp / f"{mode}.toml"
            topology.write_text(text)
            proc = subprocess.run(
                [
                    sys.executable,
                    str(PIPELINE / script),
                    "--topology",
                    str(topology),
                    "--timeout",
                    "60",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
            )
            assert proc.returncode == 0, f"{mode}: {proc.stderr}"
            results[mode] = proc.stdout
        yield results
    finally:
        for name in channels:
            unlink(name, missing_ok=True)


def parse(stdout: str) -> dict[str, object]:
    lines = stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("SUMMARY "), stdout
    return json.loads(lines[0][len("SUMMARY ") :])


def test_every_mode_prints_one_summary_line(summaries):
    """Each runner prints exactly one SUMMARY line with fills and a checksum."""
    for stdout in summaries.values():
        summary = parse(stdout)
        assert summary["fills"] == summary["fills_announced"] and summary["fills"] > 0


def test_all_deployments_agree(summaries):
    """One process, one process per service over shm, and two over TCP give equal results."""
    assert parse(summaries["shm"]) == parse(summaries["inprocess"])
    assert parse(summaries["tcp"]) == parse(summaries["inprocess"])
