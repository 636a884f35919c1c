"""One map of the output (two with runs side by side): its source, layout, picture and
classifier, reading the source's frames forward and drawing the one asked for.

After the first, a frame whose changes are known (a delta's Frame.changed) is drawn from the
frame drawn before: only the pixels its changed pages fall in are classified and painted
(REDRAW_CHANGED; tests draw both ways and compare).

A frame is drawn again only when it is another frame: a held frame (the shorter run of a pair,
--hold, a slow --speed) costs nothing after its first drawing, except that --changes must show
no change the second time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pvrec.blocks import BLOCKED
from pvrec.classes import ValueClassifier
from pvrec.recording.reader import Frame
from pvrec.render.blockview import BlockScheme
from pvrec.render.compose import Picture
from pvrec.render.history import History
from pvrec.render.palette import tinted
from pvrec.render.raster import MapLayout, page_ranks
from pvrec.render.strips import idle_classes
from pvrec.runs import (
    Runs,
    add_changes,
    blocks_touched,
    clip_ranges,
    nonzero_ranges,
    slice_ranges,
    spans,
)
from pvrec.sources import Source

REDRAW_CHANGED = True  # False: every frame drawn whole (the benchmark and tests compare both)


class Side:
    """One map of the output (two with runs side by side): its source, layout and picture,
    reading its frames forward and drawing the one asked for."""

    def __init__(self, source: Source, lay: MapLayout, pic: Picture,
                 classifier: ValueClassifier, n_cls: int, changes: bool,
                 highlight: str | None = None, channel: str = "flags",
                 downsample: str = "keep", history: History | None = None):
        self.source, self.lay, self.pic = source, lay, pic
        self.classifier, self.n_cls, self.changes = classifier, n_cls, changes
        self.highlight, self.channel = highlight, channel
        # K > 1 pixels keep the pages that fragment (ranked by their flags; not by cgroup)
        self.keep = downsample == "keep" and channel == "flags" and lay.ppp > 1
        self.history = history  # --view churn/age: fed every frame read, drawn from it
        # read every channel, not just the flags
        self.frames = highlight is not None or channel != "flags"
        self.prev = None  # class runs of the frame drawn last (for --changes)
        self.drawn = -1  # position drawn last
        self.canvas: np.ndarray | None = None
        self._it: Iterator | None = None
        self._pending: tuple | None = None
        self._current: tuple | None = None
        self._held: tuple | None = None
        self.telling = -1  # how much the frame drawn last shows (the poster's is the most)
        self._told = _telling_classes(pic.scheme) if history is None else []
        # Redraw only the pixels whose pages changed (Frame.changed) where each pixel's
        # colour follows from its pages' flags alone: not with --changes (the highlight of
        # the frame before is everywhere), --highlight, another channel, a map overlay or a
        # by-runs scheme (a page's class depends on its neighbours).
        self.redraw = (REDRAW_CHANGED and history is None and not self.frames and not changes
                       and not classifier.scheme.by_runs and not pic.opt.events)
        self._base: tuple | None = None  # the frame drawn last: its runs, their starts, pages
        self._since: tuple[np.ndarray, np.ndarray] | None = None  # pages changed since

    def start(self, first: int, last: int, step: int, before: int | None) -> None:
        """Read positions first..last (every `step`); `before`: the frame --changes compares
        the first one with."""
        if self.changes and before is not None and before >= 0:
            r = getattr(self.source.read_frame(before), self.channel)
            self.prev = self.lay.class_runs(self.classifier(r.values, r.lengths), r.lengths)
        self._it = self.source.iter_frames(first, last + 1, step,
                                           None if self.frames else ("flags",))
        self._pending = next(self._it, None)

    def get(self, pos: int) -> tuple[int, float, Frame] | None:
        """The last readable frame at or before pos (damaged ones are skipped)."""
        while self._pending is not None and self._pending[0] <= pos:
            self._current = self._pending
            frame = self._pending[2]
            if self.history is not None:
                runs = frame.flags
                self.history.add(self.lay.class_runs(self.classifier(runs.values), runs.lengths))
            self._since = add_changes(self._since, frame.changed)  # read, not drawn: add up
            self._pending = next(self._it, None)  # type: ignore[arg-type]
        return self._current

    def draw(self, item: tuple[int, float, Frame]) -> np.ndarray:
        """The side's picture of a frame (drawn again only when it is another frame)."""
        pos, t, data = item
        t -= self.source.times[0]  # since the first frame: as the timeline, info and record say
        lay = self.lay
        if pos == self.drawn:
            if self._held is not None:  # held: nothing changes any more
                px, pages, hl, counts = self._held
                self._held = None
                self.canvas = self.pic.frame(px, t=t, index=pos, pages=pages, highlight=hl,
                                             counts=counts,
                                             changed=(np.zeros(px.size, dtype=bool), 0))
            return self.canvas  # type: ignore[return-value]
        if self.history is not None:
            px = self.history.pixels()
            self.drawn = pos
            self.canvas = self.pic.frame(px, t=t, index=pos, pages=self.history.pages(px))
            self.telling = pos  # a history only grows: the last frame tells most
            return self.canvas
        hl = None
        runs = getattr(data, self.channel)
        if self.highlight == "workload":
            hl = workload_blocks(data.workload, lay.ppp, lay.blocks)
        if self.redraw and self._base is not None and self._since is not None:
            return self._draw_changed(pos, t, runs)
        cruns = lay.class_runs(self.classifier(runs.values, runs.lengths), runs.lengths,
                               page_ranks(runs.values) if self.keep else None)
        counts = self.classifier.scheme.class_counts()  # folios: before another frame's
        px, partly = lay.pixels(cruns)
        px = tinted(self.pic.palette, px, partly, None if hl is None else hl[0])
        pages = lay.class_pages(cruns, self.n_cls)
        changed = None
        if self.changes:
            changed = lay.changed_blocks(self.prev, cruns) if self.prev is not None else \
                (np.zeros(px.size, dtype=bool), 0)
            self.prev = cruns
            self._held = (px, pages, hl, counts) if changed[1] else None
        self.drawn = pos
        # what a poster should show most of: the pages in use (the workload's, highlighted)
        self.telling = hl[1] if hl is not None else int(pages[self._told].sum())
        self.canvas = self.pic.frame(px, t=t, index=pos, pages=pages, changed=changed,
                                     highlight=hl, counts=counts)
        self._drew(runs, pages)
        return self.canvas

    def _drew(self, runs: Runs, pages: np.ndarray, starts: np.ndarray | None = None) -> None:
        """Remember the frame drawn: the next one redraws what changed since."""
        if self.redraw:
            self._base = (runs, runs.starts() if starts is None else starts, pages)
            self._since = (np.zeros(0, np.int64), np.zeros(0, np.int64))

    def _draw_changed(self, pos: int, t: float, runs: Runs) -> np.ndarray:
        """draw() of a frame from the one drawn last: only the pixels whose pages changed
        are classified and painted, and the legend's sizes move by their pages' classes."""
        lay, (before, before_starts, pages) = self.lay, self._base  # type: ignore[misc]
        starts = runs.starts()
        b0, b1 = lay.pixel_ranges(self._since)  # type: ignore[arg-type]
        s, e = b0 * lay.ppp, np.minimum(b1 * lay.ppp, lay.pfn_count)
        ln, values = slice_ranges(runs, s, e, starts)
        cls = self.classifier(values)
        px, partly = lay.pixels(lay.class_runs_in(cls, ln, page_ranks(values) if self.keep
                                                  else None, s, e))
        # Pages outside the changed pixels keep their class: the sizes change by those inside.
        counted = clip_ranges((s, e), lay.window_ram())
        if int((counted[1] - counted[0]).sum()) == int((e - s).sum()):
            now = self._pages_of(cls, ln)  # all of them RAM in the window: counted as classified
        else:
            now = self._pages_in(runs, counted, starts)
        pages = pages + now - self._pages_in(before, counted, before_starts)
        blocks = spans(b0, b1 - b0)
        self.drawn = pos
        self.telling = int(pages[self._told].sum())
        self.canvas = self.pic.frame(None, t=t, index=pos, pages=pages,
                                     update=(blocks, tinted(self.pic.palette, px, partly)))
        self._drew(runs, pages, starts)
        return self.canvas

    def _pages_in(self, runs: Runs, ranges: tuple[np.ndarray, np.ndarray],
                  starts: np.ndarray) -> np.ndarray:
        """Pages per class of the runs in these page ranges (starts: runs.starts())."""
        ln, values = slice_ranges(runs, *ranges, starts)
        return self._pages_of(self.classifier(values), ln)

    def _pages_of(self, cls: np.ndarray, ln: np.ndarray) -> np.ndarray:
        return np.rint(np.bincount(cls, weights=ln, minlength=self.n_cls)).astype(np.int64)


def _telling_classes(scheme) -> list[int]:
    """The classes whose pages say how much a frame shows: the blocked blocks of the block
    view, else the pages in use (all but free and no flags)."""
    if isinstance(scheme, BlockScheme):
        return [BLOCKED]
    idle = idle_classes(scheme)
    return [c for c in range(len(scheme)) if c not in idle]


def workload_blocks(workload: Runs | None, k: int, blocks: int) -> tuple[np.ndarray, int]:
    """(bool per pixel of K pages: the workload maps one of them, pages the workload maps)."""
    if workload is None:
        return np.zeros(blocks, dtype=bool), 0
    s, e = nonzero_ranges(workload)
    return blocks_touched(s, e, k, blocks), int((e - s).sum())


