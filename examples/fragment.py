"""A workload that fragments physical memory on purpose, to record and watch in the block view.

    sudo pvrec record -i 2s -- python examples/fragment.py --dir /var/tmp/frag
    pvrec render pvrec-python-*/ --view blocks --timeline -o frag.gif --size blog
    pvrec blockers pvrec-python-*/

1. fill the page cache: write a big file in 1 MiB pieces, creating small files between the
   pieces, so that the kernel's slab pages (their inodes and dentries) land among the page
   cache's pages;
2. allocate anonymous memory in 4 KiB pages (no THP), again creating small files between;
3. free the anonymous memory every other 64 MiB, then all of it, and delete the big file:
   the page cache and anonymous pages go, the slab pages stay, each in a block that is now
   free but for it ("blocked" in the block view);
4. delete the small files and the directory: nothing of it is left on disk.

Standard library only (the recorded machine may have nothing else).
"""

from __future__ import annotations

import argparse
import mmap
import os
import shutil
import time
from pathlib import Path

MIB = 1 << 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="a new directory for the files (deleted after)")
    ap.add_argument("--cache-mib", type=int, default=4096, help="page cache to fill (MiB)")
    ap.add_argument("--anon-mib", type=int, default=3072, help="anonymous memory (MiB)")
    ap.add_argument("--small-every", type=int, default=8,
                    help="small files created per MiB written or allocated")
    ap.add_argument("--pause", type=float, default=6.0, help="seconds between the phases")
    args = ap.parse_args()
    root = Path(args.dir)
    root.mkdir()  # a new directory: nothing of the user's is touched
    try:
        run(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, args: argparse.Namespace) -> None:
    small = root / "small"
    small.mkdir()
    count = 0

    def small_files() -> None:
        nonlocal count
        for _ in range(args.small_every):
            (small / f"{count:08d}").write_bytes(b"x" * 100)
            count += 1

    print(f"fragment: writing {args.cache_mib} MiB of page cache", flush=True)
    piece = os.urandom(MIB)
    with open(root / "big", "wb") as f:
        for _ in range(args.cache_mib):
            f.write(piece)
            small_files()
    time.sleep(args.pause)
    print(f"fragment: touching {args.anon_mib} MiB of anonymous memory", flush=True)
    chunks = []
    for _ in range(args.anon_mib // 64):
        m = mmap.mmap(-1, 64 * MIB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        m.madvise(mmap.MADV_NOHUGEPAGE)
        for off in range(0, 64 * MIB, MIB):
            m[off:off + MIB:4096] = b"a" * 256  # one byte a page: every page faulted in
            small_files()
        chunks.append(m)
    time.sleep(args.pause)
    print("fragment: freeing every other 64 MiB, then the rest and the page cache", flush=True)
    for m in chunks[::2]:
        m.close()
    time.sleep(args.pause)
    for m in chunks[1::2]:
        m.close()
    (root / "big").unlink()
    time.sleep(args.pause)
    print(f"fragment: deleting {count:,} small files", flush=True)
    shutil.rmtree(small)
    time.sleep(args.pause)


if __name__ == "__main__":
    main()
