"""The HTML page in a real browser (Debian's chromium, headless, driven by playwright; never a
downloaded browser), on a recording of three real kpageflags dumps of the 24 GiB test VM:
canvas colours are the pages' classes, K-page pixels are the video's (pixel-exact against
MapLayout.pixels), hover text is `pvrec list`'s, scrubbing and stepping show the frame, a
recording that carries markup runs nothing, and the page makes no request."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from pvrec import flags as F
from pvrec.classes import HOLE, make_scheme
from pvrec.recording.header import Header
from pvrec.render.raster import MapLayout, page_ranks
from pvrec.runs import encode_flags
from tests.helpers import HEADER, make_recording, pvrec_main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                 "(pip install '.[test]')")
if not shutil.which(CHROMIUM):
    pytest.skip("no chromium here (.ci/run installs Debian's)", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DUMPS = ["after-dropcaches", "after-kbuild", "hugetlb-anon700"]
VM = {"page_size": 4096, "hpage_pages": 512,
      "ram_ranges": [[1, 159], [256, 786432], [1048576, 6553600]],
      "zones": [{"node": 0, "name": "DMA", "start_pfn": 1, "end_pfn": 4096},
                {"node": 0, "name": "DMA32", "start_pfn": 4096, "end_pfn": 1048576},
                {"node": 0, "name": "Normal", "start_pfn": 1048576, "end_pfn": 6553600}],
      "nodes": [{"node": 0, "ranges": [[1, 159], [256, 786432], [1048576, 6553600]]}],
      "hostname": "vm", "kernel": "6.18", "command": ["make", "-j2"], "interval": 1.0,
      "start_wall": "2026-12-02T05:41:10+00:00"}


@pytest.fixture(scope="module")
def vm(fixture_dumps, tmp_path_factory):
    """(recording, page, flags per frame): the three dumps as frames 0-2, rendered once."""
    from tests.helpers import load_fixture

    frames = [load_fixture(n) for n in DUMPS]
    tmp = tmp_path_factory.mktemp("html")
    rec = make_recording(tmp / "vm", frames, header=dict(VM),
                         workload=lambda f, i: np.flatnonzero(
                             (f & np.uint64(1 << F.ANON)) != 0))
    page = tmp / "vm.html"
    code, out, err = pvrec_main("render", str(rec), "-o", str(page), "-q")
    assert code == 0, err
    return rec, page, frames


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.requests = []
    pg.dialogs = []
    pg.errors = []
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    ctx.close()


def open_page(pg, path):
    pg.goto(path.resolve().as_uri())
    pg.evaluate("() => pvrec.rendered()")
    assert pg.errors == []


def canvas_rgb(pg, side=0):
    """The canvas colour at its middle (where centerOn puts a page)."""
    return tuple(pg.evaluate(
        f"() => {{ const c = document.querySelectorAll('canvas.map')[{side}]; "
        f"return Array.from(c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1)"
        f".data.slice(0, 3)); }}"))


def hex_rgb(h):
    return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))


def sample_pfns(flags, header, per_class=3, seed=0):
    """PFNs in RAM of every class the default scheme gives this frame: the first, the last
    and random ones."""
    scheme = make_scheme(None)
    cls = scheme.classify_values(flags)
    ram = np.zeros(flags.size, bool)
    for s, e in header.ram_ranges:
        ram[s:e] = True
    rng = np.random.default_rng(seed)
    out = {}
    for c in np.unique(cls[ram]):
        where = np.flatnonzero((cls == c) & ram)
        pick = {int(where[0]), int(where[-1])} | {int(x) for x in rng.choice(where, per_class)}
        out[int(c)] = sorted(pick)
    return scheme, out


def test_canvas_colour_under_each_page_is_its_class_colour(vm, page):
    """At one page per pixel (4x4 screen pixels each) the colour under PFN p at frame 1 is
    the colour of p's class, for pages of every class of the frame."""
    rec, path, frames = vm
    open_page(page, path)
    page.evaluate("() => pvrec.setStep(1)")
    page.evaluate("() => pvrec.setZoom(1, 4)")
    header = Header.from_dict({**VM, "pfn_count": frames[1].size})
    scheme, samples = sample_pfns(frames[1], header)
    colors = scheme.colors("light")
    assert len(samples) >= 8  # free, page cache, slab, anonymous, THP, reserved, ...
    for c, pfns in samples.items():
        for pfn in pfns:
            page.evaluate(f"() => pvrec.centerOn(0, {pfn})")
            assert canvas_rgb(page) == tuple(int(x) for x in colors[c]), \
                (scheme.names[c], pfn)


@pytest.mark.parametrize("k", [8, 64])
def test_k_pages_per_pixel_are_the_videos_pixels(vm, page, k):
    """The player's rule for K pages in a pixel gives MapLayout.pixels' classes and its
    partly-free pixels, pixel for pixel, on a real frame; and the canvas draws them (class
    colour, or its tint where partly free)."""
    rec, path, frames = vm
    open_page(page, path)
    flags = frames[2]
    header = Header.from_dict({**VM, "pfn_count": flags.size})
    lay = MapLayout.build(header, ppp=k)
    scheme = make_scheme(None)
    runs = encode_flags(flags)
    cruns = lay.class_runs(scheme.classify_values(runs.values), runs.lengths,
                           page_ranks(runs.values))
    px, partly = lay.pixels(cruns)
    got = page.evaluate(f"() => pvrec.pixels(0, 2, {k})")
    assert np.array_equal(np.array(got["px"], np.uint8), px)
    assert np.array_equal(np.flatnonzero(got["partly"]), partly)
    assert partly.size > 100  # the rule is exercised, not only whole runs
    # the canvas at this K shows them: sample partly-free and plain pixels
    data = page.evaluate("() => pvrec.data.sides[0].classes")
    page.evaluate("() => pvrec.setStep(2)")
    page.evaluate(f"() => pvrec.setZoom({k}, 1)")
    rng = np.random.default_rng(1)
    plain = np.setdiff1d(np.flatnonzero(px != HOLE), partly)
    for i in list(rng.choice(partly, 10)) + list(rng.choice(plain, 10)):
        page.evaluate(f"() => pvrec.centerOn(0, {int(i) * k})")
        want = data["tints"][px[i]] if i in set(partly.tolist()) else data["colors"][px[i]]
        assert canvas_rgb(page) == hex_rgb(want), (int(i), scheme.names[px[i]])


def list_flags(rec, n, pfn):
    """The flags column `pvrec list RUN@n -a pfn` prints for that page."""
    code, out, err = pvrec_main("list", f"{rec}@{n}", "-a", str(pfn))
    assert code == 0, err
    line = out.strip().splitlines()[1]
    return line.split("\t")[-1]


def hover(pg, pfn, keys=("PFN", "symbolic", "long", "raw", "class", "since", "zone", "workload")):
    """Move the mouse over PFN pfn's pixel; the panel's text once complete."""
    pg.evaluate(f"() => pvrec.centerOn(0, {pfn})")
    box = pg.locator("canvas.map").first.bounding_box()
    pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    pg.evaluate("() => pvrec.state.info")
    return {k: pg.locator(f".info .k-{k}").first.text_content()
            for k in keys}


def test_hover_text_is_page_types_flags(vm, page):
    """Hovering PFN p at frame n shows `pvrec list RUN@n -a p`'s flags and their long names;
    the copy line is that command."""
    rec, path, frames = vm
    open_page(page, path)
    n = 1
    page.evaluate(f"() => pvrec.setStep({n})")
    page.evaluate("() => pvrec.setZoom(1, 4)")
    page.evaluate("() => pvrec.unfold(true)")  # every page as a pixel: no band
    header = Header.from_dict({**VM, "pfn_count": frames[n].size})
    _, samples = sample_pfns(frames[n], header, per_class=1)
    for pfns in samples.values():
        pfn = pfns[-1]
        got = hover(page, pfn)
        value = int(frames[n][pfn])
        assert got["PFN"] == f"0x{pfn:x}  ({pfn})"
        assert got["symbolic"] == list_flags(rec, n, pfn)
        shown = int(F.well_known(np.array([value], np.uint64))[0])
        assert got["long"] == (F.long_symbolic(shown) or "(none)")
        raw = int(F.expand_overloaded(np.array([value], np.uint64))[0])
        assert got["raw"] == f"0x{value:016x} {F.long_symbolic(raw) or '(none)'}"
    assert page.locator(".info code").first.text_content() == f"pvrec list {rec}@{n} -a {pfn}"


def test_since_and_workload_on_hover(vm, page):
    """The hover says since which frame the page has held its class and whether the
    workload maps it."""
    rec, path, frames = vm
    scheme = make_scheme(None)
    cls = [scheme.classify_values(f) for f in frames]
    ram = np.zeros(frames[0].size, bool)
    for s, e in VM["ram_ranges"]:
        ram[s:e] = True
    changed = np.flatnonzero((cls[1] != cls[0]) & (cls[2] == cls[1]) & ram)
    kept = np.flatnonzero((cls[0] == cls[1]) & (cls[1] == cls[2]) & ram &
                          ((frames[2] & np.uint64(1 << F.ANON)) != 0))
    open_page(page, path)
    page.evaluate("() => pvrec.setStep(2)")
    page.evaluate("() => pvrec.setZoom(1, 4)")
    page.evaluate("() => pvrec.unfold(true)")
    assert hover(page, int(changed[0]))["since"].startswith("frame 1 ")
    got = hover(page, int(kept[0]))
    assert got["since"].startswith("frame 0 ")
    assert got["workload"] == "maps it"


def test_scrubbing_and_stepping_show_the_frame(vm, page):
    """A click on the strip at frame 1's place shows frame 1 (header and pixels); the right
    arrow then shows frame 2."""
    rec, path, frames = vm
    scheme = make_scheme(None)
    colors = scheme.colors("light")
    a, b = (scheme.classify_values(f) for f in frames[1:3])
    pfn = int(np.flatnonzero((a != b) & (a != HOLE) & (b != HOLE))[0])
    open_page(page, path)
    page.evaluate("() => pvrec.setZoom(1, 4)")
    page.evaluate(f"() => pvrec.centerOn(0, {pfn})")
    page.locator("canvas.strip").first.scroll_into_view_if_needed()  # below a tall map
    strip = page.locator("canvas.strip").first.bounding_box()
    page.mouse.click(strip["x"] + strip["width"] / 2, strip["y"] + strip["height"] / 2)
    page.evaluate("() => pvrec.rendered()")
    assert page.locator(".head .frame").first.text_content().endswith("frame 1 of 3")
    assert canvas_rgb(page) == tuple(int(x) for x in colors[a[pfn]])
    page.keyboard.press("ArrowRight")
    page.evaluate("() => pvrec.rendered()")
    assert page.locator(".head .frame").first.text_content().endswith("frame 2 of 3")
    assert canvas_rgb(page) == tuple(int(x) for x in colors[b[pfn]])


MARKUP = "<img src=x onerror=alert(1)>"


def test_markup_in_a_recording_runs_nothing_and_nothing_is_requested(page, tmp_path):
    """A recording whose command, host and TOML class names are markup shows those
    characters; no dialog opens, no element is created; from file:// the page requests
    nothing; its CSP allows no source."""
    toml = tmp_path / "c.toml"
    toml.write_text(f'[[class]]\nname = "{MARKUP}"\nbits = "slab"\ncolor = "#009E73"\n'
                    f'[[class]]\nname = "</script><script>alert(2)</script>"\nbits = "buddy"\n'
                    f'color = "#DDDDDD"\n')
    rec = make_recording(tmp_path / "evil", 3, header={
        **HEADER,
        "command": [MARKUP], "hostname": "<b onmouseover=alert(3)>host</b>"})
    out = tmp_path / "evil.html"
    code, _, err = pvrec_main("render", str(rec), "-o", str(out), "--classes", str(toml), "-q")
    assert code == 0, err
    html = out.read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert csp.startswith("default-src 'none'") and "unsafe" not in csp
    assert html.count("<script") == 2  # the data block and the player, nothing else
    open_page(page, out)
    page.evaluate("() => pvrec.setStep(1)")
    box = page.locator("canvas.map").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.evaluate("() => pvrec.state.info")
    assert page.locator(".head .title").text_content() == MARKUP
    assert page.locator(".head .sub").text_content().startswith("<b onmouseover=alert(3)>host</b>")
    names = page.locator(".legend .name").all_text_contents()
    assert MARKUP in names and "</script><script>alert(2)</script>" in names
    assert page.evaluate("() => document.querySelectorAll('img, b, iframe, object').length") == 0
    assert page.evaluate("() => document.scripts.length") == 2
    assert page.dialogs == [] and page.errors == []
    assert [u for u in page.requests if u != out.resolve().as_uri()] == []


def test_folio_classes_are_the_videos_pixels_too(vm, page, tmp_path):
    """--classes folio (a class by the runs, not by the value: the page carries class runs)
    gives MapLayout.pixels' classes at K = 8 and hovers as any scheme."""
    from pvrec.classes import ValueClassifier

    rec, _, frames = vm
    out = tmp_path / "folio.html"
    code, _, err = pvrec_main("render", str(rec), "-o", str(out), "--classes", "folio", "-q")
    assert code == 0, err
    open_page(page, out)
    header = Header.from_dict({**VM, "pfn_count": frames[1].size})
    lay = MapLayout.build(header, ppp=8)
    classify = ValueClassifier(make_scheme("folio"))
    runs = encode_flags(frames[1])
    cruns = lay.class_runs(classify(runs.values, runs.lengths), runs.lengths,
                           page_ranks(runs.values))
    px, partly = lay.pixels(cruns)
    got = page.evaluate("() => pvrec.pixels(0, 1, 8)")
    assert np.array_equal(np.array(got["px"], np.uint8), px)
    assert np.array_equal(np.flatnonzero(got["partly"]), partly)
    assert len(set(px.tolist())) >= 6  # several folio sizes on the map


# -- memory that never changes, collapsed into bands (issue 11), and --region


@pytest.fixture(scope="module")
def banded(tmp_path_factory):
    """(page, region page): test_regions' small machine (tile 0 of every class and static,
    tile 1 all free and tile 2 all "no flags", both static: two bands, tile 3 changing), its
    page, and the page of --region 32M-64M (the "no flags" band and tile 3)."""
    from tests.unit.test_regions import MACHINE, machine_frames

    tmp = tmp_path_factory.mktemp("bands")
    rec = make_recording(tmp / "rec", machine_frames(), header=MACHINE)
    out, region = tmp / "bands.html", tmp / "region.html"
    for path, more in ((out, []), (region, ["--region", "32M-64M"])):
        code, _, err = pvrec_main("render", str(rec), "-o", str(path), "-q", *more)
        assert code == 0, err
    return rec, out, region


def rgb_at(pg, x, y, side=0):
    """The canvas colour at canvas pixel (x, y)."""
    return tuple(pg.evaluate(
        f"() => Array.from(document.querySelectorAll('canvas.map')[{side}].getContext('2d')"
        f".getImageData({int(x)}, {int(y)}, 1, 1).data.slice(0, 3))"))


def bands_of(pg):
    lay = pg.evaluate("() => pvrec.data.sides[0].layout")
    return lay, [i for i, t in enumerate(lay["tiles"]) if t["kind"] == "band"]


def mouse_to(pg, x, y):
    """The mouse over canvas pixel (x, y) (the canvas is as wide as it is drawn: 1:1)."""
    box = pg.locator("canvas.map").first.bounding_box()
    pg.mouse.move(box["x"] + x, box["y"] + y)
    return box["x"] + x, box["y"] + y


def band_rect(pg, lay, i):
    """(x, y, width) of band i on the canvas at the zoom shown."""
    st = pg.evaluate("() => [pvrec.state.ox, pvrec.state.oy, "
                     "pvrec.levels[pvrec.state.level].K, pvrec.levels[pvrec.state.level].mag]")
    ox, oy, k, mag = st
    drawn = pg.evaluate("() => pvrec.layout(0).levels")  # the grid the page fitted
    x, y, w = drawn[str(k)]["tiles"][i]
    return ox + x * mag, oy + y * mag, w * mag


def test_bands_are_drawn_labelled_and_hovered_as_the_video_has_them(banded, page):
    """Each band is drawn where and as wide as MapLayout arranges it at the K shown, in its
    class's colour, with compose's label; hovering a band says what it is and gives the PFN
    by its share of the band (MapLayout.locate's rule)."""
    rec, path, _ = banded
    open_page(page, path)
    lay, bands = bands_of(page)
    assert [lay["labels"][i] for i in bands] == ["16 MiB - 32 MiB: 16 MiB free, unchanged",
                                                 "32 MiB - 48 MiB: 16 MiB no flags, unchanged"]
    assert [lay["about"][i] for i in bands] == [
        "16 MiB - 32 MiB: 16 MiB free, unchanged in every frame",
        "32 MiB - 48 MiB: 16 MiB no flags, unchanged in every frame"]
    classes = page.evaluate("() => pvrec.data.sides[0].classes")
    bg = hex_rgb(classes["ui"]["bg"])
    for k in (8, 1):  # a row of 8 pages: the coarsest and the finest K
        page.evaluate(f"() => pvrec.setZoom({k}, 1)")
        for i in bands:
            t = lay["tiles"][i]
            x, y, w = band_rect(page, lay, i)
            assert w == page.evaluate("() => pvrec.layout(0).levels")[str(k)]["tiles"][i][2] > 0
            want = hex_rgb(classes["colors"][t["cls"]])
            row = page.evaluate(
                f"() => Array.from(document.querySelector('canvas.map').getContext('2d')"
                f".getImageData({x - 1}, {y + 2}, {w + 2}, 1).data)")
            px = [tuple(row[j:j + 3]) for j in range(0, len(row), 4)]
            assert px[0] == bg and px[-1] == bg and set(px[1:-1]) == {want}, (k, t)
    # a click on another class in the legend dims the bands as it dims pages
    page.locator(".legend .row", has_text="slab").first.click()
    page.evaluate("() => pvrec.rendered()")
    x, y, w = band_rect(page, lay, bands[0])
    dim = tuple(int(a + (b - a) * 0.7 + 0.5) for a, b in  # the player's blend (Math.round)
                zip(hex_rgb(classes["colors"][lay["tiles"][bands[0]]["cls"]]), bg, strict=True))
    assert rgb_at(page, x + w // 2, y + 2) == dim
    page.locator(".legend .row", has_text="slab").first.click()
    page.locator(".legend .row", has_text="slab").first.click()  # all shown again
    x, y, w = band_rect(page, lay, bands[1])
    t = lay["tiles"][bands[1]]
    sx = w // 4
    mouse_to(page, x + sx + 0.5, y + 2)
    page.evaluate("() => pvrec.state.info")
    want = t["first_pfn"] + -(-sx * t["pages"] // w)
    assert page.locator(".info .k-PFN").first.text_content() == f"0x{want:x}  ({want})"
    assert page.locator(".info .k-band").first.text_content() == lay["about"][bands[1]]
    assert page.locator(".info .k-class").first.text_content() == "no flags"
    assert page.evaluate(f"() => pvrec.screenOf(0, {want})") == [x + sx + 0.5, y + 2.5]


def test_zooming_into_a_band_unfolds_it_and_zooming_out_folds_it(banded, page):
    """The wheel over a band zooms in and draws the stretch as the tiles it is, the PFN under
    the pointer still under it; the canvas under PFN p of the stretch is then p's class
    colour, a tile label is its offset; zooming out to the whole machine folds it again; a
    double-click on a band unfolds it too."""
    rec, path, _ = banded
    open_page(page, path)
    lay, bands = bands_of(page)
    classes = page.evaluate("() => pvrec.data.sides[0].classes")
    t = lay["tiles"][bands[0]]  # 16 MiB - 32 MiB, all free
    x, y, w = band_rect(page, lay, bands[0])
    sx, sy = x + w // 3 + 0.5, y + 2.5
    before = page.evaluate(f"() => pvrec.pfnAt(0, {sx}, {sy})")["pfn"]
    fit = page.evaluate("() => pvrec.state.level")
    mx, my = mouse_to(page, sx, sy)
    page.mouse.wheel(0, -100)
    page.evaluate("() => pvrec.rendered()")
    assert page.evaluate("() => [pvrec.state.unfolded, pvrec.state.level]") == [True, fit + 1]
    under = page.evaluate(f"() => pvrec.pfnAt(0, {sx}, {sy})")
    assert "band" not in under
    page.evaluate("() => pvrec.state.info")  # the panel follows: the page now under the mouse
    assert page.locator(".info .k-PFN").first.text_content() == \
        f"0x{under['pfn']:x}  ({under['pfn']})"
    assert page.evaluate("() => pvrec.levels[pvrec.state.level].K") == 1
    # the same page under the pointer, to within the row the band's point stood for
    assert abs(under["pfn"] - before) <= t["pages"] / w + 8, (under, before)
    unfolded = page.evaluate("() => pvrec.data.sides[0].layout.unfolded")
    assert [u["kind"] for u in unfolded["tiles"]] == ["tile"] * 4
    assert unfolded["labels"] == ["0 GiB", "16 MiB", "32 MiB", "48 MiB"]
    for p in (t["first_pfn"], t["first_pfn"] + 1234, t["first_pfn"] + t["pages"] - 1):
        page.evaluate(f"() => pvrec.centerOn(0, {p})")
        assert canvas_rgb(page) == hex_rgb(classes["colors"][t["cls"]]), p
        assert page.evaluate("() => { const c = document.querySelector('canvas.map'); "
                             "return pvrec.pfnAt(0, c.width >> 1, c.height >> 1).pfn; }") == p
    page.mouse.move(mx, my)
    page.mouse.wheel(0, 100)  # back to the whole machine: folded
    page.evaluate("() => pvrec.rendered()")
    assert page.evaluate("() => [pvrec.state.unfolded, pvrec.state.level]") == [False, fit]
    x, y, w = band_rect(page, lay, bands[1])
    box = page.locator("canvas.map").first.bounding_box()
    page.mouse.dblclick(box["x"] + x + w / 2, box["y"] + y + 2)
    page.evaluate("() => pvrec.rendered()")
    assert page.evaluate("() => pvrec.state.unfolded") is True
    page.click("text=whole machine")
    page.evaluate("() => pvrec.rendered()")
    assert page.evaluate("() => pvrec.state.unfolded") is False
    assert page.errors == []


def test_a_region_page_hovers_true_physical_pfns(banded, page):
    """--region 32M-64M: the page draws only that memory (the "no flags" band, then tile 3
    labelled 48 MiB); the pixel at tile 3's top left is PFN 12288 and its hover, address and
    flags are those of that physical page (`pvrec list`)."""
    rec, _, path = banded
    open_page(page, path)
    lay, bands = bands_of(page)
    assert lay["window"] == [8192, 16384]
    assert [(t["kind"], t["first_pfn"]) for t in lay["tiles"]] == [("band", 8192),
                                                                    ("tile", 12288)]
    assert lay["labels"] == ["32 MiB - 48 MiB: 16 MiB no flags, unchanged", "48 MiB"]
    page.evaluate("() => pvrec.setZoom(1, 4)")
    # tile 3's pages, and the first page of a screen column of the band (32 columns: 128 each)
    for pfn in (12288, 12291, 12288 + 2 * 8 + 1, 8192 + 6 * 128):
        got = hover(page, pfn, ("PFN", "symbolic", "address", "zone"))
        assert got["PFN"] == f"0x{pfn:x}  ({pfn})"
        assert got["symbolic"] == list_flags(rec, 0, pfn)
        assert got["address"] == f"0x{pfn * 4096:x}" and got["zone"] == "Normal"
    page.evaluate("() => pvrec.fit()")
    x, y, _ = page.evaluate("() => pvrec.layout(0).levels")["1"]["tiles"][1]
    st = page.evaluate("() => [pvrec.state.ox, pvrec.state.oy, "
                       "pvrec.levels[pvrec.state.level].mag]")
    assert page.evaluate(f"() => pvrec.pfnAt(0, {st[0] + x * st[2]}, {st[1] + y * st[2]})"
                         )["pfn"] == 12288


WINDOWS = [(1400, 900), (760, 900)]


def sized(browser, size):
    """A page of the given viewport (the module's browser), as the `page` fixture records."""
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    return ctx, pg


def box_of(pg, selector):
    return pg.locator(selector).first.bounding_box()


def inside(box, width, height):
    return (box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width
            and box["y"] + box["height"] <= height)


@pytest.mark.parametrize("size", WINDOWS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_whole_machine_fits_the_window_both_ways(vm, browser, size):
    """At load and after "whole machine" the whole map (tiles, labels above, zone names
    below) is inside the canvas, the controls, the canvas and the strip are in the window
    without scrolling, and the map is drawn as finely as fits: at the next finer level no
    grid of the page's fits the canvas."""
    rec, path, frames = vm
    ctx, pg = sized(browser, size)
    try:
        open_page(pg, path)
        for attempt in ("load", "whole machine"):
            if attempt == "whole machine":
                pg.evaluate("() => pvrec.setZoom(1, 4)")
                pg.get_by_role("button", name="whole machine").click()
                pg.evaluate("() => pvrec.rendered()")
            ext = pg.evaluate("() => pvrec.extent(0)")
            cw, ch = pg.evaluate("() => { const c = document.querySelector('canvas.map'); "
                                 "return [c.width, c.height]; }")
            assert 0 <= ext["x0"] < ext["x1"] <= cw and 0 <= ext["y0"] < ext["y1"] <= ch, \
                (attempt, ext, cw, ch)
            for sel in (".bar", "canvas.map", "canvas.strip"):
                assert inside(box_of(pg, sel), *size), (attempt, sel, box_of(pg, sel))
        assert pg.evaluate("() => document.documentElement.scrollTop") == 0
        levels = pg.evaluate("() => pvrec.levels")
        at = pg.evaluate("() => pvrec.state.level")
        grids = pg.evaluate("() => pvrec.data.sides[0].layout.grids")
        assert len(grids) > 1  # the page has grids to choose from
        finer = levels[at + 1]
        room_w, room_h = cw - 20, ch - 20 - 2 * 14  # PAD each side, a label line above and below
        assert not any(g[str(finer["K"])]["width"] * finer["mag"] <= room_w
                       and g[str(finer["K"])]["height"] * finer["mag"] <= room_h
                       for g in grids.values())
        assert pg.errors == []
    finally:
        ctx.close()


@pytest.mark.parametrize("size", WINDOWS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_hover_panel_is_in_the_window_beside_the_page(vm, browser, size):
    """Hovering pages anywhere on the map (middle, right edge, bottom left, top) shows the
    panel inside the window and never over the hovered pixel; off the map it goes."""
    rec, path, frames = vm
    ctx, pg = sized(browser, size)
    try:
        open_page(pg, path)
        cv = box_of(pg, "canvas.map")
        lay = pg.evaluate("() => pvrec.layout(0)")
        k = pg.evaluate("() => pvrec.levels[pvrec.state.level].K")
        at_k = lay["levels"][str(k)]["tiles"]
        tiles = [(at_k[i], t) for i, t in enumerate(lay["tiles"]) if t["kind"] == "tile"]
        right = max(tiles, key=lambda p: p[0][0])[1]
        low = max(tiles, key=lambda p: p[0][1])[1]
        row = lay["row_pages"]
        pfns = [tiles[0][1]["first_pfn"] + 5 * row,  # top left
                right["first_pfn"] + row * (right["rows"] // 2) + row - 1,  # right edge
                low["first_pfn"] + row * (low["rows"] - 1),  # bottom left
                lay["pfn_count"] // 2 + 12345]  # the middle
        shown = 0
        for pfn in pfns:
            x, y = pg.evaluate(f"() => pvrec.screenOf(0, {pfn})")
            at = pg.evaluate(f"() => pvrec.pfnAt(0, {x}, {y})")
            px, py = cv["x"] + x, cv["y"] + y
            pg.mouse.move(px, py)
            pg.evaluate("() => pvrec.state.info")
            panel = box_of(pg, ".hoverbox")
            assert pg.locator(".hoverbox").is_visible()
            assert inside(panel, *size), (x, y, panel)
            assert not (panel["x"] <= px <= panel["x"] + panel["width"]
                        and panel["y"] <= py <= panel["y"] + panel["height"]), (x, y, panel)
            assert pg.locator(".info .k-PFN").first.text_content().startswith(
                f"0x{at['pfn']:x} ")
            shown += 1
        assert shown == len(pfns)
        pg.mouse.move(2, 2)  # off the map
        assert not pg.locator(".hoverbox").is_visible()
        assert pg.errors == []
    finally:
        ctx.close()


def test_home_end_escape_and_the_keys_help(vm, page):
    """End shows the last frame, Home the first; a click pins a page and Esc unpins it; "?"
    opens the keys help, which names them."""
    rec, path, frames = vm
    open_page(page, path)
    frame = page.locator(".head .frame").first
    page.keyboard.press("End")
    page.evaluate("() => pvrec.rendered()")
    assert frame.text_content().endswith("frame 2 of 3")
    page.keyboard.press("Home")
    page.evaluate("() => pvrec.rendered()")
    assert frame.text_content().endswith("frame 0 of 3")
    cv = box_of(page, "canvas.map")
    x, y = page.evaluate(f"() => pvrec.screenOf(0, {frames[0].size // 2 + 12345})")
    page.mouse.click(cv["x"] + x, cv["y"] + y)
    page.evaluate("() => pvrec.state.info")
    assert page.evaluate("() => pvrec.state.pinned") is not None
    assert page.locator(".info .ihead").first.text_content().startswith("pinned")
    page.keyboard.press("Escape")
    page.evaluate("() => pvrec.rendered()")
    page.evaluate("() => pvrec.state.info")
    assert page.evaluate("() => pvrec.state.pinned") is None
    assert page.locator(".info .ihead").first.text_content().startswith("hover")
    assert not page.locator(".help").is_visible()
    page.keyboard.press("?")
    help_text = page.locator(".help").text_content()
    assert page.locator(".help").is_visible()
    for key in ("Home", "End", "Esc", "space"):
        assert key in help_text
    page.keyboard.press("Escape")
    assert not page.locator(".help").is_visible()


def test_zone_names_are_drawn_as_the_video_draws_them(vm, page):
    """The zone names stand under the tile where each zone begins, one per place as compose
    places them (DMA shares DMA32's tile and gives way to it), in ink on the canvas."""
    rec, path, frames = vm
    open_page(page, path)
    drawn = page.evaluate("() => pvrec.zoneLabels(0)")
    assert [d["name"] for d in drawn] == ["Normal", "DMA32"]
    lay = page.evaluate("() => pvrec.layout(0)")
    bg = hex_rgb(page.evaluate("() => pvrec.data.sides[0].classes.ui.bg"))
    for d in drawn:
        mark = next(m for m in lay["marks"] if m["name"] == d["name"])
        above = page.evaluate(f"() => pvrec.pfnAt(0, {d['x']}, {d['y'] - 4})")["pfn"]
        tile = next(t for t in lay["tiles"] if t["first_pfn"] <= above < t["first_pfn"] + t["pages"])
        assert tile["first_pfn"] <= mark["pfn"] < tile["first_pfn"] + tile["pages"], d
        ink = page.evaluate(
            f"() => Array.from(document.querySelector('canvas.map').getContext('2d')"
            f".getImageData({d['x']}, {d['y']}, 30, 12).data)")
        pixels = {tuple(ink[i:i + 3]) for i in range(0, len(ink), 4)}
        assert pixels - {bg}, d["name"]


def test_a_damaged_frame_leaves_the_page_the_frames_that_read(page, tmp_path):
    """GIVEN 6 frames (key frames 0 and 3) with frame 1 cut short, WHEN rendered to a page,
    THEN it says 4 frames (2 cannot be read without 1), and stepping through it with the
    right arrow shows frames 0, 3, 4 and 5 with no error in the page."""
    rec = make_recording(tmp_path / "run", 6, key_every=3)
    from pvrec.recording.reader import open_recording

    cut = rec / open_recording(rec).frames[1].file
    cut.write_bytes(cut.read_bytes()[:100])
    out = tmp_path / "run.html"
    code, _, err = pvrec_main("render", str(rec), "-o", str(out))
    assert code == 0, err
    assert "(" in err and ", 4 frames, " in err and "skipped up to the next key frame" in err
    open_page(page, out)
    shown = []
    for _ in range(5):
        shown.append(page.locator(".head .frame").first.text_content().split("frame ")[-1])
        page.keyboard.press("ArrowRight")
        page.evaluate("() => pvrec.rendered()")
    assert shown[:4] == ["0 of 6", "3 of 6", "4 of 6", "5 of 6"] and page.errors == []


def test_the_strip_is_in_time_and_ends_on_the_last_frame(page, tmp_path):
    """GIVEN frames at t = 0, 1, 2 and 10 s, WHEN the strip is clicked at 80% of its width
    (t = 8 s), THEN the last frame shows (nearest in time: the video's strip draws it so);
    at 10% (t = 1 s) frame 1."""
    rec = make_recording(tmp_path / "run", 4, times=[0.0, 1.0, 2.0, 10.0])
    out = tmp_path / "run.html"
    code, _, err = pvrec_main("render", str(rec), "-o", str(out), "-q")
    assert code == 0, err
    open_page(page, out)
    page.locator("canvas.strip").first.scroll_into_view_if_needed()
    strip = page.locator("canvas.strip").first.bounding_box()
    for share, want in ((0.8, "frame 3 of 4"), (0.1, "frame 1 of 4")):
        page.mouse.click(strip["x"] + share * strip["width"], strip["y"] + strip["height"] / 2)
        page.evaluate("() => pvrec.rendered()")
        assert page.locator(".head .frame").first.text_content().endswith(want)
    assert page.errors == []
