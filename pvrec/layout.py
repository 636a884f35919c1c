"""The machine's memory layout: RAM ranges, zones, NUMA nodes and the huge page size, as PFNs.

Read once at the start of a recording and stored in its header, so that a recording copied to a
laptop still knows where the holes, zones and nodes were. Every reader takes the /proc or /sys
root as an argument, so tests can point it at a directory of their own.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


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


def nodes(sys_root: Path, page_size: int = 4096) -> list[dict]:
    """NUMA nodes and the PFN ranges of their memory blocks, from /sys/devices/system."""
    block = _read(sys_root / "devices/system/memory/block_size_bytes")
    node_dir = sys_root / "devices/system/node"
    if block is None or not node_dir.is_dir():
        return []
    block_pages = int(block.strip(), 16) // page_size
    result = []
    for entry in sorted(node_dir.glob("node[0-9]*"), key=lambda p: int(p.name[4:])):
        blocks = sorted(int(m.name[6:]) for m in entry.glob("memory[0-9]*"))
        ranges = merge_ranges([[b * block_pages, (b + 1) * block_pages] for b in blocks])
        result.append({"node": int(entry.name[4:]), "ranges": ranges})
    return result


def hpage_pages(sys_root: Path, page_size: int) -> int:
    """Pages per PMD huge page (512 on x86-64 with 4 KiB pages)."""
    text = _read(sys_root / "kernel/mm/transparent_hugepage/hpage_pmd_size")
    size = int(text) if text and text.strip().isdigit() else 2 << 20
    return max(1, size // page_size)


def live_layout(proc: Path = Path("/proc"), sys_root: Path = Path("/sys")) -> dict:
    """The layout header fields of this machine (RAM ranges may be [] when /proc/iomem is hidden)."""
    page_size = os.sysconf("SC_PAGE_SIZE")
    ram = ram_ranges(_read(proc / "iomem") or "", page_size)
    zone_list = zones(_read(proc / "zoneinfo") or "")
    node_list = nodes(sys_root, page_size)
    # Memory blocks are coarser than RAM ranges; clip node ranges to RAM where it is known.
    if ram:
        for n in node_list:
            n["ranges"] = intersect(n["ranges"], ram)
    return {
        "page_size": page_size,
        "hpage_pages": hpage_pages(sys_root, page_size),
        "ram_ranges": ram,
        "zones": zone_list,
        "nodes": node_list,
        "layout_source": "live",
    }


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


def machine_identity() -> dict:
    """Host name and kernel release for the header."""
    u = os.uname()
    return {"hostname": socket.gethostname(), "kernel": u.release, "machine": u.machine}


def cgroup_names(root: Path = Path("/sys/fs/cgroup")) -> dict[str, str]:
    """Memory cgroups by inode ({"1234": "/system.slice/ssh.service"}), as kpagecgroup names them.

    cgroup v1 has one tree per controller (each with its own inode 1): only the memory one counts.
    """
    if (root / "memory").is_dir() and not (root / "cgroup.controllers").exists():
        root = root / "memory"
    names: dict[str, str] = {}
    if not root.is_dir():
        return names
    for dirpath, _dirs, _files in os.walk(root):
        try:
            rel = os.path.relpath(dirpath, root)
            names[str(os.stat(dirpath).st_ino)] = "/" if rel == "." else "/" + rel
        except OSError:
            continue
    return names
