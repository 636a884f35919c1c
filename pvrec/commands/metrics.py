"""`pvrec metrics`: the fragmentation figures of every frame as CSV, for your own plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pvrec.errors import PvrecError
from pvrec.inspect.fragmentation import metrics_csv, metrics_region
from pvrec.messages import say, warn
from pvrec.metrics import DEFINITIONS, METRICS
from pvrec.output import STDOUT, check_output, write_atomically
from pvrec.recording.reader import open_recording

DESCRIPTION = (
    "Compute, from the page flags of every frame, per zone: free pages, free "
    "huge-page blocks (THP/hugetlb allocations possible without compaction), "
    "compactable huge-page blocks (only free and movable pages: huge pages "
    "compaction could make), "
    "Gorman's unusable free space index at the huge page order, the largest "
    "free run and the share of huge-page blocks that mix movable and unmovable "
    "pages; and beside them the kernel's own free-page and free-block counts "
    "from /proc/buddyinfo of the same moment. One row per frame. "
    "Each figure is defined below (and in docs/metrics.md of pvrec's source)."
)
EPILOG = """\
examples:
  pvrec metrics RUN -o metrics.csv
  pvrec metrics RUN --metric free_hp_blocks --zone Normal
  pvrec metrics RUN --region 4G-8G          the figures of the zones' pages in 4-8 GiB only

the figures, per zone:
""" + DEFINITIONS.rstrip()


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RUN", help="recording directory")
    p.add_argument("-o", "--output", default="-", metavar="FILE",
                   help="CSV file to write (a new file; default -, standard output)")
    p.add_argument("-m", "--metric", action="append", metavar="NAME",
                   help=f"only this metric (repeatable): {', '.join(METRICS)}, buddy_order_N")
    p.add_argument("-z", "--zone", action="append", metavar="ZONE",
                   help="only this zone (repeatable), e.g. Normal")
    p.add_argument("--region", metavar="SPEC",
                   help="only these pages of each zone: addresses (4G-8G, 4G+512M, "
                        "0x100000000-0x200000000), a zone (Normal), a node (node1), or changed "
                        "(the rows holding every page whose class changed); zones without "
                        "pages there are left out, and so are the kernel_ columns (buddyinfo "
                        "counts whole zones)")
    p.add_argument("-f", "--force", action="store_true",
                   help="replace FILE if it is a regular file (never a device, FIFO or link)")


def run(args: argparse.Namespace) -> int:
    rec = open_recording(args.recording, warn)
    if len(rec) == 0:
        raise PvrecError(f"{args.recording} has no frames")
    text = metrics_csv(rec, args.metric, args.zone, metrics_region(rec, args.region))
    if args.output == STDOUT:
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    check_output(out, args.force)
    write_atomically(out, lambda tmp: tmp.write_text(text))
    say(f"wrote {len(rec)} rows to {out}")
    return 0
