"""Frame encoding benchmark (issue 13 part 2): bytes per frame of format version 1 and 2 over
np.savez_compressed(flags) of the same frames, the encoder's CPU v2 over v1, and a sample's
CPU over the raw read.

    python bench/bench_frames.py [RUN ...] [--naive-every 7]
    sudo python bench/bench_frames.py --sample-rounds 12        # also the sampler on live memory

1. Bytes: each recording is recoded (pvrec.recording.recode) to the version it is not in, so
   v1 and v2 are the same frames; naive is savez_compressed of every --naive-every'th frame's
   flags (0.5 s a frame at 24 GiB), its mean per frame the denominator. With no recording, a
   synthetic one is made of the fixtures (../shared/fixtures/*.kpf.xz, or --fixtures): each
   dump, then a few frames where ~2% of its runs changed a flag.
2. Encoder CPU: the frames of the first recording written alternately, frame by frame, by a
   version-1 and a version-2 Writer (process CPU of add_frame: runs -> frame file).
3. Sample CPU (--sample-rounds, root): alternately the raw read of /proc/kpageflags into a
   preallocated array (the floor), a version-1 sample and a version-2 sample (read + encode +
   write), as bench_jobs does. Targets: v2 bytes <= 0.05 (build loop), <= 0.03 (demo) of
   naive; sample CPU <= 1.05x the raw read.
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


def bytes_ratios(run: Path, scratch: Path, every: int) -> tuple[Path, Path]:
    version = open_recording(run).header.format_version
    other = scratch / f"{run.name}-v{3 - version}"
    recode(run, other, version=3 - version)
    v1, v2 = (run, other) if version == 1 else (other, run)
    b1, b2 = frame_bytes(v1), frame_bytes(v2)
    kinds = [i.kind for i in open_recording(v1).frames]
    naive = naive_bytes(v1, every)
    print(f"{run}: {len(b1)} frames ({kinds.count('key')} key), "
          f"{open_recording(v1).pfn_count:,} pages")
    print(f"  naive savez_compressed:  {naive / 1024:8.1f} KiB/frame (every {every}th frame)")
    for name, b in (("v1", b1), ("v2", b2)):
        key = [x for x, k in zip(b, kinds, strict=True) if k == "key"]
        delta = [x for x, k in zip(b, kinds, strict=True) if k == "delta"]
        print(f"  {name}: {statistics.fmean(b) / 1024:8.1f} KiB/frame = {statistics.fmean(b) / naive:.4f}"
              f" of naive (key {statistics.fmean(key) / 1024 if key else 0:.1f} KiB, delta "
              f"{statistics.fmean(delta) / 1024 if delta else 0:.1f} KiB; key share "
              f"{sum(key) / sum(b):.2f})")
    print(f"  v2 / v1 bytes:           {sum(b2) / sum(b1):8.3f}")
    return v1, v2


def encoder_cpu(run: Path, scratch: Path, frames: int) -> None:
    rec = open_recording(run)
    writers = {v: Writer(scratch / f"enc-v{v}", {"pfn_count": rec.pfn_count},
                         channels=rec.channels, format_version=v) for v in (1, 2)}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    kinds = []
    for info, frame in rec.iter_decoded(stop=frames):
        kinds.append(info.kind)
        for v, w in writers.items():
            c = time.process_time()
            w.add_frame(frame.flags, info.t, cgroup=frame.cgroup, workload=frame.workload,
                        key=info.kind == "key")
            cpu[v].append(time.process_time() - c)
    m1, m2 = statistics.fmean(cpu[1]), statistics.fmean(cpu[2])
    print(f"encoder CPU ({len(cpu[1])} frames of {run.name}, alternately): v1 {m1 * 1000:.1f} ms,"
          f" v2 {m2 * 1000:.1f} ms a frame (median {statistics.median(cpu[1]) * 1000:.1f} / "
          f"{statistics.median(cpu[2]) * 1000:.1f}); v2/v1 {m2 / m1:.3f}x")
    for kind in ("key", "delta"):
        k1, k2 = ([c for c, k in zip(cpu[v], kinds, strict=True) if k == kind] for v in (1, 2))
        if k1:
            print(f"  {kind} frames ({len(k1)}): v1 {statistics.fmean(k1) * 1000:.1f} ms, v2 "
                  f"{statistics.fmean(k2) * 1000:.1f} ms; v2/v1 "
                  f"{statistics.fmean(k2) / statistics.fmean(k1):.3f}x")


def sample_cpu(rounds: int, scratch: Path) -> None:
    from pvrec.kernel.kpageflags import KPAGEFLAGS, PageFlagsFile
    from pvrec.recorder.sampler import Sampler

    with PageFlagsFile(KPAGEFLAGS) as f:
        n = f.probe_pages(0)
        buf = np.empty(n, dtype=np.uint64)
        samplers = {v: Sampler(f, n, Writer(scratch / f"live-v{v}", {"pfn_count": n},
                                            format_version=v), time.monotonic(),
                               with_context=True) for v in (1, 2)}
        raw, ours = [], {1: [], 2: []}
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
    for v in (1, 2):
        o = statistics.fmean(ours[v])
        print(f"  v{v} sample: {o * 1000:7.1f} ms = {o / r:.3f}x the raw read (medians "
              f"{statistics.median(ours[v]) / statistics.median(raw):.3f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recordings", nargs="*", type=Path)
    ap.add_argument("--naive-every", type=int, default=1, metavar="N")
    ap.add_argument("--encoder-frames", type=int, default=60, metavar="N")
    ap.add_argument("--sample-rounds", type=int, default=0, metavar="N")
    ap.add_argument("--fixtures", default=str(FIXTURES))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        scratch = Path(d)
        runs = args.recordings or [synthetic(scratch / "synthetic", args.fixtures)]
        for run in runs:
            bytes_ratios(run, scratch, args.naive_every)
        encoder_cpu(runs[0], scratch, args.encoder_frames)
        if args.sample_rounds:
            sample_cpu(args.sample_rounds, scratch)


if __name__ == "__main__":
    main()
