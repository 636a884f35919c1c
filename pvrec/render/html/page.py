"""The HTML page: one file holding the player (player.js, player.css: package data) and the
data of each map (data.py), under a Content-Security-Policy that allows no network source.

The inline script and style are allowed by their SHA-256 hashes (no 'unsafe-inline'); the data
is a JSON block (`type="application/json"`, never executed) with every `<` escaped, so nothing
from a recording (a command line, a cgroup path, a TOML class name) can close it; the player
puts such text in the page with textContent only.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from pvrec.errors import PvrecError
from pvrec.output import write_atomically
from pvrec.render.html.data import side_json

CSP = ("default-src 'none'; script-src '{script}'; style-src '{style}'; img-src 'none'; "
       "connect-src 'none'; font-src 'none'; media-src 'none'; object-src 'none'; "
       "base-uri 'none'; form-action 'none'; frame-src 'none'; worker-src 'none'")

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>{css}</style>
</head><body class="theme-{theme}">
<noscript>This page draws a pvrec recording with JavaScript.</noscript>
<script type="application/json" id="pvrec-data">{data}</script>
<script>{js}</script>
</body></html>
"""


def asset(name: str) -> str:
    """A file of the player, shipped in the package (pyproject's package-data)."""
    return resources.files("pvrec.render.html").joinpath(name).read_text("utf-8")


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def page_html(data: dict, theme: str) -> str:
    """The whole page for the data (player_data's dict)."""
    js, css = asset("player.js"), asset("player.css")
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False)
    # no '<' at all inside the data block: it can neither close the script nor open a comment
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = "pvrec: " + " | ".join(s["name"] for s in data["sides"])
    from html import escape

    return TEMPLATE.format(csp=CSP.format(script=_hash(js), style=_hash(css)),
                           title=escape(title), css=css, js=js, data=blob,
                           theme="dark" if theme == "dark" else "light")


def player_data(sides, plan, options, metric_list,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """The page's data: each map's, the time steps (the position of every map at each), the
    options the player starts with."""
    steps = [list(x) for x in zip(*plan.at, strict=True)]
    total = sum(len(set(a)) for a in plan.at)
    done = [0]
    budget = [0]

    def tick() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    keep = options.downsample == "keep" and options.color_by is None and options.view == "map"
    out = []
    for i, sd in enumerate(sides):
        out.append(side_json(sd, sorted(set(plan.at[i])), options.theme,
                             metric_list[i] if metric_list else None, budget,
                             tick, keep=keep))
    return {"version": 1, "sides": out, "steps": readable_steps(steps, out), "master": plan.master,
            "view": options.view, "theme": options.theme,
            "timeline": True}


def readable_steps(steps: list[list[int]], sides: list[dict]) -> list[list[int]]:
    """The time steps with each map's position moved to its last frame at or before it that
    could be read (the first one before any), as a video holds it; a step that is then the
    step before it again is left out, so the page scrubs through readable frames alone."""
    have = [sorted(f["pos"] for f in s.get("frames", [])) for s in sides]
    for side, got in zip(sides, have, strict=True):
        if not got:
            raise PvrecError(f"no frame of {side.get('name', 'the recording')} in the range "
                             f"could be read")
    out: list[list[int]] = []
    for step in steps:
        moved = [got[max(0, bisect.bisect_right(got, pos) - 1)]
                 for pos, got in zip(step, have, strict=True)]
        if not out or moved != out[-1]:
            out.append(moved)
    return out


def write_page(out: Path, sides, plan, options, metric_list,
               progress: Callable[[int, int], None] | None = None
               ) -> tuple[int, float, int, int]:
    """Build and write the page (temp file + rename); (bytes, seconds, time steps, frames)."""
    t0 = time.perf_counter()
    data = player_data(sides, plan, options, metric_list, progress)
    raw = page_html(data, options.theme).encode("utf-8")
    write_atomically(out, lambda tmp: Path(tmp).write_bytes(raw))
    frames = sum(len(s["frames"]) for s in data["sides"])
    return len(raw), time.perf_counter() - t0, len(data["steps"]), frames
