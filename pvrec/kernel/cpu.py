"""pvrec's own cost and the machine's, read from the kernel: CPU and peak memory.

The recorder's CPU is getrusage(RUSAGE_SELF): user + system time of every thread of the pvrec
process, so the kernel's work in reading /proc/kpageflags (system time) is in it, and the
workload's time is not (it is a child: RUSAGE_CHILDREN, once reaped). The machine's busy time
comes from /proc/stat. Every reader takes its /proc root as an argument, for tests.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def process_cpu() -> tuple[float, float]:
    """(user, system) CPU seconds of every thread of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def children_cpu() -> float:
    """CPU seconds of the reaped children and their reaped descendants (the workload)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; a cgroup quota is not seen)."""
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def machine_busy(proc: Path = PROC) -> float | None:
    """CPU seconds the whole machine spent not idle since boot (/proc/stat's cpu line minus
    idle and iowait); None when unreadable."""
    try:
        with open(proc / "stat") as f:
            words = f.readline().split()
    except OSError:
        return None
    if len(words) < 6 or words[0] != "cpu":
        return None
    try:
        ticks = [int(w) for w in words[1:9]]
    except ValueError:
        return None
    # user nice system idle iowait irq softirq steal (guest is already counted in user)
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _status_kib(key: str, proc: Path) -> int | None:
    try:
        with open(proc / "self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss(proc: Path = PROC) -> int:
    """This process's peak resident set in bytes (VmHWM; ru_maxrss where /proc is not there)."""
    kib = _status_kib("VmHWM", proc)
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024


@dataclass(frozen=True)
class CpuMark:
    """The counters at one moment: wall (monotonic), pvrec's CPU, the machine's, the children's."""

    wall: float
    user: float
    system: float
    machine: float | None
    children: float

    @property
    def cpu(self) -> float:
        return self.user + self.system


def mark(now: float, proc: Path = PROC) -> CpuMark:
    """Read every counter now (now: the caller's monotonic clock)."""
    user, system = process_cpu()
    return CpuMark(now, user, system, machine_busy(proc), children_cpu())
