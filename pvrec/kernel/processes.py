"""The pages of processes, from /proc: mapped_pfns() reads /proc/PID/pagemap over /proc/PID/maps.

Which processes (the workload's tree) is kernel.proctree's business.
"""

from __future__ import annotations

import os

import numpy as np

PM_PRESENT = np.uint64(1 << 63)
PM_PFN_MASK = np.uint64((1 << 55) - 1)
PAGEMAP_BATCH = 1 << 16  # entries per pread: 512 KiB


def mapped_pfns(pids: list[int], pfn_count: int) -> np.ndarray:
    """Sorted unique PFNs that the processes map (present pages of every VMA, via pagemap).

    A process that exits while it is read is simply left out; PFNs need root (others see 0).
    """
    page = os.sysconf("SC_PAGE_SIZE")
    buf = np.empty(PAGEMAP_BATCH, dtype=np.uint64)
    parts = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps", "rb") as f:
                maps = f.read().splitlines()
            fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            for line in maps:
                span = line.split(b" ", 1)[0]
                lo, _, hi = span.partition(b"-")
                first, last = int(lo, 16) // page, int(hi, 16) // page
                for start in range(first, last, PAGEMAP_BATCH):
                    want = buf[: min(PAGEMAP_BATCH, last - start)]
                    got = os.preadv(fd, [want], start * 8) // 8
                    entries = want[:got]
                    present = entries[(entries & PM_PRESENT) != 0] & PM_PFN_MASK
                    if present.size:
                        parts.append(present.copy())
                    if got < want.size:
                        break
        except (OSError, ValueError):
            pass  # exited mid-read, or a VMA the kernel will not walk (vsyscall)
        finally:
            os.close(fd)
    if not parts:
        return np.zeros(0, dtype=np.int64)
    pfns = np.unique(np.concatenate(parts)).astype(np.int64)
    return pfns[(pfns > 0) & (pfns < pfn_count)]
