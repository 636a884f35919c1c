"""`pvrec blockers`: the huge-page blocks that a few unmovable pages keep from being huge pages.

A blocked block (pvrec/blocks.py) holds free or movable pages and at least one unmovable page.
Those with at most `max_unmovable` unmovable pages would be free, or compactable, but for
them: they are listed, fewest unmovable pages first (then most free pages), each with its
blocking pages, their flags as page-types names them, and the frame since which each has been
unmovable without a break (found in one forward pass over the frames up to N that looks only
at the listed pages: memory stays that of one frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pvrec import flags as kpf
from pvrec.blocks import BLOCKED, FREE_K, HUGE_K, MOVABLE_K, STUCK_KINDS, frame_blocks, page_kinds
from pvrec.errors import PvrecError
from pvrec.metrics import zones_of
from pvrec.runs import Runs
from pvrec.sources import Source

MAX_UNMOVABLE = 8  # a block blocked by more than this is not "a few pages" from a huge page
TOP = 20  # blocks listed by default


@dataclass
class Blocker:
    """One unmovable page of a listed block."""

    pfn: int
    flags: int  # the raw flag word
    since: int  # the first frame of its unbroken run of frames as an unmovable page
    since_t: float

    @property
    def names(self) -> str:
        """Its flags as page-types' default view names them ('slab,...'; '' for none)."""
        return kpf.long_symbolic(int(kpf.well_known(np.array([self.flags], np.uint64))[0]))


@dataclass
class BlockedBlock:
    """One listed block: where it is and what it holds."""

    pfn: int
    zone: str
    free: int
    movable: int
    unmovable: int
    huge: int
    blockers: list[Blocker] = field(default_factory=list)


@dataclass
class BlockersReport:
    """The blocks of frame `frame` that a few unmovable pages block (the first `top`)."""

    name: str
    frame: int
    t: float
    page_size: int
    hpage_pages: int
    max_unmovable: int
    blocked: int  # every blocked block of the frame
    candidates: int  # those with at most max_unmovable unmovable pages
    blocking_pages: int  # their unmovable pages
    blocks: list[BlockedBlock]

    def to_json(self) -> dict:
        """The report as plain data (`--json`)."""
        ps = self.page_size
        return {
            "recording": self.name, "frame": self.frame, "t": self.t,
            "page_size": ps, "hpage_pages": self.hpage_pages,
            "max_unmovable": self.max_unmovable, "blocked_blocks": self.blocked,
            "candidates": self.candidates, "blocking_pages": self.blocking_pages,
            "blocks": [{
                "pfn": b.pfn, "address": f"0x{b.pfn * ps:x}", "zone": b.zone, "free": b.free,
                "movable": b.movable, "unmovable": b.unmovable, "huge": b.huge,
                "blockers": [{"pfn": x.pfn, "flags": f"0x{x.flags:016x}", "names": x.names,
                              "since_frame": x.since, "since_t": x.since_t}
                             for x in b.blockers]} for b in self.blocks],
        }


def frame_position(source: Source, n: str | None) -> int:
    """RUN@N -> the frame's position (N may count from the end; RUN alone: the last frame)."""
    count = len(source)
    if count == 0:
        raise PvrecError(f"{source.name} has no frames")
    if n is None:
        return count - 1
    if not n.lstrip("+-").isdigit():
        raise PvrecError(f"malformed RUN@N {source.name}@{n}: N must be a frame number, "
                         f"e.g. {source.name}@-1")
    i = int(n)
    if not -count <= i < count:
        raise PvrecError(f"frame {n} is out of range: {source.name} has {count} frames "
                         f"(0..{count - 1})")
    return i % count


def find_blockers(source: Source, pos: int, max_unmovable: int = MAX_UNMOVABLE,
                  top: int = TOP) -> BlockersReport:
    """The report of frame `pos` of a source (see the module docstring)."""
    if max_unmovable < 1:
        raise PvrecError(f"--max-unmovable must be at least 1 page, not {max_unmovable}")
    if top < 0:
        raise PvrecError(f"--top must be 0 (the summary alone) or more, not {top}")
    header = source.header
    hp = header.hpage_pages
    runs = source.read_runs(pos)
    counts = frame_blocks(runs, header)
    unmov = counts.unmovable()
    blocked = counts.states() == BLOCKED
    cand = np.flatnonzero(blocked & (unmov <= max_unmovable))
    order = np.lexsort((cand, -counts.kind(FREE_K)[cand], unmov[cand]))
    listed = cand[order[:top]]
    zones = zones_of(header)
    blocks = []
    for b in listed.tolist():
        p = counts.pages[b]
        blocks.append(BlockedBlock(b * hp, _zone_of(zones, b * hp), int(p[FREE_K]),
                                   int(p[MOVABLE_K]), int(unmov[b]), int(p[HUGE_K]),
                                   _unmovable_pages(runs, b * hp, (b + 1) * hp)))
    _date_blockers(source, pos, [x for blk in blocks for x in blk.blockers])
    return BlockersReport(source.name, pos, source.times[pos], header.page_size, hp,
                          max_unmovable, int(blocked.sum()), int(cand.size),
                          int(unmov[cand].sum()), blocks)


def _zone_of(zones: list[tuple[str, list[list[int]]]], pfn: int) -> str:
    for name, ranges in zones:
        if any(lo <= pfn < hi for lo, hi in ranges):
            return name
    return zones[0][0] if len(zones) == 1 else "?"


def _unmovable_pages(runs: Runs, lo: int, hi: int) -> list[Blocker]:
    """The unmovable pages of [lo, hi), in PFN order (their dates still to be found)."""
    starts = runs.starts()
    i, j = np.searchsorted(starts, lo, "right") - 1, np.searchsorted(starts, hi, "left")
    out = []
    for k in range(i, j):  # the few runs of one block
        value = runs.values[k]
        if page_kinds(value.reshape(1))[0] not in STUCK_KINDS:
            continue
        s, e = max(int(starts[k]), lo), min(int(starts[k] + runs.lengths[k]), hi)
        out += [Blocker(pfn, int(value), 0, 0.0) for pfn in range(s, e)]
    return out


def _date_blockers(source: Source, pos: int, blockers: list[Blocker]) -> None:
    """Set each blocker's `since`: one pass over frames 0..pos, looking at those pages only."""
    if not blockers:
        return
    pfns = np.array([x.pfn for x in blockers], dtype=np.int64)
    last_movable = np.full(pfns.size, -1, dtype=np.int64)  # the last frame it was not unmovable
    for p, values in source.values_at(pfns, pos + 1):
        last_movable[~np.isin(page_kinds(values), STUCK_KINDS)] = p
    for x, first in zip(blockers, (last_movable + 1).tolist(), strict=True):
        x.since, x.since_t = first, source.times[first]
