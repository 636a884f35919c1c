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
