"""Ratios, targets and the markdown report, computed from result rows only.

Conventions, stated once and repeated in the markdown:

* vs_pyring: a mycelium row divided by the pure-Python ring measured in the
  same run, same kind and payload size.  For latency it is p50 / p50 (lower
  is better); for throughput msgs/s / msgs/s (higher is better).
* speedup against a peer: > 1 always means mycelium is faster
  (peer p50 / mycelium p50 for latency, mycelium / peer msgs/s for throughput).
* vs C (bindings table): a Rust/OCaml row divided by the C ceiling row of
  the same run: RTT p50 / C p50 (1.0 is the ceiling, higher is slower) and
  msgs/s / C msgs/s (1.0 is the ceiling, lower is slower).
* vs_floor: every measured row (C, Rust, OCaml, Python, peers) divided by the
  physical floor of the same run (bench/c/floor.c, see bench/floor.py): an
  RTT row's p50 / the cache-line ping-pong p50 at the same size (1.0 is the
  floor, higher is slower); a throughput or multi-writer row's msgs/s / the
  per-message SPSC ring's msgs/s at the same size (1.0 is the floor, lower is
  slower).  Batch rows also get vs_floor_batch, against the batched SPSC ring.
"""

BASELINE = "pyring"

TARGETS = [
    # id, description, kind, size, row filter (mode), metric, op, threshold
    ("rtt_p50", "64 B RTT p50 <= 0.5x pure-Python ring", "rtt", 64, None, "p50", "<=", 0.5),
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
        "64 KiB one-way (zero-copy read) >= 1.5x pure-Python ring",
        "tput",
        65536,
        "zero-copy",
        "msgs_per_s",
        ">=",
        1.5,
    ),
]

# Targets against the physical floor (bench/c/floor.c) of the same run.
FLOOR_PINGPONG = "floor: cache-line ping-pong"
FLOOR_SPSC = "floor: SPSC ring"
FLOOR_MPSC = "floor: MPSC ring"  # shown beside the floor, never a divisor
FLOOR_FRAMED = "floor: framed ping-pong"  # likewise, beside the RTT targets
FLOOR_NAMES = (FLOOR_PINGPONG, FLOOR_FRAMED, FLOOR_SPSC, FLOOR_MPSC)
FLOOR_SIZE = 64
C_RTT_VS_FLOOR = 1.5  # C and Rust 64 B RTT p50 <= 1.5x the cache-line ping-pong p50
C_SINGLE_VS_FLOOR = 0.33  # C single-writer 64 B one-way >= 0.33x the SPSC floor
C_BATCH_VS_FLOOR = 0.7  # C batched 64 B one-way >= 0.7x the SPSC floor
MW_WRITERS = 4
MW_KEEP = 0.7  # 4 writers keep >= 70% of single-writer throughput (lose <= 30%)


BINDING_PAIRS = ("rust-rust", "rust-python", "ocaml-ocaml", "ocaml-python")
RUST_VS_C = 1.3  # Rust to Rust 64 B RTT p50 <= 1.3x the C ceiling
BUS_INPROC_US = 2.0  # MessageBus in-process publish-to-handler p50 < 2 us
NOT_MEASURED = "not measured"


def is_mycelium(row):
    return "mycelium" in str(row.get("name", "")).lower()


def ok(row):
    return row.get("status", "ok") == "ok"


def label(row):
    return f"{row.get('name')} [{row.get('lang')}] {row.get('mode')} {row.get('wait', '')}".strip()


def is_floor(row):
    return row.get("name") in FLOOR_NAMES


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
            if is_mycelium(peer) or is_floor(peer):
                continue
            if (peer["kind"], peer["size"]) != (myc["kind"], myc["size"]):
                continue
            cell[label(peer)] = speedup(myc, peer)
    return out


def evaluate_targets(rows):
    """Every target: the pure-Python ring ones (judged on the best Python
    mycelium row that qualifies), the floor ones, Rust against C, MessageBus."""
    base = _baselines(rows)
    results = []
    for tid, desc, kind, size, mode, _metric, op, threshold in TARGETS:
        result = {
            "id": tid,
            "description": desc,
            "threshold": threshold,
            "op": op,
            "unit": "x",
            "row": None,
            "ratio": None,
            "value": None,
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
                "value": ratio,
                "pass": ratio <= threshold if op == "<=" else ratio >= threshold,
            }
        )
        results.append(result)
    results += floor_targets(rows)
    results.append(rust_target(rows))
    results.append(bus_target(rows))
    return results


# ------------------------------------------------------------------------- #
# Bindings against the C ceiling                                             #
# ------------------------------------------------------------------------- #


def pair_of(row):
    """The language pair ("rust-python") of an extension row (None otherwise)."""
    if row.get("pair"):
        return str(row["pair"])
    lang = str(row.get("lang") or "")
    if row.get("source") != "extension" or lang in ("", "python", "c"):
        return None
    first, _, second = lang.partition("/")
    return f"{first}-{second or first}"


def _best_rtt(rows):
    rows = [r for r in rows if r.get("p50_ns") is not None]
    return min(rows, key=lambda r: r["p50_ns"]) if rows else None


def _best_tput(rows):
    rows = [r for r in rows if r.get("msgs_per_s") is not None]
    return max(rows, key=lambda r: r["msgs_per_s"]) if rows else None


def c_ceiling(rows):
    """(C RTT row, C throughput row) at 64 B: the fastest single-call C rows
    that wait as the Rust and OCaml bench programs do (blocking: spin, then
    futex), so a ratio measures the binding, not a different wait strategy;
    any single-call C row if no blocking one was measured."""
    c = [
        r
        for r in rows
        if ok(r) and is_mycelium(r) and r.get("lang") == "c" and r.get("size") == 64
        and r.get("mode") == "single"
    ]  # fmt: skip
    blocking = [r for r in c if r.get("wait") == "blocking"]
    c = blocking or c
    return (
        _best_rtt([r for r in c if r["kind"] == "rtt"]),
        _best_tput([r for r in c if r["kind"] == "tput"]),
    )


def bindings_vs_c(rows):
    """The bindings table: each language pair's 64 B RTT p50 and msgs/s against C.

    Every pair of BINDING_PAIRS is listed (missing values None); other pairs
    found in the rows follow."""
    c_rtt, c_tput = c_ceiling(rows)
    by_pair = {}
    for r in rows:
        pair = pair_of(r)
        if pair and ok(r) and r.get("size") == 64 and r["kind"] in ("rtt", "tput"):
            by_pair.setdefault(pair, []).append(r)
    pairs = list(BINDING_PAIRS) + sorted(set(by_pair) - set(BINDING_PAIRS))
    out_rows = []
    for pair in pairs:
        got = by_pair.get(pair, [])
        rtt = _best_rtt([r for r in got if r["kind"] == "rtt"])
        tput = _best_tput([r for r in got if r["kind"] == "tput"])
        out_rows.append(
            {
                "pair": pair,
                "rtt_p50_ns": rtt and rtt["p50_ns"],
                "rtt_vs_c": _div(rtt and rtt["p50_ns"], c_rtt and c_rtt["p50_ns"]),
                "msgs_per_s": tput and tput["msgs_per_s"],
                "tput_vs_c": _div(tput and tput["msgs_per_s"], c_tput and c_tput["msgs_per_s"]),
                "rtt_row": rtt and rtt.get("note", label(rtt)),
                "tput_row": tput and tput.get("note", label(tput)),
            }
        )
    return {
        "size": 64,
        "c_rtt_row": c_rtt and label(c_rtt),
        "c_rtt_p50_ns": c_rtt and c_rtt["p50_ns"],
        "c_tput_row": c_tput and label(c_tput),
        "c_msgs_per_s": c_tput and c_tput["msgs_per_s"],
        "rows": out_rows,
    }


def rust_target(rows):
    """Rust to Rust 64 B RTT p50 <= RUST_VS_C x the C ceiling (None: not measured)."""
    result = {
        "id": "rust_rtt_vs_c",
        "description": f"Rust to Rust 64 B RTT p50 within {RUST_VS_C}x of the C ceiling",
        "threshold": RUST_VS_C,
        "op": "<=",
        "unit": "x",
        "row": None,
        "ratio": None,
        "value": None,
        "pass": None,
    }
    c_rtt, _ = c_ceiling(rows)
    rust = _best_rtt(
        [r for r in rows if ok(r) and pair_of(r) == "rust-rust" and r["kind"] == "rtt"
         and r.get("size") == 64]
    )  # fmt: skip
    if c_rtt is None or rust is None:
        missing = [w for w, r in (("no C ceiling row", c_rtt), ("no rust-rust row", rust)) if not r]
        result["note"] = f"{NOT_MEASURED}: {', '.join(missing)}"
        return result
    ratio = rust["p50_ns"] / c_rtt["p50_ns"]
    result.update(
        {
            "row": f"rust-rust pingpong vs {label(c_rtt)}",
            "ratio": ratio,
            "value": ratio,
            "pass": ratio <= RUST_VS_C,
        }
    )
    return result


def bus_target(rows):
    """MessageBus in process publish-to-handler p50 < BUS_INPROC_US (None: not measured)."""
    result = {
        "id": "bus_inproc_p50",
        "description": f"MessageBus in process publish-to-handler p50 < {BUS_INPROC_US:g} us",
        "threshold": BUS_INPROC_US,
        "op": "<",
        "unit": "us",
        "row": None,
        "ratio": None,
        "value": None,
        "pass": None,
    }
    row = next(
        (r for r in rows if r["kind"] == "bus" and r.get("mode") == "inproc" and ok(r)), None
    )
    if row is None or row.get("p50_ns") is None:
        result["note"] = f"{NOT_MEASURED}: no in-process MessageBus row"
        return result
    us = row["p50_ns"] / 1000
    result.update({"row": label(row), "value": us, "pass": us < BUS_INPROC_US})
    return result


def raw_one_way(rows):
    """(ns, row label): RTT p50 / 2 of the best 64 B mycelium Python RTT row."""
    best = _best_rtt(
        [r for r in rows if ok(r) and is_mycelium(r) and r.get("lang") == "python"
         and r["kind"] == "rtt" and r.get("size") == 64]
    )  # fmt: skip
    if best is None:
        return None, None
    return best["p50_ns"] / 2, label(best)


def bus_summary(rows):
    """The bus fields of results.json (rows themselves are kind "bus" rows)."""
    ns, row = raw_one_way(rows)
    bus = [r for r in rows if r["kind"] == "bus"]
    return {
        "measured": sum(ok(r) for r in bus),
        "raw_one_way_ns": ns,
        "raw_one_way_row": row,
        "vs_raw_one_way": {r["mode"]: _div(r.get("p50_ns"), ns) for r in bus if ok(r) and ns},
    }


# ------------------------------------------------------------------------- #
# The physical floor                                                         #
# ------------------------------------------------------------------------- #


def floors(rows):
    """The measured floor rows of a run: {"rtt": {size: ping-pong row},
    "tput": {size: per-message SPSC row}, "tput_batch": {size: batched SPSC row},
    "tput_mpsc": {size: MPSC row}, "rtt_framed": {size: framed ping-pong row}}."""
    out = {"rtt": {}, "tput": {}, "tput_batch": {}, "tput_mpsc": {}, "rtt_framed": {}}
    for r in rows:
        if not (ok(r) and is_floor(r)):
            continue
        if r["name"] == FLOOR_PINGPONG and r["kind"] == "rtt" and r.get("p50_ns"):
            out["rtt"][r["size"]] = r
        elif r["name"] == FLOOR_FRAMED and r["kind"] == "rtt" and r.get("p50_ns"):
            out["rtt_framed"][r["size"]] = r
        elif r["name"] == FLOOR_SPSC and r["kind"] == "tput" and r.get("msgs_per_s"):
            key = "tput_batch" if r.get("mode") == "batch" else "tput"
            out[key][r["size"]] = r
        elif r["name"] == FLOOR_MPSC and r["kind"] == "tput" and r.get("msgs_per_s"):
            out["tput_mpsc"][r["size"]] = r
    return out


def _floor_ratio(row, fl):
    """(vs_floor, vs_floor_batch) of one measured row; None where no floor
    row of its kind and size was measured."""
    if row["kind"] == "rtt":
        f = fl["rtt"].get(row["size"])
        return _div(row.get("p50_ns"), f and f["p50_ns"]), None
    f = fl["tput"].get(row["size"])
    vs = _div(row.get("msgs_per_s"), f and f["msgs_per_s"])
    if row.get("mode") != "batch":
        return vs, None
    fb = fl["tput_batch"].get(row["size"])
    return vs, _div(row.get("msgs_per_s"), fb and fb["msgs_per_s"])


def add_floor_ratios(rows):
    """Set row['vs_floor'] (and row['vs_floor_batch'] on batch rows) on every
    measured RTT, throughput and multi-writer row, floor rows included (the
    per-message SPSC ring and the ping-pong read 1.0; the batched SPSC ring
    reads its gain over the per-message one).  A row the suite measured in
    pairs with the floor (floor_paired: its round trips, see suite.FloorRef)
    keeps its paired ratio; the others (throughput rows, extension rows) are
    divided by the floor row of their kind and size."""
    fl = floors(rows)
    for row in rows:
        if not ok(row) or row["kind"] not in ("rtt", "tput", "mw"):
            continue
        vs, batch = _floor_ratio(row, fl)
        if not row.get("floor_paired"):
            row["vs_floor"] = vs
            row["floor_paired"] = False
        if row.get("mode") == "batch" and not is_floor(row):
            row["vs_floor_batch"] = batch
    return rows


def floor_summary(rows):
    """The "floor" field of results.json: what the floor rows measured."""
    fl = floors(rows)
    rtt = fl["rtt"].get(FLOOR_SIZE)
    return {
        "pingpong_row": rtt and label(rtt),
        "pingpong_p50_ns": rtt and rtt["p50_ns"],
        "pingpong_p99_ns": rtt and rtt["p99_ns"],
        "pingpong_p999_ns": rtt and rtt["p999_ns"],
        "spsc_msgs_per_s": {s: r["msgs_per_s"] for s, r in sorted(fl["tput"].items())},
        "spsc_batch_msgs_per_s": {s: r["msgs_per_s"] for s, r in sorted(fl["tput_batch"].items())},
        "mpsc_msgs_per_s": {s: r["msgs_per_s"] for s, r in sorted(fl["tput_mpsc"].items())},
        "framed_p50_ns": {s: r["p50_ns"] for s, r in sorted(fl["rtt_framed"].items())},
    }


def _target(tid, description, op, threshold, unit="x"):
    return {
        "id": tid,
        "description": description,
        "threshold": threshold,
        "op": op,
        "unit": unit,
        "row": None,
        "ratio": None,
        "value": None,
        "pass": None,
    }


def _judge(result, row, ratio, row_text):
    result.update(
        {
            "row": row_text or label(row),
            "ratio": ratio,
            "value": ratio,
            "pass": ratio <= result["threshold"]
            if result["op"] == "<="
            else ratio >= result["threshold"],
        }
    )
    return result


def _measured(rows, kind, size, **match):
    """ok rows of one kind and size whose fields equal `match`."""
    return [
        r for r in rows
        if ok(r) and r["kind"] == kind and r.get("size") == size
        and all(r.get(k) == v for k, v in match.items())
    ]  # fmt: skip


def _to_floor(row, floor_row):
    """A row's ratio to the floor: its paired ratio if the suite measured one,
    else its value divided by the floor row's (None without either)."""
    if row.get("floor_paired") and row.get("vs_floor") is not None:
        return row["vs_floor"]
    if floor_row is None:
        return None
    if floor_row["kind"] == "rtt":
        return _div(row.get("p50_ns"), floor_row["p50_ns"])
    return _div(row.get("msgs_per_s"), floor_row["msgs_per_s"])


def floor_targets(rows):
    """The targets set against the floor and against single-writer speed,
    each judged on the best qualifying row of this run (None: not measured)."""
    fl = floors(rows)
    pingpong = fl["rtt"].get(FLOOR_SIZE)
    spsc = fl["tput"].get(FLOOR_SIZE)
    out = []

    def vs_floor(tid, desc, op, threshold, candidates, floor_row, floor_what):
        """The candidate closest to the floor (paired ratio if it has one)."""
        t = _target(tid, desc, op, threshold)
        scored = [(r, _to_floor(r, floor_row)) for r in candidates]
        scored = [(r, x) for r, x in scored if x is not None]
        if not scored or floor_row is None:
            missing = [
                w for w, r in (("no qualifying row", candidates), (floor_what, floor_row)) if not r
            ] or ["no ratio to the floor"]
            t["note"] = f"{NOT_MEASURED}: {', '.join(missing)}"
            return t
        pick = min if op == "<=" else max
        best, ratio = pick(scored, key=lambda item: item[1])
        paired = "paired runs" if best.get("floor_paired") else "floor row"
        return _judge(t, best, ratio, f"{label(best)} vs {floor_row['name']} ({paired})")

    c_rtt = [r for r in _measured(rows, "rtt", FLOOR_SIZE, lang="c") if is_mycelium(r)]
    rust_rtt = [r for r in _measured(rows, "rtt", FLOOR_SIZE) if pair_of(r) == "rust-rust"]
    c_single = [
        r for r in _measured(rows, "tput", FLOOR_SIZE, lang="c", mode="single") if is_mycelium(r)
    ]
    c_batch = [
        r for r in _measured(rows, "tput", FLOOR_SIZE, lang="c", mode="batch") if is_mycelium(r)
    ]
    no_pp, no_spsc = "no ping-pong floor row", "no SPSC floor row"
    x = f"{C_RTT_VS_FLOOR:g}x"
    framed = fl["rtt_framed"].get(FLOOR_SIZE)
    framed_ratio = framed and pingpong and _div(framed["p50_ns"], pingpong["p50_ns"])
    for tid, lang, candidates in (("c_rtt_vs_floor", "C", c_rtt),
                                  ("rust_rtt_vs_floor", "Rust", rust_rtt)):  # fmt: skip
        rtt = vs_floor(tid, f"{lang} 64 B RTT p50 <= {x} the cache-line ping-pong",
                       "<=", C_RTT_VS_FLOOR, candidates, pingpong, no_pp)  # fmt: skip
        if rtt.get("row") and framed_ratio:
            # What a header in front of a 64 B payload costs by itself (two lines a trip).
            rtt["row"] += f"; the framed ping-pong floor row reads {framed_ratio:.2f}x"
            rtt["framed_floor_ratio"] = framed_ratio
        out.append(rtt)
    single = vs_floor("c_single_vs_floor",
                      f"C single-writer 64 B one-way >= {C_SINGLE_VS_FLOOR:g}x the SPSC floor",
                      ">=", C_SINGLE_VS_FLOOR, c_single, spsc, no_spsc)  # fmt: skip
    mpsc = fl["tput_mpsc"].get(FLOOR_SIZE)
    mpsc_ratio = mpsc and spsc and _div(mpsc["msgs_per_s"], spsc["msgs_per_s"])
    if single.get("row") and mpsc_ratio:
        # The ceiling of any ring several writers share: one locked claim per message.
        single["row"] += f"; the MPSC floor row reaches {mpsc_ratio:.2f}x"
        single["mpsc_floor_ratio"] = mpsc_ratio
    out.append(single)
    out.append(vs_floor("c_batch_vs_floor",
                        f"C batched 64 B one-way >= {C_BATCH_VS_FLOOR:g}x the SPSC floor",
                        ">=", C_BATCH_VS_FLOOR, c_batch, spsc, no_spsc))  # fmt: skip
    out += [mw_target(rows, lang) for lang in ("c", "python")]
    return out


def mw_target(rows, lang):
    """MW_WRITERS writer processes into one channel keep >= MW_KEEP of the
    single-writer throughput of the same transport (mycelium, `lang`)."""
    t = _target(
        f"mw{MW_WRITERS}_{lang}",
        f"{'C' if lang == 'c' else 'Python'}: {MW_WRITERS} writers into one channel lose "
        f"<= {100 - MW_KEEP * 100:.0f}% of single-writer throughput",
        ">=",
        MW_KEEP,
    )
    mw = [
        r for r in rows if ok(r) and r["kind"] == "mw" and is_mycelium(r) and r.get("lang") == lang
    ]
    by = {}
    for r in mw:
        by.setdefault(label(r), {})[r.get("writers")] = r
    pairs = [(per[1], per[MW_WRITERS]) for per in by.values() if 1 in per and MW_WRITERS in per]
    if not pairs:
        t["note"] = f"{NOT_MEASURED}: no {lang} multi-writer rows with 1 and {MW_WRITERS} writers"
        return t
    one, many = max(pairs, key=lambda p: p[1]["msgs_per_s"] / p[0]["msgs_per_s"])
    ratio = many["msgs_per_s"] / one["msgs_per_s"]
    return _judge(t, many, ratio, f"{label(many)}: {MW_WRITERS} writers / 1 writer")


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


def _unit(t):
    unit = t.get("unit", "x")
    return unit if unit == "x" else f" {unit}"


def target_value(t):
    """A target's measured value as text: "0.52x" or "0.17 us" ("" if none)."""
    value = t.get("value", t.get("ratio"))
    if value is None:
        return ""
    return f"{value:.2f}{_unit(t)}"


def verdict(t):
    return {True: "PASS", False: "FAIL", None: NOT_MEASURED}[t["pass"]]


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _row_order(rows):
    """The floor rows, mycelium Python rows, then other mycelium rows, then
    peers (baseline first)."""

    def key(r):
        if is_floor(r):
            return -1
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
        "The pure-Python ring targets are judged on the best Python mycelium row that "
        "qualifies, against `pyring` measured in the same run; the floor targets on the "
        "best qualifying C / Rust row against the floor rows of the same run (RTT p50 / "
        "cache-line ping-pong p50; msgs/s / per-message SPSC ring msgs/s, 64 B); the "
        "multi-writer targets on the 4-writer row / the 1-writer row of the same "
        "transport; the Rust target against the C ceiling row of the same run; the "
        "MessageBus target on its in-process row. A target whose rows are missing reads "
        "`not measured` (and fails `--check-targets`).",
        "",
    ]
    trows = []
    for t in result["targets"]:
        trows.append(
            [
                t["description"],
                t["row"] or t.get("note", ""),
                target_value(t),
                f"{t['op']} {t['threshold']:g}{_unit(t)}",
                verdict(t),
            ]
        )
    out += [*_table(["target", "row", "value", "needs", "verdict"], trows), ""]

    out += _floor_section(result)

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

    out += _bus_section(result)

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

    out += _bindings_section(result)

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


def _bus_section(result):
    """## MessageBus publish-to-handler latency (empty if the run has no bus rows)."""
    rows = result["rows"]
    bus = [r for r in rows if r["kind"] == "bus"]
    if not bus:
        return []
    raw_ns, raw_row = raw_one_way(rows)
    target = next((t for t in result["targets"] if t["id"] == "bus_inproc_p50"), None)
    target = target or bus_target(rows)
    out = [
        "## MessageBus publish-to-handler latency",
        "",
        "`bench/bench_bus.py`: time from `publish()` to the subscribed handler running "
        "(in process: same thread, no encoding; shm/unix/tcp: a MarketTick to a handler in "
        "another process, one message in flight). For comparison, the raw mycelium "
        "Python 64 B one-way latency is the RTT p50 / 2 of the best mycelium Python row"
        + (f" (`{raw_row}`)." if raw_row else " (not measured in this run)."),
        "",
        f"Target: {target['description']}: **{verdict(target)}**"
        + (f" ({target_value(target)})." if target["value"] is not None else "."),
        "",
    ]
    names = {"inproc": "in process"}
    body = []
    for r in bus:
        path = names.get(r["mode"], f"cross-process, {r['mode']}")
        if not ok(r):
            body.append([path, f"{r['status']}: {r.get('reason', '')}", "", "", "", ""])
            continue
        body.append(
            [
                path,
                _us(r["p50_ns"]),
                _us(r["p99_ns"]),
                _us(r["p999_ns"]),
                r.get("n", ""),
                _ratio(_div(r["p50_ns"], raw_ns)),
            ]
        )
    body.append(
        [
            "raw mycelium Python 64 B one-way (RTT p50 / 2)",
            _us(raw_ns) if raw_ns is not None else NOT_MEASURED,
            "",
            "",
            "",
            "1.00x" if raw_ns is not None else "",
        ]
    )
    header = ["path", "p50 us", "p99 us", "p99.9 us", "samples", "p50 / raw one-way"]
    return [*out, *_table(header, body), ""]


def _bindings_section(result):
    """## Bindings against the C ceiling (always present: missing pairs say so)."""
    table = result.get("bindings_vs_c") or bindings_vs_c(result["rows"])
    c_rtt, c_tput = table["c_rtt_p50_ns"], table["c_msgs_per_s"]
    out = [
        "## Bindings against the C ceiling",
        "",
        "64 B, measured in this run. The C ceiling is the fastest single-call C row "
        "that waits as the binding programs do (blocking: spin, then futex; "
        "`bench/c/ring_bench.c`): RTT "
        + (f"`{table['c_rtt_row']}`" if table["c_rtt_row"] else NOT_MEASURED)
        + ", throughput "
        + (f"`{table['c_tput_row']}`" if table["c_tput_row"] else NOT_MEASURED)
        + ". `RTT vs C` = p50 / C p50 (1.00x is the ceiling, higher is slower); "
        "`tput vs C` = msgs/s / C msgs/s (1.00x is the ceiling, lower is slower). "
        "Rust/OCaml rows come from `bench/bench_rust.py` and `bench/bench_ocaml.py` "
        "(first process's language, then the second's); their senders write single "
        "frames, but their receivers differ (Rust and OCaml peek zero-copy, "
        "Python `read_many`) and they time from the first frame, so a throughput ratio "
        "above 1.00x is possible.",
        "",
    ]
    body = [
        [
            "C ceiling",
            _us(c_rtt) if c_rtt is not None else NOT_MEASURED,
            "1.00x" if c_rtt is not None else "",
            _rate(c_tput) if c_tput is not None else NOT_MEASURED,
            "1.00x" if c_tput is not None else "",
        ]
    ]
    for r in table["rows"]:
        body.append(
            [
                r["pair"],
                _us(r["rtt_p50_ns"]) if r["rtt_p50_ns"] is not None else NOT_MEASURED,
                _ratio(r["rtt_vs_c"]),
                _rate(r["msgs_per_s"]) if r["msgs_per_s"] is not None else NOT_MEASURED,
                _ratio(r["tput_vs_c"]),
            ]
        )
    header = ["pair", "RTT p50 us", "RTT vs C", "msgs/s", "tput vs C"]
    return [*out, *_table(header, body), ""]


def _floor_section(result):
    """## Against the physical floor: the floor rows, then every row divided by them."""
    rows = result["rows"]
    fl = floors(rows)
    floor_rows = [r for r in rows if is_floor(r)]
    if not floor_rows:
        return [
            "## Against the physical floor",
            "",
            f"Floor rows {NOT_MEASURED} in this run (`--no-floor`, `--skip floor`, or "
            "bench/c/floor.c could not be built): no ratios to the floor.",
            "",
        ]
    out = [
        "## Against the physical floor",
        "",
        "`bench/c/floor.c`, measured in this run on the same two cores as every other row: "
        "two processes over one MAP_SHARED memfd mapping, both busy-polling. "
        "**Ping-pong**: one 64 B line each way per round trip, timed per trip with "
        "CLOCK_MONOTONIC like `ring_bench`. **SPSC ring**: fixed-size messages in 1 MiB "
        "of slots, cached opposite index, release/acquire, copied in and out; `single` "
        "publishes an index per message, `batch` once per up to 64. Nothing that moves "
        "data between processes through shared memory does less work, so these are what "
        "every row below is divided by. **MPSC ring** (shown, never a divisor): the SPSC "
        "ring plus what a ring that several writers share cannot avoid, one locked "
        "fetch-add to claim each message and a per-slot stamp the consumer polls; its "
        "ratio to the SPSC ring is the ceiling of every single-call multi-writer row. "
        "**Framed ping-pong** (shown, never a divisor): the ping-pong with the 64 B payload "
        "behind a 16 B header (stamp, length) at positions advancing by 80 B, so each "
        "message spans two cache lines as a 64 B ring frame does; its ratio to the "
        "ping-pong is what the header alone costs a round trip. "
        "Round trips this suite measures itself are "
        "paired with the ping-pong: each repeat follows a short ping-pong run, and "
        "`x floor` is the median of the per-repeat ratios, since the machine drifts "
        "between rows; RTT ratios marked `*` (Rust, OCaml: measured by their own "
        "programs) are divided by the ping-pong row. Throughput rows are divided by the "
        "SPSC row, the median of its repeats: the per-message SPSC ring is bimodal run "
        "to run (it streams, or locks into polling every index store), so `runs` below "
        "shows its spread.",
        "",
    ]
    body = []
    for r in _row_order(floor_rows):
        line = [r["name"], r["mode"], _size(r["size"])]
        if not ok(r):
            line += [f"{r['status']}: {r.get('reason', '')}", "", "", "", "", ""]
        elif r["kind"] == "rtt":
            line += [_us(r["p50_ns"]), _us(r["p99_ns"]), _us(r["p999_ns"]), "", "",
                     _spread([run.get("p50_ns") for run in r.get("runs", [])], _us)]  # fmt: skip
        else:
            line += ["", "", "", _rate(r["msgs_per_s"]), f"{r['mb_per_s']:.1f}",
                     _spread([run.get("msgs_per_s") for run in r.get("runs", [])], _rate)]  # fmt: skip
        body.append(line)
    header = ["floor row", "mode", "size", "RTT p50 us", "p99 us", "p99.9 us", "msgs/s", "MB/s",
              "runs (min - max)"]  # fmt: skip
    out += [*_table(header, body), ""]

    measured = [r for r in rows if ok(r) and not is_floor(r)]
    rtt = [r for r in _row_order(measured) if r["kind"] == "rtt"]
    if rtt:
        out += [
            "### Round trips: p50 / ping-pong p50",
            "",
            "1.00x is the floor; higher is slower. Only sizes with a ping-pong row "
            "(64 B) have a ratio.",
            "",
        ]
        body = [[r["name"], r["lang"], r["mode"], r.get("wait", ""), _size(r["size"]),
                 _us(r["p50_ns"]), _floor_cell(r)]
                for r in rtt if r["size"] in fl["rtt"]]  # fmt: skip
        header = ["transport", "lang", "mode", "wait", "size", "p50 us", "x floor"]
        out += [*_table(header, body), ""]
    tput = [r for r in _row_order(measured) if r["kind"] == "tput"]
    if tput:
        sizes = sorted({r["size"] for r in tput})
        out += [
            "### One-way throughput: msgs/s / SPSC ring msgs/s",
            "",
            "Against the per-message SPSC ring at the same size (1.00x is the floor; "
            "lower is slower); batch rows also against the batched SPSC ring, in brackets. "
            f"SPSC floor: {_spsc_floor_text(fl, sizes)}.",
            "",
        ]
        by_label = {}
        for r in tput:
            by_label.setdefault(label(r), {})[r["size"]] = r
        body = []
        for per in by_label.values():
            any_row = next(iter(per.values()))
            line = [any_row["name"], any_row["lang"], any_row["mode"], any_row.get("wait", "")]
            for s in sizes:
                r = per.get(s)
                cell = "" if r is None else _floor_cell(r)
                if r is not None and r.get("vs_floor_batch") is not None:
                    cell += f" ({_ratio(r['vs_floor_batch'])})"
                line.append(cell)
            body.append(line)
        header = ["transport", "lang", "mode", "wait"] + [f"{_size(s)} x floor" for s in sizes]
        out += [*_table(header, body), ""]
    mw = [r for r in measured if r["kind"] == "mw"]
    if mw:
        counts = sorted({r["writers"] for r in mw})
        out += [
            "### Multi-writer: total msgs/s / SPSC ring msgs/s",
            "",
            f"{_size(mw[0]['size'])} frames, against the per-message SPSC ring of the same size.",
            "",
        ]
        by_label = {}
        for r in mw:
            by_label.setdefault(label(r), {})[r["writers"]] = r
        body = [[lab] + [_floor_cell(per[c]) if c in per else "" for c in counts]
                for lab, per in by_label.items()]  # fmt: skip
        header = ["transport"] + [f"{c} writer{'s' if c > 1 else ''}" for c in counts]
        out += [*_table(header, body), ""]
    return out


def _spsc_floor_text(fl, sizes):
    """The SPSC floor per size as text: "64 B 20.1 M msgs/s (40.2 M msgs/s batched), ..."."""
    parts = []
    for s in sizes:
        single, batch = fl["tput"].get(s), fl["tput_batch"].get(s)
        text = f"{_size(s)} " + (
            f"{_rate(single['msgs_per_s'])} msgs/s" if single else NOT_MEASURED
        )
        if batch:
            text += f" ({_rate(batch['msgs_per_s'])} msgs/s batched)"
        parts.append(text)
    return ", ".join(parts)


def _floor_cell(row):
    """A row's x floor as text; an RTT row not paired with the ping-pong gets `*`."""
    text = _ratio(row.get("vs_floor"))
    if text and row["kind"] == "rtt" and not row.get("floor_paired") and not is_floor(row):
        text += "*"
    return text


def _spread(values, fmt):
    """ "low - high" of a row's per-repeat values ("" without any)."""
    values = [v for v in values if v is not None]
    return f"{fmt(min(values))} - {fmt(max(values))}" if values else ""
