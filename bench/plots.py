"""PNG plots of a results dict (matplotlib, headless Agg backend)."""

import math
import os

from .report import is_mycelium, label, ok


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _styles(rows):
    """A stable colour per row label; mycelium solid and thick, peers dashed,
    the floor black and dotted.

    tab20 holds ten dark/light pairs; dark ones first keeps neighbouring
    labels apart."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    palette = [cmap(i) for i in range(0, 20, 2)] + [cmap(i) for i in range(1, 20, 2)]
    labels = []
    for r in rows:
        if label(r) not in labels:
            labels.append(label(r))
    out = {}
    for i, lab in enumerate(labels):
        myc = lab.startswith("mycelium")
        if lab.startswith("floor:"):  # the reference: black, dotted (batched: dash-dot)
            style = "-." if " batch " in lab else ":"
            out[lab] = {"color": "black", "linestyle": style, "linewidth": 1.6, "marker": "x",
                        "markersize": 5}  # fmt: skip
            continue
        out[lab] = {
            "color": palette[i % len(palette)],
            "linestyle": "-" if myc else "--",
            "linewidth": 2.0 if myc else 1.3,
            "marker": "o" if myc else "s",
            "markersize": 4,
        }
    return out


def _title_suffix(result):
    return " (quick smoke run, not results)" if result.get("quick") else ""


def plot_latency(result, path):
    """Percentile plot and CDF of every round-trip row with a stored curve."""
    rows = [r for r in result["rows"] if ok(r) and r["kind"] == "rtt" and r.get("curve")]
    if not rows:
        return None
    plt = _pyplot()
    styles = _styles(rows)
    fig, (ax_p, ax_c) = plt.subplots(1, 2, figsize=(15, 6.5))
    for r in sorted(rows, key=lambda r: r["p50_ns"]):
        qs = [q for q, _ in r["curve"]]
        us = [ns / 1000 for _, ns in r["curve"]]
        style = dict(styles[label(r)])
        style.pop("marker"), style.pop("markersize")
        # The last point (q = 1, the maximum) sits one rank past the
        # second-to-last: at log10(n) nines.
        top = math.log10(max(10, r.get("n") or len(qs)))
        nines = [-math.log10(1 - q) if q < 1 else top for q in qs]
        name = f"{label(r)} ({r['size']} B)"
        ax_p.plot(nines, us, label=name, **style)
        ax_c.plot(us, qs, label=name, **style)
    ticks = [0.5, 0.9, 0.99, 0.999, 0.9999]
    ax_p.set_xticks([-math.log10(1 - q) for q in ticks])
    ax_p.set_xticklabels(["p50", "p90", "p99", "p99.9", "p99.99"])
    ax_p.set_xlim(left=-math.log10(0.5))
    ax_p.set_yscale("log")
    ax_p.set_ylabel("round-trip time (us, log)")
    ax_p.set_xlabel("percentile")
    ax_p.set_title("Round-trip latency by percentile" + _title_suffix(result))
    ax_p.grid(True, which="both", alpha=0.3)
    ax_c.set_xscale("log")
    ax_c.set_xlabel("round-trip time (us, log)")
    ax_c.set_ylabel("fraction of round trips")
    ax_c.set_title("Round-trip latency distribution (CDF)")
    ax_c.grid(True, which="both", alpha=0.3)
    ax_c.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_throughput(result, path):
    """msgs/s and MB/s against payload size, one line per transport row."""
    rows = [r for r in result["rows"] if ok(r) and r["kind"] == "tput"]
    if not rows:
        return None
    plt = _pyplot()
    styles = _styles(rows)
    by_label = {}
    for r in rows:
        by_label.setdefault(label(r), []).append(r)
    fig, (ax_m, ax_b) = plt.subplots(1, 2, figsize=(16, 7))
    order = sorted(by_label, key=lambda lab: (not lab.startswith("mycelium"), lab))
    for lab in order:
        pts = sorted(by_label[lab], key=lambda r: r["size"])
        sizes = [r["size"] for r in pts]
        ax_m.plot(sizes, [r["msgs_per_s"] for r in pts], label=lab, **styles[lab])
        ax_b.plot(sizes, [r["mb_per_s"] for r in pts], label=lab, **styles[lab])
    for ax, what in ((ax_m, "messages/s"), (ax_b, "payload MB/s")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        sizes = sorted({r["size"] for r in rows})
        ax.set_xticks(sizes)
        ax.set_xticklabels([f"{s // 1024} KiB" if s >= 1024 else f"{s} B" for s in sizes])
        ax.set_xlabel("payload size")
        ax.set_ylabel(what + " (log)")
        ax.grid(True, which="both", alpha=0.3)
    ax_m.set_title("One-way throughput, messages/s" + _title_suffix(result))
    ax_b.set_title("One-way throughput, MB/s")
    ax_b.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_multiwriter(result, path):
    rows = [r for r in result["rows"] if ok(r) and r["kind"] == "mw"]
    if not rows:
        return None
    plt = _pyplot()
    styles = _styles(rows)
    by_label = {}
    for r in rows:
        by_label.setdefault(label(r), []).append(r)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for lab, pts in by_label.items():
        pts.sort(key=lambda r: r["writers"])
        ax.plot(
            [r["writers"] for r in pts], [r["msgs_per_s"] for r in pts], label=lab, **styles[lab]
        )
    counts = sorted({r["writers"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts)
    ax.set_xticklabels([str(c) for c in counts])
    ax.set_yscale("log")
    ax.set_xlabel("writer processes")
    ax.set_ylabel("total messages/s (log)")
    ax.set_title(
        f"Multi-writer scaling, {rows[0]['size']} B frames, "
        f"{result['machine'].get('cpus')} CPUs" + _title_suffix(result)
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ratios(result, path):
    """Bars: every Python mycelium row against the pure-Python ring, with targets."""
    rows = [r for r in result["rows"] if ok(r) and is_mycelium(r) and r.get("vs_pyring")]
    if not rows:
        return None
    plt = _pyplot()
    names, values, colors = [], [], []
    for r in rows:
        if r["kind"] == "rtt":
            v = r["vs_pyring"].get("p50")
            if v:
                names.append(f"RTT {r['size']} B {label(r)}  (pyring p50 / p50)")
                values.append(1 / v)
        else:
            v = r["vs_pyring"].get("msgs_per_s")
            if v:
                size = f"{r['size'] // 1024} KiB" if r["size"] >= 1024 else f"{r['size']} B"
                names.append(f"tput {size} {label(r)}")
                values.append(v)
        if len(colors) < len(values):
            colors.append("tab:blue" if r.get("lang") == "python" else "tab:gray")
    if not values:
        return None
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(values) + 1.8))
    y = list(range(len(values)))
    ax.barh(y, values, color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("speedup over the pure-Python ring (log; > 1 = mycelium faster)")
    ax.set_title("mycelium rows against the pure-Python ring, same run" + _title_suffix(result))
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_all(result, out_dir):
    """Write every plot that has data; returns the written paths."""
    written = []
    for func, name in (
        (plot_latency, "latency.png"),
        (plot_throughput, "throughput.png"),
        (plot_multiwriter, "multiwriter.png"),
        (plot_ratios, "ratios.png"),
    ):
        path = func(result, os.path.join(out_dir, name))
        if path:
            written.append(path)
    return written
