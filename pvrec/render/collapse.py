"""What the frames a render draws leave unchanged, and where they change: the memory that
collapses into bands (on by default, --no-collapse), and the range `--region changed` draws.

A Watch is fed the class runs of every frame the render will draw (pipeline's pre-pass, the
one the --timeline strips make when there is one) and keeps, per 1 GiB unit of memory, whether
all of its RAM pages held one class in every frame, and the span of pages whose class changed
from one frame to the next. `stretches()` joins the static units of one class (of every side,
when two runs are drawn side by side) into the (first, end, class) bands MapLayout draws.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pvrec.classes import HOLE, ValueClassifier
from pvrec.render.raster import TILE_ROWS, ClassRuns, MapLayout, class_changes
from pvrec.runs import Runs, slice_ranges, xor_runs

MIXED = -1  # a unit whose RAM pages hold more than one class


def unit_classes(runs: ClassRuns, unit: int, pfn_count: int) -> np.ndarray:
    """Per unit of `unit` pages: the one class of its RAM pages, MIXED, or HOLE (no RAM)."""
    n_units = -(-pfn_count // unit)
    ends = np.cumsum(runs.lengths)
    ram = runs.cls != HOLE
    c, s, e = runs.cls[ram], (ends - runs.lengths)[ram], ends[ram]
    out = np.full(n_units, HOLE, dtype=np.int16)
    if c.size == 0:
        return out
    new = np.empty(c.size, dtype=bool)  # neighbours of one class, holes between them, join
    new[0] = True
    np.not_equal(c[1:], c[:-1], out=new[1:])
    idx = np.flatnonzero(new)
    c, s, e = c[idx], s[idx], np.append(e[idx[1:] - 1], e[-1])
    lo = np.arange(n_units, dtype=np.int64) * unit
    hi = np.minimum(lo + unit, pfn_count)
    i = np.searchsorted(e, lo, "right")  # the first run of RAM ending in or after the unit
    j = np.searchsorted(s, hi, "left") - 1  # the last one starting before its end
    one = i == j
    out[one] = c[i[one]]
    out[i < j] = MIXED
    return out


class Watch:
    """Fed each frame's class runs (whole memory, MapLayout.class_runs of a 1-page-per-pixel
    layout); what stayed one class, and where classes changed."""

    def __init__(self, lay: MapLayout, hpage_pages: int, changes: bool = True):
        self.unit = hpage_pages * TILE_ROWS
        self.pfn_count = lay.pfn_count
        n_units = -(-lay.pfn_count // self.unit)
        self.no_ram = np.array([lay.ram_in(u * self.unit, (u + 1) * self.unit) == 0
                                for u in range(n_units)], dtype=bool)
        self.first: np.ndarray | None = None
        self.same: np.ndarray | None = None
        self.prev: ClassRuns | None = None
        self.lo, self.hi = lay.pfn_count, 0
        self.frames = 0
        self.changes = changes  # also find where classes changed (--region changed)
        self.followed: np.ndarray | None = None  # the units follow() still reads (None: all)

    def add(self, runs: ClassRuns) -> None:
        uc = unit_classes(runs, self.unit, self.pfn_count)
        if self.first is None:
            self.first, self.same = uc, uc >= 0
        else:
            self.same &= uc == self.first
        if self.changes:
            if self.prev is not None:
                s, e = class_changes(self.prev, runs)
                if s.size:
                    self.lo, self.hi = min(self.lo, int(s[0])), max(self.hi, int(e[-1]))
            self.prev = ClassRuns(runs.cls, runs.lengths)
        self.frames += 1

    def merge(self, other: Watch) -> None:
        """Take in a Watch fed other frames (a render worker's share; not with changes)."""
        if other.first is None:
            return
        if self.first is None:
            self.first, self.same = other.first, other.same
        else:
            self.same &= other.same & (other.first == self.first)
        self.frames += other.frames

    def follow(self, frames: Iterable[tuple[int, str, Runs]], wanted: set[int],
               classifier: ValueClassifier, lay: MapLayout) -> None:
        """add() the frames at the wanted positions, given every frame as stored (a
        recording's iter_stored; lay: the whole map at one page a pixel). After the first,
        only the units still of one class are followed: the deltas are applied to their
        pages alone, never to a whole frame, and reading stops when none is left (`frames`
        then counts the frames read: no band is left for it to describe). Not for a Watch
        that also finds where classes changed (--region changed): that needs every page.
        A frame of kind "unread" (see needs()) changed none of the units followed."""
        assert not self.changes, "follow() does not find where classes changed"
        state: Runs | None = None  # the whole frame, then the pages of the units followed
        units: np.ndarray | None = None  # the units followed (None: all, before the first)
        self.followed = None
        moved = False  # a frame read since the units' classes were last checked
        for pos, kind, runs in frames:
            if units is None:
                state = runs if kind == "key" or state is None else xor_runs(state, runs)
                if pos in wanted:
                    self.add(lay.class_runs(classifier(state.values), state.lengths))
                    units = self.followed = np.flatnonzero(self.same)
                    state = _cut(state, *self._span(units))
                    if not units.size:
                        return  # nothing can collapse
                continue
            s, e = self._span(units)
            if kind != "unread":  # (unread: it changed none of the units' pages)
                piece = _cut(runs, s, e)
                state = piece if kind == "key" else xor_runs(state, piece)  # type: ignore
                moved = True
            if pos not in wanted:
                continue
            self.frames += 1
            if not moved:
                continue  # the pages checked last, unchanged: the same classes
            moved = False
            uc = unit_classes(lay.class_runs_in(classifier(state.values), state.lengths, None,
                                                s, e), self.unit, int((e - s).sum()))
            self.same[units] &= uc == self.first[units]  # type: ignore[index]
            still = self.same[units]  # type: ignore[index]
            if not still.any():
                return  # nothing can collapse any more
            if not still.all():
                at = np.cumsum(e - s) - (e - s)  # each unit's place in the state
                state, units = _cut(state, at[still], at[still] + (e - s)[still]), units[still]
                self.followed = units

    def needs(self, touched: dict[int, np.ndarray]):
        """follow()'s `need` for iter_stored, given the units each frame touched (the
        summaries' tiles, of this watch's unit): a frame that touched none of the units
        followed is not read."""
        def need(pos: int) -> bool:
            return self.followed is None or bool(np.isin(touched[pos], self.followed).any())
        return need

    def _span(self, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The page ranges of some units."""
        s = units.astype(np.int64) * self.unit
        return s, np.minimum(s + self.unit, self.pfn_count)

    def static(self) -> np.ndarray:
        """Per unit: its class if one class held all its RAM pages in every frame, else
        MIXED; HOLE for a unit without RAM."""
        if self.first is None:
            return np.full(self.no_ram.size, MIXED, dtype=np.int16)
        out = np.where(self.same, self.first, MIXED).astype(np.int16)
        out[self.no_ram] = HOLE
        return out

    def changed(self) -> tuple[int, int] | None:
        """[lo, hi) PFNs holding every page whose class changed between two frames fed."""
        return (self.lo, self.hi) if self.hi > self.lo else None


def stretches(watches: list[Watch], window: tuple[int, int], breaks: list[int] = ()
              ) -> list[list[tuple[int, int, int]]]:
    """Per side: the (first, end, class) stretches of whole units inside the window that are
    static in every side, each of one class per side; units without RAM inside a stretch
    join it, and a stretch never crosses a PFN in `breaks` (where NUMA panels start)."""
    unit = watches[0].unit
    static = np.stack([w.static() for w in watches])  # sides x units
    out: list[list[tuple[int, int, int]]] = [[] for _ in watches]
    run: list[int] = []  # units of the stretch being grown

    def close() -> None:
        while run and (static[:, run[-1]] == HOLE).all():
            run.pop()  # a stretch ends with RAM
        if run:
            first, end = run[0] * unit, min((run[-1] + 1) * unit, watches[0].pfn_count)
            for side, st in enumerate(static):
                out[side].append((first, end, int(st[run[0]])))
        run.clear()

    for u in range(static.shape[1]):
        col = static[:, u]
        inside = window[0] <= u * unit and min((u + 1) * unit, watches[0].pfn_count) <= window[1]
        hole = bool((col == HOLE).all())
        if not inside or (col == MIXED).any() or u * unit in breaks or \
                (not hole and run and (col != static[:, run[0]]).any()):
            close()
        if inside and not hole and (col >= 0).all() and (col != HOLE).all():
            run.append(u)
        elif inside and hole and run:
            run.append(u)
    close()
    return out


def _cut(runs: Runs, starts: np.ndarray, ends: np.ndarray) -> Runs:
    """The runs of these page ranges, one after the other."""
    return Runs(*slice_ranges(runs, starts, ends))
