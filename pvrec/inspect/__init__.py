"""Reading what a recording or a dump holds, as text and data: the page-types compatible core
(`pagetypes`, for `pvrec stats` and `pvrec list`), the summary of `pvrec info` (`info`), the
CSV rows of `pvrec metrics` (`fragmentation`) and the raw dump of `pvrec export` (`export`).

Nothing here imports the render half: these commands start fast and need no Pillow or ffmpeg.
"""
