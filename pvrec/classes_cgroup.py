"""Pages coloured by memory cgroup (`--color-by cgroup`): the run values are memcg inodes.

The top N cgroups by pages get a colour each; two recordings side by side share them by
cgroup path, each with its own inode -> class map.
"""

from __future__ import annotations

import numpy as np

from pvrec.classes import (
    HOLE,
    OTHER_COLOR,
    SERIES_COLORS,
    PageClass,
    Scheme,
    colors_of,
    default_scheme,
)


class CgroupScheme(Scheme):
    """Pages coloured by memory cgroup (--color-by cgroup): run values are memcg inodes.

    Classes: the hole, the top N cgroups (most pages first), "other" (every other cgroup) and
    "none/free" (inode 0: free pages, and pages no cgroup is charged for). Two recordings side
    by side share the classes by cgroup name, each with its own inode -> class map."""

    name = "cgroup"
    TOP_MAX = len(SERIES_COLORS)

    def __init__(self, classes: list[PageClass], inode_class: dict[int, int]):
        super().__init__(classes)
        self.inode_class = inode_class
        self.other, self.none = len(classes) - 2, len(classes) - 1

    def classify_values(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.uint64)
        out = np.full(values.shape, self.other, dtype=np.uint8)
        out[values == 0] = self.none
        if self.inode_class:
            keys = np.array(list(self.inode_class), dtype=np.uint64)
            cls = np.array(list(self.inode_class.values()), dtype=np.uint8)
            order = np.argsort(keys)
            keys, cls = keys[order], cls[order]
            pos = np.minimum(np.searchsorted(keys, values), keys.size - 1)
            hit = keys[pos] == values
            out[hit] = cls[pos[hit]]
        return out


def cgroup_label(path: str, limit: int = 30) -> str:
    """A cgroup path short enough for the legend: its tail, which names it, after its first
    component where that is short ('/system.slice/...sshd.service'; two /process_api/<hash>
    cgroups apart and where they live)."""
    if path == "/":
        return "/ (root)"
    if len(path) <= limit:
        return path
    head = path[:path.find("/", 1) + 1] if path.find("/", 1) > 0 else ""
    if len(head) > limit // 2 or limit - 3 - len(head) < 1:
        head = ""
    return head + "..." + path[-(limit - 3 - len(head)):]


def cgroup_schemes(tallies: list[tuple[dict[int, int], dict[int, str]]], top: int
                   ) -> list[CgroupScheme]:
    """One CgroupScheme per recording, all with the same classes: the `top` cgroups with most
    pages over all the tallies ({inode: pages}, {inode: path} per recording), by name."""
    if not 1 <= top <= CgroupScheme.TOP_MAX:  # RenderOptions says so to the user
        raise ValueError(f"top {top} is not from 1 to {CgroupScheme.TOP_MAX}")
    by_name: dict[str, int] = {}
    for pages, names in tallies:
        for inode, n in pages.items():
            if inode:
                key = names.get(inode, f"cgroup #{inode}")
                by_name[key] = by_name.get(key, 0) + n
    chosen = [k for k, _ in sorted(by_name.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    hole = default_scheme().classes[HOLE]
    free = default_scheme().classes[default_scheme().index("free")]
    classes = [hole]
    for i, name in enumerate(chosen):
        classes.append(PageClass(cgroup_label(name), *colors_of(SERIES_COLORS[i]), "memcg " + name,
                                 "memory cgroup " + name))
    classes.append(PageClass("other", *OTHER_COLOR, "", "every other memory cgroup"))
    classes.append(PageClass("none/free", free.light, free.dark, "inode 0",
                             "no memory cgroup: free pages, pages charged to none"))
    out = []
    for _, names in tallies:
        rank = {name: 1 + i for i, name in enumerate(chosen)}
        out.append(CgroupScheme(classes, {inode: rank[name] for inode, name in names.items()
                                          if name in rank}))
        for inode in tallies[len(out) - 1][0]:  # unnamed inodes that made the top
            key = f"cgroup #{inode}"
            if inode not in names and key in rank:
                out[-1].inode_class[inode] = rank[key]
    return out
