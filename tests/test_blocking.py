"""Waiting costs no CPU, and a blocked call answers Ctrl-C promptly."""

from __future__ import annotations

import signal
import time

import psutil

from mycelium_shm import ShmWriter


def test_idle_blocked_reader_uses_under_5_percent_of_a_core(channel_name: str, procs) -> None:
    """A reader blocked for 2 s on an empty channel sleeps on its futex instead of spinning."""
    with ShmWriter(channel_name, create=True, capacity=4096):
        reader = procs.start("block-read", channel_name, "3")
        assert reader.stdout.readline().strip() == b"waiting"
        proc = psutil.Process(reader.pid)
        before = proc.cpu_times()
        started = time.monotonic()
        time.sleep(2.0)  # the measurement window itself, not a wait for a condition
        after = proc.cpu_times()
        elapsed = time.monotonic() - started
        cpu = (after.user - before.user) + (after.system - before.system)
        assert reader.poll() is None, "the reader should still be blocked"
        assert cpu / elapsed < 0.05, f"idle reader used {cpu / elapsed:.1%} of a core"


def test_blocked_read_answers_ctrl_c_within_100_ms(channel_name: str, procs) -> None:
    """SIGINT to a process blocked in read(timeout=None) raises KeyboardInterrupt within 100 ms."""
    with ShmWriter(channel_name, create=True, capacity=4096):
        reader = procs.start("block-read", channel_name, "none")
        assert reader.stdout.readline().strip() == b"waiting"
        deadline = time.monotonic() + 5
        while psutil.Process(reader.pid).status() != psutil.STATUS_SLEEPING:
            assert time.monotonic() < deadline, "the reader never went to sleep"
        sent = time.monotonic()
        reader.send_signal(signal.SIGINT)
        line = reader.stdout.readline().decode().split()
        assert line[0] == "interrupted", line
        assert float(line[1]) - sent < 0.1


def test_blocked_writer_wakes_when_reader_frees_room(channel_name: str) -> None:
    """A writer waiting on a full ring resumes when the reader consumes (futex wake)."""
    import threading

    from mycelium_shm import ShmReader

    with ShmWriter(channel_name, create=True, capacity=1024) as w, ShmReader(channel_name) as r:
        while w.try_write(1, b"z" * 120):
            pass
        timer = threading.Timer(0.2, r.read)
        timer.start()
        w.write(2, b"z" * 120, timeout=5)
        timer.join()
        assert w.stats()["reader_wakes"] >= 1
