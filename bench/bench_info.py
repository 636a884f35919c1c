"""`pvrec info` on a 24 GiB recording: decoding every frame (the floor before the summary cache)
against the cache cold (built in this call) and warm, side by side in one run.

    python bench/bench_info.py                 # 600 frames (written once, cached in $TMPDIR)
    python bench/bench_info.py --frames 60
    python bench/bench_info.py --cgroup-recording RUN   # and the cgroup tally of a real one

`pvrec metrics` (whole zones) reads the same cache: its CSV timed likewise, decoding against warm.
With --cgroup-recording RUN (one recorded with --cgroups), --color-by cgroup's tally too: the key
frames it reads without the cache against a warm cache.

The recording is bench_render's synthetic 24 GiB one (the test VM's layout, fixtures wandering
1-5% of pages a frame). Times are of summarize() in this process (imports excluded) and of
`python -m pvrec info --json` end to end with a warm cache (the issue asks < 1 s at 600 frames).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_render import make_recording  # noqa: E402

from pvrec import summaries  # noqa: E402
from pvrec.inspect.fragmentation import metrics_csv  # noqa: E402
from pvrec.inspect.info import summarize  # noqa: E402
from pvrec.recording.reader import open_recording  # noqa: E402


def timed(path: Path, cache: bool, what=summarize) -> float:
    real = summaries.cache_paths
    if not cache:
        summaries.cache_paths = lambda rec: []
    try:
        t0 = time.perf_counter()
        what(open_recording(path))
        return time.perf_counter() - t0
    finally:
        summaries.cache_paths = real


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--cgroup-recording", help="a recording made with --cgroups")
    args = ap.parse_args()
    path = Path(tempfile.gettempdir()) / f"pvrec-bench-24g-{args.frames}"
    make_recording(path, args.frames)
    for p in summaries.cache_paths(open_recording(path)):
        p.unlink(missing_ok=True)
    naive = timed(path, cache=False)
    cold = timed(path, cache=True)
    warm = min(timed(path, cache=True) for _ in range(3))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pvrec", "info", "--json", str(path)], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    e2e = time.perf_counter() - t0
    print(f"pvrec info, 24 GiB, {args.frames} frames:")
    print(f"  decode every frame (no cache): {naive:.2f} s")
    print(f"  cold cache (built now):        {cold:.2f} s ({cold / naive:.2f}x)")
    print(f"  warm cache:                    {warm:.3f} s ({naive / warm:.0f}x faster)")
    print(f"  warm, end to end (python -m pvrec info --json): {e2e:.2f} s (target < 1 s)")
    naive = timed(path, cache=False, what=metrics_csv)
    warm = min(timed(path, cache=True, what=metrics_csv) for _ in range(3))
    print(f"pvrec metrics: decode every frame {naive:.2f} s, warm cache {warm:.3f} s "
          f"({naive / warm:.0f}x faster)")
    if args.cgroup_recording:
        cgroup_tally_times(Path(args.cgroup_recording))


def cgroup_tally_times(path: Path) -> None:
    from pvrec.render.data import cgroup_tally
    from pvrec.sources import RecordingSource

    def tally(rec) -> None:
        src = RecordingSource(rec.path)
        cgroup_tally(src, 0, len(src) - 1)

    naive = min(timed(path, cache=False, what=tally) for _ in range(3))
    summarize(open_recording(path))  # fills the cache, as `pvrec info` does
    warm = min(timed(path, cache=True, what=tally) for _ in range(3))
    print(f"--color-by cgroup tally, {path.name} ({len(open_recording(path))} frames): "
          f"key frames read {naive:.2f} s, warm cache {warm:.3f} s ({naive / warm:.0f}x faster)")


if __name__ == "__main__":
    main()
