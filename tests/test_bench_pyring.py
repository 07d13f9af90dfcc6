"""The pure-Python baseline ring (bench/baseline_pyring.py) is correct, so ratios against it mean something."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a directory of the repo, not installed
    sys.path.insert(0, str(ROOT))

from bench.baseline_pyring import PyRing, unlink  # noqa: E402


@pytest.fixture
def ring_name() -> Iterator[str]:
    """A fresh segment name, unlinked at teardown."""
    name = f"pyr-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    unlink(name)


def test_payloads_survive_many_wraps(ring_name: str) -> None:
    """Random-size records written and read back through 50 wraps arrive intact."""
    producer = PyRing(ring_name, create=True, capacity=4096)
    consumer = PyRing(ring_name)
    rng = random.Random(7)
    for i in range(5000):
        payload = bytes([i % 251]) * rng.randrange(0, 300)
        producer.write(payload)
        assert consumer.read() == payload
    assert producer._tail > 50 * 4096
    producer.close()
    consumer.close()


def test_full_and_empty_are_reported_not_waited_on(ring_name: str) -> None:
    """try_write says False on a full ring, try_read None on an empty one."""
    producer = PyRing(ring_name, create=True, capacity=1024)
    consumer = PyRing(ring_name)
    assert consumer.try_read() is None
    written = 0
    while producer.try_write(b"x" * 60):
        written += 1
    assert written == 1024 // 64
    assert [consumer.try_read() for _ in range(written)] == [b"x" * 60] * written
    assert consumer.try_read() is None
    producer.close()
    consumer.close()


def test_oversized_payload_is_refused(ring_name: str) -> None:
    """A record larger than half the ring raises ValueError instead of deadlocking."""
    producer = PyRing(ring_name, create=True, capacity=1024)
    with pytest.raises(ValueError):
        producer.write(bytes(600))
    producer.close()


def test_records_cross_processes_in_order(ring_name: str) -> None:
    """A forked producer's 20 000 numbered records reach the consumer in order."""
    PyRing(ring_name, create=True, capacity=8192).close()
    pid = os.fork()
    if pid == 0:  # the producer: never returns into pytest
        code = 1
        try:
            ring = PyRing(ring_name)
            for i in range(20000):
                ring.write(i.to_bytes(4, "little") * (1 + i % 40))
            ring.close()
            code = 0
        finally:
            os._exit(code)
    consumer = PyRing(ring_name)
    try:
        for i in range(20000):
            assert consumer.read() == i.to_bytes(4, "little") * (1 + i % 40)
    finally:
        _, status = os.waitpid(pid, 0)
        consumer.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_attaching_process_does_not_unlink_on_exit(ring_name: str) -> None:
    """A separate Python process that attaches and exits normally leaves the segment in place."""
    PyRing(ring_name, create=True, capacity=1024).close()
    code = f"from bench.baseline_pyring import PyRing; PyRing({ring_name!r}).close()"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "leaked" not in proc.stderr
    PyRing(ring_name).close()  # still there: attaching again works
