"""`pvrec stats` / `pvrec list` against the kernel's page-types on the same dumps, side by side.

    python bench/bench_inspect.py --page-types /path/to/page-types      # the shared fixtures
    python bench/bench_inspect.py --page-types PT dump1.kpf dump2.kpf    # raw dumps of your own

For each dump and each of `stats` (page-types -F FILE) and `list` (page-types -F FILE -Nl),
in one run, alternating so that both see the same machine state:
- page-types: wall time of the whole process, output to /dev/null (skipped without
  --page-types);
- pvrec work: pvrec.cli.main([...]) in this process after a warm-up call, i.e. everything
  after interpreter start-up and imports: read the dump, walk, format, write to /dev/null;
- pvrec end to end: wall time of `python -m pvrec ...` as a user runs it.
Medians of --repeat runs, and the ratios over page-types (the issue asks work < 1x and end
to end < 1 s).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pvrec import cli  # noqa: E402
from tests.helpers import FIXTURES, fixture_dump, fixture_names  # noqa: E402

COMMANDS = {"stats": ([], ["stats"]), "list": (["-Nl"], ["list"])}


def decompress_fixtures() -> list[Path]:
    """The shared .kpf.xz fixtures as raw dumps (what page-types -F reads)."""
    return [fixture_dump(name) for name in fixture_names()]


def wall(argv: list[str], env: dict | None = None) -> float:
    """Wall time of one process run with stdout to /dev/null; fails loudly if it fails."""
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - t0


def in_process(argv: list[str]) -> float:
    """Wall time of pvrec.cli.main(argv) here, its output going to /dev/null."""
    saved = sys.stdout
    with open(os.devnull, "wb") as sink:
        sys.stdout = io.TextIOWrapper(sink, write_through=True)
        try:
            t0 = time.perf_counter()
            code = cli.main(argv)
            elapsed = time.perf_counter() - t0
            sys.stdout.flush()
        finally:
            sys.stdout.detach()
            sys.stdout = saved
    if code != 0:
        raise SystemExit(f"pvrec {' '.join(argv)} exited {code}")
    return elapsed


def bench(dump: Path, page_types: str | None, repeat: int) -> list[tuple]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    rows = []
    for name, (pt_args, pvrec_args) in COMMANDS.items():
        argv = [*pvrec_args, "-F", str(dump)]
        in_process(argv)  # warm-up: imports, page cache
        pt, work, e2e = [], [], []
        for _ in range(repeat):
            if page_types:
                pt.append(wall([page_types, "-F", str(dump), *pt_args]))
            work.append(in_process(argv))
            e2e.append(wall([sys.executable, "-m", "pvrec", *argv], env))
        med = statistics.median
        rows.append((dump.name, name, med(pt) if pt else None, med(work), med(e2e)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dumps", nargs="*", type=Path, help="raw kpageflags dumps (default: fixtures)")
    ap.add_argument("--page-types", help="path to a page-types binary to compare against")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    dumps = args.dumps or decompress_fixtures()
    if not dumps:
        raise SystemExit(f"no dumps given and no fixtures at {FIXTURES}")
    rows = []
    for dump in dumps:
        rows += bench(dump, args.page_types, args.repeat)

    def ms(x: float | None) -> str:
        return "       -" if x is None else f"{x * 1000:8.1f}"

    def ratio(a: float, b: float | None) -> str:
        return "     -" if b is None else f"{a / b:6.2f}"

    print(f"median of {args.repeat} runs, ms wall; ratios over page-types")
    print(f"{'dump':<24} {'cmd':<6} {'page-types':>10} {'pvrec work':>10} {'end-to-end':>10}"
          f" {'work/pt':>8} {'e2e/pt':>7}")
    for dump, cmd, pt, work, e2e in rows:
        print(f"{dump:<24} {cmd:<6} {ms(pt):>10} {ms(work):>10} {ms(e2e):>10}"
              f" {ratio(work, pt):>8} {ratio(e2e, pt):>7}")
    worst_work = max((w / p for _, _, p, w, _ in rows if p), default=None)
    worst_e2e = max(e for *_, e in rows)
    if worst_work is not None:
        print(f"worst work/page-types: {worst_work:.2f}x (target < 1)")
    print(f"worst end to end: {worst_e2e * 1000:.0f} ms (target < 1000)")


if __name__ == "__main__":
    main()
