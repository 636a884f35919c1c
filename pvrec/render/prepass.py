"""The render's pass over its frames before the first is drawn: the --timeline strips (sizes of
each class per frame, metrics), which memory stays unchanged (collapsed into bands), and the
range `--region changed` draws. One pass does all three when it can: the strips and the watch
read the same frames (a video's: the plan's, after --start/--end/--every; a picture's: the
whole recording, as its strip shows); only `--region changed` with --timeline reads twice (the
strips count the region, known after the first pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvrec.classes import ValueClassifier
from pvrec.metrics import metric_values
from pvrec.recording.header import Header
from pvrec.region import Region, parse_region, whole
from pvrec.render.collapse import Watch, stretches
from pvrec.render.data import class_timeline, frames_of
from pvrec.render.plan import Plan
from pvrec.render.raster import MapLayout, node_spans
from pvrec.render.strips import metric_scales
from pvrec.sources import RecordingSource, Source
from pvrec.summaries import cached_field, frame_summaries, tile_pages


@dataclass
class Prepass:
    """What the pass found: each side's (timeline, metrics) for its Picture, the region, the
    bands of each side, and how many frames decided them."""

    strips: list[tuple]
    region: Region
    bands: list[list[tuple[int, int, int]]]
    frames: int = 0


def prepass(sources: list[Source], plan: Plan, picture: bool,
            classifiers: list[ValueClassifier], every: int, n_cls: int, channel: str,
            metric_list: list[list[tuple[str, str]]] | None, metric_scale: str = "zero", *,
            timeline: bool = False, region: str | None = None,
            collapse: bool = False, pool=None) -> Prepass:
    """Read what the frames say before drawing them (see the module docstring); pool: the
    render's workers (parallel.Pool), which may share the reading."""
    headers = [s.header for s in sources]
    spans = [_span(plan, picture, i, len(s), every) for i, s in enumerate(sources)]
    watching = collapse or region == "changed"
    watches = [Watch(_whole(h), h.hpage_pages, changes=region == "changed") for h in headers
               ] if watching else []
    known = region != "changed"
    win = parse_region(region, headers[0]) if region and known else whole(headers[0])
    strips: list[tuple] = [(None, None)] * len(sources)
    if timeline and known:  # one pass: the strips feed the watch
        strips = _strips(sources, plan, picture, classifiers, headers, win, spans, n_cls,
                         channel, metric_list, metric_scale, watches, pool)
    elif watching:
        for s, c, w, (a, b, step) in zip(sources, classifiers, watches, spans, strict=True):
            lay = _whole(s.header)
            if isinstance(s, RecordingSource) and channel == "flags" and not w.changes \
                    and not c.scheme.by_runs:  # the static tiles' pages alone are followed
                touched = _touched(s, a, b, w.unit)
                w.follow(s.rec.iter_stored(a, b + 1, None if touched is None else
                                           w.needs(touched)),
                         set(range(a, b + 1, step)), c, lay)
            elif pool is not None and not w.changes:  # render --jobs: each worker a share
                pool.watch(s, c, lay, w, a, b, step, channel)
            else:
                watch_frames(s, c, lay, w, a, b, step, channel)
    if not known:
        win = parse_region(region or "", headers[0], changed=lambda: _union(watches))
        if timeline:
            strips = _strips(sources, plan, picture, classifiers, headers, win, spans, n_cls,
                             channel, metric_list, metric_scale, [], pool)
    bands: list[list[tuple[int, int, int]]] = [[] for _ in sources]
    if collapse:
        breaks = [s for _n, s, _e in node_spans(headers[0])]
        bands = stretches(watches, (win.start, win.end), breaks)
    return Prepass(strips, win, bands, watches[0].frames if watches else 0)


def watch_frames(source: Source, classifier: ValueClassifier, lay: MapLayout, watch: Watch,
                 first: int, last: int, step: int, channel: str) -> None:
    """Feed watch the class runs (of lay) of frames first..last, every step."""
    for _pos, _t, frame in frames_of(source, first, last, step, channel):
        runs = getattr(frame, channel)
        watch.add(lay.class_runs(classifier(runs.values, runs.lengths), runs.lengths))


def _whole(header: Header, region: Region | None = None) -> MapLayout:
    """A layout of one page per pixel: its class runs are the frame's, holes spliced in."""
    window = (region.start, region.end) if region is not None else None
    return MapLayout.build(header, kind="rows", width=header.hpage_pages, window=window)


def _span(plan: Plan, picture: bool, i: int, frames: int, every: int) -> tuple[int, int, int]:
    """(first, last, step) of the frames side i's strip and watch read: a picture's strip spans
    the whole recording, a video's what it shows (the run that sets the time: every Nth)."""
    if picture:
        return 0, frames - 1, 1
    a, b = plan.ranges[i]
    return a, b, every if i == plan.master else 1


def _touched(source: RecordingSource, first: int, last: int, unit: int
             ) -> dict[int, np.ndarray] | None:
    """{position: tiles its pages changed in since the frame before} of the frames after
    first up to last, from a warm summaries cache (None unless it knows every one): the
    frames that change none of the tiles the collapse watch follows are then not read."""
    if unit != tile_pages(source.header) or last <= first:
        return None
    got = cached_field(source.rec, "touched", range(first + 1, last + 1))
    tiles = -(-source.header.pfn_count // unit)
    if got is None or any(t.size and not 0 <= int(t[-1]) < tiles for t in got.values()):
        return None  # (sorted: the last is the largest; a tile past memory is a lie)
    return got


def _union(watches: list[Watch]) -> tuple[int, int] | None:
    got = [r for w in watches if (r := w.changed()) is not None]
    return (min(r[0] for r in got), max(r[1] for r in got)) if got else None


def _summary_timeline(source: Source, classifier: ValueClassifier, first: int, last: int,
                      step: int, n_cls: int, metrics: list[tuple[str, str]] | None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """class_timeline of the whole map from the recording's cached summaries, no frame decoded
    once the cache is warm (None where they do not serve: not a recording, a by-runs scheme)."""
    if not isinstance(source, RecordingSource) or classifier.scheme.by_runs:
        return None
    wanted = {id(source.rec.frames[p]) for p in range(first, last + 1, step)
              if 0 <= p < len(source.rec.frames)}
    ts, rows, mrows = [], [], []
    for info, summary in frame_summaries(source.rec):
        if id(info) not in wanted:
            continue
        ts.append(info.t)
        rows.append(summary.class_pages(classifier, n_cls))
        if metrics:
            mrows.append(metric_values(summary.metrics, info.context, metrics,
                                       source.header.hpage_pages))
    values = np.array(mrows, dtype=np.float64).reshape(-1, len(metrics)) if metrics else \
        np.zeros((len(ts), 0))
    return (np.array(ts, dtype=np.float64), np.array(rows, dtype=np.int64).reshape(-1, n_cls),
            values)


def _strips(sources: list[Source], plan: Plan, picture: bool,
            classifiers: list[ValueClassifier], headers: list[Header], region: Region,
            spans: list[tuple[int, int, int]], n_cls: int, channel: str,
            metric_list: list[list[tuple[str, str]]] | None, metric_scale: str,
            watches: list[Watch], pool=None) -> list[tuple]:
    """Each side's (timeline, metrics) for its Picture: the sizes of the region's classes; a
    metric has one scale for both runs, so the lines compare."""
    m = plan.master
    span_end = plan.span_end(picture)
    tls: list[tuple] = []
    for i, s in enumerate(sources):
        a, b, step = spans[i]
        wanted = metric_list[i] if metric_list else None
        whole_map = (region.start, region.end) == (0, headers[i].pfn_count)
        got = _summary_timeline(s, classifiers[i], a, b, step, n_cls, wanted) \
            if whole_map and not watches and channel == "flags" else None
        watch = watches[i] if watches else None
        timeline = pool.timeline if pool is not None and not (watch and watch.changes) else \
            class_timeline  # render --jobs: each worker a share
        ts, tp, tm = got or timeline(s, classifiers[i], _whole(headers[i], region), a, b, step,
                                     n_cls, channel, wanted, watch=watch)
        if i != m and len(ts) and ts[-1] - s.times[0] < span_end:
            # the shorter run's strip holds its last sizes up to the end of the longer one
            ts = np.append(ts, s.times[0] + span_end)
            tp, tm = np.vstack((tp, tp[-1:])), np.vstack((tm, tm[-1:]))
        mt = None
        if metric_list:
            mt = ([f"{name} ({zone})" for name, zone in metric_list[i]], tm)
        tls.append(((ts, tp), mt))
    if metric_list:
        shared = metric_scales([mt[1] for _, mt in tls], metric_scale)  # type: ignore[index]
        tls = [(tl, (*mt, shared)) for tl, mt in tls]  # type: ignore[misc]
    return tls
