"""Kill and stop campaign: the delivery promises of format 2 under SIGKILL and SIGSTOP.

docs/FORMAT.md (section 9) promises that every write that returned OK is delivered
exactly once, in per-writer order, intact, whatever instruction a writer
process is SIGKILLed or SIGSTOPped at; that a live writer that stalls is
waited for (back-pressure), never reclaimed; that a dead writer's claim is
skipped; and, for the reader, that a copying read is at-most-once and a
read_view at-least-once across a reader crash.

Frames carry (lane, seq) and a body that is a pure function of (seed, lane,
seq) (``workers.kc_payload``), so the reader rebuilds every payload it gets.
Writers log each write call to an append-only file: an INTENT record before
the call, a DONE record (frames written) only after it returned; a SIGKILL
between the two leaves that call "in flight": its frames may or may not be
delivered, every other acknowledged frame must be.

Set KILL_CAMPAIGN_SEED to replay a run (the seed is printed, and named in
every failure message).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import psutil
import pytest
from bus_support import wait_for
from conftest import Processes
from workers import (
    KC_BAD,
    KC_DONE,
    KC_ERROR,
    KC_GOOD,
    KC_INTENT,
    KC_RECORD,
    KC_REPORT,
    KC_WRITE_TIMEOUT,
    kc_check,
    kc_payload,
    kc_type_id,
)

from mycelium_shm import ShmReader, ShmWriter

CAPACITY = 1 << 16
LANES = 4
#: The design's default: after it, the reader looks at who owns the claim.
STUCK_TIMEOUT = 0.01
#: The campaign stops at this many events or after this long, whichever first.
TARGET_EVENTS = 320
MIN_EVENTS = 300
CAMPAIGN_SECONDS = 28.0
KILL_SHARE = 0.35
STOP_MS = (1.0, 50.0)
DRAIN_SECONDS = 15.0
#: Writers that may exit on their own (an error) before the campaign stops.
MAX_WRITER_FAILURES = 10
#: Sequence numbers of incarnation k of a lane start at k << SEQ_SHIFT, so a
#: lane's seqs grow across incarnations too.
SEQ_SHIFT = 40

READER_KILLS = 32
READER_KILL_DELAY = (0.0, 0.12)



def _asleep(pid: int) -> bool:
    """Whether the process is blocked in the kernel (a futex wait, here)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_SLEEPING
    except psutil.Error:
        return False

def _seed() -> int:
    env = os.environ.get("KILL_CAMPAIGN_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 32)


def _state(pid: int) -> str:
    """The process state letter from /proc (R, S, T, Z ...), "" if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return ""


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.002)


def _line(proc: subprocess.Popen[bytes], timeout: float = 20) -> str:
    """The next stdout line of a worker (a dead worker's stderr if none)."""
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result:
        raise AssertionError(f"worker {proc.args[2:]} said nothing in {timeout} s")
    if not result[0]:
        proc.wait(timeout=10)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise AssertionError(f"worker {proc.args[2:]} exited {proc.returncode}: {err}")
    return result[0].decode().strip()


def _reap(proc: subprocess.Popen[bytes]) -> str:
    """Wait for a worker that is exiting or killed; close its pipes; its stderr."""
    proc.wait(timeout=10)
    err = ""
    if proc.stderr is not None:
        err = proc.stderr.read().decode(errors="replace").strip()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return err


def _records(path: Path, fmt) -> list[tuple[int, ...]]:  # type: ignore[no-untyped-def]
    """Complete records of an append-only log (a torn last record is dropped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    whole = len(data) - len(data) % fmt.size
    return list(fmt.iter_unpack(data[:whole]))


# ---------------------------------------------------------------------------
# Writer incarnations and their logs
# ---------------------------------------------------------------------------


@dataclass
class Incarnation:
    """One writer process of a lane."""

    lane: int
    index: int
    log: Path
    proc: subprocess.Popen[bytes]
    killed: bool = False
    returncode: Optional[int] = None
    stderr: str = ""
    # From the log, after the process ended:
    ack_end: int = 0  # seqs [start, ack_end) were acknowledged
    in_flight: tuple[int, int] = (0, 0)  # a call that never returned
    errors: list[str] = field(default_factory=list)

    @property
    def start(self) -> int:
        return self.index << SEQ_SHIFT

    def analyse(self) -> None:
        """Read the log: acknowledged seqs must be contiguous from start
        (Full retries the same seq), at most the last call is in flight, and
        only a killed process may leave one."""
        self.ack_end = self.start
        pending: Optional[tuple[int, int]] = None
        for kind, first, end in _records(self.log, KC_RECORD):
            if kind == KC_INTENT:
                if pending is not None or first != self.ack_end:
                    self.errors.append(
                        f"log: intent {first}..{end} after {pending}, acked to {self.ack_end}"
                    )
                pending = (first, end)
            elif kind == KC_DONE:
                if pending is None or pending[0] != first or not first <= end <= pending[1]:
                    self.errors.append(f"log: done {first}..{end} does not match intent {pending}")
                self.ack_end = end
                pending = None
            elif kind == KC_ERROR:
                last = self.stderr.splitlines()[-1] if self.stderr else "?"
                self.errors.append(f"write of {first:#x}..{end:#x} raised: {last}")
                pending = None
        if pending is not None:
            if not self.killed:
                self.errors.append(f"exited {self.returncode} with a call {pending} unfinished")
            self.in_flight = pending
        if not self.killed and self.returncode != 0 and not self.errors:
            last = self.stderr.splitlines()[-1] if self.stderr else ""
            self.errors.append(f"exited {self.returncode}: {last}")

    def name(self) -> str:
        return f"lane {self.lane} #{self.index} (pid {self.proc.pid})"


class Writers:
    """The campaign's writer processes, one live incarnation per lane."""

    def __init__(self, procs: Processes, channel: str, seed: int, logs: Path, rng: random.Random):
        self.procs, self.channel, self.seed, self.logs, self.rng = procs, channel, seed, logs, rng
        self.all: list[Incarnation] = []
        self.live: dict[int, Incarnation] = {}
        self.stopped: dict[int, float] = {}  # lane -> when to SIGCONT
        self.unexpected_exits = 0

    def spawn(self, lane: int) -> None:
        index = sum(1 for inc in self.all if inc.lane == lane)
        log = self.logs / f"lane{lane}-{index}.log"
        proc = self.procs.start(
            "kc-writer",
            self.channel,
            str(lane),
            str(index << SEQ_SHIFT),
            str(self.seed),
            str(self.rng.randrange(1 << 32)),
            str(log),
        )
        inc = Incarnation(lane, index, log, proc)
        self.all.append(inc)
        self.live[lane] = inc

    def kill(self, lane: int) -> None:
        inc = self.live.pop(lane)
        inc.killed = True
        inc.proc.send_signal(signal.SIGKILL)
        inc.stderr = _reap(inc.proc)
        inc.returncode = inc.proc.returncode
        self.stopped.pop(lane, None)

    def stop_for(self, lane: int, seconds: float) -> None:
        self.live[lane].proc.send_signal(signal.SIGSTOP)
        self.stopped[lane] = time.monotonic() + seconds

    def resume_due(self, now: float) -> None:
        for lane, when in list(self.stopped.items()):
            if when <= now:
                self.live[lane].proc.send_signal(signal.SIGCONT)
                del self.stopped[lane]

    def check_exits(self) -> None:
        """A writer that exited on its own (an error): keep its record, respawn."""
        for lane, inc in list(self.live.items()):
            if inc.proc.poll() is not None:
                self.unexpected_exits += 1
                inc.stderr = _reap(inc.proc)
                inc.returncode = inc.proc.returncode
                del self.live[lane]
                self.stopped.pop(lane, None)
                self.spawn(lane)

    def stop_all(self) -> list[str]:
        """SIGCONT and SIGTERM every live writer and reap it; the problems."""
        problems = []
        for lane in list(self.stopped):
            self.live[lane].proc.send_signal(signal.SIGCONT)
        self.stopped.clear()
        for inc in self.live.values():
            inc.proc.send_signal(signal.SIGTERM)
        for inc in self.live.values():
            try:
                inc.proc.wait(timeout=5 + KC_WRITE_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"{inc.name()} did not stop on SIGTERM (killed)")
                inc.proc.kill()
                inc.killed = True
            inc.stderr = _reap(inc.proc)
            inc.returncode = inc.proc.returncode
            if inc.returncode == -signal.SIGTERM:
                inc.killed = True  # SIGTERM before the handler was set: no writes yet
        self.live.clear()
        return problems


# ---------------------------------------------------------------------------
# The reader of the campaign: a thread of the test process
# ---------------------------------------------------------------------------


class Collector(threading.Thread):
    """Reads the channel with read, read_many and read_view at random,
    checking every frame; records (lane, seq) per lane in delivery order."""

    def __init__(self, reader: ShmReader, seed: int) -> None:
        super().__init__(daemon=True)
        self.reader, self.seed = reader, seed
        self.rng = random.Random(seed ^ 0x5EAD)
        self.delivered: list[array[int]] = [array("Q") for _ in range(LANES)]
        self.frames = 0
        self.corrupt = 0
        self.corrupt_examples: list[str] = []
        self.error: Optional[BaseException] = None
        self.writers_done = threading.Event()
        self.quit = threading.Event()
        self.drained = False

    def _take(self, type_id: int, payload: bytes) -> None:
        lane, seq, problem = kc_check(self.seed, type_id, payload)
        self.frames += 1
        if problem or not 0 <= lane < LANES:
            self.corrupt += 1
            if len(self.corrupt_examples) < 10:
                self.corrupt_examples.append(
                    f"frame {self.frames}: {problem or 'lane'} (type {type_id}, "
                    f"{len(payload)} bytes, lane {lane}, seq {seq})"
                )
            return
        self.delivered[lane].append(seq)

    def run(self) -> None:
        r, rng = self.reader, self.rng
        try:
            while not self.quit.is_set():
                got = 0
                pick = rng.random()
                if pick < 0.5:
                    frame = r.read(timeout=0.05)
                    if frame is not None:
                        self._take(frame[0], frame[1])
                        got = 1
                elif pick < 0.8:
                    frames = r.read_many(rng.randint(1, 64), timeout=0.05)
                    for frame in frames:
                        self._take(frame[0], frame[1])
                    got = len(frames)
                else:
                    with r.read_view(timeout=0.05) as view:
                        if view is not None:
                            self._take(view.type_id, bytes(view.payload))
                            got = 1
                if not got and self.writers_done.is_set():
                    stats = r.stats()
                    if stats["head"] == stats["tail"]:
                        self.drained = True
                        return
        except BaseException as exc:  # reported by the test
            self.error = exc


@dataclass
class Tally:
    events: int = 0
    kills: int = 0
    stops: int = 0
    delivered: int = 0
    acked: int = 0
    in_flight_delivered: int = 0
    in_flight_lost: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    phantom: int = 0
    corrupt: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 30:
            self.problems.append(text)

    def summary(self) -> str:
        return (
            f"events {self.events} ({self.kills} SIGKILL, {self.stops} SIGSTOP), "
            f"delivered {self.delivered}, acked {self.acked}, "
            f"in-flight delivered {self.in_flight_delivered}, in-flight lost {self.in_flight_lost}, "
            f"LOST {self.lost}, DUPLICATED {self.duplicated}, OUT-OF-ORDER {self.out_of_order}, "
            f"NEVER-WRITTEN {self.phantom}, CORRUPT {self.corrupt}"
        )


def _verify(writers: list[Incarnation], collector: Collector, tally: Tally) -> None:
    """Match what each lane's incarnations acknowledged with what the reader got."""
    tally.delivered = collector.frames
    tally.corrupt = collector.corrupt
    for example in collector.corrupt_examples:
        tally.problem(f"corrupt {example}")
    by_lane: dict[int, dict[int, Incarnation]] = {lane: {} for lane in range(LANES)}
    for inc in writers:
        inc.analyse()
        by_lane[inc.lane][inc.index] = inc
        tally.acked += inc.ack_end - inc.start
        for error in inc.errors:
            tally.problem(f"{inc.name()}: {error}")
    for lane in range(LANES):
        seqs = collector.delivered[lane]
        seen: set[int] = set()
        prev = -1
        # delivered seqs of each incarnation, in delivery order
        got: dict[int, list[int]] = {}
        for seq in seqs:
            if seq in seen:
                tally.duplicated += 1
                tally.problem(f"lane {lane}: seq {seq:#x} delivered twice")
            elif seq < prev:
                tally.out_of_order += 1
                tally.problem(f"lane {lane}: seq {seq:#x} delivered after {prev:#x}")
            seen.add(seq)
            prev = max(prev, seq)
            got.setdefault(seq >> SEQ_SHIFT, []).append(seq)
        for index, inc_seqs in got.items():
            inc = by_lane[lane].get(index)
            if inc is None:
                tally.phantom += len(inc_seqs)
                tally.problem(
                    f"lane {lane}: {len(inc_seqs)} frames of incarnation {index}, never started"
                )
                continue
            lo, hi = inc.in_flight
            for seq in inc_seqs:
                if not (inc.start <= seq < inc.ack_end or lo <= seq < hi):
                    tally.phantom += 1
                    tally.problem(f"{inc.name()}: seq {seq:#x} delivered, never written")
        for inc in by_lane[lane].values():
            inc_seen = set(got.get(inc.index, ()))
            missing = [s for s in range(inc.start, inc.ack_end) if s not in inc_seen]
            tally.lost += len(missing)
            if missing:
                tally.problem(
                    f"{inc.name()}: {len(missing)} acknowledged frames never delivered, "
                    f"first {missing[0]:#x} (acked up to {inc.ack_end:#x}, killed={inc.killed})"
                )
            lo, hi = inc.in_flight
            delivered_in_flight = sum(1 for s in range(lo, hi) if s in inc_seen)
            tally.in_flight_delivered += delivered_in_flight
            tally.in_flight_lost += (hi - lo) - delivered_in_flight


# ---------------------------------------------------------------------------
# Fixtures: a channel and its reader, closed and unlinked whatever happens
# ---------------------------------------------------------------------------


@pytest.fixture
def seed() -> int:
    value = _seed()
    print(f"\nKILL_CAMPAIGN_SEED={value}")
    return value


@pytest.fixture
def open_reader(channel_names: Callable[[], str]) -> Iterator[Callable[..., ShmReader]]:
    """Create a channel with its reader; closed (before unlink) at teardown."""
    made: list[ShmReader] = []

    def make(capacity: int = CAPACITY, stuck_timeout: float = STUCK_TIMEOUT) -> ShmReader:
        reader = ShmReader(
            channel_names(), create=True, capacity=capacity, stuck_timeout=stuck_timeout
        )
        made.append(reader)
        return reader

    yield make
    for reader in made:
        reader.close()


@pytest.fixture
def collector_guard() -> Iterator[list[Collector]]:
    """Collector threads started by a test; told to quit and joined at teardown."""
    started: list[Collector] = []
    yield started
    for thread in started:
        thread.quit.set()
        thread.join(timeout=10)


# ---------------------------------------------------------------------------
# The campaign
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cursors", [0, 3], ids=["single-reader", "broadcast-3-tethered"])
def test_kill_stop_campaign(
    open_reader,
    procs: Processes,
    tmp_path: Path,
    seed: int,
    collector_guard,
    channel_names: Callable[[], str],
    cursors: int,
) -> None:
    """4 writers, >= 300 random SIGKILL / SIGSTOP events; every acknowledged
    frame delivered once, in order, intact, to the reader (or to each of 3
    tethered readers of a broadcast channel); nothing never written."""
    rng = random.Random(seed)
    if cursors:
        name = channel_names()
        creator = ShmWriter(name, create=True, capacity=CAPACITY, readers=cursors, untether=600)
        readers = [
            ShmReader(name, cursor=f"c{i}", stuck_timeout=STUCK_TIMEOUT) for i in range(cursors)
        ]
        creator.close()
    else:
        readers = [open_reader()]
    writers = Writers(procs, readers[0].name, seed, tmp_path, rng)
    collectors = [Collector(reader, seed) for reader in readers]
    collector_guard.extend(collectors)
    tally = Tally()
    problems: list[str] = []
    started = time.monotonic()
    try:
        for lane in range(LANES):
            writers.spawn(lane)
        for collector in collectors:
            collector.start()
        deadline = started + CAMPAIGN_SECONDS
        next_event = time.monotonic() + rng.uniform(0.005, 0.08)
        while tally.events < TARGET_EVENTS and time.monotonic() < deadline:
            failed = any(c.error is not None for c in collectors)
            if failed or writers.unexpected_exits > MAX_WRITER_FAILURES:
                problems.append(f"campaign cut short after {tally.events} events")
                break
            now = time.monotonic()
            writers.resume_due(now)
            writers.check_exits()
            if now >= next_event:
                lane = rng.randrange(LANES)
                if rng.random() < KILL_SHARE or lane in writers.stopped:
                    writers.kill(lane)
                    writers.spawn(lane)
                    tally.kills += 1
                else:
                    writers.stop_for(lane, rng.uniform(*STOP_MS) / 1000)
                    tally.stops += 1
                tally.events += 1
                next_event = time.monotonic() + rng.uniform(0.005, 0.08)
            wake = min([next_event, *writers.stopped.values()])
            time.sleep(max(0.0, min(wake - time.monotonic(), 0.01)))
        campaign_s = time.monotonic() - started
        problems += writers.stop_all()
        for collector in collectors:
            collector.writers_done.set()
        for index, collector in enumerate(collectors):
            collector.join(timeout=DRAIN_SECONDS)
            if collector.is_alive():
                collector.quit.set()
                collector.join(timeout=5)
                problems.append(f"reader {index}: the channel did not drain within {DRAIN_SECONDS} s")
            if collector.error is not None:
                problems.append(
                    f"reader {index} raised {type(collector.error).__name__}: "
                    f"{collector.error} after {collector.frames} frames"
                )
            elif not collector.drained:
                problems.append(f"reader {index} stopped before the channel was drained")
    finally:
        writers.stop_all()
    tallies = []
    for collector in collectors:
        one = Tally(events=tally.events, kills=tally.kills, stops=tally.stops)
        _verify(writers.all, collector, one)
        tallies.append(one)
    if writers.unexpected_exits:
        problems.append(f"{writers.unexpected_exits} writers exited on their own (see below)")
    stats = readers[0].stats()
    report = (
        f"seed {seed} (KILL_CAMPAIGN_SEED={seed}): "
        + "; ".join(f"reader {i}: {t.summary()}" for i, t in enumerate(tallies))
        + f"; {len(writers.all)} writer processes, campaign {campaign_s:.1f} s, "
        f"total {time.monotonic() - started:.1f} s; reader stats unblocks "
        f"{stats.get('unblocks')}, padding {stats.get('padding_frames')}, "
        f"head {stats['head']} tail {stats['tail']}"
    )
    print(report)
    for reader in readers if cursors else []:
        lost = reader.lost
        reader.close()
        if lost:
            problems.append(f"a tethered reader counted {lost} frames lost to laps")
    details = "\n  ".join(problems + [p for t in tallies for p in t.problems])
    assert not problems and not any(t.problems for t in tallies), f"{report}\n  {details}"
    for one in tallies:
        assert one.lost == one.duplicated == one.corrupt == one.phantom == 0, report
        assert one.out_of_order == 0, report
    assert tally.events >= MIN_EVENTS, f"only {tally.events} events: {report}"


# ---------------------------------------------------------------------------
# Targeted: a live writer stopped inside its claim is waited for
# ---------------------------------------------------------------------------


def test_stopped_writer_holding_a_claim_is_not_reclaimed(
    open_reader, procs: Processes, seed: int
) -> None:
    """A writer SIGSTOPped for 2.6 s (260 stuck timeouts, more than the old
    2 s default) between claim and commit: the reader waits, frames after
    the claim wait too, and after SIGCONT the frame commits and comes first."""
    reader = open_reader(stuck_timeout=0.01)
    with ShmWriter(reader.name) as w:
        for seq in range(5):
            w.write(kc_type_id(1), kc_payload(seed, 1, seq))
        holder = procs.start("kc-stall-claim", reader.name, str(seed), "0")
        assert _line(holder) == "claimed"
        _wait_for(lambda: _state(holder.pid) == "T", 10, "the claiming writer to stop itself")
        for seq in range(5):  # the frames before the claim
            frame = reader.read(timeout=5)
            assert frame is not None
            assert kc_check(seed, *frame) == (1, seq, "")
        # Later frames: fill the ring behind the claim until it is full.
        after = 0
        while w.try_write(kc_type_id(1), kc_payload(seed, 1, 5 + after)):
            after += 1
        assert after > 0
        before = reader.stats()
        stalled_until = time.monotonic() + 2.6
        while time.monotonic() < stalled_until:
            frame = reader.read(timeout=0.1)
            assert frame is None, (
                f"seed {seed}: a frame was delivered past a live writer's claim: "
                f"{kc_check(seed, *frame)} (stats {reader.stats()})"
            )
            assert _state(holder.pid) == "T"
        during = reader.stats()
        for key in ("unblocks", "forced_unblocks", "dead_claims_skipped"):
            assert during.get(key, 0) == before.get(key, 0), (key, before, during)
        if "stall_pid" in during:
            assert during["stall_pid"] == holder.pid
        assert during["head"] == before["head"], "the reader consumed past the claim"
        assert not w.try_write(kc_type_id(1), kc_payload(seed, 1, 5 + after)), (
            "room appeared behind a claim that was never committed"
        )
        holder.send_signal(signal.SIGCONT)
        first = reader.read(timeout=5)
        assert first is not None, f"seed {seed}: the stalled frame never arrived"
        assert kc_check(seed, *first) == (0, 0, ""), kc_check(seed, *first)
        assert _line(holder) == "committed"
        holder.wait(timeout=10)
        assert holder.returncode == 0
        rest = [reader.read(timeout=5) for _ in range(after)]
        assert [kc_check(seed, *f) for f in rest if f is not None] == [
            (1, 5 + i, "") for i in range(after)
        ]
        assert reader.try_read() is None


# ---------------------------------------------------------------------------
# Targeted: a writer killed while waiting for room leaves no waiter behind
# ---------------------------------------------------------------------------


def _fill(w: ShmWriter, size: int) -> int:
    count = 0
    while w.try_write(2, b"f" * size):
        count += 1
    return count


def test_writer_killed_waiting_for_room_leaves_no_wakes(open_reader, procs: Processes) -> None:
    """SIGKILL a writer asleep on a full ring: once the reader has found the
    waiter dead, reads stop issuing futex wakes (reader_wakes stays flat)."""
    reader = open_reader(capacity=1 << 14)
    with ShmWriter(reader.name) as w:
        filled = _fill(w, 500)
        assert filled > 0
        blocked = procs.start("kc-block-write", reader.name, "500")
        assert _line(blocked) == "writing"
        # Asleep on the futex means its waiting bit is set (it sets the bit first).
        assert wait_for(lambda: _asleep(blocked.pid)), "the writer did not block on the full ring"
        assert blocked.poll() is None
        blocked.send_signal(signal.SIGKILL)
        blocked.wait(timeout=10)
        got = 0
        while reader.read(timeout=0.2) is not None:
            got += 1
        assert got == filled, (
            "the killed writer's frame (never written) was delivered, or frames lost"
        )
        for _ in range(20):  # clears whatever the dead waiter left
            w.write(2, b"warm")
            assert reader.read(timeout=1) == (2, b"warm")
        wakes_before = reader.stats()["reader_wakes"]
        for i in range(2000):
            w.write(2, b"%d" % i)
            frame = reader.read(timeout=1)
            assert frame is not None and frame[1] == b"%d" % i
        wakes = reader.stats()["reader_wakes"] - wakes_before
        assert wakes <= 2, f"{wakes} futex wakes in 2000 reads with no writer waiting"

        # A live waiter is still woken.
        _fill(w, 500)
        waiter = procs.start("kc-block-write", reader.name, "500")
        assert _line(waiter) == "writing"
        assert wait_for(lambda: _asleep(waiter.pid)), "the writer did not block on the full ring"
        wakes_before = reader.stats()["reader_wakes"]
        while reader.read(timeout=0.5) is not None:
            pass
        assert _line(waiter) == "written"
        waiter.wait(timeout=10)
        assert reader.stats()["reader_wakes"] > wakes_before, "a sleeping writer was not woken"


# ---------------------------------------------------------------------------
# Targeted: readers killed inside reads, each replaced by a new one
# ---------------------------------------------------------------------------


def test_reader_killed_inside_reads(
    open_reader, procs: Processes, tmp_path: Path, seed: int
) -> None:
    """32+ reader processes SIGKILLed at random points while reading, each
    replaced: frames arrive in order, intact; a copying read loses at most
    the one frame it was returning, a read_view repeats at most the one it
    was viewing."""
    rng = random.Random(seed)
    reader = open_reader()
    name = reader.name
    reader.close()  # the readers are the worker processes from here on
    log = tmp_path / "writer.log"
    writer = procs.start(
        "kc-writer", name, "0", "0", str(seed), str(rng.randrange(1 << 32)), str(log)
    )
    assert _line(writer) == "ready"
    # (mode, records) of each killed reader, in order
    readers: list[tuple[str, list[tuple[int, ...]], bool]] = []
    killed_ready = 0
    started = time.monotonic()
    try:
        for k in range(READER_KILLS):
            mode = rng.choice(("copy", "view"))
            report = tmp_path / f"reader{k}.log"
            proc = procs.start("kc-reader", name, str(seed), mode, str(report))
            ready = True
            if rng.random() < 0.1:  # now and then, kill it while it opens
                time.sleep(rng.uniform(0.0, 0.1))
                ready = False
            else:
                assert _line(proc) == "ready"
                killed_ready += 1
                time.sleep(rng.uniform(*READER_KILL_DELAY))
            if proc.poll() is not None:
                raise AssertionError(f"reader {k} exited {proc.returncode}: {_reap(proc)}")
            proc.send_signal(signal.SIGKILL)
            _reap(proc)
            readers.append((mode, _records(report, KC_REPORT), ready))
    finally:
        writer.send_signal(signal.SIGTERM)
        writer.wait(timeout=5 + KC_WRITE_TIMEOUT + 5)
    assert writer.returncode == 0, _reap(writer)
    acked = Incarnation(0, 0, log, writer, returncode=0)
    acked.analyse()
    assert not acked.errors, acked.errors
    final: list[tuple[int, ...]] = []
    with ShmReader(name, stuck_timeout=STUCK_TIMEOUT) as last:
        while True:
            frame = last.read(timeout=0.5)
            if frame is None:
                break
            lane, seq, problem = kc_check(seed, frame[0], frame[1])
            final.append((KC_BAD if problem else KC_GOOD, lane, seq))
        takeovers = last.stats().get("takeovers")

    # Within one reader, seqs must follow one another; where a reader takes
    # over, each kill since the last reader that got a frame (that one
    # included) may account for one frame lost (a copying reader) or one
    # frame repeated (a viewing reader).
    lost = dup = 0
    problems: list[str] = []
    expected = 0  # next seq due
    runs = [*readers, ("final", final, True)]
    last_k = 0  # the reader that got the last frame so far
    for k, (mode, records, _ready) in enumerate(runs):
        for i, (kind, lane, seq) in enumerate(records):
            if kind != KC_GOOD or lane != 0:
                problems.append(f"reader {k} ({mode}) got a bad frame (lane {lane}, seq {seq})")
                continue
            if i == 0 and seq != expected:
                between = [runs[j][0] for j in range(last_k, k)]
                if expected - between.count("view") <= seq < expected:
                    dup += expected - seq
                    problems += [f"reader {k} got {seq} again"] if seq != expected - 1 else []
                elif expected < seq <= expected + between.count("copy"):
                    lost += seq - expected
                    expected = seq
                else:
                    problems.append(
                        f"reader {k} ({mode}) began at seq {seq}, expected {expected} "
                        f"(readers killed since: {between})"
                    )
            if seq == expected:
                expected += 1
            elif i > 0 or seq > expected:
                problems.append(f"reader {k} ({mode}) got seq {seq}, expected {expected}")
                expected = max(expected, seq + 1)
        if records:
            last_k = k
    if expected < acked.ack_end:
        problems.append(f"acknowledged up to {acked.ack_end}, delivered up to {expected}")
    elif expected > acked.ack_end:
        problems.append(f"delivered up to {expected}, more than the {acked.ack_end} acknowledged")
    report = (
        f"seed {seed}: {len(readers)} reader kills ({killed_ready} while reading) in "
        f"{time.monotonic() - started:.1f} s, {acked.ack_end} frames acknowledged, "
        f"{sum(len(r[1]) for r in readers) + len(final)} reports, "
        f"{lost} lost by copying readers, {dup} repeated by view readers, takeovers {takeovers}"
    )
    print(report)
    assert not problems, report + "\n  " + "\n  ".join(problems[:30])
    assert lost <= sum(1 for r in readers if r[0] == "copy"), report
    assert dup <= sum(1 for r in readers if r[0] == "view"), report
    if takeovers is not None:
        assert takeovers >= killed_ready, report
