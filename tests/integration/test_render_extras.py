"""Render extras end to end: two runs side by side, the workload highlighted, pages coloured by
cgroup, metric lines in the timeline, one panel per NUMA node. Small synthetic recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pvrec.recording.header import Header
from pvrec.render.pipeline import PAIR_GAP, render_recording
from tests.conftest import run_pvrec
from tests.helpers import HEADER, PAGES, make_recording
from tests.integration.test_render import decode, ok


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def fails(result, *words: str) -> str:
    """The command failed with exit 2 and one line naming all the words."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------ side by side


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("pair")
    a = make_recording(d / "thp-always", frames=8)  # 0..7 s
    b = make_recording(d / "thp-never", frames=5, seed=3,  # 0..4 s: the shorter
                       header={**HEADER, "command": ["make", "-j2"]})
    return a, b


def test_pair_png_is_each_run_beside_the_other(pair, tmp_path):
    a, b = pair
    ok(run_pvrec("render", a, b, "-o", tmp_path / "ab.png", "--frame", "6",
                 "--title", "always", "--title", "never"))
    ok(run_pvrec("render", a, "-o", tmp_path / "a.png", "--frame", "6", "--title", "always"))
    ok(run_pvrec("render", b, "-o", tmp_path / "b.png", "--frame", "-1", "--title", "never"))
    ab, ia, ib = png(tmp_path / "ab.png"), png(tmp_path / "a.png"), png(tmp_path / "b.png")
    # at t=6 s the shorter run (4 s long) shows its last frame, drawn as it would be alone
    assert ab.shape[1] == ia.shape[1] + PAIR_GAP + ib.shape[1] + (ab.shape[1] % 2)
    assert np.array_equal(ab[:ia.shape[0], :ia.shape[1]], ia)
    x = ia.shape[1] + PAIR_GAP
    assert np.array_equal(ab[:ib.shape[0], x:x + ib.shape[1]], ib)


def test_pair_video_follows_the_longer_run_and_the_shorter_holds(pair, tmp_path):
    a, b = pair
    out = tmp_path / "ab.gif"
    err = ok(run_pvrec("render", b, a, "-o", out, "--changes", "--timeline", "--every", "1"))
    assert "8 frames" in err
    frames = decode(out)
    assert len(frames) == 8
    w = frames[0].shape[1]
    left, right = slice(0, w // 2 - PAIR_GAP), slice(w // 2 + PAIR_GAP, w)
    # b (left here, 5 frames) stops changing after its last frame except its timeline cursor,
    # which stays at its end; a (right) keeps moving
    assert np.array_equal(frames[5][:, left], frames[7][:, left])
    assert not np.array_equal(frames[5][:, right], frames[7][:, right])
    assert not np.array_equal(frames[1][:, left], frames[2][:, left])


def test_pair_api_and_default_name(pair, tmp_path):
    a, b = pair
    s = render_recording([a, b], tmp_path / "ab.mp4", fps=5, every=1)
    assert s.frames == 8 and s.width % 2 == 0 and s.height % 2 == 0
    assert (tmp_path / "ab.mp4").stat().st_size > 0


def test_pair_of_different_memory_sizes_says_why(pair, tmp_path):
    a, _ = pair
    big = make_recording(tmp_path / "big", frames=2, pages=8192)
    msg = fails(run_pvrec("render", a, big, "-o", tmp_path / "x.mp4"), "same memory size",
                "thp-always", "big")
    assert "15.0 MiB" in msg and "32.0 MiB" in msg
    assert not (tmp_path / "x.mp4").exists()
    fails(run_pvrec("render", a, a, a, "-o", tmp_path / "x.mp4"), "two side by side")
    fails(run_pvrec("render", a, a, "-o", tmp_path / "x.mp4", "--title", "one"), "--title")
    fails(run_pvrec("render", a, a, "-o", tmp_path / "x.png", "--map-only"), "--map-only")


# ------------------------------------------------------------- recordings with channels

CGROUPS = {"0": "/", "101": "/system.slice/sshd.service", "102": "/user.slice/user-1000.slice",
           "103": "/workload", "104": "/system.slice/journald.service"}


def workload_pfns(flags: np.ndarray, i: int) -> np.ndarray:
    """The workload maps the anonymous and THP pages of the first (i+1)/8 of memory."""
    from tests.helpers import CLASS_FLAGS

    mine = np.isin(flags, [CLASS_FLAGS["anonymous"], CLASS_FLAGS["THP"]])
    mine[(i + 1) * flags.size // 8:] = False
    return np.flatnonzero(mine)


def cgroup_of(flags: np.ndarray, i: int) -> np.ndarray:
    """Inodes by region (free and hole pages: 0); /workload grows each frame."""
    from tests.helpers import CLASS_FLAGS

    n = flags.size
    inode = np.full(n, 101, dtype=np.uint64)
    inode[n // 4:n // 2] = 102
    inode[n // 2:n // 2 + (i + 1) * n // 16] = 103
    inode[7 * n // 8:] = 104
    inode[3 * n // 4:3 * n // 4 + 64] = 105 + np.arange(64) % 12  # many small cgroups
    inode[(flags == CLASS_FLAGS["free"]) | (flags == 0)] = 0
    return inode


def make_channel_recording(path: Path, frames: int = 6, channels=("flags", "cgroup", "workload"),
                           pages: int | None = None) -> Path:
    """make_recording's frames with the workload and cgroup channels filled in."""
    names = dict(CGROUPS)
    return make_recording(path, frames, pages=pages or PAGES,
                          header={**HEADER, "cgroup_names": names}, channels=channels,
                          cgroup=cgroup_of, workload=workload_pfns,
                          end={"reason": "test", "cgroup_names": {**names, "105": "/late/arrival"}})


@pytest.fixture(scope="module")
def chan(tmp_path_factory) -> Path:
    return make_channel_recording(tmp_path_factory.mktemp("chan") / "pvrec-chan", frames=6)


# -------------------------------------------------------------------- --highlight workload


def map_of(path: Path, header: Header, **opt) -> tuple[np.ndarray, np.ndarray]:
    """(the map part of a rendered PNG of the 4096-page test layout as RGB, its palette)."""
    from pvrec.classes import default_scheme
    from pvrec.render.compose import Options, Picture
    from pvrec.render.fit import choose_layout
    from pvrec.render.raster import MapLayout

    scheme, o = default_scheme(), Options(**opt)
    ram = MapLayout.build(header).ram_pages
    pic = Picture(choose_layout(header, scheme, o, ram_pages=ram), scheme, header, o,
                  ram_pages=ram)
    g = pic.geo
    img = png(path)
    return img[g.map_y:g.map_y + 64, g.map_x:g.map_x + 64].reshape(-1, 3), pic.palette.colors


def test_highlight_workload_full_colour_and_the_rest_dimmed(chan, tmp_path):
    from pvrec.classes import ValueClassifier, default_scheme
    from pvrec.recording.reader import open_recording

    out = tmp_path / "hl.png"
    ok(run_pvrec("render", chan, "-o", out, "--highlight", "workload", "--frame", "3"))
    rec = open_recording(chan)
    frame = rec.read_frame(3)
    header = Header.from_dict({**HEADER, "pfn_count": 4096})
    got, colors = map_of(out, header, highlight="workload")
    cls = ValueClassifier(default_scheme())(frame.flags.expand())
    mine = np.zeros(4096, bool)
    mine[np.flatnonzero(frame.workload.expand())] = True
    assert 100 < mine.sum() < 2000
    ram = np.ones(4096, bool)
    ram[1536:1792] = False
    n = len(default_scheme())
    bg = colors[n].astype(float)
    dimmed = np.rint(colors[:n] + (bg - colors[:n]) * 0.7).astype(np.uint8)
    assert np.array_equal(got[mine], colors[cls[mine]])
    other = ~mine & ram
    assert np.array_equal(got[other], dimmed[cls[other]])
    # dimmed means paler: every dimmed colour is nearer the (white) background
    assert (got[other].astype(int).sum(1) >= colors[cls[other]].astype(int).sum(1)).all()


def test_highlight_counts_pixels_with_any_workload_page():
    from pvrec.render.side import workload_blocks
    from pvrec.runs import pfns_to_runs

    runs = pfns_to_runs(np.array([0, 1, 9, 30, 31, 32]), 40)
    mask, pages = workload_blocks(runs, 8, 5)
    assert pages == 6
    assert mask.tolist() == [True, True, False, True, True]
    mask, pages = workload_blocks(pfns_to_runs(np.zeros(0, np.int64), 40), 8, 5)
    assert pages == 0 and not mask.any()


def test_highlight_video_and_the_resident_size(chan, tmp_path):
    seen = []
    from pvrec.render import compose

    orig = compose.Picture.frame

    def spy(self, px, **kw):
        seen.append(kw["highlight"][1])
        return orig(self, px, **kw)

    compose.Picture.frame = spy
    try:
        s = render_recording(chan, tmp_path / "hl.gif", highlight="workload", changes=True,
                             every=1)
    finally:
        compose.Picture.frame = orig
    assert s.frames == 6
    from pvrec.recording.reader import open_recording

    rec = open_recording(chan)
    assert seen == [int(np.flatnonzero(rec.read_frame(i).workload.expand()).size) for i in range(6)]
    assert seen[-1] > seen[0]  # the workload grows


def test_highlight_without_workload_pages_says_which_record_flag(tmp_path):
    plain = make_recording(tmp_path / "plain", frames=2)
    msg = fails(run_pvrec("render", plain, "-o", tmp_path / "x.mp4", "--highlight",
                          "workload"), "plain has no workload pages", "--track-workload",
                "(on by default with -- CMD)")
    assert msg.startswith("pvrec: ")
    fails(run_pvrec("render", plain, "-o", tmp_path / "x.mp4", "--highlight", "cgroup"),
          "--highlight")
    assert not (tmp_path / "x.mp4").exists()


# ---------------------------------------------------------------------- --color-by cgroup


def test_color_by_cgroup_colours_each_page_by_its_cgroup(chan, tmp_path):
    from pvrec.classes import OTHER_COLOR, SERIES_COLORS, parse_color
    from pvrec.recording.reader import open_recording

    out = tmp_path / "cg.png"
    ok(run_pvrec("render", chan, "-o", out, "--color-by", "cgroup", "--top", "3",
                 "--frame", "5"))
    got, _ = map_of(out, Header.from_dict({**HEADER, "pfn_count": 4096}))
    inode = open_recording(chan).read_frame(5).cgroup.expand()
    # /workload grows to the largest; then sshd (101), user-1000 (102); the rest "other"
    want = {103: SERIES_COLORS[0], 101: SERIES_COLORS[1], 102: SERIES_COLORS[2]}
    ram = np.ones(4096, bool)
    ram[1536:1792] = False
    for ino, color in want.items():
        sel = (inode == ino) & ram
        assert sel.sum() > 50
        assert (got[sel] == parse_color(color)).all(), ino
    other = np.isin(inode, [104] + list(range(105, 117))) & ram
    assert other.sum() > 50 and (got[other] == OTHER_COLOR[0]).all()
    free = (inode == 0) & ram
    assert free.sum() > 50 and (got[free] == parse_color("#DCDCDC")).all()


def test_cgroup_names_merge_header_and_end_and_pairs_share_colours_by_name(chan):
    from pvrec.classes_cgroup import cgroup_schemes
    from pvrec.render.data import cgroup_tally
    from pvrec.sources import RecordingSource

    pages, names = cgroup_tally(RecordingSource(chan), 0, 5)
    assert names[103] == "/workload" and names[105] == "/late/arrival"  # end.json only
    assert pages[0] > 0 and pages[103] > pages[104]
    a = ({7: 500, 8: 100, 0: 50}, {7: "/a", 8: "/b"})
    b = ({9: 300, 5: 400, 0: 10}, {9: "/a", 5: "/c"})  # other inodes, same name /a
    sa, sb = cgroup_schemes([a, b], 2)
    assert sa.names == sb.names == ["hole", "/a", "/c", "other", "none/free"]
    vals = np.array([7, 8, 0, 9, 5], np.uint64)
    assert sa.classify_values(vals).tolist() == [1, 3, 4, 3, 3]
    assert sb.classify_values(vals).tolist() == [3, 3, 4, 1, 2]
    long = cgroup_schemes([({1: 5}, {1: "/system.slice/very-long-unit-name-here.service"})], 8)
    assert long[0].names[1] == "/system.slice/...-here.service"  # 30 characters
    assert cgroup_schemes([({1: 5}, {1: "/a-very-long-top-level-slice/and-a-service-in-it"})],
                          8)[0].names[1] == "...l-slice/and-a-service-in-it"
    assert cgroup_schemes([({4: 5}, {})], 8)[0].names[1] == "cgroup #4"


def test_color_by_cgroup_video_with_timeline_and_bad_input(chan, tmp_path):
    s = render_recording(chan, tmp_path / "cg.gif", color_by="cgroup", timeline=True, every=1,
                         changes=True)
    assert s.frames == 6
    plain = make_recording(tmp_path / "plain", frames=2)
    fails(run_pvrec("render", plain, "-o", tmp_path / "x.mp4", "--color-by", "cgroup"),
          "plain has no cgroup pages", "record it with --cgroups")
    fails(run_pvrec("render", chan, "-o", tmp_path / "x.mp4", "--color-by", "cgroup",
                    "--top", "0"), "--top")
    fails(run_pvrec("render", chan, "-o", tmp_path / "x.mp4", "--color-by", "cgroup",
                    "--classes", "flags"), "--classes")
    assert not (tmp_path / "x.mp4").exists()


# ------------------------------------------------------------------- --timeline-metrics


def test_timeline_metrics_lines_are_the_frames_metrics(tmp_path):
    from pvrec.classes import parse_color
    from pvrec.metrics import frame_metrics
    from pvrec.recording.reader import open_recording
    from pvrec.render import compose
    from pvrec.render.palette import METRIC_COLORS

    rec = make_recording(tmp_path / "rec", frames=6)
    got = {}
    orig = compose.Picture.__init__

    def spy(self, *a, **kw):
        got["metrics"] = kw.get("metrics")
        got["timeline"] = kw.get("timeline")
        orig(self, *a, **kw)

    compose.Picture.__init__ = spy
    try:
        render_recording(rec, tmp_path / "m.png",
                         timeline_metrics="free_hp_blocks,unusable_index@DMA32")
    finally:
        compose.Picture.__init__ = orig
    labels, values, _ = got["metrics"]  # and the strip's scale
    assert labels == ["free_hp_blocks (Normal)", "unusable_index (DMA32)"]  # Normal: largest
    r = open_recording(rec)
    want = [[frame_metrics(r.read_runs(i), r.header)["Normal"]["free_hp_blocks"],
             frame_metrics(r.read_runs(i), r.header)["DMA32"]["unusable_index"]]
            for i in range(6)]
    assert np.allclose(values, want)
    assert got["timeline"] is not None  # implies --timeline
    img = png(tmp_path / "m.png")
    for c in METRIC_COLORS[:2]:  # both lines are drawn
        assert (img == parse_color(c)).all(-1).sum() > 10
    plain = tmp_path / "plain.png"
    ok(run_pvrec("render", rec, "-o", plain, "--timeline"))
    from pvrec.classes import default_scheme
    from pvrec.render.compose import Options, Picture
    from pvrec.render.fit import choose_layout
    from pvrec.render.strips import TIMELINE_H

    header, o = Header.from_dict({**HEADER, "pfn_count": 4096}), Options(timeline=True)
    g = Picture(choose_layout(header, default_scheme(), o), default_scheme(), header, o).geo
    base = png(plain)
    rows = np.flatnonzero((img[:base.shape[0]] != base).any(-1).any(1))
    assert rows.size and rows.min() >= g.timeline_y + TIMELINE_H  # below the class strip


def test_timeline_metrics_video_pair_and_bad_names(pair, tmp_path):
    from pvrec.render import compose

    a, b = pair
    got = []
    orig = compose.Picture.__init__

    def spy(self, *args, **kw):
        got.append(kw.get("metrics"))
        orig(self, *args, **kw)

    compose.Picture.__init__ = spy
    try:
        s = render_recording([a, b], tmp_path / "ab.gif", timeline_metrics=["mixed_blocks"],
                             every=1)
    finally:
        compose.Picture.__init__ = orig
    assert s.frames == 8
    (_, va, sa), (_, vb, sb) = got[-2:]  # one scale for both runs: the lines compare
    assert np.array_equal(sa[0], sb[0]) and np.array_equal(sa[1], sb[1])
    assert sa[0][0] == 0 and sa[1][0] == max(va.max(), vb.max())  # from zero to the peak
    ok(run_pvrec("render", a, "-o", tmp_path / "m.gif", "--timeline-metrics",
                 "buddy_order_9,largest_free_run"))
    fails(run_pvrec("render", a, "-o", tmp_path / "x.mp4", "--timeline-metrics",
                    "free_hp_blocks,bogus"), "unknown metric 'bogus'", "valid metrics")
    fails(run_pvrec("render", a, "-o", tmp_path / "x.mp4", "--timeline-metrics",
                    "free_pages@HighMem"), "no zone 'HighMem'", "DMA32, Normal")
    fails(run_pvrec("render", a, "-o", tmp_path / "x.mp4", "--timeline-metrics",
                    "free_pages,free_pages,free_pages,free_pages,free_pages"), "at most 4")
    assert not (tmp_path / "x.mp4").exists()


# ------------------------------------------------------------------------- NUMA panels

G = 262144  # pages in 1 GiB


def numa_header() -> dict:
    """2 nodes, 4 GiB of RAM: node 0 0-1.5 GiB, a hole to 2 GiB, node 1 2-4.5 GiB."""
    n = 4 * G + G // 2
    return {"page_size": 4096, "hpage_pages": 512, "pfn_count": n,
            "ram_ranges": [[0, 3 * G // 2], [2 * G, n]],
            "zones": [{"node": 0, "name": "DMA32", "start_pfn": 0, "end_pfn": 3 * G // 2},
                      {"node": 1, "name": "DMA32", "start_pfn": 2 * G, "end_pfn": 4 * G},
                      {"node": 1, "name": "Normal", "start_pfn": 4 * G, "end_pfn": n}],
            "nodes": [{"node": 0, "ranges": [[0, 3 * G // 2]]},
                      {"node": 1, "ranges": [[2 * G, n]]}],
            "hostname": "numa", "kernel": "6.1", "command": ["stress"]}


@pytest.fixture(scope="module")
def numa(tmp_path_factory) -> Path:
    from pvrec.recording.writer import Writer
    from tests.helpers import synthetic_frame

    h = numa_header()
    w = Writer(tmp_path_factory.mktemp("numa") / "rec", h, durable=False)
    f = synthetic_frame(0, h["pfn_count"])
    f[3 * G // 2:2 * G] = 0
    w.add_frame(f, 0.0, {})
    w.add_frame(f, 1.0, {})
    w.close({"reason": "test"})
    return w.path


def test_numa_nodes_get_a_panel_each_with_their_own_tiles():
    from pvrec.render.raster import PANEL_GAP, MapLayout

    lay = MapLayout.build(Header.from_dict(numa_header()))
    assert [(t.panel, t.first_pfn) for t in lay.tiles] == [
        (0, 0), (0, G), (1, 2 * G), (1, 3 * G), (1, 4 * G)]  # node 1 starts its own tiles
    assert [t.rows for t in lay.tiles] == [512, 256, 512, 512, 256]
    lay.arrange(2)  # 2 columns in each panel: node 0 one row of 2, node 1 two rows
    x = [t.x for t in lay.tiles]
    assert x[2] - (x[1] + 512) == PANEL_GAP and x[4] == x[2]
    assert lay.size_for(2) == (4 * 512 + 2 * lay.gap + PANEL_GAP, 512 + lay.vgap + 256)
    one = MapLayout.build(Header.from_dict({**numa_header(),
                                            "nodes": numa_header()["nodes"][:1]}))
    assert [t.first_pfn for t in one.tiles] == [0, G, 2 * G, 3 * G, 4 * G]
    assert all(t.panel == 0 for t in one.tiles)


def test_numa_map_pixels_are_their_pages(numa, tmp_path):
    from pvrec.classes import ValueClassifier, default_scheme
    from pvrec.recording.reader import open_recording
    from pvrec.render.compose import Options
    from pvrec.render.fit import choose_layout

    out = tmp_path / "map.png"
    ok(run_pvrec("render", numa, "-o", out, "--map-only", "-k", "1"))
    img = np.asarray(Image.open(out))  # palette indices: class numbers
    cls = ValueClassifier(default_scheme())(open_recording(numa).read(-1))
    cls[3 * G // 2:2 * G] = 0
    lay = choose_layout(Header.from_dict(numa_header()), default_scheme(),
                        Options(map_only=True), ppp=1, ram_pages=4 * G)
    assert lay.cols == 2  # 2 tiles wide in each panel: 2584 px would not fit 1920
    assert img.shape == (lay.height, lay.width)
    for t in lay.tiles:
        want = cls[t.first_pfn:t.first_pfn + t.rows * 512].reshape(t.rows, 512)
        assert np.array_equal(img[t.y:t.y + t.rows, t.x:t.x + 512], want), t


def test_numa_picture_is_labelled_per_node(numa, tmp_path):
    out = tmp_path / "numa.png"
    ok(run_pvrec("render", numa, "-o", out, "--timeline"))
    from pvrec.classes import default_scheme
    from pvrec.render.compose import Options, Picture
    from pvrec.render.fit import choose_layout

    h, o = Header.from_dict(numa_header()), Options(timeline=True, partly=True)  # as render's
    lay = choose_layout(h, default_scheme(), o, ram_pages=4 * G)
    assert len(lay.panels) == 2
    names = [m.name for m in lay.marks if m.kind == "node"]
    assert names == ["node 0", "node 1"]
    pic = Picture(lay, default_scheme(), h, o, ram_pages=4 * G)
    assert png(out).shape[:2] == (pic.size[1], pic.size[0])
