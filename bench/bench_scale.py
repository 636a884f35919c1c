"""Scale benchmark: recorder and renderer cost and memory from 1 GiB to 1 TiB of RAM.

    python bench/bench_scale.py --sizes 1,16,256,1024 [--workdir /var/tmp]

For each size, a synthetic machine whose memory is the real after-kbuild fixture tiled to
that many pages (so its runs are as dense as a busy 24 GiB VM: ~300,000 runs per 6.5 M pages,
12 M runs at 1 TiB), several RAM ranges and two NUMA nodes:

1. recorder: `pvrec record --kpageflags DUMP` while a thread keeps changing 1% of the dump,
   for a few frames; its peak RSS (target < 512 MiB at 1 TiB) and seconds per sample.
2. renderer (when pvrec.render is there): a recording of the same machine written with the
   recording writer (2-node header, holes), rendered to MP4 at default settings; frames/s
   (target >= 1 at 1 TiB) and peak RSS (target < 2 GiB).

Needs ~2.2 GiB of disk for the 1 TiB dump; nothing else is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GIB_PAGES = 262144
# Peak RSS from VmHWM: ru_maxrss would include the parent's memory at fork (kept across exec).
RSS = ("import sys, pvrec.cli; rc = pvrec.cli.main(sys.argv[1:]); "
       "s = open('/proc/self/status').read(); "
       "print(s.split('VmHWM:')[1].split()[0], file=sys.stderr); sys.exit(rc)")


def base_flags() -> np.ndarray:
    sys.path.insert(0, str(REPO))
    from tests.helpers import load_fixture

    return load_fixture("after-kbuild")


def machine_flags(base: np.ndarray, pages: int) -> np.ndarray:
    """The fixture's Normal zone (from 4 GiB, where the build left its pages) first, tiled."""
    return np.resize(np.roll(base, -0x100000), pages)


def mutate(flags: np.ndarray, rng: np.random.Generator, share: float = 0.01) -> None:
    """Change about `share` of the pages, in stretches of up to 2 MiB, as a workload would."""
    budget = int(flags.size * share)
    while budget > 0:
        n = int(rng.integers(1, 512))
        s = int(rng.integers(0, flags.size - n))
        flags[s:s + n] ^= np.uint64(1 << int(rng.choice([2, 4, 5, 10, 12])))
        budget -= n


def header(pages: int) -> dict:
    """Two nodes, a hole below 4 GiB and one between the nodes (when the machine is big enough)."""
    half = pages // 2
    hole = min(GIB_PAGES // 4, pages // 16)
    ram = [[1, 0xA0], [0x100, half - hole], [half, pages]]
    return {"pfn_count": pages, "page_size": 4096, "hpage_pages": 512, "ram_ranges": ram,
            "zones": [{"node": 0, "name": "Normal", "start_pfn": 0, "end_pfn": half},
                      {"node": 1, "name": "Normal", "start_pfn": half, "end_pfn": pages}],
            "nodes": [{"node": 0, "ranges": ram[:2]}, {"node": 1, "ranges": ram[2:]}],
            "hostname": "synthetic", "kernel": "bench", "interval": 1.0,
            "command": ["bench"], "layout_source": "synthetic"}


def run_measured(args: list[str]) -> tuple[float, int, str]:
    """Run pvrec ARGS in a child; (seconds, peak RSS in KiB, stderr)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-c", RSS, *args], capture_output=True, text=True,
                       env=env)
    dt = time.monotonic() - t
    lines = r.stderr.strip().splitlines()
    if r.returncode != 0:
        raise SystemExit(f"pvrec {' '.join(args)} failed: {r.stderr}")
    return dt, int(lines[-1]), "\n".join(lines[:-1])


def bench_recorder(flags: np.ndarray, work: Path, frames: int) -> dict:
    dump = work / "machine.kpf"
    flags.tofile(dump)
    stop = threading.Event()

    def churn():
        rng = np.random.default_rng(7)
        with open(dump, "r+b") as f:
            while not stop.is_set():
                mutate(flags, rng, 0.002)
                f.seek(0)
                flags.tofile(f)
                stop.wait(0.5)

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    out = work / "rec"
    try:
        dt, rss, _ = run_measured(["record", "-q", "--kpageflags", str(dump), "--interval",
                                   "1s", "--duration", f"{frames}s", "-o", str(out)])
    finally:
        stop.set()
        t.join()
    index = [json.loads(line) for line in (out / "frames.jsonl").read_text().splitlines()]
    dump.unlink()
    return {"rss_mib": rss / 1024, "frames": len(index),
            "sample_s": float(np.mean([i["sample_s"] for i in index])),
            "kib_per_frame": float(np.mean([i["bytes"] for i in index])) / 1024}


def write_recording(rec: Path, flags: np.ndarray, frames: int) -> None:
    """A recording of the machine: frames of `flags`, 1% of the pages changing each (flags is
    changed in place), a key frame every 30: as the figures in docs/rendering.md were measured,
    and so render --jobs has a key frame to cut at inside 60 frames (the writer's default is 60)."""
    from pvrec.recording.writer import Writer

    w = Writer(rec, header(flags.size), force=True, key_every=30)
    rng = np.random.default_rng(3)
    for i in range(frames):
        w.add_frame(flags, float(i))
        mutate(flags, rng, 0.01)
    w.close({"reason": "bench"})


def bench_renderer(flags: np.ndarray, work: Path, frames: int) -> dict | None:
    try:
        import pvrec.render.pipeline  # noqa: F401
    except ImportError:
        return None
    rec = work / "synthetic"
    write_recording(rec, flags, frames)
    dt, rss, _ = run_measured(["render", "-q", "--every", "1", str(rec), "-o",
                               str(work / "out.mp4")])
    return {"rss_mib": rss / 1024, "fps": frames / dt, "seconds": dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,16,256,1024", help="GiB, comma separated")
    ap.add_argument("--frames", type=int, default=4, help="frames per measurement")
    ap.add_argument("--workdir", default=None, help="where the dumps go (default: temp dir)")
    ap.add_argument("--skip-render", action="store_true")
    args = ap.parse_args()
    base = base_flags()
    print(f"{'GiB':>6} {'PFNs':>12} {'runs':>11} | {'rec RSS MiB':>11} {'s/sample':>8} "
          f"{'KiB/frame':>9} | {'render fps':>10} {'render RSS MiB':>14}")
    for size in (int(x) for x in args.sizes.split(",")):
        pages = size * GIB_PAGES
        flags = machine_flags(base, pages)
        runs = int(np.count_nonzero(flags[1:] != flags[:-1])) + 1
        with tempfile.TemporaryDirectory(dir=args.workdir) as d:
            rec = bench_recorder(flags, Path(d), args.frames)
            ren = None if args.skip_render else bench_renderer(flags, Path(d), args.frames * 3)
        line = (f"{size:>6} {pages:>12,} {runs:>11,} | {rec['rss_mib']:>11.0f} "
                f"{rec['sample_s']:>8.2f} {rec['kib_per_frame']:>9.0f} | ")
        line += (f"{ren['fps']:>10.2f} {ren['rss_mib']:>14.0f}" if ren else f"{'-':>10} {'-':>14}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
