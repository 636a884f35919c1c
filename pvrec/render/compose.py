"""One finished picture: the map, with legend, header, tile labels, zone marks and time strip.

The picture is an image of palette indices (uint8), the form every encoder takes: classes first
(index = class number), then the picture's own colours and two 8-step text ramps, so
anti-aliased text needs no RGB canvas. Everything that does not change between frames (labels,
swatches, zone ribbons, the timeline's areas) is drawn once into a static canvas; a frame is a
copy of it, the map pasted in, and a few short strings (time, sizes) drawn from a cache of
rendered text (text.py). The colours are palette.py's, the time strips strips.py's.
"""

from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass

import numpy as np

from pvrec.classes import HOLE, Scheme
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.render.palette import DIM, THEME_UI, Palette
from pvrec.render.raster import PANEL_GAP, MapLayout, divisors, format_offset, format_range
from pvrec.render.strips import Strips, idle_classes, strips_height
from pvrec.render.text import F_INFO, F_LABEL, F_LEGEND, F_TITLE, Text, format_mib, format_time

FIT_DEFAULT = (1920, 1080)

MARGIN = 14


@dataclass
class Options:
    """What the picture shows (the command's options that are about the picture)."""

    theme: str = "light"
    map_only: bool = False
    changes: bool = False
    timeline: bool = False
    title: str | None = None
    clock: bool = True  # the time and frame number (not for a one-off snapshot)
    highlight: str | None = None  # "workload": its pages in full colour, the rest dimmed
    note: str | None = None  # a line of the legend saying what the colours are


@dataclass
class Geometry:
    """Where things are on the canvas."""

    width: int
    height: int
    map_x: int
    map_y: int
    legend_x: int = 0
    legend_y: int = 0
    timeline_x: int = 0
    timeline_y: int = 0
    timeline_w: int = 0


LEGEND_LINE = 19
SWATCH = 12
TILE_LABEL_H = 15  # above each row of tiles: their offsets
ZONE_LABEL_H = 15  # below each row of tiles: zone names
GAP, GAP_MANY = 8, 4  # between tiles (the zone ribbon lives there)
TIME_TEMPLATE = "t=+00m00.0s   frame 00000/00000"


class Picture:
    """Composes the frames of one render: a static canvas made once, a fast per-frame part.

    Geometry is known at construction (choose_layout() measures candidates with it); the static
    canvas is drawn on the first frame.
    """

    def __init__(self, layout: MapLayout, scheme: Scheme, header: Header, options: Options, *,
                 frame_count: int = 1, ram_pages: int = 0,
                 timeline: tuple[np.ndarray, np.ndarray] | None = None,
                 metrics: tuple | None = None,
                 text: Text | None = None):
        if options.theme not in THEME_UI:
            raise PvrecError(f"unknown --theme {options.theme!r}: use light or dark")
        self.layout, self.scheme, self.header, self.opt = layout, scheme, header, options
        self.frame_count = frame_count
        self.ram_pages = max(1, ram_pages or layout.pfn_count)
        self.page_size = layout.page_size
        self.text = text or Text()
        self.timeline = timeline  # (t per frame, pages per class per frame)
        # (labels, values per frame of the timeline x metric[, (lows, highs) of the scales])
        self.metrics = metrics
        self.strips = None if timeline is None else Strips(
            timeline, metrics, scheme.names, idle_classes(scheme), self.page_size, self.text)
        self._cols = self._legend_columns()
        self._legend: tuple[int, int] | None = None
        self.geo = self._measure()
        self._palette: Palette | None = None
        self._static: np.ndarray | None = None
        self._canvas: np.ndarray | None = None
        self._slots: dict = {}  # dynamic strings drawn: slot -> (text, rectangle)

    @property
    def palette(self) -> Palette:
        if self._palette is None:
            self._palette = Palette.make(self.scheme, self.opt.theme,
                                         DIM if self.opt.highlight else 0.0,
                                         len(self.metrics[0]) if self.metrics else 0)
        return self._palette

    @property
    def static(self) -> np.ndarray:
        if self._static is None:
            self._static = self._draw_static()
        return self._static

    @property
    def size(self) -> tuple[int, int]:
        return self.geo.width, self.geo.height

    # -- sizes

    def _legend_columns(self) -> tuple[int, int, int]:
        names = [c.name for i, c in enumerate(self.scheme.classes) if i != HOLE]
        name_w = min(max((self.text.width(n, F_LEGEND) for n in names), default=40), 260)
        mib_w = self.text.width(format_mib(self.ram_pages, self.page_size), F_LEGEND)
        pct_w = self.text.width("100.0%", F_LEGEND)
        return name_w, mib_w, pct_w

    @functools.cached_property
    def _highlight_line(self) -> int:
        """Which legend line below the classes holds the highlighted pages' size."""
        return [k for _, k in self.legend_lines()].index("highlight")

    def legend_lines(self) -> list[tuple[str, str]]:
        """The legend's text lines below the classes: (text, 'dim' | 'fg' | 'changed')."""
        lay, ps = self.layout, self.page_size
        lines: list[tuple[str, str]] = [("", "dim")]
        if self.opt.note:
            lines += [(self.opt.note, "dim")]
        lines += [(f"RAM {format_offset(self.ram_pages * ps)}", "dim")]
        size = format_offset(lay.ppp * ps)
        lines.append((f"1 pixel = {'1 page' if lay.ppp == 1 else f'{lay.ppp} pages'} ({size})",
                      "dim"))
        lines.append((f"1 row = {format_offset(lay.row_pages * ps)}", "dim"))
        if lay.kind == "tiles":
            lines.append((f"1 tile = {format_offset(lay.row_pages * lay.tile_rows * ps)}",
                          "dim"))
        for kind, title in (("zone", "zones"), ("node", "NUMA nodes")):
            marks = [m for m in lay.marks if m.kind == kind]
            if marks:
                lines += [("", "dim"), (title, "fg")]
                lines += [(f"{m.name}: {format_range(m.pfn * ps, m.end_pfn * ps)}", "dim")
                          for m in marks]
        if self.opt.changes:
            lines += [("", "dim"), ("changed since last frame", "changed")]
        if self.opt.highlight:
            lines += [("", "dim"), (self.opt.highlight, "highlight"),
                      ("in full colour, the rest dimmed", "dim")]
        return lines

    def _legend_size(self) -> tuple[int, int]:
        name_w, mib_w, pct_w = self._cols
        w = SWATCH + 6 + name_w + 12 + mib_w + 10 + pct_w
        for text, kind in self.legend_lines():
            w = max(w, self.text.width(text, F_LEGEND) + (SWATCH + 6 if kind == "changed" else 0))
        return w, (len(self.scheme) - 1 + len(self.legend_lines())) * LEGEND_LINE

    def _measure(self) -> Geometry:
        return self.geometry_for(self.layout.width, self.layout.height)

    def geometry_for(self, map_w: int, map_h: int) -> Geometry:
        """The canvas around a map of this size (choose_layout tries many sizes)."""
        if self.opt.map_only:
            return Geometry(map_w, map_h, 0, 0)
        header_h = self.text.height(F_TITLE) + 4 + self.text.height(F_INFO) + 8
        top = MARGIN + header_h
        map_x = MARGIN + 6  # room for the zone ribbon of the first tile
        map_y = top + TILE_LABEL_H
        bottom = map_y + map_h + ZONE_LABEL_H
        tl_x = tl_y = tl_w = 0
        if self.opt.timeline:
            tl_x, tl_y, tl_w = map_x, bottom + 8, max(map_w, 240)
            bottom = tl_y + strips_height(len(self.metrics[0]) if self.metrics else 0, self.text)
        if self._legend is None:
            self._legend = self._legend_size()
        legend_w, legend_h = self._legend
        legend_x = map_x + max(map_w, tl_w) + 20
        width = max(legend_x + legend_w + MARGIN,
                    MARGIN * 2 + self.text.width(TIME_TEMPLATE, F_TITLE) + 240)
        height = max(bottom, top + legend_h) + MARGIN
        width += width % 2  # even sizes: what H.264 needs at any scale
        height += height % 2
        return Geometry(width, height, map_x, map_y, legend_x, top, tl_x, tl_y, tl_w)

    # -- the static canvas

    def _draw_static(self) -> np.ndarray:
        g, pal, lay, T = self.geo, self.palette, self.layout, self.text
        canvas = np.full((g.height, g.width), pal.bg, dtype=np.uint8)
        if self.opt.map_only:
            return canvas
        cmd = self.header.command
        title = self.opt.title or (shlex.join(cmd) if cmd else "whole system")
        right_w = T.width(TIME_TEMPLATE, F_TITLE) + 24
        T.draw(canvas, MARGIN, MARGIN, title, F_TITLE, pal.fg_ramp,
               max_width=g.width - 2 * MARGIN - right_w)
        h = self.header
        started = (h.start_wall or "").replace("T", " ")[:16]  # ISO 8601 -> '2026-11-26 17:40'
        info = [f"{prefix}{v[:48]}" for prefix, v in
                (("", h.hostname), ("Linux ", h.kernel), ("", started)) if v]
        info.append(f"{format_offset(self.ram_pages * self.page_size)} RAM")
        T.draw(canvas, MARGIN, MARGIN + T.height(F_TITLE) + 4, "   ".join(info), F_INFO,
               pal.dim_ramp, max_width=g.width - 2 * MARGIN - 220)
        for t in lay.tiles:  # a frame around each tile, so pale classes keep an edge
            x, y = g.map_x + t.x, g.map_y + t.y
            canvas[max(0, y - 1):y + t.rows + 1, max(0, x - 1):x + lay.tile_width + 1] = pal.frame
        for tiles in lay.panels[1:]:  # a rule between the panels of NUMA nodes
            x = g.map_x + min(t.x for t in tiles) - PANEL_GAP // 2
            canvas[g.map_y - TILE_LABEL_H:g.map_y + lay.height + ZONE_LABEL_H, x:x + 1] = \
                pal.ribbon[1]
        self._draw_tile_labels(canvas)
        self._draw_zones(canvas)
        self._draw_legend(canvas)
        if self.opt.timeline and self.strips is not None:
            self.strips.draw(canvas, self.geo.timeline_x, self.geo.timeline_y,
                             self.geo.timeline_w, self.palette)
        return canvas

    def _draw_tile_labels(self, canvas: np.ndarray) -> None:
        lay, pal, g, T = self.layout, self.palette, self.geo, self.text
        if lay.kind != "tiles":
            return
        last_end: dict[int, int] = {}
        for t in lay.tiles:
            x, y = g.map_x + t.x, g.map_y + t.y - TILE_LABEL_H + 1
            if last_end.get(y, -1) > x:
                continue  # narrow tiles: label every other one rather than overlap
            T.draw(canvas, x, y, lay.tile_label(t), F_LABEL, pal.dim_ramp)
            last_end[y] = x + T.width(lay.tile_label(t), F_LABEL) + 6

    def _draw_zones(self, canvas: np.ndarray) -> None:
        """A ribbon left of each tile (alternating shades per zone), ticks where a zone or
        node begins, and zone names under the tile where each begins."""
        lay, pal, g, T = self.layout, self.palette, self.geo, self.text
        zones = [m for m in lay.marks if m.kind == "zone"]
        rw = 3 if lay.gap >= 7 or len(lay.tiles) == 1 else 2
        if zones and (lay.gap >= rw + 2 or len(lay.tiles) == 1):
            for t in lay.tiles:
                x, y = g.map_x + t.x, g.map_y + t.y
                first = t.first_pfn + np.arange(t.rows) * lay.row_pages
                shade = np.full(t.rows, pal.bg, dtype=np.uint8)
                for i, m in enumerate(zones):
                    shade[(first + lay.row_pages > m.pfn) & (first < m.end_pfn)] = pal.ribbon[i % 2]
                x0 = max(0, x - rw - 2)
                canvas[y:y + t.rows, x0:x0 + rw] = shade[:, None]
        for m in lay.marks:
            loc = lay.locate(m.pfn)
            if loc is None:
                continue
            _, tx, ty = loc
            tile = loc[0]
            x, y = g.map_x + tile.x, g.map_y + ty
            tick = 6 if m.kind == "zone" else 9
            canvas[y:y + 1, max(0, x - tick):x - 1] = pal.fg
        placed: list[tuple[int, int, int]] = []
        for m in sorted(lay.marks, key=lambda m: (m.kind != "node", -(m.end_pfn - m.pfn))):
            loc = lay.locate(m.pfn)
            if loc is None:
                continue
            tile = loc[0]
            x, y = g.map_x + tile.x, g.map_y + tile.y + tile.rows + 2
            w = T.width(m.name, F_LABEL)
            if any(py == y and x < p1 and p0 < x + w + 6 for py, p0, p1 in placed):
                continue
            T.draw(canvas, x, y, m.name, F_LABEL, pal.fg_ramp if m.kind == "node"
                   else pal.dim_ramp)
            placed.append((y, x, x + w + 6))

    def _draw_legend(self, canvas: np.ndarray) -> None:
        g, pal, T = self.geo, self.palette, self.text
        name_w = self._cols[0]
        y = g.legend_y
        for i, c in enumerate(self.scheme.classes):
            if i == HOLE:
                continue
            self._swatch(canvas, g.legend_x, y + 3, i)
            T.draw(canvas, g.legend_x + SWATCH + 6, y, c.name, F_LEGEND, pal.fg_ramp,
                   max_width=name_w)
            y += LEGEND_LINE
        for text, kind in self.legend_lines():
            if kind == "changed":
                self._swatch(canvas, g.legend_x, y + 3, pal.changed)
                T.draw(canvas, g.legend_x + SWATCH + 6, y, text, F_LEGEND, pal.fg_ramp)
            elif text:
                T.draw(canvas, g.legend_x, y, text, F_LEGEND,
                       pal.fg_ramp if kind in ("fg", "highlight") else pal.dim_ramp)
            y += LEGEND_LINE

    def _swatch(self, canvas: np.ndarray, x: int, y: int, color: int) -> None:
        canvas[y:y + SWATCH, x:x + SWATCH] = self.palette.dim
        canvas[y + 1:y + SWATCH - 1, x + 1:x + SWATCH - 1] = color

    # -- per frame

    def frame(self, px: np.ndarray, *, t: float, index: int, pages: np.ndarray,
              changed: tuple[np.ndarray, int] | None = None,
              highlight: tuple[np.ndarray, int] | None = None) -> np.ndarray:
        """The picture of one frame: px from MapLayout.pixel_classes, pages per class (RAM).

        highlight: (bool per pixel: drawn in full colour, pages highlighted); the other pixels
        are dimmed (Options.highlight names what is highlighted).

        Returns the picture's own canvas, updated in place next frame (copy what you keep):
        the map is pasted and only the strings that differ from the last frame are redrawn.
        """
        pal, g, T, lay = self.palette, self.geo, self.text, self.layout
        if self._canvas is None:
            self._canvas = self.static.copy()
        canvas = self._canvas
        if highlight is not None and pal.dimmed is not None:
            keep = highlight[0]
            px = np.where(keep, px, pal.dimmed[px])
        if changed is not None:
            px = np.where(changed[0], np.uint8(pal.changed), px)
        lay.place(px, canvas, g.map_x, g.map_y)
        if self.opt.map_only:
            return canvas
        if self.opt.clock:
            self._text("time", g.width - MARGIN, MARGIN,
                       f"{format_time(t)}   frame {index + 1}/{self.frame_count}", F_TITLE,
                       pal.fg_ramp)
        if changed is not None:
            self._text("changed", g.width - MARGIN, MARGIN + T.height(F_TITLE) + 4,
                       f"{changed[1]:,} pages changed", F_INFO, pal.fg_ramp)
        name_w, mib_w, pct_w = self._cols
        xm = g.legend_x + SWATCH + 6 + name_w + 12 + mib_w
        xp = xm + 10 + pct_w
        y = g.legend_y
        for i in range(len(self.scheme)):
            if i == HOLE:
                continue
            n = int(pages[i])
            self._text(("mib", i), xm, y, format_mib(n, self.page_size), F_LEGEND, pal.fg_ramp)
            self._text(("pct", i), xp, y, f"{100.0 * n / self.ram_pages:.1f}%", F_LEGEND,
                       pal.dim_ramp)
            y += LEGEND_LINE
        if highlight is not None:
            y = g.legend_y + (len(self.scheme) - 1 + self._highlight_line) * LEGEND_LINE
            n = int(highlight[1])
            self._text("hl-mib", xm, y, format_mib(n, self.page_size), F_LEGEND, pal.fg_ramp)
            self._text("hl-pct", xp, y, f"{100.0 * n / self.ram_pages:.1f}%", F_LEGEND,
                       pal.dim_ramp)
        if self.opt.timeline and self.strips is not None and len(self.strips.times):
            y0, y1, cx = self.strips.cursor(g.timeline_x, g.timeline_y, g.timeline_w, t)
            old = self._slots.pop("cursor", None)
            if old is not None:
                a, b, c, d = old[1]
                canvas[a:b, c:d] = self.static[a:b, c:d]
            canvas[y0:y1, cx:cx + 2] = pal.fg
            self._slots["cursor"] = ("", (y0, y1, cx, cx + 2))
        return canvas

    def _text(self, slot, x: int, y: int, text: str, size: int, ramp: np.ndarray) -> None:
        """Right-aligned text that changes between frames: redrawn only when it differs."""
        old = self._slots.get(slot)
        if old is not None:
            if old[0] == text:
                return
            a, b, c, d = old[1]
            self._canvas[a:b, c:d] = self.static[a:b, c:d]
        rects: list[tuple[int, int, int, int]] = []
        self.text.draw(self._canvas, x, y, text, size, ramp, align="right", dirty=rects,
                       fast=True)
        self._slots[slot] = (text, rects[0] if rects else (0, 0, 0, 0))


def choose_layout(header: Header, scheme: Scheme, options: Options, *, kind: str = "tiles",
                  ppp: int | None = None, width: int | None = None,
                  fit: tuple[int, int] = FIT_DEFAULT, ram_pages: int = 0) -> MapLayout:
    """The layout: the given K (or the smallest K) and the grid whose picture fits `fit`.

    Prefers fewer pages per pixel, then fewer rows of tiles (a wide picture suits a blog).
    When nothing fits (a huge machine) it returns the arrangement that overflows least.
    """
    def build(k: int) -> MapLayout:
        lay = MapLayout.build(header, kind=kind, ppp=k, width=width, gap=0)
        if not options.map_only:  # the gap holds the zone ribbon, if the tiles leave room
            lay.gap = GAP if len(lay.tiles) <= 8 else GAP_MANY if lay.tile_width >= 16 else 1
            lay.arrange(lay.max_cols, TILE_LABEL_H + ZONE_LABEL_H + 4)
        return lay

    text = Text()  # one text measurer for every candidate: widths are cached
    probe = build(ppp or 1)
    if not probe.tiles:
        raise PvrecError("the recording's RAM ranges hold no page: nothing to draw")
    ks = [ppp] if ppp else divisors(probe.row_pages)
    best: tuple[float, int, int] | None = None
    for k in ks:
        lay = build(k)
        pic = Picture(lay, scheme, header, options, ram_pages=ram_pages, text=text)
        for cols in range(lay.max_cols, 0, -1):
            g = pic.geometry_for(*lay.size_for(cols))
            if g.width <= fit[0] and g.height <= fit[1]:
                lay.arrange(cols)
                return lay
            over = max(g.width / fit[0], g.height / fit[1])
            if best is None or over < best[0] - 1e-9:
                best = (over, k, cols)
            if lay.kind == "rows":
                break
    assert best is not None
    lay = build(best[1])
    lay.arrange(best[2])
    return lay
