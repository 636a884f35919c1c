"""`pvrec stats`: the kernel's page-types summary (and, with -l/-L, its listings), from any source.

Plain text goes straight to stdout in big chunks (no rich: start-up time matters for a
command that should answer faster than page-types itself).
"""

from __future__ import annotations

import argparse
import json
import sys

from pvrec import flags as kpf
from pvrec.inspect import pagetypes as pt

STATS_DESCRIPTION = """\
Count pages per flag combination, exactly as the kernel's tools/mm/page-types prints it:
flags in hex, page-count, MB, symbolic flags and long names, then the total.

The source is the live /proc/kpageflags (root only), a raw dump (-F FILE, what
`page-types -F` reads) or frame N of a recording (RUN@N; RUN alone is the last frame,
negative N counts from the end).
"""

SPECS_HELP = """\
bits-spec (-b; page-types' rule: a page must pass every -b given):
  thp                     thp set
  anonymous,thp           ANY of them set (anonymous or thp); for both: -b anonymous -b thp
  anonymous,~thp          anonymous set and thp clear (with a ~, each name must hold)
  lru,active=lru          of lru|active exactly lru
  =lru,active             flags exactly lru|active, no other flag
  0x400, compound         a number; compound = compound_head|compound_tail
addr-spec (-a, repeatable, in pages, hex 0x.. or decimal; walked in the given order):
  N  one page   N+M  M pages from N   N,M  pages N..M-1   N,  to the end   ,M  0..M-1
"""

EPILOG = SPECS_HELP + """
examples:
  sudo pvrec stats                       what the memory holds now (as root)
  pvrec stats -F dump.kpf -b thp         THP pages of a dump
  pvrec stats run/@0 -r                  first frame of a recording, raw flags
  pvrec stats run/ -b anonymous,thp      pages that are anonymous or THP (or both)
  pvrec stats -d 0x1020                  what a flag word means
"""


def add_source_options(p: argparse.ArgumentParser) -> None:
    """The source and filter options stats and list share (page-types' own)."""
    p.add_argument("run", nargs="?", metavar="RUN[@N]",
                   help="a recording directory and frame (default: the live /proc/kpageflags)")
    p.add_argument("-F", "--kpageflags", dest="dump", metavar="FILE",
                   help="a raw kpageflags dump, as page-types -F")
    p.add_argument("-r", "--raw", action="store_true",
                   help="raw mode: every bit, overloaded bits expanded (as page-types -r)")
    p.add_argument("-b", "--bits", action="append", default=[], metavar="BITS-SPEC",
                   help="only pages whose flags match: a,b is ANY of a, b set; repeat -b for "
                        "all (see bits-spec below)")
    p.add_argument("-a", "--addr", action="append", default=[], metavar="ADDR-SPEC",
                   help="only these PFN ranges (repeatable)")
    p.add_argument("--json", action="store_true", help="the same numbers as JSON, for scripts")


DESCRIPTION = STATS_DESCRIPTION


def register(p: argparse.ArgumentParser) -> None:
    add_source_options(p)
    p.add_argument("-N", "--no-summary", action="store_true", help="don't show the summary")
    p.add_argument("-l", "--list", dest="list_mode", action="store_const",
                   const=pt.LIST_RANGES, default=0, help="show page ranges (page-types -l)")
    p.add_argument("-L", "--list-each", dest="list_mode", action="store_const",
                   const=pt.LIST_EACH, help="show every page (page-types -L)")
    p.add_argument("-d", "--describe", action="append", default=[], metavar="FLAGS",
                   help="describe a flag word (e.g. 0x1020 or anonymous,lru) and exit")


def _describe(specs: list[str], as_json: bool) -> int:
    values = [kpf.parse_flags(s) for s in specs]
    if as_json:
        for v in values:
            kpf.check_known([v])
        sys.stdout.write(json.dumps([pt.flags_json(v) for v in values], indent=1) + "\n")
    else:
        sys.stdout.write("".join(pt.format_describe(v) for v in values))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run `pvrec stats` or `pvrec list`."""
    if args.describe:
        return _describe(args.describe, args.json)
    # Parse every spec before the (slow, live) read so that a typo fails at once.
    filters = [kpf.parse_bits_spec(s) for s in args.bits]
    ranges = [pt.parse_addr_spec(s) for s in args.addr]

    from pvrec import sources
    from pvrec.messages import warn

    snap = sources.load(args.run, args.dump, warn)
    # Only -l needs the walk cut at page-types' read batches.
    batch = pt.KPAGEFLAGS_BATCH if args.list_mode == pt.LIST_RANGES else 0
    w = pt.walk(snap.lengths, snap.values, raw=args.raw, filters=filters, ranges=ranges,
                batch=batch)
    out = sys.stdout.buffer
    if args.json:
        doc: dict = {
            "source": snap.name, "page_size": snap.page_size, "pfn_count": snap.pfn_count,
            "raw": args.raw, "bits": args.bits, "addr": args.addr,
        }
        if args.list_mode == pt.LIST_RANGES:
            doc.update(pt.ranges_json(w))
        elif args.list_mode == pt.LIST_EACH:
            doc.update(pt.pages_json(w))
        if not args.no_summary:
            doc.update(pt.summary_json(w, snap.page_size))
        out.write(json.dumps(doc).encode() + b"\n")
    else:
        for chunk in pt.render(w, list_mode=args.list_mode, show_summary=not args.no_summary,
                               page_size=snap.page_size):
            out.write(chunk)
    out.flush()
    return 0
