"""--region and collapse through the commands: the map-only contract of a region on a real
fixture (pixel-exact), bad specs as one line, `metrics --region`, and collapse on a real dump
and on two runs side by side."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from pvrec.classes import default_scheme
from pvrec.render.pipeline import render_recording
from tests.conftest import run_pvrec
from tests.helpers import make_recording
from tests.unit.test_regions import MACHINE, TILE, machine_frames

G = 1 << 30


@pytest.fixture(scope="module")
def kbuild_dump(fixture_dumps):
    return fixture_dumps["after-kbuild"]


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("spec, first, pages", [
    ("4G+1G", 4 * G // 4096, G // 4096),
    ("0x140000000-0x150000000", 5 * G // 4096, (1 << 28) // 4096),
    ("6G+100K-6G+3M", None, None),  # not a spec: an address, a sign, an address
])
def test_map_only_contract_with_a_region_on_a_real_fixture(kbuild_dump, tmp_path, spec, first,
                                                           pages):
    """GIVEN the after-kbuild dump, WHEN drawn --map-only --layout rows --width 512 --region,
    THEN pixel (x, y) is the class colour of PFN region_start + y*512 + x, page for page."""
    out = tmp_path / "map.png"
    r = run_pvrec("snapshot", "-F", kbuild_dump, "-o", out, "--map-only", "--layout", "rows",
                  "--width", "512", "--region", spec)
    if first is None:
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
        assert "use an address range" in r.stderr and "RAM spans" in r.stderr
        return
    ok(r)
    flags = np.fromfile(kbuild_dump, dtype="<u8")[first:first + pages]
    img = Image.open(out)
    assert img.size == (512, pages // 512)
    scheme = default_scheme()
    want = scheme.colors("light")[scheme.classify_values(flags)]
    assert np.array_equal(np.asarray(img.convert("RGB")).reshape(-1, 3), want)


def test_a_region_that_is_not_whole_rows_grows_to_them(kbuild_dump, tmp_path):
    out = tmp_path / "map.png"
    ok(run_pvrec("snapshot", "-F", kbuild_dump, "-o", out, "--map-only", "--layout", "rows",
                 "--width", "512", "--region", "0x100100000-0x100300000"))  # 4G+1M..3M: rows of 2M
    assert Image.open(out).size == (512, 2)


@pytest.mark.parametrize("args, says", [
    (["--region", "Movable"], "a zone (DMA32, Normal)"),
    (["--region", "40G-41G"], "starts beyond the memory"),
    (["--region", ""], "--region needs a spec"),
])
def test_bad_specs_are_one_line(tmp_path, args, says):
    rec = make_recording(tmp_path / "rec", frames=3)
    r = run_pvrec("render", rec, "-o", tmp_path / "x.png", *args)
    assert r.returncode != 0 and says in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_metrics_of_a_zone_region_are_that_zones_figures(tmp_path):
    """GIVEN a recording with zones DMA32 and Normal, WHEN `metrics --region Normal`, THEN the
    rows hold only Normal's columns, equal to those of the whole recording (no kernel_ twins:
    the kernel counts whole zones)."""
    rec = make_recording(tmp_path / "rec", frames=3)
    full = list(csv.DictReader(io.StringIO(ok_out(run_pvrec("metrics", str(rec))))))
    part = list(csv.DictReader(io.StringIO(ok_out(run_pvrec("metrics", str(rec),
                                                            "--region", "Normal")))))
    assert part and all(k in ("frame", "t") or k.startswith("Normal.") for k in part[0])
    assert not any("kernel_" in k for k in part[0])
    for a, b in zip(full, part, strict=True):
        assert all(a[k] == v for k, v in b.items())
    some = list(csv.DictReader(io.StringIO(ok_out(run_pvrec(
        "metrics", str(rec), "--region", "8M+2M", "-m", "free_pages")))))  # in Normal only
    assert list(some[0]) == ["frame", "t", "Normal.free_pages"]


def ok_out(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_collapse_on_a_real_dump_gives_the_rest_more_pixels(kbuild_dump, tmp_path):
    """The after-kbuild dump drawn as a snapshot: its tiles of one class fold into bands and
    the remaining tiles are drawn at fewer pages per pixel."""
    whole = ok(run_pvrec("snapshot", "-F", kbuild_dump, "-o", tmp_path / "a.png",
                         "--no-collapse"))
    folded = ok(run_pvrec("snapshot", "-F", kbuild_dump, "-o", tmp_path / "b.png"))
    k = [int(e.split(" pages/pixel")[0].rsplit(" ", 1)[1]) if "pages/pixel" in e else 1
         for e in (whole, folded)]
    assert k[0] == 8 and k[0] >= 2 * k[1]


def test_two_runs_side_by_side_collapse_what_is_static_in_both(tmp_path):
    """Tile 1 is all free on the left and changes on the right: only tile 2 (no flags in
    both) folds, and both sides are drawn at one K."""
    frames = machine_frames()
    right = [f.copy() for f in frames]
    for i, f in enumerate(right):
        f[TILE + 3 * i] = 0
    a = make_recording(tmp_path / "a", frames, header=MACHINE)
    b = make_recording(tmp_path / "b", right, header=MACHINE)
    both = render_recording([a, b], tmp_path / "ab.png")
    alone = render_recording(a, tmp_path / "a.png")
    assert both.pages_per_pixel == alone.pages_per_pixel == 1
    img = np.asarray(Image.open(tmp_path / "ab.png"))
    nf, free = (default_scheme().index(n) for n in ("no flags", "free"))
    half = img[:, :img.shape[1] // 2]
    rows_nf = [y for y in range(half.shape[0]) if (half[y] == nf).sum() >= 8]
    assert rows_nf  # the band of no flags (and no band of free: it is a tile on both sides)
    left_alone = np.asarray(Image.open(tmp_path / "a.png"))
    assert (half == free).sum() > TILE > (left_alone == free).sum()  # alone: a thin band

