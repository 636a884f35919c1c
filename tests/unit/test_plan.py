"""plan.py: positions from frame numbers and times, and which recording frame each video frame
shows (alone, retimed, held, and with two runs side by side)."""

from __future__ import annotations

import pytest

from pvrec.errors import PvrecError
from pvrec.render.plan import default_speed, frame_plan, make_plan, parse_position

TIMES = [100.0, 101.0, 102.0, 103.5, 105.0]  # seconds (a recording's monotonic clock)


def test_positions_from_numbers_and_times():
    assert [parse_position(x, TIMES, "--start") for x in (0, "3", -1, "-5", None)] == \
        [0, 3, 4, 0, None]
    assert parse_position("2s", TIMES, "--start") == 2
    assert parse_position("3.0", TIMES, "--start") == 3  # a decimal point means seconds
    assert parse_position("2500ms", TIMES, "--start") == 3  # first frame at or after 2.5 s
    assert parse_position("2500ms", TIMES, "--end", end=True) == 2  # last at or before
    assert parse_position("1m", TIMES, "--end", end=True) == 4
    with pytest.raises(PvrecError) as err:
        parse_position(5, TIMES, "--start")
    assert err.value.message == ("--start 5: frame number out of range; the recording has 5 "
                                 "frames (0..4, or -1 for the last)")
    with pytest.raises(PvrecError, match=r"--start 6s: the recording is only "):
        parse_position("6s", TIMES, "--start")
    with pytest.raises(PvrecError, match=r"--frame 'soon': give a frame number"):
        parse_position("soon", TIMES, "--frame")


def test_each_frame_once_every_nth_then_held():
    assert frame_plan(TIMES, 0, 4, 1, 10.0, None, 0.0) == [(p, 1) for p in range(5)]
    assert frame_plan(TIMES, 0, 4, 2, 10.0, None, 0.5) == [(0, 1), (2, 1), (4, 6)]


def test_speed_keeps_recording_time():
    # 5 s of recording at 2 recording seconds per video second, 2 fps: a frame a second
    assert frame_plan(TIMES, 0, 4, 1, 2.0, 2.0, 0.0) == [(0, 1), (1, 1), (2, 2), (3, 1),
                                                           (4, 1)]


def test_a_pair_follows_the_longer_run_and_the_shorter_holds_its_last_frame():
    short = [0.0, 1.0, 2.0]
    plan = make_plan([short, TIMES], picture=False, start=None, end=None, frame=None, every=1,
                     fps=10.0, speed=None, hold=0.0)
    assert plan.master == 1 and (plan.first, plan.last) == (0, 4)
    assert plan.at == [[0, 1, 2, 2, 2], [0, 1, 2, 3, 4]]
    assert plan.ranges == [(0, 2), (0, 4)] and plan.span_end(False) == 5.0


def test_a_picture_is_one_frame_and_ignores_hold():
    plan = make_plan([TIMES], picture=True, start=None, end=None, frame="3s", every=1,
                     fps=10.0, speed=None, hold=2.0)
    assert plan.frames == [(3, 1)] and plan.span_end(True) == 5.0
    last = make_plan([TIMES], picture=True, start=None, end=None, frame=None, every=1,
                     fps=10.0, speed=None, hold=0.0)
    assert last.frames == [(4, 1)]
    with pytest.raises(PvrecError) as err:
        make_plan([TIMES], picture=False, start="3", end="1", frame=None, every=1, fps=10.0,
                  speed=None, hold=0.0)
    assert err.value.message == "--end (1) comes before --start (3): no frames"


def test_default_speed_is_one_video_frame_per_tick_within_10_to_60_seconds():
    ticks = [float(t) for t in range(0, 301, 3)]  # 300 s, every 3 s
    assert default_speed(ticks, 3.0, 10.0) == 30.0  # 101 video frames: 10.1 s
    assert default_speed(ticks, 1.0, 10.0) == 10.0  # ticks skipped: 301 frames, 30.1 s
    assert default_speed(ticks, 0.25, 10.0) == 5.0  # 1201 frames would be 120 s: 60 s
    assert default_speed([0.0, 1.0, 2.0], 1.0, 10.0) == 0.2  # 0.2 s would flash by: 10 s
    assert default_speed([0.0, 2.0, 4.0, 4.5], None, 10.0) == 0.45  # no interval: the median gap
    assert default_speed([5.0], 1.0, 10.0) is None


def test_the_default_holds_frames_where_ticks_were_skipped():
    # GIVEN 101 s of frames at 1 s ticks, 3 skipped after frame 1 and jitter of 40 ms
    times = [0.0, 1.04] + [t + 0.04 for t in range(5, 101)]
    # WHEN a video is planned with the defaults
    plan = make_plan([times], picture=False, start=None, end=None, frame=None, every=None,
                     fps=10.0, speed=None, hold=0.0, intervals=[1.0])
    # THEN one video frame a tick: frame 1 holds for the 4 ticks until frame 2, the rest once
    assert plan.frames == [(0, 1), (1, 4)] + [(p, 1) for p in range(2, 98)]
    # while --every 1 shows each frame once, and a directory of PNGs gets each frame once
    once = [(p, 1) for p in range(98)]
    assert make_plan([times], picture=False, start=None, end=None, frame=None, every=1,
                     fps=10.0, speed=None, hold=0.0, intervals=[1.0]).frames == once
    assert make_plan([times], picture=False, start=None, end=None, frame=None, every=None,
                     fps=10.0, speed=None, hold=0.0, video=False).frames == once
