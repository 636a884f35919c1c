"""Choosing the layout whose whole picture fits a box (--fit, --size): pages per pixel, tile
shape, grid, legend place and text size, each candidate measured by the Picture that will draw it.
"""

from __future__ import annotations

from pvrec.classes import Scheme
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.render.compose import FIT_DEFAULT, GAP, GAP_MANY, LOOKS, Look, Options, Picture
from pvrec.render.raster import MapLayout, divisors, tile_shapes
from pvrec.render.text import NORMAL, STYLES, Text, TextStyle


def choose_layout(header: Header, scheme: Scheme, options: Options, *, kind: str = "tiles",
                  ppp: int | None = None, width: int | None = None,
                  fit: tuple[int, int] = FIT_DEFAULT, ram_pages: int = 0,
                  metric_lines: int = 0, shapes: list | None = None, picture=None,
                  window: tuple[int, int] | None = None,
                  bands: list[tuple[int, int, int]] | None = None) -> MapLayout:
    """The layout whose whole picture fits `fit` (its Look in `.look`); PvrecError if none.
    metric_lines: how many --timeline-metrics lines the strips will have; shapes, picture:
    the tile shapes to try and the Picture class to measure, if not tile_shapes' and Picture;
    window, bands: the region drawn and its stretches drawn as bands (MapLayout.build).

    Prefers, in order: fewer pages per pixel; the normal text size (the compact one keeps
    capitals MIN_CAP high); the legend at the right in one column (LOOKS); the grid of tiles
    that fills the box best (the smallest of its sides' shares of the box, so a player
    fitting it to the box shows it largest); 1 GiB tiles of one huge page per row over bigger
    tiles and wider rows.
    """
    text = Text()  # one text measurer for every candidate: widths are cached
    metrics = ([""] * metric_lines, None) if metric_lines else None  # what is measured

    def build(k: int, style: TextStyle, shape: tuple[int | None, int | None],
              folded: list | None = None) -> MapLayout:
        lay = MapLayout.build(header, kind=kind, ppp=k, width=width, gap=0,
                              row_pages=shape[0], tile_pages=shape[1], window=window,
                              bands=folded)
        if not options.map_only:  # the gap holds the zone ribbon, if the tiles leave room
            lay.gap = GAP if len(lay.tiles) <= 8 else GAP_MANY if lay.tile_width >= 16 else 1
            lay.arrange(lay.max_cols, 2 * style.label_h + 4)
        return lay

    probe = build(ppp or 1, NORMAL, shapes[0] if shapes else (None, None))
    if not probe.tiles:
        raise PvrecError("the recording's RAM ranges hold no page: nothing to draw")
    # with bands, and without them: bands end grid rows, so a few tiles may fit better whole
    band_sets = [bands, None] if bands else [None]
    drawn = [ram_pages or probe.ram_pages - (build(1, NORMAL, (None, None), bs).band_pages()
                                             if bs else 0) for bs in band_sets]
    shapes = shapes or (tile_shapes(header) if kind == "tiles" else [(None, None)])
    hpage = probe.row_pages if kind == "rows" else header.hpage_pages
    ks = [ppp] if ppp else divisors(hpage) if kind == "rows" else \
        divisors(hpage) + [hpage << j for j in range(1, 7)]
    looks = [("right", 1)] if options.map_only else LOOKS
    for k in ks:
        for folded, pages in zip(band_sets, drawn, strict=True):
            if pages / k > fit[0] * fit[1]:
                continue  # more pixels than the box holds
            best = _best(k, folded, shapes, looks, build, kind, hpage, options, scheme, header,
                         ram_pages, text, metrics, picture, fit)
            if best is not None:
                _, style, shape, look, cols = best
                lay = build(k, style, shape, folded)
                lay.arrange(cols)
                lay.look = look
                return lay
    if kind == "rows":  # one page per pixel unless -k: the map's size is the width's choice
        k = ppp or 1
        rows = -(-header.pfn_count // probe.row_pages)
        raise PvrecError(f"the picture with --layout rows{f' -k {k}' if k > 1 else ''} "
                         f"(--width {probe.row_pages}: a map of {probe.row_pages // k:,}x"
                         f"{rows:,} pixels) does not fit in {fit[0]}x{fit[1]} pixels: give a "
                         f"larger --fit or --size, or a --width whose map fits")
    what = f"with -k {ppp} " if ppp else ""
    raise PvrecError(f"the picture {what}does not fit in {fit[0]}x{fit[1]} pixels: give a "
                     f"larger --fit or --size" + (" (or leave -k out)" if ppp else ""))



def _best(k, folded, shapes, looks, build, kind, hpage, options, scheme, header, ram_pages,
          text, metrics, picture, fit) -> tuple | None:
    """The best-scoring (score, style, shape, look, cols) at K pages per pixel, or None."""
    best: tuple | None = None
    for shape in shapes:
        if kind == "tiles" and (shape[0] or hpage) % k:
            continue
        for rank, style in enumerate(STYLES[:1] if options.map_only else STYLES):
            lay = build(k, style, shape, folded)
            pic = (picture or Picture)(lay, scheme, header, options, ram_pages=ram_pages,
                                       text=text, metrics=metrics, look=Look(style))
            for where, columns in looks:
                look = Look(style, where, columns)
                for cols in range(lay.max_cols, 0, -1):
                    g = pic.geometry_for(*lay.size_for(cols), look)
                    if g.height > fit[1]:
                        break  # fewer columns are only taller
                    if g.width > fit[0]:
                        continue
                    fill = round(max(g.width / fit[0], g.height / fit[1]), 3)
                    score = (rank, LOOKS.index((where, columns)), fill, shape[1] or 0,
                             shape[0] or 0)
                    if best is None or score < best[0]:
                        best = (score, style, shape, look, cols)
    return best
