"""--view churn and --view age: per pixel, how many frames changed its class and how long ago
the last one did, against a page-by-page reference, and in rendered pictures and videos."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pvrec import flags as F
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.render.history import History, HistoryScheme, bin_edges, ram_per_pixel
from pvrec.render.pipeline import render_recording
from pvrec.render.raster import MapLayout
from pvrec.runs import encode_flags
from tests.helpers import make_recording, pvrec_main


@st.composite
def histories(draw):
    n = draw(st.integers(1, 300))
    k = draw(st.sampled_from([1, 2, 4, 8, 3]))
    frames = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cls = [np.repeat(rng.integers(1, 4, 20), 20)[:n].astype(np.uint8)]
    cls[0] = np.resize(cls[0], n)
    for _ in range(frames - 1):
        nxt = cls[-1].copy()
        idx = rng.integers(0, n, rng.integers(0, 6))
        nxt[idx] = rng.integers(1, 4, idx.size)
        cls.append(nxt)
    header = {"pfn_count": n, "hpage_pages": k * 4}
    if draw(st.booleans()):
        pts = sorted(draw(st.lists(st.integers(0, n), min_size=2, max_size=2)))
        header["ram_ranges"] = [[0, pts[0]], [pts[1], n]]
    return header, k, cls


@settings(max_examples=100, deadline=None)
@given(histories(), st.sampled_from(["churn", "age"]))
def test_churn_and_age_match_a_page_by_page_reference(hist, view):
    header, k, frames = hist
    lay = MapLayout.build(Header.from_dict(header), kind="rows", ppp=k, width=k * 4)
    h = History(lay, HistoryScheme(view, len(frames)))
    for cls in frames:
        r = encode_flags(cls.astype(np.uint64))
        h.add(lay.class_runs(r.values.astype(np.uint8), r.lengths))
    n, nb = lay.pfn_count, lay.blocks
    ram = np.ones(nb * k, bool)
    ram[n:] = False
    for s, e in lay.holes:
        ram[s:e] = False
    count = np.zeros(nb, np.int64)
    last = np.zeros(nb, np.int64)
    for i in range(1, len(frames)):
        diff = np.zeros(nb * k, bool)
        diff[:n] = frames[i] != frames[i - 1]
        px = (diff & ram).reshape(nb, k).any(axis=1)
        count[px] += 1
        last[px] = i
    want = count if view == "churn" else len(frames) - 1 - last
    assert np.array_equal(h.values(), want)
    assert np.array_equal(ram_per_pixel(lay), ram.reshape(nb, k).sum(axis=1))
    px = h.pixels()
    assert h.pages(px).sum() == lay.ram_pages  # the legend's sizes add up to the RAM


def test_bins_are_each_value_up_to_eight_then_powers_of_two():
    assert bin_edges(0).tolist() == [0]
    assert bin_edges(8).tolist() == list(range(9))
    assert bin_edges(123).tolist() == [0, 1, 2, 4, 8, 16, 32, 64]
    churn = HistoryScheme("churn", 124)
    assert churn.names[1:] == ["0 changes", "1 change", "2-3 changes", "4-7 changes",
                               "8-15 changes", "16-31 changes", "32-63 changes",
                               "64-123 changes"]
    assert churn.note(0, 123) == "class changes per pixel, frames 1-124, log scale"
    age = HistoryScheme("age", 5)
    assert age.names[1:] == ["changed now", "1 frame ago", "2 frames ago", "3 frames ago",
                             "4 frames ago"]
    assert not age.log


B = F.bit
PAGES = 4096


def history_frames(count: int = 10) -> list[np.ndarray]:
    """Page 100 changes class every frame; pages 600-609 once, at frame 3; the rest never."""
    out = []
    for i in range(count):
        flags = np.full(PAGES, B(F.BUDDY), np.uint64)
        flags[100] = B(F.SLAB) if i % 2 else B(F.LRU)
        if i >= 3:
            flags[600:610] = B(F.ANON)
        out.append(flags)
    return out


@pytest.fixture(scope="module")
def hist_rec(tmp_path_factory):
    return make_recording(tmp_path_factory.mktemp("hist") / "rec", history_frames())


def colours_of(path, xy):
    img = Image.open(path).convert("RGB")
    return [img.getpixel(p) for p in xy]


def bin_colour(view: str, frames: int, name: str, theme: str = "light"):
    sch = HistoryScheme(view, frames)
    return sch.classes[sch.index(name)].color(theme)


def test_churn_picture_counts_every_frame_up_to_the_one_drawn(hist_rec, tmp_path):
    """GIVEN 10 frames where page 100 changes 9 times, pages 600-609 once and the rest never,
    WHEN drawn with --view churn at one pixel per page, THEN each page has its bin's colour;
    with --frame 5 only the first six frames count."""
    out = tmp_path / "churn.png"
    render_recording(hist_rec, out, view="churn", map_only=True, layout="rows", width=512)
    xy = [(100, 0), (600 - 512, 1), (0, 0), (511, 7)]
    assert colours_of(out, xy) == [bin_colour("churn", 10, n) for n in
                                   ("8-9 changes", "1 change", "0 changes", "0 changes")]
    render_recording(hist_rec, out, view="churn", map_only=True, layout="rows", width=512,
                     frame=5)
    assert colours_of(out, xy[:3]) == [bin_colour("churn", 6, n) for n in
                                       ("5 changes", "1 change", "0 changes")]


def test_age_video_ages_each_frame(hist_rec, tmp_path):
    """GIVEN the same recording, WHEN drawn with --view age into a directory of PNG frames,
    THEN at frame i pages 600-609 are i - 3 frames old (from frame 3 on), page 100 changed
    now, and a page that never changed is as old as the range."""
    out = tmp_path / "frames"
    out.mkdir()
    render_recording(hist_rec, out, view="age", map_only=True, layout="rows", width=512)
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 10
    sch = HistoryScheme("age", 10)
    name_of = {sch.classes[j].light: sch.names[j] for j in range(1, len(sch))}
    for i, png in enumerate(pngs):
        got = [name_of[c] for c in colours_of(png, [(100, 0), (600 - 512, 1), (0, 0)])]
        assert got == [by_name(sch, 0), by_name(sch, i - 3 if i >= 3 else i), by_name(sch, i)]


def by_name(sch: HistoryScheme, value: int) -> str:
    return sch.names[int(np.searchsorted(sch.edges, value, "right"))]


def test_history_views_refuse_what_draws_classes(hist_rec, tmp_path):
    for extra, flag in ((dict(changes=True), "--changes"), (dict(timeline=True), "--timeline")):
        with pytest.raises(PvrecError, match=f"--view age colours pages by their history; "
                                             f"{flag} is for the map"):
            render_recording(hist_rec, tmp_path / "x.png", view="age", **extra)
    with pytest.raises(PvrecError, match="--view .heat.: use one of map, blocks, churn, age"):
        render_recording(hist_rec, tmp_path / "x.png", view="heat")


def test_cli_view_churn_writes_a_png_and_refuses_changes_in_one_line(hist_rec, tmp_path):
    code, out, err = pvrec_main("render", str(hist_rec), "--view", "churn", "-o",
                                str(tmp_path / "churn.png"))
    assert code == 0 and (tmp_path / "churn.png").is_file(), err
    code, out, err = pvrec_main("render", str(hist_rec), "--view", "churn", "--changes", "-o",
                                str(tmp_path / "c2.png"))
    assert code == 2 and err == ("pvrec: --view churn colours pages by their history; "
                                 "--changes is for the map of page classes (--view map)\n")
    assert not (tmp_path / "c2.png").exists()


def test_snapshot_run_at_n_draws_churn_up_to_frame_n(hist_rec, tmp_path):
    out = tmp_path / "snap.png"
    code, _, err = pvrec_main("snapshot", f"{hist_rec}@5", "--view", "churn", "--map-only",
                              "--layout", "rows", "--width", "512", "-o", str(out))
    assert code == 0, err
    assert colours_of(out, [(100, 0), (600 - 512, 1)]) == [
        bin_colour("churn", 6, n) for n in ("5 changes", "1 change")]
