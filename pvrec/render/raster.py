"""PFN -> pixel: where each page frame goes in the map. The one place that maps a PFN to a
pixel (`MapLayout.locate`): pictures, labels, zone marks and overlays all follow it.

Two layouts. `tiles` (the default, the seed article's figure): one row is one huge page
(hpage_pages pages), 512 rows make a tile (1 GiB on x86-64), tiles that hold no RAM are
skipped and the rest sit side by side in a grid. To fit a picture, a row may hold a few whole
huge pages and a tile a few GiB (`row_pages`, `tile_pages`): a huge page never straddles a
row, so THP and hugetlb blocks stay whole runs of pixels. `rows`: pixel (x, y) is PFN
window_start + y*width + x, the contract that tests and users composing their own figures rely on.

A layout may draw a window of the memory (--region: whole rows) and collapse stretches of
memory that never change (collapse.py finds them) into bands: a band is a Tile of kind "band",
BAND_ROWS pixels high across its panel's grid, in its place in PFN order, filled with the
stretch's one class. A pixel may stand for K consecutive pages of a row (pixels.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pvrec.classes import HOLE
from pvrec.errors import PvrecError
from pvrec.layout import TILE_ROWS  # noqa: F401 (rows per tile; others take it from here)
from pvrec.recording.header import Header
from pvrec.render.pixels import (  # noqa: F401 (the names other modules take from here)
    DOWNSAMPLE,
    RANK_FREE,
    RANK_UNMOVABLE,
    RANK_USED,
    ClassRuns,
    block_pixels,
    class_changes,
    merge_runs,
    page_ranks,
)
from pvrec.runs import blocks_touched, join_ranges

PANEL_GAP = 24  # pixels between the panels of NUMA nodes
BAND_ROWS = 5  # the height of a band of collapsed memory, in pixels


@dataclass
class Tile:
    """One block of consecutive rows drawn as a rectangle of the map."""

    first_pfn: int
    rows: int
    x: int = 0
    y: int = 0
    panel: int = 0  # the NUMA node panel it is drawn in (0 with one node)
    pages: int = 0  # the pages it shows from first_pfn (0: rows whole rows)
    kind: str = "tile"  # or "band": a collapsed stretch of pages, all of class `cls`
    cls: int = HOLE
    w: int = 0  # a band's width in pixels (arrange() sets it)

    @property
    def end_pfn(self) -> int:
        return self.first_pfn + self.pages


@dataclass
class Mark:
    """A zone or node boundary (or start), for the picture to draw and name."""

    pfn: int
    kind: str  # "zone" or "node"
    name: str
    end_pfn: int


def holes_of(header: Header) -> list[tuple[int, int]]:
    """PFN ranges in [0, pfn_count) that are not RAM (none when the header has no RAM ranges)."""
    n = header.pfn_count
    holes, pos = [], 0
    for s, e in header.ram_ranges:  # clipped to [0, pfn_count), sorted and merged (Header)
        if s > pos:
            holes.append((pos, s))
        pos = e
    if header.ram_ranges and pos < n:
        holes.append((pos, n))
    return holes


def marks_of(header: Header) -> list[Mark]:
    """Zone and node spans of the header, in PFN order."""
    n = header.pfn_count
    several = len(header.nodes) > 1
    marks = [Mark(z.start_pfn, "zone", (f"{z.name} (node {z.node})" if several else z.name)[:24],
                  min(z.end_pfn, n))
             for z in header.zones if z.start_pfn < n]
    if several:
        marks += [Mark(nd.ranges[0][0], "node", f"node {nd.node}", nd.ranges[-1][1])
                  for nd in header.nodes if nd.ranges]
    marks.sort(key=lambda m: (m.pfn, m.kind))
    return marks


def node_spans(header: Header) -> list[tuple[int, int, int]]:
    """(node, first PFN, end PFN) of each NUMA node with memory, in PFN order; [] for one node
    (or a header that does not say)."""
    if len(header.nodes) < 2:
        return []
    spans = sorted(((nd.node, nd.ranges[0][0], nd.ranges[-1][1]) for nd in header.nodes
                    if nd.ranges), key=lambda x: x[1])
    if len(spans) < 2 or any(a[2] > b[1] for a, b in zip(spans, spans[1:], strict=False)):
        return []  # one node with memory, or interleaved nodes: one map
    return spans


def tile_shapes(header: Header) -> list[tuple[int | None, int | None]]:
    """(pages per row, pages per tile) to try: rows of 1, 2, 4, ... huge pages (tiles of at
    least 8 rows), tiles of 1 GiB or the smallest size giving at most 64 tiles, and 2, 4 and
    8 times that; (None, None) is the default, 1 GiB tiles of one huge page per row."""
    hpage = header.hpage_pages
    base = hpage * TILE_ROWS
    tile = base
    while -(-header.pfn_count // tile) > 64:
        tile *= 2
    out: list[tuple[int | None, int | None]] = []
    for _ in range(4):
        m = 1
        while tile // (hpage * m) >= 8:
            out.append((None if m == 1 else hpage * m, None if tile == base else tile))
            m *= 2
        if tile >= header.pfn_count:
            break
        tile *= 2
    return out


def divisors(n: int) -> list[int]:
    """The divisors of n, ascending."""
    return [k for k in range(1, n + 1) if n % k == 0]


@dataclass
class MapLayout:
    """The geometry of the map: rows of pages, tiles of rows (and bands), their places."""

    pfn_count: int
    row_pages: int  # pages per row
    ppp: int  # pages per pixel (K)
    tile_rows: int
    tiles: list[Tile]
    holes: list[tuple[int, int]]
    page_size: int = 4096
    kind: str = "tiles"
    gap: int = 0
    vgap: int = 0
    cols: int = 1
    width: int = 0
    height: int = 0
    marks: list[Mark] = field(default_factory=list)
    look: object = None  # what compose.choose_layout chose around this map (its Look)
    window: tuple[int, int] = (0, 0)  # the PFNs drawn, [start, end) (--region; all by default)
    frames_seen: int = 0  # how many frames decided what is collapsed (bands: "unchanged")

    # -- construction

    @classmethod
    def build(cls, header: Header, *, kind: str = "tiles", ppp: int = 1, width: int | None = None,
              cols: int | None = None, gap: int = 0, vgap: int | None = None,
              row_pages: int | None = None, tile_pages: int | None = None,
              window: tuple[int, int] | None = None,
              bands: list[tuple[int, int, int]] | None = None) -> MapLayout:
        """The layout of a recording's header (see the module docstring). For tiles,
        row_pages (default one huge page) and tile_pages (default 512 huge pages) are whole
        numbers of huge pages, the tile a whole number of rows. window: the PFNs drawn (whole
        rows); bands: (first, end, class) stretches drawn as bands (collapse.py), tiles only."""
        n, page_size, hpage = header.pfn_count, header.page_size, header.hpage_pages
        if kind == "rows":
            row = width or hpage
            if row < 1:
                raise PvrecError(f"--width must be at least 1, not {row}")
        elif kind == "tiles":
            if width is not None:
                raise PvrecError("--width is for --layout rows (tiles are one huge page wide)")
            row = row_pages or hpage
            tile_pages = tile_pages or hpage * TILE_ROWS
            if row % hpage or tile_pages % row:
                raise PvrecError(f"a row of {row} pages is not whole huge pages of {hpage}, or "
                                 f"a tile of {tile_pages} pages not whole rows")
        else:
            raise PvrecError(f"unknown --layout {kind!r}: use tiles or rows")
        if ppp < 1 or row % ppp:
            raise PvrecError(
                f"--pages-per-pixel {ppp} does not divide the row of {row} pages; "
                f"use one of {', '.join(map(str, divisors(row)))}")
        holes = holes_of(header)
        ws, we = window or (0, n)
        if kind == "rows":
            tiles = [Tile(ws, -(-(we - ws) // row), pages=we - ws)]
            tile_rows = tiles[0].rows
        else:
            tile_rows = tile_pages // row
            tiles = []
            spans = [(s, e) for _node, s, e in node_spans(header)] or [(0, n)]
            for panel, (s, e) in enumerate(spans):
                s, e = max(s, ws), min(e, we)
                pos = s - s % row
                for b0, b1, c in [b for b in bands or () if s <= b[0] < e] + [(e, e, HOLE)]:
                    for first in range(pos, b0, tile_pages):
                        last = min(first + tile_pages, b0)
                        if not _covered(holes, first, last):
                            tiles.append(Tile(first, -(-(last - first) // row), panel=panel,
                                              pages=last - first))
                    if b1 > b0:
                        tiles.append(Tile(b0, BAND_ROWS, panel=panel, pages=b1 - b0,
                                          kind="band", cls=c))
                    pos = b1
        marks = [m for m in marks_of(header) if m.pfn < we and ws < m.end_pfn]
        lay = cls(n, row, ppp, tile_rows, tiles, holes, page_size, kind, gap, gap,
                  marks=marks, window=(ws, we))
        lay.arrange(cols or len(tiles), vgap)
        return lay

    @property
    def panels(self) -> list[list[Tile]]:
        """The tiles (and bands) of each NUMA node panel (one panel on a single-node machine)."""
        out: list[list[Tile]] = []
        for t in self.tiles:
            while len(out) <= t.panel:
                out.append([])
            out[t.panel].append(t)
        return [p for p in out if p]

    @property
    def bands(self) -> list[Tile]:
        return [t for t in self.tiles if t.kind == "band"]

    @property
    def max_cols(self) -> int:
        """The most columns arrange() can use: the tiles of the largest panel."""
        return max((sum(t.kind == "tile" for t in p) for p in self.panels), default=1) or 1

    def arrange(self, cols: int, vgap: int | None = None) -> None:
        """Place the tiles in a grid of `cols` columns (row-major): `gap` pixels apart
        side by side, `vgap` between grid rows (room for labels; default: as before). A band
        ends the grid row and spans the grid's width. With several NUMA nodes each node's
        tiles get such a grid, the grids side by side."""
        self.cols = max(1, min(cols, self.max_cols))
        if vgap is not None:
            self.vgap = vgap
        self.width, self.height = self._flow(self.cols, place=True)

    def size_for(self, cols: int) -> tuple[int, int]:
        """(width, height) of the map if arranged in `cols` columns (a last, partial tile is
        only as tall as its rows)."""
        return self._flow(max(1, min(cols, self.max_cols)), place=False)

    def _flow(self, cols: int, place: bool) -> tuple[int, int]:
        """Lay the panels out (placing the tiles if `place`); the map's (width, height)."""
        w, width, height = self.tile_width, 0, 0
        for i, tiles in enumerate(self.panels):
            c_n = max(1, min(cols, sum(t.kind == "tile" for t in tiles)))
            grid_w = c_n * w + (c_n - 1) * self.gap
            x0 = width + PANEL_GAP * (i > 0)
            y = c = row_h = bottom = 0
            for t in tiles:
                if t.kind == "band" or c == c_n:  # a new grid row
                    if c:
                        y += row_h + self.vgap
                    c = row_h = 0
                if place:
                    t.x, t.y = x0 + c * (w + self.gap), y
                    t.w = grid_w if t.kind == "band" else w
                bottom = max(bottom, y + t.rows)
                if t.kind == "band":
                    y += t.rows + self.vgap
                else:
                    c, row_h = c + 1, max(row_h, self.tile_rows)
            width = x0 + grid_w
            height = max(height, bottom)
        return width, height

    @property
    def tile_width(self) -> int:
        return self.row_pages // self.ppp

    def tile_label(self, tile: Tile) -> str:
        """The tile's offset in physical memory, e.g. '4 GiB'."""
        return format_offset(tile.first_pfn * self.page_size)

    def locate(self, pfn: int) -> tuple[Tile, int, int] | None:
        """(tile, x, y) of the pixel showing pfn in the map image, or None if not drawn (a
        PFN of a band: its place along the band)."""
        for t in self.tiles:
            if t.first_pfn <= pfn < t.end_pfn:
                off = pfn - t.first_pfn
                if t.kind == "band":
                    return t, t.x + off * t.w // t.pages, t.y
                return t, t.x + (off % self.row_pages) // self.ppp, t.y + off // self.row_pages
        return None

    def band_pages(self) -> int:
        """RAM pages drawn as bands (the rest of the window's RAM gets the pixels)."""
        return sum(self.ram_in(t.first_pfn, t.end_pfn) for t in self.bands)

    def ram_in(self, start: int, end: int) -> int:
        """RAM pages in [start, end)."""
        return max(0, end - start) - sum(max(0, min(e, end) - max(s, start))
                                         for s, e in self.holes)

    # -- per frame

    @property
    def blocks(self) -> int:
        """Pixels (blocks of K pages) covering [0, pfn_count), the last one maybe partial."""
        return -(-self.pfn_count // self.ppp)

    def class_runs(self, cls_run: np.ndarray, lengths: np.ndarray,
                   ranks: np.ndarray | None = None) -> ClassRuns:
        """The frame as runs of classes: neighbours of one class (and rank) joined, the
        layout's holes (and the padding of a last partial pixel) spliced in as HOLE runs.
        ranks (page_ranks of the runs' flags) make pixel_classes keep the pages that fragment."""
        pad = -self.pfn_count % self.ppp
        return _splice(cls_run, lengths, ranks, self.holes, pad)

    def class_runs_in(self, cls_run: np.ndarray, lengths: np.ndarray, ranks: np.ndarray | None,
                      starts: np.ndarray, ends: np.ndarray) -> ClassRuns:
        """class_runs of the pages of some ranges of whole pixels only (the runs cut to them,
        slice_ranges), as if the ranges were one stretch of memory: the pixels of the
        ranges, in order, are block_pixels of the result."""
        offset = np.cumsum(ends - starts) - (ends - starts)  # each range's place in the stretch
        holes = []
        for s, e in self.holes:
            i, j = np.searchsorted(ends, s, "right"), np.searchsorted(starts, e, "left")
            lo, hi = np.maximum(starts[i:j], s), np.minimum(ends[i:j], e)
            holes += [(int(a), int(b)) for a, b in zip(lo - starts[i:j] + offset[i:j],
                                                       hi - starts[i:j] + offset[i:j],
                                                       strict=True)]
        pad = -self.pfn_count % self.ppp if ends.size and ends[-1] == self.pfn_count else 0
        return _splice(cls_run, lengths, ranks, holes, pad)

    def pixel_ranges(self, changed: tuple[np.ndarray, np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """The pixels (blocks of K pages) a set of page ranges touches, as block ranges."""
        s, e = changed
        return join_ranges(s // self.ppp, (e - 1) // self.ppp + 1)

    def canvas_index(self, x0: int, y0: int, width: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where each pixel block is in a canvas of that width with the map at (x0, y0), as
        place() draws it: (flat index per block, -1 where not drawn (bands, outside the
        window); then (block, flat index) of the blocks drawn twice: a row that two NUMA
        panels both show)."""
        w, blocks, places = self.tile_width, [], []
        for t in self.tiles:
            if t.kind == "band":
                continue
            first = t.first_pfn // self.ppp
            k = np.arange(min(-(-t.pages // self.ppp), max(0, self.blocks - first)))
            blocks.append(first + k)
            places.append((y0 + t.y + k // w) * width + x0 + t.x + k % w)
        dtype = np.int32 if (y0 + self.height + 1) * width < 1 << 31 else np.int64
        out = np.full(self.blocks, -1, dtype=dtype)
        if not blocks:
            return out, np.zeros(0, np.int64), np.zeros(0, dtype)
        b, at = np.concatenate(blocks), np.concatenate(places).astype(dtype)
        out[b[::-1]] = at[::-1]  # the first place of each block
        again = np.zeros(b.size, dtype=bool)  # a place after the block's first
        order = np.argsort(b, kind="stable")
        again[order[1:]] = b[order[1:]] == b[order[:-1]]
        return out, b[again], at[again]

    def window_ram(self) -> list[tuple[int, int]]:
        """The page ranges of the window that are RAM: those class_pages counts."""
        ws, we = self.window
        out, pos = [], ws
        for s, e in self.holes:
            if s > pos and pos < we:
                out.append((pos, min(s, we)))
            pos = max(pos, e)
        if pos < we:
            out.append((pos, we))
        return out

    def pixel_classes(self, runs: ClassRuns) -> np.ndarray:
        """One uint8 class per pixel (see pixels)."""
        return self.pixels(runs)[0]

    def pixels(self, runs: ClassRuns) -> tuple[np.ndarray, np.ndarray | None]:
        """(one uint8 class per pixel, the partly free pixels' indices or None): block_pixels."""
        return block_pixels(runs, self.ppp)

    def tile_pixels(self, px: np.ndarray, t: Tile, fill: int = HOLE) -> np.ndarray:
        """The (rows, width) pixels of one tile out of pixel_classes() (a view when whole);
        past the tile's pages, `fill`."""
        w = self.tile_width
        first = t.first_pfn // self.ppp
        need = t.rows * w
        have = min(-(-t.pages // self.ppp), max(0, px.size - first))
        if have == need:
            return px[first:first + need].reshape(t.rows, w)
        flat = np.full(need, fill, dtype=np.uint8)
        flat[:have] = px[first:first + have]
        return flat.reshape(t.rows, w)

    def place(self, px: np.ndarray, out: np.ndarray, x0: int = 0, y0: int = 0,
              band_colors: np.ndarray | None = None) -> None:
        """Copy pixel blocks into an image at offset (x0, y0), tile by tile (a band: its
        class, or band_colors[class])."""
        w = self.tile_width
        for t in self.tiles:
            x, y = x0 + t.x, y0 + t.y
            if t.kind == "band":
                out[y:y + t.rows, x:x + t.w] = t.cls if band_colors is None else \
                    band_colors[t.cls]
            else:
                out[y:y + t.rows, x:x + w] = self.tile_pixels(px, t)

    @property
    def ram_pages(self) -> int:
        """Pages of the window that are RAM (not in a hole)."""
        return self.ram_in(*self.window)

    def class_pages(self, runs: ClassRuns, n_classes: int) -> np.ndarray:
        """Pages per class (int64) of the window, RAM only: layout holes and padding are not
        counted."""
        ln = runs.lengths
        ws, we = self.window
        if (ws, we) != (0, self.pfn_count):
            ends = np.cumsum(ln)
            ln = np.clip(np.minimum(ends, we) - np.maximum(ends - ln, ws), 0, None)
        else:
            ln = ln.copy()
            ln[-1] -= max(0, int(ln.sum()) - self.pfn_count)  # the padding of a last pixel
        counts = np.bincount(runs.cls, weights=ln, minlength=n_classes)
        counts[HOLE] -= (we - ws) - self.ram_pages
        return np.rint(counts).astype(np.int64)

    def changed_blocks(self, prev: ClassRuns, cur: ClassRuns) -> tuple[np.ndarray, int]:
        """(bool per pixel: a page in it changed class, pages that changed class)."""
        s, e = class_changes(prev, cur)
        return blocks_touched(s, e, self.ppp, self.blocks), int((e - s).sum())


def _splice(cls_run: np.ndarray, lengths: np.ndarray, ranks: np.ndarray | None,
            holes: list[tuple[int, int]], pad: int) -> ClassRuns:
    """Class runs with the holes (sorted page ranges) spliced in as HOLE, `pad` HOLE pages
    appended: MapLayout.class_runs of the pages given."""
    code = np.asarray(cls_run, dtype=np.uint16)
    if ranks is not None:
        code = code | (np.asarray(ranks, dtype=np.uint16) << 8)
    code, ln = merge_runs(code, np.asarray(lengths, dtype=np.int64))
    if holes:
        ends = np.cumsum(ln)
        for s, e in holes:
            i = int(np.searchsorted(ends, s, "right"))
            j = int(np.searchsorted(ends, e - 1, "right"))
            start_i = int(ends[i] - ln[i])
            mid_c, mid_l = [HOLE], [e - s]
            if s > start_i:
                mid_c.insert(0, code[i])
                mid_l.insert(0, s - start_i)
            if ends[j] > e:
                mid_c.append(code[j])
                mid_l.append(int(ends[j]) - e)
            code = np.concatenate((code[:i], np.array(mid_c, np.uint16), code[j + 1:]))
            ln = np.concatenate((ln[:i], np.array(mid_l, np.int64), ln[j + 1:]))
            ends = np.cumsum(ln)
    if pad:
        code = np.append(code, np.uint16(HOLE))
        ln = np.append(ln, np.int64(pad))
    code, ln = merge_runs(code, ln)
    cls = code.astype(np.uint8)  # the low byte
    if ranks is None:
        return ClassRuns(cls, ln)
    return ClassRuns(cls, ln, (code >> 8).astype(np.uint8))


def _covered(holes: list[tuple[int, int]], first: int, last: int) -> bool:
    """True when [first, last) lies entirely inside holes."""
    for s, e in holes:
        if s <= first and last <= e:
            return True
    return False


def format_offset(nbytes: int) -> str:
    """A physical address or size as a label: '0 GiB', '3.5 GiB', '512 MiB', '256 KiB'."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if nbytes >= 1 << shift or (nbytes == 0 and shift == 30):
            v = nbytes / (1 << shift)
            return f"{v:.0f} {unit}" if nbytes % (1 << shift) == 0 else f"{v:.1f} {unit}"
    return f"{nbytes} B"


def format_range(start: int, end: int) -> str:
    """A span of bytes in one unit, that of its end: '16 MiB - 4 GiB' stays, '0 - 8 MiB'."""
    if start == 0:
        return f"0 - {format_offset(end)}"
    return f"{format_offset(start)} - {format_offset(end)}"
