"""mycelium_shm.sweep: identical results on every executor, failures, resume, configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mycelium_shm.sweep import (
    GBM,
    SweepConfigError,
    SweepInterrupted,
    SweepSpec,
    iter_results,
    load_config,
    make_executor,
    run_sweep,
    write_reports,
)
from mycelium_shm.sweep.executors import SerialExecutor

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples" / "sweep"
PY = sys.executable


def grid_spec(n_fast: int = 10, n_slow: int = 20, boom: bool = False) -> SweepSpec:
    services = {
        "feed": "sma:BarFeed",
        "strategy": "sma:SmaCross",
        "execution": ("sma:Execution", {"commission": 0.0005}),
        "portfolio": "sma:Portfolio",
    }
    grid = {"strategy.fast": list(range(2, 2 + n_fast)), "strategy.slow": list(range(20, 20 + 3 * n_slow, 3))}
    if boom:
        services["boom"] = "test_sweep_helpers:Boom"
        grid["boom.fail"] = [False, True]
    return SweepSpec.create(
        services,
        GBM(bars=300, sigma=0.3),
        grid=grid,
        seed=11,
        feed="feed",
        schema=EXAMPLES / "schema.toml",
        sys_paths=[str(EXAMPLES), str(HERE)],
    )


def test_grid_identical_on_every_executor(tmp_path: Path) -> None:
    spec = grid_spec()
    assert spec.size == 200
    serial = run_sweep(spec, tmp_path / "serial", executor="serial", progress=False)
    local = run_sweep(spec, tmp_path / "local", executor="local", workers=2, batch_size=7, progress=False)
    ref = serial.path.read_bytes()
    assert local.path.read_bytes() == ref
    lines = ref.splitlines()
    assert len(lines) == 200
    assert [json.loads(x)["index"] for x in lines] == list(range(200))
    assert all(json.loads(x)["ok"] for x in lines)
    assert local.summary["executed"] == 200 and local.summary["workers"] == 2
    report = write_reports(tmp_path / "local")
    assert (tmp_path / "local" / "heatmap_sharpe.png").stat().st_size > 0
    assert len(report["best"]) == 10


def test_grid_identical_on_ray(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    spec = grid_spec()
    serial = run_sweep(spec, tmp_path / "serial", executor="serial", progress=False)
    code = f"""
import sys, pickle
sys.path[:0] = {[str(HERE), str(EXAMPLES)]!r}
from test_sweep import grid_spec
from mycelium_shm.sweep import run_sweep
r = run_sweep(grid_spec(), {str(tmp_path / "ray")!r}, executor="ray", workers=2, progress=False)
print(r.summary["executor"], r.summary["executed"])
"""
    env = {k: v for k, v in __import__("os").environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["ray", "200"]
    assert (tmp_path / "ray" / "results.jsonl").read_bytes() == serial.path.read_bytes()
    assert ray is not None


def test_failing_instance_is_reported_and_others_run(tmp_path: Path) -> None:
    spec = grid_spec(n_fast=3, n_slow=2, boom=True)
    result = run_sweep(spec, tmp_path / "out", executor="local", workers=2, batch_size=3, progress=False)
    records = list(iter_results(result.path))
    assert len(records) == 12
    bad = [r for r in records if not r["ok"]]
    good = [r for r in records if r["ok"]]
    assert len(bad) == 6 and len(good) == 6
    assert all(r["params"]["boom.fail"] is True for r in bad)
    assert all("boom at bar 100" in r["error"] and "RuntimeError" in r["error"] for r in bad)
    assert "on_bar" in bad[0]["traceback"]
    assert result.summary["failed"] == 6


class _StopAfter(SerialExecutor):
    """Serial, then Ctrl-C after ``n`` batches."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def run(self, spec, batches):  # type: ignore[no-untyped-def]
        for k, results in enumerate(super().run(spec, batches)):
            if k == self.n:
                raise KeyboardInterrupt
            yield results


def test_resume_computes_only_what_is_missing(tmp_path: Path) -> None:
    spec = grid_spec(n_fast=5, n_slow=10)  # 50 instances
    full = run_sweep(spec, tmp_path / "full", executor="serial", progress=False)
    out = tmp_path / "part"
    with pytest.raises(SweepInterrupted) as info:
        run_sweep(spec, out, executor=_StopAfter(3), batch_size=4, progress=False)
    assert info.value.done == 12
    with open(out / "results.partial.jsonl", "ab") as f:
        f.write(b'{"index": 40, "ok": tr')  # a line torn by the interruption
    with pytest.raises(FileExistsError):
        run_sweep(spec, out, executor="serial", progress=False)
    resumed = run_sweep(spec, out, executor="local", workers=2, resume=True, progress=False)
    assert resumed.summary["executed"] == 38
    assert resumed.summary["resumed"] == 12
    assert resumed.path.read_bytes() == full.path.read_bytes()
    again = run_sweep(spec, out, executor="serial", resume=True, progress=False)
    assert again.summary["executed"] == 0
    assert again.path.read_bytes() == full.path.read_bytes()


def test_montecarlo_paths_and_report(tmp_path: Path) -> None:
    spec = SweepSpec.create(
        {"feed": "sma:BarFeed", "strategy": ("sma:SmaCross", {"fast": 5, "slow": 20}), "execution": "sma:Execution", "portfolio": "sma:Portfolio"},
        GBM(bars=200, jump_intensity=5.0, jump_std=0.05, regimes=((0.1, 0.2), (-0.1, 0.5)), switch_prob=0.02),
        paths=40,
        seed=3,
        schema=EXAMPLES / "schema.toml",
        sys_paths=[str(EXAMPLES)],
    )
    result = run_sweep(spec, tmp_path / "mc", executor="serial", progress=False)
    recs = list(iter_results(result.path))
    assert [r["path"] for r in recs] == list(range(40))
    assert len({r["metrics"]["pnl"] for r in recs}) > 30  # different paths
    report = write_reports(tmp_path / "mc")
    mc = report["montecarlo"]
    assert mc["count"] == 40 and mc["cvar_99"] >= mc["var_99"] - 1e-9 and mc["cvar_95"] >= mc["var_95"] - 1e-9
    assert (tmp_path / "mc" / "pnl_hist.png").stat().st_size > 0


GOOD = """
schema = "{schema}"
[sweep]
seed = 1
[data]
kind = "gbm"
bars = 100
[services.feed]
class = "sma:BarFeed"
[services.strategy]
class = "sma:SmaCross"
[services.portfolio]
class = "sma:Portfolio"
[grid.strategy]
fast = [2, 3]
slow = [10, 20]
"""


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("fast = [2, 3]", "fats = [2, 3]"), "grid.strategy.fats"),
        (("fast = [2, 3]", "fast = []"), "grid.strategy.fast"),
        (('class = "sma:SmaCross"', 'class = "sma:NoSuchStrategy"'), "services.strategy.class"),
        (('class = "sma:SmaCross"', 'class = "no_such_module:X"'), "services.strategy.class"),
        (('kind = "gbm"', 'kind = "gbn"'), "data.kind"),
        (("bars = 100", "barz = 100"), "data.barz"),
        (("seed = 1", "seed = -1"), "sweep.seed"),
    ],
)
def test_bad_config_is_one_line(tmp_path: Path, change: tuple[str, str], key: str) -> None:
    text = GOOD.format(schema=EXAMPLES / "schema.toml").replace(*change)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    (tmp_path / "sma.py").write_text((EXAMPLES / "sma.py").read_text())
    with pytest.raises(SweepConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(cfg) + ":") and f" {key}: " in message
    proc = subprocess.run(
        [PY, "-m", "mycelium_shm", "sweep", str(cfg), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and key in proc.stderr, proc.stderr


def test_cli_runs_a_config(tmp_path: Path) -> None:
    cfg = tmp_path / "ok.toml"
    (tmp_path / "sma.py").write_text((EXAMPLES / "sma.py").read_text())
    cfg.write_text(GOOD.format(schema=EXAMPLES / "schema.toml"))
    proc = subprocess.run(
        [PY, "-m", "mycelium_shm", "sweep", str(cfg), "--executor", "serial", "--out", str(tmp_path / "o"), "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["summary"]["instances"] == 4 and doc["report"]["best"]


def test_ray_executor_error_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RuntimeError, match="'ray' package"):
        make_executor("ray")
