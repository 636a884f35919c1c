"""`pvrec render --timeline-metrics` end to end: a 2.5% drop of free pages moves the line by
2.5% of its strip by default, by the whole strip with --metric-scale range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pvrec.classes import parse_color
from pvrec.render.palette import METRIC_COLORS, THEME_UI
from tests.conftest import run_pvrec
from tests.helpers import CLASS_FLAGS, HOLE, PAGES, make_recording
from tests.integration.test_render import ok
from tests.integration.test_render_extras import fails


@pytest.fixture(scope="module")
def dropping(tmp_path_factory) -> Path:
    """Four frames of page cache with a free run in the Normal zone (PFN 2048 up) of 1600
    pages, then 1560 (-2.5%)."""
    frames = []
    for free in (1600, 1600, 1560, 1560):
        flags = np.full(PAGES, CLASS_FLAGS["page cache"], np.uint64)
        flags[HOLE[0]:HOLE[1]] = 0
        flags[2048:2048 + free] = CLASS_FLAGS["free"]
        frames.append(flags)
    return make_recording(tmp_path_factory.mktemp("drop") / "rec", frames)


def line_move(path: Path) -> tuple[int, int]:
    """(rows the metric's line moves down from its left half to its right half, the rows of
    its strip): the line is the only long horizontal run of its colour."""
    img = np.asarray(Image.open(path).convert("RGB"))
    on = (img == parse_color(METRIC_COLORS[0])).all(-1)
    segments = []  # (row, first column, last column) of runs of 40 pixels or more
    for row in range(on.shape[0]):
        x = np.flatnonzero(on[row])
        for run in np.split(x, np.flatnonzero(np.diff(x) > 1) + 1) if x.size else []:
            if run.size >= 40:
                segments.append((row, int(run[0]), int(run[-1])))
    assert len(segments) == 2, segments
    (r0, a0, b0), (r1, a1, _) = sorted(segments, key=lambda s: s[1])
    assert b0 < a1 + 2  # one after the other in time
    frame = (img[:, (a0 + b0) // 2] == parse_color(THEME_UI["light"][6])).all(-1)
    rows = np.flatnonzero(frame)
    top, bottom = rows[rows < r0].max(), rows[rows > r0].min()
    assert r0 == top + 1  # the first half is the peak: the strip's top row
    return r1 - r0, int(bottom - top - 1)


def test_metric_lines_start_at_zero_unless_asked(dropping, tmp_path):
    zero, ranged = tmp_path / "zero.png", tmp_path / "range.png"
    ok(run_pvrec("render", dropping, "-o", zero, "--timeline-metrics", "free_pages"))
    move, h = line_move(zero)
    assert move == round(0.025 * (h - 1)) == 1  # 2.5% of the strip, not all of it
    ok(run_pvrec("render", dropping, "-o", ranged, "--timeline-metrics", "free_pages",
                 "--metric-scale", "range"))
    move, h = line_move(ranged)
    assert move == h - 1  # lowest to highest value: the drop is the whole strip
    fails(run_pvrec("render", dropping, "-o", tmp_path / "x.png", "--metric-scale", "range"),
          "--metric-scale", "--timeline-metrics")
    fails(run_pvrec("render", dropping, "-o", tmp_path / "x.png", "--timeline-metrics",
                    "free_pages", "--metric-scale", "log"), "--metric-scale", "zero", "range")
    assert not (tmp_path / "x.png").exists()
