"""Frame N of a recording back as a raw kpageflags dump, byte-identical to what was sampled, so
that `page-types -F FILE` and every other kpageflags tool can read a recording."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from pvrec.output import STDOUT, check_output, write_atomically
from pvrec.recording.reader import Warn, open_recording


def export_frame(recording: str, frame: int, output: str, force: bool = False,
                 on_warning: Warn | None = None,
                 stream: BinaryIO | None = None) -> tuple[int, int]:
    """Write the frame as a raw dump (atomically; output '-' to stream, the command's standard
    output); returns (its frame number, bytes written)."""
    if output != STDOUT:
        check_output(Path(output), force)
    rec = open_recording(recording, on_warning)
    flags = rec.read(frame).astype("<u8", copy=False)
    if output == STDOUT:
        assert stream is not None
        data = memoryview(flags).cast("B")
        while data:  # a pipe takes part of a big write when its reader leaves: the rest
            data = data[stream.write(data):]  # then BrokenPipeError: never a false "wrote"
        stream.flush()
    else:
        write_atomically(Path(output), flags.tofile)
    return rec.frames[frame].index, int(flags.nbytes)
