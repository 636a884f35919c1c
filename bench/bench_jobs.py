"""`pvrec record --jobs N` benchmark: a sample's wall time (its smear) and CPU, by threads.

    sudo python bench/bench_jobs.py [--frames 12] [--jobs 1,2] [--kpageflags FILE]

Alternately, round by round (the machine is noisy): the raw single-thread read of every PFN
into a preallocated array (the floor), then one pvrec sample (read + encode + write a frame)
with each --jobs value. Prints wall and CPU per frame and their ratios. Targets (issue 13):
2 jobs <= 0.65x the wall of 1 job, CPU <= 1.05x the raw read.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from pvrec.kernel.kpageflags import KPAGEFLAGS, PageFlagsFile
from pvrec.recorder.sampler import Sampler
from pvrec.recording.writer import Writer


def timed(fn) -> tuple[float, float]:
    w, c = time.monotonic(), time.process_time()
    fn()
    return time.monotonic() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--kpageflags", default=KPAGEFLAGS)
    args = ap.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    with PageFlagsFile(args.kpageflags) as f, tempfile.TemporaryDirectory() as d:
        n = f.dump_pages() if f.is_dump else f.probe_pages(0)
        buf = np.empty(n, dtype=np.uint64)
        samplers = {j: Sampler(f, n, Writer(os.path.join(d, str(j)), {"pfn_count": n}),
                               time.monotonic(), with_context=False, jobs=j) for j in jobs}
        raw: list[tuple[float, float]] = []
        ours: dict[int, list[tuple[float, float]]] = {j: [] for j in jobs}
        for _ in range(args.frames):
            raw.append(timed(lambda: f.read_into(buf, 0)))
            for j, s in samplers.items():
                ours[j].append(timed(lambda s=s: s.take(time.monotonic())))
    rw, rc = (statistics.median(x[i] for x in raw) for i in (0, 1))
    print(f"pages per frame: {n:,}; {args.frames} rounds; medians")
    print(f"raw single-thread read (floor): {rw * 1000:7.1f} ms wall {rc * 1000:7.1f} ms CPU")
    w1 = statistics.median(x[0] for x in ours[jobs[0]])
    for j in jobs:
        w, c = (statistics.median(x[i] for x in ours[j]) for i in (0, 1))
        print(f"pvrec sample, --jobs {j}:       {w * 1000:7.1f} ms wall {c * 1000:7.1f} ms CPU"
              f"   wall/{jobs[0]} job {w / w1:.3f}x   CPU/raw {c / rc:.3f}x")


if __name__ == "__main__":
    main()
