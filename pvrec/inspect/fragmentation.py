"""The rows of `pvrec metrics`: per frame and zone the figures of pvrec.metrics, beside the
kernel's own counts of the same moment, for a CSV.

The columns follow the recording: its zones, and its kernel's buddy orders (from the
buddyinfo stored with its frames).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from pvrec.errors import PvrecError
from pvrec.metrics import (
    check_metric_names,
    context_metrics,
    frame_metrics,
    kernel_figures,
    max_order_of,
    zones_of,
)
from pvrec.recording.reader import Recording


def check_zones(rec: Recording, zones: list[str]) -> list[str]:
    """The zones, or a PvrecError naming the one the recording does not have."""
    known = [z for z, _ in zones_of(rec.header)]
    for z in zones:
        if z not in known:
            raise PvrecError(f"no zone {z!r} in this recording; zones: {', '.join(known)}")
    return zones


def metric_rows(rec: Recording, metrics: list[str] | None = None,
                zones: list[str] | None = None) -> Iterator[dict]:
    """One dict per frame: frame, t, and a zone.metric column per figure asked for (None:
    all; a metric asked for brings its kernel_ twin along). Unknown names fail at once."""
    max_order = max_order_of(f.context for f in rec.frames)
    if metrics is not None:
        check_metric_names(metrics, max_order)
    if zones:
        check_zones(rec, zones)
    return _rows(rec, metrics, zones, max_order)


def _rows(rec: Recording, metrics: list[str] | None, zones: list[str] | None, max_order: int
          ) -> Iterator[dict]:
    hp = rec.header.hpage_pages
    marked = any(f.context.get("markers") for f in rec.frames)
    for info, runs in rec.iter_runs():
        row = {"frame": info.index, "t": info.t}
        if marked:  # the workload's markers of the frame (pvrec mark), in the order sent
            row["markers"] = "; ".join(m["text"] for m in info.context.get("markers", []))
        for zone, values in frame_metrics(runs, rec.header, max_order).items():
            if zones and zone not in zones:
                continue
            values.update(kernel_figures(info.context, zone, hp))
            values.update(context_metrics(info.context, zone, hp))
            for name, value in values.items():
                if metrics is None or name in metrics or (
                        name.startswith("kernel_") and name[7:] in metrics):
                    row[f"{zone}.{name}"] = value
        yield row


def metrics_csv(rec: Recording, metrics: list[str] | None = None,
                zones: list[str] | None = None) -> str:
    """metric_rows as CSV text: a header line, then one line per frame."""
    buf = io.StringIO()
    writer = None
    for row in metric_rows(rec, metrics, zones):
        if writer is None:
            writer = csv.DictWriter(buf, fieldnames=list(row), extrasaction="ignore",
                                    lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)
    return buf.getvalue()

