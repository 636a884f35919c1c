"""Workload slowdown benchmark: the same CPU-bound workload bare and under `pvrec record` at
several settings, alternated in one run (bare, A, B, bare, bare, C...: each setting is paired
with a bare run next to it, which of the two goes first alternates, and the order of the
settings rotates each round), so a busy machine's drift hits both sides of every ratio alike.

    sudo python bench/bench_overhead.py synthetic                     # CI-sized: ~2 min
    sudo python bench/bench_overhead.py tinyconfig --rounds 3         # the kernel build
    sudo python bench/bench_overhead.py synthetic --setting '--interval 1s' \\
        --setting '--interval 1s @idle'                               # sampler priority
    sudo python bench/bench_overhead.py holes --samples 20            # what skipping holes saves

A setting is `pvrec record` options; a trailing @nice, @batch or @idle lowers the priority
of every pvrec thread (nice 19, SCHED_BATCH, SCHED_IDLE) once the workload has started, from
outside, to measure whether pvrec should offer it. The workload times itself (wall seconds
from its start to its exit), bare and under pvrec alike: pvrec's own frames before and after
the workload are not in the ratio. Each line prints the median of the per-pair ratios (under
pvrec / the bare run next to it), every ratio, and pvrec's own estimate of the slowdown from
its end.json (`overhead.slowdown`), with its CPU share and frame count.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KSRC = Path("/work/kbuild/linux-source-6.1")
PRIORITY = {"@nice": ["renice", "-n", "19", "-p"], "@batch": ["chrt", "-b", "-p", "0"],
            "@idle": ["chrt", "-i", "-p", "0"]}
DEFAULT_SETTINGS = ["", "--max-overhead 10%", "--interval 1s"]  # '': the defaults (5%)


def synthetic_work(units: int) -> None:
    """A fixed amount of pure-Python work (one unit: ~0.1 s on this VM)."""
    x = 0
    for i in range(units * 1_000_000):
        x = (x * 31 + i) & 0xFFFFFFFF


def synthetic_cmd(units: int, procs: int) -> list[str]:
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
            "from bench.bench_overhead import synthetic_work; import multiprocessing as mp; "
            f"ps = [mp.Process(target=synthetic_work, args=({units},)) for _ in range({procs})]; "
            "[p.start() for p in ps]; [p.join() for p in ps]")
    return [sys.executable, "-c", code]


def timed(cmd: list[str], out: Path) -> list[str]:
    """cmd wrapped so that it writes its own wall time to out."""
    code = ("import subprocess, sys, time; t = time.monotonic(); "
            "r = subprocess.call(sys.argv[2:]); "
            "open(sys.argv[1], 'w').write(str(time.monotonic() - t)); sys.exit(r)")
    return [sys.executable, "-c", code, str(out), *cmd]


def lower_priority(pid: int, how: str, frames: Path) -> None:
    """Once the workload has started (frame 0 is in the index), lower every pvrec thread."""
    while not (frames.exists() and frames.read_text().count("\n") >= 1):
        time.sleep(0.02)
    for tid in os.listdir(f"/proc/{pid}/task"):
        subprocess.run(PRIORITY[how] + [tid], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def run_once(cmd: list[str], setting: str | None, prepare: list[str] | None, tmp: Path
             ) -> tuple[float, dict | None]:
    """(the workload's wall seconds, pvrec's end.json or None for a bare run)."""
    if prepare:
        subprocess.run(prepare, check=True, stdout=subprocess.DEVNULL)
    wall = tmp / "wall"
    wall.unlink(missing_ok=True)
    work = timed(cmd, wall)
    if setting is None:
        subprocess.run(work, check=True)
        return float(wall.read_text()), None
    words = shlex.split(setting)
    how = words.pop() if words and words[-1] in PRIORITY else None
    rec = tmp / "rec"
    subprocess.run(["rm", "-rf", str(rec)], check=True)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-m", "pvrec", "record", "-q", "--no-next", "-o",
                          str(rec), *words, "--", *work], env=env, stdout=subprocess.DEVNULL)
    if how:
        lower_priority(p.pid, how, rec / "frames.jsonl")
    if p.wait() != 0:
        raise SystemExit(f"pvrec record {setting} failed with {p.returncode}")
    return float(wall.read_text()), json.loads((rec / "end.json").read_text())


def bench(cmd: list[str], settings: list[str], rounds: int, prepare: list[str] | None,
          warmup: int = 1) -> None:
    ratios: dict[str, list[float]] = {s: [] for s in settings}
    ends: dict[str, list[dict]] = {s: [] for s in settings}
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for _ in range(warmup):  # caches, and a first build's host tools: not measured
            print(f"warm-up: bare {run_once(cmd, None, prepare, tmp)[0]:.2f} s (not counted)",
                  flush=True)
        for r in range(rounds):
            order = settings[r % len(settings):] + settings[:r % len(settings)]
            for i, s in enumerate(order):
                if (r + i) % 2:  # which of the pair goes first alternates too
                    t, end = run_once(cmd, s, prepare, tmp)
                    b, _ = run_once(cmd, None, prepare, tmp)
                else:
                    b, _ = run_once(cmd, None, prepare, tmp)
                    t, end = run_once(cmd, s, prepare, tmp)
                bare.append(b)
                ratios[s].append(t / b)
                ends[s].append(end)
                ov = end.get("overhead") or {}
                print(f"round {r + 1} {s or '(defaults: 5%)':28s} bare {b:7.2f} s  pvrec {t:7.2f} s"
                      f"  ratio {t / b:.3f}  pvrec says {ov.get('slowdown') or 0:.3f}  "
                      f"share {100 * (ov.get('workload_share') or 0):.1f}%  "
                      f"{end['frames']} frames", flush=True)
    print(f"\nworkload: {shlex.join(cmd)}")
    print(f"bare: median {statistics.median(bare):.2f} s over {len(bare)} runs "
          f"(min {min(bare):.2f}, max {max(bare):.2f}); {os.cpu_count()} CPUs")
    print(f"{'setting':32s} {'median ratio':>12s} {'pvrec says':>10s} {'share':>6s} "
          f"{'frames':>6s}  ratios (pvrec's estimate of each)")
    for s in settings:
        said = [e["overhead"]["slowdown"] or 0 for e in ends[s]]
        share = [100 * (e["overhead"].get("workload_share") or 0) for e in ends[s]]
        frames = [e["frames"] for e in ends[s]]
        print(f"{s or '(defaults: 5%)':32s} {statistics.median(ratios[s]):12.3f} "
              f"{statistics.median(said):10.3f} {statistics.median(share):5.1f}% "
              f"{statistics.median(frames):6.0f}  "
              + " ".join(f"{x:.3f} ({y:.3f})" for x, y in zip(ratios[s], said, strict=True)))


def holes(samples: int) -> None:
    """One sample's read + encode with the holes read and with them filled, alternated."""
    sys.path.insert(0, str(REPO))
    from pvrec.kernel.holes import Holes
    from pvrec.kernel.kpageflags import KPAGEFLAGS, PageFlagsFile
    from pvrec.kernel.layout import live_layout
    from pvrec.layout import max_pfn
    from pvrec.runs import encode_flags

    with PageFlagsFile(KPAGEFLAGS) as f:
        n = f.probe_pages(max_pfn(live_layout()))
        h = Holes(n)
        h.forget()
        pos = 0
        for c in f.chunks(n):
            h.watch(c, pos)
            pos += c.size
        h.learn()
        cost: dict[str, list[float]] = {"all": [], "skip": []}
        for _ in range(samples):
            for name, skip in (("all", ()), ("skip", h.known)):
                t = time.process_time()
                for c in f.chunks(n, skip=skip):
                    encode_flags(c)
                cost[name].append(time.process_time() - t)
    a, s = statistics.median(cost["all"]), statistics.median(cost["skip"])
    print(f"PFNs {n:,}; holes skipped: {h.skipped_pages:,} pages "
          f"({h.skipped_pages * 4096 / 2**30:.2f} GiB) in {len(h.known)} ranges")
    print(f"read+encode CPU per sample, median of {samples}: all {a * 1000:.1f} ms, holes "
          f"skipped {s * 1000:.1f} ms: ratio {s / a:.3f} (saves {(a - s) * 1000:.1f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=("synthetic", "tinyconfig", "holes"))
    ap.add_argument("--rounds", type=int, default=3, help="pairs per setting (default 3)")
    ap.add_argument("--setting", action="append", metavar="OPTIONS",
                    help="pvrec record options, repeatable ('' is the defaults; default: "
                         + "; ".join(repr(s) for s in DEFAULT_SETTINGS).replace("%", "%%") + ")")
    ap.add_argument("--units", type=int, default=100,
                    help="synthetic: work units per process (~0.1 s each; default 100)")
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 2,
                    help="synthetic: processes (default: one per CPU)")
    ap.add_argument("--ksrc", type=Path, default=KSRC, help=f"tinyconfig tree (default {KSRC})")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="make -j (default: CPUs)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="bare runs before the measured ones, not counted (default 1)")
    ap.add_argument("--samples", type=int, default=10, help="holes: samples (default 10)")
    a = ap.parse_args()
    if a.workload == "holes":
        holes(a.samples)
        return
    settings = a.setting if a.setting is not None else DEFAULT_SETTINGS
    if a.workload == "synthetic":
        bench(synthetic_cmd(a.units, a.procs), settings, a.rounds, None, a.warmup)
    else:
        make = ["make", "-C", str(a.ksrc), "-s"]
        bench(make + [f"-j{a.jobs}"], settings, a.rounds, make + ["clean"], a.warmup)


if __name__ == "__main__":
    main()
