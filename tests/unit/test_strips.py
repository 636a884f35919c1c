"""The --timeline strips tell the truth: the classes in use fill the class strip at their peak,
a metric's line moves by its share of a scale from zero, and the scales' labels say so."""

from __future__ import annotations

import numpy as np
import pytest

from pvrec.classes import default_scheme, make_scheme
from pvrec.classes_cgroup import cgroup_schemes
from pvrec.recording.header import Header
from pvrec.render.compose import Options, Picture
from pvrec.render.fit import choose_layout
from pvrec.render.strips import (
    TIMELINE_H,
    idle_classes,
    metric_scales,
    scale_labels,
    size_labels,
)
from tests.helpers import HEADER

GiB = 1 << 30


def picture(pages: list[dict[str, int]], metrics: tuple | None = None) -> Picture:
    """A picture of the 4096-page test machine whose timeline has these class sizes, one dict
    per frame at t = 0, 1, 2, ..."""
    s = default_scheme()
    header = Header.from_dict({**HEADER, "pfn_count": 4096})
    opt = Options(timeline=True)
    tl = np.zeros((len(pages), len(s)), np.int64)
    for i, frame in enumerate(pages):
        for name, n in frame.items():
            tl[i, s.index(name)] = n
    return Picture(choose_layout(header, s, opt), s, header, opt, frame_count=len(pages),
                   timeline=(np.arange(len(pages), dtype=np.float64), tl), metrics=metrics)


def test_in_use_classes_fill_the_class_strip_at_their_peak():
    # GIVEN frames where free memory and pages with no flags dwarf slab and anonymous pages,
    # whose sum peaks at 200 pages in frame 1
    frames = [{"free": 3000, "no flags": 600, "slab": 50, "anonymous": 50},
              {"free": 2900, "no flags": 600, "slab": 100, "anonymous": 100},
              {"free": 2950, "no flags": 600, "slab": 25, "anonymous": 75},
              {"free": 2950, "no flags": 600, "slab": 25, "anonymous": 75}]
    pic = picture(frames)
    s, g = pic.scheme, pic.geo
    # WHEN the picture is drawn
    strip = pic.static[g.timeline_y:g.timeline_y + TIMELINE_H,
                       g.timeline_x:g.timeline_x + g.timeline_w]
    slab, anon = s.index("slab"), s.index("anonymous")
    # THEN free and no-flags pages are not drawn at all
    assert not np.isin(strip, [s.index("free"), s.index("no flags")]).any()
    cols = np.flatnonzero(np.isin(strip, [slab, anon]).any(axis=0))
    assert cols.size and np.array_equal(cols, np.arange(cols[0], cols[-1] + 1))
    third = cols.size / 3  # frames at t = 0..3: each column shows the frame nearest in time

    def column(k: int) -> np.ndarray:  # the column at frame k's time
        return strip[:, cols[0] + min(cols.size - 1, round(k * third))]

    # at the peak (frame 1) the in-use classes fill the whole height: 100 rows of 200 each
    peak = column(1)
    assert (peak[TIMELINE_H // 2:] == anon).all() and (peak[:TIMELINE_H // 2] == slab).all()
    # frame 0 is half the peak: anonymous at the bottom, slab on it, the rest empty
    first = column(0)
    assert (first[48:] == anon).all() and (first[32:48] == slab).all()
    assert (first[:32] == pic.palette.bg).all()
    # frame 2: 75 and 25 pages of 200
    third_col = column(2)
    assert (third_col[40:] == anon).all() and (third_col[32:40] == slab).all()
    # the scale written on it: 0 and the peak's size (200 pages of 4 KiB)
    assert pic.strips.class_scale == ("0 KiB", "800 KiB")


def metric_line(pic: Picture) -> tuple[list[int], int]:
    """The row of the first metric's line in the middle column of each frame, and the height
    of its strip (between the strip's frame rows)."""
    g, pal = pic.geo, pic.palette
    below = pic.static[g.timeline_y + TIMELINE_H + 1:]
    cls_strip = pic.static[g.timeline_y + TIMELINE_H - 1, g.timeline_x:]
    cols = g.timeline_x + np.flatnonzero(cls_strip < len(pic.scheme))
    n = len(pic.strips.times) - 1
    w = cols.size / n
    rows = []
    # the column at frame k's time (it shows the frame nearest in time); frame 0's a little
    # after it, right of the legend's swatch of the line's colour
    at = [cols[0] + round(max(k, 0.3) * w) for k in range(n)]
    for x in at:
        line = np.flatnonzero(below[:, x] == pal.lines[0])
        assert line.size == 1, line
        rows.append(int(line[0]))
    col = below[:, at[0]]
    frame = np.flatnonzero(col == pal.frame)
    top = frame[frame < rows[0]].max()
    bottom = frame[frame > rows[0]].min()
    assert rows[0] == top + 1  # the peak is the top row
    return rows, int(bottom - top - 1)


def test_metric_line_moves_by_its_share_of_a_scale_from_zero():
    # GIVEN a metric at 1000, then 500 (-50%), then 975 (-2.5%)
    values = np.array([[1000], [500], [975], [975]], dtype=np.float64)
    frames = [{"slab": 10}] * 4
    pic = picture(frames, (["free_hp_blocks (Normal)"], values))
    # WHEN drawn, THEN the line moves by that share of the strip's height
    rows, h = metric_line(pic)
    assert rows[1] - rows[0] == round(0.5 * (h - 1))
    assert rows[2] - rows[0] == round(0.025 * (h - 1)) <= 1
    assert pic.strips.scales[0][2:] == ("0 blocks", "1,000 blocks")
    # and with a scale from the lowest to the highest value (--metric-scale range), -50% is
    # the whole height
    ranged = picture(frames, (["free_hp_blocks (Normal)"], values,
                              metric_scales([values], "range")))
    rows, h = metric_line(ranged)
    assert rows[1] - rows[0] == h - 1
    assert ranged.strips.scales[0][2:] == ("500 blocks", "1,000 blocks")


def test_metric_scales_of_one_or_two_runs():
    a = np.array([[10.0, 0.5], [30.0, 0.25]])
    b = np.array([[40.0, 0.75]])
    lo, hi = metric_scales([a, b])
    assert lo.tolist() == [0, 0] and hi.tolist() == [40, 0.75]
    lo, hi = metric_scales([a, b], "range")
    assert lo.tolist() == [10, 0.25] and hi.tolist() == [40, 0.75]
    lo, hi = metric_scales([np.zeros((3, 1))])  # nothing to scale: 0..1, the line at 0
    assert (lo.tolist(), hi.tolist()) == ([0], [1])


@pytest.mark.parametrize("metric, lo, hi, want", [
    ("free_hp_blocks", 0, 1483, ("0 blocks", "1,483 blocks")),
    ("free_hp_blocks", 434, 1483, ("434 blocks", "1,483 blocks")),
    ("buddy_order_3", 0, 12, ("0 blocks", "12 blocks")),
    ("free_pages", 250_123, 794_000, ("250k pages", "794k pages")),
    ("free_pages", 0, 6_291_456, ("0 pages", "6.29M pages")),
    ("unusable_index", 0.0304, 0.111, ("0.0304", "0.111")),
    ("mixed_blocks", 0, 1, ("0", "1")),
    ("largest_free_run", 7168, 49152, ("28.0 MiB", "192 MiB")),
])
def test_metric_scale_labels(metric, lo, hi, want):
    assert scale_labels(metric, lo, hi, 4096) == want


def test_size_labels_take_the_unit_of_the_top():
    assert size_labels(0, 8.43 * GiB) == ("0 GiB", "8.4 GiB")
    assert size_labels(0.5 * GiB, 24 * GiB) == ("0.5 GiB", "24.0 GiB")
    assert size_labels(0, 13.2 * (1 << 20)) == ("0 MiB", "13.2 MiB")
    assert size_labels(0, 300 * GiB) == ("0 GiB", "300 GiB")


def test_idle_classes_are_free_and_no_flags_in_every_scheme(tmp_path):
    s = default_scheme()
    assert idle_classes(s) == (s.index("free"), s.index("no flags"))
    # a file of one's own: a class for free pages; pages with no flags fall to "other", which
    # holds pages in use too, so it is drawn
    (tmp_path / "mine.toml").write_text('[[class]]\nname = "free"\nbits = "buddy"\n'
                                        'color = "#FFFFFF"\n\n[[class]]\nname = "anon"\n'
                                        'bits = "anonymous"\ncolor = "#E69F00"\n')
    toml = make_scheme(str(tmp_path / "mine.toml"))
    assert idle_classes(toml) == (toml.index("free"),)
    flags = make_scheme("flags")
    flags.fit(np.array([0, 1 << 10, 1 << 5], np.uint64), np.array([5.0, 3.0, 1.0]))
    assert [flags.names[c] for c in idle_classes(flags)] == ["(no flags)", "buddy"]
    cg = cgroup_schemes([({7: 10}, {7: "/work"})], 2)[0]
    assert [cg.names[c] for c in idle_classes(cg)] == ["none/free"]


def test_the_strip_ends_on_the_last_frame():
    """GIVEN anonymous pages at 200, 200, then 50 (a run that ends by freeing them), WHEN the
    strip is drawn, THEN its last columns show the 50 pages (a quarter of the height), as the
    legend does at the end, and its first columns the 200."""
    pic = picture([{"anonymous": 200}, {"anonymous": 200}, {"anonymous": 50}])
    g, anon = pic.geo, pic.scheme.index("anonymous")
    strip = pic.static[g.timeline_y:g.timeline_y + TIMELINE_H,
                       g.timeline_x:g.timeline_x + g.timeline_w]
    cols = np.flatnonzero((strip == anon).any(axis=0))
    heights = (strip[:, cols] == anon).sum(axis=0)
    assert heights[0] == heights[cols.size // 2] == TIMELINE_H
    assert heights[-1] == TIMELINE_H // 4
