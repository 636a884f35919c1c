"""`--view blocks`: the map-only contract for cells, pixel-exact on a real fixture; the tiles'
cells where the layout says they are; the legend's counts; bad input in one line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pvrec import flags as F
from pvrec.blocks import STATES
from pvrec.recording.header import Header
from pvrec.render.blockview import BlockScheme, BlockSource, block_view
from pvrec.render.compose import Options
from pvrec.sources import ArraySource
from tests.helpers import HEADER, make_recording, pvrec_main


def page_states(flags: np.ndarray, hp: int = 512) -> np.ndarray:
    """Each block's state from the flags of all its pages (a dump: every page is RAM), as
    docs/metrics.md defines them; a 2-D page array, not pvrec's runs."""
    f = flags.reshape(-1, hp)

    def has(*bits):
        return (f & np.uint64(sum(1 << b for b in bits))) != 0

    hole = has(F.NOPAGE)
    free = has(F.BUDDY) & ~hole
    huge = has(F.HUGE, F.THP) & ~hole & ~free
    movable = has(F.LRU, F.ANON, F.MMAP, F.SWAPBACKED) & ~has(F.SLAB, F.PGTABLE, F.RESERVED) \
        & ~hole & ~free & ~huge
    unmovable = ~(hole | free | huge | movable)
    out = np.full(f.shape[0], STATES.index("blocked"))
    out[unmovable.all(1)] = STATES.index("unmovable")
    out[~unmovable.any(1)] = STATES.index("compactable")
    out[(f == 0).all(1)] = STATES.index("no flags")
    out[huge.all(1)] = STATES.index("huge")
    out[free.all(1)] = STATES.index("free")
    out[hole.any(1)] = STATES.index("hole")
    return out


@pytest.fixture(scope="module")
def kbuild(fixture_dumps):
    path = fixture_dumps["after-kbuild"]
    return path, np.fromfile(path, dtype="<u8").astype(np.uint64)


def test_map_only_contract_for_cells_on_a_real_fixture(kbuild, tmp_path):
    """--map-only --layout rows --width W: pixel (x, y) is block y*W + x, in its state's
    legend colour."""
    path, flags = kbuild
    out = tmp_path / "cells.png"
    code, _, err = pvrec_main("snapshot", "-F", str(path), "-o", str(out), "--view", "blocks",
                              "--map-only", "--layout", "rows", "--width", "100")
    assert code == 0, err
    rgb = np.asarray(Image.open(out).convert("RGB"))
    states = page_states(flags)
    assert rgb.shape == (-(-states.size // 100), 100, 3)  # 12,800 blocks: 128 rows of 100
    colors = BlockScheme().colors("light")
    assert np.array_equal(rgb.reshape(-1, 3)[:states.size], colors[states])
    assert {STATES[s] for s in states} >= {"free", "compactable", "blocked", "unmovable",
                                           "huge"}


@pytest.mark.parametrize("cell", [1, 4, 8])
def test_tiles_draw_each_block_as_a_square_of_its_colour(kbuild, cell):
    """The tiles of 32x16 cells: block b of the vm's layout is a cell x cell square at its
    tile's row b % 512 // 32, column b % 32, in its state's colour."""
    _, flags = kbuild
    header = Header.from_dict({**HEADER, "pfn_count": flags.size, "hpage_pages": 512,
                               "ram_ranges": [[0, 786432], [1048576, 6553600]], "zones": [],
                               "nodes": []})
    source = ArraySource(flags, header, "kbuild")
    opts = [Options()]
    [cells], [lay], _ = block_view([source], BlockScheme(), opts, (4000, 4000), "tiles", None, 0)
    assert isinstance(cells, BlockSource)
    if cells.cell != cell:  # the largest cell that fits 4000x4000 is 8: build the others
        cells = BlockSource(source, cell)
        lay = lay.build(cells.header, kind="tiles", row_pages=32 * cell,
                        tile_pages=32 * cell * 16 * cell)
    image = np.zeros((lay.height, lay.width), np.uint8)
    runs = cells.read_runs(0)
    lay.place(lay.pixel_classes(lay.class_runs(BlockScheme().classify_values(runs.values),
                                               runs.lengths)), image)
    states = page_states(flags)
    assert len(lay.tiles) == 24  # the 3-4 GiB hole is no tile
    for t in lay.tiles:
        first = t.first_pfn // (cell * cell)  # its first block (a row: 32 cells of cell^2)
        for b in range(first, first + 512, 7):
            r, c = divmod(b - first, 32)
            y, x = t.y + r * cell, t.x + c * cell
            square = image[y:y + cell, x:x + cell]
            assert (square == states[b]).all(), (b, square)


def test_legend_counts_and_bad_input(tmp_path):
    hp, n = 64, 4096
    f = np.full(n, 1 << F.BUDDY, np.uint64)
    f[hp:2 * hp] = (1 << F.LRU) | (1 << F.ANON)  # one compactable block
    f[2 * hp + 3] = 1 << F.SLAB  # one blocked block
    run = make_recording(tmp_path / "run", [f, f])
    out = tmp_path / "b.png"
    code, _, err = pvrec_main("render", str(run), "-o", str(out), "--view", "blocks",
                              "--timeline", "--frame", "-1")
    assert code == 0, err
    assert Image.open(out).size[0] > 300
    assert ", 8x8 pixels/block) in " in err  # not "1 page/pixel": a pixel is no page here
    # the legend: cells and GiB per state, a cell's size, zones at their blocks' addresses
    source = ArraySource(f, Header.from_dict({**HEADER, "pfn_count": n, "hpage_pages": hp}),
                         "run")
    opts = [Options()]
    [cells], [lay], picture = block_view([source], BlockScheme(), opts, (1920, 1080), "tiles",
                                         None, 0)
    pic = picture(lay, BlockScheme(), cells.header, opts[0], ram_pages=cells.header.ram_pages)
    runs = cells.read_runs(0)
    cruns = lay.class_runs(BlockScheme().classify_values(runs.values), runs.lengths)
    pic.frame(lay.pixel_classes(cruns), t=0.0, index=0, pages=lay.class_pages(cruns, len(STATES)))
    shown = {STATES[i]: pic._slots[("mib", i)][0] for i in range(1, len(STATES))}
    assert shown == {"free": "58  0.0 GiB", "compactable": "1  0.0 GiB",  # 4 in the hole
                     "blocked": "1  0.0 GiB", "unmovable": "0  0.0 GiB", "huge": "0  0.0 GiB",
                     "no flags": "0  0.0 GiB"}
    lines = [text for text, _ in pic.legend_lines()]
    assert "1 cell = 1 block of 256 KiB" in lines and "1 row = 32 blocks" in lines
    assert "DMA32: 0 - 8 MiB" in lines and "Normal: 8 MiB - 16 MiB" in lines
    for args, message in [
        (["--view", "leaves"], "argument --view: invalid choice: 'leaves'"),
        (["--view", "blocks", "-k", "2"], "--view blocks colours each huge-page block by its "
                                          "state; -k is for the page view"),
        (["--view", "blocks", "--classes", "flags"], "; --classes is for the page view"),
        (["--view", "blocks", "--changes"], "; --changes is for the page view"),
    ]:
        code, _, err = pvrec_main("render", str(run), "-o", str(tmp_path / "x.png"), *args)
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_two_runs_side_by_side_keep_the_fit_and_the_timeline_has_the_block_lines(tmp_path):
    from pvrec.render.options import RenderOptions

    runs = [make_recording(tmp_path / name, 2, seed=i) for i, name in enumerate("ab")]
    out = tmp_path / "ab.png"
    code, _, err = pvrec_main("render", str(runs[0]), str(runs[1]), "-o", str(out), "--view",
                              "blocks", "--fit", "900x600", "--frame", "-1")
    assert code == 0, err
    w, h = Image.open(out).size
    assert w <= 900 and h <= 600
    assert RenderOptions(view="blocks", timeline=True).timeline_metrics == [
        "free_hp_blocks", "compactable_hp_blocks"]
    assert RenderOptions(view="blocks", timeline=True,
                         timeline_metrics="mixed_blocks").timeline_metrics == "mixed_blocks"
