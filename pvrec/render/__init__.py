"""The render half of pvrec: recordings (or live memory) to pictures; see docs/rendering.md.

classify: flags -> page class; raster: PFN -> pixel; compose: the finished picture; encode: the
file; command: `pvrec render`, `pvrec snapshot`, `pvrec classes` and render_recording().
"""
