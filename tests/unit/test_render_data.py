"""Synthetic recordings for the renderer's tests: a few thousand pages, every class present.

Imported by the other render tests (`from tests.unit.test_render_data import ...`); its own
tests check that the data really covers what the others rely on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pvrec import flags as F
from pvrec.classes import default_scheme
from pvrec.recording.writer import Writer

B = F.bit
LRU, ANON, SB, UPTODATE = B(F.LRU), B(F.ANON), B(F.SWAPBACKED), B(F.UPTODATE)

# One flags word for each class of the default scheme (what a kernel would report).
CLASS_FLAGS: dict[str, int] = {
    "hole": B(F.NOPAGE),
    "hwpoison": B(F.HWPOISON),
    "offline": B(F.OFFLINE),
    "free": B(F.BUDDY),
    "hugetlb": B(F.HUGE) | B(F.COMPOUND_TAIL),
    "THP": B(F.THP) | B(F.COMPOUND_TAIL) | LRU | ANON | SB | UPTODATE,
    "slab": B(F.SLAB),
    "page table": B(F.PGTABLE),
    "zero/KSM": B(F.ZERO_PAGE),
    "mlocked": B(F.MLOCKED) | B(F.UNEVICTABLE) | LRU | ANON | SB,
    "anonymous": ANON | SB | LRU | UPTODATE | B(F.MMAP),
    "shmem": SB | LRU | UPTODATE,
    "page cache": LRU | UPTODATE | B(F.REFERENCED),
    "reserved": B(F.RESERVED),
    "other kernel": B(F.COMPOUND_TAIL),
    "no flags": 0,
}

PAGES = 4096
ROW = 64  # pages per row: a small "huge page", so 4096 pages make a 64x64 map
HOLE = (1536, 1792)  # a RAM hole: pages there read as flags 0, as on real machines
HEADER = {
    "page_size": 4096,
    "hpage_pages": ROW,
    "ram_ranges": [[0, HOLE[0]], [HOLE[1], PAGES]],
    "zones": [{"node": 0, "name": "DMA32", "start_pfn": 0, "end_pfn": 2048},
              {"node": 0, "name": "Normal", "start_pfn": 2048, "end_pfn": PAGES}],
    "nodes": [{"node": 0, "ranges": [[0, HOLE[0]], [HOLE[1], PAGES]]}],
    "hostname": "testbox",
    "kernel": "6.1.0-test",
    "command": ["make", "-j8"],
    "interval": 1.0,
    "start_wall": "2026-11-26T12:00:00+00:00",
}


def synthetic_frame(seed: int = 0, pages: int = PAGES) -> np.ndarray:
    """Flags of `pages` PFNs: runs of 1..200 pages of every class, the hole reading 0."""
    rng = np.random.default_rng(seed)
    values = np.array(list(CLASS_FLAGS.values()), dtype=np.uint64)
    out = np.empty(pages, dtype=np.uint64)
    pos, i = 0, 0
    while pos < pages:
        ln = int(rng.integers(1, 200)) if i % 3 else int(rng.integers(1, 8))
        v = values[i % values.size] if i < 2 * values.size else values[rng.integers(values.size)]
        out[pos:pos + ln] = v
        pos += ln
        i += 1
    if pages == PAGES:
        out[HOLE[0]:HOLE[1]] = 0
    return out


def evolve(flags: np.ndarray, rng: np.random.Generator, share: float = 0.03) -> np.ndarray:
    """The next frame: about `share` of the pages rewritten in short runs."""
    out = flags.copy()
    values = np.array(list(CLASS_FLAGS.values()), dtype=np.uint64)
    want = int(flags.size * share)
    while want > 0:
        s = int(rng.integers(0, flags.size))
        ln = int(rng.integers(1, 48))
        out[s:s + ln] = values[rng.integers(values.size)]
        want -= ln
    if flags.size == PAGES:
        out[HOLE[0]:HOLE[1]] = 0
    return out


def make_recording(path: Path, frames: int = 6, seed: int = 0, *, complete: bool = True,
                   header: dict | None = None, pages: int = PAGES,
                   key_every: int = 30) -> Path:
    """A recording of `frames` frames, 1 s apart, starting from synthetic_frame(seed)."""
    rng = np.random.default_rng(seed + 1)
    hdr = dict(HEADER if header is None else header)
    if pages != PAGES and header is None:
        hdr.update(ram_ranges=[[0, pages]], nodes=[],
                   zones=[{"node": 0, "name": "Normal", "start_pfn": 0, "end_pfn": pages}])
    w = Writer(path, {**hdr, "pfn_count": pages}, key_every=key_every)
    flags = synthetic_frame(seed, pages)
    for i in range(frames):
        w.add_frame(flags, float(i), {})
        flags = evolve(flags, rng)
    if complete:
        w.close({"reason": "test"})
    return path


def test_every_default_class_is_present():
    scheme = default_scheme()
    cls = scheme.classify_values(synthetic_frame())
    present = {scheme.classes[c].name for c in np.unique(cls)}
    assert present == set(scheme.names)


def test_class_flags_name_each_class():
    scheme = default_scheme()
    for name, value in CLASS_FLAGS.items():
        got = scheme.classify_values(np.array([value], dtype=np.uint64))[0]
        assert scheme.classes[got].name == name, (name, hex(value))


def test_recordings_are_reproducible(tmp_path):
    from pvrec.recording.reader import open_recording

    a = open_recording(make_recording(tmp_path / "a", 3, seed=5))
    b = open_recording(make_recording(tmp_path / "b", 3, seed=5))
    assert len(a) == len(b) == 3
    for i in range(3):
        assert np.array_equal(a.read(i), b.read(i))
    assert not np.array_equal(a.read(0), a.read(1))
