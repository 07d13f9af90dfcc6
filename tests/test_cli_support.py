"""Helpers shared by the CLI tests, and the CLI's formatting helpers' own tests."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import ROOT, Processes

from mycelium_shm.cli._common import format_age, format_bytes, format_pid, render_table


def start_holder(procs: Processes, name: str, role: str, create: bool) -> subprocess.Popen[bytes]:
    """A worker that opens NAME as ROLE (creating it if asked), once it says ready."""
    proc = procs.start("cli-hold", name, role, "create" if create else "attach")
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


def killed_holder(procs: Processes, name: str, role: str = "writer", create: bool = True) -> int:
    """Start a holder, SIGKILL it and reap it; its pid (now dead, still registered)."""
    proc = start_holder(procs, name, role, create)
    proc.kill()
    proc.wait(timeout=10)  # reaped: a zombie would still count as alive
    return proc.pid


def wait_stopped(pid: int, timeout: float = 10) -> None:
    """Until process PID is stopped (state T in /proc/PID/stat)."""
    deadline = time.monotonic() + timeout
    while True:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        assert time.monotonic() < deadline, f"process {pid} did not stop"
        time.sleep(0.001)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m mycelium_shm ARGS` in a child process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "mycelium_shm", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def assert_one_error_line(stderr: str, *fragments: str) -> None:
    """stderr is exactly one `mycelium-shm: error: ...` line holding every fragment."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("mycelium-shm: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr


def test_format_helpers() -> None:
    """Sizes, ages and pids read naturally."""
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(1 << 20) == "1.0 MiB"
    assert format_age(42) == "42s"
    assert format_age(185) == "3m05s"
    assert format_age(2 * 86400 + 3 * 3600) == "2d03h"
    assert format_pid(0, False) == "-"
    assert format_pid(12, True) == "12"
    assert format_pid(12, False) == "12(dead)"


def test_render_table_pads_columns_and_lets_short_rows_run_on() -> None:
    """Columns line up; a name-and-error row does not widen the columns."""
    text = render_table(("A", "BB", "C"), [["x", "1", "2"], ["yyy", "a long error message"]])
    assert text.splitlines() == ["A    BB  C", "x    1   2", "yyy  a long error message"]


def test_unique_writers_lists_each_pid_once() -> None:
    """Registry slots (one per writing thread) become one entry per pid, alive if any is."""
    from mycelium_shm.cli._common import unique_writers

    slots = [(7, False)] * 30 + [(9, True), (7, True), (9, False)]
    assert unique_writers(slots) == [(7, True), (9, True)]
