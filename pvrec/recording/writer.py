"""Writing a recording: a directory that is readable at every moment, whatever happens to the writer.

Frames are encoded chunk by chunk (key: the runs; delta: the XOR with the previous frame's
chunk), in the current format version's streams (codec.py; versions 1 and 2 are kept for
recode and the benchmark), and streamed into the frame file, which is written to a temp name, fsynced and renamed
before its index line is appended. docs/recording-format.md has the rules.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pvrec import __version__
from pvrec.errors import PvrecError
from pvrec.output import check_output_dir, make_output_dir
from pvrec.recording import codec
from pvrec.recording.codec import Streamed, smallest_uint
from pvrec.recording.format import (
    DEFAULT_KEY_EVERY,
    FORMAT_VERSION,
    KIND_DELTA,
    KIND_KEY,
    RECORDING_FILES,
    RUN_CHANNELS,
    FrameInfo,
    prefix,
)
from pvrec.recording.header import Header
from pvrec.runs import (
    CHUNK_PAGES,
    Runs,
    compact,
    encode_flags,
    join_pieces,
    pfns_to_runs,
    same,
    split_runs,
    xor_runs,
)


def _runs_arrays(pieces: list[Runs], prefix: str) -> dict[str, np.ndarray | Streamed]:
    """The stored arrays of one channel in version 1, streamed from its pieces (consecutive
    chunks)."""
    pieces = join_pieces(pieces)
    palette = np.unique(np.concatenate([np.unique(p.values) for p in pieces]))
    code_type = np.dtype(smallest_uint(max(palette.size - 1, 0)))
    length_type = np.dtype(smallest_uint(max(int(p.lengths.max()) for p in pieces)))
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
        chunk = compact(chunk)
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
                      if same(chunk, before) else xor_runs(chunk, before))
    return pieces


def write_npz(path: Path, arrays: dict[str, np.ndarray | Streamed], level: int = 6,
              durable: bool = True, stored: frozenset[str] = frozenset()) -> int:
    """Write arrays as an .npz (a zip of .npy members, deflated but those named in stored,
    already compressed) and return its size."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, arr in arrays.items():
            target: str | zipfile.ZipInfo = name + ".npy"
            if name in stored:
                target = zipfile.ZipInfo(name + ".npy", (1980, 1, 1, 0, 0, 0))
            with zf.open(target, "w", force_zip64=True) as member:
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


def is_recording(path: Path) -> bool:
    """A directory pvrec recorded into: its header.json is a regular file (not a link)."""
    return (path / "header.json").is_file() and not (path / "header.json").is_symlink()


def prepare_directory(path: Path, force: bool) -> None:
    """Create the output directory (pvrec.output's rules); with force, clear the recording in
    it (only the files a recording has: anything else of the user's stays)."""
    if check_output_dir(path, force, is_recording):
        for name in RECORDING_FILES:
            p = path / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
    make_output_dir(path)
    try:
        (path / "frames").mkdir(exist_ok=True)
    except OSError as exc:
        raise PvrecError(f"cannot create output directory {path}: {exc.strerror}",
                         errno=exc.errno) from None


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
        format_version: int = FORMAT_VERSION,
    ):
        if channels[:1] != ("flags",) or not set(channels) <= set(RUN_CHANNELS):
            raise PvrecError(f"channels must start with 'flags' and be among {RUN_CHANNELS}")
        self.path = Path(path)
        self.channels = tuple(channels)
        self.durable = durable  # fsync every frame (a power cut loses at most the last one)
        self.key_every = max(1, key_every)
        if format_version not in range(1, FORMAT_VERSION + 1):
            raise PvrecError(f"pvrec writes format versions 1 to {FORMAT_VERSION}, "
                             f"not {format_version}")
        self.format_version = format_version
        self.owner = owner
        self.frames = 0
        self.bytes = 0
        self._prev: dict[str, list[Runs]] | None = None
        # Checked as every reader will check it, before anything is on disk.
        self.header = Header.from_dict({"pvrec_version": __version__, **header,
                                      "format_version": format_version,
                                      "key_every": self.key_every,
                                      "channels": list(self.channels)})
        prepare_directory(self.path, force)
        self._chown(self.path)
        self._chown(self.path / "frames")
        _atomic_json(self.path / "header.json", self.header.to_dict())
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
                  workload: np.ndarray | None = None, began: float | None = None,
                  extra: dict[str, np.ndarray] | None = None,
                  cpu_began: float | None = None, key: bool = False,
                  measured: bool = False) -> FrameInfo:
        """Encode and append one frame; raises PvrecError (e.g. disk full) leaving no partial file.

        cgroup (the memcg inode of every PFN) and workload (sorted PFNs the workload maps) are
        required when the recording has those channels. began: the monotonic time the sample
        started (default: now); the index's sample_s runs from it to the frame file on disk.
        extra: more arrays for the frame file (the kernel's events, `events.<type>`: readers
        load only the arrays they name).
        cpu_began: the process CPU time (time.process_time) then: the index's cpu_s is this
        process's CPU, every thread, from it to the frame file on disk.
        key: make this a key frame whatever its number. measured: the context already holds
        the sample's cost (recode copies it): only the index's bytes is set.
        """
        channels = {"flags": frame}
        for name, data in (("cgroup", cgroup), ("workload", workload)):
            if name in self.channels:
                if data is None:
                    raise PvrecError(f"this recording stores {name}: every frame needs it")
                if name == "workload" and not isinstance(data, Runs):
                    data = pfns_to_runs(data, self.header.pfn_count)
                channels[name] = data
        index = self.frames
        kind = KIND_KEY if key or index % self.key_every == 0 or self._prev is None \
            else KIND_DELTA
        prev, self._prev = self._prev, None  # a frame that fails half-way leaves a key next
        kept: dict[str, list[Runs]] = {}
        began = time.monotonic() if began is None else began
        arrays = self._encode(channels, kind, prev, kept)
        for name, arr in (extra or {}).items():
            if name in arrays or name in ("meta", codec.PACK_MEMBER) or "." not in name:
                raise PvrecError(f"extra frame array {name!r} would shadow a channel's")
            arrays[name] = arr
        arrays["meta"] = np.array([self.format_version, kind, index, self.header.pfn_count], np.int64)
        name = f"frames/{index:06d}.npz"
        final = self.path / name
        tmp = final.with_name(final.name + ".tmp")
        try:
            size = write_npz(tmp, arrays, durable=self.durable,
                             stored=frozenset([codec.PACK_MEMBER]))
            self._chown(tmp)
            os.replace(tmp, final)
            # The whole sample: reading (chunks are read lazily while encoded), encoding, writing.
            cost = {"sample_s": round(time.monotonic() - began, 6), "bytes": size}
            if measured:
                cost = {"bytes": size}
            elif cpu_began is not None:
                cost["cpu_s"] = round(time.process_time() - cpu_began, 6)
            info = FrameInfo(index, round(t, 6), name, "key" if kind == KIND_KEY else "delta",
                             dict(context or {}, **cost))
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
                   else "nothing was recorded"), exit_code=1, errno=exc.errno
            ) from None
        self._prev = kept
        self.frames += 1
        self.bytes += size
        return info

    def _encode(self, channels: dict, kind: int, prev: dict[str, list[Runs]] | None,
                kept: dict[str, list[Runs]]) -> dict[str, np.ndarray | Streamed]:
        """The frame file's arrays of every channel (kept gets the runs read)."""
        arrays: dict[str, np.ndarray | Streamed] = {}
        streams: dict[str, np.ndarray | Streamed] = {}  # versions 2, 3: packed in one member
        for channel, data in channels.items():
            kept[channel] = []
            pieces = channel_pieces(_as_chunks(data), None if kind == KIND_KEY
                                    else prev[channel], kept[channel])
            pages = sum(p.pfn_count for p in pieces)
            if pages != self.header.pfn_count:
                raise PvrecError(f"frame has {pages} pages, the recording {self.header.pfn_count}")
            if self.format_version == 1:
                arrays.update(_runs_arrays(pieces, prefix(channel)))
            else:
                encode = codec.key_arrays if kind == KIND_KEY else codec.delta_arrays
                streams.update(encode(join_pieces(pieces), prefix(channel)))
        if self.format_version > 1:
            arrays[codec.PACK_MEMBER] = codec.pack(streams, codec.stream_codecs(
                kind, self.channels, self.format_version))
        return arrays

    def close_index(self) -> None:
        """Close the index file (once; close() does it too)."""
        fd, self._index = self._index, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self, end: dict) -> None:
        """Write end.json (best effort: a full disk still leaves a readable recording)."""
        self.close_index()
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
