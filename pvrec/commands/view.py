"""`pvrec view`: render a recording as the explorable HTML page into a temp file and open it
in the default browser (printing the path where no browser can be opened)."""

from __future__ import annotations

import argparse
import tempfile
import webbrowser
from pathlib import Path

from pvrec.commands import render
from pvrec.errors import PvrecError
from pvrec.messages import say, warn
from pvrec.render.options import RenderOptions
from pvrec.render.pipeline import render_recording

DESCRIPTION = """\
Write the explorable page of a recording (as `pvrec render RUN -o run.html` does) to a
temporary file and open it in the default browser: zoom from the whole machine down to single
pages, hover a page for its flags, play and scrub through time. The page is one file that
needs no network; where no browser can be opened the command prints its path.
"""
EPILOG = """\
examples:
  pvrec view pvrec-make-*/                   open the recording in the browser
  pvrec view RUN_A RUN_B                     two runs side by side, zoom and time linked
  pvrec view RUN --classes folio             pages coloured by their folio's size
  pvrec view RUN --view blocks               one cell per huge-page block
"""


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RUN", nargs="+",
                   help="recording directory; two of them: side by side (same memory size)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-open", dest="open", action="store_false",
                   help="write the page and print its path, do not start a browser")
    render.add_picture_options(p)
    g = p.add_argument_group("what is drawn")
    g.add_argument("--timeline-metrics", metavar="NAME[,NAME]",
                   help="fragmentation metrics drawn as lines over the timeline strip, as for "
                        "render (at most 4)")
    g.add_argument("--color-by", choices=("cgroup",), default=None,
                   help="cgroup: colour pages by memory cgroup (a recording made with --cgroups)")
    g.add_argument("--top", type=int, default=8, metavar="N",
                   help="with --color-by cgroup: how many cgroups get a colour (default 8)")
    g.add_argument("--highlight", choices=("workload",), default=None,
                   help="workload: the pages the recorded command maps in full colour")
    t = p.add_argument_group("time")
    t.add_argument("--start", metavar="POS", help="first frame: a number, or a time (30s, 2m)")
    t.add_argument("--end", metavar="POS", help="last frame (included), as --start")
    t.add_argument("--every", type=int, metavar="N", help="every Nth frame")


def run(args: argparse.Namespace) -> int:
    if len(args.recording) > 2:
        raise PvrecError(f"view shows one recording, or two side by side (RUN_A RUN_B); not "
                         f"{len(args.recording)}")
    runs = args.recording if len(args.recording) > 1 else args.recording[0]
    name = "-vs-".join(Path(r.rstrip("/")).name for r in args.recording)
    tmp = Path(tempfile.mkdtemp(prefix="pvrec-view-")) / f"{name}.html"
    options = RenderOptions.from_args(args, force=False)
    with render._Progress(not args.quiet, name) as prog:
        summary = render_recording(runs, tmp, options, progress=prog, warn=warn)
    say(summary.line())
    url = tmp.resolve().as_uri()
    if args.open and _open(url):
        say(f"opened {url}")
    else:
        say(f"open {url} in a browser")
    return 0


def _open(url: str) -> bool:
    """True when a browser was started (webbrowser finds none on a headless server)."""
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False
