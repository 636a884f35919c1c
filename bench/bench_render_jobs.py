"""`pvrec render --jobs N` benchmark: frames/s and peak RSS by jobs, side by side.

    python bench/bench_render_jobs.py --sizes 256,1024 [--frames 60] [--jobs 1,2] [--rounds 3]
                                      [--workdir /var/tmp] [--keep]

For each size, the synthetic machine of bench_scale (the after-kbuild fixture tiled to that
many pages, two nodes, holes) recorded with the writer's default key interval, then rendered
to MP4 at default settings (plus --every 1, so every frame is drawn once), alternately with
each --jobs value, round by round (the machine is noisy); medians. Frames/s is frames over the
whole render's wall time (start-up and pre-pass included: what a user waits for); CPU s/frame
is the CPU of the whole process tree per frame (the parent's; its children's: workers, ffmpeg).
Peak RSS is each process's VmHWM: the parent's and the largest worker's. Prints the ratio to
--jobs 1. Note the load average printed: on a machine whose cores are busy with another
session's work, its processes (one autogroup) get about one core whatever --jobs says.

--keep leaves the recordings in --workdir (named pvrec-bench-jobs-<GiB>) and reuses them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import GIB_PAGES, REPO, base_flags, machine_flags, write_recording  # noqa: E402

# One render in a child: its wall time, the parent's VmHWM, each worker's (from the summary),
# and the CPU seconds of the whole tree (parent, workers and ffmpeg, all joined).
RENDER = """
import os, sys, time
from pvrec.render.pipeline import render_recording
if __name__ == "__main__":
    t = time.monotonic()
    s = render_recording(sys.argv[1], sys.argv[2], every=1, jobs=int(sys.argv[3]))
    dt = time.monotonic() - t
    c = os.times()
    hwm = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
    print(dt, hwm, max(s.worker_rss, default=0), c.user + c.system, c.children_user
          + c.children_system, s.rendered)
"""


def make_recording(rec: Path, gib: int, frames: int) -> None:
    write_recording(rec, machine_flags(base_flags(), gib * GIB_PAGES), frames)


def render(rec: Path, out: Path, jobs: int) -> tuple[float, int, int, float, float]:
    """(seconds, parent peak RSS KiB, largest worker peak RSS KiB, CPU seconds of the parent,
    of its children: the workers and ffmpeg)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", RENDER, str(rec), str(out), str(jobs)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"render --jobs {jobs} failed: {r.stderr}")
    dt, parent, worker, cpu, children, _ = r.stdout.split()
    return float(dt), int(parent), int(worker), float(cpu), float(children)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="256,1024", help="GiB, comma separated")
    ap.add_argument("--frames", type=int, default=60, help="frames of each recording")
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default=None, help="where the recordings go (default: temp)")
    ap.add_argument("--keep", action="store_true", help="keep and reuse the recordings")
    args = ap.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; "
          f"{args.rounds} rounds, medians")
    for gib in (int(x) for x in args.sizes.split(",")):
        work = Path(args.workdir or tempfile.gettempdir())
        rec = work / f"pvrec-bench-jobs-{gib}"
        if not (args.keep and (rec / "end.json").exists()):
            make_recording(rec, gib, args.frames)
        frames = sum(1 for _ in (rec / "frames.jsonl").open())
        got: dict[int, list[tuple[float, int, int]]] = {j: [] for j in jobs}
        with tempfile.TemporaryDirectory(dir=work) as d:
            for _ in range(args.rounds):
                for j in jobs:
                    got[j].append(render(rec, Path(d) / f"out{j}.mp4", j))
        if not args.keep:
            shutil.rmtree(rec)
        base = frames / statistics.median(x[0] for x in got[jobs[0]])
        for j in jobs:
            fps = frames / statistics.median(x[0] for x in got[j])
            parent = max(x[1] for x in got[j]) / 1024
            worker = max(x[2] for x in got[j]) / 1024
            cpu = statistics.median(x[3] for x in got[j]) / frames
            kids = statistics.median(x[4] for x in got[j]) / frames
            print(f"{gib:>5} GiB {frames} frames --jobs {j}: {fps:6.2f} frames/s "
                  f"({fps / base:.2f}x --jobs {jobs[0]}), CPU s/frame {cpu + kids:.2f} (parent "
                  f"{cpu:.2f}, workers and ffmpeg {kids:.2f}); "
                  f"peak RSS parent {parent:.0f} MiB" + (f", worker {worker:.0f} MiB" if worker
                                                        else ""), flush=True)
        print(f"  load average now: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
