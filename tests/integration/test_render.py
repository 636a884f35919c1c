"""`pvrec render` / `snapshot` / `classes` end to end: outputs decoded back, errors, Ctrl-C, RSS.

MP4 tolerance: each page is a 2x2 block after the default 2x upscale; decoding the MP4 and
snapping every block to the nearest colour of the frame, 0.0008% of pages come out wrong on a
1 GiB map of real fixture data and 0.012-0.018% on the synthetic frames here (runs of 1 page,
every class next to every other): the tests allow 0.1%.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from pvrec import flags as F
from pvrec.classes import default_scheme
from pvrec.recording.header import Header
from pvrec.recording.writer import Writer
from pvrec.render.pipeline import render_recording
from tests.conftest import REPO, run_pvrec
from tests.helpers import HEADER, make_recording, run_here

MP4_TOLERANCE = 0.001  # share of pages whose decoded colour is nearer another class's


@pytest.fixture(scope="module")
def rec(tmp_path_factory) -> Path:
    return make_recording(tmp_path_factory.mktemp("render") / "pvrec-make", frames=8)


def decode(path: Path) -> list[np.ndarray]:
    """Every frame of a video/GIF as RGB, through ffmpeg."""
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3).copy() for f in gen]


def png_frames(directory: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(directory.glob("*.png"))]


def wrong_share(exact: list[np.ndarray], mp4: list[np.ndarray], scale: int = 2) -> float:
    """Share of pixels whose scale x scale block, snapped to the nearest colour of the exact
    frame, is not the exact colour."""
    bad = total = 0
    for ref, got in zip(exact, mp4, strict=True):
        h, w, _ = ref.shape
        cols = np.unique(ref.reshape(-1, 3), axis=0).astype(np.float64)
        blk = got[:h * scale, :w * scale].astype(np.float64)
        blk = blk.reshape(h, scale, w, scale, 3).mean(axis=(1, 3))
        near = cols[np.argmin(((blk[:, :, None] - cols[None, None]) ** 2).sum(-1), axis=2)]
        bad += int((near != ref).any(-1).sum())
        total += h * w
    return bad / total


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_mp4_frames_dimensions_and_colours(rec, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    ok(run_pvrec("render", rec, "-o", frames, "--map-only", "--layout", "rows", "--width", "64"))
    err = ok(run_pvrec("render", rec, "-o", tmp_path / "m.mp4", "--map-only", "--layout", "rows",
                       "--width", "64", "--every", "1"))  # each frame once
    exact, video = png_frames(frames), decode(tmp_path / "m.mp4")
    assert len(exact) == len(video) == 8
    assert video[0].shape == (128, 128, 3)  # 64x64 pages, 2x
    share = wrong_share(exact, video)
    assert share < MP4_TOLERANCE, f"{share:.4%} of pages decode to another class's colour"
    assert re.search(r"wrote .*m\.mp4 \(.*8 frames, 0\.8 s at 10 fps, 128x128", err)


def test_mp4_full_picture_is_browser_safe(rec, tmp_path):
    out = tmp_path / "full.mp4"
    ok(run_pvrec("render", rec, "-o", out, "--changes", "--timeline", "--every", "1"))
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: plays while loading
    video = decode(out)
    assert len(video) == 8
    h, w, _ = video[0].shape
    assert h % 2 == 0 and w % 2 == 0
    png = tmp_path / "last.png"
    ok(run_pvrec("render", rec, "-o", png, "--changes", "--timeline"))
    exact = np.asarray(Image.open(png).convert("RGB"))
    assert (h, w) == (2 * exact.shape[0], 2 * exact.shape[1])
    # The map of the last frame (text is not compared): its pages within the tolerance.
    from pvrec.render.compose import Options, Picture
    from pvrec.render.fit import choose_layout
    from pvrec.render.raster import MapLayout

    scheme, opt = default_scheme(), Options(changes=True, timeline=True)
    header = Header.from_dict({**HEADER, "pfn_count": 4096})
    ram = MapLayout.build(header).ram_pages
    g = Picture(choose_layout(header, scheme, opt, ram_pages=ram), scheme, header, opt,
                ram_pages=ram).geo
    y, x = slice(g.map_y, g.map_y + 64), slice(g.map_x, g.map_x + 64)
    y2, x2 = slice(2 * g.map_y, 2 * g.map_y + 128), slice(2 * g.map_x, 2 * g.map_x + 128)
    assert wrong_share([exact[y, x]], [video[-1][y2, x2]]) < MP4_TOLERANCE
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(out)],
                           capture_output=True, text=True)
    assert "h264 (High)" in probe.stderr and "yuv420p" in probe.stderr


def test_gif_and_webp_are_exact_and_loop(rec, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    ok(run_pvrec("render", rec, "-o", frames, "--changes"))
    exact = png_frames(frames)
    assert len(exact) == 8
    ok(run_pvrec("render", rec, "-o", tmp_path / "a.gif", "--changes", "--every", "1"))
    gif = decode(tmp_path / "a.gif")
    assert len(gif) == 8 and all(np.array_equal(a, b) for a, b in zip(exact, gif, strict=True))
    im = Image.open(tmp_path / "a.gif")
    assert im.info.get("loop") == 0 and im.info.get("duration") == 100 and im.n_frames == 8
    ok(run_pvrec("render", rec, "-o", tmp_path / "a.webp", "--changes", "--every", "1"))
    webp = Image.open(tmp_path / "a.webp")
    assert webp.n_frames == 8
    for i, ref in enumerate(exact):
        webp.seek(i)
        assert np.array_equal(np.asarray(webp.convert("RGB")), ref), i
    # Palette colours only (no dithering): every GIF pixel is a colour of the picture.
    pal = np.asarray(Image.open(frames / "frame-000000.png").getpalette()).reshape(-1, 3)
    assert set(map(tuple, np.unique(gif[3].reshape(-1, 3), axis=0))) <= set(map(tuple, pal))


def test_png_frames_and_time_options(rec, tmp_path):
    ok(run_here("render", rec, "-o", tmp_path / "last.png"))
    ok(run_here("render", rec, "-o", tmp_path / "f7.png", "--frame", "7"))
    ok(run_here("render", rec, "-o", tmp_path / "t7.png", "--frame", "7s"))
    ok(run_here("render", rec, "-o", tmp_path / "d7.png", "--frame", "6.5"))  # seconds
    a, b, c, d = (np.asarray(Image.open(tmp_path / n)) for n in
                  ("last.png", "f7.png", "t7.png", "d7.png"))
    assert np.array_equal(a, b) and np.array_equal(a, c) and np.array_equal(a, d)
    err = ok(run_here("render", rec, "-o", tmp_path / "f30.gif", "--fps", "30"))
    assert "warning: GIF frame delays are whole 1/100 s: 30 fps plays at 33.3 fps" in err
    err = ok(run_here("render", rec, "-o", tmp_path / "e.gif", "--every", "3"))
    assert " 3 frames" in err  # 0, 3, 6
    err = ok(run_here("render", rec, "-o", tmp_path / "s.gif", "--start", "2", "--end", "5s",
                      "--every", "1"))
    assert " 4 frames" in err
    err = ok(run_here("render", rec, "-o", tmp_path / "h.gif", "--hold", "1.5", "--every", "1"))
    assert " 23 frames" in err  # 8 + 15 held
    assert len(decode(tmp_path / "h.gif")) == 23
    # --speed 0.5: half a recording second per video second: 7 s of recording -> 14 s of video.
    err = ok(run_here("render", rec, "-o", tmp_path / "sp.gif", "--speed", "0.5", "--fps", "2"))
    assert " 29 frames, 14.5 s at 2 fps" in err
    err = ok(run_here("render", rec, "-o", tmp_path / "fast.gif", "--speed", "4", "--fps", "2"))
    assert " 5 frames" in err  # t = 0, 2, 4, 6 and the last one (7 s, nearer 8 than 6)


def test_default_output_name_and_no_silent_overwrite(rec, tmp_path):
    out = Path(str(rec) + ".mp4")
    out.unlink(missing_ok=True)
    ok(run_here("render", rec, "--end", "1"))
    assert out.exists()
    r = run_here("render", rec, "--end", "1")
    assert r.returncode == 2 and "already exists (use --force" in r.stderr
    ok(run_here("render", rec, "--end", "1", "--force"))
    out.unlink()


def test_bad_input_is_one_line_and_exit_2(rec, tmp_path):
    (tmp_path / "notrec").mkdir()
    (tmp_path / "bad.toml").write_text('[[class]]\nname = "a"\nbits = "thp"\ncolor = "#12"\n')
    (tmp_path / "badbits.toml").write_text('[[class]]\nname = "a"\nbits = "tph"\ncolor = "red"\n')
    empty = tmp_path / "empty"
    Writer(empty, {"pfn_count": 100}).close({"reason": "test"})
    newer = make_recording(tmp_path / "newer", 1)
    h = json.loads((newer / "header.json").read_text())
    (newer / "header.json").write_text(json.dumps({**h, "format_version": 7}))
    cases = [
        (["render", tmp_path / "notrec"], "not a pvrec recording"),
        (["render", newer, "-o", tmp_path / "x.mp4"], "upgrade pvrec"),
        (["render", empty, "-o", tmp_path / "x.mp4"], "has no frames"),
        (["render", rec, "-o", tmp_path / "x.avi"], "cannot tell the output type"),
        (["render", rec, "-o", tmp_path / "x.png", "--frame", "8"], "out of range"),
        (["render", rec, "-o", tmp_path / "x.mp4", "--start", "99"], "out of range"),
        (["render", rec, "-o", tmp_path / "x.mp4", "--classes", tmp_path / "bad.toml"],
         r"bad.toml, line 4: colour '#12' does not parse"),
        (["render", rec, "-o", tmp_path / "x.mp4", "--classes", tmp_path / "badbits.toml"],
         r"badbits.toml, line 3: unknown flag name"),
        (["render", rec, "-o", tmp_path / "nodir" / "x.mp4"], "does not exist"),
        (["render", rec, "-o", tmp_path / "x.mp4", "--pages-per-pixel", "3"],
         "does not divide the row of 64 pages"),
        (["render", rec, "-o", tmp_path / "x.mp4", "--fps", "0"], "--fps"),
        (["render", rec, "-o", tmp_path / "x.mp4", "--frame", "2"], "--frame picks"),
        (["render", rec, "-o", tmp_path / "x.mp4", "--map-only", "--changes"], "map alone"),
        (["snapshot", f"{rec}@99", "-o", tmp_path / "x.png"], "out of range"),
        (["snapshot", "-F", tmp_path / "nope.kpf", "-o", tmp_path / "x.png"], "nope.kpf"),
        (["classes", "--classes", tmp_path / "bad.toml"], "line 4"),
    ]
    for args, message in cases:
        r = run_here(*args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pvrec: "), (args, r.stderr)
        assert re.search(message, lines[0]), (args, lines[0])
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*"))


def test_incomplete_recording_renders_up_to_its_last_complete_frame(tmp_path):
    r = make_recording(tmp_path / "cut", 5, complete=False)
    last = sorted((r / "frames").glob("*.npz"))[-1]
    last.write_bytes(last.read_bytes()[:40])  # cut short by a crash
    err = ok(run_pvrec("render", r, "-o", tmp_path / "cut.gif", "--every", "1"))
    assert "warning:" in err and "no end.json" in err
    assert " 4 frames" in err
    assert len(decode(tmp_path / "cut.gif")) == 4


def test_ctrl_c_leaves_nothing(tmp_path):
    r = make_recording(tmp_path / "long", 400, pages=2048)
    out = tmp_path / "long.mp4"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-m", "pvrec", "render", str(r), "-o", str(out),
                          "--scale", "8", "--preset", "medium"], stderr=subprocess.PIPE,
                         text=True, env=env, cwd=REPO)
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".long.pvrec-*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(tmp_path.glob(".long.pvrec-*")), "the render never started writing"
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".long*"))


def test_render_recording_api_for_the_demo(rec, tmp_path):
    summary = render_recording(rec, tmp_path / "demo.gif", warn=None, every=1)
    assert summary.kind == "gif" and summary.frames == 8 and summary.bytes > 0
    again = render_recording(rec, tmp_path / "demo.gif", warn=None, end=1, every=1)  # the API overwrites
    assert again.frames == 2
    assert "demo.gif" in summary.line() and "8 frames" in summary.line()


def test_snapshot_and_classes(rec, tmp_path):
    ok(run_pvrec("snapshot", f"{rec}@-1", "-o", tmp_path / "s.png"))
    ok(run_pvrec("render", rec, "-o", tmp_path / "r.png"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "s.png")),
                          np.asarray(Image.open(tmp_path / "r.png")))
    r = run_pvrec("classes", f"{rec}@2")
    ok(r)
    out = r.stdout
    for name in default_scheme().names:
        assert name in out
    assert "% RAM" in out and "#DCDCDC" in out
    r = run_pvrec("classes", rec, "--classes", "flags")
    assert r.returncode == 0 and "other" in r.stdout and "buddy" in r.stdout


@pytest.fixture(scope="module")
def kbuild_dump(fixture_dumps) -> Path:
    return fixture_dumps["after-kbuild"]


def test_map_only_contract_on_a_real_fixture(kbuild_dump, tmp_path):
    """--map-only --layout rows --width 512: pixel (x, y) is PFN y*512+x, and the share of
    pixels in the free colour is the share of buddy pages."""
    flags = np.fromfile(kbuild_dump, dtype="<u8")
    ok(run_pvrec("snapshot", "-F", kbuild_dump, "-o", tmp_path / "map.png", "--map-only",
                 "--layout", "rows", "--width", "512"))
    img = Image.open(tmp_path / "map.png")
    assert img.size == (512, flags.size // 512)
    rgb = np.asarray(img.convert("RGB")).reshape(-1, 3)
    scheme = default_scheme()
    free = np.array(scheme.classes[scheme.index("free")].light, np.uint8)
    is_free = (rgb == free).all(axis=1)
    buddy = (flags & np.uint64(F.bit(F.BUDDY))) != 0
    assert is_free.sum() == buddy.sum() and np.array_equal(is_free, buddy)
    # Every pixel's colour is its page's class colour, page for page.
    cols = scheme.colors("light")[scheme.classify_values(flags)]
    assert np.array_equal(rgb, cols)
    # The full picture of the same dump: no recording time on it, the dump named instead.
    err = ok(run_pvrec("snapshot", "-F", kbuild_dump, "-o", tmp_path / "full.png"))
    # 25 tiles (a dump has no layout: all of it is RAM) in a grid: K=8 (one row of tiles: 16);
    # its tiles of one class fold into bands (test_regions_render), the rest at K=4
    assert "4 pages/pixel" in err


def test_real_fixture_as_a_recording_with_the_vm_layout(kbuild_dump, tmp_path):
    flags = np.fromfile(kbuild_dump, dtype="<u8")
    vm = {**HEADER, "pfn_count": int(flags.size), "hpage_pages": 512,
          "ram_ranges": [[1, 0xA0], [0x100, 0xC0000], [0x100000, 0x640000]],
          "zones": [{"node": 0, "name": "DMA", "start_pfn": 1, "end_pfn": 0x1000},
                    {"node": 0, "name": "DMA32", "start_pfn": 0x1000, "end_pfn": 0x100000},
                    {"node": 0, "name": "Normal", "start_pfn": 0x100000, "end_pfn": 0x640000}],
          "nodes": [{"node": 0, "ranges": [[1, 0xA0], [0x100, 0xC0000],
                                           [0x100000, 0x640000]]}]}
    w = Writer(tmp_path / "vm", vm)
    w.add_frame(flags, 0.0, {})
    w.close({"reason": "test"})
    err = ok(run_pvrec("render", tmp_path / "vm", "-o", tmp_path / "vm.png", "--no-collapse"))
    assert "8 pages/pixel" in err
    img = Image.open(tmp_path / "vm.png")
    assert img.size[0] <= 1920 and img.size[1] <= 1080


def vm_hwm(args: list[str]) -> int:
    """Peak RSS (VmHWM, kB) of a render in a fresh process."""
    code = ("import sys; from pvrec.cli import main; rc = main(sys.argv[1:]); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); "
            "sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-2])


def test_memory_stays_flat_over_2000_frames(tmp_path):
    """Streaming: 2,000 frames cost no more memory than 100 (whole frames would be 570 MB)."""
    r = make_recording(tmp_path / "long", 2000, pages=2048, durable=False)
    base = ["render", str(r), "-q", "--changes", "--timeline", "--every", "1"]
    short = vm_hwm([*base, "-o", str(tmp_path / "a.gif"), "--end", "99"])
    full = vm_hwm([*base, "-o", str(tmp_path / "b.gif")])
    assert Image.open(tmp_path / "b.gif").n_frames == 2000
    assert full - short < 16 * 1024, f"peak RSS {short} kB for 100 frames, {full} kB for 2000"
