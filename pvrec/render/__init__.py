"""The render half of pvrec: recordings (or live memory) to pictures; see docs/rendering.md.

options (the flags, checked) -> plan (recording frame -> video frame) -> pipeline: per side
(side.py) pvrec.classes (flags -> page class), raster (PFN -> pixel), compose (the finished
picture: palette, text, strips) -> encoders/ (one class per output type, chosen by suffix).
"""
