"""Recorder benchmark: pvrec's cost per frame over the raw kernel read, and bytes over naive.

    sudo python bench/bench_record.py                     # CPU ratio on live memory
    python bench/bench_record.py --recording DIR          # bytes ratio across a recording

1. CPU: alternately (same run, same machine state) the raw read of /proc/kpageflags into a
   preallocated array (the floor), and one pvrec sample (read + encode + write a frame).
2. Bytes: every frame of a recording re-saved with np.savez_compressed(flags) (the naive
   format) against the bytes pvrec wrote for it.
3. Memory: peak RSS of a recorder process over the size of one frame's flags array.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from pvrec.kernel.kpageflags import KPAGEFLAGS, PageFlagsFile
from pvrec.recorder.sampler import Sampler
from pvrec.recording.format import disk_usage
from pvrec.recording.reader import open_recording
from pvrec.recording.writer import Writer


def cpu_ratio(frames: int, source: str) -> None:
    with PageFlagsFile(source) as f:
        n = f.probe_pages(0) if not f.is_dump else f.dump_pages()
        buf = np.empty(n, dtype=np.uint64)
        with tempfile.TemporaryDirectory() as d:
            writer = Writer(os.path.join(d, "r"), {"pfn_count": n})
            sampler = Sampler(f, n, writer, time.monotonic(), with_context=True)
            raw, ours = [], []
            for _ in range(frames):
                c = time.process_time()
                f.read_into(buf, 0)
                raw.append(time.process_time() - c)
                c = time.process_time()
                sampler.take(time.monotonic())
                ours.append(time.process_time() - c)
            kinds = [i.kind for i in open_recording(os.path.join(d, "r")).frames]
    r, o = statistics.fmean(raw), statistics.fmean(ours)
    print(f"pages per frame:              {n:,}")
    print(f"raw kernel read (floor):      {r * 1000:8.1f} ms CPU/frame (median "
          f"{statistics.median(raw) * 1000:.1f})")
    print(f"pvrec sample (read+enc+write):{o * 1000:8.1f} ms CPU/frame (median "
          f"{statistics.median(ours) * 1000:.1f}; {kinds.count('key')} key, "
          f"{kinds.count('delta')} delta)")
    print(f"ratio pvrec / floor:          {o / r:8.3f}x  (target <= 1.10, aim 1.05)")


def bytes_ratio(path: str) -> None:
    rec = open_recording(path)
    naive, ours = 0, 0
    for info, flags in rec.iter_frames():
        b = io.BytesIO()
        np.savez_compressed(b, flags=flags)
        naive += len(b.getvalue())
        ours += int(info.context.get("bytes", 0))
    n = len(rec)
    print(f"recording:                    {path} ({n} frames, {rec.pfn_count:,} pages)")
    print(f"naive savez_compressed:       {naive / n / 1024:8.1f} KiB/frame")
    print(f"pvrec frames:                 {ours / n / 1024:8.1f} KiB/frame "
          f"(whole directory {disk_usage(rec.path) / n / 1024:.1f} KiB/frame)")
    print(f"ratio pvrec / naive:          {ours / naive:8.4f}  (target <= 0.10)")


def memory(source: str, seconds: float) -> None:
    """Peak RSS (VmHWM) of a real `pvrec record` process; ru_maxrss would count this process's
    memory at fork, which Linux carries across exec."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r")
        args = ["record", "-q", "--interval", "1s", "--duration", f"{seconds}s", "-o", out]
        if source != KPAGEFLAGS:
            args += ["--kpageflags", source]
        code = ("import sys, pvrec.cli; rc = pvrec.cli.main(sys.argv[1:]); "
                "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], "
                "file=sys.stderr); sys.exit(rc)")
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                           check=True)
        peak = int(r.stderr.strip().splitlines()[-1])
        n = open_recording(out).pfn_count
    frame_mib = n * 8 / 2**20
    print(f"recorder peak RSS:            {peak / 1024:8.1f} MiB = "
          f"{peak / 1024 / frame_mib:.2f}x one frame's flags ({frame_mib:.1f} MiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--source", default=KPAGEFLAGS, help="kpageflags file or dump")
    ap.add_argument("--recording", help="a recording to measure bytes on")
    ap.add_argument("--skip-cpu", action="store_true")
    args = ap.parse_args()
    if not args.skip_cpu:
        cpu_ratio(args.frames, args.source)
        memory(args.source, 5)
    if args.recording:
        bytes_ratio(args.recording)


if __name__ == "__main__":
    main()
