"""Renderer benchmark: render speed over a bare ffmpeg encode, frames/s at 24 GiB, GIF size, RSS.

    python bench/bench_render.py                      # everything, figures side by side
    python bench/bench_render.py --frames 100 --profile

1. A 24 GiB recording (6,553,600 PFNs a frame, the real layout of the test VM) is written once
   from the real fixtures (../shared/fixtures): each frame moves 1-5% of the pages a step from
   one fixture's state towards the next, and flips the referenced/idle bits of some pages, as a
   kernel build would. It is cached in $TMPDIR/pvrec-bench-24g.
2. Render it to MP4 at default settings: frames/s, and where the time goes (each stage timed
   alone over the same frames; --profile adds cProfile's top functions).
3. Throughput ratio: the same pixel frames (upscaled, palette trailer and all) made in advance
   and piped to the same encoder with the same settings, against the full render. Measured side
   by side in one run, for the 24 GiB map and for a 1 GiB map.
4. GIF of a 60-frame 1 GiB-map recording at default settings: its size.
5. Peak RSS of a 24 GiB render (child process) at 30 and at 120 frames: flat means streamed.
6. The pre-pass over the frames that decides what collapses (and `--region changed`): its own
   time per frame, and a render with collapse (the default) against --no-collapse.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pvrec import flags as F  # noqa: E402
from pvrec.recording.reader import open_recording  # noqa: E402
from pvrec.render.pipeline import render_recording  # noqa: E402
from tests import helpers  # noqa: E402
from tests.helpers import FIXTURES, fixture_names, load_fixture  # noqa: E402

VM_HEADER = {
    "page_size": 4096, "hpage_pages": 512,
    "ram_ranges": [[1, 0xA0], [0x100, 0xC0000], [0x100000, 0x640000]],
    "zones": [{"node": 0, "name": "DMA", "start_pfn": 1, "end_pfn": 0x1000},
              {"node": 0, "name": "DMA32", "start_pfn": 0x1000, "end_pfn": 0x100000},
              {"node": 0, "name": "Normal", "start_pfn": 0x100000, "end_pfn": 0x640000}],
    "nodes": [{"node": 0, "ranges": [[1, 0xA0], [0x100, 0xC0000], [0x100000, 0x640000]]}],
    "hostname": "bench-vm", "kernel": "6.1.0-bench", "command": ["make", "-j2", "bzImage"],
    "interval": 1.0, "start_wall": "2026-11-26T17:00:00+00:00",
}


def load_fixtures() -> list[np.ndarray]:
    names = fixture_names()
    if not names:
        sys.exit(f"bench_render: no fixtures in {FIXTURES}")
    return [load_fixture(name) for name in names]


def make_recording(path: Path, frames: int, pages: int | None = None, seed: int = 0) -> Path:
    """A recording that wanders between the fixtures' states, 1-5% of pages per frame."""
    if (path / "end.json").exists() and len(open_recording(path)) >= frames:
        return path
    shutil.rmtree(path, ignore_errors=True)
    fx = load_fixtures()
    if pages is not None:  # a smaller machine: a slice of the Normal zone
        fx = [f[0x100000:0x100000 + pages].copy() for f in fx]
        header = {**VM_HEADER, "ram_ranges": [[0, pages]], "nodes": [],
                  "zones": [{"node": 0, "name": "Normal", "start_pfn": 0, "end_pfn": pages}]}
    else:
        header = VM_HEADER
    return helpers.make_recording(path, wander(fx, frames, seed, path.name), header=header,
                                  end={"reason": "bench"})


def wander(fx: list[np.ndarray], frames: int, seed: int, name: str):
    """Frames moving from one fixture's state towards the next, 1-5% of pages per frame."""
    n = fx[0].size
    rng = np.random.default_rng(seed)
    cur = fx[0].copy()
    target = 1
    noise = np.uint64(F.bit(F.REFERENCED) | F.bit(F.IDLE))
    t0 = time.perf_counter()
    for i in range(frames):
        goal = fx[target]
        diff = np.flatnonzero(cur != goal)
        if diff.size < n // 200:
            target = (target + 1) % len(fx)
            goal = fx[target]
            diff = np.flatnonzero(cur != goal)
        want = int(n * rng.uniform(0.01, 0.05))
        # Segments that start on a differing page, taken until about `want` pages changed.
        starts = diff[rng.integers(diff.size, size=4096)] if diff.size else diff
        ends = np.minimum(n, starts + rng.integers(64, 4096, size=starts.size))
        differs = np.concatenate(([0], np.cumsum(cur != goal)))
        gain = np.cumsum(differs[ends] - differs[starts])
        for a, b in zip(starts[: int(np.searchsorted(gain, want)) + 1],
                        ends[: int(np.searchsorted(gain, want)) + 1], strict=True):
            cur[a:b] = goal[a:b]
        lru = np.flatnonzero((cur[: n - 512 : 512] & np.uint64(F.bit(F.LRU))) != 0) * 512
        for p in rng.choice(lru, size=min(lru.size, 64), replace=False) if lru.size else []:
            sl = slice(int(p), int(p) + int(rng.integers(8, 512)))
            cur[sl] ^= np.where((cur[sl] & np.uint64(F.bit(F.LRU))) != 0, noise, np.uint64(0))
        yield cur
        if i % 20 == 0:
            print(f"  writing bench recording {name}: frame {i}/{frames} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


def pipeline_stages(rec_path: Path, frames: int) -> dict[str, float]:
    """Seconds per frame of each stage alone, over the same frames (cumulative stages)."""
    from pvrec.classes import ValueClassifier, default_scheme
    from pvrec.render.compose import Options, Picture
    from pvrec.render.encoders import upscale
    from pvrec.render.fit import choose_layout
    from pvrec.render.raster import MapLayout
    from pvrec.sources import RecordingSource

    src = RecordingSource(rec_path)
    header = src.header
    scheme = default_scheme()
    opts = Options()
    ram = MapLayout.build(header).ram_pages
    lay = choose_layout(header, scheme, opts, ram_pages=ram)
    pic = Picture(lay, scheme, header, opts, frame_count=len(src), ram_pages=ram)
    vc = ValueClassifier(scheme)
    w, h = pic.size
    big = np.empty((2 * h, 2 * w), np.uint8)
    out: dict[str, float] = {}
    stages = ["decode", "classify", "pixels", "compose", "upscale"]
    for upto in range(len(stages)):
        t = time.perf_counter()
        for _pos, _t, runs in src.iter_runs(0, frames, 1):
            if upto >= 1:
                cruns = lay.class_runs(vc(runs.values), runs.lengths)
            if upto >= 2:
                px = lay.pixel_classes(cruns)
                pages = lay.class_pages(cruns, len(scheme))
            if upto >= 3:
                img = pic.frame(px, t=_t, index=_pos, pages=pages)
            if upto >= 4:
                upscale(img, 2, big)
        out[stages[upto]] = (time.perf_counter() - t) / frames
    return out


def premade_frames(rec_path: Path, frames: int, kind: str = "mp4") -> tuple[list, tuple, int]:
    """The exact buffers the renderer sends to ffmpeg, made in advance."""
    from pvrec.render.encoders import FfmpegEncoder

    made: list[bytes] = []

    def send(self):
        made.append(bytes(self.buf))
        self.frames += 1

    real = {name: FfmpegEncoder.__dict__[name] for name in ("_start", "_send", "close")}
    FfmpegEncoder._start = lambda self: None  # capture what would go to ffmpeg, start none
    FfmpegEncoder._send = send
    FfmpegEncoder.close = lambda self, cancelled=None: None
    try:
        with tempfile.TemporaryDirectory() as d:
            s = render_recording(rec_path, Path(d) / f"x.{kind}", end=frames - 1, every=1, warn=None)
    finally:
        for name, f in real.items():
            setattr(FfmpegEncoder, name, f)
    return made, (s.width, s.height), s.scale


def bare_encode(frames: list[bytes], size: tuple[int, int], kind: str = "mp4") -> float:
    """Seconds to pipe pre-made frames through the same encoder, same settings, same pipe (the
    renderer's command line, its pipe enlarged alike: the floor is ffmpeg's encode, not the
    pipe's round trips)."""
    from pvrec.render.encoders import DEFAULT_CRF, DEFAULT_PRESET
    from pvrec.render.encoders.ffmpeg import enlarge_pipe, ffmpeg_command

    codec, pix_fmt, params = ("libx264", "yuv420p", [
        "-preset", DEFAULT_PRESET, "-crf", str(DEFAULT_CRF), "-sws_flags", "area",
        "-movflags", "+faststart"]) if kind == "mp4" else ("gif", "pal8", ["-loop", "0"])
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        proc = subprocess.Popen(ffmpeg_command(os.path.join(d, f"bare.{kind}"), size, 10.0,
                                               codec, pix_fmt, params), stdin=subprocess.PIPE)
        enlarge_pipe(proc.stdin.fileno(), len(frames[0]))
        for f in frames:
            proc.stdin.write(f)
        proc.stdin.close()
        if proc.wait():
            raise SystemExit("the bare ffmpeg encode failed")
        return time.perf_counter() - t


def timed_render(rec_path: Path, frames: int, suffix: str = ".mp4", **kw) -> tuple[float, object]:
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        s = render_recording(rec_path, Path(d) / f"out{suffix}", end=frames - 1, every=1, warn=None,
                             **kw)
        return time.perf_counter() - t, s


def prepass_cost(rec_path: Path, frames: int, changes: bool = False) -> float:
    """Seconds per frame of the collapse pre-pass alone (decode, classify, watch; changes:
    also where classes changed, as --region changed)."""
    from pvrec.classes import ValueClassifier, default_scheme
    from pvrec.render.collapse import Watch
    from pvrec.render.raster import MapLayout
    from pvrec.sources import RecordingSource

    src = RecordingSource(rec_path)
    lay = MapLayout.build(src.header, kind="rows", width=src.header.hpage_pages)
    vc, watch = ValueClassifier(default_scheme()), Watch(lay, src.header.hpage_pages, changes)
    t = time.perf_counter()
    for _pos, _t, runs in src.iter_runs(0, frames, 1):
        watch.add(lay.class_runs(vc(runs.values, runs.lengths), runs.lengths))
    return (time.perf_counter() - t) / frames


def peak_rss_of_render(rec_path: Path, frames: int, suffix: str = ".mp4") -> int:
    """Peak RSS (bytes, VmHWM) of a `pvrec render` child over the first `frames` frames.

    VmHWM, not ru_maxrss: a forked child inherits the parent's ru_maxrss."""
    with tempfile.TemporaryDirectory() as d:
        code = ("from pvrec.cli import main;"
                f"rc=main(['render',{str(rec_path)!r},'-o',{d + '/o' + suffix!r},'-q','--end',"
                f"'{frames - 1}']);"
                "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
        return int(r.stdout.split()[-2]) * 1024


def wrong_pages(rec_path: Path, frames: int) -> tuple[float, int]:
    """Share of pages of a default-settings MP4 (map only, so every pixel is pages) whose
    decoded 2x2 block is nearer another class's colour than its own; and the pages checked."""
    import imageio_ffmpeg
    from PIL import Image

    with tempfile.TemporaryDirectory() as d:
        exact_dir = Path(d) / "png"
        exact_dir.mkdir()
        render_recording(rec_path, exact_dir, map_only=True, end=frames - 1, every=1, warn=None)
        render_recording(rec_path, Path(d) / "m.mp4", map_only=True, end=frames - 1, every=1,
                         warn=None)
        gen = imageio_ffmpeg.read_frames(str(Path(d) / "m.mp4"))
        w, h = next(gen)["size"]
        bad = total = 0
        for png, raw in zip(sorted(exact_dir.glob("*.png")), gen, strict=True):
            img = Image.open(png)
            idx = np.asarray(img)
            pal = np.asarray(img.getpalette(), np.float64).reshape(-1, 3)
            used = np.unique(idx)
            got = np.frombuffer(raw, np.uint8).reshape(h, w, 3).astype(np.float64)
            ph, pw = idx.shape
            blk = got[:2 * ph, :2 * pw].reshape(ph, 2, pw, 2, 3).mean(axis=(1, 3))
            d2 = ((blk[:, :, None, :] - pal[used][None, None]) ** 2).sum(-1)
            near = pal[used][np.argmin(d2, axis=2)]
            bad += int((near != pal[idx]).any(-1).sum())
            total += idx.size
    return bad / total, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200, help="frames of the 24 GiB render")
    ap.add_argument("--profile", action="store_true", help="cProfile the 24 GiB render")
    ap.add_argument("--rounds", type=int, default=3, help="alternating render/bare rounds")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "pvrec-bench"),
                    help="where the bench recordings are kept")
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    big = make_recording(cache / "pvrec-bench-24g", args.frames)
    small = make_recording(cache / "pvrec-bench-1g", 60, pages=262144, seed=1)
    n = min(args.frames, len(open_recording(big)))
    print(f"machine: {os.cpu_count()} CPUs; numpy {np.__version__}")

    print("\n== 24 GiB recording (6,553,600 PFNs a frame), MP4 at default settings ==")
    frames, size, _ = premade_frames(big, n)
    renders, bares = [], []
    for _ in range(args.rounds):  # alternate: this machine is shared and noisy
        dt, s = timed_render(big, n)
        renders.append(dt)
        bares.append(bare_encode(frames, size))
    del frames
    dt, bare = statistics.median(renders), statistics.median(bares)
    print(f"render: {n} frames in {dt:.2f} s = {n / dt:.1f} frames/s (target >= 10); "
          f"{s.width}x{s.height}, K={s.pages_per_pixel}, {s.bytes / 1e6:.1f} MB "
          f"(median of {args.rounds}: {', '.join(f'{n / r:.1f}' for r in renders)})")
    print(f"bare ffmpeg (libx264 on the same pre-made frames): {n / bare:.1f} frames/s "
          f"({', '.join(f'{n / b:.1f}' for b in bares)})")
    print(f"throughput ratio render/bare (24 GiB): {bare / dt:.2f} (target >= 0.8)")
    st = pipeline_stages(big, n)
    prev = 0.0
    print("where the Python side's time goes (per frame, each stage alone):")
    for name, v in st.items():
        print(f"  {name:10s} {1000 * (v - prev):6.1f} ms   (cumulative {1000 * v:6.1f} ms)")
        prev = v
    print(f"  ffmpeg/libx264 encodes one frame in {1000 * bare / n:.1f} ms of wall time "
          f"on both cores")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        timed_render(big, n)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(14)

    print("\n== 1 GiB recording (262,144 PFNs, the 512x512 map), 60 frames ==")
    for suffix, kind in ((".mp4", "mp4"), (".gif", "gif")):
        frames, size, _ = premade_frames(small, 60, kind)
        renders, bares = [], []
        for _ in range(args.rounds):
            dt1, s1 = timed_render(small, 60, suffix)
            renders.append(dt1)
            bares.append(bare_encode(frames, size, kind))
        dt1, bare1 = statistics.median(renders), statistics.median(bares)
        extra = f"; {s1.bytes / 1e6:.2f} MB (target < 5 MB)" if kind == "gif" else ""
        print(f"{kind.upper()}: {s1.width}x{s1.height}, render {60 / dt1:.1f} frames/s, bare "
              f"ffmpeg {60 / bare1:.1f} frames/s: ratio {bare1 / dt1:.2f}{extra}")
        del frames

    print("\n== MP4 fidelity at default settings (2x, CRF 20, -sws_flags area) ==")
    for label, path, frames in (("1 GiB map, 60 frames", small, 60),
                                ("24 GiB map (K=8), 20 frames", big, 20)):
        share, pages = wrong_pages(path, frames)
        print(f"{label}: {share:.5%} of {pages:,} page pixels decode nearer another "
              f"class's colour")

    print("\n== the collapse pre-pass (24 GiB recording) ==")
    folded, whole = [], []
    for _ in range(args.rounds):  # alternate: this machine is shared and noisy
        folded.append(timed_render(big, n)[0])
        whole.append(timed_render(big, n, collapse=False)[0])
    pre, changed = prepass_cost(big, n), prepass_cost(big, n, changes=True)
    f, w = statistics.median(folded), statistics.median(whole)
    print(f"pre-pass alone: {1000 * pre:.1f} ms/frame ({1000 * changed:.1f} with --region "
          f"changed); render with collapse {f:.2f} s, --no-collapse {w:.2f} s: ratio {f / w:.2f}")
    with_tl = statistics.median(timed_render(big, n, timeline=True)[0] for _ in range(2))
    without = statistics.median(timed_render(big, n, timeline=True, collapse=False)[0]
                                for _ in range(2))
    print(f"with --timeline (one pass feeds both): collapse {with_tl:.2f} s, --no-collapse "
          f"{without:.2f} s: ratio {with_tl / without:.2f}")

    print("\n== memory (peak RSS, VmHWM, of a render child process) ==")
    a, b = peak_rss_of_render(big, min(20, n)), peak_rss_of_render(big, n)
    print(f"24 GiB frames to MP4: {min(20, n)} frames {a / 2**20:.0f} MiB, {n} frames "
          f"{b / 2**20:.0f} MiB ({b / a:.2f}x: flat = streamed)")
    a, b = peak_rss_of_render(small, 10, ".gif"), peak_rss_of_render(small, 60, ".gif")
    print(f"1 GiB frames to GIF: 10 frames {a / 2**20:.0f} MiB, 60 frames {b / 2**20:.0f} MiB "
          f"({b / a:.2f}x)")


if __name__ == "__main__":
    main()
