"""Reports of a finished sweep, read back from ``results.jsonl`` streaming.

* ``best.json`` / :func:`best`: the top parameter sets by a metric (mean over
  the Monte Carlo paths of each grid point);
* ``heatmap_<metric>.png``: the metric over two grid parameters (mean over the
  other parameters and the paths);
* ``pnl_hist.png`` (Monte Carlo, ``paths > 1``): the P&L distribution with VaR and
  CVaR at 95 % and 99 %;
* ``report.json``: all these numbers.

VaR at level q is the loss not exceeded with probability q:
``VaR = -quantile(pnl, 1 - q)``; CVaR the mean loss beyond it,
``-mean(pnl[pnl <= quantile(pnl, 1 - q)])``.  Aggregates are summed in
instance order, so they do not depend on the executor.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .runner import FINAL, iter_results

__all__ = ["best", "format_table", "risk_metrics", "write_reports"]


def _grid_points(path: Path, metric: str) -> tuple[dict[str, dict[str, Any]], int, int]:
    """Grid point key -> {params, sum, count, ...} of ``metric``; (points, ok, failed)."""
    points: dict[str, dict[str, Any]] = {}
    ok = failed = 0
    for r in iter_results(path):
        if not r["ok"]:
            failed += 1
            continue
        ok += 1
        key = json.dumps(r["params"], sort_keys=True)
        p = points.get(key)
        if p is None:
            p = points[key] = {"params": r["params"], "n": 0, "sums": {}}
        p["n"] += 1
        for k, v in r["metrics"].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                p["sums"][k] = p["sums"].get(k, 0.0) + v
    return points, ok, failed


def best(path: Union[str, Path], metric: str = "sharpe", top: int = 10, descending: Optional[bool] = None) -> list[dict[str, Any]]:
    """The ``top`` grid points by the mean of ``metric`` (max_drawdown: smallest first)."""
    points, _, _ = _grid_points(Path(path), metric)
    if descending is None:
        descending = not metric.startswith("max_drawdown")
    rows = []
    for p in points.values():
        means = {k: s / p["n"] for k, s in p["sums"].items()}
        if metric in means and math.isfinite(means[metric]):
            rows.append({"params": p["params"], "paths": p["n"], **means})
    rows.sort(key=lambda r: r[metric], reverse=descending)
    return rows[:top]


def format_table(rows: Sequence[dict[str, Any]], metric: str) -> str:
    """The best parameter sets as a text table."""
    if not rows:
        return "(no successful instances)"
    params = list(rows[0]["params"])
    cols = [*params, metric] + [c for c in ("pnl", "sharpe", "max_drawdown", "trades") if c != metric]
    table = [cols]
    for r in rows:
        cells = [str(r["params"][p]) for p in params]
        for c in cols[len(params) :]:
            v = r.get(c)
            cells.append("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in table)


def risk_metrics(pnl: np.ndarray) -> dict[str, float]:
    """VaR and CVaR (as positive losses) at 95 % and 99 %, plus the distribution's moments."""
    out: dict[str, float] = {
        "count": int(pnl.shape[0]),
        "mean": float(np.mean(pnl)),
        "std": float(np.std(pnl, ddof=1)) if pnl.shape[0] > 1 else 0.0,
        "min": float(np.min(pnl)),
        "max": float(np.max(pnl)),
        "prob_loss": float(np.mean(pnl < 0)),
    }
    for level in (95, 99):
        q = float(np.quantile(pnl, 1 - level / 100))
        out[f"var_{level}"] = -q
        out[f"cvar_{level}"] = -float(np.mean(pnl[pnl <= q]))
    return out


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _heatmap(out: Path, points: dict[str, dict[str, Any]], metric: str, x: str, y: str) -> dict[str, Any]:
    xs = sorted({p["params"][x] for p in points.values()})
    ys = sorted({p["params"][y] for p in points.values()})
    sums = np.zeros((len(ys), len(xs)))
    counts = np.zeros((len(ys), len(xs)))
    for p in points.values():
        if metric in p["sums"]:
            i, j = ys.index(p["params"][y]), xs.index(p["params"][x])
            sums[i, j] += p["sums"][metric]
            counts[i, j] += p["n"]
    with np.errstate(invalid="ignore", divide="ignore"):
        grid = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(xs) + 2), max(3, 0.4 * len(ys) + 2)))
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=90 if len(xs) > 12 else 0)
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"mean {metric}")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    png = out / f"heatmap_{metric}.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return {"x": x, "y": y, "xs": xs, "ys": ys, "values": [[None if math.isnan(v) else v for v in row] for row in grid.tolist()], "png": png.name}


def _histogram(out: Path, pnl: np.ndarray, risk: dict[str, float], bins: int) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(pnl, bins=bins, color="#4a78b5", alpha=0.85)
    for level, color in ((95, "#e08a1e"), (99, "#c0392b")):
        ax.axvline(-risk[f"var_{level}"], color=color, linestyle="--", label=f"VaR {level}% = {risk[f'var_{level}']:.4g}")
        ax.axvline(-risk[f"cvar_{level}"], color=color, linestyle=":", label=f"CVaR {level}% = {risk[f'cvar_{level}']:.4g}")
    ax.set_xlabel("P&L")
    ax.set_ylabel("paths")
    ax.set_title(f"P&L over {pnl.shape[0]} paths")
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = out / "pnl_hist.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png.name


def write_reports(
    out: Union[str, Path],
    metric: Optional[str] = None,
    heatmap: Optional[Sequence[str]] = None,
    top: Optional[int] = None,
    bins: Optional[int] = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Write best.json, report.json and the PNGs into ``out``; the report as a dict.

    Defaults come from the config's ``[report]`` table (kept in spec.json).
    """
    out = Path(out)
    spec = json.loads((out / "spec.json").read_text())
    conf = spec.get("report", {})
    metric = metric or conf.get("metric", "sharpe")
    top = top or conf.get("top", 10)
    bins = bins or conf.get("bins", 50)
    heatmap = heatmap or conf.get("heatmap")
    grid_keys = [k for k, _ in spec["grid"]]
    if heatmap is None and len(grid_keys) >= 2:
        heatmap = grid_keys[:2]
    results = out / FINAL
    points, ok, failed = _grid_points(results, metric)
    rows = best(results, metric, top)
    report: dict[str, Any] = {"metric": metric, "instances": ok + failed, "ok": ok, "failed": failed, "best": rows}
    if heatmap and len(points) > 1:
        report["heatmap"] = _heatmap(out, points, metric, heatmap[0], heatmap[1]) if plots else None
    if spec.get("paths", 1) > 1 and ok:
        pnl = np.empty(ok)
        n = 0
        for r in iter_results(results):
            if r["ok"] and "pnl" in r["metrics"]:
                pnl[n] = r["metrics"]["pnl"]
                n += 1
        pnl = pnl[:n]
        if n:
            risk = risk_metrics(pnl)
            if plots:
                risk["png"] = _histogram(out, pnl, risk, bins)  # type: ignore[assignment]
            report["montecarlo"] = risk
    (out / "best.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    report["table"] = format_table(rows, metric)
    return report
