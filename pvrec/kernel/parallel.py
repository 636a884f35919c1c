"""Reading kpageflags with several threads: `pvrec record --jobs N`.

The kernel's read of /proc/kpageflags is the cost of a sample (0.6 s of CPU for 24 GiB, ~25 s
for 1 TiB) and it runs in the reading thread's syscall, with the GIL released (os.preadv). So N
threads, each with its own fd, read disjoint chunks at once and the frame's smear (first read
start to last read end) shrinks by up to N for the same CPU. Chunks are read at most `jobs`
ahead of the consumer and handed over in PFN order, so memory stays a few chunks, as with one
thread, and the writer's streaming encode is unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from pvrec.kernel.kpageflags import PageFlagsFile

MAX_JOBS = 64
DEFAULT_MAX_JOBS = 4  # past 4 threads the measured gain is small and the bursts hurt the workload


def default_jobs(cpus: int) -> int:
    """--jobs when not given: the CPUs pvrec may use, at most DEFAULT_MAX_JOBS."""
    return max(1, min(cpus, DEFAULT_MAX_JOBS))


def read_ahead(path: str, pfn_count: int, skip: list[tuple[int, int, int]],
               buffers: list[np.ndarray]) -> Iterator[np.ndarray]:
    """The chunks of PFNs 0..pfn_count in order (chunks as large as the buffers), one thread
    fewer than buffers reading ahead (each its own fd). A failed read (SampleError,
    PvrecError) is raised here, in the consumer's thread; the consumer stopping early (an
    exception, a Ctrl-C) cancels what is queued and waits for the reads in flight, so no
    thread outlives the sample."""
    local, files, lock = threading.local(), [], threading.Lock()
    free, jobs, chunk_pages = list(buffers), len(buffers) - 1, buffers[0].size

    def read(start: int, buf: np.ndarray) -> np.ndarray:
        f = getattr(local, "file", None)
        if f is None:
            f = local.file = PageFlagsFile(path)
            with lock:
                files.append(f)
        want = buf[: min(chunk_pages, pfn_count - start)]
        f.fill(want, start, pfn_count, skip)
        return want

    starts = iter(range(0, pfn_count, chunk_pages))
    pending: list[Future] = []
    pool = ThreadPoolExecutor(jobs, thread_name_prefix="pvrec-read")
    try:
        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                pending.append(pool.submit(read, start, free.pop()))

        for _ in range(jobs):
            submit()
        while pending:
            chunk = pending.pop(0).result()
            submit()  # the consumer holds one buffer, the threads the others
            yield chunk
            free.append(chunk.base)  # a view of one of the buffers
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for f in files:
            f.close()
