"""Process trees, from /proc/*/stat, stdlib only (the watchdog imports it without numpy).

descendants() is the workload's tree: pvrec is a child subreaper, so that tree is exactly
pvrec's descendants.
"""

from __future__ import annotations

import os


def parent_of(pid: int) -> int | None:
    """The parent pid of a process, from /proc/PID/stat (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def children_by_parent() -> dict[int, list[int]]:
    """Every live process's pid, listed under its parent's pid."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (parent := parent_of(int(name))) is not None:
            children.setdefault(parent, []).append(int(name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid (children first), found through /proc/*/stat."""
    children = children_by_parent()
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
