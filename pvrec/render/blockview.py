"""`--view blocks`: one cell per huge-page block, coloured by its state (pvrec/blocks.py).

The renderer draws pages; this view hands it cells as if they were pages. A BlockSource wraps
a recording: each frame's runs become runs of cell states (the STATES codes as flag words)
over a block header, whose "pages" are cells of the map, so the map's machinery (tiles, zone
ribbons, node panels, legend, timeline, encoders) draws the cells unchanged:

- `--map-only --layout rows --width W`: one pixel per cell, pixel (x, y) is block y*W + x.
- tiles (the default): a 1 GiB tile (512 blocks of 2 MiB) is a square of 32x16 cells, each
  cell C x C pixels (C = 8, 4, 2 or 1: the largest whose picture fits the box). Each cell row
  is repeated C times and each cell C times along it, so that a "row of pages" of the block
  header is one row of pixels: 32*C pages, tiles of 16*C rows.

A 24 GiB frame has 12,288 blocks: the cells are computed as a per-block array (a few
milliseconds), never per page.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator

import numpy as np

from pvrec.blocks import STATES, frame_blocks
from pvrec.classes import PageClass, Scheme, colors_of
from pvrec.errors import PvrecError
from pvrec.recording.header import Header, Node, Zone
from pvrec.recording.reader import Frame
from pvrec.render.compose import Options, Picture
from pvrec.render.fit import choose_layout
from pvrec.render.raster import MapLayout, format_offset, format_range
from pvrec.runs import Runs, encode_flags
from pvrec.sources import Source

ROW_CELLS, TILE_ROWS = 32, 16  # a 1 GiB tile of 512 blocks: 32x16 cells
CELL_SIZES = (8, 4, 2, 1)  # pixels per cell side, the largest that fits first
# (state, light, dark, legend description); hole first: class 0 of every scheme
_STATE_COLORS = {
    "hole": ("#FFFFFF", "#101010", "not RAM, or not all RAM: never a huge page"),
    "free": ("#DCDCDC", "#303030", "every page free: a huge page now"),
    "compactable": ("#33BBEE", None, "free and movable pages only: compaction makes one"),
    "blocked": ("#EE3377", None, "free or movable pages and an unmovable one"),
    "unmovable": ("#555555", "#A0A0A0", "unmovable pages only"),
    "huge": ("#EE7733", None, "already a THP or hugetlb page"),
    "no flags": ("#9E9E9E", "#646464", "every page with no flags: not (yet) in the kernel's use"),
}


class BlockScheme(Scheme):
    """The block states as classes: a cell's flag word is its state's number."""

    name = "blocks"

    def __init__(self):
        classes = []
        for state in STATES:
            light, dark, desc = _STATE_COLORS[state]
            lc, dc = colors_of(light, dark)
            classes.append(PageClass(state, lc, dc, state, desc))
        super().__init__(classes)

    def classify_values(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.uint64)
        return np.where(v < len(STATES), v, 0).astype(np.uint8)


def block_header(header: Header, cell: int, row_cells: int = ROW_CELLS) -> Header:
    """The header of the cell map: a "page" is a cell's 1/cell^2, RAM ranges are whole rows of
    cells, zones and nodes start at their first block's cell."""
    hp = header.hpage_pages
    nblocks = -(-header.pfn_count // hp)
    row = row_cells * cell * cell  # pages of one row of cells

    def at(pfn: int, up: bool = False) -> int:
        b = -(-pfn // hp) if up else pfn // hp
        return (b // row_cells) * row + (b % row_cells) * cell

    def rows(lo: int, hi: int) -> list[int]:  # [lo, hi) grown to whole rows of cells
        last_block = -(-hi // hp)
        return [lo // hp // row_cells * row, -(-last_block // row_cells) * row]

    rows_n = -(-nblocks // row_cells)
    ram = [rows(s, e) for s, e in header.ram_ranges]
    merged: list[list[int]] = []
    for s, e in ram:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return dataclasses.replace(
        header, pfn_count=rows_n * row, page_size=header.page_size * hp // (cell * cell),
        hpage_pages=row_cells * cell, ram_ranges=merged,
        zones=[Zone(z.node, z.name, at(z.start_pfn), at(z.end_pfn, True), z.present)
               for z in header.zones],
        nodes=[Node(n.node, [rows(s, e) for s, e in n.ranges]) for n in header.nodes])


def cell_runs(states: np.ndarray, cell: int, row_cells: int = ROW_CELLS) -> Runs:
    """The cells of a frame as runs of a block header's pages (see the module docstring)."""
    rows_n = -(-states.size // row_cells)
    grid = np.zeros(rows_n * row_cells, dtype=np.uint64)  # padding: hole cells
    grid[:states.size] = states
    if cell > 1:
        grid = grid.reshape(rows_n, row_cells).repeat(cell, axis=1).repeat(cell, axis=0)
    return encode_flags(grid.reshape(-1))


class BlockSource(Source):
    """A source whose frames are the cells of another's: what the block view draws."""

    def __init__(self, inner: Source, cell: int):
        self.inner, self.cell = inner, cell
        self.header = block_header(inner.header, cell)
        self.times, self.name, self.complete = inner.times, inner.name, inner.complete

    def cells(self, runs: Runs) -> Runs:
        return cell_runs(frame_blocks(runs, self.inner.header).states(), self.cell)

    def iter_runs(self, start: int, stop: int, step: int) -> Iterator[tuple[int, float, Runs]]:
        for pos, t, runs in self.inner.iter_runs(start, stop, step):
            yield pos, t, self.cells(runs)

    def iter_frames(self, start: int, stop: int, step: int,
                    channels: tuple[str, ...] | None = None
                    ) -> Iterator[tuple[int, float, Frame]]:
        for pos, t, frame in self.inner.iter_frames(start, stop, step, channels):
            cells = Frame(self.cells(frame.flags))
            cells.pages = frame  # type: ignore[attr-defined]  (metrics_of reads the pages)
            yield pos, t, cells

    def read_runs(self, pos: int) -> Runs:
        return self.cells(self.inner.read_runs(pos))

    def read_frame(self, pos: int) -> Frame:
        return Frame(self.read_runs(pos))

    def key_positions(self) -> list[int]:
        return self.inner.key_positions()

    @property
    def max_order(self) -> int:
        return self.inner.max_order

    def metrics_of(self, frame: Frame) -> dict:
        return self.inner.metrics_of(frame.pages)  # type: ignore[attr-defined]

    def context_of(self, pos: int) -> dict:
        return self.inner.context_of(pos)


class BlockPicture(Picture):
    """The picture of cells: the legend counts cells (and their GiB), says what a cell and a
    row are, and places zones at their blocks' addresses."""

    def __init__(self, *args, cell: int = 1, **kw):
        self.cell = cell
        super().__init__(*args, **kw)

    def _size_text(self, pages: int) -> str:
        return f"{pages // self.cell ** 2:,}  {pages * self.page_size / (1 << 30):.1f} GiB"

    def address(self, pfn: int) -> int:
        """The physical address a PFN of the cell map stands for (the first pixel of a cell:
        a row of cells is row_pages * cell such PFNs, a cell cell^2 of them)."""
        c, row = self.cell, self.layout.row_pages
        block = pfn // (row * c) * (row // c) + pfn % (row * c) % row // c
        return block * c * c * self.page_size

    def legend_lines(self) -> list[tuple[str, str]]:
        lines, lay = super().legend_lines(), self.layout
        ours = {"1 pixel": f"1 cell = 1 block of {format_offset(self.cell ** 2 * self.page_size)}",
                "1 row": f"1 row = {lay.row_pages // self.cell} blocks"}
        ours.update({f"{m.name}: ": f"{m.name}: " + format_range(self.address(m.pfn),
                                                                 self.address(m.end_pfn))
                     for m in lay.marks})
        return [(next((v for k, v in ours.items() if text.startswith(k)), text), kind)
                for text, kind in lines]


def block_view(sources: list[Source], scheme: Scheme, opts: list[Options],
               fit: tuple[int, int] | None, kind: str, width: int | None,
               metric_lines: int) -> tuple[list[Source], list[MapLayout], Callable]:
    """The block sources, layouts and Picture class of a render: one pixel per cell for
    `--map-only --layout rows` (the contract), else the largest cells whose picture fits."""
    for o in opts:
        o.note = "2 MiB blocks: what a huge page finds"
    if kind == "rows":  # fit is None for --map-only without --fit: the contract
        wrapped = [BlockSource(s, 1) for s in sources]
        lays = [MapLayout.build(w.header, kind="rows", width=width or ROW_CELLS)
                for w in wrapped] if fit is None else \
            [choose_layout(w.header, scheme, o, kind="rows", ppp=1, width=width or ROW_CELLS,
                           fit=fit, metric_lines=metric_lines, picture=BlockPicture)
             for w, o in zip(wrapped, opts, strict=True)]
        return wrapped, lays, BlockPicture
    error: PvrecError | None = None
    for cell in CELL_SIZES:
        wrapped = [BlockSource(s, cell) for s in sources]
        shape = [(ROW_CELLS * cell, ROW_CELLS * cell * TILE_ROWS * cell)]
        picture = functools.partial(BlockPicture, cell=cell)
        try:
            lays = [choose_layout(w.header, scheme, o, kind=kind, ppp=1, fit=fit,
                                  ram_pages=w.header.ram_pages, metric_lines=metric_lines,
                                  shapes=shape, picture=picture)
                    for w, o in zip(wrapped, opts, strict=True)]
        except PvrecError as exc:
            error = exc
            continue
        return wrapped, lays, picture
    assert error is not None
    raise error
