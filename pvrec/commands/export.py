"""`pvrec export`: write one frame of a recording back as a raw kpageflags dump.

The dump is byte-identical to what was sampled, so `page-types -F FILE`, `pvrec stats -F FILE`
and any other kpageflags tool can read it.
"""

from __future__ import annotations

import argparse
import sys

from pvrec.errors import PvrecError
from pvrec.inspect.export import export_frame
from pvrec.messages import say, warn
from pvrec.output import STDOUT
from pvrec.sources import split_run_frame
from pvrec.units import format_bytes

DESCRIPTION = (
    "Write frame N of a recording as a raw /proc/kpageflags dump: one "
    "little-endian u64 per PFN, byte-identical to what was sampled."
)
EPILOG = """\
examples:
  pvrec export pvrec-make-*/ --frame -1 -o last.kpf
  page-types -F last.kpf
  pvrec export RUN@62 -o f62.kpf                     RUN@N, as stats, list and snapshot take it
  pvrec export RUN -n 0 -o - | xz > first.kpf.xz     standard output, for a pipe

page-types reads its -F file with pread(), so it needs a file: `-F /dev/stdin` from a pipe
fails with "Illegal seek"; give it the file -o wrote (or `< last.kpf`)."""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RUN[@N]", help="recording directory, @N: its frame N")
    p.add_argument("-n", "--frame", type=int, default=None, metavar="N",
                   help="frame number (or RUN@N); negative counts from the end (default -1, "
                        "the last)")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="dump file to write (a new file; - for standard output)")
    p.add_argument("-f", "--force", action="store_true",
                   help="replace FILE if it is a regular file (never a device, FIFO or link)")


def run(args: argparse.Namespace) -> int:
    to_stdout = args.output == STDOUT
    if to_stdout and sys.stdout.isatty():
        raise PvrecError("-o - writes the binary dump to standard output, which is a terminal: "
                         "pipe it (| xz > last.kpf.xz) or name a file")
    path, at = split_run_frame(args.recording)
    if at is not None and args.frame is not None and at != args.frame:
        raise PvrecError(f"{args.recording} and --frame {args.frame} name two frames: give one")
    frame = at if at is not None else args.frame if args.frame is not None else -1
    number, size = export_frame(str(path), frame, args.output, args.force, warn,
                                stream=sys.stdout.buffer if to_stdout else None)
    where = "standard output" if to_stdout else args.output
    say(f"wrote frame {number} of {path} to {where} "
        f"({size // 8} pages, {format_bytes(size)})")
    return 0
