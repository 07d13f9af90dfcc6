"""``mycelium-shm sweep CONFIG.toml``: a parameter grid or Monte Carlo run of backtests.

Each instance is the config's services on a private in-process bus
(:mod:`mycelium_shm.sweep`).  Results stream to ``OUT/results.partial.jsonl``
as they complete, ``--resume`` computes only the missing instances, Ctrl-C
keeps what finished.  At the end: ``OUT/results.jsonl`` (sorted by instance),
``summary.json``, ``report.json``, ``best.json`` and the PNG plots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import CliError, emit_json, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid or Monte Carlo sweep of backtests (serial, local cores or Ray)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("config", metavar="CONFIG.toml", type=Path)
    p.add_argument("--executor", choices=("local", "ray", "serial"), default="local")
    p.add_argument("--workers", type=positive_int, help="worker processes (default: all cores)")
    p.add_argument("--resume", action="store_true", help="compute only the instances missing in OUT")
    p.add_argument("--out", type=Path, help="output directory (default: sweep-<config name>)")
    p.add_argument("--batch", type=positive_int, help="instances per task (default: automatic)")
    p.add_argument("--json", action="store_true", help="the summary and report as JSON on stdout")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..sweep import SweepConfigError, SweepInterrupted, load_config, run_sweep, write_reports

    try:
        spec = load_config(args.config)
    except SweepConfigError as exc:
        raise CliError(str(exc)) from None
    out = args.out or Path(f"sweep-{args.config.stem}")
    try:
        result = run_sweep(
            spec, out, executor=args.executor, workers=args.workers, resume=args.resume, batch_size=args.batch
        )
    except SweepInterrupted as exc:
        print(f"mycelium-shm: {exc}", file=sys.stderr)
        return 130
    except (RuntimeError, FileExistsError) as exc:
        raise CliError(str(exc)) from None
    report = write_reports(out)
    table = report.pop("table")
    if args.json:
        emit_json({"summary": result.summary, "report": report, "out": str(out)})
        return 0
    s = result.summary
    print(
        f"{s['instances']} instances ({s['executed']} run now, {s['failed']} failed) in {s['wall_s']} s "
        f"with {s['executor']} x{s['workers']}: {s['instances_per_s']} inst/s, "
        f"setup median {s['setup_median_us']} us"
    )
    print(f"best by {report['metric']}:\n{table}")
    mc = report.get("montecarlo")
    if mc:
        print(
            f"P&L over {mc['count']} paths: mean {mc['mean']:.4g}, VaR95 {mc['var_95']:.4g}, "
            f"CVaR95 {mc['cvar_95']:.4g}, VaR99 {mc['var_99']:.4g}, CVaR99 {mc['cvar_99']:.4g}"
        )
    print(f"results in {out}/")
    return 0
