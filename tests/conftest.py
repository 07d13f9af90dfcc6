"""Shared fixtures: unique channel names that are always unlinked, and child
processes that are always reaped, whatever the test's outcome."""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from mycelium_shm import Schema, unlink
from mycelium_shm.bus import MessageBus
from mycelium_shm.bus.transports.socket import SocketLink

ROOT = Path(__file__).resolve().parent.parent
WORKERS = Path(__file__).resolve().parent / "workers.py"


def poke(name: str, offset: int, fmt: str, value: int) -> None:
    """Overwrite bytes of channel NAME's object as a hostile process would."""
    fd = os.open(f"/dev/shm/mycelium.{name}", os.O_RDWR)
    try:
        with mmap.mmap(fd, os.fstat(fd).st_size) as mem:
            struct.pack_into(fmt, mem, offset, value)
    finally:
        os.close(fd)


@pytest.fixture
def channel_names() -> Iterator[Callable[[], str]]:
    """A factory of fresh channel names; every channel made is unlinked at teardown."""
    made: list[str] = []

    def make() -> str:
        name = f"test-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        made.append(name)
        return name

    yield make
    for name in made:
        unlink(name, missing_ok=True)


@pytest.fixture
def channel(channel_names: Callable[[], str]) -> Callable[[], str]:
    """The same factory under the name the bus tests use."""
    return channel_names


@pytest.fixture(scope="module")
def schema() -> Schema:
    """The example trading schema (schemas/trading.toml)."""
    return Schema.load(ROOT / "schemas" / "trading.toml")


@pytest.fixture
def buses(schema: Schema) -> Iterator[Callable[[str], MessageBus]]:
    """A factory of MessageBus on the trading schema, all closed at teardown."""
    made: list[MessageBus] = []

    def make(name: str) -> MessageBus:
        bus = MessageBus(schema, name=name)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.close(timeout=1)


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Registers objects to close at teardown, even when the test fails
    (bus links get a bounded flush)."""
    objects: list[Any] = []

    def register(obj: Any) -> Any:
        objects.append(obj)
        return obj

    yield register
    for obj in reversed(objects):
        if isinstance(obj, SocketLink):
            obj.close(timeout=1)
        else:
            obj.close()


@pytest.fixture
def channel_name(channel_names: Callable[[], str]) -> str:
    """One fresh channel name, unlinked at teardown."""
    return channel_names()


class Processes:
    """Starts helper processes (tests/workers.py) and reaps them all."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, stdout: int | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(
            [sys.executable, str(WORKERS), *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.started.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 60) -> str:
        """Run a worker to completion; its stdout (raises on failure)."""
        proc = self.start(*args)
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"worker {args} exited {proc.returncode}: {err.decode()}")
        return out.decode()

    def reap(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def procs() -> Iterator[Processes]:
    """Start worker processes; all are killed (if needed) and reaped at teardown."""
    manager = Processes()
    try:
        yield manager
    finally:
        manager.reap()
