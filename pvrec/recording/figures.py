"""The figures of a recording, each defined once: frames, duration, interval, mean gap, ticks
skipped (a sample ran long) and held (the --max-overhead budget), samples failed, mean sample
cost (wall and CPU) and bytes.

The recorder adds each frame's index entry as it writes it (its live status line, its summary
line and end.json come from that), and `pvrec info` adds the same entries read back from
frames.jsonl, so both compute every figure from the same numbers in the same order and print
them the same way: they agree to the last digit shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pvrec.recording.format import FrameInfo
from pvrec.units import format_bytes, format_duration

# How much slower than the mean sample the interval must be to be held: the jitter of a busy
# machine (a sample of 1.2 s needs an interval of 1.5 s).
HOLD_MARGIN = 1.2


def format_seconds(seconds: float) -> str:
    """1.0 -> '1.0 s', 0.25 -> '0.25 s', 1.953 -> '1.95 s', 0.01 -> '10 ms'."""
    if seconds < 0.1:
        return f"{seconds * 1000:.0f} ms"
    text = f"{seconds:.2f}"
    return (text[:-1] if text.endswith("0") else text) + " s"


@dataclass
class Figures:
    """What a recording's frames add up to (the recorder's stats, info's sampling figures)."""

    interval: float | None = None  # seconds between ticks, as asked (None: not known)
    frames: int = 0
    first_t: float | None = None  # t of the first frame (seconds since the session's start)
    last_t: float = 0.0  # t of the last frame
    last_sample: float = 0.0  # sample_s of the last frame
    first_sample: float = 0.0  # sample_s of the first (the key frame before the workload)
    sample_total: float = 0.0  # the sum of every frame's sample_s
    bytes: int = 0  # the frame files' bytes (what every index line's `bytes` adds up to)
    skipped_ticks: int | None = 0  # ticks that passed while a sample ran; None: not known
    budget_ticks: int | None = 0  # ticks given up to keep the --max-overhead budget
    failed_samples: int | None = 0
    first_cpu: float | None = None  # cpu_s of the first frame
    cpu_total: float = 0.0  # the sum of every frame's cpu_s (pvrec's CPU in its sample)
    cpu_frames: int = 0  # frames that have cpu_s

    def add(self, info: FrameInfo) -> None:
        """Count one frame, from its index entry (as written to frames.jsonl)."""
        ctx = info.context
        cost = ctx.get("sample_s")
        size = ctx.get("bytes")
        self.frames += 1
        if self.first_t is None:
            self.first_t = info.t
        self.last_t = info.t
        if isinstance(cost, int | float):
            if self.frames == 1:
                self.first_sample = cost
            self.last_sample = cost
            self.sample_total += cost
        if isinstance(size, int):
            self.bytes += size
        cpu = ctx.get("cpu_s")
        if isinstance(cpu, int | float) and not isinstance(cpu, bool) and cpu >= 0:
            if self.frames == 1:
                self.first_cpu = cpu
            self.cpu_total += cpu
            self.cpu_frames += 1

    @classmethod
    def of(cls, frames: list[FrameInfo], interval: float | None, end: dict | None
           ) -> Figures:
        """The figures of a recording read back: its index entries, interval and end.json."""
        fig = cls(interval=interval)
        for info in frames:
            fig.add(info)
        end = end or {}
        for key in ("skipped_ticks", "budget_ticks", "failed_samples"):  # the recorder's alone
            setattr(fig, key, end[key] if isinstance(end.get(key), int) else None)
        return fig

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last one's: the time the frames show."""
        return round(self.last_t - (self.first_t or 0.0), 6)

    @property
    def mean_gap(self) -> float | None:
        """Mean seconds between frames (the interval, or more where ticks were skipped)."""
        return round(self.duration / (self.frames - 1), 6) if self.frames > 1 else None

    @property
    def mean_sample(self) -> float | None:
        """Mean seconds a sample took (from its start to its frame file on disk)."""
        return round(self.sample_total / self.frames, 6) if self.frames else None

    @property
    def tick_sample(self) -> float | None:
        """Mean seconds of the samples after the first: what a tick costs (the first frame is a
        key frame taken before the workload starts, dearer and under other load)."""
        if self.frames < 2:
            return self.mean_sample
        return round((self.sample_total - self.first_sample) / (self.frames - 1), 6)

    @property
    def tick_cpu(self) -> float | None:
        """Mean CPU seconds of a tick's sample (frame 0 left out, as in tick_sample)."""
        if not self.cpu_frames:
            return None
        if self.first_cpu is not None and self.cpu_frames > 1:
            return round((self.cpu_total - self.first_cpu) / (self.cpu_frames - 1), 6)
        return round(self.cpu_total / self.cpu_frames, 6)

    def holdable_interval(self) -> str:
        """The shortest interval the ticks' samples keep, as --interval takes it: their mean
        plus a margin, rounded up to two digits ('1.5s', '0.84s', '8ms')."""
        need = (self.tick_sample or 0.0) * HOLD_MARGIN
        if need < 0.1:
            return f"{max(1, math.ceil(need * 1000 - 1e-9))}ms"
        step = 10.0 ** (math.floor(math.log10(need)) - 1)  # two significant digits
        return f"{math.ceil(need / step - 1e-9) * step:.{max(0, -round(math.log10(step)))}f}s"

    def too_slow(self) -> str | None:
        """The advice when the ticks' samples take longer than the interval, else None."""
        cost = self.tick_sample
        if cost is None or self.interval is None or cost < self.interval:
            return None
        return (f"samples take {format_seconds(cost)} here, longer than the interval "
                f"({format_seconds(self.interval)}): use --interval "
                f"{self.holdable_interval()} or more")

    def end_fields(self) -> dict:
        """end.json's totals."""
        return {"frames": self.frames, "bytes": self.bytes, "duration": self.duration,
                "mean_gap_s": self.mean_gap, "skipped_ticks": self.skipped_ticks,
                "budget_ticks": self.budget_ticks, "failed_samples": self.failed_samples,
                "mean_sample_s": self.mean_sample, "tick_cpu_s": self.tick_cpu}

    def shown(self) -> dict[str, str]:
        """Each figure as every command prints it."""
        gap = self.mean_gap
        return {"frames": f"{self.frames} frames", "duration": format_duration(self.duration),
                "interval": "interval unknown" if self.interval is None
                else f"interval {format_seconds(self.interval)}",
                "mean_gap": "" if gap is None else f"mean gap {format_seconds(gap)}",
                "skipped_ticks": "ticks skipped not recorded"
                if self.skipped_ticks is None
                else f"{self.skipped_ticks} tick{'' if self.skipped_ticks == 1 else 's'} skipped",
                "budget_ticks": f"{self.budget_ticks} held for the budget"
                if self.budget_ticks else "",
                "mean_sample": f"mean sample {format_seconds(self.mean_sample or 0.0)}"
                + ("" if self.tick_cpu is None else f" ({format_seconds(self.tick_cpu)} CPU)"),
                "bytes": f"{format_bytes(self.bytes)} of frames"}

    def timing_text(self) -> str:
        """'116 frames, interval 1.0 s, mean gap 1.95 s, 109 ticks skipped, 12 held for the
        budget'."""
        f = self.shown()
        return ", ".join(f[k] for k in ("frames", "interval", "mean_gap", "skipped_ticks",
                                        "budget_ticks") if f[k])
