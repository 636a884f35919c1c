"""ASCII text drawn into index images through a palette ramp, and the strings the picture shows.

ImageFont.load_default (a FreeType font at any size, no system fonts needed) has only ASCII,
so no text here uses anything else; its digits are equal width, so times do not jitter.
Rendered strings and single glyphs are cached: the per-frame text costs 1-2 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pvrec.render.palette import RAMP_STEPS
from pvrec.units import format_duration

# Font sizes (pixels at scale 1).
F_TITLE, F_INFO, F_LEGEND, F_LABEL = 16, 13, 13, 11

# No text is drawn with capitals shorter than this, in pixels of the picture (before --scale):
# size 10 of the built-in font, the smallest whose digits and capitals stay apart when a
# browser shows the picture at its own width (checked in a 760 px column).
MIN_CAP = 8


@dataclass(frozen=True)
class TextStyle:
    """The sizes of the picture's text and the lines that hold it."""

    title: int = F_TITLE
    info: int = F_INFO
    legend: int = F_LEGEND
    label: int = F_LABEL
    line: int = 19  # a legend line
    label_h: int = 15  # a row of tile offsets (above tiles) or zone names (below)
    swatch: int = 12
    title_room: int = 240  # the header's width beyond the time: room for the title


NORMAL = TextStyle()
COMPACT = TextStyle(13, 11, 11, 10, 15, 13, 10, 100)  # for small --fit sizes
STYLES = (NORMAL, COMPACT)


def cap_height(size: int) -> int:
    """Pixels from the baseline to the top of a capital H at this font size."""
    box = ImageFont.load_default(size=size).getbbox("H")
    return int(box[3] - box[1])


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


def metric_value(v: float) -> str:
    """A metric's end of range: whole counts with thousands commas, ratios to 3 places."""
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:.3f}"


def format_time(t: float) -> str:
    """t=+12.0s, t=+2m05.0s, t=+1h02m03s (equal-width digits keep it still)."""
    return "t=+" + format_duration(t)
