"""The recording format (versions 1, 2 and 3): names, versions, the frame file's arrays and their checks.

    header.json          written first: machine, layout, interval, command, codec parameters
    frames.jsonl         one line per frame, appended after the frame's file is in place
    frames/NNNNNN.npz    one file per frame, written to a temp name and renamed
    end.json             written last: why it stopped, exit status, totals

A frame is the flags of every PFN in run-length form (run lengths, and a palette of the
distinct values with a small code per run). A key frame stores the runs themselves; a delta
frame stores the runs of its XOR with the previous frame: mostly one long zero run, a few
thousand runs where pages changed. A key frame every `key_every` frames bounds what one
damaged file can lose. Versions 2 and 3 store the same runs in smaller streams (codec.py);
they are read back into version 1's arrays, so the readers above this module see one form.
Arrays are plain dtypes, loaded with allow_pickle=False, and checked before use, because
recordings are shared and may be damaged or hostile. docs/recording-format.md is the prose
version of this module.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pvrec import __version__
from pvrec.errors import PvrecError
from pvrec.recording import codec

FORMAT_NAME = "pvrec"
FORMAT_VERSION = 3
# A key frame every 60: half the key frames of 30 (a kernel build's key frame is ~6 deltas'
# bytes) for a seek of at most 59 deltas (~13 ms each at 24 GiB). A header without key_every
# was written with 30 (header.py).
DEFAULT_KEY_EVERY = 60
# Per-PFN channels stored as runs (key or XOR delta): the flags, each page's memcg inode, and
# whether the workload maps the page (0/1).
RUN_CHANNELS = ("flags", "cgroup", "workload")
RUN_ARRAYS = ("lengths", "palette", "codes")
# Version 2 and 3's arrays of a channel, by frame kind (codec.py): a delta adds the zero gaps.
V2_ARRAYS = {0: RUN_ARRAYS, 1: ("gaps", *RUN_ARRAYS)}
KIND_KEY, KIND_DELTA = 0, 1
_FRAME_NAME = re.compile(r"frames/[0-9]{6,9}\.npz")


def prefix(channel: str) -> str:
    """Array name prefix of a channel: flags keep the plain names, others are 'cgroup.lengths'."""
    return "" if channel == "flags" else channel + "."


# -- the compatibility rule (docs/recording-format.md): a reader of version N reads every
# version 1..N; each frame is checked against its own header's version; a channel this reader
# does not know is skipped (it is optional: only flags is required), never guessed at.

def check_readable(version: int, recording: Path | str) -> None:
    """Refuse a format version this pvrec cannot read (newer: "upgrade pvrec")."""
    if version > FORMAT_VERSION:
        raise PvrecError(
            f"{recording} is recording format version {version}; this pvrec "
            f"{__version__} reads up to version {FORMAT_VERSION}: upgrade pvrec"
        )
    if version < 1:
        raise PvrecError(f"{Path(recording) / 'header.json'}: unknown format version {version}")


def check_channels(channels: object, recording: Path | str
                   ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(channels this pvrec reads, channels it skips) of a header's list: flags first, no
    repeats; a name it does not know is a newer recorder's optional channel."""
    if (not isinstance(channels, list) or channels[:1] != ["flags"]
            or not all(isinstance(c, str) for c in channels)
            or len(set(channels)) != len(channels)):
        raise PvrecError(f"{recording}: header lists unknown channels {channels!r}")
    return (tuple(c for c in channels if c in RUN_CHANNELS),
            tuple(c for c in channels if c not in RUN_CHANNELS))


@dataclass
class FrameInfo:
    """One line of frames.jsonl: where the frame is, when it was taken, and its context."""

    index: int
    t: float
    file: str
    kind: str
    context: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"index": self.index, "t": self.t, "file": self.file,
                           "kind": self.kind, **self.context}, separators=(",", ":"))


SUMMARY_FILE = ".pvrec-summaries.npz"  # pvrec.summaries' cache: never required, rebuilt when stale
# What `record --force` clears of an old recording (anything else in the directory stays).
RECORDING_FILES = ("header.json", "frames.jsonl", "end.json", "frames", SUMMARY_FILE)


def disk_usage(path: Path) -> int:
    """Bytes of the files of a recording directory."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class FrameError(Exception):
    """A frame file is damaged; the reader skips it with a warning."""


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int) -> np.ndarray:
    """One .npy member of a frame file, refused if it declares or inflates beyond `limit`
    bytes (zip bombs stop here), parsed by read_npy."""
    if info.file_size > limit:
        raise FrameError(f"array {name!r} declares {info.file_size} bytes")
    with zf.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise FrameError(f"array {name!r} inflates beyond {limit} bytes")
    return read_npy(data, name)


def read_npy(data: bytes, name: str) -> np.ndarray:
    """An .npy member parsed by hand: plain dtypes only, and the data must be exactly as large
    as the header says (np.load would allocate whatever shape a hostile header declares)."""
    bio = io.BytesIO(data)
    try:
        major, _minor = np.lib.format.read_magic(bio)
        if major == 1:
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(bio)
        elif major in (2, 3):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(bio)
        else:
            raise FrameError(f"array {name!r}: unknown .npy version {major}")
    except FrameError:
        raise
    except Exception as exc:  # numpy raises ValueError, SyntaxError, TypeError, ...
        raise FrameError(f"array {name!r}: bad .npy header ({exc})") from None
    if dtype.hasobject or dtype.kind not in "ui" or len(shape) != 1 or fortran:
        raise FrameError(f"array {name!r} is {dtype} of shape {shape}, not a plain 1-d integer array")
    offset = bio.tell()
    if shape[0] * dtype.itemsize != len(data) - offset:
        raise FrameError(f"array {name!r} holds {len(data) - offset} bytes, its header says "
                         f"{shape[0] * dtype.itemsize}")
    return np.frombuffer(data, dtype=dtype, offset=offset)


def load_frame(path: Path, pfn_count: int, channels: tuple[str, ...] = ("flags",),
               version: int = FORMAT_VERSION) -> dict[str, np.ndarray]:
    """Load and sanity-check one frame file without trusting anything in it: the channels
    asked for, in the format version of the recording's header, as version 1's arrays."""
    # No array may inflate beyond what this many pages could need: zip bombs stop here.
    limit = 8 * pfn_count + (1 << 16)
    arrays = {}
    try:
        with zipfile.ZipFile(path) as zf:
            arrays["meta"] = _member(zf, "meta", limit)
            meta = arrays["meta"]
            if meta.size < 4 or meta[1] not in (KIND_KEY, KIND_DELTA):
                raise FrameError("bad meta")
            if meta[0] != version:  # before the arrays: another version has other ones
                raise FrameError(f"frame is format version {meta[0]}, its header says {version}")
            names = [prefix(c) + a for c in channels
                     for a in (V2_ARRAYS[int(meta[1])] if version >= 2 else RUN_ARRAYS)]
            if version >= 2:
                arrays.update(codec.unpack(_member(zf, codec.PACK_MEMBER, limit), names, limit,
                                           codec.CODECS[version]))
            else:
                arrays.update((name, _member(zf, name, limit)) for name in names)
    except FrameError:
        raise
    except codec.CodecError as exc:
        raise FrameError(str(exc)) from None
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, KeyError,
            RuntimeError, NotImplementedError, OverflowError, MemoryError, zlib.error) as exc:
        raise FrameError(str(exc) or type(exc).__name__) from None
    if meta[3] != pfn_count:
        raise FrameError(f"frame has {meta[3]} pages, the header says {pfn_count}")
    for channel in channels:
        if version >= 2:
            check_runs_v2(arrays, prefix(channel), pfn_count, int(meta[1]))
        else:
            check_runs(arrays, prefix(channel), pfn_count)
    return arrays


def _member(zf: zipfile.ZipFile, name: str, limit: int) -> np.ndarray:
    try:
        info = zf.getinfo(name + ".npy")
    except KeyError:
        raise FrameError(f"missing array {name!r}") from None
    arr = read_member(zf, info, name, limit)
    if arr.dtype.kind != "u" and not (name == "meta" and arr.dtype == np.int64):
        raise FrameError(f"array {name!r} has dtype {arr.dtype}")
    return arr


def check_runs_v2(arrays: dict[str, np.ndarray], prefix: str, pfn_count: int, kind: int
                  ) -> None:
    """Validate one channel of a version-2 or 3 frame and put version 1's arrays in its place."""
    palette = arrays[prefix + "palette"]
    if palette.dtype != np.uint64:
        raise FrameError("palette is not uint64")
    try:
        if kind == KIND_KEY:
            runs = codec.decode_key(arrays[prefix + "lengths"], palette,
                                    arrays[prefix + "codes"], pfn_count)
        else:
            runs = codec.decode_delta(arrays.pop(prefix + "gaps"), arrays[prefix + "lengths"],
                                      palette, arrays[prefix + "codes"], pfn_count)
    except codec.CodecError as exc:
        raise FrameError(str(exc)) from None
    for name, arr in zip(RUN_ARRAYS, runs, strict=True):
        arrays[prefix + name] = arr


def check_runs(arrays: dict[str, np.ndarray], prefix: str, pfn_count: int) -> None:
    """Validate one channel's runs in place (and turn its byte planes back into integers)."""
    planes, palette, codes = (arrays[prefix + a] for a in RUN_ARRAYS)
    if codes.size == 0 or planes.dtype != np.uint8 or planes.size % codes.size:
        raise FrameError("run table sizes disagree")
    width = planes.size // codes.size
    if width not in (1, 2, 4, 8):
        raise FrameError("bad run length width")
    lengths = planes.reshape(width, -1).T.copy().view(f"<u{width}").reshape(-1)
    if int(codes.max()) >= palette.size:
        raise FrameError("run code outside the palette")
    if palette.dtype != np.uint64:
        raise FrameError("palette is not uint64")
    # Check without trusting the sum not to wrap: every length in 1..pfn_count, and the float
    # sum (exact enough below 2**53) agreeing with the integer one.
    if lengths.size > pfn_count or int(lengths.min()) == 0 or int(lengths.max()) > pfn_count:
        raise FrameError("run lengths out of range")
    if round(float(lengths.sum(dtype=np.float64))) != pfn_count or int(
        lengths.sum(dtype=np.uint64)
    ) != pfn_count:
        raise FrameError("run lengths do not add up to the page count")
    arrays[prefix + "lengths"] = lengths


def check_file_name(name: object) -> str:
    """A frame file name from the index, refused if it could point outside the recording."""
    if not isinstance(name, str) or not _FRAME_NAME.fullmatch(name):
        raise FrameError(f"frame file name {name!r} is not of the form frames/NNNNNN.npz")
    return name


MAX_BUDDY_ORDERS = 41  # an order past 2**40 pages is damage, not a kernel


def _counts(v: object, limit: int | None = None) -> bool:
    return (isinstance(v, list) and (limit is None or len(v) <= limit)
            and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in v))


def _counters(v: object) -> bool:
    return isinstance(v, dict) and all(isinstance(c, int) and not isinstance(c, bool)
                                       for c in v.values())


MAX_MARK_CHARS = 120  # a workload's marker text (pvrec mark)
MAX_MARKERS_PER_FRAME = 100


def _markers(v: object) -> bool:
    """The index's `markers`: a list of {"t": seconds, "text": str}."""
    return (isinstance(v, list) and len(v) <= MAX_MARKERS_PER_FRAME and all(
        isinstance(m, dict) and isinstance(m.get("text"), str)
        and len(m["text"]) <= MAX_MARK_CHARS and isinstance(m.get("t"), int | float)
        and not isinstance(m.get("t"), bool) and m["t"] == m["t"] and abs(m["t"]) < 1e12
        for m in v))


def _table(v: object, ok) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and ok(c) for k, c in v.items())


# The context keys readers compute with, and what each must be (the index is untrusted).
CONTEXT_CHECKS = {
    "buddyinfo": lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and _counts(c, MAX_BUDDY_ORDERS) for k, c in v.items()),
    "vmstat": _counters,
    "meminfo": _counters,
    "mthp": lambda v: isinstance(v, dict) and all(  # {"64kB": {"nr_anon": 3, ...}}
        isinstance(k, str) and _counters(c) for k, c in v.items()),
    # {"blocks": {"0/Normal": {"Movable": 1847, ...}}, "free": {"0/Normal": {"Movable": [...]}}}
    "pagetypeinfo": lambda v: isinstance(v, dict) and set(v) <= {"blocks", "free"}
    and _table(v.get("blocks", {}), lambda z: _table(z, lambda n: _counts([n])))
    and _table(v.get("free", {}), lambda z: _table(z, lambda c: _counts(c, MAX_BUDDY_ORDERS))),
    "unusable_index": lambda v: _table(v, lambda c: isinstance(c, list) and len(c) <=
                                       MAX_BUDDY_ORDERS and all(isinstance(x, int | float)
                                                                 for x in c)),
    "events": _counters,  # {"extfrag": 12, "compaction_scanned": 4096, "dropped": 0, ...}
    "markers": _markers,
}


def clean_context(context: dict) -> list[str]:
    """Drop the context values that are not of their documented shape; returns their keys."""
    bad = [k for k, ok in CONTEXT_CHECKS.items() if k in context and not ok(context[k])]
    for k in bad:
        del context[k]
    return bad

