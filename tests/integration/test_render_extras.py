"""Render extras end to end: two runs side by side, the workload highlighted, pages coloured by
cgroup, metric lines in the timeline, one panel per NUMA node. Small synthetic recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pvrec.render.command import PAIR_GAP, render_recording
from tests.conftest import run_pvrec
from tests.integration.test_render import decode, ok
from tests.unit.test_render_data import HEADER, make_recording


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
    err = ok(run_pvrec("render", b, a, "-o", out, "--changes", "--timeline"))
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
    s = render_recording([a, b], tmp_path / "ab.mp4", fps=5)
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
