"""The recording format (version 1): a directory that a recorder writes and every other command reads.

    header.json          written first: machine, layout, interval, command, codec parameters
    frames.jsonl         one line per frame, appended after the frame's file is in place
    frames/NNNNNN.npz    one file per frame, written to a temp name and renamed
    end.json             written last: why it stopped, exit status, totals

A frame is the flags of every PFN in run-length form (run lengths, and a palette of the
distinct values with a small code per run). A key frame stores the runs themselves; a delta
frame stores the runs of its XOR with the previous frame: mostly one long zero run, a few
thousand runs where pages changed. A key frame every `key_every` frames bounds what one
damaged file can lose.
Arrays are plain dtypes, loaded with allow_pickle=False, and checked before use, because
recordings are shared and may be damaged or hostile. docs/recording-format.md is the prose
version of this module.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import shutil
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pvrec import __version__
from pvrec.errors import PvrecError

FORMAT_NAME = "pvrec"
FORMAT_VERSION = 1
DEFAULT_KEY_EVERY = 30
CHUNK_PAGES = 1 << 20  # the writer diffs and the recorder reads frames in chunks of 8 MiB of flags
# Per-PFN channels stored as runs (key or XOR delta): the flags, each page's memcg inode, and
# whether the workload maps the page (0/1).
RUN_CHANNELS = ("flags", "cgroup", "workload")
RUN_ARRAYS = ("lengths", "palette", "codes")
KIND_KEY, KIND_DELTA = 0, 1
_FRAME_NAME = re.compile(r"frames/[0-9]{6,9}\.npz")


class RecordingWarning(UserWarning):
    """Something in a recording was damaged and skipped; the rest is still usable."""


@dataclass
class Runs:
    """Flags of consecutive PFNs in run-length form: run i is lengths[i] pages of values[i]."""

    lengths: np.ndarray  # int64 [R], all > 0
    values: np.ndarray  # uint64 [R], neighbours differ

    @property
    def pfn_count(self) -> int:
        return int(self.lengths.sum(dtype=np.int64))

    def starts(self) -> np.ndarray:
        """The first PFN of each run."""
        out = np.zeros(self.lengths.size, dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=out[1:])
        return out

    def expand(self) -> np.ndarray:
        """The flags of every PFN (uint64 array)."""
        return np.repeat(self.values, self.lengths)


def _from_starts(starts: np.ndarray, values: np.ndarray, n: int) -> Runs:
    """Runs from sorted distinct starts (starts[0] == 0), merging neighbours of equal value."""
    keep = np.empty(values.size, dtype=bool)
    keep[:1] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    if not keep.all():
        starts, values = starts[keep], values[keep]
    lengths = np.empty(starts.size, dtype=np.int64)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1:] = n - starts[-1:]
    return Runs(lengths, values)


def encode_flags(flags: np.ndarray) -> Runs:
    """Run-length form of an array of flags."""
    flags = np.ascontiguousarray(flags, dtype=np.uint64)
    if flags.size == 0:
        return Runs(np.zeros(0, np.int64), np.zeros(0, np.uint64))
    starts = np.flatnonzero(flags[1:] != flags[:-1])
    starts += 1
    starts = np.concatenate((np.zeros(1, starts.dtype), starts))
    # 32-bit lengths while they fit: a frame's runs are what the writer keeps between frames.
    length_type = np.uint32 if flags.size < 1 << 32 else np.int64
    return Runs(np.diff(starts, append=flags.size).astype(length_type), flags[starts])


def join_runs(parts: list[Runs]) -> Runs:
    """The runs of consecutive chunks as one, merging equal runs across the joins.

    Only the joins are looked at (no per-run pass beyond the concatenation): on a 1 TiB frame
    this is what keeps a key frame's memory at its runs and not several copies of them.
    """
    parts = [p for p in parts if p.lengths.size]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Runs(np.zeros(0, np.int64), np.zeros(0, np.uint64))
    lengths = np.concatenate([p.lengths for p in parts])
    values = np.concatenate([p.values for p in parts])
    joins = np.cumsum([p.lengths.size for p in parts[:-1]])
    same = joins[values[joins] == values[joins - 1]]
    if same.size:
        keep = np.ones(values.size, dtype=bool)
        keep[same] = False
        heads = np.flatnonzero(keep)
        lengths = np.add.reduceat(lengths, heads)
        values = values[heads]
    return Runs(lengths, values)


def split_runs(runs: Runs, chunk: int = CHUNK_PAGES) -> list[Runs]:
    """The runs cut at every multiple of chunk pages: one Runs per chunk."""
    n = runs.pfn_count
    if n <= chunk:
        return [runs]
    starts = runs.starts()
    out = []
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        i, j = np.searchsorted(starts, lo, "right") - 1, np.searchsorted(starts, hi, "left")
        s = np.maximum(starts[i:j], lo)
        e = np.minimum(starts[i:j] + runs.lengths[i:j], hi)
        out.append(Runs(e - s, runs.values[i:j]))
    return out


def _compact(runs: Runs) -> Runs:
    """The same runs with 32-bit lengths where they fit: what a writer keeps between frames."""
    if runs.lengths.dtype != np.uint32 and runs.lengths.size and runs.lengths.max() < 1 << 32:
        return Runs(runs.lengths.astype(np.uint32), runs.values)
    return runs


def _same(a: Runs, b: Runs) -> bool:
    return np.array_equal(a.lengths, b.lengths) and np.array_equal(a.values, b.values)


def xor_runs(a: Runs, b: Runs) -> Runs:
    """a XOR b, page by page, computed on the runs alone (never the full arrays).

    A delta frame stores xor_runs(frame, previous): mostly one huge zero run, a few thousand
    runs where pages changed; applying it is xor_runs(previous, delta). When one side has few
    non-zero runs (a delta) only the stretches it touches are cut and flipped: a few passes
    over the other side's runs instead of a merge sort of both.
    """
    if b.lengths.size > a.lengths.size:
        a, b = b, a
    nonzero = b.values != 0
    if 16 * int(np.count_nonzero(nonzero)) > a.lengths.size:
        return _xor_merge(a, b)
    n = a.pfn_count
    sb = b.starts()
    cs, ce, cx = sb[nonzero], sb[nonzero] + b.lengths[nonzero], b.values[nonzero]
    if cs.size == 0:
        return a
    sa = a.starts()
    cuts = np.concatenate((cs, ce[ce < n]))
    pos = np.searchsorted(sa, cuts)
    present = sa[np.minimum(pos, sa.size - 1)] == cuts
    cuts = np.unique(cuts[~present])
    pos = np.searchsorted(sa, cuts)
    starts = np.insert(sa, pos, cuts)
    values = np.insert(a.values, pos, a.values[pos - 1])  # a cut inherits its run's value
    first, last = np.searchsorted(starts, cs), np.searchsorted(starts, ce)
    counts = last - first
    offsets = np.repeat(first - np.cumsum(counts) + counts, counts)
    inside = np.arange(int(counts.sum()), dtype=np.int64) + offsets
    values[inside] ^= np.repeat(cx, counts)
    return _from_starts(starts, values, n)


def _xor_merge(a: Runs, b: Runs) -> Runs:
    """a XOR b when both sides change often: merge the two boundary lists."""
    n = a.pfn_count
    sa, sb = a.starts(), b.starts()
    merged = np.concatenate((sa, sb))
    order = np.argsort(merged, kind="stable")  # two sorted runs: a linear merge
    s = merged[order]
    # Of equal starts keep the last, where both run indexes have advanced.
    last = np.empty(s.size, dtype=bool)
    last[-1:] = True
    np.not_equal(s[1:], s[:-1], out=last[:-1])
    at = np.flatnonzero(last)
    from_a = np.cumsum(order < sa.size)[at]  # runs of a begun so far
    values = a.values[from_a - 1] ^ b.values[at - from_a]
    return _from_starts(s[at], values, n)


def _smallest_uint(max_value: int) -> type:
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return dt
    return np.uint64


def pfns_to_runs(pfns: np.ndarray, pfn_count: int) -> Runs:
    """A 0/1 run channel from sorted unique PFNs (1 where the PFN is listed)."""
    pfns = np.asarray(pfns, dtype=np.int64)
    if pfns.size == 0:
        return Runs(np.array([pfn_count], np.int64), np.zeros(1, np.uint64))
    breaks = np.flatnonzero(np.diff(pfns) != 1) + 1
    ones = pfns[np.r_[0, breaks]]
    zeros = pfns[np.r_[breaks - 1, pfns.size - 1]] + 1
    zeros = zeros[zeros < pfn_count]
    starts = np.concatenate((ones, zeros, [0] if ones[0] > 0 else []))
    values = np.concatenate((np.ones(ones.size, np.uint64), np.zeros(zeros.size + (ones[0] > 0),
                                                                      np.uint64)))
    order = np.argsort(starts, kind="stable")
    return _from_starts(starts[order].astype(np.int64), values[order], pfn_count)


def _prefix(channel: str) -> str:
    """Array name prefix of a channel: flags keep the plain names, others are 'cgroup.lengths'."""
    return "" if channel == "flags" else channel + "."


@dataclass
class Streamed:
    """A 1-d array written to a frame file block by block, never whole in memory."""

    dtype: np.dtype
    count: int
    blocks: Callable[[], Iterator[bytes]]


def _join_pieces(pieces: list[Runs]) -> list[Runs]:
    """Consecutive pieces with equal runs across their joins merged (the pieces stay untouched:
    they may be the frame the writer keeps)."""
    out: list[Runs] = []
    for p in pieces:
        if out and p.values.size and out[-1].values[-1] == p.values[0]:
            last = out[-1]
            lengths = last.lengths.astype(np.int64)
            lengths[-1] += int(p.lengths[0])
            out[-1] = Runs(lengths, last.values)
            p = Runs(p.lengths[1:], p.values[1:])
        if p.values.size:
            out.append(p)
    return out


def _runs_arrays(pieces: list[Runs], prefix: str) -> dict[str, np.ndarray | Streamed]:
    """The stored arrays of one channel, streamed from its pieces (consecutive chunks)."""
    pieces = _join_pieces(pieces)
    palette = np.unique(np.concatenate([np.unique(p.values) for p in pieces]))
    code_type = np.dtype(_smallest_uint(max(palette.size - 1, 0)))
    length_type = np.dtype(_smallest_uint(max(int(p.lengths.max()) for p in pieces)))
    count = sum(p.lengths.size for p in pieces)
    width = length_type.itemsize

    def codes():
        for p in pieces:
            yield np.searchsorted(palette, p.values).astype(code_type).tobytes()

    def planes():
        # Byte planes (all low bytes, then the next...): deflate finds 15% more to squeeze.
        # The width is lengths.size / codes.size.
        for b in range(width):
            for p in pieces:
                by_byte = p.lengths.astype(length_type).view(np.uint8).reshape(-1, width)
                yield np.ascontiguousarray(by_byte[:, b]).tobytes()

    return {
        prefix + "lengths": Streamed(np.dtype(np.uint8), width * count, planes),
        prefix + "palette": palette.astype(np.uint64),
        prefix + "codes": Streamed(code_type, count, codes),
    }


ZERO = np.zeros(1, np.uint64)


def channel_pieces(chunks: Iterable[Runs], prev: list[Runs] | None, kept: list[Runs]
                   ) -> list[Runs]:
    """What a frame stores of one channel, chunk by chunk: the chunk (key) or its XOR with the
    previous frame's chunk (delta). Each chunk read is appended to kept, and the previous
    frame's chunk is let go as soon as it is used, so one frame's runs is the memory bound."""
    pieces = []
    for i, chunk in enumerate(chunks):
        chunk = _compact(chunk)
        kept.append(chunk)
        if prev is None:
            pieces.append(chunk)
            continue
        if i >= len(prev) or prev[i] is None:
            raise PvrecError("frame does not have the previous frame's shape")
        before, prev[i] = prev[i], None
        if before.pfn_count != chunk.pfn_count:
            raise PvrecError("frame chunks do not have the previous frame's shape")
        pieces.append(Runs(np.array([chunk.pfn_count], np.int64), ZERO)
                      if _same(chunk, before) else xor_runs(chunk, before))
    return pieces


def write_npz(path: Path, arrays: dict[str, np.ndarray | Streamed], level: int = 6,
              durable: bool = True) -> int:
    """Write arrays as an .npz (a zip of .npy members, deflated) and return its size."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                if isinstance(arr, Streamed):
                    np.lib.format.write_array_header_1_0(
                        member, {"descr": np.lib.format.dtype_to_descr(arr.dtype),
                                 "fortran_order": False, "shape": (arr.count,)})
                    for block in arr.blocks():
                        member.write(block)
                else:
                    np.lib.format.write_array(member, np.ascontiguousarray(arr),
                                              allow_pickle=False)
    data = buf.getbuffer()
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    return len(data)


def _atomic_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


RECORDING_FILES = ("header.json", "frames.jsonl", "end.json", "frames")


def prepare_directory(path: Path, force: bool) -> None:
    """Create the output directory; refuse a non-empty one unless force (then clear a recording)."""
    if path.exists() and not path.is_dir():
        raise PvrecError(f"output path {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise PvrecError(f"output directory {path} is not empty (use --force to overwrite it)")
        if not (path / "header.json").exists():
            raise PvrecError(f"--force overwrites recordings only, and {path} is not one")
        for name in RECORDING_FILES:
            p = path / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    try:
        (path / "frames").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PvrecError(f"cannot create output directory {path}: {exc.strerror}") from None


class Writer:
    """Appends frames to a recording directory so that it is readable at every moment.

    `add_frame(runs_or_flags, t, context)` encodes and writes one frame; `close(end)` writes
    end.json. A crash at any point leaves every frame whose index line was written readable.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        header: dict,
        *,
        key_every: int = DEFAULT_KEY_EVERY,
        force: bool = False,
        owner: tuple[int, int] | None = None,
        channels: tuple[str, ...] = ("flags",),
        durable: bool = True,
    ):
        if channels[:1] != ("flags",) or not set(channels) <= set(RUN_CHANNELS):
            raise PvrecError(f"channels must start with 'flags' and be among {RUN_CHANNELS}")
        self.path = Path(path)
        self.channels = tuple(channels)
        self.durable = durable  # fsync every frame (a power cut loses at most the last one)
        self.key_every = max(1, key_every)
        self.owner = owner
        self.frames = 0
        self.bytes = 0
        self._prev: dict[str, list[Runs]] | None = None
        prepare_directory(self.path, force)
        self._chown(self.path)
        self._chown(self.path / "frames")
        self.header = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "pvrec_version": __version__,
            **header,
            "key_every": self.key_every,
            "channels": list(self.channels),
        }
        if "pfn_count" not in self.header:
            raise PvrecError("header needs pfn_count")
        _atomic_json(self.path / "header.json", self.header)
        self._chown(self.path / "header.json")
        # Unbuffered appends: a line is on disk (or cut short, which readers skip) the moment
        # it is written; a buffer could flush a line later for a frame that was removed.
        self._index = os.open(self.path / "frames.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT
                              | os.O_CLOEXEC, 0o644)
        self._chown(self.path / "frames.jsonl")

    def _chown(self, p: Path) -> None:
        if self.owner is not None:
            os.chown(p, *self.owner)

    def add_frame(self, frame: Runs | np.ndarray | list[Runs], t: float,
                  context: dict | None = None, *,
                  cgroup: Runs | np.ndarray | list[Runs] | None = None,
                  workload: np.ndarray | None = None) -> FrameInfo:
        """Encode and append one frame; raises PvrecError (e.g. disk full) leaving no partial file.

        cgroup (the memcg inode of every PFN) and workload (sorted PFNs the workload maps) are
        required when the recording has those channels.
        """
        channels = {"flags": frame}
        for name, data in (("cgroup", cgroup), ("workload", workload)):
            if name in self.channels:
                if data is None:
                    raise PvrecError(f"this recording stores {name}: every frame needs it")
                if name == "workload" and not isinstance(data, Runs):
                    data = pfns_to_runs(data, self.header["pfn_count"])
                channels[name] = data
        index = self.frames
        kind = KIND_KEY if index % self.key_every == 0 or self._prev is None else KIND_DELTA
        prev, self._prev = self._prev, None  # a frame that fails half-way leaves a key next
        kept: dict[str, list[Runs]] = {}
        arrays: dict[str, np.ndarray | Streamed] = {}
        began = time.monotonic()
        for channel, data in channels.items():
            kept[channel] = []
            pieces = channel_pieces(_as_chunks(data), None if kind == KIND_KEY
                                    else prev[channel], kept[channel])
            pages = sum(p.pfn_count for p in pieces)
            if pages != self.header["pfn_count"]:
                raise PvrecError(
                    f"frame has {pages} pages, the recording {self.header['pfn_count']}")
            arrays.update(_runs_arrays(pieces, _prefix(channel)))
        arrays["meta"] = np.array([FORMAT_VERSION, kind, index, self.header["pfn_count"]],
                                  np.int64)
        # Chunks may be read lazily while they are encoded: this is the sample's read + encode.
        context = {**(context or {}), "sample_s": round(time.monotonic() - began, 6)}
        name = f"frames/{index:06d}.npz"
        final = self.path / name
        tmp = final.with_name(final.name + ".tmp")
        try:
            size = write_npz(tmp, arrays, durable=self.durable)
            self._chown(tmp)
            os.replace(tmp, final)
            info = FrameInfo(index, round(t, 6), name, "key" if kind == KIND_KEY else "delta",
                             dict(context or {}, bytes=size))
            line = (info.to_json() + "\n").encode()
            if os.write(self._index, line) != len(line):
                raise OSError(errno.ENOSPC, "No space left on device")
        except BaseException as exc:  # a second Ctrl-C included: leave no partial frame
            tmp.unlink(missing_ok=True)
            if final.exists() and self.frames == index:
                final.unlink(missing_ok=True)
            if not isinstance(exc, OSError):
                raise
            raise PvrecError(
                f"cannot write frame {index} to {self.path}: {exc.strerror or exc}; "
                + (f"the recording is readable up to frame {index - 1}" if index
                   else "nothing was recorded"), exit_code=1
            ) from None
        self._prev = kept
        self.frames += 1
        self.bytes += size
        return info

    def close(self, end: dict) -> None:
        """Write end.json (best effort: a full disk still leaves a readable recording)."""
        try:
            os.close(self._index)
        except OSError:
            pass
        end = {"frames": self.frames, "bytes": self.bytes, **end}
        try:
            _atomic_json(self.path / "end.json", end)
            self._chown(self.path / "end.json")
        except OSError:
            (self.path / "end.json.tmp").unlink(missing_ok=True)


def _as_chunks(data: Runs | np.ndarray | Iterable[Runs]) -> Iterable[Runs]:
    """A channel as runs per chunk of CHUNK_PAGES (the last may be shorter)."""
    if isinstance(data, np.ndarray):
        return (encode_flags(data[i:i + CHUNK_PAGES]) for i in range(0, data.size, CHUNK_PAGES))
    if isinstance(data, Runs):
        return split_runs(data)
    return data


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


# ----------------------------------------------------------------------------------- reading

class FrameError(Exception):
    """A frame file is damaged; the reader skips it with a warning."""


def _read_npy(data: bytes, name: str) -> np.ndarray:
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


def _load_frame(path: Path, pfn_count: int, channels: tuple[str, ...] = ("flags",)
                ) -> dict[str, np.ndarray]:
    """Load and sanity-check one frame file without trusting anything in it."""
    # No array may inflate beyond what this many pages could need: zip bombs stop here.
    limit = 8 * pfn_count + (1 << 16)
    names = ["meta"] + [_prefix(c) + a for c in channels for a in RUN_ARRAYS]
    arrays = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in names:
                try:
                    info = zf.getinfo(name + ".npy")
                except KeyError:
                    raise FrameError(f"missing array {name!r}") from None
                if info.file_size > limit:
                    raise FrameError(f"array {name!r} declares {info.file_size} bytes")
                with zf.open(info) as member:
                    data = member.read(limit + 1)
                if len(data) > limit:
                    raise FrameError(f"array {name!r} inflates beyond {limit} bytes")
                arr = _read_npy(data, name)
                if arr.dtype.kind != "u" and not (name == "meta" and arr.dtype == np.int64):
                    raise FrameError(f"array {name!r} has dtype {arr.dtype}")
                arrays[name] = arr
    except FrameError:
        raise
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, KeyError,
            RuntimeError, NotImplementedError, OverflowError, MemoryError, zlib.error) as exc:
        raise FrameError(str(exc) or type(exc).__name__) from None
    meta = arrays["meta"]
    if meta.size < 4 or meta[0] != FORMAT_VERSION or meta[1] not in (KIND_KEY, KIND_DELTA):
        raise FrameError("bad meta")
    if meta[3] != pfn_count:
        raise FrameError(f"frame has {meta[3]} pages, the header says {pfn_count}")
    for channel in channels:
        _check_runs(arrays, _prefix(channel), pfn_count)
    return arrays


def _check_runs(arrays: dict[str, np.ndarray], prefix: str, pfn_count: int) -> None:
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


@dataclass
class Frame:
    """One decoded frame: the flags, and the optional channels the recording has."""

    flags: Runs
    cgroup: Runs | None = None  # memcg inode per PFN
    workload: Runs | None = None  # 1 where the workload's processes map the PFN, else 0

    def workload_pfns(self) -> np.ndarray:
        """Sorted PFNs the workload maps (empty when the recording did not track it)."""
        if self.workload is None:
            return np.zeros(0, np.int64)
        starts = self.workload.starts()
        ones = self.workload.values != 0
        return np.concatenate([np.arange(s, s + n) for s, n in
                               zip(starts[ones], self.workload.lengths[ones], strict=True)]
                              or [np.zeros(0, np.int64)])


def apply_frame(prev: Frame | None, arrays: dict[str, np.ndarray],
                channels: tuple[str, ...] = ("flags",)) -> Frame:
    """The frame: each channel stored as it is (key), or XORed onto the previous frame (delta)."""
    delta = arrays["meta"][1] == KIND_DELTA
    if delta and prev is None:
        raise FrameError("delta frame without a previous frame")
    out = {}
    for channel in channels:
        p = _prefix(channel)
        stored = Runs(arrays[p + "lengths"].astype(np.int64), arrays[p + "palette"][arrays[p + "codes"]])
        out[channel] = xor_runs(getattr(prev, channel), stored) if delta else stored
    return Frame(**out)


def _check_file_name(name: object) -> str:
    """A frame file name from the index, refused if it could point outside the recording."""
    if not isinstance(name, str) or not _FRAME_NAME.fullmatch(name):
        raise FrameError(f"frame file name {name!r} is not of the form frames/NNNNNN.npz")
    return name


class Recording:
    """A recording opened for reading: header, frame index, frames by number, end marker.

    Frames that are damaged are left out of `frames` with a RecordingWarning (a delta frame
    needs its chain back to a key frame). Frame numbers are positions in `frames`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.warnings: list[str] = []
        self.header = self._read_header()
        self.pfn_count = int(self.header["pfn_count"])
        if not 0 < self.pfn_count < 1 << 40:
            raise PvrecError(f"{self.path}: header has an impossible page count")
        channels = self.header.get("channels", ["flags"])
        if (not isinstance(channels, list) or channels[:1] != ["flags"]
                or not set(channels) <= set(RUN_CHANNELS) or len(set(channels)) != len(channels)):
            raise PvrecError(f"{self.path}: header lists unknown channels {channels!r}")
        self.channels = tuple(channels)
        self.end = self._read_end()
        self._entries = self._read_index()
        self.frames: list[FrameInfo] = list(self._entries)
        self._cache: tuple[int, Frame] | None = None
        self._validated = False

    # -- metadata

    def _read_header(self) -> dict:
        p = self.path / "header.json"
        if not self.path.is_dir():
            raise PvrecError(f"{self.path} is not a recording (not a directory)")
        try:
            header = json.loads(p.read_text())
        except FileNotFoundError:
            raise PvrecError(f"{self.path} is not a pvrec recording (no header.json)") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise PvrecError(f"{p}: unreadable header ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise PvrecError(f"{self.path} is not a pvrec recording (header format is not 'pvrec')")
        version = header.get("format_version")
        if type(version) is not int:
            raise PvrecError(f"{p}: format_version is missing")
        if version > FORMAT_VERSION:
            raise PvrecError(
                f"{self.path} is recording format version {version}; this pvrec "
                f"{__version__} reads up to version {FORMAT_VERSION}: upgrade pvrec"
            )
        if version < 1:
            raise PvrecError(f"{p}: unknown format version {version}")
        if type(header.get("pfn_count")) is not int:
            raise PvrecError(f"{p}: pfn_count is missing")
        return header

    def _read_end(self) -> dict | None:
        try:
            end = json.loads((self.path / "end.json").read_text())
            return end if isinstance(end, dict) else None
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        warnings.warn(message, RecordingWarning, stacklevel=3)

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
                    int(d.pop("index")), float(d.pop("t")), _check_file_name(d.pop("file")),
                    str(d.pop("kind")), d,
                )
                if not math.isfinite(info.t) or info.kind not in ("key", "delta"):
                    raise ValueError("bad time or kind")
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
                _load_frame(self.path / good[-1].file, self.pfn_count, self.channels)
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

    def _decode(self, pos: int, prev: Frame | None) -> Frame:
        info = self.frames[pos]
        arrays = _load_frame(self.path / info.file, self.pfn_count, self.channels)
        return apply_frame(prev, arrays, self.channels)

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

    def iter_decoded(self, start: int = 0, stop: int | None = None, step: int = 1
                     ) -> Iterator[tuple[FrameInfo, Frame]]:
        """Frames in order with all channels, decoding each file once; damaged ones skipped
        with a warning (with the deltas after them up to the next key frame)."""
        count = len(self)
        stop = count if stop is None else min(stop, count)
        wanted = set(range(start, stop, max(1, step)))
        prev: Frame | None = None
        pos = start
        while pos > 0 and self.frames[pos].kind != "key":
            pos -= 1
        while pos < stop:
            try:
                prev = self._decode(pos, prev)
            except FrameError as exc:
                self._warn(f"{self.path}: frame {pos} ({self.frames[pos].file}) is damaged "
                           f"({exc}); skipped up to the next key frame")
                prev = None
                pos += 1
                while pos < stop and self.frames[pos].kind != "key":
                    pos += 1
                continue
            if pos in wanted:
                self._cache = (pos, prev)
                yield self.frames[pos], prev
            pos += 1

    def iter_runs(self, start: int = 0, stop: int | None = None, step: int = 1
                  ) -> Iterator[tuple[FrameInfo, Runs]]:
        """Frames in order as flag runs."""
        for info, frame in self.iter_decoded(start, stop, step):
            yield info, frame.flags

    def iter_frames(self, start: int = 0, stop: int | None = None, step: int = 1
                    ) -> Iterator[tuple[FrameInfo, np.ndarray]]:
        """Frames in order as uint64 flag arrays."""
        for info, runs in self.iter_runs(start, stop, step):
            yield info, runs.expand()


def open_recording(path: str | os.PathLike) -> Recording:
    """Open a recording directory for reading; PvrecError if it is not one."""
    return Recording(path)

