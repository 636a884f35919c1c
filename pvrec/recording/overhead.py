"""What recording cost the machine, defined once: pvrec's CPU share, the workload slowdown it
implies, its peak memory and the bytes it wrote (end.json's `overhead`, read back by info).

The recorder fills Overhead from pvrec.kernel.cpu's counters and writes to_dict() into end.json;
`pvrec info` rebuilds it with from_dict() and prints the same text() as the summary line did.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from pvrec.recording.figures import format_seconds
from pvrec.units import format_bytes

GIB = 1 << 30


@dataclass
class Overhead:
    """pvrec's own cost over a recording (seconds are CPU seconds unless named wall)."""

    cpus: int = 1  # the CPUs pvrec and the workload may run on
    wall_s: float = 0.0  # the session: frame 0's start to the end
    user_s: float = 0.0  # pvrec's user time, every thread
    system_s: float = 0.0  # pvrec's system time, every thread: the kernel's kpageflags reads
    machine_busy_s: float | None = None  # every CPU's busy time over the same wall
    peak_rss: int = 0  # bytes
    written: int | None = None  # bytes of the recording: frames, index, header
    max_overhead: float | None = None  # the --max-overhead budget in percent, None: none
    workload_wall_s: float | None = None  # from the workload's start to its exit
    workload_cpu_s: float | None = None  # the workload tree's own CPU (reaped children)
    workload_pvrec_s: float | None = None  # pvrec's CPU while the workload ran
    tick_cpu_s: float | None = None  # mean CPU of a tick's sample (frame 0 left out)
    ram_bytes: int = 0

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.system_s

    @property
    def share(self) -> float | None:
        """pvrec's CPU over the machine's capacity in the session (0.048: 4.8% of all CPUs)."""
        if self.wall_s <= 0:
            return None
        return self.cpu_s / (self.wall_s * self.cpus)

    @property
    def slowdown(self) -> float | None:
        """The workload's wall time over what it would have been without pvrec, estimated.

        pvrec's CPU while the workload ran (P) was taken from the workload in the proportion
        the workload kept the CPUs pvrec left busy (u = its CPU / (cpus * wall - P), at most
        1): a CPU-bound workload on every CPU loses P / cpus of wall time, an idle one none.
        """
        wall, cpu, mine = self.workload_wall_s, self.workload_cpu_s, self.workload_pvrec_s
        if not wall or cpu is None or mine is None:
            return None
        left = self.cpus * wall - mine
        used = min(1.0, cpu / left) if left > 0 else 1.0
        stolen = mine * used / self.cpus
        return wall / (wall - stolen) if stolen < wall else None

    @property
    def sample_per_gib(self) -> float | None:
        """CPU seconds a tick's sample costs per GiB of RAM on this machine."""
        if self.tick_cpu_s is None or self.ram_bytes <= 0:
            return None
        return self.tick_cpu_s / (self.ram_bytes / GIB)

    def to_dict(self) -> dict:
        """end.json's `overhead`: the counters, and the figures made of them."""
        out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        for name in ("share", "workload_share", "slowdown", "sample_per_gib"):
            value = getattr(self, name)
            out[name] = None if value is None else round(value, 6)
        return out

    @classmethod
    def from_dict(cls, d: object) -> Overhead | None:
        """The overhead of an end.json (untrusted: a field of the wrong type is left out)."""
        if not isinstance(d, dict):
            return None
        kw = {}
        for f in fields(cls):
            v = d.get(f.name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                continue
            if f.name in ("cpus", "peak_rss", "written", "ram_bytes"):
                if v < 0 or v != int(v):
                    continue
                v = int(v)
            elif v < 0:
                continue
            kw[f.name] = v
        if kw.get("cpus", 1) < 1:
            kw.pop("cpus")
        return cls(**kw)

    @property
    def workload_share(self) -> float | None:
        """pvrec's share of the CPUs while the workload ran (what it could take from it)."""
        if not self.workload_wall_s or self.workload_pvrec_s is None:
            return None
        return self.workload_pvrec_s / (self.workload_wall_s * self.cpus)

    def text(self) -> str:
        """'pvrec used 4.8% of 2 CPUs while the workload ran (5.1% with the frames before and
        after it; 7.4 s CPU, 6.1 s in the kernel), peak RSS 180 MiB, wrote 12 MiB; workload
        slowdown ~1.04x (estimated)'."""
        share, during = self.share, self.workload_share
        cpus = f"{self.cpus} CPU{'s' if self.cpus != 1 else ''}"
        cost = (f"{format_seconds(self.cpu_s)} CPU, {format_seconds(self.system_s)} in the "
                f"kernel")
        if per_gib := format_per_gib(self.sample_per_gib):
            cost += f"; a sample {per_gib}"
        if during is not None:
            line = (f"pvrec used {during * 100:.1f}% of {cpus} while the workload ran ("
                    + (f"{share * 100:.1f}% with the frames before and after it; "
                       if share is not None else "") + f"{cost})")
        else:
            line = f"pvrec used {'?' if share is None else f'{share * 100:.1f}%'} of {cpus} ({cost})"
        line += f", peak RSS {format_bytes(self.peak_rss)}"
        if self.written is not None:
            line += f", wrote {format_bytes(self.written)}"
        if self.max_overhead is not None:
            line += f"; --max-overhead {self.max_overhead:g}%"
        slow = self.slowdown
        if slow is not None:
            line += f"; workload slowdown ~{slow:.2f}x (estimated)"
        return line


def format_per_gib(seconds: float | None) -> str:
    """'24 ms/GiB' (CPU per GiB of RAM of one sample), '' when unknown."""
    return "" if seconds is None else f"{seconds * 1000:.0f} ms/GiB"
