"""The output types: chosen by suffix, each starting ffmpeg with write_frames' own command line,
and every way an encode can end (done, ffmpeg failing, nothing written, aborted, Ctrl-C)."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from pvrec.errors import PvrecError
from pvrec.render import encoders
from pvrec.render.encoders import (
    Cancelled,
    GifEncoder,
    Mp4Encoder,
    PngDirEncoder,
    PngEncoder,
    WebpEncoder,
    encoder_for,
    write_png,
)

PALETTE = np.zeros((256, 3), np.uint8)


class Started(Exception):
    """Raised by the fake Popen: the command line is all the test wants."""


@pytest.fixture
def popen(monkeypatch):
    """Capture the argv and keywords of the next subprocess.Popen instead of running it."""
    seen: dict = {}
    imageio_ffmpeg.get_ffmpeg_exe()  # found (and cached) before Popen is replaced

    def fake(cmd, **kw):
        seen["cmd"], seen["kw"] = list(cmd), kw
        raise Started

    monkeypatch.setattr(subprocess, "Popen", fake)
    return seen


def test_the_suffix_chooses_the_type_and_its_traits(tmp_path):
    got = {s: encoder_for(tmp_path / f"x{s}") for s in (".mp4", ".GIF", ".webp", ".png",
                                                        ".html")}
    assert got == {".mp4": Mp4Encoder, ".GIF": GifEncoder, ".webp": WebpEncoder,
                   ".png": PngEncoder, ".html": encoders.HtmlEncoder}
    assert encoder_for(tmp_path) is PngDirEncoder
    traits = {e.kind: (e.default_scale, e.video, e.picture, e.streams)
              for e in encoders.ENCODERS.values()}
    assert traits == {"mp4": (2, True, False, True), "gif": (1, True, False, True),
                      "webp": (1, True, False, True), "png": (1, False, True, False),
                      "dir": (1, False, False, True), "html": (1, False, False, False)}
    with pytest.raises(PvrecError, match=r"use a suffix of \.mp4, \.gif, \.webp, \.png, \.html, \.htm, or an"):
        encoder_for(tmp_path / "x.avi")
    with pytest.raises(PvrecError, match="has no suffix and is not a directory"):
        encoder_for(tmp_path / "nothing")


@pytest.mark.parametrize("enc, fps, params", [
    (Mp4Encoder, 10.0, dict(codec="libx264", pix_fmt_out="yuv420p", output_params=[
        "-preset", "veryfast", "-crf", "20", "-sws_flags", "area", "-movflags", "+faststart"])),
    (Mp4Encoder, 29.97, dict(codec="libx264", pix_fmt_out="yuv420p", output_params=[
        "-preset", "veryfast", "-crf", "20", "-sws_flags", "area", "-movflags", "+faststart"])),
    (GifEncoder, 25.0, dict(codec="gif", pix_fmt_out="pal8", output_params=["-loop", "0"])),
    (WebpEncoder, 10.0, dict(codec="libwebp_anim", pix_fmt_out="bgra", output_params=[
        "-lossless", "1", "-compression_level", "0", "-loop", "0"])),
])
def test_ffmpeg_gets_the_command_line_write_frames_builds(enc, fps, params, popen, tmp_path):
    # GIVEN the command line imageio_ffmpeg.write_frames builds for the parameters pvrec used
    gen = imageio_ffmpeg.write_frames(str(tmp_path / "t"), (6, 4), fps=fps, quality=None,
                                      macro_block_size=1, ffmpeg_log_level="error",
                                      pix_fmt_in="pal8", **params)
    with pytest.raises(Started):
        gen.send(None)
    theirs = popen["cmd"]
    # WHEN the encoder starts its own ffmpeg
    with pytest.raises(Started):
        enc(tmp_path / "out", (3, 2), PALETTE, scale=2, fps=fps)
    # THEN the argv is the same (but the path: the encoder writes to its temp file), and
    # ffmpeg runs in a session of its own, so a terminal's Ctrl-C reaches Python alone
    ours = popen["cmd"]
    assert ours[:-1] == theirs[:-1]
    assert Path(ours[-1]).parent == tmp_path and Path(ours[-1]).name.startswith(".out.pvrec-")
    assert popen["kw"]["start_new_session"] is True
    assert popen["kw"]["stdin"] is subprocess.PIPE and "stderr" not in popen["kw"]


def test_mp4_pads_to_even_sides_and_others_do_not(popen, tmp_path):
    with pytest.raises(Started):
        Mp4Encoder(tmp_path / "a.mp4", (3, 3), PALETTE, scale=1)
    assert "4x4" in popen["cmd"]
    with pytest.raises(Started):
        GifEncoder(tmp_path / "a.gif", (3, 3), PALETTE, scale=1)
    assert "3x3" in popen["cmd"]


def test_warnings_of_each_type():
    assert Mp4Encoder.warnings((1000, 2100), 2, 10.0) == [
        "the video is 2000x4200: sides above 4096 px need H.264 level 6, which some players "
        "and browsers refuse; try --pages-per-pixel or --scale 1"]
    assert Mp4Encoder.warnings((100, 100), 3, 10.0)[0].startswith("an odd --scale in an MP4")
    assert Mp4Encoder.warnings((2048, 100), 2, 30.0) == []
    assert GifEncoder.warnings((100, 100), 1, 30.0) == [
        "GIF frame delays are whole 1/100 s: 30 fps plays at 33.3 fps; 10, 20, 25 or 50 play "
        "true"]
    assert GifEncoder.warnings((100, 100), 1, 25.0) == WebpEncoder.warnings((1, 1), 1, 7) == []


def fake_ffmpeg(code: str):
    """A GIF encoder whose 'ffmpeg' is this Python code (argv[1]: the file to write)."""

    class Fake(GifEncoder):
        def command(self) -> list[str]:
            return [sys.executable, "-c", code, str(self.tmp)]

    return Fake


COPY = "import shutil, sys; shutil.copyfileobj(sys.stdin.buffer, open(sys.argv[1], 'wb'))"


def test_a_good_encode_puts_the_file_in_place(tmp_path):
    enc = fake_ffmpeg(COPY)(tmp_path / "a.gif", (2, 2), PALETTE)
    enc.write(np.ones((2, 2), np.uint8))
    enc.repeat(2)
    enc.close()
    assert enc.frames == 3 and (tmp_path / "a.gif").stat().st_size == 3 * (4 + 1024)
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"]


def test_the_pipe_to_ffmpeg_holds_a_whole_frame_up_to_the_kernels_limit(tmp_path):
    # GIVEN a GIF frame of 600x500 pixels plus its palette (301 KB: over the 64 KiB default)
    enc = fake_ffmpeg(COPY)(tmp_path / "a.gif", (600, 500), PALETTE)
    try:
        # WHEN ffmpeg is started, THEN its stdin pipe holds the frame (the kernel rounds up to
        # a power of two pages), or as much as /proc/sys/fs/pipe-max-size lets anyone ask
        size = fcntl.fcntl(enc._proc.stdin.fileno(), fcntl.F_GETPIPE_SZ)
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
        assert size >= min(600 * 500 + 1024, limit) and size > 65536
    finally:
        enc.abort()


@pytest.mark.parametrize("code, message", [
    ("import sys; sys.stdin.buffer.read(); sys.exit(3)",
     "ffmpeg failed writing {} (exit status 3; its message is above); nothing was written"),
    ("import sys; sys.stdin.buffer.read()", "ffmpeg wrote nothing for {} (its message is above)"),
])
def test_a_failing_ffmpeg_writes_nothing_and_exits_1(code, message, tmp_path):
    out = tmp_path / "a.gif"
    enc = fake_ffmpeg(code)(out, (2, 2), PALETTE)
    enc.write(np.zeros((2, 2), np.uint8))
    with pytest.raises(PvrecError) as err:
        enc.close()
    assert err.value.message == message.format(out) and err.value.exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_gone_while_writing_is_one_line_and_nothing_left(tmp_path):
    out = tmp_path / "a.gif"
    enc = fake_ffmpeg("pass")(out, (512, 512), PALETTE)
    enc._proc.wait()  # it exits without reading: the pipe breaks
    with pytest.raises(PvrecError) as err:
        for _ in range(200):  # more than a pipe buffer holds
            enc.write(np.zeros((512, 512), np.uint8))
    assert err.value.message == (f"ffmpeg stopped while writing {out} ([Errno 32] Broken "
                                 f"pipe); its own message is above")
    assert err.value.exit_code == 1 and list(tmp_path.iterdir()) == []


def test_abort_kills_ffmpeg_and_removes_the_temp_file(tmp_path):
    enc = fake_ffmpeg("import time; open(__import__('sys').argv[1], 'wb'); time.sleep(60)")(
        tmp_path / "a.gif", (2, 2), PALETTE)
    proc = enc._proc
    enc.write(np.zeros((2, 2), np.uint8))
    enc.abort()
    assert proc.returncode is not None and proc.returncode < 0  # killed, not waited for
    assert list(tmp_path.iterdir()) == []


def test_cancelled_while_closing_leaves_nothing(tmp_path):
    enc = fake_ffmpeg(COPY)(tmp_path / "a.gif", (2, 2), PALETTE)
    enc.write(np.zeros((2, 2), np.uint8))
    with pytest.raises(Cancelled):
        enc.close(cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []


def test_png_directory_refuses_to_overwrite_frames_without_force(tmp_path):
    PngDirEncoder.check_target(tmp_path, force=False)
    (tmp_path / "frame-000000.png").write_bytes(b"")
    with pytest.raises(PvrecError, match=r"already holds frame-\*\.png files"):
        PngDirEncoder.check_target(tmp_path, force=False)
    # --force replaces frames pvrec wrote; an empty file or a PNG of the user's it refuses
    with pytest.raises(PvrecError, match=r"frame-000000.png does not say pvrec wrote it: move"):
        PngDirEncoder.check_target(tmp_path, force=True)
    from PIL import Image

    Image.new("P", (2, 2)).save(tmp_path / "frame-000000.png")
    with pytest.raises(PvrecError, match=r"does not say pvrec wrote it"):
        PngDirEncoder.check_target(tmp_path, force=True)
    # a PNG whose header claims 30000x30000 pixels (Pillow calls it a bomb): refused, one line
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data)))
    (tmp_path / "frame-000000.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr))
    with pytest.raises(PvrecError, match=r"does not say pvrec wrote it"):
        PngDirEncoder.check_target(tmp_path, force=True)
    write_png(tmp_path / "frame-000000.png", np.zeros((2, 2), np.uint8), PALETTE)
    PngDirEncoder.check_target(tmp_path, force=True)
    assert PngDirEncoder.target_name(tmp_path) == f"{tmp_path}/"


def test_a_second_ctrl_c_while_ffmpeg_finishes_still_lets_abort_kill_it(tmp_path):
    enc = fake_ffmpeg("import sys, time; sys.stdin.buffer.read(); time.sleep(60)")(
        tmp_path / "a.gif", (2, 2), PALETTE)
    proc, real_wait = enc._proc, enc._proc.wait
    calls = []

    def wait(timeout=None):  # the second SIGINT's KeyboardInterrupt, raised while waiting
        if not calls:
            calls.append(1)
            raise KeyboardInterrupt
        return real_wait(timeout)

    proc.wait = wait
    enc.write(np.zeros((2, 2), np.uint8))
    with pytest.raises(KeyboardInterrupt):
        enc.close()
    enc.abort()  # what the pipeline does on any exception
    assert proc.returncode is not None and proc.returncode < 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("enc, scale, size", [(Mp4Encoder, 2, (37, 21)), (Mp4Encoder, 3, (8, 5)),
                                             (GifEncoder, 1, (30, 20))])
def test_an_encoder_told_what_changed_sends_what_enlarging_it_all_would(monkeypatch, tmp_path,
                                                                       enc, scale, size):
    """GIVEN an ffmpeg encoder (ffmpeg not started: what it would be sent is kept), WHEN
    frames are written with the pixels and rectangles that changed since the one before,
    THEN each buffer sent is the whole frame enlarged (odd sides padded as before)."""
    from pvrec.render.encoders import upscale

    sent = []
    monkeypatch.setattr(enc, "_start", lambda self: None)
    monkeypatch.setattr(enc, "_send", lambda self: (sent.append(self.pixels.copy()),
                                                    setattr(self, "frames", self.frames + 1)))
    e = enc(tmp_path / f"a.{enc.kind}", size, PALETTE, scale=scale, pad_color=9)
    rng = np.random.default_rng(1)
    w, h = size
    img = rng.integers(0, 200, (h, w)).astype(np.uint8)
    e.write(img)  # the first: all of it
    frames = [img.copy()]
    for _ in range(4):
        idx = np.unique(rng.integers(0, w * h, 15))
        img.reshape(-1)[idx] = rng.integers(0, 200, idx.size)
        y0, x0 = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 4))
        img[y0:y0 + 3, x0:x0 + 4] = 250
        e.write(img, (idx, [(y0, y0 + 3, x0, x0 + 4)]))
        frames.append(img.copy())
    assert len(sent) == 5
    for got, frame in zip(sent, frames, strict=True):
        want = np.full_like(got, 9)
        want[:h * scale, :w * scale] = upscale(frame, scale)
        assert np.array_equal(got, want)
