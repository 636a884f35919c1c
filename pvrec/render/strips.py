"""The strips under the map (--timeline): each class's share of RAM over the rendered frames,
stacked in legend order, and below it up to four --timeline-metrics lines, each scaled to its
own range (or to one range shared by two runs side by side). Drawn once, into the static
canvas; a frame only moves the cursor (cursor_rows)."""

from __future__ import annotations

import numpy as np

from pvrec.classes import HOLE
from pvrec.render.palette import Palette
from pvrec.render.text import F_LABEL, Text, format_time, metric_value

TIMELINE_H = 64  # the class strip
METRICS_H = 48  # the metrics strip
LABEL_H = 15  # under the class strip: its first and last time
LINE_H = 19  # a metric's label line under the metrics strip


def strips_height(metrics: int) -> int:
    """Pixels from the top of the class strip to the end of the last metric's label."""
    h = TIMELINE_H + LABEL_H
    if metrics:
        h += 4 + METRICS_H + 4 + metrics * LINE_H
    return h


def cursor_rows(y0: int, metrics: bool) -> tuple[int, int]:
    """Rows [a, b) of the time cursor of strips whose class strip starts at row y0."""
    a, b = y0 - 3, y0 + TIMELINE_H + 3
    if metrics:
        b += LABEL_H + 4 + METRICS_H
    return a, b


def draw_strips(canvas: np.ndarray, x0: int, y0: int, w: int, pal: Palette, text: Text,
                timeline: tuple[np.ndarray, np.ndarray], metrics: tuple | None) -> None:
    """The classes' sizes over the whole recording, stacked, in legend order from the top;
    then the metrics' lines (x0, y0: the class strip's top left, w its width)."""
    times, pages = timeline
    if len(times) == 0:
        return
    h = TIMELINE_H
    t0, span = float(times[0]), max(float(times[-1] - times[0]), 1e-9)
    col_t = t0 + (np.arange(w) + 0.5) / w * span
    idx = np.clip(np.searchsorted(times, col_t, "right") - 1, 0, len(times) - 1)
    shown = [c for c in range(pages.shape[1]) if c != HOLE]
    frac = pages[idx][:, shown].astype(np.float64)
    frac /= np.maximum(frac.sum(axis=1, keepdims=True), 1)
    edges = np.rint(np.concatenate([np.zeros((w, 1)), np.cumsum(frac, axis=1)], 1) * h)
    strip = np.full((h, w), pal.bg, dtype=np.uint8)
    ys = np.arange(h)[:, None]
    for j, cls in enumerate(shown):
        strip[(ys >= edges[:, j]) & (ys < edges[:, j + 1])] = cls
    canvas[y0 - 1:y0 + h + 1, x0 - 1:x0 + w + 1] = pal.frame
    canvas[y0:y0 + h, x0:x0 + w] = strip
    text.draw(canvas, x0, y0 + h + 2, format_time(0)[2:], F_LABEL, pal.dim_ramp)
    text.draw(canvas, x0 + w, y0 + h + 2, format_time(span)[2:], F_LABEL, pal.dim_ramp,
              align="right")
    if metrics:
        _draw_metrics(canvas, x0, y0 + TIMELINE_H + LABEL_H + 4, w, pal, text, metrics, idx)


def _draw_metrics(canvas: np.ndarray, x0: int, y0: int, w: int, pal: Palette, T: Text,
                  metrics: tuple, idx: np.ndarray) -> None:
    """Each metric a line under the class strip, scaled to its own range, labelled."""
    labels, values = metrics[:2]
    scale = metrics[2] if len(metrics) > 2 else None
    h = METRICS_H
    canvas[y0 - 1:y0 + h + 1, x0 - 1:x0 + w + 1] = pal.frame
    canvas[y0:y0 + h, x0:x0 + w] = pal.bg
    for j, label in enumerate(labels):
        v = values[idx, j].astype(np.float64)
        if scale is not None:
            lo, hi = float(scale[0][j]), float(scale[1][j])
        else:
            lo, hi = float(np.nanmin(values[:, j])), float(np.nanmax(values[:, j]))
        frac = (v - lo) / (hi - lo) if hi > lo else np.full(w, 0.5)
        y = 2 + np.rint((1 - np.nan_to_num(frac, nan=0.5)) * (h - 5)).astype(np.int64)
        top = np.minimum(y, np.r_[y[:1], y[:-1]])  # join each column to the one before
        bot = np.maximum(y, np.r_[y[:1], y[:-1]])
        ys = np.arange(h)[:, None]
        strip = canvas[y0:y0 + h, x0:x0 + w]
        strip[(ys >= top[None, :]) & (ys <= bot[None, :])] = pal.lines[j]
        ly = y0 + h + 4 + j * LINE_H
        canvas[ly + 6:ly + 8, x0:x0 + 14] = pal.lines[j]
        label_text = f"{label}  {metric_value(lo)} .. {metric_value(hi)}"
        T.draw(canvas, x0 + 20, ly, label_text, F_LABEL, pal.dim_ramp, max_width=w - 20)
