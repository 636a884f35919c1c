"""Block benchmark: block states, `pvrec blockers` end to end, and the block view's frames/s.

    python bench/bench_blocks.py                   # the cached 24 GiB bench recording
    python bench/bench_blocks.py --recording RUN   # another one

1. Block states of the last frame (12,288 blocks of the 24 GiB VM): milliseconds per frame.
2. `pvrec blockers RUN` as a user runs it (a child process, interpreter start included): the
   target is under 1 s.
3. The same recording rendered to MP4 at default settings (each frame once: --every 1) in the
   page view and in the block view, alternating, `--rounds` times each (one run, side by side:
   this machine is shared), each render a child process: frames/s of each by the wall clock
   and by the CPU time of the render and its ffmpeg (steadier when other work shares the
   cores), and their ratio; the target is block view >= page view.
4. Where it differs: pvrec's own drawing of a frame (runs to finished picture, no decoding,
   no encoder) in each view, best of 25, as frames/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_render import make_recording  # noqa: E402
from pvrec.blocks import frame_blocks  # noqa: E402
from pvrec.recording.reader import open_recording  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recording", help="a recording (default: the cached 24 GiB bench one)")
    ap.add_argument("--frames", type=int, default=20, help="frames of each render")
    ap.add_argument("--rounds", type=int, default=3, help="alternating page/block renders")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "pvrec-bench"))
    args = ap.parse_args()
    if args.recording:
        rec_path = Path(args.recording)
    else:
        Path(args.cache).mkdir(parents=True, exist_ok=True)
        rec_path = make_recording(Path(args.cache) / "pvrec-bench-24g", args.frames)
    rec = open_recording(rec_path)
    n = min(args.frames, len(rec))
    runs = rec.read_runs(len(rec) - 1)
    costs = []
    for _ in range(20):
        t = time.perf_counter()
        counts = frame_blocks(runs, rec.header)
        counts.states()
        costs.append(time.perf_counter() - t)
    print(f"recording: {rec_path} ({rec.header.pfn_count:,} PFNs, {len(rec)} frames)")
    print(f"block states of the last frame: {len(counts):,} blocks from "
          f"{runs.lengths.size:,} runs in {statistics.median(costs) * 1000:.1f} ms (median of 20)")

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    walls = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pvrec", "blockers", str(rec_path)], env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
    print(f"pvrec blockers RUN (last frame, a new process): {min(walls):.2f} s best of 3 "
          f"(target < 1 s)")

    views = ("map", "blocks")
    wall: dict[str, list[float]] = {v: [] for v in views}
    cpu: dict[str, list[float]] = {v: [] for v in views}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.rounds):
            for view in views:
                w, c = render_child(rec_path, n, view, Path(d) / f"{view}.mp4", env)
                wall[view].append(n / w)
                cpu[view].append(n / c)
    print(f"render to MP4, {n} frames each once, default settings, median of {args.rounds} "
          f"alternating rounds (frames/s by wall clock, by CPU time):")
    for view in views:
        print(f"  {view:6} view  {statistics.median(wall[view]):6.2f} frames/s wall  "
              f"{statistics.median(cpu[view]):6.2f} frames/s CPU")
    ratio_w = statistics.median(wall["blocks"]) / statistics.median(wall["map"])
    ratio_c = statistics.median(cpu["blocks"]) / statistics.median(cpu["map"])
    print(f"  block view / page view: {ratio_w:.2f}x wall, {ratio_c:.2f}x CPU (target >= 1)")
    rate = drawing_rates(rec_path)
    print(f"drawing alone (runs -> picture, the last frame, best of 25): page view "
          f"{rate['pages']:.0f} frames/s, block view {rate['blocks']:.0f} frames/s "
          f"({rate['blocks'] / rate['pages']:.2f}x)")


def drawing_rates(rec_path: Path) -> dict[str, float]:
    """Frames/s of drawing the last frame alone (runs -> picture), best of 25, in each view."""
    from pvrec.classes import ValueClassifier, default_scheme
    from pvrec.render.blockview import BlockScheme, block_view
    from pvrec.render.compose import Options, Picture
    from pvrec.render.fit import choose_layout
    from pvrec.sources import RecordingSource

    src = RecordingSource(rec_path)
    runs = src.read_runs(len(src) - 1)
    page_scheme, page_opts = default_scheme(), Options()
    page_lay = choose_layout(src.header, page_scheme, page_opts, ram_pages=src.header.ram_pages)
    block_opts = [Options()]
    [cells], [block_lay], block_picture = block_view([src], BlockScheme(), block_opts,
                                                     (1920, 1080), "tiles", None, 0)
    sides = {"pages": (page_lay, page_scheme, src.header, page_opts, lambda r: r, Picture),
             "blocks": (block_lay, BlockScheme(), cells.header, block_opts[0], cells.cells,
                        block_picture)}
    out = {}
    for view, (lay, scheme, header, opts, to_cells, picture) in sides.items():
        pic = picture(lay, scheme, header, opts, ram_pages=header.ram_pages)
        classify = ValueClassifier(scheme)
        best = float("inf")
        for _ in range(25):
            t = time.perf_counter()
            r = to_cells(runs)
            c = lay.class_runs(classify(r.values), r.lengths)
            pic.frame(lay.pixel_classes(c), t=0.0, index=0, pages=lay.class_pages(c, len(scheme)))
            best = min(best, time.perf_counter() - t)
        out[view] = 1 / best
    return out


def render_child(rec_path: Path, n: int, view: str, out: Path, env: dict) -> tuple[float, float]:
    """(wall s, CPU s of the render and its ffmpeg) of `pvrec render` in a child process."""
    before = os.times()
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pvrec", "render", str(rec_path), "-o", str(out),
                    "-f", "--every", "1", "--end", str(n - 1), "--view", view], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = os.times()
    return wall, (after.children_user - before.children_user
                  + after.children_system - before.children_system)


if __name__ == "__main__":
    main()
