"""Which recording frame goes into which video frame.

By default video time is proportional to recording time: one video frame per tick of the
recording's interval, so a frame is held where ticks were skipped, sped up or slowed down so
that the whole video lasts 10 to 60 s (VIDEO_SECONDS). --speed sets that rate itself; --every N
shows every Nth frame once each (--every 1: every frame once, 1 and 2 s gaps alike); --hold
repeats the last. Outputs that are not timed videos (a directory of PNGs) get each frame once.
--start/--end/--frame name a frame (12, -1) or a time (12s, 1.5m, 12.0). With two runs side by
side the longer one sets the time axis (elapsed time since each one's first frame) and the
other shows, at each moment, its last frame taken at or before it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from pvrec.errors import PvrecError
from pvrec.units import UNIT_SECONDS, format_duration

_TIME = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|min|h)\s*$|^\s*([0-9]*\.[0-9]+)\s*$")


def parse_position(text: str | int | float | None, times: list[float], what: str,
                   end: bool = False) -> int | None:
    """A frame number (12, -1) or a time (12s, 1.5m, or 12.0: a decimal point means seconds)
    -> position."""
    if text is None:
        return None
    n = len(times)
    if isinstance(text, int) or (isinstance(text, str) and re.fullmatch(r"\s*-?\d+\s*", text)):
        i = int(text)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise PvrecError(f"{what} {text}: frame number out of range; the recording has "
                             f"{n} frames (0..{n - 1}, or -1 for the last)")
        return j
    m = _TIME.match(str(text)) if isinstance(text, str) else None
    if isinstance(text, float):
        seconds = text
    elif m and m.group(3):
        seconds = float(m.group(3))
    elif m:
        seconds = float(m.group(1)) * UNIT_SECONDS[m.group(2)]
    else:
        raise PvrecError(f"{what} {text!r}: give a frame number (12, -1) or a time (12s, "
                         f"1.5m, 12.0)")
    t0 = times[0]
    if end:
        pos = int(np.searchsorted(times, t0 + seconds + 1e-9, "right")) - 1
        return max(pos, 0)
    pos = int(np.searchsorted(times, t0 + seconds - 1e-9, "left"))
    if pos >= n:
        raise PvrecError(f"{what} {text}: the recording is only "
                         f"{format_duration(times[-1] - t0)} long")
    return pos


VIDEO_SECONDS = (10.0, 60.0)  # how long a default video of the whole recording lasts


def default_speed(times: list[float], interval: float | None, fps: float) -> float | None:
    """Recording seconds per video second without --speed: one video frame per tick, made
    faster or slower to keep the video within VIDEO_SECONDS; None for a single instant."""
    span = times[-1] - times[0]
    if span <= 0:
        return None
    tick = interval if interval and interval > 0 else float(np.median(np.diff(times)))
    lo, hi = VIDEO_SECONDS
    return min(max(tick * fps, span / hi), span / lo)


def frame_plan(times: list[float], start: int, end: int, every: int, fps: float,
               speed: float | None, hold: float) -> list[tuple[int, int]]:
    """[(position, times shown)] in order: each frame once, or timed by speed; then --hold."""
    chosen = list(range(start, end + 1, every))
    if speed is None:
        plan = [(p, 1) for p in chosen]
    else:
        ts = np.array([times[p] for p in chosen])
        step = speed / fps  # recording seconds per video frame
        count = int(math.floor((ts[-1] - ts[0]) / step + 0.5)) + 1  # the last one included
        # Video frame j shows the last frame taken by its moment, a frame counting from the
        # video frame nearest its time (a sample started a little late still gets its tick).
        idx = np.searchsorted(ts, ts[0] + (np.arange(count) + 0.5) * step, "left") - 1
        plan = []
        for i in idx:
            p = chosen[int(i)]
            if plan and plan[-1][0] == p:
                plan[-1] = (p, plan[-1][1] + 1)
            else:
                plan.append((p, 1))
    extra = int(round(hold * fps))
    if extra and plan:
        plan[-1] = (plan[-1][0], plan[-1][1] + extra)
    return plan


@dataclass
class Plan:
    """The frames of one output: the master run's (position, times shown), and each run's
    position at each of them."""

    master: int  # the run that sets the time axis (the longer one)
    first: int  # the master's first and last position
    last: int
    frames: list[tuple[int, int]]
    at: list[list[int]]  # per run, its position at each planned frame
    elapsed: list[np.ndarray]  # per run, seconds since its first frame, per position

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """Per run, the first and last position it shows."""
        return [(min(a), max(a)) for a in self.at]

    def span_end(self, picture: bool) -> float:
        """Seconds from the start that the output's time strip reaches."""
        rel = self.elapsed[self.master]
        return float(rel[len(rel) - 1] if picture else rel[self.last])


def make_plan(times: list[list[float]], *, picture: bool, start: str | int | None,
              end: str | int | None, frame: str | int | None, every: int | None, fps: float,
              speed: float | None, hold: float, video: bool = True,
              intervals: list[float | None] | None = None) -> Plan:
    """The plan of one output over one or two runs (their frame times and intervals); every
    None and speed None: a timed video at default_speed, any other output each frame once."""
    # The run that lasts longer sets the time axis; the other shows its frame of that moment.
    rel = [np.asarray(t, dtype=np.float64) - t[0] for t in times]
    m = 0 if len(times) == 1 or rel[0][-1] >= rel[1][-1] else 1
    master = times[m]
    if picture:
        first = last = parse_position(-1 if frame is None else frame, master, "--frame")
    else:
        first = parse_position(start, master, "--start") or 0
        last = parse_position(end, master, "--end", end=True)
        last = len(master) - 1 if last is None else last
        if last < first:
            raise PvrecError(f"--end ({end}) comes before --start ({start}): no frames")
    assert first is not None and last is not None
    if speed is None and every is None and video and not picture:
        speed = default_speed(master[first:last + 1], (intervals or [None] * 2)[m], fps)
    plan = frame_plan(master, first, last, every or 1, fps, speed, 0.0 if picture else hold)
    # Each side's position at each planned moment (the master's own position for itself).
    at = []
    for i in range(len(times)):
        if i == m:
            at.append([p for p, _ in plan])
        else:
            q = np.searchsorted(rel[i], rel[m][[p for p, _ in plan]] + 1e-9, "right") - 1
            at.append([max(0, int(x)) for x in q])
    return Plan(m, first, last, plan, at, rel)
