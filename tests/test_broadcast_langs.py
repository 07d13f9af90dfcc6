"""Broadcast channels across languages: Python writers, and readers in
Python, Rust and OCaml on one channel at the same time.

The writers are tests/workers.py bc-writer processes (self-describing frames
of random sizes: writer, sequence number, bytes derived from both).  The
readers are workers.py bc-reader and its twins, the bc_reader examples of
bindings/rust/examples and bindings/ocaml/examples: each checks every byte
and the per-writer order, counts the gaps the sequence numbers show, and
prints the same JSON line, with the reader's own lost/laps/untethers counts
(plus ``lapped_views``: zero-copy views overwritten while held).  The Rust and
OCaml readers read zero-copy (``peek_with`` / ``with_peek``) or by copy
(batches), by parameter.  Tested: four tethered readers in three languages
get every frame; stopped lossy readers count exactly what they lost; one
durable cursor is handed from Rust to OCaml to Python without loss or
duplicate.  Every process is reaped and every channel unlinked, even on
failure; without cargo or dune the tests fail rather than skip.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Processes
from lang_build import ocaml_exe, rust_example

from mycelium_shm import ShmWriter, cursors

ROOT = Path(__file__).resolve().parent.parent
RUST = ROOT / "bindings" / "rust"
OCAML = ROOT / "bindings" / "ocaml"


@pytest.fixture(scope="module")
def rust_bc_reader() -> Path:
    """bindings/rust/examples/bc_reader.rs, built in release mode."""
    return rust_example("bc_reader")


@pytest.fixture(scope="module")
def ocaml_bc_reader() -> Path:
    """bindings/ocaml/examples/bc_reader.ml, built with dune."""
    return ocaml_exe("./examples/bc_reader.exe")[0]


def _start(procs: Processes, program: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start a Rust or OCaml reader; reaped with the workers."""
    proc = subprocess.Popen([str(program), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs.started.append(proc)
    return proc


def _ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if line != "ready":
        err = proc.stderr.read().decode() if proc.stderr and proc.poll() is not None else ""
        raise AssertionError(f"{proc.args!r}: {line!r} {err}")


def _report(proc: subprocess.Popen[bytes], timeout: float = 300) -> dict[str, int]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, (proc.args, err.decode())
    report: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
    return report


@pytest.mark.parametrize(
    ("writers", "frames", "mode"),
    [(1, 1_000_000, "peek"), (3, 333_334, "batch")],
    ids=["1-writer-zero-copy", "3-writers-batch"],
)
def test_tethered_readers_in_three_languages_get_every_frame(
    procs: Processes,
    channel_names: Callable[[], str],
    rust_bc_reader: Path,
    ocaml_bc_reader: Path,
    writers: int,
    frames: int,
    mode: str,
) -> None:
    """Two Python, one Rust and one OCaml tethered reader each get every frame
    of 1 M (or 3 x 333,334) random-size frames: in order per writer, intact."""
    name = channel_names()
    total = writers * frames
    creator = ShmWriter(name, create=True, capacity=1 << 20, readers=4, untether=60)
    common = ("tethered", str(total), "30")
    readers = {
        "py0": procs.start("bc-reader", name, "py0", *common),
        "py1": procs.start("bc-reader", name, "py1", *common),
        "rust": _start(procs, rust_bc_reader, name, "rust", *common, "--mode", mode),
        "ocaml": _start(procs, ocaml_bc_reader, name, "ocaml", *common, "--mode", mode),
    }
    for proc in readers.values():
        _ready(proc)  # every cursor exists before the first frame
    writer_procs = [
        procs.start("bc-writer", name, str(w), str(frames), "11") for w in range(writers)
    ]
    for proc in writer_procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0 and out.decode().strip() == "done", err.decode()
    want = {"frames": total, "gaps": 0, "bad": 0, "lost": 0, "laps": 0, "untethers": 0}
    for label, proc in readers.items():
        report = _report(proc, timeout=600)
        assert report.pop("lapped_views", 0) == 0, label
        assert report == want, label
    table = {c["name"]: c for c in cursors(name)}
    assert sorted(table) == sorted(readers)
    for label, cursor in table.items():
        assert cursor["frames_read"] == total and cursor["lag"] == 0, label
        assert cursor["policy"] == "tethered" and not cursor["alive"], label
    creator.close()


def test_lossy_rust_and_ocaml_readers_stopped_count_exactly_what_they_lost(
    procs: Processes,
    channel_names: Callable[[], str],
    rust_bc_reader: Path,
    ocaml_bc_reader: Path,
) -> None:
    """Lossy readers stopped with SIGSTOP while a Python writer streams: they
    never slow it, and after SIGCONT each reports exactly the frames it lost
    (its ``lost`` equals the gaps in the sequence numbers) and reads on."""
    name = channel_names()
    creator = ShmWriter(name, create=True, capacity=1 << 16, readers=2)
    total = 400_000
    args = ("lossy", str(total), "3", "--mode", "batch")
    readers = {
        "rust": _start(procs, rust_bc_reader, name, "rust", *args),
        "ocaml": _start(procs, ocaml_bc_reader, name, "ocaml", *args),
    }
    for proc in readers.values():
        _ready(proc)
    writer = procs.start("bc-writer", name, "0", str(total), "5")
    # Stop each reader once it has read something: mid-stream.
    deadline = time.monotonic() + 60
    while not all(c["frames_read"] > 0 for c in cursors(name)):
        assert time.monotonic() < deadline and writer.poll() is None, cursors(name)
        time.sleep(0.001)
    for proc in readers.values():
        os.kill(proc.pid, signal.SIGSTOP)
    _out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err.decode()
    for proc in readers.values():
        os.kill(proc.pid, signal.SIGCONT)
    for label, proc in readers.items():
        report = _report(proc)
        assert report["bad"] == 0 and report["lapped_views"] == 0, (label, report)
        assert report["laps"] >= 1 and report["lost"] > 0, (label, report)
        assert report["lost"] == report["gaps"], (label, report)  # exactly
        assert report["frames"] + report["lost"] == total, (label, report)
        assert report["untethers"] == 0, (label, report)
    table = {c["name"]: c for c in cursors(name)}
    assert all(c["policy"] == "lossy" and c["lost"] > 0 for c in table.values())
    creator.close()


def test_a_durable_cursor_is_handed_from_rust_to_ocaml_to_python(
    procs: Processes,
    channel_names: Callable[[], str],
    rust_bc_reader: Path,
    ocaml_bc_reader: Path,
) -> None:
    """One named cursor read in turn by a Rust, an OCaml and a Python reader
    process, each taking 100,000 frames (zero-copy in Rust and OCaml, so none
    reads past its share) while a Python writer streams 300,000: each resumes
    exactly where the previous one stopped, with no loss and no duplicate,
    and the writer waits for the cursor while no reader holds it."""
    name = channel_names()
    share = 100_000
    creator = ShmWriter(name, create=True, capacity=1 << 18, readers=2, untether=60)
    relay = ("relay", "tethered", str(share), "30")
    first = _start(procs, rust_bc_reader, name, *relay, "--mode", "peek")
    _ready(first)
    writer = procs.start("bc-writer", name, "0", str(3 * share), "13")

    def takes_its_share(proc: subprocess.Popen[bytes], before: int) -> None:
        report = _report(proc)
        report.pop("lapped_views", None)
        # Its own tally starts at 0: the frames before its first are its gaps.
        want = {"frames": share, "gaps": before, "bad": 0, "lost": 0, "laps": 0, "untethers": 0}
        assert report == want, (proc.args, report)

    takes_its_share(first, 0)
    second = _start(procs, ocaml_bc_reader, name, *relay, "--mode", "peek")
    _ready(second)
    takes_its_share(second, share)
    third = procs.start("bc-reader", name, *relay)
    _ready(third)
    takes_its_share(third, 2 * share)
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0 and out.decode().strip() == "done", err.decode()
    [cursor] = cursors(name)
    assert (cursor["name"], cursor["frames_read"], cursor["lag"], cursor["lost"]) == (
        "relay",
        3 * share,
        0,
        0,
    )
    creator.close()
