"""Class runs to pixels of K pages: the per-frame arithmetic of the map (raster.py places them).

By default a pixel keeps the pages that fragment (`--downsample keep`): each page has a rank by
its flags (free, in use, unmovable: docs/metrics.md's masks), the pixel shows the most common
class among its pages of the highest rank present, and is marked partly free when free pages
are also in it. `--downsample mode` is the old rule: the most common class (ties go to the
class listed first). Everything works on the frame's runs: the class of most pixels is the class
of the run holding their first page (one np.repeat over the runs), and only the pixels that a
run boundary or a RAM hole cuts through are counted page by page.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pvrec import flags as kpf
from pvrec.blocks import unmovable_values
from pvrec.classes import HOLE
from pvrec.runs import changed_ranges

DOWNSAMPLE = ("keep", "mode")  # --downsample: keep the pages that fragment, or the most common
RANK_FREE, RANK_USED, RANK_UNMOVABLE = 1, 2, 3  # a page's rank in a pixel (0: a hole)
_BUDDY = np.uint64(kpf.bit(kpf.BUDDY))
_TOP_RANK = np.array([max((r for r in range(4) if m >> r & 1), default=0) for m in range(16)],
                     dtype=np.uint8)  # the highest rank in a 4-bit set of ranks


class ClassRuns(NamedTuple):
    """A frame as runs of page classes (uint8 class, int64 length; uint8 rank, or None)."""

    cls: np.ndarray
    lengths: np.ndarray
    ranks: np.ndarray | None = None


def page_ranks(values: np.ndarray) -> np.ndarray:
    """The rank of each flag value in a pixel: free (buddy), unmovable (docs/metrics.md's
    `mixed_blocks` definition, pvrec.blocks' masks) or else in use."""
    v = np.asarray(values, dtype=np.uint64)
    out = np.full(v.shape, RANK_USED, dtype=np.uint8)
    out[unmovable_values(v)] = RANK_UNMOVABLE
    out[(v & _BUDDY) != 0] = RANK_FREE
    return out


def merge_runs(cls_run: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of codes with neighbours of one code joined (fewer boundaries to look at)."""
    if cls_run.size > 1:
        keep = np.empty(cls_run.size, dtype=bool)
        keep[0] = True
        np.not_equal(cls_run[1:], cls_run[:-1], out=keep[1:])
        if not keep.all():
            idx = np.flatnonzero(keep)
            return cls_run[idx], np.add.reduceat(lengths, idx)
    return cls_run, lengths


def class_changes(prev: ClassRuns, cur: ClassRuns) -> tuple[np.ndarray, np.ndarray]:
    """PFN ranges [s, e) whose class differs between two frames given as (class, length) runs."""
    return changed_ranges(prev[0], prev[1], cur[0], cur[1])


def block_pixels(runs: ClassRuns, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(one uint8 class per pixel, the pixels that are partly free: their indices, sorted;
    None without ranks).

    Without ranks a pixel is the most common class of its K pages (ties: the class listed
    first, but RAM before holes). With ranks it is the most common class among its pages
    of the highest rank (unmovable, in use, free, hole), and partly free when it is in use
    and holds free pages too."""
    cls, ln = runs.cls, runs.lengths
    keep = runs.ranks is not None
    if k == 1:
        return np.repeat(cls, ln), None  # no pixel mixes pages
    if cls.size == 0:  # no pages (none of a frame's changed)
        return np.zeros(0, np.uint8), np.zeros(0, np.int64) if keep else None
    ends = np.cumsum(ln)
    starts = ends - ln
    # Pixels cut by a run boundary: add up the pieces of runs inside each of them. A run
    # has a head piece (in its first pixel) and, if it reaches another pixel, a tail piece
    # (in its last); pieces shorter than K are exactly those of the cut pixels.
    if k & (k - 1) == 0:  # a power of two (always, for 512-page rows): shifts, no division
        sh = k.bit_length() - 1
        fb, lb = starts >> sh, (ends - 1) >> sh
        px = np.repeat(cls, ((ends + (k - 1)) >> sh) - ((starts + (k - 1)) >> sh))
        head = np.minimum(ends, (fb + 1) << sh) - starts
        tail = ends - (lb << sh)
    else:
        fb, lb = starts // k, (ends - 1) // k
        px = np.repeat(cls, -(-ends // k) + (-starts // k))
        head = np.minimum(ends, (fb + 1) * k) - starts
        tail = ends - lb * k
    partly = np.zeros(0, np.int64) if keep else None
    tail[lb == fb] = k  # no tail piece (k: dropped below)
    n_cls = int(cls.max()) + 1
    code = cls.astype(np.int64)
    if keep:  # the rank rides in the key's low 2 bits: pixel * 4n_cls + class * 4 + rank
        code *= 4
        code += np.where(cls == HOLE, 0, runs.ranks)  # a hole (or padding) ranks lowest
        n_cls *= 4
    n = cls.size
    key = np.empty(2 * n, dtype=np.int64)  # pixel * n_cls + class, in PFN order
    amount = np.empty(2 * n, dtype=np.int64)
    np.multiply(fb, n_cls, out=key[0::2])
    key[0::2] += code
    np.multiply(lb, n_cls, out=key[1::2])
    key[1::2] += code
    amount[0::2], amount[1::2] = head, tail
    cut = amount < k
    key, amount = key[cut], amount[cut]
    if key.size == 0:
        return px, partly
    blk = key // n_cls
    first = np.empty(blk.size, dtype=bool)
    first[0] = True
    np.not_equal(blk[1:], blk[:-1], out=first[1:])
    mixed = blk[first]
    group = np.cumsum(first)
    group -= 1
    key -= blk * n_cls  # the class (and rank) again
    if keep:
        rank = (key & 3).astype(np.uint8)
        present = np.bitwise_or.reduceat(np.left_shift(1, rank, dtype=np.uint8),
                                         np.flatnonzero(first))  # the ranks in each pixel
        top = _TOP_RANK[present]
        partly = mixed[(present & (1 << RANK_FREE) != 0) & (top > RANK_FREE)]
        amount *= rank == top[group]  # only the pages of the pixel's top rank count
        key >>= 2
        n_cls //= 4
    key += group * n_cls  # index into the (mixed pixels x classes) table
    counts = np.bincount(key, weights=amount, minlength=mixed.size * n_cls)
    counts = counts.reshape(mixed.size, n_cls) * 2
    if not keep:
        counts[:, HOLE] -= counts[:, HOLE] > 0  # a tie between RAM and a hole shows the RAM
    px[mixed] = np.argmax(counts, axis=1)
    return px, partly
