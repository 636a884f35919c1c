"""`pvrec metrics`: the fragmentation figures of every frame as CSV, for your own plots."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from pvrec.errors import PvrecError
from pvrec.messages import say
from pvrec.metrics import METRICS, check_metric_names, frame_metrics, kernel_figures
from pvrec.output import check_output, write_atomically
from pvrec.recording.reader import open_recording

DESCRIPTION = (
    "Compute, from the page flags of every frame, per zone: free pages, free "
    "huge-page blocks (THP/hugetlb allocations possible without compaction), "
    "Gorman's unusable free space index at the huge page order, the largest "
    "free run and the share of huge-page blocks that mix movable and unmovable "
    "pages; and beside them the kernel's own free-page and free-block counts "
    "from /proc/buddyinfo of the same moment. One row per frame. "
    "docs/metrics.md defines each figure."
)
EPILOG = (
    "examples:\n  pvrec metrics RUN -o metrics.csv\n"
    "  pvrec metrics RUN --metric free_hp_blocks --zone Normal"
)


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RUN", help="recording directory")
    p.add_argument("-o", "--output", default="-", metavar="FILE",
                   help="CSV file to write (default: standard output)")
    p.add_argument("-m", "--metric", action="append", metavar="NAME",
                   help=f"only this metric (repeatable): {', '.join(METRICS)}, buddy_order_N")
    p.add_argument("-z", "--zone", action="append", metavar="ZONE",
                   help="only this zone (repeatable), e.g. Normal")
    p.add_argument("-f", "--force", action="store_true", help="overwrite FILE")


def metric_rows(rec, metrics: list[str] | None = None, zones: list[str] | None = None):
    """Yield (column names, then) one dict per frame: frame, t, and zone.metric columns."""
    hp = int(rec.header.get("hpage_pages", 512))
    for info, runs in rec.iter_runs():
        row = {"frame": info.index, "t": info.t}
        for zone, values in frame_metrics(runs, rec.header).items():
            if zones and zone not in zones:
                continue
            values.update(kernel_figures(info.context, zone, hp))
            for name, value in values.items():
                if metrics is None or name in metrics or (
                        name.startswith("kernel_") and name[7:] in metrics):
                    row[f"{zone}.{name}"] = value
        yield row


def run(args: argparse.Namespace) -> int:
    metrics = check_metric_names(args.metric) if args.metric else None
    rec = open_recording(args.recording)
    if len(rec) == 0:
        raise PvrecError(f"{args.recording} has no frames")
    if args.zone:
        from pvrec.metrics import zones_of

        known = [z for z, _ in zones_of(rec.header)]
        for z in args.zone:
            if z not in known:
                raise PvrecError(f"no zone {z!r} in this recording; zones: {', '.join(known)}")
    buf = io.StringIO()
    writer = None
    for row in metric_rows(rec, metrics, args.zone):
        if writer is None:
            writer = csv.DictWriter(buf, fieldnames=list(row), extrasaction="ignore",
                                    lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)
    if args.output == "-":
        sys.stdout.write(buf.getvalue())
        return 0
    out = Path(args.output)
    check_output(out, args.force)
    write_atomically(out, lambda tmp: tmp.write_text(buf.getvalue()))
    say(f"wrote {len(rec)} rows to {out}")
    return 0
