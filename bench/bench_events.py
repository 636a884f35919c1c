"""Events benchmark: what `pvrec record --events` adds to a sample, against the raw kernel read.

    sudo python bench/bench_events.py --tree /path/to/linux      # beside a tinyconfig build
    sudo python bench/bench_events.py                            # beside whatever runs now
    sudo python bench/bench_events.py --compact                  # a compaction every round

In one run, round after round on the same machine state: the raw read of /proc/kpageflags
into a preallocated array (the floor), a pvrec sample without events, and a pvrec sample with
events, whose cost is the sampler's own CPU plus the CPU the event thread used over the round
(it parses trace_pipe text while the others run). Prints each per frame and their ratios, the
events per frame, the microseconds of CPU per event, and the events' bytes per frame.
With --tree, a tinyconfig build runs in the background (make O=<temp dir>: the tree itself is
left as it is; it must be clean, `make mrproper`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from pvrec.kernel import tracefs
from pvrec.kernel.kpageflags import KPAGEFLAGS, PageFlagsFile
from pvrec.recorder.events import EventCollector, prepare
from pvrec.recorder.sampler import Sampler
from pvrec.recording.writer import Writer


def thread_cpu(thread: threading.Thread) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def start_build(tree: str, jobs: int, build_dir: str) -> subprocess.Popen:
    subprocess.run(["make", "-s", "-C", tree, f"O={build_dir}", "tinyconfig"], check=True,
                   stdout=subprocess.DEVNULL)
    return subprocess.Popen(["make", "-s", "-C", tree, f"O={build_dir}", f"-j{jobs}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(frames: int, interval: float, compact: bool) -> None:
    prepare()
    with PageFlagsFile(KPAGEFLAGS) as f, tempfile.TemporaryDirectory() as d, \
            tracefs.TraceInstance() as instance:
        n = f.probe_pages(0)
        buf = np.empty(n, dtype=np.uint64)
        collector = EventCollector(instance).start()
        t0 = time.monotonic()
        plain = Sampler(f, n, Writer(os.path.join(d, "plain"), {"pfn_count": n}), t0)
        events = Sampler(f, n, Writer(os.path.join(d, "events"), {"pfn_count": n}), t0,
                         addons=[collector])
        raw, ours, with_events, counts, ev_bytes, thread_s = [], [], [], [], [], []
        try:
            for _ in range(frames):
                before = thread_cpu(collector.thread)
                c = time.thread_time()
                f.read_into(buf, 0)
                raw.append(time.thread_time() - c)
                c = time.thread_time()
                plain.take(time.monotonic())
                ours.append(time.thread_time() - c)
                c = time.thread_time()
                events.take(time.monotonic())
                main = time.thread_time() - c
                if compact:  # a compaction pass over every zone: ~4,000 events on 24 GiB
                    subprocess.run(["sh", "-c", "echo 1 > /proc/sys/vm/compact_memory"],
                                   check=True)
                time.sleep(interval)  # events arrive; the thread reads them meanwhile
                spent = thread_cpu(collector.thread) - before
                thread_s.append(spent)
                with_events.append(main + spent)
                ctx = events.writer.path / "frames.jsonl"
                last = ctx.read_text().splitlines()[-1]
                ev = json.loads(last).get("events", {})
                counts.append(sum(v for k, v in ev.items() if k in tracefs.EVENTS))
                ev_bytes.append(ev.get("bytes", 0))
        finally:
            collector.stop()
    r, o, e = (statistics.fmean(x) for x in (raw, ours, with_events))
    total = sum(counts)
    print(f"pages per frame:                 {n:,}; {frames} rounds")
    print(f"raw kernel read (floor):         {r * 1000:8.1f} ms CPU/frame")
    print(f"pvrec sample, no events:         {o * 1000:8.1f} ms CPU/frame   {o / r:6.3f}x floor")
    print(f"pvrec sample, --events:          {e * 1000:8.1f} ms CPU/frame   {e / r:6.3f}x floor"
          f"   {e / o:6.3f}x no events  (target <= 1.10x floor)")
    print(f"events per frame:                {total / frames:8.1f} (max {max(counts)}); "
          f"event thread {statistics.fmean(thread_s) * 1000:.2f} ms CPU/frame"
          + (f", {sum(thread_s) / total * 1e6:.1f} us per event" if total else ""))
    print(f"events' bytes per frame:         {statistics.fmean(ev_bytes):8.0f} B (max "
          f"{max(ev_bytes)}; before compression)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    ap.add_argument("--tree", help="a clean kernel tree: build tinyconfig beside the rounds")
    ap.add_argument("--compact", action="store_true",
                    help="echo 1 > /proc/sys/vm/compact_memory in every round: the cost of "
                         "thousands of events a frame")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    build = None
    with tempfile.TemporaryDirectory() as build_dir:
        if args.tree:
            build = start_build(args.tree, args.jobs, build_dir)
            time.sleep(3)  # let the build's compilers start before the first round
        try:
            run(args.frames, args.interval, args.compact)
        finally:
            if build is not None:
                running = build.poll() is None
                build.kill()
                build.wait()
                state = "still running at the end" if running else \
                    "ended before the last round: later rounds ran beside an idle machine"
                print(f"tinyconfig build: {state}")


if __name__ == "__main__":
    sys.exit(main())
