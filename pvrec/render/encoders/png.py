"""PNG outputs through Pillow: one palette picture (.png), or a directory of one per frame."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from pvrec.errors import PvrecError
from pvrec.output import check_output, check_output_dir, check_parent, write_atomically
from pvrec.render.encoders.base import Encoder, upscale

SOFTWARE = "pvrec"  # every PNG pvrec writes says so (a tEXt chunk): see made_by_pvrec


def write_png(path: Path, img: np.ndarray, palette: np.ndarray, scale: int = 1) -> None:
    """One palette PNG, written to a temp name and renamed."""
    from PIL import Image, PngImagePlugin

    im = Image.fromarray(np.ascontiguousarray(upscale(img, scale)), "P")
    im.putpalette(palette.reshape(-1).tolist())
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SOFTWARE)
    write_atomically(path, lambda tmp: im.save(tmp, format="PNG", pnginfo=info))


def made_by_pvrec(path: Path) -> bool:
    """True when the file is a PNG that pvrec wrote (its Software chunk)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get("Software") == SOFTWARE
    except Exception:  # noqa: BLE001 (whatever Pillow raises, a bomb too: not one of ours)
        return False


class PngEncoder(Encoder):
    """One PNG: the frame given last (the command sends just the one it wants)."""

    kind = "png"
    suffixes = (".png",)
    picture = True
    streams = False

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.last: np.ndarray | None = None

    def write(self, img: np.ndarray, dirty=None) -> None:
        self.last = img.copy()
        self.frames = 1

    def close(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        if self.last is None:
            raise PvrecError(f"no frame to write to {self.path}")
        write_png(self.path, self.last, self.palette, self.scale)


class PngDirEncoder(Encoder):
    """A PNG per frame in a directory: frame-000000.png, ... (held frames are not repeated)."""

    kind = "dir"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.written: list[Path] = []

    @classmethod
    def check_target(cls, out: Path, force: bool) -> None:
        check_output_dir(out, True, lambda _: True)  # not a link
        frames = sorted(out.glob("frame-*.png"))
        check_parent(out / "frame-000000.png")  # an ordinary directory, not /dev
        for p in frames:
            check_output(p, True)  # each one a regular file that --force may replace
        if frames and not force:
            raise PvrecError(f"{out}/ already holds frame-*.png files (use --force to "
                             f"overwrite them)")
        theirs = next((p for p in frames if not made_by_pvrec(p)), None)
        if theirs is not None:  # --force replaces pvrec's frames, never a file of the user's
            raise PvrecError(f"{theirs} does not say pvrec wrote it: move it, or render "
                             f"into another directory")

    @staticmethod
    def target_name(path: Path) -> str:
        return f"{path}/"

    def bytes_written(self) -> int:
        return sum(p.stat().st_size for p in self.written if p.exists())

    def write(self, img: np.ndarray, dirty=None) -> None:
        p = self.path / f"frame-{self.frames:06d}.png"
        write_png(p, img, self.palette, self.scale)
        self.written.append(p)
        self.frames += 1

    def abort(self) -> None:
        for p in self.written:
            p.unlink(missing_ok=True)
