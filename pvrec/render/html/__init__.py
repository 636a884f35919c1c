"""The explorable page (`pvrec render RUN -o run.html`): one self-contained HTML file that
draws a recording's frames from their runs, to zoom, hover and scrub (page.py, data.py; the
player's player.js and player.css are package data)."""

from pvrec.render.html.page import write_page

__all__ = ["write_page"]
