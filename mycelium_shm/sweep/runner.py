"""Running a sweep: batches out, JSON lines back to disk as they complete.

Output directory::

    spec.json               what was run (and its digest, checked on --resume)
    results.partial.jsonl   one line per finished instance, in completion order
                            (flushed after every batch; an interrupted run keeps it)
    results.jsonl           the same lines sorted by instance index, once complete
    summary.json            counts, wall time, throughput, setup time

Nothing but a per-instance byte offset (8 bytes) is kept in memory: results
are written as they arrive and the sorted file is made by seeking.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, TextIO, Union

import numpy as np

from .executors import Executor, make_executor
from .spec import SweepSpec

__all__ = ["Progress", "SweepInterrupted", "SweepResult", "run_sweep"]

PARTIAL = "results.partial.jsonl"
FINAL = "results.jsonl"


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; what finished is on disk (``--resume`` continues)."""

    def __init__(self, done: int, total: int, out: Path) -> None:
        super().__init__(f"interrupted: {done} of {total} instances done in {out}; rerun with --resume")
        self.done = done
        self.total = total
        self.out = out


class Progress:
    """Done/total, throughput and ETA on stderr: a live line on a TTY, else a line every ``every`` s."""

    def __init__(self, total: int, stream: Optional[TextIO] = None, every: float = 5.0, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 0.2 if self.tty else every
        self.enabled = enabled
        self.start = time.monotonic()
        self.last = self.start
        self.done = 0
        self.failed = 0

    def update(self, done: int, failed: int, final: bool = False) -> None:
        self.done, self.failed = done, failed
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < self.every):
            return
        self.last = now
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        text = (
            f"sweep: {done}/{self.total} ({100.0 * done / max(self.total, 1):.1f}%) "
            f"{rate:,.0f} inst/s, {failed} failed, elapsed {elapsed:.1f} s, "
            f"ETA {_seconds(eta)}"
        )
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _seconds(s: float) -> str:
    if s == float("inf"):
        return "?"
    if s < 60:
        return f"{s:.0f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


class SweepResult:
    """A finished sweep's directory; results are read back streaming."""

    def __init__(self, out: Path, summary: dict[str, Any]) -> None:
        self.out = out
        self.summary = summary

    @property
    def path(self) -> Path:
        return self.out / FINAL

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter_results(self.path)

    def report(self, **kwargs: Any) -> dict[str, Any]:
        from .report import write_reports

        return write_reports(self.out, **kwargs)


def iter_results(path: Union[str, Path]) -> Iterator[dict[str, Any]]:
    """The result records of a results file, one at a time."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _scan(path: Path, total: int) -> tuple[np.ndarray, int]:
    """Byte offset of each index's line (-1: missing); truncates a torn last line.

    Returns (offsets, number of valid lines).
    """
    offsets = np.full(total, -1, dtype=np.int64)
    count = 0
    good_end = 0
    with open(path, "rb") as f:
        pos = 0
        for raw in f:
            end = pos + len(raw)
            if raw.endswith(b"\n"):
                try:
                    index = int(json.loads(raw)["index"])
                except (ValueError, KeyError, TypeError):
                    index = -1
                if 0 <= index < total:
                    if offsets[index] < 0:
                        count += 1
                    offsets[index] = pos
                good_end = end
            pos = end
    if good_end != path.stat().st_size:
        with open(path, "rb+") as f:
            f.truncate(good_end)
    return offsets, count


def _write_sorted(partial: Path, final: Path, offsets: np.ndarray) -> None:
    tmp = final.with_suffix(".tmp")
    with open(partial, "rb") as src, open(tmp, "wb") as dst:
        for off in offsets.tolist():
            src.seek(off)
            dst.write(src.readline())
    os.replace(tmp, final)


def _batches(missing: np.ndarray, size: int) -> Iterator[list[int]]:
    for start in range(0, missing.shape[0], size):
        yield missing[start : start + size].tolist()


def run_sweep(
    spec: SweepSpec,
    out: Union[str, Path],
    *,
    executor: Union[str, Executor] = "local",
    workers: Optional[int] = None,
    resume: bool = False,
    batch_size: Optional[int] = None,
    progress: bool = True,
    progress_every: float = 5.0,
) -> SweepResult:
    """Run every instance of ``spec`` (only the missing ones with ``resume``).

    Raises :class:`SweepInterrupted` on Ctrl-C, after saving what finished,
    and FileExistsError if ``out`` holds results and ``resume`` is false.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    partial, final = out / PARTIAL, out / FINAL
    spec_file = out / "spec.json"
    total = spec.size
    digest = spec.digest()
    if resume:
        if spec_file.exists():
            old = json.loads(spec_file.read_text()).get("digest")
            if old != digest:
                raise ValueError(f"{out}: holds a different sweep (digest {old}, this one {digest}); use another --out")
        if not partial.exists() and final.exists():
            os.replace(final, partial)
    elif partial.exists() or final.exists():
        raise FileExistsError(f"{out} already holds results: pass --resume to continue, or another --out")
    spec_file.write_text(json.dumps({"digest": digest, "instances": total, "report": dict(spec.report), **spec.describe()}, indent=1, default=repr) + "\n")
    if partial.exists():
        offsets, done = _scan(partial, total)
    else:
        offsets, done = np.full(total, -1, dtype=np.int64), 0
        partial.touch()
    missing = np.flatnonzero(offsets < 0)
    owned = not isinstance(executor, Executor)
    ex = make_executor(executor, workers) if isinstance(executor, str) else executor
    size = batch_size or max(1, min(64, missing.shape[0] // (ex.workers * 8) or 1))
    bar = Progress(total, every=progress_every, enabled=progress)
    bar.start = time.monotonic()
    executed = failed = 0
    setups: list[int] = []
    t0 = time.perf_counter()
    try:
        with open(partial, "ab") as f:
            pos = f.tell()
            for results in ex.run(spec, _batches(missing, size)):
                for index, line, setup, ok in results:
                    data = line.encode() + b"\n"
                    f.write(data)
                    offsets[index] = pos
                    pos += len(data)
                    executed += 1
                    failed += not ok
                    if ok and len(setups) < 100_000:
                        setups.append(setup)
                f.flush()
                bar.update(done + executed, failed)
    except KeyboardInterrupt:
        if owned:
            ex.close()
        bar.update(done + executed, failed, final=True)
        raise SweepInterrupted(done + executed, total, out) from None
    except BaseException:
        if owned:
            ex.close()
        raise
    if owned:
        ex.close()
    wall = time.perf_counter() - t0
    bar.update(done + executed, failed, final=True)
    _write_sorted(partial, final, offsets)
    partial.unlink()
    failed_total = sum(1 for r in iter_results(final) if not r["ok"])
    summary = {
        "instances": total,
        "executed": executed,
        "resumed": done,
        "failed": failed_total,
        "executor": ex.name,
        "workers": ex.workers,
        "batch_size": size,
        "wall_s": round(wall, 3),
        "instances_per_s": round(executed / wall, 1) if wall > 0 else None,
        "setup_median_us": round(float(np.median(setups)) / 1000, 2) if setups else None,
        "digest": digest,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return SweepResult(out, summary)
