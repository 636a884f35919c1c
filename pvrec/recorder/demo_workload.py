"""The built-in demo workload: about 20 seconds that visibly change physical memory.

Phases: page cache fills (a file written), an anonymous THP-backed allocation grows and is
freed, hugetlb pages are reserved and released (when we may; the old setting is restored),
and the page cache is dropped again. Run as `python -m pvrec.recorder.demo_workload DIR`.
"""

from __future__ import annotations

import mmap
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

MiB = 1 << 20
NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")


def say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


class Stopped(BaseException):
    """A stop signal arrived: unwind through every `finally` (what was changed is restored)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame) -> None:
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)  # a second one must not cut the restoring short
    raise Stopped(signum)


@contextmanager
def hugepages_restored() -> Iterator[None]:
    """Put vm.nr_hugepages back as it was after the block, if it changed (and we may)."""
    try:
        old = NR_HUGEPAGES.read_text()
    except OSError:
        old = None
    try:
        yield
    finally:
        try:
            if old is not None and NR_HUGEPAGES.read_text() != old:
                NR_HUGEPAGES.write_text(old)
        except OSError:
            pass


def page_cache_fill(path: Path, total: int, seconds: float) -> None:
    """Write a file in steps so the page cache visibly grows."""
    block = np.random.default_rng(1).integers(0, 255, 64 * MiB, dtype=np.uint8).tobytes()
    steps = max(1, total // len(block))
    with open(path, "wb") as f:
        for _ in range(steps):
            f.write(block)
            time.sleep(seconds / steps)
    say(f"page cache: wrote {total // MiB} MiB to {path.name}")


def anon_thp(total: int, seconds: float) -> None:
    """Grow an anonymous MADV_HUGEPAGE mapping, hold it, free it."""
    m = mmap.mmap(-1, total, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    pages = None
    try:
        if hasattr(mmap, "MADV_HUGEPAGE"):
            m.madvise(mmap.MADV_HUGEPAGE)
        pages = np.frombuffer(m, dtype=np.uint8)
        steps = 16
        step = total // steps
        for i in range(steps):
            pages[i * step : (i + 1) * step : 4096] = 1
            time.sleep(seconds / steps)
        say(f"anonymous: {total // MiB} MiB touched (THP where the kernel could)")
        time.sleep(1.0)
    finally:
        pages = None  # the view must go before the mapping can close
        m.close()
    say("anonymous: freed")


def hugetlb(count: int, seconds: float) -> None:
    """Reserve hugetlb pages, hold them, and restore the old setting whatever happens."""
    try:
        old = int(NR_HUGEPAGES.read_text())
        NR_HUGEPAGES.write_text(str(old + count))
    except (OSError, ValueError) as exc:
        say(f"hugetlb: skipped ({exc.strerror if isinstance(exc, OSError) else exc})")
        time.sleep(seconds)
        return
    try:
        got = int(NR_HUGEPAGES.read_text()) - old
        say(f"hugetlb: reserved {got} huge pages")
        time.sleep(seconds)
    finally:
        NR_HUGEPAGES.write_text(str(old))
        say("hugetlb: released")


def drop_file(path: Path) -> None:
    """Evict the file's pages from the page cache, then delete it."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    path.unlink()
    say("page cache: dropped")


def main(workdir: str) -> int:
    work = Path(workdir)
    free = shutil.disk_usage(work).free
    file_size = max(64 * MiB, min(1024 * MiB, free // 4) // (64 * MiB) * 64 * MiB)
    data = work / "pvrec-demo.data"
    try:
        time.sleep(1.0)
        page_cache_fill(data, file_size, 3.0)
        time.sleep(1.0)
        anon_thp(1024 * MiB, 3.0)
        time.sleep(1.0)
        hugetlb(256, 3.0)
        time.sleep(1.0)
        drop_file(data)
        time.sleep(2.0)
    finally:
        data.unlink(missing_ok=True)
    return 0


def run(workdir: str) -> int:
    """main() that a stop signal ends quietly: what it changed restored, then killed by it."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _stop)
    try:
        return main(workdir)
    except Stopped as stop:
        say(f"stopped by {signal.Signals(stop.signum).name}; the page cache file is deleted and "
            f"vm.nr_hugepages is as it was")
        # Die of the signal itself, as a shell expects of a program it interrupted.
        signal.signal(stop.signum, signal.SIG_DFL)
        os.kill(os.getpid(), stop.signum)
        return 128 + stop.signum


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1] if len(sys.argv) > 1 else "."))
