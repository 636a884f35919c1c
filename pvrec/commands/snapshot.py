"""`pvrec snapshot`: one picture of live memory, a raw dump or RUN@N, drawn as render draws it."""

from __future__ import annotations

import argparse
from pathlib import Path

from pvrec.commands.render import add_picture_options
from pvrec.messages import say, warn
from pvrec.render.options import RenderOptions, check_snapshot_frame, snapshot_output
from pvrec.render.pipeline import render_source
from pvrec.sources import ArraySource, open_source

DESCRIPTION = ("Draw one picture of the physical memory: the live system (needs root), "
                    "a raw kpageflags dump (-F FILE), or frame N of a recording (RUN@N). "
                    "Same picture, options and classes as pvrec render.")
EPILOG = ("examples:\n  sudo pvrec snapshot -o now.png\n"
               "  pvrec snapshot -F dump.kpf -o dump.png\n"
               "  pvrec snapshot pvrec-make-*/@-1 -o last.png --theme dark")


def register(s: argparse.ArgumentParser) -> None:
    s.add_argument("source", nargs="?", metavar="RUN[@N]",
                   help="a recording (frame N, default the last); omit for live memory")
    s.add_argument("-F", "--kpageflags", metavar="FILE",
                   help="a raw kpageflags dump instead of /proc/kpageflags")
    s.add_argument("-o", "--output", required=True, metavar="FILE.png", help="picture to write")
    s.add_argument("-f", "--force", action="store_true",
                   help="replace FILE if it is a regular file (never a device, FIFO or link)")
    add_picture_options(s, snapshot=True)


def run(args: argparse.Namespace) -> int:
    out = snapshot_output(Path(args.output))
    source, n = open_source(args.source, args.kpageflags, warn)
    check_snapshot_frame(source, n)
    options = RenderOptions.from_args(args, frame=n)
    if isinstance(source, ArraySource):  # memory now, or a dump: no recording time to show
        options.clock, options.title = False, args.title or source.name
    summary = render_source(source, out, options)
    say(summary.line())
    return 0
