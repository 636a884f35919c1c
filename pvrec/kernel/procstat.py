"""Cheap per-frame context from /proc and /sys: free blocks per order (buddyinfo), a few vmstat
counters, the multi-size THP counters of each folio size, and page blocks per migratetype
(pagetypeinfo, root; the kernel's unusable index where debugfs is mounted).

Stored beside each frame so that fragmentation and THP activity can be checked against the
kernel's own accounting of the same moment. Costs a few milliseconds a frame (pagetypeinfo walks the page blocks: ~5 ms on 24 GiB).
"""

from __future__ import annotations

from pathlib import Path

from pvrec.kernel import pagetypeinfo

# The /proc/vmstat counters that explain fragmentation, THP, reclaim and page cache movement.
VMSTAT_PREFIXES = (
    "compact_", "thp_", "pgalloc_", "pgfree", "pgfault", "pgmajfault", "pgsteal_", "pgscan_",
    "nr_free_pages", "nr_anon_pages", "nr_file_pages", "nr_slab_", "nr_anon_transparent",
    "nr_shmem", "nr_mlock", "nr_page_table_pages", "nr_dirty", "nr_writeback", "htlb_",
    "drop_pagecache", "pgmigrate_", "nr_unevictable", "workingset_refault", "allocstall_",
    "oom_kill",
)


def buddyinfo(text: str) -> dict[str, list[int]]:
    """/proc/buddyinfo as {"0/Normal": [free blocks of order 0, 1, ...]}."""
    out: dict[str, list[int]] = {}
    for line in text.splitlines():
        words = line.replace(",", " ").split()
        if len(words) < 5 or words[0] != "Node" or words[2] != "zone":
            continue
        out[f"{words[1]}/{words[3]}"] = [int(w) for w in words[4:]]
    return out


def vmstat(text: str) -> dict[str, int]:
    """The counters of /proc/vmstat that VMSTAT_PREFIXES selects."""
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith(VMSTAT_PREFIXES) and value.strip().lstrip("-").isdigit():
            out[name] = int(value)
    return out


def hugepages(text: str) -> dict[str, int]:
    """HugePages_Total/Free/Rsvd and AnonHugePages (kB) from /proc/meminfo."""
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name.startswith("HugePages_") or name == "AnonHugePages":
            out[name] = int(rest.split()[0])
    return out


# The per-size counters of /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/stats
# (Documentation/admin-guide/mm/transhuge.rst): nr_anon is the anonymous folios of that size
# now, the others count events since boot.
MTHP_COUNTERS = ("nr_anon", "nr_anon_partially_mapped", "anon_fault_alloc",
                 "anon_fault_fallback", "split")
THP_SYSFS = Path("/sys/kernel/mm/transparent_hugepage")


def mthp_stats(thp: Path = THP_SYSFS) -> dict[str, dict[str, int]]:
    """{"64kB": {"nr_anon": folios, ...}} for each size the kernel has a stats directory of."""
    out: dict[str, dict[str, int]] = {}
    for d in sorted(thp.glob("hugepages-*kB"), key=lambda d: len(d.name)):  # 8kB, 16kB, ...
        counters = {}
        for name in MTHP_COUNTERS:
            try:
                counters[name] = int((d / "stats" / name).read_text())
            except (OSError, ValueError):
                pass
        if counters:
            out[d.name.removeprefix("hugepages-")] = counters
    return out


def read_context(proc: Path = Path("/proc"), thp: Path = THP_SYSFS) -> dict:
    """The per-frame context of the live machine (missing files just leave their key out)."""
    ctx: dict = {}
    mthp = mthp_stats(thp)
    if mthp:
        ctx["mthp"] = mthp
    for key, name, parse in (("buddyinfo", "buddyinfo", buddyinfo), ("vmstat", "vmstat", vmstat),
                             ("meminfo", "meminfo", hugepages)):
        try:
            ctx[key] = parse((proc / name).read_text())
        except (OSError, ValueError):
            pass
    if (types := pagetypeinfo.read(proc / "pagetypeinfo")) is not None:
        ctx["pagetypeinfo"] = types
    if (unusable := pagetypeinfo.read_unusable()) is not None:
        ctx["unusable_index"] = unusable
    return ctx
