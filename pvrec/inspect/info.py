"""What `pvrec info` reports of a recording, as plain data: the machine, the sampling, the size
on disk, the page classes over time and the fragmentation figures of docs/metrics.md.

Classes are counted in RAM only (holes left out) straight from the runs, without the render
half: this module and the renderer agree because both count through the Header's RAM ranges.
"""

from __future__ import annotations

import numpy as np

from pvrec.classes import HOLE, ValueClassifier, default_scheme
from pvrec.metrics import context_metrics
from pvrec.recording.figures import Figures
from pvrec.recording.format import disk_usage
from pvrec.recording.overhead import Overhead
from pvrec.recording.reader import Recording
from pvrec.summaries import cache_bytes, frame_summaries

# The fragmentation figures info shows (the buddy_order_N counts are for `pvrec metrics`).
FRAG_SHOWN = ("free_hp_blocks", "compactable_hp_blocks", "unusable_index", "largest_free_run",
              "mixed_blocks", "kernel_unusable_index", "unmovable_blocks", "movable_blocks",
              "reclaimable_blocks")


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def figures_of(rec: Recording) -> Figures:
    """The recording's figures, as the recorder counted them while it wrote the frames."""
    len(rec)  # the frames that can be read (damaged ones dropped)
    return Figures.of(rec.frames, rec.header.interval, rec.end)


def overhead_of(rec: Recording) -> dict | None:
    """end.json's overhead as the recorder wrote it (the fields that pass their checks)."""
    ov = Overhead.from_dict((rec.end or {}).get("overhead"))
    return None if ov is None else ov.to_dict()


def _sampling(rec: Recording) -> dict:
    """How well the recording was sampled: the figures, start jitter, bytes per frame."""
    ctx = [(f.kind, f.context) for f in rec.frames]
    lates = [c["late"] * 1000 for _, c in ctx[1:] if isinstance(c.get("late"), int | float)]
    sizes = [(k, c["bytes"]) for k, c in ctx if isinstance(c.get("bytes"), int)]
    end = rec.end or {}
    fig = figures_of(rec)
    return {
        "duration_s": fig.duration,
        "frames": fig.frames,
        "interval_s": fig.interval,
        "mean_gap_s": fig.mean_gap,
        "skipped_ticks": fig.skipped_ticks,
        "budget_ticks": fig.budget_ticks,
        "tick_cpu_s": fig.tick_cpu,
        "failed_samples": fig.failed_samples,
        "mean_sample_s": fig.mean_sample,
        "frame_bytes": fig.bytes,
        "jitter_ms": {"p50": _pct(lates, 50), "p99": _pct(lates, 99),
                      "max": max(lates) if lates else None},
        "bytes_on_disk": disk_usage(rec.path) - cache_bytes(rec.path),  # the cache is not the recording
        "bytes_per_frame": {"all": _mean([s for _, s in sizes]),
                            "key": _mean([s for k, s in sizes if k == "key"]),
                            "delta": _mean([s for k, s in sizes if k == "delta"])},
        "end": {"reason": end.get("reason"), "exit_code": end.get("exit_code")} if end else None,
        "overhead": overhead_of(rec),
    }


def _over_time(rec: Recording) -> tuple[list[float], list[dict], dict, dict | None]:
    """(times, page classes start/end/min/max in bytes, fragmentation per zone, the workload's
    mapped bytes start/end/min/max or None) of every frame."""
    h = rec.header
    scheme = default_scheme()
    classify = ValueClassifier(scheme)
    class_series: list[np.ndarray] = []
    frag: dict[str, dict[str, list[float]]] = {}
    times, mapped, infos = [], [], []
    for info, summary in frame_summaries(rec):
        infos.append(info)  # the frames that decode: fewer than rec.frames past a damaged one
        times.append(info.t)
        mapped.append(summary.workload)
        class_series.append(summary.class_pages(classify, len(scheme)))
        for zone, values in summary.metrics.items():
            values = dict(values)
            values.update((k, v) for k, v in context_metrics(info.context, zone, h.hpage_pages)
                          .items() if k in FRAG_SHOWN)  # the kernel's own figures beside
            z = frag.setdefault(zone, {})
            for name, value in values.items():
                z.setdefault(name, []).append(value)
    series = np.array(class_series) if class_series else np.zeros((0, len(scheme)), np.int64)
    classes = []
    for i, name in enumerate(scheme.names):
        if i == HOLE or not series.size or not series[:, i].any():
            continue
        col = series[:, i] * h.page_size
        classes.append({"class": name, "start": int(col[0]), "end": int(col[-1]),
                        "min": int(col.min()), "max": int(col.max())})
    fragmentation = {
        zone: {name: {"start": v[0], "end": v[-1], "min": min(v), "max": max(v), "series": v}
               for name, v in values.items() if name in FRAG_SHOWN}
        for zone, values in frag.items()
    }
    workload = None
    if mapped and min(mapped) >= 0:
        b = [m * h.page_size for m in mapped]
        workload = {"start": b[0], "end": b[-1], "min": min(b), "max": max(b),
                    "max_frame": infos[b.index(max(b))].index}
    return times, classes, fragmentation, workload


def events_and_markers(rec: Recording) -> dict:
    """The kernel events of the whole recording (counts added up; None when it was recorded
    without --events) and the workload's markers, in order."""
    totals: dict[str, int] | None = {} if rec.header.unknown.get("events") else None
    markers = []
    for info in rec.frames:
        if totals is not None:
            for k, v in (info.context.get("events") or {}).items():
                totals[k] = totals.get(k, 0) + v
        markers += [{"frame": info.index, "t": m["t"], "text": m["text"]}
                    for m in info.context.get("markers", [])]
    return {"events": totals, "markers": markers}


def summarize(rec: Recording) -> dict:
    """Everything `pvrec info` shows, as plain data (the keys of `pvrec info --json`)."""
    h, raw = rec.header, rec.header.to_dict()
    times, classes, fragmentation, workload = _over_time(rec)
    return {
        "path": str(rec.path),
        "complete": rec.complete,
        "host": h.hostname,
        "kernel": h.kernel,
        "machine": h.machine,
        "ram_bytes": h.ram_pages * h.page_size,
        "pfn_count": h.pfn_count,
        "page_size": h.page_size,
        "hpage_pages": h.hpage_pages,
        "ram_ranges": raw["ram_ranges"],
        "zones": raw["zones"],
        "nodes": raw["nodes"],
        "layout_source": h.layout_source,
        "command": h.command,
        "user": h.user,
        "channels": list(h.channels),
        "start": h.start_wall,
        **_sampling(rec),
        "warnings": rec.warnings,
        "classes": classes,
        "fragmentation": fragmentation,
        "workload": workload,  # the bytes the workload's processes map (None: not recorded)
        "times": times,
        **events_and_markers(rec),
    }
