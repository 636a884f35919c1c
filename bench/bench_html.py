"""HTML page benchmark: its size against the recording's frame files, and the player in
headless Chromium (Debian's, through playwright; never a downloaded browser).

    python bench/bench_html.py --recording RUN      # e.g. a 24 GiB kernel build of 100+ frames

1. Size: `pvrec render RUN -o RUN.html` (a child process, timed); the page's bytes over the
   bytes of RUN/frames/ (the target: at most 1.5x those plus 250 KiB for the player), and the
   player's own bytes.
2. Load: from navigation to the first frame drawn (the page is interactive then); target 2 s.
3. Stepping at whole-machine zoom: every frame in turn, forth then back, each drawn before
   the next is asked for (decode + the K-page rule + the canvas): frames/s; target >= 30.
   Then the same at one page per pixel (a 1400x800 canvas of single pages).
4. Memory: the page's JS heap after load, after stepping through every frame, and after a
   second pass (bounded: frames are decoded one at a time, a few kept; the second pass must
   not grow it), and the bytes of the page's own data that the heap holds in any case.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--enable-precise-memory-info", "--js-flags=--expose-gc"]
STEP_JS = """async ([mode]) => {
  const n = pvrec.data.steps.length, order = [];
  for (let k = 0; k < n; k++) order.push(k);
  for (let k = n - 1; k >= 0; k--) order.push(k);
  if (mode === 'pages') { await pvrec.setZoom(1, 1); await pvrec.centerOn(0, 1 << 20); }
  else await pvrec.fit();
  const t0 = performance.now();
  for (const k of order) await pvrec.setStep(k);
  return [order.length, (performance.now() - t0) / 1000];
}"""


def mib(n: float) -> str:
    return f"{n / (1 << 20):.2f} MiB"


def heap(pg) -> int:
    """The live JS heap (after a full garbage collection)."""
    return pg.evaluate("async () => { gc(); await new Promise((r) => setTimeout(r, 100)); gc(); "
                       "return performance.memory.usedJSHeapSize; }")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recording", required=True, help="recording directory")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    a = ap.parse_args()
    rec = Path(a.recording)
    frames = sum(p.stat().st_size for p in (rec / "frames").iterdir())
    n_frames = len(list((rec / "frames").iterdir()))
    tmp = Path(tempfile.mkdtemp(prefix="bench-html-"))
    page = tmp / f"{rec.name}.html"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pvrec", "render", str(rec), "-o", str(page), "-q"],
                   check=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    build = time.perf_counter() - t0
    from pvrec.render.html.page import asset

    player = len(asset("player.js").encode()) + len(asset("player.css").encode())
    size = page.stat().st_size
    print(f"recording {rec} ({n_frames} frames): frame files {mib(frames)}")
    print(f"1. page {mib(size)} in {build:.1f} s: {size / frames:.2f}x the frame files; "
          f"(page - 250 KiB) / frames = {(size - (250 << 10)) / frames:.2f}x (target <= 1.5x); "
          f"player {player / 1024:.1f} KiB")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=a.chromium, args=ARGS)
        pg = b.new_page(viewport={"width": 1400, "height": 1000})
        t0 = time.perf_counter()
        pg.goto(page.as_uri())
        pg.evaluate("() => pvrec.rendered()")
        ready = time.perf_counter() - t0
        print(f"2. load to first frame drawn: {ready:.2f} s (target <= 2 s: "
              f"{ready / 2:.2f}x of it)")
        h0 = heap(pg)
        for mode in ("whole", "pages"):
            n, dt = pg.evaluate(STEP_JS, [mode])
            zoom = pg.evaluate("() => document.querySelector('.zoom').textContent")
            print(f"3. stepping {n} frames at {mode} zoom ({zoom}): {n / dt:.1f} frames/s "
                  f"({n / dt / 30:.2f}x the 30 frames/s target)")
            if mode == "whole":
                h1 = heap(pg)
                pg.evaluate(STEP_JS, [mode])
                h2 = heap(pg)
        print(f"4. JS heap: {mib(h0)} after load, {mib(h1)} after a pass, {mib(h2)} after a "
              f"second ({h2 / h1:.2f}x the first); the page's own data is {mib(size)} of "
              f"text (decoded whole, a frame would be {mib(6553600)} of classes alone)")
        b.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
