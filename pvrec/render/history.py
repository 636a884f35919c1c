"""Churn and age (`--view churn`, `--view age`): each pixel coloured by its history, not its class.

churn: in how many of the frames read so far a page of the pixel changed class (against the
frame before); age: how many frames ago that last happened (pages unchanged since the first
frame read are as old as the range). Both come from the changes between consecutive frames'
class runs (raster.class_changes, as --changes), in the one pass that reads the frames, into
counters per pixel: a uint32 count, a uint32 frame number and its RAM pages (int32), 12 bytes
a pixel (9.8 MB for the 24 GiB test VM at K = 8, 79 MB at K = 1): bounded by the picture, as
the renderer's memory is, not by the number of frames.
At K > 1 a pixel changes when any of its K pages does (as --changes marks it).

The colours are bins of the value, a scheme of their own (so legend, sizes and palette are the
renderer's as for classes): one bin per value while the range holds at most MAX_LINEAR, else
powers of two (0, 1, 2-3, 4-7, ...: a log scale, because counts span decades); a sequential
colour-blind-safe ramp (Paul Tol's YlOrBr for churn, viridis for age) from pale (still, young)
to dark (busy, old).
"""

from __future__ import annotations

import numpy as np

from pvrec.classes import HOLE, PageClass, Scheme, colors_of, default_scheme, parse_color
from pvrec.render.raster import ClassRuns, MapLayout

MAX_LINEAR = 8  # up to this many frames of history, one bin per value
RAMPS = {  # pale to dark, for the bins from the lowest value up
    "churn": ("#FFF7BC", "#FEE391", "#FEC44F", "#FB9A29", "#EC7014", "#CC4C02",
              "#993404", "#662506"),
    "age": ("#FDE725", "#AADC32", "#5EC962", "#28AE80", "#21918C", "#2C728E", "#3B528B",
            "#472D7B", "#440154"),
}


def bin_edges(top: int) -> np.ndarray:
    """The lowest value of each bin for values 0..top: each value, or 0, 1, 2, 4, 8, ..."""
    if top <= MAX_LINEAR:
        return np.arange(top + 1, dtype=np.int64)
    return np.array([0] + [1 << i for i in range(top.bit_length())], dtype=np.int64)


def _ramp(anchors: tuple[str, ...], n: int) -> list[tuple[int, int, int]]:
    """n colours spread evenly along the anchors (interpolated in RGB)."""
    rgb = np.array([parse_color(a) for a in anchors], dtype=np.float64)
    at = np.linspace(0, len(anchors) - 1, max(n, 1))
    lo = np.floor(at).astype(int)
    hi = np.minimum(lo + 1, len(anchors) - 1)
    f = (at - lo)[:, None]
    out = np.rint(rgb[lo] + (rgb[hi] - rgb[lo]) * f).astype(int)
    return [tuple(int(v) for v in c) for c in out]  # type: ignore[misc]


class HistoryScheme(Scheme):
    """The bins of churn or age as classes (class 0 the hole, then the bins, lowest first)."""

    name = "history"

    def __init__(self, view: str, frames: int):
        self.view = view
        top = max(frames - 1, 0)  # the most changes a page can have, the oldest age
        self.edges = bin_edges(top)
        hole = default_scheme().classes[HOLE]
        classes = [hole]
        colors = _ramp(RAMPS[view], self.edges.size)
        for i, lo in enumerate(self.edges.tolist()):
            hi = int(self.edges[i + 1]) - 1 if i + 1 < self.edges.size else top
            classes.append(PageClass(self._label(lo, hi), *colors_of(
                "#{:02X}{:02X}{:02X}".format(*colors[i]))))
        super().__init__(classes)
        self.log = top > MAX_LINEAR

    def _label(self, lo: int, hi: int) -> str:
        span = f"{lo}" if lo == hi else f"{lo}-{hi}"
        if self.view == "churn":
            return f"{span} change{'' if hi == 1 else 's'}"
        return "changed now" if hi == 0 else f"{span} frame{'' if hi == 1 else 's'} ago"

    def note(self, first: int, last: int) -> str:
        """The legend's line on what the colours are."""
        what = "class changes per pixel" if self.view == "churn" else \
            "frames since a pixel's class last changed"
        scale = ", log scale" if self.log else ""
        return f"{what}, frames {first + 1}-{last + 1}{scale}"


class History:
    """Churn and age per pixel, fed the class runs of every frame read, in order."""

    def __init__(self, lay: MapLayout, scheme: HistoryScheme):
        self.lay, self.scheme = lay, scheme
        self.count = np.zeros(lay.blocks, dtype=np.uint32)  # frames that changed it
        self.last = np.zeros(lay.blocks, dtype=np.uint32)  # the last of them (0: none)
        self.seen = 0  # frames fed
        self.prev: ClassRuns | None = None
        self.ram = ram_per_pixel(lay)

    def add(self, runs: ClassRuns) -> None:
        """The next frame's class runs."""
        if self.prev is not None:
            changed, _ = self.lay.changed_blocks(self.prev, runs)
            self.count[changed] += 1
            self.last[changed] = self.seen
        self.prev = runs
        self.seen += 1

    def values(self) -> np.ndarray:
        """Per pixel: its churn, or its age at the last frame fed."""
        if self.scheme.view == "churn":
            return self.count
        return (self.seen - 1) - self.last  # never changed: as old as the range

    def pixels(self) -> np.ndarray:
        """One class (bin) per pixel, HOLE where the pixel holds no RAM."""
        px = np.searchsorted(self.scheme.edges, self.values(), "right").astype(np.uint8)
        px[self.ram == 0] = HOLE  # bins are classes 1..n
        return px

    def pages(self, px: np.ndarray) -> np.ndarray:
        """RAM pages per bin (the legend's sizes)."""
        counts = np.bincount(px, weights=self.ram, minlength=len(self.scheme))
        return np.rint(counts).astype(np.int64)


def ram_per_pixel(lay: MapLayout) -> np.ndarray:
    """Pages of RAM in each pixel (K, less the layout's holes and the padding; 0 outside the
    layout's window)."""
    k = lay.ppp
    ram = np.full(lay.blocks, k, dtype=np.int32)
    for s, e in [*lay.holes, (lay.pfn_count, lay.blocks * k)]:
        if e <= s:
            continue
        fb, lb = s // k, (e - 1) // k
        if fb == lb:
            ram[fb] -= e - s
            continue
        ram[fb] -= (fb + 1) * k - s
        ram[fb + 1:lb] = 0
        ram[lb] -= e - lb * k
    ws, we = lay.window  # --region: pixels outside it count for nothing (rows are K-aligned)
    ram[:ws // k] = 0
    ram[-(-we // k):] = 0
    return ram
