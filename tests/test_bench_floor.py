"""The physical floor: its ratios, its targets, its report section, its programs.

Arithmetic and verdicts run on synthetic rows; the floor program itself runs
with tiny counts and is checked for what it reports, never for speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a directory of the repo, not installed
    sys.path.insert(0, str(ROOT))

from bench import cring, floor, report, run, suite  # noqa: E402

PP, SPSC = report.FLOOR_PINGPONG, report.FLOOR_SPSC


def _row(
    name: str,
    lang: str,
    kind: str,
    size: int = 64,
    mode: str = "single",
    wait: str = "blocking",
    **values: float,
) -> dict:
    row = {"name": name, "lang": lang, "mode": mode, "wait": wait, "kind": kind,
           "size": size, "status": "ok"}  # fmt: skip
    row.update(values)
    return row


def _rtt(name: str, lang: str, p50: float, **kw: object) -> dict:
    return _row(name, lang, "rtt", p50_ns=p50, p99_ns=2 * p50, p999_ns=3 * p50, **kw)


def _tput(name: str, lang: str, msgs: float, size: int = 64, **kw: object) -> dict:
    return _row(name, lang, "tput", size, msgs_per_s=msgs, mb_per_s=msgs * size / 1e6, **kw)


def _mw(lang: str, writers: int, msgs: float) -> dict:
    row = _row("mycelium", lang, "mw", msgs_per_s=msgs, mb_per_s=msgs * 64 / 1e6)
    row["writers"] = writers
    return row


def _rust_rtt(p50: float) -> dict:
    return dict(_rtt("mycelium", "rust", p50, mode="pingpong", wait=""), pair="rust-rust",
                source="extension")  # fmt: skip


def _floors() -> list[dict]:
    return [
        _rtt(PP, "c", 100, wait="busy-poll"),
        _tput(SPSC, "c", 20e6, wait="busy-poll"),
        _tput(SPSC, "c", 50e6, mode="batch", wait="busy-poll"),
        _tput(SPSC, "c", 2e5, size=65536, wait="busy-poll"),
    ]


def _rows() -> list[dict]:
    return [
        *_floors(),
        _rtt("mycelium", "c", 180),
        _rtt("mycelium", "c", 150, wait="busy-poll"),  # the best C RTT row
        _rust_rtt(160),
        _rtt("mycelium", "python", 600, wait="busy-poll"),
        _rtt("mycelium", "rust", 900, size=1024, mode="pingpong"),  # no floor at 1 KiB
        _tput("mycelium", "c", 6e6),
        _tput("mycelium", "c", 7e6, wait="busy-poll"),  # the best single-call C row
        _tput("mycelium", "c", 16e6, mode="batch"),
        _tput("mycelium", "c", 30e6, mode="zero-copy"),  # neither single nor batch
        _tput("mycelium", "python", 1e5, size=65536),
        _tput("mycelium", "python", 5e5, size=1024),  # no floor at 1 KiB
        _tput("pyring", "python", 2e6, wait="busy-poll"),
        _mw("c", 1, 10e6),
        _mw("c", 4, 7.5e6),
        _mw("python", 1, 10e6),
        _mw("python", 4, 6e6),
        {"name": "MessageBus", "lang": "python", "mode": "inproc", "kind": "bus",
         "size": None, "status": "ok", "p50_ns": 170, "p99_ns": 190, "p999_ns": 220},
        dict(_tput("mycelium", "python", 0), status="error", reason="boom"),
    ]  # fmt: skip


def _target(rows: list[dict], tid: str) -> dict:
    return next(t for t in report.evaluate_targets(rows) if t["id"] == tid)


def _find(rows: list[dict], **match: object) -> dict:
    return next(r for r in rows if all(r.get(k) == v for k, v in match.items()))


# --------------------------------------------------------------------------- #
# Ratios                                                                      #
# --------------------------------------------------------------------------- #


def test_every_row_is_divided_by_the_floor_of_its_kind_and_size() -> None:
    """RTT: p50 / ping-pong p50; throughput and multi-writer: msgs/s / SPSC msgs/s."""
    rows = report.add_floor_ratios(_rows())
    assert _find(rows, kind="rtt", lang="c", wait="blocking")["vs_floor"] == pytest.approx(1.8)
    assert _find(rows, kind="rtt", lang="python")["vs_floor"] == pytest.approx(6.0)
    assert _find(rows, kind="rtt", pair="rust-rust")["vs_floor"] == pytest.approx(1.6)
    assert _find(rows, kind="tput", lang="c", wait="blocking", mode="single")[
        "vs_floor"
    ] == pytest.approx(0.3)
    assert _find(rows, name="pyring")["vs_floor"] == pytest.approx(0.1)
    assert _find(rows, kind="tput", size=65536, lang="python")["vs_floor"] == pytest.approx(0.5)
    assert _find(rows, kind="mw", lang="c", writers=4)["vs_floor"] == pytest.approx(0.375)


def test_batch_rows_are_also_divided_by_the_batched_floor() -> None:
    """A batch row gets vs_floor (per-message SPSC) and vs_floor_batch (batched SPSC)."""
    rows = report.add_floor_ratios(_rows())
    batch = _find(rows, name="mycelium", kind="tput", mode="batch")
    assert batch["vs_floor"] == pytest.approx(0.8)
    assert batch["vs_floor_batch"] == pytest.approx(16 / 50)
    assert "vs_floor_batch" not in _find(rows, name="mycelium", kind="tput", mode="single")


def test_rows_without_a_floor_of_their_size_get_none() -> None:
    """No ping-pong at 1 KiB, no SPSC ring at 1 KiB: the ratio is None, not a guess."""
    rows = report.add_floor_ratios(_rows())
    assert _find(rows, kind="rtt", size=1024)["vs_floor"] is None
    assert _find(rows, kind="tput", size=1024)["vs_floor"] is None
    rows = report.add_floor_ratios([r for r in _rows() if not report.is_floor(r)])
    assert all(r.get("vs_floor") is None for r in rows)


def test_floor_rows_read_one_and_bus_or_failed_rows_get_nothing() -> None:
    """The floors divide to 1.0 (the batched ring shows its gain); bus and error rows untouched."""
    rows = report.add_floor_ratios(_rows())
    assert _find(rows, name=PP)["vs_floor"] == 1.0
    assert _find(rows, name=SPSC, mode="single", size=64)["vs_floor"] == 1.0
    assert _find(rows, name=SPSC, mode="batch")["vs_floor"] == pytest.approx(2.5)
    assert "vs_floor" not in _find(rows, kind="bus")
    assert "vs_floor" not in _find(rows, status="error")


def test_floor_rows_are_not_peers_in_the_peer_matrix() -> None:
    """mycelium against each peer never lists the floor as a peer."""
    matrix = report.peer_matrix(_rows())
    peers = {p for table in matrix.values() for cells in table.values() for p in cells}
    assert peers == {"pyring [python] single busy-poll"}


def test_floor_summary_names_the_floor_values() -> None:
    """results.json's floor field: ping-pong percentiles and SPSC msgs/s per size."""
    summary = report.floor_summary(_rows())
    assert summary["pingpong_p50_ns"] == 100 and summary["pingpong_p999_ns"] == 300
    assert summary["spsc_msgs_per_s"] == {64: 20e6, 65536: 2e5}
    assert summary["spsc_batch_msgs_per_s"] == {64: 50e6}


def test_the_mpsc_floor_row_is_shown_beside_the_single_call_target_never_divided_by() -> None:
    """The MPSC row (one locked claim per message) is a floor row that divides nothing:
    rows keep their SPSC ratio, the summary lists it, and the C single-call target
    names its ratio to the SPSC ring."""
    rows = [*_rows(), _tput(report.FLOOR_MPSC, "c", 2e6, wait="busy-poll")]
    assert report.floor_summary(rows)["mpsc_msgs_per_s"] == {64: 2e6}
    ratios = report.add_floor_ratios(rows)
    assert _find(ratios, name="pyring")["vs_floor"] == pytest.approx(0.1)  # still / SPSC
    assert _find(ratios, name=report.FLOOR_MPSC)["vs_floor"] == pytest.approx(0.1)
    t = _target(rows, "c_single_vs_floor")
    assert t["mpsc_floor_ratio"] == pytest.approx(0.1)
    assert t["row"].endswith("; the MPSC floor row reaches 0.10x")
    assert (t["value"], t["pass"]) == (pytest.approx(0.35), True)  # judged as before
    assert "mpsc_floor_ratio" not in _target(_rows(), "c_single_vs_floor")


def test_the_framed_ping_pong_is_shown_beside_the_rtt_targets_never_divided_by() -> None:
    """The framed ping-pong (a header in front of the payload) divides nothing: RTT rows
    keep their ping-pong ratio, the summary lists it, and both RTT targets name its ratio."""
    rows = [*_rows(), _rtt(report.FLOOR_FRAMED, "c", 130, wait="busy-poll")]
    assert report.floor_summary(rows)["framed_p50_ns"] == {64: 130}
    ratios = report.add_floor_ratios(rows)
    assert _find(ratios, kind="rtt", lang="c", wait="blocking")["vs_floor"] == pytest.approx(1.8)
    assert _find(ratios, name=report.FLOOR_FRAMED)["vs_floor"] == pytest.approx(1.3)
    for tid in ("c_rtt_vs_floor", "rust_rtt_vs_floor"):
        t = _target(rows, tid)
        assert t["framed_floor_ratio"] == pytest.approx(1.3)
        assert t["row"].endswith("; the framed ping-pong floor row reads 1.30x")
        assert "framed_floor_ratio" not in _target(_rows(), tid)
    assert _target(rows, "c_rtt_vs_floor")["value"] == pytest.approx(1.5)  # judged as before


def test_paired_ratios_are_kept_and_marked() -> None:
    """A row the suite paired with the floor keeps its ratio; the others are divided
    by the floor row, and the report marks those with *."""
    paired = dict(_rtt("mycelium", "c", 180), vs_floor=1.2, floor_paired=True)
    rows = report.add_floor_ratios([*_floors(), paired, _rtt("mycelium", "python", 600)])
    assert rows[-2]["vs_floor"] == 1.2 and rows[-2]["floor_paired"] is True
    assert rows[-1]["vs_floor"] == pytest.approx(6.0) and rows[-1]["floor_paired"] is False
    assert report._floor_cell(rows[-2]) == "1.20x" and report._floor_cell(rows[-1]) == "6.00x*"


class _Fake:
    """A transport whose runs return scripted values and log the call order."""

    def __init__(self, name: str, log: list, values: list[float]) -> None:
        self.name, self.log, self.values = name, log, list(values)
        self.lang, self.mode, self.wait, self.note = "c", "single", "busy-poll", ""

    def label(self) -> str:
        return self.name

    def describe(self) -> dict:
        return {"name": self.name, "lang": "c", "mode": "single", "wait": "busy-poll"}

    def run_rtt(self, size: int, n: int, warm: int, timeout: float) -> list[int]:
        self.log.append((self.name, n))
        value = self.values.pop(0) if len(self.log) > 1 else 100  # calibration
        return [int(value)] * n

    def run_tput(self, size: int, n: int, warm: int, timeout: float) -> tuple[int, int]:
        self.log.append((self.name, n))
        rate = self.values.pop(0) if len(self.log) > 1 else 1e6  # calibration
        return (int(1e9 * (n - warm) / rate) if rate else 0), n - warm  # 0 ns: no rate


def _cfg() -> suite.Config:
    cfg = suite.Config.quick_()
    cfg.repeats = 3
    return cfg


def test_each_repeat_follows_a_floor_run_and_vs_floor_is_the_median_ratio() -> None:
    """Floor, row, floor, row, ...: the paired ratios cancel a machine that drifts."""
    log: list = []
    row_t = _Fake("row", log, [300, 600, 3000])
    floor_t = _Fake("floor", log, [100, 200, 1000])  # the machine slows down 10x
    ref = suite.FloorRef(floor_t, 500, 50)
    row = suite.measure_rtt(row_t, 64, _cfg(), suite.Clock(1, 1e9, open(os.devnull, "w")),
                            floor=ref)  # fmt: skip
    assert [who for who, _ in log] == ["row", "floor", "row", "floor", "row", "floor", "row"]
    assert all(n == 500 for who, n in log if who == "floor")
    assert row["floor_runs"] == [100, 200, 1000] and row["floor_paired"] is True
    assert row["vs_floor"] == pytest.approx(3.0)  # the unpaired median would say 600 / 200
    log.clear()
    row_t = _Fake("row", log, [2e6, 4e6, 1e6])
    floor_t = _Fake("floor", log, [10e6, 10e6, 0.0])  # a broken floor run is left out
    row = suite.measure_tput(row_t, 64, _cfg(), suite.Clock(1, 1e9, open(os.devnull, "w")),
                             floor=suite.FloorRef(floor_t, 1000, 10))  # fmt: skip
    assert row["vs_floor"] == pytest.approx(0.3) and len(row["floor_runs"]) == 3


def test_run_pairs_rows_with_the_floor_of_their_kind_and_size(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The suite measures the floor first, then pairs every later round trip with a
    quarter-length ping-pong rerun (never shorter than the minimum counts)."""
    calls: list = []

    def fake(transport, size, cfg, clock, *args, floor=None):
        calls.append((transport.label(), size, floor))
        row = suite.base_row(transport, "rtt" if "rtt" in transport.kinds else "tput", size)
        row.update({"n": 40000, "warm": 4000, "p50_ns": 100, "p99_ns": 100, "p999_ns": 100,
                    "msgs_per_s": 1e6, "mb_per_s": 64.0, "runs": []})  # fmt: skip
        return row

    monkeypatch.setattr(suite, "measure_rtt", fake)
    monkeypatch.setattr(suite, "measure_tput", fake)
    monkeypatch.setattr(run, "machine_info", lambda: {"loadavg_start": None})
    monkeypatch.setattr(run.common, "install_cleanup_handlers", lambda: None)
    monkeypatch.setattr(run, "iceoryx_shm_objects", lambda: set())
    monkeypatch.setattr(run, "remove_iceoryx_leftovers", lambda before: [])
    argv = ["--quick", "--only", "pyring", "--sizes", "64", "--no-mw", "--no-ext", "--no-bus",
            "--no-plots", "--out", str(tmp_path)]  # fmt: skip
    assert run.main(argv) == 0
    refs = {lab: ref for lab, _, ref in calls}
    assert refs[f"{PP} [c] single busy-poll"] is None  # the floor rows are not paired
    assert refs[f"{SPSC} [c] single busy-poll"] is None
    rtt_ref, tput_ref = [ref for lab, _, ref in calls if lab.startswith("pyring")]
    assert (rtt_ref.transport.what, rtt_ref.n, rtt_ref.warm) == ("pingpong", 10000, 1000)
    assert tput_ref is None  # throughput rows are divided by the SPSC row (it is bimodal)
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["floor"]["pingpong_p50_ns"] == 100


# --------------------------------------------------------------------------- #
# Targets                                                                     #
# --------------------------------------------------------------------------- #


def test_floor_targets_are_judged_on_the_best_qualifying_row() -> None:
    """Fastest C RTT (any wait), rust-rust, best single-call C, best batched C."""
    rows = _rows()
    t = _target(rows, "c_rtt_vs_floor")
    assert (t["value"], t["pass"]) == (pytest.approx(1.5), True)
    assert t["row"].startswith("mycelium [c] single busy-poll")
    t = _target(rows, "rust_rtt_vs_floor")
    assert (t["value"], t["pass"]) == (pytest.approx(1.6), False)
    t = _target(rows, "c_single_vs_floor")
    assert (t["value"], t["pass"]) == (pytest.approx(0.35), True)
    assert t["row"].startswith("mycelium [c] single busy-poll")  # not the zero-copy row
    t = _target(rows, "c_batch_vs_floor")
    assert (t["value"], t["pass"]) == (pytest.approx(0.8), True)


@pytest.mark.parametrize(
    ("tid", "field", "value", "passes"),
    [
        ("c_rtt_vs_floor", "p50_ns", 150.0, True),  # exactly 1.5x
        ("c_rtt_vs_floor", "p50_ns", 151.0, False),
        ("c_single_vs_floor", "msgs_per_s", 6.6e6, True),  # exactly 0.33x
        ("c_single_vs_floor", "msgs_per_s", 6.5e6, False),
        ("c_batch_vs_floor", "msgs_per_s", 14e6, True),  # exactly 0.7x
        ("c_batch_vs_floor", "msgs_per_s", 13.9e6, False),
    ],
)
def test_floor_target_thresholds(tid: str, field: str, value: float, passes: bool) -> None:
    """<= 1.5x the ping-pong, >= 0.33x and >= 0.7x the SPSC ring, boundaries included."""
    mode = "batch" if tid == "c_batch_vs_floor" else "single"
    kind = "rtt" if field == "p50_ns" else "tput"
    rows = [*_floors(), _row("mycelium", "c", kind, mode=mode, **{field: value})]
    assert _target(rows, tid)["pass"] is passes


def test_floor_targets_are_not_measured_without_floor_or_row() -> None:
    """A missing floor or a missing C / Rust row reads not measured, never a pass."""
    no_floor = [r for r in _rows() if not report.is_floor(r)]
    for tid in ("c_rtt_vs_floor", "rust_rtt_vs_floor", "c_single_vs_floor", "c_batch_vs_floor"):
        t = _target(no_floor, tid)
        assert t["pass"] is None and t["value"] is None, t
        assert t["note"].startswith("not measured") and "floor row" in t["note"]
    no_c = [r for r in _rows() if r["lang"] != "c" or report.is_floor(r)]
    t = _target(no_c, "c_batch_vs_floor")
    assert t["pass"] is None and "no qualifying row" in t["note"]
    assert report.verdict(t) == "not measured"


def test_multi_writer_target_compares_four_writers_with_one() -> None:
    """4 writers keep >= 70% of 1 writer: C 0.75 passes, Python 0.6 fails."""
    rows = _rows()
    t = _target(rows, "mw4_c")
    assert (t["value"], t["pass"]) == (pytest.approx(0.75), True)
    t = _target(rows, "mw4_python")
    assert (t["value"], t["pass"]) == (pytest.approx(0.6), False)
    exact = [_mw("c", 1, 10e6), _mw("c", 4, 7e6)]
    assert _target(exact, "mw4_c")["pass"] is True
    t = _target([_mw("c", 1, 10e6), _mw("c", 2, 9e6)], "mw4_c")
    assert t["pass"] is None and "4 writers" in t["note"]


def test_python_targets_follow_the_issue() -> None:
    """RTT <= 0.5x pyring; the 64 KiB target is judged on the zero-copy read row only."""
    rows = [
        _rtt("pyring", "python", 1000, wait="busy-poll"),
        _rtt("mycelium", "python", 510),
        _tput("pyring", "python", 1e5, size=65536),
        _tput("mycelium", "python", 3e5, size=65536),  # fast, but not zero-copy
        _tput("mycelium", "python", 1.4e5, size=65536, mode="zero-copy"),
    ]
    t = _target(rows, "rtt_p50")
    assert (t["value"], t["pass"]) == (pytest.approx(0.51), False)
    t = _target(rows, "tput_64k")
    assert (t["value"], t["pass"]) == (pytest.approx(1.4), False)
    assert "zero-copy" in t["row"]


def test_check_targets_fails_when_the_floor_was_not_measured(tmp_path: Path) -> None:
    """--no-floor leaves the floor targets not measured, so --check-targets cannot pass."""
    targets = report.evaluate_targets([r for r in _rows() if not report.is_floor(r)])
    assert not all(t["pass"] for t in targets)


# --------------------------------------------------------------------------- #
# Markdown                                                                    #
# --------------------------------------------------------------------------- #


def _markdown(rows: list[dict]) -> str:
    report.add_ratios(rows)
    report.add_floor_ratios(rows)
    result = {
        "rows": rows, "machine": {}, "quick": True, "started_utc": "now", "elapsed_s": 1.0,
        "incomplete": [], "method": [], "targets": report.evaluate_targets(rows),
        "bindings_vs_c": report.bindings_vs_c(rows), "peer_matrix": report.peer_matrix(rows),
    }  # fmt: skip
    return report.markdown(result)


def test_markdown_has_the_floor_section_after_the_targets() -> None:
    """Floor rows, then every row as x floor: RTT, throughput (batched in brackets), mw."""
    md = _markdown(_rows())
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections[sections.index("## Targets") + 1] == "## Against the physical floor"
    floor_md = md.split("## Against the physical floor", 1)[1].split("\n## ", 1)[0]
    assert "| floor: cache-line ping-pong | single | 64 B | 0.10 | 0.20 | 0.30 |  |  |" in floor_md
    assert "| mycelium | c | single | blocking | 64 B | 0.18 | 1.80x* |" in floor_md
    assert "| mycelium | c | batch | blocking | 0.80x (0.32x) |" in floor_md
    assert "| pyring | python | single | busy-poll | 0.10x |" in floor_md
    assert "| mycelium [c] single blocking | 0.50x | 0.38x |" in floor_md
    assert "64 B 20.00 M msgs/s (50.00 M msgs/s batched)" in floor_md
    assert "runs (min - max)" in floor_md
    targets = md.split("## Targets", 1)[1].split("## ", 1)[0]
    assert "| C 64 B RTT p50 <= 1.5x the cache-line ping-pong |" in targets
    assert "| 1.50x | <= 1.5x | PASS |" in targets
    assert "| 0.60x | >= 0.7x | FAIL |" in targets


def test_markdown_without_floor_rows_says_so() -> None:
    """No floor rows: the section says not measured, the floor targets too."""
    md = _markdown([r for r in _rows() if not report.is_floor(r)])
    floor_md = md.split("## Against the physical floor", 1)[1].split("\n## ", 1)[0]
    assert "not measured" in floor_md and "x floor" not in floor_md
    assert "| C 64 B RTT p50 <= 1.5x the cache-line ping-pong | not measured: " in md


# --------------------------------------------------------------------------- #
# The suite plan                                                              #
# --------------------------------------------------------------------------- #


def _plan(*argv: str) -> list[tuple[str, str, int]]:
    args = run.parse_args(["--no-mw", *argv])
    cfg = run.suite.Config.quick_()
    cfg.sizes = (64, 1024)
    steps = run.plan(args, cfg)
    return [(kind, t.label(), size) for kind, t, size, _ in steps]


def test_floor_rows_come_first_at_each_size_whatever_only_says() -> None:
    """The floor is measured in every run (--only need not name it), before the rows it divides."""
    steps = _plan("--only", "pyring")
    assert steps[0] == ("rtt", f"{PP} [c] single busy-poll", 64)
    assert steps[1] == ("rtt", f"{report.FLOOR_FRAMED} [c] single busy-poll", 64)
    tput = [s for s in steps if s[0] == "tput"]
    assert [s[1].split(" [")[0] for s in tput] == [SPSC, SPSC, report.FLOOR_MPSC, "pyring"] * 2
    assert [s[2] for s in tput] == [64] * 4 + [1024] * 4


def test_floor_rows_can_be_left_out() -> None:
    """--no-floor and --skip floor drop every floor row."""
    for argv in (["--no-floor"], ["--skip", "floor"]):
        assert not any("floor" in label for _, label, _ in _plan("--only", "pyring", *argv))


# --------------------------------------------------------------------------- #
# Building and running the C programs                                         #
# --------------------------------------------------------------------------- #

needs_gcc = pytest.mark.skipif(shutil.which(os.environ.get("CC", "gcc")) is None,
                               reason="no C compiler")  # fmt: skip


def test_ring_bench_is_built_from_every_core_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The core may be split: every *.c of the core directory is a source, *.h an input."""
    for name in ("map.c", "ring.c", "errors.c", "ring.h", "notes.txt"):
        (tmp_path / name).write_text("")
    monkeypatch.setattr(cring, "CORE_DIR", str(tmp_path))
    assert cring.sources() == [cring.BENCH_SOURCE] + [
        str(tmp_path / n) for n in ("errors.c", "map.c", "ring.c")
    ]
    assert cring.core_headers() == [str(tmp_path / "ring.h")]
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(cring, "CORE_DIR", str(empty))
    binary, reason = cring.build()
    assert binary is None and "no C core sources" in reason


@needs_gcc
def test_compile_rebuilds_on_a_newer_input_or_another_command(tmp_path: Path) -> None:
    """A binary is reused only if newer than its inputs and built by the same command."""
    main, part = tmp_path / "main.c", tmp_path / "part.c"
    main.write_text("int part(void);\nint main(void) { return part(); }\n")
    part.write_text("int part(void) { return 3; }\n")
    binary = str(tmp_path / "bin" / "prog")
    assert cring.compile_c(binary, [str(main), str(part)]) == (binary, None)
    assert subprocess.run([binary]).returncode == 3
    built = os.path.getmtime(binary)
    time.sleep(0.01)
    assert cring.compile_c(binary, [str(main), str(part)]) == (binary, None)
    assert os.path.getmtime(binary) == built  # up to date: not rebuilt
    part.write_text("int part(void) { return 4; }\n")
    os.utime(part, (built + 5, built + 5))
    cring.compile_c(binary, [str(main), str(part)])
    assert subprocess.run([binary]).returncode == 4
    part.write_text("int part(void) { return 5; }\n")  # same mtime order, other flags
    os.utime(part, (built, built))
    cring.compile_c(binary, [str(main), str(part)], cflags=["-O1"])
    assert subprocess.run([binary]).returncode == 5
    part.write_text("int part(void) { return }\n")
    os.utime(part, (built + 10, built + 10))
    got, reason = cring.compile_c(binary, [str(main), str(part)])
    assert got is None and "failed" in reason


@pytest.fixture(scope="module")
def floor_binary() -> str:
    binary, reason = floor.build()
    if binary is None:
        pytest.skip(f"floor.c not built: {reason}")
    return binary


def test_pingpong_reports_every_round_trip(floor_binary: str) -> None:
    """n round-trip times come back, all positive; the summary line is p50 <= p99 <= p99.9."""
    t = floor.FloorTransport("pingpong")
    assert t.unavailable() is None
    lat = t.run_rtt(64, 2000, 200, 60)
    assert len(lat) == 2000 and min(lat) > 0
    out = subprocess.run([floor_binary, "pingpong", "500", "50", "-1", "-1"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    p50, p99, p999, low, mean = map(float, out.stdout.split())
    assert 0 < low <= p50 <= p99 <= p999 and mean > 0
    with pytest.raises(Exception, match="move 64 B"):
        t.run_rtt(1024, 10, 1, 60)


def test_framed_pingpong_checks_and_times_every_round_trip(floor_binary: str) -> None:
    """The framed variant echoes 80-byte frames through two rings (wrapping them more than
    once: 819 frames a ring), checking each frame's length and payload."""
    t = floor.FloorTransport("framed")
    assert t.unavailable() is None and t.name == report.FLOOR_FRAMED and t.kinds == ("rtt",)
    lat = t.run_rtt(64, 3000, 100, 60)
    assert len(lat) == 3000 and min(lat) > 0
    out = subprocess.run([floor_binary, "framed", "500", "50", "-1", "-1"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    p50, p99, p999, low, mean = map(float, out.stdout.split())
    assert 0 < low <= p50 <= p99 <= p999 and mean > 0


@pytest.mark.parametrize(("mode", "size"), [("single", 64), ("batch", 64), ("single", 1000),
                                            ("batch", 65536), ("single", 8)])  # fmt: skip
def test_spsc_ring_delivers_every_message_in_order(floor_binary: str, mode: str, size: int) -> None:
    """The consumer checks each message's sequence number; it times about n - warm of them."""
    t = floor.FloorTransport("spsc", mode)
    assert t.unavailable() is None
    n = 50000 if size <= 1000 else 2000
    elapsed, count = t.run_tput(size, n, n // 10, 60)
    per_index = floor.BATCH if mode == "batch" else 1  # timing starts on an index store
    assert elapsed > 0 and n - n // 10 - per_index < count <= n - n // 10


@pytest.mark.parametrize("size", [8, 64, 65536])
def test_mpsc_ring_delivers_every_message_in_order(floor_binary: str, size: int) -> None:
    """Each message is claimed with a locked fetch-add and stamped with its sequence
    number, which the consumer waits for slot by slot; it times exactly n - warm."""
    t = floor.FloorTransport("mpsc")
    assert t.unavailable() is None and t.name == report.FLOOR_MPSC
    n = 50000 if size <= 1000 else 2000
    elapsed, count = t.run_tput(size, n, n // 10, 60)
    assert elapsed > 0 and count == n - n // 10


def test_floor_rejects_a_bad_command_line(floor_binary: str) -> None:
    """Usage errors exit 64 (a message smaller than its sequence number, warm >= n)."""
    for argv in (["spsc", "4", "100", "10", "1", "-1", "-1"],
                 ["spsc", "64", "100", "100", "1", "-1", "-1"],
                 ["mpsc", "4", "100", "10", "-1", "-1"], ["mpsc", "64", "100", "100", "-1", "-1"],
                 ["pingpong", "0", "0", "-1", "-1"], ["framed", "0", "0", "-1", "-1"],
                 ["nonsense"]):  # fmt: skip
        proc = subprocess.run([floor_binary, *argv], capture_output=True, timeout=30)
        assert proc.returncode == 64, argv
