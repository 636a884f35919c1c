"""`pvrec render`: a recording (or two side by side) to an MP4, GIF, WebP, PNG or PNG directory."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pvrec.classes import DEFAULT_IGNORE, THEMES
from pvrec.classes_cgroup import CgroupScheme
from pvrec.commands.terminal import LiveDisplay
from pvrec.errors import PvrecError
from pvrec.messages import quote, say, warn
from pvrec.render.encoders import DEFAULT_CRF, DEFAULT_PRESET
from pvrec.render.options import SIZES, VIEWS, RenderOptions
from pvrec.render.pipeline import render_recording
from pvrec.render.raster import DOWNSAMPLE
from pvrec.render.strips import METRIC_SCALES

DESCRIPTION = """\
Draw every frame of a recording as a map of physical memory: one
pixel per page frame in PFN order, rows of whole huge pages (2 MiB), tiles of 1 GiB or
more in a grid, coloured by what the kernel uses each page for, with a legend of live sizes, a
header (command, host, elapsed time) and zone boundaries. The output type comes from
the suffix of -o: .mp4 (H.264, plays in every browser), .gif, .webp (animated,
lossless), .png (one frame: --frame), an existing directory (a PNG per frame), or .html
(one self-contained page to zoom to single pages, hover for flags and scrub time).

By default the whole picture fits in 1920x1080 (--fit, --size) by letting one pixel stand
for K pages of a row and wrapping the tiles into a grid (a pixel keeps the pages
that fragment: its unmovable pages first, then those in use, in a paler tint when some of
its pages are free; --downsample mode: the most common class); MP4 frames are then enlarged 2x so that
chroma subsampling cannot blur single pages. Frames are streamed: memory stays flat
however long the recording. Ctrl-C stops and leaves no partial file.
"""
EPILOG = """\
examples:
  pvrec render pvrec-make-*/                          -> pvrec-make-*.mp4
  pvrec render RUN -o run.gif --speed 20            a GIF: 20 s of recording a second
  pvrec render RUN -o last.png --frame -1            the last frame as a picture
  pvrec render RUN -o diff.mp4 --changes --timeline  highlight what changed
  pvrec render RUN -o post.mp4 --size blog            legible in a 760 px blog column
  pvrec render RUN -o run.html                       an explorable page (pvrec view RUN opens it)
  pvrec render RUN -o map.png --map-only --layout rows --width 512
                                                      pixel (x, y) = PFN y*512 + x
  pvrec render RUN --view churn -o churn.png         pages by how often they changed class
  pvrec render RUN --view age -o age.mp4             by how long ago (long-lived pages stand out)
  pvrec render RUN --classes flags --ignore-flags referenced,uptodate,idle_page
  pvrec render RUN --classes my-classes.toml          your own classes (see pvrec classes)
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of pages")
    return value


def add_picture_options(p: argparse.ArgumentParser, snapshot: bool = False) -> None:
    """The options of the picture, shared with snapshot (one picture of one source)."""
    g = p.add_argument_group("picture")
    g.add_argument("--classes", metavar="SCHEME", default=None,
                   help="default (semantic classes), flags (each flag combination a state, "
                        "after dropping referenced and uptodate), folio (the size of each page's "
                        "folio), or FILE.toml (your classes: "
                        "pvrec classes --help)")
    g.add_argument("--ignore-flags", metavar="NAMES", default=None,
                   help="with --classes flags: flags to drop before combining "
                        f"(default {DEFAULT_IGNORE})")
    g.add_argument("--theme", choices=THEMES, default="light",
                   help="colours for a light or dark page (default light)")
    g.add_argument("--layout", choices=("tiles", "rows"), default="tiles",
                   help="tiles: rows of whole huge pages in tiles of 1 GiB or more, holes "
                        "skipped, shaped to fit (default); rows: pixel (x, y) is PFN y*WIDTH + x")
    g.add_argument("--width", type=int, metavar="PAGES",
                   help="pages per row with --layout rows (default: one huge page, 512)")
    g.add_argument("-k", "--pages-per-pixel", type=_positive_int, metavar="K",
                   help="pages one pixel stands for (divides the row); default: the smallest "
                        "K that fits --fit")
    g.add_argument("--view", choices=VIEWS, default="map",
                   help="map: pages by class (default); blocks: one cell per huge-page block "
                        "(2 MiB) by what a huge-page allocation finds there: free, compactable, "
                        "blocked, unmovable, huge, no flags (with --timeline: lines of free and "
                        "compactable blocks); churn: pages by how many frames changed their "
                        "class, over the frames rendered (a picture: from the first frame to "
                        "the one drawn); age: by how many frames ago their class last changed "
                        "(long-lived pages dark); a log scale where counts span decades")
    g.add_argument("--downsample", choices=DOWNSAMPLE, default="keep",
                   help="with K > 1: keep (a pixel shows the most common class of its "
                        "unmovable pages, else of its pages in use, paler when some are free: "
                        "a lone slab page among free ones shows; default) or mode (the most "
                        "common class of its K pages)")
    g.add_argument("--scale", type=int, metavar="S",
                   help="enlarge by S, nearest neighbour (default 1)" if snapshot else
                   "enlarge by S, nearest neighbour (default 2 for .mp4, else 1)")
    g.add_argument("--fit", default=None, metavar="WxH",
                   help="the whole picture (map, legend, header, strips), before --scale, is "
                        "at most this size (default 1920x1080)")
    g.add_argument("--size", choices=tuple(SIZES), default=None,
                   help="blog: a picture at most 760x640, legible shown at its width in a "
                        "760-800 px column; 1080p, 4k: output frames at most 1920x1080, "
                        "3840x2160 (the picture is that divided by --scale); instead of --fit")
    g.add_argument("--region", metavar="SPEC",
                   help="draw only part of physical memory, at the K that fits it: addresses "
                        "(4G-8G, 4G+512M, 0x100000000-0x200000000), a zone (Normal, DMA32, "
                        "Normal@1), a node (node1), or changed (the smallest range of whole "
                        "huge-page rows holding every page whose class changed in the frames "
                        "drawn). Tile labels keep the true addresses; legend sizes and %% are "
                        "the region's")
    g.add_argument("--no-collapse", dest="collapse", action="store_false",
                   help="draw 1 GiB tiles whose pages all keep one class over the frames "
                        "drawn as tiles too (default: each stretch of them is one narrow "
                        "labelled band, '10 GiB - 25 GiB: 15 GiB no flags, unchanged', and the "
                        "pixels go to the memory that changes)")
    g.add_argument("--map-only", action="store_true",
                   help="just the map: no legend, header, labels or gaps between tiles")
    g.add_argument("--title", metavar="TEXT", action="append",
                   help="header title instead of the recorded command (for live memory or a "
                   "dump: its name)" if snapshot
                   else "header title instead of the command (with two runs: give it twice, "
                        "once per run)")


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", metavar="RUN", nargs="+",
                   help="recording directory; two of them: drawn side by side on one time "
                        "axis (same memory size)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="FILE.mp4|.gif|.webp|.png|.html or an existing directory "
                        "(default: RUN.mp4 beside the recording)")
    p.add_argument("-f", "--force", action="store_true",
                   help="replace OUT if it is a regular file (never a device, FIFO or link)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-poster", dest="poster", action="store_false",
                   help="for .mp4: no OUT.poster.png (the frame with the most memory in use, "
                        "shown before the video plays) and no HTML snippet")
    add_picture_options(p)
    g = p.add_argument_group("what is drawn on top")
    g.add_argument("--changes", action="store_true",
                   help="highlight pages whose class changed since the previous frame")
    g.add_argument("--timeline", action="store_true",
                   help="a strip under the map: the size of each class in use (all but "
                        "free and no flags) over the recording, up to its peak")
    g.add_argument("--timeline-metrics", metavar="NAME[,NAME]",
                   help="fragmentation metrics drawn as lines under the --timeline strip (implies "
                        "it), each in a strip of its own: free_pages, free_hp_blocks, "
                        "compactable_hp_blocks, "
                        "unusable_index, largest_free_run, mixed_blocks, buddy_order_N; of the "
                        "largest zone, or NAME@ZONE (e.g. free_hp_blocks@DMA32); at most 4")
    g.add_argument("--events", action="store_true",
                   help="the kernel's events (a recording made with record --events): each "
                        "page-allocator fallback on its page block, in three colours (stolen: a "
                        "whole free block; claimed: the block changes type; polluting: another "
                        "type's pages in it), fading over 3 frames; the compaction migrate "
                        "(blue) and free (black; white on dark) scanners as bars on their rows, the ranges they "
                        "isolated in the frame outlined; a lane of events per frame under the "
                        "timeline (implies --timeline)")
    g.add_argument("--timeline-events", nargs="?", const="", metavar="NAME[,NAME]",
                   help="ticks under the timeline where these /proc/vmstat counters rose, as "
                        "tall as the rise (implies --timeline); without names: compact_stall, "
                        "compact_fail, thp_fault_fallback, htlb_buddy_alloc_fail, allocstall "
                        "(all zones), oom_kill")
    g.add_argument("--metric-scale", choices=METRIC_SCALES, default=None,
                   help="zero: each --timeline-metrics strip from 0 to the metric's peak, so a "
                        "2%% change moves its line 2%% of the height (default); range: from "
                        "its lowest to its highest value, to magnify small changes")
    g.add_argument("--color-by", choices=("cgroup",), default=None,
                   help="cgroup: colour pages by memory cgroup instead of page class: the "
                        "--top N cgroups with most pages, the rest 'other', pages with no "
                        "cgroup 'none/free' (needs a recording made with --cgroups)")
    g.add_argument("--top", type=int, default=8, metavar="N",
                   help="with --color-by cgroup: how many cgroups get a colour (default 8, "
                        f"at most {CgroupScheme.TOP_MAX})")
    g.add_argument("--highlight", choices=("workload",), default=None,
                   help="workload: the pages the recorded command's processes map in full "
                        "colour, every other page dimmed, their resident size in the legend "
                        "(needs a recording made with --track-workload)")
    t = p.add_argument_group("time")
    t.add_argument("--fps", type=float, default=10.0, help="video frames per second "
                   "(default 10; GIF delays are in 1/100 s, so 10, 20, 25, 50 play true)")
    t.add_argument("--speed", type=float, metavar="X",
                   help="recording seconds per video second (frames are repeated or "
                        "skipped to keep time); default: one video frame per tick of the "
                        "recording's interval, faster or slower so the video lasts 10-60 s")
    t.add_argument("--start", metavar="POS", help="first frame: a frame number, or a time "
                   "with a unit (30s, 2m)")
    t.add_argument("--end", metavar="POS", help="last frame (included), as --start")
    t.add_argument("--every", type=int, metavar="N", help="use every Nth frame, each shown "
                   "once (--every 1: every frame once, however far apart they were taken); "
                   "with --speed: every Nth frame, timed at that speed")
    t.add_argument("--hold", type=float, default=0.0, metavar="S",
                   help="hold the last frame S seconds")
    t.add_argument("--frame", metavar="N", help="for .png: which frame (default -1, the last)")
    e = p.add_argument_group("encoding")
    e.add_argument("--crf", type=int, default=DEFAULT_CRF,
                   help=f"MP4 quality, lower is better (default {DEFAULT_CRF})")
    e.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="draw the frames in N processes (each needs about the memory of one) "
                        "into one encoder: the same output, faster on big maps (default 1; one "
                        "process still draws .png, .html, --view churn/age and two runs)")
    e.add_argument("--preset", default=DEFAULT_PRESET,
                   choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                            "slow"), help=f"x264 preset (default {DEFAULT_PRESET})")


class _Progress(LiveDisplay):
    """A rich progress bar on stderr (frames/s and ETA), only on a terminal."""

    def __init__(self, enabled: bool, label: str):
        self.label, self.task, self.t0 = label, None, time.perf_counter()
        super().__init__(enabled)

    def make(self, console):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        return Progress(TextColumn("[bold]rendering[/] " + self.label), BarColumn(),
                        MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                        TimeRemainingColumn(), console=console, auto_refresh=False)

    def __rich__(self):
        return self.live.get_renderable()

    def __call__(self, done: int, total: int) -> None:
        if not self.live:
            return
        if self.task is None:
            self.task = self.live.add_task("render", total=total, rate="")
        dt = time.perf_counter() - self.t0
        self.live.update(self.task, completed=done, rate=f"{done / dt:.1f} frames/s" if dt else "")


def run(args: argparse.Namespace) -> int:
    out = args.output
    if len(args.recording) > 2:
        raise PvrecError(f"render draws one recording, or two side by side "
                         f"(RUN_A RUN_B); not {len(args.recording)}")
    runs = args.recording if len(args.recording) > 1 else args.recording[0]
    label = " + ".join(Path(r).name for r in args.recording)
    options = RenderOptions.from_args(args)
    with _Progress(not args.quiet, label) as prog:
        summary = render_recording(runs, out, options, progress=prog, warn=warn)
    say(summary.line())
    if summary.poster is not None:
        say(f"poster {summary.poster} (frame {summary.poster_frame}, the most memory in use); "
            f"to put the video in a web page:")
        quote(summary.html or "")
    return 0
