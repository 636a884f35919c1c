"""`pvrec export`: write one frame of a recording back as a raw kpageflags dump.

The dump is byte-identical to what was sampled, so `page-types -F FILE`, `pvrec stats -F FILE`
and any other kpageflags tool can read it.
"""

from __future__ import annotations

import argparse

from pvrec.inspect.export import export_frame
from pvrec.messages import say, warn
from pvrec.units import format_bytes

DESCRIPTION = (
    "Write frame N of a recording as a raw /proc/kpageflags dump: one "
    "little-endian u64 per PFN, byte-identical to what was sampled."
)
EPILOG = """\
example:
  pvrec export pvrec-make-*/ --frame -1 -o last.kpf
  page-types -F last.kpf"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RUN", help="recording directory")
    p.add_argument("-n", "--frame", type=int, default=-1, metavar="N",
                   help="frame number; negative counts from the end (default -1, the last)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="dump file to write")
    p.add_argument("-f", "--force", action="store_true", help="overwrite FILE if it exists")


def run(args: argparse.Namespace) -> int:
    number, size = export_frame(args.recording, args.frame, args.output, args.force, warn)
    say(f"wrote frame {number} of {args.recording} to {args.output} "
          f"({size // 8} pages, {format_bytes(size)})")
    return 0
