"""Reading a recording: header, frame index, frames by number or in order; lenient about damage.

Frames that are damaged are left out with a warning (a delta frame needs its chain back to a
key frame); an incomplete recording (no end.json) reads up to its last complete frame. A
warning is data, not printing: it is kept in `Recording.warnings` and handed to the caller's
on_warning (commands pass messages.warn), so pvrec has one way of telling the user.
Nothing read from disk is trusted: recordings are shared and may be damaged or hostile; the
header is checked once, into a Header (header.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvrec.errors import PvrecError
from pvrec.recording.format import (
    KIND_DELTA,
    FrameError,
    FrameInfo,
    check_file_name,
    clean_context,
    load_frame,
    prefix,
)
from pvrec.recording.header import Header
from pvrec.runs import Runs, add_changes, nonzero_runs, xor_changes

Warn = Callable[[str], None]


@dataclass
class Frame:
    """One decoded frame: the flags, and the optional channels the recording has."""

    flags: Runs
    cgroup: Runs | None = None  # memcg inode per PFN
    workload: Runs | None = None  # 1 where the workload's processes map the PFN, else 0
    # Page ranges whose flags differ from the frame before (a delta's changes; with
    # iter_decoded, from the frame it yielded before, over the frames skipped). None: not
    # known (a key frame, the first one yielded, after a damaged one): what a renderer redraws.
    changed: tuple[np.ndarray, np.ndarray] | None = None


def apply_frame(prev: Frame | None, arrays: dict[str, np.ndarray],
                channels: tuple[str, ...] = ("flags",)) -> Frame:
    """The frame: each channel stored as it is (key), or XORed onto the previous frame (delta)."""
    delta = arrays["meta"][1] == KIND_DELTA
    if delta and prev is None:
        raise FrameError("delta frame without a previous frame")
    out = {}
    for channel in channels:
        stored = stored_runs(arrays, channel)
        if not delta:
            out[channel] = stored
            continue
        changes = nonzero_runs(stored)
        out[channel] = xor_changes(getattr(prev, channel), stored, changes)
        if channel == "flags":
            out["changed"] = changes[:2]
    return Frame(**out)


def stored_runs(arrays: dict[str, np.ndarray], channel: str = "flags") -> Runs:
    """A channel's runs as the frame file stores them: a key frame's own, a delta's XOR."""
    p = prefix(channel)
    return Runs(arrays[p + "lengths"].astype(np.int64), arrays[p + "palette"][arrays[p + "codes"]])


UNREAD = Frame(Runs(np.zeros(0, np.int64), np.zeros(0, np.uint64)))  # _chain: not read


class Recording:
    """A recording opened for reading: header, frame index, frames by number, end marker.

    Frames that are damaged are left out of `frames` with a warning (a delta frame needs its
    chain back to a key frame). Frame numbers are positions in `frames`. Every warning is kept
    in `warnings` and, when given, passed at once to on_warning (commands: messages.warn).
    """

    def __init__(self, path: str | os.PathLike, on_warning: Warn | None = None):
        self.path = Path(path)
        self.warnings: list[str] = []
        self._on_warning = on_warning
        self.header = self._read_header()
        self.pfn_count = self.header.pfn_count
        self.channels = self.header.channels
        for channel in self.header.skipped_channels:
            self._warn(f"{self.path}: channel {channel!r} is newer than this pvrec; skipped")
        self.end = self._read_end()
        self._entries = self._read_index()
        self.frames: list[FrameInfo] = list(self._entries)
        self._cache: tuple[int, Frame] | None = None
        self._validated = False

    def events_of(self, pos: int) -> dict[str, np.ndarray]:
        """The kernel events stored in frame pos's file ({type: rows}; recording/events.py);
        damaged ones are left out with a warning."""
        from pvrec.recording.events import load_events

        info = self.frames[pos]
        try:
            return load_events(self.path / check_file_name(info.file), self.pfn_count)
        except FrameError as exc:
            self._warn(f"{self.path}: frame {info.index}: events skipped ({exc})")
            return {}

    # -- metadata

    def _read_header(self) -> Header:
        p = self.path / "header.json"
        if not self.path.is_dir():
            raise PvrecError(f"{self.path} is not a recording (not a directory)")
        try:
            raw = json.loads(p.read_text())
        except FileNotFoundError:
            raise PvrecError(f"{self.path} is not a pvrec recording (no header.json)") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise PvrecError(f"{p}: unreadable header ({exc})", errno=getattr(exc, "errno", None)
                             ) from None
        return Header.parse(raw, self.path)

    def _read_end(self) -> dict | None:
        try:
            end = json.loads((self.path / "end.json").read_text())
            return end if isinstance(end, dict) else None
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        if self._on_warning is not None:
            self._on_warning(message)

    def _read_index(self) -> list[FrameInfo]:
        try:
            raw = (self.path / "frames.jsonl").read_bytes()
        except OSError:
            return []
        entries: list[FrameInfo] = []
        lines = raw.split(b"\n")
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                info = FrameInfo(
                    int(d.pop("index")), float(d.pop("t")), check_file_name(d.pop("file")),
                    str(d.pop("kind")), d,
                )
                if not math.isfinite(info.t) or info.kind not in ("key", "delta"):
                    raise ValueError("bad time or kind")
                dropped = clean_context(info.context)
                if dropped:
                    self._warn(f"{self.path}: index line {lineno} has a malformed "
                               f"{', '.join(dropped)}; ignored")
            except (ValueError, KeyError, TypeError, AttributeError, OverflowError,
                    FrameError) as exc:
                last = lineno == len(lines) or (lineno == len(lines) - 1 and not lines[-1])
                what = "the last index line is cut short" if last else f"index line {lineno} is damaged"
                self._warn(f"{self.path}: {what} ({exc}); frame skipped")
                continue
            entries.append(info)
        return entries

    @property
    def complete(self) -> bool:
        """True when the recorder finished (end.json exists)."""
        return self.end is not None

    @property
    def duration(self) -> float:
        return self.frames[-1].t if self.frames else 0.0

    def __len__(self) -> int:
        self._validate()
        return len(self.frames)

    def _validate(self) -> None:
        """Drop frames that cannot be decoded (checked once, lazily: it reads every file)."""
        if self._validated:
            return
        self._validated = True
        good: list[FrameInfo] = []
        prev_ok = False
        for info in self._entries:
            path = self.path / info.file
            if info.kind == "delta" and not prev_ok:
                self._warn(f"{self.path}: frame {info.index} skipped (its delta chain is broken)")
                continue
            if not path.is_file() or path.is_symlink():
                self._warn(f"{self.path}: frame {info.index} skipped ({info.file} is missing)")
                prev_ok = False
                continue
            good.append(info)
            prev_ok = True
        # A crash or power loss can leave the last file cut short: check that one fully.
        dropped, reason = [], ""
        while good:
            try:
                self._load(good[-1])
                break
            except FrameError as exc:
                dropped.append(good.pop().index)
                reason = str(exc)
        if len(dropped) == 1:
            self._warn(f"{self.path}: last frame {dropped[0]} is incomplete ({reason}); skipped")
        elif dropped:
            self._warn(f"{self.path}: the last {len(dropped)} frames ({dropped[-1]}..{dropped[0]}) "
                       f"are unreadable ({reason}); skipped")
        self.frames = good

    # -- frames

    def _resolve(self, n: int) -> int:
        count = len(self)
        if count == 0:
            raise PvrecError(f"{self.path} has no frames")
        i = n + count if n < 0 else n
        if not 0 <= i < count:
            raise PvrecError(
                f"frame {n} is out of range: {self.path} has {count} frames (0..{count - 1})"
            )
        return i

    def _decode(self, pos: int, prev: Frame | None, channels: tuple[str, ...] | None = None
                ) -> Frame:
        channels = self.channels if channels is None else channels
        return apply_frame(prev, self._load(self.frames[pos], channels), channels)

    def _load(self, info: FrameInfo, channels: tuple[str, ...] | None = None
              ) -> dict[str, np.ndarray]:
        return load_frame(self.path / info.file, self.pfn_count,
                          self.channels if channels is None else channels,
                          self.header.format_version)

    def read_frame(self, n: int) -> Frame:
        """Frame n (negative counts from the end) with all its channels."""
        i = self._resolve(n)
        if self._cache and self._cache[0] == i:
            return self._cache[1]
        start = i
        while self.frames[start].kind != "key" and start > 0:
            if self._cache and self._cache[0] == start - 1:
                break
            start -= 1
        frame = self._cache[1] if self._cache and self._cache[0] == start - 1 else None
        for pos in range(start, i + 1):
            try:
                frame = self._decode(pos, frame)
            except FrameError as exc:
                raise PvrecError(
                    f"{self.path}: frame {pos} ({self.frames[pos].file}) is damaged: {exc}"
                ) from None
        self._cache = (i, frame)
        return frame

    def read_runs(self, n: int) -> Runs:
        """Frame n (negative counts from the end) in run-length form."""
        return self.read_frame(n).flags

    def read(self, n: int) -> np.ndarray:
        """Frame n (negative counts from the end) as the uint64 flags of every PFN."""
        return self.read_runs(n).expand()

    def _chain(self, start: int, stop: int, channels: tuple[str, ...], stored: bool = False,
               need: Callable[[int], bool] | None = None
               ) -> Iterator[tuple[int, Frame | None, bool]]:
        """(position, frame, is a delta) of every frame from the key frame at or before start
        up to stop, each decoded (is a delta: False), or with stored, its flags as stored (a
        delta's: its XOR with the frame before; with `need`, UNREAD where need(position) is
        False). A damaged one is warned of and (position, None, False); the deltas after it
        are skipped up to a key frame."""
        prev: Frame | None = None
        pos = start
        while pos > 0 and self.frames[pos].kind != "key":
            pos -= 1
        while pos < stop:
            if stored and need is not None and not need(pos):
                yield pos, UNREAD, False
                pos += 1
                continue
            try:
                if stored:  # its kind from the file, as apply_frame takes it
                    arrays = self._load(self.frames[pos], channels)
                    prev, delta = Frame(stored_runs(arrays)), bool(arrays["meta"][1] == KIND_DELTA)
                else:
                    prev, delta = self._decode(pos, prev, channels), False
            except FrameError as exc:
                self._warn(f"{self.path}: frame {pos} ({self.frames[pos].file}) is damaged "
                           f"({exc}); skipped up to the next key frame")
                yield pos, None, False
                prev = None
                pos += 1
                while pos < stop and self.frames[pos].kind != "key":
                    pos += 1
                continue
            yield pos, prev, delta
            pos += 1

    def iter_decoded(self, start: int = 0, stop: int | None = None, step: int = 1,
                     channels: tuple[str, ...] | None = None
                     ) -> Iterator[tuple[FrameInfo, Frame]]:
        """Frames in order, decoding each file once; damaged ones skipped with a warning
        (with the deltas after them up to the next key frame). channels: those to decode
        (default: all of the recording's; flags always). Each frame's `changed` covers the
        frames skipped since the one yielded before it."""
        count = len(self)
        stop = count if stop is None else min(stop, count)
        full = channels is None or set(channels) >= set(self.channels)
        channels = self.channels if full else tuple(c for c in self.channels
                                                    if c == "flags" or c in channels)
        wanted = set(range(start, stop, max(1, step)))
        changed: tuple[np.ndarray, np.ndarray] | None = None  # since the frame yielded last
        for pos, frame, _ in self._chain(start, stop, channels):
            changed = None if frame is None else add_changes(changed, frame.changed)
            if frame is not None and pos in wanted:
                if full:  # read_frame's cache holds whole frames only
                    self._cache = (pos, frame)
                yield self.frames[pos], dataclasses.replace(frame, changed=changed)
                changed = (np.zeros(0, np.int64), np.zeros(0, np.int64))

    def iter_stored(self, start: int = 0, stop: int | None = None,
                    need: Callable[[int], bool] | None = None
                    ) -> Iterator[tuple[int, str, Runs | None]]:
        """(position, kind, flag runs as stored) of every readable frame from the key frame
        at or before start up to stop: a key frame's flags, a delta's XOR with the frame
        before (a damaged frame and the deltas after it are skipped, warned of). What a
        reader that follows a few pages needs, never a whole frame decoded. need: asked
        before each frame is read; where it says False the frame is not read, and is
        (position, "unread", None) (its reader knows from elsewhere that it changes nothing
        it follows: the summaries' tiles touched)."""
        stop = len(self) if stop is None else min(stop, len(self))
        for pos, frame, delta in self._chain(start, stop, ("flags",), stored=True, need=need):
            if frame is UNREAD:
                yield pos, "unread", None
            elif frame is not None:
                yield pos, "delta" if delta else "key", frame.flags

    def values_at(self, pfns: np.ndarray, stop: int | None = None
                  ) -> Iterator[tuple[int, np.ndarray]]:
        """(position, the flags of these PFNs) for frames 0..stop-1, never a whole frame
        decoded: a key frame is looked up at the PFNs, a delta XORed there alone (dating a
        few pages over a long recording costs the files' reading, not every frame's runs).
        Damaged frames are skipped with a warning, up to the next key frame."""
        stop = len(self) if stop is None else min(stop, len(self))
        cur: np.ndarray | None = None
        for pos in range(stop):
            info = self.frames[pos]
            if cur is None and info.kind != "key":
                continue  # after a damaged frame: wait for a key frame
            try:
                arrays = self._load(info)
                delta = arrays["meta"][1] == KIND_DELTA
                lengths = arrays["lengths"].astype(np.int64)
                ends = np.cumsum(lengths)
                at = np.minimum(np.searchsorted(ends, pfns, "right"), lengths.size - 1)
                here = arrays["palette"][arrays["codes"][at]]
            except (FrameError, IndexError) as exc:
                self._warn(f"{self.path}: frame {pos} ({info.file}) is damaged ({exc}); "
                           f"skipped up to the next key frame")
                cur = None
                continue
            cur = cur ^ here if delta and cur is not None else here
            yield pos, cur

    def iter_runs(self, start: int = 0, stop: int | None = None, step: int = 1
                  ) -> Iterator[tuple[FrameInfo, Runs]]:
        """Frames in order as flag runs (no other channel decoded)."""
        for info, frame in self.iter_decoded(start, stop, step, ("flags",)):
            yield info, frame.flags

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1
                    ) -> Iterator[tuple[FrameInfo, np.ndarray]]:
        """Frames in order as uint64 flag arrays."""
        for info, runs in self.iter_runs(start, stop, step):
            yield info, runs.expand()


def open_recording(path: str | os.PathLike, on_warning: Warn | None = None) -> Recording:
    """Open a recording directory for reading; PvrecError if it is not one."""
    return Recording(path, on_warning)

