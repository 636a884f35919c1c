"""What a render reads from its sources besides the frames it draws: the frames a data-driven
scheme (--classes flags) is fitted on, the cgroup tally that chooses --color-by cgroup's
colours, and the per-frame class sizes and metrics of the --timeline strips.

The first two look at up to 32 key frames spread over the rendered range and its ends, so the
colours are chosen before the first frame is drawn and do not change during the video; the
cgroup tally reads them from the summaries cache when `pvrec info` or a --timeline has filled it.
"""

from __future__ import annotations

import numpy as np

from pvrec.classes import Scheme, ValueClassifier, fit_scheme
from pvrec.metrics import metric_values
from pvrec.render.raster import MapLayout
from pvrec.runs import add_pages_per_value
from pvrec.sources import RecordingSource, Source
from pvrec.summaries import cached_field


def fit_data_scheme(scheme: Scheme, ranges: list[tuple[Source, int, int]]) -> None:
    """Show a data-driven scheme (--classes flags) up to 32 frames spread over each range."""
    if not scheme.needs_data:
        return

    fit_scheme(scheme, (source.read_runs(p) for source, start, end in ranges
                        for p in sample_positions(source, start, end)))


def sample_positions(source: Source, start: int, end: int, most: int = 32) -> list[int]:
    """Up to `most` key frames spread over [start, end], and both ends: cheap frames to read
    for what a whole range holds."""
    keys = [p for p in source.key_positions() if start <= p <= end]
    if len(keys) > most:
        keys = [keys[int(i)] for i in np.linspace(0, len(keys) - 1, most)]
    return sorted(set(keys) | {start, end})


def cgroup_tally(source: Source, start: int, end: int) -> tuple[dict[int, int], dict[int, str]]:
    """({memcg inode: pages}, {inode: path}) of a recording over up to 32 key frames of the
    range and its ends (from the summaries cache when it has them all: no frame decoded);
    names from the header (start) and end.json (end), the later winning."""
    pages: dict[int, int] = {}
    positions = sample_positions(source, start, end)
    cached = _cached_cgroups(source, positions)
    for p in positions:
        c = cached[p] if cached is not None else source.read_frame(p).cgroup
        if c is not None:
            add_pages_per_value(c, pages)
    names = dict(source.header.cgroup_names)  # checked by the Header; end.json is not
    end_json = getattr(getattr(source, "rec", None), "end", None) or {}
    table = end_json.get("cgroup_names")
    if isinstance(table, dict):
        for k, v in table.items():
            if isinstance(v, str) and str(k).isdigit():
                names[int(k)] = v
    return pages, names


def _cached_cgroups(source: Source, positions: list[int]
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]] | None:
    """{position: (inodes, pages)} from the summaries cache, if it has every position's."""
    if not isinstance(source, RecordingSource) or "cgroup" not in source.rec.channels:
        return None
    return cached_field(source.rec, "cgroups", positions)  # type: ignore[return-value]


def class_timeline(source: Source, classifier: ValueClassifier, lay: MapLayout, first: int,
                   last: int, every: int, n_cls: int, channel: str = "flags",
                   metrics: list[tuple[str, str]] | None = None, watch=None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pages per class (of the layout's window) of every frame in the range (one pass over
    the runs, no pixels), and the values of the (metric, zone) pairs asked for; each frame's
    class runs are also fed to `watch` (collapse.Watch), if given."""
    ts, rows, mrows = [], [], []
    for pos, t, frame in frames_of(source, first, last, every, channel, bool(metrics)):
        runs = getattr(frame, channel)
        ts.append(t)
        cruns = lay.class_runs(classifier(runs.values, runs.lengths), runs.lengths)
        rows.append(lay.class_pages(cruns, n_cls))
        if watch is not None:
            watch.add(cruns)
        if metrics:
            mrows.append(metric_values(source.metrics_of(frame), source.context_of(pos),
                                       metrics, source.header.hpage_pages))
    values = np.array(mrows, dtype=np.float64).reshape(-1, len(metrics)) if metrics else \
        np.zeros((len(ts), 0))
    return (np.array(ts, dtype=np.float64), np.array(rows, dtype=np.int64).reshape(-1, n_cls),
            values)


def frames_of(source: Source, first: int, last: int, step: int, channel: str = "flags",
              context: bool = False):
    """(position, t, Frame) of the range: the flags' runs alone when that is all needed."""
    return source.iter_frames(first, last + 1, step,
                              ("flags",) if channel == "flags" and not context else None)
