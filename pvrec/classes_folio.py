"""Pages coloured by the size of the folio they belong to (`--classes folio`).

A folio's size is not in any one flag word: the kernel marks its first page compound_head and
the others compound_tail (each with the folio's own flags), so the size is the length of a
head page and the tail pages after it. Runs make that cheap: a head run and the tail runs that
follow it are one stretch, and a stretch that is one head, a power of two long and aligned to
its size (the kernel aligns folios so) is a whole folio of that order. Anything else (the
frame cut it, or it changed while kpageflags was read) is "partial". Free pages, holes and
pages with no flags keep the default scheme's classes. Sizes are named for 4 KiB pages and a
2 MiB PMD (x86-64); the orders hold on any machine.
"""

from __future__ import annotations

import numpy as np

from pvrec import flags as F
from pvrec.classes import PageClass, Scheme, ValueClassifier, colors_of, default_scheme

# Orders 1..8 (8 KiB..1 MiB: slab, page cache and multi-size THP folios): ColorBrewer YlGnBu,
# light to dark as the folio grows; the 2 MiB PMD THP keeps the default scheme's THP orange.
_ORDER_COLORS = ["#EDF8B1", "#C7E9B4", "#7FCDBB", "#41B6C4", "#1D91C0", "#225EA8", "#253494",
                 "#081D58"]
PMD_ORDER, GIGANTIC_ORDER = 9, 18  # 2 MiB and 1 GiB in 4 KiB pages
_HEAD, _TAIL = np.uint64(F.bit(F.COMPOUND_HEAD)), np.uint64(F.bit(F.COMPOUND_TAIL))
_HUGE = np.uint64(F.bit(F.HUGE))


def size_name(order: int, page_kib: int = 4) -> str:
    """'64 KiB' for order 4 of 4 KiB pages."""
    kib = page_kib << order
    return f"{kib} KiB" if kib < 1024 else f"{kib // 1024} MiB" if kib < 1 << 20 else \
        f"{kib >> 20} GiB"


def _classes() -> list[PageClass]:
    base = default_scheme()
    keep = {n: base.classes[base.index(n)] for n in ("hole", "free", "no flags")}
    out = [keep["hole"],
           PageClass("4 KiB (order 0)", *colors_of("#DDCC77", "#AA9944"), "not compound",
                     "in use, not part of a larger folio")]
    for order, color in enumerate(_ORDER_COLORS, start=1):
        out.append(PageClass(f"{size_name(order)} (order {order})", *colors_of(color),
                             _rule(order), "slab, page cache, multi-size THP"))
    out += [PageClass("2 MiB THP (PMD)", *colors_of("#D55E00"), _rule(PMD_ORDER),
                      "PMD-sized THP, anonymous or file"),
            PageClass("hugetlb 2 MiB", *colors_of("#AA4499", "#CC66BB"), _rule(PMD_ORDER, "huge"),
                      "hugetlbfs pages of 2 MiB"),
            PageClass("hugetlb 1 GiB", *colors_of("#882255", "#BB4477"),
                      _rule(GIGANTIC_ORDER, "huge"), "hugetlbfs pages of 1 GiB"),
            keep["free"], keep["no flags"],
            # last: strips.idle_classes takes a non-rule scheme's last class for a catch-all
            PageClass("partial", *colors_of("#CC6677"), "any other compound stretch",
                      "not one whole aligned folio: cut by the frame's edge, torn while read, "
                      "or over 2 MiB")]
    return out


def _rule(order: int, huge: str = "~huge") -> str:
    """What selects a size, for `pvrec classes`: 'head + 15 tails, ~huge'."""
    return f"head + {(1 << order) - 1:,} tails, {huge}"


class FolioScheme(Scheme):
    """Classes by folio size; classifies runs (a folio is a head run and its tail runs)."""

    name = "folio"
    by_runs = True

    def __init__(self):
        super().__init__(_classes())
        base = default_scheme()
        self._base = ValueClassifier(base)
        # default class -> folio class of a page outside a compound stretch
        self._plain = np.full(len(base), 1, dtype=np.uint8)
        for n in ("hole", "free", "no flags"):
            self._plain[base.index(n)] = self.index(n)
        self.huge_2m, self.huge_1g = self.index("hugetlb 2 MiB"), self.index("hugetlb 1 GiB")
        self.partial = len(self) - 1
        self._uncounted = [self.index(n) for n in ("hole", "free", "no flags")]
        self.counts = self._zero_counts()  # folios per class of the frame classified last

    def _zero_counts(self) -> np.ndarray:
        counts = np.zeros(len(self), dtype=np.int64)
        counts[self._uncounted] = -1  # not folios: drawn with their share of RAM
        return counts

    def classify_values(self, values: np.ndarray) -> np.ndarray:
        """A flag value alone: compound pages are 'partial' (their size is in the runs)."""
        values = np.asarray(values, dtype=np.uint64)
        out = self._plain[self._base(values)]
        out[(values & (_HEAD | _TAIL)) != 0] = self.partial
        return out

    def classify_runs(self, values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The class of each run, and self.counts: the folios (heads) of each class."""
        values = np.asarray(values, dtype=np.uint64)
        lengths = np.asarray(lengths, dtype=np.int64)
        out = self._plain[self._base(values)]
        self.counts = self._zero_counts()
        head, tail = (values & _HEAD) != 0, (values & _TAIL) != 0
        comp = np.flatnonzero(head | tail)
        if comp.size:
            self._stretches(out, values, lengths, head, comp)
        self.counts[1] = int(lengths[out == 1].sum())  # each order-0 page is a folio
        return out

    def _stretches(self, out: np.ndarray, values: np.ndarray, lengths: np.ndarray,
                   head: np.ndarray, comp: np.ndarray) -> None:
        """Class the compound runs (comp: their positions) by stretch; count the heads."""
        # a stretch begins at a head, or at a tail whose run before is not compound
        new = head[comp].copy()
        new[1:] |= comp[1:] != comp[:-1] + 1
        new[0] = True
        first = np.flatnonzero(new)  # positions in comp of each stretch's first run
        pages = np.add.reduceat(lengths[comp], first)
        run_start = np.zeros(lengths.size, dtype=np.int64)
        np.cumsum(lengths[:-1], out=run_start[1:])
        start = run_start[comp[first]]
        heads = np.where(head[comp[first]], lengths[comp[first]], 0)
        cls = self._stretch_classes(pages, start, heads, values[comp[first]])
        np.add.at(self.counts, cls, heads)
        out[comp] = np.repeat(cls, np.diff(np.append(first, comp.size)))

    def _stretch_classes(self, pages: np.ndarray, start: np.ndarray, heads: np.ndarray,
                         first_value: np.ndarray) -> np.ndarray:
        """Class of each stretch: its order when it is one whole aligned folio, else partial."""
        order = np.zeros(pages.size, dtype=np.int64)
        pow2 = (pages & (pages - 1)) == 0
        order[pow2] = np.log2(pages[pow2]).round().astype(np.int64)
        whole = (heads == 1) & pow2 & (pages > 1) & (start % np.maximum(pages, 1) == 0)
        huge = (first_value & _HUGE) != 0
        cls = np.full(pages.size, self.partial, dtype=np.uint8)
        thp = whole & ~huge & (order <= PMD_ORDER)
        cls[thp] = 1 + order[thp]  # order 1 is class 2 ... order 9 (PMD) is class 10
        cls[whole & huge & (order == PMD_ORDER)] = self.huge_2m
        cls[whole & huge & (order == GIGANTIC_ORDER)] = self.huge_1g
        return cls

    def class_counts(self) -> np.ndarray | None:
        return self.counts


__all__ = ["FolioScheme", "size_name"]
