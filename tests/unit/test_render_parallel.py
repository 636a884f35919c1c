"""render/parallel.py: where the plan is cut into chunks, what a chunk's --changes compares
with, the side pickled for the workers, the pre-pass shared by them, and a worker's error
reaching the parent as it was raised."""

from __future__ import annotations

import numpy as np
import pytest

from pvrec import flags as F
from pvrec.classes import ValueClassifier, make_scheme
from pvrec.errors import PvrecError
from pvrec.render.collapse import Watch
from pvrec.render.data import class_timeline
from pvrec.render.parallel import (
    before_candidates,
    chunk_plan,
    credits_for,
    cut_cost,
    intervals,
    pickle_sides,
    pool,
    single_reason,
)
from pvrec.render.prepass import _whole, watch_frames
from pvrec.sources import ArraySource, RecordingSource
from tests.helpers import make_recording


def test_chunks_start_at_key_frames_and_cover_the_plan_once():
    positions = list(range(60))
    assert chunk_plan(positions, [0, 30], 2, changes=False) == [(0, 30), (30, 60)]
    keys = list(range(0, 60, 10))
    assert chunk_plan(positions, keys, 6, changes=False) == [
        (0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60)]


def test_with_changes_a_chunk_starts_just_after_a_key_frame():
    # its first frame is compared with the key frame, read alone
    assert chunk_plan(list(range(60)), [0, 30], 2, changes=True) == [(0, 31), (31, 60)]
    assert cut_cost(list(range(60)), np.array([0, 30]), 30, True) == 30  # 0..29 again
    assert cut_cost(list(range(60)), np.array([0, 30]), 31, True) == 2  # 30, twice


def test_without_a_key_frame_near_the_chunks_split_evenly():
    positions = list(range(12))
    assert chunk_plan(positions, [0], 2, changes=False) == [(0, 6), (6, 12)]
    assert cut_cost(positions, np.array([0]), 6, False) == 6  # 0..5 read again


@pytest.mark.parametrize("seed", range(20))
def test_chunks_partition_any_plan(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    positions = sorted(set(int(x) for x in rng.integers(0, 400, n)))
    keys = sorted(set(int(x) for x in rng.integers(0, 400, int(rng.integers(1, 30)))) | {0})
    pieces = int(rng.integers(1, 40))
    got = chunk_plan(positions, keys, pieces, bool(seed % 2))
    assert got[0][0] == 0 and got[-1][1] == len(positions)
    assert all(a < b for a, b in got)
    assert all(b == c for (_, b), (c, _) in zip(got, got[1:], strict=False))
    assert len(got) <= pieces


def test_a_worker_draws_ahead_what_the_others_need_to_never_wait():
    assert credits_for(30, 2) == 16  # half a chunk (and the one being handed over)
    assert credits_for(30, 3) == 21
    assert credits_for(1, 2) == 2


def test_intervals_counts_the_key_intervals_the_plan_touches():
    assert intervals([0, 5, 12, 13, 29], [0, 10, 20]) == 3
    assert intervals([0, 3, 6], [0, 10]) == 1
    assert intervals([], [0]) == 0


def test_changes_compares_with_the_last_frame_drawn_before_the_chunk():
    positions = [0, 3, 6, 9]
    assert before_candidates(positions, 2, None) == [3, 0]  # 3; 0 where 3 is damaged
    assert before_candidates(positions, 0, 5) == [5]  # the first chunk: as one process
    assert before_candidates(positions, 0, None) == []
    assert before_candidates([4, 5], 1, 3) == [4, 3]


def test_what_is_drawn_in_one_process(tmp_path):
    rec = RecordingSource(make_recording(tmp_path / "r", 2))
    assert single_reason("map", False, False, [rec]) is None
    assert single_reason("churn", False, False, [rec]) == \
        "--view churn adds up every frame in order"
    assert single_reason("map", True, False, [rec]) == "a .png is one frame"
    assert single_reason("map", False, False, [rec, rec]) == \
        "two runs side by side are drawn in one process"
    one = ArraySource(np.zeros(4096, np.uint64), rec.header, "dump")
    assert single_reason("map", False, False, [one]) == "live memory or a dump is one frame"


def _four_units(count: int):
    """Frames of 4 GiB: units 0 and 2 one class throughout, units 1 and 3 changing."""
    unit = 1 << 18
    for i in range(count):
        f = np.zeros(4 * unit, np.uint64)
        f[:unit] = 1 << F.BUDDY
        f[2 * unit:3 * unit] = 1 << F.SLAB
        f[unit + i * 100:unit + i * 100 + 50] = 1 << F.SLAB
        f[3 * unit + i:3 * unit + 2 * i] = 1 << F.BUDDY
        yield f


def test_watch_merge_is_one_watch_fed_every_frame(tmp_path):
    src = RecordingSource(make_recording(tmp_path / "r", _four_units(9), key_every=3))
    c = ValueClassifier(make_scheme(None, None))
    lay = _whole(src.header)
    whole, a, b = (Watch(lay, 512, changes=False) for _ in range(3))
    watch_frames(src, c, lay, whole, 0, 8, 1, "flags")
    watch_frames(src, c, lay, a, 0, 3, 1, "flags")
    watch_frames(src, c, lay, b, 4, 8, 1, "flags")
    a.merge(b)
    assert np.array_equal(a.static(), whole.static()) and a.frames == whole.frames == 9
    assert list(whole.static() >= 0) == [True, False, True, False]


def test_the_pool_shares_the_pre_pass(tmp_path):
    src = RecordingSource(make_recording(tmp_path / "r", _four_units(9), key_every=3))
    c = ValueClassifier(make_scheme(None, None))
    lay = _whole(src.header)
    one, two = Watch(lay, 512, changes=False), Watch(lay, 512, changes=False)
    watch_frames(src, c, lay, one, 0, 8, 2, "flags")
    with pool(2, src) as p:
        p.watch(src, c, lay, two, 0, 8, 2, "flags")
    assert np.array_equal(one.static(), two.static()) and two.frames == 5


def test_the_pool_shares_the_timeline_in_order(tmp_path):
    src = RecordingSource(make_recording(tmp_path / "r", _four_units(9), key_every=3))
    c = ValueClassifier(make_scheme(None, None))
    lay = _whole(src.header)
    n_cls = len(c.scheme)
    one, two = Watch(lay, 512, changes=False), Watch(lay, 512, changes=False)
    want = class_timeline(src, c, lay, 1, 8, 1, n_cls, "flags", [("free_pages", "Normal")],
                          watch=one)
    with pool(2, src) as p:
        got = p.timeline(src, c, lay, 1, 8, 1, n_cls, "flags", [("free_pages", "Normal")],
                         watch=two)
    assert len(want[0]) == 8
    assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
    assert np.array_equal(one.static(), two.static()) and two.frames == 8


def test_the_side_pickles_without_the_recording_or_the_font(tmp_path):
    from pvrec.render.parallel import _Unpickler

    src = RecordingSource(make_recording(tmp_path / "r", 3, pages=1 << 16))
    from pvrec.render.text import Text

    text = Text()
    text.font(14)
    blob = pickle_sides([src, text])
    assert len(blob) < 20_000  # the font's 300 KB and the frame index stay out
    opened: dict = {}
    again, text2 = _Unpickler(blob, print, opened).load()
    assert again is opened[str(src.rec.path)] and again.times == src.times
    assert text2.font(14).getname() == text.font(14).getname()


def test_a_worker_error_is_the_parent_error(tmp_path):
    src = RecordingSource(make_recording(tmp_path / "r", 3, pages=1 << 16))
    c = ValueClassifier(make_scheme(None, None))
    lay = _whole(src.header)
    (tmp_path / "r").rename(tmp_path / "gone")  # the workers open it by its path
    with pool(2, src) as p, pytest.raises(PvrecError, match="is not a recording"):
        p.watch(src, c, lay, Watch(lay, 512, changes=False), 0, 2, 1, "flags")


def test_a_worker_bug_is_raised_with_its_traceback(tmp_path):
    src = RecordingSource(make_recording(tmp_path / "r", 3, pages=1 << 16))
    c = ValueClassifier(make_scheme(None, None))
    lay = _whole(src.header)
    with pool(2, src) as p, pytest.raises(RuntimeError) as got:
        p.watch(src, c, None, Watch(lay, 512, changes=False), 0, 2, 1, "flags")
    assert "render worker 1 failed" in str(got.value)
    assert "AttributeError: 'NoneType' object has no attribute 'class_runs'" in str(got.value)
