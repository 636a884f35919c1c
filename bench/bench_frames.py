"""Frame encoding benchmark (issue 13 part 2): bytes per frame of format versions 1, 2 and 3
over np.savez_compressed(flags) of the same frames, the encoder's CPU of each, and a sample's
CPU over the raw read.

    python bench/bench_frames.py [RUN ...] [--naive-every 7]
    sudo python bench/bench_frames.py --sample-rounds 12        # also the sampler on live memory

1. Bytes: each recording is recoded (pvrec.recording.recode) to the versions it is not in, so
   v1, v2 and v3 are the same frames with the same key frames; "v3 key N" is v3 recoded with
   a key frame every DEFAULT_KEY_EVERY (the writer's default, against the recording's own); naive is savez_compressed of every --naive-every'th frame's
   flags (0.5 s a frame at 24 GiB), its mean per frame the denominator. With no recording, a
   synthetic one is made of the fixtures (../shared/fixtures/*.kpf.xz, or --fixtures): each
   dump, then a few frames where ~2% of its runs changed a flag.
2. Encoder CPU: the frames of the first recording written alternately, frame by frame, by a
   Writer of each version (process CPU of add_frame: runs -> frame file).
3. Sample CPU (--sample-rounds, root): alternately the raw read of /proc/kpageflags into a
   preallocated array (the floor), a version-2 and a version-3 sample (read + encode +
   write), as bench_jobs does. Targets: v3 bytes <= 0.05 (build loop), <= 0.03 (demo) of
   naive; sample CPU <= 1.05x the raw read.
4. Seek (--seeks N): read_frame of N frames picked at random, from a fresh reader each (a
   seek decodes from the key frame before it), in the recording as it is and recoded with a
   key frame every DEFAULT_KEY_EVERY, alternately.
"""

from __future__ import annotations

import argparse
import glob
import io
import lzma
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pvrec.recording.format import DEFAULT_KEY_EVERY, FORMAT_VERSION
from pvrec.recording.reader import open_recording
from pvrec.recording.recode import recode
from pvrec.recording.writer import Writer

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def synthetic(out: Path, fixtures: str, per_dump: int = 4) -> Path:
    """A recording of the fixture dumps, each followed by frames that change ~2% of its runs."""
    rng = np.random.default_rng(13)
    dumps = sorted(glob.glob(os.path.join(fixtures, "*.kpf.xz")))
    if not dumps:
        raise SystemExit(f"no recording given and no fixtures in {fixtures}")
    w = None
    for path in dumps:
        flags = np.frombuffer(lzma.decompress(Path(path).read_bytes()), "<u8").copy()
        w = w or Writer(out, {"pfn_count": flags.size}, format_version=1)
        starts = np.flatnonzero(np.diff(flags, prepend=np.uint64(1)) != 0)
        for _ in range(per_dump):
            w.add_frame(flags, w.frames * 1.0)
            pick = rng.choice(starts, size=starts.size // 50, replace=False)
            for s in pick:  # referenced / active / a buddy page taken
                flags[s:s + int(rng.integers(1, 8))] ^= np.uint64(1 << int(rng.choice([2, 6, 10])))
    w.close({"reason": "synthetic"})
    return out


def frame_bytes(run: Path) -> list[int]:
    return [i.context["bytes"] for i in open_recording(run).frames]


def naive_bytes(run: Path, every: int) -> float:
    sizes = []
    for _info, flags in open_recording(run).iter_frames(step=every):
        b = io.BytesIO()
        np.savez_compressed(b, flags=flags)
        sizes.append(len(b.getvalue()))
    return statistics.fmean(sizes)


def bytes_ratios(run: Path, scratch: Path, every: int) -> dict[str, Path]:
    version = open_recording(run).header.format_version
    runs = {f"v{v}": run if v == version else scratch / f"{run.name}-v{v}"
            for v in range(1, FORMAT_VERSION + 1)}
    for v in range(1, FORMAT_VERSION + 1):
        if v != version:
            recode(run, runs[f"v{v}"], version=v)
    keyed = f"v{FORMAT_VERSION} key {DEFAULT_KEY_EVERY}"
    runs[keyed] = scratch / f"{run.name}-v{FORMAT_VERSION}-k{DEFAULT_KEY_EVERY}"
    recode(run, runs[keyed], key_every=DEFAULT_KEY_EVERY)
    naive = naive_bytes(runs["v1"], every)
    rec = open_recording(runs["v1"])
    print(f"{run}: {len(rec)} frames, {rec.pfn_count:,} pages, key_every {rec.header.key_every}")
    print(f"  naive savez_compressed:  {naive / 1024:8.1f} KiB/frame (every {every}th frame)")
    for name, path in runs.items():
        infos = open_recording(path).frames
        b = [i.context["bytes"] for i in infos]
        key = [i.context["bytes"] for i in infos if i.kind == "key"]
        delta = [i.context["bytes"] for i in infos if i.kind == "delta"]
        print(f"  {name:9s} {statistics.fmean(b) / 1024:8.1f} KiB/frame = "
              f"{statistics.fmean(b) / naive:.4f} of naive ({len(key)} key "
              f"{statistics.fmean(key) / 1024 if key else 0:.1f} KiB, delta "
              f"{statistics.fmean(delta) / 1024 if delta else 0:.1f} KiB; key share "
              f"{sum(key) / sum(b):.2f}; {sum(b) / sum(frame_bytes(runs['v2'])):.3f}x v2)")
    return runs


def encoder_cpu(run: Path, scratch: Path, frames: int) -> None:
    rec = open_recording(run)
    writers = {v: Writer(scratch / f"enc-v{v}", {"pfn_count": rec.pfn_count},
                         channels=rec.channels, format_version=v)
               for v in range(1, FORMAT_VERSION + 1)}
    cpu: dict[int, list[float]] = {v: [] for v in writers}
    kinds = []
    for info, frame in rec.iter_decoded(stop=frames):
        kinds.append(info.kind)
        for v, w in writers.items():
            c = time.process_time()
            w.add_frame(frame.flags, info.t, cgroup=frame.cgroup, workload=frame.workload,
                        key=info.kind == "key")
            cpu[v].append(time.process_time() - c)
    means = {v: statistics.fmean(c) for v, c in cpu.items()}
    print(f"encoder CPU ({len(cpu[1])} frames of {run.name}, alternately), ms a frame: " + ", ".join(
        f"v{v} {m * 1000:.1f} (median {statistics.median(cpu[v]) * 1000:.1f})"
        for v, m in means.items()) + f"; v3/v2 {means[3] / means[2]:.3f}x")
    for kind in ("key", "delta"):
        k = {v: [x for x, k in zip(c, kinds, strict=True) if k == kind] for v, c in cpu.items()}
        if k[1]:
            print(f"  {kind} frames ({len(k[1])}): " + ", ".join(
                f"v{v} {statistics.fmean(x) * 1000:.1f} ms" for v, x in k.items())
                + f"; v3/v2 {statistics.fmean(k[3]) / statistics.fmean(k[2]):.3f}x")


def seeks(runs: dict[str, Path], count: int) -> None:
    """Wall time of read_frame at random frames, the recording's key frames against
    DEFAULT_KEY_EVERY's, alternately."""
    names = [f"v{FORMAT_VERSION}", f"v{FORMAT_VERSION} key {DEFAULT_KEY_EVERY}"]
    frames = len(open_recording(runs[names[0]]))
    rng = np.random.default_rng(1)
    wall: dict[str, list[float]] = {n: [] for n in names}
    for n in rng.integers(0, frames, count).tolist():
        for name in names:
            rec = open_recording(runs[name])
            t = time.perf_counter()
            rec.read_frame(n)
            wall[name].append(time.perf_counter() - t)
    print(f"seek ({count} random frames, fresh reader each): " + ", ".join(
        f"{name} (key_every {open_recording(runs[name]).header.key_every}) mean "
        f"{statistics.fmean(w) * 1000:.0f} ms, max {max(w) * 1000:.0f} ms"
        for name, w in wall.items()))


def sample_cpu(rounds: int, scratch: Path) -> None:
    from pvrec.kernel.kpageflags import KPAGEFLAGS, PageFlagsFile
    from pvrec.recorder.sampler import Sampler

    with PageFlagsFile(KPAGEFLAGS) as f:
        n = f.probe_pages(0)
        buf = np.empty(n, dtype=np.uint64)
        samplers = {v: Sampler(f, n, Writer(scratch / f"live-v{v}", {"pfn_count": n},
                                            format_version=v), time.monotonic(),
                               with_context=True) for v in (2, 3)}
        raw, ours = [], {2: [], 3: []}
        for _ in range(rounds):
            c = time.process_time()
            f.read_into(buf, 0)
            raw.append(time.process_time() - c)
            for v, s in samplers.items():
                c = time.process_time()
                s.take(time.monotonic())
                ours[v].append(time.process_time() - c)
    r = statistics.fmean(raw)
    print(f"sample CPU on live memory ({rounds} rounds, {n:,} pages): raw read {r * 1000:.1f} ms"
          f" (median {statistics.median(raw) * 1000:.1f})")
    for v in (2, 3):
        o = statistics.fmean(ours[v])
        print(f"  v{v} sample: {o * 1000:7.1f} ms = {o / r:.3f}x the raw read (medians "
              f"{statistics.median(ours[v]) / statistics.median(raw):.3f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recordings", nargs="*", type=Path)
    ap.add_argument("--naive-every", type=int, default=1, metavar="N")
    ap.add_argument("--encoder-frames", type=int, default=60, metavar="N")
    ap.add_argument("--sample-rounds", type=int, default=0, metavar="N")
    ap.add_argument("--seeks", type=int, default=0, metavar="N")
    ap.add_argument("--fixtures", default=str(FIXTURES))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        scratch = Path(d)
        runs = args.recordings or [synthetic(scratch / "synthetic", args.fixtures)]
        recoded = [bytes_ratios(run, scratch, args.naive_every) for run in runs]
        encoder_cpu(runs[0], scratch, args.encoder_frames)
        if args.seeks:
            seeks(recoded[0], args.seeks)
        if args.sample_rounds:
            sample_cpu(args.sample_rounds, scratch)


if __name__ == "__main__":
    main()
