"""Kernel tracepoints through tracefs, in a trace instance of pvrec's own.

`pvrec record --events` reads the page allocator's fallbacks and the compaction scanners from
an instance `instances/pvrec-<pid>` (its own ring buffer and event switches), so tracing that
others run on the machine is neither disturbed nor read, and nothing is enabled at the top
level. The instance uses the `mono` trace clock: its timestamps are time.monotonic(), the clock
of the recording's frames. An instance left by a SIGKILLed pvrec (its pid is gone) is removed by
the next one. No BPF, no debugfs.

The text of trace_pipe is parsed here, one regular expression per event (the fields of each
event's `format` file, printed by its `print fmt`); bench/bench_events.py measures its cost.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
from pathlib import Path

from pvrec.errors import PvrecError

TRACEFS = Path("/sys/kernel/tracing")
INSTANCE_PREFIX = "pvrec-"
BUFFER_KB = 4096  # per CPU: a compaction pass over 24 GiB is ~4,000 events, ~0.5 MB of text

# name in pvrec -> (tracefs event, the fields pvrec stores, in order)
EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "extfrag": ("kmem/mm_page_alloc_extfrag",
                ("pfn", "alloc_order", "fallback_order", "alloc_migratetype",
                 "fallback_migratetype", "fragmenting", "change_ownership")),
    "compaction_begin": ("compaction/mm_compaction_begin",
                         ("zone_start", "migrate_pfn", "free_pfn", "zone_end", "sync")),
    "compaction_end": ("compaction/mm_compaction_end",
                       ("zone_start", "migrate_pfn", "free_pfn", "zone_end", "sync", "status")),
    "isolate_migratepages": ("compaction/mm_compaction_isolate_migratepages",
                             ("start_pfn", "end_pfn", "nr_scanned", "nr_taken")),
    "isolate_freepages": ("compaction/mm_compaction_isolate_freepages",
                          ("start_pfn", "end_pfn", "nr_scanned", "nr_taken")),
    "kcompactd_wake": ("compaction/mm_compaction_kcompactd_wake", ("nid", "order", "zone")),
    "try_to_compact_pages": ("compaction/mm_compaction_try_to_compact_pages",
                             ("order", "prio")),
}
TRACE_NAMES = {path.rsplit("/", 1)[1]: name for name, (path, _) in EVENTS.items()}

# mm_compaction_end's status (include/trace/events/compaction.h, __print_symbolic)
COMPACT_STATUS = {"not_suitable_zone": 0, "skipped": 1, "deferred": 2, "no_suitable_page": 3,
                  "continue": 4, "complete": 5, "partial_skipped": 6, "contended": 7,
                  "success": 8}
ZONE_TYPES = {"DMA": 0, "DMA32": 1, "Normal": 2, "Movable": 3, "Device": 4}

# "  comm-pid  [001] d..1.  243.748141: mm_compaction_begin: zone_start=0x1 ..."
_LINE = re.compile(rb"\[\d+\]\s+\S+\s+(\d+)\.(\d+): (\w+): (.*)")
_NUM = r"(-?(?:0x[0-9a-fA-F]+|\d+))"
_FIELDS = {
    "extfrag": re.compile(
        rf"page=\S+ pfn={_NUM} alloc_order={_NUM} fallback_order={_NUM} pageblock_order=\S+ "
        rf"alloc_migratetype={_NUM} fallback_migratetype={_NUM} fragmenting={_NUM} "
        rf"change_ownership={_NUM}"),
    "compaction_begin": re.compile(
        rf"zone_start={_NUM} migrate_pfn={_NUM} free_pfn={_NUM} zone_end={_NUM}, "
        r"mode=(sync|async)"),
    "compaction_end": re.compile(
        rf"zone_start={_NUM} migrate_pfn={_NUM} free_pfn={_NUM} zone_end={_NUM}, "
        r"mode=(sync|async) status=(\w+)"),
    "isolate_migratepages": re.compile(
        rf"range=\({_NUM} ~ {_NUM}\) nr_scanned={_NUM} nr_taken={_NUM}"),
    "kcompactd_wake": re.compile(rf"nid={_NUM} order={_NUM} classzone_idx=(\w+)"),
    "try_to_compact_pages": re.compile(rf"order={_NUM} gfp_mask=\S+ priority={_NUM}"),
}
_FIELDS["isolate_freepages"] = _FIELDS["isolate_migratepages"]
_LOST = re.compile(rb"CPU:\d+ \[LOST (\d+) EVENTS\]")


def _int(word: str) -> int:
    if word == "sync":
        return 1
    if word == "async":
        return 0
    if word in COMPACT_STATUS:
        return COMPACT_STATUS[word]
    if word in ZONE_TYPES:
        return ZONE_TYPES[word]
    return int(word, 0)


def parse_line(line: bytes) -> tuple[str, int, tuple[int, ...]] | int | None:
    """One line of trace_pipe: (pvrec's event name, timestamp ns, fields), the count of a
    'LOST n EVENTS' line, or None for anything else (a line of another shape is not guessed)."""
    m = _LINE.search(line)
    if m is None:
        lost = _LOST.search(line)
        return int(lost.group(1)) if lost else None
    name = TRACE_NAMES.get(m.group(3).decode())
    if name is None:
        return None
    f = _FIELDS[name].match(m.group(4).decode("ascii", "replace"))
    if f is None:
        return None
    frac = m.group(2)
    ns = int(m.group(1)) * 1_000_000_000 + int(frac) * 10 ** (9 - len(frac))
    try:
        return name, ns, tuple(_int(w) for w in f.groups())
    except ValueError:
        return None


def ensure_mounted(root: Path = TRACEFS) -> None:
    """Mount tracefs at root if it is not mounted (root only); one line saying why not."""
    if (root / "instances").is_dir():
        return
    if os.geteuid() != 0:
        raise PvrecError(f"--events needs root: tracefs ({root}) is not readable as uid "
                         f"{os.geteuid()}")
    if not root.is_dir():
        raise PvrecError(f"--events: this kernel has no tracefs ({root} does not exist)")
    done = subprocess.run(["mount", "-t", "tracefs", "nodev", str(root)], capture_output=True,
                          text=True)
    if done.returncode != 0 or not (root / "instances").is_dir():
        why = (done.stderr.strip().splitlines() or ["mount failed"])[-1]
        raise PvrecError(f"--events: cannot mount tracefs at {root}: {why}")


def check_events(root: Path = TRACEFS) -> None:
    """Every tracepoint pvrec reads exists in this kernel (one line naming the first missing)."""
    for path, _fields in EVENTS.values():
        if not (root / "events" / path).is_dir():
            raise PvrecError(f"--events: this kernel has no tracepoint {path.replace('/', ':')} "
                             f"({root / 'events' / path} is missing)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(root: Path = TRACEFS) -> list[str]:
    """Remove the instances of pvrec processes that are gone (a SIGKILLed recording's); the
    names removed."""
    removed = []
    try:
        names = sorted(os.listdir(root / "instances"))
    except OSError:
        return removed
    for name in names:
        pid = name.removeprefix(INSTANCE_PREFIX)
        if name == pid or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            os.rmdir(root / "instances" / name)
            removed.append(name)
        except OSError:
            pass  # busy (someone reads it) or removed meanwhile: the next run tries again
    return removed


class TraceInstance:
    """instances/pvrec-<pid>: created with pvrec's events enabled in it; close() removes it.

    Use as a context manager, so that it goes on a normal end, Ctrl-C and errors alike."""

    def __init__(self, root: Path = TRACEFS, pid: int | None = None,
                 buffer_kb: int = BUFFER_KB):
        self.root = root
        self.name = f"{INSTANCE_PREFIX}{pid or os.getpid()}"
        self.path = root / "instances" / self.name
        self.buffer_kb = buffer_kb
        self.fd = -1

    def __enter__(self) -> TraceInstance:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        """Create the instance, set its clock and buffer, enable the events, open trace_pipe."""
        try:
            os.mkdir(self.path)
        except FileExistsError:
            pass  # our own pid's: left by a process of ours that reused it, take it over
        except OSError as exc:
            raise PvrecError(f"--events: cannot create trace instance {self.path}: "
                             f"{exc.strerror}", errno=exc.errno) from None
        try:
            self._write("trace_clock", "mono")
            self._write("buffer_size_kb", str(self.buffer_kb))
            for path, _fields in EVENTS.values():
                self._write(f"events/{path}/enable", "1")
            self.fd = os.open(self.path / "trace_pipe", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            self.close()
            raise PvrecError(f"--events: cannot set up trace instance {self.path}: "
                             f"{exc.strerror}", errno=exc.errno) from None

    def _write(self, name: str, value: str) -> None:
        with open(self.path / name, "w") as f:
            f.write(value)

    def read(self, size: int = 1 << 16) -> bytes:
        """What trace_pipe holds now (b"" when nothing: the fd does not block)."""
        try:
            return os.read(self.fd, size)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return b""
            raise

    def lost(self) -> int:
        """Events the kernel's ring buffer dropped (overruns) since the instance was made."""
        total = 0
        for stats in self.path.glob("per_cpu/cpu*/stats"):
            try:
                for line in stats.read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in ("overrun", "dropped events"):
                        total += int(value)
            except (OSError, ValueError):
                pass
        return total

    def close(self) -> None:
        """Disable the events, close trace_pipe, remove the instance (best effort, repeatable)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self.path.is_dir():
            return
        for path, _fields in EVENTS.values():
            try:
                self._write(f"events/{path}/enable", "0")
            except OSError:
                pass
        try:
            os.rmdir(self.path)
        except OSError:
            pass
