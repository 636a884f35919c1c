"""The memory layout of a recording's machine: RAM ranges, zones and nodes as PFN ranges.

Pure functions over the text of /proc files and over [start, end) range lists; pvrec.kernel.layout
reads them from the live machine. A recording stores the layout in its header, so that a copy on
a laptop still knows where the holes, zones and nodes were.
"""

from __future__ import annotations

import re

import numpy as np

TILE_ROWS = 512  # rows (huge pages) of a map tile: 1 GiB with 4 KiB pages and 2 MiB huge pages


def ram_ranges(iomem: str, page_size: int = 4096) -> list[list[int]]:
    """Top-level 'System RAM' ranges of /proc/iomem as [start_pfn, end_pfn) (empty if hidden)."""
    ranges = []
    for line in iomem.splitlines():
        if line.startswith(" ") or not line.rstrip().endswith(": System RAM"):
            continue
        span = line.split(" : ")[0]
        start_s, _, end_s = span.partition("-")
        start, end = int(start_s, 16), int(end_s, 16) + 1
        if end <= 1:  # non-root readers see 00000000-00000000
            return []
        first, last = -(-start // page_size), end // page_size
        if last > first:
            ranges.append([first, last])
    return merge_ranges(ranges)


def merge_ranges(ranges: list[list[int]]) -> list[list[int]]:
    """Sort and merge touching or overlapping [start, end) ranges."""
    merged: list[list[int]] = []
    for s, e in sorted(ranges):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged


_ZONE = re.compile(r"^Node (\d+), zone\s+(\S+)")


def zones(zoneinfo: str) -> list[dict]:
    """Zones of /proc/zoneinfo with their PFN span: {node, name, start_pfn, end_pfn, present}."""
    found: list[dict] = []
    cur: dict | None = None
    for line in zoneinfo.splitlines():
        m = _ZONE.match(line)
        if m:
            cur = {"node": int(m.group(1)), "name": m.group(2)}
            found.append(cur)
            continue
        if cur is None:
            continue
        words = line.split()
        if len(words) >= 2 and words[0] in ("spanned", "present", "managed", "start_pfn:"):
            cur[words[0].rstrip(":")] = int(words[1])
    return [
        {"node": z["node"], "name": z["name"], "start_pfn": z["start_pfn"],
         "end_pfn": z["start_pfn"] + z["spanned"], "present": z.get("present", 0)}
        for z in found
        if z.get("spanned", 0) > 0 and "start_pfn" in z
    ]


def intersect(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    """Intersection of two sorted lists of [start, end) ranges."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append([s, e])
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def max_pfn(layout: dict) -> int:
    """One past the highest PFN the layout knows of (0 when it knows none)."""
    ends = [e for _, e in layout.get("ram_ranges", [])]
    ends += [z["end_pfn"] for z in layout.get("zones", [])]
    return max(ends, default=0)


def flat_layout(pfn_count: int, page_size: int = 4096, hpage: int = 512) -> dict:
    """Layout of a dump whose machine is unknown: every PFN counts as RAM, no zones or nodes."""
    return {
        "page_size": page_size,
        "hpage_pages": hpage,
        "ram_ranges": [[0, pfn_count]],
        "zones": [],
        "nodes": [],
        "layout_source": "flat",
    }


def pages_per_class(classes: np.ndarray, lengths: np.ndarray, ranges: list[list[int]],
                    n_classes: int) -> np.ndarray:
    """Pages of each class (int64, n_classes of them) that lie inside the ranges, given one
    class per run of pages from PFN 0: what a class holds of the RAM, the holes left out."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    inside = np.zeros(lengths.size, dtype=np.int64)
    for lo, hi in ranges:  # a few ranges a machine: one vector pass each
        inside += np.maximum(np.minimum(ends, hi) - np.maximum(starts, lo), 0)
    return np.bincount(np.asarray(classes, dtype=np.intp), weights=inside,
                       minlength=n_classes).round().astype(np.int64)
