"""The picture's 256 colours: the classes first, then the picture's own (background, text,
ribbons, the --changes colour), two 8-step ramps for anti-aliased text, the dimmed copies of
--highlight, the --timeline-metrics lines and the partly-free tints of K > 1 pixels. Every encoder takes indices into this palette."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pvrec import flags as F
from pvrec.classes import HOLE, Scheme
from pvrec.errors import PvrecError

THEME_UI = {
    #         background  text       dim text   ribbon A   ribbon B   changed    tile frame
    "light": ("#FFFFFF", "#1A1A1A", "#6B6B6B", "#C8C8C8", "#8C8C8C", "#000000", "#E8E8E8"),
    "dark": ("#101010", "#EDEDED", "#9C9C9C", "#4A4A4A", "#7E7E7E", "#FFFFFF", "#1C1C1C"),
}
RAMP_STEPS = 8
METRIC_COLORS = ("#1A1A1A", "#D55E00", "#0072B2", "#009E73")  # --timeline-metrics lines
METRIC_COLORS_DARK = ("#EDEDED", "#FF7A1A", "#56B4E9", "#33CC99")
DIM = 0.7  # --highlight: pages not highlighted are their class colour blended this far to the bg
# A pixel of K pages in use and free is its class colour blended this far to the free colour:
# paler than the class, never the free grey itself (light and dark theme alike).
PARTLY = 0.4
SWATCHED = ("changed", "partly")  # legend lines that start with a swatch: --changes, the tints


def _rgb(h: str) -> tuple[int, int, int]:
    return int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16)


@dataclass
class Palette:
    """The 256 colours of the picture and where the picture's own colours sit in it."""

    colors: np.ndarray  # (256, 3) uint8
    bg: int
    fg: int
    dim: int
    ribbon: tuple[int, int]
    changed: int
    frame: int
    fg_ramp: np.ndarray  # RAMP_STEPS indices, from background to text colour
    dim_ramp: np.ndarray
    dimmed: np.ndarray | None = None  # with dim: class -> index of its dimmed colour (256)
    lines: tuple[int, ...] = ()  # colours of the metric lines
    tint: np.ndarray | None = None  # with tints: class -> index of its partly-free tint (256)
    swatch: int = 0  # the legend's partly-free swatch: slab's tint (or the first class's)
    extra: tuple[int, ...] = ()  # more colours a picture asked for (render/events.py's)

    @classmethod
    def make(cls, scheme: Scheme, theme: str, dimming: float = 0.0, lines: int = 0,
             tints: bool = False, extra: Sequence[str] = ()) -> Palette:
        n = len(scheme)
        colors = np.zeros((256, 3), dtype=np.uint8)
        colors[:n] = scheme.colors(theme)
        bg, fg, dim, ra, rb, ch, fr = (_rgb(h) for h in THEME_UI[theme])
        base = n
        fixed = [bg, fg, dim, ra, rb, ch, fr]
        colors[base:base + len(fixed)] = fixed
        ramps = []
        pos = base + len(fixed)
        for target in (fg, dim):
            idx = [base]  # level 0 is the background itself
            for i in range(1, RAMP_STEPS):
                t = i / (RAMP_STEPS - 1)
                colors[pos] = [round(b + (c - b) * t) for b, c in zip(bg, target, strict=True)]
                idx.append(pos)
                pos += 1
            ramps.append(np.array(idx, dtype=np.uint8))
        dimmed = None
        if dimming:  # a dimmed copy of every class; the hole stays the hole
            if pos + n > 256:
                raise PvrecError(f"too many classes ({n}) to dim the others with --highlight "
                                 f"in a 256-colour picture")
            c = colors[:n].astype(np.float64)
            colors[pos:pos + n] = np.rint(c + (np.array(bg, np.float64) - c) * dimming)
            dimmed = np.arange(256, dtype=np.uint8)
            dimmed[:n] = np.arange(pos, pos + n)
            dimmed[HOLE] = HOLE
            pos += n
        line_idx = []
        for c in (METRIC_COLORS_DARK if theme == "dark" else METRIC_COLORS)[:lines]:
            if pos < 256:
                colors[pos] = _rgb(c)
            line_idx.append(pos)
            pos += 1
        extra_idx = []
        for c in extra:
            if pos < 256:
                colors[pos] = _rgb(c)
            extra_idx.append(pos)
            pos += 1
        if pos > 256:
            raise PvrecError(f"too many classes ({n}) for a 256-colour picture")
        tint, swatch = None, 0
        if tints:  # where 256 colours have no room, a partly-free pixel keeps its class colour
            tint = np.arange(256, dtype=np.uint8)
            room = min(n, 256 - pos)
            c = colors[:room].astype(np.float64)
            free = np.array(free_color(theme, scheme), np.float64)
            colors[pos:pos + room] = np.rint(c + (free - c) * PARTLY)
            tint[:room] = np.arange(pos, pos + room)
            tint[HOLE] = HOLE
            swatch = int(tint[scheme.index("slab") if "slab" in scheme.names else min(1, n - 1)])
        return cls(colors, base, base + 1, base + 2, (base + 3, base + 4), base + 5, base + 6,
                   ramps[0], ramps[1], dimmed, tuple(line_idx), tint, swatch, tuple(extra_idx))


def tinted(pal: Palette, px: np.ndarray, partly: np.ndarray | None,
           highlight: np.ndarray | None = None) -> np.ndarray:
    """The pixels with the partly-free ones (indices) in their tint; not those that
    --highlight dims (highlight: bool per pixel, in full colour)."""
    if partly is None or not partly.size or pal.tint is None:
        return px
    if highlight is not None:
        partly = partly[highlight[partly]]
    px = px.copy()  # the layout's pixels stay classes
    px[partly] = pal.tint[px[partly]]
    return px


def free_color(theme: str, scheme: Scheme | None = None) -> tuple[int, int, int]:
    """The colour partly-free tints fade towards: the class a free page gets in the scheme
    (the default scheme's free grey where that is the hole)."""
    from pvrec.classes import default_scheme

    if scheme is not None:
        c = int(scheme.classify_values(np.array([F.bit(F.BUDDY)], dtype=np.uint64))[0])
        if c != HOLE:
            return scheme.classes[c].color(theme)
    scheme = default_scheme()
    return scheme.classes[scheme.index("free")].color(theme)
