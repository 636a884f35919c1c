"""Redrawing only what changed (render/side.py: a delta frame says which pages changed) makes
the same pictures, pixel for pixel, as drawing every frame whole: both ways are rendered and
compared, over the cases where the two paths could part (pixels of several pages, the
partly-free tint, holes, a window, frames skipped by --every, a damaged frame, two runs side by
side, the encoders' upscaled buffers)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image, ImageSequence

import pvrec.render.side as side_module
from pvrec.recording.reader import open_recording
from pvrec.render.pipeline import render_recording
from tests.helpers import make_recording, synthetic_frames


def both_ways(monkeypatch, tmp_path: Path, rec, out: str, **kw) -> tuple[Path, Path]:
    """The render with redrawing of changed pixels (the default) and without; the first
    redraws some frames from their changes (or the comparison would prove nothing)."""
    redrawn = []
    draw_changed = side_module.Side._draw_changed

    def counted(self, *args):
        redrawn.append(args[0])
        return draw_changed(self, *args)

    monkeypatch.setattr(side_module.Side, "_draw_changed", counted)
    paths = []
    for redraw in (True, False):
        monkeypatch.setattr(side_module, "REDRAW_CHANGED", redraw)
        tmp_path.mkdir(exist_ok=True)
        p = tmp_path / f"{'redraw' if redraw else 'whole'}-{out}"
        if not p.suffix:
            p.mkdir()  # a directory: one PNG per frame
        before = len(redrawn)
        render_recording(rec, p, **kw)
        paths.append(p)
        assert (len(redrawn) > before) == redraw
    return paths[0], paths[1]


def png_frames(d: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(d.glob("frame-*.png"))]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """16 frames of the 4096-page test machine (a RAM hole, every class), 3% of the pages
    changing a frame, a key frame every 5: deltas to redraw from, and keys between them."""
    return make_recording(tmp_path_factory.mktemp("redraw") / "run", 16, seed=3, key_every=5)


@pytest.mark.parametrize("kw", [
    {},  # one page a pixel
    {"pages_per_pixel": 4},  # K=4, keeping the pages that fragment (the partly-free tint)
    {"pages_per_pixel": 8, "downsample": "mode", "timeline": True},
    {"pages_per_pixel": 2, "every": 3},  # the changes of skipped frames add up
    {"pages_per_pixel": 4, "region": "0x300000-0xb00000", "collapse": False},  # a window
    {"pages_per_pixel": 4, "speed": 0.5},  # held frames: drawn once, sent twice
], ids=["k1", "k4-keep", "k8-mode-timeline", "every3", "region", "held"])
def test_redrawing_changed_pixels_draws_every_frame_as_drawing_it_whole(
        monkeypatch, tmp_path, recording, kw):
    """GIVEN a recording of delta frames, WHEN rendered to PNG frames redrawing only the
    changed pixels and drawing every frame whole, THEN every frame is the same picture."""
    redraw, whole = both_ways(monkeypatch, tmp_path, recording, "frames", **kw)
    a, b = png_frames(redraw), png_frames(whole)
    assert len(a) == len(b) > 1
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert np.array_equal(x, y), f"frame {i} differs"


def test_a_damaged_delta_frame_is_skipped_and_the_next_drawn_whole(monkeypatch, tmp_path):
    """GIVEN a recording whose frame 3 (a delta) is damaged, WHEN rendered both ways, THEN
    the same frames are drawn (3 and 4, its chain, are skipped; 5 is a key frame)."""
    rec = make_recording(tmp_path / "run", 10, seed=5, key_every=5)
    (rec / open_recording(rec).frames[3].file).write_bytes(b"PK\x03\x04 cut short")
    redraw, whole = both_ways(monkeypatch, tmp_path, rec, "frames", pages_per_pixel=4,
                              every=1)
    a, b = png_frames(redraw), png_frames(whole)
    assert len(a) == len(b) == 8
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_two_runs_side_by_side_redraw_as_drawn_whole(monkeypatch, tmp_path, recording):
    """GIVEN two recordings drawn side by side, WHEN rendered both ways, THEN the same."""
    other = make_recording(tmp_path / "other", 9, seed=8, key_every=4)
    redraw, whole = both_ways(monkeypatch, tmp_path, [recording, other], "frames",
                              pages_per_pixel=4)
    a, b = png_frames(redraw), png_frames(whole)
    assert len(a) == len(b) > 1
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webp"])
def test_encoders_upscale_only_what_changed_to_the_same_video(monkeypatch, tmp_path,
                                                              recording, suffix):
    """GIVEN the recording, WHEN encoded both ways (the MP4's 2x buffer updated only where
    the canvas changed), THEN every decoded frame is the same."""
    redraw, whole = both_ways(monkeypatch, tmp_path, recording, "out" + suffix,
                              pages_per_pixel=2, every=1, timeline=True)
    a, b = decoded(redraw), decoded(whole)
    assert a.shape == b.shape and a.shape[0] > 1
    assert np.array_equal(a, b)


def decoded(path: Path) -> np.ndarray:
    """Every frame of a video (Pillow for WebP: imageio reads its first frame only)."""
    if path.suffix != ".webp":
        return iio.imread(path, index=None)
    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])


def test_a_frame_that_changes_nothing_is_drawn_as_the_one_before(monkeypatch, tmp_path):
    """GIVEN a recording whose frames 2 and 3 repeat frame 1 (deltas of no change), WHEN
    rendered both ways at 1 and at 4 pages a pixel, THEN the same pictures."""
    f = list(synthetic_frames(5, seed=9))
    rec = make_recording(tmp_path / "run", [f[0], f[1], f[1], f[1], f[2], f[3]])
    for k in (1, 4):
        redraw, whole = both_ways(monkeypatch, tmp_path / f"k{k}", rec, "frames",
                                  pages_per_pixel=k, every=1)
        a, b = png_frames(redraw), png_frames(whole)
        assert len(a) == len(b) == 6
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_row_two_numa_panels_show_is_redrawn_in_both(monkeypatch, tmp_path):
    """GIVEN a machine whose node boundary (PFN 2100) is not at a row's start, so the row
    across it is drawn in both nodes' panels, WHEN rendered both ways, THEN the same
    pictures (the copy in node 0's panel is repainted too)."""
    from tests.helpers import HEADER

    b = 2100
    header = {**HEADER, "nodes": [{"node": 0, "ranges": [[0, 1536], [1792, b]]},
                                  {"node": 1, "ranges": [[b, 4096]]}],
              "zones": [{"node": 0, "name": "DMA32", "start_pfn": 0, "end_pfn": b},
                        {"node": 1, "name": "Normal", "start_pfn": b, "end_pfn": 4096}]}
    rec = make_recording(tmp_path / "numa", 8, seed=3, header=header, key_every=100)
    for k in (1, 4):
        redraw, whole = both_ways(monkeypatch, tmp_path / f"k{k}", rec, "frames",
                                  pages_per_pixel=k, collapse=False, every=1)
        a, b_ = png_frames(redraw), png_frames(whole)
        assert len(a) == len(b_) == 8
        assert all(np.array_equal(x, y) for x, y in zip(a, b_, strict=True))


TILE = 64 * 512  # a tile of the banded machine: 512 rows of 64-page huge pages


def banded_frames(seed: int, flipping=lambda i: True, reach: int = 100) -> list[np.ndarray]:
    """Ten frames of six tiles: tile 0 all free and tile 2 all page cache (its referenced bits
    flipping in the frames `flipping` says), 300-page stretches of tile 1 (up to `reach`
    pages from its end) and of tiles 3-5 changing every frame."""
    from pvrec import flags as F

    n = 6 * TILE - 1000
    free, cache = F.bit(F.BUDDY), F.bit(F.LRU) | F.bit(F.UPTODATE)
    rng = np.random.default_rng(seed)
    f = np.zeros(n, np.uint64)
    f[:TILE], f[2 * TILE:3 * TILE] = free, cache
    frames = []
    for i in range(10):
        f = f.copy()
        s = int(rng.integers(TILE, 2 * TILE - reach))
        f[s:s + 300] = rng.choice([free, cache, 0x68, 0x828])
        s = int(rng.integers(3 * TILE, n - 100))
        f[s:s + 300] = rng.choice([free, cache, 0x68])
        if flipping(i):
            f[2 * TILE + 10 * i:2 * TILE + 10 * i + 5] ^= F.bit(F.REFERENCED)
        frames.append(f)
    return frames


@pytest.fixture(scope="module")
def banded(tmp_path_factory):
    """banded_frames with a frame 6 that is damaged: bands in the picture."""
    rec = make_recording(tmp_path_factory.mktemp("banded") / "big", banded_frames(2),
                         key_every=4)
    (rec / open_recording(rec).frames[6].file).write_bytes(b"PK\x03\x04 cut short")
    return rec


@pytest.mark.parametrize("kw", [
    {"pages_per_pixel": 8},
    {"pages_per_pixel": 16, "region": "0-0x3000000"},
    {"pages_per_pixel": 4, "every": 2},
], ids=["k8", "k16-region", "k4-every2"])
def test_maps_with_bands_and_a_damaged_frame_redraw_as_drawn_whole(monkeypatch, tmp_path,
                                                                    banded, kw):
    """GIVEN tiles that fold into bands and a damaged frame, WHEN rendered both ways, THEN
    the same pictures, and bands are in them (the collapse pre-pass followed the static
    tiles)."""
    redraw, whole = both_ways(monkeypatch, tmp_path, banded, "frames", **kw)
    a, b = png_frames(redraw), png_frames(whole)
    assert len(a) == len(b) > 1
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    from pvrec.classes import ValueClassifier, default_scheme
    from pvrec.render.collapse import MIXED, Watch
    from pvrec.render.raster import MapLayout

    rec = open_recording(banded)
    lay = MapLayout.build(rec.header, kind="rows", width=64)
    w = Watch(lay, 64, changes=False)
    w.follow(rec.iter_stored(), set(range(len(rec))), ValueClassifier(default_scheme()), lay)
    assert (w.static()[[0, 2]] != MIXED).all()  # tiles 0 and 2 fold into bands


def test_a_warm_summaries_cache_spares_the_collapse_prepass_the_frames_it_need_not_read(
        tmp_path, monkeypatch):
    """GIVEN six tiles of which tile 0 stays free and tile 2 page cache (its referenced bits
    flipping in frames 1-3 only) while the others change every frame, WHEN rendered to
    frames cold and again after `pvrec info` filled the summaries cache, THEN the same
    pictures, both with tiles 0 and 2 folded into bands, and the warm pre-pass reads only the
    frames that touch a tile it still follows: 0-3 (tile 2's flips) and 5 (which ends the
    last tile's single class)."""
    from pvrec.inspect.info import summarize
    from pvrec.recording.reader import Recording
    from pvrec.render import prepass

    frames = banded_frames(5, lambda i: 1 <= i <= 3, reach=300)  # tile 1's stay in tile 1
    rec = make_recording(tmp_path / "rec", frames, key_every=4)
    loads: list[int] = []
    real_load, real_prepass = Recording._load, prepass.prepass
    in_prepass, found = [False], []

    def load(self, info, *rest):
        if in_prepass[0]:
            loads.append(info.index)
        return real_load(self, info, *rest)

    def counted_prepass(*args, **kw):
        in_prepass[0] = True
        try:
            found.append(real_prepass(*args, **kw))
            return found[-1]
        finally:
            in_prepass[0] = False

    monkeypatch.setattr(Recording, "_load", load)
    monkeypatch.setattr("pvrec.render.pipeline.prepass", counted_prepass)
    outs, bands = [], []
    for name in ("cold", "warm"):
        if name == "warm":
            summarize(open_recording(rec))
        loads.clear()
        out = tmp_path / name
        out.mkdir()
        render_recording(rec, out, pages_per_pixel=8, every=1)
        outs.append(png_frames(out))
        bands.append(list(loads))
    assert len(outs[0]) == 10 and all(np.array_equal(a, b) for a, b in zip(*outs, strict=True))
    assert bands[0] == list(range(10)) and bands[1] == [0, 1, 2, 3, 5]
    assert found[0].bands == found[1].bands
    assert [(s // TILE, -(-e // TILE)) for s, e, _ in found[1].bands[0]] == [(0, 1), (2, 3)]


def _tile_frames(changes: dict[int, int], count: int) -> list[np.ndarray]:
    """count frames of three tiles, all free; from frame i on, the first n pages of tile 1
    page cache ({i: n})."""
    from pvrec import flags as F

    f = np.full(3 * TILE, F.bit(F.BUDDY), np.uint64)
    frames = []
    for i in range(count):
        if i in changes:
            f = f.copy()
            f[TILE:TILE + changes[i]] = F.bit(F.LRU) | F.bit(F.UPTODATE)
        frames.append(f)
    return frames


@pytest.mark.parametrize("case", ["every-2", "one-frame", "start-is-end", "file-gone"])
def test_a_warm_pre_pass_draws_what_a_cold_one_does(tmp_path, case):
    """GIVEN recordings where a warm summaries cache could mislead the collapse pre-pass: a
    change in a frame --every 2 skips (tile 1 must not fold), a single frame, --start at
    --end, and a frame file gone after the cache was made (the key frame after it was
    counted from it), WHEN rendered before and after `pvrec info` filled the cache (the
    last: after the file went, against a render with no cache), THEN the same pictures."""
    from pvrec.inspect.info import summarize
    from pvrec.summaries import cache_paths

    kw: dict = {"pages_per_pixel": 8}
    if case == "every-2":
        frames, key_every, kw["every"] = _tile_frames({1: 3900}, 4), 30, 2
    elif case == "one-frame":
        frames, key_every = _tile_frames({}, 1), 30
    elif case == "start-is-end":
        frames, key_every, kw["start"], kw["end"] = _tile_frames({1: 3900}, 6), 30, 2, 2
    else:
        frames, key_every = _tile_frames({1: TILE}, 4), 2
    rec = make_recording(tmp_path / "rec", frames, key_every=key_every)
    summarize(open_recording(rec))
    if case == "file-gone":
        (rec / open_recording(rec).frames[1].file).unlink()
    got = []
    for name in ("warm", "cold"):
        if name == "cold":
            for p in cache_paths(open_recording(rec)):
                p.unlink(missing_ok=True)
        out = tmp_path / name
        out.mkdir()
        render_recording(rec, out, warn=None, **kw)
        got.append(png_frames(out))
    assert len(got[0]) == len(got[1]) >= 1
    assert all(np.array_equal(a, b) for a, b in zip(*got, strict=True))
