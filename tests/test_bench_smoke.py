"""The benchmark harness runs end to end and reports well-formed rows and ratios.

These tests check structure, never speed: they run on loaded CI machines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a directory of the repo, not installed
    sys.path.insert(0, str(ROOT))

from bench import extensions, report  # noqa: E402

OUR_SHM_PREFIXES = ("mycelium.mbench", "mycelium.cbench", "pyr")


def _our_shm_objects() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith(OUR_SHM_PREFIXES)}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One quick run over a few transports (shared by the tests below)."""
    out = tmp_path_factory.mktemp("bench")
    before = _our_shm_objects()
    proc = subprocess.run(
        [
            sys.executable, "-m", "bench", "--quick", "--out", str(out),
            "--only", "pyring,mp.pipe,mycelium", "--sizes", "64,65536",
            "--writers", "1,2", "--repeats", "1", "--target-s", "0.02", "--no-ext", "--no-bus",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "results.json").read_text())
    return {"out": out, "result": result, "proc": proc, "before": before}


def test_quick_run_writes_json_markdown_and_plots(smoke: dict) -> None:
    """A quick run leaves results.json, results.md and PNG plots in --out."""
    out = smoke["out"]
    md = (out / "results.md").read_text()
    assert "## Targets" in md and "## Round-trip latency" in md
    assert "Quick mode" in md
    for name in ("latency.png", "throughput.png", "multiwriter.png", "ratios.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_json_records_the_machine(smoke: dict) -> None:
    """The JSON names CPU model, core count, kernel and Python version."""
    machine = smoke["result"]["machine"]
    for key in ("cpu_model", "cpus", "kernel", "python", "loadavg_start", "loadavg_end"):
        assert machine[key] not in (None, ""), key
    assert smoke["result"]["quick"] is True


def test_rows_are_well_formed(smoke: dict) -> None:
    """Every row has its labels; measured rows have ordered percentiles or a rate."""
    rows = smoke["result"]["rows"]
    kinds = {r["kind"] for r in rows}
    assert kinds == {"rtt", "tput", "mw"}
    for r in rows:
        for key in ("name", "lang", "mode", "wait", "kind", "size", "status"):
            assert key in r, (key, r)
        if r["status"] != "ok":
            continue
        if r["kind"] == "rtt":
            assert 0 < r["p50_ns"] <= r["p99_ns"] <= r["p999_ns"], r
            assert r["curve"] and r["curve"][-1][0] == 1.0
        else:
            assert r["msgs_per_s"] > 0, r
            assert r["mb_per_s"] == pytest.approx(r["msgs_per_s"] * r["size"] / 1e6)
    assert {r["writers"] for r in rows if r["kind"] == "mw"} == {1, 2}


def test_baseline_and_mycelium_rows_were_measured(smoke: dict) -> None:
    """The pure-Python ring, mp.Pipe and the Python and C mycelium rows all ran."""
    ok = {(r["name"], r["lang"], r["kind"]) for r in smoke["result"]["rows"]
          if r["status"] == "ok"}  # fmt: skip
    for expected in [
        ("pyring", "python", "rtt"), ("pyring", "python", "tput"),
        ("mp.Pipe", "python", "rtt"), ("mycelium", "python", "rtt"),
        ("mycelium", "python", "tput"), ("mycelium", "c", "rtt"),
        ("mycelium", "c", "tput"), ("mycelium", "python", "mw"),
    ]:  # fmt: skip
        assert expected in ok, (expected, smoke["proc"].stderr[-2000:])


def test_every_mycelium_row_has_a_ratio_to_the_pure_python_ring(smoke: dict) -> None:
    """Each measured mycelium rtt/tput row carries vs_pyring, and targets are judged."""
    rows = smoke["result"]["rows"]
    measured = [r for r in rows if r["status"] == "ok" and r["name"] == "mycelium"
                and r["kind"] in ("rtt", "tput")]  # fmt: skip
    assert measured
    for r in measured:
        ratios = r["vs_pyring"]
        assert ratios, r
        assert all(v is not None and v > 0 for v in ratios.values()), r
    targets = {t["id"]: t for t in smoke["result"]["targets"]}
    assert list(targets) == [
        "rtt_p50", "tput_64_single", "tput_64_batch", "tput_64k", "c_rtt_vs_floor",
        "rust_rtt_vs_floor", "c_single_vs_floor", "c_batch_vs_floor", "mw4_c", "mw4_python",
        "rust_rtt_vs_c", "bus_inproc_p50",
    ]  # fmt: skip
    judged = ["rtt_p50", "tput_64_single", "tput_64_batch", "tput_64k", "c_rtt_vs_floor",
              "c_single_vs_floor", "c_batch_vs_floor"]  # fmt: skip
    for tid in judged:
        assert targets[tid]["ratio"] is not None and targets[tid]["pass"] in (True, False), tid
    # --no-ext, --no-bus, --writers 1,2: no Rust, bus or 4-writer row, so never a pass.
    for tid in set(targets) - set(judged):
        t = targets[tid]
        assert t["pass"] is None and t["note"].startswith("not measured"), t
    assert smoke["result"]["bus"]["status"] == "skipped (--no-bus)"
    assert [r["pair"] for r in smoke["result"]["bindings_vs_c"]["rows"]] == list(
        report.BINDING_PAIRS
    )
    assert "mp.Pipe [python] single blocking" in next(
        iter(smoke["result"]["peer_matrix"]["rtt/64"].values())
    )


def test_every_row_has_a_ratio_to_the_floor_of_the_same_run(smoke: dict) -> None:
    """The floor rows are measured in the run; round trips are paired with the ping-pong,
    throughput rows divided by the SPSC row."""
    rows = smoke["result"]["rows"]
    floors = {(r["name"], r["mode"], r["size"]) for r in rows if r["name"].startswith("floor:")
              and r["status"] == "ok"}  # fmt: skip
    assert floors == {
        ("floor: cache-line ping-pong", "single", 64),
        ("floor: framed ping-pong", "single", 64),
        *(("floor: SPSC ring", mode, size) for mode in ("single", "batch") for size in (64, 65536)),
        *(("floor: MPSC ring", "single", size) for size in (64, 65536)),
    }
    measured = [r for r in rows if r["status"] == "ok" and r["kind"] in ("rtt", "tput", "mw")]
    assert {r["lang"] for r in measured} == {"c", "python"}
    for r in measured:
        assert r["vs_floor"] is not None and r["vs_floor"] > 0, r
        if r["kind"] == "rtt" and not r["name"].startswith("floor:"):  # a ping-pong run
            assert r["floor_paired"] is True and len(r["floor_runs"]) == r["repeats"], r
        elif not r["name"].startswith("floor:"):  # divided by the SPSC row
            assert r["floor_paired"] is False, r
    floor = smoke["result"]["floor"]
    assert floor["pingpong_p50_ns"] > 0 and set(floor["spsc_msgs_per_s"]) == {"64", "65536"}
    assert set(floor["mpsc_msgs_per_s"]) == {"64", "65536"}
    assert set(floor["framed_p50_ns"]) == {"64"}
    md = (smoke["out"] / "results.md").read_text()
    assert "## Against the physical floor" in md and "x floor" in md


def test_run_leaves_no_shared_memory_behind(smoke: dict) -> None:
    """Every ring the run created is unlinked again."""
    assert _our_shm_objects() - smoke["before"] == set()


def _row(name: str, kind: str, size: int, **values: float) -> dict:
    row = {"name": name, "lang": "python", "mode": "single", "wait": "blocking",
           "kind": kind, "size": size, "status": "ok"}  # fmt: skip
    row.update(values)
    return row


def test_ratios_and_targets_follow_their_definitions() -> None:
    """vs_pyring divides by the baseline; RTT targets compare p50, throughput msgs/s."""
    rows = [
        _row("pyring", "rtt", 64, p50_ns=1000, p99_ns=2000, p999_ns=4000),
        _row("mycelium", "rtt", 64, p50_ns=500, p99_ns=1000, p999_ns=1000),
        _row("pyring", "tput", 64, msgs_per_s=1e6),
        _row("mycelium", "tput", 64, msgs_per_s=3e6),
        dict(_row("mycelium", "tput", 64, msgs_per_s=5e6), mode="batch"),
        _row("pyring", "tput", 65536, msgs_per_s=1e5),
        dict(_row("mycelium", "tput", 65536, msgs_per_s=1e5), mode="zero-copy"),
        _row("mycelium", "tput", 65536, msgs_per_s=9e5),  # not the zero-copy read row
        _row("mp.Pipe", "tput", 64, msgs_per_s=5e5),
    ]
    report.add_ratios(rows)
    assert rows[1]["vs_pyring"] == {"p50": 0.5, "p99": 0.5, "p999": 0.25}
    assert rows[3]["vs_pyring"] == {"msgs_per_s": 3.0}
    verdicts = {t["id"]: (t["ratio"], t["pass"]) for t in report.evaluate_targets(rows)[:4]}
    assert verdicts == {
        "rtt_p50": (0.5, True),
        "tput_64_single": (3.0, True),
        "tput_64_batch": (5.0, False),
        "tput_64k": (1.0, False),
    }
    matrix = report.peer_matrix(rows)
    assert matrix[("tput", 64)]["mycelium [python] single blocking"][
        "mp.Pipe [python] single blocking"
    ] == pytest.approx(6.0)


def test_extension_rows_are_normalised_and_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bench_rust-style module's rows() output is merged; a missing language is logged."""
    fake = types.ModuleType("bench.bench_rust_fake")

    def rows(quick: bool = False) -> list[dict]:
        return [
            {"name": "mycelium", "lang": "rust", "mode": "single", "size": 64,
             "p50_ns": 900, "p99_ns": 1000, "p999_ns": 2000, "msgs_per_s": None},
            {"name": "mycelium", "lang": "rust", "mode": "single", "size": 64,
             "p50_ns": None, "p99_ns": None, "p999_ns": None, "msgs_per_s": 2e6},
            {"name": "broken"},
        ]  # fmt: skip

    fake.rows = rows
    monkeypatch.setitem(sys.modules, "bench.bench_rust_fake", fake)
    monkeypatch.setattr(extensions, "discover", lambda: {"rust": ["bench_rust_fake"], "ocaml": []})
    logged: list[str] = []
    got, reports, incomplete = extensions.collect(True, 30, logged.append)
    assert [r["kind"] for r in got] == ["rtt", "tput"]
    assert got[1]["mb_per_s"] == pytest.approx(2e6 * 64 / 1e6)
    assert reports[0]["rows"] == 2 and "1 malformed" in reports[0]["status"]
    assert any("ocaml" in note for note in incomplete)
    assert any("dropped" in line for line in logged)


def test_command_line_extension_rows_become_suite_rows() -> None:
    """A bench_rust.py-style JSON row maps to kind, language pair and payload size."""
    rtt = extensions.from_cli_row(
        {"name": "rust-python", "mode": "pingpong", "payload_bytes": 64, "p50_ns": 1400,
         "p99_ns": 1900, "p999_ns": 9000, "msgs_per_s": 6e5, "samples": 5000},
        "rust", "bench_rust",
    )  # fmt: skip
    assert (rtt["name"], rtt["lang"], rtt["kind"], rtt["size"]) == (
        "mycelium",
        "rust/python",
        "rtt",
        64,
    )
    assert rtt["msgs_per_s"] is None and rtt["round_trips_per_s"] == 6e5
    tput = extensions.from_cli_row(
        {"name": "ocaml-ocaml", "mode": "throughput", "payload_bytes": 1024,
         "p50_ns": None, "msgs_per_s": 2e6},
        "ocaml", "bench_ocaml",
    )  # fmt: skip
    assert (tput["lang"], tput["kind"], tput["mb_per_s"]) == ("ocaml", "tput", 2e6 * 1024 / 1e6)
    with pytest.raises(ValueError):
        extensions.from_cli_row({"name": "rust-rust", "mode": "sideways"}, "rust", "bench_rust")
