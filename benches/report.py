#!/usr/bin/env python3
"""Turns one run of the comparison suite into one table and one chart.

Reads criterion's results of the `compare` bench (CRITERION_HOME: <dir>/<workload>_p<P>/<system>/
new/{estimates,benchmark,sample}.json) and the output of Go's twins (`workloads.test -test.bench`,
one file per processor count), and writes into --out:

  report.md     the table (workload x processor count x system: median ns per operation, its
                spread, and the ratio to gort), footnotes, and the machine description
  ratios.svg    a horizontal bar chart of the ratios (log scale; right of 1: gort is faster)
  results.json  every figure, for anything else to read

The table is also printed. Python 3 standard library only.

Usage: report.py --criterion DIR --out DIR [--go P=FILE ...] [--machine FILE]
"""

import argparse
import json
import math
import os
import re
import statistics
import sys
from xml.sax.saxutils import escape

# Report order; the first is the reference every ratio divides by.
SYSTEMS = [
    ("gort", "gort"),
    ("threads", "OS threads"),
    ("tokio_mt", "tokio multi-thread"),
    ("tokio_ct", "tokio current-thread"),
    ("may", "may"),
    ("go", "Go"),
]
COLORS = {
    "threads": "#8c8c8c",
    "tokio_mt": "#d9822b",
    "tokio_ct": "#f2b880",
    "may": "#7a5195",
    "go": "#00add8",
}
WORKLOADS = [
    "ctxswitch",
    "yield_now",
    "spawn_join",
    "chan_buf_1x1",
    "chan_buf_4x4",
    "chan_unbuf_1x1",
    "chan_unbuf_4x4",
    "select_2",
    "select_8",
    "mutex_uncontended",
    "mutex_contended_8",
    "waitgroup",
    "timers_10k",
    "tcp_echo",
]
UNITS = {
    "ctxswitch": "token",
    "yield_now": "yield",
    "spawn_join": "task",
    "chan_buf_1x1": "message",
    "chan_buf_4x4": "message",
    "chan_unbuf_1x1": "message",
    "chan_unbuf_4x4": "message",
    "select_2": "select",
    "select_8": "select",
    "mutex_uncontended": "lock+unlock",
    "mutex_contended_8": "lock+unlock",
    "waitgroup": "task",
    "timers_10k": "sleeper",
    "tcp_echo": "round trip",
}

# Where a system's version of a workload is not quite the same thing, a footnote says how.
NOTES = {
    "tokio-cap1": "tokio has no rendezvous channel (capacity 0 panics): capacity 1 stands in.",
    "tokio-mpmc": "tokio has no MPMC channel: async-channel (bounded) stands in.",
    "may-unbounded-rdv": "may has only unbounded channels: the sender never waits, so this is "
    "not a hand-off per message (not comparable).",
    "may-unbounded": "may has only unbounded channels: no back-pressure.",
    "may-select": "may's select! runs every case in a coroutine of its own and cancels the losers.",
    "may-select-lossy": "may's select! loses values with more than one worker (a case that has "
    "already received is cancelled and its value dropped: about half of 10,000 at 2 workers): "
    "not measured.",
    "go-wg": "Go has no join handle: `go` + sync.WaitGroup, each goroutine leaving its result "
    "in a slot.",
}
NOTE_OF = {
    ("ctxswitch", "tokio_mt"): "tokio-cap1",
    ("ctxswitch", "tokio_ct"): "tokio-cap1",
    ("chan_unbuf_1x1", "tokio_mt"): "tokio-cap1",
    ("chan_unbuf_1x1", "tokio_ct"): "tokio-cap1",
    ("chan_unbuf_4x4", "tokio_mt"): "tokio-cap1",
    ("chan_unbuf_4x4", "tokio_ct"): "tokio-cap1",
    ("chan_buf_4x4", "tokio_mt"): "tokio-mpmc",
    ("chan_buf_4x4", "tokio_ct"): "tokio-mpmc",
    ("ctxswitch", "may"): "may-unbounded-rdv",
    ("chan_unbuf_1x1", "may"): "may-unbounded-rdv",
    ("chan_unbuf_4x4", "may"): "may-unbounded-rdv",
    ("chan_buf_1x1", "may"): "may-unbounded",
    ("chan_buf_4x4", "may"): "may-unbounded",
    ("select_2", "may"): "may-select",
    ("select_8", "may"): "may-select",
    ("spawn_join", "go"): "go-wg",
}
# Notes for a cell left empty on purpose (keyed by workload, system; P > 1 only).
MISSING_NOTE = {("select_2", "may"): "may-select-lossy", ("select_8", "may"): "may-select-lossy"}
# Notes that make a cell a different workload, not just a different API: drawn pale in the chart.
NOT_COMPARABLE = {"may-unbounded-rdv"}
# chan_unbuf_4x4 also uses async-channel on tokio (capacity 1).
NOTE_ALSO = {("chan_unbuf_4x4", "tokio_mt"): "tokio-mpmc", ("chan_unbuf_4x4", "tokio_ct"): "tokio-mpmc"}


def quartiles(values):
    """(q1, median, q3) of a list (inclusive method)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


def read_criterion(home):
    """{(workload, procs, system): {"median": ns/op, "lo": ns, "hi": ns, "n": samples}}."""
    out = {}
    if not os.path.isdir(home):
        return out
    for group in os.listdir(home):
        m = re.fullmatch(r"(.+)_p(\d+)", group)
        if not m:
            continue
        workload, procs = m.group(1), int(m.group(2))
        for system in os.listdir(os.path.join(home, group)):
            new = os.path.join(home, group, system, "new")
            try:
                with open(os.path.join(new, "benchmark.json")) as f:
                    ops = json.load(f)["throughput"]["Elements"]
                with open(os.path.join(new, "sample.json")) as f:
                    sample = json.load(f)
            except (OSError, KeyError, TypeError, ValueError):
                continue
            per_op = sorted(t / i / ops for t, i in zip(sample["times"], sample["iters"]))
            q1, med, q3 = quartiles(per_op)
            out[(workload, procs, system)] = {
                "median": med,
                "lo": q1,
                "hi": q3,
                "samples": len(per_op),
                "source": "criterion: median of samples; spread = interquartile range",
            }
    return out


# Go's benchmark names (benches/go/workloads) for the workloads.
GO_NAMES = {
    "Ctxswitch": "ctxswitch",
    "YieldNow": "yield_now",
    "SpawnJoin": "spawn_join",
    "ChanBuf1x1": "chan_buf_1x1",
    "ChanBuf4x4": "chan_buf_4x4",
    "ChanUnbuf1x1": "chan_unbuf_1x1",
    "ChanUnbuf4x4": "chan_unbuf_4x4",
    "Select2": "select_2",
    "Select8": "select_8",
    "MutexUncontended": "mutex_uncontended",
    "MutexContended8": "mutex_contended_8",
    "Waitgroup": "waitgroup",
    "Timers10k": "timers_10k",
    "TcpEcho": "tcp_echo",
}


def read_go(files):
    """Go's `-test.bench` output, one file per processor count, `-test.count` runs each."""
    runs = {}
    line_re = re.compile(r"^Benchmark(\w+?)(?:-(\d+))?\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) ns/unit")
    for procs, path in files:
        try:
            with open(path) as f:
                lines = f.readlines()
        except OSError:
            continue
        for line in lines:
            m = line_re.match(line.strip())
            if not m:
                continue
            p = int(m.group(2) or 1)
            if p != procs:
                continue
            workload = GO_NAMES.get(m.group(1))
            if workload is None:
                print(f"report.py: unknown Go benchmark {m.group(1)}", file=sys.stderr)
                continue
            runs.setdefault((workload, procs, "go"), []).append(float(m.group(3)))
    out = {}
    for key, vals in runs.items():
        vals.sort()
        out[key] = {
            "median": statistics.median(vals),
            "lo": vals[0],
            "hi": vals[-1],
            "samples": len(vals),
            "source": "go test -bench: median of runs; spread = min..max",
        }
    return out


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs"
    return f"{ns:.3g} ns"


def fmt_ratio(r):
    if r >= 100:
        return f"{r:.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    return f"{r:.2f}x"


def spread_pct(e):
    """Half the spread as a percentage of the median."""
    return 50.0 * (e["hi"] - e["lo"]) / e["median"] if e["median"] else 0.0


def build(results, procs_list):
    """Rows of (workload, procs, {system: cell}) and the footnotes used."""
    notes_used = []
    rows = []
    for workload in WORKLOADS:
        for procs in procs_list:
            ref = results.get((workload, procs, "gort"))
            cells = {}
            for system, _ in SYSTEMS:
                e = results.get((workload, procs, system))
                if e is None:
                    note = MISSING_NOTE.get((workload, system)) if procs > 1 else None
                    if note and ref:
                        if note not in notes_used:
                            notes_used.append(note)
                        cells[system] = {"missing": notes_used.index(note) + 1}
                    continue
                ratio = e["median"] / ref["median"] if ref and ref["median"] else None
                marks = []
                for table in (NOTE_OF, NOTE_ALSO):
                    note = table.get((workload, system))
                    if note:
                        if note not in notes_used:
                            notes_used.append(note)
                        marks.append(notes_used.index(note) + 1)
                pale = any(
                    t.get((workload, system)) in NOT_COMPARABLE for t in (NOTE_OF, NOTE_ALSO)
                )
                cells[system] = dict(e, ratio=ratio, marks=marks, pale=pale)
            if cells:
                rows.append((workload, procs, cells))
    return rows, notes_used


def markdown(rows, notes_used, systems_present):
    head = ["workload (ns per …)", "P"] + [label for s, label in SYSTEMS if s in systems_present]
    lines = [
        "| " + " | ".join(head) + " |",
        "| --- | ---: | " + " | ".join("---:" for s, _ in SYSTEMS if s in systems_present) + " |",
    ]
    for workload, procs, cells in rows:
        row = [f"{workload} ({UNITS.get(workload, 'op')})", str(procs)]
        for system, _ in SYSTEMS:
            if system not in systems_present:
                continue
            c = cells.get(system)
            if c is None:
                row.append("—")
                continue
            if "missing" in c:
                row.append(f"— [{c['missing']}]")
                continue
            text = f"{fmt_ns(c['median'])} ±{spread_pct(c):.0f}%"
            if system != "gort" and c["ratio"] is not None:
                text += f" **{fmt_ratio(c['ratio'])}**"
            if c["marks"]:
                text += " " + "".join(f"[{m}]" for m in c["marks"])
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        "Median time per operation; ± is half the interquartile range of criterion's samples "
        "(half the min..max range of the runs for Go); **bold** is the ratio to gort's median "
        "(above 1: gort is faster; below 1: gort is slower). P: gort's maxprocs = Go's GOMAXPROCS "
        "= tokio's and may's worker threads = the CPUs the OS threads are pinned to. "
        "tokio current-thread runs at P=1 only."
    )
    if notes_used:
        lines.append("")
        for i, note in enumerate(notes_used, 1):
            lines.append(f"- [{i}] {NOTES[note]}")
    return "\n".join(lines) + "\n"


def svg(rows, systems_present, title):
    """A horizontal bar chart: one group per (workload, P), one bar per system, the log-scale
    ratio to gort measured from the line at 1."""
    others = [s for s, _ in SYSTEMS[1:] if s in systems_present]
    lo_exp, hi_exp = -2, 3  # 0.01x .. 1000x
    left, right, top = 170, 60, 70
    plot_w = 640
    bar_h, gap = 9, 10
    width = left + plot_w + right

    def x(r):
        e = min(max(math.log10(r), lo_exp), hi_exp)
        return left + (e - lo_exp) / (hi_exp - lo_exp) * plot_w

    body = []
    y = top
    for i, (workload, procs, cells) in enumerate(rows):
        bars = [s for s in others if s in cells and cells[s].get("ratio")]
        group_h = max(len(bars), 1) * bar_h
        if i % 2 == 0:
            body.append(
                f'<rect x="0" y="{y - gap / 2:.1f}" width="{width}" height="{group_h + gap}" '
                'fill="#f4f4f4"/>'
            )
        body.append(
            f'<text x="{left - 8}" y="{y + group_h / 2 + 4:.1f}" text-anchor="end">'
            f"{escape(workload)} P={procs}</text>"
        )
        for s in bars:
            r = cells[s]["ratio"]
            x0, x1 = x(1.0), x(r)
            body.append(
                f'<rect x="{min(x0, x1):.1f}" y="{y:.1f}" width="{max(abs(x1 - x0), 1):.1f}" '
                f'height="{bar_h - 1}" fill="{COLORS[s]}"'
                + (' fill-opacity="0.35"' if cells[s]["pale"] else "")
                + f"><title>{escape(s)}: {fmt_ratio(r)}</title></rect>"
            )
            tx, anchor = (x1 + 3, "start") if r >= 1 else (x1 - 3, "end")
            label = fmt_ratio(r) + ("*" if cells[s]["marks"] else "")
            body.append(
                f'<text x="{tx:.1f}" y="{y + bar_h - 1.5:.1f}" font-size="8" '
                f'text-anchor="{anchor}">{label}</text>'
            )
            y += bar_h
        if not bars:
            y += bar_h
        y += gap
    height = y + 44
    axis = []
    for e in range(lo_exp, hi_exp + 1):
        r = 10.0**e
        xx = x(r)
        axis.append(
            f'<line x1="{xx:.1f}" y1="{top - 8}" x2="{xx:.1f}" y2="{y}" '
            f'stroke="{"#000" if e == 0 else "#ccc"}" stroke-width="{1.2 if e == 0 else 0.6}"/>'
        )
        axis.append(
            f'<text x="{xx:.1f}" y="{top - 12}" text-anchor="middle">{fmt_ratio(r)}</text>'
        )
    legend = []
    lx = left
    for s in others:
        label = dict(SYSTEMS)[s]
        legend.append(f'<rect x="{lx}" y="28" width="10" height="10" fill="{COLORS[s]}"/>')
        legend.append(f'<text x="{lx + 14}" y="37">{escape(label)}</text>')
        lx += 24 + 6.2 * len(label)
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
            f'<rect width="{width}" height="{height}" fill="#fff"/>',
            f'<text x="{left}" y="16" font-size="12" font-weight="bold">{escape(title)}</text>',
            *legend,
            *body,
            *axis,
            f'<text x="{left}" y="{height - 24}">time per operation ÷ gort\'s (log scale): '
            "right of 1x gort is faster, left of it gort is slower.</text>",
            f'<text x="{left}" y="{height - 10}">*: see the table\'s notes; pale: not the same '
            "workload (may's unbounded channels never hand off).</text>",
            "</svg>",
            "",
        ]
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--criterion", required=True)
    ap.add_argument("--go", action="append", default=[], metavar="P=FILE")
    ap.add_argument("--out", required=True)
    ap.add_argument("--machine", help="a markdown file describing the machine and the run")
    args = ap.parse_args()

    results = read_criterion(args.criterion)
    go_files = []
    for spec in args.go:
        p, _, path = spec.partition("=")
        go_files.append((int(p), path))
    results.update(read_go(go_files))
    if not results:
        sys.exit(f"report.py: no results under {args.criterion}")

    procs_list = sorted({p for (_, p, _) in results})
    systems_present = {s for (_, _, s) in results}
    rows, notes_used = build(results, procs_list)
    table = markdown(rows, notes_used, systems_present)

    os.makedirs(args.out, exist_ok=True)
    machine = ""
    if args.machine and os.path.exists(args.machine):
        with open(args.machine) as f:
            machine = f.read()
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("# gort comparison suite\n\n")
        f.write(table)
        f.write("\n![ratios to gort](ratios.svg)\n")
        if machine:
            f.write("\n" + machine)
    with open(os.path.join(args.out, "ratios.svg"), "w") as f:
        f.write(svg(rows, systems_present, "Time per operation relative to gort (1x = gort)"))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(
            [
                {"workload": w, "procs": p, "system": s, "unit": UNITS.get(w), **e}
                for (w, p, s), e in sorted(results.items())
            ],
            f,
            indent=1,
        )
    print(table)
    print(f"written: {args.out}/report.md, ratios.svg, results.json")


if __name__ == "__main__":
    main()
