"""Rewriting a recording in another format version (`pvrec recode`): smaller frames for old
recordings, and any recording (a real one made before version 2 included) for the benchmark.

Every frame is decoded and written again with the same header (but its format_version), the
same index context (the sample's time and cost as they were measured; only `bytes` is the new
file's) and the same kind (or, with key_every, key frames that far apart), so every frame
exports byte-identical to the original. Damaged frames are left out as the reader leaves them
out, each said once; end.json is kept (with the new frames and bytes), and a recording without
one stays without one.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvrec.errors import PvrecError
from pvrec.recording.format import (
    FORMAT_VERSION,
    RUN_CHANNELS,
    FrameError,
    check_file_name,
    read_member,
)
from pvrec.recording.reader import Warn, open_recording
from pvrec.recording.writer import Writer


@dataclass
class Recoded:
    """What recode did: frames written, frames left out, and the frames' bytes before and after."""

    frames: int
    skipped: int
    old_bytes: int
    new_bytes: int
    version: int


def extra_arrays(path: Path, pfn_count: int) -> dict[str, np.ndarray]:
    """The arrays of a frame file that are not its channels' (the kernel's events): copied as
    they are, each checked like a channel's (FrameError when damaged)."""
    limit = 8 * pfn_count + (1 << 16)
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename.removesuffix(".npy")
                if "." in name and name.split(".")[0] not in RUN_CHANNELS \
                        and info.filename.endswith(".npy"):
                    out[name] = read_member(zf, info, name, limit)
    except FrameError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError,
            NotImplementedError) as exc:
        raise FrameError(str(exc) or type(exc).__name__) from None
    return out


def recode(source: str | os.PathLike, output: str | os.PathLike, *, force: bool = False,
           version: int = FORMAT_VERSION, key_every: int | None = None,
           on_warning: Warn | None = None) -> Recoded:
    """Write the recording at source again at output, in format `version`; with key_every,
    a key frame every key_every frames (else where the original has them)."""
    src, dst = Path(source), Path(output)
    rec = open_recording(src, on_warning)
    if dst.exists() and os.path.samefile(src, dst):
        raise PvrecError(f"{dst} is the recording being recoded: name a new directory")
    header = rec.header.to_dict()
    # Written fast (no fsync per frame): the source stays whole whatever happens to this copy.
    writer = Writer(dst, header, key_every=key_every or rec.header.key_every, force=force,
                    channels=rec.channels, durable=False, format_version=version)
    old = 0
    warn = on_warning or (lambda _message: None)
    try:
        for info, frame in rec.iter_decoded():
            file = rec.path / check_file_name(info.file)
            try:
                extra = extra_arrays(file, rec.pfn_count)
            except FrameError as exc:
                warn(f"{rec.path}: frame {info.index}: events skipped ({exc})")
                extra = {}
            context = {k: v for k, v in info.context.items() if k != "bytes"}
            writer.add_frame(frame.flags, info.t, context, cgroup=frame.cgroup,
                             workload=frame.workload, extra=extra,
                             key=key_every is None and info.kind == "key",
                             measured=True)
            old += file.stat().st_size
    finally:
        writer.close_index()
    if rec.end is not None:
        writer.close({k: v for k, v in rec.end.items() if k not in ("frames", "bytes")})
    return Recoded(writer.frames, len(rec) - writer.frames, old, writer.bytes, version)
