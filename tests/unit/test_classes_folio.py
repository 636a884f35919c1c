"""--classes folio on made frames: each folio size from its head and tail runs, the folio counts,
and the stretches that are not one whole folio (cut by the frame's edge, unaligned)."""

from __future__ import annotations

import numpy as np
import pytest

from pvrec import flags as F
from pvrec.classes import ValueClassifier, make_scheme
from pvrec.runs import encode_flags

B = F.bit
HEAD, TAIL = B(F.COMPOUND_HEAD), B(F.COMPOUND_TAIL)
ANON_THP = B(F.ANON) | B(F.THP) | B(F.LRU) | B(F.MMAP)
HUGE = B(F.HUGE)
FILE = B(F.LRU) | B(F.UPTODATE)  # an order-0 page cache page


def folio(order: int, flags: int = ANON_THP) -> list[int]:
    """The flag words of one folio of 2**order pages."""
    return [flags | HEAD] + [flags | TAIL] * ((1 << order) - 1)


def classify(pages: list[int] | np.ndarray):
    """(class name of every page, {class name: folios}) of a frame made of these pages."""
    scheme = make_scheme("folio")
    runs = encode_flags(np.asarray(pages, dtype=np.uint64))
    cls = ValueClassifier(scheme)(runs.values, runs.lengths)
    names = [scheme.names[c] for c in np.repeat(cls, runs.lengths)]
    counts = {n: int(c) for n, c in zip(scheme.names, scheme.class_counts(), strict=True)}
    return names, counts


def test_a_folio_of_each_size_is_drawn_and_counted_by_its_size():
    # GIVEN one aligned folio of every order from 1 to 9 (each in its own aligned 2 MiB block),
    # a 2 MiB and a 1 GiB hugetlb page, and order-0 pages between them
    pages: list[int] = []
    expect: list[str] = []
    sizes = ["8 KiB", "16 KiB", "32 KiB", "64 KiB", "128 KiB", "256 KiB", "512 KiB", "1 MiB"]
    for order in range(1, 10):
        name = "2 MiB THP (PMD)" if order == 9 else f"{sizes[order - 1]} (order {order})"
        pages += folio(order)
        expect += [name] * (1 << order)
        pages += [FILE] * (512 - (1 << order)) if order < 9 else []
        expect += ["4 KiB (order 0)"] * (512 - (1 << order)) if order < 9 else []
    pages += folio(9, HUGE)
    expect += ["hugetlb 2 MiB"] * 512
    pad = (1 << 18) - len(pages) % (1 << 18)  # the 1 GiB page starts on a 1 GiB boundary
    pages += [B(F.BUDDY)] + [0] * (pad - 1)
    expect += ["free"] + ["no flags"] * (pad - 1)
    pages += folio(18, HUGE)
    expect += ["hugetlb 1 GiB"] * (1 << 18)
    # WHEN the frame is classified
    names, counts = classify(pages)
    # THEN every page has its folio's size and every size counts one folio (a head each)
    assert names == expect
    for order in range(1, 9):
        assert counts[f"{sizes[order - 1]} (order {order})"] == 1
    assert counts["2 MiB THP (PMD)"] == counts["hugetlb 2 MiB"] == counts["hugetlb 1 GiB"] == 1
    assert counts["4 KiB (order 0)"] == expect.count("4 KiB (order 0)")  # a page, a folio
    assert counts["partial"] == 0
    assert counts["free"] == counts["no flags"] == counts["hole"] == -1  # not counted


def test_neighbour_folios_of_the_same_flags_are_two_folios():
    # GIVEN two 64 KiB folios of identical flags side by side (head, tails, head, tails)
    names, counts = classify(folio(4) + folio(4))
    # THEN two folios of 64 KiB, not one of 128 KiB
    assert names == ["64 KiB (order 4)"] * 32
    assert counts["64 KiB (order 4)"] == 2 and counts["128 KiB (order 5)"] == 0


def test_tails_whose_head_is_before_the_frame_are_partial():
    # GIVEN a frame that starts inside a 2 MiB THP (its head and first 100 pages not in it)
    # and ends inside a 64 KiB folio (its head and 5 tails in it)
    tails = folio(9)[100:]
    pages = tails + [FILE] * (512 - len(tails)) + [FILE] * 512 + folio(4)[:6]
    names, counts = classify(pages)
    # THEN both cut stretches are 'partial': only the cut-off head is counted
    assert names[:len(tails)] == ["partial"] * len(tails)
    assert names[-6:] == ["partial"] * 6
    assert counts["partial"] == 1
    assert counts["2 MiB THP (PMD)"] == counts["64 KiB (order 4)"] == 0


def test_an_unaligned_or_odd_stretch_is_partial():
    # GIVEN a 16-page folio that starts 8 pages into its natural alignment, and a head with
    # 5 tails (6 pages: no order)
    pages = [FILE] * 8 + folio(4) + [FILE] * 8 + folio(3)[:6] + [FILE] * 10
    names, counts = classify(pages)
    assert names[8:24] == ["partial"] * 16
    assert names[32:38] == ["partial"] * 6
    assert counts["partial"] == 2 and counts["64 KiB (order 4)"] == 0


@pytest.mark.parametrize("value, name", [
    (B(F.NOPAGE), "hole"), (B(F.BUDDY), "free"), (0, "no flags"), (FILE, "4 KiB (order 0)"),
    (B(F.SLAB), "4 KiB (order 0)"),
])
def test_pages_outside_folios_keep_their_usual_classes(value, name):
    names, _ = classify([value] * 4)
    assert names == [name] * 4


def test_the_folio_scheme_needs_the_runs_lengths():
    with pytest.raises(ValueError, match="classifies runs"):
        ValueClassifier(make_scheme("folio"))(np.zeros(3, np.uint64))


def test_the_legend_gives_each_size_its_folios_and_free_its_share(tmp_path):
    # GIVEN a recording of one frame: two 64 KiB folios, a 2 MiB THP, 8 order-0 pages, free
    from pvrec.render.compose import Options, Picture
    from pvrec.render.raster import MapLayout
    from pvrec.render.side import Side
    from pvrec.sources import open_source
    from tests.helpers import make_recording

    pages = folio(4) + folio(4) + [FILE] * 8 + [B(F.BUDDY)] * 472 + folio(9) + [0] * 1024
    rec = make_recording(tmp_path / "rec", [np.array(pages, dtype=np.uint64)])
    source, _ = open_source(str(rec), None, print)
    scheme = make_scheme("folio")
    lay = MapLayout.build(source.header, kind="rows", width=512, ppp=1)
    pic = Picture(lay, scheme, source.header, Options())
    side = Side(source, lay, pic, ValueClassifier(scheme), len(scheme), changes=False)
    # WHEN the frame is drawn
    side.start(0, 0, 1, None)
    side.draw(side.get(0))
    # THEN the legend's last column holds the folios of each size, and free its share of RAM
    drawn = {scheme.names[slot[1]]: text for slot, (text, _) in pic._slots.items()
             if isinstance(slot, tuple) and slot[0] == "pct"}
    assert drawn["64 KiB (order 4)"] == "2 folios"
    assert drawn["2 MiB THP (PMD)"] == "1 folio"
    assert drawn["4 KiB (order 0)"] == "8 folios"
    assert drawn["1 MiB (order 8)"] == "0 folios"
    assert drawn["free"] == f"{100 * 472 / 2048:.1f}%"
