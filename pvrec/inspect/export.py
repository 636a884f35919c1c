"""Frame N of a recording back as a raw kpageflags dump, byte-identical to what was sampled, so
that `page-types -F FILE` and every other kpageflags tool can read a recording."""

from __future__ import annotations

from pathlib import Path

from pvrec.output import check_output, write_atomically
from pvrec.recording.reader import Warn, open_recording


def export_frame(recording: str, frame: int, output: str, force: bool = False,
                 on_warning: Warn | None = None) -> tuple[int, int]:
    """Write the frame as a raw dump (atomically); returns (its frame number, bytes written)."""
    out = Path(output)
    check_output(out, force)
    rec = open_recording(recording, on_warning)
    flags = rec.read(frame).astype("<u8", copy=False)
    write_atomically(out, flags.tofile)
    return rec.frames[frame].index, int(flags.nbytes)
