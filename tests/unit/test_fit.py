"""Issue 10, point 3: --fit is a promise, --size names the common boxes, an MP4 gets a poster
and the HTML to paste.

The property test builds headers of machines from 1 GiB to 1 TiB (one node or two, the VM's
holes or none) and asks for every option that adds to the picture; the whole picture (map,
legend, header, tile labels, strips; two runs side by side as the pipeline puts them) must be
within the box, or the render stops with one line saying so.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pvrec.classes import default_scheme
from pvrec.errors import PvrecError
from pvrec.recording.header import Header
from pvrec.render.compose import Options, Picture
from pvrec.render.encoders import GifEncoder, Mp4Encoder, PngEncoder
from pvrec.render.fit import choose_layout
from pvrec.render.options import RenderOptions
from pvrec.render.pipeline import PAIR_GAP
from pvrec.render.text import MIN_CAP, STYLES, cap_height
from tests.helpers import make_recording, run_here

G = 262144  # pages of 1 GiB


def machine(gib: int, numa: bool, holes: bool) -> Header:
    """A header of a machine with `gib` GiB (the VM's low holes if asked; two nodes split in
    the middle if asked), zones DMA32 and Normal as on x86-64."""
    n = gib * G
    ram = [[1, 0xA0], [0x100, min(n, 0xC0000)]] + ([[0x100000, n + 0x40000]] if n > 0xC0000
                                                    else []) if holes else [[0, n]]
    end = ram[-1][1]
    zones = [{"node": 0, "name": "DMA32", "start_pfn": 0, "end_pfn": min(end, 0x100000)}]
    if end > 0x100000:
        zones.append({"node": 0, "name": "Normal", "start_pfn": 0x100000, "end_pfn": end})
    nodes = [{"node": 0, "ranges": ram}]
    if numa and gib >= 2:
        mid = end // 2 // 512 * 512
        nodes = [{"node": 0, "ranges": [[s, min(e, mid)] for s, e in ram if s < mid]},
                 {"node": 1, "ranges": [[max(s, mid), e] for s, e in ram if e > mid]}]
        zones[-1:] = [{**zones[-1], "end_pfn": mid},
                      {"node": 1, "name": "Normal", "start_pfn": mid, "end_pfn": end}]
    return Header.from_dict({"pfn_count": end, "page_size": 4096, "hpage_pages": 512,
                             "ram_ranges": ram, "zones": zones, "nodes": nodes,
                             "command": ["make", "-j2"], "hostname": "box",
                             "kernel": "6.18.0", "start_wall": "2026-11-26T12:00:00"})


BOXES = [(1920, 1080), (960, 540), (760, 640), (800, 450), (1280, 720), (640, 480)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gib=st.sampled_from([1, 3, 24, 64, 256, 1024]), numa=st.booleans(),
       holes=st.booleans(), pair=st.booleans(), timeline=st.booleans(),
       metrics=st.integers(0, 4), changes=st.booleans(), highlight=st.booleans(),
       box=st.sampled_from(BOXES))
def test_the_whole_picture_is_within_fit(gib, numa, holes, pair, timeline, metrics, changes,
                                         highlight, box):
    # GIVEN a machine and every option that adds to the picture
    header = machine(gib, numa, holes)
    scheme = default_scheme()
    opt = Options(changes=changes, timeline=timeline or metrics > 0,
                  highlight="workload" if highlight else None)
    fit = ((box[0] - PAIR_GAP) // 2, box[1]) if pair else box  # as the pipeline halves it
    mt = ([f"free_hp_blocks (Normal) {i}" for i in range(metrics)], None) if metrics else None
    # WHEN the layout is chosen
    try:
        lay = choose_layout(header, scheme, opt, fit=fit, ram_pages=header.ram_pages,
                            metric_lines=metrics)
    except PvrecError as e:  # THEN either it says in one line that it cannot fit
        assert "\n" not in e.message and f"{fit[0]}x{fit[1]}" in e.message
        assert pair or box[0] < 760 or metrics, f"a single {gib} GiB map must fit {box}"
        return
    pic = Picture(lay, scheme, header, opt, ram_pages=header.ram_pages, metrics=mt)
    w, h = pic.size
    if pair:
        w = 2 * w + PAIR_GAP
    # ... or the whole picture is within the box
    assert w <= box[0] and h <= box[1], f"{w}x{h} in {box}"
    assert min(cap_height(s) for s in (lay.look.style.legend, lay.look.style.label)) >= MIN_CAP


def test_every_text_style_keeps_capitals_legible():
    for style in STYLES:
        for size in (style.title, style.info, style.legend, style.label):
            assert cap_height(size) >= MIN_CAP


def test_fit_960x540_with_a_timeline_holds_on_the_vm():
    """The issue's case: --fit 960x540 gave 758x618, with --timeline 1142x780."""
    from tests.unit.test_raster import VM

    s = default_scheme()
    for opt in (Options(), Options(timeline=True), Options(timeline=True, changes=True)):
        lay = choose_layout(VM, s, opt, fit=(960, 540), ram_pages=VM.ram_pages)
        w, h = Picture(lay, s, VM, opt, ram_pages=VM.ram_pages).size
        assert w <= 960 and h <= 540


def test_rows_that_cannot_fit_say_so_in_one_line():
    header = Header.from_dict({"pfn_count": 24 * G, "hpage_pages": 512})
    with pytest.raises(PvrecError) as err:
        choose_layout(header, default_scheme(), Options(), kind="rows", ppp=1, fit=(1920, 1080))
    assert err.value.message == (
        "the picture with --layout rows (--width 512: a map of 512x12,288 pixels) does not fit "
        "in 1920x1080 pixels: give a larger --fit or --size, or a --width whose map fits")


def test_a_blog_size_takes_a_hidpi_scale_not_more():
    RenderOptions(size="blog", scale=3).check(Mp4Encoder)
    with pytest.raises(PvrecError) as err:
        RenderOptions(size="blog", scale=16).check(Mp4Encoder)
    assert err.value.message == ("--size blog is shown at the picture's own width (at most 760 "
                                 "px): --scale 1-3 sharpens it for HiDPI screens, not 16")


def test_size_names_the_box_and_conflicts_with_fit():
    assert RenderOptions(size="blog").fit_box(Mp4Encoder) == (760, 640)
    assert RenderOptions(size="blog").fit_box(GifEncoder) == (760, 640)
    assert RenderOptions(size="1080p").fit_box(Mp4Encoder) == (960, 540)  # 2x: 1920x1080
    assert RenderOptions(size="1080p").fit_box(GifEncoder) == (1920, 1080)
    assert RenderOptions(size="4k", scale=3).fit_box(Mp4Encoder) == (1280, 720)
    assert RenderOptions().fit_box(Mp4Encoder) == (1920, 1080)  # the default stays
    assert RenderOptions(map_only=True, layout="rows").fit_box(PngEncoder) is None  # contract
    with pytest.raises(PvrecError) as err:
        RenderOptions(size="blog", fit="800x600").check(Mp4Encoder)
    assert err.value.message == ("--size blog and --fit 800x600 both set the picture's size: "
                                 "give one of them")
    with pytest.raises(PvrecError) as err:
        RenderOptions(size="a4")
    assert err.value.message == "--size 'a4': use one of blog, 1080p, 4k"


@pytest.fixture(scope="module")
def big_rec(tmp_path_factory):
    """A 2 GiB machine, 3 frames: big enough that the box decides K and the grid."""
    return make_recording(tmp_path_factory.mktemp("fit") / "rec", frames=3, pages=2 * G)


def test_size_blog_mp4_poster_and_snippet(tmp_path):
    # GIVEN a 2 GiB machine whose anonymous memory rises to 1 GiB at frame 1 and is freed after
    from pvrec import flags as F

    free, anon = F.bit(F.BUDDY), F.bit(F.ANON) | F.bit(F.LRU) | F.bit(F.MMAP)
    frames = [np.full(2 * G, free, np.uint64) for _ in range(3)]
    frames[1][: G] = anon
    rec = make_recording(tmp_path / "rec", frames)
    # WHEN it is rendered for a blog
    out = tmp_path / "build.mp4"
    r = run_here("render", rec, "-o", out, "--size", "blog", "--timeline", "-q")
    assert r.returncode == 0, r.stderr
    # THEN the picture is within 760x640 (the MP4 2x), and the poster is the telling frame: the
    # one with the most memory in use (not the last, all free again)
    poster = tmp_path / "build.poster.png"
    m = re.search(r"wrote \S+ \(.*, (\d+)x(\d+), ", r.stderr)
    assert m, r.stderr
    w, h = int(m[1]) // 2, int(m[2]) // 2
    assert w <= 760 and h <= 640
    peak = tmp_path / "peak.png"
    assert run_here("render", rec, "-o", peak, "--size", "blog", "--timeline", "--scale",
                    "2", "--frame", "1").returncode == 0
    a, b = Image.open(poster), Image.open(peak)
    assert a.size == (2 * w, 2 * h) and np.array_equal(np.asarray(a), np.asarray(b))
    assert a.getpalette() == b.getpalette()
    # ... and the HTML to paste is printed whole, on a line of its own
    assert (f"pvrec: poster {poster} (frame 1, the most memory in use); to put the video in a "
            f"web page:") in r.stderr
    assert (f'\n  <video src="build.mp4" poster="build.poster.png" width="{w}" height="{h}" '
            f'style="max-width:100%;height:auto" autoplay muted loop playsinline></video>\n'
            ) in r.stderr


def test_poster_obeys_force_and_can_be_left_out(big_rec, tmp_path):
    out, poster = tmp_path / "v.mp4", tmp_path / "v.poster.png"
    poster.write_bytes(b"mine")
    # GIVEN a file of the user's where the poster would go: nothing is written without -f
    r = run_here("render", big_rec, "-o", out, "-q")
    assert r.returncode != 0 and not out.exists() and poster.read_bytes() == b"mine"
    assert r.stderr == f"pvrec: output {poster} already exists (use --force to replace it)\n"
    # nor with it: --force replaces OUT, and this file is neither OUT nor a poster of pvrec's
    r = run_here("render", big_rec, "-o", out, "-q", "--force")
    assert r.returncode != 0 and not out.exists() and poster.read_bytes() == b"mine"
    assert r.stderr == (f"pvrec: {poster} is in the way of the video's poster and does not say "
                        f"pvrec wrote it: move it, or render with --no-poster\n")
    # --no-poster: the video alone, no snippet
    r = run_here("render", big_rec, "-o", out, "-q", "--no-poster")
    assert r.returncode == 0 and out.exists() and poster.read_bytes() == b"mine"
    assert "<video" not in r.stderr
    # a poster pvrec wrote is replaced with --force, as the video is
    poster.unlink()
    out.unlink()
    assert run_here("render", big_rec, "-o", out, "-q").returncode == 0 and poster.exists()
    before = poster.stat().st_ino
    r = run_here("render", big_rec, "-o", out, "-q", "--force")
    assert r.returncode == 0, r.stderr
    assert poster.stat().st_ino != before  # written anew (temp file, renamed into place)
    poster.write_bytes(b"mine")
    # a GIF is an image: no poster, no snippet
    r = run_here("render", big_rec, "-o", tmp_path / "v.gif", "-q", "--fit", "800x450")
    assert r.returncode == 0, r.stderr  # (v.poster.png is in the way: it was not tried)
    assert poster.read_bytes() == b"mine"
    assert "<video" not in r.stderr
    m = re.search(r", (\d+)x(\d+), ", r.stderr)
    assert int(m[1]) <= 800 and int(m[2]) <= 450
