"""What the HTML page holds for each map: the layout as MapLayout has it, the classes and their
colours, a table per distinct flag value, and every frame as runs (zlib, base64).

Nothing here draws: the layout, the classes and the class runs are those the renderer computes
(choose_layout, the scheme's ValueClassifier, MapLayout.class_runs with page_ranks), so the
page shows what the video shows and the player never classifies a page or re-derives a flag
name. Each frame is two blobs, decoded one at a time by the player: the class runs it draws
(`draw`) and the runs of flag values, cgroups and workload pages it reads on hover (`pages`).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import shlex
import zlib
from collections.abc import Callable

import numpy as np

from pvrec import flags as kpf
from pvrec.classes import HOLE, hex_color
from pvrec.errors import PvrecError
from pvrec.metrics import metric_values
from pvrec.render.collapse import band_text
from pvrec.render.palette import METRIC_COLORS, METRIC_COLORS_DARK, THEME_UI, Palette
from pvrec.render.pixels import merge_runs
from pvrec.render.raster import MapLayout, divisors, page_ranks
from pvrec.render.strips import idle_classes
from pvrec.units import format_bytes

# A page bigger than this stops with one line: browsers hang on a few hundred MiB of HTML.
MAX_PAGE_BYTES = 384 << 20
TOO_BIG = ("{name}: the HTML page would exceed {limit} ({what}); draw fewer frames with "
           "--every N or --start/--end, or render a video")


def _blob(*arrays: np.ndarray) -> str:
    """Sections of little-endian unsigned arrays, each [count u32, item bytes u32] + its bytes
    as byte planes (all low bytes, then the next ...: small numbers compress far better),
    padded to 4 bytes; zlib-compressed, base64: what the player's
    DecompressionStream('deflate') reads."""
    parts = []
    for a in arrays:
        a = np.ascontiguousarray(a)
        size = a.dtype.itemsize
        planes = a.astype(a.dtype.newbyteorder("<"), copy=False).view(np.uint8)
        raw = planes.reshape(-1, size).T.tobytes()
        parts.append(np.array([a.size, size], "<u4").tobytes() + raw + b"\0" * (-len(raw) % 4))
    return base64.b64encode(zlib.compress(b"".join(parts), 9)).decode("ascii")


def _sorted_distinct(a: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy's hashing unique is ~10x slower on these arrays)."""
    a = np.sort(a)
    if a.size > 1:
        a = a[np.concatenate(([True], a[1:] != a[:-1]))]
    return a


def _index_type(n: int) -> type:
    return np.uint8 if n <= 1 << 8 else np.uint16 if n <= 1 << 16 else np.uint32


class ValueTable:
    """Distinct values met so far (flag words, cgroup inodes), each with its index."""

    def __init__(self):
        self.values: list[int] = []
        self._index: dict[int, int] = {}

    def indices(self, values: np.ndarray) -> np.ndarray:
        uniq = _sorted_distinct(values)
        inverse = np.searchsorted(uniq, values)
        idx = np.empty(uniq.size, np.uint32)
        for i, v in enumerate(uniq.tolist()):
            j = self._index.get(v)
            if j is None:
                j = self._index[v] = len(self.values)
                self.values.append(v)
            idx[i] = j
        return idx[inverse]


def layout_json(lay: MapLayout, label: Callable | None = None, about: Callable | None = None,
                unfolded: MapLayout | None = None, grids: list[int] | None = None) -> dict:
    """Whatever the layout holds (tiles, bands, holes, marks, K, sizes ...), and its tiles
    arranged as the layout itself arranges them in `cols` grid columns at each K that divides
    a row ([x, y, width] each): `levels` at the layout's own columns, `grids` at each column
    count the page may pick to fit a window (grid_columns), each tile with its label
    (label(band): the picture's band label) and each band with what the hover says of it
    (about(band)); unfolded: the same memory with no band, drawn once the user zooms into a
    band (arranged at the same column counts)."""
    out = {f.name: _plain(getattr(lay, f.name)) for f in dataclasses.fields(lay)
           if f.name != "look"}
    out["labels"] = [label(t) if t.kind == "band" and label else lay.tile_label(t)
                     for t in lay.tiles]
    out["about"] = [about(t) if t.kind == "band" and about else "" for t in lay.tiles]
    grids = sorted(set(grids or grid_columns(lay)) | {lay.cols})
    at = copy.deepcopy(lay)
    out["grids"] = {}
    for cols in grids:
        levels = out["grids"][cols] = {}
        for k in divisors(lay.row_pages):
            at.ppp = k
            at.arrange(cols)
            levels[k] = {"tiles": [[t.x, t.y, t.w] for t in at.tiles], "width": at.width,
                         "height": at.height}
    out["levels"] = out["grids"][lay.cols]
    if unfolded is not None:
        out["unfolded"] = layout_json(unfolded, grids=grids)
    return out


MAX_GRIDS = 16  # column counts offered to the page's "whole machine" fit


def grid_columns(lay: MapLayout) -> list[int]:
    """The column counts worth offering: the fewest columns of each distinct map height (a
    wider grid of the same height only wastes width), at most MAX_GRIDS of them spread evenly,
    always with the layout's own."""
    out, last = [], None
    for cols in range(1, lay.max_cols + 1):
        height = lay.size_for(cols)[1]
        if height != last:
            out.append(cols)
            last = height
    if len(out) > MAX_GRIDS:
        step = (len(out) - 1) / (MAX_GRIDS - 1)
        out = [out[round(i * step)] for i in range(MAX_GRIDS)]
    return out


def unfold(lay: MapLayout, header) -> MapLayout | None:
    """The layout without its bands (None when it has none): the same rows, tiles, K, gaps,
    region and grid columns, the collapsed stretches drawn as the tiles they are."""
    if not lay.bands:
        return None
    out = MapLayout.build(header, kind=lay.kind, ppp=lay.ppp, gap=lay.gap, vgap=lay.vgap,
                          row_pages=lay.row_pages, tile_pages=lay.row_pages * lay.tile_rows,
                          window=lay.window, cols=lay.cols)
    out.frames_seen = lay.frames_seen
    return out


def band_about(lay: MapLayout, names: list[str]) -> Callable:
    """What a band is, for the hover: '10 GiB - 25 GiB: 15 GiB no flags, unchanged in every
    frame' (the frames drawn decided it)."""
    return lambda band: band_text(lay, names, band, ", unchanged in every frame")


def _plain(v):
    if dataclasses.is_dataclass(v):
        return {k: _plain(x) for k, x in dataclasses.asdict(v).items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def classes_json(side, theme: str, keep: bool) -> dict:
    """The classes in legend order: names, colours, partly-free tints, idle ones."""
    scheme = side.pic.scheme
    pal = Palette.make(scheme, theme, tints=keep)
    n = len(scheme)
    tint = pal.colors[pal.tint[:n]] if pal.tint is not None else pal.colors[:n]
    return {"names": scheme.names, "colors": [hex_color(tuple(c)) for c in pal.colors[:n]],
            "tints": [hex_color(tuple(c)) for c in tint],
            "descriptions": [c.description for c in scheme.classes],
            "idle": list(idle_classes(scheme)), "hole": HOLE,
            "ui": dict(zip(("bg", "fg", "dim", "ribbon_a", "ribbon_b", "changed", "frame"),
                           THEME_UI[theme], strict=True)),
            "lines": list(METRIC_COLORS_DARK if theme == "dark" else METRIC_COLORS),
            "keep": keep}


def flag_rows(values: list[int]) -> list[list[str]]:
    """Per distinct flag word, as page-types prints it: the flags it shows (well-known bits:
    hex, symbolic letters, long names), then the raw word and its names (page-types -r)."""
    v = np.array(values, np.uint64)
    shown, raw = kpf.well_known(v).tolist(), kpf.expand_overloaded(v).tolist()
    return [[f"0x{s:016x}", kpf.symbolic(s), kpf.long_symbolic(s), f"0x{w:016x}",
             kpf.long_symbolic(r)] for s, w, r in zip(shown, values, raw, strict=True)]


KEY_EVERY = 30  # a frame stored whole every this many; the others as patches of the one before


def runs_patch(prev: tuple[np.ndarray, np.ndarray] | None, lengths: np.ndarray,
               values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, values) of the PFN ranges whose value differs from the previous frame's
    (prev: its (ends, values); None: the whole frame), neighbours of one value joined."""
    ce = np.cumsum(lengths, dtype=np.int64)
    if prev is None:
        return np.concatenate(([0], ce[:-1])), ce, values
    pe, pv = prev
    bounds = _sorted_distinct(np.concatenate((pe, ce)))
    starts = np.concatenate(([0], bounds[:-1]))
    a = pv[np.minimum(np.searchsorted(pe, starts, "right"), pv.size - 1)]
    b = values[np.searchsorted(ce, starts, "right")]
    diff = a != b
    s, e, v = starts[diff], bounds[diff], b[diff]
    if s.size > 1:
        new = np.ones(s.size, dtype=bool)
        new[1:] = (s[1:] != e[:-1]) | (v[1:] != v[:-1])
        idx = np.flatnonzero(new)
        s, v = s[idx], v[idx]
        e = e[np.append(idx[1:] - 1, e.size - 1)]
    return s, e, v


class Stream:
    """One per-PFN channel of a map as the page stores it: a key frame every KEY_EVERY frames
    (run lengths, values), the others a patch of the frame before (starts, ends, values)."""

    def __init__(self):
        self.prev: tuple[np.ndarray, np.ndarray] | None = None
        self.count = 0

    def add(self, lengths: np.ndarray, values: np.ndarray) -> list[np.ndarray]:
        """Three sections (key: lengths; patch: gaps and lengths), then the values as a
        palette of this frame's distinct values and a code per run."""
        if self.count % KEY_EVERY == 0:
            out = [lengths.astype(np.uint32), np.zeros(0, np.uint8)]
            v = values
        else:
            s, e, v = runs_patch(self.prev, lengths, values)
            out = [_gaps(s, e), (e - s).astype(np.uint32)]
        palette = _sorted_distinct(v)
        out += [_small(palette), _small(np.searchsorted(palette, v))]
        self.prev = (np.cumsum(lengths, dtype=np.int64), values)
        self.count += 1
        return out


def side_json(side, positions: list[int], theme: str, metric_list, budget: list[int],
              progress: Callable[[], None] | None = None, *, keep: bool = True) -> dict:
    """One map's part of the page: header, layout, classes, frames (read once, in order).
    keep: pixels of K > 1 pages keep the pages that fragment (the class runs carry ranks)."""
    src, lay, header = side.source, side.lay, side.source.header
    flags_t, cgroup_t = ValueTable(), ValueTable()
    frames: list[dict] = []
    if not positions:
        return {}
    want = set(positions)
    # the class of a run: from a table per distinct flag value where the scheme classifies
    # values; from a stream of class runs where it needs the runs (folios) or another channel
    by_table = side.channel == "flags" and not side.pic.scheme.by_runs
    cls_s, flag_s, cg_s, wl_s = Stream(), Stream(), Stream(), Stream()
    n_cls = len(side.pic.scheme)
    for pos, t, frame in src.iter_frames(min(positions), max(positions) + 1, 1):
        if pos not in want:
            continue
        runs = getattr(frame, side.channel)
        cls = side.classifier(runs.values, runs.lengths)
        cruns = lay.class_runs(cls, runs.lengths, page_ranks(runs.values) if keep else None)
        f = frame.flags
        blobs = flag_s.add(f.lengths, flags_t.indices(f.values))
        if frame.cgroup is not None:
            blobs += cg_s.add(frame.cgroup.lengths, cgroup_t.indices(frame.cgroup.values))
        if frame.workload is not None:
            blobs += wl_s.add(frame.workload.lengths,
                              (frame.workload.values != 0).astype(np.uint8))
        if not by_table:
            blobs += cls_s.add(*merge_runs(cls, runs.lengths)[::-1])
        item = {"pos": pos, "t": t - src.times[0], "runs": _blob(*blobs),
                "sizes": lay.class_pages(cruns, n_cls).tolist()}
        if metric_list:
            item["metrics"] = metric_values(src.metrics_of(frame), src.context_of(pos),
                                            metric_list, src.header.hpage_pages)
        budget[0] += len(item["runs"])
        if budget[0] > MAX_PAGE_BYTES:
            raise PvrecError(TOO_BIG.format(name=src.name, limit=format_bytes(MAX_PAGE_BYTES),
                                            what=f"{len(frames) + 1} of {len(positions)} "
                                                 f"frames took {format_bytes(budget[0])}"))
        frames.append(item)
        if progress:
            progress()
    names = dict(header.cgroup_names)
    return {
        "name": src.name, "path": _given_path(src), "hostname": header.hostname, "kernel": header.kernel,
        "command": list(header.command), "start": header.start_wall,
        "interval": header.interval, "page_size": header.page_size,
        "pfn_count": header.pfn_count, "ram_pages": lay.ram_pages,
        "hpage_pages": header.hpage_pages, "title": side.pic.opt.title,
        "cell": getattr(side.pic, "cell", 0), "channel": side.channel,
        "highlight": side.highlight,
        "layout": layout_json(lay, getattr(side.pic, "band_label", None),
                              band_about(lay, side.pic.scheme.names), unfold(lay, header)),
        "classes": classes_json(side, theme, keep),
        "flags": flag_rows(flags_t.values),
        "cgroups": [names.get(v, f"memcg inode {v}" if v else "(none)")
                    for v in cgroup_t.values],
        "metrics": [f"{name} ({zone})" for name, zone in metric_list] if metric_list else [],
        "frames": frames, "count": len(src), "key_every": KEY_EVERY,
        "streams": [c for c in ("flags", "cgroup", "workload") if c in src.channels] +
                   ([] if by_table else ["classes"]),
        "by_table": by_table, "value_class": _table(side.classifier, flags_t, by_table),
        "value_rank": page_ranks(np.array(flags_t.values, np.uint64)).tolist(),
    }


def _given_path(src) -> str:
    """The recording as the user named it to `pvrec render` (shell-quoted), for the page's
    `pvrec list` command: it runs from where they rendered; the name where none was given."""
    rec = getattr(src, "rec", None)
    return shlex.quote(str(rec.path) if rec is not None else src.name)


def _table(classifier, table: ValueTable, by_table: bool) -> list[int]:
    """The class of each distinct flag value (where the scheme classifies values)."""
    if not by_table or not table.values:
        return []
    return classifier(np.array(table.values, np.uint64)).tolist()


def _gaps(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each range's distance from the end of the one before (small numbers: they compress)."""
    out = starts.astype(np.int64)
    out[1:] -= ends[:-1]
    return out.astype(np.uint32)


def _small(idx: np.ndarray) -> np.ndarray:
    return idx.astype(_index_type(int(idx.max()) + 1 if idx.size else 1))
