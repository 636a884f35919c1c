"""--region and the collapse of unchanging memory: the spec parser, the static-tile watch, the
layout's bands and windows, and golden PNGs of a small machine of four 1 GiB-like tiles.

The machine (huge pages of 8 pages, so a tile of 512 rows is 4096 pages): tile 0 holds every
class and never changes, tile 1 is all free, tile 2 all "no flags" (both static: collapsed),
tile 3 changes only in its pages 800..2400. Regenerate the goldens as test_compose says.
"""

from __future__ import annotations

import numpy as np
import pytest

from pvrec import flags as F
from pvrec.classes import HOLE, ValueClassifier, default_scheme
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.region import parse_address, parse_region
from pvrec.render.collapse import MIXED, Watch, stretches, unit_classes
from pvrec.render.pipeline import render_recording
from pvrec.render.raster import BAND_ROWS, MapLayout
from tests.helpers import make_recording, synthetic_frame, synthetic_frames
from tests.unit.test_compose import check_golden

HP, TILE = 8, 8 * 512  # pages per huge page (a row), pages per tile
PAGES = 4 * TILE
FREE = F.bit(F.BUDDY)
SCHEME = default_scheme()
MACHINE = {
    "page_size": 4096, "hpage_pages": HP, "ram_ranges": [[0, PAGES]],
    "zones": [{"node": 0, "name": "DMA32", "start_pfn": 0, "end_pfn": 2 * TILE},
              {"node": 0, "name": "Normal", "start_pfn": 2 * TILE, "end_pfn": PAGES}],
    "nodes": [{"node": 0, "ranges": [[0, PAGES]]}],
    "hostname": "testbox", "kernel": "6.1.0-test", "command": ["make", "-j8"],
    "interval": 1.0, "start_wall": "2026-11-26T12:00:00+00:00",
}
CHANGING = (3 * TILE + 800, 3 * TILE + 2400)  # the only pages that change class


def machine_frames(count: int = 6) -> list[np.ndarray]:
    fixed = synthetic_frame(0, TILE)
    moving = list(synthetic_frames(count, 1, TILE))
    out = []
    for i in range(count):
        f = np.zeros(PAGES, dtype=np.uint64)
        f[:TILE] = fixed
        f[TILE:2 * TILE] = FREE
        f[3 * TILE:] = moving[0]
        a, b = CHANGING[0] - 3 * TILE, CHANGING[1] - 3 * TILE
        f[3 * TILE + a:3 * TILE + b] = moving[i][a:b]
        out.append(f)
    return out


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    return make_recording(tmp_path_factory.mktemp("regions") / "rec", machine_frames(),
                          header=MACHINE)


def header(**more) -> Header:
    return Header.from_dict({**MACHINE, "pfn_count": PAGES, **more})


# -- the spec


@pytest.mark.parametrize("spec, want", [
    ("0-16M", (0, 4096)), ("16M+16M", (4096, 8192)), ("0x1000000-0x2000000", (4096, 8192)),
    ("DMA32", (0, 2 * TILE)), ("normal", (2 * TILE, PAGES)), ("node0", (0, PAGES)),
    ("5K-9K", (0, HP)),  # grown to whole rows: PFN 1..2 is in the first row of 8 pages
    ("60M-1G", (15 * 1024, PAGES)),  # clipped to the memory
])
def test_a_spec_is_a_window_of_whole_rows(spec, want):
    r = parse_region(spec, header())
    assert (r.start, r.end) == want and r.start % HP == 0 and r.end % HP == 0


@pytest.mark.parametrize("spec, says", [
    ("Movable", "a zone (DMA32, Normal), a node (node0), or changed; RAM spans 0 B - 64.0 MiB"),
    ("8G-9G", "starts beyond the memory"),
    ("8M-4M", "the end is not after the start"),
    ("node3", "this recording has no memory on node3; use a zone (DMA32, Normal), a node (node0)"),
    ("Normal@1", "no such zone on that node; use a zone (DMA32, Normal), a node (node0)"),
    ("4G+", "use an address range (4G-8G, 4G+512M, 0x100000000-0x200000000)"),
])
def test_a_bad_spec_is_one_line_naming_what_is_valid(spec, says):
    with pytest.raises(PvrecError) as e:
        parse_region(spec, header())
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_region_in_a_hole_holds_no_ram():
    h = header(ram_ranges=[[0, TILE], [2 * TILE, PAGES]])
    with pytest.raises(PvrecError, match="holds no RAM"):
        parse_region("16M+16M", h)


def test_changed_with_nothing_changed_says_so():
    with pytest.raises(PvrecError, match="no page changed class"):
        parse_region("changed", header(), changed=lambda: None)
    assert parse_region("changed", header(), changed=lambda: (9, 20)).start == 8


def test_addresses():
    assert parse_address("4G") == 4 << 30 and parse_address("512MiB") == 512 << 20
    assert parse_address("0x100000000") == 1 << 32 and parse_address("1.5G") == 3 << 29
    with pytest.raises(ValueError):
        parse_address("four")


# -- what stays unchanged


def class_runs(flags: np.ndarray, lay: MapLayout):
    from pvrec.runs import encode_flags

    r = encode_flags(flags)
    return lay.class_runs(ValueClassifier(SCHEME)(r.values, r.lengths), r.lengths)


def test_unit_classes_ignore_holes_and_see_one_odd_page():
    lay = MapLayout.build(header(ram_ranges=[[0, 100], [200, PAGES]]), kind="rows", width=HP)
    f = np.zeros(PAGES, np.uint64)
    f[TILE:2 * TILE] = FREE
    f[2 * TILE + 77] = FREE  # one free page in a tile of no flags
    got = unit_classes(class_runs(f, lay), TILE, PAGES)
    nf, free = SCHEME.index("no flags"), SCHEME.index("free")
    assert got.tolist() == [nf, free, MIXED, nf]


def test_the_watch_finds_static_tiles_and_the_changed_span():
    lay = MapLayout.build(header(), kind="rows", width=HP)
    w = Watch(lay, HP)
    for f in machine_frames():
        w.add(class_runs(f, lay))
    nf, free = SCHEME.index("no flags"), SCHEME.index("free")
    assert w.static().tolist()[1:] == [free, nf, MIXED]
    lo, hi = w.changed()
    assert CHANGING[0] <= lo < hi <= CHANGING[1]
    # tile 0 is static too but mixed: never a band; tiles 1 and 2: one band each (two classes)
    (bands,) = stretches([w], (0, PAGES))
    assert bands == [(TILE, 2 * TILE, free), (2 * TILE, 3 * TILE, nf)]
    assert stretches([w], (0, 2 * TILE))[0] == [(TILE, 2 * TILE, free)]  # inside the window


def test_side_by_side_a_tile_collapses_only_if_static_in_both():
    lay = MapLayout.build(header(), kind="rows", width=HP)
    a, b = Watch(lay, HP), Watch(lay, HP)
    frames = machine_frames(2)
    for f in frames:
        a.add(class_runs(f, lay))
    b.add(class_runs(frames[0], lay))
    busy = frames[0].copy()
    busy[TILE + 5] = 0  # one page of tile 1 changes on the right
    b.add(class_runs(busy, lay))
    nf = SCHEME.index("no flags")
    assert stretches([a, b], (0, PAGES)) == [[(2 * TILE, 3 * TILE, nf)]] * 2


# -- the layout


def test_bands_take_their_place_in_pfn_order_and_locate_follows():
    free = SCHEME.index("free")
    lay = MapLayout.build(header(), ppp=1, cols=2, gap=2, vgap=10,
                          bands=[(TILE, 3 * TILE, free)])
    kinds = [(t.kind, t.first_pfn) for t in lay.tiles]
    assert kinds == [("tile", 0), ("band", TILE), ("tile", 3 * TILE)]
    band = lay.tiles[1]
    assert (band.y, band.rows, band.w) == (512 + 10, BAND_ROWS, 2 * HP + 2)  # the grid's width
    assert lay.tiles[2].y == 512 + 10 + BAND_ROWS + 10
    assert lay.height == lay.tiles[2].y + 512 and lay.size_for(2) == (lay.width, lay.height)
    assert lay.locate(TILE + TILE)[1:] == (band.x + band.w // 2, band.y)  # halfway along
    assert lay.locate(3 * TILE + 9)[1:] == (lay.tiles[2].x + 1, lay.tiles[2].y + 1)
    img = np.zeros((lay.height, lay.width), np.uint8)
    lay.place(np.zeros(PAGES, np.uint8), img)
    assert (img[band.y:band.y + BAND_ROWS] == free).all()
    dimmed = np.arange(256, dtype=np.uint8)[::-1].copy()  # --highlight: a band is dimmed too
    lay.place(np.zeros(PAGES, np.uint8), img, band_colors=dimmed)
    assert (img[band.y:band.y + BAND_ROWS, band.x:band.x + band.w] == 255 - free).all()
    assert lay.band_pages() == 2 * TILE


def test_a_window_starts_its_tiles_at_its_start_and_counts_its_own_pages():
    lay = MapLayout.build(header(), window=(TILE + 512, 3 * TILE))
    assert [(t.first_pfn, t.pages) for t in lay.tiles] == [(TILE + 512, TILE), (2 * TILE + 512,
                                                                               TILE - 512)]
    assert lay.locate(TILE) is None and lay.locate(TILE + 512)[1:] == (lay.tiles[0].x, 0)
    assert lay.ram_pages == 2 * TILE - 512
    runs = class_runs(machine_frames(1)[0], MapLayout.build(header(), kind="rows", width=HP))
    pages = lay.class_pages(runs, len(SCHEME))
    assert pages.sum() == 2 * TILE - 512
    assert pages[SCHEME.index("free")] == TILE - 512 and pages[HOLE] == 0


# -- pictures


CASES = {
    "collapse-static": {},
    "region-address": dict(region="20M+24M"),
    "region-zone": dict(region="Normal", collapse=False),
    "region-changed": dict(region="changed"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_golden(name, machine, tmp_path):
    out = tmp_path / f"{name}.png"
    render_recording(machine, out, warn=None, **CASES[name])
    check_golden(out, name)


def test_collapse_gives_the_changing_tiles_more_pixels(machine, tmp_path):
    small = (450, 350)  # a box that the four whole tiles fill at K = 2 (as 24 GiB: 1920x1080)
    whole = render_recording(machine, tmp_path / "a.png", fit=small, collapse=False)
    folded = render_recording(machine, tmp_path / "b.png", fit=small)
    assert whole.pages_per_pixel >= 2 * folded.pages_per_pixel
    # where bands do not help (they end grid rows), the tiles are drawn whole: never worse
    roomy = render_recording(machine, tmp_path / "c.png", fit=(400, 400))
    assert roomy.pages_per_pixel == 1


def test_render_flags_are_checked(machine, tmp_path):
    with pytest.raises(PvrecError, match="--view blocks colours each huge-page block"):
        render_recording(machine, tmp_path / "x.png", view="blocks", region="Normal")
    with pytest.raises(PvrecError, match="no page changed class"):
        render_recording(make_recording(tmp_path / "still", [machine_frames(1)[0]] * 2,
                                        header=MACHINE), tmp_path / "y.mp4", region="changed")


def test_churn_and_age_count_the_region_only():
    from pvrec.render.history import ram_per_pixel

    for k in (1, 4):
        lay = MapLayout.build(header(), ppp=k, window=(TILE + 512, 3 * TILE))
        ram = ram_per_pixel(lay)
        assert ram.sum() == lay.ram_pages == 2 * TILE - 512
        assert ram[:(TILE + 512) // k].sum() == 0


def test_numa_panels_get_their_own_bands_and_a_stretch_stops_at_a_node():
    numa = header(nodes=[{"node": 0, "ranges": [[0, 2 * TILE]]},
                         {"node": 1, "ranges": [[2 * TILE, PAGES]]}],
                  zones=[{"node": 0, "name": "Normal", "start_pfn": 0, "end_pfn": 2 * TILE},
                         {"node": 1, "name": "Normal", "start_pfn": 2 * TILE,
                          "end_pfn": PAGES}])
    lay = MapLayout.build(numa, kind="rows", width=HP)
    w = Watch(lay, HP)
    f = np.full(PAGES, FREE, np.uint64)
    f[:100] = 0  # tile 0 mixed; tiles 1, 2, 3 all free
    w.add(class_runs(f, lay))
    free = SCHEME.index("free")
    (bands,) = stretches([w], (0, PAGES), breaks=[0, 2 * TILE])
    assert bands == [(TILE, 2 * TILE, free), (2 * TILE, PAGES, free)]  # split at node 1
    tiles = MapLayout.build(numa, ppp=1, gap=2, vgap=10, bands=bands)
    assert [(t.kind, t.panel) for t in tiles.tiles] == [("tile", 0), ("band", 0), ("band", 1)]
    assert tiles.locate(3 * TILE)[0].panel == 1
    assert parse_region("Normal@1", numa).start == 2 * TILE
    assert (parse_region("Normal", numa).start, parse_region("Normal", numa).end) == (0, PAGES)


@pytest.mark.parametrize("step, key_every", [(1, 100), (2, 100), (1, 3), (3, 2)])
def test_following_the_static_tiles_finds_what_adding_whole_frames_finds(step, key_every):
    """GIVEN frames where one static tile turns mixed at frame 3, one changes flags but not
    class (page cache referenced, unreferenced), one is all holes but for a page that
    changes, and one changes all the time, WHEN a Watch follows them as a recording stores
    them (key frames and XOR deltas) and another is added every wanted frame whole, THEN both
    find the same static tiles."""
    from pvrec.runs import encode_flags, xor_runs

    lay = MapLayout.build(header(ram_ranges=[[0, 2 * TILE + 1], [3 * TILE - 5, PAGES]]),
                          kind="rows", width=HP)
    cache = F.bit(F.LRU) | F.bit(F.UPTODATE)
    f = np.zeros(PAGES, np.uint64)
    f[:TILE] = FREE
    f[TILE:2 * TILE] = cache
    frames = []
    for i in range(9):
        f = f.copy()
        f[TILE + 10 * i:TILE + 10 * i + 50] ^= F.bit(F.REFERENCED)  # class stays page cache
        f[2 * TILE + 500] = i % 2  # in the hole: never counted
        f[3 * TILE + 7 * i:3 * TILE + 7 * i + 3] = FREE * (i % 2)
        if i == 3:
            f[77] = cache  # tile 0 is no longer one class
        frames.append(encode_flags(f))
    stored = [(i, "key", r) if i % key_every == 0 else (i, "delta", xor_runs(frames[i - 1], r))
              for i, r in enumerate(frames)]
    wanted = set(range(1, 9, step))
    followed, added = Watch(lay, HP, changes=False), Watch(lay, HP, changes=False)
    classify = ValueClassifier(SCHEME)
    followed.follow(stored, wanted, classify, lay)
    for i in sorted(wanted):
        added.add(lay.class_runs(classify(frames[i].values), frames[i].lengths))
    pc, nf = SCHEME.index("page cache"), SCHEME.index("no flags")
    assert followed.static().tolist() == added.static().tolist() == [MIXED, pc, nf, MIXED]
    assert followed.frames == added.frames == len(wanted)


def test_following_stops_reading_when_no_tile_can_collapse():
    """GIVEN frames where every tile is mixed from the first, WHEN followed, THEN the frames
    after the first are never read."""
    lay = MapLayout.build(header(), kind="rows", width=HP)
    f = np.zeros(PAGES, np.uint64)
    f[::TILE // 2] = FREE  # two classes in every tile
    from pvrec.runs import encode_flags

    read = []

    def frames():
        for i in range(5):
            read.append(i)
            yield i, "key", encode_flags(f)

    w = Watch(lay, HP, changes=False)
    w.follow(frames(), {0, 1, 2, 3, 4}, ValueClassifier(SCHEME), lay)
    assert read == [0] and w.static().tolist() == [MIXED] * 4
