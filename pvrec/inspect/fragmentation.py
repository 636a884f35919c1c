"""The rows of `pvrec metrics`: per frame and zone the figures of pvrec.metrics, beside the
kernel's own counts of the same moment, for a CSV.

The columns follow the recording: its zones, and its kernel's buddy orders (from the
buddyinfo stored with its frames).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from pvrec.classes import make_scheme
from pvrec.errors import PvrecError
from pvrec.metrics import (
    check_metric_names,
    check_recorded,
    context_metrics,
    frame_metrics,
    kernel_figures,
    max_order_of,
    zones_of,
)
from pvrec.recording.format import FrameInfo
from pvrec.recording.reader import Recording
from pvrec.region import Region, parse_region
from pvrec.runs import changed_ranges
from pvrec.summaries import frame_summaries


def metrics_region(rec: Recording, spec: str | None) -> Region | None:
    """--region SPEC of `pvrec metrics` (None: all of memory); `changed` is where a page
    changed its default class between two frames of the recording."""
    return None if spec is None else parse_region(spec, rec.header, lambda: changed_span(rec))


def changed_span(rec: Recording) -> tuple[int, int] | None:
    """[lo, hi) PFNs holding every page whose (default scheme) class changed between frames."""
    scheme, prev = make_scheme("default"), None
    lo, hi = rec.header.pfn_count, 0
    for _info, runs in rec.iter_runs():
        cur = (scheme.classify_values(runs.values), runs.lengths)
        if prev is not None:
            s, e = changed_ranges(*prev, *cur)
            if s.size:
                lo, hi = min(lo, int(s[0])), max(hi, int(e[-1]))
        prev = cur
    return (lo, hi) if hi > lo else None


def check_zones(rec: Recording, zones: list[str], window: tuple[int, int] | None = None
                ) -> list[str]:
    """The zones, or a PvrecError naming the one the recording (or its region) does not have."""
    known = [z for z, _ in zones_of(rec.header, window)]
    for z in zones:
        if z not in known:
            where = "this recording" if window is None else "the region"
            raise PvrecError(f"no zone {z!r} in {where}; zones: {', '.join(known)}")
    return zones


def metric_rows(rec: Recording, metrics: list[str] | None = None,
                zones: list[str] | None = None, region: Region | None = None) -> Iterator[dict]:
    """One dict per frame: frame, t, and a zone.metric column per figure asked for (None:
    all; a metric asked for brings its kernel_ twin along), of the region's pages of each zone
    when a region is given. Unknown names fail at once."""
    max_order = max_order_of(f.context for f in rec.frames)
    window = None if region is None else (region.start, region.end)
    if metrics is not None:
        check_metric_names(metrics, max_order)
        check_recorded(metrics, (f.context for f in rec.frames))
    if zones:
        check_zones(rec, zones, window)
    return _rows(rec, metrics, zones, max_order, window)


def _rows(rec: Recording, metrics: list[str] | None, zones: list[str] | None, max_order: int,
          window: tuple[int, int] | None) -> Iterator[dict]:
    hp = rec.header.hpage_pages
    marked = any(f.context.get("markers") for f in rec.frames)
    for info, figures in _frame_figures(rec, max_order, window):
        row = {"frame": info.index, "t": info.t}
        if marked:  # the workload's markers of the frame (pvrec mark), in the order sent
            row["markers"] = "; ".join(m["text"] for m in info.context.get("markers", []))
        for zone, values in figures.items():
            if zones and zone not in zones:
                continue
            values = dict(values)
            if window is None:  # the kernel counts whole zones: no twin for a region
                values.update(kernel_figures(info.context, zone, hp))
                values.update(context_metrics(info.context, zone, hp))
            for name, value in values.items():
                if metrics is None or name in metrics or (
                        name.startswith("kernel_") and name[7:] in metrics):
                    row[f"{zone}.{name}"] = value
        yield row


def _frame_figures(rec: Recording, max_order: int, window: tuple[int, int] | None
                   ) -> Iterator[tuple[FrameInfo, dict[str, dict[str, float]]]]:
    """(index entry, {zone: figures}) of every frame: whole zones from the summaries cache
    (no frame decoded when it is fresh), a region's pages from the decoded runs."""
    if window is None:
        return ((info, s.metrics) for info, s in frame_summaries(rec))
    return ((info, frame_metrics(runs, rec.header, max_order, window))
            for info, runs in rec.iter_runs())


def metrics_csv(rec: Recording, metrics: list[str] | None = None,
                zones: list[str] | None = None, region: Region | None = None) -> str:
    """metric_rows as CSV text: a header line, then one line per frame."""
    buf = io.StringIO()
    writer = None
    for row in metric_rows(rec, metrics, zones, region):
        if writer is None:
            writer = csv.DictWriter(buf, fieldnames=list(row), extrasaction="ignore",
                                    lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)
    return buf.getvalue()

