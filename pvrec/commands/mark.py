"""`pvrec mark TEXT`: label this moment in the recording the calling workload runs inside."""

from __future__ import annotations

import argparse

from pvrec.messages import warn
from pvrec.recorder.markers import ENV, send_mark
from pvrec.recording.format import MAX_MARK_CHARS

DESCRIPTION = f"""\
Add a labelled marker to the recording this command runs inside: `pvrec record -- CMD` gives
CMD (and everything it starts) the path of its marker socket in {ENV}. The marker lands at
this moment, in the frame being recorded; the video's header shows it while it is the latest
one, the timeline draws it as a labelled tick, and `pvrec info` and `pvrec metrics` list it.
Outside a recording it says so and exits 2. Needs no root.
"""
EPILOG = """\
examples:
  sudo pvrec record -- sh -c 'make defconfig; pvrec mark "build starts"; make -j8'
  pvrec mark "phase 2: allocate THP"          (from inside the recorded workload)
"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="+", metavar="TEXT",
                   help="the marker's label (words are joined by spaces; at most 120 "
                        "characters, drawn as plain text)")


def run(args: argparse.Namespace) -> int:
    if send_mark(" ".join(args.text)):
        warn(f"the marker is longer than {MAX_MARK_CHARS} characters: its first "
             f"{MAX_MARK_CHARS} were recorded")
    return 0
