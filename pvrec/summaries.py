"""Per-frame summaries of a recording, computed once and cached: the pages of each distinct flag
value in RAM (any class scheme's sizes follow from it), the fragmentation metrics per zone, the
pages the workload maps (recordings with the workload channel), the pages of each memory
cgroup (recordings with the cgroup channel: what --color-by cgroup ranks) and the map tiles
whose pages changed since the frame before (what the render's collapse pre-pass follows).

`pvrec info` and the render's timeline read these instead of decoding every frame on each call.
The cache sits beside the recording (SUMMARY_FILE), else in the per-user cache directory
(read-only recordings), else nowhere: it is never required. It is untrusted input like the
rest of a recording (a shared one may carry a hostile cache): loaded with allow_pickle=False,
bounded, checked; a cache that fails a check is rebuilt, never believed. Each frame's entry is
keyed on its index line and its file's name, size and mtime, so a recording still being
recorded extends its cache frame by frame.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvrec.layout import TILE_ROWS
from pvrec.metrics import METRICS, frame_metrics, max_order_of, zones_of
from pvrec.recording.format import SUMMARY_FILE, FrameInfo
from pvrec.recording.reader import Recording
from pvrec.runs import Runs, blocks_touched, changed_ranges, pages_per_value

VERSION = 3  # 2: the workload's pages; 3: the memory cgroups' pages, the tiles touched
MAX_CACHE_BYTES = 1 << 30  # a cache file larger than this is not read (rebuilt in memory)
MAX_META_CHARS = 64 << 20


@dataclass
class FrameSummary:
    """One frame: its distinct flag values in RAM, their pages, {zone: {metric: value}}, the
    pages the workload's processes map, the pages of each memory cgroup, and the tiles whose
    pages changed since the frame before."""

    values: np.ndarray  # uint64, sorted, unique
    pages: np.ndarray  # int64 pages of each value inside the header's RAM ranges
    metrics: dict[str, dict[str, float]]
    workload: int = -1  # -1: the recording has no workload channel
    # (memcg inodes, sorted and unique; pages of each, all PFNs); None: no cgroup channel
    cgroups: tuple[np.ndarray, np.ndarray] | None = None
    # the tiles (of tile_pages) with a page changed since the frame before; None: not known
    touched: np.ndarray | None = None

    def class_pages(self, classify, n_classes: int) -> np.ndarray:
        """Pages per class of a value scheme (classify: values -> class ids), RAM only."""
        return np.bincount(classify(self.values), weights=self.pages,
                           minlength=n_classes).round().astype(np.int64)


def tile_pages(header) -> int:
    """Pages of a map tile, the unit of FrameSummary.touched."""
    return header.hpage_pages * TILE_ROWS


def tiles_touched(rec: Recording, changed: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The tiles that page ranges touch, sorted."""
    unit = tile_pages(rec.header)
    return np.flatnonzero(blocks_touched(*changed, unit, -(-rec.pfn_count // unit)))


def summarize_runs(runs: Runs, rec: Recording, max_order: int,
                   workload: Runs | None = None, cgroup: Runs | None = None,
                   touched: np.ndarray | None = None) -> FrameSummary:
    """The summary of one decoded frame (workload, cgroup: those channels, if recorded;
    touched: tiles_touched of its changes since the frame before, when known)."""
    lengths = runs.lengths.astype(np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    inside = np.zeros(lengths.size, dtype=np.int64)
    for lo, hi in rec.header.ram_or_all:
        inside += np.maximum(np.minimum(ends, hi) - np.maximum(starts, lo), 0)
    values, inverse = np.unique(runs.values, return_inverse=True)
    pages = np.bincount(inverse.ravel(), weights=inside, minlength=values.size)
    mapped = -1 if workload is None else int(workload.lengths[workload.values != 0].sum())
    cgroups = None
    if cgroup is not None:
        inodes, counts = pages_per_value(cgroup)
        cgroups = (inodes.astype(np.uint64), counts)
    return FrameSummary(values.astype(np.uint64), pages.round().astype(np.int64),
                        frame_metrics(runs, rec.header, max_order), mapped, cgroups, touched)


def frame_key(rec: Recording, info: FrameInfo) -> str:
    """What a frame's summary depends on: its index entry and its file's name, size and mtime."""
    try:
        st = (rec.path / info.file).stat()
    except OSError:
        return ""
    return json.dumps([info.index, info.t, info.file, info.kind, st.st_size, st.st_mtime_ns])


def chain_keys(rec: Recording) -> list[str]:
    """frame_key of every frame joined with the frame's before it: a delta decodes onto its
    chain back to the key frame, and every frame's tiles touched are counted from the frame
    before, so a change to any frame before (one damaged or gone since) makes the summaries
    after it stale too ("" where a file cannot be seen: stale, and the deltas after it)."""
    keys: list[str] = []
    for info in rec.frames:
        own = frame_key(rec, info)
        before = keys[-1] if keys else "first"
        if own and before:
            own = hashlib.sha256(f"{before}\0{own}".encode()).hexdigest()
        elif info.kind != "key":
            own = ""
        keys.append(own)
    return keys


def recording_key(rec: Recording, max_order: int) -> str:
    """What every summary depends on: the format of this cache, the header and the largest order."""
    try:
        header = (rec.path / "header.json").read_bytes()
    except OSError:
        header = b""
    return json.dumps([VERSION, hashlib.sha256(header).hexdigest(), max_order])


def cache_bytes(path: Path) -> int:
    """Bytes of the cache beside a recording (0 when none)."""
    try:
        return os.lstat(path / SUMMARY_FILE).st_size
    except OSError:
        return 0


def cache_paths(rec: Recording) -> list[Path]:
    """Where the cache may live: beside the recording, else the per-user cache directory (keyed
    by the recording's absolute path and header)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pvrec"
    try:
        header = (rec.path / "header.json").read_bytes()
    except OSError:
        header = b""
    ident = hashlib.sha256(str(rec.path.resolve()).encode() + b"\0" + header).hexdigest()[:32]
    return [rec.path / SUMMARY_FILE, base / f"summaries-{ident}.npz"]


def _metric_table(summaries: list[FrameSummary]) -> tuple[list, np.ndarray]:
    """The metrics as columns ([zone, name, is_int] each) and a float64 [frames, columns] table."""
    cols: list = []
    for s in summaries[:1]:
        cols = [[z, n, isinstance(v, int)] for z, m in s.metrics.items() for n, v in m.items()]
    table = np.array([[s.metrics[z][n] for z, n, _ in cols] for s in summaries],
                     dtype=np.float64).reshape(len(summaries), len(cols))
    return cols, table


def save(path: Path, key: str, keys: list[str], summaries: list[FrameSummary]) -> bool:
    """Write the cache atomically; False when it cannot be written (read-only, full disk)."""
    cols, table = _metric_table(summaries)
    meta = json.dumps({"key": key, "frames": keys, "columns": cols})
    counts = np.array([s.values.size for s in summaries], dtype=np.int64)
    values = np.concatenate([s.values for s in summaries] or [np.zeros(0, np.uint64)])
    pages = np.concatenate([s.pages for s in summaries] or [np.zeros(0, np.int64)])
    cg_counts, cg_inodes = _ragged([s.cgroups and s.cgroups[0] for s in summaries], np.uint64)
    _, cg_pages = _ragged([s.cgroups and s.cgroups[1] for s in summaries], np.int64)
    t_counts, t_tiles = _ragged([s.touched for s in summaries], np.int64)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".summaries-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, meta=np.array(meta), counts=counts, values=values, pages=pages,
                         metrics=table, workload=np.array([s.workload for s in summaries],
                                                          dtype=np.int64),
                         cg_counts=cg_counts, cg_inodes=cg_inodes, cg_pages=cg_pages,
                         t_counts=t_counts, t_tiles=t_tiles)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return False
    return True


def load(path: Path, key: str, columns: list[tuple[str, str]]) -> dict[str, FrameSummary]:
    """{frame key: summary} from a cache file; {} when it is missing, stale or fails a check."""
    try:
        if path.stat().st_size > MAX_CACHE_BYTES:
            return {}
        with np.load(path, allow_pickle=False) as z:
            return _parse(z, key, columns)
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile,
            EOFError):
        return {}


def expected_columns(rec: Recording, max_order: int) -> list[tuple[str, str]]:
    """The (zone, metric) columns frame_metrics gives for this header: a cache must have these."""
    names = [*METRICS, *(f"buddy_order_{o}" for o in range(max_order + 1))]
    return [(zone, n) for zone, _ in zones_of(rec.header) for n in names]


def _parse(z, key: str, columns: list[tuple[str, str]]) -> dict[str, FrameSummary]:
    meta_arr = z["meta"]
    if meta_arr.dtype.kind != "U" or meta_arr.shape != () or len(str(meta_arr)) > MAX_META_CHARS:
        return {}
    meta = json.loads(str(meta_arr))
    if not isinstance(meta, dict) or meta.get("key") != key:
        return {}
    keys, cols = meta["frames"], meta["columns"]
    counts, values, pages, table = z["counts"], z["values"], z["pages"], z["metrics"]
    workload = z["workload"]
    n = len(keys)
    inodes = _unragged(z["cg_counts"], z["cg_inodes"], n, np.uint64)
    cg_pages = _unragged(z["cg_counts"], z["cg_pages"], n, np.int64)
    touched = _unragged(z["t_counts"], z["t_tiles"], n, np.int64)
    ok = (isinstance(keys, list) and all(isinstance(k, str) for k in keys)
          and isinstance(cols, list)
          and all(isinstance(c, list) and len(c) == 3 and isinstance(c[0], str)
                  and isinstance(c[1], str) and isinstance(c[2], bool) for c in cols)
          and counts.dtype == np.int64 and counts.shape == (n,) and (counts >= 0).all()
          and values.dtype == np.uint64 and pages.dtype == np.int64
          and values.shape == pages.shape == (int(counts.sum()),)
          and table.dtype == np.float64 and table.shape == (n, len(cols))
          and np.isfinite(table).all() and [(c[0], c[1]) for c in cols] == columns
          and (pages >= 0).all()
          and workload.dtype == np.int64 and workload.shape == (n,) and (workload >= -1).all()
          and inodes is not None and cg_pages is not None and touched is not None
          and all(a is None or (_ascending(a) and bool((p >= 0).all()))
                  for a, p in zip(inodes, cg_pages, strict=True))
          and all(t is None or (_ascending(t) and bool((t[:1] >= 0).all())) for t in touched))
    if not ok:
        return {}
    out: dict[str, FrameSummary] = {}
    ends = np.cumsum(counts)
    for i, k in enumerate(keys):
        a, b = int(ends[i] - counts[i]), int(ends[i])
        if not _ascending(values[a:b]):
            return {}  # a frame's values are sorted and distinct
        cgroups = None if inodes[i] is None else (inodes[i], cg_pages[i])
        metrics: dict[str, dict[str, float]] = {}
        for (zone, name, is_int), v in zip(cols, table[i].tolist(), strict=True):
            metrics.setdefault(zone, {})[name] = int(v) if is_int else v
        out[k] = FrameSummary(values[a:b], pages[a:b], metrics, int(workload[i]), cgroups,
                              touched[i])
    return out


def _ragged(items: list[np.ndarray | None], dtype) -> tuple[np.ndarray, np.ndarray]:
    """(counts, the arrays concatenated) of one array or None per frame (a count of -1)."""
    counts = np.array([-1 if a is None else a.size for a in items], dtype=np.int64)
    flat = [a for a in items if a is not None]
    return counts, np.concatenate(flat).astype(dtype) if flat else np.zeros(0, dtype)


def _unragged(counts: np.ndarray, flat: np.ndarray, n: int, dtype
              ) -> list[np.ndarray | None] | None:
    """_ragged's arrays back, per frame (None when they fail a check)."""
    if counts.dtype != np.int64 or counts.shape != (n,) or (counts < -1).any() \
            or (counts > flat.size).any() or flat.dtype != dtype \
            or flat.shape != (int(np.maximum(counts, 0).sum()),):  # (bounded: cannot wrap)
        return None
    ends = np.cumsum(np.maximum(counts, 0)).tolist()
    return [None if c < 0 else flat[e - c:e] for c, e in zip(counts.tolist(), ends, strict=True)]


def _ascending(a: np.ndarray) -> bool:
    """Sorted and distinct."""
    return a.size < 2 or bool((a[1:] > a[:-1]).all())


def _fresh(rec: Recording, cached: dict[str, FrameSummary], keys: list[str],
           max_order: int) -> Iterator[tuple[int, FrameSummary]]:
    """(position, summary) of the frames the cache lacks, decoded from the key frame at or
    before the frame before the first one missing (so that one's changes since the frame
    before are known, also where it is a key frame)."""
    missing = [i for i, k in enumerate(keys) if not k or k not in cached]
    if not missing:
        return
    position = {id(info): i for i, info in enumerate(rec.frames)}
    first = max([i for i in range(max(missing[0], 1)) if rec.frames[i].kind == "key"] or [0])
    prev: tuple[int, Runs] | None = None
    for info, frame in rec.iter_decoded(first, channels=("flags", "workload", "cgroup")):
        pos = position[id(info)]
        if not keys[pos] or keys[pos] not in cached:
            touched = None
            if prev is not None and prev[0] == pos - 1:  # a key frame: compared with it
                changed = frame.changed or changed_ranges(prev[1].values, prev[1].lengths,
                                                          frame.flags.values,
                                                          frame.flags.lengths)
                touched = tiles_touched(rec, changed)
            yield pos, summarize_runs(frame.flags, rec, max_order, frame.workload, frame.cgroup,
                                      touched)
        prev = (pos, frame.flags)


def frame_summaries(rec: Recording, cache: bool = True, decode: bool = True
                    ) -> list[tuple[FrameInfo, FrameSummary]]:
    """(index entry, summary) of every frame that can be decoded, in order; from the cache where
    it is fresh, decoded (and cached, when some place takes it) where not. decode=False: the
    cached ones alone, no frame decoded (for a caller that has a cheaper way without them)."""
    len(rec)  # drop the frames that cannot be read
    max_order = max_order_of(f.context for f in rec.frames)
    key = recording_key(rec, max_order)
    keys = chain_keys(rec)
    paths = cache_paths(rec) if cache else []
    cached: dict[str, FrameSummary] = {}
    for path in paths:
        cached = load(path, key, expected_columns(rec, max_order))
        if cached:
            break
    got = {i: cached[k] for i, k in enumerate(keys) if k and k in cached}
    new = dict(_fresh(rec, cached, keys, max_order)) if decode else {}
    got.update(new)
    out = [(rec.frames[i], got[i]) for i in sorted(got)]
    if new and paths:
        done = [(keys[i], got[i]) for i in sorted(got) if keys[i]]
        for path in paths:
            if save(path, key, [k for k, _ in done], [s for _, s in done]):
                break
    return out


def cached_summaries(rec: Recording) -> dict[int, FrameSummary]:
    """{position in rec.frames: summary} of the frames the cache holds; none decoded (for a
    caller with a cheaper way than decoding every frame when the cache is cold)."""
    got = frame_summaries(rec, decode=False)
    at = {id(info): i for i, info in enumerate(rec.frames)}
    return {at[id(info)]: s for info, s in got}


def cached_field(rec: Recording, name: str, positions) -> dict[int, object] | None:
    """{position: that summary field} from the cache if it holds the field (not None) for
    every one of the positions, else None (a caller then reads the frames)."""
    got = {p: getattr(s, name) for p, s in cached_summaries(rec).items()
           if getattr(s, name) is not None}
    return got if all(p in got for p in positions) else None
