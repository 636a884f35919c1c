"""Output types, chosen by the output's suffix (an existing directory: a PNG per frame).

Each type is an Encoder subclass that declares its suffixes, default --scale and whether it
is a video, one picture, or streams; the registry below is the one place that knows them all,
so a new type (html, apng) is one class and one line here.
"""

from __future__ import annotations

from pathlib import Path

from pvrec.errors import PvrecError
from pvrec.render.encoders.base import MAX_SIDE, Cancelled, Encoder, upscale
from pvrec.render.encoders.ffmpeg import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    FfmpegEncoder,
    GifEncoder,
    Mp4Encoder,
    WebpEncoder,
    pal8_trailer,
)
from pvrec.render.encoders.html import HtmlEncoder
from pvrec.render.encoders.png import PngDirEncoder, PngEncoder, write_png

ENCODERS: dict[str, type[Encoder]] = {
    e.kind: e for e in (Mp4Encoder, GifEncoder, WebpEncoder, PngEncoder, PngDirEncoder, HtmlEncoder)}
SUFFIXES: dict[str, type[Encoder]] = {s: e for e in ENCODERS.values() for s in e.suffixes}


def encoder_for(path: Path) -> type[Encoder]:
    """The output type of a path (an existing directory: PNG frames); PvrecError otherwise."""
    if path.is_dir():
        return PngDirEncoder
    enc = SUFFIXES.get(path.suffix.lower())
    if enc is None and not path.suffix:
        raise PvrecError(f"output {path} has no suffix and is not a directory: name a .mp4, "
                         f".gif, .webp, .png or .html file, or create the directory first for one "
                         f"PNG per frame")
    if enc is None:
        known = ", ".join(SUFFIXES)
        raise PvrecError(f"cannot tell the output type of {path}: use a suffix of {known}, "
                         f"or an existing directory for one PNG per frame")
    return enc


__all__ = ["DEFAULT_CRF", "DEFAULT_PRESET", "ENCODERS", "MAX_SIDE", "SUFFIXES", "Cancelled",
           "Encoder", "FfmpegEncoder", "GifEncoder", "HtmlEncoder", "Mp4Encoder", "PngDirEncoder",
           "PngEncoder", "WebpEncoder", "encoder_for", "pal8_trailer", "upscale", "write_png"]
