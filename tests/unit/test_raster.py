"""PFN -> pixel: layouts, holes, pages per pixel (checked against a page-by-page reference)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvrec.classes import HOLE
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.render.raster import MapLayout, class_changes, format_offset, holes_of, marks_of
from pvrec.runs import encode_flags

VM_LAYOUT = {  # the 24 GiB test VM's real layout
    "pfn_count": 6553600, "page_size": 4096, "hpage_pages": 512,
    "ram_ranges": [[1, 0xA0], [0x100, 0xC0000], [0x100000, 0x640000]],
    "zones": [{"node": 0, "name": "DMA", "start_pfn": 1, "end_pfn": 0x1000},
              {"node": 0, "name": "DMA32", "start_pfn": 0x1000, "end_pfn": 0x100000},
              {"node": 0, "name": "Normal", "start_pfn": 0x100000, "end_pfn": 0x640000}],
}
VM = Header.from_dict(VM_LAYOUT)


def reference_pixels(lay: MapLayout, page_cls: np.ndarray) -> np.ndarray:
    """Page by page: holes are HOLE, each pixel the most common class (RAM wins ties)."""
    k, n = lay.ppp, lay.pfn_count
    pc = page_cls.astype(np.uint8).copy()
    for s, e in lay.holes:
        pc[s:e] = HOLE
    nb = -(-n // k)
    padded = np.full(nb * k, HOLE, np.uint8)
    padded[:n] = pc
    out = np.empty(nb, np.uint8)
    for b in range(nb):
        cnt = np.bincount(padded[b * k:(b + 1) * k], minlength=int(pc.max()) + 1) * 2
        cnt[HOLE] -= cnt[HOLE] > 0
        out[b] = np.argmax(cnt)
    return out


@st.composite
def frames(draw):
    n = draw(st.integers(1, 700))
    k = draw(st.sampled_from([1, 2, 4, 8, 3, 5]))
    row = k * draw(st.integers(1, 8))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, n - 1)), max_size=40)))
    cls = np.zeros(n, np.uint8)
    for a, b in zip([0, *cuts], [*cuts, n], strict=True):
        cls[a:b] = draw(st.integers(0, 5))
    header = {"pfn_count": n, "hpage_pages": row}
    if draw(st.booleans()):
        pts = sorted(draw(st.lists(st.integers(0, n), min_size=4, max_size=4)))
        header["ram_ranges"] = [[pts[0], pts[1]], [pts[2], pts[3]]]
    return header, k, cls


def runs_of(page_cls: np.ndarray):
    r = encode_flags(page_cls.astype(np.uint64))
    return r.values.astype(np.uint8), r.lengths


@settings(max_examples=150, deadline=None)
@given(frames(), st.data())
def test_pixels_pages_and_changes_match_a_page_by_page_reference(frame, data):
    header, k, cls = frame
    lay = MapLayout.build(Header.from_dict(header), kind="rows", ppp=k,
                          width=header["hpage_pages"])
    cr = lay.class_runs(*runs_of(cls))
    assert cr.lengths.sum() == lay.blocks * k
    assert np.array_equal(lay.pixel_classes(cr), reference_pixels(lay, cls))
    ram = np.ones(cls.size, bool)
    for s, e in lay.holes:
        ram[s:e] = False
    pages = lay.class_pages(cr, 8)
    assert np.array_equal(pages[1:], np.bincount(cls[ram], minlength=8)[1:])
    assert pages.sum() == lay.ram_pages == ram.sum()
    other = cls.copy()
    idx = data.draw(st.lists(st.integers(0, cls.size - 1), max_size=6))
    other[idx] = data.draw(st.integers(0, 5))
    mask, count = lay.changed_blocks(cr, lay.class_runs(*runs_of(other)))
    diff = np.zeros(lay.blocks * k, bool)
    diff[:cls.size] = (cls != other) & ram
    assert count == diff.sum()
    assert np.array_equal(mask, diff.reshape(-1, k).any(axis=1))


def test_class_changes_ranges():
    a = (np.array([1, 2, 1], np.uint8), np.array([4, 4, 4]))
    b = (np.array([1, 3, 1], np.uint8), np.array([6, 1, 5]))
    s, e = class_changes(a, b)
    changed = set()
    for x, y in zip(s.tolist(), e.tolist(), strict=True):
        changed |= set(range(x, y))
    assert changed == {4, 5, 6, 7}


def test_rows_layout_is_the_pfn_contract():
    n = 512 * 3 + 100
    lay = MapLayout.build(Header.from_dict({"pfn_count": n}), kind="rows", width=512)
    assert (lay.width, lay.height) == (512, 4)
    cls = (np.arange(n) % 7).astype(np.uint8)
    img = np.full((lay.height, lay.width), HOLE, np.uint8)  # the production path: runs ->
    lay.place(lay.pixel_classes(lay.class_runs(*runs_of(cls))), img)  # pixels -> the image
    ys, xs = np.divmod(np.arange(n), 512)
    assert np.array_equal(img[ys, xs], cls)  # pixel (x, y) is PFN y*512 + x
    assert (img[3, 100:] == HOLE).all()  # past the last PFN: nothing


def test_one_gib_machine_is_the_articles_square():
    lay = MapLayout.build(Header.from_dict({"pfn_count": 262144, "hpage_pages": 512}))
    assert (lay.width, lay.height) == (512, 512)
    assert len(lay.tiles) == 1 and lay.tile_label(lay.tiles[0]) == "0 GiB"


def test_vm_tiles_skip_the_hole_and_keep_offsets():
    lay = MapLayout.build(VM, gap=4)
    labels = [lay.tile_label(t) for t in lay.tiles]
    assert len(lay.tiles) == 24 and "3 GiB" not in labels  # [3 GiB, 4 GiB) is not RAM
    assert labels[:4] == ["0 GiB", "1 GiB", "2 GiB", "4 GiB"]
    assert lay.ram_pages == 0x9F + (0xC0000 - 0x100) + (0x640000 - 0x100000)
    lay.arrange(12, vgap=30)
    assert (lay.width, lay.height) == (12 * 512 + 11 * 4, 2 * 512 + 30)
    tile, x, y = lay.locate(0x100000 + 512 * 7 + 3)
    assert lay.tile_label(tile) == "4 GiB" and (x, y) == (3 * (512 + 4) + 3, 7)
    assert lay.locate(0xC0000 + 5) is None


def test_pages_per_pixel_must_divide_the_row():
    with pytest.raises(PvrecError, match="does not divide the row of 512 pages; use one of 1, 2"):
        MapLayout.build(VM, ppp=3)
    with pytest.raises(PvrecError, match="--width is for --layout rows"):
        MapLayout.build(VM, width=100)
    with pytest.raises(PvrecError, match="unknown --layout"):
        MapLayout.build(VM, kind="spiral")
    lay = MapLayout.build(VM, ppp=8)
    assert lay.tile_width == 64


def test_vm_frame_with_k8_matches_reference_on_a_slice():
    """The real layout's hole edges (PFN 0xA0, 0x100) fall inside pixels when K=16."""
    n = 0x2000
    header = Header.from_dict({**VM_LAYOUT, "pfn_count": n})
    rng = np.random.default_rng(1)
    cls = np.repeat(rng.integers(0, 6, 400).astype(np.uint8), rng.integers(1, 40, 400))[:n]
    cls = np.concatenate((cls, np.full(n - cls.size, 2, np.uint8)))
    lay = MapLayout.build(header, ppp=16)
    got = lay.pixel_classes(lay.class_runs(*runs_of(cls)))
    assert np.array_equal(got, reference_pixels(lay, cls))


def test_holes_and_marks_of_the_checked_header():
    """Bad RAM ranges are left out (by the Header: the renderer checks nothing again); a zone
    that is not one is refused when the header is read, so it never reaches the renderer."""
    raw = {"pfn_count": 100, "ram_ranges": [[0, 50], "junk", [60, 1000], [True, 3]],
           "zones": [{"name": "Normal", "start_pfn": 0, "end_pfn": 100}],
           "nodes": [{"node": 0, "ranges": [[0, 50]]}, {"node": 1, "ranges": [[60, 100]]}]}
    h = Header.from_dict(raw)
    assert holes_of(h) == [(50, 60)]
    assert holes_of(Header.from_dict({"pfn_count": 10})) == [] \
        and holes_of(Header.from_dict({"pfn_count": 10, "ram_ranges": []})) == []
    marks = marks_of(h)
    assert [(m.kind, m.name, m.pfn, m.end_pfn) for m in marks] == [
        ("node", "node 0", 0, 50), ("zone", "Normal (node 0)", 0, 100),
        ("node", "node 1", 60, 100)]
    for junk, message in (("x", "zone 1 is not an object"),
                          ({"name": 3}, "zone 1 has no start_pfn")):
        with pytest.raises(PvrecError, match=message):
            Header.from_dict({**raw, "zones": [*raw["zones"], junk]})


def test_format_offset():
    assert format_offset(0) == "0 GiB"
    assert format_offset(3 << 30) == "3 GiB"
    assert format_offset(512 << 20) == "512 MiB"
    assert format_offset(2 << 20) == "2 MiB"
    assert format_offset(32 << 10) == "32 KiB"
    assert format_offset(7 << 29) == "3.5 GiB"
