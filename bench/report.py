"""Ratios, targets and the markdown report, computed from result rows only.

Conventions, stated once and repeated in the markdown:

* vs_pyring: a mycelium row divided by the pure-Python ring measured in the
  same run, same kind and payload size.  For latency it is p50 / p50 (lower
  is better); for throughput msgs/s / msgs/s (higher is better).
* speedup against a peer: > 1 always means mycelium is faster
  (peer p50 / mycelium p50 for latency, mycelium / peer msgs/s for throughput).
"""

BASELINE = "pyring"

TARGETS = [
    # id, description, kind, size, row filter (mode), metric, op, threshold
    ("rtt_p50", "64 B RTT p50 <= 0.6x pure-Python ring", "rtt", 64, None, "p50", "<=", 0.6),
    (
        "tput_64_single",
        "64 B single-call throughput >= 2x pure-Python ring",
        "tput",
        64,
        "single",
        "msgs_per_s",
        ">=",
        2.0,
    ),
    (
        "tput_64_batch",
        "64 B batched throughput >= 6x pure-Python ring",
        "tput",
        64,
        "batch",
        "msgs_per_s",
        ">=",
        6.0,
    ),
    (
        "tput_64k",
        "64 KiB throughput >= 1.5x pure-Python ring",
        "tput",
        65536,
        None,
        "msgs_per_s",
        ">=",
        1.5,
    ),
]


def is_mycelium(row):
    return "mycelium" in str(row.get("name", "")).lower()


def ok(row):
    return row.get("status", "ok") == "ok"


def label(row):
    return f"{row.get('name')} [{row.get('lang')}] {row.get('mode')} {row.get('wait', '')}".strip()


def _baselines(rows):
    return {
        (r["kind"], r["size"]): r
        for r in rows
        if ok(r) and r.get("name") == BASELINE and r.get("lang") == "python"
    }


def add_ratios(rows):
    """Set row['vs_pyring'] on every measured mycelium row (None if no baseline)."""
    base = _baselines(rows)
    for row in rows:
        if not (ok(row) and is_mycelium(row)) or row["kind"] not in ("rtt", "tput"):
            continue
        b = base.get((row["kind"], row["size"]))
        if b is None:
            row["vs_pyring"] = None
        elif row["kind"] == "rtt":
            row["vs_pyring"] = {
                f"p{q}": _div(row.get(f"p{q}_ns"), b.get(f"p{q}_ns")) for q in ("50", "99", "999")
            }
        else:
            row["vs_pyring"] = {"msgs_per_s": _div(row.get("msgs_per_s"), b.get("msgs_per_s"))}
    return rows


def _div(a, b):
    if a is None or not b:
        return None
    return a / b


def speedup(myc, peer):
    """> 1 means the mycelium row beats the peer row."""
    if myc["kind"] == "rtt":
        return _div(peer.get("p50_ns"), myc.get("p50_ns"))
    return _div(myc.get("msgs_per_s"), peer.get("msgs_per_s"))


def peer_matrix(rows):
    """{(kind, size): {mycelium label: {peer label: speedup}}}."""
    out = {}
    measured = [r for r in rows if ok(r) and r["kind"] in ("rtt", "tput")]
    for myc in measured:
        if not is_mycelium(myc):
            continue
        cell = out.setdefault((myc["kind"], myc["size"]), {}).setdefault(label(myc), {})
        for peer in measured:
            if is_mycelium(peer) or (peer["kind"], peer["size"]) != (myc["kind"], myc["size"]):
                continue
            cell[label(peer)] = speedup(myc, peer)
    return out


def evaluate_targets(rows):
    """Each target, judged on the best Python mycelium row that qualifies."""
    base = _baselines(rows)
    results = []
    for tid, desc, kind, size, mode, _metric, op, threshold in TARGETS:
        result = {
            "id": tid,
            "description": desc,
            "threshold": threshold,
            "op": op,
            "row": None,
            "ratio": None,
            "pass": None,
        }
        b = base.get((kind, size))
        candidates = [
            r
            for r in rows
            if ok(r)
            and is_mycelium(r)
            and r.get("lang") == "python"
            and r["kind"] == kind
            and r["size"] == size
            and (mode is None or r.get("mode") == mode)
        ]
        if b is None or not candidates:
            result["note"] = "baseline missing" if b is None else "no qualifying mycelium row"
            results.append(result)
            continue
        if kind == "rtt":
            best = min(candidates, key=lambda r: r["p50_ns"])
            ratio = best["p50_ns"] / b["p50_ns"]
        else:
            best = max(candidates, key=lambda r: r["msgs_per_s"])
            ratio = best["msgs_per_s"] / b["msgs_per_s"]
        result.update(
            {
                "row": label(best),
                "ratio": ratio,
                "pass": ratio <= threshold if op == "<=" else ratio >= threshold,
            }
        )
        results.append(result)
    return results


# ------------------------------------------------------------------------- #
# Markdown                                                                   #
# ------------------------------------------------------------------------- #


def _us(ns):
    return "" if ns is None else f"{ns / 1000:.2f}"


def _rate(x):
    if x is None:
        return ""
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def _ratio(x):
    return "" if x is None else f"{x:.2f}x"


def _size(size):
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _row_order(rows):
    """Mycelium Python rows, then other mycelium rows, then peers (baseline first)."""

    def key(r):
        if is_mycelium(r):
            group = 0 if r.get("lang") == "python" else 1
        else:
            group = 2 if r.get("name") == BASELINE else 3
        return group

    return sorted(rows, key=key)


def markdown(result):
    rows = result["rows"]
    m = result["machine"]
    out = ["# mycelium-shm benchmark results", ""]
    out.append(
        f"Run {result['started_utc']} ({'quick smoke run' if result['quick'] else 'full run'}, "
        f"{result['elapsed_s']:.0f} s)."
    )
    out.append("")
    out.append(
        f"Machine: {m.get('cpu_model')}, {m.get('cpus')} CPUs "
        f"(allowed: {m.get('allowed_cores')}), kernel {m.get('kernel')}, "
        f"Python {m.get('python')}, {m.get('gcc')}. Load average at start "
        f"{m.get('loadavg_start')}, at end {m.get('loadavg_end')}."
    )
    out.append("")
    if result["quick"]:
        out.append(
            "**Quick mode: tiny counts, for checking the harness only. "
            "These numbers are not results.**"
        )
        out.append("")
    if result.get("incomplete"):
        out.append("**Row set incomplete:** " + "; ".join(result["incomplete"]))
        out.append("")

    out += [
        "## Targets",
        "",
        "Each target is judged on the best Python mycelium row that qualifies, "
        "against the pure-Python ring (`pyring`) measured in the same run.",
        "",
    ]
    trows = []
    for t in result["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        trows.append(
            [
                t["description"],
                t["row"] or t.get("note", ""),
                _ratio(t["ratio"]),
                f"{t['op']} {t['threshold']}x",
                verdict,
            ]
        )
    out += [*_table(["target", "row", "ratio", "needs", "verdict"], trows), ""]

    rtt = [r for r in rows if r["kind"] == "rtt"]
    if rtt:
        out += [
            "## Round-trip latency",
            "",
            "Ping on core 0 sends, pong on core 1 echoes; median over repeats of each "
            "run's percentiles. `vs pyring` = p50 / pyring p50 (lower is better).",
            "",
        ]
        body = []
        for r in _row_order(rtt):
            if not ok(r):
                body.append(
                    [
                        r["name"],
                        r["lang"],
                        r["mode"],
                        r.get("wait", ""),
                        _size(r["size"]),
                        f"{r['status']}: {r.get('reason', '')}",
                        "",
                        "",
                        "",
                    ]
                )
                continue
            vs = (r.get("vs_pyring") or {}).get("p50")
            body.append(
                [
                    r["name"],
                    r["lang"],
                    r["mode"],
                    r.get("wait", ""),
                    _size(r["size"]),
                    _us(r["p50_ns"]),
                    _us(r["p99_ns"]),
                    _us(r["p999_ns"]),
                    _ratio(vs),
                ]
            )
        out += [
            *_table(
                [
                    "transport",
                    "lang",
                    "mode",
                    "wait",
                    "size",
                    "p50 us",
                    "p99 us",
                    "p99.9 us",
                    "vs pyring",
                ],
                body,
            ),
            "",
        ]

    tput = [r for r in rows if r["kind"] == "tput"]
    if tput:
        sizes = sorted({r["size"] for r in tput})
        out += [
            "## One-way throughput",
            "",
            "Sender on core 0, receiver on core 1; median msgs/s over repeats; "
            "MB/s counts payload bytes (10^6). `vs pyring` = msgs/s / pyring msgs/s "
            "at the same size.",
            "",
        ]
        by_label = {}
        for r in _row_order(tput):
            by_label.setdefault(label(r), {})[r["size"]] = r
        header = ["transport", "lang", "mode", "wait"]
        for s in sizes:
            header += [f"{_size(s)} msgs/s", f"{_size(s)} MB/s", f"{_size(s)} vs pyring"]
        body = []
        for per in by_label.values():
            any_row = next(iter(per.values()))
            line = [any_row["name"], any_row["lang"], any_row["mode"], any_row.get("wait", "")]
            for s in sizes:
                r = per.get(s)
                if r is None:
                    line += ["", "", ""]
                elif not ok(r):
                    line += [r["status"], "", ""]
                else:
                    vs = (r.get("vs_pyring") or {}).get("msgs_per_s")
                    line += [_rate(r["msgs_per_s"]), f"{r['mb_per_s']:.1f}", _ratio(vs)]
            body.append(line)
        out += [*_table(header, body), ""]

    mw = [r for r in rows if r["kind"] == "mw"]
    if mw:
        counts = sorted({r["writers"] for r in mw})
        out += [
            "## Multi-writer scaling",
            "",
            f"N writer processes into one channel, one reader; total msgs/s of "
            f"{_size(mw[0]['size'])} frames. The reader has the last core to itself; "
            "writers share the others, so on 2 cores all writers share one core.",
            "",
        ]
        by_label = {}
        for r in mw:
            by_label.setdefault(label(r), {})[r["writers"]] = r
        body = []
        for lab, per in by_label.items():
            line = [lab]
            for c in counts:
                r = per.get(c)
                line.append("" if r is None else (_rate(r["msgs_per_s"]) if ok(r) else r["status"]))
            body.append(line)
        out += [
            *_table(["transport"] + [f"{c} writer{'s' if c > 1 else ''}" for c in counts], body),
            "",
        ]

    matrix = result.get("peer_matrix") or {}
    if matrix:
        out += [
            "## mycelium against each peer",
            "",
            "Speedup, > 1 means mycelium is faster: peer p50 / mycelium p50 for "
            "latency, mycelium msgs/s / peer msgs/s for throughput.",
            "",
        ]
        for key in sorted(matrix, key=lambda k: (k[0] != "rtt", k[1])):
            kind, size = key
            table = matrix[key]
            peers = sorted(
                {p for cells in table.values() for p in cells},
                key=lambda p: (not p.startswith(BASELINE), p),
            )
            title = "RTT p50" if kind == "rtt" else "throughput"
            out += [f"### {title}, {_size(size)}", ""]
            body = [[lab] + [_ratio(cells.get(p)) for p in peers] for lab, cells in table.items()]
            out += [*_table(["mycelium row", *peers], body), ""]

    missing = [r for r in rows if not ok(r)]
    if missing:
        out += ["## Unavailable or failed rows", ""]
        seen = set()
        for r in missing:
            key = (label(r), r["status"], r.get("reason"))
            if key in seen:
                continue
            seen.add(key)
            out.append(f"- {label(r)}: {r['status']}: {r.get('reason', '')}")
        out.append("")

    if result.get("extensions"):
        out += ["## Extension modules", ""]
        for ext in result["extensions"]:
            out.append(f"- `bench/{ext['module']}.py`: {ext['status']} ({ext.get('rows', 0)} rows)")
        out.append("")

    out += ["## Method", ""]
    out += [f"- {line}" for line in result["method"]]
    out.append("")
    notes = sorted(
        {(r["name"], r["lang"], r["mode"], r.get("note", "")) for r in rows if r.get("note")}
    )
    if notes:
        out += ["## Transport configurations", ""]
        out += [f"- {n} [{lang}] {mode}: {note}" for n, lang, mode, note in notes]
        out.append("")
    return "\n".join(out)
