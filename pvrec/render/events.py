"""The kernel's events and the workload's markers drawn on the picture (`render --events`,
`--timeline-events`, markers).

On the map (per frame): each page-allocator fallback of the last FADE frames paints its page
block, in one of three colours (stolen: a whole free block taken; claimed: a block changing
type; polluting: another type's pages put in a block that keeps its type), fading as it ages;
the compaction migrate scanner and free scanner of the frame as two bars on their rows; the
ranges the scanners isolated in the frame outlined. Every PFN goes through the map layout's
own MapLayout.locate: nothing here knows where tiles are.
Under the timeline (drawn once): a lane of events per frame (the fallbacks stacked by kind,
compaction passes as ticks), one row of ticks per vmstat counter of --timeline-events where it
rose (height by the rise), and a labelled tick for each marker. The header shows the latest
marker. Marker text is the workload's (untrusted): it is only ever drawn as text.
"""

from __future__ import annotations

import numpy as np

from pvrec.errors import PvrecError
from pvrec.kernel.procstat import VMSTAT_PREFIXES
from pvrec.recording.events import FALLBACKS, column, fallback_kind
from pvrec.render.palette import THEME_UI
from pvrec.render.raster import MapLayout
from pvrec.render.text import F_LABEL, Text
from pvrec.sources import Source

FADE = 3  # frames a fallback stays on the map: full colour, then blended toward the background
FADE_STEPS = (0.0, 0.45, 0.7)
# a fallback's colours (FALLBACKS order); the migrate and free scanners' (blue, black/white)
FALLBACK_COLORS = ("#00C8FF", "#FF00D0", "#FF1A1A")
SCANNER_COLORS = {"light": ("#1A1AFF", "#000000"), "dark": ("#4D6BFF", "#FFFFFF")}
COUNTER_COLORS = ("#D55E00", "#0072B2", "#CC79A7", "#009E73", "#E69F00", "#882255", "#56B4E9",
                  "#999933")
# --timeline-events without names: compaction, THP fallbacks, hugetlb allocation failures,
# direct reclaim, the OOM killer (allocstall: the sum of allocstall_<zone>)
DEFAULT_COUNTERS = ("compact_stall", "compact_fail", "thp_fault_fallback",
                    "htlb_buddy_alloc_fail", "allocstall", "oom_kill")
LANE_H = 28  # the events' bars
COUNTER_H = 14  # one counter's row of ticks (its name inside)
MARKER_ROWS = 3  # rows of marker labels at the top of the class strip, used in turn


def parse_timeline_events(spec: str | list[str] | bool | None) -> list[str] | None:
    """'compact_stall,thp_fault_fallback' -> the counters (DEFAULT_COUNTERS for '' or True);
    a name pvrec does not store with its frames is one line naming the valid ones."""
    if spec is None or spec is False:
        return None
    items = DEFAULT_COUNTERS if spec is True or spec == "" else \
        (spec if isinstance(spec, list) else str(spec).split(","))
    names = [x.strip() for x in items if x.strip()] or list(DEFAULT_COUNTERS)
    if len(names) > len(COUNTER_COLORS):
        raise PvrecError(f"--timeline-events draws at most {len(COUNTER_COLORS)} counters, not "
                         f"{len(names)}")
    for name in names:
        if name != "allocstall" and not name.startswith(VMSTAT_PREFIXES):
            raise PvrecError(f"--timeline-events {name!r}: not a /proc/vmstat counter pvrec "
                             f"stores with its frames (pvrec info --json lists them); the "
                             f"default set is {','.join(DEFAULT_COUNTERS)}")
    return names


def overlay_for(o, source: Source) -> EventOverlay | None:
    """The overlay RenderOptions o asks for (--events, --timeline-events), or None; markers
    come along with either, and with --timeline alone when the recording has them."""
    has_markers = any(source.context_of(i).get("markers") for i in range(len(source)))
    if not (o.events or o.counters is not None or (o.timeline and has_markers)):
        return None
    return EventOverlay(source, o.events, o.counters)


def fit_text(text: Text, s: str, room: int) -> str | None:
    """s, or its start and an ellipsis, in room pixels of F_LABEL; None if not even 3 letters."""
    if text.width(s, F_LABEL) <= room:
        return s
    for n in range(len(s) - 1, 3, -1):
        cut = s[:n].rstrip() + "..."
        if text.width(cut, F_LABEL) <= room:
            return cut
    return None


def _blend(hex_color: str, bg: str, f: float) -> str:
    a = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], np.float64)
    b = np.array([int(bg[i:i + 2], 16) for i in (1, 3, 5)], np.float64)
    return "#" + "".join(f"{int(round(v)):02X}" for v in a + (b - a) * f)


def counter_value(vmstat: dict, name: str) -> int | None:
    """A counter of a frame's vmstat; allocstall is the sum of allocstall_<zone>."""
    if name == "allocstall":
        parts = [v for k, v in vmstat.items() if k.startswith("allocstall_")]
        return sum(parts) if parts else None
    return vmstat.get(name)


class EventOverlay:
    """What --events, --timeline-events and markers draw for one run (its source)."""

    def __init__(self, source: Source, on_map: bool, counters: list[str] | None):
        self.source, self.on_map = source, on_map
        self.counters = counters or []
        contexts = [source.context_of(i) for i in range(len(source))]
        self.times = np.asarray(source.times, np.float64)
        ev = [c.get("events") or {} for c in contexts]
        self.fallbacks = np.array([[e.get(f"extfrag_{k}", 0) for k in FALLBACKS] for e in ev],
                                  np.int64).reshape(-1, 3)
        self.compactions = np.array([e.get("compaction_runs", 0) for e in ev], np.int64)
        self.rises = {}
        for name in self.counters:
            values = [counter_value(c.get("vmstat") or {}, name) for c in contexts]
            v = np.array([np.nan if x is None else x for x in values], np.float64)
            self.rises[name] = np.nan_to_num(np.maximum(np.diff(v, prepend=v[:1]), 0))
        self.markers = [(float(m["t"]), m["text"], pos) for pos, c in enumerate(contexts)
                        for m in c.get("markers", [])]
        self._events: dict[int, dict] = {}

    # -- colours: Palette.make(extra=overlay.colors(theme)) puts them at pal.extra

    def colors(self, theme: str) -> list[str]:
        bg = THEME_UI[theme][0]
        out = [_blend(c, bg, f) for c in FALLBACK_COLORS for f in FADE_STEPS]
        return out + list(SCANNER_COLORS[theme]) + list(COUNTER_COLORS[:len(self.counters)])

    @staticmethod
    def _fallback(pal, kind: int, age: int) -> int:
        return pal.extra[kind * FADE + age]

    @staticmethod
    def _scanner(pal, which: int) -> int:
        return pal.extra[3 * FADE + which]

    # -- the header

    def marker_text(self, pos: int) -> str | None:
        """The latest marker at frame pos, numbered as the timeline numbers it."""
        last = None
        for i, (_t, text, p) in enumerate(self.markers):
            if p <= pos:
                last = f"mark {i + 1}: {text}"
        return last

    # -- under the timeline

    def lane_height(self, text: Text) -> int:
        """Pixels the lane takes under the strips (0 when it has nothing to draw)."""
        lh = text.height(F_LABEL)
        h = (lh + 2 + LANE_H + 4) if self.on_map else 0
        return h + len(self.counters) * (COUNTER_H + 2) + (4 if self.counters else 0)

    def draw_lane(self, canvas: np.ndarray, strips, x0: int, timeline_y: int, y0: int, w: int,
                  pal, text: Text) -> None:
        """The lane (y0: its top), and the markers' ticks over the whole timeline."""
        px, pw = strips.plot(x0, w)
        y = y0
        cols = [strips.cursor(x0, 0, w, t)[2] for t in self.times]
        if self.on_map:
            y = self._draw_counts(canvas, strips, px, pw, y, cols, pal, text)
        for j, name in enumerate(self.counters):
            rise = self.rises[name]
            top = float(rise.max(initial=0))
            canvas[y:y + COUNTER_H, px:px + pw] = pal.bg
            canvas[y + COUNTER_H - 1, px:px + pw] = pal.frame
            text.draw(canvas, px + 2, y, f"{name} (peak +{int(top):,}/frame)" if top else
                      f"{name}: no rise", F_LABEL, pal.dim_ramp, max_width=pw - 4)
            color = pal.extra[3 * FADE + 2 + j]
            for i in np.flatnonzero(rise > 0):
                h = max(3, int(round(np.sqrt(rise[i] / top) * (COUNTER_H - 1))))
                canvas[y + COUNTER_H - 1 - h:y + COUNTER_H - 1, cols[i]:cols[i] + 2] = color
            y += COUNTER_H + 2
        self._draw_markers(canvas, strips, x0, timeline_y, w, y, pal, text)

    def _draw_counts(self, canvas, strips, px, pw, y, cols, pal, text: Text) -> int:
        lh = text.height(F_LABEL)
        x = px
        for label, color in (("events per frame: fallbacks", None),
                             *((k, self._fallback(pal, i, 0)) for i, k in enumerate(FALLBACKS)),
                             ("compaction", self._scanner(pal, 0))):
            if color is not None:
                canvas[y + lh // 2 - 3:y + lh // 2 + 3, x:x + 6] = color
                x += 9
            x += text.draw(canvas, x, y, label, F_LABEL, pal.dim_ramp) + 10
        y += lh + 2
        total = self.fallbacks.sum(axis=1)
        peak = max(int(total.max(initial=0)), 1)
        strips._box(canvas, px, y, pw, LANE_H, pal, ("0", f"{peak:,}"))
        for i, c in enumerate(cols):
            base = y + LANE_H
            for k in range(3):
                n = int(self.fallbacks[i, k])
                if n:
                    h = max(1, int(round(n / peak * LANE_H)))
                    canvas[base - h:base, c:c + 2] = self._fallback(pal, k, 0)
                    base -= h
            if self.compactions[i]:
                canvas[y:y + 4, c:c + 2] = self._scanner(pal, 0)
        return y + LANE_H + 4

    def _draw_markers(self, canvas, strips, x0, timeline_y, w, bottom, pal, text: Text) -> None:
        """A tick through the strips for each marker, numbered as the header numbers it, with
        its text where it fits before the next label of its row (MARKER_ROWS rows, in turn)."""
        lh = text.height(F_LABEL)
        px, pw = strips.plot(x0, w)
        xs = [strips.cursor(x0, timeline_y, w, t)[2] for t, _text, _pos in self.markers]
        for i, ((_t, label, _pos), cx) in enumerate(zip(self.markers, xs, strict=True)):
            canvas[timeline_y:bottom, cx:cx + 1] = pal.fg
            nxt = xs[i + MARKER_ROWS] if i + MARKER_ROWS < len(xs) else px + pw
            room = nxt - cx - 6
            label = fit_text(text, f"{i + 1} {label}", room) or str(i + 1)
            width = text.width(label, F_LABEL)
            lx = min(cx + 2, px + pw - width - 1)
            ly = timeline_y + 1 + (i % MARKER_ROWS) * lh
            canvas[ly:ly + lh, lx - 1:lx + width + 1] = pal.bg
            text.draw(canvas, lx, ly, label, F_LABEL, pal.fg_ramp)

    # -- on the map, per frame

    def events(self, pos: int) -> dict:
        if pos not in self._events:
            if len(self._events) > 2 * FADE:
                self._events.pop(min(self._events))
            self._events[pos] = self.source.events_of(pos) if 0 <= pos < len(self.source) \
                else {}
        return self._events[pos]

    def draw_map(self, canvas: np.ndarray, lay: MapLayout, x0: int, y0: int, pos: int,
                 pal) -> None:
        """The frame's marks on the map pasted at (x0, y0) of the canvas."""
        if not self.on_map:
            return
        view = canvas[y0:y0 + lay.height, x0:x0 + lay.width]
        n, block = lay.pfn_count, self.source.header.hpage_pages
        for age in range(FADE - 1, -1, -1):  # the oldest first: the newest lies on top
            rows = self.events(pos - age).get("extfrag")
            if rows is None or not len(rows):
                continue
            pfn = column(rows, "extfrag", "pfn")
            kind = fallback_kind(column(rows, "extfrag", "fragmenting"),
                                 column(rows, "extfrag", "change_ownership"))
            for k in range(3):  # polluting last: the one that matters most stays visible
                starts = np.unique(pfn[(kind == k) & (pfn >= 0) & (pfn < n)] // block * block)
                mask = np.zeros(view.shape, bool)
                for s in starts:
                    _paint(mask, lay, int(s), int(min(s + block, n)))
                view[mask] = self._fallback(pal, k, age)
        ev = self.events(pos)
        for which, kind in enumerate(("isolate_migratepages", "isolate_freepages")):
            rows = ev.get(kind)
            if rows is None or not len(rows):
                continue
            mask = np.zeros(view.shape, bool)
            for s, e in _merged(column(rows, kind, "start_pfn"), column(rows, kind, "end_pfn"),
                                n):
                _paint(mask, lay, s, e)
            view[_outline(mask)] = self._scanner(pal, which)
        for migrate, free in scanner_positions(ev, n):
            for which, p, rows_at in ((0, migrate, (-2, -1, 0)), (1, free, (0, 1, 2))):
                loc = lay.locate(p)
                if loc is None:
                    continue
                tile, _x, y = loc
                for dy in rows_at:
                    if 0 <= y + dy - tile.y < tile.rows:
                        view[y + dy, tile.x:tile.x + lay.tile_width] = self._scanner(pal, which)


def scanner_positions(ev: dict, pfn_count: int) -> list[tuple[int, int]]:
    """(migrate scanner, free scanner) PFN of each compaction pass of a frame: where a pass
    ended, its end event's; for a pass still running, the furthest ranges each isolated."""
    out = []
    ends = ev.get("compaction_end")
    begins = ev.get("compaction_begin")
    seen = set()
    if ends is not None:
        for row in ends:
            zone = int(column(row[None], "compaction_end", "zone_start")[0])
            seen.add(zone)
            out.append((int(column(row[None], "compaction_end", "migrate_pfn")[0]),
                        int(column(row[None], "compaction_end", "free_pfn")[0])))
    if begins is not None:
        mig, free = ev.get("isolate_migratepages"), ev.get("isolate_freepages")
        for row in begins:
            zone = int(column(row[None], "compaction_begin", "zone_start")[0])
            end = int(column(row[None], "compaction_begin", "zone_end")[0])
            if zone in seen:
                continue
            m = int(column(row[None], "compaction_begin", "migrate_pfn")[0])
            f = int(column(row[None], "compaction_begin", "free_pfn")[0])
            if mig is not None and len(mig):
                e = column(mig, "isolate_migratepages", "end_pfn")
                inside = e[(e > zone) & (e <= end)]
                m = int(inside.max()) if inside.size else m
            if free is not None and len(free):
                s = column(free, "isolate_freepages", "start_pfn")
                inside = s[(s >= zone) & (s < end)]
                f = int(inside.min()) if inside.size else f
            out.append((m, f))
    return [(m, f) for m, f in out if 0 <= m < pfn_count and 0 <= f < pfn_count]


def _merged(starts: np.ndarray, ends: np.ndarray, n: int) -> list[tuple[int, int]]:
    """[s, e) ranges inside [0, n), overlapping and touching ones joined."""
    s, e = np.clip(starts, 0, n), np.clip(ends, 0, n)
    keep = s < e
    order = np.argsort(s[keep], kind="stable")
    out: list[tuple[int, int]] = []
    for a, b in zip(s[keep][order].tolist(), e[keep][order].tolist(), strict=True):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _paint(mask: np.ndarray, lay: MapLayout, s: int, e: int) -> None:
    """Set the pixels showing PFNs [s, e), row by row, as the layout places them."""
    p = s
    while p < e:
        loc = lay.locate(p)
        row_end = p - p % lay.row_pages + lay.row_pages
        if loc is not None:
            _tile, x, y = loc
            last = min(e, row_end) - 1
            mask[y, x:x + last // lay.ppp - p // lay.ppp + 1] = True
        p = row_end


def _outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of mask with a neighbour outside it (a one-row mask is all outline)."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[0] = inner[-1] = False
    inner[:, 0] = inner[:, -1] = False
    return mask & ~inner
