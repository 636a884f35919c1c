"""Where `pvrec stats` and `pvrec list` get their flags: the live system, a raw dump, a recording frame.

Every source yields the run-length form (lengths, values) that pvrec.inspect.pagetypes works
on, and the page size that page-types would use to turn pages into MB. Reading goes through
the recorder's PageFlagsFile (one reader for kpageflags in pvrec: multiples of 8 bytes,
large preadv chunks, one-line errors).
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvrec.errors import PvrecError
from pvrec.inspect.pagetypes import runs_of
from pvrec.recorder.kpageflags import KPAGEFLAGS, PageFlagsFile, SampleError, read_kpageflags

_RUN_AT = re.compile(r"(?P<path>.*)@(?P<frame>[+-]?[0-9]+)")


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


def read_dump(path: str) -> Snapshot:
    """A raw kpageflags dump (page-types -F FILE): its size must be a multiple of 8."""
    with PageFlagsFile(path) as f:
        count = f.dump_pages()
        try:
            flags = f.read_all(count)
        except SampleError as exc:
            raise PvrecError(str(exc)) from None
    lengths, values = runs_of(flags)
    return Snapshot(lengths, values, local_page_size(), str(path))


def _live_error(path: str, exc: PvrecError) -> PvrecError:
    """Say how to get access when /proc/kpageflags is not readable; other errors pass through."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.pread(fd, 8, 0)
        finally:
            os.close(fd)
    except OSError as probe:
        if probe.errno in (errno.EPERM, errno.EACCES):
            return PvrecError(
                f"cannot read {path}: permission denied; it is readable by root only: "
                f"run `sudo pvrec stats` (or `sudo pvrec list`), or read a dump with -F FILE"
            )
    return exc


def read_live(path: str = KPAGEFLAGS) -> Snapshot:
    """Every PFN of the running system, read once up to the end of the file as page-types does."""
    try:
        flags = read_kpageflags(path)
    except PvrecError as exc:
        raise _live_error(path, exc) from None
    if flags.size == 0:
        raise PvrecError(f"{path} is empty")
    lengths, values = runs_of(flags)
    return Snapshot(lengths, values, local_page_size(), path)


def parse_run_spec(spec: str) -> tuple[Path, int]:
    """RUN or RUN@N -> (recording directory, frame number; -1 is the last)."""
    path = Path(spec)
    if path.exists():
        return path, -1
    m = _RUN_AT.fullmatch(spec)
    if m and m.group("path"):
        return Path(m.group("path")), int(m.group("frame"))
    if "@" in spec:
        raise PvrecError(f"malformed RUN@N {spec!r}: N must be a frame number, e.g. {spec.split('@')[0]}@-1")
    raise PvrecError(f"{spec}: no such recording")


def read_recording(spec: str) -> Snapshot:
    """Frame N of a recording (RUN@N; RUN alone is the last frame; negative counts from the end)."""
    path, frame = parse_run_spec(spec)
    if path.is_file():
        raise PvrecError(
            f"{path} is a file, not a recording directory; for a raw kpageflags dump use -F {path}"
        )
    if not path.exists():
        raise PvrecError(f"{path}: no such recording")
    from pvrec.recording import open_recording  # only this source needs the format module

    rec = open_recording(path)
    runs = rec.read_runs(frame)
    page_size = rec.header.get("page_size")
    if type(page_size) is not int or page_size <= 0:
        page_size = local_page_size()
    return Snapshot(runs.lengths, runs.values, page_size, spec)


def load(run: str | None, dump: str | None) -> Snapshot:
    """The source the user named: -F FILE, RUN[@N], or the live /proc/kpageflags."""
    if run is not None and dump is not None:
        raise PvrecError("give either a recording RUN[@N] or -F FILE, not both")
    if dump is not None:
        return read_dump(dump)
    if run is not None:
        return read_recording(run)
    return read_live()
