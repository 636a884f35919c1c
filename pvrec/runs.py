"""Run-length algebra of per-PFN data: the one form every half of pvrec works on.

A frame of a 24 GiB machine is 6.5 million u64 flag words but only ~300,000 runs, so encoding,
XOR deltas, joining chunks, slicing and counting are done on runs (numpy over runs, never a
Python loop per page). The recording codec, the renderer, page-types' text and the metrics all
use these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_PAGES = 1 << 20  # the writer diffs and the recorder reads frames in chunks of 8 MiB of flags


@dataclass
class Runs:
    """Flags of consecutive PFNs in run-length form: run i is lengths[i] pages of values[i]."""

    lengths: np.ndarray  # int64 [R], all > 0
    values: np.ndarray  # uint64 [R], neighbours differ

    @property
    def pfn_count(self) -> int:
        return int(self.lengths.sum(dtype=np.int64))

    def starts(self) -> np.ndarray:
        """The first PFN of each run."""
        out = np.zeros(self.lengths.size, dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=out[1:])
        return out

    def expand(self) -> np.ndarray:
        """The flags of every PFN (uint64 array)."""
        return np.repeat(self.values, self.lengths)


def _from_starts(starts: np.ndarray, values: np.ndarray, n: int) -> Runs:
    """Runs from sorted distinct starts (starts[0] == 0), merging neighbours of equal value."""
    keep = np.empty(values.size, dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    if not keep.all():
        starts, values = starts[keep], values[keep]
    lengths = np.empty(starts.size, dtype=np.int64)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1:] = n - starts[-1:]
    return Runs(lengths, values)


def encode_flags(flags: np.ndarray) -> Runs:
    """Run-length form of an array of flags."""
    flags = np.ascontiguousarray(flags, dtype=np.uint64)
    if flags.size == 0:
        return Runs(np.zeros(0, np.int64), np.zeros(0, np.uint64))
    starts = np.flatnonzero(flags[1:] != flags[:-1])
    starts += 1
    starts = np.concatenate((np.zeros(1, starts.dtype), starts))
    # 32-bit lengths while they fit: a frame's runs are what the writer keeps between frames.
    length_type = np.uint32 if flags.size < 1 << 32 else np.int64
    return Runs(np.diff(starts, append=flags.size).astype(length_type), flags[starts])


def split_runs(runs: Runs, chunk: int = CHUNK_PAGES) -> list[Runs]:
    """The runs cut at every multiple of chunk pages: one Runs per chunk."""
    n = runs.pfn_count
    if n <= chunk:
        return [runs]
    starts = runs.starts()
    out = []
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        i, j = np.searchsorted(starts, lo, "right") - 1, np.searchsorted(starts, hi, "left")
        s = np.maximum(starts[i:j], lo)
        e = np.minimum(starts[i:j] + runs.lengths[i:j], hi)
        out.append(Runs(e - s, runs.values[i:j]))
    return out


def compact(runs: Runs) -> Runs:
    """The same runs with 32-bit lengths where they fit: what a writer keeps between frames."""
    if runs.lengths.dtype != np.uint32 and runs.lengths.size and runs.lengths.max() < 1 << 32:
        return Runs(runs.lengths.astype(np.uint32), runs.values)
    return runs


def same(a: Runs, b: Runs) -> bool:
    """True when two run lists are the same runs (so the XOR need not be computed)."""
    return np.array_equal(a.lengths, b.lengths) and np.array_equal(a.values, b.values)


def xor_runs(a: Runs, b: Runs) -> Runs:
    """a XOR b, page by page, computed on the runs alone (never the full arrays).

    A delta frame stores xor_runs(frame, previous): mostly one huge zero run, a few thousand
    runs where pages changed; applying it is xor_runs(previous, delta). When one side has few
    non-zero runs (a delta) only the stretches it touches are cut and flipped: a few passes
    over the other side's runs instead of a merge sort of both.
    """
    if b.lengths.size > a.lengths.size:
        a, b = b, a
    return xor_changes(a, b, nonzero_runs(b))


def xor_changes(a: Runs, b: Runs, changes: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Runs:
    """xor_runs(a, b) given b's non-zero runs (nonzero_runs(b): a reader has them already)."""
    cs, ce, cx = changes
    if 16 * cs.size > a.lengths.size:
        return _xor_dense(a, b)
    if cs.size == 0:
        return a
    n = a.pfn_count
    sa = a.starts()
    # The ranges are sorted and disjoint: their starts and ends interleave, sorted already.
    # An end that is the next range's start is one cut; the end of memory is none.
    cuts = np.empty(2 * cs.size, dtype=np.int64)
    cuts[0::2], cuts[1::2] = cs, ce
    dup = np.zeros(cuts.size, dtype=bool)
    np.equal(cuts[1:], cuts[:-1], out=dup[1:])
    keep = ~dup
    keep[-1] &= cuts[-1] < n
    kept = cuts[keep]
    pos = np.searchsorted(sa, kept)
    new = sa[np.minimum(pos, sa.size - 1)] != kept  # not a run's start yet
    at = pos[new]
    starts = np.insert(sa, at, kept[new])
    values = np.insert(a.values, at, a.values[at - 1])  # a cut inherits its run's value
    # Where each cut is among the new starts: its place among the old, plus the new before it.
    where = np.full(cuts.size, starts.size, dtype=np.int64)  # the end of memory: past all
    where[keep] = pos + np.cumsum(new) - new
    twin = np.flatnonzero(dup)
    where[twin] = where[twin - 1]
    first, last = where[0::2], where[1::2]
    counts = last - first
    values[spans(first, counts)] ^= np.repeat(cx, counts)
    return _from_starts(starts, values, n)


def _xor_dense(a: Runs, b: Runs) -> Runs:
    """a XOR b when both sides change often: page by page where the runs are so many that
    expanding a chunk's pages is cheaper (a busy chunk of the writer: 2.4x faster measured),
    else by merging the two boundary lists."""
    n = a.pfn_count
    if n <= 2 * CHUNK_PAGES and 4 * (a.lengths.size + b.lengths.size) > n:
        return encode_flags(a.expand() ^ b.expand())
    return _xor_merge(a, b)


def _xor_merge(a: Runs, b: Runs) -> Runs:
    """a XOR b when both sides change often: b's run starts inserted among a's (each found by
    a binary search, no sort), and every new run's index in a and in b counted up from marks
    of where their starts fell (1.25x faster than a stable argsort of both lists)."""
    n = a.pfn_count
    sa, sb = a.starts(), b.starts()
    idx = np.searchsorted(sa, sb)  # where each of b's starts falls among a's
    new = sa[np.minimum(idx, sa.size - 1)] != sb  # not a start of a's already
    at = idx[new]
    s = np.insert(sa, at, sb[new])  # the i-th inserted lands at at[i] + i
    from_a = np.ones(s.size, dtype=bool)
    from_a[at + np.arange(at.size)] = False
    from_b = np.zeros(s.size, dtype=bool)
    from_b[idx + np.cumsum(new) - new] = True  # b's start j: after the new ones before it
    values = a.values[np.cumsum(from_a) - 1] ^ b.values[np.cumsum(from_b) - 1]
    return _from_starts(s, values, n)


def changed_ranges(a_values: np.ndarray, a_lengths: np.ndarray, b_values: np.ndarray,
                   b_lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Page ranges [s, e) where two run sequences of the same pages hold different values
    (classes of two frames, say): the value arrays may be of any dtype."""
    ae, be = np.cumsum(a_lengths), np.cumsum(b_lengths)
    bounds = np.concatenate((ae, be))  # every place either side changes; the last: the end
    bounds.sort()  # two sorted arrays: a sort and a diff beat union1d's hash 5-10x
    bounds = bounds[np.concatenate(([True], bounds[1:] != bounds[:-1]))]
    starts = np.concatenate(([0], bounds[:-1]))
    diff = a_values[np.searchsorted(ae, starts, "right")] != \
        b_values[np.searchsorted(be, starts, "right")]
    return starts[diff], bounds[diff]


def pfns_to_runs(pfns: np.ndarray, pfn_count: int) -> Runs:
    """A 0/1 run channel from sorted unique PFNs (1 where the PFN is listed)."""
    pfns = np.asarray(pfns, dtype=np.int64)
    if pfns.size == 0:
        return Runs(np.array([pfn_count], np.int64), np.zeros(1, np.uint64))
    breaks = np.flatnonzero(np.diff(pfns) != 1) + 1
    ones = pfns[np.r_[0, breaks]]
    zeros = pfns[np.r_[breaks - 1, pfns.size - 1]] + 1
    zeros = zeros[zeros < pfn_count]
    starts = np.concatenate((ones, zeros, [0] if ones[0] > 0 else []))
    values = np.concatenate((np.ones(ones.size, np.uint64), np.zeros(zeros.size + (ones[0] > 0),
                                                                      np.uint64)))
    order = np.argsort(starts, kind="stable")
    return _from_starts(starts[order].astype(np.int64), values[order], pfn_count)


def join_pieces(pieces: list[Runs]) -> list[Runs]:
    """Consecutive pieces with equal runs across their joins merged (the pieces stay untouched:
    they may be the frame the writer keeps)."""
    out: list[Runs] = []
    for p in pieces:
        if out and p.values.size and out[-1].values[-1] == p.values[0]:
            last = out[-1]
            lengths = last.lengths.astype(np.int64)
            lengths[-1] += int(p.lengths[0])
            out[-1] = Runs(lengths, last.values)
            p = Runs(p.lengths[1:], p.values[1:])
        if p.values.size:
            out.append(p)
    return out


def blocks_touched(starts: np.ndarray, ends: np.ndarray, block: int, nblocks: int) -> np.ndarray:
    """Per block of `block` pages (nblocks of them): does any range [start, end) touch it."""
    marks = np.zeros(nblocks + 1, dtype=np.int64)
    if starts.size:
        np.add.at(marks, starts // block, 1)
        np.add.at(marks, (ends - 1) // block + 1, -1)
    return np.cumsum(marks[:-1]) > 0


def pages_per_value(runs: Runs) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values of the runs, sorted; the pages of each, int64)."""
    uniq, inv = np.unique(runs.values, return_inverse=True)
    pages = np.bincount(inv.reshape(-1), weights=runs.lengths, minlength=uniq.size)
    return uniq, pages.round().astype(np.int64)


def add_pages_per_value(runs: Runs | tuple[np.ndarray, np.ndarray], into: dict[int, int]
                        ) -> None:
    """Add each distinct value's page count to `into` ({value: pages}), of the runs or of
    pages_per_value's (values, pages) of them."""
    uniq, pages = pages_per_value(runs) if isinstance(runs, Runs) else runs
    for v, n in zip(uniq.tolist(), pages.tolist(), strict=True):
        into[v] = into.get(v, 0) + int(n)



# -- page ranges: sorted, disjoint [start, end) pairs (two int64 arrays), what a delta changed

def spans(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """first[0], first[0] + 1, ... (count[0] of them), then the same for first[1], ...:
    every index of some ranges, concatenated."""
    return np.arange(int(count.sum()), dtype=np.int64) + np.repeat(first - np.cumsum(count)
                                                                   + count, count)


def nonzero_ranges(runs: Runs) -> tuple[np.ndarray, np.ndarray]:
    """The page ranges of the runs whose value is not 0 (of a delta: the pages it changes)."""
    return nonzero_runs(runs)[:2]


def nonzero_runs(runs: Runs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, values) of the runs whose value is not 0."""
    on = runs.values != 0
    starts = runs.starts()[on]
    return starts, starts + runs.lengths[on].astype(np.int64), runs.values[on]


def union_ranges(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The pages in either set of ranges, as sorted disjoint ranges (touching ones joined)."""
    s, e = np.concatenate((a[0], b[0])), np.concatenate((a[1], b[1]))
    order = np.argsort(s, kind="stable")
    return join_ranges(s[order], e[order])


def add_changes(since: tuple[np.ndarray, np.ndarray] | None,
                changed: tuple[np.ndarray, np.ndarray] | None
                ) -> tuple[np.ndarray, np.ndarray] | None:
    """The pages changed since some frame, a frame's changes added (None: not known, and
    stays so)."""
    if since is None or changed is None:
        return None
    return union_ranges(since, changed) if since[0].size else changed


def join_ranges(s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranges sorted by start, overlapping or touching ones joined."""
    if s.size < 2:
        return s, e
    reach = np.maximum.accumulate(e)
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    np.greater(s[1:], reach[:-1], out=new[1:])
    first = np.flatnonzero(new)
    return s[first], reach[np.append(first[1:] - 1, s.size - 1)]


def clip_ranges(ranges: tuple[np.ndarray, np.ndarray], keep: list[tuple[int, int]]
                ) -> tuple[np.ndarray, np.ndarray]:
    """The ranges cut to the pages of `keep` (a few sorted disjoint ranges: RAM, a window)."""
    s, e = ranges
    out_s, out_e = [], []
    for a, b in keep:
        i, j = np.searchsorted(e, a, "right"), np.searchsorted(s, b, "left")
        out_s.append(np.maximum(s[i:j], a))
        out_e.append(np.minimum(e[i:j], b))
    if not out_s:
        return s[:0], e[:0]
    return np.concatenate(out_s), np.concatenate(out_e)


def slice_ranges(runs: Runs, starts: np.ndarray, ends: np.ndarray, run_starts=None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The runs cut to each page range in turn, concatenated: (lengths int64, values); the
    pieces of range i follow those of range i - 1 (run_starts: runs.starts(), if known)."""
    rs = runs.starts() if run_starts is None else run_starts
    re = rs + runs.lengths
    first = np.searchsorted(re, starts, "right")
    count = np.searchsorted(rs, ends, "left") - first
    idx = spans(first, count)  # the run of every piece
    lo = np.maximum(rs[idx], np.repeat(starts, count))
    hi = np.minimum(re[idx], np.repeat(ends, count))
    return hi - lo, runs.values[idx]
