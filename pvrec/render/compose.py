"""One finished picture: the map, with legend, header, tile labels, zone marks and time strip.

The picture is an image of palette indices (uint8), the form every encoder takes: classes first
(index = class number), then the picture's own colours and two 8-step text ramps, so
anti-aliased text needs no RGB canvas. Everything that does not change between frames (labels,
swatches, zone ribbons, the timeline's areas) is drawn once into a static canvas; a frame is a
copy of it, the map pasted in, and a few short strings (time, sizes) drawn from a cache of
rendered text. ImageFont.load_default only has ASCII, so no text here uses anything else.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pvrec.classes import HOLE, Scheme
from pvrec.errors import PvrecError
from pvrec.render.raster import PANEL_GAP, MapLayout, format_offset, format_range
from pvrec.units import format_duration

THEME_UI = {
    #         background  text       dim text   ribbon A   ribbon B   changed    tile frame
    "light": ("#FFFFFF", "#1A1A1A", "#6B6B6B", "#C8C8C8", "#8C8C8C", "#000000", "#E8E8E8"),
    "dark": ("#101010", "#EDEDED", "#9C9C9C", "#4A4A4A", "#7E7E7E", "#FFFFFF", "#1C1C1C"),
}
RAMP_STEPS = 8
METRIC_COLORS = ("#1A1A1A", "#D55E00", "#0072B2", "#009E73")  # --timeline-metrics lines
METRIC_COLORS_DARK = ("#EDEDED", "#FF7A1A", "#56B4E9", "#33CC99")
METRICS_H = 48
DIM = 0.7  # --highlight: pages not highlighted are their class colour blended this far to the bg
FIT_DEFAULT = (1920, 1080)

# Font sizes (pixels at scale 1).
F_TITLE, F_INFO, F_LEGEND, F_LABEL = 16, 13, 13, 11
MARGIN = 14


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

    @classmethod
    def make(cls, scheme: Scheme, theme: str, dimming: float = 0.0, lines: int = 0
             ) -> Palette:
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
        if pos > 256:
            raise PvrecError(f"too many classes ({n}) for a 256-colour picture")
        return cls(colors, base, base + 1, base + 2, (base + 3, base + 4), base + 5, base + 6,
                   ramps[0], ramps[1], dimmed, tuple(line_idx))

    def trailer(self) -> bytes:
        """The palette as ffmpeg's pal8 wants it after each frame: 256 x 0xAARRGGBB, LE."""
        c = self.colors.astype(np.uint32)
        argb = (np.uint32(0xFF) << 24) | (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
        return argb.astype("<u4").tobytes()


class Text:
    """Draws ASCII text into index images, anti-aliased through a palette ramp; cached."""

    def __init__(self):
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}
        self._cache: dict[tuple[str, int], np.ndarray] = {}
        self._widths: dict[tuple[str, int], int] = {}
        self._glyph_cache: dict[tuple[str, int], tuple[np.ndarray, int]] = {}

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        if size not in self._fonts:
            self._fonts[size] = ImageFont.load_default(size=size)  # type: ignore[assignment]
        return self._fonts[size]

    def width(self, text: str, size: int) -> int:
        key = (text, size)
        w = self._widths.get(key)
        if w is None:
            w = self._widths[key] = int(np.ceil(self.font(size).getlength(text)))
        return w

    def height(self, size: int) -> int:
        a, d = self.font(size).getmetrics()
        return a + d

    def levels(self, text: str, size: int, fast: bool = False) -> np.ndarray:
        """Coverage of the text in 0..RAMP_STEPS-1, shape (height, width).

        fast: built from cached single glyphs (this font's advances are whole pixels and it
        has no kerning between digits), 10x cheaper than FreeType for strings that change
        every frame, such as the legend's sizes."""
        key = (text, size)
        got = self._cache.get(key)
        if got is None:
            text = text.encode("ascii", "replace").decode()
            cov = self._glyphs(text, size) if fast else self._render(text, size)
            got = ((cov.astype(np.uint16) * (RAMP_STEPS - 1) + 127) // 255).astype(np.uint8)
            if len(self._cache) > 512:  # a long recording's times: keep the memory flat
                self._cache.clear()
            self._cache[key] = got
        return got

    def _render(self, text: str, size: int) -> np.ndarray:
        w, h = max(1, self.width(text, size)), self.height(size)
        img = Image.new("L", (w, h), 0)
        ImageDraw.Draw(img).text((0, 0), text, font=self.font(size), fill=255)
        return np.asarray(img)

    GLYPH_PAD = 4

    def _glyphs(self, text: str, size: int) -> np.ndarray:
        pad = self.GLYPH_PAD
        cells = []
        for ch in text:
            cell = self._glyph_cache.get((ch, size))
            if cell is None:
                adv = int(round(self.font(size).getlength(ch)))
                img = Image.new("L", (adv + 2 * pad, self.height(size)), 0)
                ImageDraw.Draw(img).text((pad, 0), ch, font=self.font(size), fill=255)
                cell = self._glyph_cache[(ch, size)] = (np.asarray(img, np.uint16), adv)
            cells.append(cell)
        width = sum(adv for _, adv in cells)
        out = np.zeros((self.height(size), width + 2 * pad), dtype=np.uint16)
        x = pad
        for g, adv in cells:  # glyphs that reach into their neighbours add up, as FreeType's
            out[:, x - pad:x - pad + g.shape[1]] += g
            x += adv
        return np.minimum(out[:, pad:pad + max(1, width)], 255)

    def draw(self, canvas: np.ndarray, x: int, y: int, text: str, size: int, ramp: np.ndarray,
             align: str = "left", max_width: int | None = None,
             dirty: list | None = None, fast: bool = False) -> int:
        """Draw text at (x, y) (top-left, or top-right with align='right'); returns its width.
        The rectangle it covered is appended to `dirty` when given."""
        if max_width is not None:
            text = self.fit(text, size, max_width)
        lv = self.levels(text, size, fast)
        h, w = lv.shape
        if align == "right":
            x -= w
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(canvas.shape[1], x + w), min(canvas.shape[0], y + h)
        if x1 <= x0 or y1 <= y0:
            return w
        sub = lv[y0 - y:y1 - y, x0 - x:x1 - x]
        np.copyto(canvas[y0:y1, x0:x1], ramp[sub], where=sub > 0)
        if dirty is not None:
            dirty.append((y0, y1, x0, x1))
        return w

    def fit(self, text: str, size: int, max_width: int) -> str:
        """The text, shortened with '...' to fit max_width pixels."""
        if self.width(text, size) <= max_width:
            return text
        while text and self.width(text + "...", size) > max_width:
            text = text[:-1]
        return text + "..."


def format_mib(pages: int, page_size: int) -> str:
    mib = pages * page_size / (1 << 20)
    return f"{mib:,.0f} MiB" if mib >= 100 else f"{mib:.1f} MiB"


def _metric_value(v: float) -> str:
    """A metric's end of range: whole counts with thousands commas, ratios to 3 places."""
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:.3f}"


def format_time(t: float) -> str:
    """t=+12.0s, t=+2m05.0s, t=+1h02m03s (equal-width digits keep it still)."""
    return "t=+" + format_duration(t)


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


TIMELINE_H = 64
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

    def __init__(self, layout: MapLayout, scheme: Scheme, header: dict, options: Options, *,
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
            bottom = tl_y + TIMELINE_H + TILE_LABEL_H
            if self.metrics:
                bottom += 4 + METRICS_H + 4 + len(self.metrics[0]) * LEGEND_LINE
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
        cmd = self.header.get("command")
        if self.opt.title:
            title = self.opt.title
        elif isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
            title = shlex.join(cmd)
        else:
            title = "whole system"
        right_w = T.width(TIME_TEMPLATE, F_TITLE) + 24
        T.draw(canvas, MARGIN, MARGIN, title, F_TITLE, pal.fg_ramp,
               max_width=g.width - 2 * MARGIN - right_w)
        info = []
        for key, fmt in (("hostname", "{}"), ("kernel", "Linux {}"), ("start_wall", "{}")):
            v = self.header.get(key)
            if isinstance(v, str) and v:
                if key == "start_wall":  # ISO 8601 -> '2026-11-26 17:40'
                    v = v.replace("T", " ")[:16]
                info.append(fmt.format(v[:48]))
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
        if self.opt.timeline and self.timeline is not None:
            self._draw_timeline(canvas)
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

    def _draw_timeline(self, canvas: np.ndarray) -> None:
        """The classes' sizes over the whole recording, stacked, in legend order from the top."""
        g, pal, T = self.geo, self.palette, self.text
        times, pages = self.timeline  # type: ignore[misc]
        if len(times) == 0:
            return
        w, h = g.timeline_w, TIMELINE_H
        t0, span = float(times[0]), max(float(times[-1] - times[0]), 1e-9)
        col_t = t0 + (np.arange(w) + 0.5) / w * span
        idx = np.clip(np.searchsorted(times, col_t, "right") - 1, 0, len(times) - 1)
        shown = [c for c in range(pages.shape[1]) if c != HOLE]
        frac = pages[idx][:, shown].astype(np.float64)
        frac /= np.maximum(frac.sum(axis=1, keepdims=True), 1)
        edges = np.rint(np.concatenate([np.zeros((w, 1)), np.cumsum(frac, axis=1)], 1) * h)
        strip = np.full((h, w), pal.bg, dtype=np.uint8)
        ys = np.arange(h)[:, None]
        for j, cls in enumerate(shown):
            strip[(ys >= edges[:, j]) & (ys < edges[:, j + 1])] = cls
        x0, y0 = g.timeline_x, g.timeline_y
        canvas[y0 - 1:y0 + h + 1, x0 - 1:x0 + w + 1] = pal.frame
        canvas[y0:y0 + h, x0:x0 + w] = strip
        T.draw(canvas, x0, y0 + h + 2, format_time(0)[2:], F_LABEL, pal.dim_ramp)
        T.draw(canvas, x0 + w, y0 + h + 2, format_time(span)[2:], F_LABEL, pal.dim_ramp,
               align="right")
        if self.metrics:
            self._draw_metrics(canvas, idx)

    def _draw_metrics(self, canvas: np.ndarray, idx: np.ndarray) -> None:
        """Each metric a line under the class strip, scaled to its own range, labelled."""
        g, pal, T = self.geo, self.palette, self.text
        labels, values = self.metrics[:2]  # type: ignore[index]
        scale = self.metrics[2] if len(self.metrics) > 2 else None  # type: ignore[arg-type]
        w, h = g.timeline_w, METRICS_H
        x0, y0 = g.timeline_x, g.timeline_y + TIMELINE_H + TILE_LABEL_H + 4
        canvas[y0 - 1:y0 + h + 1, x0 - 1:x0 + w + 1] = pal.frame
        canvas[y0:y0 + h, x0:x0 + w] = pal.bg
        for j, label in enumerate(labels):
            v = values[idx, j].astype(np.float64)
            if scale is not None:
                lo, hi = float(scale[0][j]), float(scale[1][j])
            else:
                lo, hi = float(np.nanmin(values[:, j])), float(np.nanmax(values[:, j]))
            frac = (v - lo) / (hi - lo) if hi > lo else np.full(w, 0.5)
            y = 2 + np.rint((1 - np.nan_to_num(frac, nan=0.5)) * (h - 5)).astype(np.int64)
            top = np.minimum(y, np.r_[y[:1], y[:-1]])  # join each column to the one before
            bot = np.maximum(y, np.r_[y[:1], y[:-1]])
            ys = np.arange(h)[:, None]
            strip = canvas[y0:y0 + h, x0:x0 + w]
            strip[(ys >= top[None, :]) & (ys <= bot[None, :])] = pal.lines[j]
            ly = y0 + h + 4 + j * LEGEND_LINE
            canvas[ly + 6:ly + 8, x0:x0 + 14] = pal.lines[j]
            text = f"{label}  {_metric_value(lo)} .. {_metric_value(hi)}"
            T.draw(canvas, x0 + 20, ly, text, F_LABEL, pal.dim_ramp, max_width=w - 20)

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
            line = [k for _, k in self.legend_lines()].index("highlight")
            y = g.legend_y + (len(self.scheme) - 1 + line) * LEGEND_LINE
            n = int(highlight[1])
            self._text("hl-mib", xm, y, format_mib(n, self.page_size), F_LEGEND, pal.fg_ramp)
            self._text("hl-pct", xp, y, f"{100.0 * n / self.ram_pages:.1f}%", F_LEGEND,
                       pal.dim_ramp)
        if self.opt.timeline and self.timeline is not None and len(self.timeline[0]):
            times = self.timeline[0]
            span = max(float(times[-1] - times[0]), 1e-9)
            w = g.timeline_w
            cx = g.timeline_x + min(w - 1, max(0, int((t - float(times[0])) / span * w)))
            y0, y1 = g.timeline_y - 3, g.timeline_y + TIMELINE_H + 3
            if self.metrics:
                y1 += TILE_LABEL_H + 4 + METRICS_H
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


def choose_layout(header: dict, scheme: Scheme, options: Options, *, kind: str = "tiles",
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
    ks = [ppp] if ppp else [k for k in range(1, probe.row_pages + 1) if probe.row_pages % k == 0]
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
