"""The composed picture: palette, text, fitting the layout, and golden PNGs of small recordings.

Golden pictures live in tests/data/golden/. After an intended change to the picture, look at
the new ones and regenerate them with:

    PVREC_UPDATE_GOLDEN=1 python -m pytest tests/unit/test_compose.py

Map, swatch and every other class pixel must match exactly. Text pixels too, unless this
machine's FreeType differs from the one that made the goldens (recorded in fonts.json): glyph
rasterisation is FreeType's, not ours, so then only a small share of text pixels may differ.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from pvrec.classes import HOLE, default_scheme
from pvrec.recording.header import Header
from pvrec.render.compose import Options, Picture
from pvrec.render.encoders import GifEncoder
from pvrec.render.fit import choose_layout
from pvrec.render.palette import THEME_UI, Palette
from pvrec.render.pipeline import render_recording
from pvrec.render.raster import MapLayout
from pvrec.render.text import Text, format_time
from tests.helpers import make_recording
from tests.unit.test_raster import VM

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
UPDATE = os.environ.get("PVREC_UPDATE_GOLDEN") == "1"

TOML = """\
[[class]]
name = "huge (THP or hugetlb)"
bits = ["thp", "huge"]
color = "#D55E00"

[[class]]
name = "free"
bits = "buddy"
color = "#FFFFFF"
dark = "#000000"

[[class]]
name = "anon"
bits = "anonymous"
color = "#E69F00"
"""

CASES = {
    # name: (render options, number of classes in the picture's scheme)
    "default-changes-timeline": dict(changes=True, timeline=True),
    "dark-flags-frame2": dict(theme="dark", classes="flags", frame=2),
    "map-only-rows": dict(map_only=True, layout="rows", width=64),
    "toml-k4-first": dict(classes="TOML", pages_per_pixel=4, frame=0, title="my classes"),
}


def font_version() -> str:
    return str(features.version("freetype2"))


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return make_recording(tmp_path_factory.mktemp("golden") / "rec", frames=6)


@pytest.mark.parametrize("name", list(CASES))
def test_golden(name, recording, tmp_path):
    opts = dict(CASES[name])
    if opts.get("classes") == "TOML":
        (tmp_path / "mine.toml").write_text(TOML)
        opts["classes"] = str(tmp_path / "mine.toml")
    out = tmp_path / f"{name}.png"
    render_recording(recording, out, warn=None, **opts)
    check_golden(out, name, opts.get("theme", "light"))


def check_golden(out: Path, name: str, theme: str = "light") -> None:
    """out is golden/NAME.png: every class pixel exactly, text pixels as far as FreeType
    allows (PVREC_UPDATE_GOLDEN=1 writes it instead)."""
    golden = GOLDEN / f"{name}.png"
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(out.read_bytes())
        (GOLDEN / "fonts.json").write_text(json.dumps({"freetype2": font_version(),
                                                       "pillow": Image.__version__}) + "\n")
        return
    assert golden.exists(), f"no golden {golden}: run with PVREC_UPDATE_GOLDEN=1"
    got, want = Image.open(out), Image.open(golden)
    assert got.mode == want.mode == "P" and got.size == want.size
    assert got.getpalette() == want.getpalette()
    a, b = np.asarray(got), np.asarray(want)
    n_classes = classes_in_palette(want.getpalette(), theme)
    cls = (a < n_classes) | (b < n_classes)
    assert np.array_equal(a[cls], b[cls]), f"{name}: map or swatch pixels differ"
    same_fonts = json.loads((GOLDEN / "fonts.json").read_text())["freetype2"] == font_version()
    if same_fonts:
        assert np.array_equal(a, b), f"{name}: text pixels differ (same FreeType)"
    else:
        assert (a != b).mean() < 0.03


def classes_in_palette(palette: list[int], theme: str) -> int:
    """Where the picture's own colours start in the palette (= the number of classes)."""
    ui = [tuple(int(h[i:i + 2], 16) for i in (1, 3, 5)) for h in THEME_UI[theme]]
    rgb = [tuple(palette[i:i + 3]) for i in range(0, len(palette), 3)]
    for n in range(1, len(rgb) - len(ui)):
        if rgb[n:n + len(ui)] == ui:
            return n
    raise AssertionError("no picture colours in the palette")


def test_golden_map_only_is_exactly_the_pfn_contract(recording):
    """The map-only golden doubles as a check of the contract itself."""
    from pvrec.recording.reader import open_recording

    img = Image.open(GOLDEN / "map-only-rows.png")
    idx = np.asarray(img)
    flags = open_recording(recording).read(-1)
    scheme = default_scheme()
    cls = scheme.classify_values(flags)
    cls[1536:1792] = HOLE  # the RAM hole
    assert idx.shape == (64, 64)
    assert np.array_equal(idx.reshape(-1), cls)


class Tap(GifEncoder):
    """The GIF encoder with `cat` for ffmpeg: its output file is exactly what ffmpeg's stdin
    receives."""

    def command(self) -> list[str]:
        copy = "import shutil, sys; shutil.copyfileobj(sys.stdin.buffer, open(sys.argv[1], 'wb'))"
        return [sys.executable, "-c", copy, str(self.tmp)]


def test_palette_layout_and_the_trailer_ffmpeg_receives(tmp_path):
    s = default_scheme()
    p = Palette.make(s, "light")
    assert np.array_equal(p.colors[:len(s)], s.colors("light"))
    assert p.bg == len(s) and p.fg_ramp[0] == p.bg and len(set(p.fg_ramp.tolist())) == 8
    # WHEN two 3x2 frames go through the encoder
    frame = np.arange(6, dtype=np.uint8).reshape(2, 3)
    enc = Tap(tmp_path / "t.gif", (3, 2), p.colors, pad_color=p.bg)
    enc.write(frame)
    enc.write(frame[::-1].copy())
    enc.close()
    # THEN ffmpeg got, per frame, one byte per pixel and 256 x 0xAARRGGBB little endian
    sent = (tmp_path / "t.gif").read_bytes()
    assert len(sent) == 2 * (6 + 1024) and enc.frames == 2
    first, second = sent[:1030], sent[1030:]
    assert first[:6] == bytes(range(6)) and second[:6] == bytes([3, 4, 5, 0, 1, 2])
    assert first[6:] == second[6:]
    argb = np.frombuffer(first[6:], "<u4")
    assert argb[s.index("free")] == 0xFFDCDCDC  # #DCDCDC, opaque
    assert argb[p.bg] == 0xFFFFFFFF and argb[p.fg] == 0xFF1A1A1A
    assert argb[255] == 0xFF000000  # unused entries: opaque black


def test_text_is_ascii_and_cached():
    t = Text()
    lv = t.levels("t=+12.0s", 16)
    assert lv.max() == 7 and lv.shape[0] == t.height(16)
    assert t.levels("t=+12.0s", 16) is lv
    # Equal-width digits: the time does not jitter.
    assert t.width("t=+10.0s", 16) == t.width("t=+88.8s", 16)
    assert t.levels("5 \u00b5s \u00d7 \u2192", 13).shape == t.levels("5 ?s ? ?", 13).shape
    assert t.fit("a long command line that does not fit", 13, 80).endswith("...")


def test_format_time():
    assert format_time(12.04) == "t=+12.0s"
    assert format_time(125.0) == "t=+2m05.0s"
    assert format_time(3723.0) == "t=+1h02m03s"


def test_default_fit_of_the_vm_and_of_small_machines():
    s, opt = default_scheme(), Options()
    lay = choose_layout(VM, s, opt, ram_pages=MapLayout.build(VM).ram_pages)
    pic = Picture(lay, s, VM, opt, ram_pages=lay.ram_pages)
    assert pic.size[0] <= 1920 and pic.size[1] <= 1080
    # K=8 as before, but no longer one row of 24 tiles 64 px wide: a grid of 256x128 tiles
    # (four huge pages a row) that fills the 16:9 box better
    assert lay.ppp == 8 and lay.row_pages == 4 * 512 and lay.tile_width == 256
    assert lay.cols == 5 and len({t.y for t in lay.tiles}) == 5
    one = Header.from_dict({"pfn_count": 262144, "hpage_pages": 512})
    lay1 = choose_layout(one, s, opt)
    assert lay1.ppp == 1 and (lay1.width, lay1.height) == (512, 512)
    four = Header.from_dict({"pfn_count": 4 * 262144, "hpage_pages": 512})
    lay4 = choose_layout(four, s, opt)
    assert lay4.ppp == 2
    small = choose_layout(four, s, opt, fit=(700, 700))
    assert Picture(small, s, four, opt).size[0] <= 700
    only = choose_layout(VM, s, Options(map_only=True))
    assert only.gap == 0 and only.width <= 1920 and only.height <= 1080


def test_frames_redraw_only_what_changes():
    s = default_scheme()
    header = Header.from_dict({"pfn_count": 262144, "hpage_pages": 512, "command": ["true"]})
    lay = choose_layout(header, s, Options(changes=True, timeline=True))
    tl = (np.array([0.0, 1.0, 2.0]), np.tile(np.arange(len(s)), (3, 1)))
    pic = Picture(lay, s, header, Options(changes=True, timeline=True), frame_count=3,
                  timeline=tl)
    px = np.full(lay.blocks, s.index("free"), np.uint8)
    pages = np.zeros(len(s), np.int64)
    pages[s.index("free")] = 262144
    a = pic.frame(px, t=0.0, index=0, pages=pages, changed=(np.zeros(px.size, bool), 0)).copy()
    px2 = px.copy()
    px2[:10] = s.index("slab")
    changed = np.zeros(px.size, bool)
    changed[:10] = True
    b = pic.frame(px2, t=2.0, index=2, pages=pages, changed=(changed, 10)).copy()
    g = pic.geo
    assert (b[g.map_y, g.map_x:g.map_x + 10] == pic.palette.changed).all()
    # A third frame equal to the first looks exactly like it (nothing left over).
    c = pic.frame(px, t=0.0, index=0, pages=pages, changed=(np.zeros(px.size, bool), 0))
    assert np.array_equal(a, c)
    assert not np.array_equal(a, b)
