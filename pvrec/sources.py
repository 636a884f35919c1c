"""Where frames come from: a recording (RUN, RUN@N), a raw kpageflags dump (-F FILE), live memory.

Render and snapshot draw a Source (a header, the times, frames as runs); stats and list count a
Snapshot (one frame's runs and the page size page-types would use). One RUN@N parser and one
"not both" rule serve every command.
"""

from __future__ import annotations

import errno
import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvrec.errors import PvrecError
from pvrec.kernel.kpageflags import KPAGEFLAGS, read_kpageflags
from pvrec.metrics import DEFAULT_MAX_ORDER, frame_metrics, max_order_of
from pvrec.recording.header import Header
from pvrec.recording.reader import Frame, Warn, open_recording
from pvrec.runs import Runs, encode_flags

_FRAME_NUMBER = re.compile(r"[+-]?[0-9]+")


def split_run_at(text: str) -> tuple[Path, str | None]:
    """'RUN@N' -> (RUN, 'N'); 'RUN' -> (RUN, None) (a directory whose name has '@' is RUN)."""
    if "@" in text and not Path(text).exists():
        run, _, n = text.rpartition("@")
        if run:
            return Path(run), n
    return Path(text), None


def split_run_frame(spec: str) -> tuple[Path, int | None]:
    """'RUN@N' -> (RUN, N) with N a frame number (negative from the end); 'RUN' -> (RUN, None)."""
    path, n = split_run_at(spec)
    if n is not None and not _FRAME_NUMBER.fullmatch(n):
        raise PvrecError(f"malformed RUN@N {spec!r}: N must be a frame number, e.g. {path}@-1")
    return path, None if n is None else int(n)


def check_one_source(run: str | None, dump: str | None) -> None:
    """A command reads a recording or a dump, never both."""
    if run and dump:
        raise PvrecError("give either a recording RUN[@N] or -F FILE, not both")


class Source:
    """Frames to draw: a header (`meta`, the Header), the time of each frame, and the frames
    as runs."""

    header: Header
    times: list[float]
    name: str
    complete: bool = True

    def __len__(self) -> int:
        return len(self.times)

    def iter_runs(self, start: int, stop: int, step: int) -> Iterator[tuple[int, float, Runs]]:
        raise NotImplementedError

    def read_runs(self, pos: int) -> Runs:
        raise NotImplementedError

    def values_at(self, pfns: np.ndarray, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """(position, flags of these PFNs) of frames 0..stop-1 (PFNs inside the frame)."""
        for pos, _t, runs in self.iter_runs(0, stop, 1):
            at = np.searchsorted(runs.starts(), pfns, "right") - 1
            yield pos, runs.values[np.clip(at, 0, runs.values.size - 1)]

    @property
    def max_order(self) -> int:
        """The largest buddy order of the machine (from its buddyinfo where recorded)."""
        return DEFAULT_MAX_ORDER

    def key_positions(self) -> list[int]:
        """Positions cheap to read alone (key frames)."""
        return list(range(len(self)))

    @property
    def channels(self) -> tuple[str, ...]:
        return ("flags",)

    def iter_frames(self, start: int, stop: int, step: int,
                    channels: tuple[str, ...] | None = None
                    ) -> Iterator[tuple[int, float, Frame]]:
        """As iter_runs, with every channel of the frame (or those named), and what changed
        since the frame yielded before (Frame.changed; None where not known)."""
        for pos, t, runs in self.iter_runs(start, stop, step):
            yield pos, t, Frame(runs)

    def read_frame(self, pos: int) -> Frame:
        return Frame(self.read_runs(pos))

    def metrics_of(self, frame: Frame) -> dict[str, dict[str, float]]:
        """The fragmentation metrics of one of its frames, {zone: {metric: value}}."""
        return frame_metrics(frame.flags, self.header, self.max_order)

    def context_of(self, pos: int) -> dict:
        """What the frame's index line holds beside it (kernel counters, events, markers)."""
        return {}

    def events_of(self, pos: int) -> dict[str, np.ndarray]:
        """The kernel events stored with a frame (recording/events.py), {} where none."""
        return {}


class RecordingSource(Source):
    """A recording directory, read through pvrec.recording (warnings: see Recording)."""

    def __init__(self, path: str | os.PathLike, on_warning: Warn | None = None):
        self.rec = open_recording(path, on_warning)
        self.header = self.rec.header
        self.times = [f.t for f in self.rec.frames] if len(self.rec) else []
        self.name = Path(path).resolve().name
        self.complete = self.rec.complete
        self._pos = {f.index: i for i, f in enumerate(self.rec.frames)}

    def iter_runs(self, start, stop, step):
        for pos, t, frame in self.iter_frames(start, stop, step, ("flags",)):
            yield pos, t, frame.flags

    def read_runs(self, pos):
        return self.rec.read_runs(pos)

    def warn(self, message: str) -> None:
        """A warning about this recording met elsewhere (a render worker's reading), told as
        its own: once."""
        if message not in self.rec.warnings:
            self.rec._warn(message)

    def values_at(self, pfns, stop):
        return self.rec.values_at(pfns, stop)  # no frame decoded whole

    def key_positions(self):
        return [i for i, f in enumerate(self.rec.frames) if f.kind == "key"]

    @functools.cached_property
    def max_order(self) -> int:  # type: ignore[override]
        return max_order_of(f.context for f in self.rec.frames)

    @property
    def channels(self) -> tuple[str, ...]:
        return self.rec.channels

    def iter_frames(self, start, stop, step, channels=None):
        for info, frame in self.rec.iter_decoded(start, stop, step, channels):
            yield self._pos[info.index], info.t, frame

    def context_of(self, pos):
        return self.rec.frames[pos].context if 0 <= pos < len(self.rec.frames) else {}

    def events_of(self, pos):
        return self.rec.events_of(pos)

    def read_frame(self, pos):
        return self.rec.read_frame(pos)


class ArraySource(Source):
    """One frame held in memory (a snapshot of live memory or of a raw dump)."""

    def __init__(self, flags: np.ndarray, header: Header, name: str):
        self.runs = encode_flags(flags)
        self.header = header
        self.times = [0.0]
        self.name = name

    def iter_runs(self, start, stop, step):
        if start <= 0 < stop:
            yield 0, 0.0, self.runs

    def read_runs(self, pos):
        return self.runs


def open_source(source: str | None, kpageflags: str | None, warn: Warn | None = None
                ) -> tuple[Source, str | None]:
    """(source, frame) for snapshot/classes: RUN[@N], -F dump, or the live system; a recording's
    warnings go to warn as they happen (its damaged frames are found at once)."""
    check_one_source(source, kpageflags)
    if source:
        run, n = split_run_at(source)
        return RecordingSource(run, warn), n
    from pvrec.kernel.layout import live_layout, machine_identity, wall_clock, with_known_ram
    from pvrec.layout import max_pfn

    if kpageflags:
        flags = read_kpageflags(kpageflags)
        return ArraySource(flags, Header.for_dump(int(flags.size)),
                           f"kpageflags dump {Path(kpageflags).name}"), None
    layout = live_layout()
    flags = read_kpageflags(KPAGEFLAGS, max_pfn(layout))
    header = Header.live(with_known_ram(layout, int(flags.size)), int(flags.size),
                         **machine_identity(), start_wall=wall_clock())
    return ArraySource(flags, header, f"memory of {header.hostname or 'this machine'}"), None


@dataclass
class Snapshot:
    """The flags of every PFN of one source, in run-length form."""

    lengths: np.ndarray  # int64
    values: np.ndarray  # uint64
    page_size: int
    name: str  # what to call the source in messages and --json

    @property
    def pfn_count(self) -> int:
        return int(self.lengths.sum(dtype=np.int64))


def local_page_size() -> int:
    """The page size page-types would use here (getpagesize())."""
    return os.sysconf("SC_PAGE_SIZE")


def _snapshot(flags: np.ndarray, name: str) -> Snapshot:
    runs = encode_flags(flags)
    return Snapshot(runs.lengths.astype(np.int64), runs.values, local_page_size(), name)


def read_dump(path: str) -> Snapshot:
    """A raw kpageflags dump (page-types -F FILE): its size must be a multiple of 8."""
    return _snapshot(read_kpageflags(path), str(path))


def read_live(path: str = KPAGEFLAGS) -> Snapshot:
    """Every PFN of the running system, read once up to the end of the file as page-types does."""
    try:
        flags = read_kpageflags(path)
    except PvrecError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise PvrecError(
                f"cannot read {path}: permission denied; it is readable by root only: "
                f"run `sudo pvrec stats` (or `sudo pvrec list`), or read a dump with -F FILE",
                errno=exc.errno) from None
        raise
    if flags.size == 0:
        raise PvrecError(f"{path} is empty")
    return _snapshot(flags, path)


def read_recording(spec: str, on_warning: Warn | None = None) -> Snapshot:
    """Frame N of a recording (RUN@N; RUN alone is the last frame; negative counts from the end)."""
    path, n = split_run_frame(spec)
    frame = -1 if n is None else n
    if path.is_file():
        raise PvrecError(
            f"{path} is a file, not a recording directory; for a raw kpageflags dump use -F {path}"
        )
    if not path.exists():
        raise PvrecError(f"{path}: no such recording")
    rec = open_recording(path, on_warning)
    runs = rec.read_runs(frame)
    return Snapshot(runs.lengths, runs.values, rec.header.page_size, spec)


def load(run: str | None, dump: str | None, on_warning: Warn | None = None) -> Snapshot:
    """The source the user named: -F FILE, RUN[@N], or the live /proc/kpageflags."""
    check_one_source(run, dump)
    if dump is not None:
        return read_dump(dump)
    if run is not None:
        return read_recording(run, on_warning)
    return read_live()
