"""Report logic on synthetic rows: bindings against C, MessageBus rows, new targets.

No measurement runs here (bench_bus.py is replaced by stub scripts); these
tests check arithmetic, verdicts and the markdown, never speed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is a directory of the repo, not installed
    sys.path.insert(0, str(ROOT))

from bench import bus, extensions, report, run, suite  # noqa: E402


def _c(kind: str, **values: float) -> dict:
    row = {"name": "mycelium", "lang": "c", "mode": "single", "wait": "blocking",
           "kind": kind, "size": 64, "status": "ok"}  # fmt: skip
    row.update(values)
    if "msgs_per_s" in values:
        row["mb_per_s"] = values["msgs_per_s"] * 64 / 1e6
    return row


def _ext(pair: str, mode: str, **values: float) -> dict:
    raw = {"name": pair, "mode": mode, "payload_bytes": 64, "p50_ns": None,
           "p99_ns": None, "p999_ns": None, "msgs_per_s": None}  # fmt: skip
    raw.update(values)
    return extensions.from_cli_row(raw, pair.split("-")[0], f"bench_{pair.split('-')[0]}")


def _py_rtt(p50: float) -> dict:
    return {"name": "mycelium", "lang": "python", "mode": "single", "wait": "busy-poll",
            "kind": "rtt", "size": 64, "status": "ok", "p50_ns": p50, "p99_ns": p50,
            "p999_ns": p50}  # fmt: skip


def _rows() -> list[dict]:
    return [
        _c("rtt", p50_ns=1000, p99_ns=2000, p999_ns=3000),
        _c("rtt", p50_ns=800, p99_ns=900, p999_ns=1000),  # the ceiling: fastest blocking
        dict(_c("rtt", p50_ns=600, p99_ns=700, p999_ns=900), wait="busy-poll"),  # waits otherwise
        _c("tput", msgs_per_s=10e6),
        dict(_c("tput", msgs_per_s=50e6), mode="batch"),  # not the single-call ceiling
        _ext("rust-rust", "pingpong", p50_ns=1000, msgs_per_s=1e6),
        _ext("rust-rust", "throughput", msgs_per_s=8e6),
        _ext("rust-python", "pingpong", p50_ns=2000),
        _ext("ocaml-ocaml", "throughput", msgs_per_s=5e6),
        _py_rtt(3000),
        _py_rtt(2400),
    ]


def _bus_rows(inproc_ns: float = 1500) -> list[dict]:
    out = "\n".join(
        json.dumps({"name": "publish_to_handler", "mode": m, "p50_ns": p, "p99_ns": p * 2,
                    "p999_ns": p * 3, "samples": 90})
        for m, p in (("inproc", inproc_ns), ("shm", 6000), ("unix", 40000))
    )  # fmt: skip
    return bus.rows_from_output("starting\n" + out + "\n", failure="timed out after 30 s")


def _target(rows: list[dict], tid: str) -> dict:
    return next(t for t in report.evaluate_targets(rows) if t["id"] == tid)


def _markdown(rows: list[dict]) -> str:
    report.add_ratios(rows)
    result = {
        "rows": rows, "machine": {}, "quick": True, "started_utc": "now", "elapsed_s": 1.0,
        "incomplete": [], "method": [], "targets": report.evaluate_targets(rows),
        "bindings_vs_c": report.bindings_vs_c(rows), "peer_matrix": report.peer_matrix(rows),
    }  # fmt: skip
    return report.markdown(result)


def test_bindings_are_divided_by_the_fastest_single_call_c_rows() -> None:
    """RTT vs C = p50 / best blocking single-call C p50 (the programs block too);
    throughput vs C = msgs/s / best single-call C msgs/s."""
    table = report.bindings_vs_c(_rows())
    assert table["c_rtt_p50_ns"] == 800 and table["c_msgs_per_s"] == 10e6
    by_pair = {r["pair"]: r for r in table["rows"]}
    assert list(by_pair) == list(report.BINDING_PAIRS)
    assert by_pair["rust-rust"]["rtt_vs_c"] == pytest.approx(1.25)
    assert by_pair["rust-rust"]["tput_vs_c"] == pytest.approx(0.8)
    assert by_pair["rust-python"]["rtt_vs_c"] == pytest.approx(2.5)
    assert by_pair["rust-python"]["msgs_per_s"] is None
    assert by_pair["rust-python"]["tput_vs_c"] is None
    assert by_pair["ocaml-ocaml"]["tput_vs_c"] == pytest.approx(0.5)
    assert by_pair["ocaml-python"]["rtt_p50_ns"] is None


def test_pairs_come_from_the_row_name_or_the_language() -> None:
    """A command-line row keeps its pair; an in-process extension row gets one from lang."""
    assert _ext("ocaml-python", "pingpong", p50_ns=1)["pair"] == "ocaml-python"
    in_process = extensions.normalise(
        {"name": "mycelium", "lang": "rust", "mode": "single", "size": 64, "p50_ns": 5}, "rust"
    )
    assert report.pair_of(in_process) == "rust-rust"
    assert report.pair_of(_c("rtt", p50_ns=1)) is None
    assert report.pair_of(_py_rtt(1)) is None


def test_rust_target_passes_fails_or_is_not_measured() -> None:
    """Within 1.3x of C passes, beyond fails, a missing C or Rust row is not measured."""
    rows = _rows()
    t = _target(rows, "rust_rtt_vs_c")
    assert (t["ratio"], t["pass"]) == (pytest.approx(1.25), True)
    rust_rtt = next(r for r in rows if r.get("pair") == "rust-rust" and r["kind"] == "rtt")
    rust_rtt["p50_ns"] = 1100  # 1.375x
    assert _target(rows, "rust_rtt_vs_c")["pass"] is False
    no_c = [r for r in rows if r["lang"] != "c"]
    t = _target(no_c, "rust_rtt_vs_c")
    assert t["pass"] is None and t["ratio"] is None and "no C ceiling row" in t["note"]
    no_rust = [r for r in rows if r.get("pair") != "rust-rust"]
    t = _target(no_rust, "rust_rtt_vs_c")
    assert t["pass"] is None and "no rust-rust row" in t["note"]
    assert report.verdict(t) == "not measured"


def test_check_targets_fails_when_a_target_is_not_measured(tmp_path: Path) -> None:
    """`--check-targets` treats `not measured` as a failure, never as a pass."""
    assert run.bus_skip_reason(run.parse_args(["--no-bus"])) == "--no-bus"
    assert run.bus_skip_reason(run.parse_args(["--only", "pyring"])) == "not in --only"
    assert run.bus_skip_reason(run.parse_args(["--only", "pyring,bus"])) is None
    assert run.bus_skip_reason(run.parse_args(["--skip", "bus"])) == "--skip"
    assert run.bus_skip_reason(run.parse_args([])) is None
    targets = report.evaluate_targets([r for r in _rows() if r["lang"] != "c"])
    assert not all(t["pass"] for t in targets)


def test_bus_rows_keep_printed_modes_and_mark_the_rest_as_errors() -> None:
    """Rows printed before a timeout are kept; a missing mode becomes an error row."""
    rows = _bus_rows()
    assert [(r["mode"], r["status"]) for r in rows] == [
        ("inproc", "ok"), ("shm", "ok"), ("unix", "ok"), ("tcp", "error"),
    ]  # fmt: skip
    assert rows[0]["kind"] == "bus" and rows[0]["p50_ns"] == 1500 and rows[0]["n"] == 90
    assert rows[3]["reason"] == "timed out after 30 s"


def test_bus_target_and_raw_one_way_comparison() -> None:
    """In process < 2 us p50 passes; the raw one-way is the best Python RTT p50 / 2."""
    rows = _rows() + _bus_rows(1500)
    t = _target(rows, "bus_inproc_p50")
    assert (t["value"], t["pass"]) == (1.5, True)
    assert _target(_rows() + _bus_rows(2000), "bus_inproc_p50")["pass"] is False
    missing = _target(_rows(), "bus_inproc_p50")
    assert missing["pass"] is None and missing["note"].startswith("not measured")
    summary = report.bus_summary(rows)
    assert summary["raw_one_way_ns"] == 1200
    assert summary["vs_raw_one_way"]["shm"] == pytest.approx(5.0)


def test_markdown_has_the_new_tables_in_place() -> None:
    """Bus table right after the raw latency table; bindings table with ratios to C."""
    md = _markdown(_rows() + _bus_rows())
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    i = sections.index("## Round-trip latency")
    assert sections[i + 1] == "## MessageBus publish-to-handler latency"
    assert "## Bindings against the C ceiling" in sections
    assert "| rust-rust | 1.00 | 1.25x | 8.00 M | 0.80x |" in md
    assert "| ocaml-python | not measured |  | not measured |  |" in md
    assert "| in process | 1.50 | 3.00 | 4.50 | 90 | 1.25x |" in md
    assert "| raw mycelium Python 64 B one-way (RTT p50 / 2) | 1.20 |" in md
    assert "Target: MessageBus in process publish-to-handler p50 < 2 us: **PASS** (1.50 us)" in md
    targets = md.split("## Targets", 1)[1].split("## ", 1)[0]
    assert "| Rust to Rust 64 B RTT p50 within 1.3x of the C ceiling |" in targets
    assert "| 1.25x | <= 1.3x | PASS |" in targets
    assert "| 1.50 us | < 2 us | PASS |" in targets


def test_markdown_without_bus_or_bindings_says_not_measured() -> None:
    """No bus rows: no bus table; no C/Rust rows: the target reads not measured."""
    md = _markdown([_py_rtt(2000)])
    assert "## MessageBus publish-to-handler latency" not in md
    assert "| Rust to Rust 64 B RTT p50 within 1.3x of the C ceiling | not measured: " in md
    assert "| C ceiling | not measured |" in md


def _stub(tmp_path: Path, body: str) -> str:
    path = tmp_path / "stub_bus.py"
    path.write_text("import json, sys, time\n" + body)
    return str(path)


def test_bus_run_merges_the_script_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bus.run parses the rows bench_bus.py prints and reports ok."""
    lines = [{"name": "publish_to_handler", "mode": m, "p50_ns": 100 * (i + 1),
              "p99_ns": 900, "p999_ns": 990, "samples": 10} for i, m in enumerate(bus.MODES)]  # fmt: skip
    script = _stub(tmp_path, "".join(f"print(json.dumps({row!r}))\n" for row in lines))
    monkeypatch.setattr(bus, "SCRIPT", script)
    logged: list[str] = []
    rows, rep = bus.run(True, 20, logged.append)
    assert rep["status"] == "ok" and rep["rows"] == 4 and "--quick" in rep["argv"]
    assert [r["p50_ns"] for r in rows] == [100, 200, 300, 400]


def test_bus_run_survives_a_hang_and_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hang is killed at the deadline (rows printed so far kept); a crash is an error."""
    row = {"name": "publish_to_handler", "mode": "inproc", "p50_ns": 170, "p99_ns": 190,
           "p999_ns": 210, "samples": 18}  # fmt: skip
    hang = _stub(tmp_path, f"print(json.dumps({row!r}), flush=True)\ntime.sleep(600)\n")
    monkeypatch.setattr(bus, "SCRIPT", hang)
    logged: list[str] = []
    start = time.monotonic()
    rows, rep = bus.run(True, 2, logged.append)
    assert time.monotonic() - start < 15
    assert [r["status"] for r in rows] == ["ok", "error", "error", "error"]
    assert rows[1]["reason"].startswith("timed out") and rep["status"].startswith("error")
    assert any("timed out" in line for line in logged)

    crash = _stub(tmp_path, "sys.exit('boom')\n")
    monkeypatch.setattr(bus, "SCRIPT", crash)
    rows, rep = bus.run(False, 20, logged.append)
    assert {r["status"] for r in rows} == {"error"}
    assert "exit status 1: boom" in rows[0]["reason"]
    assert "--quick" not in rep["argv"]


def test_suite_merges_bus_rows_into_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run with only the bus selected writes kind "bus" rows, the bus fields and tables."""
    fake = _bus_rows(1500)
    monkeypatch.setattr(bus, "run", lambda quick, timeout, log: (fake, {"status": "ok"}))
    monkeypatch.setattr(run, "machine_info", lambda: {"loadavg_start": None})
    monkeypatch.setattr(run.common, "install_cleanup_handlers", lambda: None)
    monkeypatch.setattr(run, "iceoryx_shm_objects", lambda: set())
    monkeypatch.setattr(run, "remove_iceoryx_leftovers", lambda before: [])
    code = run.main(["--quick", "--out", str(tmp_path), "--only", "bus", "--no-c",
                     "--no-mw", "--no-ext", "--no-plots"])  # fmt: skip
    assert code == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert [r["mode"] for r in result["rows"] if r["kind"] == "bus"] == [
        "inproc", "shm", "unix", "tcp",
    ]  # fmt: skip
    assert result["bus"]["status"] == "ok" and result["bus"]["measured"] == 3
    assert result["bindings_vs_c"]["c_rtt_p50_ns"] is None
    bus_t = next(t for t in result["targets"] if t["id"] == "bus_inproc_p50")
    assert bus_t["pass"] is True
    md = (tmp_path / "results.md").read_text()
    assert "## MessageBus publish-to-handler latency" in md
    assert "cross-process, tcp | error: timed out after 30 s" in md


def _planned(*argv: str) -> set[str]:
    """Labels of the planned rows, less the floor rows (planned whenever any row is)."""
    steps = run.plan(run.parse_args(["--quick", *argv]), suite.Config.quick_())
    return {t.label() for _, t, _, _ in steps if not t.name.startswith("floor")}


def test_selectors_match_names_and_whole_label_words() -> None:
    """--only takes part of a transport name or a whole label word; "bus" is not "busy-poll"."""
    assert _planned("--only", "bus", "--no-mw") == set()
    assert run.plan(run.parse_args(["--only", "bus", "--no-mw"]), suite.Config.quick_()) == []
    fifo = _planned("--only", "fifo", "--no-mw")
    assert fifo and all(label.startswith("faster-fifo") for label in fifo)
    polling = _planned("--only", "busy-poll", "--no-mw")
    assert polling and all("busy-poll" in label for label in polling)
    assert not any(label.startswith("pyring") for label in _planned("--skip", "pyring"))
