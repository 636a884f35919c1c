"""`pvrec render`, `pvrec snapshot` and `pvrec classes`: recordings (or live memory) to pictures.

One drawing path for all three: a Source gives frames as runs, the scheme classifies the run
values, the layout turns class runs into pixels, the Picture adds legend and header, an Encoder
streams the result. `render_recording()` is the entry point for other code (`pvrec demo`):

    from pvrec.render.pipeline import render_recording
    summary = render_recording("pvrec-make-x/", "make.mp4", classes="default", changes=True)

It raises PvrecError for bad input, prints nothing unless given `progress`/`warn` callbacks,
and returns a RenderSummary (path, size, frames, duration, dimensions, elapsed).
"""

from __future__ import annotations

import math
import os
import re
import shlex
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pvrec import classes as classify
from pvrec import messages
from pvrec.classes import Scheme, ValueClassifier, make_scheme
from pvrec.errors import PvrecError
from pvrec.recording.reader import Frame, RecordingWarning
from pvrec.render.compose import FIT_DEFAULT, MARGIN, Options, Picture, choose_layout
from pvrec.render.encode import DEFAULT_CRF, DEFAULT_PRESET, Cancelled, make_encoder, output_kind
from pvrec.render.raster import MapLayout
from pvrec.runs import Runs
from pvrec.sources import RecordingSource, Source
from pvrec.units import format_bytes, format_duration

# ------------------------------------------------------------------------- frame choice

_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|min|h)\s*$|^\s*([0-9]*\.[0-9]+)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_position(text: str | int | float | None, times: list[float], what: str,
                   end: bool = False) -> int | None:
    """A frame number (12, -1) or a time (12s, 1.5m, or 12.0: a decimal point means seconds)
    -> position."""
    if text is None:
        return None
    n = len(times)
    if isinstance(text, int) or (isinstance(text, str) and re.fullmatch(r"\s*-?\d+\s*", text)):
        i = int(text)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise PvrecError(f"{what} {text}: frame number out of range; the recording has "
                             f"{n} frames (0..{n - 1}, or -1 for the last)")
        return j
    m = _TIME.match(str(text)) if isinstance(text, str) else None
    if isinstance(text, float):
        seconds = text
    elif m and m.group(3):
        seconds = float(m.group(3))
    elif m:
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise PvrecError(f"{what} {text!r}: give a frame number (12, -1) or a time (12s, "
                         f"1.5m, 12.0)")
    t0 = times[0]
    if end:
        pos = int(np.searchsorted(times, t0 + seconds + 1e-9, "right")) - 1
        return max(pos, 0)
    pos = int(np.searchsorted(times, t0 + seconds - 1e-9, "left"))
    if pos >= n:
        raise PvrecError(f"{what} {text}: the recording is only "
                         f"{format_duration(times[-1] - t0)} long")
    return pos


def frame_plan(times: list[float], start: int, end: int, every: int, fps: float,
               speed: float | None, hold: float) -> list[tuple[int, int]]:
    """[(position, times shown)] in order: each frame once, or timed by --speed; then --hold."""
    chosen = list(range(start, end + 1, every))
    if speed is None:
        plan = [(p, 1) for p in chosen]
    else:
        ts = np.array([times[p] for p in chosen])
        span = ts[-1] - ts[0]
        count = int(math.floor(span / speed * fps + 1e-9)) + 1
        targets = ts[0] + np.arange(count) * speed / fps
        idx = np.searchsorted(ts, targets + 1e-9, "right") - 1
        plan = []
        for i in idx:
            p = chosen[int(i)]
            if plan and plan[-1][0] == p:
                plan[-1] = (p, plan[-1][1] + 1)
            else:
                plan.append((p, 1))
    extra = int(round(hold * fps))
    if extra and plan:
        plan[-1] = (plan[-1][0], plan[-1][1] + extra)
    return plan


# --------------------------------------------------------------------------- rendering


@dataclass
class RenderSummary:
    """What a render wrote."""

    path: Path
    kind: str
    frames: int  # frames in the output (with repeats)
    rendered: int  # distinct frames drawn
    fps: float
    width: int
    height: int
    bytes: int
    elapsed: float
    pages_per_pixel: int = 1
    scale: int = 1
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps else 0.0

    def line(self) -> str:
        """The one-line summary the command prints."""
        what = f"{self.frames} frame{'s' if self.frames != 1 else ''}"
        if self.kind in ("mp4", "gif", "webp"):
            what += f", {self.duration:.1f} s at {self.fps:g} fps"
        speed = f" ({self.rendered / self.elapsed:.1f} frames/s)" if self.elapsed > 0 and \
            self.rendered > 1 else ""
        target = f"{self.path}/" if self.kind == "dir" else str(self.path)
        return (f"wrote {target} ({format_bytes(self.bytes)}, {what}, {self.width}x{self.height}"
                f", {self.pages_per_pixel} page{'s' if self.pages_per_pixel > 1 else ''}"
                f"/pixel) in {self.elapsed:.1f} s{speed}")


class _Interrupt:
    """SIGINT/SIGTERM set a flag (the encoder then closes normally and the temp file goes);
    a second signal raises KeyboardInterrupt at once. Main thread only."""

    def __init__(self):
        self.hit = False
        self.signum = signal.SIGINT
        self._old: dict[int, object] = {}

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit, self.signum = True, signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]


def _keep_heap() -> None:
    """Ask glibc to serve big arrays from the heap and keep it between frames.

    Every frame allocates a few dozen temporaries of 0.1-3 MB; by default each is a fresh
    mmap that faults in page by page and is unmapped again: ~1,300 page faults and 2-3 ms of
    kernel time per 24 GiB frame. Reused heap memory costs none (measured: 106 faults/frame).
    Process-wide and harmless elsewhere; ignored where there is no glibc."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-2, 64 << 20)  # M_TOP_PAD
    except (OSError, AttributeError):
        pass


def _check_output(out: Path, kind: str, force: bool) -> None:
    if kind == "dir":
        if not force and any(out.glob("frame-*.png")):
            raise PvrecError(f"{out}/ already holds frame-*.png files (use --force to "
                             f"overwrite them)")
        return
    parent = out.parent
    if not parent.is_dir():
        raise PvrecError(f"output directory {parent} does not exist")
    if out.exists() and not force:
        raise PvrecError(f"{out} already exists (use --force to overwrite it)")
    if not os.access(parent, os.W_OK):
        raise PvrecError(f"cannot write to {parent}/: permission denied")


def _ram_header(header: dict) -> dict:
    """The header with pfn_count checked; ram_ranges [] (unknown) means all RAM."""
    h = dict(header)
    if not h.get("ram_ranges"):
        h.pop("ram_ranges", None)
    return h


def _fit_data_scheme(scheme: Scheme, ranges: list[tuple[Source, int, int]]) -> None:
    """Show a data-driven scheme (--classes flags) up to 32 frames spread over each range."""
    if not scheme.needs_data:
        return

    def frames():
        for source, start, end in ranges:
            keys = [p for p in source.key_positions() if start <= p <= end]
            if len(keys) > 32:
                keys = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, 32)]
            for p in sorted(set(keys) | {start, end}):
                r = source.read_runs(p)
                yield r.values, r.lengths

    classify.fit_scheme(scheme, frames())


def _check_options(kind: str, fps: float, speed: float | None, every: int, hold: float,
                   scale: int | None, crf: int, frame: str | int | None) -> None:
    if not (isinstance(fps, int | float) and 0 < fps <= 240 and math.isfinite(fps)):
        raise PvrecError(f"--fps must be between 0 and 240, not {fps}")
    if speed is not None and not (speed > 0 and math.isfinite(speed)):
        raise PvrecError(f"--speed must be greater than zero, not {speed}")
    if every < 1:
        raise PvrecError(f"--every must be at least 1, not {every}")
    if hold < 0 or not math.isfinite(hold):
        raise PvrecError(f"--hold must be zero or more seconds, not {hold}")
    if scale is not None and not 1 <= scale <= 16:
        raise PvrecError(f"--scale must be a whole number from 1 to 16, not {scale}")
    if not 0 <= crf <= 51:
        raise PvrecError(f"--crf must be between 0 and 51, not {crf}")
    if kind != "png" and frame is not None:
        raise PvrecError("--frame picks the one picture of a .png output; for a video "
                         "use --start/--end")


def _check_same_size(a: Source, b: Source) -> None:
    """Two runs side by side: one pixel must be the same memory in both."""
    ha, hb = _ram_header(a.header), _ram_header(b.header)
    ra, rb = MapLayout.build(ha).ram_pages, MapLayout.build(hb).ram_pages
    psa, psb = ha.get("page_size", 4096), hb.get("page_size", 4096)
    if ha["pfn_count"] != hb["pfn_count"] or ra != rb or psa != psb:
        def size(h: dict, ram: int, ps: int) -> str:
            return (f"{format_bytes(ram * ps)} of RAM in {h['pfn_count']:,} page frames "
                    f"of {ps // 1024} KiB")

        raise PvrecError(f"{a.name} has {size(ha, ra, psa)}, {b.name} {size(hb, rb, psb)}: "
                         f"side by side needs two recordings of machines with the same memory "
                         f"size, so that both maps draw the same pages in the same places")


def _pair_title(source: Source) -> str:
    cmd = source.header.get("command")
    if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
        return f"{source.name}: {shlex.join(cmd)}"
    return source.name


class _Side:
    """One map of the output (two with runs side by side): its source, layout and picture,
    reading its frames forward and drawing the one asked for."""

    def __init__(self, source: Source, lay: MapLayout, pic: Picture,
                 classifier: ValueClassifier, n_cls: int, changes: bool,
                 highlight: str | None = None, channel: str = "flags"):
        self.source, self.lay, self.pic = source, lay, pic
        self.classifier, self.n_cls, self.changes = classifier, n_cls, changes
        self.highlight, self.channel = highlight, channel
        # read every channel, not just the flags
        self.frames = highlight is not None or channel != "flags"
        self.prev = None  # class runs of the frame drawn last (for --changes)
        self.drawn = -1  # position drawn last
        self.canvas: np.ndarray | None = None
        self._it: Iterator | None = None
        self._pending: tuple | None = None
        self._current: tuple | None = None
        self._held: tuple | None = None

    def start(self, first: int, last: int, step: int, before: int | None) -> None:
        """Read positions first..last (every `step`); `before`: the frame --changes compares
        the first one with."""
        if self.changes and before is not None and before >= 0:
            r = getattr(self.source.read_frame(before), self.channel)
            self.prev = self.lay.class_runs(self.classifier(r.values), r.lengths)
        self._it = (self.source.iter_frames if self.frames else self.source.iter_runs)(
            first, last + 1, step)
        self._pending = next(self._it, None)

    def get(self, pos: int) -> tuple[int, float, Runs | Frame] | None:
        """The last readable frame at or before pos (damaged ones are skipped)."""
        while self._pending is not None and self._pending[0] <= pos:
            self._current = self._pending
            self._pending = next(self._it, None)  # type: ignore[arg-type]
        return self._current

    def draw(self, item: tuple[int, float, Runs | Frame]) -> np.ndarray:
        """The side's picture of a frame (drawn again only when it is another frame)."""
        pos, t, data = item
        lay = self.lay
        if pos == self.drawn:
            if self._held is not None:  # held: nothing changes any more
                px, pages, hl = self._held
                self._held = None
                self.canvas = self.pic.frame(px, t=t, index=pos, pages=pages, highlight=hl,
                                             changed=(np.zeros(px.size, dtype=bool), 0))
            return self.canvas  # type: ignore[return-value]
        hl = None
        if isinstance(data, Frame):
            runs = getattr(data, self.channel)
            if self.highlight == "workload":
                hl = workload_blocks(data.workload, lay.ppp, lay.blocks)
        else:
            runs = data
        cruns = lay.class_runs(self.classifier(runs.values), runs.lengths)
        px = lay.pixel_classes(cruns)
        pages = lay.class_pages(cruns, self.n_cls)
        changed = None
        if self.changes:
            changed = lay.changed_blocks(self.prev, cruns) if self.prev is not None else \
                (np.zeros(px.size, dtype=bool), 0)
            self.prev = cruns
            self._held = (px, pages, hl) if changed[1] else None
        self.drawn = pos
        self.canvas = self.pic.frame(px, t=t, index=pos, pages=pages, changed=changed,
                                     highlight=hl)
        return self.canvas


def workload_blocks(workload: Runs | None, k: int, blocks: int) -> tuple[np.ndarray, int]:
    """(bool per pixel of K pages: the workload maps one of them, pages the workload maps)."""
    marks = np.zeros(blocks + 1, dtype=np.int32)
    if workload is None:
        return marks[:-1] > 0, 0
    on = workload.values != 0
    s = workload.starts()[on]
    e = s + workload.lengths[on]
    np.add.at(marks, s // k, 1)
    np.add.at(marks, (e - 1) // k + 1, -1)
    return np.cumsum(marks[:-1]) > 0, int((e - s).sum())


def _cgroup_tally(source: Source, start: int, end: int) -> tuple[dict[int, int], dict[int, str]]:
    """({memcg inode: pages}, {inode: path}) of a recording over up to 32 key frames of the
    range and its ends; names from the header (start) and end.json (end), the later winning."""
    keys = [p for p in source.key_positions() if start <= p <= end]
    if len(keys) > 32:
        keys = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, 32)]
    pages: dict[int, int] = {}
    for p in sorted(set(keys) | {start, end}):
        c = source.read_frame(p).cgroup
        if c is None:
            continue
        uniq, inv = np.unique(c.values, return_inverse=True)
        counts = np.bincount(inv.reshape(-1), weights=c.lengths, minlength=uniq.size)
        for v, n in zip(uniq.tolist(), counts.tolist(), strict=True):
            pages[v] = pages.get(v, 0) + int(n)
    names: dict[int, str] = {}
    end_json = getattr(getattr(source, "rec", None), "end", None) or {}
    for table in (source.header.get("cgroup_names"), end_json.get("cgroup_names")):
        if isinstance(table, dict):
            for k, v in table.items():
                if isinstance(v, str) and str(k).isdigit():
                    names[int(k)] = v
    return pages, names


PAIR_GAP = 12  # pixels between two maps side by side (a thin rule in the middle)


def render_source(source: Source, out_path: str | os.PathLike, *, classes: str | None = None,
                  ignore_flags: str | None = None, theme: str = "light", layout: str = "tiles",
                  width: int | None = None, pages_per_pixel: int | None = None,
                  scale: int | None = None, fit: tuple[int, int] = FIT_DEFAULT,
                  map_only: bool = False, changes: bool = False, timeline: bool = False,
                  fps: float = 10.0, speed: float | None = None, start: str | int | None = None,
                  end: str | int | None = None, every: int = 1, hold: float = 0.0,
                  frame: str | int | None = None, crf: int = DEFAULT_CRF,
                  preset: str = DEFAULT_PRESET, title: str | list[str] | None = None,
                  clock: bool = True, force: bool = True, beside: Source | None = None,
                  highlight: str | None = None, color_by: str | None = None, top: int = 8,
                  timeline_metrics: str | list[str] | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  warn: Callable[[str], None] | None = None) -> RenderSummary:
    """Draw a source's frames into out_path (type from the suffix); see render_recording.

    beside: a second source drawn to the right on the same time axis (elapsed time since each
    one's first frame); the output follows the longer one and the shorter holds its last frame.
    """
    t_begin = time.perf_counter()
    _keep_heap()
    out = Path(out_path)
    kind = output_kind(out)
    _check_output(out, kind, force)
    _check_options(kind, fps, speed, every, hold, scale, crf, frame)
    scheme = make_scheme(classes, ignore_flags)
    sources = [source] if beside is None else [source, beside]
    for s in sources:
        if len(s) == 0:
            raise PvrecError(f"{s.name} has no frames to render")
    if beside is not None:
        _check_same_size(source, beside)
        if map_only:
            raise PvrecError("--map-only draws one bare map; two runs side by side need their "
                             "headers and legends")
    if highlight is not None:
        if highlight != "workload":
            raise PvrecError(f"--highlight {highlight!r}: the one thing to highlight is "
                             f"'workload' (the pages the recorded command maps)")
        if map_only:
            raise PvrecError("--map-only draws each page in its class colour; --highlight "
                             "dims some of them")
        for s in sources:
            if "workload" not in s.channels:
                raise PvrecError(f"{s.name} has no workload pages: record it with "
                                 f"--track-workload (on by default with -- CMD)")
    if color_by is not None:
        if color_by != "cgroup":
            raise PvrecError(f"--color-by {color_by!r}: pages can be coloured by their page "
                             f"class (the default) or by 'cgroup'")
        if classes is not None:
            raise PvrecError("--color-by cgroup colours pages by memory cgroup; --classes "
                             "chooses page classes: give one or the other")
        for s in sources:
            if "cgroup" not in s.channels:
                raise PvrecError(f"{s.name} has no cgroup pages: record it with --cgroups")
    metric_list = None
    if timeline_metrics is not None:
        if map_only:
            raise PvrecError("--map-only draws the map alone; --timeline-metrics draws a "
                             "strip under it")
        metric_list = [parse_timeline_metrics(timeline_metrics, s.header) for s in sources]
        timeline = True
    titles = list(title) if isinstance(title, list | tuple) else [title] * len(sources)
    if len(titles) != len(sources):
        raise PvrecError(f"give one --title per run ({len(sources)}), not {len(titles)}")
    if beside is not None:
        titles = [t or _pair_title(s) for t, s in zip(titles, sources, strict=True)]
    # The run that lasts longer sets the time axis; the other shows its frame of that moment.
    rel = [np.asarray(s.times, dtype=np.float64) - s.times[0] for s in sources]
    m = 0 if len(sources) == 1 or rel[0][-1] >= rel[1][-1] else 1
    times = sources[m].times
    n = len(times)
    if kind == "png":
        if start is not None or end is not None or speed is not None:
            raise PvrecError("a .png output is one frame: choose it with --frame N (or a time "
                             "like --frame 12s), not --start/--end/--speed")
        p = parse_position(-1 if frame is None else frame, times, "--frame")
        first = last = p  # type: ignore[assignment]
    else:
        first = parse_position(start, times, "--start") or 0
        last = parse_position(end, times, "--end", end=True)
        last = n - 1 if last is None else last
        if last < first:
            raise PvrecError(f"--end ({end}) comes before --start ({start}): no frames")
    assert first is not None and last is not None
    plan = frame_plan(times, first, last, every, fps, speed, hold if kind != "png" else 0.0)
    # Each side's position at each planned moment (the master's own position for itself).
    at = []
    for i in range(len(sources)):
        if i == m:
            at.append([p for p, _ in plan])
        else:
            q = np.searchsorted(rel[i], rel[m][[p for p, _ in plan]] + 1e-9, "right") - 1
            at.append([max(0, int(x)) for x in q])
    ranges = [(s, min(a), max(a)) for s, a in zip(sources, at, strict=True)]

    headers = [_ram_header(s.header) for s in sources]
    _fit_data_scheme(scheme, ranges)
    schemes = [scheme] * len(sources)
    if color_by == "cgroup":
        schemes = classify.cgroup_schemes([_cgroup_tally(*r) for r in ranges], top)
        scheme = schemes[0]
    if map_only and (changes or timeline):  # the contract: every pixel is its page's class
        raise PvrecError("--map-only draws the map alone; --changes and --timeline draw on "
                         "top of the picture around it")
    note = None
    if color_by == "cgroup":
        named = len(scheme) - 3  # hole, other, none/free
        note = f"memory cgroups: the {named} with most pages" if named > 1 else \
            "memory cgroup with most pages" if named else "no memory cgroup has pages"
    opts = [Options(theme=theme, map_only=map_only, changes=changes, timeline=timeline,
                    title=t, clock=clock, highlight=highlight, note=note) for t in titles]
    side_fit = fit if len(sources) == 1 else ((fit[0] - PAIR_GAP) // 2, fit[1])
    lays: list[MapLayout] = []
    ram_pages = 0
    for i, header in enumerate(headers):
        probe = MapLayout.build(header, kind=layout, ppp=pages_per_pixel or 1, width=width)
        ram_pages = probe.ram_pages
        k = pages_per_pixel if not lays else lays[0].ppp  # both sides: one K
        if layout == "rows" and k is None:
            lay = probe if map_only else choose_layout(header, schemes[i], opts[i], kind="rows",
                                                       ppp=1, width=width, fit=side_fit,
                                                       ram_pages=ram_pages)
        else:
            lay = choose_layout(header, schemes[i], opts[i], kind=layout, ppp=k, width=width,
                                fit=side_fit, ram_pages=ram_pages)
        lays.append(lay)
    classifiers = [ValueClassifier(sch) for sch in schemes]
    n_cls = len(scheme)
    channel = "cgroup" if color_by == "cgroup" else "flags"
    sides: list[_Side] = []
    tls: list[tuple] = []
    span_end = rel[m][n - 1] if kind == "png" else rel[m][last]
    for i, s in enumerate(sources):
        tl = mt = None
        if timeline:  # a video's strip spans what it shows; a picture's the whole recording
            a, b = (0, len(s) - 1) if kind == "png" else ranges[i][1:]
            ts, tp, tm = _timeline(s, classifiers[i], lays[i], a, b, every if i == m else 1,
                                   n_cls, channel, metric_list[i] if metric_list else None)
            if i != m and len(ts) and ts[-1] - s.times[0] < span_end:
                # the shorter run's strip holds its last sizes up to the end of the longer one
                ts = np.append(ts, s.times[0] + span_end)
                tp, tm = np.vstack((tp, tp[-1:])), np.vstack((tm, tm[-1:]))
            tl = (ts, tp)
            if metric_list:
                mt = ([f"{name} ({zone})" for name, zone in metric_list[i]], tm)
        tls.append((tl, mt))
    if len(tls) > 1 and all(mt is not None and len(mt[1]) for _, mt in tls):
        # two runs: one scale per metric for both, so that the lines compare
        both = np.vstack([mt[1] for _, mt in tls])  # type: ignore[index]
        shared = (both.min(axis=0), both.max(axis=0))
        tls = [(tl, (*mt, shared)) for tl, mt in tls]  # type: ignore[misc]
    for i, s in enumerate(sources):
        tl, mt = tls[i]
        pic = Picture(lays[i], schemes[i], headers[i], opts[i], frame_count=len(s),
                      ram_pages=ram_pages, timeline=tl, metrics=mt)
        sides.append(_Side(s, lays[i], pic, classifiers[i], n_cls, changes, highlight, channel))
    if len(sides) == 1:
        w, h = sides[0].pic.size
        offsets = [0]
    else:
        sizes = [sd.pic.size for sd in sides]
        offsets = [0, sizes[0][0] + PAIR_GAP]
        w = offsets[1] + sizes[1][0]
        h = max(sz[1] for sz in sizes)
        w, h = w + w % 2, h + h % 2
    pal = sides[0].pic.palette
    if scale is None:
        scale = 2 if kind == "mp4" else 1
    if kind == "mp4" and max(w, h) * scale > 4096 and warn:
        warn(f"the video is {w * scale}x{h * scale}: sides above 4096 px need H.264 level 6, "
             f"which some players and browsers refuse; try --pages-per-pixel or --scale 1")
    if kind == "gif" and abs(100 / fps - round(100 / fps)) > 1e-9 and warn:
        warn(f"GIF frame delays are whole 1/100 s: {fps:g} fps plays at "
             f"{100 / max(1, round(100 / fps)):.1f} fps; 10, 20, 25 or 50 play true")
    if kind == "mp4" and scale % 2 and warn:
        warn("an odd --scale in an MP4 lets chroma subsampling blur single pages into their "
             "neighbours' colours; the default 2 keeps them exact")
    enc = make_encoder(out, kind, (w, h), pal.colors, scale=scale, fps=fps, crf=crf,
                       preset=preset, pad_color=pal.bg)
    total = len(plan)
    step = every if speed is None else 1
    for i, sd in enumerate(sides):
        a, b = ranges[i][1:]
        if i == m:
            before = (a - step if a - step >= 0 else a - 1) if a > 0 else None
            sd.start(a, b, step, before)
        else:
            sd.start(a, b, 1, a - 1 if a > 0 else None)
    combined = None
    if len(sides) > 1:
        combined = np.full((h, w), pal.bg, dtype=np.uint8)
        rule = offsets[1] - PAIR_GAP // 2
        combined[MARGIN:h - MARGIN, rule:rule + 1] = pal.frame

    rendered = 0
    with _Interrupt() as interrupt:
        try:
            for k, (pos, reps) in enumerate(plan):
                if interrupt.hit:
                    break
                got = [sd.get(a[k]) for sd, a in zip(sides, at, strict=True)]
                if got[m] is None or got[m][0] != pos:
                    continue  # a damaged frame of the run that sets the time: skipped
                if combined is None:
                    picture = sides[0].draw(got[0])  # type: ignore[arg-type]
                else:
                    for sd, item, x0 in zip(sides, got, offsets, strict=True):
                        img = sd.draw(item) if item is not None else sd.pic.static
                        combined[:img.shape[0], x0:x0 + img.shape[1]] = img
                    picture = combined
                enc.write(picture)
                if reps > 1:
                    enc.repeat(reps - 1)
                rendered += 1
                if progress:
                    progress(rendered, total)
            if interrupt.hit:
                raise PvrecError(f"interrupted; {out} was not written",
                                 exit_code=128 + int(interrupt.signum))
            if rendered == 0:
                raise PvrecError(f"{sources[m].name}: no frame in the chosen range could be "
                                 f"read")
            try:
                enc.close(cancelled=lambda: interrupt.hit)
            except Cancelled:
                raise PvrecError(f"interrupted; {out} was not written",
                                 exit_code=128 + int(interrupt.signum)) from None
        except BaseException:
            enc.abort()
            raise
    out_w, out_h = getattr(enc, "enc_size", enc.out_size)
    return RenderSummary(out, kind, enc.frames, rendered, fps, out_w, out_h, _size_of(out, enc),
                         time.perf_counter() - t_begin, lays[0].ppp, scale)


def _size_of(out: Path, enc) -> int:
    if enc.kind == "dir":
        return sum(p.stat().st_size for p in getattr(enc, "written", []) if p.exists())
    return out.stat().st_size if out.exists() else 0


def _timeline(source: Source, classifier: ValueClassifier, lay: MapLayout, first: int,
              last: int, every: int, n_cls: int, channel: str = "flags",
              metrics: list[tuple[str, str]] | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pages per class of every frame in the range (one pass over the runs, no pixels), and
    the values of the (metric, zone) pairs asked for."""
    from pvrec.metrics import frame_metrics

    ts, rows, mrows = [], [], []
    if channel == "flags" and not metrics:
        frames = ((p, t, Frame(r)) for p, t, r in source.iter_runs(first, last + 1, every))
    else:
        frames = source.iter_frames(first, last + 1, every)
    header = source.header
    for _pos, t, frame in frames:
        runs = getattr(frame, channel)
        ts.append(t)
        rows.append(lay.class_pages(lay.class_runs(classifier(runs.values), runs.lengths),
                                    n_cls))
        if metrics:
            fm = frame_metrics(frame.flags, header)
            mrows.append([float(fm[zone][name]) for name, zone in metrics])
    values = np.array(mrows, dtype=np.float64).reshape(-1, len(metrics)) if metrics else \
        np.zeros((len(ts), 0))
    return (np.array(ts, dtype=np.float64), np.array(rows, dtype=np.int64).reshape(-1, n_cls),
            values)


def parse_timeline_metrics(spec: str | list[str], header: dict) -> list[tuple[str, str]]:
    """'free_hp_blocks,unusable_index@DMA32' -> [(metric, zone)]; a metric without @ZONE is
    that of the largest zone (Normal on most machines; 'all' for a recording without zones)."""
    from pvrec.metrics import check_metric_names, zones_of

    items = spec if isinstance(spec, list) else [x for x in str(spec).split(",")]
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
        check_metric_names([name])
        zone = zone or largest
        if zone not in names:
            raise PvrecError(f"--timeline-metrics {item}: no zone {zone!r}; the recording's "
                             f"zones are {', '.join(names)}")
        out.append((name, zone))
    return out


def render_recording(rec_path: str | os.PathLike | list | tuple,
                     out_path: str | os.PathLike | None = None, **options) -> RenderSummary:
    """Render a recording to out_path (default: the recording's name + .mp4).

    rec_path may be a list of two recordings: drawn side by side on one time axis (elapsed time
    since each one's first frame), each with its own header and legend, in one set of colours;
    the output lasts as long as the longer run, the shorter holds its last frame. Both must be
    of machines with the same memory size. `title` may then be a list of two titles.

    Options are the keyword forms of `pvrec render`'s flags: classes, ignore_flags, theme,
    layout, width, pages_per_pixel, scale, fit, map_only, changes, timeline, fps, speed, start,
    end, every, hold, frame, crf, preset, title, force (default True here: the caller chose the
    path; the CLI defaults to refusing), progress(done, total) and warn(message) callbacks
    (default: warnings go to stderr as one line each). Damaged frames are skipped with a
    warning; an incomplete recording renders up to its last complete frame.
    """
    warn = options.pop("warn", messages.warn)
    paths = list(rec_path) if isinstance(rec_path, list | tuple) else [rec_path]
    if not 1 <= len(paths) <= 2:
        raise PvrecError(f"render draws one recording, or two side by side; not {len(paths)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordingWarning)
        seen: list[list[str]] = []
        sources = []
        for path in paths:
            source = RecordingSource(path)
            n = len(source)  # validates the frames: warnings for damaged ones
            seen.append([])
            for msg in source.rec.warnings:
                seen[-1].append(msg)
                if warn:
                    warn(msg)
            if not source.complete and n and warn:
                warn(f"{path} has no end.json (still being written, or cut short by a "
                     f"crash): rendering its {n} complete frames")
            sources.append(source)
        if out_path is not None:
            out = Path(out_path)
        elif len(paths) == 1:
            out = Path(str(rec_path).rstrip("/") + ".mp4")
        else:
            a = str(paths[0]).rstrip("/")
            out = Path(a + "-vs-" + Path(str(paths[1]).rstrip("/")).name + ".mp4")
        user_progress = options.pop("progress", None)

        def relay_warnings() -> None:
            for source, done in zip(sources, seen, strict=True):
                for msg in source.rec.warnings[len(done):]:
                    done.append(msg)
                    if warn:
                        warn(msg)

        def progress(done: int, total: int) -> None:
            relay_warnings()  # damaged frames met while streaming
            if user_progress:
                user_progress(done, total)

        summary = render_source(sources[0], out, beside=sources[1] if len(sources) > 1 else None,
                                progress=progress, warn=warn, **options)
        relay_warnings()
        summary.warnings = [m for done in seen for m in done]
        return summary


