"""`pvrec blockers RUN[@N]`: the huge pages that a few unmovable pages stop, and those pages."""

from __future__ import annotations

import argparse
import json
import sys

from pvrec.inspect.blockers import MAX_UNMOVABLE, TOP, BlockersReport, find_blockers, frame_position
from pvrec.messages import next_step, say, warn
from pvrec.sources import RecordingSource, split_run_at
from pvrec.units import format_bytes

DESCRIPTION = (
    "List the huge-page blocks of a frame (the last, or RUN@N) that would be free or "
    "compactable but for a few unmovable pages (slab, page tables, reserved, kernel pages "
    "with no flag): fewest unmovable pages first. For each: its physical address, zone, "
    "free / movable / unmovable pages, and each blocking page with its flags as page-types "
    "names them and the frame since which it has been unmovable (a long-lived blocker "
    "stands out from a transient one). docs/metrics.md defines the block states."
)
EPILOG = """\
examples:
  pvrec blockers RUN                 the last frame
  pvrec blockers RUN@40 --top 5      frame 40, the five blocks nearest to a huge page
  pvrec blockers RUN --max-unmovable 1 --json | jq '.blocks[].blockers[].names'"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RUN[@N]",
                   help="recording directory, @N for frame N (negative: from the end; "
                        "default the last frame)")
    p.add_argument("--max-unmovable", type=int, default=MAX_UNMOVABLE, metavar="PAGES",
                   help=f"list blocks with at most this many unmovable pages (default "
                        f"{MAX_UNMOVABLE}, of 512 in a 2 MiB block)")
    p.add_argument("--top", type=int, default=TOP, metavar="N",
                   help=f"list the first N blocks (default {TOP}; 0: the summary alone); the "
                        f"summary counts all")
    p.add_argument("--json", action="store_true", help="the same report as JSON, for scripts")


def run(args: argparse.Namespace) -> int:
    path, n = split_run_at(args.recording)
    source = RecordingSource(path, warn)
    report = find_blockers(source, frame_position(source, n), args.max_unmovable, args.top)
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=1) + "\n")
    else:
        sys.stdout.write(format_report(report))
    say(summary_line(report))
    if report.candidates and not args.json:
        next_step(f"pvrec render {path} --view blocks -o blocks.mp4")
    return 0


def summary_line(r: BlockersReport) -> str:
    """'57 huge pages are blocked by 112 pages (at most 8 unmovable pages each; ...)'."""
    hp = "huge page" if r.candidates == 1 else "huge pages"
    are = "is" if r.candidates == 1 else "are"
    pages = "page" if r.blocking_pages == 1 else "pages"
    return (f"{r.candidates:,} {hp} ({format_bytes(r.candidates * r.hpage_pages * r.page_size)})"
            f" {are} blocked by {r.blocking_pages:,} {pages} (blocks with at most "
            f"{r.max_unmovable} unmovable; {r.blocked:,} blocked blocks in all) at frame "
            f"{r.frame}, t=+{r.t:.1f}s")


def format_report(r: BlockersReport) -> str:
    """The table: a line per block, an indented line per blocking page."""
    if not r.blocks:
        return ""
    lines = [f"{'block':>14}  {'zone':<8} {'free':>5} {'movable':>7} {'unmovable':>9}"
             f"  blocking pages: pfn, flags, unmovable since"]
    for b in r.blocks:
        lines.append(f"{b.pfn * r.page_size:#14x}  {b.zone:<8} {b.free:>5} {b.movable:>7} "
                     f"{b.unmovable:>9}" + (f"  (+{b.huge} huge)" if b.huge else ""))
        for x in b.blockers:
            lines.append(f"{'':16}{x.pfn:#x}  {x.names or '(no flags)'}  since frame "
                         f"{x.since} (t=+{x.since_t:.1f}s)")
    return "\n".join(lines) + "\n"
