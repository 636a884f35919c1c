"""The HTML page's builder: the CSP allows exactly the inline player, recording text cannot
leave the data block, frame patches rebuild every frame, the player ships in the package, and
bad input stops with one line."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib

import numpy as np
import pytest

from pvrec.render.html import data as page_data
from pvrec.render.html.page import asset, page_html
from pvrec.runs import encode_flags
from tests.helpers import HEADER, make_recording, pvrec_main


def sections(text: str) -> list[np.ndarray]:
    """data.py's blob read back as the player reads it (byte planes, little-endian)."""
    raw = zlib.decompress(base64.b64decode(text))
    out, off = [], 0
    while off < len(raw):
        n, size = np.frombuffer(raw, "<u4", 2, off)
        off += 8
        planes = np.frombuffer(raw, np.uint8, int(n * size), off).reshape(int(size), int(n))
        out.append(planes.T.copy().view(f"<u{size}").reshape(-1))
        off += (int(n * size) + 3) & ~3
    return out


def rebuild(stream: list[list[np.ndarray]], n: int) -> np.ndarray:
    """The per-PFN values of frame n from its key frame and patches."""
    key = n - n % page_data.KEY_EVERY
    lengths, _, pal, codes = stream[key]
    pages = np.repeat(pal[codes], lengths)
    for j in range(key + 1, n + 1):
        gaps, lens, pal, codes = stream[j]
        starts = np.cumsum(gaps.astype(np.int64) + np.concatenate(([0], lens[:-1])))
        for s, ln, v in zip(starts, lens, pal[codes], strict=True):
            pages[s:s + ln] = v
    return pages


def test_patches_rebuild_every_frame():
    """A stream of 70 frames (key frames at 0, 30, 60) gives back each frame's values."""
    rng = np.random.default_rng(0)
    flags = rng.integers(0, 5, 5000).astype(np.uint64)
    stream, frames, stored = page_data.Stream(), [], []
    for _ in range(70):
        flags = flags.copy()
        at = rng.integers(0, flags.size, 40)
        flags[at] = rng.integers(0, 300, at.size).astype(np.uint64)  # > 256: u16 codes
        r = encode_flags(flags)
        frames.append(flags)
        stored.append(sections(page_data._blob(*stream.add(r.lengths.astype(np.int64),
                                                            r.values))))
    for n in (0, 1, 29, 30, 31, 69):
        assert np.array_equal(rebuild(stored, n), frames[n])


def test_csp_allows_the_inline_player_by_hash_and_no_source(tmp_path):
    page = page_html({"sides": [{"name": "r"}]}, "light")
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', page).group(1)
    js, css = asset("player.js"), asset("player.css")
    want = "sha256-" + base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
    assert f"script-src '{want}'" in csp and "default-src 'none'" in csp
    assert "unsafe" not in csp and "http" not in csp
    assert f"<script>{js}</script>" in page and f"<style>{css}</style>" in page


def test_recording_text_cannot_close_the_data_block():
    evil = "</script><script>alert(1)</script><!--"
    page = page_html({"sides": [{"name": evil}], "x": evil}, "light")
    block = re.search(r'id="pvrec-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in block and json.loads(block)["x"] == evil
    assert page.count("<script") == 2


def test_the_player_is_package_data():
    """pip install . ships player.js and player.css (pyproject's package-data)."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["package-data"]["pvrec.render.html"] == ["*.js",
                                                                                  "*.css"]
    assert "pixelsOf" in asset("player.js")


@pytest.fixture
def rec(tmp_path):
    return make_recording(tmp_path / "r", 4)


def test_render_html_writes_one_page(rec, tmp_path):
    out = tmp_path / "r.html"
    code, stdout, err = pvrec_main("render", str(rec), "-o", str(out), "-q")
    assert code == 0, err
    said = stdout + err
    assert f"wrote {out} (" in said and ", 4 frames, " in said
    data = json.loads(re.search(r'id="pvrec-data">(.*?)</script>', out.read_text(), re.S)
                      .group(1))
    side = data["sides"][0]
    assert [f["pos"] for f in side["frames"]] == [0, 1, 2, 3]
    assert side["command"] == HEADER["command"] and side["by_table"] is True
    assert data["steps"] == [[0], [1], [2], [3]]


def page_data_of(out):
    return json.loads(re.search(r'id="pvrec-data">(.*?)</script>', out.read_text(), re.S)
                      .group(1))


def test_the_copy_command_names_the_recording_as_given(tmp_path, monkeypatch):
    """Rendered from tmp_path as `my runs/r` (relative, with a space), the page's `pvrec list`
    command names it so, shell-quoted: pasted where the user rendered, it runs."""
    (tmp_path / "my runs").mkdir()
    make_recording(tmp_path / "my runs" / "r", 2)
    monkeypatch.chdir(tmp_path)
    code, _, err = pvrec_main("render", "my runs/r", "-o", "r.html", "-q")
    assert code == 0, err
    side = page_data_of(tmp_path / "r.html")["sides"][0]
    assert side["path"] == "'my runs/r'" and side["name"] == "r"
    assert "' + m.d.path + '@'" in asset("player.js")  # the command the copy button gives


def test_the_grids_are_the_layouts_own_arrangements(tmp_path):
    """Each grid the page may fit a window with is MapLayout.arrange at that many columns, at
    every K; the layout's own columns among them, one grid per distinct map height."""
    from pvrec.recording.header import Header
    from pvrec.render.raster import MapLayout, divisors

    header = Header.from_dict({**HEADER, "pfn_count": 40 * 512, "hpage_pages": 8,
                               "ram_ranges": [[0, 40 * 512]],
                               "nodes": [{"node": 0, "ranges": [[0, 40 * 512]]}]})
    lay = MapLayout.build(header, ppp=1, gap=4, vgap=30, cols=4, tile_pages=512)
    got = page_data.layout_json(lay)
    heights = [lay.size_for(c)[1] for c in map(int, got["grids"])]
    assert len(got["grids"]) > 2 and len(set(heights)) == len(heights)
    assert got["levels"] == got["grids"][4]
    for cols, levels in got["grids"].items():
        assert sorted(levels) == divisors(lay.row_pages)
        for k, g in levels.items():
            at = MapLayout.build(header, ppp=k, gap=4, vgap=30, cols=cols, tile_pages=512)
            assert g == {"tiles": [[t.x, t.y, t.w] for t in at.tiles], "width": at.width,
                         "height": at.height}


@pytest.mark.parametrize("args, message", [
    (["--view", "churn"], "--view churn is drawn per pixel from every frame's history"),
    (["--changes"], "--changes is for pictures and videos"),
    (["--frame", "1"], "--frame picks the one picture of a .png output"),
    (["--events"], "--events is drawn in pictures and videos only"),
    (["--timeline-events"], "--timeline-events is drawn in pictures and videos only"),
])
def test_options_a_page_cannot_show_are_one_line(rec, tmp_path, args, message):
    code, _, err = pvrec_main("render", str(rec), "-o", str(tmp_path / "r.html"), *args)
    assert code != 0 and message in err and err.count("\n") == 1


def test_bad_input_is_one_line(rec, tmp_path):
    out = tmp_path / "r.html"
    out.write_text("mine")
    code, _, err = pvrec_main("render", str(rec), "-o", str(out))
    assert code != 0 and "exists" in err and err.count("\n") == 1 and out.read_text() == "mine"
    code, _, err = pvrec_main("render", str(tmp_path), "-o", str(tmp_path / "x.html"))
    assert code != 0 and "not a pvrec recording" in err and err.count("\n") == 1
    empty = make_recording(tmp_path / "empty", [])
    code, _, err = pvrec_main("render", str(empty), "-o", str(tmp_path / "e.html"))
    assert code != 0 and "has no frames" in err and err.count("\n") == 1


def test_a_page_too_big_stops_with_a_line_naming_every_and_start_end(rec, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(page_data, "MAX_PAGE_BYTES", 100)
    out = tmp_path / "big.html"
    code, _, err = pvrec_main("render", str(rec), "-o", str(out))
    assert code != 0 and err.count("\n") == 1
    assert "would exceed" in err and "--every N or --start/--end" in err
    assert not out.exists() and not list(tmp_path.glob("*.html*"))


def test_view_writes_the_page_and_prints_where(rec, monkeypatch):
    import webbrowser

    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: False)  # no browser here
    code, out, err = pvrec_main("view", str(rec), "-q")
    assert code == 0, err
    url = re.search(r"open (file://\S+) in a browser", out + err).group(1)
    from urllib.parse import urlparse

    assert open(urlparse(url).path).read().startswith("<!DOCTYPE html>")
