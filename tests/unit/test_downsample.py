"""K pages -> one pixel: the rule that keeps the pages that fragment (--downsample keep), checked
against a page-by-page reference written from its definition, and in rendered pictures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pvrec import flags as F
from pvrec.classes import HOLE, ValueClassifier, default_scheme
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.render.palette import PARTLY, Palette, free_color
from pvrec.render.pipeline import render_recording
from pvrec.render.raster import MapLayout, divisors, page_ranks
from pvrec.runs import encode_flags
from tests.helpers import make_recording

B = F.bit
# Flag words of every rank: free; unmovable (slab, page table, reserved, no flags, a kernel
# page with a flag but no user bit); in use (page cache, anonymous, THP); a hole (nopage).
VALUES = [B(F.BUDDY), B(F.SLAB), B(F.PGTABLE), B(F.RESERVED), 0, B(F.PRIVATE),
          B(F.LRU) | B(F.MMAP), B(F.ANON) | B(F.LRU), B(F.THP) | B(F.ANON) | B(F.COMPOUND_HEAD),
          B(F.NOPAGE)]
SCHEME = default_scheme()
CLASSIFY = ValueClassifier(SCHEME)


def reference(lay: MapLayout, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Page by page, from the definition: rank each page (hole 0, free 1, in use 2, unmovable
    3, by docs/metrics.md's masks), keep the pixel's pages of its highest rank, show their
    most common class (ties: the class listed first); partly free when that rank is above free
    and a free page is in the pixel."""
    k, n = lay.ppp, flags.size
    cls = CLASSIFY(flags).astype(np.int64)
    free = (flags & np.uint64(B(F.BUDDY))) != 0
    unmovable = (((flags & np.uint64(B(F.SLAB) | B(F.PGTABLE) | B(F.RESERVED))) != 0)
                 | ((flags & np.uint64(_user_bits())) == 0)) & ~free
    rank = np.where(free, 1, np.where(unmovable, 3, 2))
    for s, e in lay.holes:
        cls[s:e] = HOLE
    rank[cls == HOLE] = 0
    nb = -(-n // k)
    px, partly = np.empty(nb, np.uint8), np.zeros(nb, bool)
    for b in range(nb):
        c, r = cls[b * k:(b + 1) * k], rank[b * k:(b + 1) * k]
        top = r.max() if r.size == k else max(r.max(), 0)
        px[b] = np.argmax(np.bincount(c[r == top], minlength=len(SCHEME)))
        partly[b] = top > 1 and (r == 1).any()
    return px, partly


def _user_bits() -> int:
    return sum(B(f) for f in (F.LRU, F.ANON, F.MMAP, F.SWAPBACKED, F.HUGE, F.THP,
                              F.COMPOUND_TAIL, F.COMPOUND_HEAD, F.BUDDY, F.OFFLINE,
                              F.HWPOISON, F.NOPAGE))


@st.composite
def frames(draw):
    n = draw(st.integers(1, 600))
    k = draw(st.sampled_from([2, 4, 8, 16, 3, 6]))
    row = k * draw(st.integers(1, 6))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, n - 1)), max_size=60)))
    flags = np.zeros(n, np.uint64)
    for a, b in zip([0, *cuts], [*cuts, n], strict=True):
        flags[a:b] = draw(st.sampled_from(VALUES))
    header = {"pfn_count": n, "hpage_pages": row}
    if draw(st.booleans()):
        pts = sorted(draw(st.lists(st.integers(0, n), min_size=4, max_size=4)))
        header["ram_ranges"] = [[pts[0], pts[1]], [pts[2], pts[3]]]
    return header, k, flags


@settings(max_examples=200, deadline=None)
@given(frames())
def test_keep_rule_matches_a_page_by_page_reference(frame):
    header, k, flags = frame
    lay = MapLayout.build(Header.from_dict(header), kind="rows", ppp=k,
                          width=header["hpage_pages"])
    r = encode_flags(flags)
    runs = lay.class_runs(CLASSIFY(r.values), r.lengths, page_ranks(r.values))
    px, partly = lay.pixels(runs)
    want_px, want_partly = reference(lay, flags)
    assert np.array_equal(px, want_px)
    assert np.array_equal(partly, np.flatnonzero(want_partly))
    # the pages per class are those of the old rule: only the pixels change
    plain = lay.class_runs(CLASSIFY(r.values), r.lengths)
    assert np.array_equal(lay.class_pages(runs, len(SCHEME)),
                          lay.class_pages(plain, len(SCHEME)))


def lone_page_frame(pages: int, value: int, at: int) -> np.ndarray:
    """Every page free but one, at PFN `at`."""
    flags = np.full(pages, B(F.BUDDY), np.uint64)
    flags[at] = value
    return flags


@pytest.fixture(scope="module")
def lone_slab(tmp_path_factory):
    """A 4 MiB machine: free, but one slab page in the second huge page (PFN 512 + 77)."""
    rec = tmp_path_factory.mktemp("lone") / "rec"
    return make_recording(rec, [lone_page_frame(1024, B(F.SLAB), 512 + 77)])


@pytest.mark.parametrize("k", divisors(512))
def test_a_lone_unmovable_page_among_free_pages_is_in_the_picture_at_every_k(
        lone_slab, tmp_path, k):
    """GIVEN a huge page of 511 free pages and one slab page, WHEN it is drawn at K pages per
    pixel (every K that divides the row), THEN the slab page's pixel is slab's colour (K = 1)
    or its partly-free tint, and every other pixel is free; `--downsample mode` (the old rule)
    draws it free from K = 2 on."""
    out = tmp_path / "map.png"
    render_recording(lone_slab, out, map_only=True, layout="rows", width=512,
                     pages_per_pixel=k, frame=0)
    img = Image.open(out)
    a, colors = np.asarray(img), np.array(img.getpalette()).reshape(-1, 3)
    rgb = colors[a]
    slab = np.array(SCHEME.classes[SCHEME.index("slab")].light)
    free = np.array(free_color("light"))
    tint = np.rint(slab + (free - slab) * PARTLY)
    want = slab if k == 1 else tint
    y, x = 1, 77 // k
    assert (rgb[y, x] == want).all()
    others = np.ones(a.shape, bool)
    others[y, x] = False
    assert (rgb[others] == free).all()
    if k > 1:
        render_recording(lone_slab, out, map_only=True, layout="rows", width=512,
                         pages_per_pixel=k, frame=0, downsample="mode")
        assert (np.array(Image.open(out).convert("RGB")) == free).all()


def test_the_default_picture_keeps_a_lone_unmovable_page(tmp_path):
    """GIVEN a 24 GiB-like map that the default fit draws at K > 1, with one huge page
    holding a single no-flags (unmovable) page among free pages, WHEN rendered with the
    defaults, THEN a pixel of no flags' partly-free tint is in the picture."""
    pages = 1 << 21  # 8 GiB: K = 2 or more at the default 1920x1080
    rec = make_recording(tmp_path / "rec", [lone_page_frame(pages, 0, 5 * 512 + 300)])
    out = tmp_path / "default.png"
    summary = render_recording(rec, out, frame=0, collapse=False)  # every tile drawn
    assert summary.pages_per_pixel > 1
    img = Image.open(out)
    pal = Palette.make(SCHEME, "light", tints=True)
    nf = SCHEME.index("no flags")
    colors = np.array(img.getpalette()).reshape(-1, 3)
    rgb = colors[np.asarray(img)]
    assert (rgb == pal.colors[pal.tint[nf]]).all(axis=2).sum() == 1
    swatch = (rgb == pal.colors[nf]).all(axis=2).sum()  # the legend's
    render_recording(rec, out, frame=0, downsample="mode", collapse=False)
    rgb = np.array(Image.open(out).convert("RGB"))
    assert not (rgb == pal.colors[pal.tint[nf]]).all(axis=2).any()
    assert (rgb == pal.colors[nf]).all(axis=2).sum() == swatch  # the old rule lost the page


def test_tints_are_paler_than_their_class_and_not_free():
    for theme in ("light", "dark"):
        pal = Palette.make(SCHEME, theme, tints=True)
        free = np.array(free_color(theme), float)
        for i in range(1, len(SCHEME)):
            c, t = pal.colors[i].astype(float), pal.colors[pal.tint[i]].astype(float)
            if (c == free).all():
                continue
            assert np.abs(t - free).sum() < np.abs(c - free).sum()  # nearer free: paler
            assert np.abs(t - free).max() >= 20  # but never the free grey itself
        assert pal.tint[HOLE] == HOLE


def test_downsample_is_checked(tmp_path):
    rec = make_recording(tmp_path / "rec", frames=1)
    with pytest.raises(PvrecError, match="--downsample 'max': use keep .* or mode"):
        render_recording(rec, tmp_path / "x.png", downsample="max")


@pytest.mark.parametrize("mapped", [True, False])
def test_highlight_tints_the_workloads_partly_free_pixels_and_dims_the_others(tmp_path, mapped):
    """GIVEN the lone slab page, mapped by the workload or not, WHEN drawn at K = 8 with
    --highlight workload, THEN its pixel is slab's partly-free tint when the workload maps it,
    else slab's dimmed colour (dimmed pixels are not tinted)."""
    at = 512 + 77
    rec = make_recording(tmp_path / "rec", [lone_page_frame(1024, B(F.SLAB), at)],
                         workload=lambda flags, i: np.array([at] if mapped else [], np.int64))
    out = tmp_path / "hl.png"
    render_recording(rec, out, highlight="workload", layout="rows", width=512,
                     pages_per_pixel=8, frame=0, fit="1200x800")
    img = Image.open(out)
    idx = np.asarray(img)
    pal = Palette.make(SCHEME, "light", dimming=0.7, tints=True)
    slab = SCHEME.index("slab")
    colors = np.array(img.getpalette()).reshape(-1, 3)
    want = pal.colors[pal.tint[slab]] if mapped else pal.colors[pal.dimmed[slab]]
    rgb = colors[idx[:, :100]]  # the map (64 pixels wide, left of the legend)
    assert (rgb == want).all(axis=2).sum() == 1
    other = pal.colors[pal.dimmed[slab]] if mapped else pal.colors[pal.tint[slab]]
    assert not (rgb == other).all(axis=2).any()
