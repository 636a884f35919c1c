"""Start-up benchmark: `pvrec --help` and `pvrec stats -F DUMP` end to end, against their floors.

    python bench/bench_startup.py [--dump FILE.kpf] [--runs 15]

Floors, measured alternately with pvrec in the same run: `python -c pass` (an interpreter that
does nothing) for --help, and `python -c 'import numpy'` for stats (the least a numpy program
pays). Targets (issue 13): --help < 0.15 s, stats -F on 6.5 M pages < 0.4 s.
Without --dump it decompresses the after-kbuild fixture (6.55 M pages) to a temp file.
"""

from __future__ import annotations

import argparse
import lzma
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NUMPY = "python -c 'import numpy'"
FIXTURE = Path(__file__).resolve().parents[2] / "shared/fixtures/after-kbuild.kpf.xz"


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def compare(runs: int, named: dict[str, list[str]]) -> dict[str, float]:
    """Median wall time of each command, run in turn (round robin) so noise hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in named}
    for cmd in named.values():
        wall(cmd)  # warm the page cache
    for _ in range(runs):
        for k, cmd in named.items():
            times[k].append(wall(cmd))
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", help="raw kpageflags dump for stats (default: the fixture)")
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    py = sys.executable
    pvrec = shutil.which("pvrec") or str(Path(py).with_name("pvrec"))
    with tempfile.TemporaryDirectory() as d:
        dump = args.dump
        if dump is None:
            dump = str(Path(d) / "after-kbuild.kpf")
            Path(dump).write_bytes(lzma.decompress(FIXTURE.read_bytes()))
        pages = Path(dump).stat().st_size // 8
        m = compare(args.runs, {
            "python -c pass": [py, "-c", "pass"],
            "pvrec --help": [pvrec, "--help"],
            "python -m pvrec --help": [py, "-m", "pvrec", "--help"],
            NUMPY: [py, "-c", "import numpy"],
            "pvrec stats -F": [pvrec, "stats", "-F", dump],
        })
    for k, v in m.items():
        print(f"{k:28s} {v * 1000:7.1f} ms (median of {args.runs})")
    print(f"pvrec --help / python -c pass:       {m['pvrec --help'] / m['python -c pass']:.2f}x "
          f"({m['pvrec --help']:.3f} s; target < 0.15 s)")
    print(f"stats -F {pages:,} pages / import numpy: "
          f"{m['pvrec stats -F'] / m[NUMPY]:.2f}x "
          f"({m['pvrec stats -F']:.3f} s; target < 0.4 s)")


if __name__ == "__main__":
    main()
