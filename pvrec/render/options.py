"""RenderOptions: the flags of `pvrec render` and `pvrec snapshot`, and every check of them.

The commands build one from their arguments and `render_recording(**keywords)` from its
keywords (the names are the flags'). The checks run in the order a render meets them, so the
first problem is the one reported: the output (its type, whether it may be written), the
flags alone (`check`), then what needs the recordings (`check_sources`: frames, memory size,
channels, metric and zone names, one title per run).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, fields
from pathlib import Path

from pvrec.classes_cgroup import CgroupScheme
from pvrec.errors import PvrecError
from pvrec.output import refuse_stdout
from pvrec.recording.header import Header
from pvrec.render.compose import FIT_DEFAULT
from pvrec.render.encoders import DEFAULT_CRF, DEFAULT_PRESET, Encoder, encoder_for
from pvrec.render.raster import DOWNSAMPLE
from pvrec.render.strips import METRIC_SCALES
from pvrec.sources import Source
from pvrec.units import format_bytes

# --size NAME: "blog" is the picture itself (shown at its own width in a 760 px column, one
# picture pixel per CSS pixel; an MP4 is still encoded 2x, sharp on HiDPI screens); the others
# are the output's frames, so the picture is that divided by --scale.
SIZES = {"blog": ((760, 640), False), "1080p": ((1920, 1080), True),
         "4k": ((3840, 2160), True)}


# --view: what a pixel or cell of the map shows: page classes (default), huge-page blocks, or
# each page's history
VIEWS = ("map", "blocks", "churn", "age")
BLOCK_TIMELINE = ["free_hp_blocks", "compactable_hp_blocks"]  # --view blocks --timeline's lines

JOBS_MAX = 64  # --jobs: worker processes drawing the frames (render/parallel.py)
FIT_MIN = 16  # --fit's smallest side, in pixels
BLOG_MAX_SCALE = 3  # a blog picture encoded larger only grows the file: screens are <= 3x


def parse_fit(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """--fit WxH -> (width, height), each side at least FIT_MIN (None: not given)."""
    if text is None or isinstance(text, tuple):
        return text
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise PvrecError(f"--fit must be WIDTHxHEIGHT in pixels such as 1920x1080, not {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if min(w, h) < FIT_MIN:
        raise PvrecError(f"--fit {w}x{h} is too small: each side must be at least {FIT_MIN} "
                         f"pixels")
    return w, h


@dataclass
class RenderOptions:
    """What to draw and how to encode it: `pvrec render`'s flags as keywords."""

    classes: str | None = None
    ignore_flags: str | None = None
    theme: str = "light"
    layout: str = "tiles"
    width: int | None = None
    pages_per_pixel: int | None = None
    scale: int | None = None
    fit: tuple[int, int] | None = None  # None: --size's, else FIT_DEFAULT (see fit_box)
    size: str | None = None
    poster: bool = True
    map_only: bool = False
    changes: bool = False
    timeline: bool = False
    fps: float = 10.0
    speed: float | None = None
    start: str | int | None = None
    end: str | int | None = None
    every: int | None = None  # None: video time follows recording time (plan.default_speed)
    hold: float = 0.0
    frame: str | int | None = None
    crf: int = DEFAULT_CRF
    preset: str = DEFAULT_PRESET
    title: str | list[str] | None = None
    clock: bool = True
    force: bool = True
    highlight: str | None = None
    color_by: str | None = None
    top: int = 8
    timeline_metrics: str | list[str] | None = None
    metric_scale: str | None = None  # zero (None) or range: the metric strips' scales
    downsample: str = "keep"  # K > 1 pixels: keep the pages that fragment, or "mode"
    view: str = "map"  # VIEWS
    region: str | None = None  # --region SPEC (pvrec.region): the part of memory drawn
    collapse: bool = True  # tiles that never change drawn as labelled bands (--no-collapse)
    events: bool = False  # the kernel's events on the map and a lane under the timeline
    timeline_events: str | list[str] | bool | None = None  # vmstat counters ticked on it
    jobs: int = 1  # processes drawing the frames (render/parallel.py)

    def __post_init__(self) -> None:
        self.fit = parse_fit(self.fit)
        from pvrec.render.events import parse_timeline_events

        self.counters = parse_timeline_events(self.timeline_events)
        if self.view not in VIEWS:
            raise PvrecError(f"--view {self.view!r}: use one of {', '.join(VIEWS)}")
        if self.view == "blocks" and self.timeline and self.timeline_metrics is None:
            self.timeline_metrics = list(BLOCK_TIMELINE)
        if self.size is not None and self.size not in SIZES:
            raise PvrecError(f"--size {self.size!r}: use one of {', '.join(SIZES)}")

    @classmethod
    def from_args(cls, args: object, **more) -> RenderOptions:
        """From parsed flags: every field the command has a flag for (the flags' names are the
        fields'), then `more`."""
        given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        return cls(**{**given, **more})

    def check_output(self, out: Path) -> type[Encoder]:
        """The output's type, once it is known that it may be written."""
        refuse_stdout(out)
        encoder = encoder_for(out)
        encoder.check_target(out, self.force)
        return encoder

    def scale_for(self, encoder: type[Encoder]) -> int:
        """--scale, or the output type's default (2 for MP4)."""
        return self.scale if self.scale is not None else encoder.default_scale

    def fit_box(self, encoder: type[Encoder]) -> tuple[int, int] | None:
        """The box the whole picture fits in, before --scale: --fit, --size's, or 1920x1080;
        None for `--map-only --layout rows` without either (one pixel per page: the contract)."""
        if self.fit is not None:
            return self.fit
        if self.size is None:
            return None if self.map_only and self.layout == "rows" else FIT_DEFAULT
        (w, h), output = SIZES[self.size]
        scale = self.scale_for(encoder) if output else 1
        return w // scale, h // scale

    def check(self, encoder: type[Encoder]) -> None:
        """Every check of the flags that needs no recording."""
        if self.size is not None and self.fit is not None:
            raise PvrecError(f"--size {self.size} and --fit {self.fit[0]}x{self.fit[1]} both "
                             f"set the picture's size: give one of them")
        fps, speed, hold, scale = self.fps, self.speed, self.hold, self.scale
        if not (isinstance(fps, int | float) and 0 < fps <= 240 and math.isfinite(fps)):
            raise PvrecError(f"--fps must be above 0 and at most 240 frames per second, "
                             f"not {_shown(fps)}")
        if speed is not None and not (speed > 0 and math.isfinite(speed)):
            raise PvrecError(f"--speed must be greater than zero, not {_shown(speed)}")
        if self.every is not None and self.every < 1:
            raise PvrecError(f"--every must be at least 1, not {self.every}")
        if hold < 0 or not math.isfinite(hold):
            raise PvrecError(f"--hold must be zero or more seconds, not {_shown(hold)}")
        if scale is not None and not 1 <= scale <= 16:
            raise PvrecError(f"--scale must be a whole number from 1 to 16, not {scale}")
        if self.size == "blog" and scale is not None and scale > BLOG_MAX_SCALE:
            raise PvrecError(f"--size blog is shown at the picture's own width (at most 760 px): "
                             f"--scale 1-{BLOG_MAX_SCALE} sharpens it for HiDPI screens, not "
                             f"{scale}")
        if self.downsample not in DOWNSAMPLE:
            raise PvrecError(f"--downsample {self.downsample!r}: use keep (a pixel keeps its "
                             f"unmovable and in-use pages) or mode (its most common class)")
        if self.view in ("churn", "age"):
            drawn = [flag for flag, on in (("--changes", self.changes),
                                           ("--timeline", self.timeline),
                                           ("--timeline-metrics", self.timeline_metrics),
                                           ("--highlight", self.highlight),
                                           ("--color-by", self.color_by)) if on]
            if drawn:
                raise PvrecError(f"--view {self.view} colours pages by their history; "
                                 f"{drawn[0]} is for the map of page classes (--view map)")
        jobs = self.jobs
        if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= JOBS_MAX:
            raise PvrecError(f"--jobs must be 1 to {JOBS_MAX}, not {jobs}")
        if not 0 <= self.crf <= 51:
            raise PvrecError(f"--crf must be between 0 and 51, not {self.crf}")
        if not encoder.picture and self.frame is not None:
            raise PvrecError("--frame picks the one picture of a .png output; for a video "
                             "use --start/--end")
        if encoder.picture and (self.start is not None or self.end is not None
                                or speed is not None):
            raise PvrecError("a .png output is one frame: choose it with --frame N (or a time "
                             "like --frame 12s), not --start/--end/--speed")
        self._check_drawn_on_top()
        if self.view == "blocks":
            _check_block_view(self)
        if self.region is not None and not self.region.strip():
            raise PvrecError("--region needs a spec: 4G-8G, 4G+512M, a zone (Normal), a node "
                             "(node1) or changed")

    def _check_drawn_on_top(self) -> None:
        if self.highlight is not None:
            if self.highlight != "workload":
                raise PvrecError(f"--highlight {self.highlight!r}: the one thing to highlight "
                                 f"is 'workload' (the pages the recorded command maps)")
            if self.map_only:
                raise PvrecError("--map-only draws each page in its class colour; --highlight "
                                 "dims some of them")
        if self.color_by is not None:
            if self.color_by != "cgroup":
                raise PvrecError(f"--color-by {self.color_by!r}: pages can be coloured by "
                                 f"their page class (the default) or by 'cgroup'")
            if self.classes is not None:
                raise PvrecError("--color-by cgroup colours pages by memory cgroup; --classes "
                                 "chooses page classes: give one or the other")
            if not 1 <= self.top <= CgroupScheme.TOP_MAX:
                raise PvrecError(f"--top must be from 1 to {CgroupScheme.TOP_MAX} (one "
                                 f"distinct colour each), not {self.top}")
        if self.timeline_metrics is not None and self.map_only:
            raise PvrecError("--map-only draws the map alone; --timeline-metrics draws a "
                             "strip under it")
        if self.metric_scale is not None:
            if self.metric_scale not in METRIC_SCALES:
                raise PvrecError(f"--metric-scale {self.metric_scale!r}: use zero (each line "
                                 f"from 0 to its peak) or range (lowest to highest value)")
            if self.timeline_metrics is None:
                raise PvrecError("--metric-scale scales the lines of --timeline-metrics: "
                                 "give them too")
        if (self.events or self.counters) and (self.map_only or self.view != "map"):
            flag = "--events" if self.events else "--timeline-events"
            raise PvrecError(f"{flag} draws on the map of pages and under its timeline; it "
                             f"does not go with " + ("--map-only" if self.map_only else
                                                     f"--view {self.view}"))
        if self.map_only and (self.changes or self.timeline):
            # the contract: every pixel is its page's class
            raise PvrecError("--map-only draws the map alone; --changes and --timeline draw "
                             "on top of the picture around it")

    def check_sources(self, sources: list[Source]
                      ) -> tuple[list[str | None], list[list[tuple[str, str]]] | None]:
        """Every check that needs the recordings; (a title per run, the metric lines of each
        run or None)."""
        for s in sources:
            if len(s) == 0:
                raise PvrecError(f"{s.name} has no frames to render")
        if len(sources) > 1:
            _check_same_size(*sources)
            if self.map_only:
                raise PvrecError("--map-only draws one bare map; two runs side by side need "
                                 "their headers and legends")
        for s in sources:
            if self.highlight is not None and "workload" not in s.channels:
                raise PvrecError(f"{s.name} has no workload pages: record it with "
                                 f"--track-workload (on by default with -- CMD)")
        for s in sources:
            if self.color_by is not None and "cgroup" not in s.channels:
                raise PvrecError(f"{s.name} has no cgroup pages: record it with --cgroups")
        for s in sources:
            if self.events and not s.header.unknown.get("events"):
                raise PvrecError(f"{s.name} was recorded without the kernel's events: record "
                                 f"it with pvrec record --events")
        metric_list = None
        if self.timeline_metrics is not None:
            metric_list = [parse_timeline_metrics(self.timeline_metrics, s.header, s.max_order)
                           for s in sources]
            from pvrec.metrics import check_recorded

            for s, pairs in zip(sources, metric_list, strict=True):
                check_recorded([name for name, _ in pairs],
                               (s.context_of(p) for p in range(len(s.times))), s.name)
        title = self.title
        titles = list(title) if isinstance(title, list | tuple) else [title] * len(sources)
        if len(titles) != len(sources):
            raise PvrecError(f"give one --title per run ({len(sources)}), not {len(titles)}")
        if len(sources) > 1:
            titles = [t or _pair_title(s) for t, s in zip(titles, sources, strict=True)]
        return titles, metric_list


def _check_block_view(o: RenderOptions) -> None:
    """--view blocks colours cells by block state: what colours pages has no place in it."""
    for flag, given in (("--classes", o.classes), ("--color-by", o.color_by),
                        ("--highlight", o.highlight), ("--changes", o.changes or None),
                        ("-k", o.pages_per_pixel), ("--region", o.region)):
        if given is not None:
            raise PvrecError(f"--view blocks colours each huge-page block by its state; {flag} "
                             f"is for the page view")


def _shown(value: object) -> str:
    """A number as the user typed it (0, not 0.0)."""
    return f"{value:g}" if isinstance(value, int | float) else repr(value)


def snapshot_output(path: Path) -> Path:
    """`pvrec snapshot -o` names one .png picture."""
    refuse_stdout(path)
    if path.suffix.lower() != ".png":
        raise PvrecError(f"snapshot writes one .png picture, not {path}; for a video of a "
                         f"recording use pvrec render")
    return path


def check_snapshot_frame(source: Source, n: str | None) -> None:
    """RUN@N: N is a frame of the recording (a time is checked when it is parsed)."""
    count = len(source)
    if n is not None and n.lstrip("-").isdigit() and not -count <= int(n) < count:
        raise PvrecError(f"frame {n} is out of range: {source.name} has {count} frames "
                         f"(0..{count - 1})")


def _check_same_size(a: Source, b: Source) -> None:
    """Two runs side by side: one pixel must be the same memory in both."""
    ha, hb = a.header, b.header
    if (ha.pfn_count, ha.ram_pages, ha.page_size) != (hb.pfn_count, hb.ram_pages, hb.page_size):
        def size(h: Header) -> str:
            return (f"{format_bytes(h.ram_pages * h.page_size)} of RAM in {h.pfn_count:,} page "
                    f"frames of {h.page_size // 1024} KiB")

        raise PvrecError(f"{a.name} has {size(ha)}, {b.name} {size(hb)}: "
                         f"side by side needs two recordings of machines with the same memory "
                         f"size, so that both maps draw the same pages in the same places")


def _pair_title(source: Source) -> str:
    cmd = source.header.command
    return f"{source.name}: {shlex.join(cmd)}" if cmd else source.name


def parse_timeline_metrics(spec: str | list[str], header: Header,
                           max_order: int) -> list[tuple[str, str]]:
    """'free_hp_blocks,unusable_index@DMA32' -> [(metric, zone)]; a metric without @ZONE is
    that of the largest zone (Normal on most machines; 'all' for a recording without zones)."""
    from pvrec.metrics import check_metric_names, zones_of

    items = spec if isinstance(spec, list) else str(spec).split(",")
    items = [x.strip() for x in items if x.strip()]
    if not items:
        raise PvrecError("--timeline-metrics needs metric names, e.g. free_hp_blocks,"
                         "unusable_index")
    if len(items) > 4:
        raise PvrecError(f"--timeline-metrics draws at most 4 lines, not {len(items)}")
    zones = zones_of(header)
    names = [z for z, _ in zones]
    largest = max(zones, key=lambda z: sum(e - s for s, e in z[1]))[0]
    out = []
    for item in items:
        name, _, zone = item.partition("@")
        check_metric_names([name], max_order)
        zone = zone or largest
        if zone not in names:
            raise PvrecError(f"--timeline-metrics {item}: no zone {zone!r}; the recording's "
                             f"zones are {', '.join(names)}")
        out.append((name, zone))
    return out
