"""`pvrec info`: what a recording holds, how well it was sampled, and how memory changed in it."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from pvrec.errors import PvrecError
from pvrec.inspect.info import figures_of, summarize
from pvrec.recording.figures import Figures
from pvrec.recording.overhead import Overhead
from pvrec.recording.reader import open_recording
from pvrec.units import format_bytes

SPARKS = " ▁▂▃▄▅▆▇█"


DESCRIPTION = (
    "Summarise a recording: host, kernel, memory size and layout, command, "
    "duration, frames, the interval and its measured jitter (delay between "
    "scheduled and actual sample start, p50/p99), the mean gap between frames, "
    "skipped ticks (a sample ran long) and ticks held for the --max-overhead budget, mean "
    "sample cost (wall and CPU), bytes per frame; what recording cost (pvrec's share of the "
    "CPUs, its peak RSS and bytes written, the estimated workload slowdown); per page class its size at the "
    "start and end and its minimum and maximum; and per zone the fragmentation figures of "
    "`pvrec metrics --help` (defined there) with a sparkline over time. The per-frame figures "
    "are kept in RUN/.pvrec-summaries.npz (in ~/.cache/pvrec where RUN is read-only), so the "
    "next info, metrics or --timeline render decodes no frame; safe to delete."
)
EPILOG = "examples:\n  pvrec info RUN\n  pvrec info RUN --json | jq .classes"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RUN", help="recording directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def sparkline(values: list[float], width: int = 24) -> str:
    """Values over time as block characters (resampled to width)."""
    if not values:
        return ""
    v = np.asarray(values, dtype=float)
    if v.size > width:
        v = np.array([chunk.mean() for chunk in np.array_split(v, width)])
    lo, hi = v.min(), v.max()
    if hi - lo <= 0.01 * max(abs(hi), abs(lo)):  # flat to the eye: do not magnify noise
        return SPARKS[4] * v.size
    idx = np.rint((v - lo) / (hi - lo) * (len(SPARKS) - 2)).astype(int) + 1
    return "".join(SPARKS[i] for i in idx)


def _fmt_metric(name: str, value: float, page: int) -> str:
    if name in ("unusable_index", "mixed_blocks"):
        return f"{value:.3f}"
    if name == "largest_free_run":
        return format_bytes(value * page)
    return f"{int(value):,}"


def _print(s: dict, fig: Figures) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    con = Console(width=max(Console().width, 100))
    state = "complete" if s["complete"] else "[yellow]incomplete[/] (no end.json: still recording, or killed)"
    con.print(f"[bold]{s['path']}[/]  {state}")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    zones = ", ".join(z["name"] for z in s["zones"] or []) or "unknown"
    nodes = len(s["nodes"] or []) or "?"
    host = f"{s['host']} (kernel {s['kernel']}, {s['machine']})"
    if s["layout_source"] == "flat":  # record -F: this host read a dump of some machine
        host += "; it recorded a saved dump, whose machine is not known"
    grid.add_row("host", host)
    ranges = len(s["ram_ranges"] or [])
    grid.add_row("memory", f"{format_bytes(s['ram_bytes'])} RAM in {ranges} "
                           f"range{'s' if ranges != 1 else ''}, {s['pfn_count']:,} PFNs of {s['page_size']} B; zones {zones}; "
                           f"{nodes} node(s); layout {s['layout_source']}")
    cmd = " ".join(" ".join(str(a).split()) for a in s["command"]) or "(whole system)"
    grid.add_row("command", cmd + (f" (as {s['user']})" if s["user"] else ""))
    shown = fig.shown()
    grid.add_row("recorded", f"{s['start']}, {shown['duration']}; channels "
                             f"{', '.join(s['channels'])}")
    grid.add_row("frames", fig.timing_text())
    j = s["jitter_ms"]
    jitter = f"; start jitter p50 {j['p50']:.1f} ms, p99 {j['p99']:.1f} ms, max " \
             f"{j['max']:.1f} ms" if j["p50"] is not None else ""
    failed = "" if fig.failed_samples is None else f", {fig.failed_samples} samples failed"
    grid.add_row("sampling", f"{shown['mean_sample']}{failed}{jitter}")
    b = s["bytes_per_frame"]
    if b["all"]:
        grid.add_row("size", f"{shown['bytes']}, {format_bytes(s['bytes_on_disk'])} on disk; per "
                             f"frame "
                             f"{format_bytes(b['all'])} (key {format_bytes(b['key'] or 0)}, "
                             f"delta {format_bytes(b['delta'] or 0)})")
    if s["overhead"]:
        grid.add_row("overhead", Overhead.from_dict(s["overhead"]).text())
    w = s["workload"]
    if w is not None:
        grid.add_row("workload", f"its processes mapped {format_bytes(w['start'])} at the "
                                 f"start, {format_bytes(w['end'])} at the end, "
                                 f"{format_bytes(w['max'])} at most (frame {w['max_frame']})")
    if s["end"]:
        grid.add_row("ended", f"{s['end']['reason']} (exit code {s['end']['exit_code']})")
    ev = s["events"]
    if ev is not None:
        grid.add_row("events", "; ".join(part for part in (
            f"{ev.get('extfrag', 0):,} fallbacks (kmem:mm_page_alloc_extfrag: "
            f"{ev.get('extfrag_claimed', 0):,} claimed, {ev.get('extfrag_polluting', 0):,} "
            f"polluting, {ev.get('extfrag_stolen', 0):,} stolen)",
            f"{ev.get('compaction_runs', 0):,} compaction passes scanning "
            f"{ev.get('compaction_scanned', 0):,} pages",
            f"{ev.get('dropped', 0):,} not stored (over --events-max)" if ev.get("dropped")
            else "", f"{ev.get('lost', 0):,} lost by the kernel" if ev.get("lost") else "",
            f"{format_bytes(ev.get('bytes', 0))} of events") if part))
    for m in s["markers"]:  # the workload's text: printed, never read as markup
        grid.add_row("marker", f"frame {m['frame']} t=+{m['t']:.1f}s  {escape(m['text'])}")
    con.print(grid)
    for w in s["warnings"]:
        con.print(f"[yellow]warning:[/] {w}")
    t = Table(title="page classes (RAM only)", title_justify="left")
    for col in ("class", "start", "end", "min", "max"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for c in s["classes"]:
        t.add_row(c["class"], *(format_bytes(c[k]) for k in ("start", "end", "min", "max")))
    con.print(t)
    f = Table(title="fragmentation (docs/metrics.md)", title_justify="left")
    for col in ("zone", "metric", "start", "end", "min", "max", "over time"):
        f.add_column(col, justify="left" if col in ("zone", "metric", "over time") else "right",
                     no_wrap=True)
    for zone, values in s["fragmentation"].items():
        for name, v in values.items():
            f.add_row(zone, name, *(_fmt_metric(name, v[k], s["page_size"])
                                    for k in ("start", "end", "min", "max")),
                      sparkline(v["series"], 16))
    con.print(f)


def run(args: argparse.Namespace) -> int:
    rec = open_recording(args.recording)  # its warnings are listed in the summary
    if len(rec) == 0:
        raise PvrecError(f"{args.recording} has no readable frames")
    summary = summarize(rec)
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print(summary, figures_of(rec))
    return 0
