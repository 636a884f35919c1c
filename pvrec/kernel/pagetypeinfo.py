"""/proc/pagetypeinfo: page blocks per migratetype and free blocks per migratetype and order.

Stored with every frame (root only; cheap), so the map's pages can be read beside the kernel's
own bookkeeping of which page blocks belong to which migratetype: fallbacks that steal or
pollute a block show up here as blocks changing type.
"""

from __future__ import annotations

from pathlib import Path

PAGETYPEINFO = Path("/proc/pagetypeinfo")


def parse(text: str) -> dict[str, dict]:
    """{"blocks": {"0/Normal": {"Unmovable": n, ...}}, "free": {"0/Normal": {"Unmovable":
    [free blocks of order 0, 1, ...], ...}}}; lines of another shape are left out."""
    blocks: dict[str, dict[str, int]] = {}
    free: dict[str, dict[str, list[int]]] = {}
    types: list[str] = []
    for line in text.splitlines():
        words = line.replace(",", " ").split()
        if line.startswith("Number of blocks type"):
            types = words[4:]
        elif len(words) > 6 and words[0] == "Node" and words[2] == "zone" and words[4] == "type":
            counts = words[6:]
            if all(w.isdigit() for w in counts):
                free.setdefault(f"{words[1]}/{words[3]}", {})[words[5]] = [int(w) for w in counts]
        elif types and len(words) == 4 + len(types) and words[0] == "Node" and words[2] == "zone":
            if all(w.isdigit() for w in words[4:]):
                blocks[f"{words[1]}/{words[3]}"] = dict(zip(types, map(int, words[4:]), strict=True))
    return {"blocks": blocks, "free": free}


def read(path: Path = PAGETYPEINFO) -> dict[str, dict] | None:
    """The parsed file, or None where it is not readable (not root)."""
    try:
        return parse(path.read_text())
    except (OSError, ValueError):
        return None


UNUSABLE_INDEX = Path("/sys/kernel/debug/extfrag/unusable_index")


def parse_unusable(text: str) -> dict[str, list[float]]:
    """debugfs extfrag/unusable_index: {"0/Normal": [the kernel's unusable index per order]}."""
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        words = line.replace(",", " ").split()
        if len(words) > 4 and words[0] == "Node" and words[2] == "zone":
            try:
                out[f"{words[1]}/{words[3]}"] = [float(w) for w in words[4:]]
            except ValueError:
                pass
    return out


def read_unusable(path: Path = UNUSABLE_INDEX) -> dict[str, list[float]] | None:
    """The kernel's own unusable index, where debugfs is mounted and readable (pvrec never
    mounts it)."""
    try:
        return parse_unusable(path.read_text()) or None
    except (OSError, ValueError):
        return None
