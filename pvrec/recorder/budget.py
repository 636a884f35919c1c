"""The --max-overhead budget: ticks are delayed so that pvrec's CPU stays at or under a share
of the machine, and the tick schedule counts ticks given up for it apart from ticks a long
sample ran over.

The budget is a leaky bucket without credit: every CPU second pvrec spends (every thread,
the kernel's kpageflags read included, measured by getrusage) buys 1 / (share * cpus) wall
seconds, and the next sample starts no earlier than the moment the CPU spent so far is paid
for. Time spent under budget is not banked, so no stretch of the recording bursts above it.
"""

from __future__ import annotations

import math

from pvrec.errors import PvrecError
from pvrec.recording.figures import format_seconds
from pvrec.units import format_duration

MIN_RATE = 60.0  # s: a budget must allow at least one sample a minute


def parse_percent(text: str, option: str = "--max-overhead") -> float:
    """'5%', '5', '2.5%' -> 5.0, 5.0, 2.5; one line for 0, negative, over 100 or not a number."""
    body = text.strip().removesuffix("%").strip()
    try:
        value = float(body)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= 100:
        raise PvrecError(f"{option} must be a percentage of the machine above 0 and at most "
                         f"100, such as 5%, not {text}")
    return value


class Budget:
    """CPU share pacing: spend() the CPU used so far, ready() says when the next sample may go."""

    def __init__(self, percent: float, cpus: int, wall: float, cpu: float):
        self.percent = percent
        self.rate = percent / 100 * cpus  # CPU seconds pvrec may spend per wall second
        self._ready = wall
        self._wall, self._cpu = wall, cpu

    def spend(self, wall: float, cpu: float) -> float:
        """Count the CPU used since the last call (cpu: the process total); the time before
        which the next sample must not start."""
        self._ready = max(self._ready, self._wall) + max(0.0, cpu - self._cpu) / self.rate
        self._wall, self._cpu = wall, cpu
        return self._ready

    def interval_for(self, sample_cpu: float) -> float:
        """The mean wall seconds between samples that cost sample_cpu each."""
        return sample_cpu / self.rate

    def check_affordable(self, sample_cpu: float) -> None:
        """Refuse a budget that allows less than one sample a minute (a sample's measured CPU)."""
        every = self.interval_for(sample_cpu)
        if every <= MIN_RATE:
            return
        need = sample_cpu / (MIN_RATE * self.rate / self.percent)
        raise PvrecError(
            f"--max-overhead {self.percent:g}% is too small: a sample costs "
            f"{format_seconds(sample_cpu)} of CPU here, so it allows one every "
            f"{format_duration(every)}; one a minute needs --max-overhead "
            f"{_round_up(need)}% or more")


def _round_up(percent: float) -> str:
    """Two significant digits, rounded up: 0.01234 -> '0.013'."""
    step = 10.0 ** (math.floor(math.log10(percent)) - 1)
    digits = max(0, -round(math.log10(step)))
    return f"{round(math.ceil(percent / step - 1e-9) * step, digits):g}"


def next_tick(k: int, done: float, ready: float, t0: float, interval: float
              ) -> tuple[int, int, int]:
    """After tick k's sample ended at `done`, with the budget allowing the next at `ready`:
    (the next tick, ticks missed because the sample ran long, ticks given up for the budget)."""
    on_time = max(k + 1, math.floor((done - t0) / interval) + 1)
    nxt = on_time
    if ready > t0 + on_time * interval:
        nxt = max(on_time, math.ceil((ready - t0) / interval - 1e-9))
    return nxt, on_time - k - 1, nxt - on_time
