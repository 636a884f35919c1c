"""MP4, GIF and WebP: one ffmpeg process per output, fed palette indices (pal8) on its stdin.

Every one of them streams: a frame is sent and forgotten, so memory stays flat however long the
recording (Pillow's animated GIF/WebP writers keep every frame, ENCODING.md: ~650 MB for 600
frames, so GIF and WebP go through ffmpeg's own `gif` and `libwebp_anim` encoders, which take
the same palette frames and decode back pixel-exact). ffmpeg gets one byte per pixel (pal8) and
the 1 KiB palette after each frame: the cheapest pipe, and no colour conversion in Python.

H.264 in yuv420p keeps one chroma sample per 2x2 pixels, which smears single-page pixels into
their neighbours' colours. MP4 frames are therefore enlarged 2x (nearest neighbour) by default
and converted with `-sws_flags area`, so each 2x2 block carries exactly one colour.

The encoder starts ffmpeg itself (the command line imageio-ffmpeg's write_frames builds for the
same parameters, so the files are the same) and keeps the process: its exit status says whether
the file is good (a full disk is not an exception on a pipe). ffmpeg runs in a session of its
own, so a Ctrl-C at the terminal reaches only Python, which then closes the pipe normally.
Files are written to a hidden temp name in the target directory and renamed when complete;
abort() kills ffmpeg and removes the temp file, so an interrupted render leaves nothing behind.

The pipe to ffmpeg is enlarged to hold a whole frame where the kernel allows (up to
/proc/sys/fs/pipe-max-size, 1 MiB by default): through the default 64 KiB pipe a frame crosses
in dozens of round trips between the two processes, each a wait (against a floor through the
small pipe: 24 GiB MP4 0.74 -> 0.89 of it, 1 GiB GIF 0.46 -> 0.52; bench_redraw's floor now
gets the same pipe, which leaves ffmpeg alone as fast as before).
"""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from pvrec.errors import PvrecError
from pvrec.output import claim_temp, put_in_place, temp_beside
from pvrec.render.encoders.base import (
    MAX_SIDE,
    Cancelled,
    Dirty,
    Encoder,
    upscale,
    upscale_dirty,
)

DEFAULT_CRF = 20
DEFAULT_PRESET = "veryfast"
PIPE_MAX_SIZE = Path("/proc/sys/fs/pipe-max-size")


def enlarge_pipe(fd: int, size: int) -> None:
    """Make the pipe hold size bytes, or as many as an unprivileged process may; best effort
    (an older kernel, a limit lowered by the admin, a user over pipe-user-pages-soft)."""
    try:
        limit = int(PIPE_MAX_SIZE.read_text())
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, max(4096, min(size, limit)))
    except (OSError, ValueError, AttributeError):
        pass


def pal8_trailer(colors: np.ndarray) -> bytes:
    """The palette as ffmpeg's pal8 wants it after each frame: 256 x 0xAARRGGBB, LE."""
    c = colors.astype(np.uint32)
    argb = (np.uint32(0xFF) << 24) | (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    return argb.astype("<u4").tobytes()


def ffmpeg_command(path: Path | str, size: tuple[int, int], fps: float, codec: str,
                   pix_fmt_out: str, output_params: list[str]) -> list[str]:
    """ffmpeg's argv for pal8 frames on stdin, in the order imageio_ffmpeg.write_frames uses
    (quality=None, macro_block_size=1, ffmpeg_log_level="error")."""
    import imageio_ffmpeg

    rate = str(Fraction(fps).limit_denominator())
    return [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo",
            "-s", f"{size[0]:d}x{size[1]:d}", "-pix_fmt", "pal8", "-r", rate, "-i", "-", "-an",
            "-vcodec", codec, "-pix_fmt", pix_fmt_out, "-v", "error", *output_params,
            str(path)]


class FfmpegEncoder(Encoder):
    """An output written by ffmpeg from pal8 frames; subclasses name the codec."""

    video = True
    codec = ""
    pix_fmt_out = ""
    even = False  # pad each frame to even sides (H.264)

    def __init__(self, path: Path, size: tuple[int, int], palette: np.ndarray, *, scale: int = 1,
                 fps: float = 10.0, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET,
                 pad_color: int = 0):
        super().__init__(path, size, palette, scale=scale, fps=fps)
        w, h = self.out_size
        if self.even:  # pad in numpy, never let ffmpeg rescale
            w, h = w + w % 2, h + h % 2
        self.enc_size = (w, h)
        self.crf, self.preset = crf, preset
        # One buffer for every frame: pixels, then the palette trailer ffmpeg's pal8 expects.
        self.buf = np.empty(w * h + 1024, dtype=np.uint8)
        self.pixels = self.buf[: w * h].reshape(h, w)
        self.pixels[...] = pad_color
        self.buf[w * h:] = np.frombuffer(pal8_trailer(palette), dtype=np.uint8)
        self.tmp = temp_beside(self.path)
        self._proc: subprocess.Popen | None = None
        try:  # ffmpeg opens the name itself: make it a file of ours first, never a planted link
            claim_temp(self.tmp)
        except OSError as exc:
            raise PvrecError(f"cannot write beside {self.path}: {exc.strerror or exc}",
                             exit_code=1) from None
        self._start()

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.enc_size

    params: tuple[str, ...] = ()  # ffmpeg's options after the codec's

    def output_params(self) -> list[str]:
        """ffmpeg's options after the codec's: quality, container."""
        return list(self.params)

    def command(self) -> list[str]:
        return ffmpeg_command(self.tmp, self.enc_size, self.fps, self.codec, self.pix_fmt_out,
                              self.output_params())

    def _start(self) -> None:
        try:
            # stderr is the terminal's: ffmpeg's own error (at -v error) is the line above ours
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, start_new_session=True)
            enlarge_pipe(self._proc.stdin.fileno(), self.buf.nbytes)  # type: ignore[union-attr]
        except (OSError, RuntimeError) as exc:
            self.tmp.unlink(missing_ok=True)
            raise PvrecError(f"cannot start ffmpeg for {self.path}: {exc}") from None

    def _send(self) -> None:
        try:
            self._proc.stdin.write(self.buf)  # type: ignore[union-attr]
        except OSError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "broken pipe"
            self.abort()
            raise PvrecError(f"ffmpeg stopped while writing {self.path} ({first}); "
                             f"its own message is above", exit_code=1) from None
        self.frames += 1

    def write(self, img: np.ndarray, dirty: Dirty | None = None) -> None:
        h, w = img.shape
        out = self.pixels[: h * self.scale, : w * self.scale]
        if dirty is None or not self.frames or self.scale == 1 or 16 * dirty[0].size > img.size:
            upscale(img, self.scale, out)  # (a copy, or most of it changed: one pass is cheaper)
        else:  # the buffer holds the frame before: enlarge only what changed
            upscale_dirty(img, self.scale, out, dirty)
        self._send()

    def repeat(self, n: int) -> None:
        for _ in range(n):
            self._send()

    def _finish(self) -> int:
        """Close ffmpeg's input and wait for it to finish the file; its exit status.

        The process is forgotten only once it has exited: a second Ctrl-C while waiting raises
        KeyboardInterrupt here, and abort() must still find it to kill it."""
        proc = self._proc
        if proc is None:
            return 0
        try:
            proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass  # ffmpeg is gone already: its exit status says why
        code = proc.wait()
        self._proc = None
        return code

    def close(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        code = self._finish()  # ffmpeg finishes the file (moov atom, GIF trailer) and exits
        if cancelled():  # Ctrl-C while ffmpeg was finishing: nothing goes in place
            self.tmp.unlink(missing_ok=True)
            raise Cancelled()
        if code:
            self.tmp.unlink(missing_ok=True)
            raise PvrecError(f"ffmpeg failed writing {self.path} (exit status {code}; its "
                             f"message is above); nothing was written", exit_code=1)
        if not self.tmp.exists() or self.tmp.stat().st_size == 0:
            self.tmp.unlink(missing_ok=True)
            raise PvrecError(f"ffmpeg wrote nothing for {self.path} (its message is above)",
                             exit_code=1)
        try:
            put_in_place(self.tmp, self.path)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise PvrecError(f"cannot write {self.path}: {exc.strerror or exc}",
                             exit_code=1) from None

    def abort(self) -> None:
        proc = self._proc
        try:
            if proc is not None and proc.poll() is None:
                proc.kill()  # no point waiting for it to encode what is thrown away
            self._finish()
        finally:
            self.tmp.unlink(missing_ok=True)


class Mp4Encoder(FfmpegEncoder):
    """H.264 in yuv420p, High profile, +faststart: plays in every browser."""

    kind = "mp4"
    suffixes = (".mp4",)
    default_scale = 2
    html_video = True
    codec = "libx264"
    pix_fmt_out = "yuv420p"
    even = True

    def output_params(self) -> list[str]:
        return ["-preset", self.preset, "-crf", str(self.crf), "-sws_flags", "area",
                "-movflags", "+faststart"]

    @classmethod
    def warnings(cls, size: tuple[int, int], scale: int, fps: float) -> list[str]:
        w, h = size
        out = []
        if max(w, h) * scale > MAX_SIDE:
            out.append(f"the video is {w * scale}x{h * scale}: sides above {MAX_SIDE} px need "
                       f"H.264 level 6, which some players and browsers refuse; try "
                       f"--pages-per-pixel or --scale 1")
        if scale % 2:
            out.append("an odd --scale in an MP4 lets chroma subsampling blur single pages "
                       "into their neighbours' colours; the default 2 keeps them exact")
        return out


class GifEncoder(FfmpegEncoder):
    """ffmpeg's gif encoder: the picture's own palette, no dithering, looping."""

    kind = "gif"
    suffixes = (".gif",)
    codec = "gif"
    pix_fmt_out = "pal8"
    params = ("-loop", "0")

    @classmethod
    def warnings(cls, size: tuple[int, int], scale: int, fps: float) -> list[str]:
        if abs(100 / fps - round(100 / fps)) > 1e-9:
            return [f"GIF frame delays are whole 1/100 s: {fps:g} fps plays at "
                    f"{100 / max(1, round(100 / fps)):.1f} fps; 10, 20, 25 or 50 play true"]
        return []


class WebpEncoder(FfmpegEncoder):
    """ffmpeg's libwebp_anim, lossless: decodes pixel-exact."""

    kind = "webp"
    suffixes = (".webp",)
    codec = "libwebp_anim"
    pix_fmt_out = "bgra"
    params = ("-lossless", "1", "-compression_level", "0", "-loop", "0")
