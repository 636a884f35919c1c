"""PFN -> pixel: where each page frame goes in the map, and one class number per pixel.

Two layouts. `tiles` (the default, the seed article's figure): one row is one huge page
(hpage_pages pages), 512 rows make a tile (1 GiB on x86-64), tiles that hold no RAM are
skipped and the rest sit side by side in a grid. To fit a picture, a row may hold a few whole
huge pages and a tile a few GiB (`row_pages`, `tile_pages`): a huge page never straddles a
row, so THP and hugetlb blocks stay whole runs of pixels. `rows`: pixel (x, y) is PFN y*width + x, the
contract that tests and users composing their own figures rely on.

A pixel may stand for K consecutive pages of a row (--pages-per-pixel). By default it keeps
the pages that fragment (`--downsample keep`): each page has a rank by its flags (free, in use,
unmovable: docs/metrics.md's masks), the pixel shows the most common class among its pages of
the highest rank present (a slab page among 511 free pages is drawn as slab), and is marked
partly free when free pages are also in it (drawn in its class's partly-free tint).
`--downsample mode` is the old rule: the most common class (ties go to the class listed first).
Everything works on the frame's runs: the class of most pixels is the class of the run holding
their first page (one np.repeat over the runs), and only the pixels that a run boundary or a RAM
hole cuts through are counted page by page. That keeps a 6.5M-page frame at a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from pvrec import flags as kpf
from pvrec.blocks import unmovable_values
from pvrec.classes import HOLE
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.runs import blocks_touched

DOWNSAMPLE = ("keep", "mode")  # --downsample: keep the pages that fragment, or the most common
RANK_FREE, RANK_USED, RANK_UNMOVABLE = 1, 2, 3  # a page's rank in a pixel (0: a hole)
_BUDDY = np.uint64(kpf.bit(kpf.BUDDY))
_TOP_RANK = np.array([max((r for r in range(4) if m >> r & 1), default=0) for m in range(16)],
                     dtype=np.uint8)  # the highest rank in a 4-bit set of ranks
TILE_ROWS = 512  # rows (huge pages) per tile: 1 GiB with 4 KiB pages and 2 MiB huge pages
PANEL_GAP = 24  # pixels between the panels of NUMA nodes


@dataclass
class Tile:
    """One block of consecutive rows drawn as a rectangle of the map."""

    first_pfn: int
    rows: int
    x: int = 0
    y: int = 0
    panel: int = 0  # the NUMA node panel it is drawn in (0 with one node)


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
    """The geometry of the map: rows of pages, tiles of rows, and their places in the image."""

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

    # -- construction

    @classmethod
    def build(cls, header: Header, *, kind: str = "tiles", ppp: int = 1, width: int | None = None,
              cols: int | None = None, gap: int = 0, vgap: int | None = None,
              row_pages: int | None = None, tile_pages: int | None = None) -> MapLayout:
        """The layout of a recording's header (see the module docstring). For tiles,
        row_pages (default one huge page) and tile_pages (default 512 huge pages) are whole
        numbers of huge pages, the tile a whole number of rows."""
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
        total_rows = -(-n // row)
        if kind == "rows":
            tiles = [Tile(0, total_rows)]
            tile_rows = total_rows
        else:
            tile_rows = tile_pages // row
            tiles = []
            spans = node_spans(header)
            if spans:  # one panel per node: its tiles start where the node starts
                for panel, (_node, s, e) in enumerate(spans):
                    for first in range(s - s % row, e, tile_pages):
                        last = min(first + tile_pages, e)
                        if not _covered(holes, first, last):
                            tiles.append(Tile(first, -(-(last - first) // row), panel=panel))
            else:
                for first in range(0, n, tile_pages):
                    last = min(first + tile_pages, n)
                    if not _covered(holes, first, last):
                        tiles.append(Tile(first, -(-(last - first) // row)))
        lay = cls(n, row, ppp, tile_rows, tiles, holes, page_size, kind, gap, gap,
                  marks=marks_of(header))
        lay.arrange(cols or len(tiles), vgap)
        return lay

    @property
    def panels(self) -> list[list[Tile]]:
        """The tiles of each NUMA node panel (one panel on a single-node machine)."""
        out: list[list[Tile]] = []
        for t in self.tiles:
            while len(out) <= t.panel:
                out.append([])
            out[t.panel].append(t)
        return [p for p in out if p]

    @property
    def max_cols(self) -> int:
        """The most columns arrange() can use: the tiles of the largest panel."""
        return max((len(p) for p in self.panels), default=1)

    def arrange(self, cols: int, vgap: int | None = None) -> None:
        """Place the tiles in a grid of `cols` columns (row-major): `gap` pixels apart
        side by side, `vgap` between grid rows (room for labels; default: as before). With
        several NUMA nodes each node's tiles get such a grid, the grids side by side."""
        self.cols = max(1, min(cols, self.max_cols))
        if vgap is not None:
            self.vgap = vgap
        w = self.tile_width
        x0 = 0
        for tiles in self.panels:
            c_n = min(self.cols, len(tiles))
            for i, t in enumerate(tiles):
                r, c = divmod(i, c_n)
                t.x = x0 + c * (w + self.gap)
                t.y = r * (self.tile_rows + self.vgap)
            x0 += c_n * w + (c_n - 1) * self.gap + PANEL_GAP
        self.width, self.height = self.size_for(self.cols)

    @property
    def tile_width(self) -> int:
        return self.row_pages // self.ppp

    def size_for(self, cols: int) -> tuple[int, int]:
        """(width, height) of the map if arranged in `cols` columns (a last, partial tile is
        only as tall as its rows)."""
        cols = max(1, min(cols, self.max_cols))
        width = height = 0
        for tiles in self.panels:
            c_n = min(cols, len(tiles))
            rows = -(-len(tiles) // c_n)
            last_row = max(t.rows for t in tiles[(rows - 1) * c_n:])
            width += c_n * self.tile_width + (c_n - 1) * self.gap
            height = max(height, (rows - 1) * (self.tile_rows + self.vgap) + last_row)
        return width + PANEL_GAP * (len(self.panels) - 1), height

    def tile_label(self, tile: Tile) -> str:
        """The tile's offset in physical memory, e.g. '4 GiB'."""
        return format_offset(tile.first_pfn * self.page_size)

    def locate(self, pfn: int) -> tuple[Tile, int, int] | None:
        """(tile, x, y) of the pixel showing pfn in the map image, or None if not drawn."""
        for t in self.tiles:
            span = t.rows * self.row_pages
            if t.first_pfn <= pfn < t.first_pfn + span:
                off = pfn - t.first_pfn
                return t, t.x + (off % self.row_pages) // self.ppp, t.y + off // self.row_pages
        return None

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
        code = np.asarray(cls_run, dtype=np.uint16)
        if ranks is not None:
            code = code | (np.asarray(ranks, dtype=np.uint16) << 8)
        code, ln = _merge(code, np.asarray(lengths, dtype=np.int64))
        if self.holes:
            ends = np.cumsum(ln)
            for s, e in self.holes:
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
        pad = -self.pfn_count % self.ppp
        if pad:
            code = np.append(code, np.uint16(HOLE))
            ln = np.append(ln, np.int64(pad))
        code, ln = _merge(code, ln)
        cls = code.astype(np.uint8)  # the low byte
        if ranks is None:
            return ClassRuns(cls, ln)
        return ClassRuns(cls, ln, (code >> 8).astype(np.uint8))

    def pixel_classes(self, runs: ClassRuns) -> np.ndarray:
        """One uint8 class per pixel (see pixels)."""
        return self.pixels(runs)[0]

    def pixels(self, runs: ClassRuns) -> tuple[np.ndarray, np.ndarray | None]:
        """(one uint8 class per pixel, the pixels that are partly free: their indices, sorted;
        None without ranks).

        Without ranks a pixel is the most common class of its K pages (ties: the class listed
        first, but RAM before holes). With ranks it is the most common class among its pages
        of the highest rank (unmovable, in use, free, hole), and partly free when it is in use
        and holds free pages too."""
        k = self.ppp
        cls, ln = runs.cls, runs.lengths
        keep = runs.ranks is not None
        if k == 1:
            return np.repeat(cls, ln), None  # no pixel mixes pages
        ends = np.cumsum(ln)
        starts = ends - ln
        # Pixels cut by a run boundary: add up the pieces of runs inside each of them. A run
        # has a head piece (in its first pixel) and, if it reaches another pixel, a tail piece
        # (in its last); pieces shorter than K are exactly those of the cut pixels.
        if k & (k - 1) == 0:  # a power of two (always, for 512-page rows): shifts, no division
            sh = k.bit_length() - 1
            fb, lb = starts >> sh, (ends - 1) >> sh
            px = np.repeat(cls, ((ends + (k - 1)) >> sh) - ((starts + (k - 1)) >> sh))
            head = np.minimum(ends, (fb + 1) << sh) - starts
            tail = ends - (lb << sh)
        else:
            fb, lb = starts // k, (ends - 1) // k
            px = np.repeat(cls, -(-ends // k) + (-starts // k))
            head = np.minimum(ends, (fb + 1) * k) - starts
            tail = ends - lb * k
        partly = np.zeros(0, np.int64) if keep else None
        tail[lb == fb] = k  # no tail piece (k: dropped below)
        n_cls = int(cls.max()) + 1
        code = cls.astype(np.int64)
        if keep:  # the rank rides in the key's low 2 bits: pixel * 4n_cls + class * 4 + rank
            code *= 4
            code += np.where(cls == HOLE, 0, runs.ranks)  # a hole (or padding) ranks lowest
            n_cls *= 4
        n = cls.size
        key = np.empty(2 * n, dtype=np.int64)  # pixel * n_cls + class, in PFN order
        amount = np.empty(2 * n, dtype=np.int64)
        np.multiply(fb, n_cls, out=key[0::2])
        key[0::2] += code
        np.multiply(lb, n_cls, out=key[1::2])
        key[1::2] += code
        amount[0::2], amount[1::2] = head, tail
        cut = amount < k
        key, amount = key[cut], amount[cut]
        if key.size == 0:
            return px, partly
        blk = key // n_cls
        first = np.empty(blk.size, dtype=bool)
        first[0] = True
        np.not_equal(blk[1:], blk[:-1], out=first[1:])
        mixed = blk[first]
        group = np.cumsum(first)
        group -= 1
        key -= blk * n_cls  # the class (and rank) again
        if keep:
            rank = (key & 3).astype(np.uint8)
            present = np.bitwise_or.reduceat(np.left_shift(1, rank, dtype=np.uint8),
                                             np.flatnonzero(first))  # the ranks in each pixel
            top = _TOP_RANK[present]
            partly = mixed[(present & (1 << RANK_FREE) != 0) & (top > RANK_FREE)]
            amount *= rank == top[group]  # only the pages of the pixel's top rank count
            key >>= 2
            n_cls //= 4
        key += group * n_cls  # index into the (mixed pixels x classes) table
        counts = np.bincount(key, weights=amount, minlength=mixed.size * n_cls)
        counts = counts.reshape(mixed.size, n_cls) * 2
        if not keep:
            counts[:, HOLE] -= counts[:, HOLE] > 0  # a tie between RAM and a hole shows the RAM
        px[mixed] = np.argmax(counts, axis=1)
        return px, partly

    def tile_pixels(self, px: np.ndarray, t: Tile, fill: int = HOLE) -> np.ndarray:
        """The (rows, width) pixels of one tile out of pixel_classes() (a view when whole)."""
        w = self.tile_width
        first = t.first_pfn // self.ppp
        need = t.rows * w
        if first + need <= px.size:
            return px[first:first + need].reshape(t.rows, w)
        flat = np.full(need, fill, dtype=np.uint8)
        avail = max(0, px.size - first)
        flat[:avail] = px[first:first + avail]
        return flat.reshape(t.rows, w)

    def place(self, px: np.ndarray, out: np.ndarray, x0: int = 0, y0: int = 0) -> None:
        """Copy pixel blocks into an image at offset (x0, y0), tile by tile."""
        w = self.tile_width
        for t in self.tiles:
            out[y0 + t.y:y0 + t.y + t.rows, x0 + t.x:x0 + t.x + w] = self.tile_pixels(px, t)

    @property
    def ram_pages(self) -> int:
        """Pages that are RAM (not in a hole)."""
        return self.pfn_count - sum(e - s for s, e in self.holes)

    def class_pages(self, runs: ClassRuns, n_classes: int) -> np.ndarray:
        """Pages per class (int64), RAM only: layout holes and padding are not counted."""
        counts = np.bincount(runs.cls, weights=runs.lengths, minlength=n_classes)
        counts[HOLE] -= self.pfn_count - self.ram_pages + (-self.pfn_count % self.ppp)
        return np.rint(counts).astype(np.int64)

    def changed_blocks(self, prev: ClassRuns, cur: ClassRuns) -> tuple[np.ndarray, int]:
        """(bool per pixel: a page in it changed class, pages that changed class)."""
        s, e = class_changes(prev, cur)
        return blocks_touched(s, e, self.ppp, self.blocks), int((e - s).sum())


class ClassRuns(NamedTuple):
    """A frame as runs of page classes (uint8 class, int64 length; uint8 rank, or None)."""

    cls: np.ndarray
    lengths: np.ndarray
    ranks: np.ndarray | None = None


def page_ranks(values: np.ndarray) -> np.ndarray:
    """The rank of each flag value in a pixel: free (buddy), unmovable (docs/metrics.md's
    `mixed_blocks` definition, pvrec.blocks' masks) or else in use."""
    v = np.asarray(values, dtype=np.uint64)
    out = np.full(v.shape, RANK_USED, dtype=np.uint8)
    out[unmovable_values(v)] = RANK_UNMOVABLE
    out[(v & _BUDDY) != 0] = RANK_FREE
    return out


def _merge(cls_run: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of codes with neighbours of one code joined (fewer boundaries to look at)."""
    if cls_run.size > 1:
        keep = np.empty(cls_run.size, dtype=bool)
        keep[0] = True
        np.not_equal(cls_run[1:], cls_run[:-1], out=keep[1:])
        if not keep.all():
            idx = np.flatnonzero(keep)
            return cls_run[idx], np.add.reduceat(lengths, idx)
    return cls_run, lengths


def class_changes(prev: ClassRuns, cur: ClassRuns) -> tuple[np.ndarray, np.ndarray]:
    """PFN ranges [s, e) whose class differs between two frames given as (class, length) runs."""
    pc, pl = prev[0], prev[1]
    cc, cl = cur[0], cur[1]
    pe, ce = np.cumsum(pl), np.cumsum(cl)
    bounds = np.union1d(pe, ce)  # every place either side changes; the last is pfn_count
    starts = np.concatenate(([0], bounds[:-1]))
    a = pc[np.searchsorted(pe, starts, "right")]
    b = cc[np.searchsorted(ce, starts, "right")]
    diff = a != b
    return starts[diff], bounds[diff]


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
