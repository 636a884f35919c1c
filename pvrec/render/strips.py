"""The strips under the map (--timeline), each with its scale written on it.

The class strip stacks the classes in use (every class but the hole and the pages that hold
nothing: free and no flags) from the bottom, in legend order read downwards, on a scale whose
top is the peak in-use size of the rendered frames; the space above the stack is the rest of
RAM. Under it, one strip per --timeline-metrics line, from zero to the metric's peak (or its
range, --metric-scale range), one scale for both runs of a pair (metric_scales). Each strip
has its bottom and top values at its left, with units. Drawn once, into the static canvas; a
frame only moves the cursor (Strips.cursor).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pvrec import flags as F
from pvrec.classes import HOLE, RuleScheme, Scheme
from pvrec.classes_cgroup import CgroupScheme
from pvrec.render.palette import Palette
from pvrec.render.text import F_LABEL, Text, format_time

TIMELINE_H = 64  # the class strip
METRIC_H = 32  # one metric's strip (taller when the text is: two labels must fit)
GAP = 4  # above each metric's name line
TICK = 3  # the scale's tick marks, left of a strip
METRIC_SCALES = ("zero", "range")
_MEASURE = Text()  # heights only, when the picture's own Text is not given

# --timeline-metrics: what each metric counts (docs/metrics.md); the others are ratios
_COUNTS = {"free_pages": "pages", "free_hp_blocks": "blocks", "mixed_blocks": None,
           "compactable_hp_blocks": "blocks",
           "unusable_index": None, "largest_free_run": "size"}


def _heights(text: Text | None) -> tuple[int, int]:
    """(a label line, a metric's strip) in pixels."""
    lh = (text or _MEASURE).height(F_LABEL)
    return lh, max(METRIC_H, 2 * lh + 2)


def strips_height(metrics: int, text: Text | None = None) -> int:
    """Pixels from the top of the class strip to the bottom of the last metric's strip."""
    lh, mh = _heights(text)
    return TIMELINE_H + lh + 2 + metrics * (GAP + lh + mh) + 4  # + the last label's foot


def idle_classes(scheme: Scheme) -> tuple[int, ...]:
    """The classes of pages that hold nothing: those a free (buddy) page and a page with no
    flags get by a rule of their own (not a catch-all 'other', which holds pages in use too);
    with --color-by cgroup, pages charged to no cgroup."""
    if isinstance(scheme, CgroupScheme):
        return (scheme.none,)
    values = np.array([0, F.bit(F.BUDDY)], dtype=np.uint64)
    out = set()
    for i, c in enumerate(int(c) for c in scheme.classify_values(values)):
        if isinstance(scheme, RuleScheme):
            own = any(F.match_bits(values[i:i + 1], m, b)[0] for m, b in scheme.rules[c])
        else:  # the flags scheme: a state of its own, or its last class, "other"
            own = c != len(scheme) - 1
        if own and c != HOLE:
            out.add(c)
    return tuple(sorted(out))


def metric_scales(values: Sequence[np.ndarray], mode: str = "zero"
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(bottoms, tops) of each metric's strip over the values of one or two runs (frames x
    metrics): zero to the peak, or the lowest to the highest value (mode 'range')."""
    both = np.vstack([np.asarray(v, np.float64) for v in values])
    if not both.size:
        n = both.shape[1]
        return np.zeros(n), np.ones(n)
    lo, hi = np.nanmin(both, axis=0), np.nanmax(both, axis=0)
    if mode == "zero":
        lo = np.minimum(lo, 0.0)
        hi = np.where(hi > lo, hi, lo + 1)  # all zero: a line on the floor of a 0..1 scale
    return np.nan_to_num(lo), np.nan_to_num(hi)


def _count(v: float) -> str:
    """1,483 / 12.3k / 1.10M: a count short enough for the left of a strip."""
    if abs(v) < 10_000:
        return f"{v:,.0f}" if v == int(v) else f"{v:.3g}"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"  # not reached


def size_labels(lo: float, hi: float) -> tuple[str, str]:
    """Bottom and top of a scale in bytes, in the top's unit: ('0 GiB', '8.4 GiB')."""
    unit, div = next(((u, d) for u, d in (("TiB", 1 << 40), ("GiB", 1 << 30),
                                          ("MiB", 1 << 20)) if hi >= d), ("KiB", 1 << 10))

    def one(v: float) -> str:
        x = v / div
        return "0" if x == 0 else f"{x:.1f}" if abs(x) < 100 else f"{x:,.0f}"

    return f"{one(lo)} {unit}", f"{one(hi)} {unit}"


def scale_labels(metric: str, lo: float, hi: float, page_size: int) -> tuple[str, str]:
    """Bottom and top of a metric's strip, with its unit: ('0 blocks', '1,483 blocks'),
    ('0', '0.111') for a ratio, a size for largest_free_run."""
    unit = _COUNTS.get(metric, "blocks" if metric.startswith("buddy_order_") else "")
    if unit == "size":
        return size_labels(lo * page_size, hi * page_size)
    if unit is None:  # a ratio, 0..1
        return f"{lo:.3g}", f"{hi:.3g}"
    return tuple(f"{_count(v)} {unit}".rstrip() for v in (lo, hi))  # type: ignore[return-value]


class Strips:
    """The strips of one picture: the class strip, the metric strips, their scales.

    timeline: (t per frame, pages per class per frame); metrics: (labels 'name (zone)', values
    per frame x metric[, (bottoms, tops)]), zero-based when no scale is given."""

    def __init__(self, timeline: tuple[np.ndarray, np.ndarray], metrics: tuple | None,
                 names: Sequence[str], idle: Sequence[int], page_size: int, text: Text):
        self.times, self.pages = np.asarray(timeline[0]), np.asarray(timeline[1])
        self.text, self.page_size = text, page_size
        n = self.pages.shape[1] if self.pages.ndim == 2 else len(names)
        # bottom of the stack first: the legend's order read from the bottom up
        self.used = [c for c in range(n - 1, -1, -1) if c != HOLE and c not in idle]
        inuse = self.pages[:, self.used].sum(axis=1) if len(self.times) else np.zeros(1)
        self.peak = max(int(inuse.max(initial=0)), 1)
        self.class_scale = size_labels(0, self.peak * page_size)
        idle_names = [names[c] for c in idle if c < len(names)]
        self.note = f"in use: all but {', '.join(idle_names)}" if idle_names else "all classes"
        self.metric_labels: list[str] = []
        self.values = np.zeros((len(self.times), 0))
        self.scales: list[tuple[float, float, str, str]] = []
        if metrics:
            self.metric_labels, self.values = list(metrics[0]), np.asarray(metrics[1])
            lows, highs = metrics[2] if len(metrics) > 2 else metric_scales([self.values])
            for j, label in enumerate(self.metric_labels):
                lo, hi = float(lows[j]), float(highs[j])
                self.scales.append((lo, hi, *scale_labels(label.split(" ")[0], lo, hi,
                                                          page_size)))
        every = [*self.class_scale] + [s for sc in self.scales for s in sc[2:]]
        self.gutter = max(text.width(s, F_LABEL) for s in every) + TICK + 4

    def plot(self, x0: int, w: int) -> tuple[int, int]:
        """(left, width) of the time axis in a box at x0 of width w: right of the scales."""
        return x0 + self.gutter, max(1, w - self.gutter)

    def columns(self, w: int) -> np.ndarray:
        """The frame each of w columns shows: the one nearest in time, so the first and the
        last frame have half a step each (a step from each frame's time to the next would
        leave the last one no column: the end of a run, often its story, never shown)."""
        times = self.times
        t0, span = float(times[0]), max(float(times[-1] - times[0]), 1e-9)
        col_t = t0 + (np.arange(w) + 0.5) / w * span
        return np.searchsorted((times[1:] + times[:-1]) / 2, col_t, "right")

    def class_strip(self, w: int, bg: int) -> np.ndarray:
        """(TIMELINE_H, w) class numbers: the in-use classes stacked from the bottom row, the
        peak filling the height; bg above."""
        h = TIMELINE_H
        frac = self.pages[self.columns(w)][:, self.used].astype(np.float64) / self.peak
        edges = np.rint(np.concatenate([np.zeros((w, 1)), np.cumsum(frac, axis=1)], 1) * h)
        strip = np.full((h, w), bg, dtype=np.uint8)
        rise = h - 1 - np.arange(h)[:, None]  # rows counted from the bottom
        for j, cls in enumerate(self.used):
            strip[(rise >= edges[:, j]) & (rise < edges[:, j + 1])] = cls
        return strip

    def metric_rows(self, j: int, w: int, h: int) -> np.ndarray:
        """The row (0 = top) of metric j's line in each of w columns of an h-row strip."""
        lo, hi = self.scales[j][:2]
        v = self.values[self.columns(w), j].astype(np.float64)
        frac = (v - lo) / (hi - lo) if hi > lo else np.full(w, 0.5)
        frac = np.clip(np.nan_to_num(frac, nan=0.5), 0, 1)
        return np.rint((1 - frac) * (h - 1)).astype(np.int64)

    def draw(self, canvas: np.ndarray, x0: int, y0: int, w: int, pal: Palette) -> None:
        """Every strip into the box whose top left is (x0, y0), w wide."""
        if len(self.times) == 0:
            return
        T, lh = self.text, _heights(self.text)[0]
        px, pw = self.plot(x0, w)
        h = TIMELINE_H
        self._box(canvas, px, y0, pw, h, pal, self.class_scale)
        canvas[y0:y0 + h, px:px + pw] = self.class_strip(pw, pal.bg)
        span = float(self.times[-1] - self.times[0])
        ty = y0 + h + 2
        left = T.draw(canvas, px, ty, format_time(0)[2:], F_LABEL, pal.dim_ramp)
        right = T.draw(canvas, px + pw, ty, format_time(span)[2:], F_LABEL, pal.dim_ramp,
                       align="right")
        room = pw - 2 * max(left, right) - 24
        note = next((n for n in (self.note, self.note.partition(":")[0])
                     if T.width(n, F_LABEL) <= room), None)
        if note:
            T.draw(canvas, px + (pw - T.width(note, F_LABEL)) // 2, ty, note, F_LABEL,
                   pal.dim_ramp)
        y = ty + lh
        mh = _heights(T)[1]
        for j, label in enumerate(self.metric_labels):
            y += GAP
            canvas[y + lh // 2 - 1:y + lh // 2 + 1, px:px + 14] = pal.lines[j]
            T.draw(canvas, px + 20, y, label, F_LABEL, pal.dim_ramp, max_width=pw - 20)
            y += lh
            self._box(canvas, px, y, pw, mh, pal, self.scales[j][2:])
            rows = self.metric_rows(j, pw, mh)
            top = np.minimum(rows, np.r_[rows[:1], rows[:-1]])  # join each column to the last
            bot = np.maximum(rows, np.r_[rows[:1], rows[:-1]])
            ys = np.arange(mh)[:, None]
            canvas[y:y + mh, px:px + pw][(ys >= top) & (ys <= bot)] = pal.lines[j]
            y += mh

    def _box(self, canvas: np.ndarray, x: int, y: int, w: int, h: int, pal: Palette,
             labels: tuple[str, str]) -> None:
        """A strip's frame and background, ticks at its bottom and top rows, their values."""
        T = self.text
        canvas[y - 1:y + h + 1, x - 1:x + w + 1] = pal.frame
        canvas[y:y + h, x:x + w] = pal.bg
        _, top, _, bottom = T.font(F_LABEL).getbbox("0")
        # the digits sit on the bottom tick and hang from the top one: inside the strip's rows
        for row, dy, label in ((y + h - 1, 1 - bottom, labels[0]), (y, -top, labels[1])):
            canvas[row, x - 1 - TICK:x - 1] = pal.dim
            T.draw(canvas, x - TICK - 3, row + dy, label, F_LABEL, pal.dim_ramp, align="right")

    def cursor(self, x0: int, y0: int, w: int, t: float) -> tuple[int, int, int]:
        """(first row, end row, column) of the time cursor at time t, for strips at (x0, y0)."""
        px, pw = self.plot(x0, w)
        t0, span = float(self.times[0]), max(float(self.times[-1] - self.times[0]), 1e-9)
        cx = px + min(pw - 1, max(0, int((t - t0) / span * pw)))
        end = y0 + strips_height(len(self.metric_labels), self.text) if self.metric_labels \
            else y0 + TIMELINE_H + 3
        return y0 - 3, end, cx
