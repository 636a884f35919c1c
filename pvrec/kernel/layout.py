"""The live machine's memory layout, read from /proc and /sys (pvrec.layout parses it).

Read once at the start of a recording and stored in its header. Every reader takes the /proc or
/sys root as an argument, so tests can point it at a directory of their own.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path

from pvrec.layout import intersect, merge_ranges, ram_ranges, zones


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


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


def with_known_ram(layout: dict, pfn_count: int) -> dict:
    """The layout with RAM ranges even where /proc/iomem hides them (no CAP_SYS_ADMIN): from
    the memory blocks of the nodes, else every PFN (and layout_source says which)."""
    if layout["ram_ranges"]:
        return layout
    blocks = merge_ranges([r for n in layout["nodes"] for r in n["ranges"]])
    return {**layout, "ram_ranges": blocks or [[0, pfn_count]],
            "layout_source": "live, RAM from memory blocks" if blocks else "live, RAM ranges unknown"}


def wall_clock() -> str:
    """Now, as the header's start_wall: ISO 8601 with the local offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")

