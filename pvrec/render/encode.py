"""Frames of palette indices -> a file: MP4, GIF, WebP (ffmpeg, streamed), PNG, PNG directory.

Every output is streamed: a frame is sent and forgotten, so memory stays flat however long the
recording (Pillow's animated GIF/WebP writers keep every frame, ENCODING.md: ~650 MB for 600
frames, so GIF and WebP go through ffmpeg's own `gif` and `libwebp_anim` encoders, which take
the same palette frames and decode back pixel-exact). ffmpeg gets one byte per pixel (pal8) and
the 1 KiB palette after each frame: the cheapest pipe, and no colour conversion in Python.

H.264 in yuv420p keeps one chroma sample per 2x2 pixels, which smears single-page pixels into
their neighbours' colours. MP4 frames are therefore enlarged 2x (nearest neighbour) by default
and converted with `-sws_flags area`, so each 2x2 block carries exactly one colour.

Files are written to a hidden temp name in the target directory and renamed when complete;
abort() removes the temp file, so an interrupted render leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pvrec.errors import PvrecError
from pvrec.output import temp_beside, write_atomically

SUFFIXES = {".mp4": "mp4", ".gif": "gif", ".webp": "webp", ".png": "png"}
DEFAULT_CRF = 20
DEFAULT_PRESET = "veryfast"
MAX_SIDE_WARN = 4096  # larger H.264 frames: level 6, refused by some players


def output_kind(path: Path) -> str:
    """'mp4' | 'gif' | 'webp' | 'png' | 'dir' from the output path; PvrecError otherwise."""
    if path.is_dir():
        return "dir"
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None and not path.suffix:
        raise PvrecError(f"output {path} has no suffix and is not a directory: name a .mp4, "
                         f".gif, .webp or .png file, or create the directory first for one "
                         f"PNG per frame")
    if kind is None:
        known = ", ".join(SUFFIXES)
        raise PvrecError(f"cannot tell the output type of {path}: use a suffix of {known}, "
                         f"or an existing directory for one PNG per frame")
    return kind


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


class Encoder:
    """Base: receives (H, W) uint8 palette-index frames at scale 1."""

    kind = "?"

    def __init__(self, path: Path, size: tuple[int, int], palette: np.ndarray, *, scale: int = 1,
                 fps: float = 10.0):
        self.path = Path(path)
        self.size = size  # (width, height) at scale 1
        self.palette = palette
        self.scale = scale
        self.fps = fps
        self.frames = 0

    @property
    def out_size(self) -> tuple[int, int]:
        return self.size[0] * self.scale, self.size[1] * self.scale

    def write(self, img: np.ndarray) -> None:
        raise NotImplementedError

    def repeat(self, n: int) -> None:
        """Send the last frame n more times (held frames, slow --speed)."""
        raise NotImplementedError

    def close(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Finish the file and put it in place (unless cancelled() says otherwise by then)."""

    def abort(self) -> None:
        """Stop and remove whatever was written."""


class Cancelled(Exception):
    """The render was interrupted while an encoder was finishing its file."""


class FfmpegEncoder(Encoder):
    """MP4 / GIF / WebP through imageio-ffmpeg's write_frames, pal8 in."""

    def __init__(self, path: Path, size: tuple[int, int], palette: np.ndarray, *, kind: str,
                 scale: int = 1, fps: float = 10.0, crf: int = DEFAULT_CRF,
                 preset: str = DEFAULT_PRESET, pad_color: int = 0):
        super().__init__(path, size, palette, scale=scale, fps=fps)
        self.kind = kind
        w, h = self.out_size
        if kind == "mp4":  # H.264 wants even sides: pad in numpy, never let ffmpeg rescale
            w, h = w + w % 2, h + h % 2
        self.enc_size = (w, h)
        self.pad_color = pad_color
        # One buffer for every frame: pixels, then the palette trailer ffmpeg's pal8 expects.
        self.buf = np.empty(w * h + 1024, dtype=np.uint8)
        self.pixels = self.buf[: w * h].reshape(h, w)
        self.pixels[...] = pad_color
        c = palette.astype(np.uint32)
        argb = (np.uint32(0xFF) << 24) | (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
        self.buf[w * h:] = np.frombuffer(argb.astype("<u4").tobytes(), dtype=np.uint8)
        self.tmp = temp_beside(self.path)
        self._gen = None
        self._proc = None
        self._start(crf, preset)

    def _start(self, crf: int, preset: str) -> None:
        import imageio_ffmpeg

        common = dict(fps=self.fps, quality=None, macro_block_size=1, ffmpeg_log_level="error",
                      pix_fmt_in="pal8")
        if self.kind == "mp4":
            params = dict(codec="libx264", pix_fmt_out="yuv420p",
                          output_params=["-preset", preset, "-crf", str(crf),
                                         "-sws_flags", "area", "-movflags", "+faststart"])
        elif self.kind == "gif":
            params = dict(codec="gif", pix_fmt_out="pal8", output_params=["-loop", "0"])
        elif self.kind == "webp":
            params = dict(codec="libwebp_anim", pix_fmt_out="bgra",
                          output_params=["-lossless", "1", "-compression_level", "0",
                                         "-loop", "0"])
        else:
            raise ValueError(self.kind)
        try:
            self._gen = imageio_ffmpeg.write_frames(str(self.tmp), self.enc_size,
                                                    **common, **params)
            self._gen.send(None)
            # write_frames never checks how ffmpeg exited (a full disk still "succeeds"):
            # keep its process to look at the exit status after close.
            self._proc = self._gen.gi_frame.f_locals.get("p")
        except (OSError, RuntimeError) as exc:
            raise PvrecError(f"cannot start ffmpeg for {self.path}: {exc}") from None

    def _send(self) -> None:
        try:
            self._gen.send(self.buf)
        except OSError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "broken pipe"
            self.abort()
            raise PvrecError(f"ffmpeg stopped while writing {self.path} ({first}); "
                             f"its own message is above", exit_code=1) from None
        self.frames += 1

    def write(self, img: np.ndarray) -> None:
        h, w = img.shape
        upscale(img, self.scale, self.pixels[: h * self.scale, : w * self.scale])
        self._send()

    def repeat(self, n: int) -> None:
        for _ in range(n):
            self._send()

    def close(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        gen, self._gen = self._gen, None
        if gen is not None:
            gen.close()  # ffmpeg finishes the file (moov atom, GIF trailer) and exits
        if cancelled():  # Ctrl-C while ffmpeg was finishing: nothing goes in place
            self.tmp.unlink(missing_ok=True)
            raise Cancelled()
        code = getattr(self._proc, "returncode", 0)
        if code:
            self.tmp.unlink(missing_ok=True)
            raise PvrecError(f"ffmpeg failed writing {self.path} (exit status {code}; its "
                             f"message is above); nothing was written", exit_code=1)
        if not self.tmp.exists() or self.tmp.stat().st_size == 0:
            self.tmp.unlink(missing_ok=True)
            raise PvrecError(f"ffmpeg wrote nothing for {self.path} (its message is above)",
                             exit_code=1)
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise PvrecError(f"cannot write {self.path}: {exc.strerror or exc}",
                             exit_code=1) from None

    def abort(self) -> None:
        gen, self._gen = self._gen, None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()  # no point waiting for it to encode what is thrown away
        try:
            if gen is not None:
                gen.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def write_png(path: Path, img: np.ndarray, palette: np.ndarray, scale: int = 1) -> None:
    """One palette PNG, written to a temp name and renamed."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(upscale(img, scale)), "P")
    im.putpalette(palette.reshape(-1).tolist())
    write_atomically(path, lambda tmp: im.save(tmp, format="PNG"))


class PngEncoder(Encoder):
    """One PNG: the frame given last (the command sends just the one it wants)."""

    kind = "png"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.last: np.ndarray | None = None

    def write(self, img: np.ndarray) -> None:
        self.last = img.copy()
        self.frames = 1

    def repeat(self, n: int) -> None:
        pass

    def close(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        if self.last is None:
            raise PvrecError(f"no frame to write to {self.path}")
        write_png(self.path, self.last, self.palette, self.scale)


class PngDirEncoder(Encoder):
    """A PNG per frame in a directory: frame-000000.png, ... (held frames are not repeated)."""

    kind = "dir"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.written: list[Path] = []

    def write(self, img: np.ndarray) -> None:
        p = self.path / f"frame-{self.frames:06d}.png"
        write_png(p, img, self.palette, self.scale)
        self.written.append(p)
        self.frames += 1

    def repeat(self, n: int) -> None:
        pass

    def abort(self) -> None:
        for p in self.written:
            p.unlink(missing_ok=True)


def make_encoder(path: Path, kind: str, size: tuple[int, int], palette: np.ndarray, *,
                 scale: int, fps: float, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET,
                 pad_color: int = 0) -> Encoder:
    """The encoder for an output kind."""
    if kind in ("mp4", "gif", "webp"):
        return FfmpegEncoder(path, size, palette, kind=kind, scale=scale, fps=fps, crf=crf,
                             preset=preset, pad_color=pad_color)
    if kind == "png":
        return PngEncoder(path, size, palette, scale=scale, fps=fps)
    if kind == "dir":
        return PngDirEncoder(path, size, palette, scale=scale, fps=fps)
    raise ValueError(kind)
