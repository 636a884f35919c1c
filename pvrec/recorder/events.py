"""`pvrec record --events`: a thread that reads pvrec's trace instance and hands each frame
the kernel events that fell in it.

The thread drains trace_pipe as it fills (so the kernel's ring buffer does not overrun between
frames) and keeps, per frame, the first `max_per_frame` events of each type and counts of all
of them. At each frame the sampler asks for what came since the previous one (frame_data); what
it gets goes into the frame file (arrays) and its index line (counts).
"""

from __future__ import annotations

import os
import select
import threading
from collections import defaultdict
from contextlib import ExitStack

import numpy as np

from pvrec.errors import PvrecError
from pvrec.kernel import tracefs
from pvrec.recording.events import COLUMNS, DEFAULT_MAX_PER_FRAME, event_arrays


def prepare() -> list[str]:
    """Before anything is written: tracefs mounted, the tracepoints there, stale instances of
    SIGKILLed pvrecs removed (their names). One line and exit 2 when it cannot work."""
    if os.geteuid() != 0:
        raise PvrecError("--events needs root: kernel tracepoints are read through tracefs "
                         f"({tracefs.TRACEFS}), which only root may use")
    tracefs.ensure_mounted()
    tracefs.check_events()
    return tracefs.remove_stale()


def events_header(max_per_frame: int) -> dict:
    """What header.json says about the events: their types, columns and the bound."""
    return {"max_per_frame": max_per_frame,
            "columns": {k: list(c) for k, c in COLUMNS.items()}}


class FrameEvents:
    """One frame's share: stored rows (bounded) and counts of everything seen."""

    def __init__(self, max_per_frame: int):
        self.max = max_per_frame
        self.rows: dict[str, list[tuple[int, ...]]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    def add(self, name: str, ns: int, fields: tuple[int, ...]) -> None:
        c = self.counts
        c[name] += 1
        if name == "extfrag":
            fragmenting, chown = fields[5], fields[6]
            c["extfrag_fragmenting"] += fragmenting != 0
            c["extfrag_" + ("stolen" if not fragmenting else "claimed" if chown
                            else "polluting")] += 1
        elif name.startswith("isolate_"):
            c["compaction_scanned"] += fields[2]
            c[name + "_scanned"] += fields[2]
            c[name + "_taken"] += fields[3]
        rows = self.rows[name]
        if len(rows) < self.max:
            rows.append((ns,) + fields)
        else:
            c["dropped"] += 1

    def result(self, lost: int) -> tuple[dict, dict[str, np.ndarray]]:
        arrays = event_arrays(self.rows)
        counts = dict(self.counts)
        counts["compaction_runs"] = counts.get("compaction_begin", 0)
        counts["lost"] = lost
        counts["bytes"] = sum(a.nbytes for a in arrays.values())
        return {"events": counts}, arrays


class EventCollector:
    """The reading thread over a TraceInstance; frame_data() is called by the sampler."""

    def __init__(self, instance: tracefs.TraceInstance, max_per_frame: int = DEFAULT_MAX_PER_FRAME):
        self.instance = instance
        self.max = max_per_frame
        self.lock = threading.Lock()
        self.current = FrameEvents(max_per_frame)
        self.tail = b""
        self.lost_before = instance.lost()
        self.error: str | None = None
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.thread = threading.Thread(target=self._run, name="pvrec-events", daemon=True)

    def start(self) -> EventCollector:
        self.thread.start()
        return self

    def _pump(self) -> None:
        """Read and parse what trace_pipe holds now (under the lock)."""
        for _ in range(64):  # bounded: a storm is read in the next round, not forever here
            data = self.instance.read()
            if not data:
                return
            lines = (self.tail + data).split(b"\n")
            self.tail = lines.pop()
            for line in lines:
                got = tracefs.parse_line(line)
                if isinstance(got, tuple):
                    self.current.add(*got)
                elif got:  # 'LOST n EVENTS'
                    self.current.counts["lost_in_pipe"] += got

    def _run(self) -> None:
        fd = self.instance.fd
        try:
            while True:
                ready, _, _ = select.select([fd, self._stop_r], [], [], 1.0)
                if self._stop_r in ready:
                    return
                if fd in ready:
                    with self.lock:
                        self._pump()
        except (OSError, ValueError) as exc:  # the instance went away under us
            self.error = str(exc)

    def frame_data(self, began: float) -> tuple[dict, dict[str, np.ndarray]]:
        """The events since the previous frame: (index-line context, frame-file arrays)."""
        with self.lock:
            if self.instance.fd >= 0:
                self._pump()
            done, self.current = self.current, FrameEvents(self.max)
        lost = self.instance.lost()
        context, arrays = done.result(lost - self.lost_before)
        self.lost_before = lost
        return context, arrays

    def stop(self) -> None:
        if self.thread.is_alive():
            os.write(self._stop_w, b"x")
            self.thread.join(5)
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)


def open_events(stack: ExitStack, max_per_frame: int) -> EventCollector:
    """The instance and its thread, both undone by the stack (normal end, Ctrl-C, errors)."""
    instance = stack.enter_context(tracefs.TraceInstance())
    collector = EventCollector(instance, max_per_frame).start()
    stack.callback(collector.stop)
    return collector
