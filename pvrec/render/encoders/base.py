"""What every output type shares: the Encoder interface, the 2x upscale, and Cancelled.

An encoder receives (H, W) uint8 palette-index frames at scale 1 and puts one output in place.
Each output type is a subclass that declares what the rest of the renderer asks of it (its
suffix, its default --scale, whether it is a timed video, whether it is one picture), so the
pipeline and the options never compare type names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pvrec.errors import PvrecError
from pvrec.output import check_output

MAX_SIDE = 4096  # larger H.264 frames: level 6, refused by some players and browsers


Dirty = tuple[np.ndarray, list[tuple[int, int, int, int]]]


def upscale_dirty(img: np.ndarray, scale: int, out: np.ndarray, dirty: Dirty) -> None:
    """upscale() of the pixels and rectangles of img that changed, into out (which holds
    the enlargement of the frame before)."""
    idx, rects = dirty
    w, row = img.shape[1], out.strides[0]
    flat = np.lib.stride_tricks.as_strided(out, (out.shape[0] * row,), (1,))
    y, x = np.divmod(idx, w)
    at = y * (scale * row) + x * scale
    v = img.reshape(-1)[idx]
    for i in range(scale):
        for j in range(scale):
            flat[at + (i * row + j)] = v
    for y0, y1, x0, x1 in rects:
        upscale(img[y0:y1, x0:x1], scale, out[y0 * scale:y1 * scale, x0 * scale:x1 * scale])


def upscale(img: np.ndarray, scale: int, out: np.ndarray | None = None) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor (into out when given)."""
    h, w = img.shape
    if out is None:
        out = np.empty((h * scale, w * scale), dtype=np.uint8)
    if scale == 1:
        out[...] = img
        return out
    rows = out.reshape(h, scale, w * scale)
    wide = {2: np.uint16, 4: np.uint32, 8: np.uint64}.get(scale)
    if wide is not None and out.strides[1] == 1:
        # p * 0x0101.. as a wider integer is `scale` copies of byte p: the horizontal
        # enlargement in one multiply (30x faster than a broadcast assignment).
        first = rows[:, 0, :].view(wide)
        np.multiply(img, wide(int("01" * scale, 16)), out=first, dtype=wide, casting="unsafe")
    else:
        rows[:, 0, :].reshape(h, w, scale)[...] = img[:, :, None]
    rows[:, 1:, :] = rows[:, :1, :]
    return out


class Cancelled(Exception):
    """The render was interrupted while an encoder was finishing its file."""


class Encoder:
    """Base: receives (H, W) uint8 palette-index frames at scale 1."""

    kind = "?"  # the name RenderSummary reports: mp4, gif, webp, png, dir
    suffixes: tuple[str, ...] = ()  # output suffixes that choose this type
    default_scale = 1  # --scale when not given
    video = False  # a timed video: --fps and the duration apply, frames repeat
    picture = False  # one picture: --frame chooses it, not --start/--end/--speed
    streams = True  # each frame is sent and forgotten (memory stays flat)
    html_video = False  # plays in an HTML <video> element: render writes a poster for it
    from_runs = False  # built from the maps' runs (a page), not from drawn frames: build()

    def __init__(self, path: Path, size: tuple[int, int], palette: np.ndarray, *, scale: int = 1,
                 fps: float = 10.0, crf: int = 0, preset: str = "", pad_color: int = 0):
        self.path = Path(path)
        self.size = size  # (width, height) at scale 1
        self.palette = palette
        self.scale = scale
        self.fps = fps
        self.frames = 0

    @property
    def out_size(self) -> tuple[int, int]:
        """(width, height) of the output's frames."""
        return self.size[0] * self.scale, self.size[1] * self.scale

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frames as written (an MP4 pads them to even sides)."""
        return self.out_size

    @classmethod
    def check_target(cls, out: Path, force: bool) -> None:
        """PvrecError unless `out` may be written (pvrec.output's rules, in a writable
        directory)."""
        check_output(out, force)
        if not os.access(out.parent, os.W_OK):
            raise PvrecError(f"cannot write to {out.parent}/: permission denied")

    @classmethod
    def warnings(cls, size: tuple[int, int], scale: int, fps: float) -> list[str]:
        """What the user should know about this output at this size, scale and rate."""
        return []

    @staticmethod
    def target_name(path: Path) -> str:
        """The output as the summary line names it."""
        return str(path)

    def bytes_written(self) -> int:
        """The size of what was put in place."""
        return self.path.stat().st_size if self.path.exists() else 0

    def write(self, img: np.ndarray, dirty: Dirty | None = None) -> None:
        """Send one frame. dirty: where img differs from the frame written before (flat
        indices of pixels, rectangles (y0, y1, x0, x1)); None: anywhere."""
        raise NotImplementedError

    def repeat(self, n: int) -> None:
        """Send the last frame n more times (held frames, slow --speed)."""

    def close(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Finish the file and put it in place (unless cancelled() says otherwise by then)."""

    def abort(self) -> None:
        """Stop and remove whatever was written."""
