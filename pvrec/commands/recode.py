"""`pvrec recode`: rewrite a recording in the current frame encoding (smaller frames)."""

from __future__ import annotations

import argparse

from pvrec.errors import PvrecError
from pvrec.messages import say, warn
from pvrec.recording.format import FORMAT_VERSION
from pvrec.units import format_bytes

DESCRIPTION = (
    f"Write a recording again in the current frame encoding (format version {FORMAT_VERSION}), "
    "into a new directory: every frame exports byte-identical to the original (pvrec export), "
    "the header (but its format_version), each frame's index line (time, sample cost, "
    "context) and end.json are kept. Damaged frames are left out as every reader leaves "
    "them out, each said once. The original is never changed."
)
EPILOG = """\
examples:
  pvrec recode pvrec-make-20260101-120000/ -o make-v3/
  pvrec recode OLD -o NEW --force        replace the recording in NEW
  pvrec recode RUN -o RUN-v1 --version 1 the version-1 encoding (to compare; older pvrec)"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RUN", help="recording directory to read")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="recording directory to create (its parent must exist)")
    p.add_argument("-f", "--force", action="store_true",
                   help="replace the pvrec recording in DIR (never another directory, a "
                        "file or a link)")
    p.add_argument("--version", type=int, choices=range(1, FORMAT_VERSION + 1),
                   default=FORMAT_VERSION, metavar="N",
                   help=f"format version to write, 1 to {FORMAT_VERSION} (default "
                        f"{FORMAT_VERSION}; N reads in every pvrec since version N's)")
    p.add_argument("--key-every", type=int, default=None, metavar="N",
                   help="a key frame every N frames (default: where the original has them)")


def run(args: argparse.Namespace) -> int:
    from pvrec.recording.recode import recode

    if args.key_every is not None and args.key_every < 1:
        raise PvrecError("--key-every must be at least 1")
    done = recode(args.recording, args.output, force=args.force, version=args.version,
                  key_every=args.key_every, on_warning=warn)
    ratio = f"{done.new_bytes / done.old_bytes:.3f}x" if done.old_bytes else "-"
    left = f" ({done.skipped} left out that could not be read: damaged, or deltas after a " \
        f"damaged frame)" if done.skipped else ""
    say(f"recoded {done.frames} frames{left} of {args.recording} into {args.output} "
        f"(format version {done.version}): {format_bytes(done.old_bytes)} -> "
        f"{format_bytes(done.new_bytes)} of frames, {ratio}")
    return 0
