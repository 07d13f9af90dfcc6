"""Rows from other languages: bench/bench_rust*.py and bench/bench_ocaml*.py.

Two contracts are accepted (see bench/README.md):

* command line (what bench_rust.py and bench_ocaml.py implement):
  ``python -m bench.<module> [--quick] [--size B --iters N --warmup N
  --count N] -o FILE`` writes a JSON list of rows with the keys name
  ("rust-python": first process's language, then the second's), mode
  ("pingpong" or "throughput"), payload_bytes, p50_ns, p99_ns, p999_ns,
  msgs_per_s.  It runs as a subprocess in its own session with a deadline;
  on expiry the session gets SIGTERM, then SIGKILL.
* in process: ``rows(quick=False) -> list[dict]`` with the suite's own row
  keys (name, lang, mode, size, p50_ns... or msgs_per_s), called in a
  forked child with a deadline.

Either way a hung or crashing extension costs a log line, never the suite,
and a language without rows is listed as making the row set incomplete.
"""

import contextlib
import glob
import importlib
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from . import common

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LANGUAGES = ("rust", "ocaml")
ENTRY_POINTS = ("rows", "run_rows", "bench_rows", "collect_rows")
CLI_KINDS = {"pingpong": "rtt", "throughput": "tput"}


def discover():
    """{language: [module names]} of the extension files present now."""
    found = {}
    for lang in LANGUAGES:
        paths = sorted(glob.glob(os.path.join(HERE, f"bench_{lang}*.py")))
        found[lang] = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return found


def cli_invocations(quick, sizes):
    """Argument lists for the command-line contract: one per payload size.

    64 B uses the module's own counts (or its --quick); larger payloads get
    counts scaled so each invocation moves about 300 MB (30 MB quick)."""
    out = []
    for size in sizes if not quick else (64,):
        if size == 64:
            out.append(["--quick"] if quick else [])
            continue
        count = max(5000, min(5_000_000, 300_000_000 // size))
        out.append(["--size", str(size), "--iters", "20000", "--warmup", "2000",
                    "--count", str(count)])  # fmt: skip
    return out


# ------------------------------------------------------------------------- #
# Running an extension                                                      #
# ------------------------------------------------------------------------- #


def _entry(module):
    for name in ENTRY_POINTS:
        func = getattr(module, name, None)
        if callable(func):
            return name, func
    return None, None


def _call_in_child(module_name, quick):
    """Child body: import the module and call its rows() entry point."""
    module = importlib.import_module(f"{__package__}.{module_name}")
    name, func = _entry(module)
    if func is None:
        return {"entry": None, "rows": []}
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        params = {}
    takes_quick = "quick" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    rows = func(quick=quick) if takes_quick else func()
    return {"entry": name, "rows": list(rows or [])}


def _has_entry(module_name):
    """True if the module source defines a rows()-style function (no import)."""
    path = os.path.join(HERE, module_name + ".py")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return any(f"\ndef {name}(" in text for name in ENTRY_POINTS)


def run_cli(module_name, args, timeout):
    """Run `python -m bench.<module> ARGS -o FILE`; return its JSON rows."""
    with tempfile.TemporaryDirectory(prefix="myc-bench-ext-") as tmp:
        out = os.path.join(tmp, "rows.json")
        cmd = [sys.executable, "-m", f"{__package__}.{module_name}", *args, "-o", out]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # fmt: skip
        common.track_child(proc)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_session(proc)
            raise common.BenchError(f"timed out after {timeout:.0f} s") from None
        finally:
            if proc.poll() is None:
                _stop_session(proc)
            common.untrack_child(proc)
        if proc.returncode != 0:
            tail = (err or "").strip().splitlines()[-1:] or [""]
            raise common.BenchError(f"exit status {proc.returncode}: {tail[0][:300]}")
        try:
            with open(out) as f:
                return json.load(f)
        except (OSError, ValueError) as exc:
            raise common.BenchError(f"no JSON rows written: {exc}") from None


def _stop_session(proc):
    """SIGTERM the session we started for proc (so it can unlink), then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue
    # The session's other members may outlive its leader briefly.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# ------------------------------------------------------------------------- #
# Rows                                                                       #
# ------------------------------------------------------------------------- #


def from_cli_row(raw, lang, module_name):
    """The suite's row for one row of the command-line contract."""
    if not isinstance(raw, dict) or "name" not in raw or "mode" not in raw:
        raise ValueError(f"not a row: {raw!r}"[:200])
    kind = CLI_KINDS.get(raw["mode"])
    if kind is None:
        raise ValueError(f"unknown mode {raw['mode']!r}")
    first, _, second = str(raw["name"]).partition("-")
    pair = first if second in ("", first) else f"{first}/{second}"
    row = {
        "name": "mycelium",
        "lang": pair or lang,
        "mode": raw["mode"],
        "wait": "",
        "kind": kind,
        "size": raw.get("payload_bytes", raw.get("size")),
        "pair": str(raw["name"]),
        "note": f"bench/{module_name}.py row {raw['name']} ({raw['mode']})",
    }
    if kind == "rtt":
        for key in ("p50_ns", "p99_ns", "p999_ns", "mean_ns"):
            row[key] = raw.get(key)
        row["round_trips_per_s"] = raw.get("msgs_per_s")
        row["msgs_per_s"] = None
    else:
        row["msgs_per_s"] = raw.get("msgs_per_s")
    if raw.get("samples") is not None:
        row["n"] = raw["samples"]
    return normalise(row, lang)


def normalise(row, default_lang):
    """A well-formed row from an extension's dict, or raise ValueError."""
    if not isinstance(row, dict):
        raise ValueError(f"row is {type(row).__name__}, not dict")
    out = dict(row)
    for key in ("name", "mode", "size"):
        if out.get(key) is None:
            raise ValueError(f"row lacks {key!r}: {row!r}"[:200])
    out.setdefault("lang", default_lang)
    out.setdefault("wait", "")
    out.setdefault("status", "ok")
    out["size"] = int(out["size"])
    if "kind" not in out:
        if out.get("writers"):
            out["kind"] = "mw"
        elif out.get("p50_ns") is not None:
            out["kind"] = "rtt"
        else:
            out["kind"] = "tput"
    if out["status"] == "ok":
        if out["kind"] == "rtt" and out.get("p50_ns") is None:
            raise ValueError(f"round-trip row without p50_ns: {row!r}"[:200])
        if out["kind"] in ("tput", "mw") and out.get("msgs_per_s") is None:
            raise ValueError(f"throughput row without msgs_per_s: {row!r}"[:200])
    for key in ("p50_ns", "p99_ns", "p999_ns", "msgs_per_s", "mb_per_s"):
        out.setdefault(key, None)
    if out["kind"] != "rtt" and out["msgs_per_s"] is not None and out["mb_per_s"] is None:
        out["mb_per_s"] = out["msgs_per_s"] * out["size"] / 1e6
    out["source"] = "extension"
    return out


def collect(quick, timeout, log, sizes=(64,), budget_s=None):
    """(rows, module reports, incomplete notes) from every extension present.

    `timeout` bounds each call; `budget_s` (if given) bounds them all."""
    deadline = None if budget_s is None else time.monotonic() + budget_s
    rows, reports, incomplete = [], [], []
    for lang, modules in discover().items():
        got = 0
        if not modules:
            incomplete.append(f"no bench/bench_{lang}*.py, so no {lang} rows")
            log(f"row set incomplete: bench/bench_{lang}.py is absent")
            continue
        for module_name in modules:
            report = {"module": module_name, "lang": lang, "rows": 0, "status": "ok"}
            reports.append(report)
            in_process = f"{__package__}.{module_name}" in sys.modules or _has_entry(module_name)
            calls = [None] if in_process else cli_invocations(quick, sizes)
            problems, bad = [], 0
            for i, args in enumerate(calls):
                left = timeout if deadline is None else min(timeout, deadline - time.monotonic())
                if left < 5:
                    problems.append("skipped: extension time budget spent")
                    break
                if args is not None and i > 0:
                    args = [*args, "--no-build"]  # built by the first call
                log(f"{module_name}: running" + ("" if args is None else f" {' '.join(args)}"))
                try:
                    if args is None:
                        (res,) = common.run_group(
                            [(_call_in_child, (module_name, quick), None)], left
                        )
                        if res["entry"] is None:
                            problems.append("no rows() entry point")
                            continue
                        raw_rows, convert = res["rows"], normalise
                    else:
                        raw_rows = run_cli(module_name, args, left)

                        def convert(raw, lang, _m=module_name):
                            return from_cli_row(raw, lang, _m)
                except common.BenchError as exc:
                    problems.append("error: " + str(exc).strip().splitlines()[0][:300])
                    log(f"{module_name}: {problems[-1]}")
                    continue
                for raw in raw_rows:
                    try:
                        rows.append(convert(raw, lang))
                        report["rows"] += 1
                    except ValueError as exc:
                        bad += 1
                        log(f"{module_name}: dropped a row: {exc}")
            if bad:
                problems.append(f"{bad} malformed rows dropped")
            if problems:
                report["status"] = "; ".join(problems)
            got += report["rows"]
        if not got:
            incomplete.append(f"bench_{lang}*.py produced no {lang} rows")
            log(f"row set incomplete: no {lang} rows")
    return rows, reports, incomplete
