"""The .html output: not a pixel stream but a page built from the frames' runs
(pvrec.render.html); the pipeline hands it the maps instead of drawn frames."""

from __future__ import annotations

from pathlib import Path

from pvrec.errors import PvrecError
from pvrec.render.encoders.base import Encoder


class HtmlEncoder(Encoder):
    """A self-contained page to zoom, hover and scrub (see pvrec.render.html)."""

    kind = "html"
    suffixes = (".html", ".htm")
    streams = False
    from_runs = True  # built from the maps' runs (build), never sent pixels

    @staticmethod
    def check_options(o) -> None:
        """What a page cannot show (one line each); the rest means what it means for a video."""
        if o.view in ("churn", "age"):
            raise PvrecError(f"--view {o.view} is drawn per pixel from every frame's history: "
                             f"render it as .png or .mp4; the HTML page shows --view map "
                             f"and blocks")
        for flag, on in (("--changes", o.changes), ("--map-only", o.map_only),
                         ("--hold", o.hold), ("--speed", o.speed is not None)):
            if on:
                raise PvrecError(f"{flag} is for pictures and videos; the HTML page has its own "
                                 f"playback controls")
        for flag, on in (("--events", o.events), ("--timeline-events", o.counters)):
            if on:
                raise PvrecError(f"{flag} is drawn in pictures and videos only: render it as "
                                 f".png, .gif or .mp4 (the HTML page does not show the kernel's "
                                 f"events yet)")

    @staticmethod
    def build(out: Path, sides, plan, options, metric_list, progress=None
              ) -> tuple[int, float, int, int]:
        """Write the page; (bytes, seconds, time steps, distinct frames in it)."""
        from pvrec.render.html import write_page

        return write_page(out, sides, plan, options, metric_list, progress)
