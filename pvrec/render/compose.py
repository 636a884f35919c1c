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
from pvrec.render.collapse import band_text
from pvrec.render.palette import DIM, SWATCHED, THEME_UI, Palette
from pvrec.render.raster import (
    PANEL_GAP,
    MapLayout,
    format_offset,
    format_range,
)
from pvrec.render.strips import Strips, idle_classes, strips_height
from pvrec.render.text import NORMAL, Text, TextStyle, format_mib, format_time

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
    partly: bool = False  # K > 1 pixels keep the pages that fragment: partly-free tints
    events: object = None  # render/events.py's EventOverlay: kernel events, counters, markers


@dataclass(frozen=True)
class Look:
    """How the text is set around the map: its sizes, and where the legend goes (right of
    the map or below it, in one column or two: the classes, then the lines about the map)."""

    style: TextStyle = NORMAL
    legend: str = "right"
    columns: int = 1


LOOKS = (("right", 1), ("right", 2), ("below", 2), ("below", 1))  # in order of preference


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


GAP, GAP_MANY = 8, 4  # between tiles (the zone ribbon lives there)
TIME_TEMPLATE = "t=+00m00.0s   frame 00000 of 00000"


class Picture:
    """Composes the frames of one render: a static canvas made once, a fast per-frame part.

    Geometry is known at construction (choose_layout() measures candidates with it); the static
    canvas is drawn on the first frame.
    """

    def __init__(self, layout: MapLayout, scheme: Scheme, header: Header, options: Options, *,
                 frame_count: int = 1, ram_pages: int = 0,
                 timeline: tuple[np.ndarray, np.ndarray] | None = None,
                 metrics: tuple | None = None,
                 text: Text | None = None, look: Look | None = None):
        if options.theme not in THEME_UI:
            raise PvrecError(f"unknown --theme {options.theme!r}: use light or dark")
        self.layout, self.scheme, self.header, self.opt = layout, scheme, header, options
        self.frame_count = frame_count
        self.ram_pages = max(1, ram_pages or layout.ram_pages)
        self.page_size = layout.page_size
        self.text = text or Text()
        self.look = look or layout.look or Look()
        self.style = self.look.style
        self.timeline = timeline  # (t per frame, pages per class per frame)
        # (labels, values per frame of the timeline x metric[, (lows, highs) of the scales])
        self.metrics = metrics
        self.strips = None if timeline is None else Strips(
            timeline, metrics, scheme.names, idle_classes(scheme), self.page_size, self.text)
        self._cols = self._legend_columns()
        self._legend: dict[int, tuple[int, int]] = {}
        self.geo = self._measure()
        self._palette: Palette | None = None
        self._static: np.ndarray | None = None
        self._canvas: np.ndarray | None = None
        self._slots: dict = {}  # dynamic strings drawn: slot -> (text, rectangle)
        self._index: np.ndarray | None = None  # each map pixel's place in the canvas
        # What changed in the canvas since take_dirty: None (all of it) or (pixels, rectangles)
        self._dirty: tuple[list[np.ndarray], list[tuple[int, int, int, int]]] | None = None

    @property
    def palette(self) -> Palette:
        if self._palette is None:
            self._palette = Palette.make(self.scheme, self.opt.theme,
                                         DIM if self.opt.highlight else 0.0,
                                         len(self.metrics[0]) if self.metrics else 0,
                                         self.opt.partly and self.layout.ppp > 1,
                                         self.opt.events.colors(self.opt.theme)
                                         if self.opt.events else ())
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
        size = self.style.legend
        name_w = min(max((self.text.width(n, size) for n in names), default=40), 260)
        mib_w = self.text.width(self._size_text(self.ram_pages), size)
        pct_w = self.text.width("100.0%" if self.scheme.class_counts() is None else
                                f"{self.ram_pages:,} folios", size)
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
        ws, we = lay.window
        if (ws, we) != (0, lay.pfn_count):  # --region: the sizes are the region's
            lines += [(f"region {format_range(ws * ps, we * ps)}", "fg"),
                      (f"sizes, % of its {format_offset(self.ram_pages * ps)} RAM", "dim")]
        else:
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
        if self.opt.partly and lay.ppp > 1:  # the K > 1 rule's tint (docs/rendering.md)
            lines += [("", "dim"), ("paler: partly free", "partly"), ("in use, unmovable first", "dim")]
        if self.opt.changes:
            lines += [("", "dim"), ("changed since last frame", "changed")]
        if self.opt.highlight:
            lines += [("", "dim"), (self.opt.highlight, "highlight"),
                      ("in full colour, the rest dimmed", "dim")]
        return lines

    def _legend_size(self, columns: int) -> tuple[int, int]:
        """(width, height) of the legend in one column or two (the lines beside the classes)."""
        st = self.style
        name_w, mib_w, pct_w = self._cols
        classes_w = st.swatch + 6 + name_w + 12 + mib_w + 10 + pct_w
        classes_h = (len(self.scheme) - 1) * st.line
        lines = self.legend_lines()
        lines_w = max(self.text.width(text, st.legend) + (st.swatch + 6 if kind in SWATCHED
                                                          else 0) for text, kind in lines)
        if self.opt.highlight:  # its line holds sizes, in the classes' columns
            lines_w = max(lines_w, classes_w)
        if columns == 1:
            return max(classes_w, lines_w), classes_h + len(lines) * st.line
        return classes_w + 20 + lines_w, max(classes_h, (len(lines) - 1) * st.line)

    def _line_xy(self, i: int) -> tuple[int, int]:
        """Where legend_lines()[i] is drawn (in two columns the first, empty, line is not)."""
        g, st = self.geo, self.style
        if self.look.columns == 1:
            return g.legend_x, g.legend_y + (len(self.scheme) - 1 + i) * st.line
        name_w, mib_w, pct_w = self._cols
        x = g.legend_x + st.swatch + 6 + name_w + 12 + mib_w + 10 + pct_w + 20
        return x, g.legend_y + (i - 1) * st.line

    def _measure(self) -> Geometry:
        return self.geometry_for(self.layout.width, self.layout.height)

    def geometry_for(self, map_w: int, map_h: int, look: Look | None = None) -> Geometry:
        """The canvas around a map of this size (choose_layout tries many sizes, and legend
        places: `look`, of this picture's text style)."""
        if self.opt.map_only:
            return Geometry(map_w, map_h, 0, 0)
        look, st, T = look or self.look, self.style, self.text
        header_h = T.height(st.title) + 4 + T.height(st.info) + 8
        top = MARGIN + header_h
        map_x = MARGIN + 6  # room for the zone ribbon of the first tile
        map_y = top + st.label_h
        bottom = map_y + map_h + st.label_h
        tl_x = tl_y = tl_w = 0
        if self.opt.timeline:
            tl_x, tl_y, tl_w = map_x, bottom + 8, max(map_w, 240)
            bottom = tl_y + strips_height(len(self.metrics[0]) if self.metrics else 0, self.text)
            if self.opt.events:
                bottom += self.opt.events.lane_height(self.text)
        if look.columns not in self._legend:
            self._legend[look.columns] = self._legend_size(look.columns)
        legend_w, legend_h = self._legend[look.columns]
        if look.legend == "right":
            legend_x, legend_y = map_x + max(map_w, tl_w) + 20, top
            width = legend_x + legend_w + MARGIN
            height = max(bottom, top + legend_h) + MARGIN
        else:
            legend_x, legend_y = MARGIN, bottom + 12
            width = max(map_x + max(map_w, tl_w), legend_x + legend_w) + MARGIN
            height = legend_y + legend_h + MARGIN
        width = max(width, MARGIN * 2 + T.width(TIME_TEMPLATE, st.title) + st.title_room)
        width += width % 2  # even sizes: what H.264 needs at any scale
        height += height % 2
        return Geometry(width, height, map_x, map_y, legend_x, legend_y, tl_x, tl_y, tl_w)

    # -- the static canvas

    def _draw_static(self) -> np.ndarray:
        g, pal, lay, T = self.geo, self.palette, self.layout, self.text
        canvas = np.full((g.height, g.width), pal.bg, dtype=np.uint8)
        if self.opt.map_only:
            return canvas
        cmd = self.header.command
        title = self.opt.title or (shlex.join(cmd) if cmd else "whole system")
        st = self.style
        right_w = T.width(TIME_TEMPLATE, st.title) + 24
        T.draw(canvas, MARGIN, MARGIN, title, st.title, pal.fg_ramp,
               max_width=g.width - 2 * MARGIN - right_w)
        h = self.header
        started = (h.start_wall or "").replace("T", " ")[:16]  # ISO 8601 -> '2026-11-26 17:40'
        info = [f"{prefix}{v[:48]}" for prefix, v in
                (("", h.hostname), ("Linux ", h.kernel), ("", started)) if v]
        info.append(f"{format_offset(h.ram_pages * self.page_size)} RAM")
        T.draw(canvas, MARGIN, MARGIN + T.height(st.title) + 4, "   ".join(info), st.info,
               pal.dim_ramp, max_width=g.width - 2 * MARGIN - 220)
        for t in lay.tiles:  # a frame around each tile, so pale classes keep an edge
            x, y = g.map_x + t.x, g.map_y + t.y
            canvas[max(0, y - 1):y + t.rows + 1, max(0, x - 1):x + t.w + 1] = pal.frame
        for tiles in lay.panels[1:]:  # a rule between the panels of NUMA nodes
            x = g.map_x + min(t.x for t in tiles) - PANEL_GAP // 2
            canvas[g.map_y - st.label_h:g.map_y + lay.height + st.label_h, x:x + 1] = \
                pal.ribbon[1]
        self._draw_tile_labels(canvas)
        self._draw_zones(canvas)
        self._draw_legend(canvas)
        if self.opt.timeline and self.strips is not None:
            self.strips.draw(canvas, self.geo.timeline_x, self.geo.timeline_y,
                             self.geo.timeline_w, self.palette)
            if self.opt.events and len(self.strips.times):
                g = self.geo
                self.opt.events.draw_lane(
                    canvas, self.strips, g.timeline_x, g.timeline_y, g.timeline_y +
                    strips_height(len(self.metrics[0]) if self.metrics else 0, self.text),
                    g.timeline_w, self.palette, self.text)
        return canvas

    def _draw_tile_labels(self, canvas: np.ndarray) -> None:
        lay, pal, g, T = self.layout, self.palette, self.geo, self.text
        if lay.kind != "tiles":
            return
        last_end: dict[int, int] = {}
        for t in lay.tiles:
            x, y = g.map_x + t.x, g.map_y + t.y - self.style.label_h + 1
            if last_end.get(y, -1) > x:
                continue  # narrow tiles: label every other one rather than overlap
            label = self.band_label(t) if t.kind == "band" else lay.tile_label(t)
            room = (g.legend_x - 10 if self.look.legend == "right" else g.width - MARGIN) - x
            T.draw(canvas, x, y, label, self.style.label, pal.dim_ramp,
                   max_width=max(t.w, room) if t.kind == "band" else None)
            last_end[y] = x + T.width(label, self.style.label) + 6

    def band_label(self, band) -> str:
        return band_text(self.layout, self.scheme.names, band)

    def _draw_zones(self, canvas: np.ndarray) -> None:
        """A ribbon left of each tile (alternating shades per zone), ticks where a zone or
        node begins, and zone names under the tile where each begins."""
        lay, pal, g, T = self.layout, self.palette, self.geo, self.text
        zones = [m for m in lay.marks if m.kind == "zone"]
        rw = 3 if lay.gap >= 7 or len(lay.tiles) == 1 else 2
        if zones and (lay.gap >= rw + 2 or len(lay.tiles) == 1):
            for t in lay.tiles:
                if t.kind == "band":
                    continue
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
            w = T.width(m.name, self.style.label)
            if any(py == y and x < p1 and p0 < x + w + 6 for py, p0, p1 in placed):
                continue
            T.draw(canvas, x, y, m.name, self.style.label, pal.fg_ramp if m.kind == "node"
                   else pal.dim_ramp)
            placed.append((y, x, x + w + 6))

    def _draw_legend(self, canvas: np.ndarray) -> None:
        g, pal, T, st = self.geo, self.palette, self.text, self.style
        name_w = self._cols[0]
        y, sw = g.legend_y, st.swatch + 6
        pad = (st.line - st.swatch) // 2  # the swatch centred on the text
        for i, c in enumerate(self.scheme.classes):
            if i == HOLE:
                continue
            self._swatch(canvas, g.legend_x, y + pad, i)
            T.draw(canvas, g.legend_x + sw, y, c.name, st.legend, pal.fg_ramp, max_width=name_w)
            y += st.line
        for i, (text, kind) in enumerate(self.legend_lines()):
            x, y = self._line_xy(i)
            if kind in SWATCHED:
                self._swatch(canvas, x, y + pad, pal.changed if kind == "changed" else pal.swatch)
                T.draw(canvas, x + sw, y, text, st.legend, pal.fg_ramp)
            elif text:
                T.draw(canvas, x, y, text, st.legend,
                       pal.fg_ramp if kind in ("fg", "highlight") else pal.dim_ramp)

    def _swatch(self, canvas: np.ndarray, x: int, y: int, color: int) -> None:
        sw = self.style.swatch
        canvas[y:y + sw, x:x + sw] = self.palette.dim
        canvas[y + 1:y + sw - 1, x + 1:x + sw - 1] = color

    # -- per frame

    def frame(self, px: np.ndarray | None, *, t: float, index: int, pages: np.ndarray,
              changed: tuple[np.ndarray, int] | None = None,
              highlight: tuple[np.ndarray, int] | None = None,
              counts: np.ndarray | None = None,
              update: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The picture of one frame: px from MapLayout.pixel_classes, pages per class (RAM);
        counts: folios per class (-1: none), drawn in place of the percentage.
        update: (pixel numbers, their colours) in place of px: only those pixels differ from
        the frame drawn before (no highlight, --changes or map overlay then).

        highlight: (bool per pixel: drawn in full colour, pages highlighted); the other pixels
        are dimmed (Options.highlight names what is highlighted).

        Returns the picture's own canvas, updated in place next frame (copy what you keep):
        the map is pasted and only the strings that differ from the last frame are redrawn.
        """
        pal, g, T, lay, st = self.palette, self.geo, self.text, self.layout, self.style
        if self._canvas is None:
            self._canvas = self.static.copy()
        canvas = self._canvas
        dim = pal.dimmed if highlight is not None else None
        if update is not None:
            self._update_map(*update)
        else:
            if dim is not None:
                px = np.where(highlight[0], px, dim[px])
            if changed is not None:
                px = np.where(changed[0], np.uint8(pal.changed), px)
            lay.place(px, canvas, g.map_x, g.map_y, dim)  # bands: dimmed too
            self._dirty = None
        if self.opt.events:
            self.opt.events.draw_map(canvas, lay, g.map_x, g.map_y, index, pal)
            self._dirty = None
        if self.opt.map_only:
            return canvas
        if self.opt.clock:
            self._text("time", g.width - MARGIN, MARGIN,
                       f"{format_time(t)}   frame {index} of {self.frame_count}", st.title,
                       pal.fg_ramp)  # frame N is RUN@N, --frame N, export's N: counted from 0
        mark = self.opt.events.marker_text(index) if self.opt.events else None
        if changed is not None or mark:
            line = [mark, f"{changed[1]:,} pages changed" if changed is not None else None]
            self._text("changed", g.width - MARGIN, MARGIN + T.height(st.title) + 4,
                       "   ".join(x for x in line if x), st.info, pal.fg_ramp)
        name_w, mib_w, pct_w = self._cols
        xm = g.legend_x + st.swatch + 6 + name_w + 12 + mib_w
        xp = xm + 10 + pct_w
        y = g.legend_y
        for i in range(len(self.scheme)):
            if i == HOLE:
                continue
            n = int(pages[i])
            self._text(("mib", i), xm, y, self._size_text(n), st.legend, pal.fg_ramp)
            c = -1 if counts is None else int(counts[i])
            self._text(("pct", i), xp, y, f"{c:,} folio{'s' * (c != 1)}" if c >= 0 else
                       f"{100.0 * n / self.ram_pages:.1f}%", st.legend, pal.dim_ramp)
            y += st.line
        if highlight is not None:
            x, y = self._line_xy(self._highlight_line)
            n = int(highlight[1])
            self._text("hl-mib", xm - g.legend_x + x, y, format_mib(n, self.page_size), st.legend,
                       pal.fg_ramp)
            self._text("hl-pct", xp - g.legend_x + x, y, f"{100.0 * n / self.ram_pages:.1f}%",
                       st.legend,
                       pal.dim_ramp)
        if self.opt.timeline and self.strips is not None and len(self.strips.times):
            y0, y1, cx = self.strips.cursor(g.timeline_x, g.timeline_y, g.timeline_w, t)
            old = self._slots.pop("cursor", None)
            if old is not None:
                a, b, c, d = old[1]
                canvas[a:b, c:d] = self.static[a:b, c:d]
                self._touched(old[1])
            canvas[y0:y1, cx:cx + 2] = pal.fg
            self._slots["cursor"] = ("", (y0, y1, cx, cx + 2))
            self._touched(self._slots["cursor"][1])
        return canvas

    def _update_map(self, blocks: np.ndarray, colors: np.ndarray) -> None:
        """Paint some pixels of the map (MapLayout's pixel numbers) in the canvas."""
        if self._index is None:
            self._index = self.layout.canvas_index(self.geo.map_x, self.geo.map_y,
                                                   self._canvas.shape[1])
        at = self._index[blocks]
        drawn = at >= 0
        self._canvas.reshape(-1)[at[drawn]] = colors[drawn]
        if self._dirty is not None:
            self._dirty[0].append(at[drawn])

    def _touched(self, rect: tuple[int, int, int, int]) -> None:
        if self._dirty is not None:
            self._dirty[1].append(rect)

    def take_dirty(self) -> tuple[np.ndarray, list[tuple[int, int, int, int]]] | None:
        """What changed in the canvas since the last call: None (maybe all of it), or (flat
        indices of pixels, rectangles (y0, y1, x0, x1))."""
        got, self._dirty = self._dirty, ([], [])
        if got is None:
            return None
        idx = np.concatenate(got[0]) if got[0] else np.zeros(0, np.int64)
        return idx, got[1]

    def _size_text(self, pages: int) -> str:  # a legend size (the block view counts cells)
        return format_mib(pages, self.page_size)

    def _text(self, slot, x: int, y: int, text: str, size: int, ramp: np.ndarray) -> None:
        """Right-aligned text that changes between frames: redrawn only when it differs."""
        old = self._slots.get(slot)
        if old is not None:
            if old[0] == text:
                return
            a, b, c, d = old[1]
            self._canvas[a:b, c:d] = self.static[a:b, c:d]
            self._touched(old[1])
        rects: list[tuple[int, int, int, int]] = []
        self.text.draw(self._canvas, x, y, text, size, ramp, align="right", dirty=rects,
                       fast=True)
        self._slots[slot] = (text, rects[0] if rects else (0, 0, 0, 0))
        for r in rects:
            self._touched(r)

