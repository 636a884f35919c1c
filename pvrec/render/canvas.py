"""The canvas a Picture keeps from frame to frame, and what changed in it.

A frame is drawn into the canvas of the frame before: map pixels painted in place
(MapLayout.canvas_index says where each pixel is drawn), strings erased back to the static
picture and redrawn. Every such change is noted, so that an encoder enlarges only what changed
into its own buffer (encoders.base.upscale_dirty); anything that paints without noting it sets
the whole canvas dirty (None).
"""

from __future__ import annotations

import numpy as np


class KeptCanvas:
    """Picture's canvas bookkeeping (it sets _canvas, static, layout, geo, _index, _dirty)."""

    _canvas: np.ndarray
    _index: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    _dirty: tuple[list[np.ndarray], list[tuple[int, int, int, int]]] | None

    def _update_map(self, blocks: np.ndarray, colors: np.ndarray) -> None:
        """Paint some pixels of the map (MapLayout's pixel numbers, sorted) in the canvas:
        every place the layout draws them (a row two NUMA panels show, twice)."""
        if self._index is None:
            self._index = self.layout.canvas_index(self.geo.map_x, self.geo.map_y,
                                                   self._canvas.shape[1])
        first, twice, second = self._index
        at = first[blocks]
        drawn = at >= 0
        at, shown = at[drawn], colors[drawn]
        if twice.size and blocks.size:
            i = np.minimum(np.searchsorted(blocks, twice), blocks.size - 1)
            hit = blocks[i] == twice
            at, shown = np.concatenate((at, second[hit])), np.concatenate((shown, colors[i[hit]]))
        self._canvas.reshape(-1)[at] = shown
        if self._dirty is not None:
            self._dirty[0].append(at)

    def _touched(self, rect: tuple[int, int, int, int]) -> None:
        if self._dirty is not None:
            self._dirty[1].append(rect)

    def take_dirty(self) -> tuple[np.ndarray, list[tuple[int, int, int, int]]] | None:
        """What changed in the canvas since the last call: None (maybe all of it), or (flat
        indices of pixels, rectangles (y0, y1, x0, x1))."""
        got, self._dirty = self._dirty, ([], [])
        if got is None:
            return None
        idx = np.concatenate(got[0]) if got[0] else np.zeros(0, np.int64)
        return idx, got[1]

    def _erase(self, rect: tuple[int, int, int, int]) -> None:
        """Put the static picture back in a rectangle (y0, y1, x0, x1), and say so."""
        a, b, c, d = rect
        self._canvas[a:b, c:d] = self.static[a:b, c:d]
        self._touched(rect)
