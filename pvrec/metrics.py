"""Fragmentation metrics of one frame, per zone, computed from the page flags alone.

All of it works on the run-length form (never a per-page array), so a frame of a 1 TiB machine
costs what its runs cost. docs/metrics.md defines each figure; in short: DEFINITIONS.
"""

from __future__ import annotations

import numpy as np

from pvrec import flags as kpf
from pvrec.blocks import COMPACTABLE, frame_blocks, movable_values, unmovable_values
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.runs import Runs, blocks_touched

# The largest buddy order of x86-64 kernels up to 6.x (4 MiB blocks), for recordings without
# /proc/buddyinfo (dumps); a recording's own buddyinfo says how many orders its kernel has.
DEFAULT_MAX_ORDER = 10
U = np.uint64
# Each figure in short, per zone (`pvrec metrics --help` prints it).
DEFINITIONS = """\
    free_pages        pages with KPF_BUDDY
    free_hp_blocks    aligned huge-page-sized blocks (hpage_pages) that are entirely free: how
                      many THP / hugetlb allocations could succeed now without compaction
    unusable_index    Gorman's unusable free space index at the huge page order:
                      1 - (free pages in free blocks of at least that order) / free pages
    largest_free_run  the longest run of consecutive free pages
    mixed_blocks      share of huge-page blocks with in-use pages that hold both movable
                      (on an LRU, anonymous or file-mapped) and unmovable pages (slab, page
                      tables, reserved, or kernel pages with no user flag): the "marbled meat"
    compactable_hp_blocks  huge-page blocks of only free and movable pages, not all free:
                      huge pages compaction could make (pvrec/blocks.py's "compactable")
    buddy_order_N     free blocks of order N, decomposing free runs as the buddy allocator
                      would (aligned power-of-two blocks up to the recording's largest order:
                      that of its /proc/buddyinfo, else DEFAULT_MAX_ORDER); compare /proc/buddyinfo
  from the kernel's own bookkeeping stored with each frame (recordings of root, --events):
    unmovable_blocks  page blocks the kernel counts as that migratetype (/proc/pagetypeinfo);
    movable_blocks    also reclaimable_blocks, highatomic_blocks, cma_blocks, isolate_blocks
    extfrag_events    page allocator fallbacks to another migratetype's free list since the
                      previous frame (kmem:mm_page_alloc_extfrag; the whole machine, every zone
                      shows the same count); extfrag_fragmenting: those that placed pages in a
                      block of another type (claimed or polluted it)
    compaction_runs   compaction passes begun since the previous frame (whole machine)
    compaction_scanned  pages the migrate and free scanners scanned since the previous frame
    kernel_unusable_index  the kernel's unusable index at the huge page order (debugfs
                      extfrag/unusable_index, where debugfs is mounted), beside unusable_index
"""
METRICS = ("free_pages", "free_hp_blocks", "unusable_index", "largest_free_run", "mixed_blocks",
           "compactable_hp_blocks")
# /proc/pagetypeinfo's migratetype names -> the metric of its block count
MIGRATETYPE_METRICS = {"Unmovable": "unmovable_blocks", "Movable": "movable_blocks",
                       "Reclaimable": "reclaimable_blocks", "HighAtomic": "highatomic_blocks",
                       "CMA": "cma_blocks", "Isolate": "isolate_blocks"}
EVENT_METRICS = {"extfrag_events": "extfrag", "extfrag_fragmenting": "extfrag_fragmenting",
                 "compaction_runs": "compaction_runs", "compaction_scanned": "compaction_scanned"}
KERNEL_METRICS = (*MIGRATETYPE_METRICS.values(), *EVENT_METRICS, "kernel_unusable_index")


def zones_of(header: Header, window: tuple[int, int] | None = None
             ) -> list[tuple[str, list[list[int]]]]:
    """(name, RAM ranges) per zone; one zone 'all' when the header knows none. window: only
    the RAM in these PFNs [start, end) (--region), and only the zones that have some."""
    ram = header.ram_or_all
    if window is not None:
        ram = [[max(s, window[0]), min(e, window[1])] for s, e in ram]
        ram = [r for r in ram if r[0] < r[1]]
    if not header.zones:
        return [("all", ram)]
    out = []
    multi_node = len({z.node for z in header.zones}) > 1
    for z in header.zones:
        span = [[max(s, z.start_pfn), min(e, z.end_pfn)] for s, e in ram]
        span = [r for r in span if r[0] < r[1]]
        if span or window is None:
            out.append((f"{z.name}@{z.node}" if multi_node else z.name, span))
    return out


def max_order_of(contexts) -> int:
    """The largest buddy order of a recording's kernel: from the first frame context with
    /proc/buddyinfo ({"0/Normal": [count per order]}), else DEFAULT_MAX_ORDER."""
    for context in contexts:
        info = context.get("buddyinfo")
        if isinstance(info, dict):
            lengths = [len(c) for c in info.values() if c]  # the reader checked the shape
            if lengths:
                return max(lengths) - 1
    return DEFAULT_MAX_ORDER


def free_intervals(runs: Runs) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of every maximal stretch of free (buddy) pages."""
    free = (runs.values & U(kpf.bit(kpf.BUDDY))) != 0
    starts = runs.starts()
    ends = starts + runs.lengths
    edge = np.diff(np.r_[0, free.astype(np.int8), 0])
    first = np.flatnonzero(edge == 1)
    last = np.flatnonzero(edge == -1) - 1
    return starts[first], ends[last]


def _clip(s: np.ndarray, e: np.ndarray, ranges: list[list[int]]):
    """The intervals cut to a list of ranges (each interval may fall in several)."""
    cs, ce = [], []
    for lo, hi in ranges:
        a, b = np.maximum(s, lo), np.minimum(e, hi)
        keep = a < b
        cs.append(a[keep])
        ce.append(b[keep])
    return np.concatenate(cs or [np.zeros(0, np.int64)]), np.concatenate(ce or [np.zeros(0, np.int64)])


def buddy_blocks(s: np.ndarray, e: np.ndarray, max_order: int = DEFAULT_MAX_ORDER
                 ) -> np.ndarray:
    """Free blocks per order (0..max_order) of free intervals, split as the buddy allocator does."""
    counts = np.zeros(max_order + 1, dtype=np.int64)
    s, e = s.copy(), e.copy()
    for order in range(max_order + 1):  # climb: align each start with the smallest blocks
        size = 1 << order
        take = ((s & size) != 0) & (s + size <= e) if order < max_order else s + size <= e
        if order == max_order:
            nblocks = np.where(take, (e - s) >> order, 0)
            counts[order] += int(nblocks.sum())
            s = s + (nblocks << order)
            break
        counts[order] += int(take.sum())
        s = np.where(take, s + size, s)
    for order in range(max_order - 1, -1, -1):  # descend: what is left at the end
        size = 1 << order
        take = s + size <= e
        counts[order] += int(take.sum())
        s = np.where(take, s + size, s)
    return counts


def _block_has(runs: Runs, mask: np.ndarray, block: int, nblocks: int) -> np.ndarray:
    """Per block of `block` pages: does any run selected by mask touch it."""
    starts = runs.starts()[mask]
    return blocks_touched(starts, starts + runs.lengths[mask], block, nblocks)


def frame_metrics(runs: Runs, header: Header, max_order: int = DEFAULT_MAX_ORDER,
                  window: tuple[int, int] | None = None) -> dict[str, dict[str, float]]:
    """{zone: {metric: value}} for one frame, plus buddy_order_N counts (orders 0..max_order);
    window: of the zones' pages in these PFNs only (--region)."""
    hp = header.hpage_pages
    n = runs.pfn_count
    nblocks = -(-n // hp)
    s, e = free_intervals(runs)
    v = runs.values
    free = (v & U(kpf.bit(kpf.BUDDY))) != 0
    has_mov = _block_has(runs, movable_values(v), hp, nblocks)
    has_unmov = _block_has(runs, unmovable_values(v), hp, nblocks)
    mixed_block = has_mov & has_unmov
    used_block = _block_has(runs, ~free, hp, nblocks)
    compactable = frame_blocks(runs, header).states() == COMPACTABLE
    out: dict[str, dict[str, float]] = {}
    for name, ranges in zones_of(header, window):
        zs, ze = _clip(s, e, ranges)
        free_pages = int((ze - zs).sum())
        full = np.maximum(ze // hp - (zs + hp - 1) // hp, 0)
        hp_blocks = int(full.sum())
        blocks = np.zeros(nblocks, dtype=bool)
        for lo, hi in ranges:  # whole blocks of this zone
            blocks[-(-lo // hp): hi // hp] = True
        used = blocks & used_block
        m = {
            "free_pages": free_pages,
            "free_hp_blocks": hp_blocks,
            "unusable_index": round(1 - hp_blocks * hp / free_pages, 6) if free_pages else 0.0,
            "largest_free_run": int((ze - zs).max(initial=0)),
            "mixed_blocks": round(float((mixed_block & used).sum() / used.sum()), 6)
            if used.any() else 0.0,
            "compactable_hp_blocks": int((compactable & blocks).sum()),
        }
        for order, count in enumerate(buddy_blocks(zs, ze, max_order)):
            m[f"buddy_order_{order}"] = int(count)
        out[name] = m
    return out


def kernel_figures(context: dict, zone: str, hpage_pages: int = 512) -> dict[str, int]:
    """The same moment's free pages and free huge-page blocks by the kernel's own /proc/buddyinfo
    (read just after the flags, so a busy machine may have moved a little in between)."""
    counts = kernel_buddy(context, zone)
    if counts is None:
        return {}
    hp_order = hpage_pages.bit_length() - 1
    return {
        "kernel_free_pages": sum(c << k for k, c in enumerate(counts)),
        "kernel_free_hp_blocks": sum(c << (k - hp_order) for k, c in enumerate(counts)
                                     if k >= hp_order),
    }


def kernel_buddy(context: dict, zone: str) -> list[int] | None:
    """The /proc/buddyinfo counts of a zone stored with a frame ('Normal' or 'Normal@1')."""
    info = context.get("buddyinfo") or {}
    name, _, node = zone.partition("@")
    counts = info.get(f"{node or 0}/{name}")
    return counts if isinstance(counts, list) else None


def context_metrics(context: dict, zone: str, hpage_pages: int = 512) -> dict[str, float]:
    """The figures of the kernel's own bookkeeping stored with a frame (KERNEL_METRICS): those
    the frame has (a recording without --events has no event counts, a dump no pagetypeinfo)."""
    out: dict[str, float] = {}
    name, _, node = zone.partition("@")
    key = f"{node or 0}/{name}"
    blocks = (context.get("pagetypeinfo") or {}).get("blocks", {}).get(key)
    if isinstance(blocks, dict):
        for mt, metric in MIGRATETYPE_METRICS.items():
            if mt in blocks:
                out[metric] = int(blocks[mt])
    events = context.get("events")
    if isinstance(events, dict):
        for metric, counter in EVENT_METRICS.items():
            out[metric] = int(events.get(counter, 0))
    index = (context.get("unusable_index") or {}).get(key)
    hp_order = hpage_pages.bit_length() - 1
    if isinstance(index, list) and hp_order < len(index):
        out["kernel_unusable_index"] = float(index[hp_order])
    return out


def check_recorded(names: list[str], contexts, what: str = "this recording") -> None:
    """PvrecError naming a kernel metric asked for that no frame holds, and what records it
    (a line of blanks or zeros would read as 'none happened')."""
    wanted = [n for n in names if n in KERNEL_METRICS]
    if not wanted:
        return
    have: set[str] = set()
    for c in contexts:
        if (c.get("pagetypeinfo") or {}).get("blocks"):
            have.update(MIGRATETYPE_METRICS.values())
        if isinstance(c.get("events"), dict):
            have.update(EVENT_METRICS)
        if c.get("unusable_index"):
            have.add("kernel_unusable_index")
        if have.issuperset(wanted):
            return
    name = next(n for n in wanted if n not in have)
    why = ("its frames hold no /proc/pagetypeinfo (pvrec record reads it as root)"
           if name in MIGRATETYPE_METRICS.values() else
           "it was recorded without the kernel's events (pvrec record --events)"
           if name in EVENT_METRICS else
           "debugfs (extfrag/unusable_index) was not mounted while it was recorded")
    raise PvrecError(f"{name} is not in {what}: {why}")


def metric_values(figures: dict[str, dict[str, float]], context: dict,
                  pairs: list[tuple[str, str]], hpage_pages: int = 512) -> list[float]:
    """The value of each (metric, zone) pair for one frame: pvrec's figures (frame_metrics)
    or the kernel's stored with the frame (context_metrics); NaN where the frame has none."""
    kernel: dict[str, dict[str, float]] = {}
    out = []
    for name, zone in pairs:
        if name in figures.get(zone, {}):
            out.append(float(figures[zone][name]))
            continue
        if zone not in kernel:
            kernel[zone] = context_metrics(context, zone, hpage_pages)
        out.append(float(kernel[zone].get(name, "nan")))
    return out


def check_metric_names(names: list[str], max_order: int = DEFAULT_MAX_ORDER) -> list[str]:
    """The names, or a PvrecError naming the unknown one and the valid ones."""
    valid = list(METRICS) + list(KERNEL_METRICS) + [f"buddy_order_{i}"
                                                    for i in range(max_order + 1)]
    for name in names:
        if name not in valid:
            raise PvrecError(f"unknown metric {name!r}; valid metrics: {', '.join(METRICS)}, "
                             f"{', '.join(KERNEL_METRICS)}, buddy_order_0..{max_order}")
    return names
