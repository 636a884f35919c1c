"""`pvrec render` and `pvrec snapshot`'s one drawing path: recordings (or live memory) to pictures.

A Source gives frames as runs, the scheme classifies the run values, the layout turns class
runs into pixels, the Picture adds legend and header, an Encoder streams the result:

    options (options.py) -> plan (plan.py) -> sides (side.py: classes, raster, compose)
        -> encoder (encoders/, chosen by the output's suffix)

`render_recording()` is the entry point for other code (`pvrec demo`):

    from pvrec.render.pipeline import render_recording
    summary = render_recording("pvrec-make-x/", "make.mp4", classes="default", changes=True)

It raises PvrecError for bad input, prints nothing unless given `progress`/`warn` callbacks,
and returns a RenderSummary (path, size, frames, duration, dimensions, elapsed).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pvrec.classes import Scheme, ValueClassifier, make_scheme
from pvrec.classes_cgroup import cgroup_schemes
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.render import parallel
from pvrec.render.blockview import BlockScheme, block_view
from pvrec.render.compose import MARGIN, Options, Picture
from pvrec.render.data import cgroup_tally, fit_data_scheme
from pvrec.render.encoders import ENCODERS, Cancelled, Encoder, PngEncoder, write_png
from pvrec.render.encoders.png import made_by_pvrec
from pvrec.render.events import overlay_for
from pvrec.render.fit import choose_layout
from pvrec.render.history import History, HistoryScheme
from pvrec.render.options import RenderOptions
from pvrec.render.plan import Plan, make_plan
from pvrec.render.prepass import Prepass, prepass
from pvrec.render.raster import MapLayout
from pvrec.render.side import Side
from pvrec.sources import RecordingSource, Source
from pvrec.units import format_bytes

PAIR_GAP = 12  # pixels between two maps side by side (a thin rule in the middle)


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
    poster: Path | None = None  # the picture a <video> shows before it plays
    poster_frame: int = -1  # the recording's frame it shows
    html: str | None = None  # the <video> element to paste into a page
    cell: int = 0  # --view blocks: a block's cell is cell x cell pixels
    jobs: int = 1  # processes that drew the frames (--jobs, where the render can be split)
    worker_rss: list[int] = field(default_factory=list)  # each worker's peak RSS, KiB

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps else 0.0

    def line(self) -> str:
        """The one-line summary the command prints."""
        encoder = ENCODERS[self.kind]
        what = f"{self.frames} frame{'s' if self.frames != 1 else ''}"
        if encoder.video:
            what += f", {self.duration:.1f} s at {self.fps:g} fps"
        speed = ""
        if self.elapsed > 0 and self.rendered > 1:  # the drawing rate: distinct frames drawn
            rate = f"{self.rendered / self.elapsed:.1f}"
            speed = f" ({rate} frames/s" if self.rendered == self.frames else \
                f" ({self.rendered} recording frames drawn, {rate}/s"
            speed += f" by {self.jobs} processes)" if self.jobs > 1 else ")"
        target = encoder.target_name(self.path)
        scale = f"{self.cell}x{self.cell} pixels/block" if self.cell else \
            f"{self.pages_per_pixel} page{'s' if self.pages_per_pixel > 1 else ''}/pixel"
        return (f"wrote {target} ({format_bytes(self.bytes)}, {what}, {self.width}x{self.height}"
                f", {scale}) in {self.elapsed:.1f} s{speed}")


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

    def error(self, out: Path) -> PvrecError:
        """What the render says when a signal stopped it (exit 128 + the signal)."""
        return PvrecError(f"interrupted; {out} was not written",
                          exit_code=128 + int(self.signum))


def render_source(source: Source, out_path: str | os.PathLike,
                  options: RenderOptions | None = None, *, beside: Source | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  warn: Callable[[str], None] | None = None) -> RenderSummary:
    """Draw a source's frames into out_path (type from the suffix); see render_recording.

    beside: a second source drawn to the right on the same time axis (elapsed time since each
    one's first frame); the output follows the longer one and the shorter holds its last frame.
    """
    t_begin = time.perf_counter()
    parallel.keep_heap()
    o = options if options is not None else RenderOptions()
    out = Path(out_path)
    encoder = o.check_output(out)
    o.check(encoder)
    if encoder.from_runs:
        encoder.check_options(o)
    poster = poster_path(out) if o.poster and encoder.html_video else None
    if poster is not None:
        PngEncoder.check_target(poster, o.force)  # the output's --force rule
        if o.force and poster.exists() and not made_by_pvrec(poster):  # not named, not ours
            raise PvrecError(f"{poster} is in the way of the video's poster and does not say "
                             f"pvrec wrote it: move it, or render with --no-poster")
    scheme = BlockScheme() if o.view == "blocks" else make_scheme(o.classes, o.ignore_flags)
    sources = [source] if beside is None else [source, beside]
    titles, metric_list = o.check_sources(sources)
    plan = make_plan([s.times for s in sources], picture=encoder.picture, start=o.start,
                     end=o.end, frame=o.frame, every=o.every, fps=o.fps, speed=o.speed,
                     hold=o.hold, video=encoder.video,
                     intervals=[s.header.interval for s in sources])
    jobs = parallel.jobs_for(o.jobs, o.view, encoder, sources, warn)
    with parallel.pool(jobs, source) as pool:  # None: drawn in this process
        return _render(o, encoder, sources, scheme, plan, titles, metric_list, out, poster,
                       pool, progress, warn, t_begin)


def _render(o: RenderOptions, encoder: type[Encoder], sources: list[Source], scheme: Scheme,
            plan: Plan, titles: list[str | None], metric_list, out: Path, poster: Path | None,
            pool: parallel.Pool | None, progress: Callable[[int, int], None] | None,
            warn: Callable[[str], None] | None, t_begin: float) -> RenderSummary:
    """render_source's drawing and encoding, once the plan is made."""
    sides = _make_sides(o, encoder, sources, scheme, plan, titles, metric_list, pool)
    if encoder.from_runs:  # a page (.html): built from the maps' runs, not from pixels
        size, elapsed, steps, drawn = encoder.build(out, sides, plan, o, metric_list, progress)
        return RenderSummary(out, encoder.kind, steps, drawn, o.fps,
                             *sides[0].pic.size, size, elapsed, sides[0].lay.ppp)
    step = _step(o)
    if pool is None:
        _start_reading(o, sides, plan, encoder.picture)
    combined, offsets, (w, h) = _pair_canvas(sides)
    scale = o.scale_for(encoder)
    if warn:
        for message in encoder.warnings((w, h), scale, o.fps):
            warn(message)
    pal = sides[0].pic.palette
    enc = encoder(out, (w, h), pal.colors, scale=scale, fps=o.fps, crf=o.crf, preset=o.preset,
                  pad_color=pal.bg)
    frames = (lambda stopped: drawn_frames(plan, sides, combined, offsets, stopped)) \
        if pool is None else (lambda stopped: pool.draw(
            sides, plan, step, _first_before(plan.first, step), o.changes, stopped))
    rendered, (telling, telling_at) = _encode(plan, frames, enc, out, sources[plan.master].name,
                                              progress)
    html = None
    if poster is not None:
        write_png(poster, telling, pal.colors, scale)
        html = video_html(out, poster, (w, h))
    out_w, out_h = enc.frame_size
    return RenderSummary(out, enc.kind, enc.frames, rendered, o.fps, out_w, out_h,
                         enc.bytes_written(), time.perf_counter() - t_begin, sides[0].lay.ppp,
                         scale, poster=poster, poster_frame=telling_at, html=html,
                         cell=getattr(sides[0].pic, "cell", 0), jobs=pool.jobs if pool else 1,
                         worker_rss=pool.peak_rss if pool else [])


def told_once(warn: Callable[[str], None]) -> Callable[[str], None]:
    """warn, passing each message on once: the pre-pass and the drawing read the same frames
    (a damaged one is met twice)."""
    told: set[str] = set()

    def once(message: str) -> None:
        if message not in told:
            told.add(message)
            warn(message)
    return once


def poster_path(out: Path) -> Path:
    """build.mp4 -> build.poster.png, beside it."""
    return out.with_name(out.stem + ".poster.png")


def video_html(out: Path, poster: Path, size: tuple[int, int]) -> str:
    """The element to paste: the video at the picture's own size (one picture pixel per CSS
    pixel; the 2x MP4 is then sharp on HiDPI screens), never wider than its column."""
    from html import escape

    return (f'<video src="{escape(out.name)}" poster="{escape(poster.name)}" width="{size[0]}" '
            f'height="{size[1]}" style="max-width:100%;height:auto" autoplay muted loop '
            f'playsinline></video>')


def _make_sides(o: RenderOptions, encoder: type[Encoder], sources: list[Source],
                scheme: Scheme, plan: Plan, titles: list[str | None],
                metric_list: list[list[tuple[str, str]]] | None,
                pool: parallel.Pool | None = None) -> list[Side]:
    """Each run's side: its scheme, layout, picture (with its strips) and classifier."""
    ranges = [(s, a, b) for s, (a, b) in zip(sources, plan.ranges, strict=True)]
    headers = [s.header for s in sources]
    fit_data_scheme(scheme, ranges)
    schemes, note = _schemes(o, scheme, ranges)
    classifiers = [ValueClassifier(sch) for sch in schemes]
    notes = [note] * len(sources)
    if o.view in ("churn", "age"):  # the pictures' classes are bins of each page's history
        spans = [(_history_from(o, encoder, a), b) for _, a, b in ranges]
        schemes = [HistoryScheme(o.view, len(range(a, b + 1, _step(o)))
                                 if i == plan.master and not encoder.picture else b - a + 1)
                   for i, (a, b) in enumerate(spans)]
        notes = [sch.note(a, b) for sch, (a, b) in zip(schemes, spans, strict=True)]
    # --timeline-metrics, --events and --timeline-events imply it
    timeline = o.timeline or metric_list is not None or o.events or o.counters is not None
    # the keep rule ranks pages by their flags: the page map of flag classes only
    keep = o.downsample == "keep" and o.color_by is None and o.view == "map"
    opts = [Options(theme=o.theme, map_only=o.map_only, changes=o.changes, timeline=timeline,
                    title=t, clock=o.clock, highlight=o.highlight, note=nt,
                    partly=keep, events=overlay_for(o, s))
            for t, nt, s in zip(titles, notes, sources, strict=True)]
    metric_lines = len(metric_list[0]) if metric_list else 0
    n_cls = len(schemes[0])
    channel = "cgroup" if o.color_by == "cgroup" else "flags"
    if o.view == "blocks":  # cells of huge-page blocks, drawn as pages of their own header
        sources, lays, picture = block_view(sources, scheme, opts,
                                            _side_box(o, encoder, len(sources)), o.layout,
                                            o.width, metric_lines)
        headers = [s.header for s in sources]
        ram_pages = headers[-1].ram_pages
        strips = prepass(sources, plan, encoder.picture, classifiers, o.every or 1, n_cls,
                         channel, metric_list, o.metric_scale or "zero",
                         timeline=timeline, pool=pool).strips
    else:  # the pre-pass: strips, the region, what collapses (docs/rendering.md)
        found = prepass(sources, plan, encoder.picture, classifiers, o.every or 1, n_cls,
                        channel, metric_list, o.metric_scale or "zero", timeline=timeline,
                        region=o.region, collapse=o.collapse and o.view == "map"
                        and o.layout == "tiles", pool=pool)
        strips = found.strips
        lays = _layouts(o, encoder, headers, schemes, opts, metric_lines, found)
        ram_pages = lays[0].ram_pages
        picture = Picture
    sides = []
    for i, s in enumerate(sources):
        tl, mt = strips[i]
        pic = picture(lays[i], schemes[i], headers[i], opts[i], frame_count=len(s),
                      ram_pages=ram_pages, timeline=tl, metrics=mt)
        history = History(lays[i], schemes[i]) if isinstance(schemes[i], HistoryScheme) \
            else None
        sides.append(Side(s, lays[i], pic, classifiers[i], n_cls, o.changes, o.highlight,
                          channel, "keep" if keep else "mode", history))
    return sides


def _schemes(o: RenderOptions, scheme: Scheme, ranges: list[tuple[Source, int, int]]
             ) -> tuple[list[Scheme], str | None]:
    """The scheme of each side, and the legend's note on what the colours are."""
    if o.color_by != "cgroup":
        return [scheme] * len(ranges), None
    schemes = cgroup_schemes([cgroup_tally(*r) for r in ranges], o.top)
    named = len(schemes[0]) - 3  # hole, other, none/free
    note = f"memory cgroups: the {named} with most pages" if named > 1 else \
        "memory cgroup with most pages" if named else "no memory cgroup has pages"
    return schemes, note


def _layouts(o: RenderOptions, encoder: type[Encoder], headers: list[Header],
             schemes: list[Scheme], opts: list[Options], metric_lines: int, found: Prepass
             ) -> list[MapLayout]:
    """Each side's layout of the region, its unchanging memory in bands (both sides: one K,
    each in half of the box)."""
    fit = _side_box(o, encoder, len(headers))
    lays: list[MapLayout] = []
    window = (found.region.start, found.region.end)
    for i, header in enumerate(headers):
        k = o.pages_per_pixel if not lays else lays[0].ppp  # both sides: one K
        if fit is None:  # --map-only --layout rows: pixel (x, y) is PFN start + y*W + x*K
            lay = MapLayout.build(header, kind="rows", width=o.width, ppp=k or 1, window=window)
        else:
            lay = choose_layout(header, schemes[i], opts[i], kind=o.layout,
                                ppp=1 if o.layout == "rows" and k is None else k,
                                width=o.width, fit=fit, metric_lines=metric_lines,
                                window=window,  # the second side folds where the first did
                                bands=found.bands[i] if not lays or lays[0].bands else None)
        lay.frames_seen = found.frames
        lays.append(lay)
    return lays


def _side_box(o: RenderOptions, encoder: type[Encoder], sides: int) -> tuple[int, int] | None:
    """The box one side's picture fits in: the whole box, or half of it beside another."""
    fit = o.fit_box(encoder)
    if fit is not None and sides > 1:
        fit = ((fit[0] - PAIR_GAP) // 2, fit[1])
    return fit


def _step(o: RenderOptions) -> int:
    """Every how many frames the run that sets the time is read."""
    return (o.every or 1) if o.speed is None else 1


def _history_from(o: RenderOptions, encoder: type[Encoder], first: int) -> int:
    """Where churn and age start counting: a picture's from the recording's first frame, a
    video's from its own."""
    return 0 if encoder.picture else first


def _start_reading(o: RenderOptions, sides: list[Side], plan: Plan,
                   picture: bool = False) -> None:
    """Each side reads its range forward from here (and the frame --changes compares the
    first one with); churn and age of a picture from the first frame."""
    step = _step(o)
    for i, (sd, (a, b)) in enumerate(zip(sides, plan.ranges, strict=True)):
        if sd.history is not None:
            sd.start(0 if picture else a, b, step if i == plan.master and not picture else 1,
                     None)
        elif i == plan.master:
            sd.start(a, b, step, _first_before(a, step))
        else:
            sd.start(a, b, 1, a - 1 if a > 0 else None)


def _first_before(first: int, step: int) -> int | None:
    """The frame --changes compares the first one drawn with (the one `step` before)."""
    return (first - step if first - step >= 0 else first - 1) if first > 0 else None


def _pair_canvas(sides: list[Side]
                 ) -> tuple[np.ndarray | None, list[int], tuple[int, int]]:
    """For two sides, the canvas holding both (the rule between them drawn); each side's x;
    the output's (width, height)."""
    pal = sides[0].pic.palette
    if len(sides) == 1:
        return None, [0], sides[0].pic.size
    sizes = [sd.pic.size for sd in sides]
    offsets = [0, sizes[0][0] + PAIR_GAP]
    w = offsets[1] + sizes[1][0]
    h = max(sz[1] for sz in sizes)
    w, h = w + w % 2, h + h % 2
    combined = np.full((h, w), pal.bg, dtype=np.uint8)
    rule = offsets[1] - PAIR_GAP // 2
    combined[MARGIN:h - MARGIN, rule:rule + 1] = pal.frame
    return combined, offsets, (w, h)


def drawn_frames(plan: Plan, sides: list[Side], combined: np.ndarray | None,
                 offsets: list[int], stopped: Callable[[], bool]
                 ) -> Iterator[tuple[int, np.ndarray, int, object]]:
    """(planned frame, picture, how telling, where it differs from the one before: Picture.
    take_dirty) of each frame drawn in this process (a render worker's: of its chunk); a
    damaged frame of the run that sets the time is skipped."""
    m = plan.master
    for k, (pos, _reps) in enumerate(plan.frames):
        if stopped():
            return
        got = [sd.get(a[k]) for sd, a in zip(sides, plan.at, strict=True)]
        if got[m] is None or got[m][0] != pos:
            continue
        if combined is None:
            picture = sides[0].draw(got[0])  # type: ignore[arg-type]
        else:
            for sd, item, x0 in zip(sides, got, offsets, strict=True):
                img = sd.draw(item) if item is not None else sd.pic.static
                combined[:img.shape[0], x0:x0 + img.shape[1]] = img
            picture = combined
        # One take_dirty per picture: what changed since the one drawn before, which the
        # encoder's buffer holds (two sides: the combined canvas, all of it).
        dirty = [sd.pic.take_dirty() for sd in sides]
        yield k, picture, sides[m].telling, dirty[0] if combined is None else None


def _encode(plan: Plan, frames: Callable[[Callable[[], bool]], Iterator], enc: Encoder,
            out: Path, name: str, progress: Callable[[int, int], None] | None
            ) -> tuple[int, tuple[np.ndarray, int]]:
    """Send the frames drawn (frames(stopped): in plan order), then close the encoder (abort it
    on any error or signal); the number of distinct frames drawn, and the most telling picture
    (the poster's: the one where the run that sets the time has the most pages in use, or of
    the workload's with --highlight workload; the first of equals)."""
    total, rendered = len(plan.frames), 0
    picture = np.zeros((1, 1), np.uint8)
    telling, best, at = None, -1, -1
    with _Interrupt() as interrupt:
        try:
            for k, picture, told, dirty in frames(lambda: interrupt.hit):
                pos, reps = plan.frames[k]
                enc.write(picture, dirty)
                if told > best:
                    telling, best, at = picture.copy(), told, pos
                if reps > 1:
                    enc.repeat(reps - 1)
                rendered += 1
                if progress:
                    progress(rendered, total)
            if interrupt.hit:
                raise interrupt.error(out)
            if rendered == 0:
                raise PvrecError(f"{name}: no frame in the chosen range could be read")
            try:
                enc.close(cancelled=lambda: interrupt.hit)
            except Cancelled:
                raise interrupt.error(out) from None
        except BaseException:
            enc.abort()
            raise
    return rendered, (telling, at) if telling is not None else (picture, -1)


def render_recording(rec_path: str | os.PathLike | list | tuple,
                     out_path: str | os.PathLike | None = None,
                     options: RenderOptions | None = None, **keywords) -> RenderSummary:
    """Render a recording to out_path (default: the recording's name + .mp4).

    rec_path may be a list of two recordings: drawn side by side on one time axis (elapsed time
    since each one's first frame), each with its own header and legend, in one set of colours;
    the output lasts as long as the longer run, the shorter holds its last frame. Both must be
    of machines with the same memory size. `title` may then be a list of two titles.

    Options are the keyword forms of `pvrec render`'s flags: classes, ignore_flags, theme,
    layout, width, pages_per_pixel, scale, fit, map_only, changes, timeline, fps, speed, start,
    end, every, hold, frame, crf, preset, title, downsample, view, force (default True here: the caller chose the
    path; the CLI defaults to refusing), highlight, color_by, top, timeline_metrics, metric_scale (or a
    RenderOptions, which the keywords then amend), progress(done, total) and warn(message)
    callbacks (default: none; the warnings met are in the summary's `warnings`). Damaged frames are skipped
    with a warning; an incomplete recording renders up to its last complete frame. jobs=N draws
    in N spawned processes (parallel.py): a script calling it needs `if __name__ == "__main__":`.
    """
    warn = keywords.pop("warn", None)
    paths = list(rec_path) if isinstance(rec_path, list | tuple) else [rec_path]
    if not 1 <= len(paths) <= 2:
        raise PvrecError(f"render draws one recording, or two side by side; not {len(paths)}")
    met: list[str] = []  # the recordings' warnings, told as they are found

    def tell(message: str) -> None:
        met.append(message)
        if warn:
            warn(message)

    on_warning = told_once(tell)

    sources = []
    for path in paths:
        source = RecordingSource(path, on_warning)  # its damaged frames are found here
        n = len(source)
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
    progress = keywords.pop("progress", None)
    opts = RenderOptions(**keywords) if options is None else \
        dataclasses.replace(options, **keywords)
    summary = render_source(sources[0], out, opts,
                            beside=sources[1] if len(sources) > 1 else None,
                            progress=progress, warn=warn)
    summary.warnings = met
    return summary
