"""PFN ranges a sample need not read: those no memory block covers (the PCI hole below 4 GiB).

The kernel has no struct page there, so /proc/kpageflags answers the same word for every PFN of
such a range at every read. pvrec reads them once (a full read, which also checks that they
are uniform) and then fills them with that word instead of reading them, until the set of
memory blocks changes (memory hot-add) or the next full read: no frame loses a page. Ranges
inside a memory block are always read, even where /proc/iomem says "not RAM": the kernel
may have struct pages there (reserved pages, which do have flags).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pvrec.kernel.layout import nodes
from pvrec.layout import merge_ranges

SYS = Path("/sys")
MIN_HOLE = 1 << 12  # pages: smaller gaps are not worth a separate read


def unbacked_ranges(pfn_count: int, sys_root: Path = SYS) -> list[tuple[int, int]]:
    """[start, end) PFN ranges below pfn_count that no memory block of any node covers
    ([] where /sys does not list memory blocks: then every PFN is read)."""
    blocks = merge_ranges([r for n in nodes(sys_root) for r in n["ranges"]])
    if not blocks:
        return []
    gaps, pos = [], 0
    for start, end in blocks:
        if start > pos:
            gaps.append((pos, min(start, pfn_count)))
        pos = max(pos, end)
    if pos < pfn_count:
        gaps.append((pos, pfn_count))
    return [(s, e) for s, e in gaps if e - s >= MIN_HOLE]


def block_names(sys_root: Path = SYS) -> frozenset[str]:
    """The memory blocks the kernel lists now (a new one: memory was added)."""
    try:
        return frozenset(n for n in os.listdir(sys_root / "devices/system/memory")
                         if n.startswith("memory"))
    except OSError:
        return frozenset()


class Holes:
    """The unbacked ranges known to read as one word each: skipped by the reads until
    `stale()` says to read everything again."""

    def __init__(self, pfn_count: int, sys_root: Path = SYS):
        self.pfn_count = pfn_count
        self.sys_root = sys_root
        self.known: list[tuple[int, int, int]] = []  # (start, end, word) skipped
        self._blocks: frozenset[str] = frozenset()
        self._candidates: list[tuple[int, int]] = []
        self._seen: dict[tuple[int, int], set[int]] = {}

    @property
    def skipped_pages(self) -> int:
        return sum(e - s for s, e, _ in self.known)

    def stale(self) -> bool:
        """True when the memory blocks changed since the holes were learnt (or never were)."""
        return not self.known or block_names(self.sys_root) != self._blocks

    def forget(self) -> None:
        """Read everything in the next sample, and learn the holes from it."""
        self.known = []
        self._blocks = block_names(self.sys_root)
        self._candidates = unbacked_ranges(self.pfn_count, self.sys_root)
        self._seen = {c: set() for c in self._candidates}

    def watch(self, chunk: np.ndarray, first_pfn: int) -> None:
        """Note the words a full read found in the candidate ranges (chunk: PFNs from first_pfn)."""
        end = first_pfn + chunk.size
        for (s, e), seen in self._seen.items():
            lo, hi = max(s, first_pfn), min(e, end)
            if lo < hi and len(seen) < 2:
                seen.update(np.unique(chunk[lo - first_pfn:hi - first_pfn]).tolist()[:2])

    def learn(self) -> None:
        """After a complete full read: skip the candidate ranges that read as one word."""
        self.known = [(s, e, next(iter(seen))) for (s, e), seen in self._seen.items()
                      if len(seen) == 1]
        self._seen = {}
