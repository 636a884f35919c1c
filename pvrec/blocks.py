"""Huge-page blocks of one frame: what a huge-page allocation would find in each.

Every aligned block of `hpage_pages` pages (512 = 2 MiB on x86-64, also the pageblock) gets
its pages counted by kind and one state. docs/metrics.md defines them; in short, each page is
one kind, the first that applies:

    hole       not RAM (outside the header's RAM ranges) or nopage
    free       KPF_BUDDY
    huge       part of a THP or hugetlb page (thp or huge)
    movable    in use, on an LRU, anonymous, mmapped or swapbacked (compaction can move it)
    unmovable  in use and not movable: slab, page tables, reserved, kernel pages with flags
    no flags   a flag word of 0: unmovable too (the `mixed_blocks` definition), counted apart
               because a block of nothing else is most likely memory the kernel has not brought
               into use (deferred initialisation, hot-added memory), not 2 MiB of kernel data

and each block one state, the first that applies:

    hole         any page is a hole: no huge page can ever be made there
    free         every page free: a huge page now
    huge         every page huge: already a THP or hugetlb page
    compactable  no unmovable page: compaction could make a huge page
    no flags     every page has no flags
    unmovable    every page unmovable (or with no flags)
    blocked      free or movable pages, and at least one unmovable page (the mixed block)

All on the runs (never a per-page array): a 24 GiB frame of ~20k runs classifies its 12,288
blocks in a few milliseconds. The movable / unmovable masks are the ones `mixed_blocks`
(pvrec/metrics.py) uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvrec import flags as kpf
from pvrec.runs import Runs

U = np.uint64
MOVABLE = U(kpf.bit(kpf.LRU) | kpf.bit(kpf.ANON) | kpf.bit(kpf.MMAP) | kpf.bit(kpf.SWAPBACKED))
UNMOVABLE = U(kpf.bit(kpf.SLAB) | kpf.bit(kpf.PGTABLE) | kpf.bit(kpf.RESERVED))
USER_BITS = MOVABLE | U(kpf.bit(kpf.HUGE) | kpf.bit(kpf.THP) | kpf.bit(kpf.COMPOUND_TAIL)
                        | kpf.bit(kpf.COMPOUND_HEAD) | kpf.bit(kpf.BUDDY) | kpf.bit(kpf.OFFLINE)
                        | kpf.bit(kpf.HWPOISON) | kpf.bit(kpf.NOPAGE))
FREE_BIT = U(kpf.bit(kpf.BUDDY))
HUGE_BITS = U(kpf.bit(kpf.HUGE) | kpf.bit(kpf.THP))
NOPAGE_BIT = U(kpf.bit(kpf.NOPAGE))

# Page kinds (the columns of BlockCounts.pages) and block states (their codes: hole is 0, as
# the hole class of every render scheme).
KINDS = ("hole", "free", "huge", "movable", "unmovable", "no flags")
HOLE_K, FREE_K, HUGE_K, MOVABLE_K, UNMOVABLE_K, EMPTY_K = range(len(KINDS))
STUCK_KINDS = (UNMOVABLE_K, EMPTY_K)  # what compaction cannot move
STATES = ("hole", "free", "compactable", "blocked", "unmovable", "huge", "no flags")
HOLE, FREE, COMPACTABLE, BLOCKED, UNMOVABLE_STATE, HUGE, EMPTY = range(len(STATES))


def movable_values(values: np.ndarray) -> np.ndarray:
    """Which flag words are movable pages in use (the `mixed_blocks` definition)."""
    return ((values & MOVABLE) != 0) & ((values & FREE_BIT) == 0)


def unmovable_values(values: np.ndarray) -> np.ndarray:
    """Which flag words are unmovable pages in use (the `mixed_blocks` definition: slab,
    pgtable, reserved, or in use with none of the user flags)."""
    return (((values & UNMOVABLE) != 0) | ((values & USER_BITS) == 0)) & \
        ((values & FREE_BIT) == 0)


def page_kinds(values: np.ndarray) -> np.ndarray:
    """The kind (KINDS index, uint8) of each flag word; layout holes are the caller's."""
    v = np.asarray(values, dtype=np.uint64)
    kind = np.full(v.shape, UNMOVABLE_K, dtype=np.uint8)
    kind[v == 0] = EMPTY_K
    kind[movable_values(v) & ~unmovable_values(v)] = MOVABLE_K
    kind[(v & HUGE_BITS) != 0] = HUGE_K
    kind[(v & FREE_BIT) != 0] = FREE_K
    kind[(v & NOPAGE_BIT) != 0] = HOLE_K
    return kind


@dataclass
class BlockCounts:
    """Pages of each kind in each huge-page block of a frame, and the blocks' states."""

    hpage_pages: int
    pages: np.ndarray  # int64 [blocks, len(KINDS)]

    def __len__(self) -> int:
        return int(self.pages.shape[0])

    def kind(self, k: int) -> np.ndarray:
        return self.pages[:, k]

    def unmovable(self) -> np.ndarray:
        """Pages compaction cannot move in each block (unmovable, and those with no flags)."""
        return self.pages[:, UNMOVABLE_K] + self.pages[:, EMPTY_K]

    def states(self) -> np.ndarray:
        """The state (STATES index, uint8) of every block."""
        hp = self.hpage_pages
        p = self.pages
        state = np.full(len(self), BLOCKED, dtype=np.uint8)
        state[p[:, FREE_K] + p[:, MOVABLE_K] + p[:, HUGE_K] == 0] = UNMOVABLE_STATE
        state[self.unmovable() == 0] = COMPACTABLE
        state[p[:, EMPTY_K] == hp] = EMPTY
        state[p[:, HUGE_K] == hp] = HUGE
        state[p[:, FREE_K] == hp] = FREE
        state[p[:, HOLE_K] > 0] = HOLE
        return state


def kind_runs(runs: Runs, ram: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(start, kind) of the frame's runs of page kinds, cut at the RAM ranges' edges (what is
    outside them is a hole whatever its flags)."""
    n = runs.pfn_count
    starts = runs.starts()
    kinds = page_kinds(runs.values)
    edges = np.unique(np.clip(np.array(ram, dtype=np.int64).reshape(-1), 0, n))
    cuts = edges[(edges > 0) & (edges < n)]
    if cuts.size:
        at = np.searchsorted(starts, cuts, "right") - 1
        new = starts[at] != cuts
        starts = np.insert(starts, at[new] + 1, cuts[new])
        kinds = np.insert(kinds, at[new] + 1, kinds[at[new]])
    lo = np.array([r[0] for r in ram], dtype=np.int64)
    hi = np.array([r[1] for r in ram], dtype=np.int64)
    i = np.searchsorted(lo, starts, "right") - 1
    in_ram = (i >= 0) & (starts < hi[np.maximum(i, 0)])
    kinds[~in_ram] = HOLE_K
    first = np.empty(kinds.size, dtype=bool)  # neighbours of one kind joined: half the runs
    first[:1] = True
    np.not_equal(kinds[1:], kinds[:-1], out=first[1:])
    return starts[first], kinds[first]


def block_counts(runs: Runs, hpage_pages: int, ram: list[list[int]]) -> BlockCounts:
    """The pages of each kind in each aligned huge-page block (a last partial block is padded
    with holes)."""
    n = runs.pfn_count
    hp = hpage_pages
    nblocks = -(-n // hp)
    starts, kinds = kind_runs(runs, ram)
    lengths = np.diff(np.append(starts, n))
    bounds = np.minimum(np.arange(nblocks + 1, dtype=np.int64) * hp, n)
    at = np.searchsorted(starts, bounds, "right") - 1  # the run holding each block's start
    at = np.clip(at, 0, starts.size - 1)
    pages = np.empty((nblocks, len(KINDS)), dtype=np.int64)
    for k in range(len(KINDS)):
        mine = kinds == k
        before = np.zeros(starts.size + 1, dtype=np.int64)  # pages of kind k before run i
        np.cumsum(np.where(mine, lengths, 0), out=before[1:])
        upto = before[at] + np.where(mine[at], bounds - starts[at], 0)
        upto[-1] = before[-1]
        pages[:, k] = np.diff(upto)
    pages[-1, HOLE_K] += nblocks * hp - n
    return BlockCounts(hp, pages)


def frame_blocks(runs: Runs, header) -> BlockCounts:
    """block_counts of a frame of a recording with this header."""
    return block_counts(runs, header.hpage_pages, header.ram_or_all)
